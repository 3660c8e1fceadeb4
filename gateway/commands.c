/* SPDX-License-Identifier: MIT */
/*
 * commands.c — the command router (see commands.h for the rules it applies).
 *
 * Per actuator it keeps: the driver runtime (struct sg_act, whose state it
 * allocates when opening and frees when closing), the last confirmed state,
 * and two job slots — the command in flight and at most one waiting behind
 * it (a newer command replaces a waiting one, which is then answered
 * "superseded"). Internal jobs (the initial state, restoring the state after
 * the hardware came back, automatic switch-off) go through the same queue
 * but skip the checks meant for users: rate limit, retained, interlock.
 *
 * Timers (pulse_ms, max_on_s, reopening with backoff, the drivers' own
 * deadlines) are deadlines compared with the `now` the gateway passes in.
 * Everything here is allocated when the router is made, except the copies
 * of a command's Response Topic and Correlation Data (freed with the job).
 *
 * This is gateway code: it logs, once per event and rate-limited per actuator.
 */
#include "commands.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/json.h"
#include "../common/utf8.h"
#include "log.h"
#include "response_topic.h"
#include "supervise.h"

#define ERROR_PAYLOAD_MAX 64   /* bytes of a refused command quoted in the error message */
#define REASON_MAX        200  /* bytes of a reason quoted in the error message */
#define JSON_DEPTH_MAX    8
#define JSON_SCALAR_MAX   128  /* longest "state"/"value" we look at */
#define JSON_KEY_MAX      32
#define JSON_MEMBERS_MAX  64   /* members of one object (a 256-byte command has at most 51) */
#define JSON_NAMES_MAX    (SG_CMD_MAX_PAYLOAD + JSON_MEMBERS_MAX) /* their decoded names, NULs included */
#define STEP_EPSILON      1e-6 /* of a step: how far from the grid a number may be */

/* A value of an actuator: which field counts depends on its type. */
struct val {
	bool on;        /* switch */
	double number;  /* number */
	size_t option;  /* enum */
	char num[48];   /* number: canonical text */
};

struct job {
	bool internal;    /* the router's own: no rate limit, no response */
	bool fail_safe;   /* internal: the fail-safe switch; its success is said on the error topic */
	const char *why;  /* internal: what it is for, for the log */
	struct val v;
	char payload[SG_CMD_MAX_PAYLOAD]; /* as received, for messages */
	size_t payload_len;
	char *response_topic;             /* MQTT 5 request/response, or NULL */
	void *correlation;
	size_t correlation_len;
	uint64_t expires_us;              /* UINT64_MAX: never */
};

/* Where a refusal goes besides the error topic. */
struct answer {
	const char *payload;
	size_t len;
	const char *response_topic;
	const void *correlation;
	size_t correlation_len;
};

struct actuator {
	struct sg_commands *c;
	size_t index;
	const struct sg_actuator_cfg *cfg;
	const struct sg_act_driver *drv;
	struct sg_act_params params;
	struct sg_act act;

	bool up;             /* hardware open */
	bool ever_up;
	unsigned gen;        /* bumped when act.fd may have changed */
	struct sg_supervise sup;   /* reopening with backoff, problems logged when they changed */
	uint64_t reopen_at;
	char where[96];      /* scratch for where() */

	bool known;          /* state is confirmed */
	struct val state;
	bool has_initial, has_safe;
	struct val initial, safe;

	struct job slot[2];
	struct job *inflight, *pending;

	bool have_last;
	uint64_t last_cmd_us; /* last accepted command, for min_interval_ms */
	uint64_t autooff_at;  /* pulse_ms / max_on_s deadline, UINT64_MAX: none */
	struct sg_ratelimit warn_rl;

	/* fail-safe: see "the controller going away" */
	uint64_t fail_safe_at;   /* no broker until then: the safe state, UINT64_MAX: not armed */
	char fail_safe_why[REASON_MAX];  /* of the switch in progress or waiting for the hardware */
	bool fail_safe_waiting;  /* fired while the hardware was away: the safe state when it reopens */
	char note[1200];         /* error-topic message waiting for the broker, "" for none */
	uint64_t n_fail_safe;    /* times the fail-safe fired */
};

struct sg_commands {
	const struct sg_config *cfg;
	struct sg_cmd_env env;
	void *ud;
	struct actuator *acts;
	size_t n;
	uint64_t now;
	struct sg_ratelimit unknown_rl;
	const struct sg_config *also; /* after a reload: the configuration readings and discovery use */
	bool link_up;                 /* the broker connection, as commands_link() said */
};

/* ---- small helpers ---------------------------------------------------------------------------- */

/* LEN, at most MAX: how much of a text goes into a message */
static size_t clip(size_t len, size_t max)
{
	return len < max ? len : max;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v';
}

