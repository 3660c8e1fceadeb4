/* SPDX-License-Identifier: MIT */
/*
 * test_modbus_proto.c — unit tests of drivers/modbus_proto.c, the Modbus codec.
 *
 * Every function code is checked with the example request and response
 * of the MODBUS Application Protocol Specification V1.1b3 (§6.1, §6.2,
 * §6.3, §6.4, §6.5, §6.6, §6.11, §6.12 and the exception example of §7),
 * then each response is broken every way the decoder must refuse. Values:
 * every type in all four byte/word orders against hand-written register
 * bytes, encode/decode round trips, ranges, scale/offset, bits. RTU and
 * TCP framing; the block planner's edge cases; the register-table parser
 * and its error lines. test_modbus_tcp_libmodbus.c checks the same codec
 * against libmodbus over a real socket.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "drivers/crc.h"
#include "drivers/modbus_proto.h"

#define B(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

struct spec_example {
	const char *legend;
	const uint8_t *req;
	size_t req_len;
	const uint8_t *rsp;
	size_t rsp_len;
};

/* AP V1.1b3 §6.x examples, request and response PDUs as printed there. */
static const struct spec_example examples[] = {
	{"6.1 read coils 20-38", B(0x01, 0x00, 0x13, 0x00, 0x13), B(0x01, 0x03, 0xcd, 0x6b, 0x05)},
	{"6.2 read discrete inputs 197-218", B(0x02, 0x00, 0xc4, 0x00, 0x16), B(0x02, 0x03, 0xac, 0xdb, 0x35)},
	{"6.3 read holding 108-110", B(0x03, 0x00, 0x6b, 0x00, 0x03),
	 B(0x03, 0x06, 0x02, 0x2b, 0x00, 0x00, 0x00, 0x64)},
	{"6.4 read input register 9", B(0x04, 0x00, 0x08, 0x00, 0x01), B(0x04, 0x02, 0x00, 0x0a)},
	{"6.5 write coil 173 ON", B(0x05, 0x00, 0xac, 0xff, 0x00), B(0x05, 0x00, 0xac, 0xff, 0x00)},
	{"6.6 write register 2 = 3", B(0x06, 0x00, 0x01, 0x00, 0x03), B(0x06, 0x00, 0x01, 0x00, 0x03)},
	{"6.11 write coils 20-29", B(0x0f, 0x00, 0x13, 0x00, 0x0a, 0x02, 0xcd, 0x01), B(0x0f, 0x00, 0x13, 0x00, 0x0a)},
	{"6.12 write registers 2-3", B(0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0a, 0x01, 0x02),
	 B(0x10, 0x00, 0x01, 0x00, 0x02)},
};

static void assert_bytes(const uint8_t *got, int n, const uint8_t *want, size_t want_len)
{
	assert_int_equal(n, (int)want_len);
	assert_memory_equal(got, want, want_len);
}

/* Our encoders produce the spec's request bytes. */
static void test_encode_spec_requests(void **state)
{
	uint8_t pdu[MBP_MAX_PDU];
	(void)state;

	assert_bytes(pdu, mbp_encode_read(pdu, sizeof(pdu), 0x01, 0x13, 0x13), examples[0].req, examples[0].req_len);
	assert_bytes(pdu, mbp_encode_read(pdu, sizeof(pdu), 0x02, 0xc4, 0x16), examples[1].req, examples[1].req_len);
	assert_bytes(pdu, mbp_encode_read(pdu, sizeof(pdu), 0x03, 0x6b, 3), examples[2].req, examples[2].req_len);
	assert_bytes(pdu, mbp_encode_read(pdu, sizeof(pdu), 0x04, 0x08, 1), examples[3].req, examples[3].req_len);
	assert_bytes(pdu, mbp_encode_write_coil(pdu, sizeof(pdu), 0xac, true), examples[4].req, examples[4].req_len);
	assert_bytes(pdu, mbp_encode_write_register(pdu, sizeof(pdu), 1, 3), examples[5].req, examples[5].req_len);
	/* §6.11: coils 27..20 = CD, 29..28 = 01; bits above the 10th are ours to clear */
	assert_bytes(pdu, mbp_encode_write_coils(pdu, sizeof(pdu), 0x13, 10, (const uint8_t[]){0xcd, 0xfd}),
	             examples[6].req, examples[6].req_len);
	assert_bytes(pdu, mbp_encode_write_registers(pdu, sizeof(pdu), 1, 2, (const uint8_t[]){0x00, 0x0a, 0x01, 0x02}),
	             examples[7].req, examples[7].req_len);
	assert_int_equal(mbp_encode_write_coil(pdu, sizeof(pdu), 0xac, false), 5);
	assert_int_equal(pdu[3], 0x00);
	assert_int_equal(pdu[4], 0x00);
}

