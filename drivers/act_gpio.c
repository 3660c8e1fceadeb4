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
 * Ownership: struct gpio_state lives in act->state (owned by the router);
 * it holds the line handle from request_output() until close().
 */
#include <errno.h>
#include <stddef.h>

#include "actuator.h"
#include "bus_gpio.h"

#define GPIO_CONSUMER "sensorgate"

struct gpio_state {
	const struct sg_gpio_ops *ops;
	void *line;
};

static int gpio_open(struct sg_act *a)
{
	struct gpio_state *st = a->state;
	const struct sg_act_params *p = a->params;

	st->ops = a->buses && a->buses->gpio ? a->buses->gpio : &sg_gpio_libgpiod;
	a->fd = -1;
	a->events = 0;
	a->wake_us = UINT64_MAX;
	return st->ops->request_output(p->chip, p->line, p->active_low, GPIO_CONSUMER, p->initial, &st->line);
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
	.switch_only = true,
	.state_size = sizeof(struct gpio_state),
	.open = gpio_open,
	.close = gpio_close,
	.read_back = gpio_read_back,
	.set = gpio_set,
	.io = NULL,
	.timer = NULL,
	.set_sync = gpio_set_sync,
};
