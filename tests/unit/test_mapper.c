/* SPDX-License-Identifier: MIT */
/*
 * test_mapper.c — topics, payloads and transforms of gateway/mapper.c.
 *
 * Configurations are built by hand (no config file), so each case states
 * exactly the settings it depends on. Times are explicit monotonic
 * microseconds passed to mapper_map().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/config.h"
#include "gateway/mapper.h"

#define S(x) ((uint64_t)((x) * 1000000.0)) /* seconds -> µs */

/* ---- configuration builders ------------------------------------------------------------------- */

struct fixture {
	struct sg_config cfg;
	struct sg_device_cfg dev[2];
	struct sg_reading_cfg rc[4];
	char topics[4][128];
};

static struct sg_reading_cfg reading_defaults(void)
{
	return (struct sg_reading_cfg){
		.qos = 0,
		.retain = true,
		.payload = SG_PAYLOAD_PLAIN,
		.offline = SG_OFFLINE_SPOOL,
		.scale = 1,
		.offset = 0,
		.round = -1,
	};
}

/*
 * Device 0 "env": a readings list with one entry for field "t" on topic
 * home/room/t (transforms set by the caller through f->rc[0]).
 * Device 1 "bus": no readings list, every field on home/bus/<field>.
 */
static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->cfg.base_topic = "home";
	f->cfg.payload = SG_PAYLOAD_PLAIN;
	f->cfg.devices = f->dev;
	f->cfg.n_devices = 2;

	f->rc[0] = reading_defaults();
	f->rc[0].field = "t";
	snprintf(f->topics[0], sizeof(f->topics[0]), "home/room/t");
	f->rc[0].topic = f->topics[0];

	f->dev[0].name = "env";
	f->dev[0].address = -1;
	f->dev[0].defaults = reading_defaults();
	f->dev[0].readings = f->rc;
	f->dev[0].n_readings = 1;

	f->dev[1].name = "bus";
	f->dev[1].address = -1;
	f->dev[1].defaults = reading_defaults();
	f->dev[1].all_fields = true;
}

static struct sg_reading num(const char *field, double v, const char *unit)
{
	return (struct sg_reading){.field = field, .kind = SG_VALUE_NUMBER, .number = v, .unit = unit};
}

static struct sg_reading str(const char *field, const char *s)
{
	return (struct sg_reading){.field = field, .kind = SG_VALUE_STRING, .string = s};
}

/* Map and return the result; *payload gets a copy of the payload when published. */
static int map(struct sg_mapper *m, size_t dev, struct sg_reading r, uint64_t now, char *payload, size_t len,
               struct sg_message *ret)
{
	struct sg_message msg;
	int k = mapper_map(m, dev, &r, now, &msg);

	if (k == 1) {
		assert_int_equal(strlen(msg.payload), msg.payload_len);
		snprintf(payload, len, "%s", msg.payload);
		if (ret)
			*ret = msg;
	}
	return k;
}

/* ---- topics ----------------------------------------------------------------------------------- */

