/* SPDX-License-Identifier: MIT */
/* json.c — the JSON string escaper (see json.h for the policy). */
#include "json.h"

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
