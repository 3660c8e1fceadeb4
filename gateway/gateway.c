/* SPDX-License-Identifier: MIT */
/*
 * gateway.c — the event loop and the wiring; nothing else includes the parts.
 *
 * One sd-event loop, one thread:
 *  - an io source per open serial port (bytes go to the driver's feed());
 *  - a timer per polled device (driver->poll() says when it is due next);
 *  - an io source and a timer for the MQTT connection (mqtt.h says which fd,
 *    which events and when; they are re-read after every call into it);
 *  - SIGTERM/SIGINT through signalfd; the systemd watchdog from the loop.
 * A device whose port vanishes or whose bus fails is closed and reopened with
 * exponential backoff (1 s .. 60 s); the rest of the gateway keeps running.
 * Readings flow driver -> emit() -> mapper -> route() -> spool -> mqtt:
 *  - QoS 0 while connected (and nothing older waiting in the spool) goes
 *    straight to mqtt; everything else is put into the spool, in one batch
 *    per loop iteration;
 *  - a defer source (on_flush) commits the batch, then hands the oldest
 *    committed messages to mqtt while fewer than mqtt_send_quota() are in
 *    flight; the rest wait on disk, not in RAM;
 *  - mqtt's published(mid) removes the message from the spool (PUBACK,
 *    PUBCOMP; QoS 0 once written); QoS 1/2 in flight when the link drops are
 *    resent by libmosquitto itself, QoS 0 ones are requeued;
 *  - a full spool, a full disk or no spool at all never stop the readings:
 *    they are published directly when connected, counted as dropped when not.
 */
#include "gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/i2c-dev.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "../drivers/bus_serial.h"
#include "clock.h"
#include "log.h"
#include "mapper.h"
#include "mqtt.h"
#include "spool.h"

#define REOPEN_MIN_US   (1 * 1000000ULL)
#define REOPEN_MAX_US   (60 * 1000000ULL)
#define STATUS_EVERY_US (10 * 1000000ULL)
#define READ_CHUNK      4096
#define SPOOL_REOPEN_US (30 * 1000000ULL)
#define EARLY_ACKS      64   /* published() calls seen inside one mqtt_publish() */

struct gw_device {
	struct sg_gateway *g;
	const struct sg_device_cfg *cfg;
	size_t index;
	struct sg_dev dev;
	struct sg_serial *serial;
	char *port;                 /* resolved serial port path (usb_serial) */
	sd_event_source *io;
	sd_event_source *timer;
	bool up;                    /* bus open and driver initialised */
	uint64_t backoff_us;
	char last_error[160];       /* last open/read error logged, to log changes only */
	struct sg_ratelimit fail_rl;
};

struct sg_gateway {
	struct sg_config *cfg;
	sd_event *loop;
	struct sg_mapper *mapper;
	struct sg_mqtt *mqtt;
	sd_event_source *mqtt_io;
	sd_event_source *mqtt_timer;
	int mqtt_io_fd;
	unsigned mqtt_io_gen;
	sd_event_source *status_timer;
	struct gw_device *devs;
	size_t n_devs;
	int exit_code;

	/* store and forward */
	struct sg_spool *spool;          /* NULL while it cannot be opened */
	sd_event_source *flush;          /* defer: commit the batch, then hand over */
	sd_event_source *spool_timer;    /* reopen a spool that could not be opened */
	sd_event_source *stats_timer;
	char *stats_topic;
	bool publishing;                 /* inside mqtt_publish() from pump() */
	int early[EARLY_ACKS];           /* mids acknowledged meanwhile (QoS 0 is written at once) */
	unsigned n_early;
	bool spool_full;                 /* in a "spool full" episode (logged once) */
	uint64_t full_dropped_at_start;
	bool spool_failing;              /* in a write-error episode (logged once) */
	uint64_t direct_while_failing, dropped_while_failing;

	/* counters */
	uint64_t n_readings, n_published, n_dropped, n_map_errors, n_skipped;
	uint64_t readings_at_last_status;
	uint64_t last_status_us;
	uint64_t readings_at_last_stats;
	uint64_t last_stats_us;
	uint64_t started_us;
	struct sg_ratelimit drop_rl;
};

