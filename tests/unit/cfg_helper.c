/* SPDX-License-Identifier: MIT */
/*
 * cfg_helper.c — see cfg_helper.h. Test-only global state: the directory.
 */
#include "cfg_helper.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char fixture_error[512];
static char dir[64];

const char *fixture_dir(void)
{
	return dir;
}

static int write_file(const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

struct sg_config *fixture_config(const char *text)
{
	char path[PATH_MAX];
	struct sg_config *cfg = NULL;
	size_t n = 0, dl;
	char *t, *o;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/sg-test-fixture-XXXXXX");
		if (!mkdtemp(dir)) {
			dir[0] = '\0';
			return NULL;
		}
		/* stand-in serial ports: one piece of hardware serves one actuator */
		if (write_file("tty", "") < 0 || write_file("tty2", "") < 0)
			return NULL;
	}
	dl = strlen(dir);
	for (const char *p = text; (p = strstr(p, "@DIR@")); p += 5)
		n++;
	t = malloc(strlen(text) + n * dl + 1);
	if (!t)
		return NULL;
	for (o = t; *text;) {
		if (strncmp(text, "@DIR@", 5) == 0) {
			memcpy(o, dir, dl);
			o += dl;
			text += 5;
		} else {
			*o++ = *text++;
		}
	}
	*o = '\0';
	if (write_file("test.conf", t) < 0) {
		free(t);
		return NULL;
	}
	free(t);
	snprintf(path, sizeof(path), "%s/test.conf", dir);
	if (config_load(path, &cfg, fixture_error, sizeof(fixture_error)) < 0)
		return NULL;
	return cfg;
}

void fixture_cleanup(void)
{
	char path[PATH_MAX];

	if (!dir[0])
		return;
	snprintf(path, sizeof(path), "%s/tty", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/tty2", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/test.conf", dir);
	unlink(path);
	rmdir(dir);
	dir[0] = '\0';
}
