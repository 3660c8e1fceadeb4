/* SPDX-License-Identifier: MIT */
/*
 * modbus_tcp.c — the `modbus_tcp` driver: a Modbus TCP client polling register
 * tables of one or more units behind one host:port (inverters, PLCs, TCP-to-RTU
 * gateways with several meters behind them).
 *
 * One device = one TCP connection. Its units are listed in the device itself:
 *
 *   { name = "plant"; driver = "modbus_tcp"; host = "192.168.1.50"; port = 502;
 *     interval = 10.0; timeout = 1.0; max_gap = 4;
 *     unit = 1; registers = ( { name = "power"; address = 40083; type = "i16"; }, ... ); }
 *
 *   or, several units on the same connection:
 *     units = ( { unit = 1; registers = ( ... ); }, { unit = 2; registers = ( ... ); } );
 *
 * Why a list in one device rather than one device per unit naming the same host (the
 * serial line's way): a TCP server is one peer with one connection, one reachability and
 * one reconnect backoff, so it is one thing to configure, to watch (expire_after, the
 * status line) and to find in the journal; reading names stay unique within the device,
 * as on any device. Several devices may still name the same host: each opens its own
 * connection (the Implementation Guide, §4.2 on connection management, lets a server
 * accept several; most do).
 *
 * The register table (keys in modbus_proto.h, mbp_table_add()) is shared with the RTU
 * driver; its entries are merged into block reads by the planner (mbp_plan()), one
 * request per block, one at a time.
 *
 * Timing, all in the gateway's event loop (nothing here blocks):
 *  - init() starts a non-blocking connect and watches the socket for EPOLLOUT; poll()
 *    gives it `timeout` (at least 1 s) before it counts as failed;
 *  - a cycle starts every `interval`: poll() sends the first block's request and waits
 *    `timeout`; io() takes the response (matched by transaction id, TCP §3.1.3) and asks
 *    for poll() at once, which sends the next one;
 *  - a response that does not come in time is SG_FAIL_TIMEOUT and the cycle goes on;
 *    three timeouts in a row (nothing at all answers) fail the device: the gateway
 *    closes the connection and reconnects with its backoff (1 s doubling to 60 s);
 *  - the server closing the connection, a refused connect or a stream that is not
 *    Modbus TCP fail the device likewise.
 * Failures: exception responses are SG_FAIL_IO with the exception's name; responses
 * that do not answer the request SG_FAIL_SYNTAX; answers to an earlier (timed-out)
 * request SG_FAIL_GARBAGE; a NaN or infinite float SG_FAIL_INSANE.
 *
 * Ownership: options (the table included) are allocated by parse_options() and owned
 * by the config; struct modbus_tcp_state (the connection inside) lives in dev->state and
 * owns the socket from init() to fini(). Nothing is allocated per request, nothing logged.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "../common/clock.h"
#include "bus_modbus_tcp.h"
#include "driver.h"
#include "drivers.h"
#include "modbus_proto.h"

#define MODBUS_TCP_DEFAULT_TIMEOUT_S 1.0
#define MODBUS_TCP_MIN_TIMEOUT_S 0.05
#define MODBUS_TCP_MAX_TIMEOUT_S 10.0
#define MODBUS_TCP_CONNECT_MIN_US 1000000ULL /* a connect gets at least 1 s, whatever `timeout` */
#define MODBUS_TCP_TIMEOUTS_TO_FAIL 3
#define MODBUS_TCP_DEFAULT_INTERVAL_S 10.0
#define MODBUS_TCP_DEFAULT_UNIT 1            /* most devices; the spec's 0xFF (TCP §4.4) is often ignored */
#define MODBUS_TCP_MAX_UNITS 32
#define MODBUS_TCP_MAX_HOST 253              /* a DNS name */

