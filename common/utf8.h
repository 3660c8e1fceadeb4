/* SPDX-License-Identifier: MIT */
/*
 * utf8.h — the one UTF-8 reader and writer of the project (drivers and
 * gateway alike).
 *
 * Strict UTF-8 as RFC 3629 §4 defines it: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF. MQTT's own stricter rules for
 * topics and properties (no U+0000, no control characters) are libmosquitto's
 * mosquitto_validate_utf8(), used where those rules are the ones wanted.
 * Pure functions: no state, no allocation, no logging.
 */
#ifndef SG_UTF8_H
#define SG_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the valid UTF-8 sequence at S, of which LEN bytes may be read; 0 if there is none. */
size_t sg_utf8_seq(const unsigned char *s, size_t len);

/* All N bytes at S are valid UTF-8 (a NUL byte counts as U+0000). */
bool sg_utf8_valid(const void *s, size_t n);

/* CP (at most U+10FFFF, not a surrogate) as UTF-8 into OUT, which has room for 4 bytes: the bytes written. */
size_t sg_utf8_put(uint32_t cp, char *out);

#endif
