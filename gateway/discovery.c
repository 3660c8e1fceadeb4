/* SPDX-License-Identifier: MIT */
/*
 * discovery.c — build Home Assistant MQTT discovery messages from the config.
 *
 * Each entity is one JSON object written by a small append-only writer (a
 * growable buffer that remembers an allocation failure instead of failing
 * every call, and puts the commas itself). Strings are escaped for JSON and
 * made valid UTF-8 (a stray byte from a config file becomes U+FFFD), numbers
 * are written only when finite. Options used, all from the Home Assistant
 * MQTT documentation: name, unique_id, object_id and default_entity_id (the
 * former is what Home Assistant before 2025.10 reads, the latter what later
 * versions read; both together raise no warning), state_topic,
 * command_topic, value_template, unit_of_measurement, device_class,
 * state_class, suggested_display_precision, expire_after (health entities),
 * qos, payload_on,
 * payload_off, state_on, state_off, min, max, step, options, event_types
 * (event), automation_type, topic, type, subtype, payload (device triggers),
 * entity_category, availability (topic, payload_available,
 * payload_not_available), availability_mode, device (identifiers, name,
 * manufacturer, model, sw_version, via_device) and origin (name, sw_version).
 *
 * Everything returned is owned by the caller's list; nothing here logs.
 */
#include "discovery.h"
#include "ha_classes.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/json.h"

#ifndef SG_VERSION
#define SG_VERSION "unknown"
#endif

#define ORIGIN_NAME    "sensorgate"
#define ONLINE         "online"   /* Home Assistant's own birth and will (its defaults) */
#define OFFLINE        "offline"
#define UNIQUE_PREFIX  "sensorgate_"

/* How many stats intervals without a stats message make the health entities stale. */
#define STATS_STALE_INTERVALS 3

/* --- a growable string --------------------------------------------------- */

struct sb {
	char *s;
	size_t len, cap;
	bool oom;
};

/* Room for N more bytes and the NUL: false (and b->oom) when there is none. */
static bool sb_reserve(struct sb *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *s;

		while (cap < b->len + n + 1)
			cap *= 2;
		s = realloc(b->s, cap);
		if (!s) {
			b->oom = true;
			return false;
		}
		b->s = s;
		b->cap = cap;
	}
	return true;
}

static void sb_putn(struct sb *b, const char *p, size_t n)
{
	if (!sb_reserve(b, n))
		return;
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

static void sb_putc(struct sb *b, char c)
{
	sb_putn(b, &c, 1);
}

__attribute__((format(printf, 2, 3)))
static void sb_printf(struct sb *b, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		b->oom = true; /* only used for numbers: cannot happen */
	else
		sb_putn(b, buf, (size_t)n);
}

/* Hand the string over (caller frees); NULL after an allocation failure. */
static char *sb_take(struct sb *b)
{
	char *s = b->oom ? NULL : b->s;

	if (b->oom)
		free(b->s);
	else if (!s)
		s = strdup("");
	*b = (struct sb){0};
	return s;
}

/* --- JSON writing ---------------------------------------------------------- */

/* A comma unless this is the first item of an object or array, or a value after its key. */
static void js_sep(struct sb *b)
{
	if (b->len && !strchr("{[:", b->s[b->len - 1]))
		sb_putc(b, ',');
}

static void js_string(struct sb *b, const char *s)
{
	size_t len = strlen(s), room = 6 * len + 1; /* "\ufffd": the most one byte becomes */

	js_sep(b);
	sb_putc(b, '"');
	if (sb_reserve(b, room))
		b->len += sg_json_escape(s, len, b->s + b->len, room, NULL);
	sb_putc(b, '"');
}

static void js_open(struct sb *b, char c)
{
	js_sep(b);
	sb_putc(b, c);
}

static void js_close(struct sb *b, char c)
{
	sb_putc(b, c);
}

static void js_key(struct sb *b, const char *k)
{
	js_string(b, k);
	sb_putc(b, ':');
}

static void js_kstr(struct sb *b, const char *k, const char *v)
{
	if (!v)
		return;
	js_key(b, k);
	js_string(b, v);
}

static void js_knum(struct sb *b, const char *k, double v)
{
	if (!isfinite(v))
		return;
	js_key(b, k);
	if (v == floor(v) && fabs(v) < 1e15)
		sb_printf(b, "%.0f", v);
	else
		sb_printf(b, "%.15g", v);
}

static void js_kint(struct sb *b, const char *k, long long v)
{
	js_key(b, k);
	sb_printf(b, "%lld", v);
}

/* --- names ----------------------------------------------------------------- */

/* A discovery topic level: [A-Za-z0-9_-] kept, anything else becomes '_'. */
static void put_topic_level(struct sb *b, const char *s)
{
	for (; *s; s++) {
		char c = *s;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		          c == '-';
		sb_putc(b, ok ? c : '_');
	}
}

/*
 * An entity id slug as Home Assistant accepts it: lower case letters, digits
 * and single underscores, none leading or trailing.
 */
static char *entity_slug(const char *s)
{
	struct sb b = {0};
	bool pending = false;

	for (; *s; s++) {
		char c = *s;

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			if (pending && b.len)
				sb_putc(&b, '_');
			pending = false;
			sb_putc(&b, c);
		} else {
			pending = true;
		}
	}
	if (!b.oom && b.len == 0)
		sb_puts(&b, "sensorgate");
	return sb_take(&b);
}

