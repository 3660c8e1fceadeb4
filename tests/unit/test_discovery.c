/* SPDX-License-Identifier: MIT */
/*
 * test_discovery.c — the Home Assistant discovery builder (gateway/discovery.c).
 *
 * Every payload is parsed by jansson, an independent JSON library (RFC 8259,
 * duplicate keys rejected, nothing after the value), and checked against the
 * options the Home Assistant MQTT documentation defines, per component. Documentation checked against:
 *  - home-assistant.io source/_integrations/mqtt.markdown at commit
 *    0a314403e71f72c2fa6fdcb51b28d4876b4ab7c2 (2025, HA 2025.x: discovery
 *    topic format, single-component payloads, device and origin mappings,
 *    availability list, birth message on homeassistant/status, deletion by an
 *    empty retained payload, "unknown configuration keys are allowed but
 *    ignored");
 *  - source/_integrations/sensor.mqtt.markdown at commit
 *    9e4a69ab998700a518e366a7f54551a150fccf94, and the switch, number,
 *    select and binary_sensor pages of the same tree;
 *  - default_entity_id: home-assistant/core PR 151775 (HA 2025.10, replaces
 *    object_id, which HA 2026.4 ignores) and PR 151996 (no warning when a
 *    payload carries both, which is what we send for older versions).
 * Abbreviated option names are not used.
 *
 * Configurations are built in memory (so that a driver with a declared field
 * table can be used) and released with config_free(); one case goes through
 * config_load() with the lines driver.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "gateway/config.h"
#include "gateway/discovery.h"
#include "gateway/ha_classes.h"

/* ======================= the JSON oracle: jansson ======================= */

/*
 * Payloads are parsed by jansson, not by anything of ours: RFC 8259 strictly
 * (no trailing commas, no bare control characters, valid escapes and UTF-8,
 * no lone surrogates, no NUL in strings), duplicate keys rejected
 * (JSON_REJECT_DUPLICATES) and the whole text one value with nothing after it
 * (json_loads checks the end unless told not to).
 */
#define JFLAGS JSON_REJECT_DUPLICATES

/* Parse TEXT as one JSON value with nothing after it; fails the test if it is not. */
static json_t *jparse(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, JFLAGS, &err);

	if (!v)
		fail_msg("invalid JSON (%s) at offset %d: %s", err.text, err.position, text);
	return v;
}

/* Member KEY of object O; NULL if O is not an object or has no such member. */
static json_t *jget(const json_t *o, const char *key)
{
	return json_is_object(o) ? json_object_get(o, key) : NULL;
}

/* Member KEY of O if it is a string, else NULL. */
static const char *jstr(const json_t *o, const char *key)
{
	const json_t *v = jget(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The oracle's settings are ours: duplicate keys and trailing text must fail with them. */
static void test_json_oracle_flags(void **state)
{
	static const char *const bad[] = {"{\"a\":1,\"a\":2}", "{\"a\":{\"b\":1,\"b\":1}}", "{} x", "{}{}", NULL};
	(void)state;
	for (size_t i = 0; bad[i]; i++) {
		json_t *v = json_loads(bad[i], JFLAGS, NULL);
		if (v) {
			json_decref(v);
			fail_msg("oracle accepted: %s", bad[i]);
		}
	}
	json_decref(jparse("{\"a\":[1,-2.5e3,true,false,null,\"\\u00e9\\n\"],\"b\":{\"a\":1}}"));
}

/* ======================= building configurations in memory ======================= */

static const struct sg_field_info env_fields[] = {
	{.name = "temperature", .unit = "°C", .device_class = "temperature", .state_class = "measurement"},
	{.name = "humidity", .unit = "%", .device_class = "humidity", .state_class = "measurement"},
	{.name = "pressure", .unit = "hPa", .device_class = "pressure", .state_class = "measurement"},
	{.name = "energy", .unit = "kWh", .device_class = "energy", .state_class = "total_increasing"},
	{.name = "state", .unit = NULL, .device_class = NULL, .state_class = NULL},
	{0},
};

static const struct sg_driver env_driver = {
	.name = "envsensor",
	.description = "a test driver with a field table",
	.bus = SG_BUS_NONE,
	.fields = env_fields,
};

static const struct sg_driver data_driver = {
	.name = "datadefined",
	.description = "a test driver whose fields come from the data",
	.bus = SG_BUS_NONE,
	.fields = NULL,
};

static char *xstrdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;
	if (s)
		assert_non_null(d);
	return d;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	assert_true(vasprintf(&s, fmt, ap) >= 0);
	va_end(ap);
	return s;
}

static struct sg_config *cfg_new(const char *id, bool enabled)
{
	struct sg_config *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->path = xstrdup("memory.conf");
	c->id = xstrdup(id);
	c->base_topic = xstrdup("home");
	c->status_topic = xasprintf("home/gateway/%s/status", id);
	c->discovery.enabled = enabled;
	c->discovery.prefix = xstrdup("homeassistant");
	c->spool.stats_interval_s = 60;
	return c;
}

static struct sg_reading_cfg reading_defaults(void)
{
	return (struct sg_reading_cfg){.qos = 0, .retain = true, .scale = 1, .round = -1, .average = 0};
}

static struct sg_device_cfg *cfg_add_device(struct sg_config *c, const char *name, const struct sg_driver *drv)
{
	struct sg_device_cfg *d;

	c->devices = realloc(c->devices, (c->n_devices + 1) * sizeof(*c->devices));
	assert_non_null(c->devices);
	d = &c->devices[c->n_devices++];
	*d = (struct sg_device_cfg){.name = xstrdup(name), .driver = drv, .address = -1, .all_fields = true};
	d->defaults = reading_defaults();
	return d;
}

static struct sg_reading_cfg *dev_add_reading(struct sg_config *c, struct sg_device_cfg *d, const char *field,
                                              const char *rel_topic)
{
	struct sg_reading_cfg *r;

	d->all_fields = false;
	d->readings = realloc(d->readings, (d->n_readings + 1) * sizeof(*d->readings));
	assert_non_null(d->readings);
	r = &d->readings[d->n_readings++];
	*r = reading_defaults();
	r->field = xstrdup(field);
	r->topic = rel_topic ? xasprintf("%s/%s", c->base_topic, rel_topic)
	                     : xasprintf("%s/%s/%s", c->base_topic, d->name, field);
	return r;
}

static struct sg_actuator_cfg *cfg_add_actuator(struct sg_config *c, const char *name, enum sg_actuator_kind kind)
{
	struct sg_actuator_cfg *a;

	c->actuators = realloc(c->actuators, (c->n_actuators + 1) * sizeof(*c->actuators));
	assert_non_null(c->actuators);
	a = &c->actuators[c->n_actuators++];
	*a = (struct sg_actuator_cfg){.name = xstrdup(name), .driver = xstrdup("gpio"), .kind = kind, .qos = 1};
	a->topic = xasprintf("%s/%s", c->base_topic, name);
	a->command_topic = xasprintf("%s/%s/set", c->base_topic, name);
	a->error_topic = xasprintf("%s/%s/error", c->base_topic, name);
	if (kind == SG_ACT_SWITCH) {
		a->payload_on = xstrdup("ON");
		a->payload_off = xstrdup("OFF");
	}
	return a;
}

/*
 * The configuration most cases use: gateway "gw1" with
 *  - "env" (declared fields, no readings list: all of them),
 *  - "arduino" (data-defined fields, a readings list with units, an override, json payload),
 *  - "bare" (data-defined, no readings list: nothing to announce),
 *  - actuators "light" (switch), "fan" (number), "mode" (enum).
 */
static struct sg_config *rich_config(void)
{
	struct sg_config *c = cfg_new("gw1", true);
	struct sg_device_cfg *d;
	struct sg_reading_cfg *r;
	struct sg_actuator_cfg *a;

	d = cfg_add_device(c, "env", &env_driver);
	d->expire_after_s = 90.5;

	d = cfg_add_device(c, "arduino", &data_driver);
	r = dev_add_reading(c, d, "t", "livingroom/temperature");
	r->unit = xstrdup("°C");
	r->round = 1;
	r->qos = 1;
	r = dev_add_reading(c, d, "h", NULL);
	r->unit = xstrdup("%");
	r->payload = SG_PAYLOAD_JSON;
	r = dev_add_reading(c, d, "soil", NULL);
	r->unit = xstrdup("%");
	r->device_class = xstrdup("moisture");
	r = dev_add_reading(c, d, "msg", NULL);

	cfg_add_device(c, "bare", &data_driver);

	cfg_add_actuator(c, "light", SG_ACT_SWITCH);
	a = cfg_add_actuator(c, "fan", SG_ACT_NUMBER);
	a->min = 0;
	a->max = 100;
	a->step = 0.5;
	a = cfg_add_actuator(c, "mode", SG_ACT_ENUM);
	a->options = calloc(3, sizeof(char *));
	assert_non_null(a->options);
	a->options[0] = xstrdup("low");
	a->options[1] = xstrdup("high");
	a->options[2] = xstrdup("auto");
	a->n_options = 3;
	return c;
}

/* The built message whose topic is TOPIC, parsed; NULL if there is none. */
static json_t *find(const struct sg_disc_list *l, const char *topic)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].topic, topic) == 0)
			return jparse(l->v[i].payload);
	return NULL;
}

