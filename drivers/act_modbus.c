/* SPDX-License-Identifier: MIT */
/*
 * act_modbus.c — the `modbus` actuator driver: writes to a Modbus device.
 * Coils are switches (05 Write Single Coil, or 15 Write Multiple Coils),
 * holding registers are numbers (06 Write Single Register, or 16 Write
 * Multiple Registers for wider types) or switches (1/0).
 *
 *   { name = "pump"; driver = "modbus"; host = "192.168.1.50"; unit = 1;
 *     function = "coil"; address = 17; initial = "OFF"; }
 *   { name = "setpoint"; driver = "modbus"; host = "192.168.1.50"; unit = 1; type = "number";
 *     min = 5; max = 30; step = 0.5; address = 100; register_type = "i16"; scale = 0.1; }
 *
 * The router has checked the value against min/max/step before set() is
 * called; set() also refuses a value the register cannot hold (its type after
 * scale and offset) before anything is sent. A write is confirmed by the
 * response, which must echo the request (AP §6.5, §6.6, §6.11, §6.12); an
 * exception response fails the command with the exception's name. With
 * read_back = true the value is then read again (01 / 03) and must be what was
 * written.
 *
 *   set() ── value -> PDU ──(connecting: wait)── send ── echo ──┬── done(0)
 *                                                              └── read back ── equal ── done(0)
 *   exception, wrong echo, different read-back: done(-EIO, why);
 *   nothing within timeout_ms: done(-ETIMEDOUT); twice in a row: the connection
 *   is dropped and reopened (the router's backoff).
 *
 * Transports. Modbus TCP (`host`: bus_modbus_tcp.h, one connection per
 * actuator, kept open, reopened by the router when the server closes it) or
 * Modbus RTU (`port` a serial device, or `usb_serial`: the write is one
 * transaction on the serial line the slaves' devices share, line.h): the
 * line gives the actuator its turn between the devices' reads, the answer
 * is framed by its length and CRC (Serial Line V1.02 §2.5.1), and the
 * line's timeout, not this driver's timer, says when it did not come. The
 * rest (values, confirmation, read-back: mba_build_write(), mba_answer())
 * is the same for both.
 *
 * Keys of its own: host (TCP) or port/usb_serial (RTU; baud, data_bits,
 * parity, stop_bits, default 9600 8E1), port (TCP, default 502), unit (0..255,
 * default 1; `slave` on RTU, 1..247), function ("coil" default for switches, "holding"), address
 * (required), register_type/byte_order/word_order/scale/offset (holding
 * registers, modbus_proto.h; `type` is the actuator's switch or number), write_multiple (use 15/16 even for one coil or register),
 * read_back, timeout_ms (50..10000, default 1000).
 *
 * Ownership: struct modbus_act_opts is made by parse_options() and owned by
 * the config; struct modbus_act_state lives in act->state (owned by the
 * router) and owns the connection from open() to close(). No allocation at
 * run time, no logging.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/clock.h"
#include "act_line.h"
#include "actuator.h"
#include "bus_modbus_tcp.h"
#include "modbus_proto.h"

#define MBA_DEFAULT_TIMEOUT_MS 1000
#define MBA_MIN_TIMEOUT_MS 50
#define MBA_MAX_TIMEOUT_MS 10000
#define MBA_DEFAULT_UNIT 1
#define MBA_TIMEOUTS_TO_DROP 2
#define MBA_MAX_HOST 253
#define MBA_RTU_DEFAULT_BAUD 9600  /* as the modbus device driver's, so that both agree on a shared line */
#define MBA_RTU_GAP_CHARS 3.5       /* SL §2.5.1.1, as the modbus device driver */
#define MBA_RTU_GAP_MIN_US 1750
#define MBA_RTU_FRAMING ((struct sg_serial_framing){.data_bits = 8, .parity = 'E', .stop_bits = 1}) /* SL §2.5.1 */