static void test_encode_limits(void **state)
{
	uint8_t pdu[MBP_MAX_PDU], data[256] = {0};
	(void)state;

	assert_int_equal(mbp_encode_read(pdu, sizeof(pdu), 0x03, 0, 125), 5);
	assert_int_equal(mbp_encode_read(pdu, sizeof(pdu), 0x03, 0, 126), -EINVAL);
	assert_int_equal(mbp_encode_read(pdu, sizeof(pdu), 0x04, 0, 0), -EINVAL);
	assert_int_equal(mbp_encode_read(pdu, sizeof(pdu), 0x01, 0, 2000), 5);
	assert_int_equal(mbp_encode_read(pdu, sizeof(pdu), 0x02, 0, 2001), -EINVAL);
	assert_int_equal(mbp_encode_read(pdu, sizeof(pdu), 0x03, 65535, 1), 5);
	assert_int_equal(mbp_encode_read(pdu, sizeof(pdu), 0x03, 65535, 2), -EINVAL); /* beyond the address space */
	assert_int_equal(mbp_encode_read(pdu, sizeof(pdu), 0x05, 0, 1), -EINVAL);
	assert_int_equal(mbp_encode_read(pdu, 4, 0x03, 0, 1), -ENOSPC);
	assert_int_equal(mbp_encode_write_registers(pdu, sizeof(pdu), 0, 123, data), 6 + 246);
	assert_int_equal(mbp_encode_write_registers(pdu, sizeof(pdu), 0, 124, data), -EINVAL);
	assert_int_equal(mbp_encode_write_coils(pdu, sizeof(pdu), 0, 1968, data), 6 + 246);
	assert_int_equal(mbp_encode_write_coils(pdu, sizeof(pdu), 0, 1969, data), -EINVAL);
	assert_int_equal(mbp_encode_write_registers(pdu, 10, 0, 3, data), -ENOSPC);
}

/* The spec's responses decode to the spec's values. */
static void test_decode_spec_responses(void **state)
{
	struct mbp_response r;
	static const int coils[19] = {1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1}; /* §6.1: 20..38 */
	static const int inputs[22] = {0, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1}; /* §6.2 */
	(void)state;

	for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
		const struct spec_example *x = &examples[i];
		print_message("%s\n", x->legend);
		assert_int_equal(mbp_decode_response(x->req, x->req_len, x->rsp, x->rsp_len, &r), MBP_OK);
		assert_int_equal(r.function, x->req[0]);
		assert_int_equal(mbp_response_pdu_length(x->req, x->req_len, x->rsp, x->rsp_len), (int)x->rsp_len);
	}
	mbp_decode_response(examples[0].req, 5, examples[0].rsp, 5, &r);
	assert_int_equal(r.count, 19);
	for (unsigned k = 0; k < 19; k++)
		assert_int_equal(mbp_bit(r.data, k), coils[k]);
	mbp_decode_response(examples[1].req, 5, examples[1].rsp, 5, &r);
	for (unsigned k = 0; k < 22; k++)
		assert_int_equal(mbp_bit(r.data, k), inputs[k]);
	mbp_decode_response(examples[2].req, 5, examples[2].rsp, 8, &r);
	assert_int_equal(r.address, 0x6b);
	assert_int_equal(r.data_len, 6);
	assert_int_equal(r.data[0] << 8 | r.data[1], 555); /* §6.3: register 108 = 0x022B */
	assert_int_equal(r.data[4] << 8 | r.data[5], 100);
	mbp_decode_response(examples[3].req, 5, examples[3].rsp, 4, &r);
	assert_int_equal(r.data[0] << 8 | r.data[1], 10); /* §6.4: register 9 = 0x000A */
}

/* §7: the exception example, and every code's name. */
static void test_exceptions(void **state)
{
	struct mbp_response r;
	(void)state;

	/* §7 example: read coils at 0x04A1 (1185) answered with exception 02 */
	assert_int_equal(mbp_decode_response(B(0x01, 0x04, 0xa1, 0x00, 0x01), B(0x81, 0x02), &r), MBP_EXCEPTION);
	assert_int_equal(r.exception, 2);
	assert_string_equal(mbp_exception_name(r.exception), "illegal data address");
	assert_int_equal(mbp_response_pdu_length(B(0x01, 0x04, 0xa1, 0x00, 0x01), B(0x81)), 2);
	assert_int_equal(mbp_decode_response(B(0x10, 0x00, 0x01, 0x00, 0x01, 0x02, 0x00, 0x01), B(0x90, 0x04), &r),
	                 MBP_EXCEPTION);
	assert_string_equal(mbp_exception_name(r.exception), "server device failure");
	assert_int_equal(mbp_decode_response(B(0x03, 0x00, 0x00, 0x00, 0x01), B(0x83), &r), MBP_ERR_SHORT);
	assert_int_equal(mbp_decode_response(B(0x03, 0x00, 0x00, 0x00, 0x01), B(0x83, 0x02, 0x00), &r), MBP_ERR_LONG);
	assert_int_equal(mbp_decode_response(B(0x03, 0x00, 0x00, 0x00, 0x01), B(0x84, 0x02), &r), MBP_ERR_FUNCTION);
	assert_string_equal(mbp_exception_name(1), "illegal function");
	assert_string_equal(mbp_exception_name(3), "illegal data value");
	assert_string_equal(mbp_exception_name(5), "acknowledge");
	assert_string_equal(mbp_exception_name(6), "server device busy");
	assert_string_equal(mbp_exception_name(8), "memory parity error");
	assert_string_equal(mbp_exception_name(10), "gateway path unavailable");
	assert_string_equal(mbp_exception_name(11), "gateway target device failed to respond");
	assert_string_equal(mbp_exception_name(7), "unknown exception");
}

