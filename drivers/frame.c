/* SPDX-License-Identifier: MIT */
/* frame.c — see frame.h. */
#include "frame.h"

#include <string.h>

size_t frame_resync(uint8_t *buf, size_t len, uint8_t start)
{
	const uint8_t *next = len > 1 ? memchr(buf + 1, start, len - 1) : NULL;

	if (!next)
		return 0;
	len -= (size_t)(next - buf);
	memmove(buf, next, len);
	return len;
}

void frame_feed(struct sg_dev *dev, const struct frame_format *f, struct frame_rx *rx, uint8_t *buf,
                const uint8_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (rx->len >= f->size) /* a check that broke its promise: never write past BUF */
			rx->len = 0;
		buf[rx->len++] = in[i];
		for (;;) {
			enum sg_fail fail = SG_FAIL_GARBAGE;
			const char *why = "bytes outside a frame";
			enum frame_verdict v = f->check(buf, rx->len, &fail, &why);

			if (v == FRAME_MORE)
				break;
			if (v == FRAME_OK) {
				f->process(dev, buf);
				frame_rx_reset(rx);
				break;
			}
			if (fail != SG_FAIL_GARBAGE || !rx->noise_counted)
				sg_dev_fail(dev, fail, why);
			rx->noise_counted = true; /* the rest of a rejected frame is not counted again */
			rx->len = frame_resync(buf, rx->len, f->start);
			if (rx->len == 0)
				break;
		}
	}
}