/* ---- MQTT ------------------------------------------------------------------------------------ */

static int on_mqtt_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct sg_gateway *g = ud;
	(void)s;
	(void)fd;
	mqtt_io(g->mqtt, (short)revents);
	return 0;
}

static int on_mqtt_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;
	(void)s;
	(void)usec;
	mqtt_timer(g->mqtt);
	return 0;
}

/* mqtt.h: re-read fd, events and deadline after every call into the client. */
static void on_mqtt_watch(void *ud)
{
	struct sg_gateway *g = ud;
	int fd = mqtt_fd(g->mqtt);
	uint32_t events = (uint32_t)mqtt_events(g->mqtt) & (EPOLLIN | EPOLLOUT);
	uint64_t deadline = mqtt_deadline(g->mqtt);
	int r;

	unsigned gen = mqtt_fd_generation(g->mqtt);

	if (fd != g->mqtt_io_fd || gen != g->mqtt_io_gen || !g->mqtt_io) {
		g->mqtt_io = sd_event_source_disable_unref(g->mqtt_io);
		g->mqtt_io_fd = -1;
		g->mqtt_io_gen = gen;
		if (fd >= 0) {
			r = sd_event_add_io(g->loop, &g->mqtt_io, fd, events, on_mqtt_io, g);
			if (r < 0)
				log_error("mqtt: cannot watch socket: %s", strerror(-r));
			else
				g->mqtt_io_fd = fd;
		}
	} else if (g->mqtt_io) {
		sd_event_source_set_io_events(g->mqtt_io, events);
	}
	if (deadline == UINT64_MAX) {
		sd_event_source_set_enabled(g->mqtt_timer, SD_EVENT_OFF);
	} else {
		sd_event_source_set_time(g->mqtt_timer, deadline);
		sd_event_source_set_enabled(g->mqtt_timer, SD_EVENT_ONESHOT);
	}
}

static void update_status(struct sg_gateway *g);

static void flush_later(struct sg_gateway *g);

static void on_mqtt_connected(void *ud, bool session_present)
{
	struct sg_gateway *g = ud;
	(void)session_present;
	flush_later(g); /* hand over what waited; not from inside libmosquitto's callback */
	update_status(g);
}

static void on_mqtt_disconnected(void *ud)
{
	struct sg_gateway *g = ud;
	/* QoS 1/2 in flight are resent by libmosquitto after the reconnect; QoS 0 ones are gone. */
	if (g->spool)
		spool_requeue(g->spool, 0);
	update_status(g);
}

static void on_mqtt_message(void *ud, const struct sg_mqtt_msg *msg)
{
	(void)ud;
	log_debug("mqtt: message on %s (%zu bytes), no handler", msg->topic, msg->len);
}

static void spool_trouble(struct sg_gateway *g, int r);

static void on_mqtt_published(void *ud, int mid)
{
	struct sg_gateway *g = ud;
	int r;

	if (g->publishing) { /* a QoS 0 message written at once: sorted out when mqtt_publish() returns */
		if (g->n_early < EARLY_ACKS)
			g->early[g->n_early++] = mid;
		return;
	}
	if (!g->spool)
		return;
	/* 0: not from the spool (QoS 0 sent directly, our status message) */
	r = spool_ack(g->spool, mid);
	if (r < 0)
		spool_trouble(g, r);
	if (r != 0)
		flush_later(g); /* commit the removal, hand over more */
}

/* ---- store and forward ----------------------------------------------------------------------- */

static void flush_later(struct sg_gateway *g)
{
	if (g->flush)
		sd_event_source_set_enabled(g->flush, SD_EVENT_ONESHOT);
}

/* A write error of the spool (disk full, I/O error): logged once per episode. */
static void spool_trouble(struct sg_gateway *g, int r)
{
	if (g->spool_failing)
		return;
	g->spool_failing = true;
	g->direct_while_failing = g->n_published;
	g->dropped_while_failing = g->n_dropped;
	log_error("spool: cannot write %s: %s; publishing readings directly while connected, dropping them "
	          "while not, retrying",
	          spool_path(g->spool), r == -ENOSPC ? "no space left on the device" : strerror(-r));
}

