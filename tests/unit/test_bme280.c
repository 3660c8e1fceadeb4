/* SPDX-License-Identifier: MIT */
/*
 * test_bme280.c — the bme280 driver against an in-memory register map.
 *
 * Vectors: the Bosch worked example (BMP280 data sheet §3.12, same T/P
 * formulas as the BME280): dig_T1..T3 = 27504, 26435, -1000, dig_P1..P9 =
 * 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000, adc_T = 519888,
 * adc_P = 415148 => t_fine 128422, T = 25.08 °C, p = 100653.27 Pa. The 64-bit
 * integer formula gives 25767233 / 256 = 100653.254 Pa (computed apart with
 * exact integers); the example's 100653.27 comes from the double version.
 * Bosch publishes no humidity example, so humidity is checked against the
 * double-precision formula of §8.1, written out here independently.
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

struct calib {
	uint16_t t1;
	int16_t t2, t3;
	uint16_t p1;
	int16_t p2, p3, p4, p5, p6, p7, p8, p9;
	uint8_t h1, h3;
	int16_t h2, h4, h5;
	int8_t h6;
};

static const struct calib example = {
	.t1 = 27504, .t2 = 26435, .t3 = -1000,
	.p1 = 36477, .p2 = -10685, .p3 = 3024, .p4 = 2855, .p5 = 140, .p6 = -7, .p7 = 15500, .p8 = -14600,
	.p9 = 6000,
	.h1 = 75, .h2 = 370, .h3 = 0, .h4 = 313, .h5 = 50, .h6 = 30,
};

#define EXAMPLE_ADC_T 519888
#define EXAMPLE_ADC_P 415148

/* Lay out C in the chip's registers, as §4.2.2 Table 16 says. */
static void put_calib(struct fake_i2c *f, const struct calib *c)
{
	fake_i2c_put_le16(f, 0x88, c->t1);
	fake_i2c_put_le16(f, 0x8A, (uint16_t)c->t2);
	fake_i2c_put_le16(f, 0x8C, (uint16_t)c->t3);
	fake_i2c_put_le16(f, 0x8E, c->p1);
	fake_i2c_put_le16(f, 0x90, (uint16_t)c->p2);
	fake_i2c_put_le16(f, 0x92, (uint16_t)c->p3);
	fake_i2c_put_le16(f, 0x94, (uint16_t)c->p4);
	fake_i2c_put_le16(f, 0x96, (uint16_t)c->p5);
	fake_i2c_put_le16(f, 0x98, (uint16_t)c->p6);
	fake_i2c_put_le16(f, 0x9A, (uint16_t)c->p7);
	fake_i2c_put_le16(f, 0x9C, (uint16_t)c->p8);
	fake_i2c_put_le16(f, 0x9E, (uint16_t)c->p9);
	f->regs[0xA1] = c->h1;
	fake_i2c_put_le16(f, 0xE1, (uint16_t)c->h2);
	f->regs[0xE3] = c->h3;
	/* 12-bit H4 = E4[7:0]:E5[3:0], H5 = E6[7:0]:E5[7:4] */
	f->regs[0xE4] = (uint8_t)((uint16_t)c->h4 >> 4);
	f->regs[0xE5] = (uint8_t)(((uint16_t)c->h4 & 0x0f) | (((uint16_t)c->h5 & 0x0f) << 4));
	f->regs[0xE6] = (uint8_t)((uint16_t)c->h5 >> 4);
	f->regs[0xE7] = (uint8_t)c->h6;
}

static void put_adc(struct fake_i2c *f, uint32_t adc_p, uint32_t adc_t, uint32_t adc_h)
{
	f->regs[0xF7] = (uint8_t)(adc_p >> 12);
	f->regs[0xF8] = (uint8_t)(adc_p >> 4);
	f->regs[0xF9] = (uint8_t)((adc_p & 0x0f) << 4);
	f->regs[0xFA] = (uint8_t)(adc_t >> 12);
	f->regs[0xFB] = (uint8_t)(adc_t >> 4);
	f->regs[0xFC] = (uint8_t)((adc_t & 0x0f) << 4);
	f->regs[0xFD] = (uint8_t)(adc_h >> 8);
	f->regs[0xFE] = (uint8_t)adc_h;
}

