/* SPDX-License-Identifier: MIT */
/*
 * test_lines.c — unit tests of the `lines` driver (drivers/lines.c).
 *
 * The driver is pure (bytes in through feed(), readings out through
 * dev->emit), so every case is a table row {legend, options, input bytes,
 * expected readings, expected failure counts} replayed several ways: all at
 * once, split in two at every byte boundary, one byte at a time, and in
 * pseudo-random chunks from fixed seeds. Each replay must give the same
 * readings and counters. Options go through the real parse_options() with a
 * libconfig group built from a string; its errors are checked for their line
 * numbers. The registry lookups of this driver are checked here too.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libconfig.h>

#include "drivers/driver.h"
#include "drivers/drivers.h"
#include "opts_helper.h"

#define MAX_EXP 16
#define MAX_GOT 64
#define LINES_TEST_MAX_STRING 1100

struct exp_reading {
	const char *field; /* NULL ends the list */
	enum sg_value_kind kind;
	double number;
	const char *string;
};

#define NUM(f, v) {(f), SG_VALUE_NUMBER, (v), NULL}
#define STR(f, v) {(f), SG_VALUE_STRING, 0, (v)}

struct lines_case {
	const char *legend;
	const char *options; /* body of the device group */
	const char *input;
	size_t input_len;
	struct exp_reading exp[MAX_EXP];
	unsigned overlong, garbage, syntax; /* expected failure counts */
	unsigned frames;                    /* expected frames (lines parsed) */
};

/* Input with its exact length, NUL bytes included. */
#define IN(s) .input = (s), .input_len = sizeof(s) - 1

#define KV ""
#define JSON "format = \"json\";"
#define CSV "format = \"csv\"; columns = (\"t\", \"h\", \"p\");"

struct got_reading {
	char field[128];
	enum sg_value_kind kind;
	double number;
	char string[LINES_TEST_MAX_STRING];
};

/* ---- harness ---------------------------------------------------------------------------------- */

struct capture {
	struct got_reading r[MAX_GOT];
	size_t n;
	size_t overflow;
	unsigned fails[SG_FAIL_MAX_];
};

struct run {
	struct sg_dev dev;
	void *opts;
	struct capture cap;
};

static void on_emit(struct sg_dev *dev, const struct sg_reading *r, void *userdata)
{
	struct capture *cap = userdata;
	struct got_reading *g;

	(void)dev;
	assert_non_null(r->field);
	assert_null(r->unit);
	assert_int_equal(r->timestamp_us, 0);
	if (cap->n == MAX_GOT) {
		cap->overflow++;
		return;
	}
	g = &cap->r[cap->n++];
	assert_true(strlen(r->field) < sizeof(g->field));
	strcpy(g->field, r->field);
	g->kind = r->kind;
	g->number = r->number;
	g->string[0] = '\0';
	if (r->kind == SG_VALUE_STRING) {
		assert_non_null(r->string);
		assert_true(strlen(r->string) < sizeof(g->string));
		strcpy(g->string, r->string);
	}
}

static void on_fail(struct sg_dev *dev, enum sg_fail f, const char *detail, void *userdata)
{
	struct capture *cap = userdata;

	(void)dev;
	assert_non_null(detail);
	assert_true((unsigned)f < SG_FAIL_MAX_);
	cap->fails[f]++;
}

static struct run *run_new(const char *options)
{
	struct run *run = calloc(1, sizeof(*run));
	struct sg_opt_error err = {0};

	assert_non_null(run);
	assert_int_equal(opts_fixture_parse(&sg_driver_lines, options, &run->opts, &err), 0);
	assert_non_null(run->opts);
	run->dev.name = "test";
	run->dev.driver = &sg_driver_lines;
	run->dev.opts = run->opts;
	run->dev.fd = -1;
	run->dev.address = -1;
	run->dev.state = calloc(1, sg_driver_lines.state_size);
	assert_non_null(run->dev.state);
	run->dev.emit = on_emit;
	run->dev.on_fail = on_fail;
	run->dev.userdata = &run->cap;
	assert_int_equal(sg_driver_lines.init(&run->dev), 0);
	return run;
}

static void run_free(struct run *run)
{
	if (sg_driver_lines.fini)
		sg_driver_lines.fini(&run->dev);
	sg_driver_lines.free_options(run->opts);
	free(run->dev.state);
	free(run);
}

static void feed(struct run *run, const void *buf, size_t len)
{
	sg_driver_lines.feed(&run->dev, buf, len);
}

