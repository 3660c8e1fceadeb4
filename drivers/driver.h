/* SPDX-License-Identifier: MIT */
/*
 * driver.h — the contract between a sensor driver and the rest of sensorgate.
 *
 * A driver turns bytes (from a serial stream, an I2C register map, a 1-Wire
 * sysfs file) into readings. It never sees MQTT, topics or the config file
 * beyond its own options, and it keeps no file-scope state: everything per
 * device lives in struct sg_dev (opts for parsed options, state for runtime).
 *
 * Two shapes of driver exist:
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

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
	SG_FAIL_MAX_
};

const char *sg_fail_name(enum sg_fail f);

struct sg_dev;
struct sg_i2c; /* bus_i2c.h: an I2C device behind an ops table */

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

static inline void sg_dev_emit_string(struct sg_dev *dev, const char *field, const char *s)
{
	struct sg_reading r = {.field = field, .kind = SG_VALUE_STRING, .string = s};
	sg_dev_emit(dev, &r);
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
};

/* Error text for option parsing: message plus the config line it refers to. */
struct sg_opt_error {
	int line;        /* 0 = the device's own line */
	char msg[256];
};

/*
 * Fill *err (if not NULL) with the line of setting AT (0 when AT is NULL) and
 * the formatted message; returns -EINVAL. For parse_options() of sensor and
 * actuator drivers alike (registry.c).
 */
int sg_opt_fail(struct sg_opt_error *err, const config_setting_t *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

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
};

/* registry.c */
/* True if S is 1..MAX bytes of [A-Za-z0-9_-]: a name that can be a topic level. */
bool sg_name_valid(const char *s, size_t max);
const struct sg_driver *sg_driver_find(const char *name);
/* NULL-terminated table of all drivers. */
extern const struct sg_driver *const sg_drivers[];

#endif