struct modbus_act_opts {
	bool rtu;                /* a serial line (line), else TCP (host, port) */
	struct sg_line_spec line;
	char host[MBA_MAX_HOST + 1];
	int port;
	uint8_t unit;
	uint8_t function;        /* MBP_FC_READ_COILS or MBP_FC_READ_HOLDING: the table it writes */
	uint16_t address;
	struct mbp_format fmt;   /* holding registers */
	bool write_multiple;
	bool read_back;
	int timeout_ms;
};

enum modbus_act_phase {
	MBA_IDLE = 0,
	MBA_WAIT_CONNECT, /* a write waits for the connection */
	MBA_WRITING,      /* written, waiting for the echo */
	MBA_READING_BACK, /* confirmed, reading the value again */
	MBA_REFUSED,      /* refused before sending: done() from the timer */
};

struct modbus_act_state {
	struct mbtcp_conn conn;     /* TCP */
	struct act_line line;       /* RTU */
	uint8_t adu[MBP_RTU_MAX_ADU];
	size_t adu_len;
	enum modbus_act_phase phase;
	uint8_t req[MBP_MAX_PDU];   /* the request out (write, then read-back) */
	size_t req_len;
	uint8_t value[8];           /* what was written: register bytes, or [0] = coil */
	unsigned timeouts_in_row;
	int refuse_errno;
	int last_result;            /* of the last command, for set_sync() */
	char detail[160];
};

/* ---- the transports: Modbus TCP, and RTU over a shared serial line ---------------------------- */

struct modbus_transport {
	int (*open)(struct sg_act *a);
	int (*send)(struct sg_act *a);                 /* st->req to the unit */
	bool (*ready)(const struct sg_act *a);         /* requests can be sent now */
	void (*close)(struct sg_act *a);
};

static int mba_tcp_open(struct sg_act *a)
{
	const struct modbus_act_opts *o = a->params->opts;
	struct modbus_act_state *st = a->state;
	int r;

	mbtcp_init(&st->conn);
	r = mbtcp_open(&st->conn, o->host, o->port);
	if (r < 0)
		return r;
	a->fd = st->conn.fd;
	a->events = st->conn.connecting ? POLLOUT : POLLIN;
	return 0;
}

static int mba_tcp_send(struct sg_act *a)
{
	const struct modbus_act_opts *o = a->params->opts;
	struct modbus_act_state *st = a->state;
	int r = mbtcp_send(&st->conn, o->unit, st->req, st->req_len);

	/* Any failure to send breaks the connection (-EPIPE: the router reopens it). */
	return r < 0 ? -EPIPE : 0;
}

static bool mba_tcp_ready(const struct sg_act *a)
{
	const struct modbus_act_state *st = a->state;

	return st->conn.fd >= 0 && !st->conn.connecting;
}

static void mba_tcp_close(struct sg_act *a)
{
	struct modbus_act_state *st = a->state;

	mbtcp_close(&st->conn);
	a->fd = -1;
}

static const struct modbus_transport mba_tcp = {
	.open = mba_tcp_open,
	.send = mba_tcp_send,
	.ready = mba_tcp_ready,
	.close = mba_tcp_close,
};

static const struct sg_line_ops mba_rtu_ops; /* below, with the answers */

static int mba_rtu_open(struct sg_act *a)
{
	const struct modbus_act_opts *o = a->params->opts;
	struct modbus_act_state *st = a->state;

	return act_line_open(a, &st->line, &o->line, &mba_rtu_ops, sg_act_modbus.line_gap_chars,
	                     sg_act_modbus.line_gap_min_us);
}

/* Frame st->req for the slave and ask for the line; the request goes out at the turn (mba_rtu_turn()). */
static int mba_rtu_send(struct sg_act *a)
{
	const struct modbus_act_opts *o = a->params->opts;
	struct modbus_act_state *st = a->state;
	int n = mbp_rtu_frame(st->adu, sizeof(st->adu), o->unit, st->req, st->req_len);

	if (n < 0)
		return n;
	st->adu_len = (size_t)n;
	n = line_want(st->line.user);
	act_line_sync(a, &st->line);
	return n;
}

static bool mba_rtu_ready(const struct sg_act *a)
{
	const struct modbus_act_state *st = a->state;

	return st->line.user && !st->line.lost;
}