static const char *last_level(const char *topic)
{
	const char *slash = strrchr(topic, '/');
	return slash ? slash + 1 : topic;
}

/* --- topics ------------------------------------------------------------------ */

char *discovery_ha_status_topic(const struct sg_config *cfg)
{
	char *t;

	if (cfg->discovery.ha_status_topic)
		return strdup(cfg->discovery.ha_status_topic);
	return asprintf(&t, "%s/status", cfg->discovery.prefix ? cfg->discovery.prefix : "homeassistant") < 0 ? NULL : t;
}

bool discovery_is_ha_online(const void *payload, size_t len, bool retained)
{
	return !retained && len == strlen(ONLINE) && memcmp(payload, ONLINE, len) == 0;
}

bool discovery_is_ha_offline(const void *payload, size_t len)
{
	return len == strlen(OFFLINE) && memcmp(payload, OFFLINE, len) == 0;
}

char *discovery_device_status_topic(const struct sg_config *cfg, const struct sg_device_cfg *dev)
{
	char *t;
	return asprintf(&t, "%s/%s/status", cfg->base_topic, dev->name) < 0 ? NULL : t;
}

char *discovery_stats_topic(const struct sg_config *cfg)
{
	char *t;
	return asprintf(&t, "%s/gateway/%s/stats", cfg->base_topic, cfg->id) < 0 ? NULL : t;
}

/* --- lists ------------------------------------------------------------------- */

void discovery_list_clear(struct sg_disc_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].topic);
		free(l->v[i].payload);
		free(l->v[i].unique_id);
	}
	free(l->v);
	*l = (struct sg_disc_list){0};
}

void discovery_topics_clear(struct sg_disc_topics *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i]);
	free(t->v);
	*t = (struct sg_disc_topics){0};
}

/* Append; takes TOPIC, PAYLOAD and UNIQUE_ID (freed on failure). 0 or -ENOMEM. */
static int list_push(struct sg_disc_list *l, char *topic, char *payload, char *unique_id, const char *component)
{
	if (!topic || !payload) {
		free(topic);
		free(payload);
		free(unique_id);
		return -ENOMEM;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct sg_disc_msg *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			free(topic);
			free(payload);
			free(unique_id);
			return -ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct sg_disc_msg){
		.topic = topic, .payload = payload, .unique_id = unique_id, .component = component};
	return 0;
}

/* --- entity payloads ----------------------------------------------------------- */

struct builder {
	const struct sg_config *cfg;
	struct sg_disc_list *out;
	char *gateway_ident;   /* "sensorgate_<id>": the gateway's device identifier */
	char *stats_topic;     /* NULL when the stats topic is off */
	sg_disc_seen_fn seen;  /* the `when_seen` fields to announce; NULL: none */
	void *seen_ud;
};

/* "sensorgate_<gateway id>_<object>"; NULL on ENOMEM. */
static char *unique_id(const struct builder *bd, const char *object)
{
	char *u;
	return asprintf(&u, UNIQUE_PREFIX "%s_%s", bd->cfg->id, object) < 0 ? NULL : u;
}

/*
 * The name of a device's entity: the last level of its topic, or NULL when that
 * is the device's own name (a "co2" sensor named "co2"). Home Assistant warns
 * about an entity name equal to its device's and drops it; a JSON null name is
 * its way of saying "this entity is the device's main feature": it shows as
 * the device name alone.
 */
static const char *entity_name(const struct sg_device_cfg *d, const char *topic)
{
	const char *name = last_level(topic);
	return strcasecmp(name, d->name) == 0 ? NULL : name;
}