static void test_topics(void **state)
{
	static const struct {
		const char *legend;
		size_t dev;
		const char *field;
		double v;
		int expect;
		const char *topic;
	} cases[] = {
		{"listed reading: its topic", 0, "t", 21.5, 1, "home/room/t"},
		{"unlisted field of a device with a list: dropped", 0, "h", 40, 0, NULL},
		{"all_fields: <base>/<device>/<field>", 1, "voltage", 12.1, 1, "home/bus/voltage"},
		{"all_fields, dotted JSON path", 1, "env.h", 40, 1, "home/bus/env.h"},
		{"all_fields, dashes and underscores", 1, "pm2_5-avg", 3, 1, "home/bus/pm2_5-avg"},
		{"field with '/': would add a topic level", 1, "a/b", 1, -EINVAL, NULL},
		{"field with '+': wildcard", 1, "a+", 1, -EINVAL, NULL},
		{"field '#': wildcard", 1, "#", 1, -EINVAL, NULL},
		{"field with a space", 1, "a b", 1, -EINVAL, NULL},
		{"empty field", 1, "", 1, -EINVAL, NULL},
		{"non-ASCII field", 1, "t\xc3\xa9", 1, -EINVAL, NULL},
		{"listed field, invalid name never matches a list either", 0, "t/", 1, -EINVAL, NULL},
		{"no such device", 2, "t", 1, -EINVAL, NULL},
		{"NaN", 1, "x", NAN, -ERANGE, NULL},
		{"+Inf", 1, "x", INFINITY, -ERANGE, NULL},
		{"-Inf on a listed reading", 0, "t", -INFINITY, -ERANGE, NULL},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture f;
		struct sg_mapper *m;
		struct sg_message msg;
		char payload[256];
		int k;

		fixture_init(&f);
		m = mapper_new(&f.cfg);
		assert_non_null(m);
		k = map(m, cases[i].dev, num(cases[i].field, cases[i].v, NULL), S(1), payload, sizeof(payload), &msg);
		if (k != cases[i].expect)
			fail_msg("%s: returned %d, expected %d", cases[i].legend, k, cases[i].expect);
		if (k == 1 && strcmp(msg.topic, cases[i].topic) != 0)
			fail_msg("%s: topic %s", cases[i].legend, msg.topic);
		mapper_free(m);
	}
}

static void test_topic_too_long(void **state)
{
	struct fixture f;
	struct sg_mapper *m;
	struct sg_message msg;
	char field[600];
	struct sg_reading r;
	(void)state;

	fixture_init(&f);
	m = mapper_new(&f.cfg);
	memset(field, 'a', sizeof(field) - 1);
	field[sizeof(field) - 1] = '\0';
	r = num(field, 1, NULL);
	assert_int_equal(mapper_map(m, 1, &r, S(1), &msg), -ENOBUFS);
	mapper_free(m);
}

/* ---- payloads --------------------------------------------------------------------------------- */

static void test_plain_numbers(void **state)
{
	static const struct {
		double v;
		int round;
		const char *expect;
	} cases[] = {
		{21.4, -1, "21.4"},
		{21.0, -1, "21"},
		{-3.25, -1, "-3.25"},
		{0.1 + 0.2, -1, "0.30000000000000004"}, /* shortest text that reads back as the same double */
		{1e21, -1, "1e+21"},
		{1.5e-7, -1, "1.5e-07"},
		{-0.0, -1, "0"},
		{21.44, 1, "21.4"},
		{21.46, 1, "21.5"},
		{21.0, 1, "21.0"},
		{-0.04, 1, "0.0"},   /* rounds to -0.0: no minus sign */
		{-0.4, 0, "0"},
		{1013.25, 0, "1013"},
		{2.5, 0, "3"},       /* round() rounds half away from zero */
		{-2.5, 0, "-3"},
		{3.14159, 3, "3.142"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture f;
		struct sg_mapper *m;
		char payload[256];

		fixture_init(&f);
		f.rc[0].round = cases[i].round;
		m = mapper_new(&f.cfg);
		assert_int_equal(map(m, 0, num("t", cases[i].v, "°C"), S(1), payload, sizeof(payload), NULL), 1);
		if (strcmp(payload, cases[i].expect) != 0)
			fail_msg("case %zu: %.17g round %d gave \"%s\", expected \"%s\"", i, cases[i].v, cases[i].round,
			         payload, cases[i].expect);
		mapper_free(m);
	}
}

static void test_format_number(void **state)
{
	char buf[8];
	(void)state;

	assert_int_equal(mapper_format_number(buf, sizeof(buf), 21.4, -1), 4);
	assert_string_equal(buf, "21.4");
	assert_int_equal(mapper_format_number(buf, sizeof(buf), NAN, -1), -ERANGE);
	assert_int_equal(mapper_format_number(buf, sizeof(buf), 123456789.0, -1), -ENOBUFS);
	assert_int_equal(mapper_format_number(buf, sizeof(buf), -0.0, 2), 4);
	assert_string_equal(buf, "0.00");
}

/* What mapper_format_number() printed before it had a fast path: libc's own formatting. False: too long. */
static bool format_reference(char *buf, size_t len, double v, int round)
{
	int n;

	if (round >= 0) {
		n = snprintf(buf, len, "%.*f", round, v);
	} else {
		n = snprintf(buf, len, "%.15g", v);
		if (strtod(buf, NULL) != v)
			n = snprintf(buf, len, "%.17g", v);
	}
	if (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1))
		memmove(buf, buf + 1, strlen(buf));
	return n >= 0 && (size_t)n < len;
}