/* Small deterministic generator for chunk sizes (xorshift32). */
static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void check_run(const struct lines_case *c, const struct run *run, const char *how)
{
	const struct capture *cap = &run->cap;
	size_t n_exp = 0;

	while (n_exp < MAX_EXP && c->exp[n_exp].field)
		n_exp++;
	if (cap->n != n_exp || cap->overflow)
		fail_msg("%s (%s): %zu readings, expected %zu", c->legend, how, cap->n + cap->overflow, n_exp);
	for (size_t i = 0; i < n_exp; i++) {
		const struct exp_reading *e = &c->exp[i];
		const struct got_reading *g = &cap->r[i];

		if (strcmp(g->field, e->field) != 0 || g->kind != e->kind)
			fail_msg("%s (%s): reading %zu is %s/%d, expected %s/%d", c->legend, how, i, g->field,
				 g->kind, e->field, e->kind);
		if (e->kind == SG_VALUE_NUMBER && g->number != e->number)
			fail_msg("%s (%s): %s = %.17g, expected %.17g", c->legend, how, e->field, g->number,
				 e->number);
		if (e->kind == SG_VALUE_STRING && strcmp(g->string, e->string) != 0)
			fail_msg("%s (%s): %s = \"%s\", expected \"%s\"", c->legend, how, e->field, g->string,
				 e->string);
	}
	if (cap->fails[SG_FAIL_OVERLONG] != c->overlong || cap->fails[SG_FAIL_GARBAGE] != c->garbage ||
	    cap->fails[SG_FAIL_SYNTAX] != c->syntax)
		fail_msg("%s (%s): overlong/garbage/syntax %u/%u/%u, expected %u/%u/%u", c->legend, how,
			 cap->fails[SG_FAIL_OVERLONG], cap->fails[SG_FAIL_GARBAGE], cap->fails[SG_FAIL_SYNTAX],
			 c->overlong, c->garbage, c->syntax);
	for (int f = 0; f < SG_FAIL_MAX_; f++)
		if (run->dev.stats.fail[f] != cap->fails[f])
			fail_msg("%s (%s): stats.fail[%s] = %llu, callback saw %u", c->legend, how,
				 sg_fail_name((enum sg_fail)f), (unsigned long long)run->dev.stats.fail[f],
				 cap->fails[f]);
	for (int f = SG_FAIL_CHECKSUM; f < SG_FAIL_MAX_; f++)
		if (cap->fails[f])
			fail_msg("%s (%s): unexpected %s failure", c->legend, how, sg_fail_name((enum sg_fail)f));
	if (run->dev.stats.readings != n_exp)
		fail_msg("%s (%s): stats.readings = %llu, expected %zu", c->legend, how,
			 (unsigned long long)run->dev.stats.readings, n_exp);
	if (run->dev.stats.frames != c->frames)
		fail_msg("%s (%s): stats.frames = %llu, expected %u", c->legend, how,
			 (unsigned long long)run->dev.stats.frames, c->frames);
}

/* Replay one case all at once, split at every boundary, byte by byte and in random chunks. */
static void run_case(const struct lines_case *c)
{
	struct run *run;
	char how[64];

	run = run_new(c->options);
	feed(run, c->input, c->input_len);
	check_run(c, run, "whole");
	run_free(run);

	for (size_t split = 0; split <= c->input_len; split++) {
		run = run_new(c->options);
		feed(run, c->input, split);
		feed(run, c->input + split, c->input_len - split);
		snprintf(how, sizeof(how), "split at %zu", split);
		check_run(c, run, how);
		run_free(run);
	}

	run = run_new(c->options);
	for (size_t i = 0; i < c->input_len; i++)
		feed(run, c->input + i, 1);
	check_run(c, run, "byte by byte");
	run_free(run);

	for (uint32_t seed = 1; seed <= 8; seed++) {
		uint32_t s = seed * 2654435761u;
		size_t off = 0;

		run = run_new(c->options);
		while (off < c->input_len) {
			size_t n = 1 + next_rand(&s) % 37;

			if (n > c->input_len - off)
				n = c->input_len - off;
			feed(run, c->input + off, n);
			off += n;
		}
		snprintf(how, sizeof(how), "random chunks, seed %u", (unsigned)seed);
		check_run(c, run, how);
		run_free(run);
	}
}

static void run_table(const struct lines_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		run_case(&cases[i]);
}

/* ---- kv --------------------------------------------------------------------------------------- */

