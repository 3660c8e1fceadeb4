/* SPDX-License-Identifier: MIT */
/*
 * line_dev.c — a sensor device as a user of its serial line: the line's
 * callbacks (line.h) turned into the driver's methods (driver.h). A request
 * driver is asked for its next request at each turn and handed what arrives
 * until it has its answer; after each transaction it asks for another turn,
 * until request() says the cycle is over. A streaming driver is fed the
 * bytes no transaction claimed. The glue record is allocated at attach and
 * freed at detach; it owns nothing else.
 */
#include <errno.h>
#include <stdlib.h>

#include "line.h"

struct line_dev {
	struct sg_dev *dev;
	void (*down)(struct sg_dev *dev, int err);
	uint8_t req[SG_LINE_TX_MAX];
};

static void line_dev_turn(void *ctx, uint64_t now_us)
{
	struct line_dev *ld = ctx;
	struct sg_dev *dev = ld->dev;
	uint64_t timeout_us = 0;
	int n;

	n = dev->driver->request(dev, ld->req, sizeof(ld->req), &timeout_us);
	if (n <= 0) {
		if (n < 0)
			sg_dev_fail(dev, SG_FAIL_IO, "request could not be made");
		line_done(dev->line, now_us);
		return;
	}
	if (line_send(dev->line, ld->req, (size_t)n, timeout_us, now_us) < 0)
		line_done(dev->line, now_us); /* the port failed: down() follows */
}

static ssize_t line_dev_rx(void *ctx, const uint8_t *buf, size_t len, uint64_t now_us)
{
	struct line_dev *ld = ctx;
	struct sg_dev *dev = ld->dev;
	struct sg_line_user *u = dev->line;
	ssize_t r;

	r = dev->driver->answer(dev, buf, len);
	if (r > 0) {
		line_done(u, now_us);
		line_want(u); /* the next request of the cycle, if any */
	}
	return r;
}

static void line_dev_ended(void *ctx, int result, uint64_t now_us)
{
	struct line_dev *ld = ctx;
	struct sg_dev *dev = ld->dev;

	(void)now_us;
	if (result < 0 && dev->driver->no_answer)
		dev->driver->no_answer(dev);
	if (dev->line)
		line_want(dev->line);
}

static void line_dev_stream(void *ctx, const uint8_t *buf, size_t len)
{
	struct line_dev *ld = ctx;

	ld->dev->driver->feed(ld->dev, buf, len);
}

static void line_dev_down(void *ctx, int err)
{
	struct line_dev *ld = ctx;

	if (ld->down)
		ld->down(ld->dev, err);
}

static const struct sg_line_ops line_dev_request_ops = {
	.turn = line_dev_turn,
	.rx = line_dev_rx,
	.ended = line_dev_ended,
	.stream = line_dev_stream,
	.down = line_dev_down,
};

int line_dev_attach(struct sg_lines *set, struct sg_dev *dev, const char *port, const char *usb_serial,
                    const struct sg_line_settings *settings, void (*down)(struct sg_dev *dev, int err))
{
	const struct sg_driver *drv = dev->driver;
	struct sg_line_user_params p = {
		.name = dev->name,
		.stream = drv->feed && sg_driver_streams(drv, dev->opts),
		.gap_chars = drv->line_gap_chars,
		.gap_min_us = drv->line_gap_min_us,
	};
	struct line_dev *ld;
	int r;

	if (drv->request && !drv->answer)
		return -EINVAL;
	ld = calloc(1, sizeof(*ld));
	if (!ld)
		return -ENOMEM;
	ld->dev = dev;
	ld->down = down;
	r = line_attach(set, port, usb_serial, settings, &p, &line_dev_request_ops, ld, &dev->line);
	if (r < 0) {
		free(ld);
		dev->line = NULL;
	}
	return r;
}

void line_dev_detach(struct sg_dev *dev)
{
	struct line_dev *ld;

	if (!dev->line)
		return;
	ld = line_user_ctx(dev->line);
	line_detach(dev->line);
	dev->line = NULL;
	free(ld);
}

int line_dev_want(struct sg_dev *dev)
{
	if (!dev->line || !dev->driver->request)
		return 0;
	return line_want(dev->line);
}