struct modbus_tcp_opts {
	char host[MODBUS_TCP_MAX_HOST + 1];
	int port;
	double timeout_s;
	char where[MODBUS_TCP_MAX_HOST + 16]; /* "host:port", for the logs (dev->path) */
	struct mbp_table table;
};

struct modbus_tcp_state {
	struct mbtcp_conn conn;
	bool connect_waited;        /* poll() has given the connect its time */
	bool awaiting;              /* a request is out */
	size_t next;                /* block to request next */
	size_t pending;             /* block of the request out */
	uint64_t cycle_start_us;
	unsigned timeouts_in_row;
	uint8_t req[MBP_MAX_PDU];
	size_t req_len;
	char detail[160];
};

/* "unit 2 holding 100+10" for messages about block B. */
static void modbus_tcp_block_text(const struct mbp_block *b, char *buf, size_t len)
{
	mbp_block_text(b, "unit", buf, len);
}

/* ---- responses --------------------------------------------------------------------------------- */

static void modbus_tcp_response(struct sg_dev *dev, struct modbus_tcp_state *st, const struct modbus_tcp_opts *o,
                           const struct mbp_tcp_header *h, const uint8_t *pdu, size_t len, uint64_t *ret_delay_us)
{
	const struct mbp_block *b;
	struct mbp_response r;
	char what[64];
	int rc;

	if (!st->awaiting || h->transaction != st->conn.transaction) {
		snprintf(st->detail, sizeof(st->detail), "modbus_tcp: answer to transaction %u, not the one awaited",
		         h->transaction);
		sg_dev_fail(dev, SG_FAIL_GARBAGE, st->detail);
		return;
	}
	b = &o->table.blocks[st->pending];
	modbus_tcp_block_text(b, what, sizeof(what));
	st->awaiting = false;
	st->timeouts_in_row = 0;
	*ret_delay_us = 0; /* the next request at once */
	if (h->unit != b->slave) {
		snprintf(st->detail, sizeof(st->detail), "modbus_tcp: %s: answered by unit %u", what, h->unit);
		sg_dev_fail(dev, SG_FAIL_SYNTAX, st->detail);
		return;
	}
	rc = mbp_decode_response(st->req, st->req_len, pdu, len, &r);
	if (rc == MBP_EXCEPTION) {
		snprintf(st->detail, sizeof(st->detail), "modbus_tcp: %s: exception %u (%s)", what, r.exception,
		         mbp_exception_name(r.exception));
		sg_dev_fail(dev, SG_FAIL_IO, st->detail);
		return;
	}
	if (rc < 0) {
		snprintf(st->detail, sizeof(st->detail), "modbus_tcp: %s: %s", what, mbp_result_name(rc));
		sg_dev_fail(dev, SG_FAIL_SYNTAX, st->detail);
		return;
	}
	dev->stats.frames++;
	mbp_table_emit(&o->table, st->pending, &r, dev, "modbus_tcp");
}

static int modbus_tcp_io(struct sg_dev *dev, uint32_t revents, uint64_t *ret_delay_us)
{
	struct modbus_tcp_state *st = dev->state;
	const struct modbus_tcp_opts *o = dev->opts;
	struct mbp_tcp_header h;
	const uint8_t *pdu;
	size_t len;
	int r;

	if (st->conn.connecting) {
		r = mbtcp_finish_connect(&st->conn);
		if (r == 1) {
			dev->watch_events = mbtcp_events(&st->conn);
			*ret_delay_us = 0; /* connected: start a cycle */
		}
		return r < 0 ? r : 0;
	}
	if (revents & EPOLLIN) {
		r = mbtcp_read(&st->conn);
		while (r == 0 && (r = mbtcp_next(&st->conn, &h, &pdu, &len)) == 1) {
			modbus_tcp_response(dev, st, o, &h, pdu, len, ret_delay_us);
			r = 0;
		}
		if (r == -EPROTO)
			sg_dev_fail(dev, SG_FAIL_SYNTAX, "modbus_tcp: not a Modbus TCP header (protocol id or length)");
		if (r < 0)
			return r;
	}
	if (revents & (EPOLLHUP | EPOLLERR))
		return -ECONNRESET;
	return 0;
}