/* Start an entity: '{', name (NAME NULL: a JSON null) and the three ids. OBJECT is already a valid topic level. */
static void entity_begin(struct builder *bd, struct sb *b, const char *component, const char *object,
                         const char *name)
{
	char *uid = unique_id(bd, object);
	char *slug = uid ? entity_slug(uid + strlen(UNIQUE_PREFIX)) : NULL;
	char *entity_id = NULL;

	if (!slug || asprintf(&entity_id, "%s.%s", component, slug) < 0) {
		entity_id = NULL;
		b->oom = true;
	} else {
		js_open(b, '{');
		js_key(b, "name");
		if (name)
			js_string(b, name);
		else
			sb_puts(b, "null");
		js_kstr(b, "unique_id", uid);
		js_kstr(b, "object_id", slug);
		js_kstr(b, "default_entity_id", entity_id);
	}
	free(uid);
	free(slug);
	free(entity_id);
}

/* Every availability topic of the gateway (its own, a device's) speaks the configured words. */
static void availability_item(struct builder *bd, struct sb *b, const char *topic)
{
	js_open(b, '{');
	js_kstr(b, "topic", topic);
	js_kstr(b, "payload_available", config_birth_payload(&bd->cfg->mqtt));
	js_kstr(b, "payload_not_available", config_will_payload(&bd->cfg->mqtt));
	js_close(b, '}');
}

/* Available while every topic says "online" (the gateway's first, then DEVICE_TOPIC if any). */
static void availability(struct builder *bd, struct sb *b, const char *device_topic)
{
	js_key(b, "availability");
	js_open(b, '[');
	availability_item(bd, b, bd->cfg->status_topic);
	if (device_topic)
		availability_item(bd, b, device_topic);
	js_close(b, ']');
	if (device_topic)
		js_kstr(b, "availability_mode", "all");
}

static void gateway_device(struct builder *bd, struct sb *b)
{
	char *name;

	if (asprintf(&name, "sensorgate %s", bd->cfg->id) < 0) {
		b->oom = true;
		return;
	}
	js_key(b, "device");
	js_open(b, '{');
	js_key(b, "identifiers");
	js_open(b, '[');
	js_string(b, bd->gateway_ident);
	js_close(b, ']');
	js_kstr(b, "name", name);
	js_kstr(b, "manufacturer", "sensorgate");
	js_kstr(b, "model", "sensorgate gateway");
	js_kstr(b, "sw_version", SG_VERSION);
	js_close(b, '}');
	free(name);
}

static void sensor_device(struct builder *bd, struct sb *b, const struct sg_device_cfg *d)
{
	char *ident;

	if (asprintf(&ident, "%s_%s", bd->gateway_ident, d->name) < 0) {
		b->oom = true;
		return;
	}
	js_key(b, "device");
	js_open(b, '{');
	js_key(b, "identifiers");
	js_open(b, '[');
	js_string(b, ident);
	js_close(b, ']');
	js_kstr(b, "name", d->name);
	js_kstr(b, "model", d->driver ? d->driver->name : NULL);
	js_kstr(b, "via_device", bd->gateway_ident);
	js_close(b, '}');
	free(ident);
}

static void origin(struct sb *b)
{
	js_key(b, "origin");
	js_open(b, '{');
	js_kstr(b, "name", ORIGIN_NAME);
	js_kstr(b, "sw_version", SG_VERSION);
	js_close(b, '}');
}

/* <prefix>/<component>/<gateway id>/<object>/config into TOPIC. OBJECT is already a valid topic level. */
static void config_topic(const struct builder *bd, struct sb *topic, const char *component, const char *object)
{
	sb_puts(topic, bd->cfg->discovery.prefix);
	sb_putc(topic, '/');
	sb_puts(topic, component);
	sb_putc(topic, '/');
	put_topic_level(topic, bd->cfg->id);
	sb_putc(topic, '/');
	sb_puts(topic, object);
	sb_puts(topic, "/config");
}

/* Finish an entity and add it to the list under <prefix>/<component>/<id>/<object>/config. */
static int entity_end(struct builder *bd, struct sb *b, const char *component, const char *object)
{
	struct sb topic = {0};
	char *uid = unique_id(bd, object);

	if (!uid) {
		free(b->s);
		*b = (struct sb){0};
		return -ENOMEM;
	}
	origin(b);
	js_close(b, '}');
	config_topic(bd, &topic, component, object);
	return list_push(bd->out, sb_take(&topic), sb_take(b), uid, component);
}

