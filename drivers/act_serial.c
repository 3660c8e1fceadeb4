/* SPDX-License-Identifier: MIT */
/*
 * act_serial.c — the `serial` actuator driver: a device that obeys text
 * commands on a serial port (relay boards, Arduino sketches, fan
 * controllers, anything behind ser2net/socat).
 *
 *   { name = "pump"; driver = "serial"; port = "/dev/ttyUSB0"; baud = 9600;
 *     on = "R1=1\n"; off = "R1=0\n"; reply = "OK"; reply_timeout_ms = 500; }
 *   { name = "fan"; driver = "serial"; port = "/dev/ttyUSB1"; type = "number";
 *     min = 0; max = 100; set = "FAN {value}\n"; }
 *
 * One command at a time:
 *
 *   set() ── drain old input ── write ──(port full: POLLOUT)── written
 *                                                        │
 *                      no `reply` ───────────────────────┴──> done(0)
 *                      `reply`   ──> wait: bytes read are kept in a window;
 *                                    the reply found in it ──> done(0)
 *                                    reply_timeout_ms passed ──> done(-ETIMEDOUT)
 *
 * The reply is a substring match on whatever arrives after the write (the
 * last 256 bytes are kept), so "OK" matches "R1 OK\r\n". Writing is bounded
 * by the same timeout (a port stuck by flow control fails the command).
 * Everything is non-blocking and driven by io()/timer(); only set_sync()
 * (shutdown, loop stopped) waits, bounded. A read of 0 (hang-up) or an I/O
 * error means the port went away: io() returns the error and the router
 * reopens the port with backoff.
 *
 * Keys of its own: port (required; must exist when the config is loaded),
 * baud (default 9600), on and off (switches, both required) or set (numbers
 * and enums, required), reply, reply_timeout_ms (1..60000, default 1000).
 *
 * Ownership: struct serial_opts is made by ser_parse_options() and owned by
 * the config (ser_free_options()). struct serial_state lives in act->state
 * (owned by the router); it owns the open port from open() until close().
 * Fixed buffers only at run time.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "actuator.h"
#include "bus_serial.h"

#define SERIAL_OUT_MAX   1024 /* longest command after "{value}" is replaced */
#define SERIAL_RX_WINDOW 256  /* bytes kept for matching the reply */
#define SERIAL_READ_MAX  16   /* reads per io() call, so a chatty device cannot hog the loop */
#define VALUE_MARK       "{value}"
#define SERIAL_DEFAULT_BAUD       9600
#define SERIAL_DEFAULT_TIMEOUT_MS 1000
#define SERIAL_TIMEOUT_MAX_MS     60000

struct serial_opts {
	char *port;
	int baud;
	char *tpl_on, *tpl_off;  /* switches: bytes to write (escapes resolved by libconfig) */
	char *tpl_set;           /* numbers, enums: "{value}" is replaced by the value's text */
	char *reply;             /* expected answer (substring), NULL = none awaited */
	int reply_timeout_ms;    /* for the reply, and for writing at all */
};

struct serial_state {
	struct sg_serial *port;
	char out[SERIAL_OUT_MAX];
	size_t out_len, out_off;
	char rx[SERIAL_RX_WINDOW];
	size_t rx_len;
	bool busy;     /* a set() in progress */
	bool awaiting; /* written; waiting for the reply */
	uint64_t deadline;
	char detail[160];
};

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

/* S as it would be typed in a C or libconfig string (control characters, '\\' and '"' escaped), for messages. */
static void escape_c(const char *s, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *s && o + 5 < outlen; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '\n')
			o += (size_t)snprintf(out + o, outlen - o, "\\n");
		else if (ch == '\r')
			o += (size_t)snprintf(out + o, outlen - o, "\\r");
		else if (ch == '\t')
			o += (size_t)snprintf(out + o, outlen - o, "\\t");
		else if (ch == '\\' || ch == '"')
			o += (size_t)snprintf(out + o, outlen - o, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
}

/* --- options ------------------------------------------------------------------------------------- */

static const char *const ser_option_keys[] = {"port", "baud", "on", "off", "set", "reply", "reply_timeout_ms", NULL};

static void ser_free_options(void *opts)
{
	struct serial_opts *o = opts;

	if (!o)
		return;
	free(o->port);
	free(o->tpl_on);
	free(o->tpl_off);
	free(o->tpl_set);
	free(o->reply);
	free(o);
}

/* The port must exist when the config is loaded: a typo is found by --check, not at 3 a.m. */
static int check_port(const config_setting_t *g, const struct sg_act_common *common, const char *port,
                      struct sg_opt_error *err)
{
	const config_setting_t *s = config_setting_get_member(g, "port");
	struct stat st;