static void check_format(double v, int round, unsigned *fails)
{
	char got[64], want[64];
	int n;

	n = mapper_format_number(got, sizeof(got), v, round);
	if (!format_reference(want, sizeof(want), v, round)) {
		if (n != -ENOBUFS && ++*fails <= 10)
			print_error("%.17g round %d: %d, not -ENOBUFS\n", v, round, n);
		return;
	}
	if (n != (int)strlen(want) || strcmp(got, want) != 0) {
		if (++*fails <= 10)
			print_error("%.17g round %d: \"%s\", libc: \"%s\"\n", v, round, got, want);
	}
}

/*
 * The fast path prints exactly what libc's %.15g / %.*f print: on the values
 * drivers produce (tenths, hundredths, thousandths of sensor ranges, NMEA
 * degrees with 6-7 decimals, big counters), on the edges of its range, and on
 * random doubles of every magnitude.
 */
static void test_format_number_matches_libc(void **state)
{
	static const double edges[] = {0.0, -0.0, 1e-4, 9.9999999999999e-5, 1e-5, 0.00012345, 1e15, 999999999999999.0,
	                               999999999999999.9, 1e15 - 0.5, 123456789012345.6, 0.1 + 0.2, 1.0 / 3, 2.0 / 3,
	                               4503599627370496.0, 9007199254740993.0, 1e300, 5e-324, DBL_MAX, -DBL_MIN,
	                               0.5, 1.5, 2.5, -2.5, 0.125, 1e14 + 0.25, 99.95, 99.995, 1.005, 8.675};
	unsigned fails = 0;
	uint64_t x = 88172645463325252ULL;
	(void)state;

	for (int round = -1; round <= 7; round++) {
		for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
			check_format(edges[i], round, &fails);
			check_format(-edges[i], round, &fails);
		}
		for (int k = -6000; k <= 6000; k++) {
			check_format(k / 10.0, round, &fails);
			check_format(k / 100.0, round, &fails);
			check_format(k / 1000.0, round, &fails);
			check_format(k * 0.1, round, &fails); /* not the same doubles as k / 10.0 */
		}
		for (int k = 0; k < 6000; k++) {
			check_format(52.0 + k * 1.37e-5, round, &fails);  /* degrees */
			check_format(1000000.0 + k * 0.001, round, &fails); /* meter totals */
		}
		for (int k = 0; k < 20000; k++) { /* xorshift64: random bits as doubles of every magnitude */
			double v;
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(&v, &x, sizeof(v));
			if (isfinite(v))
				check_format(v, round, &fails);
			check_format((double)(x % 100000000) / 1e4, round, &fails);
		}
	}
	assert_int_equal(fails, 0);
}

