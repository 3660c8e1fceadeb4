/* SPDX-License-Identifier: MIT */
/*
 * gateway_devices.c — the devices on the loop: opened on their bus (a
 * shared serial line, I2C, a driver's own socket), polled on a timer or
 * woken by their descriptor, closed after a failure and reopened with
 * exponential backoff (supervise.h: 1 s .. 60 s, jittered) while the rest of
 * the gateway keeps running; their readings to the mapper and on to
 * gw_route(); expire_after; the timeout filters' timer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../drivers/bus_i2c.h"
#include "../drivers/line.h"
#include "gateway_int.h"
#include "health.h"
#include "serial_lines.h"

/* A problem of device D, logged when it differs from the last one (supervise.h). */
#define device_problem(d, ...) supervise_problem(&(d)->sup, (d)->cfg->name, __VA_ARGS__)
/* Device timers: sd-event's default accuracy (0 = 250 ms) would stretch a 9 ms conversion wait. */
#define DEVICE_TIMER_ACCURACY_US 1000

static void device_recovered(struct gw_device *d);

/*
 * expire_after: a device that has produced no reading for expire_after
 * seconds is "offline" on <base>/<device>/status (retained, QoS 1), and
 * "online" again with its next reading. Any reading counts, published or
 * filtered by the mapper: this is about the device, not the topics.
 */
static void device_set_available(struct gw_device *d, bool online)
{
	char topic[512];
	struct sg_message msg;
	const char *payload = online ? config_birth_payload(&d->g->cfg->mqtt) : config_will_payload(&d->g->cfg->mqtt);

	if (d->avail == (online ? 1 : -1))
		return;
	d->avail = online ? 1 : -1;
	snprintf(topic, sizeof(topic), "%s/%s/status", d->g->cfg->base_topic, d->cfg->name);
	if (online)
		log_full(LOG_INFO, d->cfg->name, topic, "reading again: %s", payload);
	else
		log_full(LOG_NOTICE, d->cfg->name, topic, "no reading for %g s: %s", d->cfg->expire_after_s, payload);
	msg = (struct sg_message){
		.topic = topic,
		.payload = payload,
		.payload_len = strlen(payload),
		.qos = 1,
		.retain = true,
		.offline = SG_OFFLINE_LAST,
	};
	gw_route(d->g, &msg);
}

/* When the device expires if nothing comes before; "never" for absurdly long settings. */
static uint64_t device_expire_at(const struct gw_device *d)
{
	double us = d->cfg->expire_after_s * 1e6;

	return us >= 1e15 ? UINT64_MAX : now_mono_us() + (uint64_t)us;
}

static int on_device_expire(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s;
	(void)usec;
	device_set_available(ud, false);
	return 0;
}

/* A reading arrived: the device is alive for another expire_after seconds. */
static void device_alive(struct gw_device *d)
{
	if (!d->expire)
		return;
	sd_event_source_set_time(d->expire, device_expire_at(d));
	sd_event_source_set_enabled(d->expire, SD_EVENT_ONESHOT);
	device_set_available(d, true);
}


/*
 * Timeout filters (filters.h): one timer for all readings, at the mapper's
 * earliest deadline; off while no chain waits. Re-armed after every reading
 * the mapper sees and after every firing. A no-op without timeout filters.
 */
