/* SPDX-License-Identifier: MIT */
/*
 * pms5003.c — the `pms5003` driver: Plantower PMS5003 (and PMS7003/PMSA003) particle sensors.
 *
 * The sensor sends, unasked, one 32-byte frame per second or so (datasheet "Appendix I:
 * PMS5003 transport protocol - Active Mode"), 9600 8N1, all words big-endian:
 *
 *   byte  0    1    2-3     4-5  6-7  8-9  10-11 12-13 14-15 16-17 18-19 20-21 22-23 24-25 26-27 28-29 30-31
 *        0x42 0x4D  length  d1   d2   d3   d4    d5    d6    d7    d8    d9    d10   d11   d12   d13   check
 *                   = 28
 *   d1..d3   PM1.0, PM2.5, PM10 µg/m³, CF=1 (standard particle, "factory environment")
 *   d4..d6   PM1.0, PM2.5, PM10 µg/m³, atmospheric environment      <- pm1_0, pm2_5, pm10
 *   d7..d12  particles per 0.1 L of air with diameter beyond 0.3, 0.5, 1.0, 2.5, 5.0, 10 µm
 *   d13      reserved (version and error code on some firmware)
 *   length   2 × 13 data words + 2 check bytes = 28
 *   check    sum of bytes 0..29 (start bytes included), low 16 bits
 *
 * Readings: pm1_0, pm2_5, pm10 (atmospheric, µg/m³) always; with `cf1 = true;` also
 * pm1_0_cf1, pm2_5_cf1, pm10_cf1; with `counts = true;` also particles_0_3um ...
 * particles_10um (per 0.1 L). Sanity: the mass concentrations are cumulative by size
 * (PM1.0 <= PM2.5 <= PM10) and so are the counts (beyond 0.3 µm >= beyond 0.5 µm ...);
 * a frame that breaks either order is SG_FAIL_INSANE.
 *
 * Framing: bytes are collected from a 0x42 0x4D header. Bytes that cannot start a frame
 * count once per gap as SG_FAIL_GARBAGE; a length other than 28 is SG_FAIL_SYNTAX, a
 * wrong check word SG_FAIL_CHECKSUM. After a bad frame the search for the next header
 * restarts at the byte after the rejected 0x42, so a real frame hidden behind noise that
 * looked like a header is still found.
 *
 * Ownership: options (struct pms_opts) allocated by parse_options(), owned by the config;
 * struct pms_state in dev->state, owned by the gateway. Nothing allocated per frame.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "frame.h"
#include "drivers.h"

#define PMS_FRAME 32          /* bytes per frame */
#define PMS_START1 0x42       /* 'B' */
#define PMS_START2 0x4d       /* 'M' */
#define PMS_LENGTH 28         /* frame length field: 13 data words + check word */
#define PMS_SUM_END 30        /* check covers bytes 0..29 */
#define PMS_WORDS 13

struct pms_opts {
	bool cf1;
	bool counts;
};

struct pms_state {
	struct frame_rx rx;
	uint8_t buf[PMS_FRAME];
};

static const struct pms_opts pms_default_opts = {.cf1 = false, .counts = false};

static const char *const pms_count_fields[6] = {
	"particles_0_3um", "particles_0_5um", "particles_1_0um", "particles_2_5um", "particles_5_0um", "particles_10um",
};