static const struct lines_case kv_cases[] = {
	{"kv spaces", KV, IN("t=21.4 h=40.2 p=1012.8\n"),
	 {NUM("t", 21.4), NUM("h", 40.2), NUM("p", 1012.8)}, .frames = 1},
	{"kv colons and commas, CRLF", KV, IN("t:21.4,h:40\r\n"), {NUM("t", 21.4), NUM("h", 40)}, .frames = 1},
	{"kv semicolons, CR only", KV, IN("t=1;h=2\rp=3\r"), {NUM("t", 1), NUM("h", 2), NUM("p", 3)}, .frames = 2},
	{"kv mixed delimiters and blanks", KV, IN("  t=1 ,\t; h=-2.5e1 ,, \n"), {NUM("t", 1), NUM("h", -25)},
	 .frames = 1},
	{"kv CRLF lines with a blank CRLF line", KV, IN("a=1\r\nb=2\r\n\r\nc=3\n"),
	 {NUM("a", 1), NUM("b", 2), NUM("c", 3)}, .frames = 3},
	{"kv LF CR is two line ends", KV, IN("a=1\n\rb=2\n"), {NUM("a", 1), NUM("b", 2)}, .frames = 2},
	{"only line ends", KV, IN("\n\n\r\r\n\r\n"), {{0}}, .frames = 0},
	{"blank lines ignored", KV, IN("   \t \n\t\r\n"), {{0}}, .frames = 0},
	{"last line unterminated stays pending", KV, IN("a=1\nb=2"), {NUM("a", 1)}, .frames = 1},
	{"kv strings", KV, IN("name=ESP32 fw=v1.2.3 t=-0.5\n"),
	 {STR("name", "ESP32"), STR("fw", "v1.2.3"), NUM("t", -0.5)}, .frames = 1},
	{"kv first separator splits", KV, IN("time=12:30:00 k:a=b\n"), {STR("time", "12:30:00"), STR("k", "a=b")},
	 .frames = 1},
	{"kv non-finite and hex", KV, IN("a=nan b=inf c=1e999 d=0x10 e=12abc\n"),
	 {STR("a", "nan"), STR("b", "inf"), STR("c", "1e999"), NUM("d", 16), STR("e", "12abc")}, .frames = 1},
	{"kv key charset", KV, IN("pm2_5=3 a.b-c=4 X9=5\n"), {NUM("pm2_5", 3), NUM("a.b-c", 4), NUM("X9", 5)},
	 .frames = 1},
	{"kv empty value skipped", KV, IN("t= h=2\n"), {NUM("h", 2)}, .frames = 1},
	{"kv utf-8 value", KV, IN("u=\xc2\xb0" "C e=\xe2\x82\xac\n"), {STR("u", "\xc2\xb0" "C"), STR("e", "\xe2\x82\xac")},
	 .frames = 1},
	{"kv 64-char key", KV, IN("k234567890123456789012345678901234567890123456789012345678901234=1\n"),
	 {NUM("k234567890123456789012345678901234567890123456789012345678901234", 1)}, .frames = 1},
	{"kv 65-char key", KV, IN("k2345678901234567890123456789012345678901234567890123456789012345=1\n"),
	 {{0}}, .syntax = 1},
	{"kv token without separator", KV, IN("t=21.4 garbage h=3\n"), {{0}}, .syntax = 1},
	{"kv empty key", KV, IN("=5\n"), {{0}}, .syntax = 1},
	{"kv bad key char", KV, IN("t=1 a/b=2\n"), {{0}}, .syntax = 1},
	{"kv non-ascii key", KV, IN("t=1 t\xc3\xa9=2\n"), {{0}}, .syntax = 1},
	{"kv bad line between good ones", KV, IN("t=1\nhello world\nh=2\n"), {NUM("t", 1), NUM("h", 2)},
	 .syntax = 1, .frames = 2},
	{"kv key twice (issue #10)", KV, IN("t=1 t=2\nh=3\n"), {NUM("h", 3)}, .syntax = 1, .frames = 1},
	{"kv key twice, same value", KV, IN("t=1,h=2;t:1\n"), {{0}}, .syntax = 1},
	{"kv key twice, one empty", KV, IN("t= t=5\n"), {{0}}, .syntax = 1},
	{"kv keys differing in case are two", KV, IN("t=1 T=2\n"), {NUM("t", 1), NUM("T", 2)}, .frames = 1},
	{"kv 16 distinct keys", KV, IN("a=1 b=1 c=1 d=1 e=1 f=1 g=1 h=1 i=1 j=1 k=1 l=1 m=1 n=1 o=1 p=1\n"),
	 {NUM("a", 1), NUM("b", 1), NUM("c", 1), NUM("d", 1), NUM("e", 1), NUM("f", 1), NUM("g", 1), NUM("h", 1),
	  NUM("i", 1), NUM("j", 1), NUM("k", 1), NUM("l", 1), NUM("m", 1), NUM("n", 1), NUM("o", 1), NUM("p", 1)},
	 .frames = 1},
	{"NUL byte", KV, IN("t=1\0\nh=2\n"), {NUM("h", 2)}, .garbage = 1, .frames = 1},
	{"NUL byte alone", KV, IN("\0\r\n"), {{0}}, .garbage = 1},
	{"invalid utf-8 byte", KV, IN("s=\xff\nh=2\n"), {NUM("h", 2)}, .garbage = 1, .frames = 1},
	{"overlong utf-8 form", KV, IN("s=\xc0\xaf\n"), {{0}}, .garbage = 1},
	{"utf-8 surrogate", KV, IN("s=\xed\xa0\x80\n"), {{0}}, .garbage = 1},
	{"utf-8 above U+10FFFF", KV, IN("s=\xf4\x90\x80\x80\n"), {{0}}, .garbage = 1},
	{"truncated utf-8 at line end", KV, IN("s=\xe2\x82\n"), {{0}}, .garbage = 1},
	{"stray continuation byte", KV, IN("s=a\x80z\n"), {{0}}, .garbage = 1},
	{"4-byte utf-8 ok", KV, IN("s=\xf0\x9f\x98\x80\n"), {STR("s", "\xf0\x9f\x98\x80")}, .frames = 1},
};

static void test_kv(void **state)
{
	(void)state;
	run_table(kv_cases, sizeof(kv_cases) / sizeof(kv_cases[0]));
}