void gw_filters_arm(struct sg_gateway *g)
{
	uint64_t at;

	if (!g->filter_timer)
		return;
	at = mapper_deadline(g->mapper);
	if (at == g->filter_at)
		return; /* the common case: no timeout filters at all, nothing to touch per reading */
	g->filter_at = at;
	if (at == UINT64_MAX) {
		sd_event_source_set_enabled(g->filter_timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(g->filter_timer, at);
	sd_event_source_set_enabled(g->filter_timer, SD_EVENT_ONESHOT);
}

static int on_filter_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;
	struct sg_message msg;
	uint64_t now = now_mono_us();
	int k;

	(void)s;
	(void)usec;
	g->filter_at = UINT64_MAX; /* a oneshot timer is off once it fired */
	while ((k = mapper_tick(g->mapper, now, &msg)) > 0)
		gw_route(g, &msg);
	if (k < 0)
		log_warning("timeout filter: value not published: %s, ignoring", strerror(-k));
	gw_filters_arm(g);
	return 0;
}

/* The timeout filters' timer, off until a chain waits. 0 or -errno. */
int gw_filters_start(struct sg_gateway *g)
{
	int r = sd_event_add_time(g->loop, &g->filter_timer, CLOCK_MONOTONIC, UINT64_MAX, DEVICE_TIMER_ACCURACY_US,
	                          on_filter_timer, g);

	if (r < 0)
		return r;
	sd_event_source_set_enabled(g->filter_timer, SD_EVENT_OFF);
	g->filter_at = UINT64_MAX;
	return 0;
}

static void on_reading(struct sg_dev *dev, const struct sg_reading *r, void *ud)
{
	struct gw_device *d = ud;
	struct sg_gateway *g = d->g;
	struct sg_message msg;
	int k;

	(void)dev;
	g->n_readings++;
	device_alive(d);
	if (d->watch_seen)
		gw_discovery_note(d, r->field);
	if (d->cfg->driver->io && supervise_troubled(&d->sup))
		device_recovered(d);
	k = mapper_map(g->mapper, d->index, r, now_mono_us(), &msg);
	gw_filters_arm(g);
	if (k < 0) {
		g->n_map_errors++;
		if (ratelimit_allow(&d->fail_rl, now_mono_us(), NULL))
			log_full(LOG_WARNING, d->cfg->name, NULL, "reading \"%s\" not published: %s, ignoring",
			         r->field, k == -EINVAL ? "field is not a valid topic level" : strerror(-k));
		return;
	}
	if (k == 0)
		return;
	if (g->cfg_mqtt->mqtt.cloud != SG_CLOUD_NONE)
		gw_batch_add(d, r->field, &msg);
	else
		gw_route(g, &msg);
}

/*
 * Durable values of a device (a counter's total) in the spool's file, as
 * "<device>/<key>": a device renamed starts afresh. -EAGAIN while the spool
 * cannot be opened (the driver waits for it).
 */
static int on_value_load(struct sg_dev *dev, const char *key, int64_t *ret)
{
	struct gw_device *d = dev->userdata;
	char name[256];

	if (!d->g->spool)
		return -EAGAIN;
	snprintf(name, sizeof(name), "%s/%s", d->cfg->name, key);
	return spool_value_get(d->g->spool, name, ret);
}

static int on_value_save(struct sg_dev *dev, const char *key, int64_t value)
{
	struct gw_device *d = dev->userdata;
	char name[256];

	if (!d->g->spool)
		return -EAGAIN;
	snprintf(name, sizeof(name), "%s/%s", d->cfg->name, key);
	return spool_value_save(d->g->spool, name, value);
}

static void on_device_fail(struct sg_dev *dev, enum sg_fail f, const char *detail, void *ud)
{
	struct gw_device *d = ud;
	unsigned suppressed;

	if (!ratelimit_allow(&d->fail_rl, now_mono_us(), &suppressed))
		return;
	log_full(LOG_WARNING, d->cfg->name, NULL, "dropped input: %s%s%s (%llu so far)%s", sg_fail_name(f),
	         detail ? ": " : "", detail ? detail : "", (unsigned long long)dev->stats.fail[f],
	         suppressed ? "; more not logged" : "");
}

void gw_device_close(struct gw_device *d)
{
	d->watch = sd_event_source_disable_unref(d->watch); /* before fini() closes its fd */
	if (d->up && d->dev.driver->fini)
		d->dev.driver->fini(&d->dev);
	d->up = false;
	if (d->i2c) {
		i2c_bus_close(d->i2c);
		d->i2c = NULL;
		d->dev.i2c = NULL;
	} else if (d->dev.line) {
		line_dev_detach(&d->dev);
	} else if (d->dev.fd >= 0) {
		close(d->dev.fd);
	}
	d->dev.fd = -1;
	d->dev.watch_fd = -1;
	free(d->dev.state);
	d->dev.state = NULL;
}

/* The device's serial line failed (unplugged, I/O error): closed for every user; this one reopens later. */
static void on_line_down(struct sg_dev *dev, int err)
{
	struct gw_device *d = dev->userdata;

	device_problem(d, "port %s: %s; reopening", d->dev.path, err == -EIO ? "hang-up or I/O error" : strerror(-err));
	gw_device_close(d);
	gw_device_schedule_reopen(d);
}

static int on_watch_io(sd_event_source *s, int fd, uint32_t revents, void *ud);

/*
 * Drivers that own a descriptor (driver->io): watch dev.watch_fd for
 * dev.watch_events, as the driver left them. The fd stays the same from
 * init() to fini(); only the events change. 0 or -errno.
 */
static int device_watch(struct gw_device *d)
{
	int r;

	if (!d->dev.driver->io || d->dev.watch_fd < 0)
		return 0;
	if (d->watch)
		return sd_event_source_set_io_events(d->watch, d->dev.watch_events);
	r = sd_event_add_io(d->g->loop, &d->watch, d->dev.watch_fd, d->dev.watch_events, on_watch_io, d);
	if (r < 0)
		log_full(LOG_ERR, d->cfg->name, NULL, "cannot watch its socket: %s", strerror(-r));
	return r;
}

/* A device whose driver has declared itself failed: closed, and reopened with backoff. */
static void device_failed(struct gw_device *d, const char *what, int r)
{
	device_problem(d, "%s: %s: %s; retrying", d->dev.path ? d->dev.path : d->cfg->driver->name, what,
	               strerror(-r));
	gw_device_close(d);
	gw_device_schedule_reopen(d);
}

/*
 * Link quality counts good frames (health.h). Drivers of framed protocols
 * count them themselves (stats.frames); for the others (a polled I2C chip,
 * a GPIO input) a poll or io call that produced readings and counted no
 * frame is one good frame.
 */
static void device_count_good(struct gw_device *d, uint64_t frames_before, uint64_t readings_before)
{
	if (d->dev.stats.readings > readings_before && d->dev.stats.frames == frames_before)
		d->n_good_polls++;
}

static int on_watch_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct gw_device *d = ud;
	uint64_t delay = UINT64_MAX;
	int r;
	(void)s;
	(void)fd;

	uint64_t frames = d->dev.stats.frames, readings = d->dev.stats.readings;

	r = d->cfg->driver->io(&d->dev, revents, &delay);
	device_count_good(d, frames, readings);
	if (r == 0)
		r = device_watch(d);
	if (r < 0) {
		device_failed(d, "connection", r);
		return 0;
	}
	if (delay != UINT64_MAX) {
		sd_event_source_set_time(d->timer, now_mono_us() + delay);
		sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
	}
	return 0;
}