/* S[0..LEN) without surrounding blanks. */
static void trim(const char **s, size_t *len)
{
	while (*len && is_space((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len && is_space((*s)[*len - 1]))
		(*len)--;
}

static bool eq_nocase(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

static const char *val_text(const struct actuator *a, const struct val *v)
{
	switch (a->cfg->kind) {
	case SG_ACT_SWITCH:
		return v->on ? a->cfg->payload_on : a->cfg->payload_off;
	case SG_ACT_NUMBER:
		return v->num;
	case SG_ACT_ENUM:
		return v->option < a->cfg->n_options ? a->cfg->options[v->option] : "";
	}
	return "";
}

static bool val_equal(const struct actuator *a, const struct val *x, const struct val *y)
{
	switch (a->cfg->kind) {
	case SG_ACT_SWITCH:
		return x->on == y->on;
	case SG_ACT_NUMBER:
		return strcmp(x->num, y->num) == 0;
	case SG_ACT_ENUM:
		return x->option == y->option;
	}
	return false;
}

static struct sg_act_value act_value(const struct actuator *a, const struct val *v)
{
	return (struct sg_act_value){.on = v->on, .number = v->number, .option = v->option, .text = val_text(a, v)};
}

/* ---- JSON -------------------------------------------------------------------------------------- */

/*
 * A small RFC 8259 reader: enough to validate a whole document and pull one
 * scalar member out of the top-level object ({"state":"ON"}, {"value":42}).
 * An object with the same member name twice, at any depth, is refused
 * (-EEXIST): RFC 8259 §4 leaves its meaning open, and parsers disagree
 * (this one took the first, JSON.parse, Python and Node-RED take the last),
 * so a validating proxy in front of the gateway would see another command
 * than the one carried out. Names are compared decoded ("\u0073tate" is "state").
 * Objects and arrays are walked by common/json.c (sg_json_member(), sg_json_element()).
 */
enum jtype { J_STR, J_NUM, J_TRUE, J_FALSE, J_NULL, J_OBJ, J_ARR };

struct jp {
	struct sg_json_in in;   /* the lexer (common/json.h) */
	char dup[JSON_KEY_MAX]; /* the duplicate name found (cut to fit) */
};

/* The member names of one object so far, decoded. */
struct jnames {
	char buf[JSON_NAMES_MAX];
	unsigned short off[JSON_MEMBERS_MAX];
	size_t n, used;
};

/* The number at the cursor, its text copied into OUT (NULL: only checked). -E2BIG when it does not fit. */
static int j_number(struct jp *j, char *out, size_t outlen)
{
	const char *start = j->in.p;
	size_t n;

	if (sg_json_number(&j->in) < 0)
		return -EINVAL;
	if (!out)
		return 0;
	n = (size_t)(j->in.p - start);
	if (n + 1 > outlen)
		return -E2BIG;
	memcpy(out, start, n);
	out[n] = '\0';
	return 0;
}

static int j_value(struct jp *j, int depth, char *out, size_t outlen, enum jtype *ret_type);

/*
 * The next member of the object at j->in.p (sg_json_member(), *OPEN as there), its name decoded
 * into NM (*RET points to it there): 1 with the cursor on its value, 0 after the '}'; -EEXIST
 * when NM has the name already, -E2BIG when NM is full (only a document longer than a command
 * can do that), -EINVAL.
 */
static int j_name(struct jp *j, bool *open, struct jnames *nm, const char **ret)
{
	char *out = nm->buf + nm->used;
	int r;

	r = sg_json_member(&j->in, open, out, sizeof(nm->buf) - nm->used, NULL);
	if (r <= 0)
		return r;
	if (nm->n == JSON_MEMBERS_MAX)
		return -E2BIG;
	for (size_t i = 0; i < nm->n; i++)
		if (strcmp(nm->buf + nm->off[i], out) == 0) {
			snprintf(j->dup, sizeof(j->dup), "%s", out);
			return -EEXIST;
		}
	nm->off[nm->n++] = (unsigned short)nm->used;
	nm->used += strlen(out) + 1;
	*ret = out;
	return 1;
}

/* An object or array at j->in.p, validated and skipped. */
static int j_container(struct jp *j, int depth)
{
	bool obj = *j->in.p == '{', open = false;
	struct jnames nm;
	const char *name;
	enum jtype t;
	int r;

	if (depth >= JSON_DEPTH_MAX)
		return -EINVAL;
	nm.n = nm.used = 0;
	while ((r = obj ? j_name(j, &open, &nm, &name) : sg_json_element(&j->in, &open)) > 0)
		if ((r = j_value(j, depth + 1, NULL, 0, &t)) < 0)
			return r;
	return r;
}

static int j_value(struct jp *j, int depth, char *out, size_t outlen, enum jtype *ret_type)
{
	if (j->in.p >= j->in.end)
		return -EINVAL;
	switch (*j->in.p) {
	case '{':
		*ret_type = J_OBJ;
		return j_container(j, depth);
	case '[':
		*ret_type = J_ARR;
		return j_container(j, depth);
	case '"':
		*ret_type = J_STR;
		return sg_json_string(&j->in, out, outlen, NULL);
	case 't':
		*ret_type = J_TRUE;
		return sg_json_lit(&j->in, "true") ? 0 : -EINVAL;
	case 'f':
		*ret_type = J_FALSE;
		return sg_json_lit(&j->in, "false") ? 0 : -EINVAL;
	case 'n':
		*ret_type = J_NULL;
		return sg_json_lit(&j->in, "null") ? 0 : -EINVAL;
	default:
		*ret_type = J_NUM;
		return j_number(j, out, outlen);
	}
}

/*
 * Validate the JSON object S[0..LEN) and fetch its member KEYS[k] with the
 * smallest k into OUT. 0 with *ret_type, -ENOENT if none is there, -EINVAL
 * for invalid JSON or a top level that is not an object, -E2BIG for a value
 * too long, -EEXIST for a duplicate member name (DUP gets it). *RET_ANSWER
 * tells whether the top level has an "actuator" member.
 */
static int json_member(const char *s, size_t len, const char *const *keys, char *out, size_t outlen,
                       enum jtype *ret_type, char *dup, size_t duplen, bool *ret_answer)
{
	struct jp j = {.in = {.p = s, .end = s + len}};
	struct jnames nm = {.n = 0};
	size_t best = SIZE_MAX;
	bool open = false;
	const char *key;
	int r, found_r = 0;

	*ret_answer = false;
	while ((r = j_name(&j, &open, &nm, &key)) > 0) {
		size_t k = SIZE_MAX;
		enum jtype t;

		if (strcmp(key, "actuator") == 0)
			*ret_answer = true;
		for (size_t i = 0; keys[i]; i++)
			if (strcmp(key, keys[i]) == 0 && i < best)
				k = i;
		if (k != SIZE_MAX) {
			r = j_value(&j, 1, out, outlen, &t);
			if (r < 0 && r != -E2BIG)
				break;
			best = k;
			found_r = r;
			*ret_type = t;
		} else if ((r = j_value(&j, 1, NULL, 0, &t)) < 0) {
			break;
		}
	}
	if (r == -EEXIST)
		snprintf(dup, duplen, "%s", j.dup);
	if (r < 0)
		return r;
	sg_json_ws(&j.in);
	if (j.in.p != j.in.end)
		return -EINVAL;
	if (best == SIZE_MAX)
		return -ENOENT;
	return found_r;
}

int commands_json_each(const char *s, size_t len,
                       void (*fn)(void *ud, const char *name, const char *scalar, const char *raw, size_t raw_len),
                       void *ud)
{
	struct jp j = {.in = {.p = s, .end = s + len}};
	struct jnames nm = {.n = 0};
	char scalar[JSON_SCALAR_MAX];
	const char *key;
	int r;

	/* checked whole before any member is handed on: a broken document moves nothing */
	for (int pass = 0; pass < 2; pass++) {
		bool open = false;

		j.in.p = s;
		nm.n = nm.used = 0;
		while ((r = j_name(&j, &open, &nm, &key)) > 0) {
			const char *start = j.in.p;
			enum jtype t;

			r = j_value(&j, 1, scalar, sizeof(scalar), &t);
			if (r < 0 && !(r == -E2BIG && (t == J_OBJ || t == J_ARR)))
				return r;
			if (pass == 1 && t != J_NULL)
				fn(ud, key, t == J_OBJ || t == J_ARR ? NULL : t == J_TRUE ? "true" : t == J_FALSE ? "false"
				                                                                          : scalar,
				   start, (size_t)(j.in.p - start));
		}
		if (r < 0)
			return r;
		sg_json_ws(&j.in);
		if (j.in.p != j.in.end)
			return -EINVAL;
	}
	return 0;
}

/* ---- payload validation ------------------------------------------------------------------------ */

static int parse_switch(const struct actuator *a, const char *s, size_t len, struct val *v)
{
	const struct sg_actuator_cfg *c = a->cfg;

	trim(&s, &len);
	if (eq_nocase(s, len, c->payload_on) || eq_nocase(s, len, "on") || eq_nocase(s, len, "1") ||
	    eq_nocase(s, len, "true")) {
		v->on = true;
		return 0;
	}
	if (eq_nocase(s, len, c->payload_off) || eq_nocase(s, len, "off") || eq_nocase(s, len, "0") ||
	    eq_nocase(s, len, "false")) {
		v->on = false;
		return 0;
	}
	return -EINVAL;
}

/* Every one of S[0..LEN) (not NUL-terminated: a payload as received) is in SET. */
static bool all_in(const char *s, size_t len, const char *set)
{
	for (size_t i = 0; i < len; i++)
		if (!s[i] || !strchr(set, s[i]))
			return false;
	return true;
}

/* Decimals needed to print X exactly enough (0..9). */
static int decimals_of(double x)
{
	for (int d = 0; d < 9; d++) {
		double s = x * pow(10, d);
		if (fabs(s - nearbyint(s)) < 1e-9 * fmax(1, fabs(s)))
			return d;
	}
	return 9;
}

static int parse_number(const struct actuator *a, const char *s, size_t len, struct val *v, char *why,
                        size_t whylen)
{
	const struct sg_actuator_cfg *c = a->cfg;
	char buf[64], *end;
	double x, k, kr;
	int dec;

	trim(&s, &len);
	if (len == 0 || len >= sizeof(buf) || !all_in(s, len, "0123456789+-.eE")) {
		snprintf(why, whylen, "invalid payload: expected a number from %g to %g", c->min, c->max);
		return -EINVAL;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	x = strtod(buf, &end);
	if (errno == ERANGE || end == buf || *end || !isfinite(x)) {
		snprintf(why, whylen, "invalid payload: expected a number from %g to %g", c->min, c->max);
		return -EINVAL;
	}
	if (x < c->min || x > c->max) {
		snprintf(why, whylen, "out of range: %g is not between %g and %g", x, c->min, c->max);
		return -EINVAL;
	}
	k = (x - c->min) / c->step;
	kr = nearbyint(k);
	if (fabs(k - kr) > STEP_EPSILON) {
		snprintf(why, whylen, "%g is not a multiple of step %g from %g", x, c->step, c->min);
		return -EINVAL;
	}
	x = c->min + kr * c->step;
	if (x > c->max)
		x = c->max;
	dec = decimals_of(c->step);
	if (decimals_of(c->min) > dec)
		dec = decimals_of(c->min);
	v->number = x;
	snprintf(v->num, sizeof(v->num), "%.*f", dec, x);
	if (strchr(v->num, '.')) { /* "12.50" -> "12.5", "42.0" -> "42" */
		size_t n = strlen(v->num);
		while (v->num[n - 1] == '0')
			v->num[--n] = '\0';
		if (v->num[n - 1] == '.')
			v->num[--n] = '\0';
	}
	if (strcmp(v->num, "-0") == 0)
		strcpy(v->num, "0");
	return 0;
}

static int parse_enum(const struct actuator *a, const char *s, size_t len, struct val *v)
{
	const struct sg_actuator_cfg *c = a->cfg;
	size_t found = SIZE_MAX, nfound = 0;

	trim(&s, &len);
	for (size_t i = 0; i < c->n_options; i++)
		if (strlen(c->options[i]) == len && memcmp(c->options[i], s, len) == 0) {
			v->option = i;
			return 0;
		}
	for (size_t i = 0; i < c->n_options; i++)
		if (eq_nocase(s, len, c->options[i])) {
			found = i;
			nfound++;
		}
	if (nfound != 1)
		return -EINVAL;
	v->option = found;
	return 0;
}

/* What a valid command looks like, for the error message. */
static void expected(const struct actuator *a, char *buf, size_t len)
{
	const struct sg_actuator_cfg *c = a->cfg;
	size_t o;

	switch (c->kind) {
	case SG_ACT_SWITCH:
		snprintf(buf, len, "invalid payload: expected %s or %s (also 1/0, true/false, {\"state\":\"%s\"})",
		         c->payload_on, c->payload_off, c->payload_on);
		return;
	case SG_ACT_NUMBER:
		snprintf(buf, len, "invalid payload: expected a number from %g to %g in steps of %g", c->min, c->max,
		         c->step);
		return;
	case SG_ACT_ENUM:
		o = (size_t)snprintf(buf, len, "invalid payload: expected one of");
		for (size_t i = 0; i < c->n_options && o < len; i++)
			o += (size_t)snprintf(buf + o, len - o, "%s %s", i ? "," : "", c->options[i]);
		return;
	}
}

/* Parse a command (or a configured initial/safe payload) for A. 0, or -EINVAL with WHY filled. */
static int parse_value(const struct actuator *a, const char *payload, size_t len, struct val *v, char *why,
                       size_t whylen)
{
	static const char *const switch_keys[] = {"state", NULL};
	static const char *const value_keys[] = {"value", "state", NULL};
	const char *s = payload;
	size_t n = len;
	char scalar[JSON_SCALAR_MAX], dup[JSON_KEY_MAX], edup[24 * 6 + 1];
	enum jtype t = J_NULL;
	bool answer;
	int r;

	memset(v, 0, sizeof(*v));
	expected(a, why, whylen);
	if (memchr(payload, '\0', len))
		return -EINVAL;
	trim(&s, &n);
	if (n && s[0] == '{') {
		r = json_member(s, n, a->cfg->kind == SG_ACT_SWITCH ? switch_keys : value_keys, scalar, sizeof(scalar),
		                &t, dup, sizeof(dup), &answer);
		if (r == -EEXIST) {
			sg_json_escape(dup, clip(strlen(dup), 24), edup, sizeof(edup), NULL);
			snprintf(why, whylen, "invalid payload: JSON with the member \"%s\" twice (parsers disagree on "
			         "which one counts)", edup);
			return -EINVAL;
		}
		if (r == -EINVAL) {
			snprintf(why, whylen, "invalid payload: not valid JSON");
			return -EINVAL;
		}
		/* {"actuator":..,"state":..} is what a sensorgate answers (another one's, or ours through a
		 * broker that ignores No Local): never a command, so no answer can ever command an actuator */
		if (answer) {
			snprintf(why, whylen, "invalid payload: JSON with an \"actuator\" member is a sensorgate answer "
			         "or error, not a command");
			return -EINVAL;
		}
		if (r == -ENOENT) {
			snprintf(why, whylen, "invalid payload: JSON without \"%s\"",
			         a->cfg->kind == SG_ACT_SWITCH ? "state" : "value");
			return -EINVAL;
		}
		if (r < 0)
			return -EINVAL;
		if (t == J_TRUE || t == J_FALSE) {
			if (a->cfg->kind != SG_ACT_SWITCH)
				return -EINVAL;
			v->on = t == J_TRUE;
			return 0;
		}
		if (t != J_STR && t != J_NUM)
			return -EINVAL;
		if (t == J_NUM && a->cfg->kind == SG_ACT_ENUM)
			return -EINVAL;
		s = scalar;
		n = strlen(scalar);
	}
	switch (a->cfg->kind) {
	case SG_ACT_SWITCH:
		return parse_switch(a, s, n, v);
	case SG_ACT_NUMBER:
		return parse_number(a, s, n, v, why, whylen);
	case SG_ACT_ENUM:
		return parse_enum(a, s, n, v);
	}
	return -EINVAL;
}

/* ---- output ------------------------------------------------------------------------------------ */

static void publish(struct actuator *a, const char *topic, const char *payload, bool retain, const void *corr,
                    size_t corr_len)
{
	struct sg_commands *c = a->c;

	if (c->env.publish)
		c->env.publish(c->ud, topic, payload, strlen(payload), a->cfg->qos, retain, corr, corr_len);
}

/* An answer on a requester's Response Topic (already checked): QoS 0, so that a topic the broker refuses
 * costs the connection at most once (libmosquitto sends an unacknowledged QoS 1 message again after every
 * reconnect); the retained state topic stays the durable record. */
static void publish_answer(struct actuator *a, const char *topic, const char *payload, const void *corr,
                           size_t corr_len)
{
	struct sg_commands *c = a->c;

	if (c->env.publish)
		c->env.publish(c->ud, topic, payload, strlen(payload), 0, false, corr, corr_len);
}

/* The confirmed state on the state topic, retained. Not connected: published again on connect. */
static void publish_state(struct actuator *a)
{
	if (a->known)
		publish(a, a->cfg->topic, val_text(a, &a->state), true, NULL, 0);
}

/* A command was not carried out: log (rate-limited), error topic, and the requester's response topic. */
static void refuse(struct actuator *a, const struct answer *ans, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void refuse(struct actuator *a, const struct answer *ans, const char *fmt, ...)
{
	char reason[REASON_MAX], er[REASON_MAX * 2], ep[ERROR_PAYLOAD_MAX * 6 + 1], en[256], msg[1200];
	unsigned suppressed;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	sg_json_escape(ans->payload, clip(ans->len, ERROR_PAYLOAD_MAX), ep, sizeof(ep), NULL);
	if (ratelimit_allow(&a->warn_rl, a->c->now, &suppressed))
		log_full(LOG_WARNING, a->cfg->name, a->cfg->command_topic, "command \"%s\"%s not carried out: %s%s", ep,
		         ans->len > ERROR_PAYLOAD_MAX ? "..." : "", reason,
		         suppressed ? " (more refusals not logged)" : "");
	sg_json_escape(reason, clip(strlen(reason), sizeof(reason)), er, sizeof(er), NULL);
	sg_json_escape(a->cfg->name, clip(strlen(a->cfg->name), 80), en, sizeof(en), NULL);
	snprintf(msg, sizeof(msg), "{\"actuator\":\"%s\",\"error\":\"%s\",\"payload\":\"%s\"}", en, er, ep);
	publish(a, a->cfg->error_topic, msg, false, NULL, 0);
	if (ans->response_topic)
		publish_answer(a, ans->response_topic, msg, ans->correlation, ans->correlation_len);
}

static void respond_ok(struct actuator *a, const struct job *j)
{
	char en[256], es[512], msg[800];
	const char *t = val_text(a, &a->state);

	if (!j->response_topic)
		return;
	sg_json_escape(a->cfg->name, clip(strlen(a->cfg->name), 80), en, sizeof(en), NULL);
	sg_json_escape(t, clip(strlen(t), 80), es, sizeof(es), NULL);
	snprintf(msg, sizeof(msg), "{\"actuator\":\"%s\",\"state\":\"%s\"}", en, es);
	publish_answer(a, j->response_topic, msg, j->correlation, j->correlation_len);
}

/*
 * The fail-safe switched actuator A: said on its error topic (not retained),
 * now when the broker is there, else once it is back (after the state).
 */
static void fail_safe_note(struct actuator *a, const char *why)
{
	char en[256], ew[REASON_MAX * 2], es[256];
	const char *t = val_text(a, &a->state);

	sg_json_escape(a->cfg->name, clip(strlen(a->cfg->name), 80), en, sizeof(en), NULL);
	sg_json_escape(why, clip(strlen(why), REASON_MAX), ew, sizeof(ew), NULL);
	sg_json_escape(t, clip(strlen(t), 80), es, sizeof(es), NULL);
	snprintf(a->note, sizeof(a->note), "{\"actuator\":\"%s\",\"error\":\"fail-safe: %s; switched to its safe "
	         "state\",\"state\":\"%s\"}", en, ew, es);
	if (!a->c->link_up)
		return;
	publish(a, a->cfg->error_topic, a->note, false, NULL, 0);
	a->note[0] = '\0';
}

/* ---- jobs --------------------------------------------------------------------------------------- */

static void job_clear(struct job *j)
{
	free(j->response_topic);
	free(j->correlation);
	memset(j, 0, sizeof(*j));
}

static void job_fail(struct actuator *a, struct job *j, const char *reason)
{
	const char *t = val_text(a, &j->v);
	struct answer ans = {
		.payload = j->internal ? t : j->payload,
		.len = j->internal ? strlen(t) : j->payload_len,
		.response_topic = j->response_topic,
		.correlation = j->correlation,
		.correlation_len = j->correlation_len,
	};

	if (j->internal)
		refuse(a, &ans, "%s failed: %s", j->why, reason);
	else
		refuse(a, &ans, "%s", reason);
	job_clear(j);
}

/* A free job slot; a waiting command is superseded (and answered so) to make room. */
static struct job *job_take(struct actuator *a)
{
	if (a->inflight && a->pending) {
		struct job *old = a->pending;
		a->pending = NULL;
		job_fail(a, old, "superseded by a newer command");
	}
	for (size_t i = 0; i < 2; i++)
		if (&a->slot[i] != a->inflight && &a->slot[i] != a->pending) {
			job_clear(&a->slot[i]);
			return &a->slot[i];
		}
	return NULL; /* not reached: two slots, at most one busy here */
}

static void arm_autooff(struct actuator *a, bool was_on)
{
	const struct sg_actuator_cfg *c = a->cfg;

	if (c->kind != SG_ACT_SWITCH)
		return;
	if (!a->state.on) {
		a->autooff_at = UINT64_MAX;
		return;
	}
	/* Counted from the moment it went on: repeating ON does not extend a pulse or max_on_s. */
	if (was_on && a->autooff_at != UINT64_MAX)
		return;
	if (c->pulse_ms > 0)
		a->autooff_at = a->c->now + (uint64_t)c->pulse_ms * 1000;
	else if (c->max_on_s > 0)
		a->autooff_at = a->c->now + (uint64_t)(c->max_on_s * 1e6);
}

static void job_succeeded(struct actuator *a, struct job *j)
{
	bool was_on = a->known && a->state.on;

	a->state = j->v;
	a->known = true;
	arm_autooff(a, was_on);
	if (j->internal)
		log_full(j->fail_safe ? LOG_WARNING : LOG_INFO, a->cfg->name, NULL, "%s: %s", j->why,
		         val_text(a, &a->state));
	else
		log_full(LOG_DEBUG, a->cfg->name, NULL, "set to %s", val_text(a, &a->state));
	publish_state(a);
	if (j->fail_safe)
		fail_safe_note(a, a->fail_safe_why);
	respond_ok(a, j);
	job_clear(j);
}

static bool is_loss(int r)
{
	return r == -EIO || r == -ENODEV || r == -ENXIO || r == -EPIPE || r == -EBADF || r == -ESHUTDOWN ||
	       r == -ENOENT;
}

static void lose(struct actuator *a, int err);

/* Hand J to the driver (nothing in flight). 0 when done or in progress, else -errno (J answered). */
static int start_job(struct actuator *a, struct job *j)
{
	struct sg_act_value v;
	char reason[160];
	int r;

	if (j->expires_us != UINT64_MAX && a->c->now >= j->expires_us) {
		job_fail(a, j, "command expired before it could be carried out");
		return -ETIME;
	}
	a->inflight = j;
	v = act_value(a, &j->v);
	r = a->drv->set(&a->act, &v, a->c->now);
	if (r == 1)
		return 0;
	a->inflight = NULL;
	if (r == 0) {
		job_succeeded(a, j);
		return 0;
	}
	snprintf(reason, sizeof(reason), "%s", r == -E2BIG ? "command too long for the port" : strerror(-r));
	job_fail(a, j, reason);
	if (is_loss(r))
		lose(a, r);
	return r;
}

/* Start the waiting command once nothing is in flight. */
static void pump(struct actuator *a)
{
	while (a->up && !a->inflight && a->pending) {
		struct job *j = a->pending;
		a->pending = NULL;
		start_job(a, j);
	}
}

/* Run J now, or after the command in flight. */
static int submit(struct actuator *a, struct job *j)
{
	if (a->inflight) {
		a->pending = j;
		return 0;
	}
	return start_job(a, j);
}

/* FAIL_SAFE: the fail-safe's own switch, said on the error topic once confirmed. */
static void submit_internal(struct actuator *a, const struct val *v, const char *why, bool fail_safe)
{
	struct job *j = job_take(a);

	if (!j)
		return;
	j->internal = true;
	j->fail_safe = fail_safe;
	j->why = why;
	j->v = *v;
	j->expires_us = UINT64_MAX;
	submit(a, j);
}

static void on_act_done(struct sg_act *act, int result, const char *detail, void *ud)
{
	struct actuator *a = ud;
	struct job *j = a->inflight;
	(void)act;

	if (!j)
		return;
	a->inflight = NULL;
	if (result == 0)
		job_succeeded(a, j);
	else
		job_fail(a, j, detail ? detail : strerror(-result));
}

/* ---- opening and losing hardware --------------------------------------------------------------- */

/* "/dev/ttyUSB0" or "gpiochip0 line 17": what the hardware problem is about. Asked of the driver that
 * parsed the options (the configured one), which may differ from a substitute in env->drivers. */
static const char *where(struct actuator *a)
{
	const struct sg_act_driver *d = a->cfg->drv;

	if (d && d->where && a->cfg->opts) {
		d->where(a->cfg->opts, a->where, sizeof(a->where));
		return a->where;
	}
	return a->drv->name;
}

static void close_act(struct actuator *a)
{
	if (a->c->env.closing)
		a->c->env.closing(a->c->ud, a->index);
	if (a->act.state)
		a->drv->close(&a->act);
	free(a->act.state);
	a->act.state = NULL;
	a->act.fd = -1;
	a->act.events = 0;
	a->act.wake_us = UINT64_MAX;
	a->up = false;
	a->gen++;
}

static void schedule_reopen(struct actuator *a)
{
	a->reopen_at = a->c->now + supervise_retry(&a->sup, a->cfg->name);
}

static void lose(struct actuator *a, int err)
{
	char reason[200];

	supervise_problem(&a->sup, a->cfg->name, "%s: %s; reopening", where(a), strerror(-err));
	close_act(a);
	snprintf(reason, sizeof(reason), "actuator unavailable: %s: %s", where(a), strerror(-err));
	if (a->inflight) {
		struct job *j = a->inflight;
		a->inflight = NULL;
		job_fail(a, j, reason);
	}
	if (a->pending) {
		struct job *j = a->pending;
		a->pending = NULL;
		job_fail(a, j, reason);
	}
	schedule_reopen(a);
}

static void open_act(struct actuator *a)
{
	const struct val *want = NULL;
	const char *why = "initial state";
	struct val off = {.on = false};
	bool at_want = false;
	int r;

	if (a->ever_up && a->known) {
		want = &a->state;
		why = "state restored after reopening";
	} else if (a->has_initial) {
		want = &a->initial;
	}
	/* The controller went away while the hardware was: come back in the safe state. */
	if (a->fail_safe_waiting) {
		want = a->has_safe ? &a->safe : &a->initial;
		why = "fail-safe state";
	}
	/* A pulse or max_on_s that ran out while the hardware was away: come back off. */
	if (a->cfg->kind == SG_ACT_SWITCH && a->autooff_at <= a->c->now) {
		a->autooff_at = UINT64_MAX;
		want = &off;
		why = "automatic switch-off (delayed while unavailable)";
	}
	a->params.initial = a->cfg->kind == SG_ACT_SWITCH && want ? want->on : -1;
	a->act.fd = -1;
	a->act.events = 0;
	a->act.wake_us = UINT64_MAX;
	a->act.state = calloc(1, a->drv->state_size ? a->drv->state_size : 1);
	if (!a->act.state) {
		supervise_problem(&a->sup, a->cfg->name, "cannot open %s: %s", where(a), strerror(ENOMEM));
		schedule_reopen(a);
		return;
	}
	r = a->drv->open(&a->act);
	if (r < 0) {
		supervise_problem(&a->sup, a->cfg->name, "cannot open %s: %s", where(a), strerror(-r));
		a->drv->close(&a->act);
		free(a->act.state);
		a->act.state = NULL;
		a->act.fd = -1;
		schedule_reopen(a);
		return;
	}
	a->up = true;
	a->gen++;
	supervise_recovered(&a->sup, a->cfg->name, where(a));
	a->ever_up = true;
	commands_hardware_back(a->c, where(a), a->c->now);

	/* Hardware that can tell is believed; anything else is told the wanted state again. */
	if (a->drv->read_back && a->cfg->kind == SG_ACT_SWITCH) {
		r = a->drv->read_back(&a->act);
		if (r >= 0) {
			bool changed = !a->known || a->state.on != (r != 0);
			a->known = true;
			a->state.on = r != 0;
			at_want = want && val_equal(a, &a->state, want);
			if (changed)
				publish_state(a);
		}
	}
	if (a->fail_safe_waiting) {
		a->fail_safe_waiting = false;
		if (at_want)
			fail_safe_note(a, a->fail_safe_why);
		else
			submit_internal(a, want, why, true);
		return;
	}
	if (want && !at_want)
		submit_internal(a, want, why, false);
}

/* ---- the controller going away: the fail-safe ------------------------------------------------- *
 *
 * An actuator with fail_safe_after_s goes to its safe state (`safe`, else
 * `initial`: config.c insists on one) once the broker has been away that long
 * (counted from start-up too: nothing can command it before the first
 * connection); one with fail_safe_on_ha_offline when Home Assistant's status
 * topic says "offline". Through the ordinary queue, as an internal job: a
 * waiting command is superseded, one in flight finishes first. The state
 * topic shows the safe state (at once, or after the reconnect), the error
 * topic says why. It stays there until a command moves it.
 */

static void fail_safe(struct actuator *a, const char *why)
{
	const struct val *target = a->has_safe ? &a->safe : a->has_initial ? &a->initial : NULL;

	if (!target)
		return;
	a->n_fail_safe++;
	snprintf(a->fail_safe_why, sizeof(a->fail_safe_why), "%s", why);
	if (!a->up) {
		log_full(LOG_WARNING, a->cfg->name, NULL, "fail-safe: %s; the hardware is away: its safe state %s "
		         "once it is back", why, val_text(a, target));
		a->fail_safe_waiting = true;
		return;
	}
	if (a->known && val_equal(a, &a->state, target) && !a->inflight && !a->pending) {
		log_full(LOG_NOTICE, a->cfg->name, NULL, "fail-safe: %s; already in its safe state %s", why,
		         val_text(a, target));
		return;
	}
	log_full(LOG_WARNING, a->cfg->name, NULL, "fail-safe: %s; switching to its safe state %s", why,
	         val_text(a, target));
	submit_internal(a, target, "fail-safe state", true);
}

/* ---- the API ------------------------------------------------------------------------------------ */

struct sg_commands *commands_new(const struct sg_config *cfg, const struct sg_cmd_env *env, void *ud,
                                 uint64_t now_us)
{
	struct sg_commands *c;
	char why[256];

	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cfg = cfg;
	c->env = *env;
	c->ud = ud;
	c->now = now_us;
	c->unknown_rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(60, 3);
	c->link_up = false; /* the broker comes later: the fail-safe counts from now */
	c->n = cfg->n_actuators;
	c->acts = calloc(c->n ? c->n : 1, sizeof(*c->acts));
	if (!c->acts) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < c->n; i++) {
		struct actuator *a = &c->acts[i];
		const struct sg_actuator_cfg *ac = &cfg->actuators[i];

		a->c = c;
		a->index = i;
		a->cfg = ac;
		a->autooff_at = UINT64_MAX;
		a->fail_safe_at = ac->fail_safe_after_s > 0 ? now_us + (uint64_t)(ac->fail_safe_after_s * 1e6) : UINT64_MAX;
		a->warn_rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(60, 5);
		supervise_init(&a->sup);
		a->drv = sg_act_driver_find(env->drivers, ac->driver);
		if (!a->drv || !(a->drv->kinds & SG_ACT_KIND_BIT(ac->kind)))
			goto err_inval;
		if (ac->initial) {
			if (parse_value(a, ac->initial, strlen(ac->initial), &a->initial, why, sizeof(why)) < 0)
				goto err_inval;
			a->has_initial = true;
		}
		if (ac->safe) {
			if (parse_value(a, ac->safe, strlen(ac->safe), &a->safe, why, sizeof(why)) < 0)
				goto err_inval;
			a->has_safe = true;
		}
		a->params = (struct sg_act_params){
			.name = ac->name,
			.kind = ac->kind,
			.initial = -1,
			.opts = ac->opts,
			.line = ac->serial_line >= 0 && ac->line_settings.baud > 0 ? &ac->line_settings : NULL,
		};
		a->act = (struct sg_act){
			.driver = a->drv,
			.params = &a->params,
			.buses = env->buses,
			.fd = -1,
			.wake_us = UINT64_MAX,
			.done = on_act_done,
			.userdata = a,
		};
	}
	for (size_t i = 0; i < c->n; i++) {
		open_act(&c->acts[i]);
		pump(&c->acts[i]);
	}
	return c;

err_inval:
	commands_free(c);
	errno = EINVAL;
	return NULL;
}

void commands_free(struct sg_commands *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		struct actuator *a = &c->acts[i];
		if (a->act.state)
			close_act(a);
		a->inflight = a->pending = NULL;
		job_clear(&a->slot[0]);
		job_clear(&a->slot[1]);
	}
	free(c->acts);
	free(c);
}

void commands_connected(struct sg_commands *c)
{
	c->link_up = true;
	for (size_t i = 0; i < c->n; i++) {
		struct actuator *a = &c->acts[i];
		int r = c->env.subscribe ? c->env.subscribe(c->ud, a->cfg->command_topic, a->cfg->qos) : 0;
		if (r < 0)
			log_full(LOG_WARNING, a->cfg->name, a->cfg->command_topic, "cannot subscribe to %s: %s",
			         a->cfg->command_topic, strerror(-r));
		a->fail_safe_at = UINT64_MAX;
		publish_state(a);
		if (a->note[0]) { /* what the fail-safe did while the broker was away, after the state it left */
			publish(a, a->cfg->error_topic, a->note, false, NULL, 0);
			a->note[0] = '\0';
		}
	}
}

void commands_disconnected(struct sg_commands *c, uint64_t now_us)
{
	if (!c->link_up)
		return;
	c->link_up = false;
	for (size_t i = 0; i < c->n; i++) {
		struct actuator *a = &c->acts[i];

		if (a->cfg->fail_safe_after_s > 0)
			a->fail_safe_at = now_us + (uint64_t)(a->cfg->fail_safe_after_s * 1e6);
	}
}

void commands_ha_offline(struct sg_commands *c, uint64_t now_us)
{
	c->now = now_us;
	for (size_t i = 0; i < c->n; i++) {
		struct actuator *a = &c->acts[i];

		if (a->cfg->fail_safe_on_ha_offline) {
			fail_safe(a, "Home Assistant went offline");
			pump(a);
		}
	}
}

bool commands_wants_ha_status(const struct sg_commands *c)
{
	for (size_t i = 0; c && i < c->n; i++)
		if (c->acts[i].cfg->fail_safe_on_ha_offline)
			return true;
	return false;
}

uint64_t commands_fail_safe_count(const struct sg_commands *c, size_t i)
{
	return i < c->n ? c->acts[i].n_fail_safe : 0;
}

static struct actuator *find_by_command_topic(struct sg_commands *c, const char *topic)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->acts[i].cfg->command_topic, topic) == 0)
			return &c->acts[i];
	return NULL;
}

