/* SPDX-License-Identifier: MIT */
/*
 * test_health.c — the rolling link-quality arithmetic (gateway/health.c)
 * with explicit clocks: the span of the window as samples come and go, rates
 * per minute, the quality figure, a counter reset, the grouping of failure
 * reasons, and the JSON and table built from the figures.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/health.h"

#define S (1000000ULL) /* µs per second */

/* Counts with GOOD frames and CHECKSUM failures, RECONN reopenings. */
static struct sg_health_counts counts(uint64_t good, uint64_t checksum, uint64_t reconn)
{
	uint64_t fail[SG_FAIL_MAX_] = {0};
	struct sg_health_counts c;

	fail[SG_FAIL_CHECKSUM] = checksum;
	health_counts_fill(&c, good, fail, reconn);
	return c;
}

static void test_grouping(void **state)
{
	uint64_t fail[SG_FAIL_MAX_] = {0};
	struct sg_health_counts c;
	(void)state;

	fail[SG_FAIL_OVERLONG] = 1;
	fail[SG_FAIL_GARBAGE] = 2;
	fail[SG_FAIL_SYNTAX] = 4;
	fail[SG_FAIL_CHECKSUM] = 8;
	fail[SG_FAIL_INSANE] = 16;
	fail[SG_FAIL_IO] = 32;
	fail[SG_FAIL_NODEV] = 64;
	fail[SG_FAIL_TIMEOUT] = 128;
	fail[SG_FAIL_LOST] = 256;
	health_counts_fill(&c, 5, fail, 3);
	assert_int_equal(c.good, 5);
	assert_int_equal(c.n[SG_HEALTH_FRAMING], 7);
	assert_int_equal(c.n[SG_HEALTH_CHECKSUM], 8);
	assert_int_equal(c.n[SG_HEALTH_IMPLAUSIBLE], 16);
	assert_int_equal(c.n[SG_HEALTH_IO], 96);
	assert_int_equal(c.n[SG_HEALTH_TIMEOUT], 128);
	assert_int_equal(c.n[SG_HEALTH_LOST], 256);
	assert_int_equal(c.n[SG_HEALTH_RECONNECTS], 3);
	assert_string_equal(health_kind_name(SG_HEALTH_IMPLAUSIBLE), "implausible");
	assert_string_equal(health_kind_name(SG_HEALTH_RECONNECTS), "reconnects");
}

static void test_empty(void **state)
{
	struct sg_health_window *w = health_window_new(300, 10);
	struct sg_health_figures f;
	struct sg_health_counts c = counts(0, 0, 0);
	(void)state;

	assert_non_null(w);
	health_window_figures(w, true, &f);
	assert_true(isnan(f.quality));
	assert_true(f.seconds == 0);
	/* one sample: no span yet, no frames: unknown */
	health_window_add(w, 7 * S, &c);
	health_window_figures(w, true, &f);
	assert_true(f.seconds == 0);
	assert_true(isnan(f.quality));
	assert_true(f.per_min[SG_HEALTH_CHECKSUM] == 0);
	/* a span without any frame is still unknown, not 0 % or 100 % */
	health_window_add(w, 17 * S, &c);
	health_window_figures(w, true, &f);
	assert_true(f.seconds == 10);
	assert_true(isnan(f.quality));
	health_window_free(w);
	assert_null(health_window_new(0, 10));
	assert_null(health_window_new(300, 0));
}

/*
 * Window 60 s, a sample every 10 s. For the first minute every 10 s brings
 * 9 good frames and 1 checksum error (90 %); after that only good frames.
 */