static json_t *must_find(const struct sg_disc_list *l, const char *topic)
{
	json_t *v = find(l, topic);
	if (!v)
		fail_msg("no discovery message on %s", topic);
	return v;
}

static void build_ok(const struct sg_config *c, struct sg_disc_list *l)
{
	char err[256];
	int r = discovery_build(c, l, err, sizeof(err));
	if (r != 0)
		fail_msg("discovery_build: %d %s", r, err);
}

/* ======================= payload shape against the documentation ======================= */

/* Options the Home Assistant documentation defines, per component (only those we may send). */
static const char *const common_keys[] = {
	"name", "unique_id", "object_id", "default_entity_id", "availability", "availability_mode", "device",
	"origin", "qos", "entity_category", "state_topic", "value_template", NULL,
};
static const char *const sensor_keys[] = {
	"unit_of_measurement", "device_class", "state_class", "suggested_display_precision", "expire_after", NULL,
};
static const char *const binary_sensor_keys[] = {"payload_on", "payload_off", "device_class", "expire_after", NULL};
static const char *const switch_keys[] = {"command_topic", "payload_on", "payload_off", "state_on", "state_off", NULL};
static const char *const number_keys[] = {"command_topic", "min", "max", "step", "unit_of_measurement", NULL};
static const char *const select_keys[] = {"command_topic", "options", NULL};
static const char *const device_keys[] = {"identifiers", "name", "manufacturer", "model", "sw_version", "via_device", NULL};
static const char *const origin_keys[] = {"name", "sw_version", "support_url", NULL};
static const char *const availability_keys[] = {"topic", "payload_available", "payload_not_available", NULL};

static bool listed(const char *const *list, const char *k)
{
	for (; *list; list++)
		if (strcmp(*list, k) == 0)
			return true;
	return false;
}

static void check_keys_allowed(const json_t *o, const char *const *a, const char *const *b, const char *what)
{
	assert_true(json_is_object(o));
	for (void *it = json_object_iter((json_t *)o); it; it = json_object_iter_next((json_t *)o, it)) {
		const char *k = json_object_iter_key(it);
		if (!listed(a, k) && !(b && listed(b, k)))
			fail_msg("%s: option \"%s\" is not defined by the documentation", what, k);
	}
}

static bool is_topic_level(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '-'))
			return false;
	return true;
}

static bool is_entity_slug(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || s[0] == '_' || s[n - 1] == '_' || strstr(s, "__"))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* Everything every message must satisfy, whatever the component. */
static void check_message(const struct sg_disc_msg *m, const char *prefix)
{
	const char *component = m->component;
	json_t *o = jparse(m->payload);
	const json_t *v, *dev, *org;
	char *want_prefix, *entity_prefix;
	const char *const *extra = NULL;
	char comp[32], node[128], object[128];

	assert_non_null(component);
	/* <prefix>/<component>/<node_id>/<object_id>/config */
	want_prefix = xasprintf("%s/", prefix);
	assert_true(strncmp(m->topic, want_prefix, strlen(want_prefix)) == 0);
	assert_int_equal(sscanf(m->topic + strlen(want_prefix), "%31[^/]/%127[^/]/%127[^/]/config", comp, node, object), 3);
	free(want_prefix);
	assert_string_equal(comp, component);
	assert_true(is_topic_level(node));
	assert_true(is_topic_level(object));
	assert_string_equal(m->topic + strlen(m->topic) - strlen("/config"), "/config");

	if (strcmp(component, "sensor") == 0)
		extra = sensor_keys;
	else if (strcmp(component, "binary_sensor") == 0)
		extra = binary_sensor_keys;
	else if (strcmp(component, "switch") == 0)
		extra = switch_keys;
	else if (strcmp(component, "number") == 0)
		extra = number_keys;
	else if (strcmp(component, "select") == 0)
		extra = select_keys;
	else
		fail_msg("unexpected component %s", component);
	check_keys_allowed(o, common_keys, extra, m->topic);

	/* a name, or null: the device's main feature, shown by the device's name */
	assert_non_null(jget(o, "name"));
	assert_true(json_is_string(jget(o, "name")) || json_is_null(jget(o, "name")));
	assert_non_null(jstr(o, "unique_id"));
	assert_string_equal(jstr(o, "unique_id"), m->unique_id);
	assert_true(is_entity_slug(jstr(o, "object_id")));
	entity_prefix = xasprintf("%s.", component);
	assert_non_null(jstr(o, "default_entity_id"));
	assert_true(strncmp(jstr(o, "default_entity_id"), entity_prefix, strlen(entity_prefix)) == 0);
	assert_string_equal(jstr(o, "default_entity_id") + strlen(entity_prefix), jstr(o, "object_id"));
	free(entity_prefix);
	assert_non_null(jstr(o, "state_topic"));
	if (strcmp(component, "switch") == 0 || strcmp(component, "number") == 0 || strcmp(component, "select") == 0)
		assert_non_null(jstr(o, "command_topic"));

	dev = jget(o, "device");
	assert_non_null(dev);
	check_keys_allowed(dev, device_keys, NULL, "device");
	v = jget(dev, "identifiers");
	assert_non_null(v);
	assert_true(json_is_array(v));
	assert_true(json_array_size(v) >= 1);
	assert_true(json_is_string(json_array_get(v, 0)));
	/* HA: the device name must be in every entity's device mapping. */
	assert_non_null(jstr(dev, "name"));

	org = jget(o, "origin");
	assert_non_null(org);
	check_keys_allowed(org, origin_keys, NULL, "origin");
	assert_string_equal(jstr(org, "name"), "sensorgate");

	if ((v = jget(o, "availability"))) {
		assert_true(json_is_array(v));
		assert_true(json_array_size(v) >= 1);
		for (size_t i = 0; i < json_array_size(v); i++) {
			check_keys_allowed(json_array_get(v, i), availability_keys, NULL, "availability");
			assert_non_null(jstr(json_array_get(v, i), "topic"));
			assert_string_equal(jstr(json_array_get(v, i), "payload_available"), "online");
			assert_string_equal(jstr(json_array_get(v, i), "payload_not_available"), "offline");
		}
	}
	if (jget(o, "availability_mode")) {
		assert_non_null(jget(o, "availability"));
		assert_string_equal(jstr(o, "availability_mode"), "all");
	}
	if ((v = jget(o, "qos"))) {
		assert_true(json_is_number(v));
		assert_true(json_number_value(v) >= 0 && json_number_value(v) <= 2);
	}
	if (jget(o, "entity_category"))
		assert_string_equal(jstr(o, "entity_category"), "diagnostic");
	json_decref(o);
}

static void test_every_message_valid(void **state)
{
	struct sg_config *c = rich_config();
	struct sg_disc_list l = {0};
	size_t counts[5] = {0};
	static const char *const comps[] = {"sensor", "binary_sensor", "switch", "number", "select"};
	(void)state;

	build_ok(c, &l);
	for (size_t i = 0; i < l.n; i++) {
		check_message(&l.v[i], "homeassistant");
		for (size_t k = 0; k < 5; k++)
			counts[k] += strcmp(l.v[i].component, comps[k]) == 0;
	}
	/* 5 env fields + 4 arduino readings + 3 stats sensors; status + broker connected; 3 actuators. */
	assert_int_equal(counts[0], 5 + 4 + 3);
	assert_int_equal(counts[1], 2);
	assert_int_equal(counts[2], 1);
	assert_int_equal(counts[3], 1);
	assert_int_equal(counts[4], 1);
	assert_int_equal(l.n, 12 + 2 + 3);
	/* No two topics or unique_ids alike. */
	for (size_t i = 0; i < l.n; i++)
		for (size_t j = i + 1; j < l.n; j++) {
			assert_string_not_equal(l.v[i].topic, l.v[j].topic);
			assert_string_not_equal(l.v[i].unique_id, l.v[j].unique_id);
		}
	discovery_list_clear(&l);
	config_free(c);
}

