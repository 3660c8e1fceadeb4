/* SPDX-License-Identifier: MIT */
/*
 * modbus_proto.c — the Modbus protocol without I/O (see modbus_proto.h for
 * the sources and the contract). Codec, framing, values and the planner
 * are pure and allocation-free; only the table parser at the end allocates
 * (the table it returns, owned by the caller's options).
 */
#include "modbus_proto.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"

#define MBP_READ_REQUEST_LEN 5     /* AP §6.1-§6.4: function, address (2), quantity (2) */
#define MBP_WRITE_ONE_LEN 5        /* AP §6.5, §6.6: function, address (2), value (2) */
#define MBP_WRITE_MANY_HEADER 6    /* AP §6.11, §6.12: function, address, quantity, byte count */
#define MBP_WRITE_ANSWER_LEN 5     /* AP §6.11, §6.12: function, address, quantity */
#define MBP_ADDRESS_SPACE 65536u   /* AP §4.4: addresses 0 .. 65535 */

const char *mbp_exception_name(unsigned code)
{
	switch (code) {
	case MBP_EX_ILLEGAL_FUNCTION:
		return "illegal function";
	case MBP_EX_ILLEGAL_ADDRESS:
		return "illegal data address";
	case MBP_EX_ILLEGAL_VALUE:
		return "illegal data value";
	case MBP_EX_DEVICE_FAILURE:
		return "server device failure";
	case MBP_EX_ACKNOWLEDGE:
		return "acknowledge";
	case MBP_EX_DEVICE_BUSY:
		return "server device busy";
	case MBP_EX_MEMORY_PARITY:
		return "memory parity error";
	case MBP_EX_GATEWAY_PATH:
		return "gateway path unavailable";
	case MBP_EX_GATEWAY_TARGET:
		return "gateway target device failed to respond";
	default:
		return "unknown exception";
	}
}

const char *mbp_result_name(int r)
{
	switch (r) {
	case MBP_OK:
		return "ok";
	case MBP_EXCEPTION:
		return "exception";
	case MBP_ERR_SHORT:
		return "response too short";
	case MBP_ERR_LONG:
		return "response too long";
	case MBP_ERR_FUNCTION:
		return "function code does not match the request";
	case MBP_ERR_BYTE_COUNT:
		return "byte count does not match the request";
	case MBP_ERR_ECHO:
		return "write response does not echo the request";
	case MBP_ERR_REQUEST:
		return "not a request this module sends";
	default:
		return "invalid response";
	}
}

/* ---- requests -------------------------------------------------------------------------------- */

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)(v & 0xff);
}

static unsigned get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static bool mbp_is_bit_read(uint8_t function)
{
	return function == MBP_FC_READ_COILS || function == MBP_FC_READ_DISCRETE;
}

static bool mbp_is_read(uint8_t function)
{
	return function >= MBP_FC_READ_COILS && function <= MBP_FC_READ_INPUT;
}

/* Largest quantity of a read with FUNCTION. */
static unsigned mbp_read_limit(uint8_t function)
{
	return mbp_is_bit_read(function) ? MBP_MAX_READ_BITS : MBP_MAX_READ_REGISTERS;
}

static bool mbp_range_ok(uint16_t address, unsigned count, unsigned limit)
{
	return count >= 1 && count <= limit && (unsigned)address + count <= MBP_ADDRESS_SPACE;
}

int mbp_encode_read(uint8_t *pdu, size_t cap, uint8_t function, uint16_t address, uint16_t count)
{
	if (!mbp_is_read(function) || !mbp_range_ok(address, count, mbp_read_limit(function)))
		return -EINVAL;
	if (cap < MBP_READ_REQUEST_LEN)
		return -ENOSPC;
	pdu[0] = function;
	put16(pdu + 1, address);
	put16(pdu + 3, count);
	return MBP_READ_REQUEST_LEN;
}

int mbp_encode_write_coil(uint8_t *pdu, size_t cap, uint16_t address, bool on)
{
	if (cap < MBP_WRITE_ONE_LEN)
		return -ENOSPC;
	pdu[0] = MBP_FC_WRITE_COIL;
	put16(pdu + 1, address);
	put16(pdu + 3, on ? MBP_COIL_ON : MBP_COIL_OFF);
	return MBP_WRITE_ONE_LEN;
}

int mbp_encode_write_register(uint8_t *pdu, size_t cap, uint16_t address, uint16_t value)
{
	if (cap < MBP_WRITE_ONE_LEN)
		return -ENOSPC;
	pdu[0] = MBP_FC_WRITE_REGISTER;
	put16(pdu + 1, address);
	put16(pdu + 3, value);
	return MBP_WRITE_ONE_LEN;
}

