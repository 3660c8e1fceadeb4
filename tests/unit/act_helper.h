/* SPDX-License-Identifier: MIT */
/*
 * act_helper.h — an actuator driver's options parsed from config text, for
 * tests that drive a driver directly (test_act_*.c).
 *
 * The text is the inside of an actuator group, as a user writes it
 * (`line = 17; active_low = true;`); it is parsed by libconfig and handed to
 * the driver's own parse_options(), exactly as config.c does, then the
 * libconfig tree is destroyed — so a driver that kept a pointer into it is
 * caught by ASan. The options belong to the caller (act_fixture_free()).
 */
#ifndef SG_ACT_FIXTURE_H
#define SG_ACT_FIXTURE_H

#include "drivers/actuator.h"

/*
 * Parse TEXT as the keys of actuator NAME of type KIND for driver DRV.
 * Returns what parse_options() returns (0, -EINVAL with *err filled, -ENOMEM),
 * or -EINVAL with err->msg "syntax: ..." when TEXT is not libconfig.
 */
int act_fixture_parse(const struct sg_act_driver *drv, const char *name, enum sg_actuator_kind kind, const char *text,
                      void **ret_opts, struct sg_opt_error *err);
void act_fixture_free(const struct sg_act_driver *drv, void *opts);

#endif
