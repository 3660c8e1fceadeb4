/* SPDX-License-Identifier: MIT */
/*
 * timesync.h — whether the wall clock can be believed, and measurement times
 * that survive not knowing yet.
 *
 * A Raspberry Pi has no battery-backed clock: until NTP has set it, the wall
 * clock says 1970 or the time of the last shutdown. A measurement taken then
 * is stamped with CLOCK_BOOTTIME (which counts from boot, through suspend)
 * instead, and turned into wall time once the clock is trusted: wall time of
 * the measurement = its boot time + (wall - boot time, read when trusted).
 * A measurement of an earlier boot that never got a wall time stays unknown;
 * it is never given a guessed date.
 *
 * The clock is trusted (mode "auto") once any of these says so, and then for
 * the rest of the process:
 *  - systemd-timesyncd's flag file exists (/run/systemd/timesync/synchronized,
 *    touched at each synchronisation);
 *  - the kernel's NTP state (adjtimex(2)) lacks STA_UNSYNC: chrony, ntpd and
 *    timesyncd all clear it when they discipline the clock;
 *  - the wall clock moved by more than TIMESYNC_JUMP_US against the boot
 *    clock while this process watched: someone set it (ntpdate, rdate, date).
 * Mode "always" trusts the clock from the start (a machine with a real-time
 * clock, or where nothing reports synchronisation); mode "file" believes the
 * flag file alone (and the jump), not the kernel's state.
 *
 * Cost: timesync_stamp() reads the clocks only (vDSO, no system call);
 * the sync state is looked at by timesync_check(), which the caller runs on
 * a timer while untrusted and when the kernel reports the clock was set
 * (timerfd TFD_TIMER_CANCEL_ON_SET, see timesync_watch_fd()).
 *
 * The clock source is injectable so that tests can fake an unsynchronised
 * clock, a synchronisation and a jump. Library-like: it does not log.
 */
#ifndef SG_TIMESYNC_H
#define SG_TIMESYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A step of the wall clock against the boot clock larger than this is a jump (NTP slews far less). */
#define TIMESYNC_JUMP_US 1000000LL
/* How often a caller looks at the sync state while the clock is not trusted (two system calls). */
#define TIMESYNC_POLL_US 1000000ULL
/* systemd-timesyncd's flag, see systemd-timesyncd.service(8). */
#define TIMESYNC_DEFAULT_FILE "/run/systemd/timesync/synchronized"
/* "2026-12-06T05:00:00.123Z" and its NUL. */
#define TIMESYNC_ISO_LEN 32

struct sg_clock_source {
	int64_t (*real_us)(void *ud);  /* CLOCK_REALTIME, µs */
	int64_t (*boot_us)(void *ud);  /* CLOCK_BOOTTIME, µs */
	int (*synced)(void *ud);       /* 1: a time service says the clock is set; 0: not (yet) */
	uint64_t (*boot_id)(void *ud); /* this boot, never 0 (/proc/sys/kernel/random/boot_id) */
	void *ud;
};

/* When a measurement was taken. */
struct sg_stamp {
	int64_t real_us;  /* wall time, µs since the epoch; 0 = not known (yet) */
	int64_t boot_us;  /* CLOCK_BOOTTIME of it, in boot boot_id */
	uint64_t boot_id;
};

struct sg_timesync;

/* How the system source decides "synchronised". */
struct sg_sys_clock {
	const char *sync_file; /* the systemd flag; NULL for TIMESYNC_DEFAULT_FILE */
	bool file_only;        /* the kernel's NTP state is not asked */
};

/* The system's clocks, judged by SYS (borrowed: it must outlive the source). Fills *ret. */
void timesync_system_source(struct sg_clock_source *ret, const struct sg_sys_clock *sys);

/* A clock judge over SRC (copied; its ud borrowed). ALWAYS: trusted from the start. NULL on ENOMEM. */
struct sg_timesync *timesync_new(const struct sg_clock_source *src, bool always);
void timesync_free(struct sg_timesync *t);

/* Look at the source again: 1 when the clock has just become trusted, else 0. */
int timesync_check(struct sg_timesync *t);
bool timesync_trusted(const struct sg_timesync *t);
/* The id of this boot, as stamps carry it. */
uint64_t timesync_boot_id(const struct sg_timesync *t);

/* The stamp of a measurement taken now; DEVICE_US is the device's own wall time of it, or 0. */
void timesync_stamp(const struct sg_timesync *t, int64_t device_us, struct sg_stamp *ret);

/*
 * The wall time of ST: its own, or worked out from its boot time when it is
 * of this boot and the clock is now trusted. 0 when not known yet (this
 * boot, clock untrusted); -1 when it can never be known (an earlier boot).
 */
int64_t timesync_resolve(const struct sg_timesync *t, const struct sg_stamp *st);

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" of REAL_US into BUF (TIMESYNC_ISO_LEN). Returns its length. */
int timesync_iso(int64_t real_us, char *buf, size_t len);

/* The text of the last second formatted, so that a burst of messages calls gmtime_r() once. */
struct sg_iso_cache {
	int64_t sec;                 /* -1: empty */
	char text[TIMESYNC_ISO_LEN]; /* "YYYY-MM-DDTHH:MM:SS" of sec */
};
#define SG_ISO_CACHE_INIT {.sec = -1}
/* timesync_iso() through CACHE; BUF must hold TIMESYNC_ISO_LEN bytes. */
int timesync_iso_cached(struct sg_iso_cache *cache, int64_t real_us, char *buf);

/*
 * A timerfd that becomes readable when someone sets the wall clock (the
 * caller polls it, calls timesync_check(), then timesync_watch_rearm()).
 * -errno when the kernel cannot.
 */
int timesync_watch_fd(void);
int timesync_watch_rearm(int fd);

#endif
