/* SPDX-License-Identifier: MIT */
/*
 * act_helper.c — see act_helper.h. No state.
 */
#include "act_helper.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int act_fixture_parse(const struct sg_act_driver *drv, const char *name, enum sg_actuator_kind kind, const char *text,
                      void **ret_opts, struct sg_opt_error *err)
{
	struct sg_act_common common = {.name = name, .kind = kind};
	config_t lc;
	config_setting_t *g;
	char *doc;
	int r;

	memset(err, 0, sizeof(*err));
	*ret_opts = NULL;
	if (asprintf(&doc, "actuator = {\n%s\n};\n", text) < 0)
		return -ENOMEM;
	config_init(&lc);
	if (!config_read_string(&lc, doc)) {
		snprintf(err->msg, sizeof(err->msg), "syntax: %s on line %d", config_error_text(&lc),
		         config_error_line(&lc));
		r = -EINVAL;
		goto out;
	}
	g = config_lookup(&lc, "actuator");
	r = drv->parse_options ? drv->parse_options(g, &common, ret_opts, err) : 0;
out:
	config_destroy(&lc);
	free(doc);
	return r;
}

void act_fixture_free(const struct sg_act_driver *drv, void *opts)
{
	if (opts && drv->free_options)
		drv->free_options(opts);
}
