/* SPDX-License-Identifier: MIT */
/*
 * test_common.c — the helpers below drivers/ and gateway/: common/utf8.c
 * against the well-formed byte sequences of RFC 3629 §4 (each boundary of the
 * table, a byte inside and outside it) and a round trip through every code
 * point; common/json.c's one escaping policy, case by case, its lexer
 * (strings and numbers by RFC 8259's grammar, §6 and §7, with the errors
 * the readers report) and its walk over objects' members and arrays'
 * elements (§4, §5).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/utf8.h"

struct ucase {
	const char *legend;
	const char *in;
	size_t len;
	size_t seq; /* sg_utf8_seq() of the first bytes */
};

/* RFC 3629 §4: UTF8-2 = C2-DF UTF8-tail; UTF8-3 = E0 A0-BF tail / E1-EC 2tail / ED 80-9F tail /
 * EE-EF 2tail; UTF8-4 = F0 90-BF 2tail / F1-F3 3tail / F4 80-8F 2tail; tail = 80-BF. */
static const struct ucase ucases[] = {
	{"ASCII", "A", 1, 1},
	{"NUL is U+0000", "\0", 1, 1},
	{"C2 80: U+0080, the first 2-byte", "\xc2\x80", 2, 2},
	{"DF BF: U+07FF, the last 2-byte", "\xdf\xbf", 2, 2},
	{"C0 80: overlong NUL", "\xc0\x80", 2, 0},
	{"C1 BF: overlong", "\xc1\xbf", 2, 0},
	{"E0 A0 80: U+0800", "\xe0\xa0\x80", 3, 3},
	{"E0 9F BF: overlong 3-byte", "\xe0\x9f\xbf", 3, 0},
	{"ED 9F BF: U+D7FF", "\xed\x9f\xbf", 3, 3},
	{"ED A0 80: U+D800, a surrogate", "\xed\xa0\x80", 3, 0},
	{"ED BF BF: U+DFFF, a surrogate", "\xed\xbf\xbf", 3, 0},
	{"EF BF BF: U+FFFF", "\xef\xbf\xbf", 3, 3},
	{"F0 90 80 80: U+10000", "\xf0\x90\x80\x80", 4, 4},
	{"F0 8F BF BF: overlong 4-byte", "\xf0\x8f\xbf\xbf", 4, 0},
	{"F4 8F BF BF: U+10FFFF", "\xf4\x8f\xbf\xbf", 4, 4},
	{"F4 90 80 80: above U+10FFFF", "\xf4\x90\x80\x80", 4, 0},
	{"F5: never", "\xf5\x80\x80\x80", 4, 0},
	{"lone continuation byte", "\x80", 1, 0},
	{"2-byte cut short", "\xc3", 1, 0},
	{"3-byte cut short", "\xe2\x82", 2, 0},
	{"NUL inside a sequence", "\xe2\0\xac", 3, 0},
	{"ASCII after a lead", "\xc3(", 2, 0},
};

static void test_utf8_seq(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ucases) / sizeof(ucases[0]); i++) {
		const struct ucase *c = &ucases[i];
		print_message("case: %s\n", c->legend);
		assert_int_equal(sg_utf8_seq((const unsigned char *)c->in, c->len), c->seq);
		assert_int_equal(sg_utf8_valid(c->in, c->len), c->seq == c->len);
	}
	assert_int_equal(sg_utf8_seq((const unsigned char *)"A", 0), 0);
	assert_true(sg_utf8_valid("", 0));
	assert_true(sg_utf8_valid("t=21.5 \xc2\xb0" "C \xe2\x82\xac \xf0\x9f\x8c\xa1", 19));
	assert_false(sg_utf8_valid("t=21.5 \xc2", 8));
}

/* Every scalar value: written by sg_utf8_put(), read back whole by sg_utf8_seq(), in the length
 * the table gives; the bytes decode to the same code point. */