static void mba_rtu_close(struct sg_act *a)
{
	struct modbus_act_state *st = a->state;

	act_line_close(a, &st->line);
}

static const struct modbus_transport mba_rtu = {
	.open = mba_rtu_open,
	.send = mba_rtu_send,
	.ready = mba_rtu_ready,
	.close = mba_rtu_close,
};

static const struct modbus_transport *mba_transport(const struct sg_act *a)
{
	const struct modbus_act_opts *o = a->params->opts;

	return o->rtu ? &mba_rtu : &mba_tcp;
}

/* ---- requests ----------------------------------------------------------------------------------- */

static bool mba_is_coil(const struct modbus_act_opts *o)
{
	return o->function == MBP_FC_READ_COILS;
}

/* The write request for V into st->req; 0, or -errno with st->detail set. */
static int mba_build_write(const struct sg_act *a, const struct sg_act_value *v, struct modbus_act_state *st)
{
	const struct modbus_act_opts *o = a->params->opts;
	double number = a->params->kind == SG_ACT_SWITCH ? (v->on ? 1 : 0) : v->number;
	unsigned width;
	int n, r;

	if (mba_is_coil(o)) {
		st->value[0] = v->on ? 1 : 0;
		n = o->write_multiple ? mbp_encode_write_coils(st->req, sizeof(st->req), o->address, 1, st->value)
		                      : mbp_encode_write_coil(st->req, sizeof(st->req), o->address, v->on);
	} else {
		r = mbp_value_encode(&o->fmt, number, st->value);
		if (r < 0) {
			snprintf(st->detail, sizeof(st->detail), "value %s does not fit the register (%s%s)", v->text,
			         mbp_type_name(o->fmt.type),
			         o->fmt.scale != 1 || o->fmt.offset != 0 ? " after scale and offset" : "");
			return r;
		}
		width = mbp_type_width(o->fmt.type);
		n = width == 1 && !o->write_multiple
		        ? mbp_encode_write_register(st->req, sizeof(st->req), o->address,
		                                    (uint16_t)(st->value[0] << 8 | st->value[1]))
		        : mbp_encode_write_registers(st->req, sizeof(st->req), o->address, (uint16_t)width, st->value);
	}
	if (n < 0) {
		snprintf(st->detail, sizeof(st->detail), "cannot encode the request: %s", strerror(-n));
		return n;
	}
	st->req_len = (size_t)n;
	return 0;
}

/* TCP: the answer is due by then (RTU: the line keeps the time). */
static void mba_arm(struct sg_act *a, uint64_t now_us)
{
	const struct modbus_act_opts *o = a->params->opts;

	if (!o->rtu)
		a->wake_us = now_us + (uint64_t)o->timeout_ms * 1000;
}

/* The command is over: RESULT 0 or -errno with DETAIL. Nothing of the state may be used after. */
static void mba_finish(struct sg_act *a, int result, const char *detail)
{
	struct modbus_act_state *st = a->state;

	st->phase = MBA_IDLE;
	st->last_result = result;
	a->wake_us = UINT64_MAX;
	if (st->line.user)
		act_line_sync(a, &st->line);
	sg_act_done(a, result, detail);
}

static int mba_set(struct sg_act *a, const struct sg_act_value *v, uint64_t now_us)
{
	struct modbus_act_state *st = a->state;
	const struct modbus_transport *t = mba_transport(a);
	int r;

	if (st->line.lost)
		return st->line.lost;
	r = mba_build_write(a, v, st);
	if (r < 0) { /* answered from the timer: done() must not run inside set() */
		st->phase = MBA_REFUSED;
		st->refuse_errno = r;
		a->wake_us = now_us;
		return 1;
	}
	mba_arm(a, now_us);
	if (!t->ready(a)) {
		st->phase = MBA_WAIT_CONNECT;
		return 1;
	}
	r = t->send(a);
	if (r < 0)
		return r;
	st->phase = MBA_WRITING;
	return 1;
}