int mbp_encode_write_coils(uint8_t *pdu, size_t cap, uint16_t address, uint16_t count, const uint8_t *bits)
{
	size_t n = ((size_t)count + 7) / 8;

	if (!bits || !mbp_range_ok(address, count, MBP_MAX_WRITE_BITS))
		return -EINVAL;
	if (cap < MBP_WRITE_MANY_HEADER + n)
		return -ENOSPC;
	pdu[0] = MBP_FC_WRITE_COILS;
	put16(pdu + 1, address);
	put16(pdu + 3, count);
	pdu[5] = (uint8_t)n;
	memcpy(pdu + MBP_WRITE_MANY_HEADER, bits, n);
	if (count % 8) /* AP §6.11: unused bits of the last byte are zero */
		pdu[MBP_WRITE_MANY_HEADER + n - 1] &= (uint8_t)((1u << (count % 8)) - 1);
	return (int)(MBP_WRITE_MANY_HEADER + n);
}

int mbp_encode_write_registers(uint8_t *pdu, size_t cap, uint16_t address, uint16_t count, const uint8_t *regs)
{
	size_t n = 2 * (size_t)count;

	if (!regs || !mbp_range_ok(address, count, MBP_MAX_WRITE_REGISTERS))
		return -EINVAL;
	if (cap < MBP_WRITE_MANY_HEADER + n)
		return -ENOSPC;
	pdu[0] = MBP_FC_WRITE_REGISTERS;
	put16(pdu + 1, address);
	put16(pdu + 3, count);
	pdu[5] = (uint8_t)n;
	memcpy(pdu + MBP_WRITE_MANY_HEADER, regs, n);
	return (int)(MBP_WRITE_MANY_HEADER + n);
}

/* ---- responses ------------------------------------------------------------------------------- */

/* Check that REQ is a well-formed request of ours; fill function, address, count. */
static int mbp_request_check(const uint8_t *req, size_t req_len, struct mbp_response *r)
{
	if (!req || req_len < MBP_READ_REQUEST_LEN)
		return MBP_ERR_REQUEST;
	r->function = req[0];
	r->address = (uint16_t)get16(req + 1);
	r->count = (uint16_t)get16(req + 3);
	switch (req[0]) {
	case MBP_FC_READ_COILS:
	case MBP_FC_READ_DISCRETE:
	case MBP_FC_READ_HOLDING:
	case MBP_FC_READ_INPUT:
		if (req_len != MBP_READ_REQUEST_LEN || !mbp_range_ok(r->address, r->count, mbp_read_limit(req[0])))
			return MBP_ERR_REQUEST;
		return MBP_OK;
	case MBP_FC_WRITE_COIL:
	case MBP_FC_WRITE_REGISTER:
		r->count = 1;
		return req_len == MBP_WRITE_ONE_LEN ? MBP_OK : MBP_ERR_REQUEST;
	case MBP_FC_WRITE_COILS:
	case MBP_FC_WRITE_REGISTERS:
		if (req_len < MBP_WRITE_MANY_HEADER || req_len != MBP_WRITE_MANY_HEADER + (size_t)req[5])
			return MBP_ERR_REQUEST;
		return MBP_OK;
	default:
		return MBP_ERR_REQUEST;
	}
}

/* Data bytes a read of COUNT items with FUNCTION returns (AP §6.1-§6.4). */
static size_t mbp_read_bytes(uint8_t function, unsigned count)
{
	return mbp_is_bit_read(function) ? (count + 7) / 8 : 2 * (size_t)count;
}

int mbp_response_pdu_length(const uint8_t *req, size_t req_len, const uint8_t *rsp, size_t len)
{
	struct mbp_response r;
	int k = mbp_request_check(req, req_len, &r);

	if (k < 0)
		return k;
	if (len < 1)
		return 0;
	if (rsp[0] == (r.function | MBP_EXCEPTION_FLAG))
		return 2; /* AP §7: exception function code, exception code */
	if (rsp[0] != r.function)
		return MBP_ERR_FUNCTION;
	if (!mbp_is_read(r.function))
		return MBP_WRITE_ANSWER_LEN;
	if (len < 2)
		return 0;
	if (rsp[1] != mbp_read_bytes(r.function, r.count))
		return MBP_ERR_BYTE_COUNT;
	return 2 + rsp[1];
}

