/* SPDX-License-Identifier: MIT */
/*
 * test_timesync.c — gateway/timesync.c with a fake clock source: a Pi that
 * boots in 1970 and is synchronised later, a wall clock that jumps, stamps
 * of an earlier boot, and the mapper's JSON "ts" while the clock is not
 * trusted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "gateway/config.h"
#include "gateway/mapper.h"
#include "gateway/timesync.h"

#define SEC 1000000LL
/* 2026-12-06T05:00:00Z, the true time in these tests */
#define TRUE_NOW (INT64_C(1796533200) * SEC)

/* A fake machine: the boot clock runs, the wall clock is whatever the test says. */
struct fake {
	int64_t boot;      /* CLOCK_BOOTTIME */
	int64_t offset;    /* wall - boot */
	int synced;
	uint64_t boot_id;
	unsigned synced_calls;
};

static int64_t f_real(void *ud)
{
	struct fake *f = ud;
	return f->boot + f->offset;
}

static int64_t f_boot(void *ud)
{
	return ((struct fake *)ud)->boot;
}

static int f_synced(void *ud)
{
	struct fake *f = ud;
	f->synced_calls++;
	return f->synced;
}

static uint64_t f_boot_id(void *ud)
{
	return ((struct fake *)ud)->boot_id;
}

static struct sg_clock_source source(struct fake *f)
{
	return (struct sg_clock_source){.real_us = f_real, .boot_us = f_boot, .synced = f_synced,
	                                .boot_id = f_boot_id, .ud = f};
}

/* Booted 10 s ago, the wall clock at 1970 + 10 s (no RTC, no fake-hwclock). */
static struct fake unsynced_pi(void)
{
	return (struct fake){.boot = 10 * SEC, .offset = 0, .synced = 0, .boot_id = 0xb007};
}

static void test_unsynchronised_then_synchronised(void **state)
{
	struct fake f = unsynced_pi();
	struct sg_clock_source src = source(&f);
	struct sg_timesync *t = timesync_new(&src, false);
	struct sg_stamp a, b;
	(void)state;

	assert_false(timesync_trusted(t));
	timesync_stamp(t, 0, &a);
	assert_int_equal(a.real_us, 0); /* never 1970 */
	assert_int_equal(a.boot_us, 10 * SEC);
	assert_int_equal(a.boot_id, 0xb007);
	assert_int_equal(timesync_resolve(t, &a), 0); /* not known yet */
	/* a device's own time is not believed either: it was converted with our wrong clock */
	timesync_stamp(t, 12345, &b);
	assert_int_equal(b.real_us, 0);

	/* 30 s later NTP steps the clock to the true time and says so */
	f.boot += 30 * SEC;
	f.offset = TRUE_NOW - f.boot;
	f.synced = 1;
	assert_int_equal(timesync_check(t), 1);
	assert_true(timesync_trusted(t));
	assert_int_equal(timesync_check(t), 0); /* said once */
	/* the reading taken 30 s before now gets the wall time of then */
	assert_int_equal(timesync_resolve(t, &a), TRUE_NOW - 30 * SEC);
	/* from now on stamps carry the wall time; a device's own time is taken as it is */
	timesync_stamp(t, 0, &b);
	assert_int_equal(b.real_us, TRUE_NOW);
	timesync_stamp(t, TRUE_NOW - 5 * SEC, &b);
	assert_int_equal(b.real_us, TRUE_NOW - 5 * SEC);
	assert_int_equal(timesync_resolve(t, &b), TRUE_NOW - 5 * SEC);
	timesync_free(t);
}

/* Nothing says "synchronised", but the wall clock is set (ntpdate, date): a jump is trusted. */
static void test_jump(void **state)
{
	struct fake f = unsynced_pi();
	struct sg_clock_source src = source(&f);
	struct sg_timesync *t = timesync_new(&src, false);
	struct sg_stamp a;
	(void)state;

	timesync_stamp(t, 0, &a);
	/* time passes, the clocks run together (NTP's slew is far below the jump threshold) */
	f.boot += 5 * SEC;
	f.offset += TIMESYNC_JUMP_US / 2;
	assert_int_equal(timesync_check(t), 0);
	assert_false(timesync_trusted(t));
	/* the wall clock steps forward by 56 years */
	f.boot += 1 * SEC;
	f.offset = TRUE_NOW - f.boot;
	assert_int_equal(timesync_check(t), 1);
	assert_int_equal(timesync_resolve(t, &a), TRUE_NOW - 6 * SEC);
	timesync_free(t);

	/* a backward step counts too (fake-hwclock restored a time later than the true one) */
	f = unsynced_pi();
	f.offset = TRUE_NOW + 3600 * SEC;
	src = source(&f);
	t = timesync_new(&src, false);
	f.offset = TRUE_NOW;
	assert_int_equal(timesync_check(t), 1);
	timesync_free(t);
}

/* A stamp of an earlier boot that never got its wall time can never get one. */
static void test_earlier_boot(void **state)
{
	struct fake f = unsynced_pi();
	struct sg_clock_source src = source(&f);
	struct sg_timesync *t;
	struct sg_stamp old = {.real_us = 0, .boot_us = 50 * SEC, .boot_id = 0x01d};
	struct sg_stamp known = {.real_us = TRUE_NOW - 3600 * SEC, .boot_us = 50 * SEC, .boot_id = 0x01d};
	struct sg_stamp legacy = {0}; /* a message of a spool from before stamps */
	(void)state;

	f.synced = 1;
	t = timesync_new(&src, false);
	assert_true(timesync_trusted(t));
	assert_int_equal(timesync_resolve(t, &old), -1);
	assert_int_equal(timesync_resolve(t, &legacy), -1);
	assert_int_equal(timesync_resolve(t, &known), TRUE_NOW - 3600 * SEC);
	timesync_free(t);
}

