/* SPDX-License-Identifier: MIT */
/*
 * modbus_proto.h — the Modbus protocol without I/O: request encoders and
 * response decoders for function codes 01, 02, 03, 04, 05, 06, 15 and 16,
 * value types and their byte/word orders, the block-read planner, RTU and
 * TCP framing, and the register-table parser the Modbus drivers share.
 *
 * Sources (every constant below names its section):
 *  - MODBUS Application Protocol Specification V1.1b3 ("AP"), §4.1 PDU size,
 *    §6.1-§6.6, §6.11, §6.12 the function codes, §7 exception responses;
 *  - MODBUS Messaging on TCP/IP Implementation Guide V1.0b ("TCP"), §3.1.3
 *    the MBAP header;
 *  - MODBUS over Serial Line V1.02 ("SL"), §2.5.1 the RTU frame, §6.2.2 CRC.
 *
 * Everything here is pure and allocation-free (no I/O, no logging, no
 * clocks) except mbp_table_parse(), which reads configuration and
 * allocates the table it returns (freed by mbp_table_free()).
 *
 * A PDU is function code + data (AP §4.1); an ADU is a PDU framed for a
 * transport: RTU (slave, PDU, CRC) or TCP (MBAP header, PDU). Encoders
 * write into a caller's buffer and return the length written or -errno
 * (-EINVAL for arguments outside the spec's ranges, -ENOSPC for a buffer
 * too small). Decoders check a response against the request PDU that was
 * sent, so nothing about a transaction needs to be kept but its bytes.
 */
#ifndef SG_MODBUS_PROTO_H
#define SG_MODBUS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h" /* struct sg_opt_error, libconfig */

/* Function codes (AP §5.1 table; §6.x per function). */
#define MBP_FC_READ_COILS 0x01          /* AP §6.1 */
#define MBP_FC_READ_DISCRETE 0x02       /* AP §6.2 */
#define MBP_FC_READ_HOLDING 0x03        /* AP §6.3 */
#define MBP_FC_READ_INPUT 0x04          /* AP §6.4 */
#define MBP_FC_WRITE_COIL 0x05          /* AP §6.5 */
#define MBP_FC_WRITE_REGISTER 0x06      /* AP §6.6 */
#define MBP_FC_WRITE_COILS 0x0f         /* AP §6.11 */
#define MBP_FC_WRITE_REGISTERS 0x10     /* AP §6.12 */
#define MBP_EXCEPTION_FLAG 0x80         /* AP §7: function code + 0x80 */

#define MBP_MAX_PDU 253                 /* AP §4.1: 256-byte RTU ADU - slave - CRC */
#define MBP_MAX_READ_BITS 2000          /* AP §6.1, §6.2: quantity 1 .. 0x07D0 */
#define MBP_MAX_READ_REGISTERS 125      /* AP §6.3, §6.4: quantity 1 .. 0x007D */
#define MBP_MAX_WRITE_BITS 1968         /* AP §6.11: quantity 1 .. 0x07B0 */
#define MBP_MAX_WRITE_REGISTERS 123     /* AP §6.12: quantity 1 .. 0x007B */
#define MBP_COIL_ON 0xff00              /* AP §6.5: FF 00 requests ON, 00 00 OFF */
#define MBP_COIL_OFF 0x0000

#define MBP_RTU_MAX_ADU 256             /* SL §2.5.1.1 */
#define MBP_RTU_OVERHEAD 3              /* slave address + 2 CRC bytes */
#define MBP_SLAVE_MIN 1                 /* SL §2.2: 0 is broadcast (no answer) */
#define MBP_SLAVE_MAX 247               /* SL §2.2: 248 .. 255 reserved */
#define MBP_TCP_HEADER 7                /* TCP §3.1.3: transaction 2, protocol 2, length 2, unit 1 */
#define MBP_TCP_MAX_ADU (MBP_TCP_HEADER - 1 + 1 + MBP_MAX_PDU) /* 260 (AP §4.1) */
#define MBP_TCP_PROTOCOL 0              /* TCP §3.1.3: 0 = MODBUS protocol */
#define MBP_TCP_PORT 502                /* TCP §3.1: the registered port every ADU is sent to */
#define MBP_TCP_UNIT_DIRECT 0xff        /* TCP §4.4: unit id of a server addressed by its IP address alone */

