/* SPDX-License-Identifier: MIT */
/*
 * config.c — read the libconfig file, validate every key, resolve topics.
 *
 * The file is parsed by libconfig, then walked group by group. Each group has
 * a NULL-terminated list of allowed keys (anything else is an error), and
 * every value goes through one of the typed getters below, which write the
 * "FILE:LINE: what is wrong" message themselves. The first error stops the
 * load.
 *
 * Ownership: the struct sg_config returned by config_load() owns copies of
 * every string (the libconfig tree is destroyed before returning), plus the
 * per-device driver options made by driver->parse_options(), released with
 * driver->free_options() in config_free(), and likewise each actuator's
 * options from its actuator driver (whose keys only that driver knows:
 * drivers/actuator.h). On any error the half-built config
 * is freed by the same config_free(), which copes with missing pieces.
 *
 * Nothing here logs; config_load() reports through its err buffer.
 */
#include "config.h"

#include "cloud.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mosquitto.h>

#include "../common/utf8.h"

/* Longest full topic we accept; brokers take 64 KiB but nobody means that. */
#define CONFIG_TOPIC_MAX 256

#define DEFAULT_BASE_TOPIC   "sensorgate"
#define DEFAULT_BROKER       "mqtt://localhost:1883"
#define DEFAULT_I2C_BUS      "/dev/i2c-1"
#define DEFAULT_BAUD         9600
#define DEFAULT_INTERVAL_S   10.0
#define DEFAULT_DISCOVERY    "homeassistant"
#define STATUS_PAYLOAD_MAX   64   /* bytes of a status word: a word, not a document */

/* 7-bit I2C addresses outside the reserved ranges (I2C spec UM10204 §3.1.12). */
#define I2C_ADDR_MIN 0x03
#define I2C_ADDR_MAX 0x77

/* MQTT 3.1 (IBM/Eurotech, 2010) §3.1, CONNECT payload: "Client Identifier ... between 1 and 23 characters" */
#define MQTT31_CLIENT_ID_MAX 23

/* --- allowed keys, per group -------------------------------------------- */

static const char *const top_keys[] = {
	"gateway", "mqtt", "spool", "time", "discovery", "commands", "metrics", "health", "devices", "actuators",
	NULL,
};
static const char *const gateway_keys[] = {
	"id", "base_topic", "payload", "status_topic", "payload_online", "payload_offline", NULL,
};
static const char *const mqtt_keys[] = {
	"brokers", "protocol", "keepalive", "clean_session", "client_id", "username", "password_file",
	"tls", "reconnect_min", "reconnect_max", "max_inflight", "cloud", "hub", "device_id", "device_key_file",
	"sas_lifetime", "thing", NULL,
};
static const char *const tls_keys[] = {"ca_file", "ca_path", "cert_file", "key_file", "insecure", "alpn", NULL};
static const char *const spool_keys[] = {"path", "max_size_mb", "sync", "when_full", "stats_interval",
                                         "commit_interval", "replay", "history_topic",
                                         "properties", NULL};
static const char *const time_keys[] = {"trust", "sync_file", NULL};
static const char *const discovery_keys[] = {"enabled", "prefix", "state_file", "ha_status_topic", NULL};
static const char *const metrics_keys[] = {"path", "interval", NULL};
static const char *const health_keys[] = {"publish", "interval", "window", NULL};
static const char *const commands_keys[] = {"response_topic_prefix", NULL};
static const char *const device_keys[] = {
	"name", "driver", "interval", "expire_after", "path", "readings",
	"qos", "retain", "payload", "offline", NULL,
};
/* The serial keys are sg_line_keys (drivers/line.h): devices and actuators share their parser. */
#define device_serial_keys sg_line_keys
static const char *const device_i2c_keys[] = {"bus", "address", NULL};
static const char *const reading_keys[] = {
	"field", "topic", "unit", "qos", "retain", "payload", "offline", "scale", "offset", "round",
	"deadband", "throttle", "heartbeat", "average", "device_class", "state_class", "filters", NULL,
};
/* Keys every actuator has; its driver adds its own (struct sg_act_driver.option_keys). */
static const char *const actuator_keys[] = {
	"name", "driver", "topic", "type", "qos", "accept_retained", "min_interval_ms", "interlock",
	"payload_on", "payload_off", "initial", "safe", "min", "max", "step", "options",
	"pulse_ms", "max_on_s", "fail_safe_after_s", "fail_safe_on_ha_offline", NULL,
};

/* --- enum spellings, index = enum value ------------------------------- */

static const char *const payload_names[] = {"plain", "json", NULL};
static const char *const offline_names[] = {"spool", "drop", "last", NULL};
/* index 0, 1, 2: protocol levels 5, 4 and 3 (MQTT 3.1 names itself "MQIsdp", level 3) */
static const char *const protocol_names[] = {"5", "3.1.1", "3.1", NULL};
/* index = enum sg_cloud */
static const char *const cloud_names[] = {"none", "azure-iot-hub", "aws-iot-core", NULL};
static const char *const sync_names[] = {"normal", "full", NULL};
static const char *const when_full_names[] = {"drop_old", "drop_new", NULL};
static const char *const replay_names[] = {"live", "history", NULL};
static const char *const properties_names[] = {"all", "replays", NULL};
static const char *const trust_names[] = {"auto", "always", "file", NULL};
static const char *const kind_names[] = {"switch", "number", "enum", NULL};

/* --- the loader: error reporting and the topic registry ---------------- */

/* One topic in use, to find duplicates. */
struct topic_use {
	char *topic;
	char *owner;        /* "device \"x\" field \"t\"" */
	const char *file;   /* libconfig's name of the file it is in (valid while parsing) */
	unsigned line;
};

struct loader {
	const char *file;
	char *include_dir;     /* directory of file, for @include; NULL = cwd */
	char *err;
	size_t errlen;
	struct sg_config *cfg;
	struct topic_use *topics;
	size_t n_topics, cap_topics;
};

/*
 * libconfig names an included file the way the @include line spelled it,
 * relative to the include directory; make it a path the user can open.
 */
static void source_name(const struct loader *ld, const char *file, char *buf, size_t len)
{
	size_t dl = ld->include_dir ? strlen(ld->include_dir) : 0;

	if (!file)
		file = ld->file;
	if (file != ld->file && strcmp(file, ld->file) != 0 && file[0] != '/' && dl > 0 &&
	    !(strncmp(file, ld->include_dir, dl) == 0 && file[dl] == '/'))
		snprintf(buf, len, "%s%s%s", ld->include_dir, ld->include_dir[dl - 1] == '/' ? "" : "/", file);
	else
		snprintf(buf, len, "%s", file);
}

static int fail_line(struct loader *ld, const char *file, unsigned line, const char *fmt, va_list ap)
{
	char msg[512], name[PATH_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	source_name(ld, file, name, sizeof(name));
	if (ld->err && ld->errlen) {
		if (line > 0)
			snprintf(ld->err, ld->errlen, "%s:%u: %s", name, line, msg);
		else
			snprintf(ld->err, ld->errlen, "%s: %s", name, msg);
	}
	return -EINVAL;
}

/* Report an error about setting S (its file and line). Returns -EINVAL. */
__attribute__((format(printf, 3, 4)))
static int fail_at(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	const char *file = s ? config_setting_source_file(s) : NULL;
	unsigned line = s ? config_setting_source_line(s) : 0;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = fail_line(ld, file ? file : ld->file, line, fmt, ap);
	va_end(ap);
	return r;
}

/* Report an error at LINE of the file S comes from. Returns -EINVAL. */
__attribute__((format(printf, 4, 5)))
static int fail_at_line(struct loader *ld, const config_setting_t *s, unsigned line, const char *fmt, ...)
{
	const char *file = config_setting_source_file(s);
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = fail_line(ld, file ? file : ld->file, line, fmt, ap);
	va_end(ap);
	return r;
}

static int fail_oom(struct loader *ld)
{
	if (ld->err && ld->errlen)
		snprintf(ld->err, ld->errlen, "%s: out of memory", ld->file);
	return -ENOMEM;
}

static void loader_release(struct loader *ld)
{
	free(ld->include_dir);
	for (size_t i = 0; i < ld->n_topics; i++) {
		free(ld->topics[i].topic);
		free(ld->topics[i].owner);
	}
	free(ld->topics);
}

/*
 * Record TOPIC (copied) as used by OWNER, declared at setting S. Fails naming
 * both places when another part of the config already uses it.
 */
__attribute__((format(printf, 4, 5)))
static int topic_claim(struct loader *ld, const config_setting_t *s, const char *topic, const char *fmt, ...)
{
	struct topic_use *u;
	char owner[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(owner, sizeof(owner), fmt, ap);
	va_end(ap);

	for (size_t i = 0; i < ld->n_topics; i++) {
		u = &ld->topics[i];
		if (strcmp(u->topic, topic) != 0)
			continue;
		if (u->line > 0 && u->file && s && config_setting_source_file(s) &&
		    strcmp(u->file, config_setting_source_file(s)) != 0) {
			char other[PATH_MAX];

			source_name(ld, u->file, other, sizeof(other));
			return fail_at(ld, s, "topic \"%s\" of %s is already used by %s at %s:%u",
			               topic, owner, u->owner, other, u->line);
		}
		if (u->line > 0)
			return fail_at(ld, s, "topic \"%s\" of %s is already used by %s on line %u",
			               topic, owner, u->owner, u->line);
		return fail_at(ld, s, "topic \"%s\" of %s is already used by %s", topic, owner, u->owner);
	}
	if (ld->n_topics == ld->cap_topics) {
		size_t cap = ld->cap_topics ? 2 * ld->cap_topics : 32;
		struct topic_use *t = realloc(ld->topics, cap * sizeof(*t));
		if (!t)
			return fail_oom(ld);
		ld->topics = t;
		ld->cap_topics = cap;
	}
	u = &ld->topics[ld->n_topics];
	u->topic = strdup(topic);
	u->owner = strdup(owner);
	u->line = s ? config_setting_source_line(s) : 0;
	u->file = s ? config_setting_source_file(s) : NULL;
	if (!u->topic || !u->owner) {
		free(u->topic);
		free(u->owner);
		return fail_oom(ld);
	}
	ld->n_topics++;
	return 0;
}

/* --- small string helpers ---------------------------------------------- */

static bool in_list(const char *const *list, const char *s)
{
	for (; list && *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

/* Replace *dst by a copy of SRC (NULL clears it). */
static int dup_to(struct loader *ld, char **dst, const char *src)
{
	char *c = NULL;

	if (src) {
		c = strdup(src);
		if (!c)
			return fail_oom(ld);
	}
	free(*dst);
	*dst = c;
	return 0;
}

static bool char_in_name(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool config_name_valid(const char *s)
{
	return sg_name_valid(s, SIZE_MAX);
}

/* A driver field name: a name, plus '.' for nested JSON keys ("a.b"). */
static bool field_name_valid(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!char_in_name(*s) && *s != '.')
			return false;
	return true;
}

bool config_topic_valid(const char *t)
{
	size_t len;

	if (!t || !*t)
		return false;
	len = strlen(t);
	if (len > CONFIG_TOPIC_MAX)
		return false;
	if (t[0] == '$' || t[0] == '/' || t[len - 1] == '/' || strstr(t, "//"))
		return false;
	/* libmosquitto's own rules, so that no topic passes here and fails at publish time: no wildcard,
	 * strict UTF-8 without U+0000, control characters (C0, DEL, C1) or non-characters */
	return mosquitto_pub_topic_check2(t, len) == MOSQ_ERR_SUCCESS &&
	       mosquitto_validate_utf8(t, (int)len) == MOSQ_ERR_SUCCESS;
}

/* --- typed getters: absent keys leave *out alone and return 0 ---------- */

static const config_setting_t *member(const config_setting_t *g, const char *key)
{
	return g ? config_setting_get_member(g, key) : NULL;
}

/*
 * The typed getters are common/options.h's readers, their errors reported
 * here with the file and line of the setting at fault.
 */
static int opt_result(struct loader *ld, int r, const struct sg_opt_error *oe)
{
	if (r == -ENOMEM)
		return fail_oom(ld);
	if (r < 0)
		return fail_at(ld, oe->at, "%s", oe->msg);
	return r;
}

/* Borrow the string g.key (valid until config_destroy). */
static int get_string(struct loader *ld, const config_setting_t *g, const char *key, const char **out)
{
	struct sg_opt_error oe;

	return opt_result(ld, sg_opt_string(g, key, out, &oe), &oe);
}

/* Copy the string g.key into *dst (replacing it). */
static int get_string_dup(struct loader *ld, const config_setting_t *g, const char *key, char **dst)
{
	struct sg_opt_error oe;

	return opt_result(ld, sg_opt_string_dup(g, key, dst, &oe), &oe);
}

static int get_int_range(struct loader *ld, const config_setting_t *g, const char *key,
                         long long lo, long long hi, int *out)
{
	struct sg_opt_error oe;

	return opt_result(ld, sg_opt_int(g, key, lo, hi, out, &oe), &oe);
}

/* A number setting S (integer or float, finite) into *out; WHAT names it in the message. */
static int setting_number(struct loader *ld, const config_setting_t *s, const char *what, double *out)
{
	struct sg_opt_error oe;

	return opt_result(ld, sg_opt_number(s, what, out, &oe), &oe);
}

/* Numbers: integers are accepted too. LO_OPEN excludes LO itself (intervals > 0). */
static int get_double_range(struct loader *ld, const config_setting_t *g, const char *key,
                            double lo, double hi, bool lo_open, double *out)
{
	struct sg_opt_error oe;

	return opt_result(ld, (lo_open ? sg_opt_double_above : sg_opt_double)(g, key, lo, hi, out, &oe), &oe);
}

static int get_bool(struct loader *ld, const config_setting_t *g, const char *key, bool *out)
{
	struct sg_opt_error oe;

	return opt_result(ld, sg_opt_bool(g, key, out, &oe), &oe);
}

/* A string out of NAMES (NULL-terminated); *out becomes its index. */
static int get_enum(struct loader *ld, const config_setting_t *g, const char *key,
                    const char *const *names, int *out)
{
	struct sg_opt_error oe;

	return opt_result(ld, sg_opt_enum(g, key, names, out, &oe), &oe);
}

/* G must be a group (or absent). */
static int need_group(struct loader *ld, const config_setting_t *g, const char *key)
{
	if (g && !config_setting_is_group(g))
		return fail_at(ld, g, "\"%s\" must be a group: %s: { ... }", key, key);
	return 0;
}

/* The first member of G whose name is in none of LISTS (NULL-terminated), or NULL. */
static const config_setting_t *find_unknown(const config_setting_t *g, const char *const *const *lists)
{
	int n = config_setting_length(g);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(s);
		bool ok = false;

		for (size_t l = 0; lists[l] && !ok; l++)
			ok = in_list(lists[l], name);
		if (!ok)
			return s;
	}
	return NULL;
}

/* WHERE is "" or " in mqtt" etc. */
static int check_keys(struct loader *ld, const config_setting_t *g, const char *const *keys, const char *where)
{
	const char *const *lists[] = {keys, NULL};
	const config_setting_t *u;

	if (!g)
		return 0;
	u = find_unknown(g, lists);
	if (u)
		return fail_at(ld, u, "unknown key \"%s\"%s", config_setting_name(u), where);
	return 0;
}

/* Fail unless key is present in G; WHAT names G ("device \"x\""). */
static int require(struct loader *ld, const config_setting_t *g, const char *key, const char *what)
{
	struct sg_opt_error oe;

	return opt_result(ld, sg_opt_require(g, key, &oe, "%s", what), &oe);
}

/* "<base>/<rel><suffix>" into *out, after checking both the relative and the full form. */
static int make_topic(struct loader *ld, const config_setting_t *s, const char *what, const char *rel,
                      const char *suffix, char **out)
{
	char *t;

	if (!config_topic_valid(rel))
		return fail_at(ld, s, "%s: invalid topic \"%s\" (no '+', '#', empty levels, leading or "
		               "trailing '/', leading '$', control characters or invalid UTF-8)", what, rel);
	if (asprintf(&t, "%s/%s%s", ld->cfg->base_topic, rel, suffix) < 0)
		return fail_oom(ld);
	if (!config_topic_valid(t)) {
		fail_at(ld, s, "%s: topic \"%s\" is longer than %d bytes", what, t, CONFIG_TOPIC_MAX);
		free(t);
		return -EINVAL;
	}
	free(*out);
	*out = t;
	return 0;
}

/* --- gateway ------------------------------------------------------------- */

/* The host name, reduced to [A-Za-z0-9_-]; "sensorgate" if there is none. */
static int default_id(struct loader *ld, char **out)
{
	char host[256] = "";

	if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
		snprintf(host, sizeof(host), "sensorgate");
	for (char *p = host; *p; p++)
		if (!char_in_name(*p))
			*p = '_';
	return dup_to(ld, out, host);
}

/*
 * The words of the gateway's availability (birth and Last Will), as tools
 * other than Home Assistant may expect them ("Online"/"Offline", "1"/"0").
 * Not empty: an empty retained message would delete the status instead.
 */
static int parse_status_payloads(struct loader *ld, const config_setting_t *g)
{
	struct sg_mqtt_cfg *m = &ld->cfg->mqtt;
	const char *on = SG_STATUS_PAYLOAD_ONLINE, *off = SG_STATUS_PAYLOAD_OFFLINE;
	const char *keys[2] = {"payload_online", "payload_offline"};
	const char **vals[2] = {&on, &off};
	int r;

	for (size_t i = 0; i < 2; i++) {
		if ((r = get_string(ld, g, keys[i], vals[i])) < 0)
			return r;
		if (!**vals[i] || strlen(*vals[i]) > STATUS_PAYLOAD_MAX || !sg_utf8_valid(*vals[i], strlen(*vals[i])))
			return fail_at(ld, member(g, keys[i]), "\"%s\" must be 1 to %d bytes of UTF-8 text", keys[i],
			               STATUS_PAYLOAD_MAX);
	}
	if (strcmp(on, off) == 0)
		return fail_at(ld, member(g, "payload_offline"), "\"payload_online\" and \"payload_offline\" must "
		               "differ (both \"%s\")", on);
	if ((r = dup_to(ld, &m->birth_payload, on)) < 0 || (r = dup_to(ld, &m->will_payload, off)) < 0)
		return r;
	return 0;
}

static int parse_gateway(struct loader *ld, const config_setting_t *root)
{
	struct sg_config *cfg = ld->cfg;
	const config_setting_t *g = member(root, "gateway");
	const char *id = NULL, *base = DEFAULT_BASE_TOPIC, *status = NULL;
	int payload = SG_PAYLOAD_PLAIN;
	int r;

	if ((r = need_group(ld, g, "gateway")) < 0 ||
	    (r = check_keys(ld, g, gateway_keys, " in gateway")) < 0 ||
	    (r = get_string(ld, g, "id", &id)) < 0 ||
	    (r = get_string(ld, g, "base_topic", &base)) < 0 ||
	    (r = get_enum(ld, g, "payload", payload_names, &payload)) < 0 ||
	    (r = get_string(ld, g, "status_topic", &status)) < 0 ||
	    (r = parse_status_payloads(ld, g)) < 0)
		return r;
	cfg->payload = (enum sg_payload_format)payload;

	if (id) {
		if (!config_name_valid(id))
			return fail_at(ld, member(g, "id"), "invalid gateway id \"%s\" (use letters, digits, '_' and '-')", id);
		r = dup_to(ld, &cfg->id, id);
	} else {
		r = default_id(ld, &cfg->id);
	}
	if (r < 0)
		return r;

	if (!config_topic_valid(base))
		return fail_at(ld, member(g, "base_topic"), "invalid base_topic \"%s\" (no '+', '#', empty levels, "
		               "leading or trailing '/', leading '$')", base);
	if ((r = dup_to(ld, &cfg->base_topic, base)) < 0)
		return r;
	if (status) { /* a whole topic, not under base_topic: the place other tooling expects it */
		if (!config_topic_valid(status))
			return fail_at(ld, member(g, "status_topic"), "invalid status_topic \"%s\" (no '+', '#', empty "
			               "levels, leading or trailing '/', leading '$'; at most %d bytes)", status,
			               CONFIG_TOPIC_MAX);
		if ((r = dup_to(ld, &cfg->status_topic, status)) < 0)
			return r;
		return topic_claim(ld, member(g, "status_topic"), cfg->status_topic, "the gateway status topic");
	}
	if (asprintf(&cfg->status_topic, "%s/gateway/%s/status", cfg->base_topic, cfg->id) < 0) {
		cfg->status_topic = NULL;
		return fail_oom(ld);
	}
	if (!config_topic_valid(cfg->status_topic))
		return fail_at(ld, g, "status topic \"%s\" is longer than %d bytes", cfg->status_topic, CONFIG_TOPIC_MAX);
	return topic_claim(ld, NULL, cfg->status_topic, "the gateway status topic");
}

/* --- mqtt ---------------------------------------------------------------- */

/* mqtt://host[:port] or mqtts://host[:port]; host is a name, an IPv4 or [IPv6]. */
static bool broker_url_valid(const char *url)
{
	const char *p;

	if (strncmp(url, "mqtt://", 7) == 0)
		p = url + 7;
	else if (strncmp(url, "mqtts://", 8) == 0)
		p = url + 8;
	else
		return false;

	if (*p == '[') {
		const char *start = ++p;
		while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') ||
		       *p == ':' || *p == '.')
			p++;
		if (*p != ']' || p == start || !strchr(start, ':') || strchr(start, ':') > p)
			return false;
		p++;
	} else {
		const char *start = p;
		while (char_in_name(*p) || *p == '.')
			p++;
		if (p == start || *start == '-' || *start == '.')
			return false;
	}

	if (*p == ':') {
		long port = 0;
		const char *digits = ++p;
		while (*p >= '0' && *p <= '9' && p - digits < 6)
			port = port * 10 + (*p++ - '0');
		if (p == digits || port < 1 || port > 65535)
			return false;
	}
	return *p == '\0';
}

static int parse_brokers(struct loader *ld, const config_setting_t *mq)
{
	struct sg_mqtt_cfg *m = &ld->cfg->mqtt;
	const config_setting_t *b = member(mq, "brokers");
	int n;

	if (!b) {
		m->brokers = calloc(1, sizeof(*m->brokers));
		if (!m->brokers)
			return fail_oom(ld);
		m->n_brokers = 1;
		return dup_to(ld, &m->brokers[0], DEFAULT_BROKER);
	}

	if (config_setting_type(b) == CONFIG_TYPE_STRING)
		n = 1;
	else if (config_setting_is_list(b) || config_setting_is_array(b))
		n = config_setting_length(b);
	else
		return fail_at(ld, b, "\"brokers\" must be a list of URLs: ( \"mqtt://host:1883\", ... )");
	if (n == 0)
		return fail_at(ld, b, "\"brokers\" is empty");

	m->brokers = calloc((size_t)n, sizeof(*m->brokers));
	if (!m->brokers)
		return fail_oom(ld);
	m->n_brokers = (size_t)n;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_type(b) == CONFIG_TYPE_STRING ? b
		                            : config_setting_get_elem(b, (unsigned)i);
		const char *url;
		int r;

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return fail_at(ld, e, "\"brokers\" entries must be strings");
		url = config_setting_get_string(e);
		if (!broker_url_valid(url))
			return fail_at(ld, e, "invalid broker URL \"%s\" (expected mqtt://host[:port] or "
			               "mqtts://host[:port])", url);
		/* libmosquitto has one TLS setting per client: it would try TLS with every broker. */
		if (i > 0 && (strncmp(url, "mqtts:", 6) == 0) != (strncmp(m->brokers[0], "mqtts:", 6) == 0))
			return fail_at(ld, e, "\"%s\" and \"%s\" mix mqtt:// and mqtts://: list brokers of one kind",
			               m->brokers[0], url);
		if ((r = dup_to(ld, &m->brokers[i], url)) < 0)
			return r;
	}
	return 0;
}

const char *config_protocol_name(int level)
{
	return level == 5 ? "5" : level == 4 ? "3.1.1" : "3.1";
}

/* MQTT 3.1.1 §3.1.3.5 and MQTT 5 §3.1.3.6: the password is Binary Data, a two-byte length and at most 65535 bytes. */
#define PASSWORD_MAX 65535

/* What a file that is not a regular file is, for the message refusing it. */
const char *config_file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:  return "a regular file";
	case S_IFDIR:  return "a directory";
	case S_IFIFO:  return "a FIFO";
	case S_IFCHR:  return "a character device";
	case S_IFBLK:  return "a block device";
	case S_IFSOCK: return "a socket";
	default:       return "not a regular file";
	}
}