static void test_utf8_round_trip(void **state)
{
	(void)state;
	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		char buf[4];
		size_t n, want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
		uint32_t back;

		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		n = sg_utf8_put(cp, buf);
		assert_int_equal(n, want);
		assert_int_equal(sg_utf8_seq((const unsigned char *)buf, n), n);
		back = n == 1 ? (uint32_t)buf[0] : (uint32_t)(buf[0] & (0x7f >> n));
		for (size_t i = 1; i < n; i++)
			back = (back << 6) | (uint32_t)(buf[i] & 0x3f);
		if (back != cp)
			fail_msg("U+%04X came back as U+%04X", cp, back);
	}
}

struct ecase {
	const char *legend;
	const char *in;
	size_t len;
	const char *out;
};

static const struct ecase ecases[] = {
	{"plain", "ON", 2, "ON"},
	{"quotes and backslash", "a\"b\\c", 5, "a\\\"b\\\\c"},
	{"newline, CR, tab", "a\nb\rc\td", 7, "a\\nb\\rc\\td"},
	{"other control characters and DEL", "\x01\x1f\x7f", 3, "\\u0001\\u001f\\u007f"},
	{"NUL inside", "a\0b", 3, "a\\u0000b"},
	{"valid UTF-8 kept", "\xc2\xb0" "C \xf0\x9f\x8c\xa1", 8, "\xc2\xb0" "C \xf0\x9f\x8c\xa1"},
	{"invalid UTF-8 replaced byte by byte", "\xff\xc3(", 3, "\\ufffd\\ufffd("},
	{"overlong encoding replaced", "\xc0\xaf", 2, "\\ufffd\\ufffd"},
	{"surrogate encoding replaced", "\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd"},
	{"multibyte cut short", "a\xe2\x82", 3, "a\\ufffd\\ufffd"},
};

static void test_json_escape(void **state)
{
	char out[128];
	bool complete;
	(void)state;

	for (size_t i = 0; i < sizeof(ecases) / sizeof(ecases[0]); i++) {
		const struct ecase *c = &ecases[i];
		size_t n;
		print_message("case: %s\n", c->legend);
		n = sg_json_escape(c->in, c->len, out, sizeof(out), &complete);
		assert_string_equal(out, c->out);
		assert_int_equal(n, strlen(c->out));
		assert_true(complete);
	}
	/* output too small: stops at a whole escape or character, NUL-terminated, and says so */
	assert_int_equal(sg_json_escape("ab\"cd", 5, out, 4, &complete), 2);
	assert_string_equal(out, "ab");
	assert_false(complete);
	assert_int_equal(sg_json_escape("a\xe2\x82\xac", 4, out, 4, &complete), 1);
	assert_string_equal(out, "a");
	assert_false(complete);
	assert_int_equal(sg_json_escape("\x01", 1, out, 6, &complete), 0);
	assert_false(complete);
	assert_int_equal(sg_json_escape("\x01", 1, out, 7, &complete), 6);
	assert_true(complete);
	assert_int_equal(sg_json_escape("x", 1, out, 0, NULL), 0);
}

struct scase {
	const char *legend;
	const char *in;       /* the JSON text, starting at the string */
	int r;                /* sg_json_string() */
	const char *out;      /* decoded (r == 0) or the error text (r == -EINVAL) */
	size_t rest;          /* bytes left after the cursor on success */
};

static const struct scase scases[] = {
	{"plain", "\"abc\",1", 0, "abc", 2},
	{"every short escape", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", 0, "\"\\/\b\f\n\r\t", 0},
	{"\\u escape to UTF-8", "\"\\u00e9\\u20AC\"", 0, "\xc3\xa9\xe2\x82\xac", 0},
	{"surrogate pair", "\"\\ud83c\\udf21\"", 0, "\xf0\x9f\x8c\xa1", 0},
	{"raw UTF-8 kept", "\"\xc2\xb0\"", 0, "\xc2\xb0", 0},
	{"lone low surrogate", "\"\\udf21\"", -EINVAL, "json: lone low surrogate", 0},
	{"lone high surrogate", "\"\\ud83cx\"", -EINVAL, "json: lone high surrogate", 0},
	{"high then not low", "\"\\ud83c\\u0041\"", -EINVAL, "json: lone high surrogate", 0},
	{"\\u0000", "\"a\\u0000\"", -EINVAL, "json: \\u0000 in string", 0},
	{"bad hex", "\"\\u12g4\"", -EINVAL, "json: bad \\u escape", 0},
	{"bad escape", "\"\\x\"", -EINVAL, "json: bad escape", 0},
	{"raw control character", "\"a\tb\"", -EINVAL, "json: control character in string", 0},
	{"unterminated", "\"abc", -EINVAL, "json: unterminated string", 0},
	{"unterminated after a backslash", "\"abc\\", -EINVAL, "json: unterminated string", 0},
	{"not a string", "abc", -EINVAL, "json: expected a string", 0},
};

