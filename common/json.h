/* SPDX-License-Identifier: MIT */
/*
 * json.h — JSON for the whole project: the one string escaper (writing)
 * and the one lexer and member walk (reading) under the two readers, the
 * lines driver's walk over a document's leaves and the command path's
 * member lookup.
 *
 * Writing. Every JSON text sensorgate writes (payloads, error and answer
 * messages, Home Assistant discovery) escapes its strings here, by one policy:
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

/*
 * Reading. A cursor over the JSON text [p, end), RFC 8259: the tokens are
 * read here, the structure (objects, arrays, what a reader keeps) by the
 * readers. Nothing is allocated. On failure `why` names what is wrong
 * ("json: bad escape"); the cursor is then somewhere inside the token.
 */
struct sg_json_in {
	const char *p, *end;
	const char *why;
};

/* Skip whitespace (RFC 8259 §2: space, tab, LF, CR). */
void sg_json_ws(struct sg_json_in *in);

/* The literal WORD ("true", "\\u") at the cursor: consumed and true, else false (nothing consumed, no why). */
bool sg_json_lit(struct sg_json_in *in, const char *word);

/*
 * The string at the cursor (on its opening quote), unescaped into OUT
 * (OUTLEN bytes, NUL-terminated; NULL: only checked) and its length in
 * *RET_LEN (may be NULL). \u escapes become UTF-8, surrogate pairs joined; a
 * lone surrogate, \u0000 (readers hand out C strings), a raw control
 * character or a bad escape is an error. 0; -EINVAL (why set); -E2BIG when
 * it did not fit in OUT (the whole string is consumed and checked anyway).
 */
int sg_json_string(struct sg_json_in *in, char *out, size_t outlen, size_t *ret_len);

/* The number at the cursor (RFC 8259 §6 grammar): consumed, 0; -EINVAL (why set). Its text is what was passed. */
int sg_json_number(struct sg_json_in *in);

/*
 * The members of an object, one at a time. With *OPEN false the cursor is
 * before the object (whitespace may come first). Each call steps over what
 * lies between two values: the '{' or the ',', the member's name (decoded
 * into NAME as sg_json_string() does, its length in *RET_LEN), the ':' and
 * whitespace; the caller then reads or skips the value before the next call.
 *
 *	bool open = false;
 *	while ((r = sg_json_member(&in, &open, name, sizeof(name), NULL)) > 0)
 *		(read the value of the member NAME);
 *
 * 1: the cursor is on the value of the member NAME; 0: the closing '}' was
 * consumed; -EINVAL (why set: "json: expected a key", "json: expected ':'",
 * "json: expected ',' or '}'", or the name's error) or -E2BIG (the name did
 * not fit in NAME; nothing is set then).
 */
int sg_json_member(struct sg_json_in *in, bool *open, char *name, size_t namelen, size_t *ret_len);

/* The elements of an array, one at a time, as sg_json_member() (no names): 1 on an element, 0 after the ']'. */
int sg_json_element(struct sg_json_in *in, bool *open);

#endif
