/* SPDX-License-Identifier: MIT */
/*
 * lines.c — the `lines` driver: sensor data as lines of text.
 *
 * For anything that prints its readings as text on a serial port: an
 * Arduino sketch, an ESP board, a script behind socat. One line carries one
 * set of readings, in one of three formats chosen per device:
 *
 *   format = "kv" (default)
 *       t=21.4 h=40.2 p=1012.8          tokens split by spaces, tabs, ',' or ';'
 *       t:21.4,h:40;fw=v1.2             each token KEY=VALUE or KEY:VALUE
 *     KEY is [A-Za-z0-9_.-]{1,64}; the first '=' or ':' splits, so
 *     `time=12:30` is the string "12:30". A token without separator or with
 *     a bad key rejects the whole line, and so does a key given twice
 *     (`t=1 t=2`: which one is the reading?). An empty value (`t=`) is skipped.
 *
 *   format = "json"
 *       {"t":21.4,"env":{"h":40},"ok":true,"fw":"v1.2","tags":[1,2],"x":null}
 *     one object per line; nested objects flatten with dots (env.h),
 *     true/false become 1/0, null and arrays are skipped, at most 8 levels of
 *     nesting. A dotted name given twice rejects the line, be it a member
 *     repeated (`{"t":1,"t":2}`, which parsers read differently) or a
 *     flattening that collides (`{"env.h":1,"env":{"h":2}}`); objects inside
 *     arrays are never published and not checked for this. Parsed by the small recursive-descent parser below (RFC 8259
 *     grammar, \uXXXX including surrogate pairs; \u0000 is refused because
 *     readings are C strings).
 *
 *   format = "csv"; columns = ("t", "h", "p"); separator = ",";
 *       21.4,40.2,1012.8
 *     cells map to the configured columns by position; the count must match;
 *     blanks around a cell are trimmed; an empty cell is skipped. No quoting.
 *
 * In every format a value that strtod() reads completely and that is finite
 * is a number, anything else a string (so "nan" and "v1.2" are strings).
 * Numbers follow the C locale, which the daemon never changes.
 *
 * Framing:
 *
 *   bytes ... 't' '=' '1' CR LF 'h' '=' '2' LF ...
 *             |<--- line --->|  |<- line ->|
 *
 *   a line ends at CR, LF or CR LF (the LF of a CR LF ends nothing); empty
 *   and blank (spaces/tabs only) lines are ignored; a line is at most 1024
 *   bytes: a longer one is dropped whole (SG_FAIL_OVERLONG, once) and reading
 *   resumes after its end; a line with a NUL byte or invalid UTF-8 is dropped
 *   (SG_FAIL_GARBAGE); a line that does not parse emits nothing at all
 *   (SG_FAIL_SYNTAX) — each line is validated completely before its first
 *   reading is emitted, so a half-broken line never publishes half its values.
 *
 * Ownership: options (struct lines_opts) are allocated once by
 * parse_options() and owned by the config; per-device runtime (struct
 * lines_state: the line buffer and fixed scratch buffers) lives in dev->state,
 * owned by the gateway. Nothing is allocated per line, nothing logged.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json.h"
#include "../common/utf8.h"
#include "decimal.h"
#include "driver.h"
#include "drivers.h"

#define LINES_MAX_LINE 1024     /* bytes in one line, terminator excluded */
#define LINES_MAX_FIELD 64      /* bytes in one field name (JSON: the whole dotted path) */
#define LINES_MAX_COLUMNS 64    /* csv columns */
#define LINES_JSON_MAX_DEPTH 8  /* nested objects and arrays, the outer object included */
#define LINES_MAX_KEYS 512      /* names in one line: a kv token takes at least 3 bytes, a JSON member 6 */

enum lines_format {
	LINES_FORMAT_KV = 0,
	LINES_FORMAT_JSON,
	LINES_FORMAT_CSV,
};
static const char *const format_names[] = {"kv", "json", "csv", NULL}; /* in enum lines_format's order */

struct lines_opts {
	enum lines_format format;
	char separator;                                      /* csv only */
	size_t n_columns;                                    /* csv only */
	char columns[LINES_MAX_COLUMNS][LINES_MAX_FIELD + 1]; /* csv only */
};

struct lines_state {
	size_t len;                      /* bytes in line[] */
	bool overlong;                   /* dropping the rest of a too long line */
	bool after_cr;                   /* last byte was CR: an LF now ends nothing */
	char line[LINES_MAX_LINE + 1];   /* line being assembled; NUL-terminated to parse */
	char field[LINES_MAX_FIELD + 1]; /* field name of the reading being emitted */
	char value[LINES_MAX_LINE + 1];  /* decoded string or number text being emitted */
	uint64_t seen[LINES_MAX_KEYS];   /* hashes of the field names of the line being validated */
	size_t n_seen;
};

