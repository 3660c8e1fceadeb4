/* SPDX-License-Identifier: MIT */
/*
 * fake_gpio.h — a gpiochip in memory behind struct sg_gpio_ops (outputs)
 * and struct sg_gpio_in_ops (inputs with edge events), for tests.
 *
 * One chip (fake_gpio.chip, "gpiochip0" after fake_gpio_reset()) with
 * FAKE_GPIO_LINES lines. Each line keeps its physical level, who requested
 * it and how; tests read and poke struct fake_gpio directly. Behaves like
 * the kernel where it matters: a missing chip is -ENOENT, a line beyond the
 * chip -EINVAL, a line already requested -EBUSY, active_low inverts, a line
 * once driven stays an output after its release (-EPERM for an input).
 *
 * Inputs: fake_gpio_pin() moves a pin at a time the test gives; a line
 * requested for that edge gets an event stamped with that time, numbered
 * like the kernel's uAPI v2 (line_seqno from 1, dropped events included),
 * in a queue of fake_gpio.queue_cap events (16 after reset, at most
 * FAKE_GPIO_QUEUE_MAX) that drops the oldest when full, as v2 does. The
 * clock the drivers read (now_ns) is fake_gpio.now_ns, which only the test
 * moves (fake_gpio_pin() moves it forward to the edge's time).
 */
#ifndef SG_FAKE_GPIO_H
#define SG_FAKE_GPIO_H

#include <stdbool.h>

#include "drivers/bus_gpio.h"

#define FAKE_GPIO_LINES     32
#define FAKE_GPIO_QUEUE_MAX 1024

struct fake_gpio_line {
	bool requested;
	bool active_low;
	char consumer[32];
	int level;          /* physical level on the pin */
	unsigned n_sets;    /* set() calls since reset */
	int fail;           /* nonzero: set() and get() return this -errno (inputs: read_events too) */
	bool stuck;         /* set() succeeds but the pin does not move */

	bool is_output;     /* direction: an output (stays so after release, as on a Raspberry Pi) */
	bool input;         /* requested as an input */
	struct sg_gpio_input in; /* how */
	bool no_seqno;      /* events carry no numbers (uAPI v1) */
	int efd;            /* readable while events wait; -1 when not requested */
	uint32_t seqno;     /* events numbered so far */
	uint64_t dropped;   /* events the full queue dropped */
	struct sg_gpio_event q[FAKE_GPIO_QUEUE_MAX];
	unsigned q_head, q_n;
};

struct fake_gpio {
	char chip[32];      /* the name under which the chip exists; "" = no chip */
	struct fake_gpio_line lines[FAKE_GPIO_LINES];
	unsigned n_requests, n_releases;
	uint64_t now_ns;    /* the clock of the inputs' events */
	unsigned queue_cap; /* events a line's queue holds */
};

extern struct fake_gpio fake_gpio;
extern const struct sg_gpio_ops fake_gpio_ops;
extern const struct sg_gpio_in_ops fake_gpio_in_ops;

void fake_gpio_reset(void);
/* What the consumer sees on LINE: the level with active_low applied. */
int fake_gpio_logical(unsigned line);
/* Move LINE's pin to physical LEVEL at T_NS (the clock moves forward to it): an event if requested. */
void fake_gpio_pin(unsigned line, int level, uint64_t t_ns);
/* Events waiting in LINE's queue. */
unsigned fake_gpio_pending(unsigned line);

#endif
