/* SPDX-License-Identifier: MIT */
/*
 * ds18b20.c — the `ds18b20` driver: Maxim DS18B20 (and the other w1_therm
 * thermometers: DS18S20, DS1822, DS1825, DS28EA00) through Linux's 1-Wire
 * sysfs interface.
 *
 * The kernel's w1_therm driver does the 1-Wire protocol; we read its text
 * file <path>/w1_slave (path = the sensor's directory, e.g.
 * /sys/bus/w1/devices/28-0316a2795cff, or just "28-0316a2795cff"):
 *
 *   72 01 4b 46 7f ff 0e 10 57 : crc=57 YES      scratchpad, CRC verdict
 *   72 01 4b 46 7f ff 0e 10 57 t=23125           temperature in m°C
 *
 *   line 1 must end in "YES" (CRC good), else SG_FAIL_CHECKSUM;
 *   t=85000 is the DS18B20's power-on value (data sheet: "power-on reset
 *   value of the temperature register is +85°C"), i.e. no conversion
 *   happened (typically a brown-out of a parasite-powered sensor): it is
 *   dropped as SG_FAIL_INSANE — so is a true 85.000 °C, a price worth paying;
 *   outside -55..+125 °C (the sensor's range) is SG_FAIL_INSANE too;
 *   an empty read (the kernel's way of saying the bus read failed) counts as
 *   SG_FAIL_IO.
 *
 * Blocking, and what we do about it: reading w1_slave makes the kernel start
 * a conversion and sleep until it is done — up to 750 ms at 12-bit
 * resolution — inside read(2). sysfs ignores O_NONBLOCK, and there is no fd
 * to poll. The bulk interface (write "trigger" to
 * w1_bus_master<N>/therm_bulk_read, then read each sensor without a new
 * conversion) does not help either: the write itself sleeps for the
 * conversion time (w1_therm.c, trigger_bulk_read()). So the read is done by
 * one worker thread per device, which does nothing else: poll() hands it a
 * request and collects the text on a later step; the event loop never
 * blocks. Several sensors on one bus are serialised by the kernel's bus
 * mutex (N sensors take about N x 750 ms); each has its own worker, so that
 * only delays their readings, never the loop. A read that has not returned
 * after 10 s is counted once as SG_FAIL_TIMEOUT and waited for (a thread
 * stuck in the kernel cannot be cancelled); stopping the gateway then waits
 * for it to return (the kernel's own retries bound that to a few seconds).
 *
 * Cycle: step 1 wakes the worker and comes back after the conversion time;
 * step 2 (repeated every 100 ms until the worker is done) parses and emits,
 * and waits for the rest of the interval. A failed open/read (sensor gone:
 * its directory vanishes) is returned as -errno, so the gateway backs off and
 * calls init() again, which checks the file is there.
 *
 * Ownership: options (struct ds18b20_opts, the resolved file path) belong to
 * the config; state (struct ds18b20_state, including the worker and its
 * mutex) to the gateway; init() starts the worker, fini() stops and joins it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "driver.h"
#include "drivers.h"

#define DS18B20_SYSFS_DIR    "/sys/bus/w1/devices/"
#define DS18B20_FILE         "w1_slave"
#define DS18B20_TEXT_MAX     256        /* w1_slave is ~75 bytes; more is not w1_therm */
#define DS18B20_CONVERT_US   750000     /* data sheet: tCONV max at 12-bit resolution */
#define DS18B20_MARGIN_US    50000
#define DS18B20_RECHECK_US   100000
#define DS18B20_TIMEOUT_US   10000000
#define DS18B20_POWER_ON_MC  85000      /* data sheet: power-on reset value of the temperature register */
#define DS18B20_MIN_MC       (-55000)   /* data sheet: measuring range -55 .. +125 °C */
#define DS18B20_MAX_MC       125000
#define DS18B20_STACK_SIZE   (64 * 1024)

struct ds18b20_opts {
	char file[PATH_MAX]; /* <dir>/w1_slave */
};

/* What the loop and the worker share; every field under `lock`. */
struct ds18b20_worker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool request;     /* loop -> worker: read the file now */
	bool done;        /* worker -> loop: text/err hold a result */
	bool quit;        /* loop -> worker: exit */
	int err;          /* 0, or -errno of the open/read */
	size_t len;
	char text[DS18B20_TEXT_MAX + 1];
	char file[PATH_MAX];
};

enum ds18b20_phase {
	DS18B20_PHASE_REQUEST = 0,
	DS18B20_PHASE_WAIT,
};

struct ds18b20_state {
	bool running;            /* worker thread started, lock/cond initialised */
	pthread_t thread;
	struct ds18b20_worker w;
	enum ds18b20_phase phase;
	bool timeout_counted;
	uint64_t cycle_start_us;
	char text[DS18B20_TEXT_MAX + 1]; /* the loop's copy of the last result */
};

