/* SPDX-License-Identifier: MIT */
/*
 * gateway_spool.c — store and forward: gw_route() hands a mapped message to the
 * broker or to the spool (spool.h); a defer source commits the batch and
 * hands the oldest committed messages over while the send quota allows;
 * episodes (spool full, write errors) are logged once; the stats topic.
 * See gateway.c's header for the whole flow.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "../common/clock.h"
#include "gateway_int.h"
#include "replay.h"

#define SPOOL_REOPEN_US (30 * 1000000ULL)
/*
 * MQTT 3.1.1 has no Receive Maximum. mosquitto applies its max_inflight_messages
 * (20 by default) to incoming QoS 2 messages too, and answers one more with a
 * PUBREC that a 3.1.1 client cannot parse (2.0.11): the connection drops, and
 * the same messages are resent after the reconnect, forever. Unreleased QoS 2
 * messages of an earlier process of ours (killed mid-flight) still count in
 * our session there. Half the default for each process keeps both within it.
 */
#define V311_MAX_INFLIGHT 10

void gw_flush_later(struct sg_gateway *g)
{
	if (g->flush)
		sd_event_source_set_enabled(g->flush, SD_EVENT_ONESHOT);
}

/* A write error of the spool (disk full, I/O error): logged once per episode. */
void gw_spool_trouble(struct sg_gateway *g, int r)
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

void gw_drop_reading(struct sg_gateway *g, const struct sg_message *msg, const char *why)
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
	struct mqtt_props props;
	int r, mid = 0;

	props.len = 0;
	if (mqtt_protocol(g->mqtt) == 5 && !g->cfg_mqtt->spool.props_replays_only) {
		char iso[TIMESYNC_ISO_LEN];
		int64_t real = timesync_resolve(g->timesync, st);
		if (real > 0)
			timesync_iso_cached(&g->iso_cache, real, iso);
		if (replay_props(&props, real > 0 ? iso : NULL, real < 0, seq, false) < 0)
			props.len = 0; /* the message goes without them */
	}
	/* QoS 0 asks for no packet id: on a plaintext link it is then written by us (mqtt.h) */
	r = mqtt_publish_with(g->mqtt, msg->topic, msg->payload, msg->payload_len, msg->qos, msg->retain, &props,
	                      msg->qos ? &mid : NULL);
	if (r == 0 || queued_anyway(r, msg->qos, mid))
		g->n_published++;
	else
		gw_drop_reading(g, msg, r == -ENOTCONN ? "broker not connected" : strerror(-r));
}

/* Hand a mapped message on: straight to the broker, or through the spool. */
void gw_route(struct sg_gateway *g, const struct sg_message *msg)
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
			gw_drop_reading(g, msg, "broker not connected and no spool");
		return;
	}
	r = spool_put_meta(g->spool, msg->topic, msg->payload, msg->payload_len, msg->qos, msg->retain,
	                   !connected && msg->offline == SG_OFFLINE_LAST ? SG_OFFLINE_LAST : SG_OFFLINE_SPOOL, &meta,
	                   &dropped);
	if (r == 0) {
		if (dropped)
			spool_is_full(g, dropped);
		gw_flush_later(g);
	} else if (r == -ENOBUFS) {
		spool_is_full(g, 1); /* refused and counted by the spool */
	} else {
		gw_spool_trouble(g, r);
		if (connected)
			publish_direct(g, msg, &st, seq);
		else
			g->n_dropped++; /* logged once, by gw_spool_trouble() */
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
	struct mqtt_props props;

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
			gw_spool_trouble(g, r);
			return;
		}
		if (r == 0)
			return;
		props.len = 0;
		gw_outgoing(g, &m, &props);
		g->publishing = true;
		g->n_early = 0;
		mid = 0;
		r = mqtt_publish_with(g->mqtt, m.topic, m.payload, m.len, m.qos, m.retain, &props, &mid);
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
				gw_spool_trouble(g, r);
		} else { /* commit_interval: later, for what comes until then too */
			sd_event_source_set_time(g->commit_timer, due);
			sd_event_source_set_enabled(g->commit_timer, SD_EVENT_ONESHOT);
		}
	}
	pump(g);
	spool_episodes(g);
	gw_mqtt_flush_now(g);
	return 0;
}

static int on_flush_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s;
	(void)usec;
	gw_flush_later(ud);
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
	if (spool_topic_seqs(g->spool, gw_seq_seen, g) < 0)
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
	gw_flush_later(g);
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
			gw_spool_trouble(g, r);
	}
	if (g->spool)
		spool_get_stats(g->spool, &st);
	gw_rate_update(&g->stats_rate, g->n_readings, now, &rate);
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

/*
 * The stats topic, the flush and the spool's timers, then the spool itself:
 * without it the gateway still runs (readings go out while connected) and
 * tries again later. 0 or -errno (out of memory).
 */
int gw_spool_start(struct sg_gateway *g)
{
	const struct sg_config *cfg = g->cfg_mqtt;
	int r;

	if (asprintf(&g->stats_topic, "%s/gateway/%s/stats", cfg->base_topic, cfg->id) < 0) {
		g->stats_topic = NULL;
		return -ENOMEM;
	}
	if ((r = sd_event_add_defer(g->loop, &g->flush, on_flush, g)) < 0 ||
	    (r = sd_event_source_set_enabled(g->flush, SD_EVENT_OFF)) < 0 ||
	    (r = sd_event_add_time(g->loop, &g->spool_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_spool_timer, g)) < 0 ||
	    (r = sd_event_add_time(g->loop, &g->pace_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_flush_timer, g)) < 0 ||
	    (r = sd_event_add_time(g->loop, &g->commit_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_flush_timer, g)) < 0 ||
	    (r = sd_event_source_set_enabled(g->commit_timer, SD_EVENT_OFF)) < 0 ||
	    (r = sd_event_source_set_enabled(g->pace_timer, SD_EVENT_OFF)) < 0)
		return r;
	if (cfg->spool.stats_interval_s > 0) {
		r = sd_event_add_time(g->loop, &g->stats_timer, CLOCK_MONOTONIC,
		                      g->started_us + (uint64_t)(cfg->spool.stats_interval_s * 1e6), 0, on_stats_timer, g);
		if (r < 0)
			return r;
		sd_event_source_set_enabled(g->stats_timer, SD_EVENT_ON);
	}
	if (spool_setup(g) < 0) {
		sd_event_source_set_time(g->spool_timer, now_mono_us() + SPOOL_REOPEN_US);
		sd_event_source_set_enabled(g->spool_timer, SD_EVENT_ONESHOT);
	}
	return 0;
}
