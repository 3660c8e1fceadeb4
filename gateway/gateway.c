/* SPDX-License-Identifier: MIT */
/*
 * gateway.c — the event loop and the wiring; nothing else includes the parts.
 *
 * One sd-event loop, one thread:
 *  - the shared serial lines (serial_lines.c: an io source and a timer per
 *    line); devices and actuators are users of their line (drivers/line.h);
 *  - a timer per polled device (driver->poll() says when it is due next);
 *  - an io source and a timer for the MQTT connection (mqtt.h says which fd,
 *    which events and when; they are re-read after every call into it);
 *  - SIGTERM/SIGINT through signalfd; the systemd watchdog from the loop.
 *  - SIGHUP re-reads the configuration (see "reload" below).
 * A device whose port vanishes or whose bus fails is closed and reopened with
 * exponential backoff (backoff.h: 1 s .. 60 s, jittered); the rest of the
 * gateway keeps running.
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
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include <mqtt_protocol.h>

#include "../drivers/bus_i2c.h"
#include "../drivers/line.h"
#include "../drivers/backoff.h"
#include "../common/clock.h"
#include "../common/json.h"
#include "commands.h"
#include "discovery.h"
#include "health.h"
#include "log.h"
#include "mapper.h"
#include "metrics.h"
#include "mqtt.h"
#include "replay.h"
#include "serial_lines.h"
#include "spool.h"
#include "timesync.h"

#define REOPEN_MIN_US   (1 * 1000000ULL)
#define REOPEN_MAX_US   (60 * 1000000ULL)
#define STATUS_EVERY_US (10 * 1000000ULL)
/* Device timers: sd-event's default accuracy (0 = 250 ms) would stretch a 9 ms conversion wait. */
#define DEVICE_TIMER_ACCURACY_US 1000
#define SPOOL_REOPEN_US (30 * 1000000ULL)
#define EARLY_ACKS      64   /* published() calls seen inside one mqtt_publish() */
/*
 * MQTT 3.1.1 has no Receive Maximum. mosquitto applies its max_inflight_messages
 * (20 by default) to incoming QoS 2 messages too, and answers one more with a
 * PUBREC that a 3.1.1 client cannot parse (2.0.11): the connection drops, and
 * the same messages are resent after the reconnect, forever. Unreleased QoS 2
 * messages of an earlier process of ours (killed mid-flight) still count in
 * our session there. Half the default for each process keeps both within it.
 */
#define V311_MAX_INFLIGHT 10

struct gw_device {
	struct sg_gateway *g;
	const struct sg_device_cfg *cfg;
	size_t index;
	struct sg_dev dev;          /* SG_BUS_SERIAL: dev.line is its place on the shared line */
	struct sg_i2c_bus *i2c;     /* SG_BUS_I2C: the open /dev/i2c-N, owns dev.fd */
	sd_event_source *watch;     /* a descriptor the driver owns (driver->io): dev.watch_fd */
	sd_event_source *timer;
	sd_event_source *expire;    /* expire_after: fires once the device has been silent that long */
	int avail;                  /* expire_after: 0 not yet said, 1 "online", -1 "offline" on <base>/<dev>/status */
	bool up;                    /* bus open and driver initialised */
	struct sg_backoff reopen;   /* failures > 0: closed after a problem, reopening */
	char last_error[320];       /* last open/read error logged, to log changes only */
	struct sg_ratelimit fail_rl;
	uint64_t seen;              /* the driver's `when_seen` fields (bit = index in its table) that arrived */
	/* mqtt.cloud: this poll's readings, sent as one telemetry message (see "Cloud profiles") */
	char *batch;                /* BATCH_MAX bytes once used */
	size_t batch_len;           /* 0: empty */
	size_t batch_head;          /* where the readings start, after {"device":..,"readings":{ */
	int batch_qos;
	enum sg_offline_policy batch_offline;
	uint64_t n_reconnects;      /* reopened after a failure (metrics) */
	uint64_t n_good_polls;      /* polls and io calls that produced readings without counting a frame (health) */
	struct sg_health_window *health; /* link quality (health.h), NULL when it could not be allocated */
	char health_key[256];       /* what the health topic said last, in short: republished when it changes */
	uint64_t health_sent_us;    /* when it was published last, 0 = not since the last connect */
	bool watch_seen;            /* it has such fields and no readings list: note them (discovery) */
};

struct sg_gateway {
	struct sg_config *cfg;
	sd_event *loop;
	struct sg_mapper *mapper;
	struct sg_mqtt *mqtt;
	sd_event_source *mqtt_io;
	sd_event_source *mqtt_timer;
	sd_event_source *mqtt_flush;     /* defer: after a burst of publishes, mqtt_flush() once */
	int mqtt_io_fd;
	unsigned mqtt_io_gen;
	sd_event_source *status_timer;
	sd_event_source *filter_timer;   /* the readings' timeout filters: the mapper's earliest deadline */
	uint64_t filter_at;              /* when filter_timer fires, UINT64_MAX while it is off */
	struct gw_device **devs;    /* one allocation each: event sources point at them */
	size_t n_devs;
	struct gw_lines *lines;     /* the shared serial lines (serial_lines.h) */
	struct sg_act_buses act_buses;
	struct sg_commands *cmds;   /* actuators: the command router */
	struct gw_act_io *act_io;   /* one io watch per actuator */
	sd_event_source *act_timer;
	int exit_code;
	/* The configuration the MQTT client and the command router were built
	 * from (they borrow it: status topic, actuators); equal to cfg until a
	 * reload swaps cfg; freed last. */
	struct sg_config *cfg_mqtt;
	uint64_t n_reloads;
	double rate;                /* readings/s over the last status period */
	bool paused;            /* inputs paused: the broker socket is backlogged */

	/* Home Assistant discovery (discovery.h); see the block "Home Assistant discovery" */
	struct sg_disc_list disc;             /* config messages for the current config */
	struct sg_disc_topics disc_announced; /* discovery topics the broker holds for us */
	bool disc_ok;                         /* the list could be built: announce and delete */
	bool disc_logged;                     /* the first announcement was logged */
	char *disc_state_path;                /* NULL: removals are not remembered across restarts */
	char *disc_ha_status;                 /* "<prefix>/status": Home Assistant's birth and will */
	sd_event_source *disc_timer;          /* re-announce shortly after Home Assistant started */
	sd_event_source *disc_seen_timer;     /* announce the fields that arrived for the first time */

	/* cloud profiles: see the block "Cloud profiles" */
	sd_event_source *batch_flush;    /* defer: the devices' telemetry batches, once the handler that read them is done */
	unsigned twin_rid;               /* request id of the last twin request (Azure) */
	unsigned twin_get_rid;           /* that of the whole-twin request after connecting, 0: none */
	char (*cloud_state)[64];         /* per actuator of cfg_mqtt: the state last reported, "" none yet */
	struct sg_ratelimit cloud_rl;

	/* store and forward */
	struct sg_spool *spool;          /* NULL while it cannot be opened */
	sd_event_source *flush;          /* defer: commit the batch, then hand over */
	sd_event_source *commit_timer;   /* spool.commit_interval: when the open batch is due */
	sd_event_source *spool_timer;    /* reopen a spool that could not be opened */
	sd_event_source *stats_timer;
	char *stats_topic;
	bool publishing;                 /* inside mqtt_publish() from pump() */
	int early[EARLY_ACKS];           /* mids acknowledged meanwhile (QoS 0 is written at once) */
	unsigned n_early;
	bool spool_full;                 /* in a "spool full" episode (logged once) */
	uint64_t full_dropped_at_start;
	bool spool_failing;              /* in a write-error episode (logged once) */
	sd_event_source *pace_timer;     /* hand over again when the broker's "quota exceeded" wait is over */
	struct sg_ratelimit refuse_rl;
	uint64_t direct_while_failing, dropped_while_failing;

	/* measurement time and replay (timesync.h, replay.h); see the block "Measurement time and replay" */
	struct sg_timesync *timesync;
	struct sg_clock_source clock_src;
	struct sg_sys_clock sys_clock;
	sd_event_source *clock_timer;    /* looks at the sync state while the clock is not trusted */
	sd_event_source *clock_set;      /* the kernel says the wall clock was set */
	int clock_fd;
	struct sg_seqs *seqs;            /* per-topic sequence numbers */
	int64_t conn_epoch;              /* this connection to the broker (CLOCK_BOOTTIME at connect), 0 = none */
	uint64_t n_replayed;
	struct sg_iso_cache iso_cache;
	char out_topic[512];             /* a replayed message's topic and payload as they go out */
	char out_payload[1280];

	/* counters */
	uint64_t n_readings, n_published, n_dropped, n_map_errors, n_skipped;
	uint64_t readings_at_last_status;
	uint64_t last_status_us;
	uint64_t readings_at_last_stats;
	uint64_t last_stats_us;
	uint64_t started_us;
	double started_wall_s;           /* Unix time of the start, for the metrics file */
	uint64_t n_connects;             /* broker connections */
	struct sg_ratelimit drop_rl;
	struct sg_ratelimit unpublishable_rl;  /* spooled messages the client refuses */
	char spool_open_err[256];        /* why the spool could not be opened, as logged last */

	/* metrics.path: the Prometheus text file, rewritten every metrics.interval (see "metrics") */
	sd_event_source *metrics_timer;
	char metrics_err[256];           /* the write error logged last, "" while it works */

	/* link quality (health.h): sampled every health.interval; the --status file; see "health" */
	sd_event_source *health_timer;
	char *health_path;               /* the --status file, NULL without RUNTIME_DIRECTORY (or on ENOMEM) */
	char health_err[256];            /* its write error logged last, "" while it works */
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

static int on_mqtt_flush(sd_event_source *s, void *ud)
{
	struct sg_gateway *g = ud;
	(void)s;
	mqtt_flush(g->mqtt);
	return 0;
}

/*
 * At the end of a handler that published (a line's bytes, the spool's
 * hand-over): flushed now, not one more turn of the loop later (an
 * epoll_wait and a wakeup per reading at sensor rates: scripts/bench-rate.py).
 */
static void mqtt_flush_now(struct sg_gateway *g)
{
	sd_event_source_set_enabled(g->mqtt_flush, SD_EVENT_OFF);
	mqtt_flush(g->mqtt);
}

/* mqtt.h: publishes wrote; flushed once, when the loop has nothing else ready (a defer source). */
static void on_mqtt_flush_soon(void *ud)
{
	struct sg_gateway *g = ud;

	sd_event_source_set_enabled(g->mqtt_flush, SD_EVENT_ONESHOT);
}

/*
 * Back-pressure: while the broker socket is full, stop reading serial ports;
 * the bytes wait in the kernel's tty buffer instead of our RAM.
 */
static void pause_inputs(struct sg_gateway *g, bool pause)
{
	if (pause == g->paused)
		return;
	g->paused = pause;
	gw_lines_pause(g->lines, pause);
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
	pause_inputs(g, mqtt_backlogged(g->mqtt));
	if (deadline == UINT64_MAX) {
		sd_event_source_set_enabled(g->mqtt_timer, SD_EVENT_OFF);
	} else {
		sd_event_source_set_time(g->mqtt_timer, deadline);
		sd_event_source_set_enabled(g->mqtt_timer, SD_EVENT_ONESHOT);
	}
}

/* ---- Home Assistant discovery ---------------------------------------------------------------- */

/*
 * Configs are published retained at QoS 1 on every connection, and again
 * (after a random delay of up to DISCOVERY_JITTER_US, as Home Assistant asks
 * of publishers) whenever Home Assistant announces "online" on
 * <prefix>/status, together with our own "online". Reading states are not
 * replayed: they are retained by the broker, which hands them to Home
 * Assistant when it subscribes after reading a config, and a replay from a
 * cache could overwrite newer values the spool is still delivering.
 * Deletions: the topics announced are kept in a state file; at every
 * connection (and after a reload) those no longer configured get an empty
 * retained payload, which makes Home Assistant delete the entity.
 */
#define DISCOVERY_JITTER_MIN_US (200 * 1000ULL)
#define DISCOVERY_JITTER_US     (2 * 1000000ULL)
#define DISCOVERY_SEEN_DELAY_US (1000000ULL) /* a first telegram's new fields, announced together */

static int discovery_publish(void *ud, const char *topic, const char *payload, size_t len)
{
	struct sg_gateway *g = ud;
	return mqtt_publish(g->mqtt, topic, payload, len, 1, true, NULL, NULL);
}

/* Publish deletions (when asked) and every config. Only while connected. */
static void discovery_announce(struct sg_gateway *g, bool deletions)
{
	struct sg_disc_sync res;
	int r;

	if (!g->disc_ok || !mqtt_connected(g->mqtt))
		return;
	r = discovery_sync(&g->disc, &g->disc_announced, g->disc_state_path, deletions, discovery_publish, g, &res);
	if (r < 0) {
		/* -ENOTCONN: the connection is gone; the next one starts over */
		if (r != -ENOTCONN)
			log_error("discovery: cannot publish: %s", strerror(-r));
		return;
	}
	if (res.save_error)
		log_warning("discovery: cannot write %s: %s; entities removed while stopped will not be deleted",
		            g->disc_state_path, strerror(-res.save_error));
	if (res.deleted || (g->cfg->discovery.enabled && !g->disc_logged))
		log_info("discovery: announced %zu entit%s under %s/, deleted %zu no longer configured", res.announced,
		         res.announced == 1 ? "y" : "ies", g->cfg->discovery.prefix, res.deleted);
	g->disc_logged = true;
}

static int on_discovery_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;
	int r;
	(void)s;
	(void)usec;