int mbp_decode_response(const uint8_t *req, size_t req_len, const uint8_t *rsp, size_t len, struct mbp_response *ret)
{
	struct mbp_response r = {0};
	size_t want;
	int k = mbp_request_check(req, req_len, &r);

	if (k < 0)
		return k;
	if (len < 1)
		return MBP_ERR_SHORT;
	if (rsp[0] == (r.function | MBP_EXCEPTION_FLAG)) {
		if (len < 2)
			return MBP_ERR_SHORT;
		if (len > 2)
			return MBP_ERR_LONG;
		r.exception = rsp[1];
		*ret = r;
		return MBP_EXCEPTION;
	}
	if (rsp[0] != r.function)
		return MBP_ERR_FUNCTION;
	if (mbp_is_read(r.function)) {
		if (len < 2)
			return MBP_ERR_SHORT;
		want = mbp_read_bytes(r.function, r.count);
		if (rsp[1] != want)
			return MBP_ERR_BYTE_COUNT;
		if (len < 2 + want)
			return MBP_ERR_SHORT;
		if (len > 2 + want)
			return MBP_ERR_LONG;
		r.data = rsp + 2;
		r.data_len = want;
		*ret = r;
		return MBP_OK;
	}
	/* Writes: 05 and 06 echo the request whole; 15 and 16 its first five bytes. */
	if (len < MBP_WRITE_ANSWER_LEN)
		return MBP_ERR_SHORT;
	if (len > MBP_WRITE_ANSWER_LEN)
		return MBP_ERR_LONG;
	if (memcmp(rsp, req, MBP_WRITE_ANSWER_LEN) != 0)
		return MBP_ERR_ECHO;
	*ret = r;
	return MBP_OK;
}

/* ---- framing ------------------------------------------------------------------------------- */

int mbp_rtu_frame(uint8_t *adu, size_t cap, uint8_t slave, const uint8_t *pdu, size_t len)
{
	uint16_t crc;

	if (len < 1 || len > MBP_MAX_PDU)
		return -EINVAL;
	if (cap < len + MBP_RTU_OVERHEAD)
		return -ENOSPC;
	adu[0] = slave;
	memmove(adu + 1, pdu, len);
	crc = crc16_a001(CRC16_MODBUS_INIT, adu, len + 1);
	adu[len + 1] = (uint8_t)(crc & 0xff); /* SL §6.2.2: low-order byte first */
	adu[len + 2] = (uint8_t)(crc >> 8);
	return (int)(len + MBP_RTU_OVERHEAD);
}

bool mbp_rtu_crc_ok(const uint8_t *adu, size_t len)
{
	if (len < 4)
		return false;
	return crc16_a001(CRC16_MODBUS_INIT, adu, len - 2) == ((unsigned)adu[len - 1] << 8 | adu[len - 2]);
}

int mbp_tcp_frame(uint8_t *adu, size_t cap, uint16_t transaction, uint8_t unit, const uint8_t *pdu, size_t len)
{
	if (len < 1 || len > MBP_MAX_PDU)
		return -EINVAL;
	if (cap < MBP_TCP_HEADER + len)
		return -ENOSPC;
	memmove(adu + MBP_TCP_HEADER, pdu, len);
	put16(adu, transaction);
	put16(adu + 2, MBP_TCP_PROTOCOL);
	put16(adu + 4, (unsigned)len + 1); /* TCP §3.1.3: the unit id and the data that follow */
	adu[6] = unit;
	return (int)(MBP_TCP_HEADER + len);
}

int mbp_tcp_header_parse(const uint8_t *buf, size_t len, struct mbp_tcp_header *ret)
{
	struct mbp_tcp_header h;

	if (len < MBP_TCP_HEADER)
		return 0;
	h.transaction = (uint16_t)get16(buf);
	h.protocol = (uint16_t)get16(buf + 2);
	h.length = (uint16_t)get16(buf + 4);
	h.unit = buf[6];
	if (h.protocol != MBP_TCP_PROTOCOL || h.length < 2 || h.length > 1 + MBP_MAX_PDU)
		return -EPROTO;
	if (ret)
		*ret = h;
	return MBP_TCP_HEADER - 1 + h.length;
}

/* ---- values ---------------------------------------------------------------------------------- */

static const char *const mbp_type_names[] = {"u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64", "bit"};

unsigned mbp_type_width(enum mbp_type type)
{
	switch (type) {
	case MBP_U32:
	case MBP_I32:
	case MBP_F32:
		return 2;
	case MBP_U64:
	case MBP_I64:
	case MBP_F64:
		return 4;
	default:
		return 1;
	}
}

const char *mbp_type_name(enum mbp_type type)
{
	return (unsigned)type <= MBP_BIT ? mbp_type_names[type] : "?";
}

bool mbp_type_integer(enum mbp_type type)
{
	return type != MBP_F32 && type != MBP_F64;
}

/* The raw bits of a value of F's type from the register bytes REGS, most significant first. */
static uint64_t mbp_raw_get(const struct mbp_format *f, const uint8_t *regs)
{
	unsigned w = mbp_type_width(f->type);
	uint64_t raw = 0;

	for (unsigned i = 0; i < w; i++) {
		unsigned k = f->word_little ? w - 1 - i : i; /* the i-th most significant word is register k */
		const uint8_t *p = regs + 2 * k;
		unsigned word = f->byte_little ? ((unsigned)p[1] << 8 | p[0]) : ((unsigned)p[0] << 8 | p[1]);

		raw = raw << 16 | word;
	}
	return raw;
}

