/* SPDX-License-Identifier: MIT */
/*
 * test_common.c — the helpers below drivers/ and gateway/: common/utf8.c
 * against the well-formed byte sequences of RFC 3629 §4 (each boundary of the
 * table, a byte inside and outside it) and a round trip through every code
 * point; common/json.c's one escaping policy, case by case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_seq),
		cmocka_unit_test(test_utf8_round_trip),
		cmocka_unit_test(test_json_escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