/* ---- json ------------------------------------------------------------------------------------- */

static const struct lines_case json_cases[] = {
	{"json flat", JSON, IN("{\"t\":21.4,\"h\":40,\"ok\":true,\"bad\":false,\"n\":null,\"name\":\"x\"}\n"),
	 {NUM("t", 21.4), NUM("h", 40), NUM("ok", 1), NUM("bad", 0), STR("name", "x")}, .frames = 1},
	{"json whitespace", JSON, IN("  { \"t\" : 1 ,\t\"h\":2 }  \r\n"), {NUM("t", 1), NUM("h", 2)}, .frames = 1},
	{"json nested flattened", JSON, IN("{\"a\":{\"b\":1,\"c\":{\"d\":\"x\"}},\"e\":2}\n"),
	 {NUM("a.b", 1), STR("a.c.d", "x"), NUM("e", 2)}, .frames = 1},
	{"json arrays skipped", JSON, IN("{\"arr\":[1,\"two\",{\"x\":1},[],[null,true]],\"t\":1}\n"), {NUM("t", 1)},
	 .frames = 1},
	{"json empty object", JSON, IN("{}\n"), {{0}}, .frames = 1},
	{"json empty nested object", JSON, IN("{\"a\":{},\"b\":1}\n"), {NUM("b", 1)}, .frames = 1},
	{"json numbers", JSON, IN("{\"a\":-0.5,\"b\":1e3,\"c\":2E-2,\"d\":0,\"e\":-0,\"f\":1.5e+2}\n"),
	 {NUM("a", -0.5), NUM("b", 1000), NUM("c", 0.02), NUM("d", 0), NUM("e", 0), NUM("f", 150)}, .frames = 1},
	{"json escapes", JSON, IN("{\"s\":\"a\\\"b\\\\c\\/d\\n\\t\\r\\b\\f\"}\n"), {STR("s", "a\"b\\c/d\n\t\r\b\f")},
	 .frames = 1},
	{"json unicode escapes", JSON, IN("{\"s\":\"\\u00b0C \\u20AC \\ud83d\\ude00 \\u0041\"}\n"),
	 {STR("s", "\xc2\xb0" "C \xe2\x82\xac \xf0\x9f\x98\x80 A")}, .frames = 1},
	{"json escaped key", JSON, IN("{\"\\u0074\":1}\n"), {NUM("t", 1)}, .frames = 1},
	{"json raw utf-8 in string", JSON, IN("{\"u\":\"\xc2\xb0" "C\"}\n"), {STR("u", "\xc2\xb0" "C")}, .frames = 1},
	{"json number-looking string stays string", JSON, IN("{\"v\":\"21.5\"}\n"), {STR("v", "21.5")}, .frames = 1},
	{"json depth 8", JSON,
	 IN("{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":1}}}}}}}}\n"), {NUM("a.a.a.a.a.a.a.a", 1)},
	 .frames = 1},
	{"json depth 9", JSON,
	 IN("{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":1}}}}}}}}}\n"), {{0}}, .syntax = 1},
	{"json arrays at depth 8", JSON, IN("{\"x\":[[[[[[[1]]]]]]],\"t\":2}\n"), {NUM("t", 2)}, .frames = 1},
	{"json arrays at depth 9", JSON, IN("{\"x\":[[[[[[[[1]]]]]]]],\"t\":2}\n"), {{0}}, .syntax = 1},
	{"json 64-char path", JSON,
	 IN("{\"abcdefghij0123456789abcdefghij\":{\"abcdefghij0123456789abcdefghij-12\":5}}\n"),
	 {NUM("abcdefghij0123456789abcdefghij.abcdefghij0123456789abcdefghij-12", 5)}, .frames = 1},
	{"json 65-char path", JSON,
	 IN("{\"abcdefghij0123456789abcdefghij\":{\"abcdefghij0123456789abcdefghij-123\":5}}\n"), {{0}},
	 .syntax = 1},
	{"json invalid key", JSON, IN("{\"t\":1,\"a b\":2}\n"), {{0}}, .syntax = 1},
	{"json empty key", JSON, IN("{\"\":2}\n"), {{0}}, .syntax = 1},
	{"json bad value after good ones emits nothing", JSON, IN("{\"t\":1,\"h\":}\n{\"p\":3}\n"), {NUM("p", 3)},
	 .syntax = 1, .frames = 1},
	{"json unterminated object", JSON, IN("{\"t\":1\n"), {{0}}, .syntax = 1},
	{"json trailing comma", JSON, IN("{\"t\":1,}\n"), {{0}}, .syntax = 1},
	{"json unquoted key", JSON, IN("{t:1}\n"), {{0}}, .syntax = 1},
	{"json top-level array", JSON, IN("[1,2]\n"), {{0}}, .syntax = 1},
	{"json top-level number", JSON, IN("42\n"), {{0}}, .syntax = 1},
	{"json kv line", JSON, IN("t=1\n"), {{0}}, .syntax = 1},
	{"json leading zero", JSON, IN("{\"t\":01}\n"), {{0}}, .syntax = 1},
	{"json bare dot", JSON, IN("{\"t\":1.}\n"), {{0}}, .syntax = 1},
	{"json leading dot", JSON, IN("{\"t\":.5}\n"), {{0}}, .syntax = 1},
	{"json bare exponent", JSON, IN("{\"t\":1e}\n"), {{0}}, .syntax = 1},
	{"json plus sign", JSON, IN("{\"t\":+1}\n"), {{0}}, .syntax = 1},
	{"json lone minus", JSON, IN("{\"t\":-}\n"), {{0}}, .syntax = 1},
	{"json number overflow", JSON, IN("{\"t\":1e999}\n"), {{0}}, .syntax = 1},
	{"json data after object", JSON, IN("{\"t\":1} x\n"), {{0}}, .syntax = 1},
	{"json two objects", JSON, IN("{\"t\":1}{\"h\":2}\n"), {{0}}, .syntax = 1},
	{"json bad literal", JSON, IN("{\"t\":tru}\n"), {{0}}, .syntax = 1},
	{"json literal with tail", JSON, IN("{\"t\":truex}\n"), {{0}}, .syntax = 1},
	{"json NaN literal", JSON, IN("{\"t\":NaN}\n"), {{0}}, .syntax = 1},
	{"json unterminated string", JSON, IN("{\"t\":\"abc}\n"), {{0}}, .syntax = 1},
	{"json raw tab in string", JSON, IN("{\"t\":\"a\tb\"}\n"), {{0}}, .syntax = 1},
	{"json bad escape", JSON, IN("{\"t\":\"\\x41\"}\n"), {{0}}, .syntax = 1},
	{"json short \\u escape", JSON, IN("{\"t\":\"\\u12\"}\n"), {{0}}, .syntax = 1},
	{"json lone high surrogate", JSON, IN("{\"t\":\"\\ud83d\"}\n"), {{0}}, .syntax = 1},
	{"json high surrogate then non-low", JSON, IN("{\"t\":\"\\ud83d\\u0041\"}\n"), {{0}}, .syntax = 1},
	{"json lone low surrogate", JSON, IN("{\"t\":\"\\ude00\"}\n"), {{0}}, .syntax = 1},
	{"json \\u0000", JSON, IN("{\"t\":\"a\\u0000b\"}\n"), {{0}}, .syntax = 1},
	{"json missing colon", JSON, IN("{\"t\" 1}\n"), {{0}}, .syntax = 1},
	{"json missing comma", JSON, IN("{\"t\":1 \"h\":2}\n"), {{0}}, .syntax = 1},
	{"json unclosed array", JSON, IN("{\"a\":[1,2}\n"), {{0}}, .syntax = 1},
	{"json invalid inside skipped array", JSON, IN("{\"a\":[1,x],\"t\":1}\n"), {{0}}, .syntax = 1},
	{"json garbage byte", JSON, IN("{\"t\":\"\xfe\"}\n"), {{0}}, .garbage = 1},
	{"json member twice (issue #10)", JSON, IN("{\"t\":1,\"t\":2}\n{\"h\":3}\n"), {NUM("h", 3)}, .syntax = 1,
	 .frames = 1},
	{"json member twice through an escape", JSON, IN("{\"t\":1,\"\\u0074\":2}\n"), {{0}}, .syntax = 1},
	{"json nested member twice", JSON, IN("{\"a\":{\"b\":1,\"b\":2}}\n"), {{0}}, .syntax = 1},
	{"json object member twice", JSON, IN("{\"a\":{\"x\":1},\"a\":{\"y\":2}}\n"), {{0}}, .syntax = 1},
	{"json null member twice", JSON, IN("{\"a\":null,\"a\":1}\n"), {{0}}, .syntax = 1},
	{"json flattened names collide", JSON, IN("{\"env.h\":1,\"env\":{\"h\":2}}\n"), {{0}}, .syntax = 1},
	{"json same name at two levels", JSON, IN("{\"a\":{\"a\":1},\"b\":{\"a\":2}}\n"),
	 {NUM("a.a", 1), NUM("b.a", 2)}, .frames = 1},
	{"json objects in an array not checked", JSON, IN("{\"x\":[{\"b\":1,\"b\":2}],\"t\":1}\n"), {NUM("t", 1)},
	 .frames = 1},
	{"json split objects, LF CRLF CR", JSON, IN("{\"a\":1}\n{\"b\":2}\r\n{\"c\":3}\r"),
	 {NUM("a", 1), NUM("b", 2), NUM("c", 3)}, .frames = 3},
};

