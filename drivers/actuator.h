/* SPDX-License-Identifier: MIT */
/*
 * actuator.h — the contract between an actuator driver and the command router.
 *
 * An actuator driver moves one thing in the world: a GPIO line behind a
 * relay, a device on a serial port that obeys text commands. It receives
 * values the router has already validated (never payloads, topics or MQTT),
 * and it keeps no file-scope state: everything per actuator lives in
 * struct sg_act (params for its settings, state for its runtime).
 *
 * Drivers never sleep and never own an event loop. Like the MQTT client,
 * a driver says what it wants polled in act->fd / act->events and when it
 * wants its timer() in act->wake_us; the owner re-reads the three after every
 * call into the driver. A set() either completes at once (returns 0) or
 * later (returns 1, then calls sg_act_done() from io() or timer()).
 *
 * Adding a driver (pwm, i2c, ...) = one file defining one
 * `const struct sg_act_driver sg_act_<name>` + one line in act_registry.c
 * (+ its extern below). Drivers do not log; the router logs once.
 */
#ifndef SG_ACTUATOR_H
#define SG_ACTUATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus_gpio.h"

/* A commanded value, already validated and canonicalised by the router. */
struct sg_act_value {
	bool on;          /* switches */
	double number;    /* numbers */
	size_t option;    /* enums: index into the configured options */
	const char *text; /* canonical payload ("ON", "42.5", "low"); what "{value}" stands for */
};

/* A driver's settings, borrowed from the configuration for the actuator's lifetime. */
struct sg_act_params {
	const char *name;
	bool is_switch;          /* type switch (on/off) rather than number or enum */
	int initial;             /* switches: level to take when opened: 1 on, 0 off, -1 keep */
	/* gpio */
	const char *chip;
	unsigned line;
	bool active_low;
	/* serial */
	const char *port;
	int baud;
	const char *tpl_on, *tpl_off; /* switches: bytes to write */
	const char *tpl_set;          /* numbers, enums: "{value}" is replaced by the value's text */
	const char *reply;            /* expected answer (substring), NULL = none awaited */
	int reply_timeout_ms;         /* for the reply, and for writing at all */
};

/* The buses drivers reach hardware through; NULL members mean the real ones. Tests put fakes here. */
struct sg_act_buses {
	const struct sg_gpio_ops *gpio;
};

struct sg_act;

/* Completion of a set() that returned 1: RESULT 0 = confirmed, else -errno; DETAIL a short text or NULL. */
typedef void (*sg_act_done_fn)(struct sg_act *a, int result, const char *detail, void *userdata);

/*
 * Runtime of one actuator, owned by the router. The driver owns *state
 * (state_size bytes, zeroed before open(), freed by the owner after close())
 * and sets fd, events and wake_us.
 */
struct sg_act {
	const struct sg_act_driver *driver;
	const struct sg_act_params *params;
	const struct sg_act_buses *buses;
	void *state;

	int fd;           /* to poll, -1 for none */
	short events;     /* POLLIN / POLLOUT */
	uint64_t wake_us; /* CLOCK_MONOTONIC µs when timer() is due, UINT64_MAX for never */

	sg_act_done_fn done;
	void *userdata;
};

/* Report the end of a pending set(). The driver must not touch its state after this returns:
 * the owner may call set() again from inside. */
static inline void sg_act_done(struct sg_act *a, int result, const char *detail)
{
	if (a->done)
		a->done(a, result, detail, a->userdata);
}

/*
 * A driver's method table. Every field is designated in each driver; unused
 * ones are NULL. Return values: 0 or -errno unless said otherwise. An error
 * from set(), io() or timer() that means the hardware went away (-EIO,
 * -ENODEV, -ENXIO, -EPIPE, ...) makes the owner close() and open() again
 * later with backoff; any pending set() is then failed by the owner, not by
 * the driver.
 */
struct sg_act_driver {
	const char *name;        /* config `driver = "..."` */
	const char *description; /* one line for --help / README */
	bool switch_only;        /* supports only type "switch" */
	size_t state_size;

	/* Acquire the output (request the line, open the port). Switches with
	 * params->initial >= 0 take that level if the hardware allows it at once. */
	int (*open)(struct sg_act *a);
	/* Give the output back without driving it. Must be safe after a failed io(). */
	void (*close)(struct sg_act *a);
	/* Switches: read back the level the output has (0/1), or -ENOTSUP. NULL = cannot. */
	int (*read_back)(struct sg_act *a);

	/* Move to V. 0: done and confirmed; 1: in progress, sg_act_done() follows; -errno: failed.
	 * Never called while a previous set() is in progress. */
	int (*set)(struct sg_act *a, const struct sg_act_value *v, uint64_t now_us);
	/* The fd is ready for act->events (REVENTS as poll(2) reports them). */
	int (*io)(struct sg_act *a, short revents, uint64_t now_us);
	/* act->wake_us has passed. */
	int (*timer)(struct sg_act *a, uint64_t now_us);
	/* Shutdown only, with the loop stopped: move to V, blocking for at most TIMEOUT_MS.
	 * Abandons any set() in progress (no sg_act_done() for it). */
	int (*set_sync)(struct sg_act *a, const struct sg_act_value *v, int timeout_ms);
};

/* act_registry.c */
extern const struct sg_act_driver *const sg_act_drivers[]; /* NULL-terminated */
/* The driver named NAME in TABLE (NULL = sg_act_drivers), or NULL. */
const struct sg_act_driver *sg_act_driver_find(const struct sg_act_driver *const *table, const char *name);

/* One line per driver. */
extern const struct sg_act_driver sg_act_gpio;   /* act_gpio.c: a relay on a GPIO line */
extern const struct sg_act_driver sg_act_serial; /* act_serial.c: text commands on a serial port */

#endif
