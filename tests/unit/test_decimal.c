/* SPDX-License-Identifier: MIT */
/*
 * test_decimal.c — sg_decimal_parse() reads every text exactly as strtod()
 * does (same verdict, same bits), on the decimals sensors print and on the
 * texts its fast path must hand over; and a text it calls canonical is
 * exactly what mapper_format_number() prints for that value, so publishing
 * it as it came changes nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/decimal.h"
#include "gateway/mapper.h"

/* strtod()'s verdict, the way the lines driver took it before sg_decimal_parse() */
static bool reference(const char *text, double *ret)
{
	char *end;

	if (!*text)
		return false;
	*ret = strtod(text, &end);
	return end != text && !*end && isfinite(*ret);
}

/* Returns the canonical flag. */
static bool check(const char *text, unsigned *fails)
{
	double got = 0, want = 0;
	bool canonical = true;
	bool g = sg_decimal_parse(text, &got, &canonical), w = reference(text, &want);
	char printed[64];

	if (g != w || (w && memcmp(&got, &want, sizeof(got)) != 0)) {
		if (++*fails <= 10)
			print_error("\"%s\": %s %.17g, strtod: %s %.17g\n", text, g ? "number" : "not", got,
			            w ? "number" : "not", want);
	}
	if (g && canonical && (mapper_format_number(printed, sizeof(printed), got, -1) < 0 ||
	                       strcmp(printed, text) != 0)) {
		if (++*fails <= 10)
			print_error("\"%s\" called canonical, printed \"%s\"\n", text, printed);
	}
	return g && canonical;
}

static void test_canonical(void **state)
{
	static const struct {
		const char *text;
		bool canonical;
	} cases[] = {
		{"21.4", true},    {"-0.75", true},     {"0", true},          {"1013", true},   {"0.0001", true},
		{"123456789012345", true}, {"0.000123", true}, {"-12.5", true}, {"2.50", false}, {"007", false},
		{"-0", false},     {"+5", false},       {"0.0", false},       {"0.00001", false}, {"1e3", false},
		{"1234567890123456", false}, {"5.", false}, {" 5", false},    {"00.5", false},  {"-00", false},
	};
	unsigned fails = 0;
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (check(cases[i].text, &fails) != cases[i].canonical && ++fails <= 10)
			print_error("\"%s\": canonical should be %d\n", cases[i].text, cases[i].canonical);
	}
	assert_int_equal(fails, 0);
}

static void test_examples(void **state)
{
	static const char *const texts[] = {
		"21.4", "-0.75", "1013", "0", "-0", "+0", "+5.5", "-0.0", "007", "0.1", "0.30000000000000004",
		"123456789012345", "1234567890123456", "12345678901234567890", "999999999999999.9",
		"0.000000000000000000001", "0.0000000000000000000001234", "1.00000000000000000000000000001",
		"9007199254740993", "4503599627370497.5", "1e3", "1E-3", "2.5e+2", "0x10", "0x1p3", "inf", "-inf",
		"nan", "NaN", "infinity", " 5", "5 ", "\t5", "5\n", ".5", "5.", "-.5", "+", "-", "", ".", "1.2.3",
		"12a", "v1.2", "1,5", "--1", "+-1", "1e400", "-1e400", "1e-400", "4.9e-324", "2.2250738585072011e-308",
	};
	unsigned fails = 0;
	(void)state;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		check(texts[i], &fails);
	assert_int_equal(fails, 0);
}

/* Random plain decimals of 1 to 19 digits with 0 to 25 decimals, signs and leading zeros. */
static void test_random_decimals(void **state)
{
	uint64_t x = 0x9E3779B97F4A7C15ULL;
	unsigned fails = 0;
	char text[64];
	(void)state;

	for (int i = 0; i < 300000; i++) {
		size_t at = 0;
		int digits, point, zeros;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		digits = 1 + (int)(x % 19);
		point = (int)((x >> 8) % 26);
		zeros = (int)((x >> 16) % 4);
		if ((x >> 20) % 3 == 0)
			text[at++] = (x >> 22) & 1 ? '-' : '+';
		for (int z = 0; z < zeros; z++)
			text[at++] = '0';
		for (int d = 0; d < digits; d++) {
			uint64_t y = x * (uint64_t)(d + 1) * 0xBF58476D1CE4E5B9ULL;
			text[at++] = (char)('0' + (y >> 59) % 10);
			if (d == digits - 1 - point % digits && point && d != digits - 1)
				text[at++] = '.';
		}
		text[at] = '\0';
		check(text, &fails);
	}
	assert_int_equal(fails, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_examples),
		cmocka_unit_test(test_random_decimals),
		cmocka_unit_test(test_canonical),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