static void test_json(void **state)
{
	(void)state;
	run_table(json_cases, sizeof(json_cases) / sizeof(json_cases[0]));
}

/* ---- csv -------------------------------------------------------------------------------------- */

static const struct lines_case csv_cases[] = {
	{"csv three columns", CSV, IN("21.4,40.2,1012.8\n"), {NUM("t", 21.4), NUM("h", 40.2), NUM("p", 1012.8)},
	 .frames = 1},
	{"csv empty cell skipped", CSV, IN("21.4,,1012.8\r\n"), {NUM("t", 21.4), NUM("p", 1012.8)}, .frames = 1},
	{"csv all cells empty", CSV, IN(",,\n"), {{0}}, .frames = 1},
	{"csv blanks trimmed, strings", CSV, IN(" 21.4 , 40.2\t,ok go \n"),
	 {NUM("t", 21.4), NUM("h", 40.2), STR("p", "ok go")}, .frames = 1},
	{"csv too few cells", CSV, IN("21.4,40.2\n"), {{0}}, .syntax = 1},
	{"csv too many cells", CSV, IN("1,2,3,4\n"), {{0}}, .syntax = 1},
	{"csv trailing separator", CSV, IN("1,2,3,\n"), {{0}}, .syntax = 1},
	{"csv single cell", CSV, IN("1\n"), {{0}}, .syntax = 1},
	{"csv good bad good", CSV, IN("1,2,3\n1,2\r\n4,5,6\r"),
	 {NUM("t", 1), NUM("h", 2), NUM("p", 3), NUM("t", 4), NUM("h", 5), NUM("p", 6)}, .syntax = 1, .frames = 2},
	{"csv semicolon separator", "format = \"csv\"; columns = (\"t\", \"h\", \"p\"); separator = \";\";",
	 IN("1;2,5;3\n"), {NUM("t", 1), STR("h", "2,5"), NUM("p", 3)}, .frames = 1},
	{"csv tab separator keeps spaces", "format = \"csv\"; columns = [\"a\", \"b\"]; separator = \"\\t\";",
	 IN("1\t 2 \n"), {NUM("a", 1), NUM("b", 2)}, .frames = 1},
	{"csv space separator", "format = \"csv\"; columns = (\"a\", \"b\"); separator = \" \";", IN("1 2\n"),
	 {NUM("a", 1), NUM("b", 2)}, .frames = 1},
	{"csv one column", "format = \"csv\"; columns = (\"co2\");", IN("415\n\n416\n"),
	 {NUM("co2", 415), NUM("co2", 416)}, .frames = 2},
	{"csv NUL byte", CSV, IN("1,\0,3\n"), {{0}}, .garbage = 1},
};

