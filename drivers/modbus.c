/* SPDX-License-Identifier: MIT */
/*
 * modbus.c — the `modbus` driver: a Modbus RTU master for energy meters, inverters, PLCs.
 *
 * Design decision: the RTU protocol is spoken here, non-blocking, instead of through
 * libmodbus. libmodbus's calls (modbus_read_registers() and friends) block until the
 * response or the response timeout (0.5 s by default) and would stall the gateway's single
 * event loop — every other device, the MQTT keepalive and the watchdog — for as long.
 * So poll() only writes a request and returns; feed() assembles the response whenever
 * bytes arrive; the next poll() tick, one `timeout` later, counts a missing response.
 * libmodbus is used in the tests as the independent reference (a libmodbus RTU server on
 * a pseudo-terminal answers this driver).
 *
 * Frames (Modbus over Serial Line V1.02 §2.5.1; Modbus Application Protocol V1.1b3 §6.3, §6.4, §7):
 *
 *   request   slave  fc  start_hi start_lo  count_hi count_lo  crc_lo crc_hi
 *             1..247 03 read holding registers / 04 read input registers; count 1..125
 *   response  slave  fc  n=2*count  reg0_hi reg0_lo ... reg(count-1)_lo  crc_lo crc_hi
 *   exception slave  fc|0x80  code  crc_lo crc_hi        (code 1 illegal function,
 *                                                        2 illegal data address, ...)
 *   CRC-16/MODBUS (Serial Line §6.2.2): polynomial 0xA001 (reflected 0x8005), initial
 *   0xFFFF, over every byte before the CRC, sent low byte first. Registers are big-endian.
 *
 * Options:
 *   slave = 1;                    # 1..247
 *   timeout = 0.5;                # seconds to wait for each response (0.05 .. 10)
 *   registers = (
 *     { name = "voltage"; address = 0; type = "float32"; function = "input";
 *       word_order = "big"; scale = 1.0; unit = "V"; },
 *   );
 *   type: uint16 | int16 (one register) | uint32 | int32 | float32 (two registers,
 *   IEEE 754); word_order: "big" (high word first, the Modbus norm) | "little";
 *   function: "holding" (03, default) | "input" (04); scale multiplies the raw value
 *   (default 1); unit is passed through. Each entry is one request and one reading,
 *   named by `name`.
 *
 * Timing: every `interval` a cycle requests each register entry in turn, one per poll()
 * tick, `timeout` apart; after the last, poll() waits out the rest of the interval.
 * A response still missing at the next tick is SG_FAIL_TIMEOUT; an exception response is
 * SG_FAIL_IO with the exception code in the detail; a bad CRC SG_FAIL_CHECKSUM; a
 * response of the wrong size SG_FAIL_SYNTAX; a float32 NaN/infinity SG_FAIL_INSANE;
 * bytes while no request is out (or noise before a response) SG_FAIL_GARBAGE, once per gap.
 * The receive buffer is cleared when a request is sent, so a late answer to an earlier
 * request is not taken for the current one unless it arrives after the new request went
 * out — keep `timeout` above the device's real response time.
 *
 * Serial framing: the port is 8N1. The Modbus serial default is 8E1 (Serial Line §2.5.1):
 * set the device to no parity (most meters offer it) — 8E1 is not supported yet.
 *
 * Ownership: options (struct modbus_opts, register table included) are allocated once by
 * parse_options() and owned by the config; struct modbus_state lives in dev->state, owned
 * by the gateway. Nothing is allocated per request, nothing logged.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "frame.h"
#include "drivers.h"

#define MODBUS_FC_HOLDING 0x03       /* Application Protocol §6.3 Read Holding Registers */
#define MODBUS_FC_INPUT 0x04         /* §6.4 Read Input Registers */
#define MODBUS_EXCEPTION 0x80        /* §7: function code | 0x80 */
#define MODBUS_SLAVE_MIN 1           /* Serial Line §2.2: 0 broadcast, 248..255 reserved */
#define MODBUS_SLAVE_MAX 247
#define MODBUS_CRC_INIT 0xffff       /* Serial Line §6.2.2 */
#define MODBUS_CRC_POLY 0xa001
#define MODBUS_REQUEST_LEN 8
#define MODBUS_MAX_ADU 256           /* Serial Line §2.5.1.1: RTU frame at most 256 bytes */
#define MODBUS_EXCEPTION_LEN 5
#define MODBUS_MAX_REGISTERS 64      /* entries in `registers` */
#define MODBUS_MAX_NAME 64
#define MODBUS_MAX_UNIT 15
#define MODBUS_DEFAULT_TIMEOUT_S 0.5 /* libmodbus's default response timeout, too */
#define MODBUS_MIN_TIMEOUT_S 0.05
#define MODBUS_MAX_TIMEOUT_S 10.0
#define MODBUS_DEFAULT_INTERVAL_S 10.0

