/* SPDX-License-Identifier: MIT */
/*
 * test_backoff.c — the one retry-delay helper: the ceiling doubles up to the
 * cap, every delay lies in [min/10, ceiling] and is spread over that range
 * (full jitter, not a fixed or half-fixed delay), a reset starts from the
 * bottom, a fixed seed repeats its sequence and two seeds differ.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "drivers/backoff.h"

#define MS 1000ULL
#define S  1000000ULL

static void test_ceiling_doubles_to_the_cap(void **state)
{
	struct sg_backoff b = SG_BACKOFF_INIT(1 * S, 60 * S);
	const uint64_t want[] = {1 * S, 2 * S, 4 * S, 8 * S, 16 * S, 32 * S, 60 * S, 60 * S, 60 * S};
	(void)state;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(backoff_ceiling(&b), want[i]);
		backoff_failed(&b);
	}
	/* a thousand more failures neither overflow nor move the cap */
	for (int i = 0; i < 1000; i++)
		backoff_failed(&b);
	assert_int_equal(backoff_ceiling(&b), 60 * S);
	backoff_reset(&b);
	assert_int_equal(backoff_ceiling(&b), 1 * S);
}

static void test_huge_and_degenerate_limits(void **state)
{
	struct sg_backoff b;
	(void)state;

	backoff_init(&b, UINT64_MAX / 3, UINT64_MAX);
	for (int i = 0; i < 10; i++)
		backoff_failed(&b);
	assert_int_equal(backoff_ceiling(&b), UINT64_MAX);

	backoff_init(&b, 5 * S, 1 * S); /* max below min: min wins */
	assert_int_equal(backoff_ceiling(&b), 5 * S);
	backoff_failed(&b);
	assert_int_equal(backoff_ceiling(&b), 5 * S);

	backoff_init(&b, 0, 0); /* reconnect_min = 0 is allowed: no wait at all */
	assert_int_equal(backoff_next(&b), 0);
	assert_int_equal(backoff_next(&b), 0);
}

/* Every delay within [min/10, ceiling]; over many draws they cover the range (full jitter). */
static void test_delays_spread_over_the_range(void **state)
{
	struct sg_backoff b = SG_BACKOFF_INIT(200 * MS, 10 * S);
	(void)state;

	backoff_seed(42);
	for (unsigned n = 0; n < 8; n++) {
		uint64_t hi = backoff_ceiling(&b), lo = b.min_us / 10;
		uint64_t seen_min = UINT64_MAX, seen_max = 0;
		unsigned buckets[10] = {0};

		for (int i = 0; i < 4000; i++) {
			uint64_t d = backoff_delay(&b);
			assert_true(d >= lo && d <= hi);
			seen_min = d < seen_min ? d : seen_min;
			seen_max = d > seen_max ? d : seen_max;
			buckets[(d - lo) * 10 / (hi - lo + 1)]++;
		}
		/* the whole range is used: near the floor and near the ceiling */
		assert_true(seen_min < lo + (hi - lo) / 20);
		assert_true(seen_max > hi - (hi - lo) / 20);
		/* and evenly: each tenth of the range gets 400 +- 120 of 4000 draws */
		for (int k = 0; k < 10; k++)
			assert_true(buckets[k] > 280 && buckets[k] < 520);
		backoff_failed(&b);
	}
}

/* The first delay after a reset is jittered too: not min, not min/2. */
static void test_first_delay_is_jittered(void **state)
{
	struct sg_backoff b = SG_BACKOFF_INIT(1 * S, 60 * S);
	unsigned distinct = 0;
	uint64_t prev = 0;
	(void)state;

	backoff_seed(7);
	for (int i = 0; i < 100; i++) {
		uint64_t d = backoff_next(&b);
		assert_true(d >= 100 * MS && d <= 1 * S);
		distinct += d != prev;
		prev = d;
		backoff_reset(&b);
	}
	assert_true(distinct > 95);
}

static void test_seeds(void **state)
{
	uint64_t a[16], b[16];
	int same = 0;
	(void)state;

	backoff_seed(1234);
	for (int i = 0; i < 16; i++)
		a[i] = backoff_random(1000000);
	backoff_seed(1234);
	for (int i = 0; i < 16; i++)
		assert_int_equal(backoff_random(1000000), a[i]);
	backoff_seed(1235);
	for (int i = 0; i < 16; i++) {
		b[i] = backoff_random(1000000);
		same += a[i] == b[i];
	}
	assert_true(same < 2);
	assert_int_equal(backoff_random(0), 0);
	assert_int_equal(backoff_random(1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ceiling_doubles_to_the_cap),
		cmocka_unit_test(test_huge_and_degenerate_limits),
		cmocka_unit_test(test_delays_spread_over_the_range),
		cmocka_unit_test(test_first_delay_is_jittered),
		cmocka_unit_test(test_seeds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
