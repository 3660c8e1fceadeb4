/* SPDX-License-Identifier: MIT */
/*
 * bus_i2c.c — struct sg_i2c on top of /dev/i2c-N (Linux i2c-dev).
 *
 * Which ioctl carries which transfer, chosen per transfer from the adapter's
 * functionality bits (I2C_FUNCS, read once at open):
 *
 *   read_reg   SMBus I2C block read, 32-byte chunks  | I2C_RDWR write+read | SMBus byte data, per byte
 *   write_reg  SMBus byte data (n == 1)              | SMBus I2C block write, 32-byte chunks | I2C_RDWR
 *   write      SMBus byte (n == 1), byte data (n == 2), I2C block (n >= 3) | I2C_RDWR
 *   read       I2C_RDWR one read message             | SMBus byte (n == 1)
 *
 * An SMBus write puts exactly "cmd d0 d1 ..." on the wire, so a command of
 * N bytes goes out as SMBus command b0 followed by N-1 data bytes: the
 * SHT3x's 16-bit 0x24 0x00 is a "write byte data" of 0x00 to "register" 0x24.
 * That is why `write` prefers SMBus: it works on SMBus-only adapters and on
 * i2c-stub alike.
 *
 * Ownership: struct sg_i2c_bus owns its fd; the struct sg_i2c handed to
 * drivers points into it. Nothing here logs.
 */
#include "bus_i2c.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/i2c-dev.h>
#include <linux/i2c.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Tries for an ioctl interrupted by a signal before giving up with -EINTR. */
#define I2C_EINTR_TRIES 3
/* Longest plain transfer we hand to I2C_RDWR (i2c-dev refuses more than 8192). */
#define I2C_RDWR_MAX 8192

struct sg_i2c_bus {
	struct sg_i2c dev;   /* what drivers see; dev.ctx points back here */
	int fd;
	int address;
	unsigned long funcs; /* I2C_FUNC_* of the adapter */
};

static bool has(const struct sg_i2c_bus *b, unsigned long f)
{
	return (b->funcs & f) == f;
}

/* ioctl() returning -errno, retried a few times on EINTR. */
static int xioctl(int fd, unsigned long req, void *arg)
{
	for (int i = 0; i < I2C_EINTR_TRIES; i++) {
		int r = ioctl(fd, req, arg);
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return -errno;
	}
	return -EINTR;
}

static int smbus(struct sg_i2c_bus *b, uint8_t rw, uint8_t cmd, uint32_t size, union i2c_smbus_data *data)
{
	struct i2c_smbus_ioctl_data args = {.read_write = rw, .command = cmd, .size = size, .data = data};
	int r = xioctl(b->fd, I2C_SMBUS, &args);
	return r < 0 ? r : 0;
}

/* I2C_RDWR with the given messages, all addressed to our chip. */
static int rdwr(struct sg_i2c_bus *b, struct i2c_msg *msgs, unsigned n)
{
	struct i2c_rdwr_ioctl_data args = {.msgs = msgs, .nmsgs = n};
	int r;

	for (unsigned i = 0; i < n; i++)
		msgs[i].addr = (uint16_t)b->address;
	r = xioctl(b->fd, I2C_RDWR, &args);
	if (r < 0)
		return r;
	return (unsigned)r == n ? 0 : -EIO;
}

static int bus_read_reg(void *ctx, uint8_t reg, uint8_t *buf, size_t n)
{
	struct sg_i2c_bus *b = ctx;
	union i2c_smbus_data data;
	int r;

	if (n == 0 || n > 256 - (size_t)reg)
		return -EINVAL;
	if (has(b, I2C_FUNC_SMBUS_READ_I2C_BLOCK)) {
		for (size_t off = 0; off < n; off += SG_I2C_BLOCK_MAX) {
			size_t len = n - off < SG_I2C_BLOCK_MAX ? n - off : SG_I2C_BLOCK_MAX;

			memset(&data, 0, sizeof(data));
			data.block[0] = (uint8_t)len;
			r = smbus(b, I2C_SMBUS_READ, (uint8_t)(reg + off), I2C_SMBUS_I2C_BLOCK_DATA, &data);
			if (r < 0)
				return r;
			/* the kernel writes back how many bytes it read */
			if (data.block[0] < len)
				return -EIO;
			memcpy(buf + off, &data.block[1], len);
		}
		return 0;
	}
	if (has(b, I2C_FUNC_I2C)) {
		struct i2c_msg msgs[2] = {
			{.flags = 0, .len = 1, .buf = &reg},
			{.flags = I2C_M_RD, .len = (uint16_t)n, .buf = buf},
		};
		return rdwr(b, msgs, 2);
	}
	if (has(b, I2C_FUNC_SMBUS_READ_BYTE_DATA)) {
		for (size_t i = 0; i < n; i++) {
			r = smbus(b, I2C_SMBUS_READ, (uint8_t)(reg + i), I2C_SMBUS_BYTE_DATA, &data);
			if (r < 0)
				return r;
			buf[i] = data.byte;
		}
		return 0;
	}
	return -EOPNOTSUPP;
}

