/* SPDX-License-Identifier: MIT */
/*
 * frame.h — the receiving side of the drivers of fixed binary frames that a
 * sensor sends by itself (pms5003, sds011 in active mode): bytes go into the
 * driver's buffer one at a time, a driver's check says whether they are a
 * frame yet, a whole frame is handed to the driver, and anything else is
 * counted and skipped up to the next start byte. Request drivers (mhz19,
 * modbus) skip to the next start byte in what their line offers instead.
 * Nothing allocated, nothing logged (faults go through sg_dev_fail()).
 */
#ifndef SG_FRAME_H
#define SG_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"

/* What a check says of the bytes buffered so far. */
enum frame_verdict {
	FRAME_MORE, /* a prefix of a frame: wait for more */
	FRAME_OK,   /* one whole, valid frame */
	FRAME_BAD,  /* not a frame: *fail and *why say how (SG_FAIL_GARBAGE: cannot start one) */
};

/* A driver's frame format. check() must not answer FRAME_MORE once LEN reaches SIZE. */
struct frame_format {
	size_t size;   /* bytes in a frame (the driver's buffer holds at least this many) */
	uint8_t start; /* the first byte of every frame */
	enum frame_verdict (*check)(const uint8_t *buf, size_t len, enum sg_fail *fail, const char **why);
	void (*process)(struct sg_dev *dev, const uint8_t *frame); /* a frame check() found valid */
};

/* What is buffered: LEN bytes of the driver's BUF. */
struct frame_rx {
	size_t len;
	bool noise_counted; /* the garbage before the next frame is already counted: once a run */
};

/*
 * Feed IN (N bytes) through RX and BUF: every frame found goes to
 * F->process(), every fault to sg_dev_fail() (garbage once a run: a frame, a
 * reset or frame_rx_reset() starts the next).
 */
void frame_feed(struct sg_dev *dev, const struct frame_format *f, struct frame_rx *rx, uint8_t *buf,
                const uint8_t *in, size_t n);

static inline void frame_rx_reset(struct frame_rx *rx)
{
	rx->len = 0;
	rx->noise_counted = false;
}

/*
 * The frame in BUF (LEN bytes) cannot start at byte 0: drop that byte and
 * everything up to the next byte equal to START, which becomes byte 0.
 * Returns the new length (0 when no such byte is buffered).
 */
size_t frame_resync(uint8_t *buf, size_t len, uint8_t start);

#endif
