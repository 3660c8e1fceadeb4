/* SPDX-License-Identifier: MIT */
/*
 * bme280.c — the `bme280` driver: Bosch BME280 (and BMP280) over I2C.
 *
 * Source: Bosch Sensortec BME280 data sheet BST-BME280-DS002 (rev. 1.6, 2018);
 * § numbers below refer to it. Register map used:
 *
 *   0x88..0x9F  dig_T1..dig_P9      12 x 16-bit little-endian (T1, P1 unsigned)  §4.2.2 Table 16
 *   0xA1        dig_H1              u8
 *   0xD0        id                  0x60 BME280; 0x58 BMP280 (0x56/0x57 samples)  §5.4.1, §5.2 Table 17
 *   0xE1..0xE2  dig_H2              s16 little-endian
 *   0xE3        dig_H3              u8
 *   0xE4..0xE6  dig_H4, dig_H5      two signed 12-bit values sharing 0xE5:
 *                                     dig_H4 = 0xE4[7:0] << 4 | 0xE5[3:0]
 *                                     dig_H5 = 0xE6[7:0] << 4 | 0xE5[7:4]
 *   0xE7        dig_H6              s8
 *   0xF2        ctrl_hum            osrs_h[2:0]; takes effect on the next ctrl_meas write  §5.4.3
 *   0xF4        ctrl_meas           osrs_t[7:5] osrs_p[4:2] mode[1:0] (01 = forced)     §5.4.5
 *   0xF5        config              t_sb[7:5] filter[4:2] spi3w_en[0]; written 0: filter off §5.4.6
 *   0xF7..0xF9  press               20-bit: msb, lsb, xlsb[7:4]                          §5.4.7
 *   0xFA..0xFC  temp                20-bit, same layout                                  §5.4.8
 *   0xFD..0xFE  hum                 16-bit big-endian                                    §5.4.9
 *
 * Cycle (forced mode, §3.3.3), one non-blocking step per poll():
 *   init   read id, put the chip to sleep with the filter off, read the
 *          calibration (0x88..0xA1, 0xE1..0xE7);
 *   step 1 write ctrl_hum then ctrl_meas (forced): a measurement starts;
 *          come back after the maximum measurement time (§9.1, Appendix B:
 *          1.25 + 2.3*osrs_t + (2.3*osrs_p + 0.575) + (2.3*osrs_h + 0.575) ms,
 *          9.3 ms at x1);
 *   step 2 burst-read 0xF7..0xFE, compensate with the data sheet's integer
 *          formulas (§4.2.3: T int32, P int64, H int32), emit, and come back
 *          at the next interval.
 *
 * No soft reset (0xE0): forced mode overrides whatever mode the chip was
 * left in, and init() rewrites ctrl_meas and config; a reset would only add
 * a 2 ms start-up wait (§1 Table 1, t_startup) to every reopening.
 *
 * A BMP280 (id 0x58) is accepted: it has the same T/P registers and formulas
 * but no humidity, so it emits temperature and pressure only. Boards sold as
 * "BME280" often carry one; refusing it would leave the user with nothing,
 * and emitting no humidity says plainly what it is.
 *
 * Compensation is done in 64-bit arithmetic with overflow checks: with a
 * real chip's calibration the results equal the data sheet's 32-bit code;
 * with garbage (a wrong chip, a corrupted read) nothing overflows and the
 * result fails the range check instead. Values outside the sensor's
 * operating range (§1: -40..85 °C, 300..1100 hPa) by more than the
 * formulas' rounding at its corners are dropped as SG_FAIL_INSANE (see
 * BME280_P_SLACK_PA; within it they are clamped). Bus errors are returned as -errno, never counted here.
 *
 * Ownership: options (struct bme280_opts) belong to the config; state
 * (struct bme280_state, calibration and cycle) to the gateway.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/clock.h"
#include "bus_i2c.h"
#include "driver.h"
#include "drivers.h"

#define BME280_REG_CALIB_TP   0x88 /* §4.2.2: dig_T1 .. dig_P9, then 0xA0 reserved, 0xA1 dig_H1 */
#define BME280_CALIB_TP_LEN   26   /* 0x88..0xA1 */
#define BME280_REG_ID         0xD0 /* §5.4.1 */
#define BME280_REG_CALIB_H    0xE1 /* §4.2.2: dig_H2 .. dig_H6 */
#define BME280_CALIB_H_LEN    7    /* 0xE1..0xE7 */
#define BME280_REG_CTRL_HUM   0xF2 /* §5.4.3 */
#define BME280_REG_CTRL_MEAS  0xF4 /* §5.4.5 */
#define BME280_REG_CONFIG     0xF5 /* §5.4.6 */
#define BME280_REG_DATA       0xF7 /* §5.4.7..9: press, temp, hum */
#define BME280_DATA_LEN       8    /* 0xF7..0xFE */
#define BMP280_DATA_LEN       6    /* 0xF7..0xFC: no humidity */