/* A switch that is on, may be on (unknown), or is being switched on. */
static bool may_be_on(const struct actuator *b)
{
	return !b->known || b->state.on || (b->inflight && b->inflight->v.on) || (b->pending && b->pending->v.on);
}

static struct actuator *interlock_blocker(struct actuator *a)
{
	struct sg_commands *c = a->c;

	if (!a->cfg->interlock || a->cfg->kind != SG_ACT_SWITCH)
		return NULL;
	for (size_t i = 0; i < c->n; i++) {
		struct actuator *b = &c->acts[i];
		if (b != a && b->cfg->interlock && b->cfg->kind == SG_ACT_SWITCH &&
		    strcmp(b->cfg->interlock, a->cfg->interlock) == 0 && may_be_on(b))
			return b;
	}
	return NULL;
}

int commands_message(struct sg_commands *c, const struct sg_cmd_msg *msg, uint64_t now_us)
{
	struct actuator *a, *b;
	struct answer ans = {
		.payload = msg->payload,
		.len = msg->len,
		.response_topic = msg->response_topic,
		.correlation = msg->correlation,
		.correlation_len = msg->correlation_len,
	};
	struct val v;
	struct job *j;
	char why[256];
	int r;

	c->now = now_us;
	a = find_by_command_topic(c, msg->topic);
	if (!a) {
		unsigned suppressed;
		if (ratelimit_allow(&c->unknown_rl, now_us, &suppressed))
			log_full(LOG_NOTICE, NULL, msg->topic, "message on %s: no actuator has this command topic, "
			         "dropped%s", msg->topic, suppressed ? " (more not logged)" : "");
		return -ENOENT;
	}
	if (msg->len == 0) {
		log_full(LOG_DEBUG, a->cfg->name, msg->topic, "empty message ignored");
		return -ENODATA;
	}
	/* Where an answer would go is decided first; a refused place gets nothing, not even the refusal. */
	if (msg->response_topic) {
		const struct sg_config *own[2] = {c->cfg, c->also};
		size_t rlen = msg->response_topic_len ? msg->response_topic_len : strlen(msg->response_topic);

		if (response_topic_check(own, 2, msg->response_topic, rlen, why, sizeof(why)) < 0) {
			ans.response_topic = NULL;
			refuse(a, &ans, "%s; command refused", why);
			return -EACCES;
		}
	}
	if (msg->correlation_len > SG_CORRELATION_MAX) {
		ans.response_topic = NULL;
		refuse(a, &ans, "Correlation Data of %zu bytes (at most %d); command refused", msg->correlation_len,
		       SG_CORRELATION_MAX);
		return -EMSGSIZE;
	}
	if (msg->len > SG_CMD_MAX_PAYLOAD) {
		refuse(a, &ans, "payload too long (%zu bytes, at most %d)", msg->len, SG_CMD_MAX_PAYLOAD);
		return -EMSGSIZE;
	}
	if (msg->retain && !a->cfg->accept_retained) {
		refuse(a, &ans, "retained command ignored (clear it with an empty retained message, or set "
		       "accept_retained = true)");
		return -EPERM;
	}
	if (msg->has_expiry && msg->expiry_s == 0) {
		refuse(a, &ans, "command expired");
		return -ETIME;
	}
	if (parse_value(a, msg->payload, msg->len, &v, why, sizeof(why)) < 0) {
		refuse(a, &ans, "%s", why);
		return -EINVAL;
	}
	if (!a->up) {
		refuse(a, &ans, "actuator unavailable: %s", a->sup.problem[0] ? a->sup.problem : "not open");
		return -ENODEV;
	}
	if (a->cfg->min_interval_ms > 0 && a->have_last &&
	    now_us - a->last_cmd_us < (uint64_t)a->cfg->min_interval_ms * 1000) {
		refuse(a, &ans, "too many commands: at most one every %d ms", a->cfg->min_interval_ms);
		return -EAGAIN;
	}
	if (a->cfg->kind == SG_ACT_SWITCH && v.on && (b = interlock_blocker(a))) {
		refuse(a, &ans, "interlock \"%s\": \"%s\" %s; switch it off first", a->cfg->interlock, b->cfg->name,
		       b->known && b->state.on ? "is on" : b->known ? "is being switched on" : "may be on (state unknown)");
		return -EBUSY;
	}
	a->have_last = true;
	a->last_cmd_us = now_us;
	j = job_take(a);
	if (!j)
		return -ENOMEM;
	j->v = v;
	memcpy(j->payload, msg->payload, msg->len);
	j->payload_len = msg->len;
	j->expires_us = msg->has_expiry ? now_us + (uint64_t)msg->expiry_s * 1000000ULL : UINT64_MAX;
	if (msg->response_topic) { /* checked above */
		j->response_topic = strdup(msg->response_topic);
		if (msg->correlation && msg->correlation_len) {
			j->correlation = malloc(msg->correlation_len);
			if (j->correlation) {
				memcpy(j->correlation, msg->correlation, msg->correlation_len);
				j->correlation_len = msg->correlation_len;
			}
		}
		if (!j->response_topic || (msg->correlation_len && !j->correlation))
			log_full(LOG_WARNING, a->cfg->name, NULL, "out of memory: the response to this command may be "
			         "lost");
	}
	r = submit(a, j);
	pump(a);
	return r;
}

