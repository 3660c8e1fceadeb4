/* SPDX-License-Identifier: MIT */
/*
 * fake_i2c.c — the in-memory I2C chip and the device harness of fake_i2c.h.
 *
 * Linked into every unit test; defines only fake_i2c_* names. The fake owns
 * nothing on the heap; fake_i2c_dev_setup() allocates dev->state, which
 * fake_i2c_dev_free() releases.
 */
#include "fake_i2c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Count the transfer; return -errno when this one is to fail. */
static int fake_i2c_begin(struct fake_i2c *f)
{
	unsigned k = f->n_xfers++;

	if (f->fail_errno && k >= f->fail_skip && k - f->fail_skip < f->fail_count)
		return -f->fail_errno;
	return 0;
}

static void fake_i2c_log(struct fake_i2c *f, enum fake_i2c_op op, uint8_t reg, const uint8_t *buf, size_t n,
                         int result)
{
	struct fake_i2c_xfer *x;
	unsigned k = f->n_xfers - 1;

	if (k >= FAKE_I2C_LOG_MAX)
		return;
	x = &f->log[k];
	x->op = op;
	x->reg = reg;
	x->len = n;
	x->result = result;
	if (buf && result == 0)
		memcpy(x->data, buf, n < FAKE_I2C_DATA_MAX ? n : FAKE_I2C_DATA_MAX);
}

static int fake_i2c_read_reg(void *ctx, uint8_t reg, uint8_t *buf, size_t n)
{
	struct fake_i2c *f = ctx;
	int r = fake_i2c_begin(f);

	if (r == 0 && (n == 0 || n > 256 - (size_t)reg))
		r = -EINVAL;
	if (r == 0 && !(f->on_read_reg && f->on_read_reg(f, reg, buf, n)))
		memcpy(buf, &f->regs[reg], n);
	fake_i2c_log(f, FAKE_I2C_READ_REG, reg, buf, n, r);
	return r;
}

static int fake_i2c_write_reg(void *ctx, uint8_t reg, const uint8_t *buf, size_t n)
{
	struct fake_i2c *f = ctx;
	int r = fake_i2c_begin(f);

	if (r == 0 && (n == 0 || n > 256 - (size_t)reg))
		r = -EINVAL;
	if (r == 0)
		memcpy(&f->regs[reg], buf, n);
	fake_i2c_log(f, FAKE_I2C_WRITE_REG, reg, buf, n, r);
	if (r == 0 && f->on_write)
		f->on_write(f, FAKE_I2C_WRITE_REG, reg, buf, n);
	return r;
}

static int fake_i2c_write(void *ctx, const uint8_t *buf, size_t n)
{
	struct fake_i2c *f = ctx;
	int r = fake_i2c_begin(f);

	if (r == 0 && n == 0)
		r = -EINVAL;
	fake_i2c_log(f, FAKE_I2C_WRITE, 0, buf, n, r);
	if (r == 0 && f->on_write)
		f->on_write(f, FAKE_I2C_WRITE, 0, buf, n);
	return r;
}

static int fake_i2c_read(void *ctx, uint8_t *buf, size_t n)
{
	struct fake_i2c *f = ctx;
	int r = fake_i2c_begin(f);

	if (r == 0 && (n == 0 || n > f->rx_len))
		r = -EREMOTEIO; /* nothing to send: the chip NACKs its read header */
	if (r == 0)
		memcpy(buf, f->rx, n);
	fake_i2c_log(f, FAKE_I2C_READ, 0, buf, n, r);
	return r;
}

static const struct sg_i2c_ops fake_i2c_ops = {
	.read_reg = fake_i2c_read_reg,
	.write_reg = fake_i2c_write_reg,
	.write = fake_i2c_write,
	.read = fake_i2c_read,
};

void fake_i2c_init(struct fake_i2c *f)
{
	memset(f, 0, sizeof(*f));
	f->i2c.ops = &fake_i2c_ops;
	f->i2c.ctx = f;
}

void fake_i2c_attach(struct fake_i2c *f, struct sg_dev *dev)
{
	dev->i2c = f ? &f->i2c : NULL;
}

void fake_i2c_put_le16(struct fake_i2c *f, uint8_t reg, uint16_t v)
{
	f->regs[reg] = (uint8_t)(v & 0xff);
	f->regs[(uint8_t)(reg + 1)] = (uint8_t)(v >> 8);
}

unsigned fake_i2c_count(const struct fake_i2c *f, enum fake_i2c_op op, int reg)
{
	unsigned n = 0, max = f->n_xfers < FAKE_I2C_LOG_MAX ? f->n_xfers : FAKE_I2C_LOG_MAX;

	for (unsigned i = 0; i < max; i++)
		if (f->log[i].op == op && (reg < 0 || f->log[i].reg == reg))
			n++;
	return n;
}

const struct fake_i2c_xfer *fake_i2c_last(const struct fake_i2c *f, enum fake_i2c_op op)
{
	unsigned max = f->n_xfers < FAKE_I2C_LOG_MAX ? f->n_xfers : FAKE_I2C_LOG_MAX;

	for (unsigned i = max; i-- > 0;)
		if (f->log[i].op == op)
			return &f->log[i];
	return NULL;
}

/* ---- device harness --------------------------------------------------------------------------- */

static void fake_i2c_on_emit(struct sg_dev *dev, const struct sg_reading *r, void *ud)
{
	struct fake_i2c_sink *s = ud;
	struct fake_i2c_reading *o;

	(void)dev;
	if (s->n >= sizeof(s->r) / sizeof(s->r[0]))
		return;
	o = &s->r[s->n++];
	snprintf(o->field, sizeof(o->field), "%s", r->field);
	o->kind = r->kind;
	o->number = r->kind == SG_VALUE_NUMBER ? r->number : 0;
	snprintf(o->unit, sizeof(o->unit), "%s", r->unit ? r->unit : "");
}

static void fake_i2c_on_fail(struct sg_dev *dev, enum sg_fail f, const char *detail, void *ud)
{
	struct fake_i2c_sink *s = ud;

	(void)dev;
	s->n_fail++;
	s->last_fail = f;
	snprintf(s->last_detail, sizeof(s->last_detail), "%s", detail ? detail : "");
}

void fake_i2c_dev_setup(struct sg_dev *dev, const struct sg_driver *drv, const void *opts, struct fake_i2c *f,
                        struct fake_i2c_sink *sink)
{
	memset(dev, 0, sizeof(*dev));
	memset(sink, 0, sizeof(*sink));
	dev->name = "test";
	dev->driver = drv;
	dev->opts = opts;
	dev->fd = -1;
	dev->address = 0x76;
	dev->interval_s = 10.0;
	dev->emit = fake_i2c_on_emit;
	dev->on_fail = fake_i2c_on_fail;
	dev->userdata = sink;
	fake_i2c_attach(f, dev);
	if (drv->state_size) {
		dev->state = calloc(1, drv->state_size);
		if (!dev->state)
			abort(); /* a test harness: no way to go on */
	}
}

void fake_i2c_dev_free(struct sg_dev *dev)
{
	free(dev->state);
	dev->state = NULL;
}

const struct fake_i2c_reading *fake_i2c_find(const struct fake_i2c_sink *sink, const char *field)
{
	for (unsigned i = sink->n; i-- > 0;)
		if (strcmp(sink->r[i].field, field) == 0)
			return &sink->r[i];
	return NULL;
}
