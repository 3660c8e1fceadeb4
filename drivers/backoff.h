/* SPDX-License-Identifier: MIT */
/*
 * backoff.h — the one way sensorgate computes a retry delay.
 *
 * Exponential growth with full jitter: after n failures in a row the delay
 * is drawn uniformly from [min/10, min(max, min * 2^n)], so a fleet of
 * gateways (or of devices) that failed together does not retry together,
 * and a peer that keeps failing is tried less and less often. The floor of
 * a tenth of min keeps a retry from coming back at once.
 *
 * Used by the broker connection (gateway/mqtt.c), devices and actuators
 * that are reopened (gateway/supervise.c; the Modbus TCP driver's
 * reconnects go through the device's), the Home Assistant re-announcement
 * jitter, and a serial line's hold on a user whose requests keep timing out
 * (drivers/line.c, which waits backoff_ceiling() exactly: no jitter there).
 *
 * The random numbers come from one generator for the process, seeded once
 * from getrandom() (never two gateways in step, even started in the same
 * microsecond); backoff_seed() fixes the sequence for tests.
 */
#ifndef SG_BACKOFF_H
#define SG_BACKOFF_H

#include <stdint.h>

struct sg_backoff {
	uint64_t min_us;
	uint64_t max_us;
	unsigned failures;     /* in a row since the last backoff_reset(), counted until the cap is reached */
};

#define SG_BACKOFF_INIT(lo, hi) {.min_us = (lo), .max_us = (hi), .failures = 0}

void backoff_init(struct sg_backoff *b, uint64_t min_us, uint64_t max_us);
/* The upper bound of the next delay: min * 2^failures, at most max. */
uint64_t backoff_ceiling(const struct sg_backoff *b);
/* A delay for the failures counted so far (the count is not changed). */
uint64_t backoff_delay(const struct sg_backoff *b);
/* Count one more failure. */
void backoff_failed(struct sg_backoff *b);
/* backoff_delay(), then backoff_failed(): the usual "it failed, when do I retry?". */
uint64_t backoff_next(struct sg_backoff *b);
/* It works again: the next delay starts from the bottom. */
void backoff_reset(struct sg_backoff *b);

/* A uniformly distributed number in [0, n) (0 when n is 0), from the process's generator. */
uint64_t backoff_random(uint64_t n);
/* Fix the generator's sequence (tests); otherwise it seeds itself from getrandom() on first use. */
void backoff_seed(uint64_t seed);

#endif
