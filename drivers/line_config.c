/* SPDX-License-Identifier: MIT */
/*
 * line_config.c — the serial keys every serial device and actuator shares:
 * where the line is (port or usb_serial) and how it is set up (baud,
 * data_bits, parity, stop_bits). One parser for config.c's devices and the
 * actuator drivers alike, so the keys mean and say the same everywhere.
 * Whether the entries of one line agree is config.c's check; this reads one.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "line.h"

const char *const sg_line_keys[] = {"port", "usb_serial", "baud", "data_bits", "parity", "stop_bits", NULL};

const char *line_parity_name(char p)
{
	return p == 'E' ? "even" : p == 'O' ? "odd" : "none";
}

int line_framing_parse(const char *text, struct sg_serial_framing *ret)
{
	struct sg_serial_framing f;

	if (!text || strlen(text) != 3)
		return -EINVAL;
	f = (struct sg_serial_framing){.data_bits = (uint8_t)(text[0] - '0'), .parity = text[1],
	                               .stop_bits = (uint8_t)(text[2] - '0')};
	if (!serial_framing_valid(&f))
		return -EINVAL;
	*ret = f;
	return 0;
}

/* An integer KEY of G; *found says whether it is there. */
static int line_int(const config_setting_t *g, const char *key, long long *ret, const config_setting_t **found,
                    struct sg_opt_error *err)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	*found = s;
	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
		return sg_opt_fail(err, s, "\"%s\" must be an integer", key);
	*ret = config_setting_get_int64(s);
	return 0;
}

static const char *const parity_names[] = {"none", "even", "odd", NULL}; /* 'N', 'E', 'O' */

int line_spec_parse(const config_setting_t *g, const char *what, struct sg_line_spec *spec, struct sg_opt_error *err)
{
	const config_setting_t *s;
	struct stat st;
	long long v = 0;
	int parity = -1, r;

	if ((r = sg_opt_string_dup(g, "port", &spec->port, err)) < 0 ||
	    (r = sg_opt_string_dup(g, "usb_serial", &spec->usb_serial, err)) < 0)
		return r;
	if (spec->port && spec->usb_serial)
		return sg_opt_fail(err, config_setting_get_member(g, "usb_serial"),
		                   "%s: set \"port\" or \"usb_serial\", not both", what);
	if (!spec->port && !spec->usb_serial)
		return sg_opt_fail(err, NULL, "%s needs \"port\" or \"usb_serial\"", what);
	if (spec->usb_serial && !*spec->usb_serial)
		return sg_opt_fail(err, config_setting_get_member(g, "usb_serial"), "%s: \"usb_serial\" must not be empty",
		                   what);

	if ((r = line_int(g, "baud", &v, &s, err)) < 0)
		return r;
	if (s) {
		if (v < 1 || v > INT_MAX || !serial_baud_valid((int)v))
			return sg_opt_fail(err, s, "\"baud\" %lld is not a standard rate (1200, 2400, 4800, 9600, 19200, "
			                   "38400, 57600, 115200, 230400, 460800, 921600, ... 4000000)", v);
		spec->settings.baud = (int)v;
		spec->set_at[SG_LINE_KEY_BAUD] = (int)config_setting_source_line(s);
	}
	if ((r = line_int(g, "data_bits", &v, &s, err)) < 0)
		return r;
	if (s) {
		if (v != 7 && v != 8)
			return sg_opt_fail(err, s, "\"data_bits\" must be 7 or 8");
		spec->settings.framing.data_bits = (uint8_t)v;
		spec->set_at[SG_LINE_KEY_DATA_BITS] = (int)config_setting_source_line(s);
	}
	if ((r = sg_opt_enum(g, "parity", parity_names, &parity, err)) < 0)
		return r;
	if (parity >= 0) {
		spec->settings.framing.parity = "NEO"[parity];
		spec->set_at[SG_LINE_KEY_PARITY] = (int)config_setting_source_line(config_setting_get_member(g, "parity"));
	}
	if ((r = line_int(g, "stop_bits", &v, &s, err)) < 0)
		return r;
	if (s) {
		if (v != 1 && v != 2)
			return sg_opt_fail(err, s, "\"stop_bits\" must be 1 or 2");
		spec->settings.framing.stop_bits = (uint8_t)v;
		spec->set_at[SG_LINE_KEY_STOP_BITS] = (int)config_setting_source_line(s);
	}

	/* The port must exist when the config is loaded: a typo is found by --check, not at 3 a.m. */
	if (spec->port) {
		s = config_setting_get_member(g, "port");
		if (!*spec->port)
			return sg_opt_fail(err, s, "%s: \"port\" must not be empty", what);
		if (stat(spec->port, &st) < 0) {
			if (errno == ENOENT)
				return sg_opt_fail(err, s, "%s: port %s does not exist", what, spec->port);
			return sg_opt_fail(err, s, "%s: port %s: %s", what, spec->port, strerror(errno));
		}
	}
	return 0;
}

void line_spec_release(struct sg_line_spec *spec)
{
	if (!spec)
		return;
	free(spec->port);
	free(spec->usb_serial);
	spec->port = spec->usb_serial = NULL;
}