static void mbp_raw_put(const struct mbp_format *f, uint64_t raw, uint8_t *regs)
{
	unsigned w = mbp_type_width(f->type);

	for (unsigned i = 0; i < w; i++) {
		unsigned k = f->word_little ? i : w - 1 - i; /* the i-th least significant word goes to register k */
		unsigned word = (unsigned)(raw & 0xffff);
		uint8_t *p = regs + 2 * k;

		if (f->byte_little) {
			p[0] = (uint8_t)(word & 0xff);
			p[1] = (uint8_t)(word >> 8);
		} else {
			p[0] = (uint8_t)(word >> 8);
			p[1] = (uint8_t)(word & 0xff);
		}
		raw >>= 16;
	}
}

int mbp_value_decode(const struct mbp_format *f, const uint8_t *regs, double *ret)
{
	uint64_t raw;
	double x;
	float f32;
	double f64;

	if (f->type == MBP_BIT)
		return -EINVAL;
	raw = mbp_raw_get(f, regs);
	if (f->bit >= 0) {
		*ret = (double)((raw >> f->bit) & 1);
		return 0;
	}
	switch (f->type) {
	case MBP_U16:
	case MBP_U32:
	case MBP_U64:
		x = (double)raw;
		break;
	case MBP_I16:
		x = (int16_t)(uint16_t)raw;
		break;
	case MBP_I32:
		x = (int32_t)(uint32_t)raw;
		break;
	case MBP_I64:
		x = (double)(int64_t)raw;
		break;
	case MBP_F32: {
		uint32_t u = (uint32_t)raw;
		memcpy(&f32, &u, sizeof(f32));
		x = f32;
		break;
	}
	case MBP_F64:
		memcpy(&f64, &raw, sizeof(f64));
		x = f64;
		break;
	default:
		return -EINVAL;
	}
	if (!isfinite(x))
		return -EDOM;
	x = x * f->scale + f->offset;
	if (!isfinite(x))
		return -EDOM;
	*ret = x;
	return 0;
}

int mbp_value_encode(const struct mbp_format *f, double v, uint8_t *regs)
{
	double x;
	uint64_t raw;

	if (f->type == MBP_BIT || f->bit >= 0 || !isfinite(v) || f->scale == 0)
		return -EINVAL;
	x = (v - f->offset) / f->scale;
	if (!isfinite(x))
		return -ERANGE;
	if (mbp_type_integer(f->type))
		x = nearbyint(x);
	switch (f->type) {
	case MBP_U16:
		if (x < 0 || x > UINT16_MAX)
			return -ERANGE;
		raw = (uint64_t)x;
		break;
	case MBP_I16:
		if (x < INT16_MIN || x > INT16_MAX)
			return -ERANGE;
		raw = (uint16_t)(int16_t)x;
		break;
	case MBP_U32:
		if (x < 0 || x > UINT32_MAX)
			return -ERANGE;
		raw = (uint64_t)x;
		break;
	case MBP_I32:
		if (x < INT32_MIN || x > INT32_MAX)
			return -ERANGE;
		raw = (uint32_t)(int32_t)x;
		break;
	case MBP_U64:
		if (x < 0 || x >= 18446744073709551616.0) /* 2^64 */
			return -ERANGE;
		raw = (uint64_t)x;
		break;
	case MBP_I64:
		if (x < -9223372036854775808.0 || x >= 9223372036854775808.0) /* -2^63 .. 2^63 */
			return -ERANGE;
		raw = (uint64_t)(int64_t)x;
		break;
	case MBP_F32: {
		float f32 = (float)x;
		uint32_t u;

		if (fabs(x) > FLT_MAX)
			return -ERANGE;
		memcpy(&u, &f32, sizeof(u));
		raw = u;
		break;
	}
	case MBP_F64:
		memcpy(&raw, &x, sizeof(raw));
		break;
	default:
		return -EINVAL;
	}
	mbp_raw_put(f, raw, regs);
	return 0;
}

/* ---- planner ----------------------------------------------------------------------------------- */

#define MBP_UNPLANNED UINT16_MAX

unsigned mbp_entry_span(const struct mbp_entry *e)
{
	return (unsigned)e->count * mbp_type_width(e->fmt.type);
}

/* True if A sorts before B: slave, function, address. */
static bool mbp_before(const struct mbp_entry *a, const struct mbp_entry *b)
{
	if (a->slave != b->slave)
		return a->slave < b->slave;
	if (a->function != b->function)
		return a->function < b->function;
	return a->address < b->address;
}