/* Each spec response, spoilt: cut, extended, wrong function, wrong byte count, bad echo. */
static void test_decode_refusals(void **state)
{
	struct mbp_response r;
	uint8_t buf[64];
	(void)state;

	for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
		const struct spec_example *x = &examples[i];

		for (size_t cut = 0; cut < x->rsp_len; cut++)
			assert_int_equal(mbp_decode_response(x->req, x->req_len, x->rsp, cut, &r), MBP_ERR_SHORT);
		memcpy(buf, x->rsp, x->rsp_len);
		buf[x->rsp_len] = 0;
		assert_int_equal(mbp_decode_response(x->req, x->req_len, buf, x->rsp_len + 1, &r), MBP_ERR_LONG);
		buf[0] = (uint8_t)(x->rsp[0] == 0x03 ? 0x04 : 0x03);
		assert_int_equal(mbp_decode_response(x->req, x->req_len, buf, x->rsp_len, &r), MBP_ERR_FUNCTION);
		memcpy(buf, x->rsp, x->rsp_len);
		if (x->req[0] <= 0x04) {
			buf[1]++;
			assert_int_equal(mbp_decode_response(x->req, x->req_len, buf, x->rsp_len, &r), MBP_ERR_BYTE_COUNT);
			assert_int_equal(mbp_response_pdu_length(x->req, x->req_len, buf, 2), MBP_ERR_BYTE_COUNT);
		} else {
			for (size_t k = 1; k < 5; k++) {
				memcpy(buf, x->rsp, x->rsp_len);
				buf[k] ^= 0x01;
				assert_int_equal(mbp_decode_response(x->req, x->req_len, buf, x->rsp_len, &r), MBP_ERR_ECHO);
			}
		}
	}
	/* a request we never send */
	assert_int_equal(mbp_decode_response(B(0x07), B(0x07, 0x00), &r), MBP_ERR_REQUEST);
	assert_int_equal(mbp_decode_response(B(0x03, 0x00, 0x00, 0x00, 0x00), B(0x03, 0x00), &r), MBP_ERR_REQUEST);
	assert_int_equal(mbp_decode_response(B(0x10, 0x00, 0x01, 0x00, 0x01, 0x04, 0x00, 0x01), B(0x10), &r),
	                 MBP_ERR_REQUEST); /* byte count disagrees with its length */
	assert_string_equal(mbp_result_name(MBP_ERR_ECHO), "write response does not echo the request");
}

/* RTU: the classic 01 03 00 00 00 01 84 0A, and CRC-16/ARC (DSMR's) from the same helper. */
static void test_rtu_frame(void **state)
{
	uint8_t adu[MBP_RTU_MAX_ADU], pdu[8];
	int n;
	(void)state;

	n = mbp_encode_read(pdu, sizeof(pdu), 0x03, 0, 1);
	n = mbp_rtu_frame(adu, sizeof(adu), 1, pdu, (size_t)n);
	assert_bytes(adu, n, B(0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0a));
	assert_true(mbp_rtu_crc_ok(adu, (size_t)n));
	adu[3] ^= 1;
	assert_false(mbp_rtu_crc_ok(adu, (size_t)n));
	/* Serial Line V1.02 Appendix B example: 11 03 00 6B 00 03 -> CRC 76 87 */
	n = mbp_rtu_frame(adu, sizeof(adu), 0x11, examples[2].req, examples[2].req_len);
	assert_bytes(adu, n, B(0x11, 0x03, 0x00, 0x6b, 0x00, 0x03, 0x76, 0x87));
	assert_int_equal(crc16_a001(CRC16_ARC_INIT, "123456789", 9), 0xbb3d); /* CRC-16/ARC check value */
	assert_int_equal(crc16_a001(CRC16_MODBUS_INIT, "123456789", 9), 0x4b37); /* CRC-16/MODBUS check value */
	assert_int_equal(mbp_rtu_frame(adu, 5, 1, pdu, 5), -ENOSPC);
	assert_false(mbp_rtu_crc_ok(adu, 3));
}