/* Exception codes (AP §7). */
#define MBP_EX_ILLEGAL_FUNCTION 0x01
#define MBP_EX_ILLEGAL_ADDRESS 0x02
#define MBP_EX_ILLEGAL_VALUE 0x03
#define MBP_EX_DEVICE_FAILURE 0x04
#define MBP_EX_ACKNOWLEDGE 0x05
#define MBP_EX_DEVICE_BUSY 0x06
#define MBP_EX_MEMORY_PARITY 0x08
#define MBP_EX_GATEWAY_PATH 0x0a
#define MBP_EX_GATEWAY_TARGET 0x0b

/* The name of exception CODE (AP §7), "unknown exception" for others. */
const char *mbp_exception_name(unsigned code);

/* ---- requests -------------------------------------------------------------------------------- */

/* 01/02/03/04: read COUNT items from ADDRESS. COUNT within the function's limit and ADDRESS + COUNT <= 65536. */
int mbp_encode_read(uint8_t *pdu, size_t cap, uint8_t function, uint16_t address, uint16_t count);
/* 05: one coil. */
int mbp_encode_write_coil(uint8_t *pdu, size_t cap, uint16_t address, bool on);
/* 06: one register (the two bytes as they go on the wire: VALUE high byte first). */
int mbp_encode_write_register(uint8_t *pdu, size_t cap, uint16_t address, uint16_t value);
/* 15: COUNT coils; BITS packed as on the wire (AP §6.11: LSB of the first byte is ADDRESS). */
int mbp_encode_write_coils(uint8_t *pdu, size_t cap, uint16_t address, uint16_t count, const uint8_t *bits);
/* 16: COUNT registers; REGS is 2*COUNT bytes as on the wire (high byte first). */
int mbp_encode_write_registers(uint8_t *pdu, size_t cap, uint16_t address, uint16_t count, const uint8_t *regs);

/* ---- responses ------------------------------------------------------------------------------- */

/* Why a response was refused (negative), or what it is (0, 1). */
enum mbp_result {
	MBP_OK = 0,              /* a normal response that answers the request */
	MBP_EXCEPTION = 1,       /* an exception response (AP §7); code in ->exception */
	MBP_ERR_SHORT = -1,      /* fewer bytes than the response needs */
	MBP_ERR_LONG = -2,       /* more bytes than the response has */
	MBP_ERR_FUNCTION = -3,   /* function code neither the request's nor its exception */
	MBP_ERR_BYTE_COUNT = -4, /* byte count does not match the quantity asked for */
	MBP_ERR_ECHO = -5,       /* a write's answer does not echo the request (AP §6.5, §6.6, §6.11, §6.12) */
	MBP_ERR_REQUEST = -6,    /* the request PDU itself is not one of the eight functions */
};

/* A short text for R ("byte count does not match the request"). */
const char *mbp_result_name(int r);

struct mbp_response {
	uint8_t function;     /* the request's */
	uint8_t exception;    /* MBP_EXCEPTION: the code */
	uint16_t address;     /* the request's start address */
	uint16_t count;       /* items asked for (reads) or written */
	const uint8_t *data;  /* reads: register bytes or packed bits, inside the response; NULL otherwise */
	size_t data_len;
};

/*
 * Check response PDU RSP (LEN bytes) against request PDU REQ (REQ_LEN) and
 * fill *ret. Returns MBP_OK, MBP_EXCEPTION, or a negative enum mbp_result.
 * Padding bits above the last coil of a read (AP §6.1: "padded with zeros")
 * are not checked: they carry nothing and some devices send junk there.
 */
int mbp_decode_response(const uint8_t *req, size_t req_len, const uint8_t *rsp, size_t len, struct mbp_response *ret);

/*
 * Length of the whole response PDU to request REQ once its first bytes
 * RSP[0..LEN) are known: 0 when more bytes are needed to tell, or a
 * negative enum mbp_result when they cannot start an answer to REQ.
 * For stream framing (RTU), where no length field exists.
 */
int mbp_response_pdu_length(const uint8_t *req, size_t req_len, const uint8_t *rsp, size_t len);

/* Bit K of packed bits DATA (AP §6.1: LSB first). */
static inline bool mbp_bit(const uint8_t *data, unsigned k)
{
	return (data[k / 8] >> (k % 8)) & 1;
}

/* ---- framing ------------------------------------------------------------------------------- */

/* RTU (SL §2.5.1): SLAVE, the PDU, CRC-16/MODBUS low byte first. Returns the ADU length or -errno. */
int mbp_rtu_frame(uint8_t *adu, size_t cap, uint8_t slave, const uint8_t *pdu, size_t len);
/* True if ADU (LEN >= 4 bytes) ends in the right CRC. */
bool mbp_rtu_crc_ok(const uint8_t *adu, size_t len);