/* ======================= topics, ids, grouping ======================= */

static void test_topics_and_ids(void **state)
{
	static const struct {
		const char *topic, *unique_id, *object_id, *state_topic;
	} cases[] = {
		{"homeassistant/sensor/gw1/env_temperature/config", "sensorgate_gw1_env_temperature",
		 "gw1_env_temperature", "home/env/temperature"},
		{"homeassistant/sensor/gw1/arduino_t/config", "sensorgate_gw1_arduino_t", "gw1_arduino_t",
		 "home/livingroom/temperature"},
		{"homeassistant/switch/gw1/light/config", "sensorgate_gw1_light", "gw1_light", "home/light"},
		{"homeassistant/number/gw1/fan/config", "sensorgate_gw1_fan", "gw1_fan", "home/fan"},
		{"homeassistant/select/gw1/mode/config", "sensorgate_gw1_mode", "gw1_mode", "home/mode"},
		{"homeassistant/binary_sensor/gw1/gateway_status/config", "sensorgate_gw1_gateway_status",
		 "gw1_gateway_status", "home/gateway/gw1/status"},
		{"homeassistant/sensor/gw1/gateway_spool_depth/config", "sensorgate_gw1_gateway_spool_depth",
		 "gw1_gateway_spool_depth", "home/gateway/gw1/stats"},
	};
	struct sg_config *c = rich_config();
	struct sg_disc_list l = {0};
	(void)state;

	build_ok(c, &l);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *o = must_find(&l, cases[i].topic);
		assert_string_equal(jstr(o, "unique_id"), cases[i].unique_id);
		assert_string_equal(jstr(o, "object_id"), cases[i].object_id);
		assert_string_equal(jstr(o, "state_topic"), cases[i].state_topic);
		json_decref(o);
	}
	/* "bare" has no declared fields and no readings list: nothing to announce for it. */
	for (size_t i = 0; i < l.n; i++)
		assert_null(strstr(l.v[i].topic, "bare"));
	discovery_list_clear(&l);
	config_free(c);
}

/* unique_id depends on gateway id + device + field only: topic, unit, class, payload may change. */
static void test_unique_id_stable(void **state)
{
	struct sg_config *a = rich_config(), *b = rich_config();
	struct sg_disc_list la = {0}, lb = {0}, lc = {0};
	struct sg_reading_cfg *r;
	(void)state;

	build_ok(a, &la);
	build_ok(a, &lc);
	/* Same config twice: byte-identical output (Home Assistant ignores an unchanged config). */
	assert_int_equal(la.n, lc.n);
	for (size_t i = 0; i < la.n; i++) {
		assert_string_equal(la.v[i].topic, lc.v[i].topic);
		assert_string_equal(la.v[i].payload, lc.v[i].payload);
	}
	r = &b->devices[1].readings[0]; /* arduino.t */
	free(r->topic);
	r->topic = xstrdup("home/kitchen/temp");
	free(r->unit);
	r->unit = xstrdup("°F");
	r->payload = SG_PAYLOAD_JSON;
	build_ok(b, &lb);
	json_t *oa = must_find(&la, "homeassistant/sensor/gw1/arduino_t/config");
	json_t *ob = must_find(&lb, "homeassistant/sensor/gw1/arduino_t/config");
	assert_string_equal(jstr(oa, "unique_id"), jstr(ob, "unique_id"));
	assert_string_not_equal(jstr(oa, "state_topic"), jstr(ob, "state_topic"));
	assert_string_equal(jstr(ob, "unit_of_measurement"), "°F");
	json_decref(oa);
	json_decref(ob);
	discovery_list_clear(&la);
	discovery_list_clear(&lb);
	discovery_list_clear(&lc);
	config_free(a);
	config_free(b);
}

static void test_device_grouping(void **state)
{
	struct sg_config *c = rich_config();
	struct sg_disc_list l = {0};
	(void)state;

	build_ok(c, &l);
	for (size_t i = 0; i < l.n; i++) {
		json_t *o = jparse(l.v[i].payload);
		const json_t *dev = jget(o, "device");
		const char *ident = json_string_value(json_array_get(jget(dev, "identifiers"), 0));
		const char *t = l.v[i].topic;

		if (strstr(t, "/gw1/env_")) {
			assert_string_equal(ident, "sensorgate_gw1_env");
			assert_string_equal(jstr(dev, "name"), "env");
			assert_string_equal(jstr(dev, "model"), "envsensor");
			assert_string_equal(jstr(dev, "via_device"), "sensorgate_gw1");
		} else if (strstr(t, "/gw1/arduino_")) {
			assert_string_equal(ident, "sensorgate_gw1_arduino");
			assert_string_equal(jstr(dev, "via_device"), "sensorgate_gw1");
		} else {
			/* actuators and health entities belong to the gateway itself */
			assert_string_equal(ident, "sensorgate_gw1");
			assert_null(jget(dev, "via_device"));
			assert_string_equal(jstr(dev, "name"), "sensorgate gw1");
			assert_string_equal(jstr(dev, "manufacturer"), "sensorgate");
			assert_non_null(jstr(dev, "model"));
			assert_string_equal(jstr(dev, "sw_version"), SG_VERSION);
		}
		json_decref(o);
	}
	/* The gateway device is announced before any device that names it as via_device. */
	assert_non_null(strstr(l.v[0].topic, "gateway_status"));
	discovery_list_clear(&l);
	config_free(c);
}

/* ======================= device_class, state_class, unit ======================= */

static void test_infer_table(void **state)
{
	static const struct {
		const char *field, *unit, *device_class, *state_class;
	} cases[] = {
		{"t", "°C", "temperature", "measurement"},
		{"outside", "°F", "temperature", "measurement"},
		{"temp", "K", "temperature", "measurement"},
		{"t", NULL, NULL, NULL},               /* no unit: HA would reject the class */
		{"temperature", "", NULL, NULL},
		{"temperature", "C", NULL, NULL},     /* not a unit HA accepts for temperature */
		{"h", "%", "humidity", "measurement"},
		{"rh", "%", "humidity", "measurement"},
		{"Humidity_in", "%", "humidity", "measurement"},
		{"battery", "%", "battery", "measurement"},
		{"soil_moisture", "%", "moisture", "measurement"},
		{"duty", "%", NULL, NULL},             /* "%" alone says nothing */
		{"th", "%", NULL, NULL},               /* short hints must be the whole name */
		{"p", "hPa", "pressure", "measurement"},
		{"baro", "mbar", "pressure", "measurement"},
		{"pm2_5", "µg/m³", "pm25", "measurement"},
		{"pm25", "μg/m³", "pm25", "measurement"}, /* Greek mu */
		{"PM2.5", "µg/m³", "pm25", "measurement"},
		{"pm10", "µg/m³", "pm10", "measurement"},
		{"pm1", "µg/m³", "pm1", "measurement"},
		{"dust", "µg/m³", NULL, NULL},
		{"co2", "ppm", "carbon_dioxide", "measurement"}, /* HA's name for it, not "co2" */
		{"eco2_ppm", "ppm", "carbon_dioxide", "measurement"},
		{"tvoc", "ppm", NULL, NULL},
		{"energy", "kWh", "energy", "total_increasing"},
		{"import", "Wh", "energy", "total_increasing"},
		{"power", "W", "power", "measurement"},
		{"p1", "kW", "power", "measurement"},
		{"lux", "lx", "illuminance", "measurement"},
		{"v", "V", "voltage", "measurement"},
		{"vbat", "mV", "voltage", "measurement"},
		{"current", "A", "current", "measurement"},
		{"gas", "m³", "gas", "total_increasing"},
		{"water_total", "L", "water", "total_increasing"},
		{"tank", "L", NULL, NULL},             /* a volume, but a meter's or a tank's? */
		{"flow", "L/min", "volume_flow_rate", "measurement"},
		{"mains", "Hz", "frequency", "measurement"},
		{"wind", "km/h", "wind_speed", "measurement"},
		{"rssi", "dBm", "signal_strength", "measurement"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *dc = ha_infer_device_class(cases[i].field, cases[i].unit);
		if (!cases[i].device_class) {
			if (dc)
				fail_msg("case %zu (%s, %s): inferred %s, expected none", i, cases[i].field,
				         cases[i].unit ? cases[i].unit : "NULL", dc);
			continue;
		}
		if (!dc || strcmp(dc, cases[i].device_class) != 0)
			fail_msg("case %zu (%s, %s): inferred %s, expected %s", i, cases[i].field, cases[i].unit,
			         dc ? dc : "none", cases[i].device_class);
		assert_string_equal(ha_default_state_class(dc, cases[i].unit), cases[i].state_class);
	}
	assert_null(ha_default_state_class(NULL, NULL));
	assert_string_equal(ha_default_state_class(NULL, "readings/s"), "measurement");
	assert_null(ha_default_state_class("timestamp", NULL));
	assert_string_equal(ha_default_state_class("monetary", "EUR"), "total");
}

static void test_reading_classes(void **state)
{
	static const struct {
		const char *topic, *unit, *device_class, *state_class;
	} cases[] = {
		/* from the driver's field table */
		{"homeassistant/sensor/gw1/env_temperature/config", "°C", "temperature", "measurement"},
		{"homeassistant/sensor/gw1/env_pressure/config", "hPa", "pressure", "measurement"},
		{"homeassistant/sensor/gw1/env_energy/config", "kWh", "energy", "total_increasing"},
		{"homeassistant/sensor/gw1/env_state/config", NULL, NULL, NULL},
		/* inferred from the configured unit and the field name */
		{"homeassistant/sensor/gw1/arduino_t/config", "°C", "temperature", "measurement"},
		{"homeassistant/sensor/gw1/arduino_h/config", "%", "humidity", "measurement"},
		/* overridden in the config: the class is taken as is, with the state class Home Assistant wants for it */
		{"homeassistant/sensor/gw1/arduino_soil/config", "%", "moisture", "measurement"},
		/* nothing known: a plain value */
		{"homeassistant/sensor/gw1/arduino_msg/config", NULL, NULL, NULL},
		/* health */
		{"homeassistant/sensor/gw1/gateway_readings_per_s/config", "readings/s", NULL, "measurement"},
		{"homeassistant/sensor/gw1/gateway_dropped/config", "messages", NULL, "total_increasing"},
		{"homeassistant/binary_sensor/gw1/gateway_status/config", NULL, "connectivity", NULL},
		{"homeassistant/binary_sensor/gw1/gateway_connected/config", NULL, "connectivity", NULL},
	};
	struct sg_config *c = rich_config();
	struct sg_disc_list l = {0};
	(void)state;

	build_ok(c, &l);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *o = must_find(&l, cases[i].topic);
		const char *got[3] = {jstr(o, "unit_of_measurement"), jstr(o, "device_class"), jstr(o, "state_class")};
		const char *want[3] = {cases[i].unit, cases[i].device_class, cases[i].state_class};
		for (int k = 0; k < 3; k++) {
			if (!want[k] && got[k])
				fail_msg("%s: unexpected %s", cases[i].topic, got[k]);
			if (want[k] && (!got[k] || strcmp(got[k], want[k]) != 0))
				fail_msg("%s: got %s, expected %s", cases[i].topic, got[k] ? got[k] : "none", want[k]);
		}
		json_decref(o);
	}
	discovery_list_clear(&l);
	config_free(c);
}

