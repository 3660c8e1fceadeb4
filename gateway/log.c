/* SPDX-License-Identifier: MIT */
/*
 * log.c — journald when systemd gave us a journal stream, stderr otherwise.
 *
 * systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream our stderr is
 * connected to; when it matches, we speak the native journal protocol so
 * SENSORGATE_DEVICE= and MQTT_TOPIC= become searchable fields. Everywhere
 * else a line is "<N>text" on stderr, which journald and people both read.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

static bool use_journal;
static int max_level = LOG_INFO;

void log_setup(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;

	use_journal = false;
	if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
		use_journal = true;
	if (getenv("SENSORGATE_DEBUG"))
		max_level = LOG_DEBUG;
}

void log_set_max_level(int prio)
{
	max_level = prio;
}

bool log_enabled(int prio)
{
	return prio <= max_level;
}

bool log_to_journal(void)
{
	return use_journal;
}

void log_full(int prio, const char *device, const char *topic, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int saved = errno;

	if (prio > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (use_journal) {
		/* sd_journal_send takes a fixed field list; omit the empty ones. */
		if (device && topic)
			sd_journal_send("MESSAGE=%s: %s", device, msg, "PRIORITY=%d", prio,
			                "SENSORGATE_DEVICE=%s", device, "MQTT_TOPIC=%s", topic,
			                "SYSLOG_IDENTIFIER=sensorgate", NULL);
		else if (device)
			sd_journal_send("MESSAGE=%s: %s", device, msg, "PRIORITY=%d", prio,
			                "SENSORGATE_DEVICE=%s", device, "SYSLOG_IDENTIFIER=sensorgate", NULL);
		else if (topic)
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", prio, "MQTT_TOPIC=%s", topic,
			                "SYSLOG_IDENTIFIER=sensorgate", NULL);
		else
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", prio,
			                "SYSLOG_IDENTIFIER=sensorgate", NULL);
	} else if (device) {
		fprintf(stderr, "<%d>%s: %s\n", prio, device, msg);
	} else {
		fprintf(stderr, "<%d>%s\n", prio, msg);
	}
	errno = saved;
}

bool ratelimit_allow(struct sg_ratelimit *rl, uint64_t now_us, unsigned *ret_suppressed)
{
	if (ret_suppressed)
		*ret_suppressed = 0;
	if (rl->window_start == 0 || now_us - rl->window_start >= rl->interval_us) {
		if (ret_suppressed)
			*ret_suppressed = rl->suppressed;
		rl->window_start = now_us ? now_us : 1;
		rl->count = 0;
		rl->suppressed = 0;
	}
	if (rl->count < rl->burst) {
		rl->count++;
		return true;
	}
	rl->suppressed++;
	return false;
}