/* Used when a device has no parsed options (never the case through config.c). */
static const struct lines_opts lines_default_opts = {.format = LINES_FORMAT_KV, .separator = ','};

/* ---- helpers shared by the formats ---------------------------------------------------------- */

static bool lines_field_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '.' || c == '-';
}

/* True if S[0..N) is a valid field name: [A-Za-z0-9_.-]{1,64}. */
static bool lines_field_valid(const char *s, size_t n)
{
	if (n == 0 || n > LINES_MAX_FIELD)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!lines_field_char(s[i]))
			return false;
	return true;
}

static bool lines_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Emit FIELD with TEXT as a number when it is one, as a string otherwise. */
static void lines_emit_text(struct sg_dev *dev, const char *field, const char *text)
{
	double v;
	bool canonical;

	if (sg_decimal_parse(text, &v, &canonical))
		sg_dev_emit_decimal(dev, field, v, text, canonical);
	else
		sg_dev_emit_string(dev, field, text);
}

/* Copy S[0..N) into DST (N < cap, checked by the callers' bounds) and terminate it. */
static void lines_copy(char *dst, const char *s, size_t n)
{
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/*
 * Each format parser runs twice over a line: first with EMIT false, to
 * validate it, then, only if that succeeded, with EMIT true. It returns NULL
 * on success or a short static text saying what is wrong.
 */

/*
 * While validating a line: NULL the first time FIELD[0..N) comes up, else why the line is refused.
 * Names are remembered by a 64-bit FNV-1a hash: two different names that collide (odds 2^-64 per pair)
 * drop a line, a name given twice never passes.
 */
static const char *lines_seen(struct lines_state *st, const char *field, size_t n, const char *dup)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)field[i]) * 0x100000001b3ULL;
	for (size_t i = 0; i < st->n_seen; i++)
		if (st->seen[i] == h)
			return dup;
	if (st->n_seen == LINES_MAX_KEYS)
		return "too many fields in one line";
	st->seen[st->n_seen++] = h;
	return NULL;
}

/* ---- kv --------------------------------------------------------------------------------------- */

static bool lines_kv_delim(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == ',' || c == ';';
}

static const char *lines_parse_kv(struct sg_dev *dev, struct lines_state *st, bool emit)
{
	const char *p = st->line, *why;

	for (;;) {
		const char *tok;
		size_t n, klen;

		while (*p && lines_kv_delim(*p))
			p++;
		if (!*p)
			return NULL;
		tok = p;
		while (*p && !lines_kv_delim(*p))
			p++;
		n = (size_t)(p - tok);

		for (klen = 0; klen < n && tok[klen] != '=' && tok[klen] != ':'; klen++)
			;
		if (klen == n)
			return "kv: token without '=' or ':'";
		if (!lines_field_valid(tok, klen))
			return "kv: invalid key";
		if (!emit && (why = lines_seen(st, tok, klen, "kv: the same key twice")))
			return why;
		if (!emit || klen + 1 == n)
			continue; /* validating, or an empty value: nothing to publish */
		lines_copy(st->field, tok, klen);
		lines_copy(st->value, tok + klen + 1, n - klen - 1);
		lines_emit_text(dev, st->field, st->value);
	}
}

/* ---- csv -------------------------------------------------------------------------------------- */

static bool lines_csv_blank(char c, char sep)
{
	return (c == ' ' || c == '\t') && c != sep;
}

static const char *lines_parse_csv(struct sg_dev *dev, struct lines_state *st, const struct lines_opts *o,
				   bool emit)
{
	const char *p = st->line;
	size_t col = 0;

	for (;;) {
		const char *sep = strchr(p, o->separator);
		const char *end = sep ? sep : p + strlen(p);

		if (col >= o->n_columns)
			return "csv: more cells than columns";
		if (emit) {
			const char *b = p, *e = end;

			while (b < e && lines_csv_blank(*b, o->separator))
				b++;
			while (e > b && lines_csv_blank(e[-1], o->separator))
				e--;
			if (e > b) {
				lines_copy(st->value, b, (size_t)(e - b));
				lines_emit_text(dev, o->columns[col], st->value);
			}
		}
		col++;
		if (!sep)
			break;
		p = sep + 1;
	}
	if (col != o->n_columns)
		return "csv: fewer cells than columns";
	return NULL;
}