static int device_open_bus(struct gw_device *d)
{
	const struct sg_device_cfg *c = d->cfg;
	int r;

	switch (c->driver->bus) {
	case SG_BUS_SERIAL: {
		struct sg_line_settings settings = {.baud = c->baud, .framing = c->framing};
		const struct sg_line *l;
		size_t users, streams;
		char fr[8];

		r = line_dev_attach(gw_lines_set(d->g->lines), &d->dev, c->port, c->usb_serial, &settings, on_line_down);
		if (r < 0) {
			if (c->usb_serial && (r == -ENOENT || r == -ENOTUNIQ))
				device_problem(d, "no%s serial port with USB serial number %s", r == -ENOTUNIQ ? " single" : "",
				               c->usb_serial);
			else if (r == -EBUSY && c->serial_line >= 0)
				device_problem(d, "cannot open %s: %s (or its line is open with other settings since a reload)",
				               c->port ? c->port : c->usb_serial, strerror(-r));
			else
				device_problem(d, "cannot open %s: %s", c->port ? c->port : c->usb_serial, strerror(-r));
			return r;
		}
		l = line_of(d->dev.line);
		d->dev.path = line_path(l);
		d->dev.fd = -1; /* the line owns the port */
		users = line_users(l, &streams);
		if (!supervise_troubled(&d->sup)) /* a reopening logs "open again" instead */
			log_full(LOG_INFO, c->name, NULL, "%s open at %d baud %s (%s)%s", d->dev.path, c->baud,
			         serial_framing_text(&c->framing, fr, sizeof(fr)),
			         line_via_libserialport(l) ? "libserialport" : "termios",
			         users > 1 ? ", a shared line" : "");
		return 0;
	}
	case SG_BUS_I2C:
		r = i2c_bus_open(c->bus, c->address, &d->i2c);
		if (r < 0) {
			device_problem(d, "cannot open %s at address 0x%02x: %s%s", c->bus, c->address, strerror(-r),
			               r == -EBUSY ? " (a kernel driver owns that address)" : "");
			return r;
		}
		d->dev.fd = i2c_bus_fd(d->i2c);
		d->dev.i2c = i2c_bus_device(d->i2c);
		return 0;
	default:
		d->dev.fd = -1;
		return 0;
	}
}

static int on_device_timer(sd_event_source *s, uint64_t usec, void *ud);

