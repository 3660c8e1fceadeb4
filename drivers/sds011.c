/* SPDX-License-Identifier: MIT */
/*
 * sds011.c — the `sds011` driver: Nova Fitness SDS011 (and SDS018/SDS021) PM sensors.
 *
 * In its factory-default active mode the sensor sends one 10-byte frame per second,
 * 9600 8N1 (SDS011 datasheet V1.3 "Serial communication protocol"; Laser Dust Sensor
 * Control Protocol V1.3 §1):
 *
 *   byte  0     1     2       3       4      5      6    7    8         9
 *        0xAA  0xC0  PM2.5L  PM2.5H  PM10L  PM10H  ID1  ID2  checksum  0xAB
 *        head  cmd   \____ little-endian, units of 0.1 µg/m³ ____/ device id
 *
 *   checksum  low 8 bits of the sum of bytes 2..7 (the six data bytes)
 *   PM2.5 = (PM2.5H × 256 + PM2.5L) / 10 µg/m³, PM10 likewise
 *   command 0xC5 frames are replies to set/query commands (Control Protocol §3): their
 *   checksum is verified, they carry no reading and are skipped.
 *
 * Readings: pm2_5, pm10 (µg/m³). The datasheet's measuring range is 0.0-999.9 µg/m³;
 * a larger value is SG_FAIL_INSANE.
 *
 * Framing: a frame starts at 0xAA followed by 0xC0 or 0xC5. Bytes that cannot start a
 * frame count once per gap as SG_FAIL_GARBAGE; a frame not ending in 0xAB is
 * SG_FAIL_SYNTAX; a wrong checksum SG_FAIL_CHECKSUM. After a rejected frame the search
 * restarts at the byte after its 0xAA.
 *
 * Query mode (`mode = "query";`, Control Protocol §2 "set data reporting mode" and §4 "query
 * data"): the sensor sends a frame only when asked, so it can share its line and the fan's
 * life is not spent on readings nobody wants. Each query is a transaction on the line
 * (line.h): first the driver sets the reporting mode (command 2, answered by an AA C5 02
 * frame), then every `interval` it sends "query data" (command 4) and takes the AA C0
 * frame that answers it. Commands are 19 bytes:
 *
 *   AA B4 cmd d1 .. d12 FF FF cs AB    (FF FF: any device id; cs: low byte of the sum of bytes 2..16)
 *   set query mode: cmd 02, d1 = 01 (set), d2 = 01 (query);   query data: cmd 04, d1 .. d12 = 0
 *
 * No answer within 1 s is SG_FAIL_TIMEOUT; the mode is set again after any failure. In
 * active mode the driver sets active mode once at the start (the sensor keeps its
 * reporting mode across power cycles, so one that was in query mode would stay silent).
 *
 * Ownership: options (the mode) are allocated by parse_options(), owned by the config;
 * struct sds_state in dev->state, owned by the gateway. Nothing allocated per frame,
 * nothing logged.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "frame.h"
#include "drivers.h"

#define SDS_FRAME 10
#define SDS_HEAD 0xaa
#define SDS_TAIL 0xab
#define SDS_CMD_DATA 0xc0     /* measurement report */
#define SDS_CMD_REPLY 0xc5    /* reply to a command */
#define SDS_SUM_FIRST 2       /* checksum covers bytes 2..7 */
#define SDS_SUM_LAST 7
#define SDS_MAX_UGM3 999.9    /* datasheet measuring range 0.0-999.9 µg/m³ */
#define SDS_CMD 0xb4          /* a command to the sensor (Control Protocol §1) */
#define SDS_CMD_LEN 19
#define SDS_SET_MODE 0x02     /* Control Protocol §2: set data reporting mode */
#define SDS_QUERY 0x04        /* Control Protocol §4: query data */
#define SDS_ANSWER_TIMEOUT_US 1000000ULL

struct sds_opts {
	bool query;               /* mode = "query" */
};

struct sds_state {
	struct frame_rx rx;
	uint8_t buf[SDS_FRAME];
	/* query mode */
	bool mode_set;            /* the sensor confirmed query mode */
	bool due;                 /* a query is due */
	uint8_t sent;             /* command of the request out */
};