	if (!*port)
		return sg_opt_fail(err, s, "actuator \"%.80s\": \"port\" must not be empty", common->name);
	if (stat(port, &st) < 0) {
		if (errno == ENOENT)
			return sg_opt_fail(err, s, "actuator \"%.80s\": port %s does not exist", common->name,
			                       port);
		return sg_opt_fail(err, s, "actuator \"%.80s\": port %s: %s", common->name, port, strerror(errno));
	}
	return 0;
}

static int ser_parse(const config_setting_t *g, const struct sg_act_common *common, struct serial_opts *o,
                     struct sg_opt_error *err)
{
	bool sw = common->kind == SG_ACT_SWITCH;
	int r;

	o->baud = SERIAL_DEFAULT_BAUD;
	o->reply_timeout_ms = SERIAL_DEFAULT_TIMEOUT_MS;
	if ((r = sg_act_opt_only_if(g, "on", sw, "type \"switch\" (use \"set\")", err)) < 0 ||
	    (r = sg_act_opt_only_if(g, "off", sw, "type \"switch\" (use \"set\")", err)) < 0 ||
	    (r = sg_act_opt_only_if(g, "set", !sw, "types \"number\" and \"enum\" (use \"on\" and \"off\")",
	                            err)) < 0 ||
	    (r = sg_act_opt_require(g, "port", common, err)) < 0 ||
	    (r = sg_act_opt_string(g, "port", &o->port, err)) < 0 ||
	    (r = sg_act_opt_int(g, "baud", 1, INT_MAX, &o->baud, err)) < 0)
		return r;
	if (!serial_baud_valid(o->baud))
		return sg_opt_fail(err, config_setting_get_member(g, "baud"), "\"baud\" %d is not a standard rate "
		                       "(1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, "
		                       "... 4000000)", o->baud);
	if ((r = sg_act_opt_string(g, "on", &o->tpl_on, err)) < 0 ||
	    (r = sg_act_opt_string(g, "off", &o->tpl_off, err)) < 0 ||
	    (r = sg_act_opt_string(g, "set", &o->tpl_set, err)) < 0 ||
	    (r = sg_act_opt_string(g, "reply", &o->reply, err)) < 0 ||
	    (r = sg_act_opt_int(g, "reply_timeout_ms", 1, SERIAL_TIMEOUT_MAX_MS, &o->reply_timeout_ms, err)) < 0)
		return r;
	if (sw && ((r = sg_act_opt_require(g, "on", common, err)) < 0 ||
	           (r = sg_act_opt_require(g, "off", common, err)) < 0))
		return r;
	if (!sw && (r = sg_act_opt_require(g, "set", common, err)) < 0)
		return r;
	if (o->reply && !*o->reply) { /* reply = "": await nothing */
		free(o->reply);
		o->reply = NULL;
	}
	return check_port(g, common, o->port, err);
}

static int ser_parse_options(const config_setting_t *g, const struct sg_act_common *common, void **ret_opts,
                             struct sg_opt_error *err)
{
	struct serial_opts *o = calloc(1, sizeof(*o));
	int r;

	if (!o)
		return -ENOMEM;
	r = ser_parse(g, common, o, err);
	if (r < 0) {
		ser_free_options(o);
		return r;
	}
	*ret_opts = o;
	return 0;
}

/* serial /dev/ttyUSB0 9600 baud, on "R1=1\r\n", off "R1=0\r\n", reply "OK" awaited, timeout 500 ms */
static void ser_describe(const void *opts, char *buf, size_t len)
{
	const struct serial_opts *o = opts;
	char on[256] = "", off[256] = "", set[256] = "", reply[256] = "";
	int n;

	if (o->tpl_set) {
		escape_c(o->tpl_set, set, sizeof(set));
		n = snprintf(buf, len, "serial %s %d baud, set \"%s\"", o->port, o->baud, set);
	} else {
		escape_c(o->tpl_on ? o->tpl_on : "", on, sizeof(on));
		escape_c(o->tpl_off ? o->tpl_off : "", off, sizeof(off));
		n = snprintf(buf, len, "serial %s %d baud, on \"%s\", off \"%s\"", o->port, o->baud, on, off);
	}
	if (n < 0 || (size_t)n >= len)
		return;
	if (o->reply)
		escape_c(o->reply, reply, sizeof(reply));
	snprintf(buf + n, len - (size_t)n, "%s%s%s, timeout %d ms", o->reply ? ", reply \"" : "", reply,
	         o->reply ? "\" awaited" : "", o->reply_timeout_ms);
}

static void ser_where(const void *opts, char *buf, size_t len)
{
	const struct serial_opts *o = opts;

	snprintf(buf, len, "%s", o->port);
}

/* --- running --------------------------------------------------------------------------------------- */