/*
 * The first line of PATH, newline (LF or CRLF) stripped, into *out
 * (malloc'd). Only a regular file is read, and at most one password and its
 * line end: the open does not wait for a FIFO's writer or take a terminal,
 * and /dev/zero cannot make it grow. 0, or -errno with WHY (WHYLEN bytes)
 * saying what is wrong.
 */
static int read_password(const char *path, char **out, char *why, size_t whylen)
{
	char *buf, *nl;
	size_t len = 0, cap = PASSWORD_MAX + 2; /* room to see that a line is too long */
	struct stat st;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		snprintf(why, whylen, "%s", strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(why, whylen, "%s", strerror(-r));
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "it is %s, not a regular file", config_file_kind(st.st_mode));
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len < cap && !memchr(buf, '\n', len)) {
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(why, whylen, "%s", strerror(-r));
			close(fd);
			free(buf);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	nl = memchr(buf, '\n', len);
	n = nl ? (ssize_t)(nl - buf) : (ssize_t)len;
	if (memchr(buf, '\0', (size_t)n)) {
		snprintf(why, whylen, "the password contains a NUL byte");
		explicit_bzero(buf, len);
		free(buf);
		return -EINVAL;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if ((size_t)n > PASSWORD_MAX) {
		snprintf(why, whylen, "the password is longer than %d bytes (the most MQTT can carry)", PASSWORD_MAX);
		r = -EFBIG;
	} else {
		*out = strndup(buf, (size_t)n);
		r = *out ? 0 : -ENOMEM;
	}
	explicit_bzero(buf, len);
	free(buf);
	return r;
}

/* A TLS file or directory key: "" counts as unset; a set one must exist. */
static int get_tls_path(struct loader *ld, const config_setting_t *tls, const char *key, bool dir, char **dst)
{
	const char *v = NULL;
	struct stat st;
	int r;

	if ((r = get_string(ld, tls, key, &v)) < 0 || !v || !*v)
		return r;
	if (stat(v, &st) < 0)
		return fail_at(ld, member(tls, key), "\"%s\": %s: %s", key, v, strerror(errno));
	if (dir && !S_ISDIR(st.st_mode))
		return fail_at(ld, member(tls, key), "\"%s\": %s is not a directory", key, v);
	if (!dir && S_ISDIR(st.st_mode))
		return fail_at(ld, member(tls, key), "\"%s\": %s is a directory", key, v);
	return dup_to(ld, dst, v);
}

/* Keep where setting S is ("FILE:LINE") in *DST, for messages about it after loading; S may be NULL. */
static int note_where(struct loader *ld, const config_setting_t *s, char **dst)
{
	char name[PATH_MAX];
	int n;

	if (!s)
		return 0;
	source_name(ld, config_setting_source_file(s), name, sizeof(name));
	n = asprintf(dst, "%s:%u", name, config_setting_source_line(s));
	if (n < 0) {
		*dst = NULL;
		return fail_oom(ld);
	}
	return 0;
}

/* RFC 7301 §3.1: a protocol name is 1 to 255 bytes; the registered ones (and AWS's) are printable ASCII. */
#define ALPN_NAME_MAX 255

static bool alpn_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > ALPN_NAME_MAX)
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s > '~')
			return false;
	return true;
}

static int parse_tls(struct loader *ld, const config_setting_t *mq)
{
	struct sg_mqtt_cfg *m = &ld->cfg->mqtt;
	const config_setting_t *tls = member(mq, "tls");
	int r;

	if ((r = need_group(ld, tls, "tls")) < 0 ||
	    (r = check_keys(ld, tls, tls_keys, " in mqtt.tls")) < 0 ||
	    (r = get_tls_path(ld, tls, "ca_file", false, &m->ca_file)) < 0 ||
	    (r = get_tls_path(ld, tls, "ca_path", true, &m->ca_path)) < 0 ||
	    (r = get_tls_path(ld, tls, "cert_file", false, &m->cert_file)) < 0 ||
	    (r = get_tls_path(ld, tls, "key_file", false, &m->key_file)) < 0 ||
	    (r = get_bool(ld, tls, "insecure", &m->tls_insecure)) < 0 ||
	    (r = get_string_dup(ld, tls, "alpn", &m->tls_alpn)) < 0)
		return r;
	if (m->tls_alpn && !alpn_valid(m->tls_alpn))
		return fail_at(ld, member(tls, "alpn"), "\"alpn\" must be a protocol name of 1 to %d printable ASCII "
		               "characters, like \"x-amzn-mqtt-ca\"", ALPN_NAME_MAX);
	if (m->tls_alpn && strncmp(m->brokers[0], "mqtts://", 8) != 0)
		return fail_at(ld, member(tls, "alpn"), "\"alpn\" is a TLS setting, but the brokers are mqtt:// (no TLS)");
	if (m->cert_file && !m->key_file)
		return fail_at(ld, member(tls, "cert_file"), "\"cert_file\" needs \"key_file\"");
	if (m->key_file && !m->cert_file)
		return fail_at(ld, member(tls, "key_file"), "\"key_file\" needs \"cert_file\"");
	if ((r = note_where(ld, tls, &m->where[SG_MQTT_KEY_TLS])) < 0 ||
	    (r = note_where(ld, member(tls, "ca_file"), &m->where[SG_MQTT_KEY_CA_FILE])) < 0 ||
	    (r = note_where(ld, member(tls, "ca_path"), &m->where[SG_MQTT_KEY_CA_PATH])) < 0 ||
	    (r = note_where(ld, member(tls, "cert_file"), &m->where[SG_MQTT_KEY_CERT_FILE])) < 0 ||
	    (r = note_where(ld, member(tls, "key_file"), &m->where[SG_MQTT_KEY_KEY_FILE])) < 0 ||
	    (r = note_where(ld, member(tls, "insecure"), &m->where[SG_MQTT_KEY_INSECURE])) < 0 ||
	    (r = note_where(ld, member(tls, "alpn"), &m->where[SG_MQTT_KEY_ALPN])) < 0)
		return r;
	return 0;
}

/* A topic of the gateway's own that the cloud service would refuse: "KEY ...: what cloud takes". */
static int not_with_cloud(struct loader *ld, const config_setting_t *s, const char *what)
{
	return fail_at(ld, s, "%s: cloud = \"%s\" only takes the service's own topics (telemetry, twin), so "
	               "this cannot be published there; remove it", what, cloud_names[ld->cfg->mqtt.cloud]);
}

/* IoT Hub device identities: 1 to 128 ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ '
 * (learn.microsoft.com/azure/iot-hub/iot-hub-devguide-identity-registry, "Device identity properties"). */
#define AZURE_DEVICE_ID_MAX 128
/* A host name: RFC 1035 §2.3.4 */
#define HOST_NAME_MAX_LEN 253
/* Default and bounds of sas_lifetime, seconds: an hour, as Microsoft's SDKs use; a year at most. */
#define SAS_LIFETIME_DEFAULT 3600
#define SAS_LIFETIME_MAX     (366 * 24 * 3600)

static bool azure_device_id_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > AZURE_DEVICE_ID_MAX)
		return false;
	for (; *s; s++)
		if (!char_in_name(*s) && !strchr(".%*?!(),:=@$'", *s))
			return false;
	return true;
}

static bool host_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > HOST_NAME_MAX_LEN || *s == '-' || *s == '.')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '.'))
			return false;
	return true;
}

/* The device key file: one line of base64 (the "primary key" the portal shows), decoded into M. */
static int read_device_key(struct loader *ld, const config_setting_t *mq, struct sg_mqtt_cfg *m)
{
	const config_setting_t *s = member(mq, "device_key_file");
	char why[160], *text = NULL;
	int r;

	r = read_password(m->device_key_file, &text, why, sizeof(why));
	if (r == -ENOMEM)
		return fail_oom(ld);
	if (r < 0)
		return fail_at(ld, s, "cannot read device_key_file %s: %s", m->device_key_file, why);
	r = cloud_key_decode(text, &m->device_key, &m->device_key_len);
	explicit_bzero(text, strlen(text));
	free(text);
	if (r == -ENOMEM)
		return fail_oom(ld);
	if (r < 0 || m->device_key_len == 0)
		return fail_at(ld, s, "device_key_file %s does not hold a base64 key on its first line (the device's "
		               "primary or secondary key, as the Azure portal or `az iot hub device-identity show` "
		               "shows it)", m->device_key_file);
	return 0;
}

/* AWS IoT thing names: 1 to 128 of [a-zA-Z0-9:_-] (AWS IoT API Reference, CreateThing, thingName). */
#define AWS_THING_MAX 128
/* AWS IoT Core, "Device communication protocols": MQTT with X.509 client certificates on port 443 needs the
 * ALPN protocol name x-amzn-mqtt-ca (on 8883 none). */
#define AWS_ALPN_443 "x-amzn-mqtt-ca"

static bool aws_thing_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > AWS_THING_MAX)
		return false;
	for (; *s; s++)
		if (!char_in_name(*s) && *s != ':')
			return false;
	return true;
}