/* The device works again after a problem: say so once, and start the next backoff from the bottom. */
static void device_recovered(struct gw_device *d)
{
	if (supervise_recovered(&d->sup, d->cfg->name, d->dev.path ? d->dev.path : d->cfg->driver->name)) {
		d->n_reconnects++;
		if (d->g->cmds && d->dev.path) { /* the actuators on the same port: now, not after their backoff */
			commands_hardware_back(d->g->cmds, d->dev.path, now_mono_us());
			gw_actuators_watch(d->g);
		}
	}
}

int gw_device_open(struct gw_device *d)
{
	const struct sg_driver *drv = d->cfg->driver;
	uint64_t now = now_mono_us();
	int r;

	r = device_open_bus(d);
	if (r < 0)
		return r;
	if (drv->state_size) {
		d->dev.state = calloc(1, drv->state_size);
		if (!d->dev.state) {
			gw_device_close(d);
			return -ENOMEM;
		}
	}
	if (drv->init) {
		d->dev.why = NULL;
		d->dev.note = NULL;
		r = drv->init(&d->dev);
		if (r < 0) {
			device_problem(d, "%s: initialisation failed: %s%s%s", d->dev.path ? d->dev.path : drv->name,
			               strerror(-r), d->dev.why ? ": " : "", d->dev.why ? d->dev.why : "");
			gw_device_close(d);
			return r;
		}
	}
	d->up = true;
	r = device_watch(d);
	if (r < 0) {
		gw_device_close(d);
		return r;
	}
	if (d->dev.note && !supervise_troubled(&d->sup)) /* a reopening logs "open again" instead */
		log_full(LOG_INFO, d->cfg->name, NULL, "%s: %s", d->dev.path ? d->dev.path : drv->name, d->dev.note);
	/* A driver with its own socket is only connecting now: it is back with its first reading. */
	if (!drv->io)
		device_recovered(d);
	if (drv->poll) {
		sd_event_source_set_time(d->timer, now);
		sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
	} else {
		sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
	}
	return 0;
}

void gw_device_schedule_reopen(struct gw_device *d)
{
	uint64_t delay = supervise_retry(&d->sup, d->cfg->name);

	sd_event_source_set_time(d->timer, now_mono_us() + delay);
	sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
}

/* The device timer either reopens a closed device or runs one poll step. */
static int on_device_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_device *d = ud;
	uint64_t delay = 0, frames, readings;
	int r;
	(void)s;
	(void)usec;

	if (!d->up) {
		if (gw_device_open(d) < 0)
			gw_device_schedule_reopen(d);
		return 0;
	}
	frames = d->dev.stats.frames;
	readings = d->dev.stats.readings;
	r = d->cfg->driver->poll(&d->dev, &delay);
	device_count_good(d, frames, readings);
	if (r == 0)
		r = device_watch(d);
	if (r == 0)
		r = line_dev_want(&d->dev); /* request drivers: a cycle is ready; the line gives the turns */
	if (r < 0) {
		if (d->cfg->driver->io)
			device_failed(d, "connection", r);
		else {
			device_problem(d, "read failed: %s; retrying", strerror(-r));
			gw_device_close(d);
			gw_device_schedule_reopen(d);
		}
		return 0;
	}
	sd_event_source_set_time(d->timer, now_mono_us() + delay);
	sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
	return 0;
}

/* Point D at configuration entry C (number INDEX); the bus binding follows C. */
void gw_device_bind(struct gw_device *d, const struct sg_device_cfg *c, size_t index)
{
	d->cfg = c;
	d->index = index;
	d->dev.name = c->name;
	d->dev.driver = c->driver;
	d->dev.opts = c->opts;
	d->dev.path = c->port ? c->port : (c->bus ? c->bus : c->path);
	if (c->driver->bus == SG_BUS_NONE)
		d->dev.path = c->path;
	if (c->usb_serial)
		d->dev.path = d->dev.line ? line_path(line_of(d->dev.line)) : c->usb_serial;
	d->dev.address = c->address;
	d->dev.interval_s = c->interval_s;
	d->watch_seen = false;
	for (size_t k = 0; c->all_fields && c->driver->fields && k < 64 && c->driver->fields[k].name; k++)
		d->watch_seen |= c->driver->fields[k].when_seen;
}

/* expire_after as configured for D now: (re)armed from now, or dropped. 0 or -errno. */
int gw_device_expire_setup(struct gw_device *d)
{
	if (d->cfg->expire_after_s <= 0) {
		d->expire = sd_event_source_disable_unref(d->expire);
		return 0;
	}
	if (!d->expire)
		return sd_event_add_time(d->g->loop, &d->expire, CLOCK_MONOTONIC, device_expire_at(d),
		                         DEVICE_TIMER_ACCURACY_US, on_device_expire, d);
	sd_event_source_set_time(d->expire, device_expire_at(d));
	return sd_event_source_set_enabled(d->expire, SD_EVENT_ONESHOT);
}

