/* SPDX-License-Identifier: MIT */
/*
 * registry.c — the table of all drivers, lookup by name, failure names.
 *
 * sg_drivers[] is the only list of drivers in the program: --help, --check
 * and the config loader all go through it. The descriptors it points to are
 * const and owned by their driver files (declared in drivers.h).
 */
#include <errno.h>
#include <string.h>

#include "driver.h"
#include "drivers.h"

const struct sg_driver *const sg_drivers[] = {
	&sg_driver_lines,
	&sg_driver_nmea,
	&sg_driver_dsmr,
	&sg_driver_pms5003,
	&sg_driver_sds011,
	&sg_driver_mhz19,
	&sg_driver_modbus,
	&sg_driver_modbus_tcp,
	&sg_driver_bme280,
	&sg_driver_sht3x,
	&sg_driver_bh1750,
	&sg_driver_ads1115,
	&sg_driver_ds18b20,
	&sg_driver_contact,
	&sg_driver_counter,
	&sg_driver_button,
	NULL,
};

/* The driver whose config name is NAME, or NULL. */
const struct sg_driver *sg_driver_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; sg_drivers[i]; i++)
		if (strcmp(sg_drivers[i]->name, name) == 0)
			return sg_drivers[i];
	return NULL;
}

/* Short lower-case name of a failure reason, for logs and stats topics; "unknown" if out of range. */
const char *sg_fail_name(enum sg_fail f)
{
	switch (f) {
	case SG_FAIL_OVERLONG:
		return "overlong";
	case SG_FAIL_GARBAGE:
		return "garbage";
	case SG_FAIL_SYNTAX:
		return "syntax";
	case SG_FAIL_CHECKSUM:
		return "checksum";
	case SG_FAIL_INSANE:
		return "insane";
	case SG_FAIL_IO:
		return "io";
	case SG_FAIL_NODEV:
		return "nodev";
	case SG_FAIL_TIMEOUT:
		return "timeout";
	case SG_FAIL_LOST:
		return "lost";
	case SG_FAIL_MAX_:
		break;
	}
	return "unknown";
}

bool sg_name_valid(const char *s, size_t max)
{
	size_t n;

	if (!s)
		return false;
	for (n = 0; s[n]; n++) {
		char c = s[n];
		if (n >= max || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		                  c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}
