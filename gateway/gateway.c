/* SPDX-License-Identifier: MIT */
/*
 * gateway.c — the event loop and the wiring: gateway_new() sets up the
 * parts in order, gateway_run() runs the loop and stops it cleanly,
 * gateway_free() takes it all down; the status line for systemd and the
 * signals are here too. The parts are the gateway_*.c files, which share
 * gateway_int.h (it lists them); nothing outside them includes it.
 *
 * One sd-event loop, one thread:
 *  - the shared serial lines (serial_lines.c: an io source and a timer per
 *    line); devices and actuators are users of their line (drivers/line.h);
 *  - a timer per polled device (driver->poll() says when it is due next);
 *  - an io source and a timer for the MQTT connection (mqtt.h says which fd,
 *    which events and when; they are re-read after every call into it);
 *  - SIGTERM/SIGINT through signalfd; the systemd watchdog from the loop.
 *  - SIGHUP re-reads the configuration (gateway_reload.c).
 * A device whose port vanishes or whose bus fails is closed and reopened with
 * exponential backoff (backoff.h: 1 s .. 60 s, jittered); the rest of the
 * gateway keeps running.
 * Readings flow driver -> emit() -> mapper -> gw_route() -> spool -> mqtt:
 *  - QoS 0 while connected (and nothing older waiting in the spool) goes
 *    straight to mqtt; everything else is put into the spool, in one batch
 *    per loop iteration;
 *  - a defer source (on_flush, gateway_spool.c) commits the batch, then hands the oldest
 *    committed messages to mqtt while fewer than mqtt_send_quota() are in
 *    flight; the rest wait on disk, not in RAM;
 *  - mqtt's published(mid) removes the message from the spool (PUBACK,
 *    PUBCOMP; QoS 0 once written); QoS 1/2 in flight when the link drops are
 *    resent by libmosquitto itself, QoS 0 ones are requeued;
 *  - a full spool, a full disk or no spool at all never stop the readings:
 *    they are published directly when connected, counted as dropped when not.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "../common/clock.h"
#include "gateway_int.h"
#include "replay.h"
#include "serial_lines.h"

#define STATUS_EVERY_US (10 * 1000000ULL)

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
void gw_update_status(struct sg_gateway *g)
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

/*
 * A period ends at NOW_US with READINGS counted so far: the rate over it
 * into *RET (untouched at the first call, which only starts a period).
 */
void gw_rate_update(struct gw_rate *rate, uint64_t readings, uint64_t now_us, double *ret)
{
	if (rate->at_us && now_us > rate->at_us)
		*ret = (double)(readings - rate->readings) * 1e6 / (double)(now_us - rate->at_us);
	rate->at_us = now_us;
	rate->readings = readings;
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;
	uint64_t now = now_mono_us();

	gw_rate_update(&g->status_rate, g->n_readings, now, &g->rate);
	gw_update_status(g);
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

struct sg_gateway *gateway_new(struct sg_config *cfg)
{
	struct sg_gateway *g;
	sigset_t mask;
	int r;

	g = calloc(1, sizeof(*g));
	if (!g) {
		log_error("cannot start: %s", strerror(ENOMEM));
		config_free(cfg);
		errno = ENOMEM;
		return NULL;
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
	    (r = sd_event_add_signal(g->loop, NULL, SIGHUP, gw_on_sighup, g)) < 0) {
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
	r = gw_clock_setup(g);
	if (r < 0)
		goto err_loop;
	g->mqtt = mqtt_new(&cfg->mqtt, cfg->mqtt.cloud == SG_CLOUD_AZURE ? NULL : cfg->status_topic, &gw_mqtt_handlers,
	                   g);
	if (!g->mqtt) {
		r = -errno;
		log_error("cannot set up the MQTT client: %s", strerror(errno));
		goto err;
	}
	r = gw_mqtt_start(g);
	if (r >= 0)
		r = gw_cloud_start(g);
	if (r < 0)
		goto err_loop;
	r = sd_event_add_time(g->loop, &g->status_timer, CLOCK_MONOTONIC, now_mono_us() + STATUS_EVERY_US, 0,
	                      on_status_timer, g);
	if (r < 0)
		goto err_loop;
	sd_event_source_set_enabled(g->status_timer, SD_EVENT_ON);
	r = gw_filters_start(g);
	if (r < 0)
		goto err_loop;
	r = gw_discovery_start(g);
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
	r = gw_spool_start(g);
	if (r < 0)
		goto err_loop;

	g->lines = gw_lines_new(g->loop, gw_on_lines_after, g);
	if (!g->lines) {
		r = -errno;
		log_error("cannot set up the serial lines: %s", strerror(errno));
		goto err;
	}
	r = gw_devices_setup(g);
	if (r < 0) {
		log_error("cannot set up devices: %s", strerror(-r));
		goto err;
	}
	r = gw_actuators_setup(g);
	if (r < 0) {
		log_error("cannot set up actuators: %s", strerror(-r));
		goto err;
	}
	if ((r = gw_metrics_start(g)) < 0 || (r = gw_health_start(g)) < 0)
		goto err_loop;
	return g;

err_loop: /* only memory can fail here; said once, like every other exit above */
	log_error("cannot set up the event loop's timers: %s", strerror(-r));
err:
	gateway_free(g);
	errno = -r;
	return NULL;
}

int gateway_run(struct sg_gateway *g)
{
	int r;

	log_info("sensorgate " SG_VERSION " starting: config %s, %zu device%s, broker %s, status on %s",
	         g->cfg->path, g->cfg->n_devices, g->cfg->n_devices == 1 ? "" : "s", g->cfg->mqtt.brokers[0],
	         g->cfg->mqtt.cloud == SG_CLOUD_AZURE ? "none (Azure IoT Hub)" : g->cfg->status_topic);
	mqtt_start(g->mqtt);
	/* Ready once the config is loaded and devices are probed; the broker may come later. */
	gw_update_status(g);
	sd_notify(0, "READY=1");

	r = sd_event_loop(g->loop);
	sd_notify(0, "STOPPING=1");
	if (r < 0) {
		log_error("event loop failed: %s", strerror(-r));
		g->exit_code = 1;
	}
	if (g->cmds)
		commands_shutdown(g->cmds, 1000); /* safe states, published while still connected */
	gw_batches_send(g);                   /* cloud profiles: the last readings gathered, into the spool */
	if (g->spool && spool_commit(g->spool) < 0)
		log_error("spool: cannot commit the last readings to %s", spool_path(g->spool));
	mqtt_shutdown(g->mqtt, 2000);
	if (g->cfg_mqtt->metrics.path) /* the last counters, disconnected */
		gw_metrics_update(g);
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
		gw_device_free(g->devs[i]);
	free(g->devs);
	gw_actuators_free(g);
	gw_lines_free(g->lines); /* after every device and actuator left its line */
	sd_event_source_disable_unref(g->mqtt_io);
	sd_event_source_disable_unref(g->mqtt_timer);
	sd_event_source_disable_unref(g->mqtt_flush);
	sd_event_source_disable_unref(g->batch_flush);
	sd_event_source_disable_unref(g->status_timer);
	sd_event_source_disable_unref(g->filter_timer);
	gw_discovery_free(g);
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
