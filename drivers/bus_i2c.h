/* SPDX-License-Identifier: MIT */
/*
 * bus_i2c.h — I2C devices, as drivers see them and as /dev/i2c-N provides them.
 *
 * Drivers talk to their chip only through struct sg_i2c: a small table of
 * four transfers plus an opaque context. The gateway plugs in the real bus
 * (i2c_bus_open(): /dev/i2c-N ioctls); unit tests plug in an in-memory
 * register map behind the same table. Nothing here logs.
 *
 * The four transfers, as they appear on the wire (S = start, Sr = repeated
 * start, P = stop, A = address byte):
 *
 *   read_reg   S A+W reg Sr A+R d0 d1 .. dn-1 P      registers reg, reg+1, ...
 *   write_reg  S A+W reg d0 d1 .. dn-1 P             registers reg, reg+1, ...
 *   write      S A+W b0 b1 .. bn-1 P                 a command, no register
 *   read       S A+R d0 d1 .. dn-1 P                 a result, no register
 *
 * On /dev/i2c-N the first three go through SMBus transfers (I2C_SMBUS ioctl:
 * byte, byte data, I2C block data in chunks of at most 32 bytes), which every
 * adapter and Linux's i2c-stub test module speak; a plain `read` of more than
 * one byte has no SMBus form and needs I2C_RDWR, i.e. an adapter with full
 * I2C (I2C_FUNC_I2C; every Raspberry Pi bus has it). When the adapter lacks
 * SMBus I2C-block transfers, I2C_RDWR is used instead, and byte-by-byte SMBus
 * as the last resort for register reads.
 *
 * Every transfer returns 0 or -errno: -ENXIO or -EREMOTEIO when the chip did
 * not acknowledge (absent, wrong address, busy), -ETIMEDOUT when the bus hung,
 * -EIO for a short transfer, -EOPNOTSUPP when the adapter cannot do it,
 * -ENODEV when no bus is attached.
 */
#ifndef SG_BUS_I2C_H
#define SG_BUS_I2C_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* Largest SMBus block (SMBus 3.0 §6.5.7); longer register reads are split. */
#define SG_I2C_BLOCK_MAX 32

struct sg_i2c_ops {
	int (*read_reg)(void *ctx, uint8_t reg, uint8_t *buf, size_t n);
	int (*write_reg)(void *ctx, uint8_t reg, const uint8_t *buf, size_t n);
	int (*write)(void *ctx, const uint8_t *buf, size_t n);
	int (*read)(void *ctx, uint8_t *buf, size_t n);
};

/* An I2C device: the transfers and the context they are called with. */
struct sg_i2c {
	const struct sg_i2c_ops *ops;
	void *ctx;
};

/* What drivers call. N must be at least 1; I2C == NULL gives -ENODEV. */
static inline int i2c_read_reg(const struct sg_i2c *i2c, uint8_t reg, uint8_t *buf, size_t n)
{
	return i2c && i2c->ops->read_reg ? i2c->ops->read_reg(i2c->ctx, reg, buf, n) : -ENODEV;
}

static inline int i2c_write_reg(const struct sg_i2c *i2c, uint8_t reg, const uint8_t *buf, size_t n)
{
	return i2c && i2c->ops->write_reg ? i2c->ops->write_reg(i2c->ctx, reg, buf, n) : -ENODEV;
}

/* Write one register: the most common write of all. */
static inline int i2c_write_reg8(const struct sg_i2c *i2c, uint8_t reg, uint8_t value)
{
	return i2c_write_reg(i2c, reg, &value, 1);
}

static inline int i2c_write(const struct sg_i2c *i2c, const uint8_t *buf, size_t n)
{
	return i2c && i2c->ops->write ? i2c->ops->write(i2c->ctx, buf, n) : -ENODEV;
}

static inline int i2c_read(const struct sg_i2c *i2c, uint8_t *buf, size_t n)
{
	return i2c && i2c->ops->read ? i2c->ops->read(i2c->ctx, buf, n) : -ENODEV;
}

/* ---- the real bus: /dev/i2c-N ----------------------------------------------------------------- */

struct sg_i2c_bus;

/*
 * Open PATH (/dev/i2c-N) O_RDWR|O_CLOEXEC, bind it to the 7-bit ADDRESS
 * (I2C_SLAVE: -EBUSY when a kernel driver owns that address) and read the
 * adapter's functionality (I2C_FUNCS). On success *ret owns the fd
 * (i2c_bus_close()). Opening does not touch the bus: an absent chip shows
 * up as -ENXIO/-EREMOTEIO on the first transfer.
 */
int i2c_bus_open(const char *path, int address, struct sg_i2c_bus **ret);
void i2c_bus_close(struct sg_i2c_bus *b);
/* The device as drivers use it; valid until i2c_bus_close(). */
struct sg_i2c *i2c_bus_device(struct sg_i2c_bus *b);
/* The i2c-dev fd; valid until i2c_bus_close(). */
int i2c_bus_fd(const struct sg_i2c_bus *b);

#endif