/* Keys that belong to one profile, set without it or with the other. */
static int foreign_keys(struct loader *ld, const config_setting_t *mq)
{
	static const struct { const char *key; enum sg_cloud cloud; } own[] = {
		{"hub", SG_CLOUD_AZURE}, {"device_id", SG_CLOUD_AZURE}, {"device_key_file", SG_CLOUD_AZURE},
		{"sas_lifetime", SG_CLOUD_AZURE}, {"thing", SG_CLOUD_AWS},
	};

	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (member(mq, own[i].key) && ld->cfg->mqtt.cloud != own[i].cloud)
			return fail_at(ld, member(mq, own[i].key), "\"%s\" belongs to cloud = \"%s\", which is not set",
			               own[i].key, cloud_names[own[i].cloud]);
	return 0;
}

/* Every cloud takes TLS only; KEYS the profile sets itself are refused rather than silently overridden. */
static int cloud_common(struct loader *ld, const config_setting_t *mq, const char *const *keys, const char *from)
{
	struct sg_mqtt_cfg *m = &ld->cfg->mqtt;
	const char *name = cloud_names[m->cloud];

	for (const char *const *k = keys; *k; k++)
		if (member(mq, *k))
			return fail_at(ld, member(mq, *k), "\"%s\" is set by cloud = \"%s\" (from %s); remove it", *k,
			               name, from);
	if (member(mq, "brokers") && strncmp(m->brokers[0], "mqtts://", 8) != 0)
		return fail_at(ld, member(mq, "brokers"), "cloud = \"%s\" takes TLS only: the brokers must be mqtts://",
		               name);
	return 0;
}

/*
 * mqtt.cloud = "azure-iot-hub": the identity, the broker and the protocol
 * follow from hub, device_id and device_key_file.
 */
static int parse_azure(struct loader *ld, const config_setting_t *mq)
{
	struct sg_mqtt_cfg *m = &ld->cfg->mqtt;
	static const char *const replaced[] = {"client_id", "username", "password_file", NULL};
	const char *name = cloud_names[m->cloud];
	char user[512];
	int r;

	if ((r = cloud_common(ld, mq, replaced, "hub, device_id and device_key_file")) < 0)
		return r;
	for (const char *const *k = (const char *const[]){"hub", "device_id", "device_key_file", NULL}; *k; k++)
		if (!member(mq, *k))
			return fail_at(ld, member(mq, "cloud"), "cloud = \"%s\" needs \"%s\" in the mqtt group", name, *k);
	if (!host_name_valid(m->hub))
		return fail_at(ld, member(mq, "hub"), "\"hub\" must be the hub's host name, like "
		               "\"myhub.azure-devices.net\"");
	if (!azure_device_id_valid(m->device_id))
		return fail_at(ld, member(mq, "device_id"), "invalid device_id \"%s\": IoT Hub allows 1 to %d ASCII "
		               "letters, digits and - . %% _ * ? ! ( ) , : = @ $ '", m->device_id, AZURE_DEVICE_ID_MAX);
	/* Azure IoT Hub speaks MQTT 3.1.1 (its MQTT 5 is a preview of separate hubs) */
	if (member(mq, "protocol") && m->protocol != 4)
		return fail_at(ld, member(mq, "protocol"), "cloud = \"%s\" speaks MQTT 3.1.1: use protocol = \"3.1.1\" "
		               "or leave protocol out", name);
	m->protocol = 4;
	if (!member(mq, "brokers")) {
		free(m->brokers[0]);
		if (asprintf(&m->brokers[0], "mqtts://%s:8883", m->hub) < 0) {
			m->brokers[0] = NULL;
			return fail_oom(ld);
		}
	}
	if ((r = dup_to(ld, &m->client_id, m->device_id)) < 0)
		return r;
	if (cloud_azure_username(m->hub, m->device_id, user, sizeof(user)) < 0)
		return fail_at(ld, member(mq, "hub"), "the hub and device names are too long");
	if ((r = dup_to(ld, &m->username, user)) < 0)
		return r;
	return read_device_key(ld, mq, m);
}

/*
 * mqtt.cloud = "aws-iot-core": the thing name is the client id (unless
 * client_id says otherwise: the policy decides), an X.509 client
 * certificate is the credential, and port 443 gets its ALPN protocol.
 */
static int parse_aws(struct loader *ld, const config_setting_t *mq, const char *client_id)
{
	struct sg_mqtt_cfg *m = &ld->cfg->mqtt;
	static const char *const replaced[] = {"username", "password_file", NULL};
	const char *name = cloud_names[m->cloud];
	const char *tls_where = member(mq, "tls") ? "in mqtt.tls" : "in an mqtt.tls group";
	bool port443 = false;
	int r;

	if ((r = cloud_common(ld, mq, replaced, "the client certificate")) < 0)
		return r;
	if (m->protocol == 3)
		return fail_at(ld, member(mq, "protocol"), "cloud = \"%s\" speaks MQTT 3.1.1 and 5, not 3.1", name);
	if (!member(mq, "thing"))
		return fail_at(ld, member(mq, "cloud"), "cloud = \"%s\" needs \"thing\" (the thing name) in the mqtt "
		               "group", name);
	if (!aws_thing_valid(m->device_id))
		return fail_at(ld, member(mq, "thing"), "invalid thing name \"%s\": AWS IoT allows 1 to %d of "
		               "letters, digits, ':', '_' and '-'", m->device_id, AWS_THING_MAX);
	if (!member(mq, "brokers"))
		return fail_at(ld, member(mq, "cloud"), "cloud = \"%s\" needs \"brokers\": your account's endpoint, "
		               "( \"mqtts://xxxxxxxx-ats.iot.REGION.amazonaws.com:8883\" )", name);
	if (!m->cert_file)
		return fail_at(ld, member(mq, "cloud"), "cloud = \"%s\" needs the thing's certificate: cert_file and "
		               "key_file %s", name, tls_where);
	for (size_t i = 0; i < m->n_brokers; i++) {
		const char *colon = strrchr(m->brokers[i], ':');
		port443 |= colon && strcmp(colon, ":443") == 0;
	}
	if (port443 && !m->tls_alpn && (r = dup_to(ld, &m->tls_alpn, AWS_ALPN_443)) < 0)
		return r;
	if (client_id && !*client_id)
		return fail_at(ld, member(mq, "client_id"), "\"client_id\" must not be empty");
	return dup_to(ld, &m->client_id, client_id ? client_id : m->device_id);
}

static int parse_cloud(struct loader *ld, const config_setting_t *mq, const char *client_id)
{
	int r = foreign_keys(ld, mq);

	if (r < 0)
		return r;
	switch (ld->cfg->mqtt.cloud) {
	case SG_CLOUD_AZURE: return parse_azure(ld, mq);
	case SG_CLOUD_AWS:   return parse_aws(ld, mq, client_id);
	default:             return 0;
	}
}

static int parse_mqtt(struct loader *ld, const config_setting_t *root)
{
	struct sg_config *cfg = ld->cfg;
	struct sg_mqtt_cfg *m = &cfg->mqtt;
	const config_setting_t *mq = member(root, "mqtt");
	const char *client_id = NULL;
	int protocol = 0, cloud = 0;
	int r;

	m->keepalive = 30;
	m->clean_session = false;
	m->reconnect_min_s = 1;
	m->reconnect_max_s = 60;
	m->max_inflight = 100;
	m->sas_lifetime_s = SAS_LIFETIME_DEFAULT;

	if ((r = need_group(ld, mq, "mqtt")) < 0 ||
	    (r = check_keys(ld, mq, mqtt_keys, " in mqtt")) < 0 ||
	    (r = parse_brokers(ld, mq)) < 0 ||
	    (r = get_enum(ld, mq, "protocol", protocol_names, &protocol)) < 0 ||
	    (r = get_int_range(ld, mq, "keepalive", 5, 3600, &m->keepalive)) < 0 ||
	    (r = get_bool(ld, mq, "clean_session", &m->clean_session)) < 0 ||
	    (r = get_string(ld, mq, "client_id", &client_id)) < 0 ||
	    (r = get_string_dup(ld, mq, "username", &m->username)) < 0 ||
	    (r = get_string_dup(ld, mq, "password_file", &m->password_file)) < 0 ||
	    (r = parse_tls(ld, mq)) < 0 ||
	    (r = get_double_range(ld, mq, "reconnect_min", 0, 3600, true, &m->reconnect_min_s)) < 0 ||
	    (r = get_double_range(ld, mq, "reconnect_max", 0, 86400, true, &m->reconnect_max_s)) < 0 ||
	    (r = get_int_range(ld, mq, "max_inflight", 1, 65535, &m->max_inflight)) < 0 ||
	    (r = get_enum(ld, mq, "cloud", cloud_names, &cloud)) < 0 ||
	    (r = get_string_dup(ld, mq, "hub", &m->hub)) < 0 ||
	    (r = get_string_dup(ld, mq, "device_id", &m->device_id)) < 0 ||
	    (r = get_string_dup(ld, mq, "device_key_file", &m->device_key_file)) < 0 ||
	    (r = get_int_range(ld, mq, "sas_lifetime", 2, SAS_LIFETIME_MAX, &m->sas_lifetime_s)) < 0 ||
	    (!member(mq, "device_id") && (r = get_string_dup(ld, mq, "thing", &m->device_id)) < 0))
		return r;
	m->cloud = (enum sg_cloud)cloud;

	if ((r = note_where(ld, member(mq, "brokers"), &m->where[SG_MQTT_KEY_BROKERS])) < 0 ||
	    (r = note_where(ld, member(mq, "client_id"), &m->where[SG_MQTT_KEY_CLIENT_ID])) < 0 ||
	    (r = note_where(ld, member(mq, "username"), &m->where[SG_MQTT_KEY_USERNAME])) < 0 ||
	    (r = note_where(ld, member(mq, "password_file"), &m->where[SG_MQTT_KEY_PASSWORD_FILE])) < 0 ||
	    (r = note_where(ld, member(mq, "cloud"), &m->where[SG_MQTT_KEY_CLOUD])) < 0 ||
	    (r = note_where(ld, member(mq, "device_key_file"), &m->where[SG_MQTT_KEY_DEVICE_KEY_FILE])) < 0)
		return r;
	if (mq)
		r = note_where(ld, mq, &m->where[SG_MQTT_KEY_GROUP]);
	else
		r = dup_to(ld, &m->where[SG_MQTT_KEY_GROUP], ld->file);
	if (r < 0)
		return r;

	m->protocol = 5 - protocol;
	if (m->reconnect_max_s < m->reconnect_min_s)
		return fail_at(ld, member(mq, "reconnect_max") ? member(mq, "reconnect_max") : member(mq, "reconnect_min"),
		               "\"reconnect_max\" (%g) must not be less than \"reconnect_min\" (%g)",
		               m->reconnect_max_s, m->reconnect_min_s);

	if ((r = parse_cloud(ld, mq, client_id)) < 0)
		return r;
	if (m->cloud != SG_CLOUD_NONE)
		return 0;

	if (client_id) {
		if (!*client_id)
			return fail_at(ld, member(mq, "client_id"), "\"client_id\" must not be empty");
		r = dup_to(ld, &m->client_id, client_id);
	} else if (asprintf(&m->client_id, "sensorgate-%s", cfg->id) < 0) {
		m->client_id = NULL;
		r = fail_oom(ld);
	}
	if (r < 0)
		return r;
	/* MQTT 3.1 §3.1 (CONNECT payload): a client identifier of 1 to 23 characters. A broker that keeps to it
	 * answers a longer one with CONNACK 2 "identifier rejected" (mosquitto 2.0.11 lets it pass). */
	if (m->protocol == 3 && strlen(m->client_id) > MQTT31_CLIENT_ID_MAX)
		return fail_at(ld, member(mq, client_id ? "client_id" : "protocol"),
		               "client id \"%s\" is %zu bytes; MQTT 3.1 allows at most %d: set a shorter \"client_id\"",
		               m->client_id, strlen(m->client_id), MQTT31_CLIENT_ID_MAX);

	if (m->password_file) {
		char why[160];

		r = read_password(m->password_file, &m->password, why, sizeof(why));
		if (r == -ENOMEM)
			return fail_oom(ld);
		if (r < 0)
			return fail_at(ld, member(mq, "password_file"), "cannot read password_file %s: %s",
			               m->password_file, why);
		/* MQTT 3.1.1 §3.1.2.9: a password is only allowed together with a user name. */
		if (!m->username && m->protocol != 5)
			return fail_at(ld, member(mq, "password_file"), "\"password_file\" needs \"username\" with protocol \"%s\"",
			               config_protocol_name(m->protocol));
	}
	return 0;
}

/* --- spool, discovery ---------------------------------------------------- */

static int parse_history_topic(struct loader *ld, const config_setting_t *g, const char *v, char **ret);

static int parse_spool(struct loader *ld, const config_setting_t *root)
{
	struct sg_spool_cfg *sp = &ld->cfg->spool;
	const config_setting_t *g = member(root, "spool");
	int sync = 1, when_full = 0, replay = 0, props = 0;
	const char *history = "{topic}/history";
	int r;

	sp->max_size_mb = 64;
	sp->stats_interval_s = 60;
	if ((r = need_group(ld, g, "spool")) < 0 ||
	    (r = check_keys(ld, g, spool_keys, " in spool")) < 0 ||
	    (r = get_string_dup(ld, g, "path", &sp->path)) < 0 ||
	    (r = get_int_range(ld, g, "max_size_mb", 1, 100000, &sp->max_size_mb)) < 0 ||
	    (r = get_enum(ld, g, "sync", sync_names, &sync)) < 0 ||
	    (r = get_enum(ld, g, "when_full", when_full_names, &when_full)) < 0 ||
	    (r = get_double_range(ld, g, "stats_interval", 0, 86400, false, &sp->stats_interval_s)) < 0 ||
	    (r = get_double_range(ld, g, "commit_interval", 0, 60, false, &sp->commit_interval_s)) < 0 ||
	    (r = get_enum(ld, g, "replay", replay_names, &replay)) < 0 ||
	    (r = get_enum(ld, g, "properties", properties_names, &props)) < 0 ||
	    (r = get_string(ld, g, "history_topic", &history)) < 0)
		return r;
	if (ld->cfg->mqtt.cloud == SG_CLOUD_AZURE) {
		if (member(g, "stats_interval") && sp->stats_interval_s > 0)
			return not_with_cloud(ld, member(g, "stats_interval"), "\"stats_interval\" (the spool's statistics topic)");
		sp->stats_interval_s = 0;
	}
	if (sp->path && !*sp->path)
		return fail_at(ld, member(g, "path"), "\"path\" must not be empty (remove it for the default)");
	sp->sync_full = sync == 1;
	sp->drop_new = when_full == 1;
	sp->replay_history = replay == 1;
	sp->props_replays_only = props == 1;
	return parse_history_topic(ld, g, history, &sp->history_topic);
}

/*
 * "history_topic": a topic in which "{topic}" stands for the replayed
 * message's own topic, once at most; without it the text is a prefix
 * ("old" means "old/{topic}"). Stored as the template with "{topic}".
 */
static int parse_history_topic(struct loader *ld, const config_setting_t *g, const char *v, char **ret)
{
	const char *at = strstr(v, "{topic}");
	char probe[CONFIG_TOPIC_MAX + 16];
	size_t n;

	if (at && strstr(at + 1, "{topic}"))
		return fail_at(ld, member(g, "history_topic"), "\"history_topic\" may name {topic} once only");
	if (at)
		snprintf(probe, sizeof(probe), "%.*sx%s", (int)(at - v), v, at + strlen("{topic}"));
	else
		snprintf(probe, sizeof(probe), "%s/x", v);
	if (!*v || !config_topic_valid(probe))
		return fail_at(ld, member(g, "history_topic"),
		               "invalid history_topic \"%s\" (no '+', '#', empty levels or leading '$'; "
		               "\"{topic}\" stands for the message's topic)", v);
	n = strlen(v) + sizeof("/{topic}");
	*ret = malloc(n);
	if (!*ret)
		return -ENOMEM;
	snprintf(*ret, n, at ? "%s" : "%s/{topic}", v);
	return 0;
}

static int parse_time(struct loader *ld, const config_setting_t *root)
{
	struct sg_time_cfg *t = &ld->cfg->time;
	const config_setting_t *g = member(root, "time");
	int trust = 0, r;

	if ((r = need_group(ld, g, "time")) < 0 ||
	    (r = check_keys(ld, g, time_keys, " in time")) < 0 ||
	    (r = get_enum(ld, g, "trust", trust_names, &trust)) < 0 ||
	    (r = get_string_dup(ld, g, "sync_file", &t->sync_file)) < 0)
		return r;
	if (t->sync_file && t->sync_file[0] != '/')
		return fail_at(ld, member(g, "sync_file"), "\"sync_file\" must be an absolute path");
	t->trust_always = trust == 1;
	t->trust_file_only = trust == 2;
	return 0;
}