/* "<a>_<b>" as a topic level. NULL on ENOMEM. */
static char *object_id2(const char *a, const char *b)
{
	struct sb s = {0};

	put_topic_level(&s, a);
	if (b) {
		sb_putc(&s, '_');
		put_topic_level(&s, b);
	}
	return sb_take(&s);
}

static const struct sg_field_info *driver_field(const struct sg_driver *drv, const char *field)
{
	if (!drv || !drv->fields)
		return NULL;
	for (const struct sg_field_info *f = drv->fields; f->name; f++)
		if (strcmp(f->name, field) == 0)
			return f;
	return NULL;
}

/* FIELD as the driver declares it, or as the device's options name it (a Modbus register table; TMP holds it). */
static const struct sg_field_info *device_field(const struct sg_device_cfg *d, const char *field,
                                                struct sg_field_info *tmp, char *name, size_t len)
{
	const struct sg_field_info *fi = driver_field(d->driver, field);

	for (size_t i = 0; !fi && d->driver && d->driver->option_field &&
	                   d->driver->option_field(d->opts, i, name, len, tmp); i++)
		if (strcmp(name, field) == 0)
			fi = tmp;
	return fi;
}

/* Home Assistant's device trigger type for one of our events; others show as they are. */
static const char *trigger_type(const char *event)
{
	if (strcmp(event, "single") == 0)
		return "button_short_press";
	if (strcmp(event, "double") == 0)
		return "button_double_press";
	if (strcmp(event, "long") == 0)
		return "button_long_press";
	return event;
}

/*
 * A momentary event (a button's presses) on TOPIC: an `event` entity whose
 * event_types are FI's, and one device trigger (`device_automation`, no
 * entity, so no name, unique_id or availability) per event type, as FI asks.
 * The payload is the event's name; the templates pick it out of either
 * payload format.
 */
static int add_event(struct builder *bd, const struct sg_device_cfg *d, const char *field, const char *topic,
                     const struct sg_reading_cfg *rc, const struct sg_field_info *fi)
{
	bool json = rc->payload == SG_PAYLOAD_JSON;
	char *object = object_id2(d->name, field);
	char *dev_status = d->expire_after_s > 0 ? discovery_device_status_topic(bd->cfg, d) : NULL;
	struct sb b = {0};
	int r = 0;

	if (!object || (d->expire_after_s > 0 && !dev_status)) {
		r = -ENOMEM;
		goto out;
	}
	if (!fi->no_event_entity) {
		entity_begin(bd, &b, "event", object, entity_name(d, topic));
		js_kstr(&b, "state_topic", topic);
		js_kstr(&b, "value_template", json ? "{\"event_type\":\"{{ value_json.value }}\"}"
		                                   : "{\"event_type\":\"{{ value }}\"}");
		js_key(&b, "event_types");
		js_open(&b, '[');
		for (const char *const *t = fi->event_types; *t; t++)
			js_string(&b, *t);
		js_close(&b, ']');
		js_kstr(&b, "device_class", rc->device_class ? rc->device_class : fi->device_class);
		if (rc->qos > 0)
			js_kint(&b, "qos", rc->qos);
		availability(bd, &b, dev_status);
		sensor_device(bd, &b, d);
		if ((r = entity_end(bd, &b, "event", object)) < 0)
			goto out;
	}
	for (const char *const *t = fi->event_types; !fi->no_triggers && *t; t++) {
		char *trigger = object_id2(object, *t);

		if (!trigger) {
			r = -ENOMEM;
			goto out;
		}
		js_open(&b, '{');
		js_kstr(&b, "automation_type", "trigger");
		js_kstr(&b, "topic", topic);
		js_kstr(&b, "type", trigger_type(*t));
		js_kstr(&b, "subtype", "button_1");
		js_kstr(&b, "payload", *t);
		if (json)
			js_kstr(&b, "value_template", "{{ value_json.value }}");
		if (rc->qos > 0)
			js_kint(&b, "qos", rc->qos);
		sensor_device(bd, &b, d);
		r = entity_end(bd, &b, "device_automation", trigger);
		free(trigger);
		if (r < 0)
			goto out;
	}
out:
	free(object);
	free(dev_status);
	return r;
}

/* How a reading is announced: see classify(). */
struct classified {
	const char *unit;         /* as Home Assistant spells it, NULL: none */
	const char *device_class;
	const char *state_class;
	int precision;            /* suggested_display_precision, -1: none */
};

