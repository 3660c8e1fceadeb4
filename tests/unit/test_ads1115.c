/* SPDX-License-Identifier: MIT */
/*
 * test_ads1115.c — the ads1115 driver against a fake with 16-bit registers.
 *
 * The fake (hooks on fake_i2c) models the ADS1115's pointer-addressed
 * big-endian registers: writing config starts a conversion of the MUX it
 * names; reading config shows OS = 0 for `busy` reads, then 1; reading the
 * conversion register returns the value preset for that MUX.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <libconfig.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/driver.h"
#include "drivers/drivers.h"
#include "fake_i2c.h"
#include "opts_helper.h"

struct adc {
	uint16_t config;
	int16_t value[8]; /* per MUX field */
	unsigned busy;    /* config reads that still show a conversion running */
	unsigned busy_next;
	unsigned conversions;
};

static void adc_on_write(struct fake_i2c *f, enum fake_i2c_op op, uint8_t reg, const uint8_t *buf, size_t n)
{
	struct adc *a = f->user;

	if (op == FAKE_I2C_WRITE_REG && reg == 0x01 && n == 2) {
		a->config = (uint16_t)(buf[0] << 8 | buf[1]);
		if (a->config & 0x8000) {
			a->conversions++;
			a->busy = a->busy_next;
		}
	}
}

static bool adc_on_read(struct fake_i2c *f, uint8_t reg, uint8_t *buf, size_t n)
{
	struct adc *a = f->user;
	uint16_t v;

	if (n != 2)
		return false;
	if (reg == 0x01) {
		v = a->config & 0x7fff;
		if (a->busy)
			a->busy--;
		else
			v |= 0x8000;
	} else if (reg == 0x00) {
		v = (uint16_t)a->value[(a->config >> 12) & 7];
	} else {
		return false;
	}
	buf[0] = (uint8_t)(v >> 8);
	buf[1] = (uint8_t)v;
	return true;
}

struct rig {
	struct fake_i2c f;
	struct adc adc;
	struct fake_i2c_sink sink;
	struct sg_dev dev;
};

static void rig_setup(struct rig *g, const void *opts)
{
	fake_i2c_init(&g->f);
	memset(&g->adc, 0, sizeof(g->adc));
	g->f.user = &g->adc;
	g->f.on_write = adc_on_write;
	g->f.on_read_reg = adc_on_read;
	fake_i2c_dev_setup(&g->dev, &sg_driver_ads1115, opts, &g->f, &g->sink);
	assert_int_equal(sg_driver_ads1115.init(&g->dev), 0);
}

#define CONVERT_US 9093 /* 1/128 s + 10 % + 0.5 ms */

/* Default channels a0..a3: single-ended, ±4.096 V, one per step, chained. */
static void test_default_cycle(void **state)
{
	static const uint16_t expect_config[4] = {0xC383, 0xD383, 0xE383, 0xF383};
	static const int16_t values[4] = {0x4000, -32768, 32767, 1};
	static const char *const names[4] = {"a0", "a1", "a2", "a3"};
	struct rig g;
	uint64_t delay = 0;
	void *opts = NULL;
	struct sg_opt_error err;
	(void)state;

	/* no `channels` key: the defaults */
	assert_int_equal(opts_fixture_parse(&sg_driver_ads1115, "", &opts, &err), 0);
	rig_setup(&g, opts);
	for (int k = 0; k < 4; k++)
		g.adc.value[4 + k] = values[k];

	assert_int_equal(sg_driver_ads1115.poll(&g.dev, &delay), 0);
	assert_int_equal(delay, CONVERT_US);
	assert_int_equal(g.adc.config, expect_config[0]);
	for (int k = 0; k < 4; k++) {
		assert_int_equal(sg_driver_ads1115.poll(&g.dev, &delay), 0);
		assert_int_equal(g.sink.n, (unsigned)k + 1);
		assert_string_equal(g.sink.r[k].field, names[k]);
		assert_string_equal(g.sink.r[k].unit, "V");
		assert_float_equal(g.sink.r[k].number, values[k] * 4.096 / 32768.0, 1e-12);
		if (k < 3) {
			assert_int_equal(delay, CONVERT_US);
			assert_int_equal(g.adc.config, expect_config[k + 1]);
		} else {
			assert_true(delay <= 10000000 && delay > 9000000);
		}
	}
	assert_int_equal(g.adc.conversions, 4);
	assert_float_equal(g.sink.r[0].number, 2.048, 1e-12);
	assert_float_equal(g.sink.r[1].number, -4.096, 1e-12);
	/* the next step starts over at a0 */
	assert_int_equal(sg_driver_ads1115.poll(&g.dev, &delay), 0);
	assert_int_equal(g.adc.config, expect_config[0]);
	fake_i2c_dev_free(&g.dev);
	sg_driver_ads1115.free_options(opts);
}