	if (!mqtt_connected(g->mqtt))
		return 0; /* the connection will announce everything */
	log_info("discovery: Home Assistant (re)started, announcing again");
	r = mqtt_publish(g->mqtt, g->cfg_mqtt->status_topic, config_birth_payload(&g->cfg_mqtt->mqtt),
	                 strlen(config_birth_payload(&g->cfg_mqtt->mqtt)), 1, true, NULL, NULL);
	if (r < 0 && r != -ENOTCONN)
		log_warning("discovery: cannot publish online status: %s", strerror(-r));
	discovery_announce(g, false);
	return 0;
}

/* A message on <prefix>/status. Restarts are often clustered: one re-announcement per burst. */
static void discovery_on_ha_status(struct sg_gateway *g, const struct sg_mqtt_msg *msg)
{
	int enabled = SD_EVENT_OFF;
	uint64_t delay;

	if (!discovery_is_ha_online(msg->payload, msg->len, msg->retain) || !g->disc_timer)
		return;
	if (sd_event_source_get_enabled(g->disc_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
		return;
	delay = DISCOVERY_JITTER_MIN_US + backoff_random(DISCOVERY_JITTER_US);
	sd_event_source_set_time(g->disc_timer, now_mono_us() + delay);
	sd_event_source_set_enabled(g->disc_timer, SD_EVENT_ONESHOT);
}

/* Home Assistant's status matters to discovery (announce again at its birth) and to fail-safe actuators (its will). */
static bool ha_status_wanted(const struct sg_gateway *g)
{
	return (g->disc_ok && g->cfg->discovery.enabled) || commands_wants_ha_status(g->cmds);
}

static void discovery_connected(struct sg_gateway *g)
{
	int r;

	if (ha_status_wanted(g) && g->disc_ha_status && (r = mqtt_subscribe(g->mqtt, g->disc_ha_status, 1)) < 0 &&
	    r != -ENOTCONN)
		log_warning("discovery: cannot subscribe to %s: %s", g->disc_ha_status, strerror(-r));
	discovery_announce(g, true);
}

/*
 * Fields not every device sends (a meter's optional lines, `when_seen` in the
 * driver's table) are announced once they arrive, and kept announced after
 * that: the state file remembers them across restarts.
 */
/* FIELD's bit in gw_device.seen: its index in DRV's field table (the first 64), or -1. */
static int seen_bit(const struct sg_driver *drv, const char *field)
{
	for (int k = 0; drv->fields && k < 64 && drv->fields[k].name; k++)
		if (strcmp(drv->fields[k].name, field) == 0)
			return k;
	return -1;
}

static bool discovery_seen(void *ud, const struct sg_device_cfg *dc, const char *field, const char *topic)
{
	struct sg_gateway *g = ud;

	for (size_t i = 0; i < g->disc_announced.n; i++)
		if (strcmp(g->disc_announced.v[i], topic) == 0)
			return true;
	for (size_t i = 0; i < g->n_devs; i++) {
		const struct gw_device *d = g->devs[i];

		int k;

		if (strcmp(d->cfg->name, dc->name) != 0 || (k = seen_bit(d->cfg->driver, field)) < 0)
			continue;
		return (d->seen >> k) & 1;
	}
	return false;
}

/* A reading of D: the first of a `when_seen` field has it announced (shortly: a telegram brings several). */
static void discovery_note(struct gw_device *d, const char *field)
{
	struct sg_gateway *g = d->g;
	int k = seen_bit(d->cfg->driver, field);

	if (k < 0 || !d->cfg->driver->fields[k].when_seen || ((d->seen >> k) & 1))
		return;
	d->seen |= 1ULL << k;
	if (g->disc_seen_timer) {
		sd_event_source_set_time(g->disc_seen_timer, now_mono_us() + DISCOVERY_SEEN_DELAY_US);
		sd_event_source_set_enabled(g->disc_seen_timer, SD_EVENT_ONESHOT);
	}
}

static int discovery_setup(struct sg_gateway *g);

static int on_discovery_seen_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;
	size_t before = g->disc.n;
	(void)s;
	(void)usec;

	if (discovery_setup(g) < 0) {
		log_error("discovery: out of memory");
		return 0;
	}
	if (g->disc.n > before)
		log_info("discovery: %zu more entit%s, for readings that arrived for the first time", g->disc.n - before,
		         g->disc.n - before == 1 ? "y" : "ies");
	discovery_announce(g, true);
	return 0;
}

/* Build the list for g->cfg and find the state file. A failure disables discovery only. */
static int discovery_setup(struct sg_gateway *g)
{
	char err[512];
	int r;

	discovery_list_clear(&g->disc);
	free(g->disc_ha_status);
	free(g->disc_state_path);
	g->disc_ok = false;
	g->disc_ha_status = discovery_ha_status_topic(g->cfg);
	g->disc_state_path = discovery_state_path(g->cfg, getenv("STATE_DIRECTORY"));
	if (!g->disc_ha_status || (!g->disc_state_path && errno == ENOMEM))
		return -ENOMEM;
	r = discovery_build_seen(g->cfg, discovery_seen, g, &g->disc, err, sizeof(err));
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		log_error("%s; not announcing to Home Assistant", err);
		return 0;
	}
	g->disc_ok = true;
	if (g->cfg->discovery.enabled && !g->disc_state_path)
		log_notice("discovery: no state file (set discovery.state_file, STATE_DIRECTORY or spool.path): "
		           "entities removed from the config while sensorgate is stopped will not be deleted");
	return 0;
}

/* Called once at start: the state file says what an earlier run announced. */
static int discovery_start(struct sg_gateway *g)
{
	int r = discovery_setup(g);

	if (r < 0)
		return r;
	if (g->disc_state_path && (r = discovery_state_load(g->disc_state_path, &g->disc_announced)) < 0)
		log_warning("discovery: cannot read %s: %s, ignoring", g->disc_state_path, strerror(-r));
	if (g->disc_announced.n && (r = discovery_setup(g)) < 0) /* again: what was announced before stays */
		return r;
	r = sd_event_add_time(g->loop, &g->disc_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_discovery_timer, g);
	if (r < 0)
		return r;
	r = sd_event_source_set_enabled(g->disc_timer, SD_EVENT_OFF);
	if (r < 0)
		return r;
	r = sd_event_add_time(g->loop, &g->disc_seen_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_discovery_seen_timer, g);
	if (r < 0)
		return r;
	return sd_event_source_set_enabled(g->disc_seen_timer, SD_EVENT_OFF);
}

/*
 * For the configuration reload: call after g->cfg was replaced. Entities the
 * new config lacks are deleted (now when connected, else at the next
 * connection: the announced set is kept), the others announced again.
 */
static void discovery_reload(struct sg_gateway *g)
{
	if (discovery_setup(g) < 0) {
		log_error("discovery: out of memory");
		return;
	}
	if (!mqtt_connected(g->mqtt))
		return;
	discovery_connected(g);
}

static void discovery_free(struct sg_gateway *g)
{
	discovery_list_clear(&g->disc);
	discovery_topics_clear(&g->disc_announced);
	free(g->disc_state_path);
	free(g->disc_ha_status);
	sd_event_source_disable_unref(g->disc_timer);
	sd_event_source_disable_unref(g->disc_seen_timer);
}

static void update_status(struct sg_gateway *g);
static void devices_refresh(struct sg_gateway *g);
static void health_connected(struct sg_gateway *g);

static void actuators_message(struct sg_gateway *g, const struct sg_mqtt_msg *msg);
static void actuators_watch(struct sg_gateway *g);
static void flush_later(struct sg_gateway *g);
static void cloud_connected(struct sg_gateway *g);
static void cloud_message(struct sg_gateway *g, const struct sg_mqtt_msg *msg);
static void actuators_watch(struct sg_gateway *g);

static void on_mqtt_connected(void *ud, bool session_present)
{
	struct sg_gateway *g = ud;
	struct sg_stamp now;
	(void)session_present;
	timesync_stamp(g->timesync, 0, &now);
	g->conn_epoch = now.boot_us > 0 ? now.boot_us : 1;
	if (g->cfg_mqtt->mqtt.cloud != SG_CLOUD_NONE)
		cloud_connected(g);
	g->n_connects++;
	discovery_connected(g);
	commands_connected(g->cmds); /* subscriptions and retained states, after every (re)connect */
	actuators_watch(g);          /* the fail-safe timers stopped */
	devices_refresh(g);
	health_connected(g);
	flush_later(g); /* hand over what waited; not from inside libmosquitto's callback */
	update_status(g);
}

static void on_mqtt_disconnected(void *ud)
{
	struct sg_gateway *g = ud;
	g->conn_epoch = 0; /* what is put from now on is a replay when it goes out */
	/* QoS 1/2 in flight are resent by libmosquitto after the reconnect; QoS 0 ones are gone. */
	if (g->spool)
		spool_requeue(g->spool, 0);
	if (g->cmds) { /* fail_safe_after_s counts from now, on the actuators' timer */
		commands_disconnected(g->cmds, now_mono_us());
		actuators_watch(g);
	}
	update_status(g);
}

static void on_mqtt_message(void *ud, const struct sg_mqtt_msg *msg)
{
	struct sg_gateway *g = ud;

	if (g->disc_ha_status && strcmp(msg->topic, g->disc_ha_status) == 0) {
		if (g->cfg->discovery.enabled)
			discovery_on_ha_status(g, msg);
		if (g->cmds && discovery_is_ha_offline(msg->payload, msg->len)) {
			commands_ha_offline(g->cmds, now_mono_us());
			actuators_watch(g);
		}
		return;
	}
	if (g->cfg_mqtt->mqtt.cloud != SG_CLOUD_NONE) {
		cloud_message(g, msg);
		return;
	}
	actuators_message(g, msg);
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

/*
 * MQTT 5: the broker refused a message. Quota exceeded (it holds fewer
 * in-flight messages than it announced, e.g. unreleased QoS 2 ones of an
 * earlier process in our session): the message goes again, in order; the
 * MQTT client shrank its send window and said so (mqtt.c, "the send
 * window"), and paces the next handover when nothing else was in flight.
 * Any other reason (not authorized, topic or payload invalid) will not
 * change by trying again: the message is dropped and counted. Never is a
 * refusal taken for an acknowledgement.
 */
static void on_mqtt_refused(void *ud, int mid, int reason)
{
	struct sg_gateway *g = ud;
	unsigned suppressed;
	int64_t id;

	if (!g->spool || spool_unsent(g->spool, mid, &id) != 1) {
		if (reason != MQTT_RC_QUOTA_EXCEEDED && ratelimit_allow(&g->refuse_rl, now_mono_us(), &suppressed))
			log_warning("mqtt: broker refused message %d: %s%s", mid, mosquitto_reason_string(reason),
			            suppressed ? " (and others not logged)" : "");
		return;
	}
	if (reason == MQTT_RC_QUOTA_EXCEEDED) {
		flush_later(g);
		return;
	}
	if (ratelimit_allow(&g->refuse_rl, now_mono_us(), &suppressed))
		log_warning("spool: broker refused message %lld: %s; dropping it%s", (long long)id,
		            mosquitto_reason_string(reason), suppressed ? " (and others not logged)" : "");
	spool_drop(g->spool, id);
	flush_later(g);
}

/*
 * The broker closed the connection twice right after message POISON, and
 * the MQTT client was made afresh without it (mqtt.h): a spooled one is
 * dropped (counted by the spool), anything else counted here; everything
 * else that was in flight goes again from the spool, oldest first.
 */
static void on_mqtt_discarded(void *ud, int poison)
{
	struct sg_gateway *g = ud;
	unsigned suppressed;
	int64_t id;

	if (g->spool && spool_unsent(g->spool, poison, &id) == 1) {
		if (ratelimit_allow(&g->refuse_rl, now_mono_us(), &suppressed))
			log_warning("spool: message %lld: the broker closed the connection right after it twice; dropping "
			            "it%s", (long long)id, suppressed ? " (and others not logged)" : "");
		spool_drop(g->spool, id);
	} else {
		g->n_dropped++;
	}
	if (g->spool)
		spool_requeue(g->spool, 2);
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
	            g->cfg_mqtt->spool.max_size_mb, (unsigned long long)st.depth,
	            g->cfg_mqtt->spool.drop_new ? "refusing new messages" : "dropping the oldest messages");
}

static void drop_reading(struct sg_gateway *g, const struct sg_message *msg, const char *why)
{
	unsigned suppressed;

	g->n_dropped++;
	if (ratelimit_allow(&g->drop_rl, now_mono_us(), &suppressed))
		log_full(LOG_WARNING, NULL, msg->topic, "dropping reading for %s: %s%s", msg->topic, why,
		         suppressed ? " (and earlier ones not logged)" : "");
}