/* ---- requests ---------------------------------------------------------------------------------- */

static int modbus_tcp_poll(struct sg_dev *dev, uint64_t *ret_delay_us)
{
	struct modbus_tcp_state *st = dev->state;
	const struct modbus_tcp_opts *o = dev->opts;
	uint64_t timeout_us = (uint64_t)(o->timeout_s * 1e6);
	uint64_t interval_us = (uint64_t)((dev->interval_s > 0 ? dev->interval_s : MODBUS_TCP_DEFAULT_INTERVAL_S) * 1e6);
	uint64_t now = now_mono_us();
	const struct mbp_block *b;
	char what[64];
	int n;

	if (st->conn.connecting) {
		if (st->connect_waited)
			return -ETIMEDOUT;
		st->connect_waited = true;
		*ret_delay_us = timeout_us > MODBUS_TCP_CONNECT_MIN_US ? timeout_us : MODBUS_TCP_CONNECT_MIN_US;
		return 0;
	}
	if (st->awaiting) {
		st->awaiting = false;
		modbus_tcp_block_text(&o->table.blocks[st->pending], what, sizeof(what));
		snprintf(st->detail, sizeof(st->detail), "modbus_tcp: %s: no response within %g s", what, o->timeout_s);
		sg_dev_fail(dev, SG_FAIL_TIMEOUT, st->detail);
		if (++st->timeouts_in_row >= MODBUS_TCP_TIMEOUTS_TO_FAIL)
			return -ETIMEDOUT;
	}
	if (st->next >= o->table.n_blocks) {
		uint64_t spent = now - st->cycle_start_us;

		st->next = 0;
		if (spent < interval_us) {
			*ret_delay_us = interval_us - spent;
			return 0;
		}
	}
	if (st->next == 0)
		st->cycle_start_us = now;
	st->pending = st->next++;
	b = &o->table.blocks[st->pending];
	*ret_delay_us = timeout_us;
	n = mbp_encode_read(st->req, sizeof(st->req), b->function, b->address, b->count);
	if (n < 0)
		return n; /* the planner made the block: cannot happen */
	st->req_len = (size_t)n;
	n = mbtcp_send(&st->conn, b->slave, st->req, st->req_len);
	if (n == -EAGAIN) {
		sg_dev_fail(dev, SG_FAIL_IO, "modbus_tcp: socket full, request not sent");
		return 0;
	}
	if (n < 0)
		return n;
	st->awaiting = true;
	return 0;
}

static int modbus_tcp_init(struct sg_dev *dev)
{
	struct modbus_tcp_state *st = dev->state;
	const struct modbus_tcp_opts *o = dev->opts;
	int r;

	if (!o || o->table.n_blocks == 0)
		return -EINVAL;
	mbtcp_init(&st->conn);
	dev->path = o->where;
	r = mbtcp_open(&st->conn, o->host, o->port);
	if (r < 0)
		return r;
	dev->watch_fd = st->conn.fd;
	dev->watch_events = mbtcp_events(&st->conn);
	return 0;
}

static void modbus_tcp_fini(struct sg_dev *dev)
{
	struct modbus_tcp_state *st = dev->state;

	mbtcp_close(&st->conn);
	dev->watch_fd = -1;
}

/* ---- options ------------------------------------------------------------------------------------ */

static const char *const modbus_tcp_option_keys[] = {"host", "port", "timeout", "unit", "registers", "units", "max_gap",
                                                NULL};

static int modbus_tcp_int(const config_setting_t *s, long long lo, long long hi, int *out)
{
	if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
		return -EINVAL;
	if (config_setting_get_int64(s) < lo || config_setting_get_int64(s) > hi)
		return -EINVAL;
	*out = (int)config_setting_get_int64(s);
	return 0;
}