static int parse_discovery(struct loader *ld, const config_setting_t *root)
{
	struct sg_discovery_cfg *d = &ld->cfg->discovery;
	const config_setting_t *g = member(root, "discovery");
	const char *prefix = DEFAULT_DISCOVERY, *ha = NULL;
	int r;

	if ((r = need_group(ld, g, "discovery")) < 0 ||
	    (r = check_keys(ld, g, discovery_keys, " in discovery")) < 0 ||
	    (r = get_bool(ld, g, "enabled", &d->enabled)) < 0 ||
	    (r = get_string(ld, g, "prefix", &prefix)) < 0 ||
	    (r = get_string_dup(ld, g, "state_file", &d->state_file)) < 0 ||
	    (r = get_string(ld, g, "ha_status_topic", &ha)) < 0)
		return r;
	if (d->enabled && ld->cfg->mqtt.cloud == SG_CLOUD_AZURE)
		return not_with_cloud(ld, member(g, "enabled"), "discovery (Home Assistant's topics)");
	if (d->state_file && !*d->state_file)
		return fail_at(ld, member(g, "state_file"), "\"state_file\" must not be empty (remove it for the default)");
	if (!config_topic_valid(prefix))
		return fail_at(ld, member(g, "prefix"), "invalid discovery prefix \"%s\"", prefix);
	if ((r = dup_to(ld, &d->prefix, prefix)) < 0)
		return r;
	/* Home Assistant's birth and will (its MQTT options: "Birth message" / "Last will message"). */
	if (ha) {
		if (!config_topic_valid(ha))
			return fail_at(ld, member(g, "ha_status_topic"), "invalid ha_status_topic \"%s\"", ha);
		return dup_to(ld, &d->ha_status_topic, ha);
	}
	if (asprintf(&d->ha_status_topic, "%s/status", prefix) < 0) {
		d->ha_status_topic = NULL;
		return fail_oom(ld);
	}
	if (!config_topic_valid(d->ha_status_topic))
		return fail_at(ld, member(g, "prefix"), "discovery prefix \"%s\" is too long for \"%s/status\"", prefix,
		               prefix);
	return 0;
}

/* --- commands ------------------------------------------------------------- */

/* T equals P or lies under it ("P/..."). */
static bool topic_under(const char *t, const char *p)
{
	size_t n = strlen(p);

	return strncmp(t, p, n) == 0 && (t[n] == '\0' || t[n] == '/');
}

/* Rules for all commands; the Response Topic rules themselves are in response_topic.c. */
static int parse_commands(struct loader *ld, const config_setting_t *root)
{
	struct sg_config *cfg = ld->cfg;
	const config_setting_t *g = member(root, "commands");
	const char *p = NULL;
	int r;

	if ((r = need_group(ld, g, "commands")) < 0 ||
	    (r = check_keys(ld, g, commands_keys, " in commands")) < 0 ||
	    (r = get_string(ld, g, "response_topic_prefix", &p)) < 0)
		return r;
	if (!p)
		return 0;
	if (!config_topic_valid(p))
		return fail_at(ld, member(g, "response_topic_prefix"), "invalid response_topic_prefix \"%s\": a topic "
		               "such as \"replies\" (Response Topics must then lie under \"replies/\"; no '+', '#', "
		               "empty levels, leading or trailing '/', leading '$')", p);
	if (topic_under(p, cfg->base_topic) || topic_under(p, cfg->discovery.prefix))
		return fail_at(ld, member(g, "response_topic_prefix"), "response_topic_prefix \"%s\" lies under %s "
		               "\"%s\", where the gateway never answers: every Response Topic would be refused", p,
		               topic_under(p, cfg->base_topic) ? "the base topic" : "the discovery prefix",
		               topic_under(p, cfg->base_topic) ? cfg->base_topic : cfg->discovery.prefix);
	return dup_to(ld, &cfg->commands.response_topic_prefix, p);
}

/* --- metrics -------------------------------------------------------------- */

/* node_exporter's textfile collector reads only "*.prom" files of its directory. */
#define METRICS_SUFFIX ".prom"
/* The scrape interval of Prometheus' example configuration (documentation/examples/prometheus.yml). */
#define DEFAULT_METRICS_INTERVAL_S 15

static int parse_metrics(struct loader *ld, const config_setting_t *root)
{
	struct sg_metrics_cfg *mc = &ld->cfg->metrics;
	const config_setting_t *g = member(root, "metrics");
	const char *path = NULL, *base;
	size_t n;
	int r;

	mc->interval_s = DEFAULT_METRICS_INTERVAL_S;
	if ((r = need_group(ld, g, "metrics")) < 0 ||
	    (r = check_keys(ld, g, metrics_keys, " in metrics")) < 0 ||
	    (r = get_string(ld, g, "path", &path)) < 0 ||
	    (r = get_double_range(ld, g, "interval", 1, 3600, false, &mc->interval_s)) < 0)
		return r;
	if (!path) {
		if (member(g, "interval"))
			return fail_at(ld, member(g, "interval"), "\"interval\" in metrics needs \"path\"");
		return 0;
	}
	base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	n = strlen(base);
	if (n <= strlen(METRICS_SUFFIX) || strcmp(base + n - strlen(METRICS_SUFFIX), METRICS_SUFFIX) != 0)
		return fail_at(ld, member(g, "path"), "metrics \"path\" \"%s\" must name a file ending in \"%s\" "
		               "(node_exporter's textfile collector reads only those)", path, METRICS_SUFFIX);
	return dup_to(ld, &mc->path, path);
}

/* --- health --------------------------------------------------------------- */

/* Link quality (health.h): sampled every 10 s over the last 5 minutes unless said otherwise. */
#define DEFAULT_HEALTH_INTERVAL_S 10
#define DEFAULT_HEALTH_WINDOW_S   300

static int parse_health(struct loader *ld, const config_setting_t *root)
{
	struct sg_health_cfg *hc = &ld->cfg->health;
	const config_setting_t *g = member(root, "health");
	int r;

	hc->interval_s = DEFAULT_HEALTH_INTERVAL_S;
	hc->window_s = DEFAULT_HEALTH_WINDOW_S;
	if ((r = need_group(ld, g, "health")) < 0 ||
	    (r = check_keys(ld, g, health_keys, " in health")) < 0 ||
	    (r = get_bool(ld, g, "publish", &hc->publish)) < 0 ||
	    (r = get_double_range(ld, g, "interval", 1, 3600, false, &hc->interval_s)) < 0 ||
	    (r = get_double_range(ld, g, "window", 10, 86400, false, &hc->window_s)) < 0)
		return r;
	if (hc->window_s < hc->interval_s)
		return fail_at(ld, member(g, "window"), "health \"window\" (%g s) must not be shorter than its "
		               "\"interval\" (%g s)", hc->window_s, hc->interval_s);
	if (hc->publish && ld->cfg->mqtt.cloud == SG_CLOUD_AZURE)
		return not_with_cloud(ld, member(g, "publish"), "health \"publish\" (a health topic per device)");
	return 0;
}

/* --- devices -------------------------------------------------------------- */

/* qos, retain, payload, offline: allowed on a device (defaults) and on each reading. */
static int parse_delivery(struct loader *ld, const config_setting_t *g, struct sg_reading_cfg *rc)
{
	int payload = (int)rc->payload, offline = (int)rc->offline;
	int r;

	if ((r = get_int_range(ld, g, "qos", 0, 2, &rc->qos)) < 0 ||
	    (r = get_bool(ld, g, "retain", &rc->retain)) < 0 ||
	    (r = get_enum(ld, g, "payload", payload_names, &payload)) < 0 ||
	    (r = get_enum(ld, g, "offline", offline_names, &offline)) < 0)
		return r;
	rc->payload = (enum sg_payload_format)payload;
	rc->offline = (enum sg_offline_policy)offline;
	if (ld->cfg->mqtt.cloud != SG_CLOUD_NONE) {
		/* Azure IoT Hub closes the connection over a QoS 2 message and keeps no retained messages
		 * (learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub); AWS IoT Core takes QoS 0 and 1
		 * only (docs.aws.amazon.com/iot/latest/developerguide/mqtt.html). Batches are never retained. */
		if (rc->qos == 2)
			return fail_at(ld, member(g, "qos"), "qos 2: cloud = \"%s\" takes QoS 0 and 1 only (the service "
			               "does not take QoS 2 messages); use qos = 1", cloud_names[ld->cfg->mqtt.cloud]);
		rc->retain = false;
		rc->payload = SG_PAYLOAD_JSON;
	}
	return 0;
}

static void reading_cfg_release(struct sg_reading_cfg *rc)
{
	free(rc->field);
	free(rc->topic);
	free(rc->unit);
	free((char *)rc->device_class);
	free(rc->state_class);
	filter_specs_free(rc->filters, rc->n_filters);
}

/* Field I of device D: the driver's table, or (data-defined drivers) what its options name. */
static const char *device_field(const struct sg_device_cfg *d, size_t i, char *name, size_t len)
{
	struct sg_field_info fi;

	if (d->driver->fields) {
		for (size_t k = 0; d->driver->fields[k].name; k++)
			if (k == i)
				return d->driver->fields[k].name;
		return NULL;
	}
	if (d->driver->option_field && d->driver->option_field(d->opts, i, name, len, &fi))
		return fi.name;
	return NULL;
}

static bool device_has_field(const struct sg_device_cfg *d, const char *field)
{
	char name[128];
	const char *f;

	for (size_t i = 0; (f = device_field(d, i, name, sizeof(name))); i++)
		if (strcmp(f, field) == 0)
			return true;
	return false;
}

/* Whether FIELD of D is a momentary event (a button press), or, with FIELD NULL, every field of D is. */
static bool device_field_is_event(const struct sg_device_cfg *d, const char *field)
{
	struct sg_field_info fi;
	char name[128];
	bool any = false;

	for (size_t i = 0;; i++) {
		if (d->driver->fields) {
			if (!d->driver->fields[i].name)
				break;
			fi = d->driver->fields[i];
		} else if (!d->driver->option_field || !d->driver->option_field(d->opts, i, name, sizeof(name), &fi)) {
			break;
		}
		if (field && strcmp(fi.name, field) == 0)
			return fi.event_types != NULL;
		if (!field && !fi.event_types)
			return false;
		any = true;
	}
	return !field && any;
}

/* Events are never retained: refuse retain = true at S (G's setting), else make RC->retain false. */
static int no_retained_events(struct loader *ld, const config_setting_t *g, const char *what, struct sg_reading_cfg *rc)
{
	const config_setting_t *r = member(g, "retain");

	if (r && rc->retain)
		return fail_at(ld, r, "%s: events are never retained (a retained press would fire again for every "
		               "subscriber that connects)", what);
	rc->retain = false;
	return 0;
}

static void device_field_list(char *buf, size_t len, const struct sg_device_cfg *d)
{
	char name[128];
	const char *f;
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; off < len && (f = device_field(d, i, name, sizeof(name))); i++) {
		int n = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", f);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* --- filters (filters.h) ---------------------------------------------------- */

#define FILTER_WINDOW_MAX 1000 /* median window, send_every: a sample buffer, allocated once */
#define FILTER_POLY_MAX   10   /* calibrate_polynomial coefficients: degree 9 is already absurd */
#define FILTER_OR_DEPTH   4    /* or inside or inside ...: enough for anyone, bounded recursion */

static const char *const filter_names[] = {
	"median", "exponential_moving_average", "clamp", "filter_out", "calibrate_linear",
	"calibrate_polynomial", "timeout", "delta", "or", NULL,
};
static const char *const median_keys[] = {"window_size", "send_every", "send_first_at", NULL};
static const char *const ema_keys[] = {"alpha", "time_constant", "send_every", "send_first_at", NULL};
static const char *const clamp_keys[] = {"min_value", "max_value", "ignore_out_of_range", NULL};
static const char *const timeout_keys[] = {"timeout", "value", NULL};
static const char *const delta_keys[] = {"min_value", "max_value", NULL};


/* A delta bound: a number, or a string "N%" (percent of the last value passed). */
static int delta_bound_parse(struct loader *ld, const config_setting_t *s, const char *what, double *out,
                             bool *percent)
{
	*percent = false;
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		const char *t = config_setting_get_string(s);
		char *end;
		double v = strtod(t, &end);

		if (end == t || strcmp(end, "%") != 0 || !isfinite(v) || v < 0)
			return fail_at(ld, s, "%s must be a number or a percentage such as \"5%%\", not \"%s\"", what, t);
		*out = v;
		*percent = true;
		return 0;
	}
	if (setting_number(ld, s, what, out) < 0)
		return -EINVAL;
	if (*out < 0)
		return fail_at(ld, s, "%s must not be negative", what);
	return 0;
}

/* A list or array of numbers at S into a new array *ret (*n entries), at least MIN of them. */
static int number_list(struct loader *ld, const config_setting_t *s, const char *what, size_t min, size_t max,
                       double **ret, size_t *n)
{
	int len = config_setting_length(s);

	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return fail_at(ld, s, "%s must be a list of numbers: [ 1.0, 2.0 ]", what);
	if ((size_t)len < min || (size_t)len > max)
		return fail_at(ld, s, "%s needs %zu to %zu numbers, not %d", what, min, max, len);
	*ret = calloc((size_t)len, sizeof(double));
	if (!*ret)
		return fail_oom(ld);
	*n = (size_t)len;
	for (int i = 0; i < len; i++)
		if (setting_number(ld, config_setting_get_elem(s, (unsigned)i), what, &(*ret)[i]) < 0)
			return -EINVAL;
	return 0;
}

/* One calibrate_linear point: [ measured, truth ] or "measured -> truth" (ESPHome's spelling). */
static int linear_point(struct loader *ld, const config_setting_t *e, double *x, double *y)
{
	if (config_setting_type(e) == CONFIG_TYPE_STRING) {
		const char *t = config_setting_get_string(e);
		char *end, *end2;

		*x = strtod(t, &end);
		while (*end == ' ')
			end++;
		if (end != t && strncmp(end, "->", 2) == 0) {
			*y = strtod(end + 2, &end2);
			while (*end2 == ' ')
				end2++;
			if (end2 != end + 2 && !*end2 && isfinite(*x) && isfinite(*y))
				return 0;
		}
		return fail_at(ld, e, "calibrate_linear: \"%s\" is not a point \"measured -> truth\"", t);
	}
	if ((config_setting_is_array(e) || config_setting_is_list(e)) && config_setting_length(e) == 2)
		return setting_number(ld, config_setting_get_elem(e, 0), "calibrate_linear: a measured value", x) < 0 ||
		               setting_number(ld, config_setting_get_elem(e, 1), "calibrate_linear: a true value", y) < 0
		       ? -EINVAL
		       : 0;
	return fail_at(ld, e, "calibrate_linear: each point is [ measured, true ] or \"measured -> true\"");
}

static int parse_filter_list(struct loader *ld, const config_setting_t *list, const struct sg_reading_cfg *rc,
                             int depth, struct sg_filter_spec **ret, size_t *ret_n);

/* One entry of a filters list: a group holding exactly one filter. */
static int parse_filter(struct loader *ld, const config_setting_t *e, const struct sg_reading_cfg *rc, int depth,
                        struct sg_filter_spec *f)
{
	const config_setting_t *s;
	const char *name;
	char list[256];
	int kind = -1, r;

	sg_opt_quote_list(list, sizeof(list), filter_names);
	if (!config_setting_is_group(e) || config_setting_length(e) != 1)
		return fail_at(ld, e, "each filter is a group with one filter in it, e.g. { median = { window_size = 5; }; } "
		               "(filters: %s)", list);
	s = config_setting_get_elem(e, 0);
	name = config_setting_name(s);
	f->line = (int)config_setting_source_line(s);
	for (int i = 0; filter_names[i]; i++)
		if (strcmp(filter_names[i], name) == 0)
			kind = i;
	if (kind < 0)
		return fail_at(ld, s, "unknown filter \"%s\" (filters: %s)", name, list);
	f->kind = (enum sg_filter_kind)kind;