static void test_window_slides(void **state)
{
	struct sg_health_window *w = health_window_new(60, 10);
	struct sg_health_figures f;
	uint64_t good = 0, bad = 0;
	(void)state;

	for (uint64_t t = 0; t <= 60; t += 10) {
		struct sg_health_counts c;
		if (t > 0) {
			good += 9;
			bad += 1;
		}
		c = counts(good, bad, 0);
		health_window_add(w, 1000 * S + t * S, &c);
	}
	health_window_figures(w, true, &f);
	assert_true(f.seconds == 60);
	assert_int_equal(f.good, 54);
	assert_int_equal(f.failed, 6);
	assert_int_equal(f.n[SG_HEALTH_CHECKSUM], 6);
	assert_true(fabs(f.quality - 90.0) < 1e-9);
	assert_true(fabs(f.per_min[SG_HEALTH_CHECKSUM] - 6.0) < 1e-9); /* 6 in 60 s */

	/* 30 s of good frames only: the window holds 3 bad intervals and 3 good ones */
	for (uint64_t t = 70; t <= 90; t += 10) {
		struct sg_health_counts c;
		good += 10;
		c = counts(good, bad, 0);
		health_window_add(w, 1000 * S + t * S, &c);
	}
	health_window_figures(w, true, &f);
	assert_true(f.seconds == 60);
	assert_int_equal(f.good, 27 + 30);
	assert_int_equal(f.failed, 3);
	assert_true(fabs(f.quality - 100.0 * 57 / 60) < 1e-9);
	assert_true(fabs(f.per_min[SG_HEALTH_CHECKSUM] - 3.0) < 1e-9);

	/* since start: 90 s, 84 good, 6 bad, 4 checksum errors per minute */
	health_window_figures(w, false, &f);
	assert_true(f.seconds == 90);
	assert_int_equal(f.good, 84);
	assert_int_equal(f.failed, 6);
	assert_true(fabs(f.per_min[SG_HEALTH_CHECKSUM] - 4.0) < 1e-9);
	assert_true(fabs(f.quality - 100.0 * 84 / 90) < 1e-9);

	/* another minute of good frames: the window forgets the errors, since start does not */
	for (uint64_t t = 100; t <= 150; t += 10) {
		struct sg_health_counts c;
		good += 10;
		c = counts(good, bad, 0);
		health_window_add(w, 1000 * S + t * S, &c);
	}
	health_window_figures(w, true, &f);
	assert_int_equal(f.failed, 0);
	assert_true(f.quality == 100.0);
	assert_true(f.per_min[SG_HEALTH_CHECKSUM] == 0);
	health_window_figures(w, false, &f);
	assert_int_equal(f.failed, 6);
	health_window_free(w);
}

/* Late and irregular samples: the span is what the samples cover, the rates follow it. */
static void test_irregular(void **state)
{
	struct sg_health_window *w = health_window_new(30, 10);
	struct sg_health_figures f;
	struct sg_health_counts c;
	(void)state;

	c = counts(0, 0, 0);
	health_window_add(w, 0, &c);
	c = counts(10, 0, 1);
	health_window_add(w, 12 * S, &c); /* a late timer */
	c = counts(20, 5, 1);
	health_window_add(w, 25 * S, &c);
	c = counts(30, 5, 2);
	health_window_add(w, 36 * S, &c); /* the sample at 0 is now older than 30 s */
	health_window_figures(w, true, &f);
	assert_true(f.seconds == 24);
	assert_int_equal(f.good, 20);
	assert_int_equal(f.n[SG_HEALTH_CHECKSUM], 5);
	assert_int_equal(f.n[SG_HEALTH_RECONNECTS], 1);
	assert_int_equal(f.failed, 5); /* reopenings are not frames */
	assert_true(fabs(f.per_min[SG_HEALTH_RECONNECTS] - 2.5) < 1e-9);
	assert_true(fabs(f.quality - 80.0) < 1e-9);

	/* many samples within one interval do not overflow the ring; the span stays within the window */
	for (int i = 1; i <= 100; i++) {
		c = counts(30 + (uint64_t)i, 5, 2);
		health_window_add(w, 36 * S + (uint64_t)i * 100000, &c);
	}
	health_window_figures(w, true, &f);
	assert_true(f.seconds <= 30);
	assert_true(f.seconds > 0);
	health_window_free(w);
}

/* Counters that go down (the device was reconfigured) restart both spans. */
static void test_reset(void **state)
{
	struct sg_health_window *w = health_window_new(300, 10);
	struct sg_health_figures f;
	struct sg_health_counts c;
	(void)state;

	c = counts(100, 50, 3);
	health_window_add(w, 0, &c);
	c = counts(200, 60, 3);
	health_window_add(w, 10 * S, &c);
	c = counts(5, 0, 0);
	health_window_add(w, 20 * S, &c);
	c = counts(15, 0, 0);
	health_window_add(w, 30 * S, &c);
	health_window_figures(w, true, &f);
	assert_true(f.seconds == 10);
	assert_int_equal(f.good, 10);
	assert_true(f.quality == 100.0);
	health_window_figures(w, false, &f);
	assert_true(f.seconds == 10);
	assert_int_equal(f.failed, 0);
	health_window_free(w);
}

