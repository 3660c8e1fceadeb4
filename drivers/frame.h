/* SPDX-License-Identifier: MIT */
/*
 * frame.h — helpers shared by the drivers of fixed binary frames
 * (pms5003, sds011 in active mode). Pure functions on a driver's own buffer. Request
 * drivers (mhz19, modbus) skip to the next start byte in what their line offers instead.
 */
#ifndef SG_FRAME_H
#define SG_FRAME_H

#include <stddef.h>
#include <stdint.h>

/*
 * The frame in BUF (LEN bytes) cannot start at byte 0: drop that byte and
 * everything up to the next byte equal to START, which becomes byte 0.
 * Returns the new length (0 when no such byte is buffered).
 */
size_t frame_resync(uint8_t *buf, size_t len, uint8_t start);

#endif
