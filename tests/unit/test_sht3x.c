/* SPDX-License-Identifier: MIT */
/*
 * test_sht3x.c — the sht3x driver against a fake command-style chip.
 *
 * CRC vectors: the data sheet's CRC(0xBEEF) = 0x92 (§4.12 Table 20); the
 * others were computed apart with a bit-by-bit CRC-8 (poly 0x31, init 0xFF).
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

static void rig_setup(struct rig *g, const uint8_t rx[6])
{
	fake_i2c_init(&g->f);
	memcpy(g->f.rx, rx, 6);
	g->f.rx_len = 6;
	fake_i2c_dev_setup(&g->dev, &sg_driver_sht3x, NULL, &g->f, &g->sink);
	assert_int_equal(sg_driver_sht3x.init(&g->dev), 0);
}

/* Run trigger + read; return the second step's result. */
static int cycle(struct rig *g, uint64_t *delay)
{
	int r = sg_driver_sht3x.poll(&g->dev, delay);
	if (r < 0)
		return r;
	return sg_driver_sht3x.poll(&g->dev, delay);
}

static void test_state_machine(void **state)
{
	static const uint8_t rx[6] = {0x66, 0x66, 0x93, 0x80, 0x00, 0xA2};
	struct rig g;
	uint64_t delay = 0;
	(void)state;

	rig_setup(&g, rx);
	/* step 1: the 16-bit command 0x2400, then the 15.5 ms of Table 4 as a timer */
	assert_int_equal(sg_driver_sht3x.poll(&g.dev, &delay), 0);
	assert_int_equal(delay, 15500);
	assert_int_equal(g.f.n_xfers, 1);
	assert_int_equal(g.f.log[0].op, FAKE_I2C_WRITE);
	assert_int_equal(g.f.log[0].len, 2);
	assert_int_equal(g.f.log[0].data[0], 0x24);
	assert_int_equal(g.f.log[0].data[1], 0x00);
	assert_int_equal(g.sink.n, 0);
	/* step 2: a plain 6-byte read, two readings, the rest of the interval */
	assert_int_equal(sg_driver_sht3x.poll(&g.dev, &delay), 0);
	assert_int_equal(g.f.log[1].op, FAKE_I2C_READ);
	assert_int_equal(g.f.log[1].len, 6);
	assert_true(delay <= 10000000 && delay > 9000000);
	assert_int_equal(g.sink.n, 2);
	assert_float_equal(fake_i2c_find(&g.sink, "temperature")->number, -45.0 + 175.0 * 0x6666 / 65535.0, 1e-9);
	assert_float_equal(fake_i2c_find(&g.sink, "humidity")->number, 100.0 * 0x8000 / 65535.0, 1e-9);
	assert_string_equal(fake_i2c_find(&g.sink, "temperature")->unit, "°C");
	assert_string_equal(fake_i2c_find(&g.sink, "humidity")->unit, "%");
	/* and again from the command */
	assert_int_equal(sg_driver_sht3x.poll(&g.dev, &delay), 0);
	assert_int_equal(delay, 15500);
	assert_int_equal(fake_i2c_count(&g.f, FAKE_I2C_WRITE, -1), 2);
	fake_i2c_dev_free(&g.dev);
}