/*
 * libmosquitto queues a QoS 1/2 message as soon as it has given it a packet
 * id, before it writes anything; when the link breaks inside that call it
 * returns an error, yet resends the message (DUP) after the reconnect. Such a
 * message is handed over: publishing it again would duplicate it. Only an
 * allocation failure is ambiguous; it counts as not handed over (a possible
 * duplicate rather than a possible loss).
 */
static bool queued_anyway(int r, int qos, int mid)
{
	return r != 0 && qos > 0 && mid != 0 && r != -EINVAL && r != -ENOMEM;
}

static void publish_direct(struct sg_gateway *g, const struct sg_message *msg, const struct sg_stamp *st,
                           uint64_t seq)
{
	mosquitto_property *props = NULL;
	int r, mid = 0;

	if (mqtt_protocol(g->mqtt) == 5 && !g->cfg_mqtt->spool.props_replays_only) {
		char iso[TIMESYNC_ISO_LEN];
		int64_t real = timesync_resolve(g->timesync, st);
		if (real > 0)
			timesync_iso_cached(&g->iso_cache, real, iso);
		if (replay_props(&props, real > 0 ? iso : NULL, real < 0, seq, false) < 0)
			mosquitto_property_free_all(&props); /* the message goes without them */
	}
	r = mqtt_publish(g->mqtt, msg->topic, msg->payload, msg->payload_len, msg->qos, msg->retain, props, &mid);
	mosquitto_property_free_all(&props);
	if (r == 0 || queued_anyway(r, msg->qos, mid))
		g->n_published++;
	else
		drop_reading(g, msg, r == -ENOTCONN ? "broker not connected" : strerror(-r));
}

