/* SPDX-License-Identifier: MIT */
/*
 * options.c — typed configuration keys read and checked, with one wording
 * for their errors (options.h). Used by config.c for its own keys and by the
 * drivers' parse_options().
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

int sg_opt_fail(struct sg_opt_error *err, const config_setting_t *at, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->line = at ? (int)config_setting_source_line(at) : 0;
		err->at = at;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const config_setting_t *member(const config_setting_t *g, const char *key)
{
	return g ? config_setting_get_member(g, key) : NULL;
}

int sg_opt_string(const config_setting_t *g, const char *key, const char **out, struct sg_opt_error *err)
{
	const config_setting_t *s = member(g, key);

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return sg_opt_fail(err, s, "\"%s\" must be a string", key);
	*out = config_setting_get_string(s);
	return 0;
}

int sg_opt_string_len(const config_setting_t *g, const char *key, size_t max, const char **out,
                      struct sg_opt_error *err)
{
	const char *v = NULL;
	int r = sg_opt_string(g, key, &v, err);

	if (r < 0 || !v)
		return r;
	if (!*v || strlen(v) > max)
		return sg_opt_fail(err, member(g, key), "\"%s\" must be 1..%zu characters", key, max);
	*out = v;
	return 0;
}

int sg_opt_string_dup(const config_setting_t *g, const char *key, char **out, struct sg_opt_error *err)
{
	const char *v = NULL;
	char *c;
	int r = sg_opt_string(g, key, &v, err);

	if (r < 0 || !v)
		return r;
	c = strdup(v);
	if (!c)
		return -ENOMEM;
	free(*out);
	*out = c;
	return 0;
}

int sg_opt_int(const config_setting_t *g, const char *key, long long lo, long long hi, int *out,
               struct sg_opt_error *err)
{
	const config_setting_t *s = member(g, key);
	long long v;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
		return sg_opt_fail(err, s, "\"%s\" must be an integer", key);
	v = config_setting_get_int64(s);
	if (v < lo || v > hi)
		return sg_opt_fail(err, s, "\"%s\" must be between %lld and %lld", key, lo, hi);
	*out = (int)v;
	return 0;
}

int sg_opt_number(const config_setting_t *s, const char *what, double *out, struct sg_opt_error *err)
{
	double v;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = (double)config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_FLOAT:
		v = config_setting_get_float(s);
		break;
	default:
		return sg_opt_fail(err, s, "%s must be a number", what);
	}
	if (!isfinite(v))
		return sg_opt_fail(err, s, "%s must be a finite number", what);
	*out = v;
	return 0;
}

static int double_range(const config_setting_t *g, const char *key, double lo, double hi, bool lo_open,
                        double *out, struct sg_opt_error *err)
{
	const config_setting_t *s = member(g, key);
	char what[80];
	double v;
	int r;

	if (!s)
		return 0;
	snprintf(what, sizeof(what), "\"%s\"", key);
	if ((r = sg_opt_number(s, what, &v, err)) < 0)
		return r;
	if ((lo_open ? v <= lo : v < lo) || v > hi) {
		if (isinf(hi))
			return sg_opt_fail(err, s, "\"%s\" must be %s %g", key, lo_open ? "greater than" : "at least", lo);
		if (lo_open)
			return sg_opt_fail(err, s, "\"%s\" must be greater than %g and at most %g", key, lo, hi);
		return sg_opt_fail(err, s, "\"%s\" must be between %g and %g", key, lo, hi);
	}
	*out = v;
	return 0;
}

int sg_opt_double(const config_setting_t *g, const char *key, double lo, double hi, double *out,
                  struct sg_opt_error *err)
{
	return double_range(g, key, lo, hi, false, out, err);
}

int sg_opt_double_above(const config_setting_t *g, const char *key, double lo, double hi, double *out,
                        struct sg_opt_error *err)
{
	return double_range(g, key, lo, hi, true, out, err);
}

int sg_opt_bool(const config_setting_t *g, const char *key, bool *out, struct sg_opt_error *err)
{
	const config_setting_t *s = member(g, key);

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return sg_opt_fail(err, s, "\"%s\" must be a boolean (true or false)", key);
	*out = config_setting_get_bool(s);
	return 0;
}

void sg_opt_quote_list(char *buf, size_t len, const char *const *names)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; names[i] && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s\"%s\"", i ? ", " : "", names[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

int sg_opt_enum(const config_setting_t *g, const char *key, const char *const *names, int *out,
                struct sg_opt_error *err)
{
	const char *v = NULL;
	char list[256];
	int r = sg_opt_string(g, key, &v, err);

	if (r < 0 || !v)
		return r;
	for (int i = 0; names[i]; i++) {
		if (strcmp(names[i], v) == 0) {
			*out = i;
			return 0;
		}
	}
	sg_opt_quote_list(list, sizeof(list), names);
	return sg_opt_fail(err, member(g, key), "\"%s\" must be one of %s", key, list);
}

int sg_opt_require(const config_setting_t *g, const char *key, struct sg_opt_error *err, const char *what_fmt, ...)
{
	char what[400];
	va_list ap;

	if (member(g, key))
		return 0;
	va_start(ap, what_fmt);
	vsnprintf(what, sizeof(what), what_fmt, ap);
	va_end(ap);
	return sg_opt_fail(err, g, "%s needs \"%s\"", what, key);
}

int sg_opt_only_if(const config_setting_t *g, const char *key, bool cond, const char *what,
                   struct sg_opt_error *err)
{
	const config_setting_t *s = member(g, key);

	if (!cond && s)
		return sg_opt_fail(err, s, "\"%s\" applies only to %s", key, what);
	return 0;
}