#define BME280_CHIP_ID        0x60 /* §5.4.1 */
#define BMP280_CHIP_ID        0x58 /* §5.2 Table 17: mass production */
#define BMP280_CHIP_ID_S1     0x56 /* §5.2 Table 17: samples */
#define BMP280_CHIP_ID_S2     0x57

#define BME280_MODE_SLEEP     0x00 /* §5.4.5 mode[1:0] */
#define BME280_MODE_FORCED    0x01
#define BME280_ADC_SKIPPED_TP 0x80000 /* §5.4.7/8: reset value, measurement skipped */
#define BME280_ADC_SKIPPED_H  0x8000  /* §5.4.9 */

/* §9.1 (Appendix B) measurement time, in µs: 1.25 ms + 2.3 ms per sample, + 0.575 ms for P and H each. */
#define BME280_T_BASE_US      1250
#define BME280_T_SAMPLE_US    2300
#define BME280_T_PH_EXTRA_US  575

/* §1 Table 1: operating range. */
#define BME280_T_MIN_CENTI    (-4000)
#define BME280_T_MAX_CENTI    8500
#define BME280_P_MIN_PA       30000
#define BME280_P_MAX_PA       110000
/*
 * At the corners of that range the integer formulas land a hair outside it
 * (299.997 hPa where the sensor is at 300): such a value is clamped to the
 * range, as Bosch's BME280 SensorAPI (v3.5.1, compensate_temperature() and
 * compensate_pressure()) clamps. Bosch clamps any value; here only those
 * within this much of the range are, and the rest stay dropped as insane, so
 * that a broken sensor's 0 hPa is not published as 300.
 */
#define BME280_T_SLACK_CENTI  50   /* 0.5 °C */
#define BME280_P_SLACK_PA     100  /* 1 hPa */
/* |t_fine| beyond this is no temperature at all (t_fine ~ 5120 per °C): stop before P/H use it. */
#define BME280_T_FINE_LIMIT   (1 << 20)

struct bme280_opts {
	unsigned oversampling; /* 1, 2, 4, 8 or 16, for T, P and H alike */
};

struct bme280_calib {
	uint16_t t1;
	int16_t t2, t3;
	uint16_t p1;
	int16_t p2, p3, p4, p5, p6, p7, p8, p9;
	uint8_t h1, h3;
	int16_t h2, h4, h5;
	int8_t h6;
};

enum bme280_phase {
	BME280_PHASE_TRIGGER = 0,
	BME280_PHASE_READ,
};

struct bme280_state {
	bool humidity;           /* BME280 (true) or BMP280 (false) */
	uint8_t chip_id;
	struct bme280_calib cal;
	enum bme280_phase phase;
	uint64_t cycle_start_us; /* CLOCK_MONOTONIC at the trigger */
};

static const struct bme280_opts bme280_default_opts = {.oversampling = 1};

static const struct bme280_opts *bme280_opts(const struct sg_dev *dev)
{
	return dev->opts ? dev->opts : &bme280_default_opts;
}

/* osrs_x field value (§5.4.3, Table 20/23/24) for an oversampling of 1..16: 001..101. */
static uint8_t bme280_osrs(unsigned oversampling)
{
	uint8_t code = 1;

	while (oversampling > 1 && code < 5) {
		oversampling >>= 1;
		code++;
	}
	return code;
}

