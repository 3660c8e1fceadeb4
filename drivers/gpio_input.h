/* SPDX-License-Identifier: MIT */
/*
 * gpio_input.h — what the GPIO input drivers (contact.c, button.c, counter.c)
 * share: the keys that name and shape the line, the line with its edge
 * events, and the debouncer.
 *
 * Keys (in the device group): chip (default "gpiochip0": a name, number, path
 * or label), line (required, the chip's offset), bias ("as-is", "pull-up",
 * "pull-down", "disabled"; default "as-is"), active_low (default false: high
 * is active), and, where the driver has it, debounce_ms (0..10000).
 *
 * The line is requested for edge events; its event fd becomes the device's
 * watch_fd, so the gateway's one loop wakes up when an edge is waiting (no
 * polling, no thread). gpio_in_drain() reads every waiting event and counts
 * those the kernel numbered but had to drop (a gap in line_seqno, uAPI v2):
 * they are reported with sg_dev_fail(SG_FAIL_LOST), never lost in silence.
 *
 * The debouncer works on the kernel's timestamps, not on when the loop got
 * round to reading: an edge is taken once no other edge followed it for the
 * debounce time; a bounce that ends back at the old level changes nothing.
 * It is plain arithmetic on the times it is given (tests drive it with an
 * explicit clock).
 *
 * Ownership: struct gpio_in_opts lives inside each driver's options (the
 * config owns them); struct gpio_in inside the driver's state owns the line
 * handle from gpio_in_open() to gpio_in_close(). Nothing here logs.
 */
#ifndef SG_GPIO_INPUT_H
#define SG_GPIO_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus_gpio.h"
#include "driver.h"

#define GPIO_IN_CONSUMER      "sensorgate"
#define GPIO_IN_DEFAULT_CHIP  "gpiochip0"
#define GPIO_IN_LINE_MAX      65535
#define GPIO_IN_DEBOUNCE_MAX  10000 /* ms */

struct gpio_in_opts {
	char chip[64];
	int line;
	bool active_low;
	enum sg_gpio_bias bias;
	int debounce_ms;
	char where[96];           /* "gpiochip0 line 17": the device's path in log lines */
};

/*
 * The common keys of device group DEV into *O; DEBOUNCE_MS is the default
 * debounce, or -1 when the driver has no debounce_ms key (it is not read).
 * 0, or -EINVAL with *err.
 */
int gpio_in_parse(const config_setting_t *dev, struct gpio_in_opts *o, int debounce_ms, struct sg_opt_error *err);
/* "gpiochip0 line 17": the hardware, for conflicts (sg_driver.where) and messages. */
void gpio_in_where(const struct gpio_in_opts *o, char *buf, size_t len);
/* "gpiochip0 line 17, pull-up, active-low, debounce 20 ms" for --check. */
void gpio_in_describe(const struct gpio_in_opts *o, char *buf, size_t len);
/* The keys gpio_in_parse() reads, for a driver's option_keys. */
#define GPIO_IN_KEYS "chip", "line", "bias", "active_low"

struct gpio_in {
	const struct sg_gpio_in_ops *ops;
	void *h;
	uint32_t seqno;           /* the last line_seqno seen, 0 before the first */
	uint64_t lost;            /* events the kernel dropped, so far */
	const char *lost_note;    /* added to the lost-events message (the driver's words), or NULL */
	char why[200];            /* why the request failed; dev->why points here */
	char detail[160];         /* scratch for failure details */
	char note[160];           /* how the events come; dev->note points here */
};

/*
 * Request the line of O for EDGES (SG_GPIO_EDGE_*) through dev->gpio_in (the
 * kernel's when NULL) and watch it: dev->watch_fd and watch_events are set,
 * dev->path names the line.
 * 0, or -errno with dev->why pointing at in->why when there is more to say.
 */
int gpio_in_open(struct gpio_in *in, struct sg_dev *dev, const struct gpio_in_opts *o, unsigned edges);
void gpio_in_close(struct gpio_in *in, struct sg_dev *dev);
/*
 * gpio_in_open() for both edges, the level read at start and debouncer DEB
 * set up from it (contacts and buttons): that level (0/1), or -errno with
 * nothing left open.
 */
struct gpio_debounce;
int gpio_in_open_debounced(struct gpio_in *in, struct sg_dev *dev, const struct gpio_in_opts *o,
                           struct gpio_debounce *deb);
/* The line's logical level now: 0, 1, or -errno. */
int gpio_in_level(struct gpio_in *in);
/* The clock of the events (CLOCK_MONOTONIC ns, or the fake's). */
uint64_t gpio_in_now(const struct gpio_in *in);
/* An event time as CLOCK_REALTIME µs, for readings' timestamps. */
int64_t gpio_in_realtime_us(const struct gpio_in *in, uint64_t ts_ns);

/*
 * Every event waiting (bounded per call: the rest wakes the loop again), in
 * order, to FN with the number of events the kernel dropped just before it
 * (0 mostly). 0, or -errno when reading failed (the line is gone).
 */
typedef void (*gpio_in_event_fn)(void *ud, const struct sg_gpio_event *ev, uint32_t lost_before);
int gpio_in_drain(struct gpio_in *in, struct sg_dev *dev, gpio_in_event_fn fn, void *ud);

/* ---- the debouncer ---------------------------------------------------------------------------- */

struct gpio_debounce {
	uint64_t window_ns;
	int stable;               /* the level taken: 0 or 1 */
	int raw;                  /* the level after the last edge */
	uint64_t since_ns;        /* the first edge away from `stable` */
	uint64_t last_ns;         /* the last edge */
	bool pending;             /* edges since the level was last taken */
};

void gpio_deb_init(struct gpio_debounce *d, int debounce_ms, int level);
/* An edge at TS_NS to LEVEL. True when the level is taken at once (no debounce): stable changed. */
bool gpio_deb_edge(struct gpio_debounce *d, uint64_t ts_ns, int level);
/*
 * At NOW_NS: when the last edge is a debounce time old, take the level
 * (LEVEL_NOW, the line read now, when >= 0; else the one the edges said).
 * True when `stable` changed; *ret_ts_ns is when the change began.
 */
bool gpio_deb_settle(struct gpio_debounce *d, uint64_t now_ns, int level_now, uint64_t *ret_ts_ns);
/* When gpio_deb_settle() has something to take (ns), UINT64_MAX when nothing waits. */
uint64_t gpio_deb_due(const struct gpio_debounce *d);

/* NS from NOW_NS as a delay in µs for the gateway's timer (0 when past; UINT64_MAX stays UINT64_MAX). */
uint64_t gpio_delay_us(uint64_t at_ns, uint64_t now_ns);

#endif
