/* SPDX-License-Identifier: MIT */
/*
 * counter.c — the `counter` driver: pulses on one GPIO line, counted for good
 * (the S0 output of an electricity meter, the reed contact of a water or gas
 * meter, a flow sensor).
 *
 *   { name = "meter"; driver = "counter"; line = 22; bias = "pull-up"; active_low = true;
 *     edge = "rising"; min_pulse_ms = 20; per_unit = 1000; unit = "kWh"; rate_unit = "kW";
 *     device_class = "energy"; interval = 10; save_pulses = 10; save_interval = 1.0; }
 *
 * Fields: `total` (pulses / per_unit, in `unit`: a meter reading that only
 * grows) and `rate` (pulses per second, times the seconds of `rate_per`,
 * divided by rate_per_unit: 1000 imp/kWh and rate_per "h" make kW).
 *
 * Counting: only the counted edge is requested from the kernel (`edge`:
 * "rising" = the line becoming active, "falling", or "both"), so every event
 * the kernel numbers is a pulse: events it had to drop (a gap in its
 * sequence numbers) are counted from the gap, and logged. min_pulse_ms is
 * the shortest a pulse and the pause after it can be: an edge closer than
 * that to the last one counted (twice that with one edge requested: a whole
 * period lies between two) is bounce and not counted.
 *
 * Never backwards, never lost in silence: the count is saved in the spool's
 * file (sg_dev_value_save(): fsync'ed) when save_pulses pulses are unsaved
 * or the oldest unsaved one is save_interval old, whichever comes first, at
 * every publication and at a clean stop; the start reads it back. Only a
 * saved total is ever published, so a total published before a crash is
 * never above the one published after it. A crash (kill -9, power cut)
 * loses the pulses counted since the last save: fewer than save_pulses, none
 * older than save_interval (README, "Counters that survive a crash"). While
 * the file cannot be written the count goes on in memory, the published
 * total waits, and the failure is reported once.
 *
 * Publication: the total and the rate every `interval` (default 10 s), each
 * when it changed, and both at start and at every connection to the broker.
 * The rate is the pulses since the last publication over the time between
 * their kernel timestamps (the first counted edge after the last
 * publication's last one); without a pulse since, it falls as 1 / (time since
 * the last pulse) would have it, and is 0 after rate_timeout.
 *
 * Ownership: struct counter_opts is made by counter_parse_options() and owned
 * by the config; struct counter_state lives in dev->state and holds the line
 * from init() to fini(). Nothing logged: failures go through sg_dev_fail().
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actuator.h" /* sg_opt_*() */
#include "driver.h"
#include "drivers.h"
#include "gpio_input.h"

#define COUNTER_KEY              "pulses"   /* the durable value, per device */
#define COUNTER_INTERVAL_S       10.0
#define COUNTER_SAVE_PULSES      10
#define COUNTER_SAVE_INTERVAL_S  1.0
#define COUNTER_RATE_TIMEOUT_S   300.0
#define COUNTER_UNIT_MAX         24
#define NS_PER_S                 1e9

static const char *const edge_names[] = {"rising", "falling", "both", NULL};
static const unsigned edge_bits[] = {SG_GPIO_EDGE_RISING, SG_GPIO_EDGE_FALLING, SG_GPIO_EDGE_BOTH};
static const char *const per_names[] = {"s", "min", "h", NULL};
static const double per_seconds[] = {1, 60, 3600};
/* Home Assistant sensor classes a meter reading (state_class total_increasing) can have. */
static const char *const total_classes[] = {"energy", "gas", "water", "volume", NULL};

static const char *const counter_option_keys[] = {
	GPIO_IN_KEYS, "edge", "min_pulse_ms", "per_unit", "unit", "device_class", "rate_unit", "rate_per",
	"rate_per_unit", "rate_timeout", "save_pulses", "save_interval", NULL,
};

struct counter_opts {
	struct gpio_in_opts in;
	int edge;                 /* index into edge_names */
	int min_pulse_ms;
	double per_unit;
	char unit[COUNTER_UNIT_MAX + 1];       /* "" = none */
	char rate_unit[COUNTER_UNIT_MAX + 8];
	const char *device_class; /* a string of total_classes, or NULL */
	int rate_per;             /* index into per_names */
	double rate_per_unit;
	double rate_timeout_s;
	int save_pulses;
	double save_interval_s;
};

static void counter_free_options(void *opts)
{
	free(opts);
}

/* KEY, 1..LEN - 1 characters, copied into BUF. */
static int opt_unit(const config_setting_t *dev, const char *key, char *buf, size_t len, struct sg_opt_error *err)
{
	const char *v = NULL;
	int r = sg_opt_string_len(dev, key, len - 1, &v, err);

	if (r == 0 && v)
		snprintf(buf, len, "%s", v);
	return r;
}