/* Maximum measurement time, §9.1 (Appendix B). */
static uint64_t bme280_measure_us(unsigned oversampling, bool humidity)
{
	uint64_t t = BME280_T_BASE_US + (uint64_t)BME280_T_SAMPLE_US * oversampling;  /* temperature */

	t += (uint64_t)BME280_T_SAMPLE_US * oversampling + BME280_T_PH_EXTRA_US;     /* pressure */
	if (humidity)
		t += (uint64_t)BME280_T_SAMPLE_US * oversampling + BME280_T_PH_EXTRA_US; /* humidity */
	return t;
}

/* ---- compensation, §4.2.3 -------------------------------------------------------------------- */

/* x >> n rounding toward minus infinity, as the data sheet's code assumes, for any sign. */
static int64_t bme280_asr(int64_t x, unsigned n)
{
	return x >= 0 ? x >> n : ~(~x >> n);
}

/* Checked a*b and a+b: false when the result does not fit (garbage calibration). */
static bool bme280_mul(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_mul_overflow(a, b, r);
}

static bool bme280_add(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_add_overflow(a, b, r);
}

/* BME280_compensate_T_int32: temperature in 0.01 °C; *t_fine for P and H. Cannot overflow in 64 bits. */
static int64_t bme280_comp_t(const struct bme280_calib *c, int32_t adc_t, int64_t *t_fine)
{
	int64_t d = (int64_t)(adc_t >> 4) - c->t1;
	int64_t var1 = bme280_asr(((int64_t)(adc_t >> 3) - (int64_t)c->t1 * 2) * c->t2, 11);
	int64_t var2 = bme280_asr(bme280_asr(d * d, 12) * c->t3, 14);

	*t_fine = var1 + var2;
	return bme280_asr(*t_fine * 5 + 128, 8);
}

/*
 * BME280_compensate_P_int64: pressure in Pa as Q24.8 (value / 256 = Pa).
 * Returns false on overflow or a zero divisor (the data sheet returns 0 there).
 */
static bool bme280_comp_p(const struct bme280_calib *c, int32_t adc_p, int64_t t_fine, int64_t *ret)
{
	int64_t var1, var2, p, a, b;

	var1 = t_fine - 128000;
	if (!bme280_mul(var1, var1, &a) || !bme280_mul(a, c->p6, &var2))
		return false;
	if (!bme280_mul(var1, c->p5, &a) || !bme280_mul(a, INT64_C(1) << 17, &a) || !bme280_add(var2, a, &var2))
		return false;
	if (!bme280_add(var2, (int64_t)c->p4 * (INT64_C(1) << 35), &var2))
		return false;
	if (!bme280_mul(var1, var1, &a) || !bme280_mul(a, c->p3, &a))
		return false;
	a = bme280_asr(a, 8);
	if (!bme280_mul(var1, c->p2, &b) || !bme280_mul(b, INT64_C(1) << 12, &b) || !bme280_add(a, b, &var1))
		return false;
	if (!bme280_add(INT64_C(1) << 47, var1, &a) || !bme280_mul(a, c->p1, &a))
		return false;
	var1 = bme280_asr(a, 33);
	if (var1 == 0)
		return false;
	p = 1048576 - (int64_t)adc_p;
	if (!bme280_mul(p, INT64_C(1) << 31, &a) || !bme280_add(a, -var2, &a) || !bme280_mul(a, 3125, &a))
		return false;
	p = a / var1;
	a = bme280_asr(p, 13);
	if (!bme280_mul(c->p9, a, &b) || !bme280_mul(b, a, &b))
		return false;
	var1 = bme280_asr(b, 25);
	if (!bme280_mul(c->p8, p, &b))
		return false;
	var2 = bme280_asr(b, 19);
	if (!bme280_add(p, var1, &a) || !bme280_add(a, var2, &a))
		return false;
	*ret = bme280_asr(a, 8) + (int64_t)c->p7 * 16;
	return true;
}

