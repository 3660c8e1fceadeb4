/* SPDX-License-Identifier: MIT */
/*
 * bus_gpio_in.c — sg_gpio_in_kernel: input lines with edge events from the
 * kernel's GPIO character device.
 *
 * Why not libgpiod 1.6 alone: libgpiod 1.6 speaks the kernel's uAPI v1, in
 * which the kernel keeps at most 16 events per requested line and drops the
 * newest ones, without a trace, when the reader is late. An earlier attempt
 * counted a burst of 1,000 pulses at 200 Hz as 986-995 in the emulated rig
 * guest: a stall of the process of 80 ms is enough. uAPI v2 (linux/gpio.h,
 * kernel 5.10 and later) lets the request ask for a larger buffer
 * (event_buffer_size; the kernel allows 16 per line of the 64 a request may
 * hold, so 1024), and numbers every event of a line (line_seqno), including
 * the ones it had to drop, so a loss shows as a gap and is never silent.
 * libgpiod 1.6 can neither set the buffer size nor report sequence numbers,
 * so events are requested here with the v2 ioctl itself. libgpiod 1.6 still
 * serves where it does: it finds the chip (by name, number, path or label),
 * checks the line, tells who holds it; and it is the fallback on a kernel
 * without v2 (the ioctl fails with ENOTTY), then with v1's 16-event queue and
 * no sequence numbers (the log says so). SENSORGATE_GPIO_UAPI=v1 in the
 * environment forces the fallback, for comparisons and tests.
 *
 * Timestamps are the kernel's, taken in the interrupt handler, from
 * CLOCK_MONOTONIC (v2 always; v1 since Linux 5.7, CLOCK_REALTIME before,
 * which is converted here). Values and edges are logical: active_low is
 * applied by the kernel. Nothing here logs; every action returns 0 or -errno.
 *
 * Ownership: a handle owns the line request (v2: the request's fd; v1: the
 * libgpiod chip and line) until release().
 */
#include "bus_gpio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <gpiod.h>
#include <linux/gpio.h>

#define EVENT_BUFFER   1024 /* events the kernel keeps for us (uAPI v2); it caps this at 16 per line x 64 */
#define READ_BATCH     64   /* events taken per read() */
#define NS_PER_S       1000000000ULL
#define REALTIME_HINT  (365ULL * 86400ULL * NS_PER_S) /* a v1 timestamp this far past the monotonic clock is CLOCK_REALTIME */

struct in_handle {
	int fd;                   /* v2: the line request; v1: libgpiod's event fd */
	bool v2;
	struct gpiod_chip *chip;  /* v1 only */
	struct gpiod_line *line;  /* v1 only */
	char how[96];
};

static int neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/*
 * Open CHIP through libgpiod and check LINE: free, and not an output.
 * 0 with *ret_chip (the caller closes it) and *ret_line, or -errno with WHY.
 */
static int find_line(const char *chip, unsigned line, struct gpiod_chip **ret_chip, struct gpiod_line **ret_line,
                     char *why, size_t whylen)
{
	struct gpiod_chip *c;
	struct gpiod_line *l;
	unsigned n;
	int r;

	errno = 0;
	c = gpiod_chip_open_lookup(chip);
	if (!c)
		return errno == ENOENT || errno == ENODEV || errno == 0 ? -ENOENT : neg_errno();
	n = gpiod_chip_num_lines(c);
	if (line >= n) {
		snprintf(why, whylen, "%s has %u line%s (0..%u)", gpiod_chip_name(c), n, n == 1 ? "" : "s",
		         n ? n - 1 : 0);
		r = -EINVAL;
		goto err;
	}
	l = gpiod_chip_get_line(c, line);
	if (!l) {
		r = neg_errno();
		goto err;
	}
	if (gpiod_line_is_used(l)) {
		const char *who = gpiod_line_consumer(l);
		bool out = gpiod_line_direction(l) == GPIOD_LINE_DIRECTION_OUTPUT;

		if (who && *who)
			snprintf(why, whylen, "in use by \"%s\" as an %s", who, out ? "output" : "input");
		else
			snprintf(why, whylen, "in use by a kernel driver or another program, as an %s",
			         out ? "output" : "input");
		r = -EBUSY;
		goto err;
	}
	if (gpiod_line_direction(l) == GPIOD_LINE_DIRECTION_OUTPUT) {
		snprintf(why, whylen,
		         "it is an output (left so by another program or the boot configuration) and may be driving "
		         "something; sensorgate does not turn an output into an input: make it an input first "
		         "(gpioget %s %u)", gpiod_chip_name(c), line);
		r = -EPERM;
		goto err;
	}
	*ret_chip = c;
	*ret_line = l;
	return 0;

err:
	gpiod_chip_close(c);
	return r;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return neg_errno();
	return 0;
}