/* Read all of FILE (at most DS18B20_TEXT_MAX + 1 bytes) into W's text. -errno on failure. */
static int ds18b20_read_file(const char *file, char *text, size_t *ret_len)
{
	size_t len = 0;
	ssize_t n;
	int fd, r = 0;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < DS18B20_TEXT_MAX + 1) {
		n = read(fd, text + len, DS18B20_TEXT_MAX + 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	text[len < DS18B20_TEXT_MAX ? len : DS18B20_TEXT_MAX] = '\0';
	*ret_len = len;
	return r;
}

static void *ds18b20_worker_main(void *arg)
{
	struct ds18b20_worker *w = arg;
	char text[DS18B20_TEXT_MAX + 1];
	size_t len = 0;
	int r;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->request && !w->quit)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->quit)
			break;
		w->request = false;
		pthread_mutex_unlock(&w->lock);

		r = ds18b20_read_file(w->file, text, &len); /* blocks for the conversion */

		pthread_mutex_lock(&w->lock);
		w->err = r;
		w->len = len;
		memcpy(w->text, text, sizeof(text));
		w->done = true;
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void ds18b20_fini(struct sg_dev *dev)
{
	struct ds18b20_state *st = dev->state;

	if (!st || !st->running)
		return;
	pthread_mutex_lock(&st->w.lock);
	st->w.quit = true;
	pthread_cond_signal(&st->w.cond);
	pthread_mutex_unlock(&st->w.lock);
	pthread_join(st->thread, NULL);
	pthread_cond_destroy(&st->w.cond);
	pthread_mutex_destroy(&st->w.lock);
	st->running = false;
}

static int ds18b20_init(struct sg_dev *dev)
{
	struct ds18b20_state *st = dev->state;
	const struct ds18b20_opts *o = dev->opts;
	pthread_attr_t attr;
	sigset_t all, old;
	int r;

	if (!st || !o)
		return -EINVAL;
	if (access(o->file, R_OK) < 0)
		return -errno;

	memset(&st->w, 0, sizeof(st->w));
	snprintf(st->w.file, sizeof(st->w.file), "%s", o->file);
	st->phase = DS18B20_PHASE_REQUEST;
	if ((r = pthread_mutex_init(&st->w.lock, NULL)) != 0)
		return -r;
	if ((r = pthread_cond_init(&st->w.cond, NULL)) != 0)
		goto err_mutex;
	if ((r = pthread_attr_init(&attr)) != 0)
		goto err_cond;
	pthread_attr_setstacksize(&attr, DS18B20_STACK_SIZE);
	/* the worker takes no signals: they stay with the loop's signalfd */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&st->thread, &attr, ds18b20_worker_main, &st->w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (r != 0)
		goto err_cond;
	st->running = true;
	return 0;

err_cond:
	pthread_cond_destroy(&st->w.cond);
err_mutex:
	pthread_mutex_destroy(&st->w.lock);
	return -r;
}

/* Parse the w1_slave text in S; emit or count. */
static void ds18b20_parse(struct sg_dev *dev, char *s, size_t len)
{
	char *nl, *t, *end;
	size_t l1;
	long mc;

	if (len == 0) {
		sg_dev_fail(dev, SG_FAIL_IO, "empty read: the kernel could not read the sensor");
		return;
	}
	if (len > DS18B20_TEXT_MAX || strlen(s) != len) {
		sg_dev_fail(dev, SG_FAIL_SYNTAX, "not a w1_slave file (too long or binary)");
		return;
	}
	nl = strchr(s, '\n');
	if (!nl) {
		sg_dev_fail(dev, SG_FAIL_SYNTAX, "w1_slave: one line only");
		return;
	}
	*nl = '\0';
	l1 = strlen(s);
	while (l1 > 0 && (s[l1 - 1] == ' ' || s[l1 - 1] == '\r'))
		s[--l1] = '\0';
	if (l1 >= 2 && strcmp(s + l1 - 2, "NO") == 0) {
		sg_dev_fail(dev, SG_FAIL_CHECKSUM, "w1_slave: crc NO");
		return;
	}
	if (l1 < 3 || strcmp(s + l1 - 3, "YES") != 0 || !strstr(s, "crc=")) {
		sg_dev_fail(dev, SG_FAIL_SYNTAX, "w1_slave: first line does not end in YES/NO");
		return;
	}
	t = strstr(nl + 1, "t=");
	if (!t) {
		sg_dev_fail(dev, SG_FAIL_SYNTAX, "w1_slave: no t= on the second line");
		return;
	}
	t += 2;
	errno = 0;
	mc = strtol(t, &end, 10);
	if (end == t || errno == ERANGE || (*end != '\0' && *end != '\n' && *end != '\r' && *end != ' ')) {
		sg_dev_fail(dev, SG_FAIL_SYNTAX, "w1_slave: t= is not an integer");
		return;
	}
	if (mc == DS18B20_POWER_ON_MC) {
		sg_dev_fail(dev, SG_FAIL_INSANE, "85.000 °C is the power-on value: no conversion took place");
		return;
	}
	if (mc < DS18B20_MIN_MC || mc > DS18B20_MAX_MC) {
		sg_dev_fail(dev, SG_FAIL_INSANE, "temperature outside -55..125 °C");
		return;
	}
	sg_dev_emit_number(dev, "temperature", (double)mc / 1000.0, "°C");
}