/* The answer to st->req arrived, from UNIT (PDU, LEN). */
static int mba_answer(struct sg_act *a, uint8_t unit, const uint8_t *pdu, size_t len, uint64_t now_us)
{
	const struct modbus_act_opts *o = a->params->opts;
	struct modbus_act_state *st = a->state;
	struct mbp_response r;
	int rc;

	st->timeouts_in_row = 0;
	if (unit != o->unit) {
		snprintf(st->detail, sizeof(st->detail), "answered by unit %u, not %u", unit, o->unit);
		mba_finish(a, -EIO, st->detail);
		return 0;
	}
	rc = mbp_decode_response(st->req, st->req_len, pdu, len, &r);
	if (rc == MBP_EXCEPTION) {
		snprintf(st->detail, sizeof(st->detail), "unit %u refused: exception %u (%s)", o->unit, r.exception,
		         mbp_exception_name(r.exception));
		mba_finish(a, -EIO, st->detail);
		return 0;
	}
	if (rc < 0) {
		snprintf(st->detail, sizeof(st->detail), "unit %u: %s", o->unit, mbp_result_name(rc));
		mba_finish(a, -EIO, st->detail);
		return 0;
	}
	if (st->phase == MBA_WRITING && o->read_back) {
		unsigned width = mba_is_coil(o) ? 1 : mbp_type_width(o->fmt.type);
		int n = mbp_encode_read(st->req, sizeof(st->req), mba_is_coil(o) ? MBP_FC_READ_COILS : MBP_FC_READ_HOLDING,
		                        o->address, (uint16_t)width);
		if (n < 0)
			return n;
		st->req_len = (size_t)n;
		st->phase = MBA_READING_BACK;
		mba_arm(a, now_us);
		return mba_transport(a)->send(a);
	}
	if (st->phase == MBA_READING_BACK) {
		bool same = mba_is_coil(o) ? mbp_bit(r.data, 0) == (st->value[0] != 0)
		                           : memcmp(r.data, st->value, r.data_len) == 0;
		if (!same) {
			snprintf(st->detail, sizeof(st->detail), "unit %u: read back a different value than written", o->unit);
			mba_finish(a, -EIO, st->detail);
			return 0;
		}
	}
	mba_finish(a, 0, NULL);
	return 0;
}

/* A TCP response: the one awaited, by its transaction id? */
static int mba_response(struct sg_act *a, const struct mbp_tcp_header *h, const uint8_t *pdu, size_t len,
                        uint64_t now_us)
{
	struct modbus_act_state *st = a->state;

	if ((st->phase != MBA_WRITING && st->phase != MBA_READING_BACK) || h->transaction != st->conn.transaction)
		return 0; /* the answer to a request that timed out */
	return mba_answer(a, h->unit, pdu, len, now_us);
}

/* ---- RTU: the line's turns and the answers framed out of its bytes ---------------------------------- */

static void mba_rtu_turn(void *ctx, uint64_t now_us)
{
	struct sg_act *a = ctx;
	const struct modbus_act_opts *o = a->params->opts;
	struct modbus_act_state *st = a->state;

	if (st->phase != MBA_WRITING && st->phase != MBA_READING_BACK) {
		line_done(st->line.user, now_us);
		return;
	}
	if (line_send(st->line.user, st->adu, st->adu_len, (uint64_t)o->timeout_ms * 1000, now_us) < 0)
		line_done(st->line.user, now_us); /* the line failed: down() follows */
}

