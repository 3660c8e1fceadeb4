/* SPDX-License-Identifier: MIT */
/*
 * decimal.c — see decimal.h.
 *
 * A sensor line like "t=21.4 h=40.2 p=1012.8" is mostly plain decimals, and
 * glibc's strtod() spent about 500 instructions on each (multi-precision
 * arithmetic for the general case; README, Benchmarks). When the text is
 * [+-]digits[.digits] with at most 15 significant digits, its mantissa M is
 * an integer below 10^15 < 2^53 and its scale 10^F (F <= 22) a power of ten,
 * both exact in a double; IEEE division is correctly rounded, so M / 10^F is
 * the double nearest the decimal, which is what strtod() returns (this is
 * the fast path W. D. Clinger described in "How to Read Floating Point
 * Numbers Accurately", PLDI 1990). Anything else goes to strtod() itself.
 */
#include "decimal.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

const double sg_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static bool fast(const char *s, double *ret, bool *ret_canonical)
{
	bool neg = false, canonical = *s != '+', int_zero;
	uint64_t mant = 0;
	int sig = 0, frac = 0, frac_zeros = -1;
	const char *digits;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	digits = s;
	if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
		canonical = false; /* "007" */
	for (; *s >= '0' && *s <= '9'; s++) {
		if (mant || *s != '0')
			sig++;
		mant = mant * 10 + (uint64_t)(*s - '0');
		if (sig > 15)
			return false;
	}
	if (s == digits)
		return false; /* ".5", "inf", "" */
	int_zero = s - digits == 1 && digits[0] == '0';
	if (*s == '.') {
		digits = ++s;
		for (; *s >= '0' && *s <= '9'; s++) {
			if (!mant && *s != '0' && frac_zeros < 0)
				frac_zeros = frac; /* zeros between the point and the first digit of "0.000123" */
			if (mant || *s != '0')
				sig++;
			mant = mant * 10 + (uint64_t)(*s - '0');
			if (sig > 15 || ++frac > 22)
				return false;
		}
		if (s == digits)
			return false; /* "5.": strtod's, not ours */
		if (s[-1] == '0')
			canonical = false; /* "2.50", "0.0" */
		if (int_zero && frac_zeros > 3)
			canonical = false; /* below 1e-4: %.15g writes an exponent */
	}
	if (*s)
		return false; /* an exponent, a blank, anything else */
	if (neg && !mant)
		canonical = false; /* "-0" */
	if (ret_canonical)
		*ret_canonical = canonical;
	*ret = neg ? -((double)mant / sg_pow10[frac]) : (double)mant / sg_pow10[frac];
	return true;
}

bool sg_decimal_parse(const char *text, double *ret, bool *ret_canonical)
{
	char *end;
	double v;

	if (fast(text, ret, ret_canonical))
		return true;
	if (ret_canonical)
		*ret_canonical = false;
	if (!*text)
		return false;
	v = strtod(text, &end);
	if (end == text || *end || !isfinite(v))
		return false;
	*ret = v;
	return true;
}