/* The v2 request on C's character device. 0 with *ret_fd, -ENOTTY when the kernel has no v2, or -errno. */
static int request_v2(struct gpiod_chip *c, unsigned line, const struct sg_gpio_input *in, const char *consumer,
                      int *ret_fd)
{
	struct gpio_v2_line_request req;
	char path[64];
	int cfd, r;

	snprintf(path, sizeof(path), "/dev/%s", gpiod_chip_name(c));
	cfd = open(path, O_RDWR | O_CLOEXEC);
	if (cfd < 0)
		return neg_errno();
	memset(&req, 0, sizeof(req));
	req.offsets[0] = line;
	req.num_lines = 1;
	req.event_buffer_size = EVENT_BUFFER;
	snprintf(req.consumer, sizeof(req.consumer), "%s", consumer);
	req.config.flags = GPIO_V2_LINE_FLAG_INPUT;
	if (in->active_low)
		req.config.flags |= GPIO_V2_LINE_FLAG_ACTIVE_LOW;
	if (in->edges & SG_GPIO_EDGE_RISING)
		req.config.flags |= GPIO_V2_LINE_FLAG_EDGE_RISING;
	if (in->edges & SG_GPIO_EDGE_FALLING)
		req.config.flags |= GPIO_V2_LINE_FLAG_EDGE_FALLING;
	switch (in->bias) {
	case SG_GPIO_BIAS_DISABLED: req.config.flags |= GPIO_V2_LINE_FLAG_BIAS_DISABLED; break;
	case SG_GPIO_BIAS_PULL_UP: req.config.flags |= GPIO_V2_LINE_FLAG_BIAS_PULL_UP; break;
	case SG_GPIO_BIAS_PULL_DOWN: req.config.flags |= GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN; break;
	case SG_GPIO_BIAS_AS_IS: break;
	}
	r = ioctl(cfd, GPIO_V2_GET_LINE_IOCTL, &req) < 0 ? neg_errno() : 0;
	close(cfd);
	if (r < 0)
		return r;
	r = set_nonblock(req.fd);
	if (r < 0) {
		close(req.fd);
		return r;
	}
	*ret_fd = req.fd;
	return 0;
}

/* The v1 request through libgpiod 1.6. 0 (the fd in h), or -errno. */
static int request_v1(struct in_handle *h, const struct sg_gpio_input *in, const char *consumer)
{
	struct gpiod_line_request_config rc = {.consumer = consumer};

	if (in->active_low)
		rc.flags |= GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW;
	switch (in->bias) {
	case SG_GPIO_BIAS_DISABLED: rc.flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE; break;
	case SG_GPIO_BIAS_PULL_UP: rc.flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP; break;
	case SG_GPIO_BIAS_PULL_DOWN: rc.flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN; break;
	case SG_GPIO_BIAS_AS_IS: break;
	}
	rc.request_type = in->edges == SG_GPIO_EDGE_BOTH      ? GPIOD_LINE_REQUEST_EVENT_BOTH_EDGES
	                  : in->edges == SG_GPIO_EDGE_RISING ? GPIOD_LINE_REQUEST_EVENT_RISING_EDGE
	                                                     : GPIOD_LINE_REQUEST_EVENT_FALLING_EDGE;
	if (gpiod_line_request(h->line, &rc, 0) < 0)
		return neg_errno();
	h->fd = gpiod_line_event_get_fd(h->line);
	if (h->fd < 0)
		return neg_errno();
	return set_nonblock(h->fd);
}

static bool force_v1(void)
{
	const char *e = getenv("SENSORGATE_GPIO_UAPI");

	return e && strcmp(e, "v1") == 0;
}

