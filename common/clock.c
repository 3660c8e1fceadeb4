/* SPDX-License-Identifier: MIT */
/* clock.c — see clock.h. */
#include "clock.h"

#include <sys/types.h>
#include <time.h>

/* The Makefile asks for both (-D_TIME_BITS=64 -D_FILE_OFFSET_BITS=64); a 32-bit build without
 * them would stamp readings in 1901 after 2038-01-19 and fail on files past 2 GiB. */
_Static_assert(sizeof(time_t) == 8, "time_t must be 64 bits: build with -D_TIME_BITS=64");
_Static_assert(sizeof(off_t) == 8, "off_t must be 64 bits: build with -D_FILE_OFFSET_BITS=64");

uint64_t now_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

int64_t now_real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}