/*
 * Unit, device class, state class and display precision of reading FIELD
 * (FI: what its driver declares, or NULL; RC: its configuration):
 * - the unit configured, else the driver's, spelled as Home Assistant
 *   spells it ("m3" -> "m³": ha_unit_symbol());
 * - the device class configured, else the driver's while the unit is the
 *   driver's (a channel in volts scaled to amperes is no longer a voltage),
 *   else inferred from the unit and the field's name;
 * - the state class configured, else the driver's where its class holds,
 *   else the class's usual one (total_increasing for meters, measurement for
 *   most, none for timestamps); never one Home Assistant refuses for the class;
 * - the decimals of `round`, else those usual for the unit.
 */
static void classify(const char *field, const struct sg_field_info *fi, const struct sg_reading_cfg *rc,
                     struct classified *out)
{
	const char *driver_unit = fi && fi->unit ? ha_unit_symbol(fi->unit) : NULL;
	const char *unit = rc->unit ? ha_unit_symbol(rc->unit) : driver_unit;
	bool drivers = fi && (!rc->unit || (driver_unit && strcmp(driver_unit, unit) == 0));
	const char *dclass, *sclass;

	if (unit && !*unit)
		unit = NULL;
	if (rc->device_class)
		dclass = rc->device_class;
	else if (drivers && fi->device_class)
		dclass = fi->device_class;
	else
		dclass = ha_infer_device_class(field, unit);
	if (rc->state_class)
		sclass = rc->state_class;
	else if (drivers && fi->state_class && (!fi->device_class || dclass == fi->device_class))
		sclass = fi->state_class;
	else
		sclass = ha_default_state_class(dclass, unit);
	if (!ha_state_class_allowed(dclass, sclass))
		sclass = ha_default_state_class(dclass, unit);
	*out = (struct classified){.unit = unit, .device_class = dclass, .state_class = sclass,
	                           .precision = rc->round >= 0 ? rc->round : ha_display_precision(unit)};
}

/*
 * One sensor for field FIELD of device D, published on TOPIC with settings RC
 * (a readings entry, or the device defaults for a driver-declared field); a
 * binary_sensor (payloads 1 and 0) for a field declared binary.
 */
static int add_reading(struct builder *bd, const struct sg_device_cfg *d, const char *field, const char *topic,
                       const struct sg_reading_cfg *rc)
{
	struct sg_field_info tmp;
	char tmp_name[128];
	const struct sg_field_info *fi = device_field(d, field, &tmp, tmp_name, sizeof(tmp_name));
	const char *component = fi && fi->binary ? "binary_sensor" : "sensor";
	struct classified cl;
	char *object, *dev_status;
	struct sb b = {0};
	int r;

	if (fi && fi->event_types)
		return add_event(bd, d, field, topic, rc, fi);
	classify(field, fi, rc, &cl);
	/*
	 * The device's own status topic is published (retained) only for devices
	 * with expire_after: "offline" after that long without any reading,
	 * "online" with the next one. Home Assistant's own expire_after is not
	 * used: it counts state messages, which deadband and throttle hold back
	 * from a device that is alive and well.
	 */
	object = object_id2(d->name, field);
	dev_status = d->expire_after_s > 0 ? discovery_device_status_topic(bd->cfg, d) : NULL;
	if (!object || (d->expire_after_s > 0 && !dev_status)) {
		free(object);
		free(dev_status);
		return -ENOMEM;
	}
	entity_begin(bd, &b, component, object, entity_name(d, topic));
	js_kstr(&b, "state_topic", topic);
	if (rc->payload == SG_PAYLOAD_JSON)
		js_kstr(&b, "value_template", "{{ value_json.value }}");
	if (fi && fi->binary) { /* a bit is published as the number 1 or 0; a contact as its own payloads */
		js_kstr(&b, "payload_on", fi->payload_on ? fi->payload_on : "1");
		js_kstr(&b, "payload_off", fi->payload_off ? fi->payload_off : "0");
		js_kstr(&b, "device_class", rc->device_class ? rc->device_class : fi->device_class);
	} else {
		js_kstr(&b, "unit_of_measurement", cl.unit);
		js_kstr(&b, "device_class", cl.device_class);
		js_kstr(&b, "state_class", cl.state_class);
		if (cl.precision >= 0)
			js_kint(&b, "suggested_display_precision", cl.precision);
	}
	if (rc->qos > 0)
		js_kint(&b, "qos", rc->qos);
	availability(bd, &b, dev_status);
	sensor_device(bd, &b, d);
	r = entity_end(bd, &b, component, object);
	free(object);
	free(dev_status);
	return r;
}

