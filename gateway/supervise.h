/* SPDX-License-Identifier: MIT */
/*
 * supervise.h — how a device (gateway_devices.c) and an actuator
 * (commands.c) watch over their hardware, the same way for both:
 *  - after a failure the next attempt waits for a backoff (backoff.h:
 *    1 s .. 60 s, jittered), longer with every failure in a row;
 *  - a problem is logged as a warning only when it differs from the last one
 *    logged (the same one again only at the debug level): a port that stays
 *    unplugged says so once, not every minute;
 *  - the recovery is logged once, as "<where> open again", and the backoff
 *    starts from the bottom again.
 * The caller closes, reopens and schedules; this only keeps the count, the
 * last problem and the log lines.
 */
#ifndef SG_SUPERVISE_H
#define SG_SUPERVISE_H

#include <stdbool.h>
#include <stdint.h>

#include "../drivers/backoff.h"

#define SUPERVISE_MIN_US (1 * 1000000ULL)
#define SUPERVISE_MAX_US (60 * 1000000ULL)

struct sg_supervise {
	struct sg_backoff reopen;
	char problem[320];   /* the last problem logged, "" while none since it last worked */
};

void supervise_init(struct sg_supervise *s);
/* A problem of NAME (a device's or an actuator's name: the log's device field), logged if it changed. */
void supervise_problem(struct sg_supervise *s, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A failure: how long to wait before the next attempt (logged at the debug level). */
uint64_t supervise_retry(struct sg_supervise *s, const char *name);
/* A problem logged or a failure counted since it last worked. */
bool supervise_troubled(const struct sg_supervise *s);
/* It works: after trouble "WHERE open again" (a notice) and true; the backoff starts afresh. */
bool supervise_recovered(struct sg_supervise *s, const char *name, const char *where);
/* Forget any trouble without a word (the hardware was swapped for other hardware: a reload). */
void supervise_reset(struct sg_supervise *s);

#endif