/* A config override beats the driver's table; a unit override too. */
static void test_overrides(void **state)
{
	struct sg_config *c = cfg_new("gw1", true);
	struct sg_device_cfg *d = cfg_add_device(c, "env", &env_driver);
	struct sg_reading_cfg *r = dev_add_reading(c, d, "temperature", NULL);
	struct sg_disc_list l = {0};
	json_t *o;
	(void)state;

	r->device_class = xstrdup("power");
	r->unit = xstrdup("W");
	r = dev_add_reading(c, d, "humidity", NULL);
	r->unit = xstrdup("g/m³");
	build_ok(c, &l);
	/* a readings list narrows: only two sensors for env (+ status + 4 stats) */
	assert_int_equal(l.n, 2 + 1 + 4);
	o = must_find(&l, "homeassistant/sensor/gw1/env_temperature/config");
	assert_string_equal(jstr(o, "device_class"), "power");
	assert_string_equal(jstr(o, "unit_of_measurement"), "W");
	assert_string_equal(jstr(o, "state_class"), "measurement");
	json_decref(o);
	o = must_find(&l, "homeassistant/sensor/gw1/env_humidity/config");
	/* another unit than the driver's: the driver's class no longer holds (humidity takes "%" only) */
	assert_string_equal(jstr(o, "device_class"), "absolute_humidity");
	assert_string_equal(jstr(o, "unit_of_measurement"), "g/m³");
	json_decref(o);
	discovery_list_clear(&l);
	config_free(c);
}

static void test_reading_options(void **state)
{
	struct sg_config *c = rich_config();
	struct sg_disc_list l = {0};
	json_t *o;
	const json_t *v;
	(void)state;

	build_ok(c, &l);
	o = must_find(&l, "homeassistant/sensor/gw1/arduino_t/config");
	assert_null(jget(o, "value_template")); /* plain payload */
	assert_string_equal(jstr(o, "name"), "temperature"); /* last level of its topic */
	assert_non_null(v = jget(o, "suggested_display_precision"));
	assert_true(json_number_value(v) == 1);
	assert_non_null(v = jget(o, "qos"));
	assert_true(json_number_value(v) == 1);
	assert_null(jget(o, "expire_after"));
	/* no expire_after on the device: no device status topic, the gateway's only */
	assert_non_null(v = jget(o, "availability"));
	assert_int_equal(json_array_size(v), 1);
	assert_string_equal(jstr(json_array_get(v, 0), "topic"), "home/gateway/gw1/status");
	assert_null(jget(o, "availability_mode"));
	json_decref(o);

	o = must_find(&l, "homeassistant/sensor/gw1/arduino_h/config");
	assert_string_equal(jstr(o, "value_template"), "{{ value_json.value }}");
	assert_non_null(v = jget(o, "suggested_display_precision")); /* no round: the usual for "%" */
	assert_true(json_number_value(v) == 1);
	assert_null(jget(o, "qos"));
	json_decref(o);

	/*
	 * expire_after on the device: its status topic joins, both must say online.
	 * Not Home Assistant's expire_after: deadband/throttle hold back messages of a live device.
	 */
	o = must_find(&l, "homeassistant/sensor/gw1/env_humidity/config");
	assert_null(jget(o, "expire_after"));
	assert_non_null(v = jget(o, "availability"));
	assert_int_equal(json_array_size(v), 2);
	assert_string_equal(jstr(json_array_get(v, 0), "topic"), "home/gateway/gw1/status");
	assert_string_equal(jstr(json_array_get(v, 1), "topic"), "home/env/status");
	assert_string_equal(jstr(o, "availability_mode"), "all");
	assert_string_equal(jstr(o, "name"), "humidity");
	json_decref(o);
	discovery_list_clear(&l);
	config_free(c);
}

static void test_actuators(void **state)
{
	struct sg_config *c = rich_config();
	struct sg_disc_list l = {0};
	json_t *o;
	const json_t *v;
	(void)state;

	build_ok(c, &l);
	o = must_find(&l, "homeassistant/switch/gw1/light/config");
	assert_string_equal(jstr(o, "command_topic"), "home/light/set");
	assert_string_equal(jstr(o, "state_topic"), "home/light");
	assert_string_equal(jstr(o, "payload_on"), "ON");
	assert_string_equal(jstr(o, "payload_off"), "OFF");
	assert_string_equal(jstr(o, "state_on"), "ON");
	assert_string_equal(jstr(o, "state_off"), "OFF");
	assert_non_null(v = jget(o, "availability"));
	assert_int_equal(json_array_size(v), 1);
	assert_null(jget(o, "availability_mode"));
	json_decref(o);

	o = must_find(&l, "homeassistant/number/gw1/fan/config");
	assert_string_equal(jstr(o, "command_topic"), "home/fan/set");
	assert_true(json_number_value(jget(o, "min")) == 0);
	assert_true(json_number_value(jget(o, "max")) == 100);
	assert_true(json_number_value(jget(o, "step")) == 0.5);
	assert_null(jget(o, "payload_on"));
	json_decref(o);

	o = must_find(&l, "homeassistant/select/gw1/mode/config");
	assert_non_null(v = jget(o, "options"));
	assert_true(json_is_array(v));
	assert_int_equal(json_array_size(v), 3);
	assert_string_equal(json_string_value(json_array_get(v, 0)), "low");
	assert_string_equal(json_string_value(json_array_get(v, 2)), "auto");
	json_decref(o);
	discovery_list_clear(&l);
	config_free(c);
}