/* §8.1 humidity in double precision, from the data sheet's formula, before its clamp to 0..100. */
static double humidity_unclamped(double t_fine, double adc_h, const struct calib *c)
{
	double v = t_fine - 76800.0;

	v = (adc_h - (c->h4 * 64.0 + c->h5 / 16384.0 * v)) *
	    (c->h2 / 65536.0 * (1.0 + c->h6 / 67108864.0 * v * (1.0 + c->h3 / 67108864.0 * v)));
	return v * (1.0 - c->h1 * v / 524288.0);
}

/* §8.1 humidity in double precision, from the data sheet's formula. */
static double humidity_double(double t_fine, double adc_h, const struct calib *c)
{
	double v = humidity_unclamped(t_fine, adc_h, c);

	return v < 0 ? 0 : v > 100 ? 100 : v;
}

struct rig {
	struct fake_i2c f;
	struct fake_i2c_sink sink;
	struct sg_dev dev;
};

static void rig_setup(struct rig *g, uint8_t id, const void *opts)
{
	fake_i2c_init(&g->f);
	g->f.regs[0xD0] = id;
	put_calib(&g->f, &example);
	put_adc(&g->f, EXAMPLE_ADC_P, EXAMPLE_ADC_T, 28000);
	fake_i2c_dev_setup(&g->dev, &sg_driver_bme280, opts, &g->f, &g->sink);
}

static void test_datasheet_example(void **state)
{
	struct rig g;
	uint64_t delay = 0;
	const struct fake_i2c_reading *t, *p, *h;
	(void)state;

	rig_setup(&g, 0x60, NULL);
	assert_int_equal(sg_driver_bme280.init(&g.dev), 0);

	/* step 1: ctrl_hum then ctrl_meas (x1, forced), wait the §9.1 maximum: 9.3 ms */
	unsigned before = g.f.n_xfers;
	assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
	assert_int_equal(delay, 9300);
	assert_int_equal(g.f.n_xfers - before, 2);
	assert_int_equal(g.f.log[before].op, FAKE_I2C_WRITE_REG);
	assert_int_equal(g.f.log[before].reg, 0xF2);
	assert_int_equal(g.f.log[before].data[0], 0x01);
	assert_int_equal(g.f.log[before + 1].reg, 0xF4);
	assert_int_equal(g.f.log[before + 1].data[0], 0x25);
	assert_int_equal(g.sink.n, 0);

	/* step 2: one burst read of 0xF7..0xFE, three readings, then the rest of the interval */
	before = g.f.n_xfers;
	assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
	assert_int_equal(g.f.n_xfers - before, 1);
	assert_int_equal(g.f.log[before].op, FAKE_I2C_READ_REG);
	assert_int_equal(g.f.log[before].reg, 0xF7);
	assert_int_equal(g.f.log[before].len, 8);
	assert_true(delay <= 10000000 && delay > 9000000);
	assert_int_equal(g.sink.n, 3);

	t = fake_i2c_find(&g.sink, "temperature");
	p = fake_i2c_find(&g.sink, "pressure");
	h = fake_i2c_find(&g.sink, "humidity");
	assert_non_null(t);
	assert_non_null(p);
	assert_non_null(h);
	assert_float_equal(t->number, 25.08, 1e-9);
	assert_string_equal(t->unit, "°C");
	/* 25767233 / 256 Pa exactly, within 0.05 Pa of the example's 100653.27 Pa */
	assert_float_equal(p->number, 25767233.0 / 256.0 / 100.0, 1e-9);
	assert_float_equal(p->number, 1006.5327, 0.0005);
	assert_string_equal(p->unit, "hPa");
	/* t_fine = 128422 */
	assert_float_equal(h->number, humidity_double(128422, 28000, &example), 0.01);
	assert_string_equal(h->unit, "%");
	assert_int_equal(g.dev.stats.readings, 3);

	/* and the cycle starts over */
	assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
	assert_int_equal(delay, 9300);
	fake_i2c_dev_free(&g.dev);
}