/* The bytes to write for V: a switch's on/off string, or the set template with every "{value}" replaced. */
static int build_command(const struct sg_act_params *p, const struct sg_act_value *v, char *out, size_t outlen,
                         size_t *ret_len)
{
	const struct serial_opts *op = p->opts;
	bool sw = p->kind == SG_ACT_SWITCH;
	const char *tpl = sw ? (v->on ? op->tpl_on : op->tpl_off) : op->tpl_set;
	const char *text = v->text ? v->text : "";
	size_t o = 0, mark = strlen(VALUE_MARK), tl = strlen(text);

	if (!tpl)
		return -EINVAL;
	while (*tpl) {
		if (!sw && strncmp(tpl, VALUE_MARK, mark) == 0) {
			if (o + tl > outlen)
				return -E2BIG;
			memcpy(out + o, text, tl);
			o += tl;
			tpl += mark;
			continue;
		}
		if (o + 1 > outlen)
			return -E2BIG;
		out[o++] = *tpl++;
	}
	*ret_len = o;
	return 0;
}

static void rx_append(struct serial_state *st, const char *buf, size_t n)
{
	if (n >= sizeof(st->rx)) {
		memcpy(st->rx, buf + n - sizeof(st->rx), sizeof(st->rx));
		st->rx_len = sizeof(st->rx);
		return;
	}
	if (st->rx_len + n > sizeof(st->rx)) {
		size_t drop = st->rx_len + n - sizeof(st->rx);
		memmove(st->rx, st->rx + drop, st->rx_len - drop);
		st->rx_len -= drop;
	}
	memcpy(st->rx + st->rx_len, buf, n);
	st->rx_len += n;
}

static bool reply_seen(const struct serial_state *st, const char *reply)
{
	return memmem(st->rx, st->rx_len, reply, strlen(reply)) != NULL;
}

/* Read what is there. 0, or -errno when the port is gone (hang-up reads 0 bytes). */
static int read_some(struct serial_state *st, bool keep)
{
	char buf[SERIAL_RX_WINDOW];

	for (int i = 0; i < SERIAL_READ_MAX; i++) {
		ssize_t n = serial_read(st->port, buf, sizeof(buf));
		if (n > 0) {
			if (keep)
				rx_append(st, buf, (size_t)n);
			continue;
		}
		if (n == -EAGAIN || n == -EINTR)
			return 0;
		return n == 0 ? -EIO : (int)n;
	}
	return 0;
}

/* Write what fits. 0 (maybe partly written) or -errno. */
static int write_some(struct serial_state *st)
{
	while (st->out_off < st->out_len) {
		ssize_t n = serial_write(st->port, st->out + st->out_off, st->out_len - st->out_off);
		if (n == -EAGAIN || n == -EINTR)
			return 0;
		if (n < 0)
			return (int)n;
		st->out_off += (size_t)n;
	}
	return 0;
}

/* End the command in progress and tell the router; nothing may touch st after sg_act_done(). */
static void finish(struct sg_act *a, int result, const char *detail)
{
	struct serial_state *st = a->state;

	st->busy = false;
	st->awaiting = false;
	a->events = POLLIN;
	a->wake_us = UINT64_MAX;
	sg_act_done(a, result, detail);
}

/* The bytes are all out: confirmed now, or wait for the reply. */
static void written(struct sg_act *a, uint64_t now_us)
{
	struct serial_state *st = a->state;
	const struct serial_opts *p = a->params->opts;

	a->events = POLLIN;
	if (!p->reply) {
		finish(a, 0, NULL);
		return;
	}
	if (reply_seen(st, p->reply)) { /* a fast device answered while we were still writing */
		finish(a, 0, NULL);
		return;
	}
	st->awaiting = true;
	st->deadline = now_us + (uint64_t)p->reply_timeout_ms * 1000;
	a->wake_us = st->deadline;
}

static int ser_open(struct sg_act *a)
{
	struct serial_state *st = a->state;
	const struct serial_opts *o = a->params->opts;
	int r;

	a->fd = -1;
	a->events = 0;
	a->wake_us = UINT64_MAX;
	r = serial_open(o->port, o->baud, &st->port);
	if (r < 0)
		return r;
	a->fd = serial_fd(st->port);
	a->events = POLLIN;
	return 0;
}

static void ser_close(struct sg_act *a)
{
	struct serial_state *st = a->state;

	if (st->port)
		serial_close(st->port);
	st->port = NULL;
	st->busy = st->awaiting = false;
	a->fd = -1;
	a->events = 0;
	a->wake_us = UINT64_MAX;
}