static void test_health(void **state)
{
	struct sg_config *c = rich_config();
	struct sg_disc_list l = {0};
	json_t *o;
	(void)state;

	build_ok(c, &l);
	o = must_find(&l, "homeassistant/binary_sensor/gw1/gateway_status/config");
	assert_string_equal(jstr(o, "state_topic"), "home/gateway/gw1/status");
	assert_string_equal(jstr(o, "payload_on"), "online");
	assert_string_equal(jstr(o, "payload_off"), "offline");
	assert_null(jget(o, "availability")); /* offline must show as disconnected, not unavailable */
	json_decref(o);
	static const char *const stats[][2] = {
		{"homeassistant/binary_sensor/gw1/gateway_connected/config", "connected"},
		{"homeassistant/sensor/gw1/gateway_readings_per_s/config", "readings_per_s"},
		{"homeassistant/sensor/gw1/gateway_spool_depth/config", "spool_depth"},
		{"homeassistant/sensor/gw1/gateway_dropped/config", "dropped"},
	};
	for (size_t i = 0; i < 4; i++) {
		o = must_find(&l, stats[i][0]);
		assert_string_equal(jstr(o, "state_topic"), "home/gateway/gw1/stats");
		assert_non_null(strstr(jstr(o, "value_template"), stats[i][1]));
		assert_string_equal(jstr(o, "entity_category"), "diagnostic");
		assert_true(json_number_value(jget(o, "expire_after")) == 180);
		json_decref(o);
	}
	discovery_list_clear(&l);

	/* No stats topic: only the status entity. */
	c->spool.stats_interval_s = 0;
	build_ok(c, &l);
	for (size_t i = 0; i < l.n; i++)
		if (strstr(l.v[i].topic, "/gateway_") && !strstr(l.v[i].topic, "/gateway_status/"))
			fail_msg("stats entity announced without a stats topic: %s", l.v[i].topic);
	assert_int_equal(l.n, 17 - 4);
	discovery_list_clear(&l);

	/* Other words on the status topics (gateway.payload_online/offline): every availability and the
	 * status entity use them, or Home Assistant would show everything unavailable. */
	c->mqtt.birth_payload = strdup("Online");
	c->mqtt.will_payload = strdup("Offline");
	assert_non_null(c->mqtt.birth_payload);
	assert_non_null(c->mqtt.will_payload);
	build_ok(c, &l);
	o = must_find(&l, "homeassistant/binary_sensor/gw1/gateway_status/config");
	assert_string_equal(jstr(o, "payload_on"), "Online");
	assert_string_equal(jstr(o, "payload_off"), "Offline");
	json_decref(o);
	{
		size_t with = 0;

		for (size_t i = 0; i < l.n; i++) {
			if (!strstr(l.v[i].payload, "\"availability\""))
				continue;
			with++;
			assert_non_null(strstr(l.v[i].payload, "\"payload_available\":\"Online\""));
			assert_non_null(strstr(l.v[i].payload, "\"payload_not_available\":\"Offline\""));
			assert_null(strstr(l.v[i].payload, "\"online\""));
		}
		assert_true(with >= 10);
	}
	discovery_list_clear(&l);
	config_free(c);
}

/* health.publish: three diagnostic sensors per device on <base>/<device>/health, in that device. */
static void test_link_health(void **state)
{
	struct sg_config *c = rich_config();
	struct sg_disc_list l = {0};
	json_t *o, *temp;
	static const char *const objs[][3] = {
		{"link_quality", "{{ value_json.quality }}", "%"},
		{"link_errors", "{{ value_json.recent.failed_per_min }}", "errors/min"},
		{"link_reconnects", "{{ value_json.since_start.counts.reconnects }}", NULL},
	};
	const char *const devs[] = {"env", "arduino"};
	(void)state;

	build_ok(c, &l);
	assert_null(find(&l, "homeassistant/sensor/gw1/env_link_quality/config")); /* off by default */
	discovery_list_clear(&l);

	c->health.publish = true;
	build_ok(c, &l);
	assert_int_equal(l.n, 17 + 3 * c->n_devices);
	for (size_t i = 0; i < l.n; i++)
		check_message(&l.v[i], "homeassistant");
	temp = must_find(&l, "homeassistant/sensor/gw1/env_temperature/config");
	for (size_t d = 0; d < 2; d++)
		for (size_t i = 0; i < 3; i++) {
			char topic[256], state_topic[64];

			snprintf(topic, sizeof(topic), "homeassistant/sensor/gw1/%s_%s/config", devs[d], objs[i][0]);
			snprintf(state_topic, sizeof(state_topic), "home/%s/health", devs[d]);
			o = must_find(&l, topic);
			assert_string_equal(jstr(o, "state_topic"), state_topic);
			assert_string_equal(jstr(o, "value_template"), objs[i][1]);
			assert_string_equal(jstr(o, "entity_category"), "diagnostic");
			if (objs[i][2])
				assert_string_equal(jstr(o, "unit_of_measurement"), objs[i][2]);
			else
				assert_null(jget(o, "unit_of_measurement"));
			assert_non_null(jget(o, "device"));
			if (d == 0) /* the same device as the readings of env */
				assert_string_equal(jstr(jget(o, "device"), "name"), jstr(jget(temp, "device"), "name"));
			json_decref(o);
		}
	json_decref(temp);
	discovery_list_clear(&l);
	config_free(c);
}

static void test_disabled(void **state)
{
	struct sg_config *c = rich_config();
	struct sg_disc_list l = {0}, rm = {0};
	struct sg_config *off = rich_config();
	(void)state;

	c->discovery.enabled = false;
	build_ok(c, &l);
	assert_int_equal(l.n, 0);
	assert_null(l.v);
	/* Disabling after having announced deletes everything announced. */
	assert_int_equal(discovery_diff(off, c, &rm), 0);
	assert_int_equal(rm.n, 17);
	discovery_list_clear(&rm);
	config_free(c);
	config_free(off);
}

static void test_prefix(void **state)
{
	struct sg_config *c = rich_config();
	struct sg_disc_list l = {0};
	char *t;
	(void)state;

	free(c->discovery.prefix);
	c->discovery.prefix = xstrdup("ha/disc");
	build_ok(c, &l);
	for (size_t i = 0; i < l.n; i++)
		check_message(&l.v[i], "ha/disc");
	t = discovery_ha_status_topic(c);
	assert_string_equal(t, "ha/disc/status");
	free(t);
	discovery_list_clear(&l);
	config_free(c);
}

static void test_collision(void **state)
{
	struct sg_config *c = cfg_new("gw1", true);
	struct sg_device_cfg *d;
	struct sg_disc_list l = {0};
	char err[512];
	(void)state;

	d = cfg_add_device(c, "a_b", &data_driver);
	dev_add_reading(c, d, "c", NULL)->unit = xstrdup("V");
	d = cfg_add_device(c, "a", &data_driver);
	dev_add_reading(c, d, "b_c", NULL)->unit = xstrdup("V");
	assert_int_equal(discovery_build(c, &l, err, sizeof(err)), -EEXIST);
	assert_int_equal(l.n, 0);
	assert_non_null(strstr(err, "homeassistant/sensor/gw1/a_b_c/config"));
	config_free(c);

	/* '.' in a field becomes '_' in the object id: "x.y" and "x_y" collide too */
	c = cfg_new("gw1", true);
	d = cfg_add_device(c, "dev", &data_driver);
	dev_add_reading(c, d, "x.y", NULL);
	dev_add_reading(c, d, "x_y", NULL);
	assert_int_equal(discovery_build(c, &l, NULL, 0), -EEXIST);
	config_free(c);
}

/* Whatever a config string holds, the payload stays valid JSON and says the same thing. */
static void test_escaping(void **state)
{
	struct sg_config *c = cfg_new("gw1", true);
	struct sg_device_cfg *d = cfg_add_device(c, "dev", &data_driver);
	struct sg_reading_cfg *r = dev_add_reading(c, d, "x", NULL);
	struct sg_actuator_cfg *a = cfg_add_actuator(c, "sw", SG_ACT_SWITCH);
	struct sg_disc_list l = {0};
	json_t *o;
	(void)state;

	r->unit = xstrdup("a\"b\\c\td\x01" "e/\xc2\xb0\xff");
	free(a->payload_on);
	a->payload_on = xstrdup("{\"state\":\"ON\"}");
	build_ok(c, &l);
	o = must_find(&l, "homeassistant/sensor/gw1/dev_x/config");
	assert_string_equal(jstr(o, "unit_of_measurement"), "a\"b\\c\td\x01" "e/\xc2\xb0\xef\xbf\xbd");
	json_decref(o);
	o = must_find(&l, "homeassistant/switch/gw1/sw/config");
	assert_string_equal(jstr(o, "payload_on"), "{\"state\":\"ON\"}");
	json_decref(o);
	discovery_list_clear(&l);
	config_free(c);
}

