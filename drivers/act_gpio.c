/* SPDX-License-Identifier: MIT */
/*
 * act_gpio.c — the `gpio` actuator driver: a relay (or LED, or contactor
 * coil driver) on one GPIO line.
 *
 *   { name = "hall-light"; driver = "gpio"; chip = "gpiochip0"; line = 17;
 *     active_low = false; initial = "OFF"; safe = "OFF"; }
 *
 * The line is requested as an output, consumer "sensorgate", at the
 * `initial` level (or the level it has, without `initial`) and stays
 * requested while sensorgate runs, so nothing else can drive it. Setting it
 * is one ioctl and completes at once; the level is read back to confirm the
 * state reported. Pulses and automatic switch-off are timers in the router,
 * not here. The GPIO access goes through act->buses->gpio (libgpiod unless a
 * test substitutes a fake).
 *
 * Keys of its own: chip (default "gpiochip0"), line (required, 0..65535),
 * active_low. Type switch only. pulse_ms and max_on_s are the router's.
 *
 * Ownership: struct gpio_opts is made by gpio_parse_options() and owned by
 * the config (gpio_free_options()). struct gpio_state lives in act->state
 * (owned by the router); it holds the line handle from request_output()
 * until close().
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actuator.h"
#include "bus_gpio.h"

#define GPIO_CONSUMER     "sensorgate"
#define GPIO_DEFAULT_CHIP "gpiochip0"
#define GPIO_LINE_MAX     65535

struct gpio_opts {
	char *chip;
	int line;
	bool active_low;
};

static const char *const gpio_option_keys[] = {"chip", "line", "active_low", NULL};

static void gpio_free_options(void *opts)
{
	struct gpio_opts *o = opts;

	if (!o)
		return;
	free(o->chip);
	free(o);
}

static int gpio_parse_options(const config_setting_t *g, const struct sg_act_common *common, void **ret_opts,
                              struct sg_opt_error *err)
{
	struct gpio_opts *o = calloc(1, sizeof(*o));
	int r;

	if (!o)
		return -ENOMEM;
	o->chip = strdup(GPIO_DEFAULT_CHIP);
	if (!o->chip) {
		r = -ENOMEM;
		goto err_free;
	}
	if ((r = sg_opt_string_dup(g, "chip", &o->chip, err)) < 0 ||
	    (r = sg_opt_require(g, "line", err, "actuator \"%.80s\"", common->name)) < 0 ||
	    (r = sg_opt_int(g, "line", 0, GPIO_LINE_MAX, &o->line, err)) < 0 ||
	    (r = sg_opt_bool(g, "active_low", &o->active_low, err)) < 0)
		goto err_free;
	if (!*o->chip) {
		r = sg_opt_fail(err, config_setting_get_member(g, "chip"),
		                    "actuator \"%.80s\": \"chip\" must not be empty", common->name);
		goto err_free;
	}
	*ret_opts = o;
	return 0;

err_free:
	gpio_free_options(o);
	return r;
}

static void gpio_describe(const void *opts, char *buf, size_t len)
{
	const struct gpio_opts *o = opts;

	snprintf(buf, len, "gpio %s line %d%s", o->chip, o->line, o->active_low ? " active-low" : "");
}

/* The chip as sg_gpio_chip_key() spells it ("0" and "/dev/gpiochip0" are "gpiochip0"), so that
 * --check finds two users of one line however each names the chip. */
static void gpio_where(const void *opts, char *buf, size_t len)
{
	const struct gpio_opts *o = opts;
	char key[128];

	snprintf(buf, len, "%s line %d", sg_gpio_chip_key(o->chip, key, sizeof(key)), o->line);
}

struct gpio_state {
	const struct sg_gpio_ops *ops;
	void *line;
};

static int gpio_open(struct sg_act *a)
{
	struct gpio_state *st = a->state;
	const struct gpio_opts *o = a->params->opts;

	st->ops = a->buses && a->buses->gpio ? a->buses->gpio : &sg_gpio_libgpiod;
	a->fd = -1;
	a->events = 0;
	a->wake_us = UINT64_MAX;
	return st->ops->request_output(o->chip, (unsigned)o->line, o->active_low, GPIO_CONSUMER, a->params->initial,
	                               &st->line);
}

static void gpio_close(struct sg_act *a)
{
	struct gpio_state *st = a->state;

	if (st->line)
		st->ops->release(st->line);
	st->line = NULL;
}

static int gpio_read_back(struct sg_act *a)
{
	struct gpio_state *st = a->state;

	if (!st->line)
		return -ENODEV;
	return st->ops->get(st->line);
}

static int gpio_set(struct sg_act *a, const struct sg_act_value *v, uint64_t now_us)
{
	struct gpio_state *st = a->state;
	int r;
	(void)now_us;

	if (!st->line)
		return -ENODEV;
	r = st->ops->set(st->line, v->on ? 1 : 0);
	if (r < 0)
		return r;
	/* Confirm: a line another process grabbed or a dead chip shows up here. */
	r = st->ops->get(st->line);
	if (r < 0)
		return r;
	return r == (v->on ? 1 : 0) ? 0 : -EIO;
}

static int gpio_set_sync(struct sg_act *a, const struct sg_act_value *v, int timeout_ms)
{
	(void)timeout_ms;
	return gpio_set(a, v, 0);
}

const struct sg_act_driver sg_act_gpio = {
	.name = "gpio",
	.description = "a relay on a GPIO line (libgpiod)",
	.kinds = SG_ACT_KIND_BIT(SG_ACT_SWITCH),
	.option_keys = gpio_option_keys,
	.parse_options = gpio_parse_options,
	.free_options = gpio_free_options,
	.describe = gpio_describe,
	.where = gpio_where,
	.state_size = sizeof(struct gpio_state),
	.open = gpio_open,
	.close = gpio_close,
	.read_back = gpio_read_back,
	.set = gpio_set,
	.io = NULL,
	.timer = NULL,
	.set_sync = gpio_set_sync,
};