/* Start writing V's command: 0 when nothing is left to do, 1 when in progress, -errno on failure. */
static int start(struct sg_act *a, const struct sg_act_value *v)
{
	struct serial_state *st = a->state;
	int r;

	if (!st->port)
		return -ENODEV;
	r = build_command(a->params, v, st->out, sizeof(st->out), &st->out_len);
	if (r < 0)
		return r;
	/* Whatever the device said before this command is not its answer to it. */
	r = read_some(st, false);
	if (r < 0)
		return r;
	st->rx_len = 0;
	st->out_off = 0;
	return write_some(st);
}

static int ser_set(struct sg_act *a, const struct sg_act_value *v, uint64_t now_us)
{
	struct serial_state *st = a->state;
	const struct serial_opts *p = a->params->opts;
	int r;

	if (st->busy)
		return -EBUSY;
	r = start(a, v);
	if (r < 0)
		return r;
	if (st->out_off == st->out_len && !p->reply)
		return 0;
	st->busy = true;
	if (st->out_off < st->out_len) {
		a->events = POLLIN | POLLOUT;
		st->deadline = now_us + (uint64_t)p->reply_timeout_ms * 1000;
		a->wake_us = st->deadline;
		return 1;
	}
	st->awaiting = true;
	st->deadline = now_us + (uint64_t)p->reply_timeout_ms * 1000;
	a->wake_us = st->deadline;
	return 1;
}

static int ser_io(struct sg_act *a, short revents, uint64_t now_us)
{
	struct serial_state *st = a->state;
	const struct serial_opts *p = a->params->opts;
	int r;

	if (!st->port)
		return -ENODEV;
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		r = read_some(st, st->busy);
		if (r < 0)
			return r;
		if (revents & (POLLERR | POLLHUP)) /* hung up with nothing left to read */
			return -EIO;
	}
	if (!st->busy)
		return 0;
	if (st->out_off < st->out_len) {
		if (!(revents & POLLOUT))
			return 0;
		r = write_some(st);
		if (r < 0)
			return r;
		if (st->out_off == st->out_len)
			written(a, now_us);
		return 0;
	}
	if (st->awaiting && reply_seen(st, p->reply))
		finish(a, 0, NULL);
	return 0;
}

static int ser_timer(struct sg_act *a, uint64_t now_us)
{
	struct serial_state *st = a->state;
	const struct serial_opts *p = a->params->opts;
	char esc[64];

	if (!st->busy || now_us < st->deadline) {
		a->wake_us = st->busy ? st->deadline : UINT64_MAX;
		return 0;
	}
	if (st->awaiting) {
		escape_c(p->reply, esc, sizeof(esc));
		snprintf(st->detail, sizeof(st->detail), "no reply \"%s\" within %d ms", esc, p->reply_timeout_ms);
	} else {
		snprintf(st->detail, sizeof(st->detail), "port not writable within %d ms (%zu of %zu bytes sent)",
		         p->reply_timeout_ms, st->out_off, st->out_len);
	}
	finish(a, -ETIMEDOUT, st->detail);
	return 0;
}

/* poll() one fd for EVENTS until END (monotonic µs); true when ready. */
static bool wait_ready(int fd, short events, uint64_t end)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	uint64_t now = mono_us();
	int r;

	if (now >= end)
		return false;
	r = poll(&pfd, 1, (int)((end - now + 999) / 1000));
	return r > 0;
}

static int ser_set_sync(struct sg_act *a, const struct sg_act_value *v, int timeout_ms)
{
	struct serial_state *st = a->state;
	const struct serial_opts *p = a->params->opts;
	uint64_t end = mono_us() + (uint64_t)timeout_ms * 1000;
	int r;

	st->busy = st->awaiting = false;
	r = start(a, v);
	if (r < 0)
		return r;
	while (st->out_off < st->out_len) {
		if (!wait_ready(serial_fd(st->port), POLLOUT, end))
			return -ETIMEDOUT;
		if ((r = write_some(st)) < 0)
			return r;
	}
	if (!p->reply)
		return 0;
	while (!reply_seen(st, p->reply)) {
		if (!wait_ready(serial_fd(st->port), POLLIN, end))
			return -ETIMEDOUT;
		if ((r = read_some(st, true)) < 0)
			return r;
	}
	return 0;
}

const struct sg_act_driver sg_act_serial = {
	.name = "serial",
	.description = "text commands on a serial port, optionally confirmed by a reply",
	.kinds = SG_ACT_KINDS_ALL,
	.option_keys = ser_option_keys,
	.parse_options = ser_parse_options,
	.free_options = ser_free_options,
	.describe = ser_describe,
	.where = ser_where,
	.state_size = sizeof(struct serial_state),
	.open = ser_open,
	.close = ser_close,
	.read_back = NULL,
	.set = ser_set,
	.io = ser_io,
	.timer = ser_timer,
	.set_sync = ser_set_sync,
};