/* Hand a mapped message on: straight to the broker, or through the spool. */
static void route(struct sg_gateway *g, const struct sg_message *msg)
{
	bool connected = mqtt_connected(g->mqtt);
	unsigned dropped = 0;
	uint64_t seq = seqs_next(g->seqs, msg->topic); /* 0 (none) when out of memory */
	struct sg_stamp st = msg->stamp;
	struct sg_spool_meta meta;
	int r;

	if (!st.boot_id && !st.real_us) /* not from the mapper (a device's availability, a telemetry batch): now */
		timesync_stamp(g->timesync, 0, &st);
	meta = (struct sg_spool_meta){
		.ts_us = st.real_us,
		.boot_us = st.boot_us,
		.boot_id = st.boot_id,
		.seq = seq,
		.epoch = connected ? g->conn_epoch : 0,
		.flags = msg->json ? SG_SPOOL_F_JSON : 0,
	};

	/* QoS 0 goes straight out, unless older messages wait (they go first). */
	if (msg->qos == 0 && connected && !(g->spool && spool_backlog(g->spool))) {
		publish_direct(g, msg, &st, seq);
		return;
	}
	if (!connected && msg->offline == SG_OFFLINE_DROP) {
		unsigned suppressed;
		g->n_skipped++;
		if (ratelimit_allow(&g->drop_rl, now_mono_us(), &suppressed))
			log_full(LOG_INFO, NULL, msg->topic, "not keeping reading for %s while the broker is away "
			         "(offline = \"drop\")%s", msg->topic, suppressed ? "; more not logged" : "");
		return;
	}
	if (!g->spool) {
		if (connected)
			publish_direct(g, msg, &st, seq);
		else
			drop_reading(g, msg, "broker not connected and no spool");
		return;
	}
	r = spool_put_meta(g->spool, msg->topic, msg->payload, msg->payload_len, msg->qos, msg->retain,
	                   !connected && msg->offline == SG_OFFLINE_LAST ? SG_OFFLINE_LAST : SG_OFFLINE_SPOOL, &meta,
	                   &dropped);
	if (r == 0) {
		if (dropped)
			spool_is_full(g, dropped);
		flush_later(g);
	} else if (r == -ENOBUFS) {
		spool_is_full(g, 1); /* refused and counted by the spool */
	} else {
		spool_trouble(g, r);
		if (connected)
			publish_direct(g, msg, &st, seq);
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

/* ---- Measurement time and replay ---------------------------------------------------------------- */

/*
 * How stored message M goes out (README, "Replay after an outage"). A
 * replay is a message put while no connection was up, during an earlier
 * connection, or by an earlier process. A replay of a topic with a newer
 * message (a higher seq given out already) is not retained, so that the
 * broker ends up retaining the newest value; with replay = "history" it
 * goes to the history topic instead. Every message gets its measurement
 * time once known (JSON "ts", MQTT 5 `ts`) and its seq; replays their
 * marker. *PROPS is for the caller to free.
 */
static void outgoing(struct sg_gateway *g, struct sg_spool_msg *m, mosquitto_property **props)
{
	const struct sg_spool_cfg *sc = &g->cfg_mqtt->spool;
	struct sg_stamp st = {.real_us = m->meta.ts_us, .boot_us = m->meta.boot_us, .boot_id = m->meta.boot_id};
	int64_t real = timesync_resolve(g->timesync, &st);
	bool replayed = m->meta.epoch == 0 || m->meta.epoch != g->conn_epoch ||
	                m->meta.boot_id != timesync_boot_id(g->timesync);
	bool newer = m->meta.seq && m->meta.seq < seqs_last(g->seqs, m->topic);
	char iso[TIMESYNC_ISO_LEN];
	int n;

	if (real > 0)
		timesync_iso_cached(&g->iso_cache, real, iso);
	if (replayed) {
		g->n_replayed++;
		if (newer && sc->replay_history &&
		    replay_history_topic(g->out_topic, sizeof(g->out_topic), sc->history_topic, m->topic) > 0) {
			m->topic = g->out_topic;
			m->retain = false;
		} else if (newer) {
			m->retain = false;
		}
	}
	if ((m->meta.flags & SG_SPOOL_F_JSON) && (replayed || (m->meta.ts_us == 0 && real > 0))) {
		n = replay_json(g->out_payload, sizeof(g->out_payload), m->payload, m->len, real > 0 ? iso : NULL,
		                replayed, m->meta.seq);
		if (n > 0) {
			m->payload = g->out_payload;
			m->len = (size_t)n;
		}
	}
	if (mqtt_protocol(g->mqtt) == 5 && (replayed || !sc->props_replays_only) &&
	    replay_props(props, real > 0 ? iso : NULL, real < 0, m->meta.seq, replayed) < 0)
		mosquitto_property_free_all(props);
}

/* Continue each topic's sequence from what the spool holds (a restart). */
static void seq_seen(void *ud, const char *topic, uint64_t seq)
{
	struct sg_gateway *g = ud;
	(void)seqs_seen(g->seqs, topic, seq); /* out of memory: the numbers restart, nothing worse */
}

static void clock_trusted(struct sg_gateway *g)
{
	struct sg_spool_stats st = {0};

	sd_event_source_set_enabled(g->clock_timer, SD_EVENT_OFF);
	if (g->clock_set)
		sd_event_source_set_enabled(g->clock_set, SD_EVENT_OFF); /* trusted for good: no more wake-ups */
	if (g->spool)
		spool_get_stats(g->spool, &st);
	log_info("the wall clock is synchronised now%s", st.depth ? "; spooled readings get their time as they go out"
	                                                           : "");
	flush_later(g);
}

static int on_clock_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;

	(void)usec;
	if (timesync_check(g->timesync) == 1) {
		clock_trusted(g);
		return 0;
	}
	sd_event_source_set_time(s, now_mono_us() + TIMESYNC_POLL_US);
	return 0;
}

static int on_clock_set(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct sg_gateway *g = ud;
	uint64_t ticks;

	(void)s;
	(void)revents;
	while (read(fd, &ticks, sizeof(ticks)) > 0) /* ECANCELED: the clock was set; EAGAIN: done */
		;
	if (timesync_watch_rearm(fd) < 0)
		sd_event_source_set_enabled(g->clock_set, SD_EVENT_OFF);
	if (timesync_check(g->timesync) == 1)
		clock_trusted(g);
	return 0;
}

/* The clock judge, its poll timer and its clock-set watch. 0 or -errno (out of memory). */
static int clock_setup(struct sg_gateway *g)
{
	const struct sg_time_cfg *tc = &g->cfg->time;
	int r;

	g->sys_clock = (struct sg_sys_clock){.sync_file = tc->sync_file, .file_only = tc->trust_file_only};
	timesync_system_source(&g->clock_src, &g->sys_clock);
	g->timesync = timesync_new(&g->clock_src, tc->trust_always);
	g->seqs = seqs_new();
	if (!g->timesync || !g->seqs)
		return -ENOMEM;
	mapper_set_timesync(g->mapper, g->timesync);
	if (timesync_trusted(g->timesync))
		return 0;
	log_notice("the wall clock is not synchronised yet (no %s%s): readings carry their boot time until it is",
	           tc->sync_file ? tc->sync_file : TIMESYNC_DEFAULT_FILE,
	           tc->trust_file_only ? "" : ", kernel NTP state unsynchronised");
	r = sd_event_add_time(g->loop, &g->clock_timer, CLOCK_MONOTONIC, now_mono_us() + TIMESYNC_POLL_US,
	                      TIMESYNC_POLL_US / 10, on_clock_timer, g);
	if (r < 0)
		return r;
	sd_event_source_set_enabled(g->clock_timer, SD_EVENT_ON);
	g->clock_fd = timesync_watch_fd();
	if (g->clock_fd < 0) { /* the poll still sees the jump, a little later */
		log_debug("cannot watch for the clock being set: %s", strerror(-g->clock_fd));
		return 0;
	}
	return sd_event_add_io(g->loop, &g->clock_set, g->clock_fd, EPOLLIN, on_clock_set, g);
}

/* Hand committed messages to mqtt, oldest first, while the quota allows. */
static void pump(struct sg_gateway *g)
{
	struct sg_spool_msg m;
	int quota, r, mid = 0;
	mosquitto_property *props = NULL;

	if (!g->spool || !mqtt_connected(g->mqtt))
		return;
	if (mqtt_send_after(g->mqtt) > now_mono_us()) { /* the broker refused for quota: wait (mqtt.h) */
		sd_event_source_set_time(g->pace_timer, mqtt_send_after(g->mqtt));
		sd_event_source_set_enabled(g->pace_timer, SD_EVENT_ONESHOT);
		return;
	}
	quota = mqtt_send_quota(g->mqtt);
	if (mqtt_protocol(g->mqtt) != 5 && quota > V311_MAX_INFLIGHT)
		quota = V311_MAX_INFLIGHT;
	while ((int)spool_outstanding(g->spool) < quota) {
		r = spool_next(g->spool, &m);
		if (r < 0) {
			spool_trouble(g, r);
			return;
		}
		if (r == 0)
			return;
		outgoing(g, &m, &props);
		g->publishing = true;
		g->n_early = 0;
		mid = 0;
		r = mqtt_publish(g->mqtt, m.topic, m.payload, m.len, m.qos, m.retain, props, &mid);
		mosquitto_property_free_all(&props);
		g->publishing = false;
		if (r == 0 || queued_anyway(r, m.qos, mid)) {
			g->n_published++;
			spool_sent(g->spool, m.id, mid);
			if (early_acked(g, mid))
				spool_ack(g->spool, mid);
			if (r != 0)
				return; /* the link just broke: the rest after the reconnect */
		} else if (r == -EINVAL) {
			unsigned suppressed;
			char more[64] = "";
			if (ratelimit_allow(&g->unpublishable_rl, now_mono_us(), &suppressed)) {
				if (suppressed)
					snprintf(more, sizeof(more), " (%u more before this were not logged)", suppressed);
				log_full(LOG_ERR, NULL, m.topic, "spool: message for %s cannot be published; dropping it%s",
				         m.topic, more);
			}
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
		uint64_t due = spool_commit_due(g->spool);
		if (due <= now_mono_us()) {
			r = spool_commit(g->spool);
			if (r < 0)
				spool_trouble(g, r);
		} else { /* commit_interval: later, for what comes until then too */
			sd_event_source_set_time(g->commit_timer, due);
			sd_event_source_set_enabled(g->commit_timer, SD_EVENT_ONESHOT);
		}
	}
	pump(g);
	spool_episodes(g);
	mqtt_flush_now(g);
	return 0;
}

static int on_flush_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s;
	(void)usec;
	flush_later(ud);
	return 0;
}

static int spool_setup(struct sg_gateway *g)
{
	struct sg_spool_info info;
	unsigned max = (unsigned)(g->cfg_mqtt->mqtt.max_inflight > 0 ? g->cfg_mqtt->mqtt.max_inflight : 1);

	char why[sizeof(g->spool_open_err)];

	g->spool = spool_open(&g->cfg_mqtt->spool, max, &info);
	if (!g->spool) {
		int r = -errno;
		snprintf(why, sizeof(why), "%s%s%s", r == -EBUSY ? "in use by another process" : strerror(-r),
		         info.why[0] ? ": " : "", info.why);
		/* once per distinct reason, not every retry */
		log_full(strcmp(why, g->spool_open_err) != 0 ? LOG_ERR : LOG_DEBUG, NULL, NULL,
		         "spool: cannot open %s: %s; readings are published only while the broker is connected; "
		         "retrying every %llu s",
		         info.path, why, (unsigned long long)(SPOOL_REOPEN_US / 1000000));
		snprintf(g->spool_open_err, sizeof(g->spool_open_err), "%s", why);
		return r;
	}
	g->spool_open_err[0] = '\0';
	if (spool_topic_seqs(g->spool, seq_seen, g) < 0)
		log_warning("spool: cannot read the sequence numbers in %s; they start again at 1", info.path);
	if (info.aside[0])
		log_error("spool: %s was not a spool this version can use (%s); moved it aside to %s and started an "
		          "empty spool", info.path, info.why, info.aside);
	if (info.depth)
		log_notice("spool: %s holds %llu messages from before; sending them first", info.path,
		           (unsigned long long)info.depth);
	else {
		char window[64] = "";
		if (g->cfg_mqtt->spool.commit_interval_s > 0)
			snprintf(window, sizeof(window), ", committed within %g s, after the hand-over",
			         g->cfg_mqtt->spool.commit_interval_s);
		log_info("spool: %s (limit %d MiB, sync %s%s)", info.path, g->cfg_mqtt->spool.max_size_mb,
		         g->cfg_mqtt->spool.sync_full ? "full" : "normal", window);
	}
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

	sd_event_source_set_time(s, usec + (uint64_t)(g->cfg_mqtt->spool.stats_interval_s * 1e6));
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
	route(d->g, &msg);
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

/* ---- Cloud profiles ----------------------------------------------------------------------------
 *
 * mqtt.cloud = "azure-iot-hub" or "aws-iot-core" (config.h; the credentials are mqtt.c's):
 * - Telemetry: the readings of one device that one event handler produced
 *   (a poll, a line) become one message: Azure, on the device's telemetry
 *   topic devices/{device_id}/messages/events/ with a property bag that says
 *   it is UTF-8 JSON and names the device; AWS, on <base_topic>/<device>:
 *     {"device":"env","readings":{"temperature":{"value":21.5,"unit":"°C","ts":"..."},...}}
 *   each reading as its JSON payload (mapper.h). QoS is the highest of its
 *   readings (never 2: config refuses it), never retained. A field that comes
 *   twice, or a full batch, sends what was gathered first.
 * - Commands: a cloud-to-device message, a desired-properties patch of the
 *   device twin (Azure) or the "state" of a shadow delta (AWS) is a JSON
 *   object whose members name actuators, e.g. {"hall-light":"ON","fan":40};
 *   each goes to the command router as if it came on that actuator's command
 *   topic ($-members such as "$version" are the hub's own). A confirmed state
 *   is reported back: a reported-properties patch {"hall-light":"ON"} (Azure),
 *   a shadow update {"state":{"reported":{"hall-light":"ON"}}} (AWS). Errors
 *   are only logged (neither service has a topic for them).
 * Topics and payloads: learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub,
 * docs.aws.amazon.com/iot/latest/developerguide/device-shadow-mqtt.html.
 */
#define BATCH_MAX 8192 /* far below the hub's 256 KiB device-to-cloud message (IoT Hub quotas) */

/*
 * Azure: devices/{device_id}/messages/events/ and a property bag ("$.ct"/"$.ce" let the hub's routing read
 * the body). AWS: <base_topic>/<device> (any topic the thing's policy allows).
 */
static int cloud_events_topic(const struct sg_gateway *g, const char *device, char *buf, size_t len)
{
	int n;

	if (g->cfg_mqtt->mqtt.cloud == SG_CLOUD_AZURE)
		n = snprintf(buf, len, "devices/%s/messages/events/$.ct=application%%2Fjson&$.ce=utf-8&device=%s",
		             g->cfg_mqtt->mqtt.device_id, device);
	else
		n = snprintf(buf, len, "%s/%s", g->cfg_mqtt->base_topic, device);
	return n < 0 || (size_t)n >= len ? -ENOBUFS : 0;
}

static void batch_send(struct gw_device *d)
{
	struct sg_gateway *g = d->g;
	struct sg_message msg;
	char topic[512];

	if (!d->batch_len)
		return;
	memcpy(d->batch + d->batch_len, "}}", 3); /* room kept by batch_add() */
	msg = (struct sg_message){
		.topic = topic,
		.payload = d->batch,
		.payload_len = d->batch_len + 2,
		.qos = d->batch_qos,
		.retain = false,
		.offline = d->batch_offline,
	};
	d->batch_len = 0;
	if (cloud_events_topic(g, d->cfg->name, topic, sizeof(topic)) < 0) {
		drop_reading(g, &msg, "the telemetry topic is too long");
		return;
	}
	route(g, &msg);
}

static void batch_add(struct gw_device *d, const char *field, const struct sg_message *msg)
{
	struct sg_gateway *g = d->g;
	char name[256], key[300];
	size_t kn;

	sg_json_escape(field, strnlen(field, 64), name, sizeof(name), NULL);
	kn = (size_t)snprintf(key, sizeof(key), "\"%s\":", name);
	/* in the readings part, "NAME":{ only ever opens a reading: their payloads hold no objects */
	key[kn] = '{';
	key[kn + 1] = '\0';
	if (!d->batch && !(d->batch = malloc(BATCH_MAX))) {
		drop_reading(g, msg, "out of memory");
		return;
	}
	if (d->batch_len && (d->batch_len + 1 + kn + msg->payload_len + 3 > BATCH_MAX ||
	                     (d->batch[d->batch_len] = '\0', strstr(d->batch + d->batch_head, key))))
		batch_send(d);
	if (!d->batch_len) {
		sg_json_escape(d->cfg->name, strnlen(d->cfg->name, 64), name, sizeof(name), NULL);
		d->batch_len = d->batch_head = (size_t)snprintf(d->batch, BATCH_MAX, "{\"device\":\"%s\",\"readings\":{",
		                                                name);
		d->batch_qos = 0;
		d->batch_offline = SG_OFFLINE_DROP;
	} else {
		d->batch[d->batch_len++] = ',';
	}
	if (d->batch_len + kn + msg->payload_len + 3 > BATCH_MAX) {
		d->batch_len = 0;
		drop_reading(g, msg, "longer than a telemetry message may be here");
		return;
	}
	memcpy(d->batch + d->batch_len, key, kn);
	memcpy(d->batch + d->batch_len + kn, msg->payload, msg->payload_len);
	d->batch_len += kn + msg->payload_len;
	if (msg->qos > d->batch_qos)
		d->batch_qos = msg->qos;
	/* spool beats last beats drop: the message is kept as well as its most demanding reading asks */
	if (msg->offline == SG_OFFLINE_SPOOL || (msg->offline == SG_OFFLINE_LAST && d->batch_offline == SG_OFFLINE_DROP))
		d->batch_offline = msg->offline;
	sd_event_source_set_enabled(g->batch_flush, SD_EVENT_ONESHOT);
}

static int on_batch_flush(sd_event_source *s, void *ud)
{
	struct sg_gateway *g = ud;
	(void)s;

	for (size_t i = 0; i < g->n_devs; i++)
		batch_send(g->devs[i]);
	return 0;
}

static const struct sg_actuator_cfg *cloud_actuator(const struct sg_gateway *g, const char *name, const char *topic)
{
	const struct sg_config *c = g->cfg_mqtt;

	for (size_t i = 0; i < c->n_actuators; i++)
		if ((name && strcmp(c->actuators[i].name, name) == 0) || (topic && strcmp(c->actuators[i].topic, topic) == 0))
			return &c->actuators[i];
	return NULL;
}

/*
 * After a reconnect the gateway asks for the whole twin (Azure) or shadow
 * (AWS): a desired state set while it was away is carried out then. Only
 * where it differs from the state last reported from here: the service's
 * own record of the reported state may be older than ours, and an actuator
 * with pulse_ms must not pulse again at every reconnect.
 */
static void cloud_member(void *ud, const char *name, const char *scalar, const char *raw, size_t raw_len);

static void cloud_member_changed(void *ud, const char *name, const char *scalar, const char *raw, size_t raw_len)
{
	struct sg_gateway *g = ud;
	const struct sg_config *c = g->cfg_mqtt;

	for (size_t i = 0; scalar && g->cloud_state && i < c->n_actuators; i++)
		if (strcmp(c->actuators[i].name, name) == 0 && strcmp(g->cloud_state[i], scalar) == 0) {
			log_debug("cloud: %s is %s already, as desired", name, scalar);
			return;
		}
	cloud_member(ud, name, scalar, raw, raw_len);
}

/* A member of a C2D message or a desired-properties patch: a command for the actuator it names. */
static void cloud_member(void *ud, const char *name, const char *scalar, const char *raw, size_t raw_len)
{
	struct sg_gateway *g = ud;
	const struct sg_actuator_cfg *a;
	struct sg_cmd_msg m;

	if (name[0] == '$')
		return; /* "$version" and the like: the hub's */
	a = cloud_actuator(g, name, NULL);
	if (!a) {
		if (ratelimit_allow(&g->cloud_rl, now_mono_us(), NULL))
			log_warning("cloud: \"%s\" in a command or desired properties is not an actuator, ignoring", name);
		return;
	}
	m = (struct sg_cmd_msg){.topic = a->command_topic, .payload = scalar ? scalar : raw,
	                        .len = scalar ? strlen(scalar) : raw_len};
	commands_message(g->cmds, &m, now_mono_us());
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

#define AZURE_C2D_FMT     "devices/%s/messages/devicebound/"
#define AZURE_DESIRED     "$iothub/twin/PATCH/properties/desired/"
#define AZURE_TWIN_RES    "$iothub/twin/res/"
#define AZURE_REPORTED    "$iothub/twin/PATCH/properties/reported/?$rid=%u"
/* AWS IoT device shadow topics (docs.aws.amazon.com/iot/latest/developerguide/device-shadow-mqtt.html) */
#define AWS_SHADOW        "$aws/things/%s/shadow/update"
#define AWS_DELTA         AWS_SHADOW "/delta"
#define AWS_REJECTED      AWS_SHADOW "/rejected"
#define AWS_GET           "$aws/things/%s/shadow/get"
#define AWS_GET_ACCEPTED  AWS_GET "/accepted"
#define AZURE_TWIN_GET    "$iothub/twin/GET/?$rid=%u"

/* The whole shadow after a reconnect: its state.delta, actuators whose state differs (see above). */
static void aws_get_state_member(void *ud, const char *name, const char *scalar, const char *raw, size_t raw_len)
{
	if (strcmp(name, "delta") == 0 && !scalar)
		commands_json_each(raw, raw_len, cloud_member_changed, ud);
}

static void aws_get_member(void *ud, const char *name, const char *scalar, const char *raw, size_t raw_len)
{
	if (strcmp(name, "state") == 0 && !scalar)
		commands_json_each(raw, raw_len, aws_get_state_member, ud);
}

/* The whole twin after a reconnect, {"desired":{...},"reported":{...}}: its desired properties (see above). */
static void azure_twin_member(void *ud, const char *name, const char *scalar, const char *raw, size_t raw_len)
{
	if (strcmp(name, "desired") == 0 && !scalar)
		commands_json_each(raw, raw_len, cloud_member_changed, ud);
}

/* The "state" member of a shadow delta document: the desired states that differ from the reported ones. */
static void aws_delta_member(void *ud, const char *name, const char *scalar, const char *raw, size_t raw_len)
{
	struct sg_gateway *g = ud;
	int r;

	if (strcmp(name, "state") != 0 || scalar)
		return;
	r = commands_json_each(raw, raw_len, cloud_member, g);
	if (r < 0 && ratelimit_allow(&g->cloud_rl, now_mono_us(), NULL))
		log_warning("cloud: a shadow delta whose state is not an object of actuator states, ignoring");
}

static void aws_message(struct sg_gateway *g, const struct sg_mqtt_msg *msg)
{
	char delta[300], rejected[300], got[300];
	int r;

	snprintf(delta, sizeof(delta), AWS_DELTA, g->cfg_mqtt->mqtt.device_id);
	snprintf(rejected, sizeof(rejected), AWS_REJECTED, g->cfg_mqtt->mqtt.device_id);
	snprintf(got, sizeof(got), AWS_GET_ACCEPTED, g->cfg_mqtt->mqtt.device_id);
	if (strcmp(msg->topic, got) == 0) {
		if (commands_json_each(msg->payload, msg->len, aws_get_member, g) < 0)
			log_warning("cloud: the shadow that came is not a JSON object, ignoring");
		actuators_watch(g);
		return;
	}
	if (strcmp(msg->topic, rejected) == 0) {
		log_warning("cloud: the shadow service refused a reported state: %.*s", (int)(msg->len < 200 ? msg->len : 200),
		            msg->payload ? (const char *)msg->payload : "");
		return;
	}
	if (strcmp(msg->topic, delta) != 0) {
		log_debug("cloud: a message on %s, ignoring", msg->topic);
		return;
	}
	r = commands_json_each(msg->payload, msg->len, aws_delta_member, g);
	if (r < 0 && ratelimit_allow(&g->cloud_rl, now_mono_us(), NULL))
		log_warning("cloud: a shadow delta that is not a JSON object, ignoring");
	actuators_watch(g);
}

static void cloud_message(struct sg_gateway *g, const struct sg_mqtt_msg *msg)
{
	char c2d[300];
	int r;

	if (g->cfg_mqtt->mqtt.cloud == SG_CLOUD_AWS) {
		aws_message(g, msg);
		return;
	}
	snprintf(c2d, sizeof(c2d), AZURE_C2D_FMT, g->cfg_mqtt->mqtt.device_id);
	if (starts_with(msg->topic, AZURE_TWIN_RES)) {
		/* $iothub/twin/res/{status}/?$rid={request id}[&...]: 2xx is success (iot-mqtt-connect-to-iot-hub) */
		const char *rid = strstr(msg->topic, "$rid=");
		bool get = rid && g->twin_get_rid && strtoul(rid + 5, NULL, 10) == g->twin_get_rid;

		if (msg->topic[strlen(AZURE_TWIN_RES)] != '2') {
			log_warning("cloud: the hub refused a %s: %s", get ? "request for the twin" : "reported-properties "
			            "update", msg->topic);
		} else if (get) {
			g->twin_get_rid = 0;
			if (commands_json_each(msg->payload, msg->len, azure_twin_member, g) < 0)
				log_warning("cloud: the twin that came is not a JSON object, ignoring");
			actuators_watch(g);
		}
		return;
	}
	if (!starts_with(msg->topic, c2d) && !starts_with(msg->topic, AZURE_DESIRED)) {
		log_debug("cloud: a message on %s, ignoring", msg->topic);
		return;
	}
	r = commands_json_each(msg->payload, msg->len, cloud_member, g);
	if (r < 0 && ratelimit_allow(&g->cloud_rl, now_mono_us(), NULL))
		log_warning("cloud: a %s that is not a JSON object of actuator states (%s), ignoring: expected e.g. "
		            "{\"hall-light\":\"ON\"}", starts_with(msg->topic, c2d) ? "cloud-to-device message"
		                                                                : "desired-properties patch",
		            r == -EEXIST ? "a member twice" : r == -E2BIG ? "too many members" : "invalid JSON");
	actuators_watch(g);
}

/* A state the router publishes: a reported-properties patch {"NAME":VALUE}; errors and answers are only logged. */
static int cloud_act_publish(struct sg_gateway *g, const char *topic, const void *payload, size_t len, int qos)
{
	const struct sg_actuator_cfg *a = cloud_actuator(g, NULL, topic);
	char patch[600], t[300], name[256], value[400];
	const char *p = payload;
	char *end = NULL;
	bool number;
	int n;

	if (!a)
		return 0;
	/* a JSON number stays one (strtod's forms JSON lacks, "+1", ".5", "0x1", "inf", are text) */
	number = len > 0 && len < 64 && (p[0] == '-' || (p[0] >= '0' && p[0] <= '9')) && !memchr(p, 'x', len) &&
	         !memchr(p, 'X', len) && !memchr(p, 'n', len) && !memchr(p, 'N', len);
	if (number) {
		char tmp[64];
		memcpy(tmp, p, len);
		tmp[len] = '\0';
		strtod(tmp, &end);
		number = end == tmp + len;
	}
	if (g->cloud_state)
		snprintf(g->cloud_state[a - g->cfg_mqtt->actuators], sizeof(g->cloud_state[0]), "%.*s", (int)len, p);
	sg_json_escape(a->name, strnlen(a->name, 80), name, sizeof(name), NULL);
	if (number)
		snprintf(value, sizeof(value), "%.*s", (int)len, p);
	else {
		value[0] = '"';
		sg_json_escape(payload, len < 128 ? len : 128, value + 1, sizeof(value) - 2, NULL);
		strcat(value, "\"");
	}
	if (g->cfg_mqtt->mqtt.cloud == SG_CLOUD_AWS) {
		n = snprintf(patch, sizeof(patch), "{\"state\":{\"reported\":{\"%s\":%s}}}", name, value);
		snprintf(t, sizeof(t), AWS_SHADOW, g->cfg_mqtt->mqtt.device_id);
		return mqtt_publish(g->mqtt, t, patch, (size_t)n, qos, false, NULL, NULL);
	}
	n = snprintf(patch, sizeof(patch), "{\"%s\":%s}", name, value);
	snprintf(t, sizeof(t), AZURE_REPORTED, ++g->twin_rid);
	return mqtt_publish(g->mqtt, t, patch, (size_t)n, qos, false, NULL, NULL);
}

static void cloud_connected(struct sg_gateway *g)
{
	char c2d[300];
	int r;

	if (g->cfg_mqtt->mqtt.cloud == SG_CLOUD_AWS) {
		char delta[300], rejected[300], get[300], got[300];
		const char *id = g->cfg_mqtt->mqtt.device_id;
		snprintf(delta, sizeof(delta), AWS_DELTA, id);
		snprintf(rejected, sizeof(rejected), AWS_REJECTED, id);
		snprintf(get, sizeof(get), AWS_GET, id);
		snprintf(got, sizeof(got), AWS_GET_ACCEPTED, id);
		if ((r = mqtt_subscribe(g->mqtt, delta, 1)) < 0 || (r = mqtt_subscribe(g->mqtt, rejected, 0)) < 0 ||
		    (r = mqtt_subscribe(g->mqtt, got, 1)) < 0 ||
		    (g->cfg_mqtt->n_actuators && (r = mqtt_publish(g->mqtt, get, "", 0, 0, false, NULL, NULL)) < 0))
			log_warning("cloud: cannot subscribe to the thing's shadow topics: %s", strerror(-r));
		return;
	}
	snprintf(c2d, sizeof(c2d), AZURE_C2D_FMT "#", g->cfg_mqtt->mqtt.device_id);
	if ((r = mqtt_subscribe(g->mqtt, c2d, 1)) < 0 || (r = mqtt_subscribe(g->mqtt, AZURE_DESIRED "#", 1)) < 0 ||
	    (r = mqtt_subscribe(g->mqtt, AZURE_TWIN_RES "#", 0)) < 0)
		log_warning("cloud: cannot subscribe to the hub's command topics: %s", strerror(-r));
	if (g->cfg_mqtt->n_actuators) {
		char t[64];
		g->twin_get_rid = ++g->twin_rid;
		snprintf(t, sizeof(t), AZURE_TWIN_GET, g->twin_get_rid);
		if ((r = mqtt_publish(g->mqtt, t, "", 0, 0, false, NULL, NULL)) < 0)
			log_warning("cloud: cannot ask the hub for the twin: %s", strerror(-r));
	}
}

/*
 * Timeout filters (filters.h): one timer for all readings, at the mapper's
 * earliest deadline; off while no chain waits. Re-armed after every reading
 * the mapper sees and after every firing. A no-op without timeout filters.
 */
static void filters_arm(struct sg_gateway *g)
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
		route(g, &msg);
	if (k < 0)
		log_warning("timeout filter: value not published: %s, ignoring", strerror(-k));
	filters_arm(g);
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
		discovery_note(d, r->field);
	if (d->cfg->driver->io && (d->reopen.failures || d->last_error[0]))
		device_recovered(d);
	k = mapper_map(g->mapper, d->index, r, now_mono_us(), &msg);
	filters_arm(g);
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
		batch_add(d, r->field, &msg);
	else
		route(g, &msg);
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
	device_close(d);
	device_schedule_reopen(d);
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
	device_close(d);
	device_schedule_reopen(d);
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
		if (!d->last_error[0] && !d->reopen.failures) /* a reopening logs "open again" instead */
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
static void actuators_watch(struct sg_gateway *g);

static void device_recovered(struct gw_device *d)
{
	if (d->last_error[0] || d->reopen.failures) {
		log_full(LOG_NOTICE, d->cfg->name, NULL, "%s open again",
		         d->dev.path ? d->dev.path : d->cfg->driver->name);
		d->n_reconnects++;
		if (d->g->cmds && d->dev.path) { /* the actuators on the same port: now, not after their backoff */
			commands_hardware_back(d->g->cmds, d->dev.path, now_mono_us());
			actuators_watch(d->g);
		}
	}
	d->last_error[0] = '\0';
	backoff_reset(&d->reopen);
}

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
		d->dev.why = NULL;
		d->dev.note = NULL;
		r = drv->init(&d->dev);
		if (r < 0) {
			device_problem(d, "%s: initialisation failed: %s%s%s", d->dev.path ? d->dev.path : drv->name,
			               strerror(-r), d->dev.why ? ": " : "", d->dev.why ? d->dev.why : "");
			device_close(d);
			return r;
		}
	}
	d->up = true;
	r = device_watch(d);
	if (r < 0) {
		device_close(d);
		return r;
	}
	if (d->dev.note && !d->last_error[0] && !d->reopen.failures) /* a reopening logs "open again" instead */
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

static void device_schedule_reopen(struct gw_device *d)
{
	uint64_t ceiling = backoff_ceiling(&d->reopen), delay = backoff_next(&d->reopen);

	log_full(LOG_DEBUG, d->cfg->name, NULL, "next attempt in %.3f s (backoff up to %.3f s)", (double)delay / 1e6,
	         (double)ceiling / 1e6);
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
		if (device_open(d) < 0)
			device_schedule_reopen(d);
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
			device_close(d);
			device_schedule_reopen(d);
		}
		return 0;
	}
	sd_event_source_set_time(d->timer, now_mono_us() + delay);
	sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
	return 0;
}