/* End the episodes whose cause is gone; called after every flush. */
static void spool_episodes(struct sg_gateway *g)
{
	struct sg_spool_stats st;

	if (g->spool_failing && !spool_failed(g->spool)) {
		g->spool_failing = false;
		log_notice("spool: %s is writable again (meanwhile %llu readings published without it, %llu dropped)",
		           spool_path(g->spool), (unsigned long long)(g->n_published - g->direct_while_failing),
		           (unsigned long long)(g->n_dropped - g->dropped_while_failing));
	}
	if (g->spool_full) {
		spool_get_stats(g->spool, &st);
		if (st.bytes < st.limit / 10 * 9) {
			g->spool_full = false;
			log_notice("spool: below its limit again; %llu messages were dropped while it was full",
			           (unsigned long long)(st.dropped - g->full_dropped_at_start));
		}
	}
}

/* The spool reached max_size_mb: logged once per episode. */
static void spool_is_full(struct sg_gateway *g, uint64_t dropped_now)
{
	struct sg_spool_stats st;

	if (g->spool_full)
		return;
	spool_get_stats(g->spool, &st);
	g->spool_full = true;
	g->full_dropped_at_start = st.dropped - dropped_now;
	log_warning("spool: full (%d MiB, %llu messages): %s until it drains; see the dropped counter",
	            g->cfg->spool.max_size_mb, (unsigned long long)st.depth,
	            g->cfg->spool.drop_new ? "refusing new messages" : "dropping the oldest messages");
}

static void drop_reading(struct sg_gateway *g, const struct sg_message *msg, const char *why)
{
	unsigned suppressed;

	g->n_dropped++;
	if (ratelimit_allow(&g->drop_rl, now_mono_us(), &suppressed))
		log_full(LOG_WARNING, NULL, msg->topic, "dropping reading for %s: %s%s", msg->topic, why,
		         suppressed ? " (and earlier ones not logged)" : "");
}

static void publish_direct(struct sg_gateway *g, const struct sg_message *msg)
{
	int r;

	r = mqtt_publish(g->mqtt, msg->topic, msg->payload, msg->payload_len, msg->qos, msg->retain, NULL, NULL);
	if (r == 0)
		g->n_published++;
	else
		drop_reading(g, msg, r == -ENOTCONN ? "broker not connected" : strerror(-r));
}

/* Hand a mapped message on: straight to the broker, or through the spool. */
static void route(struct sg_gateway *g, const struct sg_message *msg)
{
	bool connected = mqtt_connected(g->mqtt);
	unsigned dropped = 0;
	int r;

	/* QoS 0 goes straight out, unless older messages wait (they go first). */
	if (msg->qos == 0 && connected && !(g->spool && spool_backlog(g->spool))) {
		publish_direct(g, msg);
		return;
	}
	if (!connected && msg->offline == SG_OFFLINE_DROP) {
		g->n_skipped++;
		return;
	}
	if (!g->spool) {
		if (connected)
			publish_direct(g, msg);
		else
			drop_reading(g, msg, "broker not connected and no spool");
		return;
	}
	r = spool_put(g->spool, msg->topic, msg->payload, msg->payload_len, msg->qos, msg->retain,
	              !connected && msg->offline == SG_OFFLINE_LAST ? SG_OFFLINE_LAST : SG_OFFLINE_SPOOL, &dropped);
	if (r == 0) {
		if (dropped)
			spool_is_full(g, dropped);
		flush_later(g);
	} else if (r == -ENOBUFS) {
		spool_is_full(g, 1); /* refused and counted by the spool */
	} else {
		spool_trouble(g, r);
		if (connected)
			publish_direct(g, msg);
		else
			g->n_dropped++; /* logged once, by spool_trouble() */
	}
}

static bool early_acked(struct sg_gateway *g, int mid)
{
	bool found = false;

	for (unsigned i = 0; i < g->n_early; i++) {
		if (g->early[i] == mid)
			found = true;
		else if (g->spool)
			spool_ack(g->spool, g->early[i]); /* an earlier spooled QoS 0 message, written now */
	}
	g->n_early = 0;
	return found;
}

