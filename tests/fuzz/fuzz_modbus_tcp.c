/* SPDX-License-Identifier: MIT */
/*
 * fuzz_modbus_tcp.c — libFuzzer target: the Modbus TCP response path. The first bytes choose
 * a request (fuzz_modbus_proto.h) and the size of the writes; the rest arrives through a real
 * socket pair into a struct mbtcp_conn (bus_modbus_tcp.c) in pieces of that size, and every
 * ADU mbtcp_next() cuts out of the stream (the MBAP header, TCP §3.1.3) goes through the
 * decoder and the value mapping. A stream that is not Modbus TCP must be refused (-EPROTO),
 * never overrun the buffer.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drivers/bus_modbus_tcp.h"
#include "fuzz_modbus_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t req[MBP_MAX_PDU];
	struct mbtcp_conn c;
	size_t req_len, piece;
	int sv[2];

	if (size < FUZZ_MB_SELECTOR + 1)
		return 0;
	req_len = fuzz_mb_request(data, req, sizeof(req));
	piece = (size_t)data[FUZZ_MB_SELECTOR] % 64 + 1;
	data += FUZZ_MB_SELECTOR + 1;
	size -= FUZZ_MB_SELECTOR + 1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	mbtcp_init(&c);
	c.fd = sv[0];
	for (size_t off = 0; off < size; off += piece) {
		size_t n = size - off < piece ? size - off : piece;
		struct mbp_tcp_header h;
		const uint8_t *pdu;
		size_t len;
		int r;

		if (write(sv[1], data + off, n) != (ssize_t)n)
			break;
		if (mbtcp_read(&c) < 0)
			__builtin_trap(); /* the peer is still there */
		while ((r = mbtcp_next(&c, &h, &pdu, &len)) == 1) {
			if (len < 1 || len > MBP_MAX_PDU || h.protocol != 0)
				__builtin_trap();
			fuzz_mb_check_response(req, req_len, pdu, len);
		}
		if (r == -EPROTO)
			break; /* the driver drops such a connection */
		if (r != 0)
			__builtin_trap();
	}
	close(sv[1]);
	mbtcp_close(&c);
	return 0;
}
