/* SPDX-License-Identifier: MIT */
/*
 * mhz19.c — the `mhz19` driver: Winsen MH-Z19B (and MH-Z19C/MH-Z19) NDIR CO2 sensors.
 *
 * Request/response on the UART, 9600 8N1 (MH-Z19B user manual V1.0 "Communication
 * protocol", command 0x86 "Read CO2 concentration"). Every `interval` poll() writes:
 *
 *   request   FF 01 86 00 00 00 00 00 79
 *             |  |  |  \___ reserved __/ checksum
 *             |  |  command 0x86
 *             |  sensor number (always 1)
 *             start byte
 *   response  FF 86 HH LL TT xx xx xx CS
 *             |  |  \___/ |           checksum
 *             |  |  CO2 = HH × 256 + LL ppm
 *             |  |        TT: temperature + 40 °C (undocumented; `temperature = true;` to read it)
 *             |  command echoed
 *             start byte
 *   checksum  (0xFF - (byte1 + ... + byte7) + 1) & 0xFF   (manual: "Checksum calculation")
 *
 * The manual's example: request FF 01 86 00 00 00 00 00 79, response
 * FF 86 02 20 00 00 00 00 58 = 544 ppm.
 *
 * Readings: co2 (ppm); temperature (°C) only when enabled (it is the sensor's internal
 * temperature, rounded to whole degrees, not the room's). Sanity: the B model's largest
 * detection range is 0-10000 ppm (manual "Main parameters"); above is SG_FAIL_INSANE.
 * The first 3 minutes after power-up (preheat) the sensor reports a fixed value.
 *
 * Timing: poll() writes the request with write(2) on the non-blocking port and asks to
 * be called again after `interval`. If the previous request got no valid response by
 * then, that counts as SG_FAIL_TIMEOUT. A full output buffer (EAGAIN) or a short write
 * counts as SG_FAIL_IO and the cycle goes on; any other write error is returned so that
 * the gateway reopens the port. feed() collects the response bytes at any time.
 *
 * Framing: a response starts at FF 86. Other bytes count once per gap as
 * SG_FAIL_GARBAGE, a wrong checksum is SG_FAIL_CHECKSUM; after a rejected frame the search
 * restarts at the byte after its FF.
 *
 * Ownership: options (struct mhz19_opts) are allocated by parse_options(), owned by the
 * config; struct mhz19_state lives in dev->state, owned by the gateway.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "frame.h"
#include "drivers.h"

#define MHZ19_FRAME 9
#define MHZ19_START 0xff
#define MHZ19_CMD_READ 0x86
#define MHZ19_TEMP_OFFSET 40          /* TT = °C + 40 */
#define MHZ19_MAX_PPM 10000           /* widest detection range of the B model */
#define MHZ19_DEFAULT_INTERVAL_S 10.0 /* the sensor measures every 5 s; every other is plenty */

static const uint8_t mhz19_request[MHZ19_FRAME] = {0xff, 0x01, 0x86, 0x00, 0x00, 0x00, 0x00, 0x00, 0x79};

struct mhz19_opts {
	bool temperature;
};

struct mhz19_state {
	size_t len;
	bool noise_counted;
	bool awaiting;               /* a request is out with no valid response yet */
	uint8_t buf[MHZ19_FRAME];
};

enum mhz19_check {
	MHZ19_NEED_MORE = 0,
	MHZ19_FRAME_OK,
	MHZ19_BAD_START,
	MHZ19_BAD_SUM,
};

static const struct mhz19_opts mhz19_default_opts = {.temperature = false};

/* The checksum of a 9-byte frame: two's complement of the sum of bytes 1..7. */
static uint8_t mhz19_checksum(const uint8_t *f)
{
	unsigned sum = 0;

	for (int i = 1; i < 8; i++)
		sum += f[i];
	return (uint8_t)((0xff - (sum & 0xff) + 1) & 0xff);
}

static enum mhz19_check mhz19_check(const struct mhz19_state *st)
{
	if (st->len >= 1 && st->buf[0] != MHZ19_START)
		return MHZ19_BAD_START;
	if (st->len >= 2 && st->buf[1] != MHZ19_CMD_READ)
		return MHZ19_BAD_START;
	if (st->len < MHZ19_FRAME)
		return MHZ19_NEED_MORE;
	return mhz19_checksum(st->buf) == st->buf[8] ? MHZ19_FRAME_OK : MHZ19_BAD_SUM;
}

static void mhz19_process(struct sg_dev *dev, struct mhz19_state *st)
{
	const struct mhz19_opts *o = dev->opts ? dev->opts : &mhz19_default_opts;
	unsigned ppm = (unsigned)st->buf[2] << 8 | st->buf[3];

	st->awaiting = false; /* answered, even if the value is rejected below */
	if (ppm > MHZ19_MAX_PPM) {
		sg_dev_fail(dev, SG_FAIL_INSANE, "mhz19: CO2 above 10000 ppm");
		return;
	}
	sg_dev_emit_number(dev, "co2", ppm, "ppm");
	if (o->temperature)
		sg_dev_emit_number(dev, "temperature", (int)st->buf[4] - MHZ19_TEMP_OFFSET, "°C");
	dev->stats.frames++;
}