int mbp_plan(struct mbp_entry *entries, size_t n, unsigned max_gap, struct mbp_block *blocks, size_t cap)
{
	size_t nb = 0;

	for (size_t i = 0; i < n; i++)
		entries[i].block = MBP_UNPLANNED;
	for (;;) {
		struct mbp_entry *first = NULL;
		struct mbp_block b;
		unsigned limit;
		uint32_t end;

		for (size_t i = 0; i < n; i++)
			if (entries[i].block == MBP_UNPLANNED && (!first || mbp_before(&entries[i], first)))
				first = &entries[i];
		if (!first)
			return (int)nb;
		limit = mbp_read_limit(first->function);
		if (nb >= cap || mbp_entry_span(first) > limit || nb >= MBP_UNPLANNED)
			return -E2BIG;
		b = (struct mbp_block){.slave = first->slave, .function = first->function, .address = first->address};
		end = (uint32_t)first->address + mbp_entry_span(first);
		first->block = (uint16_t)nb;
		first->offset = 0;
		for (;;) {
			struct mbp_entry *next = NULL;
			uint32_t gap, new_end;

			for (size_t i = 0; i < n; i++) {
				struct mbp_entry *e = &entries[i];
				if (e->block == MBP_UNPLANNED && e->slave == b.slave && e->function == b.function &&
				    (!next || e->address < next->address))
					next = e;
			}
			if (!next)
				break;
			gap = next->address > end ? next->address - end : 0;
			new_end = (uint32_t)next->address + mbp_entry_span(next);
			if (new_end < end)
				new_end = end;
			if (gap > max_gap || new_end - b.address > limit)
				break;
			next->block = (uint16_t)nb;
			next->offset = (uint16_t)(next->address - b.address);
			end = new_end;
		}
		b.count = (uint16_t)(end - b.address);
		blocks[nb++] = b;
	}
}

int mbp_entry_value(const struct mbp_entry *e, const struct mbp_block *b, const struct mbp_response *r, unsigned k,
                    double *ret)
{
	if (!r->data || r->function != b->function || r->address != b->address || r->count != b->count ||
	    k >= e->count)
		return -EINVAL;
	if (e->fmt.type == MBP_BIT) {
		unsigned bit = e->offset + k;

		if (bit >= r->count || bit / 8 >= r->data_len)
			return -EINVAL;
		*ret = mbp_bit(r->data, bit);
		return 0;
	} else {
		unsigned w = mbp_type_width(e->fmt.type);
		size_t reg = e->offset + (size_t)k * w;

		if (2 * (reg + w) > r->data_len)
			return -EINVAL;
		return mbp_value_decode(&e->fmt, r->data + 2 * reg, ret);
	}
}

void mbp_block_text(const struct mbp_block *b, const char *unit_word, char *buf, size_t len)
{
	snprintf(buf, len, "%s %u %s %u+%u", unit_word, b->slave, mbp_function_name(b->function), b->address, b->count);
}

size_t mbp_block_answer_len(const struct mbp_block *b)
{
	bool bits = b->function == MBP_FC_READ_COILS || b->function == MBP_FC_READ_DISCRETE;

	return 2 + (bits ? ((size_t)b->count + 7) / 8 : 2 * (size_t)b->count); /* function, byte count, data */
}

void mbp_table_emit(const struct mbp_table *t, size_t block, const struct mbp_response *r, struct sg_dev *dev,
                    const char *who)
{
	const struct mbp_block *b = &t->blocks[block];
	char field[MBP_MAX_NAME + 8], detail[MBP_MAX_NAME + 80];

	for (size_t i = 0; i < t->n_entries; i++) {
		const struct mbp_entry *e = &t->entries[i];

		if (e->block != block)
			continue;
		for (unsigned k = 0; k < e->count; k++) {
			double v;
			int rc = mbp_entry_value(e, b, r, k, &v);

			if (e->count > 1)
				snprintf(field, sizeof(field), "%s_%u", e->name, k);
			else
				snprintf(field, sizeof(field), "%s", e->name);
			if (rc < 0) {
				snprintf(detail, sizeof(detail), "%s: %s: %s", who, field,
				         rc == -EDOM ? "value is not a finite number" : "not in the response");
				sg_dev_fail(dev, SG_FAIL_INSANE, detail);
				continue;
			}
			sg_dev_emit_number(dev, field, v, e->unit[0] ? e->unit : NULL);
		}
	}
}

bool mbp_table_field(const struct mbp_table *t, size_t i, char *name, size_t len, struct sg_field_info *ret)
{
	for (size_t j = 0; t && j < t->n_entries; j++) {
		const struct mbp_entry *e = &t->entries[j];

		if (i >= e->count) {
			i -= e->count;
			continue;
		}
		if (e->count > 1)
			snprintf(name, len, "%s_%zu", e->name, i);
		else
			snprintf(name, len, "%s", e->name);
		*ret = (struct sg_field_info){.name = name, .unit = e->unit[0] ? e->unit : NULL,
		                              .device_class = e->device_class[0] ? e->device_class : NULL,
		                              .state_class = e->state_class[0] ? e->state_class : NULL,
		                              .binary = e->fmt.type == MBP_BIT || e->fmt.bit >= 0};
		return true;
	}
	return false;
}