/* Point D at configuration entry C (number INDEX); the bus binding follows C. */
static void device_bind(struct gw_device *d, const struct sg_device_cfg *c, size_t index)
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
static int device_expire_setup(struct gw_device *d)
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
static struct gw_device *device_new(struct sg_gateway *g, const struct sg_device_cfg *c, size_t index)
{
	struct gw_device *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return NULL;
	d->g = g;
	d->fail_rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(60, 5);
	backoff_init(&d->reopen, REOPEN_MIN_US, REOPEN_MAX_US);
	d->dev = (struct sg_dev){
		.fd = -1,
		.watch_fd = -1,
		.emit = on_reading,
		.on_fail = on_device_fail,
		.value_load = on_value_load,
		.value_save = on_value_save,
		.userdata = d,
	};
	device_bind(d, c, index);
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
	r = device_expire_setup(d);
	if (r < 0) {
		sd_event_source_disable_unref(d->timer);
		health_window_free(d->health);
		free(d);
		errno = -r;
		return NULL;
	}
	/* A device that cannot be opened now is retried; it does not stop the gateway. */
	if (device_open(d) < 0)
		device_schedule_reopen(d);
	return d;
}

static void device_free(struct gw_device *d)
{
	if (!d)
		return;
	device_close(d);
	sd_event_source_disable_unref(d->timer);
	sd_event_source_disable_unref(d->expire);
	free(d->batch);
	health_window_free(d->health);
	free(d);
}

/* After a (re)connection: drivers that hold a state (a contact's level) say it again. */
static void devices_refresh(struct sg_gateway *g)
{
	for (size_t i = 0; i < g->n_devs; i++) {
		struct gw_device *d = g->devs[i];

		if (d && d->up && d->cfg->driver->refresh)
			d->cfg->driver->refresh(&d->dev);
	}
}

static int devices_setup(struct sg_gateway *g)
{
	g->n_devs = g->cfg->n_devices;
	g->devs = calloc(g->n_devs ? g->n_devs : 1, sizeof(*g->devs));
	if (!g->devs)
		return -ENOMEM;
	for (size_t i = 0; i < g->n_devs; i++) {
		g->devs[i] = device_new(g, &g->cfg->devices[i], i);
		if (!g->devs[i])
			return -errno;
	}
	return 0;
}

/* ---- actuators -------------------------------------------------------------------------------- */

/* The router (commands.c) owns the actuators; here they only meet the loop and MQTT. */
struct gw_act_io {
	struct sg_gateway *g;
	size_t index;
	sd_event_source *io;
	int fd;
	unsigned gen;
};

static int act_publish(void *ud, const char *topic, const void *payload, size_t len, int qos, bool retain,
                       const void *corr, size_t corr_len)
{
	struct sg_gateway *g = ud;
	mosquitto_property *props = NULL;
	int r;

	if (g->cfg_mqtt->mqtt.cloud != SG_CLOUD_NONE)
		return cloud_act_publish(g, topic, payload, len, qos);
	if (corr && corr_len && mqtt_protocol(g->mqtt) == 5 &&
	    mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, corr, (uint16_t)corr_len) !=
	            MOSQ_ERR_SUCCESS)
		return -ENOMEM;
	r = mqtt_publish(g->mqtt, topic, payload, len, qos, retain, props, NULL);
	mosquitto_property_free_all(&props);
	return r;
}

/* Command topics: with No Local, so that nothing the gateway publishes can come back to it as a command. */
static int act_subscribe(void *ud, const char *topic, int qos)
{
	struct sg_gateway *g = ud;
	if (g->cfg_mqtt->mqtt.cloud != SG_CLOUD_NONE)
		return 0; /* the cloud's own command topics instead: cloud_connected() */
	return mqtt_subscribe_no_local(g->mqtt, topic, qos);
}

static void act_closing(void *ud, size_t i)
{
	struct sg_gateway *g = ud;

	if (!g->act_io)
		return;
	g->act_io[i].io = sd_event_source_disable_unref(g->act_io[i].io);
	g->act_io[i].fd = -1;
}

static int on_act_io(sd_event_source *s, int fd, uint32_t revents, void *ud);