/* A `when_seen` field of D: announced when the owner says it came (or was announced before). */
static bool when_seen(struct builder *bd, const struct sg_device_cfg *d, const char *field)
{
	struct sb topic = {0};
	char *object;
	bool yes;

	if (!bd->seen)
		return false;
	object = object_id2(d->name, field);
	if (object) /* the topic entity_end() gives it (the component is "sensor": binary fields are not optional) */
		config_topic(bd, &topic, "sensor", object);
	yes = bd->seen(bd->seen_ud, d, field, topic.s && !topic.oom ? topic.s : "");
	free(object);
	free(topic.s);
	return yes;
}

/* One field of a JSON health payload (the gateway's stats, a device's link quality) as a diagnostic entity. */
struct health {
	const char *component;
	const char *object;
	const char *name;
	const char *value_template;
	const char *unit;
	const char *device_class;
	const char *state_class;
	int precision;             /* -1 = unset */
};

/*
 * Link quality of a device (health.h), diagnostic entities of that device
 * from its health topic <base>/<device>/health. A quality that is not known
 * (no frame in the window) is JSON null, which the template renders as
 * "None": Home Assistant's MQTT sensor takes that payload as "unknown".
 */
static const struct health link_health[] = {
	{"sensor", "link_quality", "Link quality", "{{ value_json.quality }}", "%", NULL, "measurement", 1},
	{"sensor", "link_errors", "Link errors", "{{ value_json.recent.failed_per_min }}", "errors/min", NULL,
	 "measurement", 2},
	{"sensor", "link_reconnects", "Link reconnects", "{{ value_json.since_start.counts.reconnects }}", NULL, NULL,
	 "total_increasing", 0},
};

static int add_link_health(struct builder *bd, const struct sg_device_cfg *d)
{
	char *topic;
	int r = 0;

	if (asprintf(&topic, "%s/%s/health", bd->cfg->base_topic, d->name) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(link_health) / sizeof(link_health[0]) && r == 0; i++) {
		const struct health *h = &link_health[i];
		char *object = object_id2(d->name, h->object);
		struct sb b = {0};

		if (!object) {
			r = -ENOMEM;
			break;
		}
		entity_begin(bd, &b, h->component, object, h->name);
		js_kstr(&b, "state_topic", topic);
		js_kstr(&b, "value_template", h->value_template);
		js_kstr(&b, "unit_of_measurement", h->unit);
		js_kstr(&b, "state_class", h->state_class);
		if (h->precision >= 0)
			js_kint(&b, "suggested_display_precision", h->precision);
		js_kstr(&b, "entity_category", "diagnostic");
		availability(bd, &b, NULL);
		sensor_device(bd, &b, d);
		r = entity_end(bd, &b, h->component, object);
		free(object);
	}
	free(topic);
	return r;
}

static int add_device(struct builder *bd, const struct sg_device_cfg *d)
{
	int r;

	for (size_t j = 0; j < d->n_readings; j++) {
		const struct sg_reading_cfg *rc = &d->readings[j];

		if ((r = add_reading(bd, d, rc->field, rc->topic, rc)) < 0)
			return r;
	}
	/*
	 * No readings list: every field the driver declares, on <base>/<device>/<field>;
	 * not those its options turn off, nor one not every device sends until it came.
	 */
	if (d->all_fields && d->driver && d->driver->fields) {
		for (const struct sg_field_info *f = d->driver->fields; f->name; f++) {
			char *topic;

			if (d->driver->field_off && d->driver->field_off(d->opts, f->name))
				continue;
			if (f->when_seen && !when_seen(bd, d, f->name))
				continue;
			if (asprintf(&topic, "%s/%s/%s", bd->cfg->base_topic, d->name, f->name) < 0)
				return -ENOMEM;
			r = add_reading(bd, d, f->name, topic, &d->defaults);
			free(topic);
			if (r < 0)
				return r;
		}
	}
	/* No readings list, fields named by the options (a register table): each of them likewise. */
	if (d->all_fields && d->driver && !d->driver->fields && d->driver->option_field) {
		struct sg_field_info fi;
		char name[128];

		for (size_t i = 0; d->driver->option_field(d->opts, i, name, sizeof(name), &fi); i++) {
			char *topic;

			if (asprintf(&topic, "%s/%s/%s", bd->cfg->base_topic, d->name, name) < 0)
				return -ENOMEM;
			r = add_reading(bd, d, name, topic, &d->defaults);
			free(topic);
			if (r < 0)
				return r;
		}
	}
	if (bd->cfg->health.publish)
		return add_link_health(bd, d);
	return 0;
}

