/* SPDX-License-Identifier: MIT */
/*
 * fuzz_modbus_proto.h — shared by the Modbus response-parser targets (fuzz_modbus_rtu.c,
 * fuzz_modbus_tcp.c): a request chosen by the input's first bytes, and the checks every
 * response must pass through drivers/modbus_proto.c: the decoder's verdict, and for a read
 * every value of every type mapped out of its data by the planner's offsets, each finite.
 * A violation traps.
 */
#ifndef SG_FUZZ_MODBUS_PROTO_H
#define SG_FUZZ_MODBUS_PROTO_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "drivers/modbus_proto.h"

#define FUZZ_MB_SELECTOR 4 /* input bytes that choose the request */

/* The request PDU chosen by SEL[0..3] into REQ; its length (always > 0). */
static size_t fuzz_mb_request(const uint8_t *sel, uint8_t *req, size_t cap)
{
	static const uint8_t fcs[] = {1, 2, 3, 4, 5, 6, 15, 16};
	uint8_t fc = fcs[sel[0] % 8];
	uint16_t address = (uint16_t)(sel[1] << 8 | sel[2]);
	uint8_t data[256] = {0x55, 0xaa, 0x12, 0x34};
	unsigned count = (unsigned)sel[3] % 125 + 1;
	int n;

	if (address > 65536 - 2000)
		address = (uint16_t)(65536 - 2000);
	switch (fc) {
	case 1:
	case 2:
		n = mbp_encode_read(req, cap, fc, address, (uint16_t)(count * 16 % MBP_MAX_READ_BITS + 1));
		break;
	case 3:
	case 4:
		n = mbp_encode_read(req, cap, fc, address, (uint16_t)count);
		break;
	case 5:
		n = mbp_encode_write_coil(req, cap, address, sel[3] & 1);
		break;
	case 6:
		n = mbp_encode_write_register(req, cap, address, (uint16_t)(sel[3] * 257));
		break;
	case 15:
		n = mbp_encode_write_coils(req, cap, address, (uint16_t)count, data);
		break;
	default:
		n = mbp_encode_write_registers(req, cap, address, (uint16_t)(count % MBP_MAX_WRITE_REGISTERS + 1), data);
		break;
	}
	if (n <= 0)
		__builtin_trap(); /* every request built here is valid */
	return (size_t)n;
}

/* Response PDU RSP (LEN bytes) to REQ through the decoder and, for reads, the value mapping. */
static void fuzz_mb_check_response(const uint8_t *req, size_t req_len, const uint8_t *rsp, size_t len)
{
	static const enum mbp_type types[] = {MBP_U16, MBP_I16, MBP_U32, MBP_I32, MBP_U64, MBP_I64, MBP_F32, MBP_F64};
	struct mbp_entry e[8];
	struct mbp_block b[8];
	struct mbp_response r;
	int rc = mbp_decode_response(req, req_len, rsp, len, &r);
	double v;

	if (rc == MBP_EXCEPTION) {
		if (len != 2 || !mbp_exception_name(r.exception))
			__builtin_trap();
		return;
	}
	if (rc < 0) {
		if (!mbp_result_name(rc))
			__builtin_trap();
		return;
	}
	if (rc != MBP_OK)
		__builtin_trap();
	if (!r.data)
		return; /* a write's echo */
	if (r.data < rsp || r.data + r.data_len > rsp + len)
		__builtin_trap();
	if (r.function <= 2) {
		e[0] = (struct mbp_entry){.slave = 1, .function = r.function, .address = r.address, .count = 1,
		                          .fmt = {.type = MBP_BIT, .bit = -1, .scale = 1}};
		e[0].count = r.count > MBP_MAX_COUNT ? MBP_MAX_COUNT : r.count;
		if (mbp_plan(e, 1, 0, b, 1) != 1)
			__builtin_trap();
		b[0].count = r.count; /* the request's block */
		for (unsigned k = 0; k < e[0].count; k++)
			if (mbp_entry_value(&e[0], &b[0], &r, k, &v) < 0 || (v != 0 && v != 1))
				__builtin_trap();
		return;
	}
	/* one entry of each type, all at the start of the block, in every order */
	for (size_t t = 0; t < 8; t++) {
		struct mbp_format f = {.type = types[t], .byte_little = len & 1, .word_little = len & 2, .bit = -1,
		                       .scale = 0.5, .offset = -1};
		unsigned w = mbp_type_width(types[t]);
		uint8_t back[8];

		if (w > r.count)
			continue;
		e[0] = (struct mbp_entry){.slave = 1, .function = r.function, .address = r.address, .count = 1, .fmt = f};
		if (mbp_plan(e, 1, 0, b, 1) != 1)
			__builtin_trap();
		b[0].count = r.count;
		rc = mbp_entry_value(&e[0], &b[0], &r, 0, &v);
		if (rc == -EDOM)
			continue;
		if (rc < 0 || !isfinite(v))
			__builtin_trap();
		/* integers round-trip exactly through scale 0.5 and offset -1 */
		if (mbp_type_integer(types[t]) && types[t] != MBP_U64 && types[t] != MBP_I64) {
			if (mbp_value_encode(&f, v, back) < 0 || memcmp(back, r.data, 2 * w) != 0)
				__builtin_trap();
		}
	}
}

#endif