/* "kWh" per hour is "kW"; anything else "<unit>/<per>" ("m³/h", "L/min"), or pulses. */
static void default_rate_unit(struct counter_opts *o)
{
	size_t n = strlen(o->unit);

	if (!n)
		snprintf(o->rate_unit, sizeof(o->rate_unit), "pulses/%s", per_names[o->rate_per]);
	else if (o->rate_per == 2 && n >= 2 && strcmp(o->unit + n - 2, "Wh") == 0)
		snprintf(o->rate_unit, sizeof(o->rate_unit), "%.*s", (int)(n - 1), o->unit);
	else
		snprintf(o->rate_unit, sizeof(o->rate_unit), "%s/%s", o->unit, per_names[o->rate_per]);
}

static int counter_parse_options(const config_setting_t *dev, void **ret_opts, struct sg_opt_error *err)
{
	struct counter_opts *o = calloc(1, sizeof(*o));
	int cls = -1, r;

	if (!o)
		return -ENOMEM;
	o->edge = 0;
	o->per_unit = 1;
	o->rate_per = 2;
	o->rate_per_unit = -1;
	o->rate_timeout_s = COUNTER_RATE_TIMEOUT_S;
	o->save_pulses = COUNTER_SAVE_PULSES;
	o->save_interval_s = COUNTER_SAVE_INTERVAL_S;
	if ((r = gpio_in_parse(dev, &o->in, -1, err)) < 0 ||
	    (r = sg_opt_enum(dev, "edge", edge_names, &o->edge, err)) < 0 ||
	    (r = sg_opt_int(dev, "min_pulse_ms", 0, 10000, &o->min_pulse_ms, err)) < 0 ||
	    (r = sg_opt_double(dev, "per_unit", 1e-9, 1e12, &o->per_unit, err)) < 0 ||
	    (r = opt_unit(dev, "unit", o->unit, COUNTER_UNIT_MAX + 1, err)) < 0 ||
	    (r = sg_opt_enum(dev, "device_class", total_classes, &cls, err)) < 0 ||
	    (r = sg_opt_enum(dev, "rate_per", per_names, &o->rate_per, err)) < 0 ||
	    (r = opt_unit(dev, "rate_unit", o->rate_unit, sizeof(o->rate_unit), err)) < 0 ||
	    (r = sg_opt_double(dev, "rate_per_unit", 1e-9, 1e12, &o->rate_per_unit, err)) < 0 ||
	    (r = sg_opt_double(dev, "rate_timeout", 1, 86400, &o->rate_timeout_s, err)) < 0 ||
	    (r = sg_opt_int(dev, "save_pulses", 1, 1000000, &o->save_pulses, err)) < 0 ||
	    (r = sg_opt_double(dev, "save_interval", 0.1, 3600, &o->save_interval_s, err)) < 0) {
		free(o);
		return r;
	}
	if (o->rate_per_unit < 0)
		o->rate_per_unit = o->per_unit;
	if (!o->rate_unit[0])
		default_rate_unit(o);
	o->device_class = cls >= 0 ? total_classes[cls] : NULL;
	o->in.debounce_ms = 0;
	*ret_opts = o;
	return 0;
}

static bool counter_option_field(const void *opts, size_t i, char *name, size_t len, struct sg_field_info *ret)
{
	const struct counter_opts *o = opts;

	if (!o || i > 1)
		return false;
	snprintf(name, len, "%s", i == 0 ? "total" : "rate");
	if (i == 0)
		*ret = (struct sg_field_info){.name = name, .unit = o->unit[0] ? o->unit : NULL,
		                              .device_class = o->device_class, .state_class = "total_increasing"};
	else
		*ret = (struct sg_field_info){.name = name, .unit = o->rate_unit, .state_class = "measurement"};
	return true;
}

static void counter_describe(const void *opts, char *buf, size_t len)
{
	const struct counter_opts *o = opts;
	char line[160], width[40] = "";

	gpio_in_describe(&o->in, line, sizeof(line));
	*strstr(line, ", debounce") = '\0'; /* a counter filters by min_pulse_ms instead */
	if (o->min_pulse_ms)
		snprintf(width, sizeof(width), ", min pulse %d ms", o->min_pulse_ms);
	snprintf(buf, len, "%s; counts %s edges%s; %g pulses per %s; rate in %s; saved every %d pulses or %g s", line,
	         edge_names[o->edge], width, o->per_unit, o->unit[0] ? o->unit : "unit", o->rate_unit, o->save_pulses,
	         o->save_interval_s);
}

static void counter_where(const void *opts, char *buf, size_t len)
{
	gpio_in_where(&((const struct counter_opts *)opts)->in, buf, len);
}

