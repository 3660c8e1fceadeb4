/* SPDX-License-Identifier: MIT */
/*
 * ads1115.c — the `ads1115` driver: TI ADS1115 16-bit ADC over I2C.
 *
 * Source: TI "ADS111x" data sheet SBAS444 (rev. D). Register map used
 * (§9.6; 16-bit registers, big-endian, selected by the pointer byte):
 *
 *   0x00  conversion  signed 16-bit result                              §9.6.2
 *   0x01  config      OS[15] MUX[14:12] PGA[11:9] MODE[8] DR[7:5]
 *                     COMP_MODE[4] COMP_POL[3] COMP_LAT[2] COMP_QUE[1:0] §9.6.3 Table 8
 *
 *     OS    write 1: start a single conversion; read 1: no conversion running
 *     MUX   000 AIN0-AIN1  001 AIN0-AIN3  010 AIN1-AIN3  011 AIN2-AIN3
 *           100 AIN0-GND   101 AIN1-GND   110 AIN2-GND   111 AIN3-GND
 *     PGA   full scale ±6.144 ±4.096 ±2.048 ±1.024 ±0.512 ±0.256 V (000..101)
 *     MODE  1: single-shot, power down after the conversion
 *     DR    100: 128 samples/s
 *     COMP_QUE 11: comparator off
 *
 * Options, one entry per channel (default: a0..a3 single-ended, ±4.096 V):
 *
 *   channels = ( { name = "a0"; mux = "0"; gain = 4.096; },
 *                { name = "bridge"; mux = "0-1"; gain = 0.256; } );
 *
 *   name  the reading's field, [A-Za-z0-9_-]{1,32}, unique
 *   mux   "0" "1" "2" "3" (against GND) or "0-1" "0-3" "1-3" "2-3"
 *   gain  the full-scale range in volts: 6.144 4.096 2.048 1.024 0.512 0.256
 *         (default 4.096). The input must never exceed VDD + 0.3 V whatever
 *         the range says (§7.1).
 *
 * Cycle, one channel per poll() step in turn: write config (OS=1, the
 * channel's MUX and PGA, single-shot, 128 SPS) and come back after one
 * conversion (1/128 s, +10 % for the oscillator's tolerance, §7.5, and
 * 0.5 ms of margin); then read config: while OS still reads 0 (converting)
 * come back 1 ms later, at most 10 times (then SG_FAIL_TIMEOUT and the
 * channel is skipped); read the conversion register, emit
 * volts = raw * FSR / 32768, and start the next channel in the same step.
 * After the last channel, wait for the rest of the interval.
 *
 * Readings are named by the user, so the driver declares no fixed fields
 * (sg_driver.fields = NULL); each is a voltage in V.
 *
 * Ownership: options (struct ads1115_opts) belong to the config; state
 * (struct ads1115_state) to the gateway.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
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

#define ADS1115_REG_CONVERSION 0x00 /* §9.6.2 */
#define ADS1115_REG_CONFIG     0x01 /* §9.6.3 */
#define ADS1115_OS             0x8000 /* §9.6.3: start / not busy */
#define ADS1115_MUX_SHIFT      12
#define ADS1115_PGA_SHIFT      9
#define ADS1115_MODE_SINGLE    0x0100
#define ADS1115_DR_128         (0x4 << 5)
#define ADS1115_COMP_QUE_OFF   0x0003
#define ADS1115_SPS            128
/* one conversion at 128 SPS + 10 % (§7.5 data rate variation) + 0.5 ms */
#define ADS1115_CONVERT_US     (1000000 / ADS1115_SPS * 11 / 10 + 500)
#define ADS1115_RETRY_US       1000
#define ADS1115_RETRIES        10
#define ADS1115_FULL_SCALE     32768.0
#define ADS1115_MAX_CHANNELS   8
#define ADS1115_NAME_MAX       32

struct ads1115_channel {
	char name[ADS1115_NAME_MAX + 1];
	uint8_t mux;  /* MUX field, 0..7 */
	uint8_t pga;  /* PGA field, 0..5 */
	double fsr;   /* volts at full scale */
};

struct ads1115_opts {
	size_t n;
	struct ads1115_channel ch[ADS1115_MAX_CHANNELS];
};

enum ads1115_phase {
	ADS1115_PHASE_START = 0, /* begin a cycle with channel 0 */
	ADS1115_PHASE_READ,      /* a conversion of channel `cur` is running */
};

struct ads1115_state {
	enum ads1115_phase phase;
	size_t cur;
	unsigned retries;
	uint64_t cycle_start_us;
};

/* §9.6.3 Table 8: PGA field values and their full-scale ranges. */
static const double ads1115_fsr[] = {6.144, 4.096, 2.048, 1.024, 0.512, 0.256};

static const struct {
	const char *text;
	uint8_t mux;
} ads1115_muxes[] = {
	{"0-1", 0}, {"0-3", 1}, {"1-3", 2}, {"2-3", 3}, {"0", 4}, {"1", 5}, {"2", 6}, {"3", 7},
};