/* BME280_compensate_H_int32: relative humidity in %RH as Q22.10 (value / 1024 = %), clamped 0..100. */
static bool bme280_comp_h(const struct bme280_calib *c, int32_t adc_h, int64_t t_fine, int64_t *ret)
{
	int64_t v = t_fine - 76800, x, y, z;

	/* x = ((adc_H << 14) - (dig_H4 << 20) - dig_H5 * v + 16384) >> 15 */
	if (!bme280_mul(c->h5, v, &z))
		return false;
	x = ((int64_t)adc_h << 14) - (int64_t)c->h4 * (INT64_C(1) << 20);
	if (!bme280_add(x, -z, &x))
		return false;
	x = bme280_asr(x + 16384, 15);
	/* y = ((((v * H6 >> 10) * ((v * H3 >> 11) + 32768)) >> 10) + 2097152) * H2 + 8192) >> 14 */
	if (!bme280_mul(v, c->h6, &y) || !bme280_mul(v, c->h3, &z))
		return false;
	if (!bme280_mul(bme280_asr(y, 10), bme280_asr(z, 11) + 32768, &y))
		return false;
	if (!bme280_mul(bme280_asr(y, 10) + 2097152, c->h2, &y))
		return false;
	y = bme280_asr(y + 8192, 14);
	if (!bme280_mul(x, y, &v))
		return false;
	/* v -= (((v >> 15) * (v >> 15)) >> 7) * H1 >> 4 */
	z = bme280_asr(v, 15);
	if (!bme280_mul(z, z, &z) || !bme280_mul(bme280_asr(z, 7), c->h1, &z))
		return false;
	if (!bme280_add(v, -bme280_asr(z, 4), &v))
		return false;
	if (v < 0)
		v = 0;
	if (v > 419430400) /* 100 %RH in Q22.10 << 12 */
		v = 419430400;
	*ret = v >> 12;
	return true;
}

/* ---- calibration ------------------------------------------------------------------------------ */

static uint16_t bme280_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* A signed 12-bit value from a sign-carrying high byte and a 4-bit low nibble. */
static int16_t bme280_s12(uint8_t hi, uint8_t lo_nibble)
{
	return (int16_t)((int8_t)hi * 16 + (lo_nibble & 0x0f));
}

static void bme280_parse_calib(struct bme280_calib *c, const uint8_t tp[BME280_CALIB_TP_LEN],
                               const uint8_t h[BME280_CALIB_H_LEN], bool humidity)
{
	c->t1 = bme280_le16(tp + 0);
	c->t2 = (int16_t)bme280_le16(tp + 2);
	c->t3 = (int16_t)bme280_le16(tp + 4);
	c->p1 = bme280_le16(tp + 6);
	c->p2 = (int16_t)bme280_le16(tp + 8);
	c->p3 = (int16_t)bme280_le16(tp + 10);
	c->p4 = (int16_t)bme280_le16(tp + 12);
	c->p5 = (int16_t)bme280_le16(tp + 14);
	c->p6 = (int16_t)bme280_le16(tp + 16);
	c->p7 = (int16_t)bme280_le16(tp + 18);
	c->p8 = (int16_t)bme280_le16(tp + 20);
	c->p9 = (int16_t)bme280_le16(tp + 22);
	if (!humidity)
		return;
	c->h1 = tp[25];                                   /* 0xA1 */
	c->h2 = (int16_t)bme280_le16(h + 0);              /* 0xE1, 0xE2 */
	c->h3 = h[2];                                     /* 0xE3 */
	c->h4 = bme280_s12(h[3], h[4]);                   /* 0xE4, 0xE5[3:0] */
	c->h5 = bme280_s12(h[5], (uint8_t)(h[4] >> 4));   /* 0xE6, 0xE5[7:4] */
	c->h6 = (int8_t)h[6];                             /* 0xE7 */
}

/* ---- driver ----------------------------------------------------------------------------------- */