/* Humidity against §8.1 for several calibrations, including a negative dig_H5 (12-bit sign). */
static void test_humidity_vectors(void **state)
{
	static const struct {
		const char *legend;
		uint8_t h1;
		int16_t h2;
		uint8_t h3;
		int16_t h4, h5;
		int8_t h6;
		uint32_t adc_h;
	} cases[] = {
		{"typical part, mid humidity", 75, 370, 0, 313, 50, 30, 28000},
		{"negative dig_H5", 75, 362, 0, 333, -30, 30, 31000},
		{"dry air", 75, 370, 0, 313, 50, 30, 21000},
		{"negative dig_H4, dig_H3 set", 80, 350, 12, -200, 40, 25, 9000},
		{"saturates at 100 %", 75, 370, 0, 313, 50, 30, 60000},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rig g;
		struct calib c = example;
		uint64_t delay;
		const struct fake_i2c_reading *h;

		c.h1 = cases[i].h1;
		c.h2 = cases[i].h2;
		c.h3 = cases[i].h3;
		c.h4 = cases[i].h4;
		c.h5 = cases[i].h5;
		c.h6 = cases[i].h6;
		rig_setup(&g, 0x60, NULL);
		put_calib(&g.f, &c);
		put_adc(&g.f, EXAMPLE_ADC_P, EXAMPLE_ADC_T, cases[i].adc_h);
		assert_int_equal(sg_driver_bme280.init(&g.dev), 0);
		assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
		assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
		h = fake_i2c_find(&g.sink, "humidity");
		if (!h)
			fail_msg("%s: no humidity", cases[i].legend);
		if (fabs(h->number - humidity_double(128422, cases[i].adc_h, &c)) > 0.01)
			fail_msg("%s: %.4f %%, §8.1 says %.4f %%", cases[i].legend, h->number,
			         humidity_double(128422, cases[i].adc_h, &c));
		fake_i2c_dev_free(&g.dev);
	}
}

static void test_wrong_chip_id(void **state)
{
	static const uint8_t ids[] = {0x00, 0xff, 0x55, 0x61 /* BME680 */, 0x50};
	(void)state;

	for (size_t i = 0; i < sizeof(ids); i++) {
		struct rig g;

		rig_setup(&g, ids[i], NULL);
		assert_int_equal(sg_driver_bme280.init(&g.dev), -ENODEV);
		assert_int_equal(g.dev.stats.fail[SG_FAIL_NODEV], 1);
		assert_int_equal(g.sink.n_fail, 1);
		assert_non_null(strstr(g.sink.last_detail, "chip id"));
		/* nothing written to a chip we do not know */
		assert_int_equal(fake_i2c_count(&g.f, FAKE_I2C_WRITE_REG, -1), 0);
		fake_i2c_dev_free(&g.dev);
	}
}

static void test_blank_calibration(void **state)
{
	struct rig g;
	(void)state;

	rig_setup(&g, 0x60, NULL);
	memset(&g.f.regs[0x88], 0, 26);
	assert_int_equal(sg_driver_bme280.init(&g.dev), -ENODEV);
	assert_int_equal(g.dev.stats.fail[SG_FAIL_NODEV], 1);
	fake_i2c_dev_free(&g.dev);
}

/* A BMP280 gives temperature and pressure only, and is never asked for humidity. */
static void test_bmp280(void **state)
{
	struct rig g;
	uint64_t delay;
	(void)state;

	rig_setup(&g, 0x58, NULL);
	assert_int_equal(sg_driver_bme280.init(&g.dev), 0);
	assert_int_equal(fake_i2c_count(&g.f, FAKE_I2C_READ_REG, 0xE1), 0);
	assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
	assert_int_equal(delay, 1250 + 2300 + 2300 + 575);
	assert_int_equal(fake_i2c_count(&g.f, FAKE_I2C_WRITE_REG, 0xF2), 0);
	assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
	assert_int_equal(fake_i2c_last(&g.f, FAKE_I2C_READ_REG)->len, 6);
	assert_int_equal(g.sink.n, 2);
	assert_float_equal(fake_i2c_find(&g.sink, "temperature")->number, 25.08, 1e-9);
	assert_non_null(fake_i2c_find(&g.sink, "pressure"));
	assert_null(fake_i2c_find(&g.sink, "humidity"));
	fake_i2c_dev_free(&g.dev);
}