static ssize_t mba_rtu_rx(void *ctx, const uint8_t *buf, size_t len, uint64_t now_us)
{
	struct sg_act *a = ctx;
	const struct modbus_act_opts *o = a->params->opts;
	struct modbus_act_state *st = a->state;
	size_t skip = 1, total;
	int n;

	if (st->phase != MBA_WRITING && st->phase != MBA_READING_BACK)
		return -(ssize_t)len;
	if (buf[0] != o->unit) {
		while (skip < len && buf[skip] != o->unit)
			skip++;
		return -(ssize_t)skip; /* not an answer from our slave */
	}
	if (len < 2)
		return 0;
	n = mbp_response_pdu_length(st->req, st->req_len, buf + 1, len - 1);
	if (n == 0)
		return 0;
	if (n == MBP_ERR_BYTE_COUNT) {
		line_done(st->line.user, now_us);
		snprintf(st->detail, sizeof(st->detail), "unit %u: %s", o->unit, mbp_result_name(n));
		mba_finish(a, -EIO, st->detail);
		return (ssize_t)len;
	}
	if (n < 0)
		return -1;
	total = 1 + (size_t)n + 2;
	if (len < total)
		return 0;
	line_done(st->line.user, now_us);
	if (!mbp_rtu_crc_ok(buf, total)) {
		snprintf(st->detail, sizeof(st->detail), "unit %u: CRC mismatch", o->unit);
		mba_finish(a, -EIO, st->detail);
		return (ssize_t)total;
	}
	if (mba_answer(a, buf[0], buf + 1, (size_t)n, now_us) < 0)
		act_line_down(a, &st->line, -ENODEV);
	return (ssize_t)total;
}

static void mba_rtu_ended(void *ctx, int result, uint64_t now_us)
{
	struct sg_act *a = ctx;
	const struct modbus_act_opts *o = a->params->opts;
	struct modbus_act_state *st = a->state;

	(void)now_us;
	if (result == 0 || (st->phase != MBA_WRITING && st->phase != MBA_READING_BACK))
		return;
	snprintf(st->detail, sizeof(st->detail), "no response from unit %u within %d ms", o->unit, o->timeout_ms);
	mba_finish(a, -ETIMEDOUT, st->detail);
}

static void mba_rtu_down(void *ctx, int err)
{
	struct sg_act *a = ctx;
	struct modbus_act_state *st = a->state;

	act_line_down(a, &st->line, err);
}

static const struct sg_line_ops mba_rtu_ops = {
	.turn = mba_rtu_turn,
	.rx = mba_rtu_rx,
	.ended = mba_rtu_ended,
	.stream = NULL,
	.down = mba_rtu_down,
};

static int mba_io(struct sg_act *a, short revents, uint64_t now_us)
{
	struct modbus_act_state *st = a->state;
	struct mbp_tcp_header h;
	const uint8_t *pdu;
	size_t len;
	int r;

	if (mba_transport(a) == &mba_rtu)
		return act_line_io(a, &st->line, revents, now_us);
	if (st->conn.connecting) {
		r = mbtcp_finish_connect(&st->conn);
		if (r <= 0)
			return r;
		a->events = POLLIN;
		if (st->phase == MBA_WAIT_CONNECT) {
			r = mba_tcp.send(a);
			if (r < 0)
				return r;
			st->phase = MBA_WRITING;
		}
		return 0;
	}
	if (revents & POLLIN) {
		r = mbtcp_read(&st->conn);
		while (r == 0 && (r = mbtcp_next(&st->conn, &h, &pdu, &len)) == 1)
			r = mba_response(a, &h, pdu, len, now_us);
		if (r < 0)
			return r;
	}
	if (revents & (POLLHUP | POLLERR))
		return -ECONNRESET;
	return 0;
}

static int mba_timer(struct sg_act *a, uint64_t now_us)
{
	const struct modbus_act_opts *o = a->params->opts;
	struct modbus_act_state *st = a->state;

	if (o->rtu && st->phase == MBA_REFUSED) {
		mba_finish(a, st->refuse_errno, st->detail);
		return 0;
	}
	if (o->rtu)
		return act_line_timer(a, &st->line, now_us); /* the line times the answers out */
	if (now_us < a->wake_us)
		return 0;
	switch (st->phase) {
	case MBA_REFUSED:
		mba_finish(a, st->refuse_errno, st->detail);
		return 0;
	case MBA_WAIT_CONNECT:
		mba_finish(a, -ETIMEDOUT, "not connected within timeout_ms");
		return -ETIMEDOUT;
	case MBA_WRITING:
	case MBA_READING_BACK:
		snprintf(st->detail, sizeof(st->detail), "no response from unit %u within %d ms", o->unit, o->timeout_ms);
		mba_finish(a, -ETIMEDOUT, st->detail);
		/* mba_finish() may have started the next command: only the counter is ours here */
		return ++st->timeouts_in_row >= MBA_TIMEOUTS_TO_DROP ? -ETIMEDOUT : 0;
	default:
		a->wake_us = UINT64_MAX;
		return 0;
	}
}

