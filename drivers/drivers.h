/* SPDX-License-Identifier: MIT */
/*
 * drivers.h — every driver descriptor, one extern line each.
 *
 * Each driver file defines exactly one `const struct sg_driver sg_driver_<name>`
 * and nothing else with external linkage; registry.c lists them in sg_drivers[].
 * Adding a driver = its .c file + one line here + one line in registry.c.
 */
#ifndef SG_DRIVERS_H
#define SG_DRIVERS_H

#include "driver.h"

extern const struct sg_driver sg_driver_lines;   /* lines.c: kv / json / csv text lines */

#endif