/* A NACK (or any bus error) is returned as is, at every step, and not counted by the driver. */
static void test_bus_errors_propagate(void **state)
{
	static const struct {
		const char *legend;
		int err;
		unsigned skip;   /* transfers that succeed first */
		int polls;       /* poll steps before the failing one */
	} cases[] = {
		{"NACK on the id read", EREMOTEIO, 0, -1},
		{"no device (ENXIO) on the id read", ENXIO, 0, -1},
		{"NACK on the calibration read", EREMOTEIO, 3, -1},
		{"timeout on the trigger", ETIMEDOUT, 5, 0},
		{"NACK on the data read", EREMOTEIO, 7, 1},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rig g;
		uint64_t delay;
		int r;

		rig_setup(&g, 0x60, NULL);
		g.f.fail_errno = cases[i].err;
		g.f.fail_skip = cases[i].skip;
		g.f.fail_count = 1;
		r = sg_driver_bme280.init(&g.dev);
		if (cases[i].polls < 0) {
			if (r != -cases[i].err)
				fail_msg("%s: init returned %d", cases[i].legend, r);
		} else {
			assert_int_equal(r, 0);
			for (int k = 0; k < cases[i].polls; k++)
				assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
			r = sg_driver_bme280.poll(&g.dev, &delay);
			if (r != -cases[i].err)
				fail_msg("%s: poll returned %d", cases[i].legend, r);
		}
		assert_int_equal(g.sink.n, 0);
		assert_int_equal(g.sink.n_fail, 0);
		fake_i2c_dev_free(&g.dev);
	}
}

static void test_skipped_measurement(void **state)
{
	struct rig g;
	uint64_t delay;
	(void)state;

	rig_setup(&g, 0x60, NULL);
	put_adc(&g.f, 0x80000, 0x80000, 0x8000); /* §5.4.7..9 reset values */
	assert_int_equal(sg_driver_bme280.init(&g.dev), 0);
	assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
	assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
	assert_int_equal(g.sink.n, 0);
	assert_int_equal(g.dev.stats.fail[SG_FAIL_INSANE], 1);
	fake_i2c_dev_free(&g.dev);
}

/* §8.1 temperature in double precision (°C), from the data sheet's formula; *T_FINE as the formula has it. */
static double temperature_double(double adc_t, const struct calib *c, double *t_fine)
{
	double var1 = (adc_t / 16384.0 - c->t1 / 1024.0) * c->t2;
	double var2 = (adc_t / 131072.0 - c->t1 / 8192.0) * (adc_t / 131072.0 - c->t1 / 8192.0) * c->t3;

	*t_fine = var1 + var2;
	return *t_fine / 5120.0;
}

/* §8.1 pressure in double precision (Pa), from the data sheet's formula. */
static double pressure_double(double t_fine, double adc_p, const struct calib *c)
{
	double var1 = t_fine / 2.0 - 64000.0, var2, p;

	var2 = var1 * var1 * c->p6 / 32768.0;
	var2 = var2 + var1 * c->p5 * 2.0;
	var2 = var2 / 4.0 + c->p4 * 65536.0;
	var1 = (c->p3 * var1 * var1 / 524288.0 + c->p2 * var1) / 524288.0;
	var1 = (1.0 + var1 / 32768.0) * c->p1;
	p = 1048576.0 - adc_p;
	p = (p - var2 / 4096.0) * 6250.0 / var1;
	var1 = c->p9 * p * p / 2147483648.0;
	var2 = p * c->p8 / 32768.0;
	return p + (var1 + var2 + c->p7) / 16.0;
}

/* The raw value (0 .. 2^20) whose reading F gives closest to WANT; F is monotonic in it. */
static uint32_t raw_for(double want, double (*f)(double raw, const void *arg), const void *arg)
{
	uint32_t lo = 0, hi = (1u << 20) - 1;
	bool rising = f(hi, arg) > f(lo, arg);

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if ((f(mid, arg) < want) == rising)
			lo = mid;
		else
			hi = mid;
	}
	return fabs(f(lo, arg) - want) < fabs(f(hi, arg) - want) ? lo : hi;
}

static double t_of(double adc_t, const void *arg)
{
	double t_fine;
	return temperature_double(adc_t, arg, &t_fine);
}

static double p_of(double adc_p, const void *arg)
{
	double t_fine;
	temperature_double(EXAMPLE_ADC_T, arg, &t_fine);
	return pressure_double(t_fine, adc_p, arg);
}