static int mba_open(struct sg_act *a)
{
	struct modbus_act_state *st = a->state;

	st->phase = MBA_IDLE;
	a->wake_us = UINT64_MAX;
	return mba_transport(a)->open(a);
}

static void mba_close(struct sg_act *a)
{
	mba_transport(a)->close(a);
}

/* Shutdown over RTU: drive the line here until the write is confirmed (no read-back), at most TIMEOUT_MS. */
static int mba_rtu_set_sync(struct sg_act *a, const struct sg_act_value *v, int timeout_ms)
{
	struct modbus_act_state *st = a->state;
	uint64_t end = now_mono_us() + (uint64_t)timeout_ms * 1000;
	bool busy;
	int rc;

	if (!mba_rtu_ready(a))
		return -ENODEV;
	busy = st->phase != MBA_IDLE;
	if ((rc = line_drive(line_of(st->line.user), &busy, end, now_mono_us)) < 0) /* what is in flight first */
		return rc;
	st->phase = MBA_IDLE;
	if ((rc = mba_build_write(a, v, st)) < 0 || (rc = mba_rtu_send(a)) < 0)
		return rc;
	st->phase = MBA_WRITING;
	st->last_result = -ETIMEDOUT;
	for (;;) {
		busy = st->phase != MBA_IDLE;
		if (!busy)
			break;
		rc = line_drive(line_of(st->line.user), &busy, now_mono_us() + 1000, now_mono_us);
		if (rc == -ENODEV)
			return rc;
		if (now_mono_us() >= end)
			return -ETIMEDOUT;
	}
	return st->line.lost ? st->line.lost : st->last_result;
}

/* Shutdown: the write alone, waiting at most TIMEOUT_MS for its echo on a connected socket. */
static int mba_set_sync(struct sg_act *a, const struct sg_act_value *v, int timeout_ms)
{
	struct modbus_act_state *st = a->state;
	struct mbp_tcp_header h;
	struct mbp_response r;
	const uint8_t *pdu;
	size_t len;
	int rc;

	if (mba_transport(a) == &mba_rtu)
		return mba_rtu_set_sync(a, v, timeout_ms);
	if (!mba_tcp.ready(a))
		return -ENOTCONN;
	if ((rc = mba_build_write(a, v, st)) < 0 || (rc = mba_tcp.send(a)) < 0)
		return rc;
	st->phase = MBA_IDLE; /* whatever was in flight is abandoned */
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		struct pollfd p = {.fd = st->conn.fd, .events = POLLIN};

		if (poll(&p, 1, 10) <= 0)
			continue;
		if ((rc = mbtcp_read(&st->conn)) < 0)
			return rc;
		while ((rc = mbtcp_next(&st->conn, &h, &pdu, &len)) == 1)
			if (h.transaction == st->conn.transaction)
				return mbp_decode_response(st->req, st->req_len, pdu, len, &r) == MBP_OK ? 0 : -EIO;
		if (rc < 0)
			return rc;
	}
	return -ETIMEDOUT;
}

/* ---- options ------------------------------------------------------------------------------------ */

static const char *const mba_option_keys[] = {"host",   "port",       "unit",        "function", "usb_serial",
                                              "baud", "data_bits", "parity", "stop_bits", "slave",
                                              "address", "register_type", "byte_order", "word_order",
                                              "scale",  "offset",     "bit",        "write_multiple", "read_back",
                                              "timeout_ms", NULL};

static int mba_parse(const config_setting_t *g, const struct sg_act_common *common, struct modbus_act_opts *o,
                     struct sg_opt_error *err)
{
	const config_setting_t *host = config_setting_get_member(g, "host");
	const config_setting_t *port = config_setting_get_member(g, "port");
	const config_setting_t *fn = config_setting_get_member(g, "function");
	int unit = MBA_DEFAULT_UNIT, address = 0, r;
	char what[96];