/* ---- json ------------------------------------------------------------------------------------- */

struct lines_json {
	struct sg_json_in in;     /* the lexer (common/json.h) over the line, which is NUL-terminated too */
	struct sg_dev *dev;
	struct lines_state *st;   /* st->field holds the dotted path, st->value is scratch */
	size_t path_len;          /* bytes of st->field in use */
	int depth;                /* containers open */
	bool emit;
	const char *err;          /* what went wrong, once something did */
};

static bool lines_json_fail(struct lines_json *j, const char *why)
{
	j->err = why;
	return false;
}

/* A failed read of the lexer (common/json.h): false, with why. */
static bool lines_json_lexer_fail(struct lines_json *j)
{
	return lines_json_fail(j, j->in.why ? j->in.why : "json: string too long");
}

/* The string at the cursor, decoded into st->value (never longer than its source: it always fits). */
static bool lines_json_string(struct lines_json *j, size_t *ret_len)
{
	if (sg_json_string(&j->in, j->st->value, sizeof(j->st->value), ret_len) < 0)
		return lines_json_lexer_fail(j);
	return true;
}

/* The number at the cursor, converted (its text kept in st->value). */
static bool lines_json_number(struct lines_json *j, double *ret)
{
	const char *s = j->in.p;

	if (sg_json_number(&j->in) < 0)
		return lines_json_fail(j, j->in.why);
	lines_copy(j->st->value, s, (size_t)(j->in.p - s));
	if (!sg_decimal_parse(j->st->value, ret, NULL))
		return lines_json_fail(j, "json: number out of range");
	return true;
}

static bool lines_json_literal(struct lines_json *j, const char *word)
{
	if (!sg_json_lit(&j->in, word))
		return lines_json_fail(j, "json: unexpected character");
	return true;
}

static bool lines_json_value(struct lines_json *j, bool skip);

/* An object at j->in.p. SKIP: inside an array, parse only. */
static bool lines_json_object(struct lines_json *j, bool skip)
{
	struct lines_state *st = j->st;
	bool open = false;
	size_t klen;
	int r;

	if (++j->depth > LINES_JSON_MAX_DEPTH)
		return lines_json_fail(j, "json: nested too deep");
	/* each key is decoded into st->value (never longer than its source: it always fits) */
	while ((r = sg_json_member(&j->in, &open, st->value, sizeof(st->value), &klen)) > 0) {
		size_t saved = j->path_len;

		if (!skip) {
			size_t dot = saved ? 1 : 0;

			if (!lines_field_valid(st->value, klen))
				return lines_json_fail(j, "json: invalid key");
			if (saved + dot + klen > LINES_MAX_FIELD)
				return lines_json_fail(j, "json: field name longer than 64");
			if (dot)
				st->field[saved] = '.';
			lines_copy(st->field + saved + dot, st->value, klen);
			j->path_len = saved + dot + klen;
			if (!j->emit && (j->err = lines_seen(st, st->field, j->path_len, "json: the same field twice")))
				return false;
		}
		if (!lines_json_value(j, skip))
			return false;
		j->path_len = saved;
		st->field[saved] = '\0';
	}
	if (r < 0)
		return lines_json_lexer_fail(j);
	j->depth--;
	return true;
}

/* An array at j->in.p: parsed for validity, its contents never emitted. */
static bool lines_json_array(struct lines_json *j)
{
	bool open = false;
	int r;

	if (++j->depth > LINES_JSON_MAX_DEPTH)
		return lines_json_fail(j, "json: nested too deep");
	while ((r = sg_json_element(&j->in, &open)) > 0)
		if (!lines_json_value(j, true))
			return false;
	if (r < 0)
		return lines_json_fail(j, j->in.why);
	j->depth--;
	return true;
}

/* A member value at j->in.p, named by the path in st->field. SKIP: never emit it. */
static bool lines_json_value(struct lines_json *j, bool skip)
{
	bool emit = j->emit && !skip;
	size_t len;
	double v;

	sg_json_ws(&j->in);
	switch (*j->in.p) {
	case '{':
		return lines_json_object(j, skip);
	case '[':
		return lines_json_array(j);
	case '"':
		if (!lines_json_string(j, &len))
			return false;
		if (emit)
			sg_dev_emit_string(j->dev, j->st->field, j->st->value);
		return true;
	case 't':
		if (!lines_json_literal(j, "true"))
			return false;
		if (emit)
			sg_dev_emit_number(j->dev, j->st->field, 1, NULL);
		return true;
	case 'f':
		if (!lines_json_literal(j, "false"))
			return false;
		if (emit)
			sg_dev_emit_number(j->dev, j->st->field, 0, NULL);
		return true;
	case 'n':
		return lines_json_literal(j, "null");
	default:
		if (*j->in.p != '-' && !lines_digit(*j->in.p))
			return lines_json_fail(j, "json: unexpected character");
		if (!lines_json_number(j, &v))
			return false;
		if (emit)
			sg_dev_emit_number(j->dev, j->st->field, v, NULL);
		return true;
	}
}