static int k_request_input(const char *chip, unsigned line, const struct sg_gpio_input *in, const char *consumer,
                           void **ret_handle, char *why, size_t whylen)
{
	struct in_handle *h;
	struct gpiod_chip *c = NULL;
	struct gpiod_line *l = NULL;
	int r;

	if (why && whylen)
		why[0] = '\0';
	if (!in->edges || (in->edges & ~SG_GPIO_EDGE_BOTH))
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->fd = -1;
	r = find_line(chip, line, &c, &l, why, whylen);
	if (r < 0)
		goto err_free;
	r = force_v1() ? -ENOTTY : request_v2(c, line, in, consumer, &h->fd);
	if (r == 0) {
		h->v2 = true;
		snprintf(h->how, sizeof(h->how), "uAPI v2, %d-event buffer, sequence numbers", EVENT_BUFFER);
		gpiod_chip_close(c);
		*ret_handle = h;
		return 0;
	}
	if (r != -ENOTTY)
		goto err_close;
	/* No v2 in this kernel (before 5.10): libgpiod 1.6 and uAPI v1. */
	h->chip = c;
	h->line = l;
	r = request_v1(h, in, consumer);
	if (r < 0) {
		gpiod_line_release(l);
		goto err_close;
	}
	snprintf(h->how, sizeof(h->how), "libgpiod 1.6, uAPI v1: 16-event kernel queue, losses not detectable");
	*ret_handle = h;
	return 0;

err_close:
	gpiod_chip_close(c);
err_free:
	free(h);
	return r;
}

static int k_fd(void *handle)
{
	return ((struct in_handle *)handle)->fd;
}

static int read_v2(struct in_handle *h, struct sg_gpio_event *ev, size_t n)
{
	struct gpio_v2_line_event buf[READ_BATCH];
	ssize_t got;
	size_t k;

	if (n > READ_BATCH)
		n = READ_BATCH;
	got = read(h->fd, buf, n * sizeof(buf[0]));
	if (got < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : neg_errno();
	k = (size_t)got / sizeof(buf[0]);
	for (size_t i = 0; i < k; i++)
		ev[i] = (struct sg_gpio_event){
			.ts_ns = buf[i].timestamp_ns,
			.rising = buf[i].id == GPIO_V2_LINE_EVENT_RISING_EDGE,
			.seqno = buf[i].line_seqno,
		};
	return (int)k;
}

/*
 * The v1 event fd is read here too, as the kernel's records (struct gpioevent_data: a __u64
 * timestamp in ns, a __u32 id), not through gpiod_line_event_read_fd_multiple(): libgpiod
 * 1.6 hands events over in a struct gpiod_line_event holding a struct timespec, and on a
 * 32-bit target built with _TIME_BITS=64 (armhf) our timespec is 16 bytes while the
 * library's, from Debian 12's 32-bit-time_t build, is 8: it would write an array we read
 * with another stride.
 */
static int read_v1(struct in_handle *h, struct sg_gpio_event *ev, size_t n)
{
	struct gpioevent_data buf[16]; /* the kernel's v1 queue holds 16 */
	ssize_t got;
	size_t k;

	if (n > 16)
		n = 16;
	got = read(h->fd, buf, n * sizeof(buf[0]));
	if (got < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : neg_errno();
	k = (size_t)got / sizeof(buf[0]);
	for (size_t i = 0; i < k; i++) {
		uint64_t ts = buf[i].timestamp;
		uint64_t mono = mono_now_ns();

		if (ts > mono + REALTIME_HINT) { /* a kernel before 5.7: CLOCK_REALTIME */
			uint64_t real = clock_ns(CLOCK_REALTIME), ago = real > ts ? real - ts : 0;
			ts = mono > ago ? mono - ago : 0;
		}
		ev[i] = (struct sg_gpio_event){
			.ts_ns = ts,
			.rising = buf[i].id == GPIOEVENT_EVENT_RISING_EDGE,
			.seqno = 0,
		};
	}
	return (int)k;
}

static int k_read_events(void *handle, struct sg_gpio_event *ev, size_t n)
{
	struct in_handle *h = handle;

	if (!n)
		return 0;
	return h->v2 ? read_v2(h, ev, n) : read_v1(h, ev, n);
}

static int k_get(void *handle)
{
	struct in_handle *h = handle;
	struct gpio_v2_line_values vals = {.mask = 1};
	int v;

	if (!h->v2) {
		v = gpiod_line_get_value(h->line);
		return v < 0 ? neg_errno() : v;
	}
	if (ioctl(h->fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &vals) < 0)
		return neg_errno();
	return (int)(vals.bits & 1);
}

static const char *k_how(void *handle)
{
	return ((struct in_handle *)handle)->how;
}

static void k_release(void *handle)
{
	struct in_handle *h = handle;

	if (!h)
		return;
	if (h->v2) {
		close(h->fd);
	} else {
		gpiod_line_release(h->line);
		gpiod_chip_close(h->chip);
	}
	free(h);
}

const struct sg_gpio_in_ops sg_gpio_in_kernel = {
	.name = "kernel",
	.request_input = k_request_input,
	.fd = k_fd,
	.read_events = k_read_events,
	.get = k_get,
	.how = k_how,
	.now_ns = mono_now_ns,
	.release = k_release,
};