	snprintf(what, sizeof(what), "actuator \"%.80s\"", common->name);
	o->rtu = (port && config_setting_type(port) == CONFIG_TYPE_STRING) || config_setting_get_member(g, "usb_serial");
	o->timeout_ms = MBA_DEFAULT_TIMEOUT_MS;
	if (o->rtu) {
		if (host)
			return sg_opt_fail(err, host, "%s: set host (Modbus TCP) or a serial port (Modbus RTU), not both", what);
		o->line.settings = (struct sg_line_settings){.baud = MBA_RTU_DEFAULT_BAUD, .framing = MBA_RTU_FRAMING};
		if ((r = line_spec_parse(g, what, &o->line, err)) < 0)
			return r;
		if (config_setting_get_member(g, "slave") && config_setting_get_member(g, "unit"))
			return sg_opt_fail(err, config_setting_get_member(g, "unit"), "%s: set slave or unit, not both", what);
		if ((r = sg_opt_int(g, "slave", MBP_SLAVE_MIN, MBP_SLAVE_MAX, &unit, err)) < 0 ||
		    (r = sg_opt_int(g, "unit", MBP_SLAVE_MIN, MBP_SLAVE_MAX, &unit, err)) < 0)
			return r;
	} else {
		static const char *const rtu_only[] = {"baud", "data_bits", "parity", "stop_bits", "slave", NULL};

		for (int i = 0; rtu_only[i]; i++)
			if (config_setting_get_member(g, rtu_only[i]))
				return sg_opt_fail(err, config_setting_get_member(g, rtu_only[i]), "%s: \"%s\" applies to Modbus "
				                   "RTU (port = \"/dev/...\"), not to Modbus TCP (host)", what, rtu_only[i]);
		if ((r = sg_opt_require(g, "host", err, "actuator \"%.80s\"", common->name)) < 0)
			return r;
		if (config_setting_type(host) != CONFIG_TYPE_STRING || !*config_setting_get_string(host) ||
		    strlen(config_setting_get_string(host)) > MBA_MAX_HOST)
			return sg_opt_fail(err, host, "\"host\" must be an address or name (1..%d bytes)", MBA_MAX_HOST);
		snprintf(o->host, sizeof(o->host), "%s", config_setting_get_string(host));
		o->port = MBP_TCP_PORT;
		if ((r = sg_opt_int(g, "port", 1, 65535, &o->port, err)) < 0 ||
		    (r = sg_opt_int(g, "unit", 0, 255, &unit, err)) < 0)
			return r;
	}
	if ((r = sg_opt_require(g, "address", err, "actuator \"%.80s\"", common->name)) < 0 ||
	    (r = sg_opt_int(g, "address", 0, 65535, &address, err)) < 0 ||
	    (r = sg_opt_bool(g, "write_multiple", &o->write_multiple, err)) < 0 ||
	    (r = sg_opt_bool(g, "read_back", &o->read_back, err)) < 0 ||
	    (r = sg_opt_int(g, "timeout_ms", MBA_MIN_TIMEOUT_MS, MBA_MAX_TIMEOUT_MS, &o->timeout_ms, err)) < 0)
		return r;
	o->unit = (uint8_t)unit;
	o->address = (uint16_t)address;
	o->function = common->kind == SG_ACT_SWITCH ? MBP_FC_READ_COILS : MBP_FC_READ_HOLDING;
	if (fn && (r = mbp_function_parse(fn, &o->function, err)) < 0)
		return r;
	if (o->function == MBP_FC_READ_DISCRETE || o->function == MBP_FC_READ_INPUT)
		return sg_opt_fail(err, fn, "%s: discrete inputs and input registers are read-only; write a \"coil\" or a "
		                   "\"holding\" register", what);
	if (o->function == MBP_FC_READ_COILS && common->kind != SG_ACT_SWITCH)
		return sg_opt_fail(err, fn ? fn : g, "%s: a coil is ON or OFF: use type = \"switch\", or function = "
		                   "\"holding\" for a number", what);
	if ((r = mbp_format_parse(g, o->function, "register_type", what, &o->fmt, err)) < 0)
		return r;
	if (o->fmt.bit >= 0)
		return sg_opt_fail(err, g, "%s: writing one bit of a register is not supported", what);
	if ((unsigned)o->address + mbp_type_width(o->fmt.type) > 65536)
		return sg_opt_fail(err, config_setting_get_member(g, "address"), "%s: the value ends beyond address 65535",
		                   what);
	return 0;
}

