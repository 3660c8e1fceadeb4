/* SPDX-License-Identifier: MIT */
/*
 * mapper.c — topics, payloads and per-reading transforms.
 *
 * Transform order for a number: average (moving mean over N samples, emitted
 * once the window is full), scale, offset, the reading's `filters` chain
 * (filters.h), round; then the publish filters:
 * throttle (at most once per N s), deadband (only when the change from the
 * last published value exceeds it), heartbeat (publish anyway when the last
 * publication is N s old). A value a chain's timeout filter sends of itself
 * (mapper_tick()) is rounded and published without the publish filters: it
 * is a heartbeat of its own. State lives in one struct per configured reading,
 * allocated once in mapper_new(); mapping a reading allocates nothing.
 */
#include "mapper.h"

#include "../common/clock.h"
#include "../common/json.h"
#include "../drivers/decimal.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOPIC_MAX   512
#define PAYLOAD_MAX 1024
#define AVERAGE_MAX 1000

struct reading_state {
	bool published;          /* last_value / last_pub_us valid */
	double last_value;
	uint64_t last_pub_us;
	double *window;          /* `average` samples, ring */
	int window_fill;
	int window_pos;
	struct sg_filter_chain *chain; /* `filters`, or NULL */
	char unit[32];           /* the driver's unit of the last reading, for values a timeout sends */
};

struct device_state {
	struct reading_state *readings; /* one per cfg->devices[i].readings[j] */
};

struct sg_mapper {
	const struct sg_config *cfg;
	const struct sg_timesync *ts;  /* NULL: the wall clock is believed */
	struct sg_iso_cache iso;       /* JSON "ts": one gmtime_r() a second */
	struct device_state *devices;
	bool timed;              /* some chain has a timeout filter: mapper_tick() has work */
	char topic[TOPIC_MAX];
	char payload[PAYLOAD_MAX];
};

struct sg_mapper *mapper_new(const struct sg_config *cfg)
{
	struct sg_mapper *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->cfg = cfg;
	m->iso = (struct sg_iso_cache)SG_ISO_CACHE_INIT;
	m->devices = calloc(cfg->n_devices ? cfg->n_devices : 1, sizeof(*m->devices));
	if (!m->devices)
		goto err_free;
	for (size_t i = 0; i < cfg->n_devices; i++) {
		const struct sg_device_cfg *d = &cfg->devices[i];
		if (d->n_readings == 0)
			continue;
		m->devices[i].readings = calloc(d->n_readings, sizeof(struct reading_state));
		if (!m->devices[i].readings)
			goto err_free;
		for (size_t j = 0; j < d->n_readings; j++) {
			int n = d->readings[j].average;
			if (n > 1) {
				m->devices[i].readings[j].window = calloc((size_t)n, sizeof(double));
				if (!m->devices[i].readings[j].window)
					goto err_free;
			}
			if (d->readings[j].n_filters) {
				m->devices[i].readings[j].chain =
					filter_chain_new(d->readings[j].filters, d->readings[j].n_filters);
				if (!m->devices[i].readings[j].chain)
					goto err_free;
				if (filter_specs_timed(d->readings[j].filters, d->readings[j].n_filters))
					m->timed = true;
			}
		}
	}
	return m;

err_free:
	mapper_free(m);
	return NULL;
}

void mapper_set_timesync(struct sg_mapper *m, const struct sg_timesync *t)
{
	m->ts = t;
}

/* The stamp of a measurement now, or at the device's own time DEVICE_US. */
static void stamp(const struct sg_mapper *m, int64_t device_us, struct sg_stamp *ret)
{
	if (m->ts) {
		timesync_stamp(m->ts, device_us, ret);
		return;
	}
	*ret = (struct sg_stamp){.real_us = device_us ? device_us : now_real_us()};
}

void mapper_free(struct sg_mapper *m)
{
	if (!m)
		return;
	if (m->devices) {
		for (size_t i = 0; i < m->cfg->n_devices; i++) {
			if (!m->devices[i].readings)
				continue;
			for (size_t j = 0; j < m->cfg->devices[i].n_readings; j++) {
				free(m->devices[i].readings[j].window);
				filter_chain_free(m->devices[i].readings[j].chain);
			}
			free(m->devices[i].readings);
		}
		free(m->devices);
	}
	free(m);
}

