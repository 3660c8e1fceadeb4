/* SPDX-License-Identifier: MIT */
/*
 * crc.c — CRC-16 with the reflected polynomial 0xA001 (see crc.h). Bitwise:
 * frames are at most a few hundred bytes, so a table buys nothing worth 512 bytes.
 */
#include "crc.h"

#define CRC16_POLY_REFLECTED 0xa001 /* x^16+x^15+x^2+1 bit-reversed */

uint16_t crc16_a001(uint16_t init, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	unsigned crc = init;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ CRC16_POLY_REFLECTED : crc >> 1;
	}
	return (uint16_t)crc;
}