static void test_csv(void **state)
{
	(void)state;
	run_table(csv_cases, sizeof(csv_cases) / sizeof(csv_cases[0]));
}

/* ---- overlong lines --------------------------------------------------------------------------- */

/* Build PREFIX + N copies of FILL + SUFFIX into a fresh buffer; returns its length. */
static size_t build(char **ret, const char *prefix, char fill, size_t n, const char *suffix)
{
	size_t lp = strlen(prefix), ls = strlen(suffix);
	char *b = malloc(lp + n + ls + 1);

	assert_non_null(b);
	memcpy(b, prefix, lp);
	memset(b + lp, fill, n);
	memcpy(b + lp + n, suffix, ls + 1);
	*ret = b;
	return lp + n + ls;
}

static void test_overlong(void **state)
{
	char *in, *v1022;
	struct lines_case c;

	(void)state;
	v1022 = malloc(1023);
	assert_non_null(v1022);
	memset(v1022, 'v', 1022);
	v1022[1022] = '\0';

	c = (struct lines_case){"overlong then valid", KV, NULL, 0, {NUM("t", 1)}, .overlong = 1, .frames = 1};
	c.input_len = build(&in, "", 'x', 1500, "\nt=1\n");
	c.input = in;
	run_case(&c);
	free(in);

	c = (struct lines_case){"exactly 1024 bytes is fine", KV, NULL, 0, {STR("k", v1022)}, .frames = 1};
	c.input_len = build(&in, "k=", 'v', 1022, "\r\n");
	c.input = in;
	run_case(&c);
	free(in);

	c = (struct lines_case){"1025 bytes is overlong", KV, NULL, 0, {NUM("h", 2)}, .overlong = 1, .frames = 1};
	c.input_len = build(&in, "k=", 'v', 1023, "\r\nh=2\r\n");
	c.input = in;
	run_case(&c);
	free(in);

	c = (struct lines_case){"1024 bytes of junk is a syntax error, not overlong", KV, NULL, 0, {{0}}, .syntax = 1};
	c.input_len = build(&in, "", 'x', 1024, "\n");
	c.input = in;
	run_case(&c);
	free(in);

	c = (struct lines_case){"two overlong lines, CRLF, counted once each", KV, NULL, 0, {NUM("t", 1)},
				.overlong = 2, .frames = 1};
	{
		char *a, *b;
		size_t la = build(&a, "", 'x', 3000, "\r\n");
		size_t lb = build(&b, "", 'y', 1025, "\r\nt=1\r\n");

		in = malloc(la + lb);
		assert_non_null(in);
		memcpy(in, a, la);
		memcpy(in + la, b, lb);
		free(a);
		free(b);
		c.input = in;
		c.input_len = la + lb;
	}
	run_case(&c);
	free(in);

	c = (struct lines_case){"overlong with NUL and bad utf-8 is only overlong", KV, NULL, 0, {NUM("t", 1)},
				.overlong = 1, .frames = 1};
	c.input_len = build(&in, "\xff", '\0', 2000, "\rt=1\r");
	c.input = in;
	run_case(&c);
	free(in);

	c = (struct lines_case){"overlong json line", JSON, NULL, 0, {NUM("t", 1)}, .overlong = 1, .frames = 1};
	c.input_len = build(&in, "{\"s\":\"", 'a', 1100, "\"}\n{\"t\":1}\n");
	c.input = in;
	run_case(&c);
	free(in);

	free(v1022);
}

