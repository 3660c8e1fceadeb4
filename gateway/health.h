/* SPDX-License-Identifier: MIT */
/*
 * health.h — link quality of a device: rolling error rates and a 0–100 %
 * quality figure, from the counters the drivers already keep (struct
 * sg_dev_stats: good frames, failures by reason) and the gateway's reopen
 * count.
 *
 * The gateway samples each device's cumulative counters every interval into
 * a struct sg_health_window; the figures over the last `window` seconds are
 * the difference between the newest sample and the oldest one still inside
 * the window, the figures since start the difference from the first sample.
 * The clock is always the caller's (monotonic µs), so the arithmetic is
 * testable with explicit times.
 *
 * Quality = good / (good + failed) × 100 over the span: a good frame is one
 * the driver parsed and accepted (a frame of a serial protocol, a poll cycle
 * of an I2C sensor), a failed one any input the driver dropped (checksum,
 * timeout, bus error, framing, implausible value, lost events). Reopenings
 * are rated but are not frames. No frame and no failure in the span: NAN
 * ("unknown", JSON null).
 *
 * Nothing here logs or touches files; the JSON and the table are built in
 * memory and owned by the caller.
 */
#ifndef SG_HEALTH_H
#define SG_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../drivers/driver.h"

/* The groups the figures are given in (sg_fail reasons merged as health_kind_of() says). */
enum sg_health_kind {
	SG_HEALTH_CHECKSUM = 0, /* checksum / CRC mismatch */
	SG_HEALTH_TIMEOUT,      /* no answer within the deadline */
	SG_HEALTH_IO,           /* bus errors: I2C NAK, EIO, wrong or absent chip */
	SG_HEALTH_FRAMING,      /* bytes that do not frame: noise, overlong or unparseable frames */
	SG_HEALTH_IMPLAUSIBLE,  /* parsed but physically impossible */
	SG_HEALTH_LOST,         /* events the kernel dropped */
	SG_HEALTH_RECONNECTS,   /* port or bus reopened after a failure (not a frame) */
	SG_HEALTH_MAX_
};

/* The JSON / table name of K ("checksum", ... "reconnects"). */
const char *health_kind_name(enum sg_health_kind k);
/* The group of failure reason F. */
enum sg_health_kind health_kind_of(enum sg_fail f);

/* Cumulative counters of one device at one time. */
struct sg_health_counts {
	uint64_t good;
	uint64_t n[SG_HEALTH_MAX_];
};

/* COUNTS from a driver's stats: GOOD frames, FAIL by reason, RECONNECTS. */
void health_counts_fill(struct sg_health_counts *counts, uint64_t good, const uint64_t fail[SG_FAIL_MAX_],
                        uint64_t reconnects);

/* Figures over one span. */
struct sg_health_figures {
	double seconds;               /* span covered; 0 before the second sample */
	uint64_t good, failed;        /* frames in the span (failed: all kinds but reconnects) */
	uint64_t n[SG_HEALTH_MAX_];   /* by kind */
	double per_min[SG_HEALTH_MAX_];
	double quality;               /* 0..100, NAN when good + failed == 0 */
};

struct sg_health_window;

/* A window of WINDOW_S seconds sampled every INTERVAL_S (> 0). NULL on ENOMEM or bad arguments. */
struct sg_health_window *health_window_new(double window_s, double interval_s);
void health_window_free(struct sg_health_window *w);

/*
 * Add the sample COUNTS taken at NOW_US (monotonic µs, not before the last
 * one). Counters that went down (the device was reconfigured) restart the
 * window and the since-start span from this sample.
 */
void health_window_add(struct sg_health_window *w, uint64_t now_us, const struct sg_health_counts *counts);

/* The figures over the last window (RECENT) or since the first sample; all zero and NAN quality when empty. */
void health_window_figures(const struct sg_health_window *w, bool recent, struct sg_health_figures *ret);

/* The window's length in seconds. */
double health_window_seconds(const struct sg_health_window *w);

/*
 * The health payload of one device, malloc'ed into *RET (NUL-terminated):
 * {"up":true,"quality":96.2,"window_s":300,
 *  "recent":{"seconds":300,"quality":96.2,"good":50,"failed":2,"failed_per_min":0.4,
 *            "counts":{"checksum":2,...},"per_min":{"checksum":0.4,...}},
 *  "since_start":{ the same }}
 * 0 or -ENOMEM.
 */
int health_json(bool up, double window_s, const struct sg_health_figures *recent,
                const struct sg_health_figures *since_start, char **ret);

/* One row of the --status table. */
struct sg_health_row {
	const char *device, *driver;
	bool up;
	struct sg_health_figures recent, since_start;
};

/*
 * The --status table of N rows over WINDOW_S, malloc'ed into *RET: a header
 * line, then one line per device with the quality over the window and since
 * start and the rates per minute over the window by kind. 0 or -ENOMEM.
 */
int health_table(const struct sg_health_row *rows, size_t n, double window_s, char **ret);

/*
 * The file the daemon keeps its --status table in, rewritten every health
 * interval and removed when it stops: "$RUNTIME_DIRECTORY/health" (the
 * first directory systemd gives with RuntimeDirectory=), else
 * "/run/sensorgate/health" (where --status looks by default; the daemon
 * writes the file only when RUNTIME_DIRECTORY is set). Malloc'ed; NULL on
 * ENOMEM.
 */
#define HEALTH_RUNTIME_DIR "/run/sensorgate"
#define HEALTH_STATUS_FILE "health"
char *health_status_path(void);

/*
 * The first line of a status file TEXT: "sensorgate VERSION pid PID
 * interval SECONDS updated UNIXTIME"; *RET_BODY points after it. 0, or
 * -EBADMSG when TEXT is not such a file.
 */
int health_status_parse(const char *text, long *ret_pid, double *ret_interval_s, long long *ret_updated,
                        const char **ret_body);

#endif