static void test_json(void **state)
{
	struct sg_health_figures r = {.seconds = 300, .good = 50, .failed = 2, .quality = 100.0 * 50 / 52};
	struct sg_health_figures s = {.seconds = 0, .quality = NAN};
	char *text = NULL;
	(void)state;

	r.n[SG_HEALTH_CHECKSUM] = 2;
	r.per_min[SG_HEALTH_CHECKSUM] = 0.4;
	assert_int_equal(health_json(true, 300, &r, &s, &text), 0);
	/* parsed by Python's json module in tests/integration/test_health.py; here the exact text */
	assert_string_equal(text,
	                    "{\"up\":true,\"quality\":96.2,\"window_s\":300,"
	                    "\"recent\":{\"seconds\":300,\"quality\":96.2,\"good\":50,\"failed\":2,\"failed_per_min\":0.400,"
	                    "\"counts\":{\"checksum\":2,\"timeout\":0,\"io\":0,\"framing\":0,\"implausible\":0,"
	                    "\"lost\":0,\"reconnects\":0},"
	                    "\"per_min\":{\"checksum\":0.400,\"timeout\":0,\"io\":0,\"framing\":0,\"implausible\":0,"
	                    "\"lost\":0,\"reconnects\":0}},"
	                    "\"since_start\":{\"seconds\":0,\"quality\":null,\"good\":0,\"failed\":0,\"failed_per_min\":0,"
	                    "\"counts\":{\"checksum\":0,\"timeout\":0,\"io\":0,\"framing\":0,\"implausible\":0,"
	                    "\"lost\":0,\"reconnects\":0},"
	                    "\"per_min\":{\"checksum\":0,\"timeout\":0,\"io\":0,\"framing\":0,\"implausible\":0,"
	                    "\"lost\":0,\"reconnects\":0}}}");
	free(text);
}

static void test_table(void **state)
{
	struct sg_health_row rows[2] = {
		{.device = "arduino", .driver = "lines", .up = true,
		 .recent = {.good = 50, .quality = 50.0}, .since_start = {.quality = 75.0}},
		{.device = "env", .driver = "bme280", .up = false, .recent = {.quality = NAN}, .since_start = {.quality = NAN}},
	};
	char *text = NULL;
	(void)state;

	rows[0].recent.per_min[SG_HEALTH_CHECKSUM] = 12;
	assert_int_equal(health_table(rows, 2, 300, &text), 0);
	assert_non_null(strstr(text, "DEVICE"));
	assert_non_null(strstr(text, "checksum"));
	assert_non_null(strstr(text, "arduino"));
	assert_non_null(strstr(text, "50.0%"));
	assert_non_null(strstr(text, "75.0%"));
	assert_non_null(strstr(text, "12.00"));
	assert_non_null(strstr(text, "env"));
	assert_non_null(strstr(text, " no "));
	free(text);
}

static void test_status_parse(void **state)
{
	const char *body = NULL;
	long pid = 0;
	double interval = 0;
	long long updated = 0;
	(void)state;

	assert_int_equal(health_status_parse("sensorgate 0.1.0 pid 42 interval 2.5 updated 1765000000\nTABLE\n", &pid,
	                                     &interval, &updated, &body), 0);
	assert_int_equal(pid, 42);
	assert_true(interval == 2.5);
	assert_true(updated == 1765000000LL);
	assert_string_equal(body, "TABLE\n");
	assert_int_equal(health_status_parse("", &pid, &interval, &updated, &body), -EBADMSG);
	assert_int_equal(health_status_parse("sensorgate 0.1.0 pid 42 interval 2.5\n", &pid, &interval, &updated,
	                                     &body), -EBADMSG);
	assert_int_equal(health_status_parse("sensorgate 0.1.0 pid 0 interval 2 updated 1\n", &pid, &interval, &updated,
	                                     &body), -EBADMSG);
	assert_int_equal(health_status_parse("sensorgate 0.1.0 pid 4 interval 2 updated 1 junk\n", &pid, &interval,
	                                     &updated, &body), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grouping),  cmocka_unit_test(test_empty), cmocka_unit_test(test_window_slides),
		cmocka_unit_test(test_irregular), cmocka_unit_test(test_reset), cmocka_unit_test(test_json),
		cmocka_unit_test(test_table),     cmocka_unit_test(test_status_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