enum modbus_type {
	MODBUS_UINT16 = 0,
	MODBUS_INT16,
	MODBUS_UINT32,
	MODBUS_INT32,
	MODBUS_FLOAT32,
};

static const char *const modbus_type_names[] = {"uint16", "int16", "uint32", "int32", "float32", NULL};

struct modbus_reg {
	char name[MODBUS_MAX_NAME + 1];
	char unit[MODBUS_MAX_UNIT + 1];  /* "" = none */
	unsigned address;
	unsigned count;                  /* registers: 1 or 2 */
	enum modbus_type type;
	uint8_t function;                /* MODBUS_FC_HOLDING or MODBUS_FC_INPUT */
	bool little_word_order;
	double scale;
};

struct modbus_opts {
	unsigned slave;
	double timeout_s;
	size_t n_regs;
	struct modbus_reg regs[MODBUS_MAX_REGISTERS];
};

struct modbus_state {
	size_t next;                 /* entry to request at the next tick */
	bool awaiting;               /* a request is out, no valid answer yet */
	size_t pending;              /* entry of that request */
	uint64_t cycle_us;           /* time spent in the current cycle */
	bool noise_counted;
	size_t len;
	uint8_t rx[MODBUS_MAX_ADU];
	uint8_t tx[MODBUS_REQUEST_LEN];
	char detail[96];             /* failure text with numbers in it */
};

/* ---- frames ----------------------------------------------------------------------------------- */

/* CRC-16/MODBUS of BUF[0..LEN). */
static unsigned modbus_crc16(const uint8_t *buf, size_t len)
{
	unsigned crc = MODBUS_CRC_INIT;

	for (size_t i = 0; i < len; i++) {
		crc ^= buf[i];
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ MODBUS_CRC_POLY : crc >> 1;
	}
	return crc & 0xffff;
}

static void modbus_build_request(uint8_t *f, unsigned slave, const struct modbus_reg *r)
{
	unsigned crc;

	f[0] = (uint8_t)slave;
	f[1] = r->function;
	f[2] = (uint8_t)(r->address >> 8);
	f[3] = (uint8_t)(r->address & 0xff);
	f[4] = (uint8_t)(r->count >> 8);
	f[5] = (uint8_t)(r->count & 0xff);
	crc = modbus_crc16(f, 6);
	f[6] = (uint8_t)(crc & 0xff);
	f[7] = (uint8_t)(crc >> 8);
}

static const char *modbus_exception_name(unsigned code)
{
	switch (code) {
	case 1:
		return "illegal function";
	case 2:
		return "illegal data address";
	case 3:
		return "illegal data value";
	case 4:
		return "server device failure";
	case 5:
		return "acknowledge";
	case 6:
		return "server device busy";
	case 10:
		return "gateway path unavailable";
	case 11:
		return "gateway target failed to respond";
	default:
		return "unknown exception";
	}
}

