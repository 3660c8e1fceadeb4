/* SPDX-License-Identifier: MIT */
/*
 * log.h — one place where lines are written.
 *
 * Under systemd (JOURNAL_STREAM names our stderr) lines go to journald with
 * structured fields (PRIORITY, SENSORGATE_DEVICE, MQTT_TOPIC); otherwise to
 * stderr with "<N>" priority prefixes that systemd and humans both read.
 * Each error is logged once, by the caller that decides what to do about it.
 */
#ifndef SG_LOG_H
#define SG_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

void log_setup(void);
/* Lines above this priority are dropped (default LOG_INFO; LOG_DEBUG with -v). */
void log_set_max_level(int prio);
/* Would a line of this priority be written? (to skip building one that would be dropped) */
bool log_enabled(int prio);
bool log_to_journal(void);

/* device and topic may be NULL; they become journal fields and a "device: " prefix. */
void log_full(int prio, const char *device, const char *topic, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_error(...)   log_full(LOG_ERR, NULL, NULL, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, NULL, NULL, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, NULL, NULL, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, NULL, NULL, __VA_ARGS__)
#define log_debug(...)   log_full(LOG_DEBUG, NULL, NULL, __VA_ARGS__)

/*
 * Rate limiter for repeated errors: at most `burst` lines per `interval_us`;
 * when a new window opens, *ret_suppressed tells how many were swallowed.
 */
struct sg_ratelimit {
	uint64_t interval_us;
	unsigned burst;
	uint64_t window_start;
	unsigned count;
	unsigned suppressed;
};
#define SG_RATELIMIT_INIT(interval_s, b) {.interval_us = (uint64_t)(interval_s) * 1000000ULL, .burst = (b)}
bool ratelimit_allow(struct sg_ratelimit *rl, uint64_t now_us, unsigned *ret_suppressed);

#endif