static void test_channel_options(void **state)
{
	static const struct {
		const char *legend;
		const char *mux;
		const char *gain;     /* NULL: default */
		uint16_t config;
		double fsr;
	} cases[] = {
		{"differential 0-1 at 0.256", "0-1", "0.256", 0x8B83, 0.256},
		{"differential 0-3 at 6.144", "0-3", "6.144", 0x9183, 6.144},
		{"differential 1-3 at 2.048", "1-3", "2.048", 0xA583, 2.048},
		{"differential 2-3 at 1.024", "2-3", "1.024", 0xB783, 1.024},
		{"AIN2 at 0.512", "2", "0.512", 0xE983, 0.512},
		{"AIN3, default gain", "3", NULL, 0xF383, 4.096},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];
		void *opts = NULL;
		struct sg_opt_error err = {0};
		struct rig g;
		uint64_t delay;

		snprintf(text, sizeof(text), "channels = ( { name = \"ch\"; mux = \"%s\"; %s%s%s } );",
		         cases[i].mux, cases[i].gain ? "gain = " : "", cases[i].gain ? cases[i].gain : "",
		         cases[i].gain ? ";" : "");
		if (opts_fixture_parse(&sg_driver_ads1115, text, &opts, &err) != 0)
			fail_msg("%s: %s", cases[i].legend, err.msg);
		rig_setup(&g, opts);
		g.adc.value[(cases[i].config >> 12) & 7] = -16384;
		assert_int_equal(sg_driver_ads1115.poll(&g.dev, &delay), 0);
		if (g.adc.config != cases[i].config)
			fail_msg("%s: config 0x%04x, expected 0x%04x", cases[i].legend, g.adc.config, cases[i].config);
		assert_int_equal(sg_driver_ads1115.poll(&g.dev, &delay), 0);
		assert_int_equal(g.sink.n, 1);
		assert_string_equal(g.sink.r[0].field, "ch");
		assert_float_equal(g.sink.r[0].number, -cases[i].fsr / 2, 1e-12);
		fake_i2c_dev_free(&g.dev);
		sg_driver_ads1115.free_options(opts);
	}
}