/* TCP: MBAP header around the §6.3 example, and every header refusal. */
static void test_tcp_frame(void **state)
{
	uint8_t adu[MBP_TCP_MAX_ADU];
	struct mbp_tcp_header h;
	int n;
	(void)state;

	n = mbp_tcp_frame(adu, sizeof(adu), 0x1501, 0xff, examples[2].req, examples[2].req_len);
	assert_bytes(adu, n, B(0x15, 0x01, 0x00, 0x00, 0x00, 0x06, 0xff, 0x03, 0x00, 0x6b, 0x00, 0x03));
	assert_int_equal(mbp_tcp_header_parse(adu, 6, &h), 0);
	assert_int_equal(mbp_tcp_header_parse(adu, 7, &h), 12);
	assert_int_equal(h.transaction, 0x1501);
	assert_int_equal(h.unit, 0xff);
	assert_int_equal(h.length, 6);
	assert_int_equal(mbp_tcp_header_parse(B(0x00, 0x01, 0x00, 0x01, 0x00, 0x03, 0x01), &h), -EPROTO);
	assert_int_equal(mbp_tcp_header_parse(B(0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x01), &h), -EPROTO);
	assert_int_equal(mbp_tcp_header_parse(B(0x00, 0x01, 0x00, 0x00, 0x00, 0xff, 0x01), &h), -EPROTO);
	assert_int_equal(mbp_tcp_header_parse(B(0x00, 0x01, 0x00, 0x00, 0x00, 0xfe, 0x01), &h), 260);
	assert_int_equal(mbp_tcp_frame(adu, sizeof(adu), 1, 1, examples[2].req, 0), -EINVAL);
	assert_int_equal(MBP_TCP_MAX_ADU, 260);
}

struct value_case {
	enum mbp_type type;
	bool byte_little, word_little;
	uint8_t regs[8];
	double want;
};

/* One value, 0x0102030405060708-style patterns in every order; results computed by hand. */
static const struct value_case value_cases[] = {
	{MBP_U16, false, false, {0x12, 0x34}, 0x1234},
	{MBP_U16, true, false, {0x34, 0x12}, 0x1234},
	{MBP_I16, false, false, {0xff, 0xfe}, -2},
	{MBP_I16, true, true, {0xfe, 0xff}, -2},
	{MBP_U32, false, false, {0x00, 0x01, 0x00, 0x02}, 65538},                  /* ABCD */
	{MBP_U32, false, true, {0x00, 0x02, 0x00, 0x01}, 65538},                   /* CDAB */
	{MBP_U32, true, false, {0x01, 0x00, 0x02, 0x00}, 65538},                   /* BADC */
	{MBP_U32, true, true, {0x02, 0x00, 0x01, 0x00}, 65538},                    /* DCBA */
	{MBP_I32, false, false, {0xff, 0xff, 0xff, 0x85}, -123},
	{MBP_I32, false, true, {0xff, 0x85, 0xff, 0xff}, -123},
	{MBP_I32, true, false, {0xff, 0xff, 0x85, 0xff}, -123},
	{MBP_I32, true, true, {0x85, 0xff, 0xff, 0xff}, -123},
	{MBP_F32, false, false, {0x43, 0x66, 0x80, 0x00}, 230.5},                  /* 0x43668000 */
	{MBP_F32, false, true, {0x80, 0x00, 0x43, 0x66}, 230.5},
	{MBP_F32, true, false, {0x66, 0x43, 0x00, 0x80}, 230.5},
	{MBP_F32, true, true, {0x00, 0x80, 0x66, 0x43}, 230.5},
	{MBP_U64, false, false, {0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02}, 4294967298.0},
	{MBP_U64, false, true, {0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}, 4294967298.0},
	{MBP_U64, true, false, {0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00}, 4294967298.0},
	{MBP_U64, true, true, {0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00}, 4294967298.0},
	{MBP_I64, false, false, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, -2},
	{MBP_I64, false, true, {0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, -2},
	{MBP_I64, true, false, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff}, -2},
	{MBP_I64, true, true, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, -2},
	{MBP_F64, false, false, {0x40, 0x6c, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00}, 230.5}, /* 0x406CD00000000000 */
	{MBP_F64, false, true, {0x00, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x40, 0x6c}, 230.5},
	{MBP_F64, true, false, {0x6c, 0x40, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x00}, 230.5},
	{MBP_F64, true, true, {0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x6c, 0x40}, 230.5},
};

static void test_values_every_type_and_order(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
		const struct value_case *c = &value_cases[i];
		struct mbp_format f = {.type = c->type, .byte_little = c->byte_little, .word_little = c->word_little,
		                       .bit = -1, .scale = 1, .offset = 0};
		uint8_t regs[8] = {0};
		double v = 0;

		print_message("case %zu: %s byte %s word %s\n", i, mbp_type_name(c->type), c->byte_little ? "little" : "big",
		              c->word_little ? "little" : "big");
		assert_int_equal(mbp_value_decode(&f, c->regs, &v), 0);
		assert_true(v == c->want);
		assert_int_equal(mbp_value_encode(&f, c->want, regs), 0);
		assert_memory_equal(regs, c->regs, 2 * mbp_type_width(c->type));
	}
}