static unsigned pms_word(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static enum frame_verdict pms_check(const uint8_t *buf, size_t len, enum sg_fail *fail, const char **why)
{
	unsigned sum = 0;

	if ((len >= 1 && buf[0] != PMS_START1) || (len >= 2 && buf[1] != PMS_START2)) {
		*fail = SG_FAIL_GARBAGE;
		*why = "pms5003: bytes outside a frame";
		return FRAME_BAD;
	}
	if (len >= 4 && pms_word(buf + 2) != PMS_LENGTH) {
		*fail = SG_FAIL_SYNTAX;
		*why = "pms5003: frame length is not 28";
		return FRAME_BAD;
	}
	if (len < PMS_FRAME)
		return FRAME_MORE;
	for (size_t i = 0; i < PMS_SUM_END; i++)
		sum += buf[i];
	if ((sum & 0xffff) == pms_word(buf + PMS_SUM_END))
		return FRAME_OK;
	*fail = SG_FAIL_CHECKSUM;
	*why = "pms5003: check word mismatch";
	return FRAME_BAD;
}

/* A checked frame: sanity, then emit. */
static void pms_process(struct sg_dev *dev, const uint8_t *frame)
{
	const struct pms_opts *o = dev->opts ? dev->opts : &pms_default_opts;
	unsigned d[PMS_WORDS];

	for (int i = 0; i < PMS_WORDS; i++)
		d[i] = pms_word(frame + 4 + 2 * i);
	if (d[0] > d[1] || d[1] > d[2] || d[3] > d[4] || d[4] > d[5]) {
		sg_dev_fail(dev, SG_FAIL_INSANE, "pms5003: PM1.0 <= PM2.5 <= PM10 does not hold");
		return;
	}
	for (int i = 6; i < 11; i++) {
		if (d[i] < d[i + 1]) {
			sg_dev_fail(dev, SG_FAIL_INSANE, "pms5003: particle counts not decreasing with size");
			return;
		}
	}
	sg_dev_emit_number(dev, "pm1_0", d[3], "µg/m³");
	sg_dev_emit_number(dev, "pm2_5", d[4], "µg/m³");
	sg_dev_emit_number(dev, "pm10", d[5], "µg/m³");
	if (o->cf1) {
		sg_dev_emit_number(dev, "pm1_0_cf1", d[0], "µg/m³");
		sg_dev_emit_number(dev, "pm2_5_cf1", d[1], "µg/m³");
		sg_dev_emit_number(dev, "pm10_cf1", d[2], "µg/m³");
	}
	if (o->counts)
		for (int i = 0; i < 6; i++)
			sg_dev_emit_number(dev, pms_count_fields[i], d[6 + i], "1/0.1L");
	dev->stats.frames++;
}

static const struct frame_format pms_format = {
	.size = PMS_FRAME,
	.start = PMS_START1,
	.check = pms_check,
	.process = pms_process,
};

static void pms_feed(struct sg_dev *dev, const uint8_t *buf, size_t len)
{
	struct pms_state *st = dev->state;

	frame_feed(dev, &pms_format, &st->rx, st->buf, buf, len);
}

static void pms_reset(struct sg_dev *dev)
{
	struct pms_state *st = dev->state;

	frame_rx_reset(&st->rx);
}

static int pms_init(struct sg_dev *dev)
{
	pms_reset(dev);
	return 0;
}

/* ---- options ---------------------------------------------------------------------------------- */

/* cf1, counts (bools, default false). 0 with *ret_opts allocated, -EINVAL (*err filled), -ENOMEM. */
static int pms_parse_options(const config_setting_t *device, void **ret_opts, struct sg_opt_error *err)
{
	struct pms_opts tmp = pms_default_opts, *o;
	int r;

	if (!ret_opts)
		return -EINVAL;
	if ((r = sg_opt_bool(device, "cf1", &tmp.cf1, err)) < 0 ||
	    (r = sg_opt_bool(device, "counts", &tmp.counts, err)) < 0)
		return r;
	o = malloc(sizeof(*o));
	if (!o) {
		if (err) {
			err->line = 0;
			snprintf(err->msg, sizeof(err->msg), "out of memory");
		}
		return -ENOMEM;
	}
	*o = tmp;
	*ret_opts = o;
	return 0;
}

static void pms_free_options(void *opts)
{
	free(opts);
}

static const char *const pms_option_keys[] = {"cf1", "counts", NULL};

/* The CF=1 values need cf1 = true, the particle counts counts = true. */
static const char *pms_field_off(const void *opts, const char *field)
{
	const struct pms_opts *o = opts ? opts : &pms_default_opts;
	size_t n = strlen(field);

	if (n > 4 && strcmp(field + n - 4, "_cf1") == 0 && !o->cf1)
		return "cf1 = true";
	if (strncmp(field, "particles_", 10) == 0 && !o->counts)
		return "counts = true";
	return NULL;
}

#define PMS_PM(n) {.name = (n), .unit = "µg/m³", .device_class = NULL, .state_class = "measurement"}
#define PMS_COUNT(n) {.name = (n), .unit = "1/0.1L", .device_class = NULL, .state_class = "measurement"}

static const struct sg_field_info pms_fields[] = {
	{.name = "pm1_0", .unit = "µg/m³", .device_class = "pm1", .state_class = "measurement"},
	{.name = "pm2_5", .unit = "µg/m³", .device_class = "pm25", .state_class = "measurement"},
	{.name = "pm10", .unit = "µg/m³", .device_class = "pm10", .state_class = "measurement"},
	PMS_PM("pm1_0_cf1"),
	PMS_PM("pm2_5_cf1"),
	PMS_PM("pm10_cf1"),
	PMS_COUNT("particles_0_3um"),
	PMS_COUNT("particles_0_5um"),
	PMS_COUNT("particles_1_0um"),
	PMS_COUNT("particles_2_5um"),
	PMS_COUNT("particles_5_0um"),
	PMS_COUNT("particles_10um"),
	{.name = NULL, .unit = NULL, .device_class = NULL, .state_class = NULL},
};

const struct sg_driver sg_driver_pms5003 = {
	.name = "pms5003",
	.description = "Plantower PMS5003/7003 particulate matter sensor (32-byte active-mode frames)",
	.bus = SG_BUS_SERIAL,
	.default_baud = 9600, /* datasheet: 9600 8N1, fixed */
	.default_interval_s = 0,
	.fields = pms_fields,
	.option_keys = pms_option_keys,
	.field_off = pms_field_off,
	.parse_options = pms_parse_options,
	.free_options = pms_free_options,
	.state_size = sizeof(struct pms_state),
	.init = pms_init,
	.fini = NULL,
	.feed = pms_feed,
	.reset = pms_reset,
	.poll = NULL,
};
