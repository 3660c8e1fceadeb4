/* SPDX-License-Identifier: MIT */
/*
 * metrics.h — the gateway's counters as a Prometheus text-format file, for
 * node_exporter's textfile collector (no port of our own: the unit may not
 * bind sockets).
 *
 * The gateway fills a struct sg_metrics snapshot (everything borrowed),
 * metrics_format() turns it into the exposition text (version 0.0.4: # HELP,
 * # TYPE, samples without timestamps, as the textfile collector wants them),
 * and metrics_write() replaces the file atomically: a temporary file in the
 * same directory, then rename(2), so a scrape never reads half a file. The
 * temporary name does not end in ".prom", so the collector never reads it.
 * Nothing here logs or keeps state; the caller says once what failed.
 */
#ifndef SG_METRICS_H
#define SG_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../drivers/driver.h"

struct sg_metrics_device {
	const char *name;
	const char *driver;
	bool up;                         /* bus open and driver initialised */
	uint64_t readings;               /* the driver's readings since it was (re)configured */
	uint64_t reconnects;             /* reopened after a failure */
	uint64_t fail[SG_FAIL_MAX_];     /* dropped input by reason (sg_fail_name()) */
	uint64_t good;                   /* good frames (health.h) */
	double quality;                  /* link quality over the health window, 0..1; NAN = no frame in it */
};

struct sg_metrics_actuator {
	const char *name;
	bool up;                         /* hardware open */
	uint64_t fail_safe;              /* times the fail-safe fired */
};

struct sg_metrics {
	const char *version;
	const char *broker;              /* connected to, or being tried */
	bool connected;
	uint64_t connects;               /* broker connections since start */
	double uptime_s;
	double start_time_s;             /* Unix time of the start */
	uint64_t readings, published, dropped, skipped;
	bool spool_open;
	uint64_t spooled, acknowledged, compacted, spool_depth, spool_bytes;
	unsigned in_flight;
	const struct sg_metrics_device *devices;
	size_t n_devices;
	const struct sg_metrics_actuator *actuators;
	size_t n_actuators;
};

/* The exposition text of M in *RET (malloc'ed, NUL-terminated, the caller frees) and its length. 0 or -ENOMEM. */
int metrics_format(const struct sg_metrics *m, char **ret, size_t *ret_len);

/*
 * Replace PATH with LEN bytes of TEXT atomically (PATH.tmp beside it, mode
 * 0644 whatever the umask: node_exporter runs as another user, then
 * rename). 0 or -errno; the temporary file is removed on failure.
 */
int metrics_write(const char *path, const char *text, size_t len);

#endif