void commands_reloaded(struct sg_commands *c, const struct sg_config *cfg)
{
	if (c)
		c->also = cfg;
}

size_t commands_count(const struct sg_commands *c)
{
	return c->n;
}

int commands_fd(const struct sg_commands *c, size_t i)
{
	return i < c->n && c->acts[i].up ? c->acts[i].act.fd : -1;
}

short commands_events(const struct sg_commands *c, size_t i)
{
	return i < c->n && c->acts[i].up ? c->acts[i].act.events : 0;
}

unsigned commands_fd_generation(const struct sg_commands *c, size_t i)
{
	return i < c->n ? c->acts[i].gen : 0;
}

void commands_io(struct sg_commands *c, size_t i, short revents, uint64_t now_us)
{
	struct actuator *a;
	int r;

	if (i >= c->n)
		return;
	a = &c->acts[i];
	c->now = now_us;
	if (!a->up || !a->drv->io)
		return;
	r = a->drv->io(&a->act, revents, now_us);
	if (r < 0)
		lose(a, r);
	pump(a);
}

uint64_t commands_deadline(const struct sg_commands *c)
{
	uint64_t d = UINT64_MAX;

	for (size_t i = 0; i < c->n; i++) {
		const struct actuator *a = &c->acts[i];
		if (a->fail_safe_at < d)
			d = a->fail_safe_at;
		if (!a->up) {
			if (a->reopen_at < d)
				d = a->reopen_at;
			continue;
		}
		if (a->act.wake_us < d)
			d = a->act.wake_us;
		if (a->autooff_at < d)
			d = a->autooff_at;
	}
	return d;
}

