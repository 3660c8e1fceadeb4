/* SPDX-License-Identifier: MIT */
/*
 * fuzz_modbus_rtu.c — libFuzzer target: the Modbus RTU response path of modbus_proto.c.
 * The first bytes choose a request (fuzz_modbus_proto.h); the rest is the byte stream from
 * the line, framed as an RTU master does: slave address, the PDU length as
 * mbp_response_pdu_length() tells it byte by byte, the CRC; a frame that cannot be one drops
 * its first byte (resynchronisation). Every complete frame with a good CRC goes through the
 * decoder and the value mapping.
 */
#include "fuzz_modbus_proto.h"

#define FUZZ_SLAVE 17

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t req[MBP_MAX_PDU], buf[MBP_RTU_MAX_ADU];
	size_t req_len, len = 0;

	if (size < FUZZ_MB_SELECTOR)
		return 0;
	req_len = fuzz_mb_request(data, req, sizeof(req));
	data += FUZZ_MB_SELECTOR;
	size -= FUZZ_MB_SELECTOR;
	for (size_t i = 0; i < size; i++) {
		buf[len++] = data[i];
		for (;;) {
			int need = len > 1 ? mbp_response_pdu_length(req, req_len, buf + 1, len - 1) : 0;

			if (buf[0] == FUZZ_SLAVE && need == 0)
				break; /* more bytes */
			if (buf[0] == FUZZ_SLAVE && need > 0) {
				size_t total = 1 + (size_t)need + 2;

				if (total > sizeof(buf))
					__builtin_trap(); /* a PDU is at most 253 bytes */
				if (len < total)
					break;
				if (mbp_rtu_crc_ok(buf, total)) {
					fuzz_mb_check_response(req, req_len, buf + 1, (size_t)need);
					len = 0;
					break;
				}
			}
			memmove(buf, buf + 1, --len); /* not a frame here: resynchronise on the next byte */
			if (len == 0)
				break;
		}
	}
	/* and the whole input as one PDU, framing aside */
	fuzz_mb_check_response(req, req_len, data, size > MBP_MAX_PDU ? MBP_MAX_PDU : size);
	return 0;
}