/* TCP (TCP §3.1.3): the MBAP header, then the PDU. Returns the ADU length or -errno. */
int mbp_tcp_frame(uint8_t *adu, size_t cap, uint16_t transaction, uint8_t unit, const uint8_t *pdu, size_t len);

struct mbp_tcp_header {
	uint16_t transaction;
	uint16_t protocol;
	uint16_t length;      /* bytes after the length field: unit id + PDU */
	uint8_t unit;
};

/*
 * Parse the MBAP header at BUF (LEN bytes buffered). Returns the length of
 * the whole ADU (header + PDU), 0 when fewer than 7 bytes are there, or
 * -EPROTO when the protocol id is not 0 or the length is outside 2 .. 254
 * (a unit id and a PDU of 1 .. 253 bytes): the stream cannot be trusted.
 */
int mbp_tcp_header_parse(const uint8_t *buf, size_t len, struct mbp_tcp_header *ret);

/* ---- values ---------------------------------------------------------------------------------- */

enum mbp_type {
	MBP_U16 = 0,
	MBP_I16,
	MBP_U32,
	MBP_I32,
	MBP_U64,
	MBP_I64,
	MBP_F32,
	MBP_F64,
	MBP_BIT, /* a coil or discrete input */
};

/*
 * How the registers of one value become a number. Registers are big-endian
 * on the wire (AP §4.2); devices disagree on the order of the registers of
 * a wider value and some swap the bytes of each register:
 *   byte_order big,    word_order big     ABCD (the norm)
 *   byte_order big,    word_order little  CDAB
 *   byte_order little, word_order big     BADC
 *   byte_order little, word_order little  DCBA
 * value = raw * scale + offset; with bit >= 0 the value is that bit of the
 * raw integer (0 or 1), without scale and offset.
 */
struct mbp_format {
	enum mbp_type type;
	bool byte_little;
	bool word_little;
	int bit;          /* -1: the whole value */
	double scale;     /* not 0 */
	double offset;
};

/* Registers one value of TYPE occupies (1, 2 or 4); 1 bit for MBP_BIT. */
unsigned mbp_type_width(enum mbp_type type);
/* "u16" ... "f64", "bit". */
const char *mbp_type_name(enum mbp_type type);
/* True for types whose values are integers (everything but f32, f64). */
bool mbp_type_integer(enum mbp_type type);

/*
 * The value of F's type in register bytes REGS (2 * mbp_type_width() bytes,
 * wire order). 0 with *ret set, or -EDOM for a NaN or infinite float.
 * 64-bit integers beyond 2^53 lose precision in the double.
 */
int mbp_value_decode(const struct mbp_format *f, const uint8_t *regs, double *ret);

/*
 * The register bytes for number V: (V - offset) / scale, rounded to the
 * nearest integer for integer types, in F's orders. 0, or -ERANGE when it
 * does not fit the type, -EINVAL for a bit field or MBP_BIT (use the coil
 * functions) or a value that is not finite.
 */
int mbp_value_encode(const struct mbp_format *f, double v, uint8_t *regs);

/* ---- register tables and the block planner ----------------------------------------------------- */

#define MBP_MAX_NAME 64
#define MBP_MAX_UNIT 15
#define MBP_MAX_CLASS 31
#define MBP_MAX_ENTRIES 256       /* per device */
#define MBP_MAX_COUNT 125         /* values per entry (`count`) */

/* One configured entry: COUNT values of one format, one reading each. */
struct mbp_entry {
	char name[MBP_MAX_NAME + 1];  /* reading name; with count > 1, "<name>_<k>" for k = 0 .. count-1 */
	char unit[MBP_MAX_UNIT + 1];  /* "" = none */
	char device_class[MBP_MAX_CLASS + 1]; /* Home Assistant's, "" = from the unit */
	char state_class[MBP_MAX_CLASS + 1];  /* "measurement", "total", "total_increasing"; "" = from the class */
	uint8_t slave;                /* unit identifier / slave address */
	uint8_t function;             /* MBP_FC_READ_* */
	uint16_t address;
	uint16_t count;
	struct mbp_format fmt;
	int line;                     /* configuration line, for messages */
	/* planner output */
	uint16_t block;               /* index of the block read that carries it */
	uint16_t offset;              /* items (registers or bits) from the block's start */
};

/* One read request of a cycle. */
struct mbp_block {
	uint8_t slave;
	uint8_t function;
	uint16_t address;
	uint16_t count;               /* registers or bits */
};

/* Items (registers or bits) entry E spans. */
unsigned mbp_entry_span(const struct mbp_entry *e);