/* The entity id slug is valid whatever the gateway id and names look like. */
static void test_entity_slug(void **state)
{
	struct sg_config *c = cfg_new("Pi-Living__Room-", true);
	struct sg_device_cfg *d = cfg_add_device(c, "-Dev", &data_driver);
	struct sg_disc_list l = {0};
	json_t *o;
	(void)state;

	dev_add_reading(c, d, "T.in", NULL);
	build_ok(c, &l);
	for (size_t i = 0; i < l.n; i++)
		check_message(&l.v[i], "homeassistant");
	o = must_find(&l, "homeassistant/sensor/Pi-Living__Room-/-Dev_T_in/config");
	assert_string_equal(jstr(o, "object_id"), "pi_living_room_dev_t_in");
	assert_string_equal(jstr(o, "default_entity_id"), "sensor.pi_living_room_dev_t_in");
	assert_string_equal(jstr(o, "unique_id"), "sensorgate_Pi-Living__Room-_-Dev_T_in");
	json_decref(o);
	discovery_list_clear(&l);
	config_free(c);
}

/* ======================= removal ======================= */

static void test_diff(void **state)
{
	struct sg_config *old = rich_config(), *now = rich_config();
	struct sg_disc_list rm = {0};
	(void)state;

	/* same config: nothing to delete */
	assert_int_equal(discovery_diff(old, now, &rm), 0);
	assert_int_equal(rm.n, 0);

	/* drop the "arduino" device's last two readings and the "mode" actuator */
	struct sg_device_cfg *d = &now->devices[1];
	for (size_t j = 2; j < d->n_readings; j++) {
		free(d->readings[j].field);
		free(d->readings[j].topic);
		free(d->readings[j].unit);
		free(d->readings[j].device_class);
	}
	d->n_readings = 2;
	struct sg_actuator_cfg *a = &now->actuators[2];
	for (size_t k = 0; k < a->n_options; k++)
		free(a->options[k]);
	free(a->options);
	free(a->name);
	free(a->driver);
	free(a->topic);
	free(a->command_topic);
	free(a->error_topic);
	now->n_actuators = 2;

	assert_int_equal(discovery_diff(old, now, &rm), 0);
	assert_int_equal(rm.n, 3);
	static const char *const gone[] = {
		"homeassistant/sensor/gw1/arduino_soil/config",
		"homeassistant/sensor/gw1/arduino_msg/config",
		"homeassistant/select/gw1/mode/config",
	};
	for (size_t i = 0; i < 3; i++) {
		bool found = false;
		for (size_t j = 0; j < rm.n; j++) {
			if (strcmp(rm.v[j].topic, gone[i]) == 0) {
				found = true;
				assert_string_equal(rm.v[j].payload, ""); /* an empty payload deletes */
				assert_null(rm.v[j].unique_id);
			}
		}
		if (!found)
			fail_msg("no deletion for %s", gone[i]);
	}
	discovery_list_clear(&rm);

	/* the other way round: additions delete nothing */
	assert_int_equal(discovery_diff(now, old, &rm), 0);
	assert_int_equal(rm.n, 0);
	config_free(old);
	config_free(now);
}

static char tmpdir[64];

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg-test-discovery-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_state_file(void **state)
{
	struct sg_config *c = rich_config(), *small = cfg_new("gw1", true);
	struct sg_disc_list l = {0}, ls = {0}, rm = {0};
	struct sg_disc_topics t = {0};
	char *path = xasprintf("%s/discovery-gw1.state", tmpdir);
	char *tmp = xasprintf("%s.tmp", path);
	struct stat st;
	(void)state;

	/* missing: empty */
	assert_int_equal(discovery_state_load(path, &t), 0);
	assert_int_equal(t.n, 0);

	build_ok(c, &l);
	assert_int_equal(discovery_state_save(path, &l), 0);
	assert_int_equal(stat(tmp, &st), -1); /* renamed away */
	assert_int_equal(discovery_state_load(path, &t), 0);
	assert_int_equal(t.n, l.n);
	for (size_t i = 0; i < l.n; i++)
		assert_string_equal(t.v[i], l.v[i].topic);

	/* next start with a smaller config: the rest is deleted */
	build_ok(small, &ls);
	assert_int_equal(ls.n, 1 + 4);
	assert_int_equal(discovery_removals(&t, &ls, &rm), 0);
	assert_int_equal(rm.n, l.n - ls.n);
	for (size_t i = 0; i < rm.n; i++) {
		assert_string_equal(rm.v[i].payload, "");
		for (size_t j = 0; j < ls.n; j++)
			assert_string_not_equal(rm.v[i].topic, ls.v[j].topic);
	}
	discovery_list_clear(&rm);
	discovery_topics_clear(&t);

	/* an unreadable path is an error, not an empty set */
	assert_true(discovery_state_load(tmpdir, &t) < 0);
	assert_int_equal(t.n, 0);
	assert_true(discovery_state_save("/nonexistent-dir/x.state", &l) < 0);

	unlink(path);
	free(path);
	free(tmp);
	discovery_list_clear(&l);
	discovery_list_clear(&ls);
	config_free(c);
	config_free(small);
}

/* A fake broker connection: records what is published, fails from call FAIL_AT on (0 = never). */
struct fake_pub {
	char *topic[64];
	char *payload[64];
	size_t n, calls, fail_at;
};

static int fake_publish(void *ud, const char *topic, const char *payload, size_t len)
{
	struct fake_pub *f = ud;

	f->calls++;
	if (f->fail_at && f->calls >= f->fail_at)
		return -ENOTCONN;
	assert_true(f->n < 64);
	assert_int_equal(strlen(payload), len);
	f->topic[f->n] = xstrdup(topic);
	f->payload[f->n] = xstrdup(payload);
	f->n++;
	return 0;
}

static void fake_reset(struct fake_pub *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->topic[i]);
		free(f->payload[i]);
	}
	*f = (struct fake_pub){0};
}

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Start-up with a state file, a reload, a re-announcement, a connection lost half-way. */
static void test_sync(void **state)
{
	struct sg_config *big = rich_config(), *small = cfg_new("gw1", true);
	struct sg_disc_list lb = {0}, ls = {0};
	struct sg_disc_topics announced = {0}, onfile = {0};
	struct fake_pub f = {0};
	struct sg_disc_sync res;
	char *path = xasprintf("%s/sync.state", tmpdir);
	(void)state;

	build_ok(big, &lb);
	build_ok(small, &ls);
	unlink(path);

	/* first run ever: everything announced, nothing deleted, the state file written */
	assert_int_equal(discovery_sync(&lb, &announced, path, true, fake_publish, &f, &res), 0);
	assert_int_equal(res.deleted, 0);
	assert_int_equal(res.announced, lb.n);
	assert_int_equal(res.save_error, 0);
	assert_int_equal(f.n, lb.n);
	for (size_t i = 0; i < f.n; i++)
		assert_string_equal(f.payload[i], lb.v[i].payload);
	assert_int_equal(announced.n, lb.n);
	assert_int_equal(discovery_state_load(path, &onfile), 0);
	assert_int_equal(onfile.n, lb.n);
	discovery_topics_clear(&onfile);
	fake_reset(&f);
	discovery_topics_clear(&announced);

	/* next start with fewer entities: the state file says what to delete, deletions go first */
	assert_int_equal(discovery_state_load(path, &announced), 0);
	assert_int_equal(discovery_sync(&ls, &announced, path, true, fake_publish, &f, &res), 0);
	assert_int_equal(res.deleted, lb.n - ls.n);
	assert_int_equal(res.announced, ls.n);
	assert_int_equal(f.n, lb.n);
	for (size_t i = 0; i < f.n; i++) {
		if (i < res.deleted)
			assert_string_equal(f.payload[i], "");
		else
			assert_string_not_equal(f.payload[i], "");
	}
	assert_int_equal(discovery_state_load(path, &onfile), 0);
	assert_int_equal(onfile.n, ls.n);
	discovery_topics_clear(&onfile);
	fake_reset(&f);

	/* nothing changed: configs again, no deletions, the state file is not rewritten */
	unlink(path);
	assert_int_equal(discovery_sync(&ls, &announced, path, true, fake_publish, &f, &res), 0);
	assert_int_equal(res.deleted, 0);
	assert_int_equal(f.n, ls.n);
	assert_false(file_exists(path));
	fake_reset(&f);

	/* connection lost half-way through the deletions: nothing remembered, all redone next time */
	discovery_topics_clear(&announced);
	assert_int_equal(discovery_sync(&lb, &announced, NULL, true, fake_publish, &f, NULL), 0);
	fake_reset(&f);
	f.fail_at = 3;
	assert_int_equal(discovery_sync(&ls, &announced, path, true, fake_publish, &f, &res), -ENOTCONN);
	assert_int_equal(res.deleted, 2);
	assert_int_equal(announced.n, lb.n);
	assert_false(file_exists(path));
	fake_reset(&f);
	assert_int_equal(discovery_sync(&ls, &announced, path, true, fake_publish, &f, &res), 0);
	assert_int_equal(res.deleted, lb.n - ls.n);
	assert_int_equal(announced.n, ls.n);
	assert_true(file_exists(path));
	fake_reset(&f);

	/* Home Assistant restarted: configs only; the announced set is left alone */
	discovery_topics_clear(&announced);
	assert_int_equal(discovery_sync(&lb, &announced, NULL, true, fake_publish, &f, NULL), 0);
	fake_reset(&f);
	assert_int_equal(discovery_sync(&ls, &announced, NULL, false, fake_publish, &f, &res), 0);
	assert_int_equal(res.deleted, 0);
	assert_int_equal(f.n, ls.n);
	assert_int_equal(announced.n, lb.n);
	fake_reset(&f);

	/* an unwritable state file is reported, the publishing still counts */
	assert_int_equal(discovery_sync(&ls, &announced, "/nonexistent-dir/x.state", true, fake_publish, &f, &res), 0);
	assert_int_equal(res.save_error, -ENOENT);
	assert_int_equal(announced.n, ls.n);
	fake_reset(&f);

	unlink(path);
	free(path);
	discovery_topics_clear(&announced);
	discovery_list_clear(&lb);
	discovery_list_clear(&ls);
	config_free(big);
	config_free(small);
}