/*
 * The fast path of mapper_format_number(), for the numbers sensors send:
 * V = R / 10^D with R an integer below 10^15 and D the fewest decimals
 * (exactly ROUND when ROUND >= 0). Then the decimal R·10^-D reads back as V
 * (the division is correctly rounded), and V lies within half an ulp
 * (about 1.1e-16 relative) of it, far closer than half a step of the
 * 15-digit grid (5e-16 relative at least) that %.15g and %.*f round to, so
 * both print exactly that decimal. %.15g also trims trailing zeros (the
 * fewest decimals have none) and switches to exponents outside
 * [1e-4, 1e15): those go the slow way, as does anything this cannot prove.
 * snprintf() of a double was over a quarter of the gateway's work per
 * message (README, Benchmarks); this is a few multiplications.
 * Returns the length, or -1 for the slow path.
 */
static int format_fast(char *buf, size_t len, double v, int round)
{
	char digits[24];
	double a = fabs(v), r = 0;
	int d, lo = round, hi = round, n = 0, at = 0;
	uint64_t u;

	if (round < 0) {
		if (a == 0) {
			lo = hi = 0;
		} else if (!(a >= 1e-4 && a < 1e15)) {
			return -1;
		} else {
			lo = 0;
			hi = 15;
		}
	} else if (round > 15) {
		return -1;
	}
	for (d = lo; d <= hi; d++) {
		double s = a * sg_pow10[d];
		if (!(s < 1e15))
			return -1;
		r = nearbyint(s);
		if (r / sg_pow10[d] == a)
			break;
	}
	if (d > hi)
		return -1;
	for (u = (uint64_t)r; u || n <= d; u /= 10) /* least significant first; at least d + 1 digits */
		digits[n++] = (char)('0' + u % 10);
	if ((size_t)(n + 3) > len) /* sign, point, NUL */
		return -1;
	if (v < 0 && r != 0) /* never "-0": read badly on dashboards */
		buf[at++] = '-';
	while (n > 0) {
		buf[at++] = digits[--n];
		if (n == d && d > 0)
			buf[at++] = '.';
	}
	buf[at] = '\0';
	return at;
}

int mapper_format_number(char *buf, size_t len, double v, int round)
{
	int n;

	if (!isfinite(v))
		return -ERANGE;
	n = format_fast(buf, len, v, round);
	if (n >= 0)
		return n;
	if (round >= 0) {
		n = snprintf(buf, len, "%.*f", round, v);
	} else {
		/* Shortest of %.15g/%.17g that reads back as the same double. */
		n = snprintf(buf, len, "%.15g", v);
		if (n > 0 && (size_t)n < len && strtod(buf, NULL) != v)
			n = snprintf(buf, len, "%.17g", v);
	}
	if (n < 0 || (size_t)n >= len)
		return -ENOBUFS;
	/* "-0" and "-0.0" read badly on dashboards. */
	if (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1)) {
		memmove(buf, buf + 1, (size_t)n);
		n--;
	}
	return n;
}