/* A device for configuration entry C (number INDEX), opened now or scheduled for a retry. NULL on failure. */
struct gw_device *gw_device_new(struct sg_gateway *g, const struct sg_device_cfg *c, size_t index)
{
	struct gw_device *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return NULL;
	d->g = g;
	d->fail_rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(60, 5);
	supervise_init(&d->sup);
	d->dev = (struct sg_dev){
		.fd = -1,
		.watch_fd = -1,
		.emit = on_reading,
		.on_fail = on_device_fail,
		.value_load = on_value_load,
		.value_save = on_value_save,
		.userdata = d,
	};
	gw_device_bind(d, c, index);
	/* without it (ENOMEM) the device works and has no link quality */
	d->health = health_window_new(g->cfg_mqtt->health.window_s, g->cfg_mqtt->health.interval_s);
	r = sd_event_add_time(g->loop, &d->timer, CLOCK_MONOTONIC, UINT64_MAX, DEVICE_TIMER_ACCURACY_US,
	                      on_device_timer, d);
	if (r < 0) {
		health_window_free(d->health);
		free(d);
		errno = -r;
		return NULL;
	}
	sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
	r = gw_device_expire_setup(d);
	if (r < 0) {
		sd_event_source_disable_unref(d->timer);
		health_window_free(d->health);
		free(d);
		errno = -r;
		return NULL;
	}
	/* A device that cannot be opened now is retried; it does not stop the gateway. */
	if (gw_device_open(d) < 0)
		gw_device_schedule_reopen(d);
	return d;
}

void gw_device_free(struct gw_device *d)
{
	if (!d)
		return;
	gw_device_close(d);
	sd_event_source_disable_unref(d->timer);
	sd_event_source_disable_unref(d->expire);
	free(d->batch);
	health_window_free(d->health);
	free(d);
}

/* After a (re)connection: drivers that hold a state (a contact's level) say it again. */
void gw_devices_refresh(struct sg_gateway *g)
{
	for (size_t i = 0; i < g->n_devs; i++) {
		struct gw_device *d = g->devs[i];

		if (d && d->up && d->cfg->driver->refresh)
			d->cfg->driver->refresh(&d->dev);
	}
}

int gw_devices_setup(struct sg_gateway *g)
{
	g->n_devs = g->cfg->n_devices;
	g->devs = calloc(g->n_devs ? g->n_devs : 1, sizeof(*g->devs));
	if (!g->devs)
		return -ENOMEM;
	for (size_t i = 0; i < g->n_devs; i++) {
		g->devs[i] = gw_device_new(g, &g->cfg->devices[i], i);
		if (!g->devs[i])
			return -errno;
	}
	return 0;
}

/* Rebind an open device to entry C and initialise its driver again on the open bus. */
void gw_device_reinit(struct gw_device *d, const struct sg_device_cfg *c, size_t index)
{
	const struct sg_driver *drv = c->driver;
	int r;

	if (!d->up) { /* closed and waiting for a retry: the retry uses the new settings */
		gw_device_bind(d, c, index);
		return;
	}
	d->watch = sd_event_source_disable_unref(d->watch); /* before fini() closes its fd */
	if (drv->fini)
		drv->fini(&d->dev);
	d->dev.watch_fd = -1;
	gw_device_bind(d, c, index);
	memset(&d->dev.stats, 0, sizeof(d->dev.stats));
	d->n_good_polls = 0; /* with the driver's counters: the health window starts afresh */
	if (drv->state_size)
		memset(d->dev.state, 0, drv->state_size);
	d->dev.why = NULL;
	r = drv->init ? drv->init(&d->dev) : 0;
	if (r == 0 && (r = device_watch(d)) < 0 && drv->fini)
		drv->fini(&d->dev);
	if (r < 0) {
		d->up = false; /* fini must not run on a state that init refused */
		device_problem(d, "%s: initialisation failed: %s%s%s", d->dev.path ? d->dev.path : drv->name,
		               strerror(-r), d->dev.why ? ": " : "", d->dev.why ? d->dev.why : "");
		gw_device_close(d);
		gw_device_schedule_reopen(d);
		return;
	}
	if (drv->poll) {
		sd_event_source_set_time(d->timer, now_mono_us());
		sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
	}
}
