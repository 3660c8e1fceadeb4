/* SPDX-License-Identifier: MIT */
/*
 * check.c — bus_i2c.c and the I2C drivers against a real kernel: Linux's
 * i2c-dev + i2c-stub (an SMBus-only fake chip), inside a QEMU guest started
 * by run.sh. Not a unit test: it needs that guest.
 *
 * It preloads the stub chip at 0x76 with the Bosch BME280 example (through
 * the bus itself: I2C block writes, read back), runs the bme280 driver's
 * init/poll/poll and compares what it emits with the values the unit tests
 * pin; it checks an empty address fails init, and that the command-style
 * drivers (sht3x, bh1750), whose plain reads need I2C_RDWR, get
 * -EOPNOTSUPP from an SMBus-only adapter instead of a wrong answer.
 * Prints "I2C-STUB CHECK PASSED" and exits 0 when all holds.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "drivers/bus_i2c.h"
#include "drivers/driver.h"
#include "drivers/drivers.h"

static int failures;
static double got_t = NAN, got_p = NAN, got_h = NAN;

#define CHECK(cond, ...)                                                                                   \
	do {                                                                                                   \
		if (!(cond)) {                                                                                     \
			failures++;                                                                                    \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                    \
			printf(__VA_ARGS__);                                                                           \
			printf("\n");                                                                                  \
		}                                                                                                  \
	} while (0)

static void on_emit(struct sg_dev *d, const struct sg_reading *r, void *u)
{
	(void)d;
	(void)u;
	printf("  %s = %.6f %s\n", r->field, r->number, r->unit ? r->unit : "");
	if (strcmp(r->field, "temperature") == 0)
		got_t = r->number;
	else if (strcmp(r->field, "pressure") == 0)
		got_p = r->number;
	else if (strcmp(r->field, "humidity") == 0)
		got_h = r->number;
}

static void on_fail(struct sg_dev *d, enum sg_fail f, const char *det, void *u)
{
	(void)d;
	(void)u;
	printf("  counted %s: %s\n", sg_fail_name(f), det ? det : "");
}

static void le16(uint8_t *r, int reg, int v)
{
	r[reg] = (uint8_t)(v & 0xff);
	r[reg + 1] = (uint8_t)((v >> 8) & 0xff);
}

/* init, then STEPS polls; returns the first error, or 0. */
static int run(const struct sg_driver *drv, const char *bus, int addr, int steps)
{
	static uint8_t state[4096];
	struct sg_i2c_bus *b;
	uint64_t delay = 0;
	int r;
	struct sg_dev dev = {.name = drv->name, .driver = drv, .fd = -1, .address = addr, .interval_s = 10,
	                     .state = state, .emit = on_emit, .on_fail = on_fail};

	memset(state, 0, sizeof(state));
	printf("%s at %s 0x%02x:\n", drv->name, bus, addr);
	r = i2c_bus_open(bus, addr, &b);
	if (r < 0) {
		printf("  open: %s\n", strerror(-r));
		return r;
	}
	dev.i2c = i2c_bus_device(b);
	r = drv->init(&dev);
	printf("  init: %s\n", r ? strerror(-r) : "ok");
	for (int i = 0; r == 0 && i < steps; i++) {
		r = drv->poll(&dev, &delay);
		printf("  poll: %s, next in %llu us\n", r ? strerror(-r) : "ok", (unsigned long long)delay);
	}
	i2c_bus_close(b);
	return r;
}

int main(int argc, char **argv)
{
	const char *bus = argc > 1 ? argv[1] : "/dev/i2c-0";
	uint8_t regs[256] = {0}, back[128];
	struct sg_i2c_bus *b;
	int r;

	regs[0xD0] = 0x60;
	le16(regs, 0x88, 27504);
	le16(regs, 0x8A, 26435);
	le16(regs, 0x8C, -1000);
	le16(regs, 0x8E, 36477);
	le16(regs, 0x90, -10685);
	le16(regs, 0x92, 3024);
	le16(regs, 0x94, 2855);
	le16(regs, 0x96, 140);
	le16(regs, 0x98, -7);
	le16(regs, 0x9A, 15500);
	le16(regs, 0x9C, -14600);
	le16(regs, 0x9E, 6000);
	regs[0xA1] = 75;
	le16(regs, 0xE1, 370);
	regs[0xE4] = 313 >> 4;
	regs[0xE5] = (313 & 15) | (50 & 15) << 4;
	regs[0xE6] = 50 >> 4;
	regs[0xE7] = 30;
	regs[0xF7] = 415148 >> 12;
	regs[0xF8] = (415148 >> 4) & 0xff;
	regs[0xF9] = (415148 & 15) << 4;
	regs[0xFA] = 519888 >> 12;
	regs[0xFB] = (519888 >> 4) & 0xff;
	regs[0xFC] = (519888 & 15) << 4;
	regs[0xFD] = 28000 >> 8;
	regs[0xFE] = 28000 & 0xff;

	r = i2c_bus_open(bus, 0x76, &b);
	if (r < 0) {
		printf("FAIL: open %s: %s\n", bus, strerror(-r));
		return 1;
	}
	r = i2c_write_reg(i2c_bus_device(b), 0x80, regs + 0x80, 0x80);
	CHECK(r == 0, "preload: %s", strerror(-r));
	r = i2c_read_reg(i2c_bus_device(b), 0x80, back, sizeof(back));
	CHECK(r == 0 && memcmp(back, regs + 0x80, sizeof(back)) == 0, "read back: %d", r);
	i2c_bus_close(b);

	CHECK(run(&sg_driver_bme280, bus, 0x76, 2) == 0, "bme280 cycle");
	CHECK(got_t == 25.08, "temperature %f", got_t);
	CHECK(fabs(got_p - 25767233.0 / 256.0 / 100.0) < 1e-9, "pressure %f", got_p);
	CHECK(got_h == 45895.0 / 1024.0, "humidity %f", got_h);
	r = run(&sg_driver_bme280, bus, 0x77, 2);
	CHECK(r == -ENODEV || r == -ENXIO || r == -EREMOTEIO, "empty address: %d", r);
	CHECK(run(&sg_driver_sht3x, bus, 0x76, 2) == -EOPNOTSUPP, "sht3x on SMBus-only");
	CHECK(run(&sg_driver_bh1750, bus, 0x76, 2) == -EOPNOTSUPP, "bh1750 on SMBus-only");

	printf(failures ? "I2C-STUB CHECK FAILED (%d)\n" : "I2C-STUB CHECK PASSED\n", failures);
	return failures != 0;
}