	switch (f->kind) {
	case SG_FILTER_MEDIAN:
		/* ESPHome's defaults: window_size 5, send_every 5, send_first_at 1 */
		f->u.median.window = 5;
		f->u.median.send_every = 5;
		f->u.median.send_first_at = 1;
		if (!config_setting_is_group(s))
			return fail_at(ld, s, "median is a group: median = { window_size = 5; send_every = 1; };");
		if ((r = check_keys(ld, s, median_keys, " in filter \"median\"")) < 0 ||
		    (r = get_int_range(ld, s, "window_size", 1, FILTER_WINDOW_MAX, &f->u.median.window)) < 0 ||
		    (r = get_int_range(ld, s, "send_every", 1, FILTER_WINDOW_MAX, &f->u.median.send_every)) < 0 ||
		    (r = get_int_range(ld, s, "send_first_at", 1, FILTER_WINDOW_MAX, &f->u.median.send_first_at)) < 0)
			return r;
		if (f->u.median.send_first_at > f->u.median.send_every)
			return fail_at(ld, member(s, "send_first_at"), "median: \"send_first_at\" (%d) must not exceed "
			               "\"send_every\" (%d)", f->u.median.send_first_at, f->u.median.send_every);
		return 0;
	case SG_FILTER_EMA:
		/* ESPHome's defaults: alpha 0.1, send_every 15, send_first_at 1 */
		f->u.ema.alpha = 0.1;
		f->u.ema.send_every = 15;
		f->u.ema.send_first_at = 1;
		if (!config_setting_is_group(s))
			return fail_at(ld, s, "exponential_moving_average is a group: "
			               "exponential_moving_average = { alpha = 0.1; send_every = 1; };");
		if ((r = check_keys(ld, s, ema_keys, " in filter \"exponential_moving_average\"")) < 0 ||
		    (r = get_double_range(ld, s, "alpha", 0, 1, true, &f->u.ema.alpha)) < 0 ||
		    (r = get_double_range(ld, s, "time_constant", 0, 1e9, true, &f->u.ema.time_constant_s)) < 0 ||
		    (r = get_int_range(ld, s, "send_every", 1, FILTER_WINDOW_MAX, &f->u.ema.send_every)) < 0 ||
		    (r = get_int_range(ld, s, "send_first_at", 1, FILTER_WINDOW_MAX, &f->u.ema.send_first_at)) < 0)
			return r;
		if (member(s, "alpha") && member(s, "time_constant"))
			return fail_at(ld, member(s, "time_constant"), "exponential_moving_average: give \"alpha\" or "
			               "\"time_constant\", not both");
		if (f->u.ema.send_first_at > f->u.ema.send_every)
			return fail_at(ld, member(s, "send_first_at"), "exponential_moving_average: \"send_first_at\" (%d) "
			               "must not exceed \"send_every\" (%d)", f->u.ema.send_first_at, f->u.ema.send_every);
		return 0;
	case SG_FILTER_CLAMP:
		f->u.clamp.min = -HUGE_VAL;
		f->u.clamp.max = HUGE_VAL;
		if (!config_setting_is_group(s))
			return fail_at(ld, s, "clamp is a group: clamp = { min_value = 0; max_value = 100; };");
		if ((r = check_keys(ld, s, clamp_keys, " in filter \"clamp\"")) < 0 ||
		    (r = get_double_range(ld, s, "min_value", -HUGE_VAL, HUGE_VAL, false, &f->u.clamp.min)) < 0 ||
		    (r = get_double_range(ld, s, "max_value", -HUGE_VAL, HUGE_VAL, false, &f->u.clamp.max)) < 0 ||
		    (r = get_bool(ld, s, "ignore_out_of_range", &f->u.clamp.drop)) < 0)
			return r;
		if (!member(s, "min_value") && !member(s, "max_value"))
			return fail_at(ld, s, "clamp needs \"min_value\", \"max_value\" or both");
		if (f->u.clamp.min > f->u.clamp.max)
			return fail_at(ld, member(s, "max_value"), "clamp: \"max_value\" (%g) is below \"min_value\" (%g)",
			               f->u.clamp.max, f->u.clamp.min);
		return 0;
	case SG_FILTER_FILTER_OUT:
		f->u.filter_out.decimals = rc->round;
		if (config_setting_is_scalar(s)) {
			if (!(f->u.filter_out.values = calloc(1, sizeof(double))))
				return fail_oom(ld);
			f->u.filter_out.n = 1;
			return setting_number(ld, s, "filter_out", &f->u.filter_out.values[0]);
		}
		return number_list(ld, s, "filter_out", 1, FILTER_WINDOW_MAX, &f->u.filter_out.values, &f->u.filter_out.n);
	case SG_FILTER_CALIBRATE_LINEAR: {
		int n = config_setting_length(s);
		double *x, *y;

		if (!config_setting_is_list(s) && !config_setting_is_array(s))
			return fail_at(ld, s, "calibrate_linear is a list of points: "
			               "calibrate_linear = ( \"0.0 -> 1.0\", \"10.0 -> 12.1\" );");
		if (n < 2)
			return fail_at(ld, s, "calibrate_linear needs at least two points, not %d", n);
		x = calloc((size_t)n, sizeof(double));
		y = calloc((size_t)n, sizeof(double));
		r = x && y ? 0 : fail_oom(ld);
		for (int i = 0; i < n && r == 0; i++)
			r = linear_point(ld, config_setting_get_elem(s, (unsigned)i), &x[i], &y[i]);
		if (r == 0 && filter_fit_linear(x, y, (size_t)n, &f->u.linear.slope, &f->u.linear.intercept) < 0)
			r = fail_at(ld, s, "calibrate_linear: the measured values are all the same: no line fits them");
		free(x);
		free(y);
		f->u.linear.points = (size_t)n;
		return r;
	}
	case SG_FILTER_CALIBRATE_POLYNOMIAL:
		return number_list(ld, s, "calibrate_polynomial (coefficients c0, c1, c2 ...)", 1, FILTER_POLY_MAX,
		                   &f->u.poly.coef, &f->u.poly.n);
	case SG_FILTER_TIMEOUT: {
		const config_setting_t *t = s, *v = NULL;

		f->u.timeout.what = SG_TIMEOUT_UNAVAILABLE;
		if (config_setting_is_group(s)) {
			if ((r = check_keys(ld, s, timeout_keys, " in filter \"timeout\"")) < 0 ||
			    (r = require(ld, s, "timeout", "filter \"timeout\"")) < 0)
				return r;
			t = member(s, "timeout");
			v = member(s, "value");
		}
		if ((r = setting_number(ld, t, "timeout (seconds)", &f->u.timeout.after_s)) < 0)
			return r;
		if (!(f->u.timeout.after_s > 0))
			return fail_at(ld, t, "timeout must be greater than 0 seconds");
		if (!v)
			return 0;
		if (config_setting_type(v) == CONFIG_TYPE_STRING) {
			const char *w = config_setting_get_string(v);
			if (strcmp(w, "last") == 0)
				f->u.timeout.what = SG_TIMEOUT_LAST;
			else if (strcmp(w, "unavailable") != 0)
				return fail_at(ld, v, "timeout: \"value\" must be \"last\", \"unavailable\" or a number, not \"%s\"", w);
			return 0;
		}
		f->u.timeout.what = SG_TIMEOUT_NUMBER;
		return setting_number(ld, v, "timeout: \"value\"", &f->u.timeout.value);
	}
	case SG_FILTER_DELTA:
		f->u.delta.max = HUGE_VAL;
		if (!config_setting_is_group(s))
			return delta_bound_parse(ld, s, "delta", &f->u.delta.min, &f->u.delta.min_percent);
		if ((r = check_keys(ld, s, delta_keys, " in filter \"delta\"")) < 0)
			return r;
		if (!member(s, "min_value") && !member(s, "max_value"))
			return fail_at(ld, s, "delta needs \"min_value\", \"max_value\" or both");
		if (member(s, "min_value") && (r = delta_bound_parse(ld, member(s, "min_value"), "delta: \"min_value\"",
		                                                     &f->u.delta.min, &f->u.delta.min_percent)) < 0)
			return r;
		if (member(s, "max_value") && (r = delta_bound_parse(ld, member(s, "max_value"), "delta: \"max_value\"",
		                                                     &f->u.delta.max, &f->u.delta.max_percent)) < 0)
			return r;
		return 0;
	case SG_FILTER_OR:
		if (depth >= FILTER_OR_DEPTH)
			return fail_at(ld, s, "\"or\" nested more than %d deep", FILTER_OR_DEPTH);
		if (!config_setting_is_list(s) || config_setting_length(s) < 1)
			return fail_at(ld, s, "or is a list of filters: or = ( { delta = 1.0; }, { timeout = 60; } );");
		return parse_filter_list(ld, s, rc, depth + 1, &f->u.any.branches, &f->u.any.n);
	}
	return fail_at(ld, s, "unknown filter \"%s\"", name);
}

static int parse_filter_list(struct loader *ld, const config_setting_t *list, const struct sg_reading_cfg *rc,
                             int depth, struct sg_filter_spec **ret, size_t *ret_n)
{
	int n = config_setting_length(list), r;

	/* zeroed: a median spec owns nothing, so a list freed half-parsed frees what it holds */
	*ret = calloc((size_t)n, sizeof(**ret));
	if (!*ret)
		return fail_oom(ld);
	*ret_n = (size_t)n;
	for (int i = 0; i < n; i++)
		if ((r = parse_filter(ld, config_setting_get_elem(list, (unsigned)i), rc, depth, &(*ret)[i])) < 0)
			return r;
	return 0;
}

/* A reading's `filters` list, after its `round` (filter_out compares to it). */
static int parse_filters(struct loader *ld, const config_setting_t *list, struct sg_reading_cfg *rc)
{
	if (!list)
		return 0;
	if (!config_setting_is_list(list))
		return fail_at(ld, list, "\"filters\" must be a list: filters = ( { median = { window_size = 5; }; }, ... );");
	if (config_setting_length(list) == 0)
		return fail_at(ld, list, "\"filters\" is empty (remove it for none)");
	return parse_filter_list(ld, list, rc, 0, &rc->filters, &rc->n_filters);
}

static int parse_reading(struct loader *ld, struct sg_device_cfg *d, const config_setting_t *s,
                         struct sg_reading_cfg *rc)
{
	const char *field = NULL, *topic = NULL, *device_class = NULL, *state_class = NULL;
	char what[128], where[136], *rel;
	int r;

	/* start from the device's settings; the pointers stay NULL until set below */
	*rc = d->defaults;
	rc->field = rc->topic = rc->unit = NULL;
	rc->device_class = rc->state_class = NULL;
	rc->filters = NULL;
	rc->n_filters = 0;
	rc->line = (int)config_setting_source_line(s);

	if (!config_setting_is_group(s))
		return fail_at(ld, s, "device \"%s\": \"readings\" entries must be groups: { field = \"...\"; }", d->name);
	if ((r = get_string(ld, s, "field", &field)) < 0)
		return r;
	if (!field)
		return fail_at(ld, s, "device \"%s\": reading needs \"field\"", d->name);
	if (!field_name_valid(field))
		return fail_at(ld, member(s, "field"), "device \"%s\": invalid field name \"%s\" "
		               "(use letters, digits, '_', '-' and '.')", d->name, field);
	if ((r = dup_to(ld, &rc->field, field)) < 0)
		return r;
	snprintf(what, sizeof(what), "device \"%.40s\" reading \"%.40s\"", d->name, field);
	snprintf(where, sizeof(where), " in %s", what);
	if ((r = check_keys(ld, s, reading_keys, where)) < 0)
		return r;
	if ((d->driver->fields || d->driver->option_field) && !device_has_field(d, field)) {
		char list[256];
		device_field_list(list, sizeof(list), d);
		return fail_at(ld, member(s, "field"), "device \"%s\": driver \"%s\" has no field \"%s\" (fields: %s)",
		               d->name, d->driver->name, field, list);
	}
	if (d->driver->fields && d->driver->field_off && d->driver->field_off(d->opts, field))
		return fail_at(ld, member(s, "field"), "device \"%s\": field \"%s\" is not read with these options (set %s)",
		               d->name, field, d->driver->field_off(d->opts, field));

	if ((r = get_string(ld, s, "topic", &topic)) < 0 ||
	    (r = get_string_dup(ld, s, "unit", &rc->unit)) < 0 ||
	    (r = parse_delivery(ld, s, rc)) < 0 ||
	    (device_field_is_event(d, field) && (r = no_retained_events(ld, s, what, rc)) < 0) ||
	    (r = get_double_range(ld, s, "scale", -HUGE_VAL, HUGE_VAL, false, &rc->scale)) < 0 ||
	    (r = get_double_range(ld, s, "offset", -HUGE_VAL, HUGE_VAL, false, &rc->offset)) < 0 ||
	    (r = get_int_range(ld, s, "round", 0, 10, &rc->round)) < 0 ||
	    (r = get_double_range(ld, s, "deadband", 0, HUGE_VAL, false, &rc->deadband)) < 0 ||
	    (r = get_double_range(ld, s, "throttle", 0, HUGE_VAL, false, &rc->throttle_s)) < 0 ||
	    (r = get_double_range(ld, s, "heartbeat", 0, HUGE_VAL, false, &rc->heartbeat_s)) < 0 ||
	    (r = get_int_range(ld, s, "average", 1, 1000, &rc->average)) < 0 ||
	    (r = get_string(ld, s, "device_class", &device_class)) < 0 ||
	    (r = get_string(ld, s, "state_class", &state_class)) < 0 ||
	    (r = parse_filters(ld, member(s, "filters"), rc)) < 0)
		return r;
	/* what a timeout filter sends comes from a timer, outside the device's batch of readings */
	if (ld->cfg->mqtt.cloud != SG_CLOUD_NONE && filter_specs_timed(rc->filters, rc->n_filters))
		return fail_at(ld, member(s, "filters"), "a timeout filter cannot be used with cloud = \"%s\": its value "
		               "would go out apart from the device's telemetry message", cloud_names[ld->cfg->mqtt.cloud]);
	if (device_class) {
		if (!*device_class)
			return fail_at(ld, member(s, "device_class"), "\"device_class\" must not be empty");
		if (!(rc->device_class = strdup(device_class)))
			return fail_oom(ld);
	}
	if (state_class) {
		if (strcmp(state_class, "measurement") != 0 && strcmp(state_class, "total") != 0 &&
		    strcmp(state_class, "total_increasing") != 0)
			return fail_at(ld, member(s, "state_class"),
			               "\"state_class\" must be \"measurement\", \"total\" or \"total_increasing\"");
		if (!(rc->state_class = strdup(state_class)))
			return fail_oom(ld);
	}

	if (topic) {
		r = make_topic(ld, member(s, "topic"), what, topic, "", &rc->topic);
	} else {
		if (asprintf(&rel, "%s/%s", d->name, field) < 0)
			return fail_oom(ld);
		r = make_topic(ld, s, what, rel, "", &rc->topic);
		free(rel);
	}
	if (r < 0)
		return r;
	return topic_claim(ld, topic ? member(s, "topic") : s, rc->topic,
	                   "device \"%s\" field \"%s\"", d->name, field);
}

static int parse_readings(struct loader *ld, struct sg_device_cfg *d, const config_setting_t *dev)
{
	const config_setting_t *list = member(dev, "readings");
	int n, r;

	if (!list) {
		d->all_fields = true;
		if (!d->driver->fields)
			return 0;
		/* claim the topics the driver is known to produce, to catch collisions */
		for (const struct sg_field_info *f = d->driver->fields; f->name; f++) {
			char *t;
			if (asprintf(&t, "%s/%s/%s", ld->cfg->base_topic, d->name, f->name) < 0)
				return fail_oom(ld);
			r = topic_claim(ld, dev, t, "device \"%s\" field \"%s\"", d->name, f->name);
			free(t);
			if (r < 0)
				return r;
		}
		return 0;
	}
	if (!config_setting_is_list(list))
		return fail_at(ld, list, "\"readings\" must be a list: ( { field = \"...\"; }, ... )");
	n = config_setting_length(list);
	if (n == 0)
		return fail_at(ld, list, "device \"%s\": \"readings\" is empty (remove it to publish every field)",
		               d->name);
	d->readings = calloc((size_t)n, sizeof(*d->readings));
	if (!d->readings)
		return fail_oom(ld);
	d->n_readings = (size_t)n;
	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(list, (unsigned)i);

		if ((r = parse_reading(ld, d, s, &d->readings[i])) < 0)
			return r;
		for (int j = 0; j < i; j++)
			if (strcmp(d->readings[j].field, d->readings[i].field) == 0)
				return fail_at(ld, s, "device \"%s\": field \"%s\" is listed twice (first on line %d)",
				               d->name, d->readings[i].field, d->readings[j].line);
	}
	return 0;
}

/* The driver's framing at BAUD ("8E1"), 8N1 without one. */
static struct sg_serial_framing driver_framing(const struct sg_driver *drv, int baud)
{
	struct sg_serial_framing f = SG_SERIAL_8N1;

	if (drv->framing && line_framing_parse(drv->framing(baud), &f) < 0)
		f = SG_SERIAL_8N1;
	return f;
}

