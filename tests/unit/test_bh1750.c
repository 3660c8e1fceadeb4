/* SPDX-License-Identifier: MIT */
/*
 * test_bh1750.c — the bh1750 driver against a fake command-style chip.
 * Vector: the data sheet's example, count 0x8390 (33680) => 28067 lx.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <string.h>

#include "drivers/driver.h"
#include "drivers/drivers.h"
#include "fake_i2c.h"

struct rig {
	struct fake_i2c f;
	struct fake_i2c_sink sink;
	struct sg_dev dev;
};

static void rig_setup(struct rig *g, uint8_t hi, uint8_t lo)
{
	fake_i2c_init(&g->f);
	g->f.rx[0] = hi;
	g->f.rx[1] = lo;
	g->f.rx_len = 2;
	fake_i2c_dev_setup(&g->dev, &sg_driver_bh1750, NULL, &g->f, &g->sink);
	g->dev.interval_s = 60;
	assert_int_equal(sg_driver_bh1750.init(&g->dev), 0);
}

static void test_cycle(void **state)
{
	static const struct {
		const char *legend;
		uint8_t hi, lo;
		double lux;
	} cases[] = {
		{"data sheet example 0x8390", 0x83, 0x90, 33680 / 1.2},
		{"dark", 0x00, 0x00, 0.0},
		{"one count", 0x00, 0x01, 1 / 1.2},
		{"full scale", 0xFF, 0xFF, 65535 / 1.2},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rig g;
		uint64_t delay = 0;
		const struct fake_i2c_reading *r;

		rig_setup(&g, cases[i].hi, cases[i].lo);
		/* step 1: One Time H-Resolution (0x20), come back after the 180 ms maximum */
		assert_int_equal(sg_driver_bh1750.poll(&g.dev, &delay), 0);
		assert_int_equal(delay, 180000);
		assert_int_equal(g.f.log[0].op, FAKE_I2C_WRITE);
		assert_int_equal(g.f.log[0].len, 1);
		assert_int_equal(g.f.log[0].data[0], 0x20);
		assert_int_equal(g.sink.n, 0);
		/* step 2: read 2 bytes, emit lux, wait out the interval */
		assert_int_equal(sg_driver_bh1750.poll(&g.dev, &delay), 0);
		assert_int_equal(g.f.log[1].op, FAKE_I2C_READ);
		assert_int_equal(g.f.log[1].len, 2);
		assert_true(delay <= 60000000 && delay > 59000000);
		r = fake_i2c_find(&g.sink, "illuminance");
		if (!r || fabs(r->number - cases[i].lux) > 1e-9)
			fail_msg("%s: got %f lx", cases[i].legend, r ? r->number : -1.0);
		assert_string_equal(r->unit, "lx");
		fake_i2c_dev_free(&g.dev);
	}
	/* the example rounds to the data sheet's 28067 lx */
	assert_int_equal((int)lround(33680 / 1.2), 28067);
}

static void test_bus_errors(void **state)
{
	struct rig g;
	uint64_t delay;
	(void)state;

	/* absent chip: the command is NACKed */
	rig_setup(&g, 0, 0);
	g.f.fail_errno = EREMOTEIO;
	g.f.fail_count = 1;
	assert_int_equal(sg_driver_bh1750.poll(&g.dev, &delay), -EREMOTEIO);
	fake_i2c_dev_free(&g.dev);

	/* the read fails: error up, nothing emitted, next step sends the command again */
	rig_setup(&g, 0x12, 0x34);
	g.f.fail_errno = ETIMEDOUT;
	g.f.fail_skip = 1;
	g.f.fail_count = 1;
	assert_int_equal(sg_driver_bh1750.poll(&g.dev, &delay), 0);
	assert_int_equal(sg_driver_bh1750.poll(&g.dev, &delay), -ETIMEDOUT);
	assert_int_equal(g.sink.n, 0);
	assert_int_equal(sg_driver_bh1750.poll(&g.dev, &delay), 0);
	assert_int_equal(delay, 180000);
	assert_int_equal(fake_i2c_count(&g.f, FAKE_I2C_WRITE, -1), 2);
	fake_i2c_dev_free(&g.dev);
}

/* Property: every count gives a finite lux value in 0..54612.5. */
static void test_all_counts(void **state)
{
	(void)state;

	for (unsigned v = 0; v <= 0xFFFF; v += 7) {
		struct rig g;
		uint64_t delay;

		rig_setup(&g, (uint8_t)(v >> 8), (uint8_t)v);
		assert_int_equal(sg_driver_bh1750.poll(&g.dev, &delay), 0);
		assert_int_equal(sg_driver_bh1750.poll(&g.dev, &delay), 0);
		assert_int_equal(g.sink.n, 1);
		assert_true(isfinite(g.sink.r[0].number));
		assert_true(g.sink.r[0].number >= 0 && g.sink.r[0].number <= 54612.5);
		fake_i2c_dev_free(&g.dev);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cycle),
		cmocka_unit_test(test_bus_errors),
		cmocka_unit_test(test_all_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
