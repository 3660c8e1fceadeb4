/* SPDX-License-Identifier: MIT */
/* clock.h — the two clocks sensorgate uses, in microseconds. */
#ifndef SG_CLOCK_H
#define SG_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC: for intervals, deadlines and rate limits. */
uint64_t now_mono_us(void);
/* CLOCK_REALTIME: for timestamps in payloads. */
int64_t now_real_us(void);

#endif