/* `unit` of G (default 1), 0 .. 255. */
static int modbus_tcp_unit(const config_setting_t *g, uint8_t *unit, struct sg_opt_error *err)
{
	const config_setting_t *s = config_setting_get_member(g, "unit");
	int v = MODBUS_TCP_DEFAULT_UNIT;

	if (s && modbus_tcp_int(s, 0, 255, &v) < 0)
		return sg_opt_fail(err, s, "unit must be 0..255 (the unit identifier; 255 addresses the server itself)");
	*unit = (uint8_t)v;
	return 0;
}

static int modbus_tcp_parse_units(const config_setting_t *units, struct modbus_tcp_opts *o, struct sg_opt_error *err)
{
	uint8_t seen[MODBUS_TCP_MAX_UNITS];
	int n = config_setting_length(units), r;

	if (!config_setting_is_list(units) || n < 1)
		return sg_opt_fail(err, units, "units must be a list: ( { unit = 1; registers = ( ... ); }, ... )");
	if (n > MODBUS_TCP_MAX_UNITS)
		return sg_opt_fail(err, units, "at most %d units per device", MODBUS_TCP_MAX_UNITS);
	for (int i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(units, (unsigned)i);
		uint8_t unit;

		if (!config_setting_is_group(g))
			return sg_opt_fail(err, g, "units entries must be groups: { unit = 1; registers = ( ... ); }");
		for (unsigned k = 0; k < (unsigned)config_setting_length(g); k++) {
			const char *key = config_setting_name(config_setting_get_elem(g, k));
			if (strcmp(key, "unit") && strcmp(key, "registers"))
				return sg_opt_fail(err, config_setting_get_elem(g, k),
				                   "unknown key \"%s\" in a units entry (unit, registers)", key);
		}
		if (!config_setting_get_member(g, "unit"))
			return sg_opt_fail(err, g, "units entry needs unit = N;");
		if ((r = modbus_tcp_unit(g, &unit, err)) < 0)
			return r;
		for (int j = 0; j < i; j++)
			if (seen[j] == unit)
				return sg_opt_fail(err, config_setting_get_member(g, "unit"), "unit %u is listed twice", unit);
		seen[i] = unit;
		if ((r = mbp_table_add(&o->table, config_setting_get_member(g, "registers"), unit, err)) < 0)
			return r;
	}
	return 0;
}

static int modbus_tcp_parse(const config_setting_t *device, struct modbus_tcp_opts *o, struct sg_opt_error *err)
{
	const config_setting_t *host = config_setting_get_member(device, "host");
	const config_setting_t *port = config_setting_get_member(device, "port");
	const config_setting_t *regs = config_setting_get_member(device, "registers");
	const config_setting_t *units = config_setting_get_member(device, "units");
	int r;
	uint8_t unit;

	if (!host || config_setting_type(host) != CONFIG_TYPE_STRING || !*config_setting_get_string(host))
		return sg_opt_fail(err, host ? host : device, "modbus_tcp needs host = \"192.168.1.50\"; (an address or name)");
	if (strlen(config_setting_get_string(host)) > MODBUS_TCP_MAX_HOST)
		return sg_opt_fail(err, host, "host is longer than %d bytes", MODBUS_TCP_MAX_HOST);
	snprintf(o->host, sizeof(o->host), "%s", config_setting_get_string(host));
	o->port = MBP_TCP_PORT;
	if (port && modbus_tcp_int(port, 1, 65535, &o->port) < 0)
		return sg_opt_fail(err, port, "port must be a TCP port number 1..65535 (Modbus TCP: 502)");
	snprintf(o->where, sizeof(o->where), strchr(o->host, ':') ? "[%s]:%d" : "%s:%d", o->host, o->port);
	o->timeout_s = MODBUS_TCP_DEFAULT_TIMEOUT_S;
	if ((r = sg_opt_double(device, "timeout", MODBUS_TCP_MIN_TIMEOUT_S, MODBUS_TCP_MAX_TIMEOUT_S, &o->timeout_s,
	                       err)) < 0)
		return r;
	if (regs && units)
		return sg_opt_fail(err, units, "set registers (with unit) or units, not both");
	if (!regs && !units)
		return sg_opt_fail(err, device, "modbus_tcp needs registers = ( ... ); or units = ( ... );");
	if (units) {
		if (config_setting_get_member(device, "unit"))
			return sg_opt_fail(err, config_setting_get_member(device, "unit"),
			                   "unit goes inside each units entry");
		r = modbus_tcp_parse_units(units, o, err);
	} else {
		r = modbus_tcp_unit(device, &unit, err);
		if (r == 0)
			r = mbp_table_add(&o->table, regs, unit, err);
	}
	if (r == 0)
		r = mbp_table_gap(&o->table, device, err);
	if (r == 0)
		r = mbp_table_plan(&o->table, err);
	return r;
}

