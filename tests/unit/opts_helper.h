/* SPDX-License-Identifier: MIT */
/*
 * opts_helper.h — a driver's options parsed from config text, for tests that
 * drive a sensor or actuator driver directly: the one place tests turn a
 * config snippet into a driver's parse_options() result.
 *
 * The text is the inside of a device or actuator group, as a user writes it
 * (`line = 17; active_low = true;`). It is wrapped as "dev = {\n" TEXT
 * "\n};\n" — so its first line is line 2 of the config, which is what
 * err->line counts — parsed by libconfig and handed to the driver's own
 * parse_options(), exactly as config.c does; then the libconfig tree is
 * destroyed, so a driver that kept a pointer into it is caught by ASan.
 * A TEXT libconfig rejects fails the test (cmocka). The options belong to
 * the caller (the driver's free_options()).
 */
#ifndef SG_OPTS_FIXTURE_H
#define SG_OPTS_FIXTURE_H

#include "drivers/actuator.h"
#include "drivers/driver.h"

/* TEXT wrapped and read into CFG (the caller's to config_destroy()): the group "dev". */
config_setting_t *opts_fixture_group(config_t *cfg, const char *text);

/* Sensor driver DRV: what its parse_options() returns (0 when it has none). */
int opts_fixture_parse(const struct sg_driver *drv, const char *text, void **ret_opts, struct sg_opt_error *err);

/*
 * Actuator NAME of type KIND with driver DRV: what its parse_options()
 * returns (0 when it has none); *ret_opts is NULL on failure.
 */
int act_fixture_parse(const struct sg_act_driver *drv, const char *name, enum sg_actuator_kind kind, const char *text,
                      void **ret_opts, struct sg_opt_error *err);
void act_fixture_free(const struct sg_act_driver *drv, void *opts);

#endif