/* Re-read every actuator's fd, events and the router's deadline after each call into it. */
static void actuators_watch(struct sg_gateway *g)
{
	size_t n = commands_count(g->cmds);
	uint64_t deadline = commands_deadline(g->cmds);
	int r;

	for (size_t i = 0; i < n; i++) { /* drop stale watches first: fd numbers get reused */
		struct gw_act_io *x = &g->act_io[i];
		if (x->io && (commands_fd(g->cmds, i) != x->fd || commands_fd_generation(g->cmds, i) != x->gen)) {
			x->io = sd_event_source_disable_unref(x->io);
			x->fd = -1;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct gw_act_io *x = &g->act_io[i];
		int fd = commands_fd(g->cmds, i);
		uint32_t events = (uint32_t)commands_events(g->cmds, i) & (EPOLLIN | EPOLLOUT);

		if (x->io) {
			sd_event_source_set_io_events(x->io, events);
			continue;
		}
		if (fd < 0)
			continue;
		x->gen = commands_fd_generation(g->cmds, i);
		r = sd_event_add_io(g->loop, &x->io, fd, events, on_act_io, x);
		if (r < 0)
			log_error("actuator %s: cannot watch its port: %s", g->cfg_mqtt->actuators[i].name, strerror(-r));
		else
			x->fd = fd;
	}
	if (deadline == UINT64_MAX) {
		sd_event_source_set_enabled(g->act_timer, SD_EVENT_OFF);
	} else {
		sd_event_source_set_time(g->act_timer, deadline);
		sd_event_source_set_enabled(g->act_timer, SD_EVENT_ONESHOT);
	}
}

static int on_act_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct gw_act_io *x = ud;
	struct sg_gateway *g = x->g;
	(void)s;
	(void)fd;
	commands_io(g->cmds, x->index, (short)revents, now_mono_us());
	actuators_watch(g);
	return 0;
}

static int on_act_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;
	(void)s;
	(void)usec;
	commands_timer(g->cmds, now_mono_us());
	actuators_watch(g);
	return 0;
}

/* An MQTT message: its MQTT 5 properties become plain fields for the router. */
static void actuators_message(struct sg_gateway *g, const struct sg_mqtt_msg *msg)
{
	struct sg_cmd_msg m = {.topic = msg->topic, .payload = msg->payload, .len = msg->len, .retain = msg->retain};
	char *response_topic = NULL;
	void *corr = NULL;
	uint16_t corr_len = 0;
	uint32_t expiry = 0;

	if (msg->props) {
		if (mosquitto_property_read_int32(msg->props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, &expiry, false)) {
			m.has_expiry = true;
			m.expiry_s = expiry;
		}
		if (mosquitto_property_read_string(msg->props, MQTT_PROP_RESPONSE_TOPIC, &response_topic, false))
			m.response_topic = response_topic;
		if (mosquitto_property_read_binary(msg->props, MQTT_PROP_CORRELATION_DATA, &corr, &corr_len, false)) {
			m.correlation = corr;
			m.correlation_len = corr_len;
		}
	}
	commands_message(g->cmds, &m, now_mono_us());
	free(response_topic);
	free(corr);
	actuators_watch(g);
}

/* After a line's dispatch: actuators on it may have finished a command; the router picks that up. */
static void on_lines_after(void *ud, uint64_t now_us)
{
	struct sg_gateway *g = ud;

	mqtt_flush_now(g);
	if (!g->cmds)
		return;
	commands_timer(g->cmds, now_us);
	actuators_watch(g);
}

/* Open every actuator (driven to its initial state); one that cannot be opened is retried. */
static int actuators_setup(struct sg_gateway *g)
{
	const struct sg_cmd_env env = {
		.publish = act_publish,
		.subscribe = act_subscribe,
		.closing = act_closing,
		.buses = &g->act_buses,
	};
	size_t n;
	int r;

	/* 1 ms accuracy: 0 would mean sd-event's default of 250 ms, too coarse for pulse_ms and reply timeouts */
	r = sd_event_add_time(g->loop, &g->act_timer, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_act_timer, g);
	if (r < 0)
		return r;
	sd_event_source_set_enabled(g->act_timer, SD_EVENT_OFF);
	g->act_buses = (struct sg_act_buses){.gpio = NULL, .lines = gw_lines_set(g->lines)};
	if (g->cfg->mqtt.cloud != SG_CLOUD_NONE && g->cfg->n_actuators &&
	    !(g->cloud_state = calloc(g->cfg->n_actuators, sizeof(*g->cloud_state))))
		return -ENOMEM;
	g->cmds = commands_new(g->cfg, &env, g, now_mono_us());
	if (!g->cmds)
		return -errno;
	n = commands_count(g->cmds);
	g->act_io = calloc(n ? n : 1, sizeof(*g->act_io));
	if (!g->act_io)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		g->act_io[i] = (struct gw_act_io){.g = g, .index = i, .fd = -1};
	actuators_watch(g);
	return 0;
}

static void actuators_free(struct sg_gateway *g)
{
	size_t n = g->cmds ? commands_count(g->cmds) : 0;

	commands_free(g->cmds); /* calls act_closing() for what is still open */
	g->cmds = NULL;
	for (size_t i = 0; g->act_io && i < n; i++)
		sd_event_source_disable_unref(g->act_io[i].io);
	free(g->act_io);
	g->act_io = NULL;
	g->act_timer = sd_event_source_disable_unref(g->act_timer);
	free(g->cloud_state);
	g->cloud_state = NULL;
}

/* ---- metrics --------------------------------------------------------------------------------- *
 *
 * metrics.path: every metrics.interval the counters (the same as the stats
 * topic's, per device and per actuator too) go to a Prometheus text file
 * that node_exporter's textfile collector serves. A few kilobytes written to
 * a temporary file and renamed, without fsync: 13.5 kB and 0.17 ms for ten
 * devices and four actuators on the development host (ext4). A write error
 * is logged once, and its end once.
 */

static void device_health_figures(const struct gw_device *d, struct sg_health_figures *recent,
                                  struct sg_health_figures *since);

static void metrics_update(struct sg_gateway *g)
{
	const char *path = g->cfg_mqtt->metrics.path;
	struct sg_metrics_device *devs = calloc(g->n_devs ? g->n_devs : 1, sizeof(*devs));
	size_t n_acts = g->cmds ? commands_count(g->cmds) : 0, len = 0;
	struct sg_metrics_actuator *acts = calloc(n_acts ? n_acts : 1, sizeof(*acts));
	struct sg_spool_stats st = {0};
	uint64_t now = now_mono_us();
	char *text = NULL;
	int r = -ENOMEM;

	if (!devs || !acts)
		goto out;
	for (size_t i = 0; i < g->n_devs; i++) {
		const struct gw_device *d = g->devs[i];

		if (!d)
			continue;
		devs[i] = (struct sg_metrics_device){.name = d->cfg->name, .driver = d->cfg->driver->name, .up = d->up,
		                                     .readings = d->dev.stats.readings, .reconnects = d->n_reconnects};
		memcpy(devs[i].fail, d->dev.stats.fail, sizeof(devs[i].fail));
		{
			struct sg_health_figures recent, since;

			device_health_figures(d, &recent, &since);
			devs[i].good = d->dev.stats.frames + d->n_good_polls;
			devs[i].quality = recent.quality / 100.0;
		}
	}
	for (size_t i = 0; i < n_acts; i++)
		acts[i] = (struct sg_metrics_actuator){.name = g->cfg_mqtt->actuators[i].name,
		                                       .up = commands_up(g->cmds, i),
		                                       .fail_safe = commands_fail_safe_count(g->cmds, i)};
	if (g->spool)
		spool_get_stats(g->spool, &st);
	r = metrics_format(&(struct sg_metrics){
		.version = SG_VERSION,
		.broker = mqtt_broker(g->mqtt),
		.connected = mqtt_connected(g->mqtt),
		.connects = g->n_connects,
		.uptime_s = (double)(now - g->started_us) / 1e6,
		.start_time_s = g->started_wall_s,
		.readings = g->n_readings,
		.published = g->n_published,
		.dropped = g->n_dropped + st.dropped,
		.skipped = g->n_skipped,
		.spool_open = g->spool != NULL,
		.spooled = st.spooled,
		.acknowledged = st.acknowledged,
		.compacted = st.compacted,
		.spool_depth = st.depth,
		.spool_bytes = st.bytes,
		.in_flight = st.outstanding,
		.devices = devs,
		.n_devices = g->n_devs,
		.actuators = acts,
		.n_actuators = n_acts,
	}, &text, &len);
	if (r == 0)
		r = metrics_write(path, text, len);
out:
	free(text);
	free(devs);
	free(acts);
	if (r < 0) {
		char why[sizeof(g->metrics_err)];

		snprintf(why, sizeof(why), "%s", strerror(-r));
		if (strcmp(why, g->metrics_err) != 0)
			log_error("metrics: cannot write %s: %s%s; retrying every %g s", path, why,
			          r == -EROFS || r == -EACCES ? " (under systemd: ReadWritePaths= for its directory in a "
			          "drop-in, and write access for the user sensorgate)" : "", g->cfg_mqtt->metrics.interval_s);
		snprintf(g->metrics_err, sizeof(g->metrics_err), "%s", why);
	} else if (g->metrics_err[0]) {
		log_notice("metrics: %s written again", path);
		g->metrics_err[0] = '\0';
	}
}

static int on_metrics_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;

	sd_event_source_set_time(s, usec + (uint64_t)(g->cfg_mqtt->metrics.interval_s * 1e6));
	metrics_update(g);
	return 0;
}

/* ---- health ---------------------------------------------------------------------------------- *
 *
 * Link quality per device (health.h): every health.interval each device's
 * counters are sampled into its window; with health.publish the figures go
 * to <base>/<device>/health (retained, QoS 0, only while connected: stale
 * health is no use after an outage) when they changed, and at least every
 * HEALTH_REFRESH_US; and the table of all devices is written to the status
 * file (health_status_path()) that `sensorgate --status` prints. The file
 * and not a socket: the unit may not bind sockets, a file needs no
 * protocol, and whoever may read it can ask (mode 0644 like the metrics).
 * Only with RUNTIME_DIRECTORY (systemd's RuntimeDirectory=, or set by
 * hand): a gateway started by hand, a test or the demo never overwrites
 * the file of the service running on the same host.
 */

#define HEALTH_REFRESH_US (60 * 1000000ULL) /* republished unchanged this often: the rates stay current */

static void device_health_sample(struct gw_device *d, uint64_t now)
{
	struct sg_health_counts c;

	if (!d->health)
		return;
	health_counts_fill(&c, d->dev.stats.frames + d->n_good_polls, d->dev.stats.fail, d->n_reconnects);
	health_window_add(d->health, now, &c);
}

static void device_health_figures(const struct gw_device *d, struct sg_health_figures *recent,
                                  struct sg_health_figures *since)
{
	if (d && d->health) {
		health_window_figures(d->health, true, recent);
		health_window_figures(d->health, false, since);
	} else {
		*recent = *since = (struct sg_health_figures){.quality = NAN};
	}
}

static void device_health_publish(struct gw_device *d, uint64_t now)
{
	struct sg_gateway *g = d->g;
	struct sg_health_figures recent, since;
	char key[sizeof(d->health_key)], topic[512];
	char *json = NULL;
	int n;

	if (!d->health || !g->cfg->health.publish || !mqtt_connected(g->mqtt))
		return;
	device_health_figures(d, &recent, &since);
	/* what a reader acts on: up, the quality to 0.1 %, the failures by kind in the window and since start */
	n = snprintf(key, sizeof(key), "%d %.1f", d->up, isfinite(recent.quality) ? recent.quality : -1.0);
	for (int k = 0; k < SG_HEALTH_MAX_ && n > 0 && (size_t)n < sizeof(key); k++)
		n += snprintf(key + n, sizeof(key) - (size_t)n, " %llu/%llu", (unsigned long long)recent.n[k],
		              (unsigned long long)since.n[k]);
	if (d->health_sent_us && now - d->health_sent_us < HEALTH_REFRESH_US && strcmp(key, d->health_key) == 0)
		return;
	if (health_json(d->up, health_window_seconds(d->health), &recent, &since, &json) < 0)
		return; /* ENOMEM: the next interval tries again */
	snprintf(topic, sizeof(topic), "%s/%s/health", g->cfg->base_topic, d->cfg->name);
	if (mqtt_publish(g->mqtt, topic, json, strlen(json), 0, true, NULL, NULL) >= 0) {
		snprintf(d->health_key, sizeof(d->health_key), "%s", key);
		d->health_sent_us = now;
	}
	free(json);
}

