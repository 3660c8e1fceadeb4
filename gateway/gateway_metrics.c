/* SPDX-License-Identifier: MIT */
/*
 * gateway_metrics.c — the counters going out of the process: the metrics
 * file and link quality.
 *
 * metrics.path: every metrics.interval the counters (the same as the stats
 * topic's, per device and per actuator too) go to a Prometheus text file
 * that node_exporter's textfile collector serves. A few kilobytes written to
 * a temporary file and renamed, without fsync: 13.5 kB and 0.17 ms for ten
 * devices and four actuators on the development host (ext4). A write error
 * is logged once, and its end once.
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
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "gateway_int.h"
#include "health.h"
#include "metrics.h"

#define HEALTH_REFRESH_US (60 * 1000000ULL) /* republished unchanged this often: the rates stay current */


/*
 * Both files here are rewritten on a timer, and log a write error the same
 * way: once when it starts or changes, once when it ends. R is this write's
 * result, ERR the error logged last ("" while the file is written). True
 * when that is news for the log: a new error (its text is in ERR now) or
 * the first success after errors.
 */
static bool write_news(char *err, size_t size, int r)
{
	char why[256];

	if (r >= 0) {
		bool was_failing = err[0] != '\0';

		err[0] = '\0';
		return was_failing;
	}
	snprintf(why, sizeof(why), "%s", strerror(-r));
	if (strcmp(why, err) == 0)
		return false;
	snprintf(err, size, "%s", why);
	return true;
}

/* A timer of both that fires now, then every so often (its handler sets the next time). 0 or -errno. */
static int every_from_now(struct sg_gateway *g, sd_event_source **s, sd_event_time_handler_t handler)
{
	int r = sd_event_add_time(g->loop, s, CLOCK_MONOTONIC, now_mono_us(), 0, handler, g);

	return r < 0 ? r : sd_event_source_set_enabled(*s, SD_EVENT_ON);
}

static void device_health_figures(const struct gw_device *d, struct sg_health_figures *recent,
                                  struct sg_health_figures *since);

void gw_metrics_update(struct sg_gateway *g)
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
	if (!write_news(g->metrics_err, sizeof(g->metrics_err), r))
		return;
	if (r < 0)
		log_error("metrics: cannot write %s: %s%s; retrying every %g s", path, g->metrics_err,
		          r == -EROFS || r == -EACCES ? " (under systemd: ReadWritePaths= for its directory in a "
		          "drop-in, and write access for the user sensorgate)" : "", g->cfg_mqtt->metrics.interval_s);
	else
		log_notice("metrics: %s written again", path);
}

static int on_metrics_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;

	sd_event_source_set_time(s, usec + (uint64_t)(g->cfg_mqtt->metrics.interval_s * 1e6));
	gw_metrics_update(g);
	return 0;
}

/* With metrics.path: the first file at once, a scrape finds it from the start. 0 or -errno. */
int gw_metrics_start(struct sg_gateway *g)
{
	return g->cfg_mqtt->metrics.path ? every_from_now(g, &g->metrics_timer, on_metrics_timer) : 0;
}

/* ---- health --------------------------------------------------------------------------------- */

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
	if (!write_news(g->health_err, sizeof(g->health_err), r))
		return;
	if (r < 0)
		log_full(r == -ENOENT ? LOG_INFO : LOG_WARNING, NULL, NULL,
		         "health: cannot write the status file %s: %s; `sensorgate --status` will not work%s",
		         g->health_path ? g->health_path : "", g->health_err,
		         r == -ENOENT ? " (its directory comes from RuntimeDirectory= or RUNTIME_DIRECTORY)" : "");
	else
		log_notice("health: status file %s written again", g->health_path);
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
void gw_health_connected(struct sg_gateway *g)
{
	for (size_t i = 0; i < g->n_devs; i++)
		if (g->devs[i])
			g->devs[i]->health_sent_us = 0;
}

/* Link quality: the first sample now, the status file at once. 0 or -errno. */
int gw_health_start(struct sg_gateway *g)
{
	if (getenv("RUNTIME_DIRECTORY") && *getenv("RUNTIME_DIRECTORY")) {
		if (!(g->health_path = health_status_path()))
			log_warning("health: out of memory for the status file's name; `sensorgate --status` will not work");
	} else {
		log_debug("health: RUNTIME_DIRECTORY not set: no status file for `sensorgate --status`");
	}
	return every_from_now(g, &g->health_timer, on_health_timer);
}
