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
 * Timing: the request is a transaction on the sensor's serial line (line.h), which it may
 * share: every `interval` poll() makes one due, the line gives the driver its turn
 * (request()) and hands it what arrives (answer()). No valid answer within 1 s (the
 * sensor answers in milliseconds), or within the interval when that is shorter, is
 * SG_FAIL_TIMEOUT.
 *
 * Framing: a response starts at FF 86. Other bytes before it count once per request as
 * SG_FAIL_GARBAGE; a wrong checksum is SG_FAIL_CHECKSUM and ends the transaction.
 *
 * Ownership: options (struct mhz19_opts) are allocated by parse_options(), owned by the
 * config; struct mhz19_state lives in dev->state, owned by the gateway.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "drivers.h"

#define MHZ19_FRAME 9
#define MHZ19_START 0xff
#define MHZ19_CMD_READ 0x86
#define MHZ19_TEMP_OFFSET 40          /* TT = °C + 40 */
#define MHZ19_MAX_PPM 10000           /* widest detection range of the B model */
#define MHZ19_DEFAULT_INTERVAL_S 10.0 /* the sensor measures every 5 s; every other is plenty */
#define MHZ19_ANSWER_TIMEOUT_US 1000000ULL

static const uint8_t mhz19_read_co2[MHZ19_FRAME] = {0xff, 0x01, 0x86, 0x00, 0x00, 0x00, 0x00, 0x00, 0x79};

struct mhz19_opts {
	bool temperature;
};

struct mhz19_state {
	bool due;                    /* poll() made a request due */
	bool noise_counted;          /* garbage counted for the request out */
	uint64_t timeout_us;
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

static void mhz19_process(struct sg_dev *dev, const uint8_t *f)
{
	const struct mhz19_opts *o = dev->opts ? dev->opts : &mhz19_default_opts;
	unsigned ppm = (unsigned)f[2] << 8 | f[3];

	if (ppm > MHZ19_MAX_PPM) {
		sg_dev_fail(dev, SG_FAIL_INSANE, "mhz19: CO2 above 10000 ppm");
		return;
	}
	sg_dev_emit_number(dev, "co2", ppm, "ppm");
	if (o->temperature)
		sg_dev_emit_number(dev, "temperature", (int)f[4] - MHZ19_TEMP_OFFSET, "°C");
	dev->stats.frames++;
}

/* Every `interval`: one request due. */
static int mhz19_poll(struct sg_dev *dev, uint64_t *ret_delay_us)
{
	struct mhz19_state *st = dev->state;
	double interval = dev->interval_s > 0 ? dev->interval_s : MHZ19_DEFAULT_INTERVAL_S;

	*ret_delay_us = (uint64_t)(interval * 1e6);
	st->timeout_us = *ret_delay_us < MHZ19_ANSWER_TIMEOUT_US ? *ret_delay_us : MHZ19_ANSWER_TIMEOUT_US;
	st->due = true;
	return 0;
}

static int mhz19_request(struct sg_dev *dev, uint8_t *buf, size_t cap, uint64_t *ret_timeout_us)
{
	struct mhz19_state *st = dev->state;

	if (!st->due)
		return 0;
	if (cap < sizeof(mhz19_read_co2))
		return -ENOSPC;
	st->due = false;
	st->noise_counted = false;
	memcpy(buf, mhz19_read_co2, sizeof(mhz19_read_co2));
	*ret_timeout_us = st->timeout_us ? st->timeout_us : MHZ19_ANSWER_TIMEOUT_US;
	return (int)sizeof(mhz19_read_co2);
}

/* The answer starts at FF 86 and is 9 bytes long. */
static ssize_t mhz19_answer(struct sg_dev *dev, const uint8_t *buf, size_t len)
{
	struct mhz19_state *st = dev->state;
	size_t skip = 0;

	if (buf[0] != MHZ19_START || (len >= 2 && buf[1] != MHZ19_CMD_READ)) {
		skip = 1;
		while (skip < len && buf[skip] != MHZ19_START)
			skip++;
		if (!st->noise_counted)
			sg_dev_fail(dev, SG_FAIL_GARBAGE, "mhz19: bytes outside a response");
		st->noise_counted = true;
		return -(ssize_t)skip;
	}
	if (len < MHZ19_FRAME)
		return 0;
	if (mhz19_checksum(buf) != buf[8])
		sg_dev_fail(dev, SG_FAIL_CHECKSUM, "mhz19: checksum mismatch");
	else
		mhz19_process(dev, buf);
	return MHZ19_FRAME;
}

static void mhz19_no_answer(struct sg_dev *dev)
{
	sg_dev_fail(dev, SG_FAIL_TIMEOUT, "mhz19: no answer to the read request");
}

static int mhz19_init(struct sg_dev *dev)
{
	struct mhz19_state *st = dev->state;

	*st = (struct mhz19_state){0};
	return 0;
}

static size_t mhz19_line_plan(const void *opts, struct sg_line_request *reqs, size_t cap)
{
	(void)opts;
	if (cap > 0)
		reqs[0] = (struct sg_line_request){.tx_bytes = MHZ19_FRAME, .rx_bytes = MHZ19_FRAME,
		                                   .timeout_s = MHZ19_ANSWER_TIMEOUT_US / 1e6, .what = "read CO2 (0x86)"};
	return 1;
}

/* temperature (bool, default false). 0 with *ret_opts allocated, -EINVAL (*err filled), -ENOMEM. */
static int mhz19_parse_options(const config_setting_t *device, void **ret_opts, struct sg_opt_error *err)
{
	struct mhz19_opts *o;
	bool temperature = false;
	int r;

	if (!ret_opts)
		return -EINVAL;
	if ((r = sg_opt_bool(device, "temperature", &temperature, err)) < 0)
		return r;
	o = malloc(sizeof(*o));
	if (!o) {
		if (err) {
			err->line = 0;
			snprintf(err->msg, sizeof(err->msg), "out of memory");
		}
		return -ENOMEM;
	}
	o->temperature = temperature;
	*ret_opts = o;
	return 0;
}

static void mhz19_free_options(void *opts)
{
	free(opts);
}

static const char *const mhz19_option_keys[] = {"temperature", NULL};

static const char *mhz19_field_off(const void *opts, const char *field)
{
	const struct mhz19_opts *o = opts ? opts : &mhz19_default_opts;

	return strcmp(field, "temperature") == 0 && !o->temperature ? "temperature = true" : NULL;
}

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
	.field_off = mhz19_field_off,
	.parse_options = mhz19_parse_options,
	.free_options = mhz19_free_options,
	.state_size = sizeof(struct mhz19_state),
	.init = mhz19_init,
	.fini = NULL,
	.feed = NULL,
	.reset = NULL,
	.poll = mhz19_poll,
	.request = mhz19_request,
	.answer = mhz19_answer,
	.no_answer = mhz19_no_answer,
	.line_plan = mhz19_line_plan,
};