static int ds18b20_poll(struct sg_dev *dev, uint64_t *ret_delay_us)
{
	struct ds18b20_state *st = dev->state;
	uint64_t now = now_mono_us(), interval_us;
	size_t len;
	int err;

	if (!st || !st->running)
		return -EINVAL;
	if (st->phase == DS18B20_PHASE_REQUEST) {
		pthread_mutex_lock(&st->w.lock);
		st->w.request = true;
		pthread_cond_signal(&st->w.cond);
		pthread_mutex_unlock(&st->w.lock);
		st->cycle_start_us = now;
		st->timeout_counted = false;
		st->phase = DS18B20_PHASE_WAIT;
		*ret_delay_us = DS18B20_CONVERT_US + DS18B20_MARGIN_US;
		return 0;
	}

	pthread_mutex_lock(&st->w.lock);
	if (!st->w.done) {
		pthread_mutex_unlock(&st->w.lock);
		if (!st->timeout_counted && now - st->cycle_start_us > DS18B20_TIMEOUT_US) {
			st->timeout_counted = true;
			sg_dev_fail(dev, SG_FAIL_TIMEOUT, "w1_slave read still blocked in the kernel after 10 s");
		}
		*ret_delay_us = DS18B20_RECHECK_US;
		return 0;
	}
	st->w.done = false;
	err = st->w.err;
	len = st->w.len;
	memcpy(st->text, st->w.text, sizeof(st->text));
	pthread_mutex_unlock(&st->w.lock);

	st->phase = DS18B20_PHASE_REQUEST;
	if (err < 0)
		return err;
	ds18b20_parse(dev, st->text, len);
	interval_us = dev->interval_s > 0 ? (uint64_t)(dev->interval_s * 1e6) : 0;
	now = now_mono_us();
	*ret_delay_us = interval_us > now - st->cycle_start_us ? interval_us - (now - st->cycle_start_us) : 0;
	return 0;
}

/* `path = "/sys/bus/w1/devices/28-..."` or just `path = "28-..."`: required. */
static int ds18b20_parse_options(const config_setting_t *device, void **ret_opts, struct sg_opt_error *err)
{
	const config_setting_t *s = device ? config_setting_get_member(device, "path") : NULL;
	struct ds18b20_opts *o;
	const char *p;
	int n;

	if (!ret_opts)
		return -EINVAL;
	if (!s || config_setting_type(s) != CONFIG_TYPE_STRING || !*(p = config_setting_get_string(s))) {
		if (err) {
			err->line = s ? (int)config_setting_source_line(s) : 0;
			snprintf(err->msg, sizeof(err->msg), "needs path = \"/sys/bus/w1/devices/28-...\" "
			         "(the sensor's directory, or just its id \"28-...\")");
		}
		return -EINVAL;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	if (strchr(p, '/'))
		n = snprintf(o->file, sizeof(o->file), "%s%s" DS18B20_FILE, p, p[strlen(p) - 1] == '/' ? "" : "/");
	else
		n = snprintf(o->file, sizeof(o->file), DS18B20_SYSFS_DIR "%s/" DS18B20_FILE, p);
	if (n < 0 || (size_t)n >= sizeof(o->file)) {
		free(o);
		if (err) {
			err->line = (int)config_setting_source_line(s);
			snprintf(err->msg, sizeof(err->msg), "path is too long");
		}
		return -EINVAL;
	}
	*ret_opts = o;
	return 0;
}

static void ds18b20_free_options(void *opts)
{
	free(opts);
}

static const struct sg_field_info ds18b20_fields[] = {
	{.name = "temperature", .unit = "°C", .device_class = "temperature", .state_class = "measurement"},
	{.name = NULL},
};

const struct sg_driver sg_driver_ds18b20 = {
	.name = "ds18b20",
	.description = "Maxim DS18B20 (and DS18S20/DS1822/DS1825) temperature via 1-Wire sysfs (w1_therm)",
	.bus = SG_BUS_NONE,
	.default_baud = 0,
	.default_interval_s = 30.0,
	.fields = ds18b20_fields,
	.option_keys = NULL, /* `path` is a common device key */
	.parse_options = ds18b20_parse_options,
	.free_options = ds18b20_free_options,
	.state_size = sizeof(struct ds18b20_state),
	.init = ds18b20_init,
	.fini = ds18b20_fini,
	.feed = NULL,
	.reset = NULL,
	.poll = ds18b20_poll,
};