/* ---- runtime ------------------------------------------------------------------------------------ */

struct counter_state {
	struct gpio_in in;
	int64_t pulses;           /* counted */
	int64_t saved;            /* on disk; the total published is this one */
	uint64_t unsaved_since;   /* the clock when pulses first exceeded saved; 0 = all saved */
	uint64_t save_retry_at;   /* after a failed save: not before this */
	int save_err;             /* the last save's error (0 = it worked) */
	uint64_t last_edge;       /* the last counted edge's timestamp, 0 = none yet */
	uint64_t ref_edge;        /* the rate's window starts at this edge, 0 = none yet */
	int64_t ref_pulses;       /* pulses at ref_edge */
	double rate;              /* pulses/s, as last computed */
	bool have_published;      /* total and rate were published once since init() */
	int64_t pub_total;        /* what was published */
	double pub_rate;
	uint64_t next_publish;
	uint64_t filtered;        /* edges too close to count (bounce) */
	char why[200];
};

static uint64_t sec_ns(double s)
{
	return (uint64_t)(s * NS_PER_S);
}

static double rate_value(const struct counter_opts *o, double pps)
{
	return pps * per_seconds[o->rate_per] / o->rate_per_unit;
}

static int counter_save(struct sg_dev *dev, uint64_t now)
{
	const struct counter_opts *o = dev->opts;
	struct counter_state *st = dev->state;
	int64_t n = st->pulses;
	int r;

	if (n == st->saved)
		return 0;
	r = sg_dev_value_save(dev, COUNTER_KEY, n);
	if (r < 0) {
		st->save_retry_at = now + sec_ns(o->save_interval_s);
		if (r != st->save_err) { /* once per kind of trouble */
			snprintf(st->why, sizeof(st->why), "cannot save the total (%s): counting on in memory, %lld "
			         "pulses not saved yet; the published total waits for them",
			         strerror(-r), (long long)(n - st->saved));
			sg_dev_fail(dev, SG_FAIL_IO, st->why);
		}
		st->save_err = r;
		return r;
	}
	st->saved = n;
	st->unsaved_since = 0;
	st->save_err = 0;
	return 0;
}

static void emit_total(struct sg_dev *dev)
{
	const struct counter_opts *o = dev->opts;
	struct counter_state *st = dev->state;

	sg_dev_emit_number(dev, "total", (double)st->saved / o->per_unit, o->unit[0] ? o->unit : NULL);
	st->pub_total = st->saved;
}

static void emit_rate(struct sg_dev *dev)
{
	const struct counter_opts *o = dev->opts;
	struct counter_state *st = dev->state;
	double v = rate_value(o, st->rate);

	sg_dev_emit_number(dev, "rate", v, o->rate_unit);
	st->pub_rate = st->rate;
}

/* The rate over the pulses since the last computation (see the top of the file). */
static void update_rate(const struct counter_opts *o, struct counter_state *st, uint64_t now)
{
	if (st->last_edge && st->ref_edge && st->last_edge > st->ref_edge && st->pulses > st->ref_pulses) {
		st->rate = (double)(st->pulses - st->ref_pulses) / ((double)(st->last_edge - st->ref_edge) / NS_PER_S);
		st->ref_edge = st->last_edge;
		st->ref_pulses = st->pulses;
		return;
	}
	if (!st->last_edge || now - st->last_edge >= sec_ns(o->rate_timeout_s)) {
		st->rate = 0;
		return;
	}
	/* no pulse since: the rate is at most one pulse over the time since the last */
	if (now > st->last_edge) {
		double bound = NS_PER_S / (double)(now - st->last_edge);
		if (bound < st->rate)
			st->rate = bound;
	}
}

static void counter_publish(struct sg_dev *dev, uint64_t now)
{
	const struct counter_opts *o = dev->opts;
	struct counter_state *st = dev->state;

	if (st->pulses != st->saved && now >= st->save_retry_at)
		counter_save(dev, now);
	update_rate(o, st, now);
	if (!st->have_published || st->saved != st->pub_total)
		emit_total(dev);
	if (!st->have_published || st->rate != st->pub_rate)
		emit_rate(dev);
	st->have_published = true;
}

static int counter_init(struct sg_dev *dev)
{
	const struct counter_opts *o = dev->opts;
	struct counter_state *st = dev->state;
	int64_t v = 0;
	int r;

	r = sg_dev_value_load(dev, COUNTER_KEY, &v);
	if (r < 0 && r != -ENOENT) {
		dev->path = o->in.where;
		snprintf(st->why, sizeof(st->why), "%s",
		         r == -EAGAIN   ? "the spool file that keeps its total is not open yet (see the spool's messages)"
		         : r == -ENOSYS ? "there is no store for its total"
		                        : "cannot read its saved total from the spool file");
		dev->why = st->why;
		return r == -ENOSYS ? -ENOTSUP : r;
	}
	if (v < 0)
		v = 0;
	st->pulses = st->saved = v;
	st->in.lost_note = "counted from the gap in the kernel's numbering";
	r = gpio_in_open(&st->in, dev, &o->in, edge_bits[o->edge]);
	if (r < 0)
		return r;
	st->next_publish = gpio_in_now(&st->in); /* the first poll() publishes what was saved */
	return 0;
}

