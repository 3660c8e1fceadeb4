/* SPDX-License-Identifier: MIT */
/*
 * act_options.c — helpers for actuator drivers' parse_options(): read one
 * key of the actuator group with its type and range checked, and word the
 * error as config.c words the errors of the common keys, so a user cannot
 * tell which part of the program checked a key.
 *
 * Ownership: strings are copied (the caller owns them and frees them in its
 * free_options()); nothing else is allocated. No state, no logging.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actuator.h"

int sg_act_opt_require(const config_setting_t *g, const char *key, const struct sg_act_common *common,
                       struct sg_opt_error *err)
{
	if (!config_setting_get_member(g, key))
		return sg_opt_fail(err, g, "actuator \"%.80s\" needs \"%s\"", common->name, key);
	return 0;
}

int sg_act_opt_only_if(const config_setting_t *g, const char *key, bool cond, const char *what,
                       struct sg_opt_error *err)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (!cond && s)
		return sg_opt_fail(err, s, "\"%s\" applies only to %s", key, what);
	return 0;
}

int sg_act_opt_string(const config_setting_t *g, const char *key, char **out, struct sg_opt_error *err)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	char *c;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return sg_opt_fail(err, s, "\"%s\" must be a string", key);
	c = strdup(config_setting_get_string(s));
	if (!c)
		return -ENOMEM;
	free(*out);
	*out = c;
	return 0;
}

int sg_act_opt_int(const config_setting_t *g, const char *key, long long lo, long long hi, int *out,
                   struct sg_opt_error *err)
{
	const config_setting_t *s = config_setting_get_member(g, key);
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

int sg_act_opt_bool(const config_setting_t *g, const char *key, bool *out, struct sg_opt_error *err)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return sg_opt_fail(err, s, "\"%s\" must be a boolean (true or false)", key);
	*out = config_setting_get_bool(s);
	return 0;
}

int sg_act_opt_double(const config_setting_t *g, const char *key, double lo, double hi, double *out,
                      struct sg_opt_error *err)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	double v;

	if (!s)
		return 0;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = (double)config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_FLOAT:
		v = config_setting_get_float(s);
		break;
	default:
		return sg_opt_fail(err, s, "\"%s\" must be a number", key);
	}
	if (!isfinite(v) || v < lo || v > hi)
		return sg_opt_fail(err, s, "\"%s\" must be between %g and %g", key, lo, hi);
	*out = v;
	return 0;
}

int sg_act_opt_enum(const config_setting_t *g, const char *key, const char *const *names, int *out,
                    struct sg_opt_error *err)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	char list[256];
	size_t at = 0;
	const char *v;

	if (!s)
		return 0;
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		v = config_setting_get_string(s);
		for (int i = 0; names[i]; i++)
			if (strcmp(names[i], v) == 0) {
				*out = i;
				return 0;
			}
	}
	list[0] = '\0';
	for (int i = 0; names[i] && at < sizeof(list); i++) {
		int n = snprintf(list + at, sizeof(list) - at, "%s\"%s\"", i ? ", " : "", names[i]);
		if (n < 0)
			break;
		at += (size_t)n;
	}
	return sg_opt_fail(err, s, "\"%s\" must be one of %s", key, list);
}