static bool field_valid(const char *f)
{
	if (!f || !*f)
		return false;
	for (const char *p = f; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* Append s as a JSON string body (without quotes, common/json.h's policy). Returns new length or -ENOBUFS. */
static int json_escape(char *buf, size_t len, size_t at, const char *s)
{
	bool complete;
	size_t n;

	if (at >= len)
		return -ENOBUFS;
	n = sg_json_escape(s, strlen(s), buf + at, len - at, &complete);
	return complete ? (int)(at + n) : -ENOBUFS;
}

/*
 * A timeout filter's "no value": Home Assistant's MQTT integrations read the
 * payload "None" as unknown (PAYLOAD_NONE in homeassistant/components/mqtt/const.py);
 * in JSON the value is null (its value_template renders that as None too).
 */
#define PAYLOAD_UNAVAILABLE "None"

static int format_payload(struct sg_mapper *m, const struct sg_reading_cfg *rc, const struct sg_reading *r,
                          double value, const char *unit, const struct sg_stamp *st)
{
	char num[64];
	char ts[96];
	size_t at;
	int n;
	int round = rc ? rc->round : -1;
	enum sg_payload_format fmt = rc ? rc->payload : m->cfg->payload;

	if (r->kind == SG_VALUE_NUMBER && isnan(value)) {
		strcpy(num, fmt == SG_PAYLOAD_PLAIN ? PAYLOAD_UNAVAILABLE : "null");
	} else if (r->kind == SG_VALUE_NUMBER && r->text && round < 0 && value == r->number && strlen(r->text) < sizeof(num)) {
		strcpy(num, r->text); /* what mapper_format_number() would print: decimal.h */
	} else if (r->kind == SG_VALUE_NUMBER) {
		n = mapper_format_number(num, sizeof(num), value, round);
		if (n < 0)
			return n;
	}
	if (fmt == SG_PAYLOAD_PLAIN) {
		const char *s = r->kind == SG_VALUE_NUMBER ? num : r->string;
		size_t l = strlen(s);
		if (l >= sizeof(m->payload))
			return -ENOBUFS;
		memcpy(m->payload, s, l + 1);
		return (int)l;
	}

	/* JSON: {"value":..,"unit":"..","ts":"..Z"}; "ts":null while the clock is not trusted (timesync.h) */
	if (st->real_us) {
		ts[0] = '"';
		n = timesync_iso_cached(&m->iso, st->real_us, ts + 1);
		ts[n + 1] = '"';
		ts[n + 2] = '\0';
	} else {
		strcpy(ts, "null");
	}
	at = (size_t)snprintf(m->payload, sizeof(m->payload), "{\"value\":");
	if (r->kind == SG_VALUE_NUMBER) {
		n = snprintf(m->payload + at, sizeof(m->payload) - at, "%s", num);
		at += (size_t)n;
	} else {
		m->payload[at++] = '"';
		n = json_escape(m->payload, sizeof(m->payload), at, r->string);
		if (n < 0)
			return n;
		at = (size_t)n;
		if (at + 1 >= sizeof(m->payload))
			return -ENOBUFS;
		m->payload[at++] = '"';
	}
	if (unit) {
		n = snprintf(m->payload + at, sizeof(m->payload) - at, ",\"unit\":\"");
		if (n < 0 || at + (size_t)n >= sizeof(m->payload))
			return -ENOBUFS;
		at += (size_t)n;
		n = json_escape(m->payload, sizeof(m->payload), at, unit);
		if (n < 0)
			return n;
		at = (size_t)n;
		if (at + 1 >= sizeof(m->payload))
			return -ENOBUFS;
		m->payload[at++] = '"';
	}
	n = snprintf(m->payload + at, sizeof(m->payload) - at, ",\"ts\":%s}", ts);
	if (n < 0 || at + (size_t)n >= sizeof(m->payload))
		return -ENOBUFS;
	return (int)(at + (size_t)n);
}

static double round_to(double x, int decimals)
{
	double p;

	if (decimals < 0)
		return x;
	p = pow(10.0, decimals);
	return round(x * p) / p;
}

/* Apply the transforms and filters of RC to V. Returns true when it is to be published. */
static bool transform(const struct sg_reading_cfg *rc, struct reading_state *st, double *v, uint64_t now)
{
	double x = *v;

	if (rc->average > 1 && st->window) {
		double sum = 0;

		if (st->window_fill < rc->average)
			st->window_fill++;
		st->window[st->window_pos] = x;
		st->window_pos = (st->window_pos + 1) % rc->average;
		if (st->window_fill < rc->average)
			return false;
		/* summed afresh each time: a running sum never forgets an outlier's rounding error */
		for (int i = 0; i < rc->average; i++)
			sum += st->window[i];
		x = sum / rc->average;
	}
	x = x * rc->scale + rc->offset;
	if (st->chain && filter_chain_push(st->chain, x, now, &x) != SG_FILTER_VALUE)
		return false;
	x = round_to(x, rc->round);
	*v = x;

	if (st->published) {
		uint64_t age = now - st->last_pub_us;
		bool heartbeat_due = rc->heartbeat_s > 0 && (double)age >= rc->heartbeat_s * 1e6;
		if (rc->throttle_s > 0 && (double)age < rc->throttle_s * 1e6)
			return false;
		/*
		 * A change of exactly one deadband does not exceed it, whatever the binary
		 * representation says (20.1 - 20.0 > 0.1 but 20.2 - 20.1 < 0.1 in doubles):
		 * allow a few ulps of the operands.
		 */
		if (!heartbeat_due && rc->deadband > 0 &&
		    fabs(x - st->last_value) <= rc->deadband + 4 * DBL_EPSILON * fmax(fabs(x), fabs(st->last_value)))
			return false;
	}
	return true;
}

/* "A/B/C" into BUF (for every reading of a device without a readings list: not snprintf()). */
static int topic_join(char *buf, size_t len, const char *a, const char *b, const char *c)
{
	const char *part[3] = {a, b, c};
	size_t at = 0;

	for (int i = 0; i < 3; i++) {
		size_t n = strlen(part[i]);
		if (at + n + 1 > len)
			return -ENOBUFS;
		memcpy(buf + at, part[i], n);
		at += n;
		buf[at++] = i < 2 ? '/' : '\0';
	}
	return 0;
}

/* The message of reading RC on TOPIC: the LEN bytes of payload just formatted in m->payload. Returns 1. */
static int message_out(const struct sg_mapper *m, const struct sg_reading_cfg *rc, const char *topic, size_t len,
                       struct sg_message *ret)
{
	*ret = (struct sg_message){
		.topic = topic,
		.payload = m->payload,
		.payload_len = len,
		.qos = rc->qos,
		.retain = rc->retain,
		.offline = rc->offline,
		.stamp = ret->stamp,
		.json = rc->payload == SG_PAYLOAD_JSON,
	};
	return 1;
}

int mapper_map(struct sg_mapper *m, size_t dev, const struct sg_reading *r, uint64_t now_us,
               struct sg_message *ret)
{
	const struct sg_device_cfg *d;
	const struct sg_reading_cfg *rc = NULL;
	struct reading_state *st = NULL;
	const char *topic;
	const char *unit;
	double v = r->number;
	int n;

	if (dev >= m->cfg->n_devices)
		return -EINVAL;
	d = &m->cfg->devices[dev];
	if (!field_valid(r->field))
		return -EINVAL;
	if (r->kind == SG_VALUE_NUMBER && !isfinite(r->number))
		return -ERANGE;
	if (r->kind == SG_VALUE_STRING && !r->string)
		return -EINVAL;

	for (size_t j = 0; j < d->n_readings; j++) {
		if (strcmp(d->readings[j].field, r->field) == 0) {
			rc = &d->readings[j];
			st = &m->devices[dev].readings[j];
			break;
		}
	}
	if (!rc && !d->all_fields)
		return 0;

	if (rc) {
		if (st->chain && m->timed && r->kind == SG_VALUE_NUMBER && r->unit && strcmp(st->unit, r->unit) != 0)
			snprintf(st->unit, sizeof(st->unit), "%s", r->unit);
		if (r->kind == SG_VALUE_NUMBER && !transform(rc, st, &v, now_us))
			return 0;
		if (r->kind == SG_VALUE_NUMBER && !isfinite(v)) /* a calibration overflowed: not "None" */
			return -ERANGE;
		topic = rc->topic;
		unit = rc->unit ? rc->unit : r->unit;
	} else {
		if (topic_join(m->topic, sizeof(m->topic), m->cfg->base_topic, d->name, r->field) < 0)
			return -ENOBUFS;
		topic = m->topic;
		unit = r->unit;
		rc = &d->defaults;
	}

	stamp(m, r->timestamp_us, &ret->stamp);
	n = format_payload(m, rc, r, v, unit, &ret->stamp);
	if (n < 0)
		return n;
	if (st) {
		st->published = true;
		st->last_value = v;
		st->last_pub_us = now_us;
	}
	return message_out(m, rc, topic, (size_t)n, ret);
}

uint64_t mapper_deadline(const struct sg_mapper *m)
{
	uint64_t at = UINT64_MAX;

	if (!m->timed)
		return at;
	for (size_t i = 0; i < m->cfg->n_devices; i++)
		for (size_t j = 0; m->devices[i].readings && j < m->cfg->devices[i].n_readings; j++) {
			const struct reading_state *st = &m->devices[i].readings[j];
			uint64_t t = st->chain ? filter_chain_deadline(st->chain) : UINT64_MAX;
			if (t < at)
				at = t;
		}
	return at;
}

int mapper_tick(struct sg_mapper *m, uint64_t now_us, struct sg_message *ret)
{
	if (!m->timed)
		return 0;
	for (size_t i = 0; i < m->cfg->n_devices; i++) {
		for (size_t j = 0; m->devices[i].readings && j < m->cfg->devices[i].n_readings; j++) {
			const struct sg_reading_cfg *rc = &m->cfg->devices[i].readings[j];
			struct reading_state *st = &m->devices[i].readings[j];
			struct sg_reading r;
			enum sg_filter_result k;
			double v = NAN;
			int n;

			if (!st->chain || filter_chain_deadline(st->chain) > now_us)
				continue;
			k = filter_chain_tick(st->chain, now_us, &v);
			if (k == SG_FILTER_NONE)
				continue;
			if (k == SG_FILTER_VALUE) {
				if (!isfinite(v))
					return -ERANGE;
				v = round_to(v, rc->round);
			}
			r = (struct sg_reading){
				.field = rc->field,
				.kind = SG_VALUE_NUMBER,
				.number = v,
				.unit = st->unit[0] ? st->unit : NULL,
			};
			stamp(m, 0, &ret->stamp);
			n = format_payload(m, rc, &r, v, rc->unit ? rc->unit : r.unit, &ret->stamp);
			if (n < 0)
				return n;
			/* after "no value" the next reading is news, whatever the deadband says */
			st->published = k == SG_FILTER_VALUE;
			st->last_value = v;
			st->last_pub_us = now_us;
			return message_out(m, rc, rc->topic, (size_t)n, ret);
		}
	}
	return 0;
}