static void test_bad_options(void **state)
{
	static const struct {
		const char *text;
		const char *msg;  /* part of the error message */
	} cases[] = {
		{"channels = ( { name = \"x\"; mux = \"4\"; } );", "unknown mux"},
		{"channels = ( { name = \"x\"; mux = \"0-2\"; } );", "unknown mux"},
		{"channels = ( { name = \"x\"; } );", "needs mux"},
		{"channels = ( { mux = \"0\"; } );", "needs name"},
		{"channels = ( { name = \"x\"; mux = \"0\"; gain = 3.3; } );", "gain"},
		{"channels = ( { name = \"x\"; mux = \"0\"; gain = \"4.096\"; } );", "gain"},
		{"channels = ( { name = \"x y\"; mux = \"0\"; } );", "invalid channel name"},
		{"channels = ( { name = \"a/b\"; mux = \"0\"; } );", "invalid channel name"},
		{"channels = ( { name = \"x\"; mux = \"0\"; }, { name = \"x\"; mux = \"1\"; } );", "twice"},
		{"channels = ( { name = \"x\"; mux = \"0\"; rate = 860; } );", "unknown channel setting"},
		{"channels = ( );", "between 1 and 8"},
		{"channels = \"a0\";", "must be a list"},
		{"channels = ( \"a0\" );", "must be groups"},
		{"channels = ( {name=\"c1\";mux=\"0\";}, {name=\"c2\";mux=\"0\";}, {name=\"c3\";mux=\"0\";}, "
		 "{name=\"c4\";mux=\"0\";}, {name=\"c5\";mux=\"0\";}, {name=\"c6\";mux=\"0\";}, {name=\"c7\";mux=\"0\";}, "
		 "{name=\"c8\";mux=\"0\";}, {name=\"c9\";mux=\"0\";} );", "between 1 and 8"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		void *opts = NULL;
		struct sg_opt_error err = {0};
		int r = opts_fixture_parse(&sg_driver_ads1115, cases[i].text, &opts, &err);

		if (r != -EINVAL || opts || !strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: r=%d msg \"%s\", expected -EINVAL with \"%s\"", i, r, err.msg, cases[i].msg);
		assert_int_equal(err.line, 2);
	}
}

/* OS still 0 when we come back: re-check every 1 ms, at most 10 times, then count a timeout and move on. */
static void test_conversion_not_done(void **state)
{
	struct rig g;
	uint64_t delay;
	(void)state;

	rig_setup(&g, NULL);
	g.adc.busy_next = 2;
	g.adc.value[4] = 100;
	assert_int_equal(sg_driver_ads1115.poll(&g.dev, &delay), 0);
	assert_int_equal(sg_driver_ads1115.poll(&g.dev, &delay), 0);
	assert_int_equal(delay, 1000);
	assert_int_equal(sg_driver_ads1115.poll(&g.dev, &delay), 0);
	assert_int_equal(delay, 1000);
	assert_int_equal(g.sink.n, 0);
	assert_int_equal(sg_driver_ads1115.poll(&g.dev, &delay), 0);
	assert_int_equal(g.sink.n, 1);
	assert_float_equal(g.sink.r[0].number, 100 * 4.096 / 32768, 1e-12);
	assert_int_equal(delay, CONVERT_US); /* a1 started */
	fake_i2c_dev_free(&g.dev);

	rig_setup(&g, NULL);
	g.adc.busy_next = 1000;
	assert_int_equal(sg_driver_ads1115.poll(&g.dev, &delay), 0);
	for (int k = 0; k < 10; k++) {
		assert_int_equal(sg_driver_ads1115.poll(&g.dev, &delay), 0);
		assert_int_equal(delay, 1000);
	}
	assert_int_equal(sg_driver_ads1115.poll(&g.dev, &delay), 0);
	assert_int_equal(g.dev.stats.fail[SG_FAIL_TIMEOUT], 1);
	assert_string_equal(g.sink.last_detail, "a0");
	assert_int_equal(g.sink.n, 0);
	assert_int_equal(delay, CONVERT_US);
	assert_int_equal((g.adc.config >> 12) & 7, 5); /* moved on to a1 */
	fake_i2c_dev_free(&g.dev);
}

static void test_bus_errors(void **state)
{
	static const struct {
		const char *legend;
		int err;
		unsigned skip, steps_ok;
	} cases[] = {
		{"NACK on the first config write", EREMOTEIO, 0, 0},
		{"NACK on the config read", ENXIO, 1, 1},
		{"timeout on the conversion read", ETIMEDOUT, 2, 1},
		{"NACK on the next channel's start", EREMOTEIO, 3, 1},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rig g;
		uint64_t delay;
		int r = 0;

		rig_setup(&g, NULL);
		g.f.fail_errno = cases[i].err;
		g.f.fail_skip = cases[i].skip;
		g.f.fail_count = 1;
		for (unsigned k = 0; k < cases[i].steps_ok; k++)
			assert_int_equal(sg_driver_ads1115.poll(&g.dev, &delay), 0);
		r = sg_driver_ads1115.poll(&g.dev, &delay);
		if (r != -cases[i].err)
			fail_msg("%s: poll returned %d", cases[i].legend, r);
		assert_int_equal(g.sink.n_fail, 0);
		fake_i2c_dev_free(&g.dev);
	}
}

static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/* Property: any conversion result is a finite voltage within ±FSR. */
static void test_random_values(void **state)
{
	uint64_t seed = 777;
	struct rig g;
	uint64_t delay;
	(void)state;

	rig_setup(&g, NULL);
	for (int iter = 0; iter < 5000; iter++) {
		for (int k = 0; k < 8; k++)
			g.adc.value[k] = (int16_t)rnd_next(&seed);
		g.sink.n = 0;
		for (int step = 0; step < 5; step++)
			assert_int_equal(sg_driver_ads1115.poll(&g.dev, &delay), 0);
		assert_int_equal(g.sink.n, 4);
		for (unsigned k = 0; k < g.sink.n; k++) {
			assert_true(isfinite(g.sink.r[k].number));
			assert_true(fabs(g.sink.r[k].number) <= 4.096);
		}
	}
	fake_i2c_dev_free(&g.dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_cycle),
		cmocka_unit_test(test_channel_options),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_conversion_not_done),
		cmocka_unit_test(test_bus_errors),
		cmocka_unit_test(test_random_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