static int bus_write_reg(void *ctx, uint8_t reg, const uint8_t *buf, size_t n)
{
	struct sg_i2c_bus *b = ctx;
	union i2c_smbus_data data;
	int r;

	if (n == 0 || n > 256 - (size_t)reg)
		return -EINVAL;
	if (n == 1 && has(b, I2C_FUNC_SMBUS_WRITE_BYTE_DATA)) {
		data.byte = buf[0];
		return smbus(b, I2C_SMBUS_WRITE, reg, I2C_SMBUS_BYTE_DATA, &data);
	}
	if (has(b, I2C_FUNC_SMBUS_WRITE_I2C_BLOCK)) {
		for (size_t off = 0; off < n; off += SG_I2C_BLOCK_MAX) {
			size_t len = n - off < SG_I2C_BLOCK_MAX ? n - off : SG_I2C_BLOCK_MAX;

			data.block[0] = (uint8_t)len;
			memcpy(&data.block[1], buf + off, len);
			r = smbus(b, I2C_SMBUS_WRITE, (uint8_t)(reg + off), I2C_SMBUS_I2C_BLOCK_DATA, &data);
			if (r < 0)
				return r;
		}
		return 0;
	}
	if (has(b, I2C_FUNC_I2C)) {
		uint8_t tmp[1 + 256];
		struct i2c_msg msg = {.flags = 0, .len = (uint16_t)(n + 1), .buf = tmp};

		tmp[0] = reg;
		memcpy(tmp + 1, buf, n);
		return rdwr(b, &msg, 1);
	}
	return -EOPNOTSUPP;
}

static int bus_write(void *ctx, const uint8_t *buf, size_t n)
{
	struct sg_i2c_bus *b = ctx;
	union i2c_smbus_data data;

	if (n == 0 || n > I2C_RDWR_MAX)
		return -EINVAL;
	if (n == 1 && has(b, I2C_FUNC_SMBUS_WRITE_BYTE))
		return smbus(b, I2C_SMBUS_WRITE, buf[0], I2C_SMBUS_BYTE, NULL);
	if (n == 2 && has(b, I2C_FUNC_SMBUS_WRITE_BYTE_DATA)) {
		data.byte = buf[1];
		return smbus(b, I2C_SMBUS_WRITE, buf[0], I2C_SMBUS_BYTE_DATA, &data);
	}
	if (n >= 3 && n - 1 <= SG_I2C_BLOCK_MAX && has(b, I2C_FUNC_SMBUS_WRITE_I2C_BLOCK)) {
		data.block[0] = (uint8_t)(n - 1);
		memcpy(&data.block[1], buf + 1, n - 1);
		return smbus(b, I2C_SMBUS_WRITE, buf[0], I2C_SMBUS_I2C_BLOCK_DATA, &data);
	}
	if (has(b, I2C_FUNC_I2C)) {
		struct i2c_msg msg = {.flags = 0, .len = (uint16_t)n, .buf = (uint8_t *)buf};
		return rdwr(b, &msg, 1);
	}
	return -EOPNOTSUPP;
}

static int bus_read(void *ctx, uint8_t *buf, size_t n)
{
	struct sg_i2c_bus *b = ctx;
	union i2c_smbus_data data;
	int r;

	if (n == 0 || n > I2C_RDWR_MAX)
		return -EINVAL;
	if (has(b, I2C_FUNC_I2C)) {
		struct i2c_msg msg = {.flags = I2C_M_RD, .len = (uint16_t)n, .buf = buf};
		return rdwr(b, &msg, 1);
	}
	if (n == 1 && has(b, I2C_FUNC_SMBUS_READ_BYTE)) {
		r = smbus(b, I2C_SMBUS_READ, 0, I2C_SMBUS_BYTE, &data);
		if (r < 0)
			return r;
		buf[0] = data.byte;
		return 0;
	}
	return -EOPNOTSUPP;
}

static const struct sg_i2c_ops bus_ops = {
	.read_reg = bus_read_reg,
	.write_reg = bus_write_reg,
	.write = bus_write,
	.read = bus_read,
};

int i2c_bus_open(const char *path, int address, struct sg_i2c_bus **ret)
{
	struct sg_i2c_bus *b;
	int r;

	if (!path || !ret || address < 0 || address > 0x7f)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->address = address;
	b->dev = (struct sg_i2c){.ops = &bus_ops, .ctx = b};
	b->fd = open(path, O_RDWR | O_CLOEXEC);
	if (b->fd < 0) {
		r = -errno;
		goto err_free;
	}
	r = xioctl(b->fd, I2C_SLAVE, (void *)(unsigned long)address);
	if (r < 0)
		goto err_close;
	r = xioctl(b->fd, I2C_FUNCS, &b->funcs);
	if (r < 0)
		goto err_close;
	*ret = b;
	return 0;

err_close:
	close(b->fd);
err_free:
	free(b);
	return r;
}

void i2c_bus_close(struct sg_i2c_bus *b)
{
	if (!b)
		return;
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}

struct sg_i2c *i2c_bus_device(struct sg_i2c_bus *b)
{
	return &b->dev;
}

int i2c_bus_fd(const struct sg_i2c_bus *b)
{
	return b->fd;
}
