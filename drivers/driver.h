/* SPDX-License-Identifier: MIT */
/*
 * driver.h — the contract between a sensor driver and the rest of sensorgate.
 *
 * A driver turns bytes (from a serial stream, an I2C register map, a 1-Wire
 * sysfs file) into readings. It never sees MQTT, topics or the config file
 * beyond its own options, and it keeps no file-scope state: everything per
 * device lives in struct sg_dev (opts for parsed options, state for runtime).
 *
 * Two shapes of driver exist (a polled one may also own a descriptor: see
 * io(); the GPIO input drivers are all io() and timers):
 *  - stream drivers (lines, nmea, dsmr, ...) implement feed(): the serial bus
 *    hands them whatever bytes arrived; they frame, parse and emit.
 *  - polled drivers (bme280, ds18b20, mhz19 ...) implement poll(): the loop
 *    calls it when it is due; it performs one non-blocking step and says when
 *    it wants to be called again (a conversion wait is a short delay, the
 *    reading interval a long one). poll() must never sleep.
 *
 * Drivers do not log. They count failures with sg_dev_fail(), which the
 * gateway turns into rate-limited log lines tagged with the device name.
 */
#ifndef SG_DRIVER_H
#define SG_DRIVER_H

#include <errno.h>
#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/options.h" /* struct sg_opt_error, sg_opt_fail(), the sg_opt_*() readers */

enum sg_bus_kind {
	SG_BUS_NONE = 0, /* no bus: the driver reads a path itself (1-Wire) */
	SG_BUS_SERIAL,   /* port + baud; fd is a non-blocking serial port */
	SG_BUS_I2C,      /* bus (/dev/i2c-N) + address; fd is the i2c-dev fd */
};

enum sg_value_kind {
	SG_VALUE_NUMBER = 0,
	SG_VALUE_STRING,
};

/* One value read from a device. Valid only for the duration of the emit call. */
struct sg_reading {
	const char *field;       /* [A-Za-z0-9_.-]+; e.g. "temperature", "pm2_5" */
	enum sg_value_kind kind;
	double number;           /* when kind == SG_VALUE_NUMBER */
	const char *text;        /* NULL, or NUMBER as the device wrote it when that is already how the
	                            gateway prints it (decimal.h: canonical): published as it came */
	const char *string;      /* when kind == SG_VALUE_STRING, NUL-terminated */
	const char *unit;        /* "°C", "hPa", NULL when unknown or unitless */
	int64_t timestamp_us;    /* CLOCK_REALTIME µs of the measurement, 0 = now */
};

/* Why a frame or a read was thrown away. Counted per device; logged by the gateway. */
enum sg_fail {
	SG_FAIL_OVERLONG = 0, /* frame longer than the driver accepts */
	SG_FAIL_GARBAGE,      /* bytes that are not the protocol (invalid UTF-8, NUL, noise) */
	SG_FAIL_SYNTAX,       /* framed but not parseable */
	SG_FAIL_CHECKSUM,     /* checksum / CRC mismatch */
	SG_FAIL_INSANE,       /* parsed but out of the physically possible range */
	SG_FAIL_IO,           /* bus read/write failed (NACK, EIO, timeout) */
	SG_FAIL_NODEV,        /* wrong chip id, device absent */
	SG_FAIL_TIMEOUT,      /* no answer to a request within its deadline */
	SG_FAIL_LOST,         /* events the kernel dropped (a full GPIO event buffer), seen as a gap in their numbers */
	SG_FAIL_MAX_
};

const char *sg_fail_name(enum sg_fail f);

struct sg_dev;
struct sg_i2c; /* bus_i2c.h: an I2C device behind an ops table */
struct sg_gpio_in_ops; /* bus_gpio.h: GPIO input lines with edge events */
struct sg_line_user; /* line.h: a device's place on a shared serial line */

/* Called once per reading; the reading and its strings are borrowed. */
typedef void (*sg_emit_fn)(struct sg_dev *dev, const struct sg_reading *r, void *userdata);
/* Called once per counted failure; detail is a short human text or NULL. */
typedef void (*sg_fail_fn)(struct sg_dev *dev, enum sg_fail f, const char *detail, void *userdata);