/* Hand committed messages to mqtt, oldest first, while the quota allows. */
static void pump(struct sg_gateway *g)
{
	struct sg_spool_msg m;
	int quota, r, mid = 0;

	if (!g->spool || !mqtt_connected(g->mqtt))
		return;
	quota = mqtt_send_quota(g->mqtt);
	while ((int)spool_outstanding(g->spool) < quota) {
		r = spool_next(g->spool, &m);
		if (r < 0) {
			spool_trouble(g, r);
			return;
		}
		if (r == 0)
			return;
		g->publishing = true;
		g->n_early = 0;
		r = mqtt_publish(g->mqtt, m.topic, m.payload, m.len, m.qos, m.retain, NULL, &mid);
		g->publishing = false;
		if (r == 0) {
			g->n_published++;
			spool_sent(g->spool, m.id, mid);
			if (early_acked(g, mid))
				spool_ack(g->spool, mid);
		} else if (r == -EINVAL) {
			log_full(LOG_ERR, NULL, m.topic, "spool: message for %s cannot be published; dropping it", m.topic);
			early_acked(g, 0);
			spool_drop(g->spool, m.id);
		} else {
			early_acked(g, 0);
			return; /* not connected any more, or out of memory: later */
		}
	}
}

/* After the loop dispatched anything that put or acknowledged: commit, then hand over. */
static int on_flush(sd_event_source *s, void *ud)
{
	struct sg_gateway *g = ud;
	int r;
	(void)s;

	if (!g->spool)
		return 0;
	if (spool_pending(g->spool)) {
		r = spool_commit(g->spool);
		if (r < 0)
			spool_trouble(g, r);
	}
	pump(g);
	spool_episodes(g);
	return 0;
}

static int spool_setup(struct sg_gateway *g)
{
	struct sg_spool_info info;
	unsigned max = (unsigned)(g->cfg->mqtt.max_inflight > 0 ? g->cfg->mqtt.max_inflight : 1);

	g->spool = spool_open(&g->cfg->spool, max, &info);
	if (!g->spool) {
		int r = -errno;
		log_error("spool: cannot open %s: %s%s%s; readings are published only while the broker is connected; "
		          "retrying every %llu s",
		          info.path, r == -EBUSY ? "in use by another process" : strerror(-r), info.why[0] ? ": " : "",
		          info.why, (unsigned long long)(SPOOL_REOPEN_US / 1000000));
		return r;
	}
	if (info.aside[0])
		log_error("spool: %s was unreadable (%s); moved it aside to %s and started an empty spool", info.path,
		          info.why, info.aside);
	if (info.depth)
		log_notice("spool: %s holds %llu messages from before; sending them first", info.path,
		           (unsigned long long)info.depth);
	else
		log_info("spool: %s (limit %d MiB, sync %s)", info.path, g->cfg->spool.max_size_mb,
		         g->cfg->spool.sync_full ? "full" : "normal");
	flush_later(g);
	return 0;
}

static int on_spool_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;

	if (!g->spool && spool_setup(g) < 0) {
		sd_event_source_set_time(s, usec + SPOOL_REOPEN_US);
		sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	}
	return 0;
}

