/* SPDX-License-Identifier: MIT */
/*
 * bh1750.c — the `bh1750` driver: ROHM BH1750FVI ambient light over I2C.
 *
 * Source: ROHM "BH1750FVI" data sheet (2011.11, Rev.D). No register map: one
 * opcode byte per instruction, a plain 2-byte read for the result.
 *
 *   write  0x20        One Time H-Resolution Mode: measure once at 1 lx
 *                      resolution, then power down (Instruction Set Architecture)
 *   wait   180 ms      maximum H-resolution measurement time (Electrical
 *                      Characteristics: tH typ. 120, max. 180 ms)
 *   read   2 bytes     count[15:8] count[7:0]
 *   lux  = count / 1.2 (with the default MTreg of 69; data sheet example:
 *                      0x8390 = 33680 => 28067 lx)
 *
 * One step per poll(): trigger, then (180 ms later) read and emit, and wait
 * for the rest of the interval. Every 16-bit count is a valid light level
 * (0..54612 lx); the chip has no checksum. Bus errors are returned as -errno.
 * The plain 2-byte read needs an adapter with full I2C (I2C_RDWR).
 *
 * Ownership: no options; state (struct bh1750_state) belongs to the gateway.
 */
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "../common/clock.h"
#include "bus_i2c.h"
#include "driver.h"
#include "drivers.h"

#define BH1750_ONE_TIME_H_RES 0x20   /* Instruction Set Architecture: One Time H-Resolution Mode */
#define BH1750_MEASURE_US     180000 /* Electrical Characteristics: tH max. */
#define BH1750_RESULT_LEN     2
#define BH1750_COUNTS_PER_LX  1.2    /* Measurement sequence example: count / 1.2 = lx */

enum bh1750_phase {
	BH1750_PHASE_TRIGGER = 0,
	BH1750_PHASE_READ,
};

struct bh1750_state {
	enum bh1750_phase phase;
	uint64_t cycle_start_us; /* CLOCK_MONOTONIC at the trigger */
};

static int bh1750_init(struct sg_dev *dev)
{
	struct bh1750_state *st = dev->state;

	if (!st)
		return -EINVAL;
	st->phase = BH1750_PHASE_TRIGGER;
	return 0;
}

static int bh1750_poll(struct sg_dev *dev, uint64_t *ret_delay_us)
{
	static const uint8_t cmd = BH1750_ONE_TIME_H_RES;
	struct bh1750_state *st = dev->state;
	uint8_t d[BH1750_RESULT_LEN];
	uint64_t interval_us, elapsed;
	int r;

	if (!st)
		return -EINVAL;
	if (st->phase == BH1750_PHASE_TRIGGER) {
		r = i2c_write(dev->i2c, &cmd, 1);
		if (r < 0)
			return r;
		st->cycle_start_us = now_mono_us();
		st->phase = BH1750_PHASE_READ;
		*ret_delay_us = BH1750_MEASURE_US;
		return 0;
	}

	st->phase = BH1750_PHASE_TRIGGER;
	r = i2c_read(dev->i2c, d, sizeof(d));
	if (r < 0)
		return r;
	sg_dev_emit_number(dev, "illuminance", (double)(d[0] << 8 | d[1]) / BH1750_COUNTS_PER_LX, "lx");
	interval_us = dev->interval_s > 0 ? (uint64_t)(dev->interval_s * 1e6) : 0;
	elapsed = now_mono_us() - st->cycle_start_us;
	*ret_delay_us = interval_us > elapsed ? interval_us - elapsed : 0;
	return 0;
}

static const struct sg_field_info bh1750_fields[] = {
	{.name = "illuminance", .unit = "lx", .device_class = "illuminance", .state_class = "measurement"},
	{.name = NULL},
};

const struct sg_driver sg_driver_bh1750 = {
	.name = "bh1750",
	.description = "ROHM BH1750 ambient light (lux), I2C 0x23/0x5c",
	.bus = SG_BUS_I2C,
	.default_baud = 0,
	.default_interval_s = 10.0,
	.fields = bh1750_fields,
	.option_keys = NULL,
	.parse_options = NULL,
	.free_options = NULL,
	.state_size = sizeof(struct bh1750_state),
	.init = bh1750_init,
	.fini = NULL,
	.feed = NULL,
	.reset = NULL,
	.poll = bh1750_poll,
};