static void test_values_scale_offset_bits_ranges(void **state)
{
	struct mbp_format f = {.type = MBP_I16, .bit = -1, .scale = 0.1, .offset = -40};
	uint8_t regs[8];
	double v;
	(void)state;

	/* 0x0271 = 625 -> 62.5 - 40 = 22.5 */
	assert_int_equal(mbp_value_decode(&f, (const uint8_t[]){0x02, 0x71}, &v), 0);
	assert_true(fabs(v - 22.5) < 1e-9);
	assert_int_equal(mbp_value_encode(&f, 22.5, regs), 0);
	assert_int_equal(regs[0] << 8 | regs[1], 625);
	assert_int_equal(mbp_value_encode(&f, 3400, regs), -ERANGE); /* 34400 > 32767 */
	assert_int_equal(mbp_value_encode(&f, NAN, regs), -EINVAL);
	f = (struct mbp_format){.type = MBP_U16, .bit = -1, .scale = 1};
	assert_int_equal(mbp_value_encode(&f, -1, regs), -ERANGE);
	assert_int_equal(mbp_value_encode(&f, 65535.4, regs), 0);
	assert_int_equal(mbp_value_encode(&f, 65535.6, regs), -ERANGE);
	f.type = MBP_U32;
	assert_int_equal(mbp_value_encode(&f, 4294967296.0, regs), -ERANGE);
	f.type = MBP_I32;
	assert_int_equal(mbp_value_encode(&f, -2147483648.0, regs), 0);
	assert_memory_equal(regs, ((const uint8_t[]){0x80, 0, 0, 0}), 4);
	f.type = MBP_F32;
	assert_int_equal(mbp_value_encode(&f, 1e39, regs), -ERANGE);
	/* NaN and infinity read from a device are refused */
	assert_int_equal(mbp_value_decode(&f, (const uint8_t[]){0x7f, 0xc0, 0x00, 0x00}, &v), -EDOM);
	assert_int_equal(mbp_value_decode(&f, (const uint8_t[]){0x7f, 0x80, 0x00, 0x00}, &v), -EDOM);
	f.type = MBP_F64;
	assert_int_equal(mbp_value_decode(&f, (const uint8_t[]){0xff, 0xf0, 0, 0, 0, 0, 0, 0}, &v), -EDOM);
	/* bit fields: bit 0 and bit 15 of 0x8001, bit 17 of a u32 */
	f = (struct mbp_format){.type = MBP_U16, .bit = 15, .scale = 1};
	assert_int_equal(mbp_value_decode(&f, (const uint8_t[]){0x80, 0x01}, &v), 0);
	assert_true(v == 1);
	f.bit = 1;
	assert_int_equal(mbp_value_decode(&f, (const uint8_t[]){0x80, 0x01}, &v), 0);
	assert_true(v == 0);
	f = (struct mbp_format){.type = MBP_U32, .bit = 17, .scale = 1};
	assert_int_equal(mbp_value_decode(&f, (const uint8_t[]){0x00, 0x02, 0x00, 0x00}, &v), 0);
	assert_true(v == 1);
	assert_int_equal(mbp_value_encode(&f, 1, regs), -EINVAL);
	f = (struct mbp_format){.type = MBP_BIT, .bit = -1, .scale = 1};
	assert_int_equal(mbp_value_encode(&f, 1, regs), -EINVAL);
	assert_int_equal(mbp_value_decode(&f, regs, &v), -EINVAL);
}

/* ---- planner ----------------------------------------------------------------------------------- */

static struct mbp_entry entry(uint8_t slave, uint8_t fc, uint16_t address, enum mbp_type type, uint16_t count)
{
	struct mbp_entry e = {.slave = slave, .function = fc, .address = address, .count = count};

	e.fmt = (struct mbp_format){.type = fc <= 2 ? MBP_BIT : type, .bit = -1, .scale = 1};
	return e;
}