static int parse_serial_device(struct loader *ld, struct sg_device_cfg *d, const config_setting_t *s,
                               const char *what)
{
	struct sg_line_spec spec = {.settings = {.baud = d->driver->default_baud > 0 ? d->driver->default_baud
	                                                                               : DEFAULT_BAUD}};
	struct sg_serial_framing def;
	struct sg_opt_error oe = {.line = 0};
	int r;

	spec.settings.framing = SG_SERIAL_8N1;
	r = line_spec_parse(s, what, &spec, &oe);
	d->port = spec.port;
	d->usb_serial = spec.usb_serial;
	if (r == -ENOMEM)
		return fail_oom(ld);
	if (r < 0)
		return fail_at_line(ld, s, oe.line > 0 ? (unsigned)oe.line : (unsigned)d->line, "%s", oe.msg);
	/* a driver's default framing may depend on the baud rate (DSMR 2.2: 9600 7E1) */
	def = driver_framing(d->driver, spec.settings.baud);
	if (!spec.set_at[SG_LINE_KEY_DATA_BITS])
		spec.settings.framing.data_bits = def.data_bits;
	if (!spec.set_at[SG_LINE_KEY_PARITY])
		spec.settings.framing.parity = def.parity;
	if (!spec.set_at[SG_LINE_KEY_STOP_BITS])
		spec.settings.framing.stop_bits = def.stop_bits;
	d->baud = spec.settings.baud;
	d->framing = spec.settings.framing;
	memcpy(d->serial_set_at, spec.set_at, sizeof(d->serial_set_at));
	return 0;
}

static int parse_i2c_device(struct loader *ld, struct sg_device_cfg *d, const config_setting_t *s,
                            const char *what)
{
	int r;

	if ((r = dup_to(ld, &d->bus, DEFAULT_I2C_BUS)) < 0 ||
	    (r = get_string_dup(ld, s, "bus", &d->bus)) < 0 ||
	    (r = require(ld, s, "address", what)) < 0 ||
	    (r = get_int_range(ld, s, "address", 0, INT_MAX, &d->address)) < 0)
		return r;
	if (!*d->bus)
		return fail_at(ld, member(s, "bus"), "%s: \"bus\" must not be empty", what);
	if (d->address < I2C_ADDR_MIN || d->address > I2C_ADDR_MAX)
		return fail_at(ld, member(s, "address"), "\"address\" must be between 0x%02x and 0x%02x",
		               I2C_ADDR_MIN, I2C_ADDR_MAX);
	return 0;
}

/* Unknown keys of a device: the common ones, those of its bus, and its driver's own. */
static int check_device_keys(struct loader *ld, const struct sg_device_cfg *d, const config_setting_t *s)
{
	const struct sg_driver *drv = d->driver;
	const char *const *bus_keys = drv->bus == SG_BUS_SERIAL ? device_serial_keys
	                              : drv->bus == SG_BUS_I2C ? device_i2c_keys : NULL;
	const char *const *lists[4];
	const config_setting_t *u;
	const char *name;
	size_t n = 0;

	lists[n++] = device_keys;
	if (drv->option_keys)
		lists[n++] = drv->option_keys;
	if (bus_keys)
		lists[n++] = bus_keys;
	lists[n] = NULL;
	u = find_unknown(s, lists);
	if (!u)
		return 0;
	name = config_setting_name(u);
	if (in_list(device_serial_keys, name) || in_list(device_i2c_keys, name))
		return fail_at(ld, u, "\"%s\" does not apply to driver \"%s\" in device \"%s\"", name, drv->name,
		               d->name);
	return fail_at(ld, u, "unknown key \"%s\" in device \"%s\"", name, d->name);
}

static int unknown_driver(struct loader *ld, const config_setting_t *s, const char *driver)
{
	char known[512];
	size_t off = 0;

	known[0] = '\0';
	for (size_t i = 0; sg_drivers[i] && off < sizeof(known); i++) {
		int n = snprintf(known + off, sizeof(known) - off, "%s%s", i ? ", " : "", sg_drivers[i]->name);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	return fail_at(ld, s, "unknown driver \"%s\" (known: %s)", driver, known);
}

static int parse_device(struct loader *ld, const config_setting_t *s, size_t index)
{
	struct sg_config *cfg = ld->cfg;
	struct sg_device_cfg *d = &cfg->devices[index];
	const char *name = NULL, *driver = NULL;
	char what[96];
	int r;

	d->line = (int)config_setting_source_line(s);
	d->address = -1;
	d->serial_line = -1;
	if (!config_setting_is_group(s))
		return fail_at(ld, s, "\"devices\" entries must be groups: { name = \"...\"; driver = \"...\"; }");

	if ((r = get_string(ld, s, "name", &name)) < 0)
		return r;
	if (!name)
		return fail_at(ld, s, "device #%zu needs \"name\"", index + 1);
	if (!config_name_valid(name))
		return fail_at(ld, member(s, "name"), "invalid device name \"%s\" (use letters, digits, '_' and '-')",
		               name);
	for (size_t i = 0; i < index; i++)
		if (strcmp(cfg->devices[i].name, name) == 0)
			return fail_at(ld, member(s, "name"), "duplicate device name \"%s\" (first on line %d)", name,
			               cfg->devices[i].line);
	if ((r = dup_to(ld, &d->name, name)) < 0)
		return r;
	snprintf(what, sizeof(what), "device \"%.80s\"", name);

	if ((r = get_string(ld, s, "driver", &driver)) < 0 || (r = require(ld, s, "driver", what)) < 0)
		return r;
	d->driver = sg_driver_find(driver);
	if (!d->driver)
		return unknown_driver(ld, member(s, "driver"), driver);
	if ((r = check_device_keys(ld, d, s)) < 0)
		return r;

	r = 0;
	if (d->driver->bus == SG_BUS_SERIAL)
		r = parse_serial_device(ld, d, s, what);
	else if (d->driver->bus == SG_BUS_I2C)
		r = parse_i2c_device(ld, d, s, what);
	if (r < 0)
		return r;

	d->interval_s = d->driver->default_interval_s > 0 ? d->driver->default_interval_s : DEFAULT_INTERVAL_S;
	d->defaults = (struct sg_reading_cfg){
		.qos = 0,
		.retain = true,
		.payload = cfg->payload,
		.offline = SG_OFFLINE_SPOOL,
		.scale = 1,
		.offset = 0,
		.round = -1,
		.line = d->line,
	};
	if ((r = get_double_range(ld, s, "interval", 0, 7 * 86400, true, &d->interval_s)) < 0 ||
	    (r = get_double_range(ld, s, "expire_after", 0, HUGE_VAL, false, &d->expire_after_s)) < 0 ||
	    (r = get_string_dup(ld, s, "path", &d->path)) < 0 ||
	    (r = parse_delivery(ld, s, &d->defaults)) < 0)
		return r;
	if (d->expire_after_s > 0 && ld->cfg->mqtt.cloud == SG_CLOUD_AZURE)
		return not_with_cloud(ld, member(s, "expire_after"), "\"expire_after\" (the device's status topic)");

	if (d->driver->parse_options) {
		struct sg_opt_error oe = {.line = 0};
		void *opts = NULL;

		r = d->driver->parse_options(s, &opts, &oe);
		if (r == -ENOMEM)
			return fail_oom(ld);
		if (r < 0)
			return fail_at_line(ld, s, oe.line > 0 ? (unsigned)oe.line : (unsigned)d->line, "%s: %s",
			                    what, oe.msg[0] ? oe.msg : "invalid driver options");
		d->opts = opts;
	}
	if (device_field_is_event(d, NULL) && (r = no_retained_events(ld, s, what, &d->defaults)) < 0)
		return r;

	return parse_readings(ld, d, s);
}

/* A list of groups (or an empty array); *ret_n its length. */
static int get_group_list(struct loader *ld, const config_setting_t *root, const char *key,
                          const config_setting_t **ret, int *ret_n)
{
	const config_setting_t *l = member(root, key);

	*ret = l;
	*ret_n = 0;
	if (!l)
		return 0;
	if (!config_setting_is_list(l) && !(config_setting_is_array(l) && config_setting_length(l) == 0))
		return fail_at(ld, l, "\"%s\" must be a list: %s = ( { ... }, { ... } );", key, key);
	*ret_n = config_setting_length(l);
	return 0;
}

static int parse_devices(struct loader *ld, const config_setting_t *root)
{
	struct sg_config *cfg = ld->cfg;
	const config_setting_t *list;
	int n, r;

	if ((r = get_group_list(ld, root, "devices", &list, &n)) < 0 || n == 0)
		return r;
	cfg->devices = calloc((size_t)n, sizeof(*cfg->devices));
	if (!cfg->devices)
		return fail_oom(ld);
	cfg->n_devices = (size_t)n;
	for (int i = 0; i < n; i++)
		if ((r = parse_device(ld, config_setting_get_elem(list, (unsigned)i), (size_t)i)) < 0)
			return r;
	return 0;
}

/* --- actuators ---------------------------------------------------------- */

/* KEY is only meaningful when COND holds; say so otherwise. */
static int only_if(struct loader *ld, const config_setting_t *g, const char *key, bool cond, const char *what)
{
	struct sg_opt_error oe;

	return opt_result(ld, sg_opt_only_if(g, key, cond, what, &oe), &oe);
}

static int parse_options_list(struct loader *ld, struct sg_actuator_cfg *a, const config_setting_t *g)
{
	const config_setting_t *l = member(g, "options");
	int n;

	if (!l)
		return fail_at(ld, g, "actuator \"%s\": type \"enum\" needs \"options\"", a->name);
	if (!config_setting_is_list(l) && !config_setting_is_array(l))
		return fail_at(ld, l, "\"options\" must be a list of strings: [ \"low\", \"high\" ]");
	n = config_setting_length(l);
	if (n == 0)
		return fail_at(ld, l, "\"options\" is empty");
	a->options = calloc((size_t)n, sizeof(*a->options));
	if (!a->options)
		return fail_oom(ld);
	a->n_options = (size_t)n;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
		const char *v;
		int r;

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return fail_at(ld, e, "\"options\" entries must be strings");
		v = config_setting_get_string(e);
		if (!*v)
			return fail_at(ld, e, "\"options\" entries must not be empty");
		for (int j = 0; j < i; j++)
			if (strcmp(a->options[j], v) == 0)
				return fail_at(ld, e, "option \"%s\" is listed twice", v);
		if ((r = dup_to(ld, &a->options[i], v)) < 0)
			return r;
	}
	return 0;
}

/* An initial/safe payload must be one the actuator accepts as a command. */
static int check_payload_value(struct loader *ld, const struct sg_actuator_cfg *a, const config_setting_t *g,
                               const char *key, const char *v)
{
	const config_setting_t *s = member(g, key);
	char *end;
	double x;

	if (!v)
		return 0;
	switch (a->kind) {
	case SG_ACT_SWITCH:
		if (strcmp(v, a->payload_on) != 0 && strcmp(v, a->payload_off) != 0)
			return fail_at(ld, s, "\"%s\" must be \"%s\" or \"%s\"", key, a->payload_on, a->payload_off);
		return 0;
	case SG_ACT_NUMBER:
		errno = 0;
		x = strtod(v, &end);
		if (errno || end == v || *end || !isfinite(x) || x < a->min || x > a->max)
			return fail_at(ld, s, "\"%s\" must be a number between %g and %g", key, a->min, a->max);
		return 0;
	case SG_ACT_ENUM:
		for (size_t i = 0; i < a->n_options; i++)
			if (strcmp(a->options[i], v) == 0)
				return 0;
		return fail_at(ld, s, "\"%s\" must be one of the \"options\"", key);
	}
	return 0;
}

static int parse_actuator_kind(struct loader *ld, struct sg_actuator_cfg *a, const config_setting_t *g)
{
	bool sw = a->kind == SG_ACT_SWITCH, num = a->kind == SG_ACT_NUMBER, en = a->kind == SG_ACT_ENUM;
	int r;

	if ((r = only_if(ld, g, "payload_on", sw, "type \"switch\"")) < 0 ||
	    (r = only_if(ld, g, "payload_off", sw, "type \"switch\"")) < 0 ||
	    (r = only_if(ld, g, "min", num, "type \"number\"")) < 0 ||
	    (r = only_if(ld, g, "max", num, "type \"number\"")) < 0 ||
	    (r = only_if(ld, g, "step", num, "type \"number\"")) < 0 ||
	    (r = only_if(ld, g, "options", en, "type \"enum\"")) < 0)
		return r;

	if (sw) {
		if ((r = dup_to(ld, &a->payload_on, "ON")) < 0 ||
		    (r = dup_to(ld, &a->payload_off, "OFF")) < 0 ||
		    (r = get_string_dup(ld, g, "payload_on", &a->payload_on)) < 0 ||
		    (r = get_string_dup(ld, g, "payload_off", &a->payload_off)) < 0)
			return r;
		if (!*a->payload_on || !*a->payload_off)
			return fail_at(ld, g, "actuator \"%s\": \"payload_on\" and \"payload_off\" must not be empty",
			               a->name);
		if (strcmp(a->payload_on, a->payload_off) == 0)
			return fail_at(ld, g, "actuator \"%s\": \"payload_on\" and \"payload_off\" must differ", a->name);
	} else if (num) {
		char what[96];

		snprintf(what, sizeof(what), "actuator \"%.80s\"", a->name);
		a->step = 1;
		if ((r = require(ld, g, "min", what)) < 0 || (r = require(ld, g, "max", what)) < 0 ||
		    (r = get_double_range(ld, g, "min", -HUGE_VAL, HUGE_VAL, false, &a->min)) < 0 ||
		    (r = get_double_range(ld, g, "max", -HUGE_VAL, HUGE_VAL, false, &a->max)) < 0 ||
		    (r = get_double_range(ld, g, "step", 0, HUGE_VAL, true, &a->step)) < 0)
			return r;
		if (a->min >= a->max)
			return fail_at(ld, member(g, "max"), "\"max\" (%g) must be greater than \"min\" (%g)", a->max,
			               a->min);
	} else if ((r = parse_options_list(ld, a, g)) < 0) {
		return r;
	}

	if ((r = get_string_dup(ld, g, "initial", &a->initial)) < 0 ||
	    (r = get_string_dup(ld, g, "safe", &a->safe)) < 0 ||
	    (r = check_payload_value(ld, a, g, "initial", a->initial)) < 0 ||
	    (r = check_payload_value(ld, a, g, "safe", a->safe)) < 0)
		return r;
	return 0;
}

/* "\"gpio\", \"serial\"": the actuator drivers there are, for messages. */
static void act_driver_list(char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; sg_act_drivers[i] && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s\"%s\"", i ? ", " : "", sg_act_drivers[i]->name);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* The driver named by the group's "driver" key, from the actuator registry. */
static int find_act_driver(struct loader *ld, struct sg_actuator_cfg *a, const config_setting_t *s, const char *what)
{
	const char *driver = NULL;
	char list[256];
	int r;

	if ((r = require(ld, s, "driver", what)) < 0 || (r = get_string(ld, s, "driver", &driver)) < 0)
		return r;
	a->drv = sg_act_driver_find(NULL, driver);
	if (!a->drv) {
		act_driver_list(list, sizeof(list));
		return fail_at(ld, member(s, "driver"), "\"driver\" must be one of %s", list);
	}
	return dup_to(ld, &a->driver, a->drv->name);
}

/* Unknown keys of an actuator: neither common nor its driver's; another driver's key is named as such. */
static int check_actuator_keys(struct loader *ld, const struct sg_actuator_cfg *a, const config_setting_t *s)
{
	const char *const *lists[] = {actuator_keys, a->drv->option_keys, NULL};
	const config_setting_t *u = find_unknown(s, lists);
	const char *k;

	if (!u)
		return 0;
	k = config_setting_name(u);
	for (size_t i = 0; sg_act_drivers[i]; i++)
		if (in_list(sg_act_drivers[i]->option_keys, k))
			return fail_at(ld, u, "\"%s\" does not apply to driver \"%s\" in actuator \"%s\"", k, a->driver,
			               a->name);
	return fail_at(ld, u, "unknown key \"%s\" in actuator \"%s\"", k, a->name);
}