/* Value of entry R from the big-endian register bytes P. */
static double modbus_decode(const struct modbus_reg *r, const uint8_t *p)
{
	unsigned w0 = (unsigned)p[0] << 8 | p[1];
	unsigned w1 = r->count > 1 ? ((unsigned)p[2] << 8 | p[3]) : 0;
	uint32_t u32 = r->little_word_order ? (uint32_t)w1 << 16 | w0 : (uint32_t)w0 << 16 | w1;
	float f;

	switch (r->type) {
	case MODBUS_UINT16:
		return w0;
	case MODBUS_INT16:
		return (int16_t)w0;
	case MODBUS_UINT32:
		return u32;
	case MODBUS_INT32:
		return (int32_t)u32;
	case MODBUS_FLOAT32:
		memcpy(&f, &u32, sizeof(f));
		return f;
	}
	return 0;
}

/* ---- receiving -------------------------------------------------------------------------------- */

enum modbus_check {
	MODBUS_NEED_MORE = 0,
	MODBUS_FRAME_OK,
	MODBUS_FRAME_EXCEPTION,
	MODBUS_BAD_START,  /* wrong slave or function: noise */
	MODBUS_BAD_SIZE,
	MODBUS_BAD_CRC,
};

static enum modbus_check modbus_check(const struct modbus_state *st, const struct modbus_opts *o)
{
	const struct modbus_reg *r = &o->regs[st->pending];
	size_t want;

	if (st->len >= 1 && st->rx[0] != o->slave)
		return MODBUS_BAD_START;
	if (st->len >= 2 && st->rx[1] != r->function && st->rx[1] != (r->function | MODBUS_EXCEPTION))
		return MODBUS_BAD_START;
	if (st->len < 3)
		return MODBUS_NEED_MORE;
	if (st->rx[1] & MODBUS_EXCEPTION) {
		want = MODBUS_EXCEPTION_LEN;
	} else {
		if (st->rx[2] != 2 * r->count)
			return MODBUS_BAD_SIZE;
		want = 3 + 2 * (size_t)r->count + 2;
	}
	if (st->len < want)
		return MODBUS_NEED_MORE;
	if (modbus_crc16(st->rx, want - 2) != ((unsigned)st->rx[want - 1] << 8 | st->rx[want - 2]))
		return MODBUS_BAD_CRC;
	return (st->rx[1] & MODBUS_EXCEPTION) ? MODBUS_FRAME_EXCEPTION : MODBUS_FRAME_OK;
}

static void modbus_answer(struct sg_dev *dev, struct modbus_state *st, const struct modbus_opts *o,
			  enum modbus_check c)
{
	const struct modbus_reg *r = &o->regs[st->pending];
	double v;

	st->awaiting = false;
	st->len = 0;
	st->noise_counted = false;
	if (c == MODBUS_FRAME_EXCEPTION) {
		snprintf(st->detail, sizeof(st->detail), "modbus: %s: exception %u (%s)", r->name, st->rx[2],
			 modbus_exception_name(st->rx[2]));
		sg_dev_fail(dev, SG_FAIL_IO, st->detail);
		return;
	}
	v = modbus_decode(r, st->rx + 3) * r->scale;
	if (!isfinite(v)) {
		snprintf(st->detail, sizeof(st->detail), "modbus: %s: value is not a finite number", r->name);
		sg_dev_fail(dev, SG_FAIL_INSANE, st->detail);
		return;
	}
	sg_dev_emit_number(dev, r->name, v, r->unit[0] ? r->unit : NULL);
	dev->stats.frames++;
}

static void modbus_feed(struct sg_dev *dev, const uint8_t *buf, size_t len)
{
	struct modbus_state *st = dev->state;
	const struct modbus_opts *o = dev->opts;

	if (!o || o->n_regs == 0)
		return;
	for (size_t i = 0; i < len; i++) {
		if (!st->awaiting) {
			if (!st->noise_counted) {
				st->noise_counted = true;
				sg_dev_fail(dev, SG_FAIL_GARBAGE, "modbus: bytes while no request is out");
			}
			continue;
		}
		st->rx[st->len++] = buf[i];
		for (;;) {
			enum modbus_check c = modbus_check(st, o);

			if (c == MODBUS_NEED_MORE)
				break;
			if (c == MODBUS_FRAME_OK || c == MODBUS_FRAME_EXCEPTION) {
				modbus_answer(dev, st, o, c);
				break;
			}
			if (c == MODBUS_BAD_START) {
				if (!st->noise_counted)
					sg_dev_fail(dev, SG_FAIL_GARBAGE, "modbus: bytes before the response");
			} else if (c == MODBUS_BAD_SIZE) {
				sg_dev_fail(dev, SG_FAIL_SYNTAX, "modbus: response byte count does not match the request");
			} else {
				sg_dev_fail(dev, SG_FAIL_CHECKSUM, "modbus: CRC mismatch");
			}
			st->noise_counted = true;
			st->len = frame_resync(st->rx, st->len, (uint8_t)o->slave);
			if (st->len == 0)
				break;
		}
	}
}