/* The --status file: a first line the reader checks (pid, interval, Unix time), then the table. */
static void health_status_write(struct sg_gateway *g)
{
	struct sg_health_row *rows = calloc(g->n_devs ? g->n_devs : 1, sizeof(*rows));
	char *table = NULL, *text = NULL;
	struct timespec ts;
	size_t n = 0;
	int r = -ENOMEM;

	if (!g->health_path) { /* no RUNTIME_DIRECTORY: no status file, said once at the start */
		free(rows);
		return;
	}
	if (!rows)
		goto out;
	for (size_t i = 0; i < g->n_devs; i++) {
		const struct gw_device *d = g->devs[i];

		if (!d)
			continue;
		rows[n] = (struct sg_health_row){.device = d->cfg->name, .driver = d->cfg->driver->name, .up = d->up};
		device_health_figures(d, &rows[n].recent, &rows[n].since_start);
		n++;
	}
	if (health_table(rows, n, g->cfg_mqtt->health.window_s, &table) < 0)
		goto out;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (asprintf(&text, "sensorgate " SG_VERSION " pid %ld interval %g updated %lld\n%s", (long)getpid(),
	             g->cfg_mqtt->health.interval_s, (long long)ts.tv_sec, table) < 0) {
		text = NULL;
		goto out;
	}
	r = metrics_write(g->health_path, text, strlen(text));
out:
	free(rows);
	free(table);
	free(text);
	if (r < 0) {
		char why[sizeof(g->health_err)];

		snprintf(why, sizeof(why), "%s", strerror(-r));
		if (strcmp(why, g->health_err) != 0)
			log_full(r == -ENOENT ? LOG_INFO : LOG_WARNING, NULL, NULL,
			         "health: cannot write the status file %s: %s; `sensorgate --status` will not work%s",
			         g->health_path ? g->health_path : "", why,
			         r == -ENOENT ? " (its directory comes from RuntimeDirectory= or RUNTIME_DIRECTORY)" : "");
		snprintf(g->health_err, sizeof(g->health_err), "%s", why);
	} else if (g->health_err[0]) {
		log_notice("health: status file %s written again", g->health_path);
		g->health_err[0] = '\0';
	}
}

static int on_health_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;
	uint64_t now = now_mono_us();

	sd_event_source_set_time(s, usec + (uint64_t)(g->cfg_mqtt->health.interval_s * 1e6));
	for (size_t i = 0; i < g->n_devs; i++) {
		if (!g->devs[i])
			continue;
		device_health_sample(g->devs[i], now);
		device_health_publish(g->devs[i], now);
	}
	health_status_write(g);
	return 0;
}

/* After a connect: every health topic is said again at the next sample. */
static void health_connected(struct sg_gateway *g)
{
	for (size_t i = 0; i < g->n_devs; i++)
		if (g->devs[i])
			g->devs[i]->health_sent_us = 0;
}

/* ---- status, signals, lifecycle ------------------------------------------------------------- */

/*
 * Spool depth for the status line: "; spool N queued" once the spool exists.
 * Hook for gateway/spool.c: fill BUF from its counters; empty until then.
 */
static void status_spool(const struct sg_gateway *g, char *buf, size_t len)
{
	struct sg_spool_stats st;

	if (!g->spool) {
		snprintf(buf, len, "; no spool");
		return;
	}
	spool_get_stats(g->spool, &st);
	snprintf(buf, len, "; spool: %llu queued (%u in flight), %llu dropped%s", (unsigned long long)st.depth,
	         st.outstanding, (unsigned long long)st.dropped,
	         g->spool_failing ? ", cannot write" : g->spool_full ? ", full" : "");
}

/* The names of the devices that are down, "; down: a, b", cut to fit LEN. */
static void status_down(const struct sg_gateway *g, char *buf, size_t len)
{
	size_t at = 0;
	int n;

	buf[0] = '\0';
	for (size_t i = 0; i < g->n_devs && at < len; i++) {
		if (!g->devs[i] || g->devs[i]->up)
			continue;
		n = snprintf(buf + at, len - at, "%s%s", at ? ", " : "; down: ", g->devs[i]->cfg->name);
		if (n < 0)
			break;
		at += (size_t)n;
	}
}

/* STATUS= for systemctl status: broker, devices up/down, rate, counters. */
static void update_status(struct sg_gateway *g)
{
	char down[160], spool[80];
	size_t up = 0;

	for (size_t i = 0; i < g->n_devs; i++)
		up += g->devs[i] && g->devs[i]->up;
	status_down(g, down, sizeof(down));
	status_spool(g, spool, sizeof(spool));
	sd_notifyf(0, "STATUS=%s %s; devices %zu/%zu up%s; %.1f readings/s; %llu published, %llu dropped%s",
	           mqtt_connected(g->mqtt) ? "connected to" : "connecting to", mqtt_broker(g->mqtt), up, g->n_devs,
	           down, g->rate, (unsigned long long)g->n_published, (unsigned long long)g->n_dropped, spool);
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;
	uint64_t now = now_mono_us();

	if (g->last_status_us && now > g->last_status_us)
		g->rate = (double)(g->n_readings - g->readings_at_last_status) * 1e6 /
		          (double)(now - g->last_status_us);
	g->last_status_us = now;
	g->readings_at_last_status = g->n_readings;
	update_status(g);
	sd_event_source_set_time(s, usec + STATUS_EVERY_US);
	return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	struct sg_gateway *g = ud;
	(void)s;
	sd_notify(0, "STOPPING=1");
	log_info("received %s, shutting down", strsignal((int)si->ssi_signo));
	sd_event_exit(g->loop, 0);
	return 0;
}

/* ---- reload (SIGHUP, systemctl reload) --------------------------------------------------------
 *
 * The file is read again with config_load(). An invalid file changes nothing.
 * A valid one is applied without touching the MQTT connection:
 *  - topic mapping and transforms: a new mapper replaces the old one at once
 *    (transform state such as deadband and averages starts afresh);
 *  - devices, matched by name: same bus binding -> the port stays open and the
 *    driver is initialised again with its new options; changed binding ->
 *    closed and reopened; new -> opened; gone -> closed;
 *  - Home Assistant discovery: rebuilt; entities gone from the file are deleted;
 *  - broker, client and status-topic settings, actuators and the spool: the
 *    MQTT client and the command router keep the ones they were built with
 *    (g->cfg_mqtt); the log says which changed and that they apply after a
 *    restart.
 */

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static void change_add(char *buf, size_t len, const char *what)
{
	size_t at = strlen(buf);

	if (at < len)
		snprintf(buf + at, len - at, "%s%s", at ? ", " : "", what);
}

/* An actuator driver's own settings, compared through its --check line, which names them all. */
static bool actuator_opts_equal(const struct sg_actuator_cfg *x, const struct sg_actuator_cfg *y)
{
	char dx[1024], dy[1024];

	if (x->drv != y->drv)
		return false;
	if (!x->opts || !y->opts)
		return x->opts == y->opts;
	if (!x->drv->describe)
		return false; /* cannot tell: say it changed */
	x->drv->describe(x->opts, dx, sizeof(dx));
	y->drv->describe(y->opts, dy, sizeof(dy));
	return strcmp(dx, dy) == 0;
}

/* Actuators are built once (commands.c): any difference in what they are or where they listen. */
static bool actuators_differ(const struct sg_config *a, const struct sg_config *b)
{
	if (a->n_actuators != b->n_actuators)
		return true;
	for (size_t i = 0; i < a->n_actuators; i++) {
		const struct sg_actuator_cfg *x = &a->actuators[i], *y = &b->actuators[i];
		if (!str_eq(x->name, y->name) || !str_eq(x->driver, y->driver) || !str_eq(x->topic, y->topic) ||
		    !str_eq(x->command_topic, y->command_topic) || !actuator_opts_equal(x, y) ||
		    x->kind != y->kind || !str_eq(x->payload_on, y->payload_on) ||
		    !str_eq(x->payload_off, y->payload_off) || x->qos != y->qos || x->max_on_s != y->max_on_s ||
		    x->pulse_ms != y->pulse_ms || !str_eq(x->interlock, y->interlock) || !str_eq(x->safe, y->safe) ||
		    x->fail_safe_after_s != y->fail_safe_after_s || x->fail_safe_on_ha_offline != y->fail_safe_on_ha_offline)
			return true;
	}
	return false;
}

/* Which settings that only a restart applies differ between RUN (running) and NEW; names into BUF. */
static void restart_changes(const struct sg_config *run, const struct sg_config *new, char *buf, size_t len)
{
	const struct sg_mqtt_cfg *a = &run->mqtt, *b = &new->mqtt;
	bool brokers = a->n_brokers != b->n_brokers;

	buf[0] = '\0';
	for (size_t i = 0; !brokers && i < a->n_brokers; i++)
		brokers = !str_eq(a->brokers[i], b->brokers[i]);
	if (brokers)
		change_add(buf, len, "mqtt.brokers");
	if (a->protocol != b->protocol)
		change_add(buf, len, "mqtt.protocol");
	if (a->keepalive != b->keepalive)
		change_add(buf, len, "mqtt.keepalive");
	if (a->clean_session != b->clean_session)
		change_add(buf, len, "mqtt.clean_session");
	if (!str_eq(a->client_id, b->client_id))
		change_add(buf, len, "mqtt.client_id");
	if (!str_eq(a->username, b->username) || !str_eq(a->password, b->password))
		change_add(buf, len, "mqtt credentials");
	if (!str_eq(a->ca_file, b->ca_file) || !str_eq(a->ca_path, b->ca_path) ||
	    !str_eq(a->cert_file, b->cert_file) || !str_eq(a->key_file, b->key_file) ||
	    a->tls_insecure != b->tls_insecure || !str_eq(a->tls_alpn, b->tls_alpn))
		change_add(buf, len, "mqtt.tls");
	if (a->cloud != b->cloud || !str_eq(a->hub, b->hub) || !str_eq(a->device_id, b->device_id) ||
	    a->device_key_len != b->device_key_len ||
	    (a->device_key_len && memcmp(a->device_key, b->device_key, a->device_key_len) != 0) ||
	    a->sas_lifetime_s != b->sas_lifetime_s)
		change_add(buf, len, "mqtt.cloud settings");
	if (a->reconnect_min_s != b->reconnect_min_s || a->reconnect_max_s != b->reconnect_max_s ||
	    a->max_inflight != b->max_inflight)
		change_add(buf, len, "mqtt reconnect/inflight limits");
	if (!str_eq(run->status_topic, new->status_topic) ||
	    !str_eq(config_birth_payload(a), config_birth_payload(b)) ||
	    !str_eq(config_will_payload(a), config_will_payload(b)))
		change_add(buf, len, "status topic or payloads (gateway.id/base_topic/status_topic/payload_online/"
		           "payload_offline)");
	if (!str_eq(run->metrics.path, new->metrics.path) || run->metrics.interval_s != new->metrics.interval_s)
		change_add(buf, len, "metrics");
	if (run->health.interval_s != new->health.interval_s || run->health.window_s != new->health.window_s)
		change_add(buf, len, "health.interval/window");
	if (actuators_differ(run, new))
		change_add(buf, len, "actuators");
	if (!str_eq(run->commands.response_topic_prefix, new->commands.response_topic_prefix))
		change_add(buf, len, "commands.response_topic_prefix");
	if (!str_eq(run->spool.path, new->spool.path) || run->spool.max_size_mb != new->spool.max_size_mb ||
	    run->spool.sync_full != new->spool.sync_full || run->spool.drop_new != new->spool.drop_new ||
	    run->spool.commit_interval_s != new->spool.commit_interval_s)
		change_add(buf, len, "spool");
}

/* Same driver on the same port/bus/address: the open file descriptor can be kept. */
static bool device_bus_same(const struct sg_device_cfg *a, const struct sg_device_cfg *b)
{
	return a->driver == b->driver && str_eq(a->port, b->port) && str_eq(a->usb_serial, b->usb_serial) &&
	       a->baud == b->baud && a->framing.data_bits == b->framing.data_bits &&
	       a->framing.parity == b->framing.parity && a->framing.stop_bits == b->framing.stop_bits &&
	       str_eq(a->bus, b->bus) && a->address == b->address && str_eq(a->path, b->path);
}

/* Rebind an open device to entry C and initialise its driver again on the open bus. */
static void device_reinit(struct gw_device *d, const struct sg_device_cfg *c, size_t index)
{
	const struct sg_driver *drv = c->driver;
	int r;

	if (!d->up) { /* closed and waiting for a retry: the retry uses the new settings */
		device_bind(d, c, index);
		return;
	}
	d->watch = sd_event_source_disable_unref(d->watch); /* before fini() closes its fd */
	if (drv->fini)
		drv->fini(&d->dev);
	d->dev.watch_fd = -1;
	device_bind(d, c, index);
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
		device_close(d);
		device_schedule_reopen(d);
		return;
	}
	if (drv->poll) {
		sd_event_source_set_time(d->timer, now_mono_us());
		sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
	}
}