/* <base>/gateway/<id>/stats, QoS 0, not retained, skipped while not connected. */
static int on_stats_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;
	struct sg_spool_stats st = {0};
	uint64_t now = now_mono_us();
	double rate = 0;
	char buf[640];
	int n;

	sd_event_source_set_time(s, usec + (uint64_t)(g->cfg->spool.stats_interval_s * 1e6));
	/* Counted readings are on disk before they are reported. */
	if (g->spool && spool_pending(g->spool)) {
		int r = spool_commit(g->spool);
		if (r < 0)
			spool_trouble(g, r);
	}
	if (g->spool)
		spool_get_stats(g->spool, &st);
	if (g->last_stats_us && now > g->last_stats_us)
		rate = (double)(g->n_readings - g->readings_at_last_stats) * 1e6 / (double)(now - g->last_stats_us);
	g->last_stats_us = now;
	g->readings_at_last_stats = g->n_readings;
	if (!mqtt_connected(g->mqtt))
		return 0;
	n = snprintf(buf, sizeof(buf),
	             "{\"connected\":true,\"readings\":%llu,\"published\":%llu,\"acknowledged\":%llu,"
	             "\"spooled\":%llu,\"dropped\":%llu,\"spool_depth\":%llu,\"spool_bytes\":%llu,"
	             "\"in_flight\":%u,\"compacted\":%llu,\"skipped\":%llu,\"readings_per_s\":%.1f,"
	             "\"uptime_s\":%llu}",
	             (unsigned long long)g->n_readings, (unsigned long long)g->n_published,
	             (unsigned long long)st.acknowledged, (unsigned long long)st.spooled,
	             (unsigned long long)(g->n_dropped + st.dropped), (unsigned long long)st.depth,
	             (unsigned long long)st.bytes, st.outstanding, (unsigned long long)st.compacted,
	             (unsigned long long)g->n_skipped, rate, (unsigned long long)((now - g->started_us) / 1000000));
	if (n > 0 && (size_t)n < sizeof(buf))
		mqtt_publish(g->mqtt, g->stats_topic, buf, (size_t)n, 0, false, NULL, NULL);
	return 0;
}

/* ---- devices --------------------------------------------------------------------------------- */

static void device_schedule_reopen(struct gw_device *d);

static void on_reading(struct sg_dev *dev, const struct sg_reading *r, void *ud)
{
	struct gw_device *d = ud;
	struct sg_gateway *g = d->g;
	struct sg_message msg;
	int k;

	(void)dev;
	g->n_readings++;
	k = mapper_map(g->mapper, d->index, r, now_mono_us(), &msg);
	if (k < 0) {
		g->n_map_errors++;
		if (ratelimit_allow(&d->fail_rl, now_mono_us(), NULL))
			log_full(LOG_WARNING, d->cfg->name, NULL, "reading \"%s\" not published: %s, ignoring",
			         r->field, k == -EINVAL ? "field is not a valid topic level" : strerror(-k));
		return;
	}
	if (k == 0)
		return;
	route(g, &msg);
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

/* Log a device problem only when it differs from the last one logged. */
static void device_problem(struct gw_device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void device_problem(struct gw_device *d, const char *fmt, ...)
{
	char buf[sizeof(d->last_error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (strcmp(buf, d->last_error) == 0) {
		log_full(LOG_DEBUG, d->cfg->name, NULL, "%s", buf);
		return;
	}
	snprintf(d->last_error, sizeof(d->last_error), "%s", buf);
	log_full(LOG_WARNING, d->cfg->name, NULL, "%s", buf);
}

static void device_close(struct gw_device *d)
{
	if (d->up && d->dev.driver->fini)
		d->dev.driver->fini(&d->dev);
	d->up = false;
	d->io = sd_event_source_disable_unref(d->io);
	if (d->serial) {
		serial_close(d->serial);
		d->serial = NULL;
	} else if (d->dev.fd >= 0) {
		close(d->dev.fd);
	}
	d->dev.fd = -1;
	free(d->dev.state);
	d->dev.state = NULL;
}

static int on_serial_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct gw_device *d = ud;
	uint8_t buf[READ_CHUNK];
	ssize_t n;
	(void)s;
	(void)fd;

	/* Read what is there first: a device may send its last bytes and hang up. */
	for (int i = 0; i < 16; i++) {
		n = serial_read(d->serial, buf, sizeof(buf));
		if (n > 0) {
			d->dev.driver->feed(&d->dev, buf, (size_t)n);
			if (!d->serial) /* closed from inside feed (never today, but cheap) */
				return 0;
			continue;
		}
		if (n == -EAGAIN || n == -EINTR)
			return 0;
		device_problem(d, "port %s: %s; reopening", d->dev.path,
		               n == 0 ? "hang-up" : strerror((int)-n));
		device_close(d);
		device_schedule_reopen(d);
		return 0;
	}
	if (revents & (EPOLLHUP | EPOLLERR)) {
		device_problem(d, "port %s: hang-up; reopening", d->dev.path);
		device_close(d);
		device_schedule_reopen(d);
	}
	return 0;
}

static int device_open_bus(struct gw_device *d)
{
	const struct sg_device_cfg *c = d->cfg;
	int r, fd;

	switch (c->driver->bus) {
	case SG_BUS_SERIAL:
		if (c->usb_serial) {
			free(d->port);
			d->port = NULL;
			r = serial_find_by_usb_serial(c->usb_serial, &d->port);
			if (r < 0) {
				device_problem(d, "no serial port with USB serial number %s", c->usb_serial);
				return r;
			}
			d->dev.path = d->port;
		}
		r = serial_open(d->dev.path, c->baud, &d->serial);
		if (r < 0) {
			device_problem(d, "cannot open %s: %s", d->dev.path, strerror(-r));
			return r;
		}
		d->dev.fd = serial_fd(d->serial);
		return 0;
	case SG_BUS_I2C:
		fd = open(c->bus, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
			device_problem(d, "cannot open %s: %s", c->bus, strerror(errno));
			return r;
		}
		if (ioctl(fd, I2C_SLAVE, (unsigned long)c->address) < 0) {
			r = -errno;
			device_problem(d, "%s: cannot select address 0x%02x: %s", c->bus, c->address, strerror(errno));
			close(fd);
			return r;
		}
		d->dev.fd = fd;
		return 0;
	default:
		d->dev.fd = -1;
		return 0;
	}
}

static int on_device_timer(sd_event_source *s, uint64_t usec, void *ud);

static int device_open(struct gw_device *d)
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
			device_close(d);
			return -ENOMEM;
		}
	}
	if (drv->init) {
		r = drv->init(&d->dev);
		if (r < 0) {
			device_problem(d, "%s: initialisation failed: %s", d->dev.path ? d->dev.path : drv->name,
			               strerror(-r));
			device_close(d);
			return r;
		}
	}
	d->up = true;
	if (d->serial && drv->feed) {
		r = sd_event_add_io(d->g->loop, &d->io, d->dev.fd, EPOLLIN, on_serial_io, d);
		if (r < 0) {
			log_full(LOG_ERR, d->cfg->name, NULL, "cannot watch %s: %s", d->dev.path, strerror(-r));
			device_close(d);
			return r;
		}
	}
	if (d->last_error[0] || d->backoff_us)
		log_full(LOG_NOTICE, d->cfg->name, NULL, "%s open again", d->dev.path ? d->dev.path : drv->name);
	d->last_error[0] = '\0';
	d->backoff_us = 0;
	if (drv->poll) {
		sd_event_source_set_time(d->timer, now);
		sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
	} else {
		sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
	}
	return 0;
}