static void test_state_path(void **state)
{
	struct sg_config *c = cfg_new("gw1", true);
	char *p;
	(void)state;

	errno = 5;
	assert_null(discovery_state_path(c, NULL));
	assert_int_equal(errno, 0);
	assert_null(discovery_state_path(c, ""));

	c->spool.path = xstrdup("/var/lib/x/spool.db");
	p = discovery_state_path(c, NULL);
	assert_string_equal(p, "/var/lib/x/discovery-gw1.state");
	free(p);
	free(c->spool.path);
	c->spool.path = xstrdup("spool.db");
	p = discovery_state_path(c, NULL);
	assert_string_equal(p, "./discovery-gw1.state");
	free(p);

	p = discovery_state_path(c, "/var/lib/sensorgate:/var/lib/other");
	assert_string_equal(p, "/var/lib/sensorgate/discovery-gw1.state");
	free(p);

	c->discovery.state_file = xstrdup("/etc/x.state");
	p = discovery_state_path(c, "/var/lib/sensorgate");
	assert_string_equal(p, "/etc/x.state");
	free(p);
	config_free(c);
}

static void test_ha_online(void **state)
{
	(void)state;
	assert_true(discovery_is_ha_online("online", 6, false));
	assert_false(discovery_is_ha_online("online", 6, true)); /* replayed retained: not a restart */
	assert_false(discovery_is_ha_online("offline", 7, false));
	assert_false(discovery_is_ha_online("onlinex", 7, false));
	assert_false(discovery_is_ha_online("", 0, false));
}

/* Through the real loader: keys state_file and device_class, the lines driver. */
static void test_from_config_file(void **state)
{
	char *conf = xasprintf("%s/t.conf", tmpdir), *tty = xasprintf("%s/tty", tmpdir);
	struct sg_config *c = NULL;
	struct sg_disc_list l = {0};
	char err[512];
	json_t *o;
	FILE *f;
	(void)state;

	f = fopen(tty, "w");
	assert_non_null(f);
	fclose(f);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f,
	        "gateway: { id = \"pi\"; base_topic = \"sg\"; };\n"
	        "discovery: { enabled = true; state_file = \"%s/d.state\"; };\n"
	        "devices = ( { name = \"ard\"; driver = \"lines\"; port = \"%s\";\n"
	        "  readings = ( { field = \"t\"; unit = \"°C\"; payload = \"json\"; },\n"
	        "               { field = \"w\"; unit = \"%%\"; device_class = \"moisture\"; } ); } );\n",
	        tmpdir, tty);
	fclose(f);
	assert_int_equal(config_load(conf, &c, err, sizeof(err)), 0);
	{
		char *want = xasprintf("%s/d.state", tmpdir);
		assert_string_equal(c->discovery.state_file, want);
		free(want);
	}
	build_ok(c, &l);
	for (size_t i = 0; i < l.n; i++)
		check_message(&l.v[i], "homeassistant");
	o = must_find(&l, "homeassistant/sensor/pi/ard_t/config");
	assert_string_equal(jstr(o, "device_class"), "temperature");
	assert_string_equal(jstr(o, "value_template"), "{{ value_json.value }}");
	assert_string_equal(jstr(o, "state_topic"), "sg/ard/t");
	assert_string_equal(jstr(json_array_get(jget(o, "availability"), 0), "topic"), "sg/gateway/pi/status");
	json_decref(o);
	o = must_find(&l, "homeassistant/sensor/pi/ard_w/config");
	assert_string_equal(jstr(o, "device_class"), "moisture");
	json_decref(o);
	discovery_list_clear(&l);
	config_free(c);

	/* an empty state_file is refused with its line */
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "discovery: {\n enabled = true;\n state_file = \"\"; };\n");
	fclose(f);
	assert_int_equal(config_load(conf, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":3:"));
	assert_non_null(strstr(err, "state_file"));
	unlink(conf);
	unlink(tty);
	free(conf);
	free(tty);
}

/*
 * Home Assistant's sensor device classes (homeassistant/components/sensor/const.py,
 * SensorDeviceClass, 2025). Home Assistant refuses a discovery config with any other.
 */
static const char *const ha_sensor_classes[] = {
	"absolute_humidity", "apparent_power", "aqi", "area", "atmospheric_pressure", "battery",
	"blood_glucose_concentration", "carbon_dioxide", "carbon_monoxide", "conductivity", "current", "data_rate",
	"data_size", "date", "distance", "duration", "energy", "energy_distance", "energy_storage", "enum",
	"frequency", "gas", "humidity", "illuminance", "irradiance", "moisture", "monetary", "nitrogen_dioxide",
	"nitrogen_monoxide", "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25", "power_factor", "power",
	"precipitation", "precipitation_intensity", "pressure", "reactive_energy", "reactive_power",
	"signal_strength", "sound_pressure", "speed", "sulphur_dioxide", "temperature", "timestamp",
	"volatile_organic_compounds", "volatile_organic_compounds_parts", "voltage", "volume", "volume_flow_rate",
	"volume_storage", "water", "weight", "wind_direction", "wind_speed", NULL,
};

/* What discovery can announce: our own inferences and every driver's declared field table. */
static void test_device_classes_are_home_assistants(void **state)
{
	static const char *const units[] = {"°C", "%", "hPa", "µg/m³", "ppm", "kWh", "W", "lx", "V", NULL};
	static const char *const fields[] = {"t", "h", "pm25", "pm10", "pm1", "co2", NULL};
	static const char *const state_classes[] = {"measurement", "total", "total_increasing", NULL};
	(void)state;

	for (size_t u = 0; units[u]; u++)
		for (size_t f = 0; fields[f]; f++) {
			const char *dc = ha_infer_device_class(fields[f], units[u]);
			if (dc && !listed(ha_sensor_classes, dc))
				fail_msg("inferred \"%s\" for (%s, %s): not a Home Assistant device class", dc, fields[f],
				         units[u]);
		}
	for (size_t i = 0; sg_drivers[i]; i++) {
		const struct sg_driver *drv = sg_drivers[i];
		if (!drv->fields)
			continue;
		for (const struct sg_field_info *fi = drv->fields; fi->name; fi++) {
			if (fi->device_class && !listed(ha_sensor_classes, fi->device_class))
				fail_msg("driver %s field %s: device_class \"%s\" is not a Home Assistant device class",
				         drv->name, fi->name, fi->device_class);
			if (fi->state_class && !listed(state_classes, fi->state_class))
				fail_msg("driver %s field %s: state_class \"%s\" is not a Home Assistant state class",
				         drv->name, fi->name, fi->state_class);
			/* Home Assistant: these classes take no state class (their states are not numbers). */
			if (fi->device_class && fi->state_class &&
			    (!strcmp(fi->device_class, "timestamp") || !strcmp(fi->device_class, "date") ||
			     !strcmp(fi->device_class, "enum")))
				fail_msg("driver %s field %s: %s with a state_class", drv->name, fi->name, fi->device_class);
		}
	}
}