static void test_plan_merges_adjacent(void **state)
{
	struct mbp_entry e[] = {
		entry(1, 3, 10, MBP_F32, 1), /* 10-11 */
		entry(1, 3, 0, MBP_U16, 1),  /* 0 */
		entry(1, 3, 12, MBP_U16, 1), /* 12 */
		entry(1, 3, 1, MBP_U32, 1),  /* 1-2 */
		entry(1, 4, 0, MBP_U16, 1),  /* another function */
		entry(2, 3, 0, MBP_U16, 1),  /* another slave */
		entry(1, 3, 11, MBP_U16, 1), /* overlaps the f32 */
	};
	struct mbp_block b[8];
	int n;
	(void)state;

	n = mbp_plan(e, 7, 0, b, 8);
	assert_int_equal(n, 4);
	assert_int_equal(b[0].slave, 1);
	assert_int_equal(b[0].function, 3);
	assert_int_equal(b[0].address, 0);
	assert_int_equal(b[0].count, 3);
	assert_int_equal(b[1].address, 10);
	assert_int_equal(b[1].count, 3);
	assert_int_equal(b[2].function, 4);
	assert_int_equal(b[3].slave, 2);
	assert_int_equal(e[0].block, 1);
	assert_int_equal(e[0].offset, 0);
	assert_int_equal(e[2].offset, 2);
	assert_int_equal(e[3].block, 0);
	assert_int_equal(e[3].offset, 1);
	assert_int_equal(e[6].block, 1);
	assert_int_equal(e[6].offset, 1);
	/* a gap of 7 (3..9) joins everything of slave 1 fc 3 with max_gap 7, not with 6 */
	assert_int_equal(mbp_plan(e, 7, 6, b, 8), 4);
	assert_int_equal(mbp_plan(e, 7, 7, b, 8), 3);
	assert_int_equal(b[0].count, 13);
	assert_int_equal(e[0].offset, 10);
}

static void test_plan_limits(void **state)
{
	struct mbp_entry e[130];
	struct mbp_block b[130];
	int n;
	(void)state;

	/* 126 adjacent registers: 125 in one request, the 126th in the next */
	for (unsigned i = 0; i < 126; i++)
		e[i] = entry(1, 3, (uint16_t)i, MBP_U16, 1);
	n = mbp_plan(e, 126, 0, b, 130);
	assert_int_equal(n, 2);
	assert_int_equal(b[0].count, 125);
	assert_int_equal(b[1].address, 125);
	assert_int_equal(b[1].count, 1);
	/* a u32 straddling the 125 boundary moves whole to the next block */
	for (unsigned i = 0; i < 124; i++)
		e[i] = entry(1, 4, (uint16_t)i, MBP_U16, 1);
	e[124] = entry(1, 4, 124, MBP_U32, 1);
	n = mbp_plan(e, 125, 0, b, 130);
	assert_int_equal(n, 2);
	assert_int_equal(b[0].count, 124);
	assert_int_equal(b[1].address, 124);
	assert_int_equal(b[1].count, 2);
	/* coils: 2000 in one request, then a new one */
	e[0] = entry(1, 1, 0, MBP_BIT, 125);
	for (unsigned i = 1; i < 17; i++)
		e[i] = entry(1, 1, (uint16_t)(125 * i), MBP_BIT, 125); /* 16 x 125 = 2000 */
	n = mbp_plan(e, 17, 0, b, 130);
	assert_int_equal(n, 2);
	assert_int_equal(b[0].count, 2000);
	assert_int_equal(b[1].count, 125);
	/* one entry wider than a request, and too little room */
	e[0] = entry(1, 3, 0, MBP_U64, 32); /* 128 registers */
	assert_int_equal(mbp_plan(e, 1, 0, b, 130), -E2BIG);
	e[0] = entry(1, 3, 0, MBP_U16, 1);
	e[1] = entry(2, 3, 0, MBP_U16, 1);
	assert_int_equal(mbp_plan(e, 2, 0, b, 1), -E2BIG);
	/* nothing to plan */
	assert_int_equal(mbp_plan(e, 0, 0, b, 1), 0);
	/* the top of the address space */
	e[0] = entry(1, 3, 65534, MBP_U16, 1);
	e[1] = entry(1, 3, 65535, MBP_U16, 1);
	assert_int_equal(mbp_plan(e, 2, 0, b, 2), 1);
	assert_int_equal(b[0].count, 2);
}

/* The response of a block maps back to each entry, bits and registers. */
static void test_entry_values(void **state)
{
	struct mbp_entry e[] = {entry(1, 3, 0x6b, MBP_U16, 1), entry(1, 3, 0x6c, MBP_U32, 1),
	                        entry(1, 1, 0x13, MBP_BIT, 19)};
	struct mbp_block b[3];
	struct mbp_response r;
	double v;
	(void)state;

	assert_int_equal(mbp_plan(e, 3, 0, b, 3), 2);
	assert_int_equal(mbp_decode_response(examples[2].req, 5, examples[2].rsp, 8, &r), MBP_OK);
	assert_int_equal(mbp_entry_value(&e[0], &b[e[0].block], &r, 0, &v), 0);
	assert_true(v == 555);
	assert_int_equal(mbp_entry_value(&e[1], &b[e[1].block], &r, 0, &v), 0);
	assert_true(v == 100); /* 0x0000 0x0064 */
	assert_int_equal(mbp_entry_value(&e[0], &b[e[0].block], &r, 1, &v), -EINVAL);
	assert_int_equal(mbp_decode_response(examples[0].req, 5, examples[0].rsp, 5, &r), MBP_OK);
	assert_int_equal(mbp_entry_value(&e[2], &b[e[2].block], &r, 0, &v), 0);
	assert_true(v == 1);
	assert_int_equal(mbp_entry_value(&e[2], &b[e[2].block], &r, 18, &v), 0);
	assert_true(v == 1); /* coil 38: bit 2 of 0x05 */
	assert_int_equal(mbp_entry_value(&e[2], &b[e[2].block], &r, 17, &v), 0);
	assert_true(v == 0);
	/* the response of another block is refused */
	assert_int_equal(mbp_entry_value(&e[0], &b[e[0].block], &r, 0, &v), -EINVAL);
}