static const char *lines_parse_json(struct sg_dev *dev, struct lines_state *st, bool emit)
{
	struct lines_json j = {.in = {.p = st->line, .end = st->line + strlen(st->line)}, .dev = dev, .st = st, .emit = emit};

	st->field[0] = '\0';
	sg_json_ws(&j.in);
	if (*j.in.p != '{')
		return "json: line is not an object";
	if (!lines_json_object(&j, false))
		return j.err;
	sg_json_ws(&j.in);
	if (*j.in.p)
		return "json: data after the object";
	return NULL;
}

/* ---- one line --------------------------------------------------------------------------------- */

static const char *lines_parse(struct sg_dev *dev, struct lines_state *st, const struct lines_opts *o, bool emit)
{
	switch (o->format) {
	case LINES_FORMAT_JSON:
		return lines_parse_json(dev, st, emit);
	case LINES_FORMAT_CSV:
		return lines_parse_csv(dev, st, o, emit);
	case LINES_FORMAT_KV:
	default:
		return lines_parse_kv(dev, st, emit);
	}
}

/* A complete line of LEN bytes is in st->line: check it, then emit it or count why not. */
static void lines_process(struct sg_dev *dev, struct lines_state *st, size_t len)
{
	const struct lines_opts *o = dev->opts ? dev->opts : &lines_default_opts;
	const char *why;
	size_t i;

	for (i = 0; i < len && (st->line[i] == ' ' || st->line[i] == '\t'); i++)
		;
	if (i == len)
		return; /* blank */
	if (memchr(st->line, '\0', len)) {
		sg_dev_fail(dev, SG_FAIL_GARBAGE, "NUL byte in line");
		return;
	}
	if (!sg_utf8_valid(st->line, len)) {
		sg_dev_fail(dev, SG_FAIL_GARBAGE, "invalid UTF-8");
		return;
	}
	st->line[len] = '\0';
	st->n_seen = 0;
	why = lines_parse(dev, st, o, false);
	if (why) {
		sg_dev_fail(dev, SG_FAIL_SYNTAX, why);
		return;
	}
	(void)lines_parse(dev, st, o, true);
	dev->stats.frames++;
}

static void lines_end_line(struct sg_dev *dev, struct lines_state *st)
{
	size_t len = st->len;
	bool overlong = st->overlong;

	st->len = 0;
	st->overlong = false;
	if (!overlong && len > 0)
		lines_process(dev, st, len);
}

/* A run of bytes up to the next CR or LF is copied at once, not byte by byte (README, Benchmarks). */
static void lines_feed(struct sg_dev *dev, const uint8_t *buf, size_t len)
{
	struct lines_state *st = dev->state;
	size_t i = 0;

	while (i < len) {
		size_t j = i, n;

		while (j < len && buf[j] != '\r' && buf[j] != '\n')
			j++;
		n = j - i;
		if (n > 0) {
			st->after_cr = false;
			if (st->overlong) {
				; /* skipped up to the end of the line */
			} else if (n <= LINES_MAX_LINE - st->len) {
				memcpy(st->line + st->len, buf + i, n);
				st->len += n;
			} else {
				st->overlong = true;
				st->len = 0;
				sg_dev_fail(dev, SG_FAIL_OVERLONG, "line longer than 1024 bytes");
			}
		}
		if (j < len) {
			bool second_of_crlf = buf[j] == '\n' && st->after_cr;

			st->after_cr = buf[j] == '\r';
			if (!second_of_crlf)
				lines_end_line(dev, st);
			j++;
		}
		i = j;
	}
}

static void lines_reset(struct sg_dev *dev)
{
	struct lines_state *st = dev->state;

	st->len = 0;
	st->overlong = false;
	st->after_cr = false;
}

static int lines_init(struct sg_dev *dev)
{
	lines_reset(dev);
	return 0;
}

/* ---- options ---------------------------------------------------------------------------------- */

