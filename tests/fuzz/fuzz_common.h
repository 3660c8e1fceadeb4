/* SPDX-License-Identifier: MIT */
/*
 * fuzz_common.h — shared harness of the driver fuzz targets (libFuzzer, built by run.sh).
 *
 * A target describes its driver and a few option sets; fuzz_one() picks the option set and
 * the chunk size from the first two input bytes, feeds the rest in chunks (so that frames
 * cross read boundaries, as on a real port): to feed() for stream drivers; for request
 * drivers (driver.h: request/answer) as their serial line would, to answer() while a
 * request is out, a new request (poll() first when the driver has none) after each answer,
 * and now and then a timeout (no_answer()) instead of the next chunk's answer. Every reading is checked: a
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

/* The line's side for a request driver: a request out, the bytes since it in BUF. */
struct fuzz_line {
	uint8_t buf[1024];
	size_t len;
	int txn;
};

static void fuzz_request(struct sg_dev *dev, struct fuzz_line *l)
{
	uint8_t req[1024];
	uint64_t timeout = 0, delay;
	int n = dev->driver->request(dev, req, sizeof(req), &timeout);

	if (n == 0 && dev->driver->poll) {
		if (dev->driver->poll(dev, &delay) < 0)
			__builtin_trap();
		n = dev->driver->request(dev, req, sizeof(req), &timeout);
	}
	if (n < 0 || (size_t)n > sizeof(req) || (n > 0 && timeout == 0))
		__builtin_trap();
	l->txn = n > 0;
	l->len = 0;
}

static void fuzz_line_feed(struct sg_dev *dev, struct fuzz_line *l, const uint8_t *buf, size_t len)
{
	while (len) {
		size_t k = sizeof(l->buf) - l->len < len ? sizeof(l->buf) - l->len : len;

		if (!l->txn)
			fuzz_request(dev, l);
		if (!l->txn)
			return;
		memcpy(l->buf + l->len, buf, k);
		l->len += k;
		buf += k;
		len -= k;
		while (l->txn && l->len) {
			ssize_t r = dev->driver->answer(dev, l->buf, l->len);
			size_t n = (size_t)(r < 0 ? -r : r);

			if (r == 0)
				break;
			if (n > l->len)
				__builtin_trap(); /* claimed or passed bytes it was not given */
			memmove(l->buf, l->buf + n, l->len - n);
			l->len -= n;
			if (r > 0)
				l->txn = 0;
		}
		if (l->txn && l->len == sizeof(l->buf))
			l->len = 0; /* the line hands the older bytes on */
		if (!l->txn)
			l->len = 0;
	}
}

static int fuzz_one(const struct sg_driver *drv, size_t n_opts, const uint8_t *data, size_t size)
{
	struct fuzz_line line = {.len = 0};
	int requests;
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
	requests = drv->request && drv->answer && !(drv->feed && sg_driver_streams(drv, dev.opts));
	for (off = 0; off < size; off += chunk) {
		const uint8_t *p = data + off;
		size_t n = size - off < chunk ? size - off : chunk;
		uint64_t delay;

		if (requests) {
			/* now and then the answer does not come in time */
			if (line.txn && (sel & 0x10) && (p[0] & 0x0f) == 0) {
				drv->no_answer(&dev);
				line.txn = 0;
			}
			fuzz_line_feed(&dev, &line, p, n);
			continue;
		}
		/* polled stream drivers: a poll before some chunks, as the timer would */
		if (drv->poll && ((sel >> 4) & 1 || off == 0) && drv->poll(&dev, &delay) < 0)
			__builtin_trap();
		drv->feed(&dev, p, n);
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
