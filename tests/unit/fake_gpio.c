/* SPDX-License-Identifier: MIT */
/*
 * fake_gpio.c — the in-memory gpiochip of fake_gpio.h. Test-only global
 * state: one chip, reset by fake_gpio_reset() in each test's setup.
 */
#include "fake_gpio.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct fake_gpio fake_gpio;

void fake_gpio_reset(void)
{
	for (unsigned i = 0; i < FAKE_GPIO_LINES; i++)
		if (fake_gpio.lines[i].input && fake_gpio.lines[i].efd > 0)
			close(fake_gpio.lines[i].efd);
	memset(&fake_gpio, 0, sizeof(fake_gpio));
	snprintf(fake_gpio.chip, sizeof(fake_gpio.chip), "gpiochip0");
	for (unsigned i = 0; i < FAKE_GPIO_LINES; i++)
		fake_gpio.lines[i].efd = -1;
	fake_gpio.now_ns = 1000ULL * 1000000000ULL; /* far from zero, like a machine that has been up a while */
	fake_gpio.queue_cap = 16;
}

int fake_gpio_logical(unsigned line)
{
	const struct fake_gpio_line *l = &fake_gpio.lines[line];
	return l->active_low ? !l->level : l->level;
}

static int fake_request_output(const char *chip, unsigned line, bool active_low, const char *consumer, int value,
                               void **ret_handle)
{
	struct fake_gpio_line *l;

	if (!fake_gpio.chip[0] || strcmp(chip, fake_gpio.chip) != 0)
		return -ENOENT;
	if (line >= FAKE_GPIO_LINES)
		return -EINVAL;
	l = &fake_gpio.lines[line];
	if (l->requested)
		return -EBUSY;
	l->requested = true;
	l->is_output = true;
	l->active_low = active_low;
	snprintf(l->consumer, sizeof(l->consumer), "%s", consumer);
	if (value >= 0)
		l->level = active_low ? !value : !!value;
	fake_gpio.n_requests++;
	*ret_handle = l;
	return 0;
}

static int fake_set(void *handle, int value)
{
	struct fake_gpio_line *l = handle;

	if (l->fail)
		return l->fail;
	l->n_sets++;
	if (!l->stuck)
		l->level = l->active_low ? !value : !!value;
	return 0;
}

static int fake_get(void *handle)
{
	struct fake_gpio_line *l = handle;

	if (l->fail)
		return l->fail;
	return l->active_low ? !l->level : l->level;
}

static void fake_release(void *handle)
{
	struct fake_gpio_line *l = handle;

	if (!l)
		return;
	l->requested = false;
	fake_gpio.n_releases++;
}

const struct sg_gpio_ops fake_gpio_ops = {
	.name = "fake",
	.request_output = fake_request_output,
	.set = fake_set,
	.get = fake_get,
	.release = fake_release,
};

/* ---- inputs ---------------------------------------------------------------------------------------- */

void fake_gpio_pin(unsigned line, int level, uint64_t t_ns)
{
	struct fake_gpio_line *l = &fake_gpio.lines[line];
	int before = l->active_low ? !l->level : l->level, after;
	unsigned cap = fake_gpio.queue_cap ? fake_gpio.queue_cap : 16;

	if (t_ns > fake_gpio.now_ns)
		fake_gpio.now_ns = t_ns;
	l->level = !!level;
	after = l->active_low ? !l->level : l->level;
	if (!l->input || before == after || !(l->in.edges & (after ? SG_GPIO_EDGE_RISING : SG_GPIO_EDGE_FALLING)))
		return;
	l->seqno++;
	if (cap > FAKE_GPIO_QUEUE_MAX)
		cap = FAKE_GPIO_QUEUE_MAX;
	if (l->q_n == cap) { /* full: the oldest goes, as in uAPI v2 */
		l->q_head = (l->q_head + 1) % FAKE_GPIO_QUEUE_MAX;
		l->q_n--;
		l->dropped++;
	}
	l->q[(l->q_head + l->q_n) % FAKE_GPIO_QUEUE_MAX] = (struct sg_gpio_event){
		.ts_ns = t_ns, .rising = after != 0, .seqno = l->no_seqno ? 0 : l->seqno};
	l->q_n++;
	if (l->efd >= 0) {
		uint64_t one = 1;
		if (write(l->efd, &one, sizeof(one)) < 0) {
			/* cannot happen below 2^64 - 1 writes */
		}
	}
}

unsigned fake_gpio_pending(unsigned line)
{
	return fake_gpio.lines[line].q_n;
}

static int fake_request_input(const char *chip, unsigned line, const struct sg_gpio_input *in, const char *consumer,
                              void **ret_handle, char *why, size_t whylen)
{
	struct fake_gpio_line *l;

	if (why && whylen)
		why[0] = '\0';
	if (!fake_gpio.chip[0] || strcmp(chip, fake_gpio.chip) != 0)
		return -ENOENT;
	if (line >= FAKE_GPIO_LINES) {
		snprintf(why, whylen, "%s has %d lines (0..%d)", chip, FAKE_GPIO_LINES, FAKE_GPIO_LINES - 1);
		return -EINVAL;
	}
	l = &fake_gpio.lines[line];
	if (l->requested) {
		snprintf(why, whylen, "in use by \"%s\" as an %s", l->consumer, l->input ? "input" : "output");
		return -EBUSY;
	}
	if (l->is_output) {
		snprintf(why, whylen, "it is an output");
		return -EPERM;
	}
	l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->efd < 0)
		return -errno;
	l->requested = true;
	l->input = true;
	l->in = *in;
	l->active_low = in->active_low;
	l->q_head = l->q_n = 0;
	l->seqno = 0;
	snprintf(l->consumer, sizeof(l->consumer), "%s", consumer);
	fake_gpio.n_requests++;
	*ret_handle = l;
	return 0;
}

static int fake_in_fd(void *handle)
{
	return ((struct fake_gpio_line *)handle)->efd;
}

static int fake_read_events(void *handle, struct sg_gpio_event *ev, size_t n)
{
	struct fake_gpio_line *l = handle;
	size_t k = 0;
	uint64_t v;

	if (l->fail)
		return l->fail;
	while (k < n && l->q_n) {
		ev[k++] = l->q[l->q_head];
		l->q_head = (l->q_head + 1) % FAKE_GPIO_QUEUE_MAX;
		l->q_n--;
	}
	if (!l->q_n && read(l->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: it was not set */
	}
	return (int)k;
}

static const char *fake_how(void *handle)
{
	return ((struct fake_gpio_line *)handle)->no_seqno ? "fake, no sequence numbers" : "fake";
}

static uint64_t fake_now_ns(void)
{
	return fake_gpio.now_ns;
}

static void fake_in_release(void *handle)
{
	struct fake_gpio_line *l = handle;

	if (!l)
		return;
	if (l->efd >= 0)
		close(l->efd);
	l->efd = -1;
	l->requested = false;
	l->input = false;
	l->q_n = 0;
	fake_gpio.n_releases++;
}

const struct sg_gpio_in_ops fake_gpio_in_ops = {
	.name = "fake",
	.request_input = fake_request_input,
	.fd = fake_in_fd,
	.read_events = fake_read_events,
	.get = fake_get,
	.how = fake_how,
	.now_ns = fake_now_ns,
	.release = fake_in_release,
};
