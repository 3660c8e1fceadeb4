/* SPDX-License-Identifier: MIT */
/*
 * actuator.h — the contract between an actuator driver, the config loader
 * and the command router.
 *
 * An actuator driver moves one thing in the world: a GPIO line behind a
 * relay, a device on a serial port that obeys text commands. It receives
 * values the router has already validated (never payloads, topics or MQTT),
 * and it keeps no file-scope state: everything per actuator lives in
 * struct sg_act (params, with the driver's parsed options, for its settings;
 * state for its runtime).
 *
 * Drivers never sleep and never own an event loop. Like the MQTT client,
 * a driver says what it wants polled in act->fd / act->events and when it
 * wants its timer() in act->wake_us; the owner re-reads the three after every
 * call into the driver. A set() either completes at once (returns 0) or
 * later (returns 1, then calls sg_act_done() from io() or timer()).
 *
 * Drivers describe themselves: config.c knows only the keys every actuator
 * has (name, driver, topic, type, qos, accept_retained, min_interval_ms,
 * interlock, payload_on/off, initial, safe, min/max/step, options, pulse_ms,
 * max_on_s) and asks the driver for the rest: which types it can move
 * (kinds), which keys are its own (option_keys), and what they mean
 * (parse_options). --check and the logs ask it how to name its hardware
 * (describe, where). Nothing outside the driver's file knows its keys.
 *
 * Adding a driver, e.g. `pwm` (a PWM channel through sysfs; drivers/act_pwm.c
 * is the full one, the sketch below its first steps):
 *  1. drivers/act_pwm.c, the only new file:
 *       struct pwm_opts { char *chip; int channel; int period_ns; };
 *       static const char *const pwm_keys[] = {"chip", "channel", "period_ns", NULL};
 *       pwm_parse_options(g, common, &opts, err): calloc the opts, read each
 *         key with the sg_opt_*() readers of common/options.h (they word
 *         errors as the rest of the config does; take sg_opt_string_dup():
 *         the config file's tree is gone after loading), check what belongs
 *         together; on failure free what it allocated and return the
 *         reader's error.
 *       pwm_free_options(opts), pwm_describe(opts, buf, len) ("pwm
 *         pwmchip0 channel 1, period 20000000 ns"), pwm_where(opts, ...)
 *         ("pwmchip0 channel 1");
 *       open/close/set/... reading their settings from a->params->opts;
 *       const struct sg_act_driver sg_act_pwm = { .name = "pwm",
 *         .kinds = SG_ACT_KIND_BIT(SG_ACT_NUMBER), .option_keys = pwm_keys,
 *         ... every field designated, unused ones NULL };
 *  2. one line in act_registry.c's table and one extern line at the end of
 *     this file.
 * config.c then accepts `driver = "pwm"` and its keys, refuses them on other
 * drivers ("\"period_ns\" does not apply to driver \"gpio\" ..."), refuses
 * types the driver cannot move, and lists it among the known drivers;
 * --check prints its describe() line; the router opens, sets and closes it.
 * Document its keys in config/sensorgate.conf and README.md, and
 * test it in tests/unit/test_act_pwm.c (tests/unit/act_fixture.h parses
 * options from config text). tests/unit/test_act_extension.c holds this
 * very driver, as a worked example run against config.c and the router.
 * Drivers do not log; the router logs once.
 */
#ifndef SG_ACTUATOR_H
#define SG_ACTUATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus_gpio.h"
#include "driver.h" /* struct sg_opt_error, libconfig */

/* What an actuator takes: ON/OFF, a number in min..max, or one of a list of options. */
enum sg_actuator_kind {
	SG_ACT_SWITCH = 0, /* ON/OFF */
	SG_ACT_NUMBER,     /* min/max/step */
	SG_ACT_ENUM,       /* one of options */
};

/* For struct sg_act_driver.kinds: the types a driver can move. */
#define SG_ACT_KIND_BIT(k) (1u << (k))
#define SG_ACT_KINDS_ALL \
	(SG_ACT_KIND_BIT(SG_ACT_SWITCH) | SG_ACT_KIND_BIT(SG_ACT_NUMBER) | SG_ACT_KIND_BIT(SG_ACT_ENUM))

