/* SPDX-License-Identifier: MIT */
/* json.c — the JSON string escaper and lexer (see json.h). */
#include "json.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "utf8.h"

size_t sg_json_escape(const void *s, size_t len, char *out, size_t outlen, bool *ret_complete)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = s;
	size_t i = 0, o = 0;

	if (ret_complete)
		*ret_complete = false;
	if (!outlen)
		return 0;
	while (i < len) {
		unsigned char ch = p[i];
		char tmp[8];
		size_t tn = 1, adv = 1;

		if (ch == '"' || ch == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)ch;
			tn = 2;
		} else if (ch == '\n' || ch == '\r' || ch == '\t') {
			tmp[0] = '\\';
			tmp[1] = ch == '\n' ? 'n' : ch == '\r' ? 'r' : 't';
			tn = 2;
		} else if (ch < 0x20 || ch == 0x7f) {
			memcpy(tmp, "\\u00", 4);
			tmp[4] = hex[ch >> 4];
			tmp[5] = hex[ch & 0xf];
			tn = 6;
		} else if (ch < 0x80) {
			tmp[0] = (char)ch;
		} else if ((adv = sg_utf8_seq(p + i, len - i)) > 0) {
			memcpy(tmp, p + i, adv);
			tn = adv;
		} else {
			memcpy(tmp, "\\ufffd", 6);
			tn = 6;
			adv = 1;
		}
		if (o + tn + 1 > outlen)
			break;
		memcpy(out + o, tmp, tn);
		o += tn;
		i += adv;
	}
	out[o] = '\0';
	if (ret_complete)
		*ret_complete = i == len;
	return o;
}

/* ---- reading -------------------------------------------------------------------------------- */

/* Note why reading failed: -EINVAL. */
static int fail(struct sg_json_in *in, const char *why)
{
	in->why = why;
	return -EINVAL;
}

void sg_json_ws(struct sg_json_in *in)
{
	while (in->p < in->end && (*in->p == ' ' || *in->p == '\t' || *in->p == '\n' || *in->p == '\r'))
		in->p++;
}

bool sg_json_lit(struct sg_json_in *in, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(in->end - in->p) < n || memcmp(in->p, word, n) != 0)
		return false;
	in->p += n;
	return true;
}

static bool hex4(struct sg_json_in *in, uint32_t *ret)
{
	uint32_t v = 0;

	if (in->end - in->p < 4)
		return false;
	for (int i = 0; i < 4; i++) {
		char c = *in->p++;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return false;
	}
	*ret = v;
	return true;
}