static void test_json_string(void **state)
{
	char out[32];
	(void)state;

	for (size_t i = 0; i < sizeof(scases) / sizeof(scases[0]); i++) {
		const struct scase *c = &scases[i];
		struct sg_json_in in = {.p = c->in, .end = c->in + strlen(c->in)};
		size_t len = 99;
		int r;

		print_message("case: %s\n", c->legend);
		r = sg_json_string(&in, out, sizeof(out), &len);
		assert_int_equal(r, c->r);
		if (r == 0) {
			assert_string_equal(out, c->out);
			assert_int_equal(len, strlen(c->out));
			assert_int_equal(in.end - in.p, c->rest);
		} else {
			assert_string_equal(in.why, c->out);
		}
	}
	/* too long for OUT: consumed and checked whole, what fitted kept */
	{
		const char *t = "\"abcdefgh\" ";
		struct sg_json_in in = {.p = t, .end = t + strlen(t)};
		assert_int_equal(sg_json_string(&in, out, 4, NULL), -E2BIG);
		assert_string_equal(out, "abc");
		assert_int_equal(in.end - in.p, 1);
	}
	/* NULL OUT: only checked */
	{
		const char *t = "\"\\u00e9\"";
		struct sg_json_in in = {.p = t, .end = t + strlen(t)};
		assert_int_equal(sg_json_string(&in, NULL, 0, NULL), 0);
		assert_true(in.p == in.end);
	}
}

struct ncase {
	const char *in;
	int r;
	size_t used; /* bytes consumed on success */
};

static const struct ncase ncases[] = {
	{"0", 0, 1}, {"-0", 0, 2}, {"12.5", 0, 4}, {"-1e10", 0, 5}, {"1E+2,", 0, 4}, {"3.25e-3}", 0, 7},
	{"0123", 0, 1}, /* "0" and then "123": the reader's structure refuses what follows */
	{"-", -EINVAL, 0}, {".5", -EINVAL, 0}, {"1.", -EINVAL, 0}, {"1e", -EINVAL, 0}, {"1e+", -EINVAL, 0},
	{"+1", -EINVAL, 0}, {"x", -EINVAL, 0}, {"", -EINVAL, 0},
};

static void test_json_number(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ncases) / sizeof(ncases[0]); i++) {
		const struct ncase *c = &ncases[i];
		struct sg_json_in in = {.p = c->in, .end = c->in + strlen(c->in)};

		print_message("case: \"%s\"\n", c->in);
		assert_int_equal(sg_json_number(&in), c->r);
		if (c->r == 0)
			assert_int_equal(in.p - c->in, c->used);
		else
			assert_string_equal(in.why, "json: bad number");
	}
}

/* The value at the cursor, written into T as a compact trace ({name:value,...}, [..], numbers and
 * literals as they are, strings decoded): 0, or the walk's or lexer's error. */
static int trace_value(struct sg_json_in *in, char *t, size_t tlen);

/* S appended to T[0..N) (TLEN bytes of room): the new length. */
static size_t put(char *t, size_t tlen, size_t n, const char *s)
{
	snprintf(t + n, tlen - n, "%s", s);
	return n + strlen(t + n);
}

static int trace_container(struct sg_json_in *in, char *t, size_t tlen)
{
	bool obj = *in->p == '{', open = false, first = true;
	char name[8];
	size_t n = put(t, tlen, 0, obj ? "{" : "[");
	int r;

	while ((r = obj ? sg_json_member(in, &open, name, sizeof(name), NULL) : sg_json_element(in, &open)) > 0) {
		if (!first)
			n = put(t, tlen, n, ",");
		first = false;
		if (obj)
			n = put(t, tlen, put(t, tlen, n, name), ":");
		if ((r = trace_value(in, t + n, tlen - n)) < 0)
			return r;
		n += strlen(t + n);
	}
	if (r == 0)
		put(t, tlen, n, obj ? "}" : "]");
	return r;
}