static enum frame_verdict sds_check(const uint8_t *buf, size_t len, enum sg_fail *fail, const char **why)
{
	unsigned sum = 0;

	if ((len >= 1 && buf[0] != SDS_HEAD) || (len >= 2 && buf[1] != SDS_CMD_DATA && buf[1] != SDS_CMD_REPLY)) {
		*fail = SG_FAIL_GARBAGE;
		*why = "sds011: bytes outside a frame";
		return FRAME_BAD;
	}
	if (len < SDS_FRAME)
		return FRAME_MORE;
	if (buf[SDS_FRAME - 1] != SDS_TAIL) {
		*fail = SG_FAIL_SYNTAX;
		*why = "sds011: frame does not end in 0xAB";
		return FRAME_BAD;
	}
	for (int i = SDS_SUM_FIRST; i <= SDS_SUM_LAST; i++)
		sum += buf[i];
	if ((sum & 0xff) == buf[8])
		return FRAME_OK;
	*fail = SG_FAIL_CHECKSUM;
	*why = "sds011: checksum mismatch";
	return FRAME_BAD;
}

static void sds_process(struct sg_dev *dev, const uint8_t *f)
{
	double pm25, pm10;

	if (f[1] == SDS_CMD_REPLY)
		return;
	pm25 = ((unsigned)f[3] << 8 | f[2]) / 10.0;
	pm10 = ((unsigned)f[5] << 8 | f[4]) / 10.0;
	if (pm25 > SDS_MAX_UGM3 || pm10 > SDS_MAX_UGM3) {
		sg_dev_fail(dev, SG_FAIL_INSANE, "sds011: concentration above 999.9 µg/m³");
		return;
	}
	sg_dev_emit_number(dev, "pm2_5", pm25, "µg/m³");
	sg_dev_emit_number(dev, "pm10", pm10, "µg/m³");
	dev->stats.frames++;
}

static const struct frame_format sds_format = {
	.size = SDS_FRAME,
	.start = SDS_HEAD,
	.check = sds_check,
	.process = sds_process,
};

static void sds_feed(struct sg_dev *dev, const uint8_t *buf, size_t len)
{
	struct sds_state *st = dev->state;

	frame_feed(dev, &sds_format, &st->rx, st->buf, buf, len);
}

static void sds_reset(struct sg_dev *dev)
{
	struct sds_state *st = dev->state;

	frame_rx_reset(&st->rx);
}

static int sds_init(struct sg_dev *dev)
{
	sds_reset(dev);
	return 0;
}

/* ---- query mode ---------------------------------------------------------------------------------- */

static int sds_poll(struct sg_dev *dev, uint64_t *ret_delay_us)
{
	struct sds_state *st = dev->state;

	*ret_delay_us = (uint64_t)((dev->interval_s > 0 ? dev->interval_s : 10.0) * 1e6);
	st->due = true; /* in active mode only the mode is ever requested */
	return 0;
}

static int sds_request(struct sg_dev *dev, uint8_t *buf, size_t cap, uint64_t *ret_timeout_us)
{
	struct sds_state *st = dev->state;
	const struct sds_opts *o = dev->opts;
	bool query = o && o->query;
	unsigned sum = 0;

	if (st->mode_set && !st->due)
		return 0;
	if (cap < SDS_CMD_LEN)
		return -ENOSPC;
	memset(buf, 0, SDS_CMD_LEN);
	buf[0] = SDS_HEAD;
	buf[1] = SDS_CMD;
	if (!st->mode_set) {
		buf[2] = SDS_SET_MODE;
		buf[3] = 1;             /* set */
		buf[4] = query ? 1 : 0; /* query mode, or active mode */
		st->mode_set = !query;  /* active mode: one attempt; frames come either way */
	} else if (query) {
		buf[2] = SDS_QUERY;
		st->due = false;
	} else {
		return 0;
	}
	buf[15] = 0xff; /* any device id */
	buf[16] = 0xff;
	for (int i = 2; i <= 16; i++)
		sum += buf[i];
	buf[17] = (uint8_t)sum;
	buf[18] = SDS_TAIL;
	st->sent = buf[2];
	st->rx.noise_counted = false;
	*ret_timeout_us = SDS_ANSWER_TIMEOUT_US;
	return SDS_CMD_LEN;
}

