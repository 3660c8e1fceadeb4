/* SPDX-License-Identifier: MIT */
/*
 * fake_gpio.h — a gpiochip in memory behind struct sg_gpio_ops, for tests.
 *
 * One chip (fake_gpio.chip, "gpiochip0" after fake_gpio_reset()) with
 * FAKE_GPIO_LINES lines. Each line keeps its physical level, who requested
 * it and how; tests read and poke struct fake_gpio directly. Behaves like
 * the kernel where it matters: a missing chip is -ENOENT, a line beyond the
 * chip -EINVAL, a line already requested -EBUSY, active_low inverts.
 */
#ifndef SG_FAKE_GPIO_H
#define SG_FAKE_GPIO_H

#include <stdbool.h>

#include "drivers/bus_gpio.h"

#define FAKE_GPIO_LINES 32

struct fake_gpio_line {
	bool requested;
	bool active_low;
	char consumer[32];
	int level;          /* physical level on the pin */
	unsigned n_sets;    /* set() calls since reset */
	int fail;           /* nonzero: set() and get() return this -errno */
	bool stuck;         /* set() succeeds but the pin does not move */
};

struct fake_gpio {
	char chip[32];      /* the name under which the chip exists; "" = no chip */
	struct fake_gpio_line lines[FAKE_GPIO_LINES];
	unsigned n_requests, n_releases;
};

extern struct fake_gpio fake_gpio;
extern const struct sg_gpio_ops fake_gpio_ops;

void fake_gpio_reset(void);
/* What the consumer sees on LINE: the level with active_low applied. */
int fake_gpio_logical(unsigned line);

#endif