/* What config.c has read of an actuator before its driver parses its own keys. */
struct sg_act_common {
	const char *name;           /* for messages: actuator "name" ... */
	enum sg_actuator_kind kind; /* already one the driver supports */
};

/* A commanded value, already validated and canonicalised by the router. */
struct sg_act_value {
	bool on;          /* switches */
	double number;    /* numbers */
	size_t option;    /* enums: index into the configured options */
	const char *text; /* canonical payload ("ON", "42.5", "low"); what "{value}" stands for */
};

struct sg_lines;         /* line.h: the shared serial lines */
struct sg_line_settings; /* line.h */
struct sg_line_spec;     /* line.h */

/* A driver's settings, borrowed from the configuration for the actuator's lifetime. */
struct sg_act_params {
	const char *name;
	enum sg_actuator_kind kind;
	int initial;      /* switches: level to take when opened: 1 on, 0 off, -1 keep */
	const void *opts; /* what the driver's parse_options() made of its keys; NULL without */
	/* Drivers on a serial line: the line's settings as the configuration resolved them (agreed
	 * among every entry sharing it); NULL: the driver's own. */
	const struct sg_line_settings *line;
};

/* The buses drivers reach hardware through; NULL members mean the real ones. Tests put fakes here. */
struct sg_act_buses {
	const struct sg_gpio_ops *gpio;
	/* The gateway's shared serial lines; NULL: a driver opens a line of its own (and polls it through
	 * fd, events and wake_us). */
	struct sg_lines *lines;
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
	const char *name;               /* config `driver = "..."` */
	const char *description;        /* one line for --help / README */
	unsigned kinds;                 /* SG_ACT_KIND_BIT()s of the types it can move */
	const char *const *option_keys; /* NULL-terminated keys of its own in the actuator group, or NULL */

	/*
	 * Read the driver's own keys of actuator group G, an actuator of
	 * COMMON->kind (one of kinds). Called only once every key of G is a
	 * common one or in option_keys, and the common ones are valid. On
	 * success *ret_opts (NULL allowed) is owned by the config until
	 * free_options(); it must not point into G (the libconfig tree is
	 * destroyed after loading). On failure nothing is left allocated:
	 * -EINVAL with err->msg the whole message (config.c adds "FILE:LINE: ")
	 * and err->line that of the setting at fault (0 = the actuator's), or
	 * -ENOMEM. NULL = the driver has no options.
	 */
	int (*parse_options)(const config_setting_t *g, const struct sg_act_common *common, void **ret_opts,
	                     struct sg_opt_error *err);
	void (*free_options)(void *opts);
	/* --check: the hardware and every setting of the driver, one line ("gpio gpiochip0 line 17"); a reload
	 * compares these lines to tell whether an actuator changed. */
	void (*describe)(const void *opts, char *buf, size_t len);
	/* Log lines: which hardware a problem is about ("/dev/ttyUSB0", "gpiochip0 line 17"). */
	void (*where)(const void *opts, char *buf, size_t len);

	size_t state_size;
	/* On a shared serial line: the silence its protocol needs between frames, as the device
	 * drivers' line_gap_chars / line_gap_min_us (driver.h); 0 = none. The bus plan reads it. */
	double line_gap_chars;
	unsigned line_gap_min_us;

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
	/* Drivers that may use a serial line: true with *ret filled (strings borrowed from OPTS) when the
	 * actuator with OPTS does, so that config.c can check it against the line's other entries. */
	bool (*line)(const void *opts, struct sg_line_spec *ret);
};

/* act_registry.c */
extern const struct sg_act_driver *const sg_act_drivers[]; /* NULL-terminated */
/* The driver named NAME in TABLE (NULL = sg_act_drivers), or NULL. */
const struct sg_act_driver *sg_act_driver_find(const struct sg_act_driver *const *table, const char *name);

/* One line per driver. */
extern const struct sg_act_driver sg_act_gpio;   /* act_gpio.c: a relay on a GPIO line */
extern const struct sg_act_driver sg_act_serial; /* act_serial.c: text commands on a serial port */
extern const struct sg_act_driver sg_act_modbus; /* act_modbus.c: coils and registers of a Modbus device */
extern const struct sg_act_driver sg_act_pwm;    /* act_pwm.c: a PWM channel through sysfs */

#endif
