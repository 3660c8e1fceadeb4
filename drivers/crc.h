/* SPDX-License-Identifier: MIT */
/*
 * crc.h — the one CRC-16 of the drivers: polynomial x^16+x^15+x^2+1 (0x8005),
 * processed least significant bit first (0xA001 bit-reversed), no final XOR.
 * With INIT 0 it is CRC-16/ARC (DSMR P1 5.0.2 §6.4); with INIT 0xFFFF it is
 * CRC-16/MODBUS (Modbus over Serial Line V1.02 §6.2.2). Pure, no state.
 */
#ifndef SG_CRC_H
#define SG_CRC_H

#include <stddef.h>
#include <stdint.h>

#define CRC16_ARC_INIT 0x0000
#define CRC16_MODBUS_INIT 0xffff

/* CRC-16 (poly 0xA001 reflected) of BUF[0..LEN), starting from INIT. */
uint16_t crc16_a001(uint16_t init, const void *buf, size_t len);

#endif
