/* SPDX-License-Identifier: MIT */
/*
 * button.c — the `button` driver: a push button on one GPIO line, its
 * presses published as events: single, double and long.
 *
 *   { name = "bell"; driver = "button"; line = 27; bias = "pull-up"; active_low = true;
 *     debounce_ms = 20; double_click_ms = 300; long_press_ms = 800; announce = "both"; }
 *
 * One field, `action`, an event (struct sg_field_info.event_types): its
 * values "single", "double" and "long" are published when the gesture is
 * recognised, never retained (a retained press would fire again for every
 * subscriber that connects), and announced to Home Assistant as an event
 * entity and/or device triggers (`announce`).
 *
 * Recognition, on debounced changes with the kernel's timestamps:
 *  - held for long_press_ms: "long", at once (while still held); the release
 *    ends it;
 *  - released sooner, and pressed again within double_click_ms of the
 *    release: "double" at the second release (a second press held long is
 *    "single" then "long");
 *  - released sooner, and not pressed again within double_click_ms:
 *    "single" when the window closes (double_click_ms = 0: at the release,
 *    without waiting, and no "double").
 * A button held when the device starts counts from its release.
 * The event's time is the kernel's timestamp of the gesture's first press.
 *
 * Keys: those of gpio_input.h (chip, line, bias, active_low, debounce_ms:
 * default 20), double_click_ms (0..5000, default 300), long_press_ms
 * (100..60000, default 800), announce ("event", "triggers" or "both":
 * default "both").
 *
 * Ownership: struct button_opts is made by button_parse_options() and owned by
 * the config; struct button_state lives in dev->state and holds the line from
 * init() to fini(). Nothing logged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actuator.h" /* sg_opt_*() */
#include "driver.h"
#include "drivers.h"
#include "gpio_input.h"

#define BUTTON_DEBOUNCE_MS 20
#define BUTTON_DOUBLE_MS   300
#define BUTTON_LONG_MS     800
#define BUTTON_IDLE_US     (3600ULL * 1000000ULL)
#define NS_PER_MS          1000000ULL

static const char *const button_actions[] = {"single", "double", "long", NULL};
static const char *const announce_names[] = {"event", "triggers", "both", NULL};

static const char *const button_option_keys[] = {
	GPIO_IN_KEYS, "debounce_ms", "double_click_ms", "long_press_ms", "announce", NULL,
};

struct button_opts {
	struct gpio_in_opts in;
	int double_ms;
	int long_ms;
	int announce;             /* index into announce_names */
};

static void button_free_options(void *opts)
{
	free(opts);
}

static int button_parse_options(const config_setting_t *dev, void **ret_opts, struct sg_opt_error *err)
{
	struct button_opts *o = calloc(1, sizeof(*o));
	int r;

	if (!o)
		return -ENOMEM;
	o->double_ms = BUTTON_DOUBLE_MS;
	o->long_ms = BUTTON_LONG_MS;
	o->announce = 2;
	if ((r = gpio_in_parse(dev, &o->in, BUTTON_DEBOUNCE_MS, err)) < 0 ||
	    (r = sg_opt_int(dev, "double_click_ms", 0, 5000, &o->double_ms, err)) < 0 ||
	    (r = sg_opt_int(dev, "long_press_ms", 100, 60000, &o->long_ms, err)) < 0 ||
	    (r = sg_opt_enum(dev, "announce", announce_names, &o->announce, err)) < 0) {
		free(o);
		return r;
	}
	if (o->in.debounce_ms >= o->long_ms) {
		r = sg_opt_fail(err, config_setting_get_member(dev, "debounce_ms"),
		                "\"debounce_ms\" (%d) must be shorter than \"long_press_ms\" (%d)", o->in.debounce_ms,
		                o->long_ms);
		free(o);
		return r;
	}
	*ret_opts = o;
	return 0;
}

static bool button_option_field(const void *opts, size_t i, char *name, size_t len, struct sg_field_info *ret)
{
	const struct button_opts *o = opts;

	if (!o || i != 0)
		return false;
	snprintf(name, len, "action");
	*ret = (struct sg_field_info){
		.name = name,
		/* the announcement: "button" is Home Assistant's event class for it */
		.device_class = "button",
		.event_types = button_actions,
		.no_event_entity = o->announce == 1,
		.no_triggers = o->announce == 0,
	};
	return true;
}

static void button_describe(const void *opts, char *buf, size_t len)
{
	const struct button_opts *o = opts;
	char line[160];

	gpio_in_describe(&o->in, line, sizeof(line));
	snprintf(buf, len, "%s; single/double/long, double-click window %d ms, long press %d ms; announced as %s",
	         line, o->double_ms, o->long_ms, o->announce == 2 ? "an event entity and device triggers"
	                                         : o->announce == 0 ? "an event entity" : "device triggers");
}

static void button_where(const void *opts, char *buf, size_t len)
{
	gpio_in_where(&((const struct button_opts *)opts)->in, buf, len);
}

/* ---- runtime ------------------------------------------------------------------------------------ */

enum click {
	IDLE = 0,
	DOWN1,     /* first press held */
	UP1,       /* released once: a second press within the window makes it a double */
	DOWN2,     /* second press held */
	HELD,      /* long fired (or held at start): waiting for the release */
};

struct button_state {
	struct gpio_in in;
	struct gpio_debounce deb;
	enum click st;
	uint64_t t_first;         /* the gesture's first press */
	uint64_t t_press;         /* the current press */
	uint64_t t_release;       /* the last release */
};

