/* SPDX-License-Identifier: MIT */
/*
 * fuzz_common.h — shared harness of the driver fuzz targets (libFuzzer, built by run.sh).
 *
 * A target describes its driver and a few option sets; fuzz_one() picks the option set and
 * the chunk size from the first two input bytes, feeds the rest through feed() in chunks
 * (so that frames cross read boundaries, as on a real port) and, for polled drivers,
 * calls poll() between chunks with the port on /dev/null. Every reading is checked: a
 * valid field name, a finite number or a NUL-terminated string; a failure must name a
 * valid reason. A violation traps. State is file-scope here: this is a test harness, not
 * driver code.
 */
#ifndef SG_FUZZ_COMMON_H
#define SG_FUZZ_COMMON_H

#include <fcntl.h>
#include <libconfig.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/driver.h"
#include "drivers/drivers.h"

#define FUZZ_MAX_OPTS 4

static void fuzz_check_name(const char *s)
{
	if (!s || !*s)
		__builtin_trap();
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '.' || *s == '-'))
			__builtin_trap();
}

static void fuzz_emit(struct sg_dev *dev, const struct sg_reading *r, void *userdata)
{
	(void)dev;
	(void)userdata;
	fuzz_check_name(r->field);
	if (r->kind == SG_VALUE_NUMBER && !isfinite(r->number))
		__builtin_trap();
	if (r->kind == SG_VALUE_STRING && (!r->string || strlen(r->string) > 65536))
		__builtin_trap();
	if (r->unit && strlen(r->unit) > 64)
		__builtin_trap();
}

static void fuzz_fail(struct sg_dev *dev, enum sg_fail f, const char *detail, void *userdata)
{
	(void)dev;
	(void)userdata;
	if ((unsigned)f >= SG_FAIL_MAX_ || !detail)
		__builtin_trap();
}

/* Options parsed once per set, kept for the life of the process. */
static void *fuzz_opts[FUZZ_MAX_OPTS];
static int fuzz_null_fd = -1;

static void fuzz_setup(const struct sg_driver *drv, const char *const *opt_texts, size_t n)
{
	if (fuzz_null_fd < 0)
		fuzz_null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	for (size_t i = 0; i < n && i < FUZZ_MAX_OPTS; i++) {
		config_t cfg;
		char src[4096];
		struct sg_opt_error err;

		if (!drv->parse_options || fuzz_opts[i])
			continue;
		snprintf(src, sizeof(src), "dev = {\n%s\n};\n", opt_texts[i] ? opt_texts[i] : "");
		config_init(&cfg);
		if (!config_read_string(&cfg, src) ||
		    drv->parse_options(config_lookup(&cfg, "dev"), &fuzz_opts[i], &err) < 0) {
			fprintf(stderr, "fuzz: options of set %zu rejected\n", i);
			abort();
		}
		config_destroy(&cfg);
	}
}

static int fuzz_one(const struct sg_driver *drv, size_t n_opts, const uint8_t *data, size_t size)
{
	struct sg_dev dev;
	size_t chunk, off;
	uint8_t sel;

	if (size < 2)
		return 0;
	sel = data[0];
	chunk = (size_t)data[1] % 64 + 1;
	data += 2;
	size -= 2;
	dev = (struct sg_dev){
		.name = "fuzz",
		.driver = drv,
		.opts = n_opts ? fuzz_opts[sel % n_opts] : NULL,
		.fd = fuzz_null_fd,
		.path = "/dev/null",
		.address = -1,
		.interval_s = 1,
		.emit = fuzz_emit,
		.on_fail = fuzz_fail,
	};
	dev.state = calloc(1, drv->state_size ? drv->state_size : 1);
	if (!dev.state)
		return 0;
	if (drv->init && drv->init(&dev) < 0)
		__builtin_trap();
	for (off = 0; off < size; off += chunk) {
		uint64_t delay;

		/* polled drivers: a request goes out before some chunks, as the timer would */
		if (drv->poll && ((sel >> 4) & 1 || off == 0) && drv->poll(&dev, &delay) < 0)
			__builtin_trap();
		drv->feed(&dev, data + off, size - off < chunk ? size - off : chunk);
		if (drv->reset && (sel & 0x80) && off == chunk)
			drv->reset(&dev);
	}
	if (drv->fini)
		drv->fini(&dev);
	free(dev.state);
	return 0;
}

#define FUZZ_TARGET(drv, ...)                                                                   \
	static const char *const fuzz_opt_texts[] = {__VA_ARGS__};                              \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);                           \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                            \
	{                                                                                       \
		size_t n = sizeof(fuzz_opt_texts) / sizeof(fuzz_opt_texts[0]);                  \
		fuzz_setup(&(drv), fuzz_opt_texts, n);                                          \
		return fuzz_one(&(drv), (drv).parse_options ? n : 0, data, size);              \
	}

#endif