/*
 * The corners of the operating range (§1: -40..85 °C, 300..1100 hPa): a value
 * the formulas put a hair outside is clamped to the range (as Bosch's SensorAPI
 * does), one clearly outside is dropped as insane. Raw values found with the
 * data sheet's own double-precision formulas and its example calibration.
 */
static void test_range_corners(void **state)
{
	static const struct {
		const char *field;
		double at;    /* what the formula says */
		double shown; /* published, NAN: dropped */
	} cases[] = {
		{"pressure", 29999.7, 300.0},   /* 299.997 hPa */
		{"pressure", 30000.5, 300.005},
		{"pressure", 110000.15, 1100.0}, /* 1100.0015 hPa */
		{"pressure", 29850.0, NAN},      /* 1.5 hPa below: not rounding, a fault */
		{"pressure", 110200.0, NAN},
		{"temperature", -40.02, -40.0},
		{"temperature", 85.03, 85.0},
		{"temperature", -41.0, NAN},
		{"temperature", 86.0, NAN},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool pressure = strcmp(cases[i].field, "pressure") == 0;
		uint32_t raw = raw_for(cases[i].at, pressure ? p_of : t_of, &example);
		const struct fake_i2c_reading *r;
		struct rig g;
		uint64_t delay;

		rig_setup(&g, 0x60, NULL);
		if (pressure)
			put_adc(&g.f, raw, EXAMPLE_ADC_T, 28000);
		else
			put_adc(&g.f, EXAMPLE_ADC_P, raw, 28000);
		assert_int_equal(sg_driver_bme280.init(&g.dev), 0);
		assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
		assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
		r = fake_i2c_find(&g.sink, cases[i].field);
		if (isnan(cases[i].shown)) {
			if (r)
				fail_msg("%s %g: published %g, expected dropped", cases[i].field, cases[i].at, r->number);
			assert_true(g.dev.stats.fail[SG_FAIL_INSANE] >= 1);
		} else {
			if (!r)
				fail_msg("%s %g: dropped, expected %g", cases[i].field, cases[i].at, cases[i].shown);
			if (fabs(r->number - cases[i].shown) > 0.001)
				fail_msg("%s %g: published %.4f, expected %g", cases[i].field, cases[i].at, r->number,
				         cases[i].shown);
		}
		fake_i2c_dev_free(&g.dev);
	}
}

/*
 * The humidity corners (0 and 100 %RH): the data sheet's formula (§4.2.3,
 * BME280_compensate_H_int32) and Bosch's SensorAPI v3.5.1 compensate_humidity()
 * both clamp to 0..100, whatever the distance, so a value a hair or far
 * outside is published at the bound, never dropped. Raw values found with the
 * double-precision formula before its clamp, example calibration.
 */
static void test_humidity_corners(void **state)
{
	static const struct {
		double at;    /* what the unclamped formula says, %RH */
		double shown; /* published */
	} cases[] = {
		{-0.3, 0}, {0.4, 0.4}, {-25, 0}, {100.3, 100}, {99.6, 99.6}, {120, 100},
	};
	double t_fine;
	(void)state;

	temperature_double(EXAMPLE_ADC_T, &example, &t_fine);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct fake_i2c_reading *h;
		uint32_t raw = 0;
		double best = HUGE_VAL;
		struct rig g;
		uint64_t delay;

		for (uint32_t a = 0; a <= 0xffff; a++) { /* 16-bit ADC (§5.4.9); a scan is cheap */
			double d = fabs(humidity_unclamped(t_fine, a, &example) - cases[i].at);
			if (d < best && a != 0x8000) { /* 0x8000: "skipped", refused by the driver */
				best = d;
				raw = a;
			}
		}
		rig_setup(&g, 0x60, NULL);
		put_adc(&g.f, EXAMPLE_ADC_P, EXAMPLE_ADC_T, raw);
		assert_int_equal(sg_driver_bme280.init(&g.dev), 0);
		assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
		assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
		h = fake_i2c_find(&g.sink, "humidity");
		if (!h)
			fail_msg("humidity %g %%: dropped, expected %g", cases[i].at, cases[i].shown);
		if (fabs(h->number - cases[i].shown) > 0.02)
			fail_msg("humidity %g %% (raw %u): published %.4f, expected %g", cases[i].at, raw, h->number,
			         cases[i].shown);
		fake_i2c_dev_free(&g.dev);
	}
}