/* SEEN for test_what_devices_produce: only the gas meter's first reading arrived. */
static bool seen_gas(void *ud, const struct sg_device_cfg *d, const char *field, const char *topic)
{
	int *calls = ud;

	(*calls)++;
	assert_string_equal(d->name, "meter");
	if (strcmp(field, "gas_delivered") == 0)
		assert_string_equal(topic, "homeassistant/sensor/pi/meter_gas_delivered/config");
	return strcmp(field, "gas_delivered") == 0;
}

/*
 * Issue #15's findings 1, 2, 3, 5 and 6 through a real config file: units as
 * Home Assistant spells them, no entity named like its device, ads1115
 * channels in volts, Modbus registers with their classes, and only the
 * fields a device as configured produces (a meter's optional lines once they
 * arrived).
 */
static void test_what_devices_produce(void **state)
{
	char *conf = xasprintf("%s/p.conf", tmpdir), *tty = xasprintf("%s/tty", tmpdir);
	struct sg_config *c = NULL;
	struct sg_disc_list l = {0};
	char err[512];
	json_t *o;
	int calls = 0;
	FILE *f;
	(void)state;

	for (int k = 0; k < 5; k++) { /* one port each: their line settings differ */
		char *p = xasprintf("%s%d", tty, k);
		f = fopen(p, "w");
		assert_non_null(f);
		fclose(f);
		free(p);
	}
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f,
	        "gateway: { id = \"pi\"; base_topic = \"sg\"; };\n"
	        "discovery: { enabled = true; };\n"
	        "devices = ( { name = \"co2\"; driver = \"mhz19\"; port = \"%s0\"; },\n"
	        "  { name = \"co2b\"; driver = \"mhz19\"; port = \"%s1\"; temperature = true; },\n"
	        "  { name = \"air\"; driver = \"pms5003\"; port = \"%s2\"; counts = true; },\n"
	        "  { name = \"meter\"; driver = \"dsmr\"; port = \"%s3\"; },\n"
	        "  { name = \"adc\"; driver = \"ads1115\"; bus = \"/dev/i2c-1\"; address = 0x48;\n"
	        "    channels = ( { name = \"battery\"; mux = \"0\"; } , { name = \"shunt\"; mux = \"2-3\"; } );\n"
	        "    readings = ( { field = \"battery\"; }, { field = \"shunt\"; scale = 10.0; unit = \"A\"; } ); },\n"
	        "  { name = \"sdm\"; driver = \"modbus\"; port = \"%s4\"; slave = 2; registers = (\n"
	        "    { name = \"import\"; address = 0x48; type = \"f32\"; function = \"input\"; unit = \"kWh\"; },\n"
	        "    { name = \"gas\"; address = 0x50; type = \"f32\"; unit = \"m3\"; device_class = \"gas\"; },\n"
	        "    { name = \"cost\"; address = 0x52; type = \"f32\"; unit = \"EUR\"; device_class = \"monetary\";\n"
	        "      state_class = \"total\"; } ); } );\n",
	        tty, tty, tty, tty, tty);
	fclose(f);
	if (config_load(conf, &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);

	assert_int_equal(discovery_build_seen(c, seen_gas, &calls, &l, err, sizeof(err)), 0);
	for (size_t i = 0; i < l.n; i++)
		check_message(&l.v[i], "homeassistant");
	/* finding 2: the entity of a device named like it is the device's main feature */
	o = must_find(&l, "homeassistant/sensor/pi/co2_co2/config");
	assert_non_null(jget(o, "name"));
	assert_null(jstr(o, "name"));
	json_decref(o);
	/* finding 6: what the options turn off is not announced, what they turn on is */
	assert_null(find(&l, "homeassistant/sensor/pi/co2_temperature/config"));
	o = must_find(&l, "homeassistant/sensor/pi/co2b_temperature/config");
	json_decref(o);
	assert_null(find(&l, "homeassistant/sensor/pi/air_pm2_5_cf1/config"));
	o = must_find(&l, "homeassistant/sensor/pi/air_particles_0_3um/config");
	json_decref(o);
	/* finding 6: a meter's optional lines once they arrived; finding 1: gas in m³ */
	assert_true(calls > 10);
	assert_null(find(&l, "homeassistant/sensor/pi/meter_water_delivered/config"));
	assert_null(find(&l, "homeassistant/sensor/pi/meter_average_demand/config"));
	o = must_find(&l, "homeassistant/sensor/pi/meter_gas_delivered/config");
	assert_string_equal(jstr(o, "unit_of_measurement"), "m³");
	assert_string_equal(jstr(o, "device_class"), "gas");
	assert_string_equal(jstr(o, "state_class"), "total_increasing");
	json_decref(o);
	o = must_find(&l, "homeassistant/sensor/pi/meter_energy_delivered_tariff1/config");
	assert_int_equal((int)json_number_value(jget(o, "suggested_display_precision")), 3);
	json_decref(o);
	/* finding 3: ads1115 channels are volts; a channel scaled to amperes is a current */
	o = must_find(&l, "homeassistant/sensor/pi/adc_battery/config");
	assert_string_equal(jstr(o, "unit_of_measurement"), "V");
	assert_string_equal(jstr(o, "device_class"), "voltage");
	assert_string_equal(jstr(o, "state_class"), "measurement");
	json_decref(o);
	o = must_find(&l, "homeassistant/sensor/pi/adc_shunt/config");
	assert_string_equal(jstr(o, "unit_of_measurement"), "A");
	assert_string_equal(jstr(o, "device_class"), "current");
	json_decref(o);
	/* finding 5: Modbus registers with their units and classes, energy-dashboard ready */
	o = must_find(&l, "homeassistant/sensor/pi/sdm_import/config");
	assert_string_equal(jstr(o, "device_class"), "energy");
	assert_string_equal(jstr(o, "state_class"), "total_increasing");
	json_decref(o);
	o = must_find(&l, "homeassistant/sensor/pi/sdm_gas/config");
	assert_string_equal(jstr(o, "unit_of_measurement"), "m³");
	assert_string_equal(jstr(o, "device_class"), "gas");
	assert_string_equal(jstr(o, "state_class"), "total_increasing");
	json_decref(o);
	o = must_find(&l, "homeassistant/sensor/pi/sdm_cost/config");
	assert_string_equal(jstr(o, "device_class"), "monetary");
	assert_string_equal(jstr(o, "state_class"), "total");
	json_decref(o);
	discovery_list_clear(&l);

	/* without anyone saying what arrived: none of the optional lines */
	assert_int_equal(discovery_build(c, &l, err, sizeof(err)), 0);
	assert_null(find(&l, "homeassistant/sensor/pi/meter_gas_delivered/config"));
	o = must_find(&l, "homeassistant/sensor/pi/meter_power_delivered/config");
	json_decref(o);
	discovery_list_clear(&l);
	config_free(c);

	/* a reading the options turn off is a config error that says how to turn it on */
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f,
	        "gateway: { id = \"pi\"; base_topic = \"sg\"; };\n"
	        "devices = ( { name = \"co2\"; driver = \"mhz19\"; port = \"%s0\";\n"
	        "  readings = ( { field = \"temperature\"; } ); } );\n",
	        tty);
	fclose(f);
	c = NULL;
	assert_int_not_equal(config_load(conf, &c, err, sizeof(err)), 0);
	if (!strstr(err, ":3: "))
		fail_msg("%s", err);
	assert_non_null(strstr(err, "field \"temperature\" is not read with these options (set temperature = true)"));
	unlink(conf);
	for (int k = 0; k < 5; k++) {
		char *p = xasprintf("%s%d", tty, k);
		unlink(p);
		free(p);
	}
	free(conf);
	free(tty);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_oracle_flags),
		cmocka_unit_test(test_every_message_valid),
		cmocka_unit_test(test_topics_and_ids),
		cmocka_unit_test(test_unique_id_stable),
		cmocka_unit_test(test_device_grouping),
		cmocka_unit_test(test_infer_table),
		cmocka_unit_test(test_device_classes_are_home_assistants),
		cmocka_unit_test(test_reading_classes),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_reading_options),
		cmocka_unit_test(test_actuators),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_link_health),
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_collision),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_entity_slug),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_state_file),
		cmocka_unit_test(test_sync),
		cmocka_unit_test(test_state_path),
		cmocka_unit_test(test_ha_online),
		cmocka_unit_test(test_from_config_file),
		cmocka_unit_test(test_what_devices_produce),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