static const struct ads1115_opts ads1115_default_opts = {
	.n = 4,
	.ch = {
		{.name = "a0", .mux = 4, .pga = 1, .fsr = 4.096},
		{.name = "a1", .mux = 5, .pga = 1, .fsr = 4.096},
		{.name = "a2", .mux = 6, .pga = 1, .fsr = 4.096},
		{.name = "a3", .mux = 7, .pga = 1, .fsr = 4.096},
	},
};

static const struct ads1115_opts *ads1115_opts(const struct sg_dev *dev)
{
	return dev->opts ? dev->opts : &ads1115_default_opts;
}

static int ads1115_init(struct sg_dev *dev)
{
	struct ads1115_state *st = dev->state;

	if (!st)
		return -EINVAL;
	st->phase = ADS1115_PHASE_START;
	st->cur = 0;
	return 0;
}

/* Start a single-shot conversion of channel CH. */
static int ads1115_start(struct sg_dev *dev, struct ads1115_state *st, size_t ch, uint64_t *ret_delay_us)
{
	const struct ads1115_channel *c = &ads1115_opts(dev)->ch[ch];
	uint16_t cfg = (uint16_t)(ADS1115_OS | c->mux << ADS1115_MUX_SHIFT | c->pga << ADS1115_PGA_SHIFT |
	                          ADS1115_MODE_SINGLE | ADS1115_DR_128 | ADS1115_COMP_QUE_OFF);
	uint8_t b[2] = {(uint8_t)(cfg >> 8), (uint8_t)cfg};
	int r;

	r = i2c_write_reg(dev->i2c, ADS1115_REG_CONFIG, b, sizeof(b));
	if (r < 0)
		return r;
	st->cur = ch;
	st->retries = 0;
	st->phase = ADS1115_PHASE_READ;
	*ret_delay_us = ADS1115_CONVERT_US;
	return 0;
}

static int ads1115_poll(struct sg_dev *dev, uint64_t *ret_delay_us)
{
	struct ads1115_state *st = dev->state;
	const struct ads1115_opts *o = ads1115_opts(dev);
	const struct ads1115_channel *c;
	uint8_t b[2];
	uint64_t interval_us, elapsed;
	int r;

	if (!st)
		return -EINVAL;
	if (st->phase == ADS1115_PHASE_START || st->cur >= o->n) {
		st->cycle_start_us = now_mono_us();
		return ads1115_start(dev, st, 0, ret_delay_us);
	}

	c = &o->ch[st->cur];
	r = i2c_read_reg(dev->i2c, ADS1115_REG_CONFIG, b, sizeof(b));
	if (r < 0)
		return r;
	if (!(b[0] & ADS1115_OS >> 8)) {
		if (++st->retries <= ADS1115_RETRIES) {
			*ret_delay_us = ADS1115_RETRY_US;
			return 0;
		}
		sg_dev_fail(dev, SG_FAIL_TIMEOUT, c->name);
	} else {
		r = i2c_read_reg(dev->i2c, ADS1115_REG_CONVERSION, b, sizeof(b));
		if (r < 0)
			return r;
		sg_dev_emit_number(dev, c->name, (double)(int16_t)(b[0] << 8 | b[1]) * c->fsr / ADS1115_FULL_SCALE, "V");
	}

	if (st->cur + 1 < o->n)
		return ads1115_start(dev, st, st->cur + 1, ret_delay_us);
	st->phase = ADS1115_PHASE_START;
	interval_us = dev->interval_s > 0 ? (uint64_t)(dev->interval_s * 1e6) : 0;
	elapsed = now_mono_us() - st->cycle_start_us;
	*ret_delay_us = interval_us > elapsed ? interval_us - elapsed : 0;
	return 0;
}

/* ---- options ---------------------------------------------------------------------------------- */