/* ---- reset ------------------------------------------------------------------------------------ */

static void test_reset(void **state)
{
	struct run *run;
	char *big;

	(void)state;
	/* A partial line is dropped by reset(). */
	run = run_new(KV);
	feed(run, "t=99 h=", 7);
	sg_driver_lines.reset(&run->dev);
	feed(run, "p=5\n", 4);
	assert_int_equal(run->cap.n, 1);
	assert_string_equal(run->cap.r[0].field, "p");
	assert_true(run->cap.r[0].number == 5);
	run_free(run);

	/* An overlong line in progress is forgotten too: the next line parses. */
	run = run_new(KV);
	build(&big, "", 'x', 1500, "");
	feed(run, big, 1500);
	assert_int_equal(run->cap.fails[SG_FAIL_OVERLONG], 1);
	sg_driver_lines.reset(&run->dev);
	feed(run, "t=1\n", 4);
	assert_int_equal(run->cap.n, 1);
	assert_string_equal(run->cap.r[0].field, "t");
	assert_int_equal(run->cap.fails[SG_FAIL_OVERLONG], 1);
	free(big);
	run_free(run);

	/* After a reset the state carries nothing: a pending CR does not swallow the next LF's line. */
	run = run_new(KV);
	feed(run, "a=1\r", 4);
	sg_driver_lines.reset(&run->dev);
	feed(run, "b=2\n", 4);
	assert_int_equal(run->cap.n, 2);
	assert_string_equal(run->cap.r[1].field, "b");
	run_free(run);

	/* Without options (dev->opts NULL) the driver behaves as kv. */
	run = run_new(KV);
	run->dev.opts = NULL;
	feed(run, "t=3\n", 4);
	assert_int_equal(run->cap.n, 1);
	assert_true(run->cap.r[0].number == 3);
	run_free(run);
}

/* ---- parse_options ---------------------------------------------------------------------------- */

struct opt_case {
	const char *legend;
	const char *config;
	int rc;
	int line;          /* expected err.line when rc < 0 */
	const char *msg;   /* substring expected in err.msg */
};

static const struct opt_case opt_cases[] = {
	{"no options: kv", "  name = \"x\";\n", 0, 0, NULL},
	{"kv explicit", "  format = \"kv\";\n", 0, 0, NULL},
	{"json", "  format = \"json\";\n", 0, 0, NULL},
	{"csv list", "  format = \"csv\";\n  columns = (\"t\", \"h\");\n  separator = \";\";\n", 0, 0,
	 NULL},
	{"csv array", "  format = \"csv\";\n  columns = [\"t\"];\n", 0, 0, NULL},
	{"unknown format", "  name = \"x\";\n  format = \"xml\";\n", -EINVAL, 3,
	 "\"format\" must be one of \"kv\", \"json\", \"csv\""},
	{"format not a string", "  format = 5;\n", -EINVAL, 2, "\"format\" must be a string"},
	{"columns with kv", "  format = \"kv\";\n\n  columns = (\"t\");\n", -EINVAL, 4, "csv"},
	{"columns without format", "  columns = (\"t\");\n", -EINVAL, 2, "columns"},
	{"separator with json", "  format = \"json\";\n  separator = \";\";\n", -EINVAL, 3,
	 "separator"},
	{"csv without columns", "  name = \"x\";\n  format = \"csv\";\n", -EINVAL, 3, "columns"},
	{"columns not a list", "  format = \"csv\";\n  columns = \"t,h\";\n", -EINVAL, 3, "list"},
	{"columns a group", "  format = \"csv\";\n  columns = { t = 1; };\n", -EINVAL, 3, "list"},
	{"columns empty", "  format = \"csv\";\n  columns = ();\n", -EINVAL, 3, "at least one"},
	{"column not a string", "  format = \"csv\";\n  columns = (\"t\",\n    5);\n", -EINVAL, 4,
	 "entry 2"},
	{"column bad name", "  format = \"csv\";\n  columns = (\n    \"t\",\n    \"bad name\");\n",
	 -EINVAL, 5, "bad name"},
	{"column empty name", "  format = \"csv\";\n  columns = (\"\");\n", -EINVAL, 3, "field name"},
	{"column 65 chars",
	 "  format = \"csv\";\n  columns = "
	 "(\"k2345678901234567890123456789012345678901234567890123456789012345\");\n",
	 -EINVAL, 3, "field name"},
	{"column twice", "  format = \"csv\";\n  columns = (\"t\", \"h\",\n \"t\");\n", -EINVAL, 4,
	 "twice"},
	{"separator two chars", "  format = \"csv\";\n  columns = (\"t\");\n  separator = \";;\";\n",
	 -EINVAL, 4, "single character"},
	{"separator empty", "  format = \"csv\";\n  columns = (\"t\");\n  separator = \"\";\n",
	 -EINVAL, 4, "single character"},
	{"separator not a string", "  format = \"csv\";\n  columns = (\"t\");\n  separator = 44;\n",
	 -EINVAL, 4, "single character"},
	{"separator newline", "  format = \"csv\";\n  columns = (\"t\");\n  separator = \"\\n\";\n",
	 -EINVAL, 4, "line end"},
};

