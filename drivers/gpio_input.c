/* SPDX-License-Identifier: MIT */
/*
 * gpio_input.c — the line, its events and the debouncer shared by the GPIO
 * input drivers (see gpio_input.h).
 */
#include "gpio_input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "actuator.h" /* sg_opt_*(): option readers shared with the actuator drivers */

#define NS_PER_MS    1000000ULL
#define DRAIN_BATCH  64
#define DRAIN_ROUNDS 16 /* at most 1024 events per wake-up; the rest wakes the loop again */

static const char *const bias_names[] = {"as-is", "disabled", "pull-up", "pull-down", NULL};

int gpio_in_parse(const config_setting_t *dev, struct gpio_in_opts *o, int debounce_ms, struct sg_opt_error *err)
{
	char *chip = NULL;
	int bias = SG_GPIO_BIAS_AS_IS, r;

	memset(o, 0, sizeof(*o));
	snprintf(o->chip, sizeof(o->chip), "%s", GPIO_IN_DEFAULT_CHIP);
	o->line = -1;
	o->debounce_ms = debounce_ms < 0 ? 0 : debounce_ms;
	if ((r = sg_opt_string_dup(dev, "chip", &chip, err)) < 0)
		return r;
	if (chip) {
		const config_setting_t *s = config_setting_get_member(dev, "chip");

		if (!*chip || strlen(chip) >= sizeof(o->chip)) {
			free(chip);
			return sg_opt_fail(err, s, "\"chip\" must name a gpiochip (1..%zu characters)", sizeof(o->chip) - 1);
		}
		snprintf(o->chip, sizeof(o->chip), "%s", chip);
		free(chip);
	}
	if (!config_setting_get_member(dev, "line"))
		return sg_opt_fail(err, NULL, "needs \"line\" (the line's number on the chip: GPIO17 is line = 17 on a "
		                              "Raspberry Pi's gpiochip0)");
	if ((r = sg_opt_int(dev, "line", 0, GPIO_IN_LINE_MAX, &o->line, err)) < 0 ||
	    (r = sg_opt_bool(dev, "active_low", &o->active_low, err)) < 0 ||
	    (r = sg_opt_enum(dev, "bias", bias_names, &bias, err)) < 0)
		return r;
	o->bias = (enum sg_gpio_bias)bias;
	if (debounce_ms >= 0 &&
	    (r = sg_opt_int(dev, "debounce_ms", 0, GPIO_IN_DEBOUNCE_MAX, &o->debounce_ms, err)) < 0)
		return r;
	snprintf(o->where, sizeof(o->where), "%s line %d", o->chip, o->line);
	return 0;
}

void gpio_in_where(const struct gpio_in_opts *o, char *buf, size_t len)
{
	char key[sizeof(o->chip) + 8];

	snprintf(buf, len, "%s line %d", sg_gpio_chip_key(o->chip, key, sizeof(key)), o->line);
}

void gpio_in_describe(const struct gpio_in_opts *o, char *buf, size_t len)
{
	snprintf(buf, len, "gpio %s line %d, bias %s%s, debounce %d ms", o->chip, o->line, bias_names[o->bias],
	         o->active_low ? ", active-low" : "", o->debounce_ms);
}

int gpio_in_open(struct gpio_in *in, struct sg_dev *dev, const struct gpio_in_opts *o, unsigned edges)
{
	struct sg_gpio_input cfg = {.active_low = o->active_low, .bias = o->bias, .edges = edges};
	int r;

	dev->path = o->where;
	in->ops = dev->gpio_in ? dev->gpio_in : &sg_gpio_in_kernel;
	in->h = NULL;
	in->seqno = 0;
	in->why[0] = '\0';
	r = in->ops->request_input(o->chip, (unsigned)o->line, &cfg, GPIO_IN_CONSUMER, &in->h, in->why,
	                           sizeof(in->why));
	if (r < 0) {
		in->h = NULL;
		if (r == -ENOENT && !in->why[0])
			snprintf(in->why, sizeof(in->why), "no gpiochip \"%s\" (gpiodetect lists them)", o->chip);
		dev->why = in->why[0] ? in->why : NULL;
		return r;
	}
	dev->watch_fd = in->ops->fd(in->h);
	dev->watch_events = EPOLLIN;
	snprintf(in->note, sizeof(in->note), "edge events (%s%s%s) through %s", edges == SG_GPIO_EDGE_BOTH ? "both" : "",
	         edges == SG_GPIO_EDGE_RISING ? "rising" : "", edges == SG_GPIO_EDGE_FALLING ? "falling" : "",
	         in->ops->how(in->h));
	dev->note = in->note;
	return 0;
}