static void test_oversampling_option(void **state)
{
	struct sg_opt_error err = {0};
	void *opts = NULL;
	struct rig g;
	uint64_t delay;
	(void)state;

	assert_int_equal(opts_fixture_parse(&sg_driver_bme280, "oversampling = 16;", &opts, &err), 0);
	rig_setup(&g, 0x60, opts);
	assert_int_equal(sg_driver_bme280.init(&g.dev), 0);
	assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
	/* osrs 101 everywhere: ctrl_hum 0x05, ctrl_meas 101 101 01 */
	assert_int_equal(g.f.regs[0xF2], 0x05);
	assert_int_equal(g.f.regs[0xF4], 0xB5);
	assert_int_equal(delay, 1250 + 3 * 2300 * 16 + 2 * 575);
	fake_i2c_dev_free(&g.dev);
	sg_driver_bme280.free_options(opts);

	opts = NULL;
	assert_int_equal(opts_fixture_parse(&sg_driver_bme280, "", &opts, &err), 0);
	assert_non_null(opts);
	sg_driver_bme280.free_options(opts);

	static const char *const bad[] = {
		"oversampling = 3;",
		"oversampling = 0;",
		"oversampling = \"x16\";",
		"oversampling = 32;",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		opts = NULL;
		memset(&err, 0, sizeof(err));
		assert_int_equal(opts_fixture_parse(&sg_driver_bme280, bad[i], &opts, &err), -EINVAL);
		assert_null(opts);
		assert_non_null(strstr(err.msg, "oversampling"));
		assert_int_equal(err.line, 2);
	}
}

/* xorshift64*: a fixed-seed generator so a failure replays. */
static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/* Property: whatever the registers hold, nothing crashes and every number emitted is finite and in range. */
static void test_random_registers(void **state)
{
	uint64_t seed = UINT64_C(0x9e3779b97f4a7c15);
	unsigned emitted = 0, inits = 0;
	(void)state;

	for (int iter = 0; iter < 20000; iter++) {
		struct rig g;
		uint64_t delay;

		rig_setup(&g, 0x60, NULL);
		for (size_t k = 0; k < sizeof(g.f.regs); k += 8) {
			uint64_t v = rnd_next(&seed);
			memcpy(&g.f.regs[k], &v, 8);
		}
		/* mostly a plausible id, so the compensation runs */
		switch (rnd_next(&seed) % 4) {
		case 0: g.f.regs[0xD0] = 0x60; break;
		case 1: g.f.regs[0xD0] = 0x58; break;
		case 2: put_calib(&g.f, &example); g.f.regs[0xD0] = 0x60; break; /* real calibration, random data */
		default: break;
		}
		if (sg_driver_bme280.init(&g.dev) == 0) {
			inits++;
			for (int step = 0; step < 4; step++)
				assert_int_equal(sg_driver_bme280.poll(&g.dev, &delay), 0);
		}
		for (unsigned k = 0; k < g.sink.n; k++) {
			const struct fake_i2c_reading *r = &g.sink.r[k];
			assert_true(isfinite(r->number));
			if (strcmp(r->field, "temperature") == 0)
				assert_true(r->number >= -40 && r->number <= 85);
			else if (strcmp(r->field, "pressure") == 0)
				assert_true(r->number >= 300 && r->number <= 1100);
			else
				assert_true(r->number >= 0 && r->number <= 100);
		}
		emitted += g.sink.n;
		fake_i2c_dev_free(&g.dev);
	}
	/* the property is not vacuous: plenty of chips got through to compensation and emitted */
	assert_true(inits > 10000);
	assert_true(emitted > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_datasheet_example),
		cmocka_unit_test(test_humidity_vectors),
		cmocka_unit_test(test_wrong_chip_id),
		cmocka_unit_test(test_blank_calibration),
		cmocka_unit_test(test_bmp280),
		cmocka_unit_test(test_bus_errors_propagate),
		cmocka_unit_test(test_skipped_measurement),
		cmocka_unit_test(test_range_corners),
		cmocka_unit_test(test_humidity_corners),
		cmocka_unit_test(test_oversampling_option),
		cmocka_unit_test(test_random_registers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
