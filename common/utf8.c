/* SPDX-License-Identifier: MIT */
/*
 * utf8.c — strict UTF-8 (see utf8.h). The table of well-formed byte
 * sequences is RFC 3629 §4's: the second byte's range narrows after E0
 * (A0..BF: no overlong 3-byte forms), ED (80..9F: no surrogates), F0
 * (90..BF: no overlong 4-byte forms) and F4 (80..8F: nothing above U+10FFFF);
 * C0, C1 and F5..FF never occur.
 */
#include "utf8.h"

size_t sg_utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c, lo = 0x80, hi = 0xbf;
	size_t n;

	if (!len)
		return 0;
	c = s[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (len < 2 || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) /* stops at the first byte that is not a continuation: a NUL, say */
		if (i >= len || s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

bool sg_utf8_valid(const void *s, size_t n)
{
	const unsigned char *p = s;
	size_t i = 0;

	while (i < n) {
		size_t k;

		if (p[i] < 0x80) { /* the common case, without a call */
			i++;
			continue;
		}
		k = sg_utf8_seq(p + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

size_t sg_utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}