static void counter_fini(struct sg_dev *dev)
{
	struct counter_state *st = dev->state;

	if (st->in.h)
		counter_save(dev, gpio_in_now(&st->in)); /* a clean stop loses nothing */
	gpio_in_close(&st->in, dev);
}

static void counter_on_event(void *ud, const struct sg_gpio_event *ev, uint32_t lost_before)
{
	struct sg_dev *dev = ud;
	const struct counter_opts *o = dev->opts;
	struct counter_state *st = dev->state;
	uint64_t hold = (uint64_t)o->min_pulse_ms * 1000000ULL * (edge_bits[o->edge] == SG_GPIO_EDGE_BOTH ? 1 : 2);

	if (lost_before) /* every event requested is a pulse: the ones the kernel dropped too */
		st->pulses += lost_before;
	else if (hold && st->last_edge && ev->ts_ns < st->last_edge + hold) {
		st->filtered++;
		return;
	}
	st->pulses++;
	st->last_edge = ev->ts_ns;
	if (!st->ref_edge) {
		st->ref_edge = ev->ts_ns;
		st->ref_pulses = st->pulses;
	}
}

/* When poll() is next needed: the save deadline or the next publication. */
static uint64_t counter_next(const struct counter_opts *o, struct counter_state *st, uint64_t now)
{
	uint64_t at = st->next_publish;

	if (st->pulses != st->saved && st->unsaved_since) {
		uint64_t save_at = st->unsaved_since + sec_ns(o->save_interval_s);

		if (save_at < st->save_retry_at)
			save_at = st->save_retry_at;
		if (save_at < at)
			at = save_at;
	}
	return gpio_delay_us(at, now);
}

static int counter_io(struct sg_dev *dev, uint32_t revents, uint64_t *ret_delay_us)
{
	const struct counter_opts *o = dev->opts;
	struct counter_state *st = dev->state;
	int64_t before = st->pulses;
	uint64_t now;
	int r;

	(void)revents;
	r = gpio_in_drain(&st->in, dev, counter_on_event, dev);
	if (r < 0)
		return r;
	now = gpio_in_now(&st->in);
	if (st->pulses != before && !st->unsaved_since)
		st->unsaved_since = now;
	if (st->pulses - st->saved >= o->save_pulses && now >= st->save_retry_at)
		counter_save(dev, now);
	*ret_delay_us = counter_next(o, st, now);
	return 0;
}

static int counter_poll(struct sg_dev *dev, uint64_t *ret_delay_us)
{
	const struct counter_opts *o = dev->opts;
	struct counter_state *st = dev->state;
	uint64_t now = gpio_in_now(&st->in), every = sec_ns(dev->interval_s > 0 ? dev->interval_s : COUNTER_INTERVAL_S);

	if (st->pulses != st->saved && st->unsaved_since && now >= st->unsaved_since + sec_ns(o->save_interval_s) &&
	    now >= st->save_retry_at)
		counter_save(dev, now);
	if (now >= st->next_publish) {
		counter_publish(dev, now);
		st->next_publish += every;
		if (st->next_publish <= now)
			st->next_publish = now + every;
	}
	*ret_delay_us = counter_next(o, st, now);
	return 0;
}

static void counter_refresh(struct sg_dev *dev)
{
	struct counter_state *st = dev->state;

	if (!st->have_published)
		return; /* the first publication is still to come */
	emit_total(dev);
	emit_rate(dev);
}

const struct sg_driver sg_driver_counter = {
	.name = "counter",
	.description = "pulses on a GPIO line (S0 meters, water and gas meters, flow sensors): total and rate, "
	               "saved so a crash never takes the total back",
	.bus = SG_BUS_NONE,
	.default_baud = 0,
	.default_interval_s = COUNTER_INTERVAL_S,
	.fields = NULL, /* total and rate, whose units are options */
	.option_keys = counter_option_keys,
	.parse_options = counter_parse_options,
	.free_options = counter_free_options,
	.state_size = sizeof(struct counter_state),
	.init = counter_init,
	.fini = counter_fini,
	.feed = NULL,
	.reset = NULL,
	.poll = counter_poll,
	.io = counter_io,
	.option_field = counter_option_field,
	.describe = counter_describe,
	.where = counter_where,
	.refresh = counter_refresh,
};
