/* SPDX-License-Identifier: MIT */
/*
 * fake_i2c.h — an in-memory I2C chip behind struct sg_i2c, for driver tests.
 *
 * A register-map chip by default: 256 byte registers with auto-increment,
 * read_reg/write_reg act on regs[]. Command-style chips (SHT3x, BH1750) are
 * modelled with `rx` (what a plain read returns) and the on_write hook (called
 * after every write, so a test can make the chip react to a command). Any
 * transfer can be made to fail with -errno (fail_errno, fail_skip,
 * fail_count), and every transfer is logged for assertions. Everything the
 * fake defines is prefixed fake_i2c_ so it cannot clash with a test.
 */
#ifndef SG_FAKE_I2C_H
#define SG_FAKE_I2C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drivers/bus_i2c.h"
#include "drivers/driver.h"

#define FAKE_I2C_LOG_MAX 64
#define FAKE_I2C_DATA_MAX 64

enum fake_i2c_op {
	FAKE_I2C_READ_REG = 0,
	FAKE_I2C_WRITE_REG,
	FAKE_I2C_WRITE,
	FAKE_I2C_READ,
};

struct fake_i2c_xfer {
	enum fake_i2c_op op;
	uint8_t reg;                       /* *_REG only */
	size_t len;
	uint8_t data[FAKE_I2C_DATA_MAX];   /* what was written (writes), or returned (reads); first bytes */
	int result;                        /* 0 or -errno */
};

struct fake_i2c {
	struct sg_i2c i2c;                 /* plug &f->i2c into dev->i2c (fake_i2c_attach) */
	uint8_t regs[256];
	uint8_t rx[FAKE_I2C_DATA_MAX];     /* bytes a plain read returns, from rx[0] */
	size_t rx_len;                     /* a plain read longer than this fails with -EREMOTEIO */

	/* failure injection: after fail_skip good transfers, the next fail_count fail with -fail_errno */
	int fail_errno;
	unsigned fail_skip;
	unsigned fail_count;

	/* called after a successful write or write_reg */
	void (*on_write)(struct fake_i2c *f, enum fake_i2c_op op, uint8_t reg, const uint8_t *buf, size_t n);
	/* called before read_reg; return true when it filled buf itself */
	bool (*on_read_reg)(struct fake_i2c *f, uint8_t reg, uint8_t *buf, size_t n);
	void *user;

	unsigned n_xfers;                  /* all transfers, logged or not */
	struct fake_i2c_xfer log[FAKE_I2C_LOG_MAX];
};

/* Zero F and make it a register map with every register 0. */
void fake_i2c_init(struct fake_i2c *f);
/* dev->i2c = &f->i2c. */
void fake_i2c_attach(struct fake_i2c *f, struct sg_dev *dev);
/* Store a little-endian 16-bit value at reg, reg+1. */
void fake_i2c_put_le16(struct fake_i2c *f, uint8_t reg, uint16_t v);
/* Number of logged transfers of kind OP (with register REG when REG >= 0). */
unsigned fake_i2c_count(const struct fake_i2c *f, enum fake_i2c_op op, int reg);
/* The last logged transfer of kind OP, or NULL. */
const struct fake_i2c_xfer *fake_i2c_last(const struct fake_i2c *f, enum fake_i2c_op op);

/*
 * A device ready to drive by hand in a test: state allocated (state_size
 * bytes), i2c attached, emits collected into fake_i2c_readings. Free with
 * fake_i2c_dev_free().
 */
struct fake_i2c_reading {
	char field[64];
	enum sg_value_kind kind;
	double number;
	char unit[16];
};

struct fake_i2c_sink {
	unsigned n;
	struct fake_i2c_reading r[32];
	unsigned n_fail;
	enum sg_fail last_fail;
	char last_detail[128];
};

void fake_i2c_dev_setup(struct sg_dev *dev, const struct sg_driver *drv, const void *opts, struct fake_i2c *f,
                        struct fake_i2c_sink *sink);
void fake_i2c_dev_free(struct sg_dev *dev);
/* The last reading named FIELD in SINK, or NULL. */
const struct fake_i2c_reading *fake_i2c_find(const struct fake_i2c_sink *sink, const char *field);

#endif
