/* SPDX-License-Identifier: MIT */
/*
 * modbus.c — the `modbus` driver: one Modbus RTU slave (an energy meter, an
 * inverter, a PLC) on a serial line, usually RS-485. Several slaves share a
 * line as several devices naming the same port: each is one device entry,
 * with its own name, topics, status and backoff, the way each meter is one
 * instrument to its owner (Telegraf's and modbus2mqtt's per-slave entries);
 * the line (line.h) gives them the wire one transaction at a time.
 *
 *   { name = "meter1"; driver = "modbus"; port = "/dev/ttyUSB0"; baud = 9600; slave = 1;
 *     interval = 10.0; timeout = 0.5; max_gap = 4;
 *     registers = ( { name = "voltage"; address = 0; type = "f32"; function = "input"; unit = "V"; }, ... ); }
 *
 * The register table (keys in modbus_proto.h, mbp_table_add()) is the one
 * the Modbus TCP driver reads: coils, discrete inputs, holding and input
 * registers, every type in either byte and word order, scale, offset, bit,
 * count. Entries are merged into block reads (mbp_plan(): at most 125
 * registers or 2000 bits, holes of at most `max_gap` read and thrown away),
 * one request per block.
 *
 * Design decision: the protocol is spoken here, non-blocking, instead of
 * through libmodbus, whose calls block until the answer or the timeout and
 * would stall the gateway's single event loop; libmodbus is the tests'
 * independent reference instead.
 *
 * Frames (MODBUS over Serial Line V1.02 §2.5.1; Application Protocol V1.1b3 §6, §7):
 *
 *   request   slave  fc  start_hi start_lo  count_hi count_lo  crc_lo crc_hi
 *   response  slave  fc  n  data[n]  crc_lo crc_hi         (fc 01/02: packed bits, 03/04: registers)
 *   exception slave  fc|0x80  code  crc_lo crc_hi
 *
 * Timing: every `interval` poll() readies a cycle; the line then gives the
 * driver turns, one request each (request()), and hands it what arrives
 * (answer()): a frame is complete when its length (from the function code
 * and byte count) and CRC are in. No answer within `timeout` is
 * SG_FAIL_TIMEOUT (no_answer()), and the line holds back a slave that keeps
 * timing out, so the other slaves keep their interval. A cycle still
 * running at the next interval goes on; the interval that finds it over
 * starts the next one.
 * Failures: exception answers are SG_FAIL_IO with the exception's name;
 * answers of the wrong size SG_FAIL_SYNTAX; a bad CRC SG_FAIL_CHECKSUM;
 * bytes before the answer that cannot start it SG_FAIL_GARBAGE (once per
 * request); a NaN or infinite float SG_FAIL_INSANE.
 *
 * Serial framing: 8E1 unless configured (Serial Line §2.5.1: even parity is
 * the default); the line puts 3.5 characters of silence (1750 µs above
 * 19200 baud, §2.5.1.1) before every request.
 *
 * Ownership: options (the table inside) are allocated by parse_options()
 * and owned by the config; struct modbus_state lives in dev->state. Nothing
 * is allocated per request, nothing logged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "drivers.h"
#include "modbus_proto.h"

#define MODBUS_DEFAULT_TIMEOUT_S 0.5 /* libmodbus's default response timeout, too */
#define MODBUS_MIN_TIMEOUT_S 0.05
#define MODBUS_MAX_TIMEOUT_S 10.0
#define MODBUS_DEFAULT_INTERVAL_S 10.0
#define MODBUS_GAP_CHARS 3.5         /* Serial Line §2.5.1.1: t3.5 between frames */
#define MODBUS_GAP_MIN_US 1750       /* ... fixed at 1750 µs above 19200 baud, where 3.5 characters are less */

struct modbus_opts {
	uint8_t slave;
	double timeout_s;
	struct mbp_table table;
};

struct modbus_state {
	bool in_cycle;               /* requests of this cycle remain */
	size_t next;                 /* block to request next */
	size_t pending;              /* block of the request out */
	bool noise_counted;          /* garbage counted for this request */
	uint8_t req[MBP_MAX_PDU];    /* the request PDU out */
	size_t req_len;
	char detail[160];
};

static void modbus_what(const struct modbus_opts *o, size_t block, char *buf, size_t len)
{
	mbp_block_text(&o->table.blocks[block], "slave", buf, len);
}

/* ---- the line's turns ------------------------------------------------------------------------------ */

static int modbus_poll(struct sg_dev *dev, uint64_t *ret_delay_us)
{
	struct modbus_state *st = dev->state;
	const struct modbus_opts *o = dev->opts;

	if (!o || o->table.n_blocks == 0)
		return -EINVAL;
	*ret_delay_us = (uint64_t)((dev->interval_s > 0 ? dev->interval_s : MODBUS_DEFAULT_INTERVAL_S) * 1e6);
	if (!st->in_cycle) {
		st->in_cycle = true;
		st->next = 0;
	}
	return 0;
}