void mbp_table_describe(const struct mbp_table *t, const char *unit_word, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "%zu request%s per cycle for %zu entr%s (max_gap %u):", t->n_blocks,
	                              t->n_blocks == 1 ? "" : "s", t->n_entries, t->n_entries == 1 ? "y" : "ies",
	                              t->max_gap);

	for (size_t i = 0; i < t->n_blocks && off < len; i++) {
		char what[64];

		mbp_block_text(&t->blocks[i], unit_word, what, sizeof(what));
		off += (size_t)snprintf(buf + off, len - off, "%s %s", i ? "," : "", what);
	}
}

/* ---- configuration ------------------------------------------------------------------------------ */

const char *const mbp_entry_keys[] = {"name",  "function", "address", "type", "byte_order",   "word_order",
                                      "scale", "offset",   "bit",     "count", "unit", "device_class",
                                      "state_class", NULL};

static const struct {
	const char *name;
	enum mbp_type type;
} mbp_type_words[] = {
	{"u16", MBP_U16},    {"i16", MBP_I16},    {"u32", MBP_U32},    {"i32", MBP_I32},     {"u64", MBP_U64},
	{"i64", MBP_I64},    {"f32", MBP_F32},    {"f64", MBP_F64},    {"uint16", MBP_U16},  {"int16", MBP_I16},
	{"uint32", MBP_U32}, {"int32", MBP_I32},  {"uint64", MBP_U64}, {"int64", MBP_I64},   {"float32", MBP_F32},
	{"float64", MBP_F64},
};

static const struct {
	const char *name;
	uint8_t function;
} mbp_function_words[] = {
	{"coil", MBP_FC_READ_COILS},
	{"discrete", MBP_FC_READ_DISCRETE},
	{"holding", MBP_FC_READ_HOLDING},
	{"input", MBP_FC_READ_INPUT},
};

const char *mbp_function_name(uint8_t function)
{
	for (size_t i = 0; i < sizeof(mbp_function_words) / sizeof(mbp_function_words[0]); i++)
		if (mbp_function_words[i].function == function)
			return mbp_function_words[i].name;
	return "?";
}

static bool mbp_is_number(const config_setting_t *s)
{
	int t = config_setting_type(s);

	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64 || t == CONFIG_TYPE_FLOAT;
}

static double mbp_number(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_FLOAT:
		return config_setting_get_float(s);
	case CONFIG_TYPE_INT64:
		return (double)config_setting_get_int64(s);
	default:
		return config_setting_get_int(s);
	}
}

static bool mbp_is_int(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64;
}

int mbp_function_parse(const config_setting_t *s, uint8_t *function, struct sg_opt_error *err)
{
	const char *v = config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s) : NULL;

	for (size_t i = 0; v && i < sizeof(mbp_function_words) / sizeof(mbp_function_words[0]); i++) {
		if (strcmp(v, mbp_function_words[i].name) == 0) {
			*function = mbp_function_words[i].function;
			return 0;
		}
	}
	return sg_opt_fail(err, s, "function must be one of \"coil\", \"discrete\", \"holding\", \"input\"");
}

/* "big" or "little" for KEY of G into *little (absent: untouched). */
static int mbp_order_parse(const config_setting_t *g, const char *key, const char *what, bool *little,
                           struct sg_opt_error *err)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	const char *v;

	if (!s)
		return 0;
	v = config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s) : "";
	if (strcmp(v, "big") && strcmp(v, "little"))
		return sg_opt_fail(err, s, "%s: %s must be \"big\" or \"little\"", what, key);
	*little = strcmp(v, "little") == 0;
	return 0;
}

int mbp_format_parse(const config_setting_t *g, uint8_t function, const char *type_key, const char *what,
                     struct mbp_format *f, struct sg_opt_error *err)
{
	const char *const value_keys[] = {type_key, "byte_order", "word_order", "scale", "offset", "bit", NULL};
	const config_setting_t *s;
	int r;

	*f = (struct mbp_format){.type = MBP_U16, .bit = -1, .scale = 1.0, .offset = 0.0};
	if (function == MBP_FC_READ_COILS || function == MBP_FC_READ_DISCRETE ||
	    function == MBP_FC_WRITE_COIL || function == MBP_FC_WRITE_COILS) {
		f->type = MBP_BIT;
		for (int i = 0; value_keys[i]; i++)
			if ((s = config_setting_get_member(g, value_keys[i])))
				return sg_opt_fail(err, s, "%s: \"%s\" does not apply to coils and discrete inputs (they are bits)",
				                   what, value_keys[i]);
		return 0;
	}
	s = config_setting_get_member(g, type_key);
	if (s) {
		const char *v = config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s) : "";
		bool found = false;