static void gateway_reload(struct sg_gateway *g)
{
	struct sg_config *ncfg = NULL, *ocfg = g->cfg;
	struct sg_mapper *nmap;
	struct gw_device **ndevs;
	size_t kept = 0, reopened = 0, added = 0, removed = 0;
	char err[512], changes[256];
	int r;

	sd_notifyf(0, "RELOADING=1\nSTATUS=reloading %s", ocfg->path);
	r = config_load(ocfg->path, &ncfg, err, sizeof(err));
	if (r < 0) {
		log_error("reload: %s; keeping the running configuration", err);
		goto done;
	}
	nmap = mapper_new(ncfg);
	ndevs = calloc(ncfg->n_devices ? ncfg->n_devices : 1, sizeof(*ndevs));
	if (!nmap || !ndevs) {
		log_error("reload: out of memory; keeping the running configuration");
		mapper_free(nmap);
		free(ndevs);
		config_free(ncfg);
		goto done;
	}

	/* From here on readings map through the new configuration. */
	mapper_free(g->mapper);
	g->mapper = nmap;
	mapper_set_timesync(g->mapper, g->timesync);
	g->cfg = ncfg;
	filters_arm(g); /* the new chains start afresh: no timeout waits until their first value */

	for (size_t j = 0; j < ncfg->n_devices; j++) {
		const struct sg_device_cfg *c = &ncfg->devices[j];
		struct gw_device *d = NULL;

		for (size_t i = 0; i < g->n_devs && !d; i++)
			if (g->devs[i] && strcmp(g->devs[i]->cfg->name, c->name) == 0) {
				d = g->devs[i];
				g->devs[i] = NULL;
			}
		if (d && device_bus_same(d->cfg, c)) {
			device_reinit(d, c, j);
			kept++;
		} else if (d) {
			device_close(d);
			device_bind(d, c, j);
			backoff_reset(&d->reopen);
			d->last_error[0] = '\0';
			log_full(LOG_NOTICE, c->name, NULL, "reload: port or bus settings changed, reopening %s",
			         d->dev.path ? d->dev.path : c->driver->name);
			if (device_open(d) < 0)
				device_schedule_reopen(d);
			reopened++;
		} else {
			d = device_new(g, c, j);
			if (!d) {
				/* Half applied: exit so that systemd restarts us with the new file. */
				log_error("reload: cannot set up device %s: %s; exiting for a restart", c->name,
				          strerror(errno));
				g->exit_code = 1;
				sd_event_exit(g->loop, 1);
			}
			added++;
		}
		if (d && device_expire_setup(d) < 0)
			log_full(LOG_WARNING, c->name, NULL, "reload: cannot arm expire_after, ignoring");
		ndevs[j] = d;
	}
	for (size_t i = 0; i < g->n_devs; i++) {
		if (!g->devs[i])
			continue;
		log_full(LOG_NOTICE, g->devs[i]->cfg->name, NULL, "reload: device removed from the configuration, closing");
		device_free(g->devs[i]);
		removed++;
	}
	free(g->devs);
	g->devs = ndevs;
	g->n_devs = ncfg->n_devices;
	discovery_reload(g); /* builds from g->cfg, borrows nothing from it */
	commands_reloaded(g->cmds, g->cfg); /* no answers under the base topic and prefix now in use either */
	/* The MQTT client borrows g->cfg_mqtt, never an intermediate configuration. */
	if (ocfg != g->cfg_mqtt)
		config_free(ocfg);
	g->n_reloads++;

	log_notice("reload: %s applied: topic map and transforms updated; %zu device%s (%zu kept, %zu reopened, "
	           "%zu added, %zu removed)", ncfg->path, ncfg->n_devices, ncfg->n_devices == 1 ? "" : "s", kept,
	           reopened, added, removed);
	restart_changes(g->cfg_mqtt, ncfg, changes, sizeof(changes));
	if (changes[0])
		log_warning("reload: %s changed; these apply after a restart (systemctl restart sensorgate), "
		            "the running ones stay in use", changes);
done:
	update_status(g);
	sd_notify(0, "READY=1");
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	(void)s;
	(void)si;
	gateway_reload(ud);
	return 0;
}

int gateway_new(struct sg_config *cfg, struct sg_gateway **ret)
{
	static const struct sg_mqtt_handlers handlers = {
		.connected = on_mqtt_connected,
		.disconnected = on_mqtt_disconnected,
		.message = on_mqtt_message,
		.published = on_mqtt_published,
		.refused = on_mqtt_refused,
		.discarded = on_mqtt_discarded,
		.watch = on_mqtt_watch,
		.flush_soon = on_mqtt_flush_soon,
	};
	struct sg_gateway *g;
	sigset_t mask;
	int r;

	g = calloc(1, sizeof(*g));
	if (!g) {
		log_error("cannot start: %s", strerror(ENOMEM));
		config_free(cfg);
		return -ENOMEM;
	}
	g->cfg = cfg;
	g->cfg_mqtt = cfg;
	g->mqtt_io_fd = -1;
	g->clock_fd = -1;
	g->iso_cache = (struct sg_iso_cache)SG_ISO_CACHE_INIT;
	g->drop_rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(60, 3);
	g->cloud_rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(60, 3);
	g->refuse_rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(60, 3);
	g->unpublishable_rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(60, 3);

	r = sd_event_default(&g->loop);
	if (r < 0) {
		log_error("cannot create event loop: %s", strerror(-r));
		goto err;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((r = sd_event_add_signal(g->loop, NULL, SIGTERM, on_signal, g)) < 0 ||
	    (r = sd_event_add_signal(g->loop, NULL, SIGINT, on_signal, g)) < 0 ||
	    (r = sd_event_add_signal(g->loop, NULL, SIGHUP, on_sighup, g)) < 0) {
		log_error("cannot watch signals: %s", strerror(-r));
		goto err;
	}
	/* WATCHDOG=1 comes from the loop itself: a handler that blocks stops the pings and
	 * systemd kills and restarts us (WatchdogSec= in the unit). */
	r = sd_event_set_watchdog(g->loop, true);
	if (r > 0)
		log_debug("systemd watchdog enabled");
	else if (r < 0)
		log_warning("cannot enable the systemd watchdog: %s, ignoring", strerror(-r));

	g->mapper = mapper_new(cfg);
	if (!g->mapper) {
		r = -ENOMEM;
		log_error("cannot allocate the mapper");
		goto err;
	}
	r = clock_setup(g);
	if (r < 0)
		goto err_loop;
	g->mqtt = mqtt_new(&cfg->mqtt, cfg->mqtt.cloud == SG_CLOUD_AZURE ? NULL : cfg->status_topic, &handlers, g);
	if (!g->mqtt) {
		r = -errno;
		log_error("cannot set up the MQTT client: %s", strerror(errno));
		goto err;
	}
	r = sd_event_add_time(g->loop, &g->mqtt_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_mqtt_timer, g);
	if (r >= 0)
		r = sd_event_add_defer(g->loop, &g->mqtt_flush, on_mqtt_flush, g);
	if (r >= 0)
		r = sd_event_source_set_enabled(g->mqtt_flush, SD_EVENT_OFF);
	if (r >= 0)
		r = sd_event_add_defer(g->loop, &g->batch_flush, on_batch_flush, g);
	if (r >= 0)
		r = sd_event_source_set_enabled(g->batch_flush, SD_EVENT_OFF);
	if (r < 0)
		goto err_loop;
	r = sd_event_add_time(g->loop, &g->status_timer, CLOCK_MONOTONIC, now_mono_us() + STATUS_EVERY_US, 0,
	                      on_status_timer, g);
	if (r < 0)
		goto err_loop;
	sd_event_source_set_enabled(g->status_timer, SD_EVENT_ON);
	r = sd_event_add_time(g->loop, &g->filter_timer, CLOCK_MONOTONIC, UINT64_MAX, DEVICE_TIMER_ACCURACY_US,
	                      on_filter_timer, g);
	if (r < 0)
		goto err_loop;
	sd_event_source_set_enabled(g->filter_timer, SD_EVENT_OFF);
	g->filter_at = UINT64_MAX;
	r = discovery_start(g);
	if (r < 0) {
		log_error("cannot set up discovery: %s", strerror(-r));
		goto err;
	}

	g->started_us = now_mono_us();
	{
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		g->started_wall_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	}
	if (asprintf(&g->stats_topic, "%s/gateway/%s/stats", cfg->base_topic, cfg->id) < 0) {
		g->stats_topic = NULL;
		r = -ENOMEM;
		goto err_loop;
	}
	if ((r = sd_event_add_defer(g->loop, &g->flush, on_flush, g)) < 0 ||
	    (r = sd_event_source_set_enabled(g->flush, SD_EVENT_OFF)) < 0 ||
	    (r = sd_event_add_time(g->loop, &g->spool_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_spool_timer, g)) < 0 ||
	    (r = sd_event_add_time(g->loop, &g->pace_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_flush_timer, g)) < 0 ||
	    (r = sd_event_add_time(g->loop, &g->commit_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_flush_timer, g)) < 0 ||
	    (r = sd_event_source_set_enabled(g->commit_timer, SD_EVENT_OFF)) < 0 ||
	    (r = sd_event_source_set_enabled(g->pace_timer, SD_EVENT_OFF)) < 0)
		goto err_loop;
	if (cfg->spool.stats_interval_s > 0) {
		r = sd_event_add_time(g->loop, &g->stats_timer, CLOCK_MONOTONIC,
		                      g->started_us + (uint64_t)(cfg->spool.stats_interval_s * 1e6), 0, on_stats_timer, g);
		if (r < 0)
			goto err_loop;
		sd_event_source_set_enabled(g->stats_timer, SD_EVENT_ON);
	}
	/* Without a spool the gateway still runs (readings go out while connected); it tries again later. */
	if (spool_setup(g) < 0) {
		sd_event_source_set_time(g->spool_timer, now_mono_us() + SPOOL_REOPEN_US);
		sd_event_source_set_enabled(g->spool_timer, SD_EVENT_ONESHOT);
	}

	g->lines = gw_lines_new(g->loop, on_lines_after, g);
	if (!g->lines) {
		r = -errno;
		log_error("cannot set up the serial lines: %s", strerror(errno));
		goto err;
	}
	r = devices_setup(g);
	if (r < 0) {
		log_error("cannot set up devices: %s", strerror(-r));
		goto err;
	}
	r = actuators_setup(g);
	if (r < 0) {
		log_error("cannot set up actuators: %s", strerror(-r));
		goto err;
	}
	if (cfg->metrics.path) { /* the first file at once: a scrape finds it from the start */
		r = sd_event_add_time(g->loop, &g->metrics_timer, CLOCK_MONOTONIC, now_mono_us(), 0, on_metrics_timer, g);
		if (r < 0)
			goto err_loop;
		sd_event_source_set_enabled(g->metrics_timer, SD_EVENT_ON);
	}
	/* link quality: the first sample now, the status file at once */
	if (getenv("RUNTIME_DIRECTORY") && *getenv("RUNTIME_DIRECTORY")) {
		if (!(g->health_path = health_status_path()))
			log_warning("health: out of memory for the status file's name; `sensorgate --status` will not work");
	} else {
		log_debug("health: RUNTIME_DIRECTORY not set: no status file for `sensorgate --status`");
	}
	r = sd_event_add_time(g->loop, &g->health_timer, CLOCK_MONOTONIC, now_mono_us(), 0, on_health_timer, g);
	if (r < 0)
		goto err_loop;
	sd_event_source_set_enabled(g->health_timer, SD_EVENT_ON);
	*ret = g;
	return 0;

err_loop: /* only memory can fail here; said once, like every other exit above */
	log_error("cannot set up the event loop's timers: %s", strerror(-r));
err:
	gateway_free(g);
	return r;
}

int gateway_run(struct sg_gateway *g)
{
	int r;

	log_info("sensorgate " SG_VERSION " starting: config %s, %zu device%s, broker %s, status on %s",
	         g->cfg->path, g->cfg->n_devices, g->cfg->n_devices == 1 ? "" : "s", g->cfg->mqtt.brokers[0],
	         g->cfg->mqtt.cloud == SG_CLOUD_AZURE ? "none (Azure IoT Hub)" : g->cfg->status_topic);
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
	if (g->cmds)
		commands_shutdown(g->cmds, 1000); /* safe states, published while still connected */
	on_batch_flush(NULL, g);              /* cloud profiles: the last readings gathered, into the spool */
	if (g->spool && spool_commit(g->spool) < 0)
		log_error("spool: cannot commit the last readings to %s", spool_path(g->spool));
	mqtt_shutdown(g->mqtt, 2000);
	if (g->cfg_mqtt->metrics.path) /* the last counters, disconnected */
		metrics_update(g);
	if (g->health_path && !g->health_err[0]) /* --status says "not running", not stale figures */
		unlink(g->health_path);
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
	for (size_t i = 0; i < g->n_devs && g->devs; i++)
		device_free(g->devs[i]);
	free(g->devs);
	actuators_free(g);
	gw_lines_free(g->lines); /* after every device and actuator left its line */
	sd_event_source_disable_unref(g->mqtt_io);
	sd_event_source_disable_unref(g->mqtt_timer);
	sd_event_source_disable_unref(g->mqtt_flush);
	sd_event_source_disable_unref(g->batch_flush);
	sd_event_source_disable_unref(g->status_timer);
	sd_event_source_disable_unref(g->filter_timer);
	discovery_free(g);
	sd_event_source_disable_unref(g->flush);
	sd_event_source_disable_unref(g->commit_timer);
	sd_event_source_disable_unref(g->spool_timer);
	sd_event_source_disable_unref(g->pace_timer);
	sd_event_source_disable_unref(g->stats_timer);
	sd_event_source_disable_unref(g->clock_timer);
	sd_event_source_disable_unref(g->clock_set);
	if (g->clock_fd >= 0)
		close(g->clock_fd);
	timesync_free(g->timesync);
	seqs_free(g->seqs);
	sd_event_source_disable_unref(g->metrics_timer);
	sd_event_source_disable_unref(g->health_timer);
	free(g->health_path);
	spool_close(g->spool);
	free(g->stats_topic);
	mqtt_free(g->mqtt);
	mapper_free(g->mapper);
	sd_event_unref(g->loop);
	if (g->cfg_mqtt != g->cfg)
		config_free(g->cfg_mqtt);
	config_free(g->cfg);
	free(g);
}