static void mba_free_options(void *opts)
{
	struct modbus_act_opts *o = opts;

	if (o)
		line_spec_release(&o->line);
	free(opts);
}

static int mba_parse_options(const config_setting_t *g, const struct sg_act_common *common, void **ret_opts,
                             struct sg_opt_error *err)
{
	struct modbus_act_opts *o = calloc(1, sizeof(*o));
	int r;

	if (!o)
		return -ENOMEM;
	r = mba_parse(g, common, o, err);
	if (r < 0) {
		mba_free_options(o);
		return r;
	}
	*ret_opts = o;
	return 0;
}

static void mba_where(const void *opts, char *buf, size_t len)
{
	const struct modbus_act_opts *o = opts;

	if (o->rtu)
		snprintf(buf, len, "%s%s slave %u %s %u", o->line.port ? "" : "USB serial ",
		         o->line.port ? o->line.port : o->line.usb_serial, o->unit, mbp_function_name(o->function), o->address);
	else
		snprintf(buf, len, strchr(o->host, ':') ? "[%s]:%d unit %u %s %u" : "%s:%d unit %u %s %u", o->host, o->port,
		         o->unit, mbp_function_name(o->function), o->address);
}

static void mba_describe(const void *opts, char *buf, size_t len)
{
	const struct modbus_act_opts *o = opts;
	char where[MBA_MAX_HOST + 64], fr[8] = "";
	int n;

	mba_where(opts, where, sizeof(where));
	if (o->rtu)
		n = snprintf(buf, len, "modbus rtu %s (%d %s)", where, o->line.settings.baud,
		             serial_framing_text(&o->line.settings.framing, fr, sizeof(fr)));
	else
		n = snprintf(buf, len, "modbus tcp %s", where);
	if (n < 0 || (size_t)n >= len)
		return;
	if (o->function == MBP_FC_READ_COILS)
		snprintf(buf + n, len - (size_t)n, ", function %s%s, timeout %d ms", o->write_multiple ? "15" : "05",
		         o->read_back ? ", read back" : "", o->timeout_ms);
	else
		snprintf(buf + n, len - (size_t)n, " as %s (byte order %s, word order %s, scale %g, offset %g), function %s%s, "
		         "timeout %d ms", mbp_type_name(o->fmt.type), o->fmt.byte_little ? "little" : "big",
		         o->fmt.word_little ? "little" : "big", o->fmt.scale, o->fmt.offset,
		         mbp_type_width(o->fmt.type) == 1 && !o->write_multiple ? "06" : "16",
		         o->read_back ? ", read back" : "", o->timeout_ms);
}

static bool mba_line(const void *opts, struct sg_line_spec *ret)
{
	const struct modbus_act_opts *o = opts;

	if (!o->rtu)
		return false;
	*ret = o->line;
	return true;
}

const struct sg_act_driver sg_act_modbus = {
	.name = "modbus",
	.description = "coils and holding registers of a Modbus TCP or RTU device, confirmed by the response",
	.kinds = SG_ACT_KIND_BIT(SG_ACT_SWITCH) | SG_ACT_KIND_BIT(SG_ACT_NUMBER),
	.option_keys = mba_option_keys,
	.parse_options = mba_parse_options,
	.free_options = mba_free_options,
	.describe = mba_describe,
	.where = mba_where,
	.state_size = sizeof(struct modbus_act_state),
	.line_gap_chars = MBA_RTU_GAP_CHARS,
	.line_gap_min_us = MBA_RTU_GAP_MIN_US,
	.open = mba_open,
	.close = mba_close,
	.read_back = NULL,
	.set = mba_set,
	.io = mba_io,
	.timer = mba_timer,
	.set_sync = mba_set_sync,
	.line = mba_line,
};