void commands_hardware_back(struct sg_commands *c, const char *place, uint64_t now_us)
{
	for (size_t i = 0; c && place && i < c->n; i++) {
		struct actuator *a = &c->acts[i];

		if (!a->up && a->reopen_at > now_us && strcmp(where(a), place) == 0)
			a->reopen_at = now_us;
	}
}

void commands_timer(struct sg_commands *c, uint64_t now_us)
{
	c->now = now_us;
	for (size_t i = 0; i < c->n; i++) {
		struct actuator *a = &c->acts[i];
		int r;

		if (a->fail_safe_at <= now_us) {
			char why[96];

			a->fail_safe_at = UINT64_MAX;
			snprintf(why, sizeof(why), "no connection to the broker for %g s", a->cfg->fail_safe_after_s);
			fail_safe(a, why);
		}
		if (!a->up) {
			if (now_us >= a->reopen_at)
				open_act(a);
			if (!a->up)
				continue;
		}
		if (a->act.wake_us <= now_us && a->drv->timer) {
			r = a->drv->timer(&a->act, now_us);
			if (r < 0) {
				lose(a, r);
				continue;
			}
		}
		if (a->autooff_at <= now_us) {
			struct val off = {.on = false};
			a->autooff_at = UINT64_MAX;
			submit_internal(a, &off, a->cfg->pulse_ms > 0 ? "end of pulse" : "max_on_s reached, switched off",
			                false);
		}
		pump(a);
	}
}

