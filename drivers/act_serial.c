/* SPDX-License-Identifier: MIT */
/*
 * act_serial.c — the `serial` actuator driver: a device that obeys text
 * commands on a serial line (relay boards, Arduino sketches, fan
 * controllers, anything behind ser2net/socat).
 *
 *   { name = "pump"; driver = "serial"; port = "/dev/ttyUSB0"; baud = 9600;
 *     on = "R1=1\n"; off = "R1=0\n"; reply = "OK"; reply_timeout_ms = 500; }
 *   { name = "fan"; driver = "serial"; port = "/dev/ttyUSB1"; type = "number";
 *     min = 0; max = 100; set = "FAN {value}\n"; reply = "FAN={value}"; }
 *
 * The port is a line (line.h) this actuator may share with other actuators
 * (the channels of a relay board) and with a device reading the same cable
 * (an Arduino printing its readings). A command is one transaction on it:
 *
 *   set() ── wait for the line's turn ── write ──┬── no reply awaited: done(0) once written
 *                                                └── the reply seen: done(0)
 *                                                    reply_timeout_ms passed: done(-ETIMEDOUT)
 *
 * The reply is looked for in what arrives after the command went out: a
 * substring match ("OK" matches "R1 OK\r\n"), `{value}` standing for the
 * commanded value; a switch may expect `reply_on` and `reply_off` instead
 * (an Arduino that answers with its state line, "relay1=1"). The line the
 * reply is on is this actuator's: it is taken out of the stream, so a
 * `lines` device on the same cable does not see it (share_reply = true
 * hands it on too, and the device publishes it as a reading). Complete lines
 * without the reply are handed on at once: readings keep flowing while a
 * command waits.
 *
 * Without the gateway's set of lines (unit tests, act->buses->lines NULL)
 * the driver opens a line of its own and has the router poll it through
 * act->fd, events and wake_us. A failed line (unplugged) fails the actuator
 * from timer(): the router closes it and opens it again with backoff.
 *
 * Keys of its own: port or usb_serial (required; a port must exist when the
 * config is loaded), baud (default 9600), data_bits, parity, stop_bits
 * (default 8N1; line_config.c), on and off (switches, both required) or set
 * (numbers and enums, required), reply, reply_on, reply_off, share_reply,
 * reply_timeout_ms (1..60000, default 1000).
 *
 * Ownership: struct serial_opts is made by ser_parse_options() and owned by
 * the config (ser_free_options()). struct serial_state lives in act->state
 * (owned by the router); it owns its place on the line from open() until
 * close() (and its private line, when it has one). Fixed buffers only at
 * run time.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/clock.h"
#include "act_line.h"

#define SERIAL_OUT_MAX   SG_LINE_TX_MAX /* longest command after "{value}" is replaced */
#define SERIAL_REPLY_MAX 256            /* longest reply after "{value}" is replaced */
#define VALUE_MARK       "{value}"
#define SERIAL_DEFAULT_BAUD       9600
#define SERIAL_DEFAULT_TIMEOUT_MS 1000
#define SERIAL_TIMEOUT_MAX_MS     60000

struct serial_opts {
	struct sg_line_spec line; /* port or usb_serial, baud, framing */
	char *tpl_on, *tpl_off;  /* switches: bytes to write (escapes resolved by libconfig) */
	char *tpl_set;           /* numbers, enums: "{value}" is replaced by the value's text */
	char *reply;             /* expected answer (substring, "{value}" replaced), NULL = none awaited */
	char *reply_on, *reply_off; /* switches: the answer to on and to off, instead of reply */
	bool share_reply;        /* hand the reply on to the line's stream device too */
	int reply_timeout_ms;    /* for the reply, and for writing at all */
};

struct serial_state {
	struct act_line line;        /* its place on the line (act_line.h) */
	char out[SERIAL_OUT_MAX];
	size_t out_len;
	char reply[SERIAL_REPLY_MAX]; /* the reply to this command, "" = none awaited */
	bool busy;                   /* a command in progress (waiting for the line, written, or awaiting) */
	int result;                  /* of the last command, for set_sync() */
	char detail[160];
};

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

static const char *const ser_option_keys[] = {"port",     "usb_serial",       "baud",        "data_bits", "parity",
                                              "stop_bits", "on",              "off",         "set",       "reply",
                                              "reply_on", "reply_off",        "share_reply", "reply_timeout_ms", NULL};

static void ser_free_options(void *opts)
{
	struct serial_opts *o = opts;

	if (!o)
		return;
	line_spec_release(&o->line);
	free(o->tpl_on);
	free(o->tpl_off);
	free(o->tpl_set);
	free(o->reply);
	free(o->reply_on);
	free(o->reply_off);
	free(o);
}