static int add_actuator(struct builder *bd, const struct sg_actuator_cfg *a)
{
	static const char *const components[] = {
		[SG_ACT_SWITCH] = "switch",
		[SG_ACT_NUMBER] = "number",
		[SG_ACT_ENUM] = "select",
	};
	const char *component = (unsigned)a->kind < 3 ? components[a->kind] : "switch";
	char *object = object_id2(a->name, NULL);
	struct sb b = {0};
	int r;

	if (!object)
		return -ENOMEM;
	entity_begin(bd, &b, component, object, a->name);
	js_kstr(&b, "state_topic", a->topic);
	js_kstr(&b, "command_topic", a->command_topic);
	switch (a->kind) {
	case SG_ACT_NUMBER:
		js_knum(&b, "min", a->min);
		js_knum(&b, "max", a->max);
		js_knum(&b, "step", a->step);
		break;
	case SG_ACT_ENUM:
		js_key(&b, "options");
		js_open(&b, '[');
		for (size_t i = 0; i < a->n_options; i++)
			js_string(&b, a->options[i]);
		js_close(&b, ']');
		break;
	default:
		js_kstr(&b, "payload_on", a->payload_on);
		js_kstr(&b, "payload_off", a->payload_off);
		js_kstr(&b, "state_on", a->payload_on);
		js_kstr(&b, "state_off", a->payload_off);
		break;
	}
	if (a->qos > 0)
		js_kint(&b, "qos", a->qos);
	availability(bd, &b, NULL);
	gateway_device(bd, &b);
	r = entity_end(bd, &b, component, object);
	free(object);
	return r;
}


static const struct health health_stats[] = {
	{"binary_sensor", "gateway_connected", "Broker connected",
	 "{{ 'ON' if value_json.connected else 'OFF' }}", NULL, "connectivity", NULL, -1},
	{"sensor", "gateway_readings_per_s", "Readings per second", "{{ value_json.readings_per_s }}", "readings/s",
	 NULL, "measurement", 1},
	{"sensor", "gateway_spool_depth", "Spool depth", "{{ value_json.spool_depth }}", "messages", NULL,
	 "measurement", 0},
	{"sensor", "gateway_dropped", "Dropped messages", "{{ value_json.dropped }}", "messages", NULL,
	 "total_increasing", 0},
};

static int add_health(struct builder *bd)
{
	struct sb b = {0};
	int r;

	/* Connectivity from the status topic itself: "offline" shows as disconnected, not unavailable. */
	entity_begin(bd, &b, "binary_sensor", "gateway_status", "Status");
	js_kstr(&b, "state_topic", bd->cfg->status_topic);
	js_kstr(&b, "payload_on", config_birth_payload(&bd->cfg->mqtt));
	js_kstr(&b, "payload_off", config_will_payload(&bd->cfg->mqtt));
	js_kstr(&b, "device_class", "connectivity");
	js_kstr(&b, "entity_category", "diagnostic");
	gateway_device(bd, &b);
	if ((r = entity_end(bd, &b, "binary_sensor", "gateway_status")) < 0)
		return r;

	if (!bd->stats_topic)
		return 0;
	for (size_t i = 0; i < sizeof(health_stats) / sizeof(health_stats[0]); i++) {
		const struct health *h = &health_stats[i];

		entity_begin(bd, &b, h->component, h->object, h->name);
		js_kstr(&b, "state_topic", bd->stats_topic);
		js_kstr(&b, "value_template", h->value_template);
		js_kstr(&b, "unit_of_measurement", h->unit);
		js_kstr(&b, "device_class", h->device_class);
		js_kstr(&b, "state_class", h->state_class);
		if (h->precision >= 0)
			js_kint(&b, "suggested_display_precision", h->precision);
		js_kint(&b, "expire_after", (long long)ceil(bd->cfg->spool.stats_interval_s * STATS_STALE_INTERVALS));
		js_kstr(&b, "entity_category", "diagnostic");
		availability(bd, &b, NULL);
		gateway_device(bd, &b);
		if ((r = entity_end(bd, &b, h->component, h->object)) < 0)
			return r;
	}
	return 0;
}

