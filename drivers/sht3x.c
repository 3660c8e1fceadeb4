/* SPDX-License-Identifier: MIT */
/*
 * sht3x.c — the `sht3x` driver: Sensirion SHT30/SHT31/SHT35 over I2C.
 *
 * Source: Sensirion "Datasheet SHT3x-DIS" (v5, 2018). The chip has no
 * register map: it takes 16-bit commands and answers a plain read.
 *
 *   write  0x24 0x00       single shot, high repeatability, clock stretching
 *                          disabled (§4.3 Table 9)
 *   wait   15.5 ms         maximum measurement duration, high repeatability
 *                          (§2.2 Table 4); a read before that is NACKed
 *   read   6 bytes         T[15:8] T[7:0] crc(T)  RH[15:8] RH[7:0] crc(RH)  (§4.4)
 *
 *   crc:   CRC-8, polynomial 0x31, init 0xFF, no reflection, no final XOR;
 *          CRC(0xBEEF) = 0x92 (§4.12 Table 20)
 *   T  = -45 + 175 * S_T / 65535 °C,   RH = 100 * S_RH / 65535 %   (§4.13)
 *
 * One step per poll(): trigger, then (15.5 ms later) read, check both CRCs,
 * emit, and wait for the rest of the interval. A word whose CRC does not
 * match is dropped (SG_FAIL_CHECKSUM), the other one is still emitted. Bus
 * errors (a NACK: no chip, or a read too early) are returned as -errno.
 * The plain 6-byte read needs an adapter with full I2C (I2C_RDWR).
 *
 * Ownership: no options; state (struct sht3x_state) belongs to the gateway.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "../common/clock.h"
#include "bus_i2c.h"
#include "driver.h"
#include "drivers.h"

#define SHT3X_CMD_SINGLE_HIGH_MSB 0x24  /* §4.3 Table 9: high repeatability, no clock stretching */
#define SHT3X_CMD_SINGLE_HIGH_LSB 0x00
#define SHT3X_MEASURE_US          15500 /* §2.2 Table 4: max duration, high repeatability */
#define SHT3X_RESULT_LEN          6     /* §4.4 */
#define SHT3X_CRC_POLY            0x31  /* §4.12 Table 20 */
#define SHT3X_CRC_INIT            0xFF

enum sht3x_phase {
	SHT3X_PHASE_TRIGGER = 0,
	SHT3X_PHASE_READ,
};

struct sht3x_state {
	enum sht3x_phase phase;
	uint64_t cycle_start_us; /* CLOCK_MONOTONIC at the trigger */
};

/* CRC-8 of §4.12 over N bytes. */
static uint8_t sht3x_crc(const uint8_t *p, size_t n)
{
	uint8_t crc = SHT3X_CRC_INIT;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = (uint8_t)(crc & 0x80 ? (crc << 1) ^ SHT3X_CRC_POLY : crc << 1);
	}
	return crc;
}

static int sht3x_init(struct sg_dev *dev)
{
	struct sht3x_state *st = dev->state;

	if (!st)
		return -EINVAL;
	st->phase = SHT3X_PHASE_TRIGGER;
	return 0;
}

static void sht3x_emit(struct sg_dev *dev, const uint8_t *d)
{
	char detail[64];
	bool t_ok = sht3x_crc(d, 2) == d[2];
	bool rh_ok = sht3x_crc(d + 3, 2) == d[5];

	if (!t_ok || !rh_ok) {
		snprintf(detail, sizeof(detail), "CRC mismatch in the %s word",
		         !t_ok && !rh_ok ? "temperature and humidity" : !t_ok ? "temperature" : "humidity");
		sg_dev_fail(dev, SG_FAIL_CHECKSUM, detail);
	}
	if (t_ok)
		sg_dev_emit_number(dev, "temperature", -45.0 + 175.0 * (double)(d[0] << 8 | d[1]) / 65535.0, "°C");
	if (rh_ok)
		sg_dev_emit_number(dev, "humidity", 100.0 * (double)(d[3] << 8 | d[4]) / 65535.0, "%");
}

static int sht3x_poll(struct sg_dev *dev, uint64_t *ret_delay_us)
{
	static const uint8_t cmd[2] = {SHT3X_CMD_SINGLE_HIGH_MSB, SHT3X_CMD_SINGLE_HIGH_LSB};
	struct sht3x_state *st = dev->state;
	uint8_t d[SHT3X_RESULT_LEN];
	uint64_t interval_us, elapsed;
	int r;

	if (!st)
		return -EINVAL;
	if (st->phase == SHT3X_PHASE_TRIGGER) {
		r = i2c_write(dev->i2c, cmd, sizeof(cmd));
		if (r < 0)
			return r;
		st->cycle_start_us = now_mono_us();
		st->phase = SHT3X_PHASE_READ;
		*ret_delay_us = SHT3X_MEASURE_US;
		return 0;
	}

	st->phase = SHT3X_PHASE_TRIGGER;
	r = i2c_read(dev->i2c, d, sizeof(d));
	if (r < 0)
		return r;
	sht3x_emit(dev, d);
	interval_us = dev->interval_s > 0 ? (uint64_t)(dev->interval_s * 1e6) : 0;
	elapsed = now_mono_us() - st->cycle_start_us;
	*ret_delay_us = interval_us > elapsed ? interval_us - elapsed : 0;
	return 0;
}

static const struct sg_field_info sht3x_fields[] = {
	{.name = "temperature", .unit = "°C", .device_class = "temperature", .state_class = "measurement"},
	{.name = "humidity", .unit = "%", .device_class = "humidity", .state_class = "measurement"},
	{.name = NULL},
};

const struct sg_driver sg_driver_sht3x = {
	.name = "sht3x",
	.description = "Sensirion SHT30/31/35 temperature and humidity, I2C 0x44/0x45",
	.bus = SG_BUS_I2C,
	.default_baud = 0,
	.default_interval_s = 10.0,
	.fields = sht3x_fields,
	.option_keys = NULL,
	.parse_options = NULL,
	.free_options = NULL,
	.state_size = sizeof(struct sht3x_state),
	.init = sht3x_init,
	.fini = NULL,
	.feed = NULL,
	.reset = NULL,
	.poll = sht3x_poll,
};
