/* SPDX-License-Identifier: MIT */
/*
 * gateway_cloud.c — the cloud profiles' wiring (cloud.c has the credentials).
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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/json.h"
#include "gateway_int.h"

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
	memcpy(d->batch + d->batch_len, "}}", 3); /* room kept by gw_batch_add() */
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
		gw_drop_reading(g, &msg, "the telemetry topic is too long");
		return;
	}
	gw_route(g, &msg);
}

void gw_batch_add(struct gw_device *d, const char *field, const struct sg_message *msg)
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
		gw_drop_reading(g, msg, "out of memory");
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
		gw_drop_reading(g, msg, "longer than a telemetry message may be here");
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

/* Every device's telemetry batch, as gathered so far. */
void gw_batches_send(struct sg_gateway *g)
{
	for (size_t i = 0; i < g->n_devs; i++)
		batch_send(g->devs[i]);
}

static int on_batch_flush(sd_event_source *s, void *ud)
{
	(void)s;
	gw_batches_send(ud);
	return 0;
}

/* The batches' flush: a defer source, on once a reading was added. 0 or -errno. */
int gw_cloud_start(struct sg_gateway *g)
{
	int r = sd_event_add_defer(g->loop, &g->batch_flush, on_batch_flush, g);

	return r < 0 ? r : sd_event_source_set_enabled(g->batch_flush, SD_EVENT_OFF);
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
		gw_actuators_watch(g);
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
	gw_actuators_watch(g);
}

void gw_cloud_message(struct sg_gateway *g, const struct sg_mqtt_msg *msg)
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
			gw_actuators_watch(g);
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
	gw_actuators_watch(g);
}

/* A state the router publishes: a reported-properties patch {"NAME":VALUE}; errors and answers are only logged. */
int gw_cloud_act_publish(struct sg_gateway *g, const char *topic, const void *payload, size_t len, int qos)
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

void gw_cloud_connected(struct sg_gateway *g)
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
