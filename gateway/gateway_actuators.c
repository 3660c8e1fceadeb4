/* SPDX-License-Identifier: MIT */
/*
 * gateway_actuators.c — the actuators on the loop and MQTT. The router
 * (commands.c) owns them; here they only meet the loop (an io watch per
 * actuator, one timer at the router's deadline) and the MQTT client
 * (publish, subscribe with No Local, MQTT 5 properties as plain fields).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <mqtt_protocol.h>

#include "../common/clock.h"
#include "gateway_int.h"
#include "serial_lines.h"

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
		return gw_cloud_act_publish(g, topic, payload, len, qos);
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
		return 0; /* the cloud's own command topics instead: gw_cloud_connected() */
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
void gw_actuators_watch(struct sg_gateway *g)
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
	gw_actuators_watch(g);
	return 0;
}

static int on_act_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;
	(void)s;
	(void)usec;
	commands_timer(g->cmds, now_mono_us());
	gw_actuators_watch(g);
	return 0;
}

/* An MQTT message: its MQTT 5 properties become plain fields for the router. */
void gw_actuators_message(struct sg_gateway *g, const struct sg_mqtt_msg *msg)
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
	gw_actuators_watch(g);
}

/* After a line's dispatch: actuators on it may have finished a command; the router picks that up. */
void gw_on_lines_after(void *ud, uint64_t now_us)
{
	struct sg_gateway *g = ud;

	gw_mqtt_flush_now(g);
	if (!g->cmds)
		return;
	commands_timer(g->cmds, now_us);
	gw_actuators_watch(g);
}

/* Open every actuator (driven to its initial state); one that cannot be opened is retried. */
int gw_actuators_setup(struct sg_gateway *g)
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
	gw_actuators_watch(g);
	return 0;
}

void gw_actuators_free(struct sg_gateway *g)
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
