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
 * Ownership: no options; struct sds_state in dev->state, owned by the gateway.
 * Nothing allocated per frame, nothing logged.
 */
#include <stdbool.h>
#include <stdint.h>
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

struct sds_state {
	size_t len;
	bool noise_counted;
	uint8_t buf[SDS_FRAME];
};

enum sds_check {
	SDS_NEED_MORE = 0,
	SDS_FRAME_OK,
	SDS_BAD_START,
	SDS_BAD_TAIL,
	SDS_BAD_SUM,
};

static enum sds_check sds_check(const struct sds_state *st)
{
	unsigned sum = 0;

	if (st->len >= 1 && st->buf[0] != SDS_HEAD)
		return SDS_BAD_START;
	if (st->len >= 2 && st->buf[1] != SDS_CMD_DATA && st->buf[1] != SDS_CMD_REPLY)
		return SDS_BAD_START;
	if (st->len < SDS_FRAME)
		return SDS_NEED_MORE;
	if (st->buf[SDS_FRAME - 1] != SDS_TAIL)
		return SDS_BAD_TAIL;
	for (int i = SDS_SUM_FIRST; i <= SDS_SUM_LAST; i++)
		sum += st->buf[i];
	return (sum & 0xff) == st->buf[8] ? SDS_FRAME_OK : SDS_BAD_SUM;
}

static void sds_process(struct sg_dev *dev, const struct sds_state *st)
{
	double pm25, pm10;

	if (st->buf[1] == SDS_CMD_REPLY)
		return;
	pm25 = ((unsigned)st->buf[3] << 8 | st->buf[2]) / 10.0;
	pm10 = ((unsigned)st->buf[5] << 8 | st->buf[4]) / 10.0;
	if (pm25 > SDS_MAX_UGM3 || pm10 > SDS_MAX_UGM3) {
		sg_dev_fail(dev, SG_FAIL_INSANE, "sds011: concentration above 999.9 µg/m³");
		return;
	}
	sg_dev_emit_number(dev, "pm2_5", pm25, "µg/m³");
	sg_dev_emit_number(dev, "pm10", pm10, "µg/m³");
	dev->stats.frames++;
}

static void sds_feed(struct sg_dev *dev, const uint8_t *buf, size_t len)
{
	struct sds_state *st = dev->state;

	for (size_t i = 0; i < len; i++) {
		st->buf[st->len++] = buf[i];
		for (;;) {
			enum sds_check c = sds_check(st);

			if (c == SDS_NEED_MORE)
				break;
			if (c == SDS_FRAME_OK) {
				sds_process(dev, st);
				st->len = 0;
				st->noise_counted = false;
				break;
			}
			if (c == SDS_BAD_START) {
				if (!st->noise_counted)
					sg_dev_fail(dev, SG_FAIL_GARBAGE, "sds011: bytes outside a frame");
			} else if (c == SDS_BAD_TAIL) {
				sg_dev_fail(dev, SG_FAIL_SYNTAX, "sds011: frame does not end in 0xAB");
			} else {
				sg_dev_fail(dev, SG_FAIL_CHECKSUM, "sds011: checksum mismatch");
			}
			st->noise_counted = true;
			st->len = frame_resync(st->buf, st->len, SDS_HEAD);
			if (st->len == 0)
				break;
		}
	}
}

static void sds_reset(struct sg_dev *dev)
{
	struct sds_state *st = dev->state;

	st->len = 0;
	st->noise_counted = false;
}

static int sds_init(struct sg_dev *dev)
{
	sds_reset(dev);
	return 0;
}

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
	.option_keys = NULL,
	.parse_options = NULL,
	.free_options = NULL,
	.state_size = sizeof(struct sds_state),
	.init = sds_init,
	.fini = NULL,
	.feed = sds_feed,
	.reset = sds_reset,
	.poll = NULL,
};