void commands_shutdown(struct sg_commands *c, int timeout_ms)
{
	for (size_t i = 0; i < c->n; i++) {
		struct actuator *a = &c->acts[i];
		struct val off = {.on = false};
		const struct val *target = a->has_safe ? &a->safe : a->has_initial ? &a->initial : NULL;
		struct sg_act_value v;
		int r;

		a->inflight = a->pending = NULL;
		job_clear(&a->slot[0]);
		job_clear(&a->slot[1]);
		/* Something that switches itself off must not stay on because we stopped. */
		if (!target && a->cfg->kind == SG_ACT_SWITCH && a->autooff_at != UINT64_MAX)
			target = &off;
		a->autooff_at = UINT64_MAX;
		if (!a->up)
			continue;
		if (target) {
			v = act_value(a, target);
			r = a->drv->set_sync(&a->act, &v, timeout_ms);
			if (r == 0) {
				a->state = *target;
				a->known = true;
				log_full(LOG_INFO, a->cfg->name, NULL, "safe state on shutdown: %s", v.text);
				publish_state(a);
			} else {
				log_full(LOG_WARNING, a->cfg->name, NULL, "could not set the safe state %s on shutdown: %s",
				         v.text, r == -ETIMEDOUT ? "no confirmation in time" : strerror(-r));
			}
		}
		close_act(a);
	}
}

const char *commands_state(const struct sg_commands *c, size_t i)
{
	if (i >= c->n || !c->acts[i].known)
		return NULL;
	return val_text(&c->acts[i], &c->acts[i].state);
}

bool commands_up(const struct sg_commands *c, size_t i)
{
	return i < c->n && c->acts[i].up;
}