static void test_parse_options(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(opt_cases) / sizeof(opt_cases[0]); i++) {
		const struct opt_case *c = &opt_cases[i];
		struct sg_opt_error err = {.line = -1};
		void *opts = (void *)&err; /* must stay untouched on failure */
		int r;

		r = opts_fixture_parse(&sg_driver_lines, c->config, &opts, &err);
		if (r != c->rc)
			fail_msg("%s: rc %d, expected %d (%s)", c->legend, r, c->rc, err.msg);
		if (r == 0) {
			assert_non_null(opts);
			assert_ptr_not_equal(opts, &err);
			sg_driver_lines.free_options(opts);
			continue;
		}
		assert_ptr_equal(opts, &err);
		if (err.line != c->line)
			fail_msg("%s: line %d, expected %d (%s)", c->legend, err.line, c->line, err.msg);
		if (!strstr(err.msg, c->msg))
			fail_msg("%s: message \"%s\" lacks \"%s\"", c->legend, err.msg, c->msg);
	}
}

/* 64 columns are accepted, 65 refused. */
static void test_parse_options_column_limit(void **state)
{
	char text[2048];
	struct sg_opt_error err = {0};
	void *opts = NULL;

	(void)state;
	for (int n = 64; n <= 65; n++) {
		size_t off = (size_t)snprintf(text, sizeof(text), "  format = \"csv\";\n  columns = (");

		for (int i = 0; i < n; i++)
			off += (size_t)snprintf(text + off, sizeof(text) - off, "%s\"c%d\"", i ? ", " : "", i);
		snprintf(text + off, sizeof(text) - off, ");\n");
		opts = NULL;
		if (n == 64) {
			assert_int_equal(opts_fixture_parse(&sg_driver_lines, text, &opts, &err), 0);
			assert_non_null(opts);
			sg_driver_lines.free_options(opts);
		} else {
			assert_int_equal(opts_fixture_parse(&sg_driver_lines, text, &opts, &err), -EINVAL);
			assert_null(opts);
			assert_int_equal(err.line, 3);
			assert_non_null(strstr(err.msg, "at most 64"));
		}
	}
}

/* ---- descriptor and registry ------------------------------------------------------------------ */

static void test_descriptor(void **state)
{
	const struct sg_driver *d = &sg_driver_lines;
	static const char *const keys[] = {"format", "columns", "separator"};
	size_t n;

	(void)state;
	assert_string_equal(d->name, "lines");
	assert_non_null(d->description);
	assert_int_equal(d->bus, SG_BUS_SERIAL);
	assert_int_equal(d->default_baud, 9600);
	assert_null(d->fields);
	assert_non_null(d->option_keys);
	for (n = 0; d->option_keys[n]; n++) {
		assert_true(n < 3);
		assert_string_equal(d->option_keys[n], keys[n]);
	}
	assert_int_equal(n, 3);
	assert_non_null(d->parse_options);
	assert_non_null(d->free_options);
	assert_non_null(d->feed);
	assert_non_null(d->reset);
	assert_null(d->poll);
	assert_true(d->state_size >= 1024);

	assert_ptr_equal(sg_driver_find("lines"), &sg_driver_lines);
	assert_null(sg_driver_find("Lines"));
	assert_null(sg_driver_find("nope"));
	assert_null(sg_driver_find(NULL));
	for (n = 0; sg_drivers[n]; n++)
		if (sg_drivers[n] == &sg_driver_lines)
			break;
	assert_non_null(sg_drivers[n]);
}

static void test_fail_names(void **state)
{
	static const char *const names[SG_FAIL_MAX_] = {
		[SG_FAIL_OVERLONG] = "overlong", [SG_FAIL_GARBAGE] = "garbage", [SG_FAIL_SYNTAX] = "syntax",
		[SG_FAIL_CHECKSUM] = "checksum", [SG_FAIL_INSANE] = "insane",   [SG_FAIL_IO] = "io",
		[SG_FAIL_NODEV] = "nodev",       [SG_FAIL_TIMEOUT] = "timeout",  [SG_FAIL_LOST] = "lost",
	};

	(void)state;
	for (int f = 0; f < SG_FAIL_MAX_; f++) {
		assert_non_null(names[f]);
		assert_string_equal(sg_fail_name((enum sg_fail)f), names[f]);
	}
	assert_string_equal(sg_fail_name(SG_FAIL_MAX_), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_overlong),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_parse_options),
		cmocka_unit_test(test_parse_options_column_limit),
		cmocka_unit_test(test_descriptor),
		cmocka_unit_test(test_fail_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