/* The escape after a backslash, decoded into BUF (4 bytes of room): its length, or -EINVAL (why set). */
static int escape(struct sg_json_in *in, char *buf)
{
	uint32_t cp, lo;

	if (in->p >= in->end)
		return fail(in, "json: unterminated string");
	switch (*in->p++) {
	case '"': buf[0] = '"'; return 1;
	case '\\': buf[0] = '\\'; return 1;
	case '/': buf[0] = '/'; return 1;
	case 'b': buf[0] = '\b'; return 1;
	case 'f': buf[0] = '\f'; return 1;
	case 'n': buf[0] = '\n'; return 1;
	case 'r': buf[0] = '\r'; return 1;
	case 't': buf[0] = '\t'; return 1;
	case 'u':
		break;
	default:
		return fail(in, "json: bad escape");
	}
	if (!hex4(in, &cp))
		return fail(in, "json: bad \\u escape");
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return fail(in, "json: lone low surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) { /* §7: a character above U+FFFF as a pair */
		if (!sg_json_lit(in, "\\u") || !hex4(in, &lo) || lo < 0xdc00 || lo > 0xdfff)
			return fail(in, "json: lone high surrogate");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (cp == 0)
		return fail(in, "json: \\u0000 in string");
	return (int)sg_utf8_put(cp, buf);
}

int sg_json_string(struct sg_json_in *in, char *out, size_t outlen, size_t *ret_len)
{
	size_t o = 0;
	bool fits = true;

	if (out && outlen)
		out[0] = '\0';
	if (in->p >= in->end || *in->p != '"')
		return fail(in, "json: expected a string");
	in->p++;
	while (in->p < in->end) {
		unsigned char c = (unsigned char)*in->p++;
		char buf[4];
		int n = 1;

		if (c == '"') {
			if (out && fits)
				out[o] = '\0';
			if (ret_len)
				*ret_len = o;
			return fits ? 0 : -E2BIG;
		}
		if (c < 0x20)
			return fail(in, c ? "json: control character in string" : "json: unterminated string");
		buf[0] = (char)c;
		if (c == '\\' && (n = escape(in, buf)) < 0)
			return n;
		if (!out || !fits)
			continue;
		if (o + (size_t)n + 1 > outlen) {
			fits = false;
			out[o] = '\0'; /* what fitted */
			continue;
		}
		if (n == 1) {
			out[o++] = buf[0];
		} else {
			memcpy(out + o, buf, (size_t)n);
			o += (size_t)n;
		}
	}
	return fail(in, "json: unterminated string");
}

static bool digits(struct sg_json_in *in)
{
	if (in->p >= in->end || *in->p < '0' || *in->p > '9')
		return false;
	while (in->p < in->end && *in->p >= '0' && *in->p <= '9')
		in->p++;
	return true;
}

int sg_json_number(struct sg_json_in *in)
{
	if (in->p < in->end && *in->p == '-')
		in->p++;
	if (in->p < in->end && *in->p == '0')
		in->p++;
	else if (!digits(in))
		return fail(in, "json: bad number");
	if (in->p < in->end && *in->p == '.') {
		in->p++;
		if (!digits(in))
			return fail(in, "json: bad number");
	}
	if (in->p < in->end && (*in->p == 'e' || *in->p == 'E')) {
		in->p++;
		if (in->p < in->end && (*in->p == '+' || *in->p == '-'))
			in->p++;
		if (!digits(in))
			return fail(in, "json: bad number");
	}
	return 0;
}

/* ---- objects and arrays, a value at a time ----------------------------------------------------- */

/*
 * Up to the next value of the container that OPENER and CLOSER delimit: the opener (*OPEN
 * false) or the ',' after the last value. 1 with the cursor on what follows; 0 after the closer.
 */
static int next(struct sg_json_in *in, bool *open, char opener, char closer, const char *why_sep)
{
	sg_json_ws(in);
	if (!*open) {
		if (in->p >= in->end || *in->p != opener)
			return fail(in, opener == '{' ? "json: expected an object" : "json: expected an array");
		in->p++;
		*open = true;
		sg_json_ws(in);
		if (in->p < in->end && *in->p == closer) {
			in->p++;
			return 0;
		}
		return 1;
	}
	if (in->p < in->end && *in->p == closer) {
		in->p++;
		return 0;
	}
	if (in->p >= in->end || *in->p != ',')
		return fail(in, why_sep);
	in->p++;
	sg_json_ws(in);
	return 1;
}

int sg_json_member(struct sg_json_in *in, bool *open, char *name, size_t namelen, size_t *ret_len)
{
	int r = next(in, open, '{', '}', "json: expected ',' or '}'");

	if (r <= 0)
		return r;
	if (in->p >= in->end || *in->p != '"')
		return fail(in, "json: expected a key");
	if ((r = sg_json_string(in, name, namelen, ret_len)) < 0)
		return r;
	sg_json_ws(in);
	if (in->p >= in->end || *in->p != ':')
		return fail(in, "json: expected ':'");
	in->p++;
	sg_json_ws(in);
	return 1;
}

int sg_json_element(struct sg_json_in *in, bool *open)
{
	return next(in, open, '[', ']', "json: expected ',' or ']'");
}