static int ads1115_parse_channel(const config_setting_t *g, struct ads1115_opts *o, struct sg_opt_error *err)
{
	struct ads1115_channel *c = &o->ch[o->n];
	const config_setting_t *name = config_setting_get_member(g, "name");
	const config_setting_t *mux = config_setting_get_member(g, "mux");
	const config_setting_t *gain = config_setting_get_member(g, "gain");
	const char *s;
	size_t i;

	if (!config_setting_is_group(g))
		return sg_opt_fail(err, g, "channels entries must be groups: { name = \"a0\"; mux = \"0\"; }");
	for (int k = 0; k < config_setting_length(g); k++) {
		const char *key = config_setting_name(config_setting_get_elem(g, (unsigned)k));
		if (strcmp(key, "name") && strcmp(key, "mux") && strcmp(key, "gain"))
			return sg_opt_fail(err, config_setting_get_elem(g, (unsigned)k),
			                        "unknown channel setting \"%.32s\" (name, mux, gain)", key);
	}
	if (!name || config_setting_type(name) != CONFIG_TYPE_STRING)
		return sg_opt_fail(err, name ? name : g, "channel needs name = \"...\"");
	s = config_setting_get_string(name);
	if (!sg_name_valid(s, ADS1115_NAME_MAX))
		return sg_opt_fail(err, name, "invalid channel name \"%.40s\" (1-32 letters, digits, '_', '-')", s);
	for (i = 0; i < o->n; i++)
		if (strcmp(o->ch[i].name, s) == 0)
			return sg_opt_fail(err, name, "channel name \"%s\" appears twice", s);
	snprintf(c->name, sizeof(c->name), "%s", s);

	if (!mux || config_setting_type(mux) != CONFIG_TYPE_STRING)
		return sg_opt_fail(err, mux ? mux : g, "channel \"%s\" needs mux = \"0\" .. \"3\", \"0-1\", "
		                        "\"0-3\", \"1-3\" or \"2-3\"", c->name);
	s = config_setting_get_string(mux);
	for (i = 0; i < sizeof(ads1115_muxes) / sizeof(ads1115_muxes[0]); i++)
		if (strcmp(ads1115_muxes[i].text, s) == 0)
			break;
	if (i == sizeof(ads1115_muxes) / sizeof(ads1115_muxes[0]))
		return sg_opt_fail(err, mux, "unknown mux \"%.16s\" (\"0\" .. \"3\", \"0-1\", \"0-3\", \"1-3\", "
		                        "\"2-3\")", s);
	c->mux = ads1115_muxes[i].mux;

	c->pga = 1;
	c->fsr = ads1115_fsr[1];
	if (gain) {
		double v;
		int r = sg_opt_number(gain, "gain", &v, err);

		if (r < 0)
			return r;
		for (i = 0; i < sizeof(ads1115_fsr) / sizeof(ads1115_fsr[0]); i++)
			if (fabs(v - ads1115_fsr[i]) < 1e-9)
				break;
		if (i == sizeof(ads1115_fsr) / sizeof(ads1115_fsr[0]))
			return sg_opt_fail(err, gain, "gain (full-scale volts) must be 6.144, 4.096, 2.048, 1.024, "
			                        "0.512 or 0.256");
		c->pga = (uint8_t)i;
		c->fsr = ads1115_fsr[i];
	}
	o->n++;
	return 0;
}

static int ads1115_parse_options(const config_setting_t *device, void **ret_opts, struct sg_opt_error *err)
{
	const config_setting_t *list = device ? config_setting_get_member(device, "channels") : NULL;
	struct ads1115_opts *o;
	int n, r;

	if (!ret_opts)
		return -EINVAL;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	if (!list) {
		*o = ads1115_default_opts;
		*ret_opts = o;
		return 0;
	}
	if (!config_setting_is_list(list)) {
		r = sg_opt_fail(err, list, "channels must be a list: ( { name = \"a0\"; mux = \"0\"; }, ... )");
		goto err_free;
	}
	n = config_setting_length(list);
	if (n < 1 || n > ADS1115_MAX_CHANNELS) {
		r = sg_opt_fail(err, list, "channels: between 1 and %d entries", ADS1115_MAX_CHANNELS);
		goto err_free;
	}
	for (int i = 0; i < n; i++) {
		r = ads1115_parse_channel(config_setting_get_elem(list, (unsigned)i), o, err);
		if (r < 0)
			goto err_free;
	}
	*ret_opts = o;
	return 0;

err_free:
	free(o);
	return r;
}

static void ads1115_free_options(void *opts)
{
	free(opts);
}

static const char *const ads1115_option_keys[] = {"channels", NULL};

/* Channel I: a voltage, in volts (what ads1115_poll() emits), for --check, the config and discovery. */
static bool ads1115_option_field(const void *opts, size_t i, char *name, size_t len, struct sg_field_info *ret)
{
	const struct ads1115_opts *o = opts;

	if (!o || i >= o->n)
		return false;
	snprintf(name, len, "%s", o->ch[i].name);
	*ret = (struct sg_field_info){.name = name, .unit = "V", .device_class = "voltage", .state_class = "measurement"};
	return true;
}

const struct sg_driver sg_driver_ads1115 = {
	.name = "ads1115",
	.description = "TI ADS1115 16-bit ADC, up to 8 channel settings (volts), I2C 0x48..0x4b",
	.bus = SG_BUS_I2C,
	.default_baud = 0,
	.default_interval_s = 10.0,
	.fields = NULL, /* channel names come from the options */
	.option_keys = ads1115_option_keys,
	.parse_options = ads1115_parse_options,
	.free_options = ads1115_free_options,
	.state_size = sizeof(struct ads1115_state),
	.init = ads1115_init,
	.fini = NULL,
	.feed = NULL,
	.reset = NULL,
	.poll = ads1115_poll,
	.option_field = ads1115_option_field,
};