static void modbus_tcp_free_options(void *opts)
{
	struct modbus_tcp_opts *o = opts;

	if (!o)
		return;
	mbp_table_free(&o->table);
	free(o);
}

/*
 * host, port, timeout, unit + registers or units, max_gap (see the header).
 * 0 with *ret_opts (free with modbus_tcp_free_options), -EINVAL with *err, -ENOMEM.
 */
static int modbus_tcp_parse_options(const config_setting_t *device, void **ret_opts, struct sg_opt_error *err)
{
	struct modbus_tcp_opts *o;
	int r;

	if (!ret_opts)
		return -EINVAL;
	if (!device)
		return sg_opt_fail(err, NULL, "modbus_tcp needs host = \"...\"; and registers = ( ... );");
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	r = modbus_tcp_parse(device, o, err);
	if (r < 0) {
		modbus_tcp_free_options(o);
		return r;
	}
	*ret_opts = o;
	return 0;
}

/* Field I of the table: entries in order, "<name>_<k>" for each value of a `count` entry. */
static bool modbus_tcp_option_field(const void *opts, size_t i, char *name, size_t len, struct sg_field_info *ret)
{
	const struct modbus_tcp_opts *o = opts;

	return o && mbp_table_field(&o->table, i, name, len, ret);
}

/* "modbus tcp HOST:PORT, timeout 1 s, 3 requests per cycle for 6 entries (max_gap 4): unit 1 coil 0+4, ..." */
static void modbus_tcp_describe(const void *opts, char *buf, size_t len)
{
	const struct modbus_tcp_opts *o = opts;
	int off = snprintf(buf, len, "modbus tcp %s, timeout %g s, ", o->where, o->timeout_s);

	if (off > 0 && (size_t)off < len)
		mbp_table_describe(&o->table, "unit", buf + off, len - (size_t)off);
}

const struct sg_driver sg_driver_modbus_tcp = {
	.name = "modbus_tcp",
	.description = "Modbus TCP client: coils, inputs and registers of one or more units, block reads",
	.bus = SG_BUS_NONE,
	.default_baud = 0,
	.default_interval_s = MODBUS_TCP_DEFAULT_INTERVAL_S,
	.fields = NULL, /* data-defined: the configured register names */
	.option_keys = modbus_tcp_option_keys,
	.parse_options = modbus_tcp_parse_options,
	.free_options = modbus_tcp_free_options,
	.state_size = sizeof(struct modbus_tcp_state),
	.init = modbus_tcp_init,
	.fini = modbus_tcp_fini,
	.feed = NULL,
	.reset = NULL,
	.poll = modbus_tcp_poll,
	.io = modbus_tcp_io,
	.option_field = modbus_tcp_option_field,
	.describe = modbus_tcp_describe,
};