		for (size_t i = 0; i < sizeof(mbp_type_words) / sizeof(mbp_type_words[0]); i++) {
			if (strcmp(v, mbp_type_words[i].name) == 0) {
				f->type = mbp_type_words[i].type;
				found = true;
			}
		}
		if (!found)
			return sg_opt_fail(err, s, "%s: %s must be one of u16, i16, u32, i32, u64, i64, f32, f64 "
			                   "(or uint16, int16, uint32, int32, uint64, int64, float32, float64)", what, type_key);
	}
	if ((r = mbp_order_parse(g, "byte_order", what, &f->byte_little, err)) < 0 ||
	    (r = mbp_order_parse(g, "word_order", what, &f->word_little, err)) < 0)
		return r;
	s = config_setting_get_member(g, "scale");
	if (s) {
		if (!mbp_is_number(s) || !isfinite(mbp_number(s)) || mbp_number(s) == 0)
			return sg_opt_fail(err, s, "%s: scale must be a finite non-zero number", what);
		f->scale = mbp_number(s);
	}
	s = config_setting_get_member(g, "offset");
	if (s) {
		if (!mbp_is_number(s) || !isfinite(mbp_number(s)))
			return sg_opt_fail(err, s, "%s: offset must be a finite number", what);
		f->offset = mbp_number(s);
	}
	s = config_setting_get_member(g, "bit");
	if (s) {
		long long bits = 16LL * mbp_type_width(f->type);

		if (!mbp_type_integer(f->type))
			return sg_opt_fail(err, s, "%s: bit needs an integer type, not %s", what, mbp_type_name(f->type));
		if (!mbp_is_int(s) || config_setting_get_int64(s) < 0 || config_setting_get_int64(s) >= bits)
			return sg_opt_fail(err, s, "%s: bit must be 0 .. %lld for type %s", what, bits - 1,
			                   mbp_type_name(f->type));
		if (config_setting_get_member(g, "scale") || config_setting_get_member(g, "offset"))
			return sg_opt_fail(err, s, "%s: a bit is 0 or 1: scale and offset do not apply", what);
		f->bit = (int)config_setting_get_int64(s);
	}
	return 0;
}

static int mbp_oom(struct sg_opt_error *err)
{
	if (err) {
		err->line = 0;
		snprintf(err->msg, sizeof(err->msg), "out of memory");
	}
	return -ENOMEM;
}


/* The optional string KEY of register entry G into BUF ("" when absent). */
static int entry_text(const config_setting_t *g, const char *key, const char *what, char *buf, size_t len,
                      struct sg_opt_error *err)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	buf[0] = '\0';
	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return sg_opt_fail(err, s, "%s: %s must be a string", what, key);
	if (strlen(config_setting_get_string(s)) >= len)
		return sg_opt_fail(err, s, "%s: %s longer than %zu bytes", what, key, len - 1);
	snprintf(buf, len, "%s", config_setting_get_string(s));
	return 0;
}