static void test_plain_string(void **state)
{
	struct fixture f;
	struct sg_mapper *m;
	char payload[256];
	(void)state;

	fixture_init(&f);
	m = mapper_new(&f.cfg);
	assert_int_equal(map(m, 1, str("fw", "v1.2 \"beta\""), S(1), payload, sizeof(payload), NULL), 1);
	assert_string_equal(payload, "v1.2 \"beta\""); /* plain: as is */
	{
		struct sg_message msg;
		struct sg_reading r = {.field = "fw", .kind = SG_VALUE_STRING, .string = NULL};
		assert_int_equal(mapper_map(m, 1, &r, S(1), &msg), -EINVAL);
	}
	mapper_free(m);
}

static int64_t utc_us(int y, int mo, int d, int h, int mi, int s, int ms)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
	return (int64_t)timegm(&tm) * 1000000 + ms * 1000;
}

static void test_json(void **state)
{
	static const struct {
		const char *legend;
		struct sg_reading r;
		const char *unit_override;
		int round;
		const char *expect;
	} cases[] = {
		{"number with unit", {.field = "t", .kind = SG_VALUE_NUMBER, .number = 21.4, .unit = "°C"}, NULL, -1,
		 "{\"value\":21.4,\"unit\":\"°C\",\"ts\":\"2026-11-25T12:00:00.250Z\"}"},
		{"rounded", {.field = "t", .kind = SG_VALUE_NUMBER, .number = 21.46, .unit = "°C"}, NULL, 1,
		 "{\"value\":21.5,\"unit\":\"°C\",\"ts\":\"2026-11-25T12:00:00.250Z\"}"},
		{"no unit: no unit key", {.field = "t", .kind = SG_VALUE_NUMBER, .number = -0.0}, NULL, -1,
		 "{\"value\":0,\"ts\":\"2026-11-25T12:00:00.250Z\"}"},
		{"unit override", {.field = "t", .kind = SG_VALUE_NUMBER, .number = 1, .unit = "C"}, "K", -1,
		 "{\"value\":1,\"unit\":\"K\",\"ts\":\"2026-11-25T12:00:00.250Z\"}"},
		{"exponent is valid JSON", {.field = "t", .kind = SG_VALUE_NUMBER, .number = 1e21}, NULL, -1,
		 "{\"value\":1e+21,\"ts\":\"2026-11-25T12:00:00.250Z\"}"},
		{"string escaped", {.field = "t", .kind = SG_VALUE_STRING, .string = "a\"b\\c\nd\te\x01"}, NULL, -1,
		 "{\"value\":\"a\\\"b\\\\c\\nd\\te\\u0001\",\"ts\":\"2026-11-25T12:00:00.250Z\"}"},
		{"UTF-8 string kept", {.field = "t", .kind = SG_VALUE_STRING, .string = "été", .unit = "x\"y"}, NULL,
		 -1, "{\"value\":\"été\",\"unit\":\"x\\\"y\",\"ts\":\"2026-11-25T12:00:00.250Z\"}"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture f;
		struct sg_mapper *m;
		struct sg_message msg;
		struct sg_reading r = cases[i].r;
		char payload[512];

		fixture_init(&f);
		f.rc[0].payload = SG_PAYLOAD_JSON;
		f.rc[0].round = cases[i].round;
		f.rc[0].unit = (char *)cases[i].unit_override;
		f.rc[0].qos = 1;
		f.rc[0].retain = false;
		r.timestamp_us = utc_us(2026, 11, 25, 12, 0, 0, 250);
		m = mapper_new(&f.cfg);
		assert_int_equal(map(m, 0, r, S(1), payload, sizeof(payload), &msg), 1);
		if (strcmp(payload, cases[i].expect) != 0)
			fail_msg("%s:\n  got      %s\n  expected %s", cases[i].legend, payload, cases[i].expect);
		assert_int_equal(msg.qos, 1);
		assert_false(msg.retain);
		mapper_free(m);
	}
}

/*
 * Readings stamped after 2038-01-19T03:14:07Z, the last second of a 32-bit time_t: the "ts"
 * of a 32-bit build (armhf) without _TIME_BITS=64 wraps to 1901. The stamps are written as
 * numbers, not computed with timegm(), which would wrap the same way in the test.
 */
static void test_json_ts_after_2038(void **state)
{
	static const struct {
		int64_t us;
		const char *ts;
	} cases[] = {
		{INT64_C(2147483647) * 1000000 + 999000, "2038-01-19T03:14:07.999Z"},
		{INT64_C(2147483648) * 1000000, "2038-01-19T03:14:08.000Z"},
		{INT64_C(2147483648) * 1000000 + 1000, "2038-01-19T03:14:08.001Z"},
		{INT64_C(4107542400) * 1000000 - 1000, "2100-02-28T23:59:59.999Z"}, /* 2100 is no leap year */
		{INT64_C(4294967296) * 1000000 + 125000, "2106-02-07T06:28:16.125Z"}, /* past 32 unsigned bits */
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture f;
		struct sg_mapper *m;
		struct sg_reading r = num("v", 5, NULL);
		char payload[256], expect[128];

		fixture_init(&f);
		f.dev[1].defaults.payload = SG_PAYLOAD_JSON;
		r.timestamp_us = cases[i].us;
		m = mapper_new(&f.cfg);
		assert_int_equal(map(m, 1, r, S(1), payload, sizeof(payload), NULL), 1);
		snprintf(expect, sizeof(expect), "{\"value\":5,\"ts\":\"%s\"}", cases[i].ts);
		if (strcmp(payload, expect) != 0)
			fail_msg("%lld us:\n  got      %s\n  expected %s", (long long)cases[i].us, payload, expect);
		mapper_free(m);
	}
}

/* A timestamp of 0 means now: the ts is today's, not 1970's. */
static void test_json_ts_now(void **state)
{
	struct fixture f;
	struct sg_mapper *m;
	char payload[256], year[16];
	time_t now = time(NULL);
	struct tm tm;
	(void)state;

	fixture_init(&f);
	f.dev[1].defaults.payload = SG_PAYLOAD_JSON;
	m = mapper_new(&f.cfg);
	assert_int_equal(map(m, 1, num("v", 5, "V"), S(1), payload, sizeof(payload), NULL), 1);
	gmtime_r(&now, &tm);
	snprintf(year, sizeof(year), "%04d-", tm.tm_year + 1900);
	assert_non_null(strstr(payload, "\"ts\":\""));
	assert_non_null(strstr(payload, year));
	assert_non_null(strstr(payload, "\"unit\":\"V\""));
	mapper_free(m);
}

/* Payloads that do not fit are refused, never cut or overrun (run under ASan to see the latter). */
static void test_json_too_long(void **state)
{
	static const struct {
		size_t len;
		const char *unit;
	} cases[] = {
		{2000, NULL}, {1010, ""}, {1012, "V"}, {1000, "°C"}, {1014, NULL}, {1015, ""},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture f;
		struct sg_mapper *m;
		struct sg_message msg;
		char *s = malloc(cases[i].len + 1);
		struct sg_reading r;

		assert_non_null(s);
		memset(s, 'x', cases[i].len);
		s[cases[i].len] = '\0';
		fixture_init(&f);
		f.dev[1].defaults.payload = SG_PAYLOAD_JSON;
		m = mapper_new(&f.cfg);
		r = str("s", s);
		r.unit = cases[i].unit;
		assert_int_equal(mapper_map(m, 1, &r, S(1), &msg), -ENOBUFS);
		mapper_free(m);
		free(s);
	}
}

/* ---- transforms ------------------------------------------------------------------------------- */

/* One step of a transform scenario: at time t (s) value v arrives; publish "expect" or nothing (NULL). */
struct step {
	double t;
	double v;
	const char *expect;
};

struct scenario {
	const char *legend;
	double scale, offset;
	int round;
	double deadband, throttle, heartbeat;
	int average;
	struct step steps[12];
};

static void run_scenario(const struct scenario *sc)
{
	struct fixture f;
	struct sg_mapper *m;

	fixture_init(&f);
	f.rc[0].scale = sc->scale ? sc->scale : 1;
	f.rc[0].offset = sc->offset;
	f.rc[0].round = sc->round;
	f.rc[0].deadband = sc->deadband;
	f.rc[0].throttle_s = sc->throttle;
	f.rc[0].heartbeat_s = sc->heartbeat;
	f.rc[0].average = sc->average;
	m = mapper_new(&f.cfg);
	assert_non_null(m);
	for (size_t i = 0; i < sizeof(sc->steps) / sizeof(sc->steps[0]) && sc->steps[i].t > 0; i++) {
		const struct step *s = &sc->steps[i];
		char payload[256];
		int k = map(m, 0, num("t", s->v, NULL), S(s->t), payload, sizeof(payload), NULL);

		if (k < 0)
			fail_msg("%s, step %zu: error %d", sc->legend, i, k);
		if (s->expect && (k != 1 || strcmp(payload, s->expect) != 0))
			fail_msg("%s, step %zu (t=%g v=%g): %s%s, expected \"%s\"", sc->legend, i, s->t, s->v,
			         k == 1 ? "published " : "suppressed", k == 1 ? payload : "", s->expect);
		if (!s->expect && k != 0)
			fail_msg("%s, step %zu (t=%g v=%g): published \"%s\", expected nothing", sc->legend, i, s->t, s->v,
			         payload);
	}
	mapper_free(m);
}

static void test_transforms(void **state)
{
	static const struct scenario cases[] = {
		{.legend = "no transform: everything, as is", .round = -1,
		 .steps = {{1, 20, "20"}, {2, 20, "20"}, {3, 20.5, "20.5"}}},
		{.legend = "scale then offset then round: 10*2+1.26 = 21.26 -> 21.3", .scale = 2, .offset = 1.26,
		 .round = 1, .steps = {{1, 10, "21.3"}}},
		{.legend = "offset after scale, not before", .scale = 10, .offset = 5, .round = -1,
		 .steps = {{1, 1, "15"}}},
		{.legend = "unit conversion °C -> °F", .scale = 1.8, .offset = 32, .round = 1,
		 .steps = {{1, 21.5, "70.7"}, {2, -40, "-40.0"}}},
		{.legend = "deadband: within is suppressed, beyond is published, measured from the last published",
		 .round = -1, .deadband = 0.5,
		 .steps = {{1, 20, "20"}, {2, 20.3, NULL}, {3, 20.5, NULL}, {4, 20.6, "20.6"}, {5, 20.2, NULL},
		           {6, 20.0, "20"}, {7, 19.6, NULL}, {8, 19.4, "19.4"}}},
		{.legend = "deadband equal to the rounding step: exactly one step does not exceed it, either way",
		 .round = 1, .deadband = 0.1,
		 .steps = {{1, 20.0, "20.0"}, {2, 20.1, NULL}, {3, 20.2, "20.2"}, {4, 20.1, NULL}, {5, 20.0, "20.0"}}},
		{.legend = "deadband applies to the transformed value", .scale = 10, .round = -1, .deadband = 1,
		 .steps = {{1, 2.0, "20"}, {2, 2.05, NULL}, {3, 2.15, "21.5"}}},
		{.legend = "throttle: at most once per 10 s", .round = -1, .throttle = 10,
		 .steps = {{1, 1, "1"}, {2, 2, NULL}, {10.9, 3, NULL}, {11, 4, "4"}, {12, 5, NULL}, {21.5, 6, "6"}}},
		{.legend = "heartbeat: an unchanged value is re-published after 60 s", .round = -1, .deadband = 1,
		 .heartbeat = 60,
		 .steps = {{1, 20, "20"}, {30, 20, NULL}, {60.9, 20.2, NULL}, {61, 20.1, "20.1"}, {100, 20.1, NULL},
		           {121, 20.1, "20.1"}}},
		{.legend = "heartbeat does not break through a throttle", .round = -1, .deadband = 100, .throttle = 30,
		 .heartbeat = 10, .steps = {{1, 1, "1"}, {11, 1, NULL}, {31, 1, "1"}}},
		{.legend = "average over 3 samples: nothing until full, then the moving mean", .round = -1, .average = 3,
		 .steps = {{1, 1, NULL}, {2, 2, NULL}, {3, 6, "3"}, {4, 7, "5"}, {5, 8, "7"}}},
		{.legend = "average before scale/offset/round", .scale = 2, .offset = 1, .round = 0, .average = 2,
		 .steps = {{1, 1, NULL}, {2, 2, "4"}, {3, 2, "5"}}},
		{.legend = "average then deadband", .round = -1, .average = 2, .deadband = 1,
		 .steps = {{1, 10, NULL}, {2, 10, "10"}, {3, 12, NULL}, {4, 12, "12"}}}, /* 11: not beyond 1 */
		{.legend = "one huge outlier leaves the window without a trace", .round = -1, .average = 2,
		 .steps = {{1, 1e20, NULL}, {2, 20, "5e+19"}, {3, 20, "20"}, {4, 22, "21"}, {5, 22, "22"}}},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_scenario(&cases[i]);
}

/* A moving average keeps exact over a long run: no drift from a running sum. */
static void test_average_long_run(void **state)
{
	struct fixture f;
	struct sg_mapper *m;
	char payload[64];
	(void)state;

	fixture_init(&f);
	f.rc[0].average = 10;
	m = mapper_new(&f.cfg);
	for (int i = 0; i < 200000; i++) {
		double v = (i % 2) ? 0.1 : 1e6 + 0.3;
		(void)map(m, 0, num("t", v, NULL), S(i + 1), payload, sizeof(payload), NULL);
	}
	/* the last 10 samples: five of 0.1 and five of 1000000.3 */
	assert_float_equal(strtod(payload, NULL), (5 * 0.1 + 5 * (1e6 + 0.3)) / 10, 1e-9);
	mapper_free(m);
}

/* Transforms are per reading: a second device's readings do not disturb the first's state. */
static void test_state_is_per_reading(void **state)
{
	struct fixture f;
	struct sg_mapper *m;
	char payload[64];
	(void)state;

	fixture_init(&f);
	f.rc[0].deadband = 5;
	f.rc[1] = reading_defaults();
	f.rc[1].field = "h";
	f.rc[1].topic = "home/room/h";
	f.rc[1].deadband = 5;
	f.dev[0].n_readings = 2;
	m = mapper_new(&f.cfg);
	assert_int_equal(map(m, 0, num("t", 20, NULL), S(1), payload, sizeof(payload), NULL), 1);
	assert_int_equal(map(m, 0, num("h", 50, NULL), S(1), payload, sizeof(payload), NULL), 1);
	assert_int_equal(map(m, 0, num("t", 21, NULL), S(2), payload, sizeof(payload), NULL), 0);
	assert_int_equal(map(m, 0, num("h", 21, NULL), S(2), payload, sizeof(payload), NULL), 1);
	assert_int_equal(map(m, 1, num("t", 21, NULL), S(2), payload, sizeof(payload), NULL), 1); /* no transforms */
	mapper_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topics),
		cmocka_unit_test(test_topic_too_long),
		cmocka_unit_test(test_plain_numbers),
		cmocka_unit_test(test_format_number),
		cmocka_unit_test(test_format_number_matches_libc),
		cmocka_unit_test(test_plain_string),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_json_ts_after_2038),
		cmocka_unit_test(test_json_ts_now),
		cmocka_unit_test(test_json_too_long),
		cmocka_unit_test(test_transforms),
		cmocka_unit_test(test_average_long_run),
		cmocka_unit_test(test_state_is_per_reading),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