struct sg_dev_stats {
	uint64_t readings;          /* readings emitted */
	uint64_t frames;            /* frames parsed successfully */
	uint64_t fail[SG_FAIL_MAX_]; /* frames/reads dropped, by reason */
};

/*
 * Runtime of one configured device, owned by the gateway. Drivers read the
 * public fields and own *state (state_size bytes, zeroed before init()).
 */
struct sg_dev {
	const char *name;              /* config name, e.g. "arduino" */
	const struct sg_driver *driver;
	const void *opts;              /* what driver->parse_options returned; owned by config */

	/* Bus binding, filled by the gateway before init() / between reopenings. */
	int fd;                        /* serial or i2c fd, -1 while closed */
	const char *path;              /* port, /dev/i2c-N, or 1-Wire device dir */
	int address;                   /* I2C 7-bit address, -1 when none */
	double interval_s;             /* polling interval for polled drivers */
	struct sg_i2c *i2c;            /* SG_BUS_I2C: transfers (bus_i2c.h), NULL while closed */
	struct sg_line_user *line;     /* SG_BUS_SERIAL: its place on the shared line (line.h), NULL while closed */

	/*
	 * Drivers that own a descriptor (driver->io set: a socket they connect
	 * themselves): the fd the gateway watches, -1 for none, and the events
	 * (EPOLLIN, EPOLLOUT) to wait for. Set by the driver in init() and kept
	 * until fini(), which closes it; the events may change in any call, the
	 * gateway re-reads both after init(), poll() and io(). Such a driver may
	 * point path at a description of its peer ("host:port") in its options.
	 */
	int watch_fd;
	uint32_t watch_events;

	/* GPIO input drivers: the chip access; NULL = the kernel's (sg_gpio_in_kernel). Tests put a fake here. */
	const struct sg_gpio_in_ops *gpio_in;
	/* Words on why init() failed ("in use by \"relay\" as an output"), pointing into state; NULL = none. */
	const char *why;
	/* Set by init(): how the device is read, logged when it opens ("edge events: uAPI v2 ..."); NULL = nothing. */
	const char *note;

	/*
	 * Durable values, for drivers that must not lose a count across a crash
	 * (counter): a 64-bit integer under KEY (the gateway keeps it per
	 * device). load: 0 with *ret, -ENOENT when never saved, -EAGAIN while
	 * the store cannot be opened, -errno. save: 0 once the value is on disk
	 * (fsync'ed), -errno otherwise. NULL when the gateway has no store.
	 */
	int (*value_load)(struct sg_dev *dev, const char *key, int64_t *ret);
	int (*value_save)(struct sg_dev *dev, const char *key, int64_t value);

	void *state;                   /* driver-private, state_size bytes */
	struct sg_dev_stats stats;

	sg_emit_fn emit;
	sg_fail_fn on_fail;
	void *userdata;
};

/* Hand a reading to the gateway. */
static inline void sg_dev_emit(struct sg_dev *dev, const struct sg_reading *r)
{
	dev->stats.readings++;
	if (dev->emit)
		dev->emit(dev, r, dev->userdata);
}

static inline void sg_dev_emit_number(struct sg_dev *dev, const char *field, double v, const char *unit)
{
	struct sg_reading r = {.field = field, .kind = SG_VALUE_NUMBER, .number = v, .unit = unit};
	sg_dev_emit(dev, &r);
}

/* A number read from TEXT with sg_decimal_parse(); CANONICAL as it said. */
static inline void sg_dev_emit_decimal(struct sg_dev *dev, const char *field, double v, const char *text,
                                       bool canonical)
{
	struct sg_reading r = {.field = field, .kind = SG_VALUE_NUMBER, .number = v, .text = canonical ? text : NULL};
	sg_dev_emit(dev, &r);
}

