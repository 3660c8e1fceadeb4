/* SPDX-License-Identifier: MIT */
/*
 * opts_helper.c — see opts_helper.h. No state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "opts_helper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

config_setting_t *opts_fixture_group(config_t *cfg, const char *text)
{
	config_setting_t *g;
	char *doc;

	assert_true(asprintf(&doc, "dev = {\n%s\n};\n", text ? text : "") > 0);
	config_init(cfg);
	if (!config_read_string(cfg, doc))
		fail_msg("test config does not parse: line %d: %s\n%s", config_error_line(cfg), config_error_text(cfg),
		         doc);
	free(doc);
	g = config_lookup(cfg, "dev");
	assert_non_null(g);
	return g;
}

int opts_fixture_parse(const struct sg_driver *drv, const char *text, void **ret_opts, struct sg_opt_error *err)
{
	config_t cfg;
	int r;

	if (!drv->parse_options)
		return 0;
	r = drv->parse_options(opts_fixture_group(&cfg, text), ret_opts, err);
	config_destroy(&cfg);
	return r;
}

int act_fixture_parse(const struct sg_act_driver *drv, const char *name, enum sg_actuator_kind kind, const char *text,
                      void **ret_opts, struct sg_opt_error *err)
{
	struct sg_act_common common = {.name = name, .kind = kind};
	config_t cfg;
	int r;

	memset(err, 0, sizeof(*err));
	*ret_opts = NULL;
	if (!drv->parse_options)
		return 0;
	r = drv->parse_options(opts_fixture_group(&cfg, text), &common, ret_opts, err);
	config_destroy(&cfg);
	return r;
}

void act_fixture_free(const struct sg_act_driver *drv, void *opts)
{
	if (opts && drv->free_options)
		drv->free_options(opts);
}