/* trust = "always": no sync source is asked, stamps carry the wall clock from the start. */
static void test_always(void **state)
{
	struct fake f = unsynced_pi();
	struct sg_clock_source src = source(&f);
	struct sg_timesync *t = timesync_new(&src, true);
	struct sg_stamp a;
	(void)state;

	assert_true(timesync_trusted(t));
	timesync_stamp(t, 0, &a);
	assert_int_equal(a.real_us, 10 * SEC);
	timesync_free(t);
}

/* The hot path asks nothing of the sync source: only timesync_check() does. */
static void test_stamp_is_cheap(void **state)
{
	struct fake f = unsynced_pi();
	struct sg_clock_source src = source(&f);
	struct sg_timesync *t = timesync_new(&src, false);
	struct sg_stamp a;
	unsigned calls = f.synced_calls;
	(void)state;

	for (int i = 0; i < 1000; i++)
		timesync_stamp(t, 0, &a);
	assert_int_equal(f.synced_calls, calls);
	timesync_check(t);
	assert_int_equal(f.synced_calls, calls + 1);
	timesync_free(t);
}

static void test_iso(void **state)
{
	char buf[TIMESYNC_ISO_LEN];
	(void)state;

	assert_int_equal(timesync_iso(TRUE_NOW + 123456, buf, sizeof(buf)), 24);
	assert_string_equal(buf, "2026-12-06T05:00:00.123Z");
	timesync_iso(INT64_C(4294967296) * SEC + 125000, buf, sizeof(buf));
	assert_string_equal(buf, "2106-02-07T06:28:16.125Z");
}

/* The cached formatter says exactly what the plain one says: same second, next second, far away. */
static void test_iso_cached(void **state)
{
	struct sg_iso_cache c = SG_ISO_CACHE_INIT;
	char want[TIMESYNC_ISO_LEN], got[TIMESYNC_ISO_LEN];
	int64_t t = TRUE_NOW - 3 * SEC;
	(void)state;

	for (int i = 0; i < 20000; i++) {
		/* steps of 0.7 ms to 1.3 s, and now and then a jump of years either way */
		t += (i % 7 == 0) ? 1300000 : 700 + (i % 13) * 1000;
		if (i % 997 == 0)
			t += (i % 2 ? 1 : -1) * INT64_C(86400) * 365 * SEC;
		assert_int_equal(timesync_iso_cached(&c, t, got), timesync_iso(t, want, sizeof(want)));
		if (strcmp(got, want) != 0)
			fail_msg("%lld: cached %s, plain %s", (long long)t, got, want);
	}
}

/* The mapper's JSON: "ts":null while untrusted (never a 1970 date), the true time afterwards. */
static void test_mapper_json_ts(void **state)
{
	struct fake f = unsynced_pi();
	struct sg_clock_source src = source(&f);
	struct sg_timesync *t = timesync_new(&src, false);
	struct sg_device_cfg dev = {.name = "env", .address = -1, .all_fields = true,
	                            .defaults = {.qos = 1, .retain = true, .scale = 1, .round = -1,
	                                         .payload = SG_PAYLOAD_JSON}};
	struct sg_config cfg = {.base_topic = "home", .devices = &dev, .n_devices = 1};
	struct sg_mapper *m = mapper_new(&cfg);
	struct sg_reading r = {.field = "t", .kind = SG_VALUE_NUMBER, .number = 21.5};
	struct sg_message msg;
	(void)state;

	mapper_set_timesync(m, t);
	assert_int_equal(mapper_map(m, 0, &r, 1, &msg), 1);
	assert_string_equal(msg.payload, "{\"value\":21.5,\"ts\":null}");
	assert_true(msg.json);
	assert_int_equal(msg.stamp.real_us, 0);
	assert_int_equal(msg.stamp.boot_us, 10 * SEC);

	f.boot += 20 * SEC;
	f.offset = TRUE_NOW - f.boot;
	f.synced = 1;
	timesync_check(t);
	assert_int_equal(mapper_map(m, 0, &r, 2, &msg), 1);
	assert_string_equal(msg.payload, "{\"value\":21.5,\"ts\":\"2026-12-06T05:00:00.000Z\"}");
	assert_int_equal(msg.stamp.real_us, TRUE_NOW);

	dev.defaults.payload = SG_PAYLOAD_PLAIN;
	assert_int_equal(mapper_map(m, 0, &r, 3, &msg), 1);
	assert_false(msg.json);
	assert_int_equal(msg.stamp.real_us, TRUE_NOW); /* plain payloads are stamped as well */
	mapper_free(m);
	timesync_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unsynchronised_then_synchronised),
		cmocka_unit_test(test_jump),
		cmocka_unit_test(test_earlier_boot),
		cmocka_unit_test(test_always),
		cmocka_unit_test(test_stamp_is_cheap),
		cmocka_unit_test(test_iso),
		cmocka_unit_test(test_iso_cached),
		cmocka_unit_test(test_mapper_json_ts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
