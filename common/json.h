/* SPDX-License-Identifier: MIT */
/*
 * json.h — the one JSON string escaper of the project: every JSON text
 * sensorgate writes (payloads, error and answer messages, Home Assistant
 * discovery) escapes its strings here, by one policy:
 *
 * - `"` and `\` are escaped; newline, carriage return and tab as `\n`, `\r`,
 *   `\t`; every other control character (U+0000..U+001F) and DEL (U+007F) as
 *   `\u00XX` (RFC 8259 §7 requires the controls; DEL is escaped too, so that
 *   no consumer's terminal or log sees it raw);
 * - valid UTF-8 (utf8.h) is copied as it is;
 * - each byte that is not part of valid UTF-8 becomes `\ufffd` (U+FFFD
 *   REPLACEMENT CHARACTER), so the output is always valid JSON in valid UTF-8.
 *
 * The output is cut only between whole escapes or characters.
 */
#ifndef SG_JSON_H
#define SG_JSON_H

#include <stdbool.h>
#include <stddef.h>

/*
 * S[0..LEN) as the body of a JSON string (no quotes) into OUT (OUTLEN bytes,
 * NUL-terminated when OUTLEN > 0): the length written. *RET_COMPLETE (may be
 * NULL) says whether all of S fitted.
 */
size_t sg_json_escape(const void *s, size_t len, char *out, size_t outlen, bool *ret_complete);

#endif