/* ---- the table parser ------------------------------------------------------------------------- */

static int parse(const char *text, struct mbp_table *t, struct sg_opt_error *err)
{
	config_t cfg;
	int r;

	config_init(&cfg);
	*t = (struct mbp_table){0};
	memset(err, 0, sizeof(*err));
	assert_int_equal(config_read_string(&cfg, text), CONFIG_TRUE);
	r = mbp_table_add(t, config_lookup(&cfg, "registers"), 7, err);
	if (r == 0)
		r = mbp_table_gap(t, config_root_setting(&cfg), err);
	if (r == 0)
		r = mbp_table_plan(t, err);
	config_destroy(&cfg);
	return r;
}

static void test_table_parse(void **state)
{
	struct mbp_table t;
	struct sg_opt_error err;
	(void)state;

	assert_int_equal(parse("max_gap = 2;\nregisters = (\n"
	                       " { name = \"v\"; address = 0; type = \"float32\"; function = \"input\"; unit = \"V\"; },\n"
	                       " { name = \"e\"; address = 4; type = \"u64\"; function = \"input\"; word_order = \"little\";"
	                       "   byte_order = \"little\"; scale = 0.001; offset = 5; },\n"
	                       " { name = \"alarm\"; address = 9; bit = 3; },\n"
	                       " { name = \"relay\"; address = 0; function = \"coil\"; count = 4; },\n"
	                       " { name = \"t\"; address = 10; type = \"int16\"; scale = 0.1; }\n"
	                       ");",
	                       &t, &err),
	                 0);
	assert_int_equal(t.n_entries, 5);
	assert_int_equal(t.max_gap, 2);
	assert_int_equal(t.entries[0].slave, 7);
	assert_int_equal(t.entries[0].function, MBP_FC_READ_INPUT);
	assert_int_equal(t.entries[0].fmt.type, MBP_F32);
	assert_string_equal(t.entries[0].unit, "V");
	assert_int_equal(t.entries[1].fmt.type, MBP_U64);
	assert_true(t.entries[1].fmt.word_little && t.entries[1].fmt.byte_little);
	assert_true(t.entries[1].fmt.scale == 0.001 && t.entries[1].fmt.offset == 5);
	assert_int_equal(t.entries[2].fmt.bit, 3);
	assert_int_equal(t.entries[2].function, MBP_FC_READ_HOLDING);
	assert_int_equal(t.entries[3].fmt.type, MBP_BIT);
	assert_int_equal(t.entries[3].count, 4);
	assert_int_equal(t.entries[3].line, 6);
	/* coils 0-3; holding 9-10 (alarm, t); input 0-1 and 4-7 joined over the gap of 2 */
	assert_int_equal(t.n_blocks, 3);
	assert_int_equal(t.blocks[0].function, MBP_FC_READ_COILS);
	assert_int_equal(t.blocks[1].function, MBP_FC_READ_HOLDING);
	assert_int_equal(t.blocks[1].count, 2);
	assert_int_equal(t.blocks[2].count, 8);
	mbp_table_free(&t);
}

struct bad_case {
	const char *text;
	int line;
	const char *msg;
};