static int modbus_request(struct sg_dev *dev, uint8_t *buf, size_t cap, uint64_t *ret_timeout_us)
{
	struct modbus_state *st = dev->state;
	const struct modbus_opts *o = dev->opts;
	const struct mbp_block *b;
	int n;

	if (!st->in_cycle || st->next >= o->table.n_blocks) {
		st->in_cycle = false;
		return 0;
	}
	st->pending = st->next++;
	b = &o->table.blocks[st->pending];
	n = mbp_encode_read(st->req, sizeof(st->req), b->function, b->address, b->count);
	if (n < 0)
		return n; /* the planner made the block: cannot happen */
	st->req_len = (size_t)n;
	st->noise_counted = false;
	*ret_timeout_us = (uint64_t)(o->timeout_s * 1e6);
	return mbp_rtu_frame(buf, cap, o->slave, st->req, st->req_len);
}

/* Bytes up to the next one that could start an answer (our slave address), at least one. */
static size_t modbus_skip(const struct modbus_opts *o, const uint8_t *buf, size_t len)
{
	size_t i = 1;

	while (i < len && buf[i] != o->slave)
		i++;
	return i;
}

static ssize_t modbus_noise(struct sg_dev *dev, struct modbus_state *st, const struct modbus_opts *o,
                            const uint8_t *buf, size_t len)
{
	if (!st->noise_counted) {
		st->noise_counted = true;
		sg_dev_fail(dev, SG_FAIL_GARBAGE, "modbus: bytes that are not an answer");
	}
	return -(ssize_t)modbus_skip(o, buf, len);
}

static ssize_t modbus_answer(struct sg_dev *dev, const uint8_t *buf, size_t len)
{
	struct modbus_state *st = dev->state;
	const struct modbus_opts *o = dev->opts;
	struct mbp_response r;
	char what[64];
	size_t total;
	int n;

	if (buf[0] != o->slave)
		return modbus_noise(dev, st, o, buf, len);
	if (len < 2)
		return 0;
	n = mbp_response_pdu_length(st->req, st->req_len, buf + 1, len - 1);
	if (n == 0)
		return 0;
	modbus_what(o, st->pending, what, sizeof(what));
	if (n == MBP_ERR_BYTE_COUNT) {
		snprintf(st->detail, sizeof(st->detail), "modbus: %s: %s", what, mbp_result_name(n));
		sg_dev_fail(dev, SG_FAIL_SYNTAX, st->detail);
		return (ssize_t)len; /* its end cannot be told: the transaction is over */
	}
	if (n < 0)
		return modbus_noise(dev, st, o, buf, len);
	total = 1 + (size_t)n + 2;
	if (len < total)
		return 0;
	if (!mbp_rtu_crc_ok(buf, total)) {
		snprintf(st->detail, sizeof(st->detail), "modbus: %s: CRC mismatch", what);
		sg_dev_fail(dev, SG_FAIL_CHECKSUM, st->detail);
		return (ssize_t)total;
	}
	n = mbp_decode_response(st->req, st->req_len, buf + 1, (size_t)n, &r);
	if (n == MBP_EXCEPTION) {
		snprintf(st->detail, sizeof(st->detail), "modbus: %s: exception %u (%s)", what, r.exception,
		         mbp_exception_name(r.exception));
		sg_dev_fail(dev, SG_FAIL_IO, st->detail);
	} else if (n < 0) {
		snprintf(st->detail, sizeof(st->detail), "modbus: %s: %s", what, mbp_result_name(n));
		sg_dev_fail(dev, SG_FAIL_SYNTAX, st->detail);
	} else {
		dev->stats.frames++;
		mbp_table_emit(&o->table, st->pending, &r, dev, "modbus");
	}
	return (ssize_t)total;
}

static void modbus_no_answer(struct sg_dev *dev)
{
	struct modbus_state *st = dev->state;
	const struct modbus_opts *o = dev->opts;
	char what[64];

	modbus_what(o, st->pending, what, sizeof(what));
	snprintf(st->detail, sizeof(st->detail), "modbus: %s: no response within %g s", what, o->timeout_s);
	sg_dev_fail(dev, SG_FAIL_TIMEOUT, st->detail);
}

static int modbus_init(struct sg_dev *dev)
{
	struct modbus_state *st = dev->state;
	const struct modbus_opts *o = dev->opts;

	if (!o || o->table.n_blocks == 0)
		return -EINVAL;
	*st = (struct modbus_state){0};
	return 0;
}

/* ---- options ------------------------------------------------------------------------------------ */

static const char *const modbus_option_keys[] = {"slave", "timeout", "registers", "max_gap", NULL};

static void modbus_free_options(void *opts)
{
	struct modbus_opts *o = opts;

	if (!o)
		return;
	mbp_table_free(&o->table);
	free(o);
}