/* Two entities on one discovery topic, or one unique_id twice in a component: -EEXIST. */
static int check_unique(const struct sg_disc_list *l, char *err, size_t errlen)
{
	for (size_t i = 0; i < l->n; i++) {
		for (size_t j = i + 1; j < l->n; j++) {
			bool same_topic = strcmp(l->v[i].topic, l->v[j].topic) == 0;
			bool same_id = strcmp(l->v[i].component, l->v[j].component) == 0 &&
			               strcmp(l->v[i].unique_id, l->v[j].unique_id) == 0;

			if (!same_topic && !same_id)
				continue;
			if (err && errlen)
				snprintf(err, errlen,
				         "discovery: two entities would share %s \"%s\" (rename a device, field or actuator: "
				         "names are joined with '_' and other characters than [A-Za-z0-9_-] become '_')",
				         same_topic ? "the topic" : "the unique_id",
				         same_topic ? l->v[i].topic : l->v[i].unique_id);
			return -EEXIST;
		}
	}
	return 0;
}

int discovery_build(const struct sg_config *cfg, struct sg_disc_list *ret, char *err, size_t errlen)
{
	return discovery_build_seen(cfg, NULL, NULL, ret, err, errlen);
}

int discovery_build_seen(const struct sg_config *cfg, sg_disc_seen_fn seen, void *seen_ud, struct sg_disc_list *ret,
                         char *err, size_t errlen)
{
	struct builder bd = {.cfg = cfg, .out = ret, .seen = seen, .seen_ud = seen_ud};
	int r = 0;

	if (err && errlen)
		err[0] = '\0';
	*ret = (struct sg_disc_list){0};
	if (!cfg->discovery.enabled)
		return 0;
	if (asprintf(&bd.gateway_ident, UNIQUE_PREFIX "%s", cfg->id) < 0) {
		bd.gateway_ident = NULL;
		r = -ENOMEM;
		goto out;
	}
	if (cfg->spool.stats_interval_s > 0 && !(bd.stats_topic = discovery_stats_topic(cfg))) {
		r = -ENOMEM;
		goto out;
	}
	/* Gateway entities first: the sensor devices name it as their via_device. */
	if ((r = add_health(&bd)) < 0)
		goto out;
	for (size_t i = 0; i < cfg->n_actuators; i++)
		if ((r = add_actuator(&bd, &cfg->actuators[i])) < 0)
			goto out;
	for (size_t i = 0; i < cfg->n_devices; i++)
		if ((r = add_device(&bd, &cfg->devices[i])) < 0)
			goto out;
	r = check_unique(ret, err, errlen);
out:
	if (r == -ENOMEM && err && errlen)
		snprintf(err, errlen, "discovery: out of memory");
	if (r < 0)
		discovery_list_clear(ret);
	free(bd.gateway_ident);
	free(bd.stats_topic);
	return r;
}

/* --- removals ------------------------------------------------------------------ */

static bool list_has_topic(const struct sg_disc_list *l, const char *topic)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].topic, topic) == 0)
			return true;
	return false;
}

int discovery_removals(const struct sg_disc_topics *old, const struct sg_disc_list *now, struct sg_disc_list *ret)
{
	int r;

	*ret = (struct sg_disc_list){0};
	for (size_t i = 0; i < old->n; i++) {
		if (list_has_topic(now, old->v[i]) || list_has_topic(ret, old->v[i]))
			continue;
		r = list_push(ret, strdup(old->v[i]), strdup(""), NULL, NULL);
		if (r < 0) {
			discovery_list_clear(ret);
			return r;
		}
	}
	return 0;
}

int discovery_diff(const struct sg_config *old_cfg, const struct sg_config *new_cfg, struct sg_disc_list *ret)
{
	struct sg_disc_list before = {0}, after = {0};
	struct sg_disc_topics t = {0};
	int r;

	*ret = (struct sg_disc_list){0};
	if ((r = discovery_build(old_cfg, &before, NULL, 0)) < 0 || (r = discovery_build(new_cfg, &after, NULL, 0)) < 0)
		goto out;
	t.v = calloc(before.n ? before.n : 1, sizeof(*t.v));
	if (!t.v) {
		r = -ENOMEM;
		goto out;
	}
	/* Borrow the topics: t is released with free(t.v) only. */
	for (size_t i = 0; i < before.n; i++)
		t.v[t.n++] = before.v[i].topic;
	r = discovery_removals(&t, &after, ret);
out:
	free(t.v);
	discovery_list_clear(&before);
	discovery_list_clear(&after);
	return r;
}
