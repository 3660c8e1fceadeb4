/* SPDX-License-Identifier: MIT */
/*
 * bus_gpio.c — sg_gpio_libgpiod: output lines through libgpiod 1.6.
 *
 * A handle owns one opened chip and one requested line; release() gives
 * both back. libgpiod reports failures as -1 with errno, which is turned
 * into -errno here. "Keep the current level" (value < 0) reads the line
 * through an as-is request first, then requests it as an output at that
 * level, so a relay that is on stays on across a restart when no `initial`
 * state is configured.
 */
#include "bus_gpio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gpiod.h>

struct gpio_handle {
	struct gpiod_chip *chip;
	struct gpiod_line *line;
};

static int neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* The level LINE has now, read through a short as-is request; 0/1 or -errno. */
static int read_current(struct gpiod_line *line, const char *consumer, int flags)
{
	struct gpiod_line_request_config rc = {
		.consumer = consumer,
		.request_type = GPIOD_LINE_REQUEST_DIRECTION_AS_IS,
		.flags = flags,
	};
	int v;

	if (gpiod_line_request(line, &rc, 0) < 0)
		return neg_errno();
	v = gpiod_line_get_value(line);
	if (v < 0)
		v = neg_errno();
	gpiod_line_release(line);
	return v;
}

static int lg_request_output(const char *chip, unsigned line, bool active_low, const char *consumer, int value,
                             void **ret_handle)
{
	int flags = active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
	struct gpio_handle *h;
	int r;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->chip = gpiod_chip_open_lookup(chip);
	if (!h->chip) {
		r = errno == ENOENT || errno == ENODEV || errno == 0 ? -ENOENT : neg_errno();
		goto err_free;
	}
	h->line = gpiod_chip_get_line(h->chip, line);
	if (!h->line) {
		r = neg_errno();
		goto err_close_chip;
	}
	if (value < 0) {
		value = read_current(h->line, consumer, flags);
		if (value < 0) {
			r = value;
			goto err_close_chip;
		}
	}
	if (gpiod_line_request_output_flags(h->line, consumer, flags, value ? 1 : 0) < 0) {
		r = neg_errno();
		goto err_close_chip;
	}
	*ret_handle = h;
	return 0;

err_close_chip:
	gpiod_chip_close(h->chip);
err_free:
	free(h);
	return r;
}

static int lg_set(void *handle, int value)
{
	struct gpio_handle *h = handle;

	if (gpiod_line_set_value(h->line, value ? 1 : 0) < 0)
		return neg_errno();
	return 0;
}

static int lg_get(void *handle)
{
	struct gpio_handle *h = handle;
	int v = gpiod_line_get_value(h->line);

	return v < 0 ? neg_errno() : v;
}

static void lg_release(void *handle)
{
	struct gpio_handle *h = handle;

	if (!h)
		return;
	gpiod_line_release(h->line);
	gpiod_chip_close(h->chip);
	free(h);
}

/* All digits: a chip number. */
static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

const char *sg_gpio_chip_key(const char *chip, char *buf, size_t len)
{
	if (all_digits(chip))
		snprintf(buf, len, "gpiochip%s", chip);
	else if (strncmp(chip, "/dev/", 5) == 0)
		snprintf(buf, len, "%s", chip + 5);
	else
		snprintf(buf, len, "%s", chip);
	return buf;
}

const struct sg_gpio_ops sg_gpio_libgpiod = {
	.name = "libgpiod",
	.request_output = lg_request_output,
	.set = lg_set,
	.get = lg_get,
	.release = lg_release,
};