static inline void sg_dev_emit_string(struct sg_dev *dev, const char *field, const char *s)
{
	struct sg_reading r = {.field = field, .kind = SG_VALUE_STRING, .string = s};
	sg_dev_emit(dev, &r);
}

/* The durable value KEY of the device: see value_load above; -ENOSYS without a store. */
static inline int sg_dev_value_load(struct sg_dev *dev, const char *key, int64_t *ret)
{
	return dev->value_load ? dev->value_load(dev, key, ret) : -ENOSYS;
}

static inline int sg_dev_value_save(struct sg_dev *dev, const char *key, int64_t value)
{
	return dev->value_save ? dev->value_save(dev, key, value) : -ENOSYS;
}

/* Count a dropped frame or failed read; the gateway decides whether to log it. */
static inline void sg_dev_fail(struct sg_dev *dev, enum sg_fail f, const char *detail)
{
	if ((unsigned)f < SG_FAIL_MAX_)
		dev->stats.fail[f]++;
	if (dev->on_fail)
		dev->on_fail(dev, f, detail, dev->userdata);
}

/* Field a driver is known to produce: used for --check, discovery, defaults. */
struct sg_field_info {
	const char *name;
	const char *unit;          /* NULL if none */
	const char *device_class;  /* Home Assistant device class, NULL if none */
	const char *state_class;   /* "measurement", "total_increasing", NULL */
	bool binary;               /* a 0/1 state (a coil, a bit): a binary_sensor in Home Assistant */
	const char *payload_on;    /* binary: the payloads it publishes; NULL = the numbers 1 and 0 */
	const char *payload_off;
	/* A momentary event (a button press), not a state: its values, NULL-terminated. Published
	 * never retained, announced as an event entity and device triggers. NULL = a state. */
	const char *const *event_types;
	bool no_event_entity;      /* events: announced as device triggers only */
	bool no_triggers;          /* events: announced as an event entity only */
	bool when_seen;            /* not every device sends it (a meter's optional lines): announced to Home
	                            * Assistant once it first arrives, not before */
};

/* One request of a request driver's cycle, for --check's bus plan. */
struct sg_line_request {
	unsigned tx_bytes;  /* the request */
	unsigned rx_bytes;  /* its longest answer */
	double timeout_s;   /* how long an answer is awaited */
	char what[64];      /* "slave 3 holding 0+20" */
};

/*
 * A driver's method table. Every field is designated in each driver; unused
 * ones are NULL. The registry (registry.c) lists them all.
 */
struct sg_driver {
	const char *name;                   /* config `driver = "..."` */
	const char *description;            /* one line for --help / README */
	enum sg_bus_kind bus;
	int default_baud;                   /* serial drivers: baud when unset; 0 otherwise */
	double default_interval_s;          /* polled drivers: interval when unset */
	const struct sg_field_info *fields; /* NULL-name terminated, or NULL when data-defined */
	const char *const *option_keys;     /* NULL-terminated extra keys allowed in the device group */

	/* Parse driver-specific keys of the device group. Returns 0 or -EINVAL with *err filled. */
	int (*parse_options)(const config_setting_t *device, void **ret_opts, struct sg_opt_error *err);
	void (*free_options)(void *opts);

	size_t state_size;
	/* Set up state after the bus is open (probe the chip). 0 or -errno. */
	int (*init)(struct sg_dev *dev);
	/* Release whatever init allocated inside state (state itself is freed by the caller). */
	void (*fini)(struct sg_dev *dev);

	/* Stream drivers: consume bytes received on the serial port. */
	void (*feed)(struct sg_dev *dev, const uint8_t *buf, size_t len);
	/* Stream drivers: the port was reopened; discard any partial frame. */
	void (*reset)(struct sg_dev *dev);

	/*
	 * Polled drivers: perform one step. Returns 0 with *ret_delay_us set to
	 * when the next step is due, or -errno when the device failed (the caller
	 * backs off and calls init() again later).
	 */
	int (*poll)(struct sg_dev *dev, uint64_t *ret_delay_us);