static void test_conversions_and_crc(void **state)
{
	static const struct {
		const char *legend;
		uint8_t rx[6];
		double t, rh;    /* NAN: must not be emitted */
		unsigned checksum_fails;
	} cases[] = {
		{"data sheet CRC example 0xBEEF -> 0x92", {0xBE, 0xEF, 0x92, 0x5E, 0x2B, 0x67},
		 -45.0 + 175.0 * 0xBEEF / 65535.0, 100.0 * 0x5E2B / 65535.0, 0},
		{"raw 0: -45 °C, 0 %", {0x00, 0x00, 0x81, 0x00, 0x00, 0x81}, -45.0, 0.0, 0},
		{"raw 0xFFFF: 130 °C, 100 %", {0xFF, 0xFF, 0xAC, 0xFF, 0xFF, 0xAC}, 130.0, 100.0, 0},
		{"bad T crc: humidity only", {0xBE, 0xEF, 0x93, 0x3A, 0x9C, 0x99}, NAN, 100.0 * 0x3A9C / 65535.0, 1},
		{"bad RH crc: temperature only", {0x66, 0x66, 0x93, 0x3A, 0x9C, 0x98}, -45.0 + 175.0 * 0x6666 / 65535.0,
		 NAN, 1},
		{"both bad: nothing", {0x66, 0x66, 0x00, 0x3A, 0x9C, 0x00}, NAN, NAN, 1},
		{"crc of the other word", {0xBE, 0xEF, 0x67, 0x5E, 0x2B, 0x92}, NAN, NAN, 1},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rig g;
		uint64_t delay;
		const struct fake_i2c_reading *t, *rh;

		rig_setup(&g, cases[i].rx);
		assert_int_equal(cycle(&g, &delay), 0);
		t = fake_i2c_find(&g.sink, "temperature");
		rh = fake_i2c_find(&g.sink, "humidity");
		if (isnan(cases[i].t) ? t != NULL : !t || fabs(t->number - cases[i].t) > 1e-9)
			fail_msg("%s: temperature %s", cases[i].legend, t ? "wrong or unexpected" : "missing");
		if (isnan(cases[i].rh) ? rh != NULL : !rh || fabs(rh->number - cases[i].rh) > 1e-9)
			fail_msg("%s: humidity %s", cases[i].legend, rh ? "wrong or unexpected" : "missing");
		if (g.dev.stats.fail[SG_FAIL_CHECKSUM] != cases[i].checksum_fails)
			fail_msg("%s: %llu checksum failures counted", cases[i].legend,
			         (unsigned long long)g.dev.stats.fail[SG_FAIL_CHECKSUM]);
		fake_i2c_dev_free(&g.dev);
	}
}

/* The chip NACKs a read with no result (too early, or absent): the error goes up, the cycle restarts. */
static void test_nack(void **state)
{
	static const uint8_t rx[6] = {0x66, 0x66, 0x93, 0x80, 0x00, 0xA2};
	struct rig g;
	uint64_t delay;
	(void)state;

	rig_setup(&g, rx);
	g.f.rx_len = 0;
	assert_int_equal(cycle(&g, &delay), -EREMOTEIO);
	assert_int_equal(g.sink.n, 0);
	assert_int_equal(g.sink.n_fail, 0);
	/* the next step starts over with the command */
	g.f.rx_len = 6;
	assert_int_equal(sg_driver_sht3x.poll(&g.dev, &delay), 0);
	assert_int_equal(fake_i2c_last(&g.f, FAKE_I2C_WRITE)->data[0], 0x24);
	assert_int_equal(delay, 15500);
	fake_i2c_dev_free(&g.dev);

	/* absent chip: the command itself is not acknowledged */
	rig_setup(&g, rx);
	g.f.fail_errno = ENXIO;
	g.f.fail_count = 1;
	assert_int_equal(sg_driver_sht3x.poll(&g.dev, &delay), -ENXIO);
	fake_i2c_dev_free(&g.dev);
}

static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/* Property: any 6 bytes give finite, in-range numbers or a counted CRC failure. */
static void test_random_bytes(void **state)
{
	uint64_t seed = 12345;
	unsigned emitted = 0;
	(void)state;

	for (int iter = 0; iter < 20000; iter++) {
		uint8_t rx[6];
		uint64_t v = rnd_next(&seed), delay;
		struct rig g;

		memcpy(rx, &v, 6);
		rig_setup(&g, rx);
		assert_int_equal(cycle(&g, &delay), 0);
		for (unsigned k = 0; k < g.sink.n; k++) {
			double x = g.sink.r[k].number;
			assert_true(isfinite(x));
			if (strcmp(g.sink.r[k].field, "temperature") == 0)
				assert_true(x >= -45 && x <= 130);
			else
				assert_true(x >= 0 && x <= 100);
		}
		emitted += g.sink.n;
		assert_true(g.sink.n == 2 || g.dev.stats.fail[SG_FAIL_CHECKSUM] == 1);
		fake_i2c_dev_free(&g.dev);
	}
	/* random CRCs match 1 time in 256 per word */
	assert_true(emitted > 50 && emitted < 400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_machine),
		cmocka_unit_test(test_conversions_and_crc),
		cmocka_unit_test(test_nack),
		cmocka_unit_test(test_random_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
