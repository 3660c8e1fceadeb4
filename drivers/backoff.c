/* SPDX-License-Identifier: MIT */
/*
 * backoff.c — exponential backoff with full jitter, and the process's one
 * random number generator (see backoff.h).
 *
 * The generator is SplitMix64 (Steele, Lea, Flood: "Fast splittable
 * pseudorandom number generators", OOPSLA 2014): one 64-bit word of state,
 * good enough to spread retries, not for secrets. "Full jitter" is the name
 * the AWS Architecture Blog ("Exponential Backoff And Jitter", 2015) gives to
 * drawing the whole delay at random below the exponential ceiling.
 */
#include "backoff.h"

#include <stdbool.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t state;
static bool seeded;

static void seed_once(void)
{
	uint64_t s = 0;
	struct timespec ts;

	if (seeded)
		return;
	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
		/* no entropy yet (early boot): the clock and the pid still differ between gateways */
		clock_gettime(CLOCK_REALTIME, &ts);
		s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 17);
	}
	state = s;
	seeded = true;
}

void backoff_seed(uint64_t seed)
{
	state = seed;
	seeded = true;
}

static uint64_t next64(void)
{
	uint64_t z;

	seed_once();
	z = (state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t backoff_random(uint64_t n)
{
	if (n == 0)
		return 0;
	/* the modulo bias is below n / 2^64: nothing for delays in microseconds */
	return next64() % n;
}

void backoff_init(struct sg_backoff *b, uint64_t min_us, uint64_t max_us)
{
	b->min_us = min_us;
	b->max_us = max_us < min_us ? min_us : max_us;
	b->failures = 0;
}

uint64_t backoff_ceiling(const struct sg_backoff *b)
{
	uint64_t c = b->min_us;

	for (unsigned i = 0; i < b->failures && c < b->max_us; i++)
		c = c > UINT64_MAX / 2 ? UINT64_MAX : c * 2;
	return c > b->max_us ? b->max_us : c;
}

uint64_t backoff_delay(const struct sg_backoff *b)
{
	uint64_t hi = backoff_ceiling(b), lo = b->min_us / 10;

	if (hi <= lo)
		return hi;
	return lo + backoff_random(hi - lo + 1);
}

void backoff_failed(struct sg_backoff *b)
{
	if (backoff_ceiling(b) < b->max_us)
		b->failures++; /* no need to count beyond the cap: it cannot overflow */
}

uint64_t backoff_next(struct sg_backoff *b)
{
	uint64_t d = backoff_delay(b);

	backoff_failed(b);
	return d;
}

void backoff_reset(struct sg_backoff *b)
{
	b->failures = 0;
}