static int lines_parse_columns(const config_setting_t *cols, struct lines_opts *o, struct sg_opt_error *err)
{
	int n;

	if (config_setting_type(cols) != CONFIG_TYPE_LIST && config_setting_type(cols) != CONFIG_TYPE_ARRAY)
		return sg_opt_fail(err, cols, "columns must be a list of field names, e.g. (\"t\", \"h\")");
	n = config_setting_length(cols);
	if (n < 1)
		return sg_opt_fail(err, cols, "columns must name at least one field");
	if (n > LINES_MAX_COLUMNS)
		return sg_opt_fail(err, cols, "columns: at most %d fields", LINES_MAX_COLUMNS);
	for (int i = 0; i < n; i++) {
		const config_setting_t *c = config_setting_get_elem(cols, (unsigned)i);
		const char *name;
		size_t len;

		if (!c || config_setting_type(c) != CONFIG_TYPE_STRING)
			return sg_opt_fail(err, c ? c : cols, "columns: entry %d is not a string", i + 1);
		name = config_setting_get_string(c);
		len = strlen(name);
		if (!lines_field_valid(name, len))
			return sg_opt_fail(err, c,
					      "columns: \"%.*s\" is not a field name ([A-Za-z0-9_.-], 1 to %d characters)",
					      LINES_MAX_FIELD + 8, name, LINES_MAX_FIELD);
		for (size_t k = 0; k < o->n_columns; k++)
			if (strcmp(o->columns[k], name) == 0)
				return sg_opt_fail(err, c, "columns: \"%s\" appears twice", name);
		lines_copy(o->columns[o->n_columns++], name, len);
	}
	return 0;
}

/*
 * Read format, columns and separator from the device group. Returns 0 with
 * *ret_opts allocated (free with lines_free_options), or -EINVAL with *err
 * naming the offending setting's line, or -ENOMEM.
 */
static int lines_parse_options(const config_setting_t *device, void **ret_opts, struct sg_opt_error *err)
{
	const config_setting_t *fmt = NULL, *cols = NULL, *sep = NULL;
	struct lines_opts *o;
	int format = LINES_FORMAT_KV, r;

	if (!ret_opts)
		return -EINVAL;
	if (device) {
		fmt = config_setting_get_member(device, "format");
		cols = config_setting_get_member(device, "columns");
		sep = config_setting_get_member(device, "separator");
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		if (err) {
			err->line = 0;
			snprintf(err->msg, sizeof(err->msg), "out of memory");
		}
		return -ENOMEM;
	}
	o->format = LINES_FORMAT_KV;
	o->separator = ',';

	if ((r = sg_opt_enum(device, "format", format_names, &format, err)) < 0)
		goto err_free;
	o->format = (enum lines_format)format;

	if (o->format != LINES_FORMAT_CSV) {
		if (cols) {
			r = sg_opt_fail(err, cols, "columns is only used with format = \"csv\"");
			goto err_free;
		}
		if (sep) {
			r = sg_opt_fail(err, sep, "separator is only used with format = \"csv\"");
			goto err_free;
		}
		*ret_opts = o;
		return 0;
	}

	if (!cols) {
		r = sg_opt_fail(err, fmt, "format = \"csv\" needs columns = (\"name\", ...)");
		goto err_free;
	}
	r = lines_parse_columns(cols, o, err);
	if (r < 0)
		goto err_free;
	if (sep) {
		const char *s = config_setting_type(sep) == CONFIG_TYPE_STRING ? config_setting_get_string(sep) : NULL;

		if (!s || strlen(s) != 1) {
			r = sg_opt_fail(err, sep, "separator must be a single character, e.g. \",\" or \";\"");
			goto err_free;
		}
		if (s[0] == '\r' || s[0] == '\n' || (unsigned char)s[0] >= 0x80) {
			r = sg_opt_fail(err, sep, "separator cannot be a line end or a non-ASCII byte");
			goto err_free;
		}
		o->separator = s[0];
	}
	*ret_opts = o;
	return 0;

err_free:
	free(o);
	return r;
}

static void lines_free_options(void *opts)
{
	free(opts);
}

static const char *const lines_option_keys[] = {"format", "columns", "separator", NULL};

const struct sg_driver sg_driver_lines = {
	.name = "lines",
	.description = "text lines from a serial port: key=value pairs, JSON objects or CSV rows",
	.bus = SG_BUS_SERIAL,
	.default_baud = 9600,
	.default_interval_s = 0,
	.fields = NULL, /* data-defined: whatever keys the device sends */
	.option_keys = lines_option_keys,
	.parse_options = lines_parse_options,
	.free_options = lines_free_options,
	.state_size = sizeof(struct lines_state),
	.init = lines_init,
	.fini = NULL,
	.feed = lines_feed,
	.reset = lines_reset,
	.poll = NULL,
};