/*
 * Merge the entries of one slave and function into block reads: entries
 * (in any order, overlapping allowed) join a block while the block stays
 * within the function's limit (125 registers, 2000 bits) and the hole
 * before each added entry is at most MAX_GAP items (read and thrown away).
 * Fills BLOCKS (room for CAP, at most N needed), and each entry's block and
 * offset. Blocks come out ordered by slave, function and address. Returns
 * the number of blocks, or -E2BIG if one entry alone exceeds the limit or
 * CAP is too small. Allocation-free: O(n^2) in the entries, n <= 256.
 */
int mbp_plan(struct mbp_entry *entries, size_t n, unsigned max_gap, struct mbp_block *blocks, size_t cap);

/*
 * Value K (0 .. count-1) of entry E out of the data of its block's response
 * (R->data, as mbp_decode_response() returned it). 0 with *ret, -EDOM for
 * NaN/infinity, -EINVAL if the data does not cover it.
 */
int mbp_entry_value(const struct mbp_entry *e, const struct mbp_block *b, const struct mbp_response *r, unsigned k,
                    double *ret);

/* "unit 2 holding 100+10" (UNIT_WORD "unit", or "slave" on a serial line) for messages about block B. */
void mbp_block_text(const struct mbp_block *b, const char *unit_word, char *buf, size_t len);
/* Bytes of the PDU that answers block B's read: function, byte count, data. */
size_t mbp_block_answer_len(const struct mbp_block *b);

/* A device's register table: entries and the planned block reads (allocated by mbp_table_parse()). */
struct mbp_table {
	struct mbp_entry *entries;
	size_t n_entries;
	struct mbp_block *blocks;
	size_t n_blocks;
	unsigned max_gap;
};

/* The keys of one `registers` entry, NULL-terminated (for documentation and checks). */
extern const char *const mbp_entry_keys[];

/*
 * Read the `registers` list REGS of SLAVE into table T (appending: call once
 * per unit; entry names must be unique across the table), with the defaults
 * of the old RTU syntax (function holding, type uint16). Keys of each entry:
 * name, function (coil | discrete | holding | input), address (0 .. 65535),
 * type (u16 i16 u32 i32 u64 i64 f32 f64, or uint16 int16 uint32 int32
 * uint64 int64 float32 float64), byte_order and word_order (big | little),
 * scale, offset, bit, count, unit. 0, -EINVAL with *err set (the line of
 * the setting at fault), or -ENOMEM.
 */
int mbp_table_add(struct mbp_table *t, const config_setting_t *regs, uint8_t slave, struct sg_opt_error *err);
/* `max_gap = N;` (0 .. 125) of group G into T (absent: 0). */
int mbp_table_gap(struct mbp_table *t, const config_setting_t *g, struct sg_opt_error *err);
/* Plan T's block reads once every mbp_table_add() is done. 0 or -EINVAL with *err. */
int mbp_table_plan(struct mbp_table *t, struct sg_opt_error *err);
/* Free what T holds (not T). */
void mbp_table_free(struct mbp_table *t);

/*
 * The readings of every entry carried by block BLOCK of T, out of its
 * response R, emitted on DEV; a value that is not there or not finite is
 * counted as SG_FAIL_INSANE with WHO ("modbus_tcp") in the detail.
 */
void mbp_table_emit(const struct mbp_table *t, size_t block, const struct mbp_response *r, struct sg_dev *dev,
                    const char *who);
/* Field I of T for option_field() (driver.h): entries in order, "<name>_<k>" for each value of a `count` entry. */
bool mbp_table_field(const struct mbp_table *t, size_t i, char *name, size_t len, struct sg_field_info *ret);
/* "3 requests per cycle for 5 entries (max_gap 4): unit 1 coil 0+4, ..." into BUF. */
void mbp_table_describe(const struct mbp_table *t, const char *unit_word, char *buf, size_t len);

/*
 * Read the value format of group G (TYPE_KEY, byte_order, word_order, scale,
 * offset, bit) into *f for FUNCTION (coils and discrete inputs take none of
 * them). TYPE_KEY is "type" in register tables, "register_type" for
 * actuators (whose `type` is switch or number). WHAT names the entry in
 * messages. 0 or -EINVAL with *err. Shared by tables and Modbus actuators.
 */
int mbp_format_parse(const config_setting_t *g, uint8_t function, const char *type_key, const char *what,
                     struct mbp_format *f, struct sg_opt_error *err);
/* FUNCTION from the name in setting S ("coil", "discrete", "holding", "input"). 0 or -EINVAL with *err. */
int mbp_function_parse(const config_setting_t *s, uint8_t *function, struct sg_opt_error *err);
/* "coil", "discrete", "holding", "input", "?". */
const char *mbp_function_name(uint8_t function);

#endif