static void button_emit(struct sg_dev *dev, const char *action, uint64_t ts)
{
	struct button_state *st = dev->state;
	struct sg_reading r = {
		.field = "action",
		.kind = SG_VALUE_STRING,
		.string = action,
		.timestamp_us = gpio_in_realtime_us(&st->in, ts),
	};

	sg_dev_emit(dev, &r);
}

/* Deadlines of the click machine: a long press, or the end of the double-click window. */
static uint64_t click_due(const struct button_opts *o, const struct button_state *st)
{
	switch (st->st) {
	case DOWN1:
	case DOWN2:
		return st->t_press + (uint64_t)o->long_ms * NS_PER_MS;
	case UP1:
		return st->t_release + (uint64_t)o->double_ms * NS_PER_MS;
	default:
		return UINT64_MAX;
	}
}

/* Time has reached NOW: fire what is due. */
static void click_timer(struct sg_dev *dev, uint64_t now)
{
	const struct button_opts *o = dev->opts;
	struct button_state *st = dev->state;

	if (now < click_due(o, st))
		return;
	switch (st->st) {
	case DOWN2:
		button_emit(dev, "single", st->t_first); /* the first click was a click */
		/* fall through */
	case DOWN1:
		button_emit(dev, "long", st->t_press);
		st->st = HELD;
		break;
	case UP1:
		button_emit(dev, "single", st->t_first);
		st->st = IDLE;
		break;
	default:
		break;
	}
}

/* A debounced change at TS: PRESSED or released. */
static void click_change(struct sg_dev *dev, bool pressed, uint64_t ts)
{
	const struct button_opts *o = dev->opts;
	struct button_state *st = dev->state;

	click_timer(dev, ts); /* deadlines passed before this change (a late loop) first */
	if (pressed) {
		if (st->st == IDLE) {
			st->st = DOWN1;
			st->t_first = st->t_press = ts;
		} else if (st->st == UP1) {
			st->st = DOWN2;
			st->t_press = ts;
		}
		return;
	}
	st->t_release = ts;
	switch (st->st) {
	case DOWN1:
		if (o->double_ms == 0) {
			button_emit(dev, "single", st->t_first);
			st->st = IDLE;
		} else {
			st->st = UP1;
		}
		break;
	case DOWN2:
		button_emit(dev, "double", st->t_first);
		st->st = IDLE;
		break;
	case HELD:
		st->st = IDLE;
		break;
	default:
		break;
	}
}

static int button_init(struct sg_dev *dev)
{
	const struct button_opts *o = dev->opts;
	struct button_state *st = dev->state;
	int level = gpio_in_open_debounced(&st->in, dev, &o->in, &st->deb);

	if (level < 0)
		return level;
	st->st = level ? HELD : IDLE; /* held at start: counts from its release */
	return 0;
}

static void button_fini(struct sg_dev *dev)
{
	struct button_state *st = dev->state;

	gpio_in_close(&st->in, dev);
}

static void button_on_event(void *ud, const struct sg_gpio_event *ev, uint32_t lost_before)
{
	struct sg_dev *dev = ud;
	struct button_state *st = dev->state;
	uint64_t since;

	(void)lost_before;
	/* a change that has settled before this edge came in (a late loop) is taken first */
	if (gpio_deb_due(&st->deb) <= ev->ts_ns && gpio_deb_settle(&st->deb, ev->ts_ns, -1, &since))
		click_change(dev, st->deb.stable, since);
	if (gpio_deb_edge(&st->deb, ev->ts_ns, ev->rising ? 1 : 0))
		click_change(dev, st->deb.stable, ev->ts_ns);
}

static uint64_t button_next(const struct button_opts *o, struct button_state *st)
{
	uint64_t at = gpio_deb_due(&st->deb), c = click_due(o, st), d;

	if (c < at)
		at = c;
	d = gpio_delay_us(at, gpio_in_now(&st->in));
	return d == UINT64_MAX ? BUTTON_IDLE_US : d;
}

static int button_io(struct sg_dev *dev, uint32_t revents, uint64_t *ret_delay_us)
{
	const struct button_opts *o = dev->opts;
	struct button_state *st = dev->state;
	int r;

	(void)revents;
	r = gpio_in_drain(&st->in, dev, button_on_event, dev);
	if (r < 0)
		return r;
	*ret_delay_us = button_next(o, st);
	return 0;
}

static int button_poll(struct sg_dev *dev, uint64_t *ret_delay_us)
{
	const struct button_opts *o = dev->opts;
	struct button_state *st = dev->state;
	uint64_t now = gpio_in_now(&st->in), since, due = gpio_deb_due(&st->deb);

	/* a settled change first: it fires the deadlines that passed before it began */
	if (due <= now && gpio_deb_settle(&st->deb, now, gpio_in_level(&st->in), &since))
		click_change(dev, st->deb.stable, since);
	if (!st->deb.pending)
		click_timer(dev, now);
	*ret_delay_us = button_next(o, st);
	return 0;
}

const struct sg_driver sg_driver_button = {
	.name = "button",
	.description = "a push button on a GPIO line: single, double and long presses as events",
	.bus = SG_BUS_NONE,
	.default_baud = 0,
	.default_interval_s = 0,
	.fields = NULL, /* one field, "action", an event */
	.option_keys = button_option_keys,
	.parse_options = button_parse_options,
	.free_options = button_free_options,
	.state_size = sizeof(struct button_state),
	.init = button_init,
	.fini = button_fini,
	.feed = NULL,
	.reset = NULL,
	.poll = button_poll,
	.io = button_io,
	.option_field = button_option_field,
	.describe = button_describe,
	.where = button_where,
	.refresh = NULL,
};
