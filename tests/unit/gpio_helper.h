/* SPDX-License-Identifier: MIT */
/*
 * gpio_helper.h — a GPIO input device (contact, button, counter) on the fake
 * gpiochip, driven the way the gateway's loop drives it, on the fake clock.
 *
 * gr_start() parses the options from config text with the driver's own
 * parse_options(), points dev.gpio_in at the fake chip and calls init(),
 * then poll() once (the gateway calls it at once after opening). From then
 * on the test moves time: gr_edge() moves a pin at a time T (running every
 * poll() that fell due before T first, then io(), as the loop would on the
 * readable fd); gr_advance() runs the polls due up to T; gr_io() is a late
 * loop reading whatever queued meanwhile. Every reading and failure is
 * captured in order. The durable values (dev.value_load/save) go to a small
 * table in memory unless the test wires them elsewhere.
 */
#ifndef SG_GPIO_HELPER_H
#define SG_GPIO_HELPER_H

#include <stdbool.h>
#include <stdint.h>

#include "drivers/driver.h"

#define GR_MAX_READINGS 4096
#define GR_MS           1000000ULL /* ns */
#define GR_S            1000000000ULL

struct gr_reading {
	char field[32];
	bool is_string;
	double number;
	char string[64];
	char unit[16];
	int64_t timestamp_us;
	uint64_t at_ns;            /* the fake clock when it was emitted */
};

struct gr_value {
	char key[64];
	int64_t v;
	bool set;
};

struct gpio_run {
	struct sg_dev dev;
	void *opts;
	bool up;                   /* init() succeeded and fini() not yet called */
	uint64_t next_poll_ns;     /* when poll() is due, UINT64_MAX none */
	unsigned n_polls, n_io;

	struct gr_reading *r;      /* GR_MAX_READINGS */
	size_t n;
	unsigned fails[SG_FAIL_MAX_];
	char last_detail[256];

	/* A store of the test's own (a real spool) instead of the table below, when set. */
	int (*store_load)(void *ud, const char *key, int64_t *ret);
	int (*store_save)(void *ud, const char *key, int64_t value);
	void *store_ud;

	struct gr_value values[8];
	int save_fail;             /* nonzero: value_save() returns it */
	int load_fail;             /* nonzero: value_load() returns it */
	unsigned n_saves;
};

/* Parse OPTS_TEXT for DRV, init() on the fake chip, poll() once. Returns init()'s result (the run is down on failure). */
int gr_start(struct gpio_run *g, const struct sg_driver *drv, const char *opts_text);
/* The same with the durable values in the test's store (LOAD, SAVE with UD). */
int gr_start_store(struct gpio_run *g, const struct sg_driver *drv, const char *opts_text,
                   int (*load)(void *ud, const char *key, int64_t *ret),
                   int (*save)(void *ud, const char *key, int64_t value), void *ud);
/* fini() (when up) and free everything. */
void gr_stop(struct gpio_run *g);
/* fini() and init() again, as the gateway does for a restart (without freeing the captures). */
int gr_restart(struct gpio_run *g);
/* Drop the driver state without fini(): the process died (kill -9). */
void gr_crash(struct gpio_run *g);

void gr_advance(struct gpio_run *g, uint64_t t_ns);
void gr_io(struct gpio_run *g);
/* Pin LINE to physical LEVEL at T_NS, then io(). */
void gr_edge(struct gpio_run *g, unsigned line, int level, uint64_t t_ns);
/* The same without io(): the loop is busy elsewhere. */
void gr_edge_late(struct gpio_run *g, unsigned line, int level, uint64_t t_ns);

/* Readings named FIELD captured from index FROM on: how many. */
size_t gr_count(const struct gpio_run *g, const char *field, size_t from);
/* The last reading named FIELD, or NULL. */
const struct gr_reading *gr_last(const struct gpio_run *g, const char *field);
/* Forget the captured readings and failures. */
void gr_clear(struct gpio_run *g);

#endif
