/* SPDX-License-Identifier: MIT */
/*
 * contact.c — the `contact` driver: a two-state input on one GPIO line (a
 * door or window reed contact, a PIR motion sensor's output, a leak or float
 * switch).
 *
 *   { name = "frontdoor"; driver = "contact"; chip = "gpiochip0"; line = 17;
 *     bias = "pull-up"; active_low = true; debounce_ms = 20;
 *     payload_on = "ON"; payload_off = "OFF"; device_class = "door"; }
 *
 * One field, `state`: payload_on while the line is active, payload_off while
 * it is not (active_low turns a contact that pulls the pin to ground into
 * "active"). It is published when the device starts (the level read then), on
 * every debounced change (with the kernel's timestamp of the first edge as
 * the reading's time) and again at every connection to the broker, so a
 * broker that lost its retained messages learns the state at once. Retained
 * like any reading unless the device says otherwise. device_class is what
 * Home Assistant's binary_sensor shows (door: open/closed, motion:
 * detected/clear, moisture: wet/dry ...).
 *
 * Keys: those of gpio_input.h (chip, line, bias, active_low, debounce_ms:
 * default 20), payload_on, payload_off, device_class.
 *
 * Ownership: struct contact_opts is made by contact_parse_options() and owned
 * by the config; struct contact_state lives in dev->state and holds the line
 * from init() to fini(). Nothing logged: failures go through sg_dev_fail().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actuator.h" /* sg_opt_*() */
#include "driver.h"
#include "drivers.h"
#include "gpio_input.h"

#define CONTACT_DEBOUNCE_MS 20
#define CONTACT_PAYLOAD_MAX 64
#define CONTACT_IDLE_US     (3600ULL * 1000000ULL) /* nothing to time: look again in an hour */

/* Home Assistant's binary_sensor device classes (developers.home-assistant.io, BinarySensorDeviceClass). */
static const char *const binary_classes[] = {
	"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door", "garage_door", "gas",
	"heat", "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug", "power",
	"presence", "problem", "running", "safety", "smoke", "sound", "tamper", "update", "vibration", "window",
	NULL,
};

static const char *const contact_option_keys[] = {
	GPIO_IN_KEYS, "debounce_ms", "payload_on", "payload_off", "device_class", NULL,
};

struct contact_opts {
	struct gpio_in_opts in;
	char *payload_on;
	char *payload_off;
	char *device_class;       /* NULL: none */
};

static void contact_free_options(void *opts)
{
	struct contact_opts *o = opts;

	if (!o)
		return;
	free(o->payload_on);
	free(o->payload_off);
	free(o->device_class);
	free(o);
}

/* KEY, 1..CONTACT_PAYLOAD_MAX characters, copied into *out (the old value freed). */
static int opt_payload(const config_setting_t *dev, const char *key, char **out, struct sg_opt_error *err)
{
	const char *v = NULL;
	char *c;
	int r = sg_opt_string_len(dev, key, CONTACT_PAYLOAD_MAX, &v, err);

	if (r < 0 || !v)
		return r;
	if (!(c = strdup(v)))
		return -ENOMEM;
	free(*out);
	*out = c;
	return 0;
}

static int contact_parse_options(const config_setting_t *dev, void **ret_opts, struct sg_opt_error *err)
{
	struct contact_opts *o = calloc(1, sizeof(*o));
	int cls = -1, r;

	if (!o)
		return -ENOMEM;
	o->payload_on = strdup("ON");
	o->payload_off = strdup("OFF");
	if (!o->payload_on || !o->payload_off) {
		r = -ENOMEM;
		goto err;
	}
	if ((r = gpio_in_parse(dev, &o->in, CONTACT_DEBOUNCE_MS, err)) < 0 ||
	    (r = opt_payload(dev, "payload_on", &o->payload_on, err)) < 0 ||
	    (r = opt_payload(dev, "payload_off", &o->payload_off, err)) < 0 ||
	    (r = sg_opt_enum(dev, "device_class", binary_classes, &cls, err)) < 0)
		goto err;
	if (strcmp(o->payload_on, o->payload_off) == 0) {
		r = sg_opt_fail(err, config_setting_get_member(dev, "payload_off"),
		                "\"payload_on\" and \"payload_off\" must differ");
		goto err;
	}
	if (cls >= 0 && !(o->device_class = strdup(binary_classes[cls]))) {
		r = -ENOMEM;
		goto err;
	}
	*ret_opts = o;
	return 0;

err:
	contact_free_options(o);
	return r;
}

static bool contact_option_field(const void *opts, size_t i, char *name, size_t len, struct sg_field_info *ret)
{
	const struct contact_opts *o = opts;

	if (i != 0 || !o)
		return false;
	snprintf(name, len, "state");
	*ret = (struct sg_field_info){
		.name = name,
		.device_class = o->device_class,
		.binary = true,
		.payload_on = o->payload_on,
		.payload_off = o->payload_off,
	};
	return true;
}