	/*
	 * Drivers that own a descriptor (dev->watch_fd): it is ready (REVENTS
	 * as epoll reports them). 0, or -errno when the device failed (the
	 * gateway calls fini(), then init() again later with backoff).
	 * *ret_delay_us is UINT64_MAX on entry, which keeps the poll() timer as
	 * it is; set it to have poll() called that much later instead (0 = at
	 * once, e.g. to send the next request as soon as a response is in).
	 */
	int (*io)(struct sg_dev *dev, uint32_t revents, uint64_t *ret_delay_us);

	/*
	 * Data-defined drivers whose options name their fields (a register
	 * table): field I (0, 1, ...) of OPTS into *ret, its name written to
	 * NAME (LEN bytes) and ret->name pointing there. false past the last.
	 * NULL: the fields are known only from the data. For discovery.
	 */
	bool (*option_field)(const void *opts, size_t i, char *name, size_t len, struct sg_field_info *ret);
	/*
	 * Whether FIELD of .fields is read with these options: NULL when it is,
	 * else the setting that turns it on ("temperature = true"), for the
	 * config's error and --check. NULL hook: every field is read.
	 */
	const char *(*field_off)(const void *opts, const char *field);
	/* --check: one line on what the device talks to and how (a request plan); NULL = nothing to add. */
	void (*describe)(const void *opts, char *buf, size_t len);
	/* The hardware the device occupies ("gpiochip0 line 17"), compared with every other device's and
	 * actuator's to refuse two users of one line. NULL: its port, bus address or path says it. */
	void (*where)(const void *opts, char *buf, size_t len);
	/* Emit the current state again (after every connection to the broker). NULL = nothing to repeat. */
	void (*refresh)(struct sg_dev *dev);

	/*
	 * Serial drivers: the framing at BAUD when the configuration sets none
	 * ("8E1"); NULL = "8N1".
	 */
	const char *(*framing)(int baud);

	/*
	 * Request drivers on a serial line (modbus, mhz19, sds011 in query
	 * mode) get it one transaction at a time (line.h). poll() runs at each
	 * interval and readies a cycle; then, turn by turn:
	 * request(): the cycle's next request into BUF (CAP bytes): its length,
	 *   *ret_timeout_us set to how long its answer is awaited; 0 when the
	 *   cycle has no more; -errno on failure (counted, the turn given back).
	 * answer(): the bytes received since the request: N > 0 when the first
	 *   N were its answer (right or wrong: the transaction is over), -N when
	 *   the first N are not part of it, 0 to wait for more.
	 * no_answer(): nothing (complete) came within the timeout.
	 * line_gap_chars / line_gap_min_us: the silence the protocol needs on
	 * the wire before each request (Modbus RTU: 3.5 characters, 1750 µs).
	 */
	int (*request)(struct sg_dev *dev, uint8_t *buf, size_t cap, uint64_t *ret_timeout_us);
	ssize_t (*answer)(struct sg_dev *dev, const uint8_t *buf, size_t len);
	void (*no_answer)(struct sg_dev *dev);
	double line_gap_chars;
	unsigned line_gap_min_us;
	/* Whether a device with OPTS reads the bytes of its line that no transaction claims (feed());
	 * NULL: when it has feed() and no request(). */
	bool (*streams)(const void *opts);
	/* --check's bus plan: the requests of one cycle into REQS (room for CAP); returns how many there are. */
	size_t (*line_plan)(const void *opts, struct sg_line_request *reqs, size_t cap);
};

/* True if a device of DRV with OPTS reads the unclaimed bytes of its line. */
static inline bool sg_driver_streams(const struct sg_driver *drv, const void *opts)
{
	if (drv->streams)
		return drv->streams(opts);
	return drv->feed && !drv->request;
}

/* registry.c */
/* True if S is 1..MAX bytes of [A-Za-z0-9_-]: a name that can be a topic level. */
bool sg_name_valid(const char *s, size_t max);
const struct sg_driver *sg_driver_find(const char *name);
/* NULL-terminated table of all drivers. */
extern const struct sg_driver *const sg_drivers[];

#endif
