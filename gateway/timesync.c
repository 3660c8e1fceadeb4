/* SPDX-License-Identifier: MIT */
/* timesync.c — see timesync.h. */
#include "timesync.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

struct sg_timesync {
	struct sg_clock_source src;
	bool trusted;
	int64_t offset_us;  /* wall - boot time when last looked at */
	uint64_t boot_id;
};

/* ---- the system's clocks ------------------------------------------------------------------------- */

static int64_t sys_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int64_t sys_real_us(void *ud)
{
	(void)ud;
	return sys_clock(CLOCK_REALTIME);
}

static int64_t sys_boot_us(void *ud)
{
	(void)ud;
	return sys_clock(CLOCK_BOOTTIME);
}

static int sys_synced(void *ud)
{
	const struct sg_sys_clock *u = ud;
	struct timex tx = {.modes = 0};

	if (access(u->sync_file ? u->sync_file : TIMESYNC_DEFAULT_FILE, F_OK) == 0)
		return 1;
	/* adjtimex(2): reading (modes 0) needs no privilege; TIME_ERROR when STA_UNSYNC is set */
	if (!u->file_only && adjtimex(&tx) >= 0 && !(tx.status & STA_UNSYNC))
		return 1;
	return 0;
}

/* The first 64 bits of the kernel's random boot id (proc(5)); a constant when it cannot be read. */
static uint64_t sys_boot_id(void *ud)
{
	char buf[64];
	uint64_t id = 0;
	int n = 0;
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	(void)ud;
	if (f) {
		if (fgets(buf, sizeof(buf), f))
			for (const char *p = buf; *p && n < 16; p++) {
				int v = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
				if (v < 0)
					continue;
				id = id << 4 | (uint64_t)v;
				n++;
			}
		fclose(f);
	}
	return id ? id : 1;
}

void timesync_system_source(struct sg_clock_source *ret, const struct sg_sys_clock *sys)
{
	*ret = (struct sg_clock_source){
		.real_us = sys_real_us,
		.boot_us = sys_boot_us,
		.synced = sys_synced,
		.boot_id = sys_boot_id,
		.ud = (void *)sys,
	};
}

/* ---- the judge ------------------------------------------------------------------------------------ */

struct sg_timesync *timesync_new(const struct sg_clock_source *src, bool always)
{
	struct sg_timesync *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->src = *src;
	t->boot_id = src->boot_id(src->ud);
	t->offset_us = src->real_us(src->ud) - src->boot_us(src->ud);
	t->trusted = always || src->synced(src->ud) == 1;
	return t;
}

void timesync_free(struct sg_timesync *t)
{
	free(t);
}

int timesync_check(struct sg_timesync *t)
{
	int64_t offset = t->src.real_us(t->src.ud) - t->src.boot_us(t->src.ud);
	int64_t moved = offset - t->offset_us;

	t->offset_us = offset;
	if (t->trusted)
		return 0;
	if (t->src.synced(t->src.ud) == 1 || moved > TIMESYNC_JUMP_US || moved < -TIMESYNC_JUMP_US) {
		t->trusted = true;
		return 1;
	}
	return 0;
}

bool timesync_trusted(const struct sg_timesync *t)
{
	return t->trusted;
}

uint64_t timesync_boot_id(const struct sg_timesync *t)
{
	return t->boot_id;
}

void timesync_stamp(const struct sg_timesync *t, int64_t device_us, struct sg_stamp *ret)
{
	ret->boot_us = t->src.boot_us(t->src.ud);
	ret->boot_id = t->boot_id;
	if (!t->trusted)
		ret->real_us = 0; /* a device's own time is taken relative to ours: not believed either */
	else
		ret->real_us = device_us ? device_us : t->src.real_us(t->src.ud);
}

int64_t timesync_resolve(const struct sg_timesync *t, const struct sg_stamp *st)
{
	if (st->real_us)
		return st->real_us;
	if (st->boot_id != t->boot_id)
		return -1;
	if (!t->trusted)
		return 0;
	/* the offset now, not at the last check: a jump since then is the clock being corrected */
	return st->boot_us + (t->src.real_us(t->src.ud) - t->src.boot_us(t->src.ud));
}

int timesync_iso(int64_t real_us, char *buf, size_t len)
{
	time_t secs = (time_t)(real_us / 1000000);
	struct tm tm;

	if (real_us < 0 || !gmtime_r(&secs, &tm))
		return snprintf(buf, len, "%s", "");
	return snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)((real_us / 1000) % 1000));
}

int timesync_iso_cached(struct sg_iso_cache *cache, int64_t real_us, char *buf)
{
	int64_t sec = real_us / 1000000;
	int ms = (int)((real_us / 1000) % 1000);
	size_t n;

	if (real_us < 0)
		return timesync_iso(real_us, buf, TIMESYNC_ISO_LEN);
	if (sec != cache->sec) {
		n = (size_t)timesync_iso(real_us, cache->text, sizeof(cache->text));
		if (n < 5) /* not a time: nothing to keep */
			return timesync_iso(real_us, buf, TIMESYNC_ISO_LEN);
		cache->text[n - 5] = '\0'; /* keep "YYYY-MM-DDTHH:MM:SS" */
		cache->sec = sec;
	}
	n = strlen(cache->text);
	if (n + 6 > TIMESYNC_ISO_LEN)
		return timesync_iso(real_us, buf, TIMESYNC_ISO_LEN);
	memcpy(buf, cache->text, n);
	buf[n] = '.';
	buf[n + 1] = (char)('0' + ms / 100);
	buf[n + 2] = (char)('0' + ms / 10 % 10);
	buf[n + 3] = (char)('0' + ms % 10);
	buf[n + 4] = 'Z';
	buf[n + 5] = '\0';
	return (int)n + 5;
}

/* ---- being told when the clock is set ------------------------------------------------------------- */

int timesync_watch_rearm(int fd)
{
	/* an absolute CLOCK_REALTIME timer far away, cancelled (ECANCELED on read) when the clock is set */
	struct itimerspec its = {.it_value = {.tv_sec = (time_t)1 << 40}};

	if (timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0)
		return -errno;
	return 0;
}

int timesync_watch_fd(void)
{
	int fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = timesync_watch_rearm(fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}
