/* SPDX-License-Identifier: MIT */
/*
 * fake_gpio.c — the in-memory gpiochip of fake_gpio.h. Test-only global
 * state: one chip, reset by fake_gpio_reset() in each test's setup.
 */
#include "fake_gpio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct fake_gpio fake_gpio;

void fake_gpio_reset(void)
{
	memset(&fake_gpio, 0, sizeof(fake_gpio));
	snprintf(fake_gpio.chip, sizeof(fake_gpio.chip), "gpiochip0");
}

int fake_gpio_logical(unsigned line)
{
	const struct fake_gpio_line *l = &fake_gpio.lines[line];
	return l->active_low ? !l->level : l->level;
}

static int fake_request_output(const char *chip, unsigned line, bool active_low, const char *consumer, int value,
                               void **ret_handle)
{
	struct fake_gpio_line *l;

	if (!fake_gpio.chip[0] || strcmp(chip, fake_gpio.chip) != 0)
		return -ENOENT;
	if (line >= FAKE_GPIO_LINES)
		return -EINVAL;
	l = &fake_gpio.lines[line];
	if (l->requested)
		return -EBUSY;
	l->requested = true;
	l->active_low = active_low;
	snprintf(l->consumer, sizeof(l->consumer), "%s", consumer);
	if (value >= 0)
		l->level = active_low ? !value : !!value;
	fake_gpio.n_requests++;
	*ret_handle = l;
	return 0;
}

static int fake_set(void *handle, int value)
{
	struct fake_gpio_line *l = handle;

	if (l->fail)
		return l->fail;
	l->n_sets++;
	if (!l->stuck)
		l->level = l->active_low ? !value : !!value;
	return 0;
}

static int fake_get(void *handle)
{
	struct fake_gpio_line *l = handle;

	if (l->fail)
		return l->fail;
	return l->active_low ? !l->level : l->level;
}

static void fake_release(void *handle)
{
	struct fake_gpio_line *l = handle;

	if (!l)
		return;
	l->requested = false;
	fake_gpio.n_releases++;
}

const struct sg_gpio_ops fake_gpio_ops = {
	.name = "fake",
	.request_output = fake_request_output,
	.set = fake_set,
	.get = fake_get,
	.release = fake_release,
};