static int bme280_init(struct sg_dev *dev)
{
	struct bme280_state *st = dev->state;
	uint8_t id, tp[BME280_CALIB_TP_LEN], h[BME280_CALIB_H_LEN];
	char detail[96];
	int r;

	if (!st)
		return -EINVAL;
	r = i2c_read_reg(dev->i2c, BME280_REG_ID, &id, 1);
	if (r < 0)
		return r;
	if (id != BME280_CHIP_ID && id != BMP280_CHIP_ID && id != BMP280_CHIP_ID_S1 && id != BMP280_CHIP_ID_S2) {
		snprintf(detail, sizeof(detail), "chip id 0x%02x at 0x%02x, expected 0x60 (BME280) or 0x58 (BMP280)",
		         id, BME280_REG_ID);
		sg_dev_fail(dev, SG_FAIL_NODEV, detail);
		return -ENODEV;
	}
	st->chip_id = id;
	st->humidity = id == BME280_CHIP_ID;

	/* sleep first: config writes may be ignored in normal mode (§5.4.6) */
	if ((r = i2c_write_reg8(dev->i2c, BME280_REG_CTRL_MEAS, BME280_MODE_SLEEP)) < 0 ||
	    (r = i2c_write_reg8(dev->i2c, BME280_REG_CONFIG, 0)) < 0)
		return r;
	r = i2c_read_reg(dev->i2c, BME280_REG_CALIB_TP, tp, sizeof(tp));
	if (r < 0)
		return r;
	if (st->humidity) {
		r = i2c_read_reg(dev->i2c, BME280_REG_CALIB_H, h, sizeof(h));
		if (r < 0)
			return r;
	}
	bme280_parse_calib(&st->cal, tp, h, st->humidity);
	/* a calibrated part never has dig_T1 or dig_P1 = 0 (P1 scales the divisor of §4.2.3) */
	if (st->cal.t1 == 0 || st->cal.p1 == 0) {
		sg_dev_fail(dev, SG_FAIL_NODEV, "calibration data is blank");
		return -ENODEV;
	}
	st->phase = BME280_PHASE_TRIGGER;
	return 0;
}

/* Start a forced-mode measurement. */
static int bme280_trigger(struct sg_dev *dev, struct bme280_state *st, uint64_t *ret_delay_us)
{
	unsigned os = bme280_opts(dev)->oversampling;
	uint8_t osrs = bme280_osrs(os);
	int r;

	if (st->humidity) {
		r = i2c_write_reg8(dev->i2c, BME280_REG_CTRL_HUM, osrs);
		if (r < 0)
			return r;
	}
	/* after ctrl_hum: it only takes effect with this write (§5.4.3) */
	r = i2c_write_reg8(dev->i2c, BME280_REG_CTRL_MEAS, (uint8_t)(osrs << 5 | osrs << 2 | BME280_MODE_FORCED));
	if (r < 0)
		return r;
	st->cycle_start_us = now_mono_us();
	st->phase = BME280_PHASE_READ;
	*ret_delay_us = bme280_measure_us(os, st->humidity);
	return 0;
}

/* Read the result, compensate, emit. Failures of the data itself are counted, not returned. */
static int bme280_read(struct sg_dev *dev, struct bme280_state *st)
{
	uint8_t d[BME280_DATA_LEN];
	int32_t adc_p, adc_t, adc_h = 0;
	int64_t t_fine, t, p, h;
	int r;

	r = i2c_read_reg(dev->i2c, BME280_REG_DATA, d, st->humidity ? BME280_DATA_LEN : BMP280_DATA_LEN);
	if (r < 0)
		return r;
	adc_p = (int32_t)((uint32_t)d[0] << 12 | (uint32_t)d[1] << 4 | d[2] >> 4);
	adc_t = (int32_t)((uint32_t)d[3] << 12 | (uint32_t)d[4] << 4 | d[5] >> 4);
	if (st->humidity)
		adc_h = (int32_t)((uint32_t)d[6] << 8 | d[7]);
	if (adc_t == BME280_ADC_SKIPPED_TP || adc_p == BME280_ADC_SKIPPED_TP ||
	    (st->humidity && adc_h == BME280_ADC_SKIPPED_H)) {
		sg_dev_fail(dev, SG_FAIL_INSANE, "no measurement (data registers hold their reset value)");
		return 0;
	}

	t = bme280_comp_t(&st->cal, adc_t, &t_fine);
	if (t < BME280_T_MIN_CENTI - BME280_T_SLACK_CENTI || t > BME280_T_MAX_CENTI + BME280_T_SLACK_CENTI ||
	    t_fine > BME280_T_FINE_LIMIT || t_fine < -BME280_T_FINE_LIMIT) {
		sg_dev_fail(dev, SG_FAIL_INSANE, "temperature out of range");
		return 0;
	}
	t = t < BME280_T_MIN_CENTI ? BME280_T_MIN_CENTI : t > BME280_T_MAX_CENTI ? BME280_T_MAX_CENTI : t;
	sg_dev_emit_number(dev, "temperature", (double)t / 100.0, "°C");

	if (!bme280_comp_p(&st->cal, adc_p, t_fine, &p) || p < (int64_t)(BME280_P_MIN_PA - BME280_P_SLACK_PA) * 256 ||
	    p > (int64_t)(BME280_P_MAX_PA + BME280_P_SLACK_PA) * 256) {
		sg_dev_fail(dev, SG_FAIL_INSANE, "pressure out of range");
	} else {
		if (p < (int64_t)BME280_P_MIN_PA * 256)
			p = (int64_t)BME280_P_MIN_PA * 256;
		else if (p > (int64_t)BME280_P_MAX_PA * 256)
			p = (int64_t)BME280_P_MAX_PA * 256;
		sg_dev_emit_number(dev, "pressure", (double)p / 256.0 / 100.0, "hPa");
	}

	if (!st->humidity)
		return 0;
	if (!bme280_comp_h(&st->cal, adc_h, t_fine, &h))
		sg_dev_fail(dev, SG_FAIL_INSANE, "humidity out of range");
	else
		sg_dev_emit_number(dev, "humidity", (double)h / 1024.0, "%");
	return 0;
}