static int mbp_entry_parse(struct mbp_table *t, const config_setting_t *g, uint8_t slave, struct sg_opt_error *err)
{
	struct mbp_entry e = {.slave = slave, .function = MBP_FC_READ_HOLDING, .count = 1};
	const config_setting_t *s;
	const char *name;
	char what[96];
	int r;

	if (!config_setting_is_group(g))
		return sg_opt_fail(err, g, "registers entries must be groups: { name = \"...\"; address = 0; }");
	e.line = (int)config_setting_source_line(g);
	for (unsigned i = 0; i < (unsigned)config_setting_length(g); i++) {
		const config_setting_t *m = config_setting_get_elem(g, i);
		const char *k = config_setting_name(m);
		bool known = false;

		for (int j = 0; mbp_entry_keys[j]; j++)
			known = known || strcmp(mbp_entry_keys[j], k) == 0;
		if (!known)
			return sg_opt_fail(err, m, "unknown key \"%s\" in a registers entry", k);
	}
	s = config_setting_get_member(g, "name");
	if (!s || config_setting_type(s) != CONFIG_TYPE_STRING)
		return sg_opt_fail(err, s ? s : g, "registers entry needs name = \"...\" (a string)");
	name = config_setting_get_string(s);
	if (!sg_name_valid(name, MBP_MAX_NAME))
		return sg_opt_fail(err, s, "register name \"%.80s\" is not a field name ([A-Za-z0-9_-], 1 to %d)", name,
		                   MBP_MAX_NAME);
	for (size_t i = 0; i < t->n_entries; i++)
		if (strcmp(t->entries[i].name, name) == 0)
			return sg_opt_fail(err, s, "register name \"%s\" appears twice (first on line %d)", name,
			                   t->entries[i].line);
	snprintf(e.name, sizeof(e.name), "%s", name);
	snprintf(what, sizeof(what), "register \"%s\"", name);

	s = config_setting_get_member(g, "function");
	if (s && (r = mbp_function_parse(s, &e.function, err)) < 0)
		return r;
	s = config_setting_get_member(g, "address");
	if (!s || !mbp_is_int(s))
		return sg_opt_fail(err, s ? s : g, "%s needs address = 0..65535 (an integer)", what);
	if (config_setting_get_int64(s) < 0 || config_setting_get_int64(s) > 0xffff)
		return sg_opt_fail(err, s, "%s: address must be 0..65535", what);
	e.address = (uint16_t)config_setting_get_int64(s);
	s = config_setting_get_member(g, "count");
	if (s) {
		if (!mbp_is_int(s) || config_setting_get_int64(s) < 1 || config_setting_get_int64(s) > MBP_MAX_COUNT)
			return sg_opt_fail(err, s, "%s: count must be 1..%d", what, MBP_MAX_COUNT);
		e.count = (uint16_t)config_setting_get_int64(s);
		if (e.count > 1 && strlen(e.name) > MBP_MAX_NAME - 4) /* room for "_<k>" */
			return sg_opt_fail(err, s, "%s: with count, the name may have at most %d characters", what,
			                   MBP_MAX_NAME - 4);
	}
	if ((r = mbp_format_parse(g, e.function, "type", what, &e.fmt, err)) < 0)
		return r;
	if (mbp_entry_span(&e) > mbp_read_limit(e.function))
		return sg_opt_fail(err, s ? s : g, "%s spans %u %s; one request reads at most %u", what, mbp_entry_span(&e),
		                   e.fmt.type == MBP_BIT ? "bits" : "registers", mbp_read_limit(e.function));
	if ((unsigned)e.address + mbp_entry_span(&e) > MBP_ADDRESS_SPACE)
		return sg_opt_fail(err, config_setting_get_member(g, "address"), "%s ends beyond address 65535", what);
	if ((r = entry_text(g, "unit", what, e.unit, sizeof(e.unit), err)) < 0 ||
	    (r = entry_text(g, "device_class", what, e.device_class, sizeof(e.device_class), err)) < 0 ||
	    (r = entry_text(g, "state_class", what, e.state_class, sizeof(e.state_class), err)) < 0)
		return r;
	if (e.state_class[0] && strcmp(e.state_class, "measurement") != 0 && strcmp(e.state_class, "total") != 0 &&
	    strcmp(e.state_class, "total_increasing") != 0)
		return sg_opt_fail(err, config_setting_get_member(g, "state_class"),
		                   "%s: state_class must be \"measurement\", \"total\" or \"total_increasing\"", what);
	t->entries[t->n_entries++] = e;
	return 0;
}

int mbp_table_add(struct mbp_table *t, const config_setting_t *regs, uint8_t slave, struct sg_opt_error *err)
{
	struct mbp_entry *grown;
	size_t n;
	int r;

	if (!regs || !config_setting_is_list(regs) || config_setting_length(regs) < 1)
		return sg_opt_fail(err, regs, "registers must be a list: ( { name = \"...\"; address = N; }, ... )");
	n = (size_t)config_setting_length(regs);
	if (t->n_entries + n > MBP_MAX_ENTRIES)
		return sg_opt_fail(err, regs, "at most %d registers entries per device", MBP_MAX_ENTRIES);
	grown = realloc(t->entries, (t->n_entries + n) * sizeof(*grown));
	if (!grown)
		return mbp_oom(err);
	t->entries = grown;
	for (size_t i = 0; i < n; i++)
		if ((r = mbp_entry_parse(t, config_setting_get_elem(regs, (unsigned)i), slave, err)) < 0)
			return r;
	return 0;
}

int mbp_table_gap(struct mbp_table *t, const config_setting_t *g, struct sg_opt_error *err)
{
	const config_setting_t *s = config_setting_get_member(g, "max_gap");

	if (!s)
		return 0;
	if (!mbp_is_int(s) || config_setting_get_int64(s) < 0 || config_setting_get_int64(s) > MBP_MAX_READ_REGISTERS)
		return sg_opt_fail(err, s, "max_gap must be 0..%d (registers or bits read and thrown away between two "
		                   "entries to join them in one request)", MBP_MAX_READ_REGISTERS);
	t->max_gap = (unsigned)config_setting_get_int64(s);
	return 0;
}

int mbp_table_plan(struct mbp_table *t, struct sg_opt_error *err)
{
	int n;

	free(t->blocks);
	t->n_blocks = 0;
	t->blocks = calloc(t->n_entries ? t->n_entries : 1, sizeof(*t->blocks));
	if (!t->blocks)
		return mbp_oom(err);
	n = mbp_plan(t->entries, t->n_entries, t->max_gap, t->blocks, t->n_entries);
	if (n < 0) /* every entry was checked to fit one request: cannot happen */
		return sg_opt_fail(err, NULL, "register table cannot be planned: %s", strerror(-n));
	t->n_blocks = (size_t)n;
	return 0;
}

void mbp_table_free(struct mbp_table *t)
{
	if (!t)
		return;
	free(t->entries);
	free(t->blocks);
	*t = (struct mbp_table){0};
}