static void mhz19_feed(struct sg_dev *dev, const uint8_t *buf, size_t len)
{
	struct mhz19_state *st = dev->state;

	for (size_t i = 0; i < len; i++) {
		st->buf[st->len++] = buf[i];
		for (;;) {
			enum mhz19_check c = mhz19_check(st);

			if (c == MHZ19_NEED_MORE)
				break;
			if (c == MHZ19_FRAME_OK) {
				mhz19_process(dev, st);
				st->len = 0;
				st->noise_counted = false;
				break;
			}
			if (c == MHZ19_BAD_START) {
				if (!st->noise_counted)
					sg_dev_fail(dev, SG_FAIL_GARBAGE, "mhz19: bytes outside a response");
			} else {
				sg_dev_fail(dev, SG_FAIL_CHECKSUM, "mhz19: checksum mismatch");
			}
			st->noise_counted = true;
			st->len = frame_resync(st->buf, st->len, MHZ19_START);
			if (st->len == 0)
				break;
		}
	}
}

/*
 * Count a missing answer to the last request, send the next one. Returns 0 with
 * *ret_delay_us = interval, or -errno when the port failed (the gateway reopens it).
 */
static int mhz19_poll(struct sg_dev *dev, uint64_t *ret_delay_us)
{
	struct mhz19_state *st = dev->state;
	double interval = dev->interval_s > 0 ? dev->interval_s : MHZ19_DEFAULT_INTERVAL_S;
	ssize_t n;

	*ret_delay_us = (uint64_t)(interval * 1e6);
	if (st->awaiting)
		sg_dev_fail(dev, SG_FAIL_TIMEOUT, "mhz19: no answer to the read request");
	st->awaiting = false;
	n = write(dev->fd, mhz19_request, sizeof(mhz19_request));
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR) {
			sg_dev_fail(dev, SG_FAIL_IO, "mhz19: port busy, request not sent");
			return 0;
		}
		return -errno;
	}
	if ((size_t)n != sizeof(mhz19_request)) {
		sg_dev_fail(dev, SG_FAIL_IO, "mhz19: request only partly sent");
		return 0;
	}
	st->awaiting = true;
	return 0;
}

static void mhz19_reset(struct sg_dev *dev)
{
	struct mhz19_state *st = dev->state;

	st->len = 0;
	st->noise_counted = false;
	st->awaiting = false;
}

static int mhz19_init(struct sg_dev *dev)
{
	mhz19_reset(dev);
	return 0;
}

/* temperature (bool, default false). 0 with *ret_opts allocated, -EINVAL (*err filled), -ENOMEM. */
static int mhz19_parse_options(const config_setting_t *device, void **ret_opts, struct sg_opt_error *err)
{
	const config_setting_t *s = device ? config_setting_get_member(device, "temperature") : NULL;
	struct mhz19_opts *o;

	if (!ret_opts)
		return -EINVAL;
	if (s && config_setting_type(s) != CONFIG_TYPE_BOOL) {
		if (err) {
			err->line = (int)config_setting_source_line(s);
			snprintf(err->msg, sizeof(err->msg), "temperature must be true or false");
		}
		return -EINVAL;
	}
	o = malloc(sizeof(*o));
	if (!o) {
		if (err) {
			err->line = 0;
			snprintf(err->msg, sizeof(err->msg), "out of memory");
		}
		return -ENOMEM;
	}
	o->temperature = s ? config_setting_get_bool(s) : false;
	*ret_opts = o;
	return 0;
}

static void mhz19_free_options(void *opts)
{
	free(opts);
}

static const char *const mhz19_option_keys[] = {"temperature", NULL};

static const struct sg_field_info mhz19_fields[] = {
	{.name = "co2", .unit = "ppm", .device_class = "carbon_dioxide", .state_class = "measurement"},
	{.name = "temperature", .unit = "°C", .device_class = "temperature", .state_class = "measurement"},
	{.name = NULL, .unit = NULL, .device_class = NULL, .state_class = NULL},
};

const struct sg_driver sg_driver_mhz19 = {
	.name = "mhz19",
	.description = "Winsen MH-Z19B/C NDIR CO2 sensor (UART request/response)",
	.bus = SG_BUS_SERIAL,
	.default_baud = 9600, /* manual: 9600 8N1 */
	.default_interval_s = MHZ19_DEFAULT_INTERVAL_S,
	.fields = mhz19_fields,
	.option_keys = mhz19_option_keys,
	.parse_options = mhz19_parse_options,
	.free_options = mhz19_free_options,
	.state_size = sizeof(struct mhz19_state),
	.init = mhz19_init,
	.fini = NULL,
	.feed = mhz19_feed,
	.reset = mhz19_reset,
	.poll = mhz19_poll,
};