static void device_schedule_reopen(struct gw_device *d)
{
	d->backoff_us = d->backoff_us ? d->backoff_us * 2 : REOPEN_MIN_US;
	if (d->backoff_us > REOPEN_MAX_US)
		d->backoff_us = REOPEN_MAX_US;
	sd_event_source_set_time(d->timer, now_mono_us() + d->backoff_us);
	sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
}

/* The device timer either reopens a closed device or runs one poll step. */
static int on_device_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_device *d = ud;
	uint64_t delay = 0;
	int r;
	(void)s;
	(void)usec;

	if (!d->up) {
		if (device_open(d) < 0)
			device_schedule_reopen(d);
		return 0;
	}
	r = d->cfg->driver->poll(&d->dev, &delay);
	if (r < 0) {
		device_problem(d, "read failed: %s; retrying", strerror(-r));
		device_close(d);
		device_schedule_reopen(d);
		return 0;
	}
	sd_event_source_set_time(d->timer, now_mono_us() + delay);
	sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
	return 0;
}

static int devices_setup(struct sg_gateway *g)
{
	int r;

	g->n_devs = g->cfg->n_devices;
	g->devs = calloc(g->n_devs ? g->n_devs : 1, sizeof(*g->devs));
	if (!g->devs)
		return -ENOMEM;
	for (size_t i = 0; i < g->n_devs; i++) {
		struct gw_device *d = &g->devs[i];
		const struct sg_device_cfg *c = &g->cfg->devices[i];

		d->g = g;
		d->cfg = c;
		d->index = i;
		d->fail_rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(60, 5);
		d->dev = (struct sg_dev){
			.name = c->name,
			.driver = c->driver,
			.opts = c->opts,
			.fd = -1,
			.path = c->port ? c->port : (c->bus ? c->bus : c->path),
			.address = c->address,
			.interval_s = c->interval_s,
			.emit = on_reading,
			.on_fail = on_device_fail,
			.userdata = d,
		};
		if (c->driver->bus == SG_BUS_NONE)
			d->dev.path = c->path;
		r = sd_event_add_time(g->loop, &d->timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_device_timer, d);
		if (r < 0)
			return r;
		sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
		/* A device that cannot be opened now is retried; it does not stop the gateway. */
		if (device_open(d) < 0)
			device_schedule_reopen(d);
	}
	return 0;
}