/* The driver must be able to move the actuator's type: 'type "switch"', 'types "switch" and "number"'. */
static int check_actuator_kind(struct loader *ld, const struct sg_actuator_cfg *a, const config_setting_t *s,
                               const char *what)
{
	char list[96];
	size_t off = 0, n = 0, seen = 0;

	if (a->drv->kinds & SG_ACT_KIND_BIT(a->kind))
		return 0;
	for (size_t k = 0; kind_names[k]; k++)
		n += (a->drv->kinds & SG_ACT_KIND_BIT(k)) ? 1 : 0;
	list[0] = '\0';
	for (size_t k = 0; kind_names[k] && off < sizeof(list); k++) {
		int w;

		if (!(a->drv->kinds & SG_ACT_KIND_BIT(k)))
			continue;
		seen++;
		w = snprintf(list + off, sizeof(list) - off, "%s\"%s\"", seen == 1 ? "" : seen == n ? " and " : ", ",
		             kind_names[k]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
	if (n == 0)
		return fail_at(ld, member(s, "driver"), "%s: driver \"%s\" supports no type", what, a->driver);
	return fail_at(ld, member(s, "type") ? member(s, "type") : s, "%s: driver \"%s\" supports only %s %s", what,
	               a->driver, n == 1 ? "type" : "types", list);
}

/* The router's timers for switches, whatever the driver. */
static int parse_actuator_timers(struct loader *ld, struct sg_actuator_cfg *a, const config_setting_t *s)
{
	bool sw = a->kind == SG_ACT_SWITCH;
	int r;

	if ((r = only_if(ld, s, "pulse_ms", sw, "type \"switch\"")) < 0 ||
	    (r = only_if(ld, s, "max_on_s", sw, "type \"switch\"")) < 0 ||
	    (r = get_int_range(ld, s, "pulse_ms", 0, 3600000, &a->pulse_ms)) < 0 ||
	    (r = get_double_range(ld, s, "max_on_s", 0, 7 * 86400, false, &a->max_on_s)) < 0)
		return r;
	return 0;
}

/*
 * Fail-safe: to the safe state when the controller is gone (no broker for
 * fail_safe_after_s, or Home Assistant's status topic says "offline"). It
 * needs a safe state to go to: `safe`, or `initial` (the default of `safe`).
 */
static int parse_actuator_fail_safe(struct loader *ld, struct sg_actuator_cfg *a, const config_setting_t *s)
{
	const config_setting_t *k;
	int r;

	if ((r = get_double_range(ld, s, "fail_safe_after_s", 0, 7 * 86400, false, &a->fail_safe_after_s)) < 0 ||
	    (r = get_bool(ld, s, "fail_safe_on_ha_offline", &a->fail_safe_on_ha_offline)) < 0)
		return r;
	if (a->fail_safe_on_ha_offline && ld->cfg->mqtt.cloud == SG_CLOUD_AZURE)
		return not_with_cloud(ld, member(s, "fail_safe_on_ha_offline"), "\"fail_safe_on_ha_offline\" (Home "
		                      "Assistant's status topic)");
	if (a->safe || a->initial || (a->fail_safe_after_s <= 0 && !a->fail_safe_on_ha_offline))
		return 0;
	k = a->fail_safe_after_s > 0 ? member(s, "fail_safe_after_s") : member(s, "fail_safe_on_ha_offline");
	return fail_at(ld, k, "actuator \"%s\": \"%s\" needs a state to go to: set \"safe\" (or \"initial\")",
	               a->name, config_setting_name(k));
}

/* The driver's own keys, read by the driver (its messages are whole: no prefix here). */
static int parse_actuator_options(struct loader *ld, struct sg_actuator_cfg *a, const config_setting_t *s)
{
	struct sg_act_common common = {.name = a->name, .kind = a->kind};
	struct sg_opt_error oe = {.line = 0};
	void *opts = NULL;
	int r;

	if (!a->drv->parse_options)
		return 0;
	r = a->drv->parse_options(s, &common, &opts, &oe);
	if (r == -ENOMEM)
		return fail_oom(ld);
	if (r < 0)
		return fail_at_line(ld, s, oe.line > 0 ? (unsigned)oe.line : (unsigned)a->line, "%s",
		                    oe.msg[0] ? oe.msg : "invalid driver options");
	a->opts = opts;
	return 0;
}

/* State on <base>/<topic>, commands on <base>/<topic>/set, refusals on <base>/<topic>/error. */
static int parse_actuator_topics(struct loader *ld, struct sg_actuator_cfg *a, const config_setting_t *s,
                                 const char *what)
{
	const char *topic = NULL;
	const config_setting_t *ts;
	int r;

	if ((r = get_string(ld, s, "topic", &topic)) < 0)
		return r;
	ts = topic ? member(s, "topic") : s;
	if (!topic)
		topic = a->name;
	if ((r = make_topic(ld, ts, what, topic, "", &a->topic)) < 0 ||
	    (r = make_topic(ld, ts, what, topic, "/set", &a->command_topic)) < 0 ||
	    (r = make_topic(ld, ts, what, topic, "/error", &a->error_topic)) < 0 ||
	    (r = topic_claim(ld, ts, a->topic, "actuator \"%s\"", a->name)) < 0 ||
	    (r = topic_claim(ld, ts, a->command_topic, "actuator \"%s\" (command topic)", a->name)) < 0 ||
	    (r = topic_claim(ld, ts, a->error_topic, "actuator \"%s\" (error topic)", a->name)) < 0)
		return r;
	return 0;
}

static int parse_actuator(struct loader *ld, const config_setting_t *s, size_t index)
{
	struct sg_config *cfg = ld->cfg;
	struct sg_actuator_cfg *a = &cfg->actuators[index];
	const char *name = NULL, *interlock = NULL;
	char what[96];
	int kind = SG_ACT_SWITCH;
	int r;

	a->line = (int)config_setting_source_line(s);
	a->serial_line = -1;
	a->qos = 1;
	if (!config_setting_is_group(s))
		return fail_at(ld, s, "\"actuators\" entries must be groups: { name = \"...\"; driver = \"...\"; }");

	if ((r = get_string(ld, s, "name", &name)) < 0)
		return r;
	if (!name)
		return fail_at(ld, s, "actuator #%zu needs \"name\"", index + 1);
	if (!config_name_valid(name))
		return fail_at(ld, member(s, "name"), "invalid actuator name \"%s\" (use letters, digits, '_' and '-')",
		               name);
	for (size_t i = 0; i < index; i++)
		if (strcmp(cfg->actuators[i].name, name) == 0)
			return fail_at(ld, member(s, "name"), "duplicate actuator name \"%s\" (first on line %d)", name,
			               cfg->actuators[i].line);
	if ((r = dup_to(ld, &a->name, name)) < 0)
		return r;
	snprintf(what, sizeof(what), "actuator \"%.80s\"", name);

	if ((r = find_act_driver(ld, a, s, what)) < 0 || (r = check_actuator_keys(ld, a, s)) < 0)
		return r;

	if ((r = get_enum(ld, s, "type", kind_names, &kind)) < 0)
		return r;
	a->kind = (enum sg_actuator_kind)kind;
	if ((r = get_int_range(ld, s, "qos", 0, 2, &a->qos)) < 0)
		return r;
	if (a->qos == 2 && cfg->mqtt.cloud != SG_CLOUD_NONE)
		return fail_at(ld, member(s, "qos"), "qos 2: cloud = \"%s\" takes QoS 0 and 1 only; use qos = 1",
		               cloud_names[cfg->mqtt.cloud]);
	if ((r = get_bool(ld, s, "accept_retained", &a->accept_retained)) < 0 ||
	    (r = get_int_range(ld, s, "min_interval_ms", 0, 86400000, &a->min_interval_ms)) < 0 ||
	    (r = get_string(ld, s, "interlock", &interlock)) < 0)
		return r;
	if (interlock) {
		if (!config_name_valid(interlock))
			return fail_at(ld, member(s, "interlock"), "invalid interlock group \"%s\" "
			               "(use letters, digits, '_' and '-')", interlock);
		if ((r = dup_to(ld, &a->interlock, interlock)) < 0)
			return r;
	}
	if ((r = parse_actuator_kind(ld, a, s)) < 0 ||
	    (r = check_actuator_kind(ld, a, s, what)) < 0 ||
	    (r = parse_actuator_timers(ld, a, s)) < 0 ||
	    (r = parse_actuator_fail_safe(ld, a, s)) < 0 ||
	    (r = parse_actuator_options(ld, a, s)) < 0)
		return r;

	return parse_actuator_topics(ld, a, s, what);
}

/* Interlock groups hold switches, and at most one of a group may start or stop ON. */
static int check_interlocks(struct loader *ld, const config_setting_t *list)
{
	struct sg_config *cfg = ld->cfg;

	for (size_t i = 0; i < cfg->n_actuators; i++) {
		const struct sg_actuator_cfg *a = &cfg->actuators[i];
		const config_setting_t *s = config_setting_get_elem(list, (unsigned)i);

		if (!a->interlock)
			continue;
		if (a->kind != SG_ACT_SWITCH)
			return fail_at(ld, member(s, "interlock"), "actuator \"%s\": \"interlock\" applies only to "
			               "type \"switch\"", a->name);
		for (size_t j = 0; j < i; j++) {
			const struct sg_actuator_cfg *b = &cfg->actuators[j];
			const char *ai = a->initial, *as = a->safe ? a->safe : a->initial;
			const char *bi = b->initial, *bs = b->safe ? b->safe : b->initial;

			if (!b->interlock || strcmp(a->interlock, b->interlock) != 0)
				continue;
			if ((ai && bi && strcmp(ai, a->payload_on) == 0 && strcmp(bi, b->payload_on) == 0) ||
			    (as && bs && strcmp(as, a->payload_on) == 0 && strcmp(bs, b->payload_on) == 0))
				return fail_at(ld, s, "actuators \"%s\" and \"%s\" of interlock group \"%s\" would both be "
				               "on (initial/safe)", b->name, a->name, a->interlock);
		}
	}
	return 0;
}

static int parse_actuators(struct loader *ld, const config_setting_t *root)
{
	struct sg_config *cfg = ld->cfg;
	const config_setting_t *list;
	int n, r;

	if ((r = get_group_list(ld, root, "actuators", &list, &n)) < 0 || n == 0)
		return r;
	cfg->actuators = calloc((size_t)n, sizeof(*cfg->actuators));
	if (!cfg->actuators)
		return fail_oom(ld);
	cfg->n_actuators = (size_t)n;
	for (int i = 0; i < n; i++)
		if ((r = parse_actuator(ld, config_setting_get_elem(list, (unsigned)i), (size_t)i)) < 0)
			return r;
	return check_interlocks(ld, list);
}

/* --- serial lines: who shares which, and on what settings ------------------------------------- */

/* One entry on a serial line while the lines are worked out. */
struct line_entry {
	bool actuator;
	size_t index;
	const char *name;           /* the device's or actuator's */
	const char *driver;
	int line;                   /* of the entry */
	struct sg_line_spec spec;   /* strings borrowed */
	char key[PATH_MAX + 8];     /* "usb:<serial>", or the port's real path (or as written when it has none) */
	bool stream;                /* reads the line's unclaimed bytes */
};

static const char *const line_key_names[SG_LINE_KEY_N] = {"baud", "data_bits", "parity", "stop_bits"};

static void line_value_text(const struct sg_line_settings *s, enum sg_line_key k, char *buf, size_t len)
{
	switch (k) {
	case SG_LINE_KEY_BAUD:
		snprintf(buf, len, "%d", s->baud);
		break;
	case SG_LINE_KEY_DATA_BITS:
		snprintf(buf, len, "%u", s->framing.data_bits);
		break;
	case SG_LINE_KEY_PARITY:
		snprintf(buf, len, "\"%s\"", line_parity_name(s->framing.parity));
		break;
	default:
		snprintf(buf, len, "%u", s->framing.stop_bits);
		break;
	}
}

static bool line_value_equal(const struct sg_line_settings *a, const struct sg_line_settings *b, enum sg_line_key k)
{
	switch (k) {
	case SG_LINE_KEY_BAUD:
		return a->baud == b->baud;
	case SG_LINE_KEY_DATA_BITS:
		return a->framing.data_bits == b->framing.data_bits;
	case SG_LINE_KEY_PARITY:
		return a->framing.parity == b->framing.parity;
	default:
		return a->framing.stop_bits == b->framing.stop_bits;
	}
}

static void line_value_copy(struct sg_line_settings *to, const struct sg_line_settings *from, enum sg_line_key k)
{
	switch (k) {
	case SG_LINE_KEY_BAUD:
		to->baud = from->baud;
		break;
	case SG_LINE_KEY_DATA_BITS:
		to->framing.data_bits = from->framing.data_bits;
		break;
	case SG_LINE_KEY_PARITY:
		to->framing.parity = from->framing.parity;
		break;
	default:
		to->framing.stop_bits = from->framing.stop_bits;
		break;
	}
}

/* Every entry that uses a serial line; *ret_n of them (the array is malloc'd; may be NULL when none). */
static int line_entries(struct loader *ld, struct line_entry **ret, size_t *ret_n)
{
	const struct sg_config *cfg = ld->cfg;
	struct line_entry *e = calloc(cfg->n_devices + cfg->n_actuators + 1, sizeof(*e));
	size_t n = 0;

	if (!e)
		return fail_oom(ld);
	for (size_t i = 0; i < cfg->n_devices; i++) {
		const struct sg_device_cfg *d = &cfg->devices[i];

		if (d->driver->bus != SG_BUS_SERIAL)
			continue;
		e[n] = (struct line_entry){.actuator = false, .index = i, .name = d->name, .driver = d->driver->name,
		                           .line = d->line, .stream = sg_driver_streams(d->driver, d->opts)};
		e[n].spec.port = d->port;
		e[n].spec.usb_serial = d->usb_serial;
		e[n].spec.settings = (struct sg_line_settings){.baud = d->baud, .framing = d->framing};
		memcpy(e[n].spec.set_at, d->serial_set_at, sizeof(e[n].spec.set_at));
		n++;
	}
	for (size_t i = 0; i < cfg->n_actuators; i++) {
		const struct sg_actuator_cfg *a = &cfg->actuators[i];

		if (!a->drv || !a->drv->line || !a->opts)
			continue;
		e[n] = (struct line_entry){.actuator = true, .index = i, .name = a->name, .driver = a->drv->name,
		                           .line = a->line};
		if (!a->drv->line(a->opts, &e[n].spec))
			continue;
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		char *real;

		if (e[i].spec.usb_serial) {
			snprintf(e[i].key, sizeof(e[i].key), "usb:%s", e[i].spec.usb_serial);
			continue;
		}
		real = realpath(e[i].spec.port, NULL);
		snprintf(e[i].key, sizeof(e[i].key), "%s", real ? real : e[i].spec.port);
		free(real);
	}
	*ret = e;
	*ret_n = n;
	return 0;
}

#define ENTRY_KIND(e) ((e)->actuator ? "actuator" : "device")

/* The entries GROUP[0..N) share one line: one name for it, one setting per key, at most one stream reader. */
static int line_agree(struct loader *ld, const config_setting_t *root, struct line_entry **group, size_t n,
                      struct sg_line_settings *ret)
{
	const struct line_entry *first = group[0];
	const char *name = first->spec.port ? first->spec.port : first->spec.usb_serial;
	const struct line_entry *reader = NULL;

	for (size_t i = 1; i < n; i++) {
		const struct line_entry *e = group[i];
		const char *en = e->spec.port ? e->spec.port : e->spec.usb_serial;

		if (strcmp(en, name) != 0)
			return fail_at_line(ld, root, (unsigned)e->line,
			                    "%s \"%s\" names %s, which is %s of %s \"%s\" (line %d): name one port the same "
			                    "way in every entry", ENTRY_KIND(e), e->name, en, name, ENTRY_KIND(first),
			                    first->name, first->line);
	}
	*ret = first->spec.settings;
	for (int k = 0; k < SG_LINE_KEY_N; k++) {
		const struct line_entry *named = NULL;

		for (size_t i = 0; i < n; i++) {
			const struct line_entry *e = group[i];
			char a[32], b[32];

			if (!e->spec.set_at[k])
				continue;
			if (!named) {
				named = e;
				continue;
			}
			if (line_value_equal(&named->spec.settings, &e->spec.settings, (enum sg_line_key)k))
				continue;
			line_value_text(&e->spec.settings, (enum sg_line_key)k, a, sizeof(a));
			line_value_text(&named->spec.settings, (enum sg_line_key)k, b, sizeof(b));
			return fail_at_line(ld, root, (unsigned)e->spec.set_at[k],
			                    "%s \"%s\" sets %s = %s on %s, but %s \"%s\" (line %d) sets %s = %s: the devices "
			                    "and actuators of one line must agree", ENTRY_KIND(e), e->name,
			                    line_key_names[k], a, name, ENTRY_KIND(named), named->name, named->spec.set_at[k],
			                    line_key_names[k], b);
		}
		if (named) {
			line_value_copy(ret, &named->spec.settings, (enum sg_line_key)k);
			continue;
		}
		/* nobody names it: the drivers' defaults decide, and must agree */
		for (size_t i = 1; i < n; i++) {
			const struct line_entry *e = group[i];
			char a[32], b[32];

			if (line_value_equal(&first->spec.settings, &e->spec.settings, (enum sg_line_key)k))
				continue;
			line_value_text(&e->spec.settings, (enum sg_line_key)k, a, sizeof(a));
			line_value_text(&first->spec.settings, (enum sg_line_key)k, b, sizeof(b));
			return fail_at_line(ld, root, (unsigned)e->line,
			                    "%s \"%s\" (%s) defaults to %s = %s on %s, but %s \"%s\" (line %d, %s) to %s = %s: "
			                    "set %s on one of them", ENTRY_KIND(e), e->name, e->driver, line_key_names[k], a,
			                    name, ENTRY_KIND(first), first->name, first->line, first->driver,
			                    line_key_names[k], b, line_key_names[k]);
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct line_entry *e = group[i];

		if (!e->stream)
			continue;
		if (reader)
			return fail_at_line(ld, root, (unsigned)e->line,
			                    "device \"%s\" (%s) and device \"%s\" (line %d, %s) would both read the data "
			                    "stream of %s; a line carries one streaming device besides any number of polled "
			                    "devices and actuators", e->name, e->driver, reader->name, reader->line,
			                    reader->driver, name);
		reader = e;
	}
	return 0;
}

/*
 * Group the serial entries by line, check that each line's entries agree,
 * and give every entry the line's settings; fills cfg->lines.
 */
static int resolve_lines(struct loader *ld, const config_setting_t *root)
{
	struct sg_config *cfg = ld->cfg;
	struct line_entry *e = NULL, **group = NULL;
	bool *done = NULL;
	size_t n = 0;
	int r;

	if ((r = line_entries(ld, &e, &n)) < 0)
		return r;
	if (n == 0) {
		free(e);
		return 0;
	}
	group = calloc(n, sizeof(*group));
	done = calloc(n, sizeof(*done));
	cfg->lines = calloc(n, sizeof(*cfg->lines));
	if (!group || !done || !cfg->lines) {
		r = fail_oom(ld);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct sg_serial_line_cfg *lc;
		struct sg_line_settings settings;
		size_t m = 0;

		if (done[i])
			continue;
		for (size_t j = i; j < n; j++)
			if (!done[j] && strcmp(e[j].key, e[i].key) == 0) {
				group[m++] = &e[j];
				done[j] = true;
			}
		if ((r = line_agree(ld, root, group, m, &settings)) < 0)
			goto out;
		lc = &cfg->lines[cfg->n_lines];
		lc->by_usb_serial = !e[i].spec.port;
		lc->settings = settings;
		lc->name = strdup(e[i].spec.port ? e[i].spec.port : e[i].spec.usb_serial);
		lc->devices = calloc(m, sizeof(*lc->devices));
		lc->actuators = calloc(m, sizeof(*lc->actuators));
		cfg->n_lines++;
		if (!lc->name || !lc->devices || !lc->actuators) {
			r = fail_oom(ld);
			goto out;
		}
		for (size_t k = 0; k < m; k++) {
			if (group[k]->actuator) {
				struct sg_actuator_cfg *a = &cfg->actuators[group[k]->index];

				a->serial_line = (int)(cfg->n_lines - 1);
				a->line_settings = settings;
				lc->actuators[lc->n_actuators++] = group[k]->index;
			} else {
				struct sg_device_cfg *d = &cfg->devices[group[k]->index];

				d->serial_line = (int)(cfg->n_lines - 1);
				d->baud = settings.baud;
				d->framing = settings.framing;
				lc->devices[lc->n_devices++] = group[k]->index;
			}
		}
	}
	r = 0;
out:
	free(done);
	free(group);
	free(e);
	return r;
}

/* --- one piece of hardware, one owner ---------------------------------------------------- */

/* What a device occupies alone: its I2C bus and address, or what its driver names (a GPIO line); serial lines
 * are shared (see above). */
static void device_hardware(const struct sg_device_cfg *d, char *buf, size_t len)
{
	buf[0] = '\0';
	if (d->driver->where && d->opts)
		d->driver->where(d->opts, buf, len);
	else if (d->bus && d->address >= 0)
		snprintf(buf, len, "%s address 0x%02x", d->bus, d->address);
}

/*
 * Two devices or actuators on the same I2C address, or GPIO line,
 * would pass here and fail at run time with "Device or resource busy" for
 * the second one, or worse, share a line in silence. Refuse it up front.
 */
static int check_hardware_unique(struct loader *ld, const config_setting_t *root)
{
	const struct sg_config *cfg = ld->cfg;
	size_t n = cfg->n_devices + cfg->n_actuators;
	char(*hw)[PATH_MAX + 32];
	int r = 0;

	if (n < 2)
		return 0;
	hw = calloc(n, sizeof(*hw));
	if (!hw)
		return fail_oom(ld);
	for (size_t i = 0; i < cfg->n_devices; i++)
		device_hardware(&cfg->devices[i], hw[i], sizeof(hw[i]));
	for (size_t i = 0; i < cfg->n_actuators; i++) {
		const struct sg_actuator_cfg *a = &cfg->actuators[i];
		if (a->serial_line < 0 && a->drv && a->drv->where)
			a->drv->where(a->opts, hw[cfg->n_devices + i], sizeof(hw[0]));
	}
	for (size_t i = 1; i < n && r == 0; i++) {
		for (size_t j = 0; j < i; j++) {
			bool i_dev = i < cfg->n_devices, j_dev = j < cfg->n_devices;
			if (!hw[i][0] || strcmp(hw[i], hw[j]) != 0)
				continue;
			r = fail_at_line(ld, root, (unsigned)(i_dev ? cfg->devices[i].line : cfg->actuators[i - cfg->n_devices].line),
			                 "%s \"%s\" uses %s, which %s \"%s\" (line %d) already uses; one piece of hardware "
			                 "serves one device or actuator",
			                 i_dev ? "device" : "actuator",
			                 i_dev ? cfg->devices[i].name : cfg->actuators[i - cfg->n_devices].name, hw[i],
			                 j_dev ? "device" : "actuator",
			                 j_dev ? cfg->devices[j].name : cfg->actuators[j - cfg->n_devices].name,
			                 j_dev ? cfg->devices[j].line : cfg->actuators[j - cfg->n_devices].line);
			break;
		}
	}
	free(hw);
	return r;
}

/* --- topics known only at run time ---------------------------------------------------- */

/*
 * A device without a readings list publishes every field its data names on
 * <base>/<device>/<field>, topics no claim above could see. Were an actuator's
 * command topic among them (device "relay", actuator topic "relay": a line
 * "set=ON" publishes on <base>/relay/set), the device's data would command the
 * actuator on an MQTT 3.1.1 link, which has no No Local; a state or error
 * topic would be overwritten. Refuse the overlap.
 */
static int check_dynamic_topics(struct loader *ld, const config_setting_t *root)
{
	const struct sg_config *cfg = ld->cfg;

	for (size_t i = 0; i < cfg->n_devices; i++) {
		const struct sg_device_cfg *d = &cfg->devices[i];
		char ns[CONFIG_TOPIC_MAX + 2];
		size_t n;

		if (!d->all_fields)
			continue;
		snprintf(ns, sizeof(ns), "%s/%s/", cfg->base_topic, d->name);
		n = strlen(ns);
		for (size_t k = 0; k < cfg->n_actuators; k++) {
			const struct sg_actuator_cfg *a = &cfg->actuators[k];
			const char *const topics[] = {a->command_topic, a->topic, a->error_topic};
			const char *const kinds[] = {"command topic", "state topic", "error topic"};

			for (size_t t = 0; t < 3; t++) {
				const char *rest = topics[t] + n;
				if (strncmp(topics[t], ns, n) != 0 || !*rest || strchr(rest, '/'))
					continue;
				return fail_at_line(ld, root, (unsigned)d->line, "device \"%s\" publishes every field on "
				                    "%s<field>, and a field \"%s\" would land on the %s of actuator \"%s\" "
				                    "(line %d); give the device a readings list or the actuator another topic",
				                    d->name, ns, rest, kinds[t], a->name, a->line);
			}
		}
	}
	return 0;
}

/*
 * health.publish: <base>/<device>/health is the device's link quality; no
 * reading or actuator may publish there.
 */
static int check_health_topics(struct loader *ld, const config_setting_t *root)
{
	const struct sg_config *cfg = ld->cfg;

	if (!cfg->health.publish)
		return 0;
	for (size_t i = 0; i < cfg->n_devices; i++) {
		char h[CONFIG_TOPIC_MAX + 16];

		snprintf(h, sizeof(h), "%s/%s/health", cfg->base_topic, cfg->devices[i].name);
		for (size_t j = 0; j < cfg->n_devices; j++)
			for (size_t k = 0; k < cfg->devices[j].n_readings; k++) {
				const struct sg_reading_cfg *r = &cfg->devices[j].readings[k];

				if (strcmp(r->topic, h) == 0)
					return fail_at_line(ld, root, (unsigned)r->line, "reading \"%s\" of device \"%s\" "
					                    "would publish on %s, the link quality of device \"%s\" "
					                    "(health.publish); give it another topic", r->field,
					                    cfg->devices[j].name, h, cfg->devices[i].name);
			}
		for (size_t k = 0; k < cfg->n_actuators; k++) {
			const struct sg_actuator_cfg *a = &cfg->actuators[k];

			if (strcmp(a->topic, h) == 0 || strcmp(a->command_topic, h) == 0 || strcmp(a->error_topic, h) == 0)
				return fail_at_line(ld, root, (unsigned)a->line, "actuator \"%s\" uses %s, the link "
				                    "quality of device \"%s\" (health.publish); give it another topic",
				                    a->name, h, cfg->devices[i].name);
		}
	}
	return 0;
}

/* --- load / free ------------------------------------------------------------ */

/* @include "x" resolves against the directory of the main file. */
static int set_include_dir(struct loader *ld, config_t *lc)
{
	const char *slash = strrchr(ld->file, '/');

	if (!slash)
		return 0;
	ld->include_dir = strndup(ld->file, slash == ld->file ? 1 : (size_t)(slash - ld->file));
	if (!ld->include_dir)
		return -ENOMEM;
	config_set_include_dir(lc, ld->include_dir);
	return 0;
}

/* Open FILE the way the user will see it fail: missing, unreadable, a directory. */
static int check_readable(struct loader *ld, const char *file)
{
	struct stat st;
	FILE *f = fopen(file, "re");
	int r = 0;

	if (!f)
		r = -errno;
	else if (fstat(fileno(f), &st) < 0)
		r = -errno;
	else if (S_ISDIR(st.st_mode))
		r = -EISDIR;
	if (f)
		fclose(f);
	if (r < 0 && ld->err && ld->errlen)
		snprintf(ld->err, ld->errlen, "%s: cannot open: %s", file, strerror(-r));
	return r;
}

/* Azure IoT Hub: no status topic, so none of its settings either (the gateway group is read before mqtt). */
static int check_cloud_gateway(struct loader *ld, const config_setting_t *root)
{
	static const char *const keys[] = {"status_topic", "payload_online", "payload_offline", NULL};
	const config_setting_t *g = member(root, "gateway");
	char what[64];

	for (size_t i = 0; ld->cfg->mqtt.cloud == SG_CLOUD_AZURE && keys[i]; i++)
		if (member(g, keys[i])) {
			snprintf(what, sizeof(what), "\"%s\" (the gateway's status topic)", keys[i]);
			return not_with_cloud(ld, member(g, keys[i]), what);
		}
	return 0;
}

static int parse_all(struct loader *ld, const config_t *lc)
{
	const config_setting_t *root = config_root_setting(lc);
	int r;

	if ((r = check_keys(ld, root, top_keys, "")) < 0 ||
	    (r = parse_gateway(ld, root)) < 0 ||
	    (r = parse_mqtt(ld, root)) < 0 ||
	    (r = check_cloud_gateway(ld, root)) < 0 ||
	    (r = parse_spool(ld, root)) < 0 ||
	    (r = parse_time(ld, root)) < 0 ||
	    (r = parse_discovery(ld, root)) < 0 ||
	    (r = parse_commands(ld, root)) < 0 ||
	    (r = parse_metrics(ld, root)) < 0 ||
	    (r = parse_health(ld, root)) < 0 ||
	    (r = parse_devices(ld, root)) < 0 ||
	    (r = parse_actuators(ld, root)) < 0 ||
	    (r = check_dynamic_topics(ld, root)) < 0 ||
	    (r = check_health_topics(ld, root)) < 0 ||
	    (r = resolve_lines(ld, root)) < 0)
		return r;
	return check_hardware_unique(ld, root);
}

int config_load(const char *file, struct sg_config **ret, char *err, size_t errlen)
{
	struct loader ld = {.file = file, .err = err, .errlen = errlen};
	config_t lc;
	int r;

	if (err && errlen)
		err[0] = '\0';
	if ((r = check_readable(&ld, file)) < 0)
		return r;

	config_init(&lc);
	if (set_include_dir(&ld, &lc) < 0) {
		r = fail_oom(&ld);
		goto out_destroy;
	}
	if (!config_read_file(&lc, file)) {
		const char *text = config_error_text(&lc);
		char efile[PATH_MAX];

		source_name(&ld, config_error_file(&lc), efile, sizeof(efile));

		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO) {
			r = -EIO;
			if (err && errlen)
				snprintf(err, errlen, "%s: cannot read: %s", file, text ? text : "I/O error");
		} else {
			r = -EINVAL;
			if (err && errlen) {
				if (text && strcmp(text, "syntax error") != 0)
					snprintf(err, errlen, "%s:%d: syntax error: %s", efile, config_error_line(&lc),
					         text);
				else
					snprintf(err, errlen, "%s:%d: syntax error", efile, config_error_line(&lc));
			}
		}
		goto out_destroy;
	}

	ld.cfg = calloc(1, sizeof(*ld.cfg));
	if (!ld.cfg) {
		r = fail_oom(&ld);
		goto out_destroy;
	}
	if ((r = dup_to(&ld, &ld.cfg->path, file)) < 0 || (r = parse_all(&ld, &lc)) < 0) {
		config_free(ld.cfg);
		goto out_destroy;
	}
	*ret = ld.cfg;
	r = 0;

out_destroy:
	config_destroy(&lc);
	loader_release(&ld);
	return r;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void config_free(struct sg_config *cfg)
{
	if (!cfg)
		return;

	for (size_t i = 0; i < cfg->n_devices; i++) {
		struct sg_device_cfg *d = &cfg->devices[i];

		if (d->opts && d->driver && d->driver->free_options)
			d->driver->free_options(d->opts);
		for (size_t j = 0; j < d->n_readings; j++)
			reading_cfg_release(&d->readings[j]);
		free(d->readings);
		reading_cfg_release(&d->defaults);
		free(d->name);
		free(d->port);
		free(d->usb_serial);
		free(d->bus);
		free(d->path);
	}
	free(cfg->devices);

	for (size_t i = 0; i < cfg->n_actuators; i++) {
		struct sg_actuator_cfg *a = &cfg->actuators[i];

		if (a->opts && a->drv && a->drv->free_options)
			a->drv->free_options(a->opts);
		for (size_t j = 0; j < a->n_options; j++)
			free(a->options[j]);
		free(a->options);
		free(a->name);
		free(a->driver);
		free(a->topic);
		free(a->command_topic);
		free(a->error_topic);
		free(a->interlock);
		free(a->payload_on);
		free(a->payload_off);
		free(a->initial);
		free(a->safe);
	}
	free(cfg->actuators);

	for (size_t i = 0; i < cfg->n_lines; i++) {
		free(cfg->lines[i].name);
		free(cfg->lines[i].devices);
		free(cfg->lines[i].actuators);
	}
	free(cfg->lines);

	for (size_t i = 0; i < cfg->mqtt.n_brokers; i++)
		free(cfg->mqtt.brokers[i]);
	free(cfg->mqtt.brokers);
	free(cfg->mqtt.client_id);
	free(cfg->mqtt.username);
	for (size_t i = 0; i < SG_MQTT_KEY_N; i++)
		free(cfg->mqtt.where[i]);
	free_secret(cfg->mqtt.password);
	free(cfg->mqtt.password_file);
	free(cfg->mqtt.ca_file);
	free(cfg->mqtt.ca_path);
	free(cfg->mqtt.cert_file);
	free(cfg->mqtt.key_file);
	free(cfg->mqtt.tls_alpn);
	free(cfg->mqtt.hub);
	free(cfg->mqtt.device_id);
	free(cfg->mqtt.device_key_file);
	if (cfg->mqtt.device_key)
		explicit_bzero(cfg->mqtt.device_key, cfg->mqtt.device_key_len);
	free(cfg->mqtt.device_key);
	free(cfg->mqtt.birth_payload);
	free(cfg->mqtt.will_payload);
	free(cfg->metrics.path);
	free(cfg->discovery.ha_status_topic);

	free(cfg->spool.path);
	free(cfg->spool.history_topic);
	free(cfg->time.sync_file);
	free(cfg->discovery.prefix);
	free(cfg->commands.response_topic_prefix);
	free(cfg->discovery.state_file);
	free(cfg->path);
	free(cfg->id);
	free(cfg->base_topic);
	free(cfg->status_topic);
	free(cfg);
}
