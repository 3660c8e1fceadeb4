/* SPDX-License-Identifier: MIT */
/*
 * options.h — the one reader of typed configuration keys, for config.c's own
 * keys and for sensor and actuator drivers' parse_options() alike, so that
 * every key is checked and its errors are worded the same way wherever it
 * is read.
 *
 * Each reader looks up KEY in group G (G may be NULL: nothing is there) and
 * returns 0, or -EINVAL with *err filled, or -ENOMEM. An absent key is not
 * an error and leaves *out as it was. The messages name the key and what it
 * must be ("\"port\" must be a string"); the caller adds the file and line,
 * which *err carries (config.c: "file:line: message").
 *
 * No state, no logging; only sg_opt_string_dup() allocates.
 */
#ifndef SG_OPTIONS_H
#define SG_OPTIONS_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

/* Error text for option parsing: message plus the config line it refers to. */
struct sg_opt_error {
	int line;                     /* 0 = the device's own line */
	char msg[512];
	const config_setting_t *at;   /* the setting at fault, or NULL; valid while its config is */
};

/*
 * Fill *err (if not NULL) with setting AT (its line; 0 when AT is NULL) and
 * the formatted message; returns -EINVAL.
 */
int sg_opt_fail(struct sg_opt_error *err, const config_setting_t *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A string, borrowed: valid while the config is. */
int sg_opt_string(const config_setting_t *g, const char *key, const char **out, struct sg_opt_error *err);
/* A string of 1..MAX bytes, borrowed. */
int sg_opt_string_len(const config_setting_t *g, const char *key, size_t max, const char **out,
                      struct sg_opt_error *err);
/* A string, copied into *out (the old value freed). */
int sg_opt_string_dup(const config_setting_t *g, const char *key, char **out, struct sg_opt_error *err);
/* An integer in LO..HI. */
int sg_opt_int(const config_setting_t *g, const char *key, long long lo, long long hi, int *out,
               struct sg_opt_error *err);
/* Setting S as a finite number (integer or float); WHAT names it in the message. */
int sg_opt_number(const config_setting_t *s, const char *what, double *out, struct sg_opt_error *err);
/* A number (integer or float) in LO..HI; HI may be INFINITY. */
int sg_opt_double(const config_setting_t *g, const char *key, double lo, double hi, double *out,
                  struct sg_opt_error *err);
/* The same with LO itself excluded (intervals: greater than 0). */
int sg_opt_double_above(const config_setting_t *g, const char *key, double lo, double hi, double *out,
                        struct sg_opt_error *err);
int sg_opt_bool(const config_setting_t *g, const char *key, bool *out, struct sg_opt_error *err);
/* One of the strings of NAMES (NULL-terminated): its index. */
int sg_opt_enum(const config_setting_t *g, const char *key, const char *const *names, int *out,
                struct sg_opt_error *err);

/* KEY must be present: "WHAT needs \"KEY\"", WHAT formatted from WHAT_FMT ("device \"%s\""). */
int sg_opt_require(const config_setting_t *g, const char *key, struct sg_opt_error *err, const char *what_fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* KEY may be present only when COND holds: "\"KEY\" applies only to WHAT". */
int sg_opt_only_if(const config_setting_t *g, const char *key, bool cond, const char *what,
                   struct sg_opt_error *err);

/* "a", "b", "c" into BUF — for messages listing the accepted values. */
void sg_opt_quote_list(char *buf, size_t len, const char *const *names);

#endif