/* ---- status, signals, lifecycle ------------------------------------------------------------- */

static void update_status(struct sg_gateway *g)
{
	uint64_t now = now_mono_us();
	double rate = 0;
	size_t up = 0;

	for (size_t i = 0; i < g->n_devs; i++)
		up += g->devs[i].up;
	if (g->last_status_us && now > g->last_status_us)
		rate = (double)(g->n_readings - g->readings_at_last_status) * 1e6 / (double)(now - g->last_status_us);
	g->last_status_us = now;
	g->readings_at_last_status = g->n_readings;
	struct sg_spool_stats st = {0};
	if (g->spool)
		spool_get_stats(g->spool, &st);
	sd_notifyf(0,
	           "STATUS=%s %s; devices %zu/%zu up; %.1f readings/s; %llu published, %llu dropped; "
	           "spool: %llu queued (%u in flight), %llu spooled, %llu acknowledged%s",
	           mqtt_connected(g->mqtt) ? "connected to" : "connecting to", mqtt_broker(g->mqtt), up, g->n_devs,
	           rate, (unsigned long long)g->n_published, (unsigned long long)(g->n_dropped + st.dropped),
	           (unsigned long long)st.depth, st.outstanding, (unsigned long long)st.spooled,
	           (unsigned long long)st.acknowledged,
	           !g->spool ? " (no spool)" : g->spool_failing ? " (cannot write)" : g->spool_full ? " (full)" : "");
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;
	update_status(g);
	sd_event_source_set_time(s, usec + STATUS_EVERY_US);
	return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	struct sg_gateway *g = ud;
	(void)s;
	log_info("received %s, shutting down", strsignal((int)si->ssi_signo));
	sd_event_exit(g->loop, 0);
	return 0;
}