/* ---- polling ---------------------------------------------------------------------------------- */

/*
 * One tick: count a missing response, then send the next request, or wait out the rest of
 * the interval after the last one. 0 with *ret_delay_us set, or -errno if the port failed.
 */
static int modbus_poll(struct sg_dev *dev, uint64_t *ret_delay_us)
{
	struct modbus_state *st = dev->state;
	const struct modbus_opts *o = dev->opts;
	uint64_t interval_us = (uint64_t)((dev->interval_s > 0 ? dev->interval_s : MODBUS_DEFAULT_INTERVAL_S) * 1e6);
	uint64_t timeout_us;
	ssize_t n;

	if (!o || o->n_regs == 0)
		return -EINVAL;
	timeout_us = (uint64_t)(o->timeout_s * 1e6);
	if (st->awaiting) {
		snprintf(st->detail, sizeof(st->detail), "modbus: %s: no response from slave %u",
			 o->regs[st->pending].name, o->slave);
		sg_dev_fail(dev, SG_FAIL_TIMEOUT, st->detail);
		st->awaiting = false;
	}
	if (st->next >= o->n_regs) {
		uint64_t spent = st->cycle_us;

		st->next = 0;
		st->cycle_us = 0;
		if (spent < interval_us) {
			*ret_delay_us = interval_us - spent;
			return 0;
		}
	}
	st->pending = st->next++;
	modbus_build_request(st->tx, o->slave, &o->regs[st->pending]);
	st->len = 0;
	st->noise_counted = false;
	st->cycle_us += timeout_us;
	*ret_delay_us = timeout_us;
	n = write(dev->fd, st->tx, sizeof(st->tx));
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR) {
			sg_dev_fail(dev, SG_FAIL_IO, "modbus: port busy, request not sent");
			return 0;
		}
		return -errno;
	}
	if ((size_t)n != sizeof(st->tx)) {
		sg_dev_fail(dev, SG_FAIL_IO, "modbus: request only partly sent");
		return 0;
	}
	st->awaiting = true;
	return 0;
}

static void modbus_reset(struct sg_dev *dev)
{
	struct modbus_state *st = dev->state;

	st->len = 0;
	st->awaiting = false;
	st->noise_counted = false;
}

static int modbus_init(struct sg_dev *dev)
{
	struct modbus_state *st = dev->state;

	modbus_reset(dev);
	st->next = 0;
	st->cycle_us = 0;
	return dev->opts ? 0 : -EINVAL;
}

/* ---- options ---------------------------------------------------------------------------------- */

static bool modbus_is_number(const config_setting_t *s)
{
	int t = config_setting_type(s);

	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64 || t == CONFIG_TYPE_FLOAT;
}

/* One of NAMES for string setting KEY of G (absent: *ret untouched). */
static int modbus_opt_enum(const config_setting_t *g, const char *key, const char *const *names, int *ret,
			   struct sg_opt_error *err)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	const char *v;

	if (!s)
		return 0;
	v = config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s) : NULL;
	for (int i = 0; v && names[i]; i++) {
		if (strcmp(names[i], v) == 0) {
			*ret = i;
			return 0;
		}
	}
	{
		char list[96];
		size_t off = 0;

		list[0] = '\0';
		for (int i = 0; names[i] && off < sizeof(list); i++)
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s\"%s\"", i ? ", " : "", names[i]);
		return sg_opt_fail(err, s, "%s must be one of %s", key, list);
	}
}