static int trace_value(struct sg_json_in *in, char *t, size_t tlen)
{
	const char *start = in->p;
	int r;

	if (*in->p == '{' || *in->p == '[')
		return trace_container(in, t, tlen);
	if (*in->p == '"')
		return sg_json_string(in, t, tlen, NULL);
	r = sg_json_lit(in, "true") || sg_json_lit(in, "null") ? 0 : sg_json_number(in);
	if (r == 0)
		snprintf(t, tlen, "%.*s", (int)(in->p - start), start);
	return r;
}

struct wcase {
	const char *in;    /* the JSON text, from the container on */
	int r;             /* of the walk */
	const char *out;   /* the trace (r == 0) or the error text (r == -EINVAL) */
	size_t rest;       /* bytes left after the cursor on success */
};

static const struct wcase wcases[] = {
	{" { \"a\" : 1 ,\n\"b\\u0041\"\t:[ 2 ,{ } ,[],\"s\"] ,\"c\":{\"d\":true}} x", 0,
	 "{a:1,bA:[2,{},[],s],c:{d:true}}", 2},
	{"{}", 0, "{}", 0}, {"[ ]", 0, "[]", 0}, {"[null]", 0, "[null]", 0},
	{"{\"a\":1,}", -EINVAL, "json: expected a key", 0},
	{"{1:2}", -EINVAL, "json: expected a key", 0},
	{"{\"a\" 1}", -EINVAL, "json: expected ':'", 0},
	{"{\"a\"", -EINVAL, "json: expected ':'", 0},
	{"{\"a\":1 \"b\":2}", -EINVAL, "json: expected ',' or '}'", 0},
	{"{\"a\":1", -EINVAL, "json: expected ',' or '}'", 0},
	{"{\"a\":1]", -EINVAL, "json: expected ',' or '}'", 0},
	{"[1 2]", -EINVAL, "json: expected ',' or ']'", 0},
	{"[1,", -EINVAL, "json: bad number", 0},
	{"{\"\\x\":1}", -EINVAL, "json: bad escape", 0},
	{"{\"abcdefgh\":1}", -E2BIG, NULL, 0}, /* the name does not fit in 8 bytes */
};

static void test_json_walk(void **state)
{
	char out[128];
	(void)state;

	for (size_t i = 0; i < sizeof(wcases) / sizeof(wcases[0]); i++) {
		const struct wcase *c = &wcases[i];
		struct sg_json_in in = {.p = c->in, .end = c->in + strlen(c->in)};
		int r;

		print_message("case: %s\n", c->in);
		sg_json_ws(&in);
		out[0] = '\0';
		r = trace_value(&in, out, sizeof(out));
		assert_int_equal(r, c->r);
		if (r == 0) {
			assert_string_equal(out, c->out);
			assert_int_equal(in.end - in.p, c->rest);
		} else if (r == -EINVAL) {
			assert_string_equal(in.why, c->out);
		}
	}
	/* not a container where one must be */
	{
		static const char arr[] = " [", obj[] = "{";
		struct sg_json_in in = {.p = arr, .end = arr + 2};
		bool open = false;
		char name[8];

		assert_int_equal(sg_json_member(&in, &open, name, sizeof(name), NULL), -EINVAL);
		assert_string_equal(in.why, "json: expected an object");
		in = (struct sg_json_in){.p = obj, .end = obj + 1};
		open = false;
		assert_int_equal(sg_json_element(&in, &open), -EINVAL);
		assert_string_equal(in.why, "json: expected an array");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_seq),
		cmocka_unit_test(test_utf8_round_trip),
		cmocka_unit_test(test_json_escape),
		cmocka_unit_test(test_json_string),
		cmocka_unit_test(test_json_number),
		cmocka_unit_test(test_json_walk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