int gateway_new(struct sg_config *cfg, struct sg_gateway **ret)
{
	static const struct sg_mqtt_handlers handlers = {
		.connected = on_mqtt_connected,
		.disconnected = on_mqtt_disconnected,
		.message = on_mqtt_message,
		.published = on_mqtt_published,
		.watch = on_mqtt_watch,
	};
	struct sg_gateway *g;
	sigset_t mask;
	int r;

	g = calloc(1, sizeof(*g));
	if (!g) {
		config_free(cfg);
		return -ENOMEM;
	}
	g->cfg = cfg;
	g->mqtt_io_fd = -1;
	g->drop_rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(60, 3);

	r = sd_event_default(&g->loop);
	if (r < 0) {
		log_error("cannot create event loop: %s", strerror(-r));
		goto err;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((r = sd_event_add_signal(g->loop, NULL, SIGTERM, on_signal, g)) < 0 ||
	    (r = sd_event_add_signal(g->loop, NULL, SIGINT, on_signal, g)) < 0) {
		log_error("cannot watch signals: %s", strerror(-r));
		goto err;
	}
	sd_event_set_watchdog(g->loop, true);

	g->mapper = mapper_new(cfg);
	if (!g->mapper) {
		r = -ENOMEM;
		log_error("cannot allocate the mapper");
		goto err;
	}
	g->mqtt = mqtt_new(&cfg->mqtt, cfg->status_topic, &handlers, g);
	if (!g->mqtt) {
		r = -errno;
		log_error("cannot set up the MQTT client: %s", strerror(errno));
		goto err;
	}
	r = sd_event_add_time(g->loop, &g->mqtt_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_mqtt_timer, g);
	if (r < 0)
		goto err;
	r = sd_event_add_time(g->loop, &g->status_timer, CLOCK_MONOTONIC, now_mono_us() + STATUS_EVERY_US, 0,
	                      on_status_timer, g);
	if (r < 0)
		goto err;
	sd_event_source_set_enabled(g->status_timer, SD_EVENT_ON);

	g->started_us = now_mono_us();
	if (asprintf(&g->stats_topic, "%s/gateway/%s/stats", cfg->base_topic, cfg->id) < 0) {
		g->stats_topic = NULL;
		r = -ENOMEM;
		goto err;
	}
	if ((r = sd_event_add_defer(g->loop, &g->flush, on_flush, g)) < 0 ||
	    (r = sd_event_source_set_enabled(g->flush, SD_EVENT_OFF)) < 0 ||
	    (r = sd_event_add_time(g->loop, &g->spool_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_spool_timer, g)) < 0)
		goto err;
	if (cfg->spool.stats_interval_s > 0) {
		r = sd_event_add_time(g->loop, &g->stats_timer, CLOCK_MONOTONIC,
		                      g->started_us + (uint64_t)(cfg->spool.stats_interval_s * 1e6), 0, on_stats_timer, g);
		if (r < 0)
			goto err;
		sd_event_source_set_enabled(g->stats_timer, SD_EVENT_ON);
	}
	/* Without a spool the gateway still runs (readings go out while connected); it tries again later. */
	if (spool_setup(g) < 0) {
		sd_event_source_set_time(g->spool_timer, now_mono_us() + SPOOL_REOPEN_US);
		sd_event_source_set_enabled(g->spool_timer, SD_EVENT_ONESHOT);
	}

	r = devices_setup(g);
	if (r < 0) {
		log_error("cannot set up devices: %s", strerror(-r));
		goto err;
	}
	*ret = g;
	return 0;

err:
	gateway_free(g);
	return r;
}

int gateway_run(struct sg_gateway *g)
{
	int r;

	log_info("sensorgate " SG_VERSION " starting: config %s, %zu device%s, broker %s, status on %s",
	         g->cfg->path, g->cfg->n_devices, g->cfg->n_devices == 1 ? "" : "s", g->cfg->mqtt.brokers[0],
	         g->cfg->status_topic);
	mqtt_start(g->mqtt);
	/* Ready once the config is loaded and devices are probed; the broker may come later. */
	update_status(g);
	sd_notify(0, "READY=1");

	r = sd_event_loop(g->loop);
	sd_notify(0, "STOPPING=1");
	if (r < 0) {
		log_error("event loop failed: %s", strerror(-r));
		g->exit_code = 1;
	}
	if (g->spool && spool_commit(g->spool) < 0)
		log_error("spool: cannot commit the last readings to %s", spool_path(g->spool));
	mqtt_shutdown(g->mqtt, 2000);
	{
		struct sg_spool_stats st = {0};
		if (g->spool)
			spool_get_stats(g->spool, &st);
		log_info("stopped: %llu readings, %llu published, %llu dropped; %llu messages left in the spool",
		         (unsigned long long)g->n_readings, (unsigned long long)g->n_published,
		         (unsigned long long)(g->n_dropped + st.dropped), (unsigned long long)st.depth);
	}
	return g->exit_code;
}

void gateway_free(struct sg_gateway *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n_devs; i++) {
		device_close(&g->devs[i]);
		sd_event_source_disable_unref(g->devs[i].timer);
		free(g->devs[i].port);
	}
	free(g->devs);
	sd_event_source_disable_unref(g->mqtt_io);
	sd_event_source_disable_unref(g->mqtt_timer);
	sd_event_source_disable_unref(g->status_timer);
	sd_event_source_disable_unref(g->flush);
	sd_event_source_disable_unref(g->spool_timer);
	sd_event_source_disable_unref(g->stats_timer);
	spool_close(g->spool);
	free(g->stats_topic);
	mqtt_free(g->mqtt);
	mapper_free(g->mapper);
	sd_event_unref(g->loop);
	config_free(g->cfg);
	free(g);
}
