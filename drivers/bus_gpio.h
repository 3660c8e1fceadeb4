/* SPDX-License-Identifier: MIT */
/*
 * bus_gpio.h — GPIO output lines behind a small table of operations.
 *
 * The real table, sg_gpio_libgpiod, drives lines of a gpiochip through
 * libgpiod 1.6 (the version in Debian 12 and Raspberry Pi OS bookworm). The
 * table exists so that the actuator driver above it can be tested against a
 * fake (tests/unit/fake_gpio.c) on machines without gpio-sim; the real kernel
 * path is exercised by the QEMU rig.
 *
 * Values are logical: 1 means "active". With active_low the kernel inverts
 * them on the wire, so 1 drives the pin low. A handle returned by
 * request_output() is owned by the caller until release(). Nothing here logs;
 * every action returns 0 or -errno.
 */
#ifndef SG_BUS_GPIO_H
#define SG_BUS_GPIO_H

#include <stdbool.h>

struct sg_gpio_ops {
	const char *name;
	/*
	 * Request LINE of CHIP (a name such as "gpiochip0", a number, a path or
	 * a label) as an output owned by CONSUMER, driven to VALUE (0/1), or to
	 * the level it has now when VALUE < 0. On success *ret_handle holds it.
	 * -ENOENT: no such chip; -EINVAL: no such line; -EBUSY: line in use.
	 */
	int (*request_output)(const char *chip, unsigned line, bool active_low, const char *consumer, int value,
	                      void **ret_handle);
	/* Drive the line to VALUE (0/1). */
	int (*set)(void *handle, int value);
	/* The line's current logical value: 0, 1, or -errno. */
	int (*get)(void *handle);
	/* Give the line back to the kernel (it keeps its level) and free the handle. NULL is fine. */
	void (*release)(void *handle);
};

/* libgpiod 1.6 on the real /dev/gpiochipN character devices. */
extern const struct sg_gpio_ops sg_gpio_libgpiod;

#endif