/* A whole frame answers: a data frame (readings), or the reply to setting the mode. */
static ssize_t sds_answer(struct sg_dev *dev, const uint8_t *buf, size_t len)
{
	struct sds_state *st = dev->state;
	enum sg_fail fail = SG_FAIL_GARBAGE;
	const char *why = "";
	size_t skip = 1;

	switch (sds_check(buf, len < SDS_FRAME ? len : SDS_FRAME, &fail, &why)) {
	case FRAME_MORE:
		return 0;
	case FRAME_BAD:
		if (fail != SG_FAIL_GARBAGE) {
			sg_dev_fail(dev, fail, why);
			return SDS_FRAME;
		}
		while (skip < len && buf[skip] != SDS_HEAD)
			skip++;
		if (!st->rx.noise_counted)
			sg_dev_fail(dev, fail, why);
		st->rx.noise_counted = true;
		return -(ssize_t)skip;
	case FRAME_OK:
		break;
	}
	if (buf[1] == SDS_CMD_REPLY && buf[2] == SDS_SET_MODE)
		st->mode_set = true;
	sds_process(dev, buf);
	return SDS_FRAME;
}

static void sds_no_answer(struct sg_dev *dev)
{
	struct sds_state *st = dev->state;
	const struct sds_opts *o = dev->opts;

	if (!o || !o->query)
		return; /* active mode: frames come when they come */
	sg_dev_fail(dev, SG_FAIL_TIMEOUT, st->sent == SDS_SET_MODE ? "sds011: no answer to setting query mode"
	                                                          : "sds011: no answer to the query");
	st->mode_set = false;
}

static bool sds_streams(const void *opts)
{
	const struct sds_opts *o = opts;

	return !o || !o->query;
}

static size_t sds_line_plan(const void *opts, struct sg_line_request *reqs, size_t cap)
{
	const struct sds_opts *o = opts;

	if (!o || !o->query)
		return 0;
	if (cap > 0)
		reqs[0] = (struct sg_line_request){.tx_bytes = SDS_CMD_LEN, .rx_bytes = SDS_FRAME,
		                                   .timeout_s = SDS_ANSWER_TIMEOUT_US / 1e6, .what = "query data (B4 04)"};
	return 1;
}

/* mode = "active" (default) or "query". */
static int sds_parse_options(const config_setting_t *device, void **ret_opts, struct sg_opt_error *err)
{
	static const char *const mode_names[] = {"active", "query", NULL};
	struct sds_opts *o;
	int mode = 0, r;

	if ((r = sg_opt_enum(device, "mode", mode_names, &mode, err)) < 0)
		return r;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->query = mode == 1;
	*ret_opts = o;
	return 0;
}

static void sds_free_options(void *opts)
{
	free(opts);
}

static const char *const sds_option_keys[] = {"mode", NULL};

static const struct sg_field_info sds_fields[] = {
	{.name = "pm2_5", .unit = "µg/m³", .device_class = "pm25", .state_class = "measurement"},
	{.name = "pm10", .unit = "µg/m³", .device_class = "pm10", .state_class = "measurement"},
	{.name = NULL, .unit = NULL, .device_class = NULL, .state_class = NULL},
};

const struct sg_driver sg_driver_sds011 = {
	.name = "sds011",
	.description = "Nova Fitness SDS011 particulate matter sensor (10-byte active-mode frames)",
	.bus = SG_BUS_SERIAL,
	.default_baud = 9600, /* datasheet: 9600 8N1 */
	.default_interval_s = 0,
	.fields = sds_fields,
	.option_keys = sds_option_keys,
	.parse_options = sds_parse_options,
	.free_options = sds_free_options,
	.state_size = sizeof(struct sds_state),
	.init = sds_init,
	.fini = NULL,
	.feed = sds_feed,
	.reset = sds_reset,
	.poll = sds_poll,
	.request = sds_request,
	.answer = sds_answer,
	.no_answer = sds_no_answer,
	.streams = sds_streams,
	.line_plan = sds_line_plan,
};