static int bme280_poll(struct sg_dev *dev, uint64_t *ret_delay_us)
{
	struct bme280_state *st = dev->state;
	uint64_t interval_us, elapsed;
	int r;

	if (!st)
		return -EINVAL;
	if (st->phase == BME280_PHASE_TRIGGER)
		return bme280_trigger(dev, st, ret_delay_us);

	r = bme280_read(dev, st);
	if (r < 0)
		return r;
	st->phase = BME280_PHASE_TRIGGER;
	interval_us = dev->interval_s > 0 ? (uint64_t)(dev->interval_s * 1e6) : 0;
	elapsed = now_mono_us() - st->cycle_start_us;
	*ret_delay_us = interval_us > elapsed ? interval_us - elapsed : 0;
	return 0;
}

/* `oversampling = 1 | 2 | 4 | 8 | 16;` (default 1) for temperature, pressure and humidity. */
static int bme280_parse_options(const config_setting_t *device, void **ret_opts, struct sg_opt_error *err)
{
	const config_setting_t *s = device ? config_setting_get_member(device, "oversampling") : NULL;
	struct bme280_opts *o;
	long long v = 1;

	if (!ret_opts)
		return -EINVAL;
	if (s) {
		if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
			return sg_opt_fail(err, s, "oversampling must be 1, 2, 4, 8 or 16");
		v = config_setting_get_int64(s);
		if (v != 1 && v != 2 && v != 4 && v != 8 && v != 16)
			return sg_opt_fail(err, s, "oversampling must be 1, 2, 4, 8 or 16");
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->oversampling = (unsigned)v;
	*ret_opts = o;
	return 0;
}

static void bme280_free_options(void *opts)
{
	free(opts);
}

static const char *const bme280_option_keys[] = {"oversampling", NULL};

static const struct sg_field_info bme280_fields[] = {
	{.name = "temperature", .unit = "°C", .device_class = "temperature", .state_class = "measurement"},
	{.name = "pressure", .unit = "hPa", .device_class = "pressure", .state_class = "measurement"},
	{.name = "humidity", .unit = "%", .device_class = "humidity", .state_class = "measurement"},
	{.name = NULL},
};

const struct sg_driver sg_driver_bme280 = {
	.name = "bme280",
	.description = "Bosch BME280 temperature/pressure/humidity (BMP280: no humidity), I2C 0x76/0x77",
	.bus = SG_BUS_I2C,
	.default_baud = 0,
	.default_interval_s = 10.0,
	.fields = bme280_fields,
	.option_keys = bme280_option_keys,
	.parse_options = bme280_parse_options,
	.free_options = bme280_free_options,
	.state_size = sizeof(struct bme280_state),
	.init = bme280_init,
	.fini = NULL,
	.feed = NULL,
	.reset = NULL,
	.poll = bme280_poll,
};