static int modbus_parse_register(const config_setting_t *g, struct modbus_opts *o, struct sg_opt_error *err)
{
	static const char *const keys[] = {"name", "address", "type", "function", "word_order", "scale", "unit", NULL};
	static const char *const functions[] = {"holding", "input", NULL};
	static const char *const orders[] = {"big", "little", NULL};
	struct modbus_reg *r = &o->regs[o->n_regs];
	const config_setting_t *s;
	const char *name = NULL, *unit = NULL;
	int type = MODBUS_UINT16, function = 0, order = 0;
	long long addr;
	int r_;

	if (!config_setting_is_group(g))
		return sg_opt_fail(err, g, "registers entries must be groups: { name = \"...\"; address = 0; }");
	for (unsigned i = 0; i < (unsigned)config_setting_length(g); i++) {
		const config_setting_t *m = config_setting_get_elem(g, i);
		const char *k = config_setting_name(m);
		bool known = false;

		for (int j = 0; keys[j]; j++)
			known = known || strcmp(keys[j], k) == 0;
		if (!known)
			return sg_opt_fail(err, m, "unknown key \"%s\" in a registers entry", k);
	}
	s = config_setting_get_member(g, "name");
	if (!s || config_setting_type(s) != CONFIG_TYPE_STRING)
		return sg_opt_fail(err, s ? s : g, "registers entry needs name = \"...\" (a string)");
	name = config_setting_get_string(s);
	if (!sg_name_valid(name, MODBUS_MAX_NAME))
		return sg_opt_fail(err, s, "register name \"%.80s\" is not a field name ([A-Za-z0-9_-], 1 to 64)",
				       name);
	for (size_t i = 0; i < o->n_regs; i++)
		if (strcmp(o->regs[i].name, name) == 0)
			return sg_opt_fail(err, s, "register name \"%s\" appears twice", name);

	s = config_setting_get_member(g, "address");
	if (!s || (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64))
		return sg_opt_fail(err, s ? s : g, "register \"%s\" needs address = 0..65535 (an integer)", name);
	addr = config_setting_get_int64(s);
	if (config_setting_type(s) == CONFIG_TYPE_INT)
		addr = config_setting_get_int(s);
	if (addr < 0 || addr > 0xffff)
		return sg_opt_fail(err, s, "register \"%s\": address must be 0..65535", name);

	if ((r_ = modbus_opt_enum(g, "type", modbus_type_names, &type, err)) < 0 ||
	    (r_ = modbus_opt_enum(g, "function", functions, &function, err)) < 0 ||
	    (r_ = modbus_opt_enum(g, "word_order", orders, &order, err)) < 0)
		return r_;

	r->scale = 1.0;
	s = config_setting_get_member(g, "scale");
	if (s) {
		if (!modbus_is_number(s))
			return sg_opt_fail(err, s, "register \"%s\": scale must be a number", name);
		r->scale = config_setting_type(s) == CONFIG_TYPE_FLOAT ? config_setting_get_float(s)
								       : (double)config_setting_get_int64(s);
		if (config_setting_type(s) == CONFIG_TYPE_INT)
			r->scale = config_setting_get_int(s);
		if (!isfinite(r->scale) || r->scale == 0)
			return sg_opt_fail(err, s, "register \"%s\": scale must be a finite non-zero number", name);
	}
	s = config_setting_get_member(g, "unit");
	if (s) {
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return sg_opt_fail(err, s, "register \"%s\": unit must be a string", name);
		unit = config_setting_get_string(s);
		if (strlen(unit) > MODBUS_MAX_UNIT)
			return sg_opt_fail(err, s, "register \"%s\": unit longer than %d bytes", name,
					       MODBUS_MAX_UNIT);
	}

	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->unit, sizeof(r->unit), "%s", unit ? unit : "");
	r->address = (unsigned)addr;
	r->type = (enum modbus_type)type;
	r->count = type == MODBUS_UINT16 || type == MODBUS_INT16 ? 1 : 2;
	if (r->address + r->count - 1 > 0xffff)
		return sg_opt_fail(err, config_setting_get_member(g, "address"),
				       "register \"%s\": a 32-bit value cannot start at 65535", name);
	r->function = function == 0 ? MODBUS_FC_HOLDING : MODBUS_FC_INPUT;
	r->little_word_order = order == 1;
	o->n_regs++;
	return 0;
}