static int modbus_parse(const config_setting_t *device, struct modbus_opts *o, struct sg_opt_error *err)
{
	const config_setting_t *slave = config_setting_get_member(device, "slave");
	const config_setting_t *regs = config_setting_get_member(device, "registers");
	int r;

	if (!slave || config_setting_type(slave) != CONFIG_TYPE_INT)
		return sg_opt_fail(err, slave ? slave : device, "modbus needs slave = 1..247 (an integer)");
	if (config_setting_get_int(slave) < MBP_SLAVE_MIN || config_setting_get_int(slave) > MBP_SLAVE_MAX)
		return sg_opt_fail(err, slave, "slave must be 1..247 (0 is broadcast, which never answers)");
	o->slave = (uint8_t)config_setting_get_int(slave);
	o->timeout_s = MODBUS_DEFAULT_TIMEOUT_S;
	if ((r = sg_opt_double(device, "timeout", MODBUS_MIN_TIMEOUT_S, MODBUS_MAX_TIMEOUT_S, &o->timeout_s, err)) < 0)
		return r;
	if (!regs)
		return sg_opt_fail(err, device, "modbus needs registers = ( { name = \"...\"; address = N; }, ... );");
	if ((r = mbp_table_add(&o->table, regs, o->slave, err)) < 0 || (r = mbp_table_gap(&o->table, device, err)) < 0)
		return r;
	return mbp_table_plan(&o->table, err);
}

/*
 * slave, timeout, registers, max_gap (see the header). 0 with *ret_opts
 * (free with modbus_free_options), -EINVAL with *err filled, or -ENOMEM.
 */
static int modbus_parse_options(const config_setting_t *device, void **ret_opts, struct sg_opt_error *err)
{
	struct modbus_opts *o;
	int r;

	if (!ret_opts)
		return -EINVAL;
	if (!device)
		return sg_opt_fail(err, NULL, "modbus needs slave = N; and registers = ( ... );");
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	r = modbus_parse(device, o, err);
	if (r < 0) {
		modbus_free_options(o);
		return r;
	}
	*ret_opts = o;
	return 0;
}

static bool modbus_option_field(const void *opts, size_t i, char *name, size_t len, struct sg_field_info *ret)
{
	const struct modbus_opts *o = opts;

	return o && mbp_table_field(&o->table, i, name, len, ret);
}

/* "modbus rtu slave 1, timeout 0.5 s, 2 requests per cycle for 3 entries (max_gap 0): slave 1 input 0+2, ..." */
static void modbus_describe(const void *opts, char *buf, size_t len)
{
	const struct modbus_opts *o = opts;
	int off = snprintf(buf, len, "modbus rtu slave %u, timeout %g s, ", o->slave, o->timeout_s);

	if (off > 0 && (size_t)off < len)
		mbp_table_describe(&o->table, "slave", buf + off, len - (size_t)off);
}

static size_t modbus_line_plan(const void *opts, struct sg_line_request *reqs, size_t cap)
{
	const struct modbus_opts *o = opts;

	for (size_t i = 0; i < o->table.n_blocks && i < cap; i++) {
		reqs[i] = (struct sg_line_request){
			.tx_bytes = MBP_RTU_OVERHEAD + 5, /* function, address, quantity */
			.rx_bytes = MBP_RTU_OVERHEAD + (unsigned)mbp_block_answer_len(&o->table.blocks[i]),
			.timeout_s = o->timeout_s,
		};
		modbus_what(o, i, reqs[i].what, sizeof(reqs[i].what));
	}
	return o->table.n_blocks;
}

static const char *modbus_framing(int baud)
{
	(void)baud;
	return "8E1"; /* Serial Line §2.5.1: even parity is required as the default */
}

const struct sg_driver sg_driver_modbus = {
	.name = "modbus",
	.description = "Modbus RTU master: coils, inputs and registers of one slave, block reads, shared lines",
	.bus = SG_BUS_SERIAL,
	.default_baud = 9600, /* the most common factory setting of RTU meters (the spec's default is 19200) */
	.default_interval_s = MODBUS_DEFAULT_INTERVAL_S,
	.fields = NULL, /* data-defined: the configured register names */
	.option_keys = modbus_option_keys,
	.parse_options = modbus_parse_options,
	.free_options = modbus_free_options,
	.state_size = sizeof(struct modbus_state),
	.init = modbus_init,
	.fini = NULL,
	.feed = NULL,
	.reset = NULL,
	.poll = modbus_poll,
	.io = NULL,
	.option_field = modbus_option_field,
	.describe = modbus_describe,
	.framing = modbus_framing,
	.request = modbus_request,
	.answer = modbus_answer,
	.no_answer = modbus_no_answer,
	.line_gap_chars = MODBUS_GAP_CHARS,
	.line_gap_min_us = MODBUS_GAP_MIN_US,
	.streams = NULL,
	.line_plan = modbus_line_plan,
};
