/* SPDX-License-Identifier: MIT */
/*
 * gateway_mqtt.c — the MQTT client (mqtt.h) on the loop: its socket and
 * timer as event sources, re-read after every call into it; back-pressure
 * (serial inputs paused while the broker socket is backlogged); and the
 * client's callbacks, which hand connections, messages and acknowledgements
 * to the other parts.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include <mqtt_protocol.h>

#include "../common/clock.h"
#include "gateway_int.h"
#include "serial_lines.h"

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
void gw_mqtt_flush_now(struct sg_gateway *g)
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

static void on_mqtt_connected(void *ud, bool session_present)
{
	struct sg_gateway *g = ud;
	struct sg_stamp now;
	(void)session_present;
	timesync_stamp(g->timesync, 0, &now);
	g->conn_epoch = now.boot_us > 0 ? now.boot_us : 1;
	if (g->cfg_mqtt->mqtt.cloud != SG_CLOUD_NONE)
		gw_cloud_connected(g);
	g->n_connects++;
	gw_discovery_connected(g);
	commands_connected(g->cmds); /* subscriptions and retained states, after every (re)connect */
	gw_actuators_watch(g);       /* the fail-safe timers stopped */
	gw_devices_refresh(g);
	gw_health_connected(g);
	gw_flush_later(g); /* hand over what waited; not from inside libmosquitto's callback */
	gw_update_status(g);
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
		gw_actuators_watch(g);
	}
	gw_update_status(g);
}

static void on_mqtt_message(void *ud, const struct sg_mqtt_msg *msg)
{
	struct sg_gateway *g = ud;

	if (g->disc_ha_status && strcmp(msg->topic, g->disc_ha_status) == 0) {
		if (g->cfg->discovery.enabled)
			gw_discovery_on_ha_status(g, msg);
		if (g->cmds && discovery_is_ha_offline(msg->payload, msg->len)) {
			commands_ha_offline(g->cmds, now_mono_us());
			gw_actuators_watch(g);
		}
		return;
	}
	if (g->cfg_mqtt->mqtt.cloud != SG_CLOUD_NONE) {
		gw_cloud_message(g, msg);
		return;
	}
	gw_actuators_message(g, msg);
}


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
		gw_spool_trouble(g, r);
	if (r != 0)
		gw_flush_later(g); /* commit the removal, hand over more */
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
		gw_flush_later(g);
		return;
	}
	if (ratelimit_allow(&g->refuse_rl, now_mono_us(), &suppressed))
		log_warning("spool: broker refused message %lld: %s; dropping it%s", (long long)id,
		            mosquitto_reason_string(reason), suppressed ? " (and others not logged)" : "");
	spool_drop(g->spool, id);
	gw_flush_later(g);
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

const struct sg_mqtt_handlers gw_mqtt_handlers = {
	.connected = on_mqtt_connected,
	.disconnected = on_mqtt_disconnected,
	.message = on_mqtt_message,
	.published = on_mqtt_published,
	.refused = on_mqtt_refused,
	.discarded = on_mqtt_discarded,
	.watch = on_mqtt_watch,
	.flush_soon = on_mqtt_flush_soon,
};

/* The client's timer and its flush (a defer source, off until publishes wrote). 0 or -errno. */
int gw_mqtt_start(struct sg_gateway *g)
{
	int r;

	r = sd_event_add_time(g->loop, &g->mqtt_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_mqtt_timer, g);
	if (r >= 0)
		r = sd_event_add_defer(g->loop, &g->mqtt_flush, on_mqtt_flush, g);
	if (r >= 0)
		r = sd_event_source_set_enabled(g->mqtt_flush, SD_EVENT_OFF);
	return r;
}