static void test_table_errors(void **state)
{
	static const struct bad_case cases[] = {
		{"registers = (\n{ name = \"a\"; address = 0; colour = 1; });", 2, "unknown key \"colour\" in a registers entry"},
		{"registers = (\n{ address = 0; });", 2, "registers entry needs name"},
		{"registers = (\n{ name = \"a b\"; address = 0; });", 2, "is not a field name"},
		{"registers = ( { name = \"a\"; address = 0; },\n{ name = \"a\"; address = 1; });", 2,
		 "register name \"a\" appears twice (first on line 1)"},
		{"registers = (\n{ name = \"a\"; });", 2, "register \"a\" needs address"},
		{"registers = ({ name = \"a\";\naddress = 65536; });", 2, "address must be 0..65535"},
		{"registers = ({ name = \"a\"; address = 65535;\ntype = \"u32\"; });", 1, "ends beyond address 65535"},
		{"registers = ({ name = \"a\"; address = 0;\ntype = \"u128\"; });", 2, "type must be one of"},
		{"registers = ({ name = \"a\"; address = 0;\nfunction = \"coils\"; });", 2, "function must be one of"},
		{"registers = ({ name = \"a\"; address = 0;\nword_order = \"middle\"; });", 2,
		 "word_order must be \"big\" or \"little\""},
		{"registers = ({ name = \"a\"; address = 0;\nbyte_order = 1; });", 2, "byte_order must be"},
		{"registers = ({ name = \"a\"; address = 0;\nscale = 0; });", 2, "scale must be a finite non-zero number"},
		{"registers = ({ name = \"a\"; address = 0;\noffset = \"x\"; });", 2, "offset must be a finite number"},
		{"registers = ({ name = \"a\"; address = 0;\nbit = 16; });", 2, "bit must be 0 .. 15 for type u16"},
		{"registers = ({ name = \"a\"; address = 0; type = \"f32\";\nbit = 1; });", 2, "bit needs an integer type"},
		{"registers = ({ name = \"a\"; address = 0; scale = 2.0;\nbit = 1; });", 2, "scale and offset do not apply"},
		{"registers = ({ name = \"a\"; address = 0; function = \"coil\";\ntype = \"u16\"; });", 2,
		 "\"type\" does not apply to coils and discrete inputs"},
		{"registers = ({ name = \"a\"; address = 0;\ncount = 0; });", 2, "count must be 1..125"},
		{"registers = ({ name = \"a\"; address = 0; type = \"u64\";\ncount = 32; });", 2,
		 "spans 128 registers; one request reads at most 125"},
		{"registers = ({ name = \"a\"; address = 0; unit = \"0123456789abcdefg\"; });", 1, "unit longer than"},
		{"registers = ();", 1, "registers must be a list"},
		{"registers = ( 1 );", 1, "registers entries must be groups"},
		{"registers = ({ name = \"a123456789b123456789c123456789d123456789e123456789f1234567890\"; address = 0;\n"
		 "count = 2; });", 2, "with count, the name may have at most 60 characters"},
		{"registers = ({ name = \"a123456789b123456789c123456789d123456789e123456789f123456789g1234\";"
		 " address = 0; });", 1, "is not a field name ([A-Za-z0-9_-], 1 to 64)"},
		{"max_gap = 126;\nregisters = ({ name = \"a\"; address = 0; });", 1, "max_gap must be 0..125"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mbp_table t;
		struct sg_opt_error err;

		print_message("%s\n", cases[i].text);
		assert_int_equal(parse(cases[i].text, &t, &err), -EINVAL);
		print_message("  -> %d: %s\n", err.line, err.msg);
		assert_int_equal(err.line, cases[i].line);
		assert_non_null(strstr(err.msg, cases[i].msg));
		mbp_table_free(&t);
	}
}

/* The old RTU syntax (drivers/modbus.c's header) still reads the same. */
static void test_table_old_syntax(void **state)
{
	struct mbp_table t;
	struct sg_opt_error err;
	(void)state;

	assert_int_equal(parse("registers = (\n"
	                       "{ name = \"voltage\"; address = 0; type = \"float32\"; function = \"input\"; "
	                       "word_order = \"big\"; scale = 1.0; unit = \"V\"; },\n"
	                       "{ name = \"energy\"; address = 0x156; type = \"uint32\"; word_order = \"little\"; },\n"
	                       "{ name = \"current\"; address = 6; type = \"int16\"; scale = 0.01; },\n"
	                       "{ name = \"count\"; address = 7; type = \"uint16\"; } );",
	                       &t, &err),
	                 0);
	assert_int_equal(t.entries[0].fmt.type, MBP_F32);
	assert_int_equal(t.entries[1].fmt.type, MBP_U32);
	assert_true(t.entries[1].fmt.word_little);
	assert_int_equal(t.entries[1].function, MBP_FC_READ_HOLDING);
	assert_int_equal(t.entries[2].fmt.type, MBP_I16);
	assert_int_equal(t.entries[3].fmt.type, MBP_U16);
	assert_int_equal(t.n_blocks, 3); /* input 0-1; holding 6-7; holding 0x156-0x157 */
	mbp_table_free(&t);
	/* 64 characters, as the RTU driver always took */
	assert_int_equal(parse("registers = ({ name = \"a123456789b123456789c123456789d123456789e123456789f123456789g123\";"
	                       " address = 0; });", &t, &err), 0);
	mbp_table_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_spec_requests),
		cmocka_unit_test(test_encode_limits),
		cmocka_unit_test(test_decode_spec_responses),
		cmocka_unit_test(test_exceptions),
		cmocka_unit_test(test_decode_refusals),
		cmocka_unit_test(test_rtu_frame),
		cmocka_unit_test(test_tcp_frame),
		cmocka_unit_test(test_values_every_type_and_order),
		cmocka_unit_test(test_values_scale_offset_bits_ranges),
		cmocka_unit_test(test_plan_merges_adjacent),
		cmocka_unit_test(test_plan_limits),
		cmocka_unit_test(test_entry_values),
		cmocka_unit_test(test_table_parse),
		cmocka_unit_test(test_table_errors),
		cmocka_unit_test(test_table_old_syntax),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
