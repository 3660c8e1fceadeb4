/* SPDX-License-Identifier: MIT */
/*
 * bus_gpio.h — GPIO lines behind two small tables of operations: outputs
 * (struct sg_gpio_ops) and inputs with edge events (struct sg_gpio_in_ops).
 *
 * The real output table, sg_gpio_libgpiod (bus_gpio.c), drives lines of a
 * gpiochip through libgpiod 1.6 (the version in Debian 12 and Raspberry Pi OS
 * bookworm). The real input table, sg_gpio_in_kernel (bus_gpio_in.c), asks
 * the kernel for edge events through its GPIO character device (uAPI v2, with
 * libgpiod 1.6 as the fallback: see that file for why). The tables exist so
 * that the drivers above them can be tested against a fake
 * (tests/unit/fake_gpio.c) on machines without gpio-sim; the real kernel path
 * is exercised by the QEMU rig.
 *
 * Values are logical: 1 means "active". With active_low the kernel inverts
 * them on the wire, so 1 drives the pin low. A handle returned by
 * request_output() is owned by the caller until release(). Nothing here logs;
 * every action returns 0 or -errno.
 */
#ifndef SG_BUS_GPIO_H
#define SG_BUS_GPIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* ---- inputs ------------------------------------------------------------------------------------ */

enum sg_gpio_bias {
	SG_GPIO_BIAS_AS_IS = 0,   /* leave the pin's bias as the board set it */
	SG_GPIO_BIAS_DISABLED,
	SG_GPIO_BIAS_PULL_UP,
	SG_GPIO_BIAS_PULL_DOWN,
};

/* Edges to report, logical (after active_low): rising = inactive to active. */
#define SG_GPIO_EDGE_RISING  1u
#define SG_GPIO_EDGE_FALLING 2u
#define SG_GPIO_EDGE_BOTH    (SG_GPIO_EDGE_RISING | SG_GPIO_EDGE_FALLING)

struct sg_gpio_input {
	bool active_low;
	enum sg_gpio_bias bias;
	unsigned edges;           /* SG_GPIO_EDGE_* */
};

/* One edge as the kernel saw it. */
struct sg_gpio_event {
	uint64_t ts_ns;           /* when, CLOCK_MONOTONIC (the kernel's timestamp of the interrupt) */
	bool rising;              /* logical: the line became active */
	uint32_t seqno;           /* the line's event number (1, 2, ...; uAPI v2), 0 when unknown (v1) */
};

struct sg_gpio_in_ops {
	const char *name;
	/*
	 * Request LINE of CHIP (a name such as "gpiochip0", a number, a path or a
	 * label) as an input owned by CONSUMER, with IN's bias, polarity and edge
	 * events; *ret_handle holds it. -ENOENT: no such chip; -EINVAL: no such
	 * line; -EBUSY: in use (WHY says by whom); -EPERM: the line is an output
	 * now (WHY says so: an input request would stop it driving). WHY (WHYLEN
	 * bytes) gets a short text on any failure, "" when there is nothing to add.
	 */
	int (*request_input)(const char *chip, unsigned line, const struct sg_gpio_input *in, const char *consumer,
	                     void **ret_handle, char *why, size_t whylen);
	/* The descriptor that is readable while events wait (it belongs to the handle). */
	int (*fd)(void *handle);
	/* Up to N waiting events, oldest first, without blocking: how many (0: none), or -errno. */
	int (*read_events)(void *handle, struct sg_gpio_event *ev, size_t n);
	/* The line's logical level now: 0, 1, or -errno. */
	int (*get)(void *handle);
	/* How the events come, for the log: "uAPI v2, 1024-event buffer". */
	const char *(*how)(void *handle);
	/* The clock of the events' timestamps, now (CLOCK_MONOTONIC ns; a fake's own clock in tests). */
	uint64_t (*now_ns)(void);
	/* Give the line back and free the handle. NULL is fine. */
	void (*release)(void *handle);
};

/* The kernel's GPIO character device: uAPI v2 where the kernel has it (5.10+), libgpiod 1.6 (v1) before. */
extern const struct sg_gpio_in_ops sg_gpio_in_kernel;

/*
 * CHIP as a name comparable with others for conflict checks: "0",
 * "gpiochip0" and "/dev/gpiochip0" all become "gpiochip0"; anything else (a
 * label) is kept as it is. Writes at most LEN bytes to BUF and returns it.
 */
const char *sg_gpio_chip_key(const char *chip, char *buf, size_t len);

#endif