void gpio_in_close(struct gpio_in *in, struct sg_dev *dev)
{
	if (in->h)
		in->ops->release(in->h);
	in->h = NULL;
	dev->watch_fd = -1;
	dev->watch_events = 0;
}

int gpio_in_open_debounced(struct gpio_in *in, struct sg_dev *dev, const struct gpio_in_opts *o,
                           struct gpio_debounce *deb)
{
	int level, r;

	r = gpio_in_open(in, dev, o, SG_GPIO_EDGE_BOTH);
	if (r < 0)
		return r;
	level = gpio_in_level(in);
	if (level < 0) {
		gpio_in_close(in, dev);
		return level;
	}
	gpio_deb_init(deb, o->debounce_ms, level);
	return level;
}

int gpio_in_level(struct gpio_in *in)
{
	return in->h ? in->ops->get(in->h) : -ENODEV;
}

uint64_t gpio_in_now(const struct gpio_in *in)
{
	return in->ops->now_ns();
}

int64_t gpio_in_realtime_us(const struct gpio_in *in, uint64_t ts_ns)
{
	struct timespec real;
	uint64_t now = gpio_in_now(in), ago = now > ts_ns ? now - ts_ns : 0;
	int64_t r;

	clock_gettime(CLOCK_REALTIME, &real);
	r = (int64_t)real.tv_sec * 1000000 + real.tv_nsec / 1000 - (int64_t)(ago / 1000);
	return r > 0 ? r : 0;
}

int gpio_in_drain(struct gpio_in *in, struct sg_dev *dev, gpio_in_event_fn fn, void *ud)
{
	struct sg_gpio_event ev[DRAIN_BATCH];

	if (!in->h)
		return -ENODEV;
	for (int round = 0; round < DRAIN_ROUNDS; round++) {
		int n = in->ops->read_events(in->h, ev, DRAIN_BATCH);

		if (n < 0)
			return n;
		for (int i = 0; i < n; i++) {
			uint32_t lost = 0;

			/* The kernel numbers every edge of the line from 1, those it dropped too. */
			if (ev[i].seqno) {
				if (ev[i].seqno > in->seqno + 1)
					lost = ev[i].seqno - in->seqno - 1;
				in->seqno = ev[i].seqno;
			}
			if (lost) {
				in->lost += lost;
				snprintf(in->detail, sizeof(in->detail),
				         "%u edge event%s dropped by the kernel (its event buffer was full: the gateway fell "
				         "behind)%s%s; %llu so far", lost, lost == 1 ? "" : "s", in->lost_note ? "; " : "",
				         in->lost_note ? in->lost_note : "", (unsigned long long)in->lost);
				sg_dev_fail(dev, SG_FAIL_LOST, in->detail);
			}
			fn(ud, &ev[i], lost);
		}
		if (n < DRAIN_BATCH)
			break;
	}
	return 0;
}

/* ---- the debouncer ---------------------------------------------------------------------------- */

void gpio_deb_init(struct gpio_debounce *d, int debounce_ms, int level)
{
	*d = (struct gpio_debounce){
		.window_ns = (uint64_t)(debounce_ms > 0 ? debounce_ms : 0) * NS_PER_MS,
		.stable = level ? 1 : 0,
		.raw = level ? 1 : 0,
	};
}

bool gpio_deb_edge(struct gpio_debounce *d, uint64_t ts_ns, int level)
{
	level = level ? 1 : 0;
	if (!d->pending)
		d->since_ns = ts_ns; /* the first edge of an episode */
	d->raw = level;
	d->last_ns = ts_ns;
	if (d->window_ns == 0) {
		bool changed = level != d->stable;

		d->stable = level;
		d->pending = false;
		return changed;
	}
	d->pending = true;
	return false;
}

bool gpio_deb_settle(struct gpio_debounce *d, uint64_t now_ns, int level_now, uint64_t *ret_ts_ns)
{
	int level;

	if (!d->pending || now_ns < d->last_ns + d->window_ns)
		return false;
	d->pending = false;
	level = level_now >= 0 ? (level_now ? 1 : 0) : d->raw;
	d->raw = level;
	if (level == d->stable)
		return false; /* a bounce that ended where it began */
	d->stable = level;
	if (ret_ts_ns)
		*ret_ts_ns = d->since_ns;
	return true;
}

uint64_t gpio_deb_due(const struct gpio_debounce *d)
{
	return d->pending ? d->last_ns + d->window_ns : UINT64_MAX;
}

uint64_t gpio_delay_us(uint64_t at_ns, uint64_t now_ns)
{
	if (at_ns == UINT64_MAX)
		return UINT64_MAX;
	if (at_ns <= now_ns)
		return 0;
	/* rounded up: a timer that fires a hair early would find nothing due yet */
	return (at_ns - now_ns + 999) / 1000;
}