/* An empty reply string awaits nothing. */
static void no_empty(char **s)
{
	if (*s && !**s) {
		free(*s);
		*s = NULL;
	}
}

static int ser_parse(const config_setting_t *g, const struct sg_act_common *common, struct serial_opts *o,
                     struct sg_opt_error *err)
{
	bool sw = common->kind == SG_ACT_SWITCH;
	char what[96];
	int r;

	snprintf(what, sizeof(what), "actuator \"%.80s\"", common->name);
	o->line.settings = (struct sg_line_settings){.baud = SERIAL_DEFAULT_BAUD, .framing = SG_SERIAL_8N1};
	o->reply_timeout_ms = SERIAL_DEFAULT_TIMEOUT_MS;
	if ((r = sg_opt_only_if(g, "on", sw, "type \"switch\" (use \"set\")", err)) < 0 ||
	    (r = sg_opt_only_if(g, "off", sw, "type \"switch\" (use \"set\")", err)) < 0 ||
	    (r = sg_opt_only_if(g, "reply_on", sw, "type \"switch\" (use \"reply\")", err)) < 0 ||
	    (r = sg_opt_only_if(g, "reply_off", sw, "type \"switch\" (use \"reply\")", err)) < 0 ||
	    (r = sg_opt_only_if(g, "set", !sw, "types \"number\" and \"enum\" (use \"on\" and \"off\")",
	                            err)) < 0)
		return r;
	if (!config_setting_get_member(g, "port") && !config_setting_get_member(g, "usb_serial"))
		return sg_opt_require(g, "port", err, "actuator \"%.80s\"", common->name);
	if ((r = line_spec_parse(g, what, &o->line, err)) < 0)
		return r;
	if ((r = sg_opt_string_dup(g, "on", &o->tpl_on, err)) < 0 ||
	    (r = sg_opt_string_dup(g, "off", &o->tpl_off, err)) < 0 ||
	    (r = sg_opt_string_dup(g, "set", &o->tpl_set, err)) < 0 ||
	    (r = sg_opt_string_dup(g, "reply", &o->reply, err)) < 0 ||
	    (r = sg_opt_string_dup(g, "reply_on", &o->reply_on, err)) < 0 ||
	    (r = sg_opt_string_dup(g, "reply_off", &o->reply_off, err)) < 0 ||
	    (r = sg_opt_bool(g, "share_reply", &o->share_reply, err)) < 0 ||
	    (r = sg_opt_int(g, "reply_timeout_ms", 1, SERIAL_TIMEOUT_MAX_MS, &o->reply_timeout_ms, err)) < 0)
		return r;
	if (sw && ((r = sg_opt_require(g, "on", err, "actuator \"%.80s\"", common->name)) < 0 ||
	           (r = sg_opt_require(g, "off", err, "actuator \"%.80s\"", common->name)) < 0))
		return r;
	if (!sw && (r = sg_opt_require(g, "set", err, "actuator \"%.80s\"", common->name)) < 0)
		return r;
	no_empty(&o->reply);
	no_empty(&o->reply_on);
	no_empty(&o->reply_off);
	if (o->reply && (o->reply_on || o->reply_off))
		return sg_opt_fail(err, config_setting_get_member(g, "reply"),
		                   "%s: set \"reply\" or \"reply_on\" and \"reply_off\", not both", what);
	if (!o->reply_on != !o->reply_off)
		return sg_opt_fail(err, config_setting_get_member(g, o->reply_on ? "reply_on" : "reply_off"),
		                   "%s: \"reply_on\" and \"reply_off\" go together", what);
	if (config_setting_get_member(g, "share_reply") && !o->reply && !o->reply_on)
		return sg_opt_fail(err, config_setting_get_member(g, "share_reply"),
		                   "%s: \"share_reply\" needs a reply to share", what);
	return 0;
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

static const char *ser_port(const struct serial_opts *o)
{
	return o->line.port ? o->line.port : o->line.usb_serial;
}

/* serial /dev/ttyUSB0 9600 8N1, on "R1=1\r\n", off "R1=0\r\n", reply "OK" awaited, timeout 500 ms */
static void ser_describe(const void *opts, char *buf, size_t len)
{
	const struct serial_opts *o = opts;
	char on[256] = "", off[256] = "", set[256] = "", r1[256] = "", r2[256] = "", fr[8];
	int n;

	serial_framing_text(&o->line.settings.framing, fr, sizeof(fr));
	if (o->tpl_set) {
		escape_c(o->tpl_set, set, sizeof(set));
		n = snprintf(buf, len, "serial %s%s %d %s, set \"%s\"", o->line.port ? "" : "USB serial ", ser_port(o),
		             o->line.settings.baud, fr, set);
	} else {
		escape_c(o->tpl_on ? o->tpl_on : "", on, sizeof(on));
		escape_c(o->tpl_off ? o->tpl_off : "", off, sizeof(off));
		n = snprintf(buf, len, "serial %s%s %d %s, on \"%s\", off \"%s\"", o->line.port ? "" : "USB serial ",
		             ser_port(o), o->line.settings.baud, fr, on, off);
	}
	if (n < 0 || (size_t)n >= len)
		return;
	if (o->reply) {
		escape_c(o->reply, r1, sizeof(r1));
		n += snprintf(buf + n, len - (size_t)n, ", reply \"%s\" awaited", r1);
	} else if (o->reply_on) {
		escape_c(o->reply_on, r1, sizeof(r1));
		escape_c(o->reply_off, r2, sizeof(r2));
		n += snprintf(buf + n, len - (size_t)n, ", replies \"%s\" / \"%s\" awaited", r1, r2);
	}
	if (n < 0 || (size_t)n >= len)
		return;
	snprintf(buf + n, len - (size_t)n, "%s, timeout %d ms", o->share_reply ? " (shared)" : "", o->reply_timeout_ms);
}

static void ser_where(const void *opts, char *buf, size_t len)
{
	const struct serial_opts *o = opts;

	snprintf(buf, len, "%s%s", o->line.port ? "" : "USB serial ", ser_port(o));
}

static bool ser_line(const void *opts, struct sg_line_spec *ret)
{
	const struct serial_opts *o = opts;

	*ret = o->line;
	return true;
}

/* --- running --------------------------------------------------------------------------------------- */

/* TPL with every "{value}" replaced by TEXT (when REPLACE) into OUT; its length in *RET_LEN. */
static int expand(const char *tpl, bool replace, const char *text, char *out, size_t outlen, size_t *ret_len)
{
	size_t o = 0, mark = strlen(VALUE_MARK), tl = strlen(text);

	while (*tpl) {
		if (replace && strncmp(tpl, VALUE_MARK, mark) == 0) {
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

/* The bytes to write for V, and the reply to await. */
static int build_command(const struct sg_act_params *p, const struct sg_act_value *v, struct serial_state *st)
{
	const struct serial_opts *op = p->opts;
	bool sw = p->kind == SG_ACT_SWITCH;
	const char *tpl = sw ? (v->on ? op->tpl_on : op->tpl_off) : op->tpl_set;
	const char *reply = sw && op->reply_on ? (v->on ? op->reply_on : op->reply_off) : op->reply;
	const char *text = v->text ? v->text : "";
	size_t rlen = 0;
	int r;

	if (!tpl)
		return -EINVAL;
	r = expand(tpl, !sw, text, st->out, sizeof(st->out), &st->out_len);
	if (r < 0)
		return r;
	if (!reply) {
		st->reply[0] = '\0';
		return 0;
	}
	r = expand(reply, !sw, text, st->reply, sizeof(st->reply) - 1, &rlen);
	if (r < 0)
		return r;
	st->reply[rlen] = '\0';
	return 0;
}

/* End the command in progress and tell the router; nothing may touch st after sg_act_done(). */
static void finish(struct sg_act *a, int result, const char *detail)
{
	struct serial_state *st = a->state;

	st->busy = false;
	st->result = result;
	sg_act_done(a, result, detail);
}

static void on_turn(void *ctx, uint64_t now_us)
{
	struct sg_act *a = ctx;
	struct serial_state *st = a->state;
	const struct serial_opts *p = a->params->opts;
	uint64_t timeout = st->reply[0] ? (uint64_t)p->reply_timeout_ms * 1000 : 0;

	if (!st->busy) {
		line_done(st->line.user, now_us);
		return;
	}
	if (line_send(st->line.user, st->out, st->out_len, timeout, now_us) < 0)
		line_done(st->line.user, now_us); /* the line failed: on_down() follows */
}

/* Is the last byte of a line ending at BUF[I]? */
static bool is_eol(char c)
{
	return c == '\n' || c == '\r';
}

/*
 * What arrived after the command: the line with the reply is ours (from its
 * start through the reply and the line end after it); complete lines before
 * it, or without it, are the stream's; a partial line is waited on.
 */
static ssize_t on_rx(void *ctx, const uint8_t *buf, size_t len, uint64_t now_us)
{
	struct sg_act *a = ctx;
	struct serial_state *st = a->state;
	const struct serial_opts *p = a->params->opts;
	const char *hit;
	size_t start = 0, end, last = 0;

	if (!st->busy || !st->reply[0])
		return -(ssize_t)len;
	hit = memmem(buf, len, st->reply, strlen(st->reply));
	if (!hit) {
		for (size_t i = 0; i < len; i++)
			if (is_eol((char)buf[i]))
				last = i + 1;
		return -(ssize_t)last; /* 0: wait for the rest of the line */
	}
	for (size_t i = 0; i < (size_t)(hit - (const char *)buf); i++)
		if (is_eol((char)buf[i]))
			start = i + 1;
	if (start > 0)
		return -(ssize_t)start; /* lines before the reply's are not ours */
	end = (size_t)(hit - (const char *)buf) + strlen(st->reply);
	while (end < len && is_eol((char)buf[end]))
		end++;
	line_done(st->line.user, now_us);
	finish(a, 0, NULL);
	return p->share_reply ? -(ssize_t)end : (ssize_t)end;
}

static void on_ended(void *ctx, int result, uint64_t now_us)
{
	struct sg_act *a = ctx;
	struct serial_state *st = a->state;
	const struct serial_opts *p = a->params->opts;
	char esc[64];

	(void)now_us;
	if (!st->busy)
		return;
	if (result == 0) {
		finish(a, 0, NULL);
		return;
	}
	if (st->reply[0]) {
		escape_c(st->reply, esc, sizeof(esc));
		snprintf(st->detail, sizeof(st->detail), "no reply \"%s\" within %d ms", esc, p->reply_timeout_ms);
	} else {
		snprintf(st->detail, sizeof(st->detail), "port not writable in time (%zu bytes)", st->out_len);
	}
	finish(a, -ETIMEDOUT, st->detail);
}

static void on_down(void *ctx, int err)
{
	struct sg_act *a = ctx;
	struct serial_state *st = a->state;

	act_line_down(a, &st->line, err);
}

static const struct sg_line_ops ser_line_ops = {
	.turn = on_turn,
	.rx = on_rx,
	.ended = on_ended,
	.stream = NULL,
	.down = on_down,
};

static int ser_open(struct sg_act *a)
{
	struct serial_state *st = a->state;
	const struct serial_opts *o = a->params->opts;

	return act_line_open(a, &st->line, &o->line, &ser_line_ops, 0, 0);
}

static void ser_close(struct sg_act *a)
{
	struct serial_state *st = a->state;

	act_line_close(a, &st->line);
	st->busy = false;
}

static int ser_set(struct sg_act *a, const struct sg_act_value *v, uint64_t now_us)
{
	struct serial_state *st = a->state;
	int r;

	(void)now_us;
	if (st->line.lost)
		return st->line.lost;
	if (st->busy)
		return -EBUSY;
	r = build_command(a->params, v, st);
	if (r < 0)
		return r;
	r = line_want(st->line.user);
	if (r < 0)
		return r;
	st->busy = true;
	act_line_sync(a, &st->line);
	return 1;
}

static int ser_io(struct sg_act *a, short revents, uint64_t now_us)
{
	struct serial_state *st = a->state;

	return act_line_io(a, &st->line, revents, now_us);
}

static int ser_timer(struct sg_act *a, uint64_t now_us)
{
	struct serial_state *st = a->state;

	return act_line_timer(a, &st->line, now_us);
}

/* Shutdown, the loop stopped: drive the line here until the command is through, at most TIMEOUT_MS. */
static int ser_set_sync(struct sg_act *a, const struct sg_act_value *v, int timeout_ms)
{
	struct serial_state *st = a->state;
	uint64_t end = now_mono_us() + (uint64_t)timeout_ms * 1000;
	int r;

	if (!st->line.user)
		return -ENODEV;
	r = line_drive(line_of(st->line.user), &st->busy, end, now_mono_us);
	if (r < 0)
		return r;
	r = ser_set(a, v, now_mono_us());
	if (r < 0)
		return r;
	st->result = -ETIMEDOUT;
	r = line_drive(line_of(st->line.user), &st->busy, end, now_mono_us);
	if (st->line.lost)
		return st->line.lost;
	return r < 0 ? r : st->result;
}

const struct sg_act_driver sg_act_serial = {
	.name = "serial",
	.description = "text commands on a serial line, optionally confirmed by a reply; lines may be shared",
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
	.line = ser_line,
};
