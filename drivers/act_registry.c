/* SPDX-License-Identifier: MIT */
/*
 * act_registry.c — the table of all actuator drivers and lookup by name.
 *
 * sg_act_drivers[] is the only list of actuator drivers in the program. The
 * descriptors are const and owned by their driver files (see actuator.h).
 */
#include <string.h>

#include "actuator.h"

const struct sg_act_driver *const sg_act_drivers[] = {
	&sg_act_gpio,
	&sg_act_serial,
	&sg_act_modbus,
	&sg_act_pwm,
	NULL,
};

const struct sg_act_driver *sg_act_driver_find(const struct sg_act_driver *const *table, const char *name)
{
	if (!name)
		return NULL;
	if (!table)
		table = sg_act_drivers;
	for (size_t i = 0; table[i]; i++)
		if (strcmp(table[i]->name, name) == 0)
			return table[i];
	return NULL;
}