/*
 * slave, timeout, registers (see the header). Returns 0 with *ret_opts allocated (free
 * with modbus_free_options), -EINVAL with *err filled, or -ENOMEM.
 */
static int modbus_parse_options(const config_setting_t *device, void **ret_opts, struct sg_opt_error *err)
{
	const config_setting_t *slave, *timeout, *regs;
	struct modbus_opts *o;
	int n, r;

	if (!ret_opts)
		return -EINVAL;
	if (!device)
		return sg_opt_fail(err, NULL, "modbus needs slave = N; and registers = ( ... );");
	slave = config_setting_get_member(device, "slave");
	timeout = config_setting_get_member(device, "timeout");
	regs = config_setting_get_member(device, "registers");
	if (!slave || config_setting_type(slave) != CONFIG_TYPE_INT)
		return sg_opt_fail(err, slave ? slave : device, "modbus needs slave = 1..247 (an integer)");
	if (config_setting_get_int(slave) < MODBUS_SLAVE_MIN || config_setting_get_int(slave) > MODBUS_SLAVE_MAX)
		return sg_opt_fail(err, slave, "slave must be 1..247 (0 is broadcast, which never answers)");
	if (!regs || !config_setting_is_list(regs) || config_setting_length(regs) < 1)
		return sg_opt_fail(err, regs ? regs : device,
				       "modbus needs registers = ( { name = \"...\"; address = N; }, ... );");
	n = config_setting_length(regs);
	if (n > MODBUS_MAX_REGISTERS)
		return sg_opt_fail(err, regs, "at most %d registers entries", MODBUS_MAX_REGISTERS);

	o = calloc(1, sizeof(*o));
	if (!o) {
		if (err) {
			err->line = 0;
			snprintf(err->msg, sizeof(err->msg), "out of memory");
		}
		return -ENOMEM;
	}
	o->slave = (unsigned)config_setting_get_int(slave);
	o->timeout_s = MODBUS_DEFAULT_TIMEOUT_S;
	if (timeout) {
		if (!modbus_is_number(timeout)) {
			r = sg_opt_fail(err, timeout, "timeout must be a number of seconds");
			goto err_free;
		}
		o->timeout_s = config_setting_type(timeout) == CONFIG_TYPE_FLOAT ? config_setting_get_float(timeout)
									       : config_setting_get_int(timeout);
		if (!(o->timeout_s >= MODBUS_MIN_TIMEOUT_S && o->timeout_s <= MODBUS_MAX_TIMEOUT_S)) {
			r = sg_opt_fail(err, timeout, "timeout must be between 0.05 and 10 seconds");
			goto err_free;
		}
	}
	for (int i = 0; i < n; i++) {
		r = modbus_parse_register(config_setting_get_elem(regs, (unsigned)i), o, err);
		if (r < 0)
			goto err_free;
	}
	*ret_opts = o;
	return 0;

err_free:
	free(o);
	return r;
}

static void modbus_free_options(void *opts)
{
	free(opts);
}

static const char *const modbus_option_keys[] = {"slave", "timeout", "registers", NULL};

const struct sg_driver sg_driver_modbus = {
	.name = "modbus",
	.description = "Modbus RTU master: holding/input registers of meters and controllers, non-blocking",
	.bus = SG_BUS_SERIAL,
	.default_baud = 9600, /* the most common factory setting of RTU meters (the spec's default is 19200 8E1) */
	.default_interval_s = MODBUS_DEFAULT_INTERVAL_S,
	.fields = NULL, /* data-defined: the configured register names */
	.option_keys = modbus_option_keys,
	.parse_options = modbus_parse_options,
	.free_options = modbus_free_options,
	.state_size = sizeof(struct modbus_state),
	.init = modbus_init,
	.fini = NULL,
	.feed = modbus_feed,
	.reset = modbus_reset,
	.poll = modbus_poll,
};
