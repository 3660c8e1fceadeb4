/* SPDX-License-Identifier: MIT */
/*
 * supervise.c — a device's or an actuator's retries and problem log lines
 * (see supervise.h).
 */
#include "supervise.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

void supervise_init(struct sg_supervise *s)
{
	backoff_init(&s->reopen, SUPERVISE_MIN_US, SUPERVISE_MAX_US);
	s->problem[0] = '\0';
}

void supervise_problem(struct sg_supervise *s, const char *name, const char *fmt, ...)
{
	char buf[sizeof(s->problem)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (strcmp(buf, s->problem) == 0) {
		log_full(LOG_DEBUG, name, NULL, "%s", buf);
		return;
	}
	snprintf(s->problem, sizeof(s->problem), "%s", buf);
	log_full(LOG_WARNING, name, NULL, "%s", buf);
}

uint64_t supervise_retry(struct sg_supervise *s, const char *name)
{
	uint64_t ceiling = backoff_ceiling(&s->reopen), delay = backoff_next(&s->reopen);

	log_full(LOG_DEBUG, name, NULL, "next attempt in %.3f s (backoff up to %.3f s)", (double)delay / 1e6,
	         (double)ceiling / 1e6);
	return delay;
}

bool supervise_troubled(const struct sg_supervise *s)
{
	return s->problem[0] || s->reopen.failures;
}

bool supervise_recovered(struct sg_supervise *s, const char *name, const char *where)
{
	bool was = supervise_troubled(s);

	if (was)
		log_full(LOG_NOTICE, name, NULL, "%s open again", where);
	supervise_reset(s);
	return was;
}

void supervise_reset(struct sg_supervise *s)
{
	s->problem[0] = '\0';
	backoff_reset(&s->reopen);
}