static void contact_describe(const void *opts, char *buf, size_t len)
{
	const struct contact_opts *o = opts;
	char line[160];

	gpio_in_describe(&o->in, line, sizeof(line));
	snprintf(buf, len, "%s; state %s/%s%s%s", line, o->payload_on, o->payload_off,
	         o->device_class ? ", device_class " : "", o->device_class ? o->device_class : "");
}

static void contact_where(const void *opts, char *buf, size_t len)
{
	gpio_in_where(&((const struct contact_opts *)opts)->in, buf, len);
}

/* ---- runtime ------------------------------------------------------------------------------------ */

struct contact_state {
	struct gpio_in in;
	struct gpio_debounce deb;
	bool announce;            /* the level read at start is still to be published */
};

static void contact_emit(struct sg_dev *dev, int level, uint64_t ts_ns)
{
	const struct contact_opts *o = dev->opts;
	struct contact_state *st = dev->state;
	struct sg_reading r = {
		.field = "state",
		.kind = SG_VALUE_STRING,
		.string = level ? o->payload_on : o->payload_off,
		.timestamp_us = ts_ns ? gpio_in_realtime_us(&st->in, ts_ns) : 0,
	};

	sg_dev_emit(dev, &r);
}

static int contact_init(struct sg_dev *dev)
{
	const struct contact_opts *o = dev->opts;
	struct contact_state *st = dev->state;
	int level = gpio_in_open_debounced(&st->in, dev, &o->in, &st->deb);

	if (level < 0)
		return level;
	st->announce = true; /* by poll(), which the gateway calls at once */
	return 0;
}

static void contact_fini(struct sg_dev *dev)
{
	struct contact_state *st = dev->state;

	gpio_in_close(&st->in, dev);
}

static void contact_on_event(void *ud, const struct sg_gpio_event *ev, uint32_t lost_before)
{
	struct sg_dev *dev = ud;
	struct contact_state *st = dev->state;

	(void)lost_before;
	if (gpio_deb_edge(&st->deb, ev->ts_ns, ev->rising ? 1 : 0))
		contact_emit(dev, st->deb.stable, ev->ts_ns);
}

/* The next timer: when the debouncer has something to take. */
static uint64_t contact_next(struct contact_state *st)
{
	uint64_t d = gpio_delay_us(gpio_deb_due(&st->deb), gpio_in_now(&st->in));

	return d == UINT64_MAX ? CONTACT_IDLE_US : d;
}

static int contact_io(struct sg_dev *dev, uint32_t revents, uint64_t *ret_delay_us)
{
	struct contact_state *st = dev->state;
	uint64_t lost = st->in.lost;
	int r;

	(void)revents;
	r = gpio_in_drain(&st->in, dev, contact_on_event, dev);
	if (r < 0)
		return r;
	/* Dropped edges leave the last one seen uncertain: the line itself says where it is. */
	if (st->in.lost != lost && !st->deb.pending) {
		int level = gpio_in_level(&st->in);

		if (level >= 0 && gpio_deb_edge(&st->deb, gpio_in_now(&st->in), level))
			contact_emit(dev, level, 0);
	}
	if (st->deb.pending)
		*ret_delay_us = contact_next(st);
	return 0;
}

static int contact_poll(struct sg_dev *dev, uint64_t *ret_delay_us)
{
	struct contact_state *st = dev->state;
	uint64_t now = gpio_in_now(&st->in), since;

	if (st->announce) {
		st->announce = false;
		contact_emit(dev, st->deb.stable, 0);
	}
	if (gpio_deb_due(&st->deb) <= now && gpio_deb_settle(&st->deb, now, gpio_in_level(&st->in), &since))
		contact_emit(dev, st->deb.stable, since);
	*ret_delay_us = contact_next(st);
	return 0;
}

static void contact_refresh(struct sg_dev *dev)
{
	struct contact_state *st = dev->state;

	if (!st->announce)
		contact_emit(dev, st->deb.stable, 0);
}

const struct sg_driver sg_driver_contact = {
	.name = "contact",
	.description = "a two-state GPIO input (door/window contact, PIR, leak switch): ON/OFF, debounced",
	.bus = SG_BUS_NONE,
	.default_baud = 0,
	.default_interval_s = 0,
	.fields = NULL, /* one field, "state", whose payloads and class are options */
	.option_keys = contact_option_keys,
	.parse_options = contact_parse_options,
	.free_options = contact_free_options,
	.state_size = sizeof(struct contact_state),
	.init = contact_init,
	.fini = contact_fini,
	.feed = NULL,
	.reset = NULL,
	.poll = contact_poll,
	.io = contact_io,
	.option_field = contact_option_field,
	.describe = contact_describe,
	.where = contact_where,
	.refresh = contact_refresh,
};
