/* SPDX-License-Identifier: MIT */
/*
 * metrics.c — the Prometheus text file (see metrics.h).
 *
 * Names follow Prometheus' conventions: a sensorgate_ prefix, base units
 * (seconds, bytes), _total for counters; label values escaped as the text
 * format asks (backslash, double quote, line feed).
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_SUFFIX ".tmp" /* not ".prom": the textfile collector skips it */

/* A label value as the text format wants it: \ " and line feed escaped. */
static void label_value(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP sensorgate_%s %s\n# TYPE sensorgate_%s %s\n", name, help, name, type);
}

static void sample(FILE *f, const char *name, const char *type, const char *help, double v)
{
	head(f, name, type, help);
	/* whole numbers as such, times to the millisecond (8.077, not 8.0765589999999996) */
	if (v == floor(v) && fabs(v) < 1e15)
		fprintf(f, "sensorgate_%s %.0f\n", name, v);
	else
		fprintf(f, "sensorgate_%s %.3f\n", name, v);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	head(f, name, "counter", help);
	fprintf(f, "sensorgate_%s %llu\n", name, (unsigned long long)v);
}

/* One sample per device of a per-device metric: VALUE(d) under labels device (and driver). */
static void per_device(FILE *f, const struct sg_metrics *m, const char *name, const char *type, const char *help,
                       uint64_t (*value)(const struct sg_metrics_device *))
{
	if (!m->n_devices)
		return;
	head(f, name, type, help);
	for (size_t i = 0; i < m->n_devices; i++) {
		fputs("sensorgate_", f);
		fputs(name, f);
		fputs("{device=\"", f);
		label_value(f, m->devices[i].name);
		fputs("\",driver=\"", f);
		label_value(f, m->devices[i].driver);
		fprintf(f, "\"} %llu\n", (unsigned long long)value(&m->devices[i]));
	}
}

static uint64_t dev_up(const struct sg_metrics_device *d)
{
	return d->up;
}

static uint64_t dev_readings(const struct sg_metrics_device *d)
{
	return d->readings;
}

static uint64_t dev_good(const struct sg_metrics_device *d)
{
	return d->good;
}

static uint64_t dev_reconnects(const struct sg_metrics_device *d)
{
	return d->reconnects;
}

int metrics_format(const struct sg_metrics *m, char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	head(f, "build_info", "gauge", "Always 1; the version in a label.");
	fputs("sensorgate_build_info{version=\"", f);
	label_value(f, m->version);
	fputs("\"} 1\n", f);
	sample(f, "start_time_seconds", "gauge", "Start of the process, Unix time in seconds.", m->start_time_s);
	sample(f, "uptime_seconds", "gauge", "Seconds since the process started.", m->uptime_s);

	head(f, "mqtt_connected", "gauge", "1 while connected to the broker (the broker label), else 0.");
	fputs("sensorgate_mqtt_connected{broker=\"", f);
	label_value(f, m->broker);
	fprintf(f, "\"} %d\n", m->connected ? 1 : 0);
	counter(f, "mqtt_connects_total", "Connections to a broker since start.", m->connects);

	counter(f, "readings_total", "Readings the drivers produced.", m->readings);
	counter(f, "published_total", "Messages handed to the broker connection (directly or from the spool).",
	        m->published);
	counter(f, "dropped_total", "Messages lost: spool full, disk failing while disconnected, refused by the broker.",
	        m->dropped);
	counter(f, "skipped_total", "Readings not kept while disconnected (offline = \"drop\").", m->skipped);

	sample(f, "spool_open", "gauge", "1 while the spool file is open, else 0.", m->spool_open ? 1 : 0);
	counter(f, "spooled_total", "Messages written to the spool.", m->spooled);
	counter(f, "spool_acknowledged_total", "Spooled messages the broker acknowledged.", m->acknowledged);
	counter(f, "spool_compacted_total", "Spooled messages replaced by a newer one on their topic.", m->compacted);
	sample(f, "spool_depth_messages", "gauge", "Messages in the spool now, in flight or waiting.",
	       (double)m->spool_depth);
	sample(f, "spool_bytes", "gauge", "Accounted size of the messages in the spool.", (double)m->spool_bytes);
	sample(f, "in_flight_messages", "gauge", "Messages sent and not yet acknowledged.", (double)m->in_flight);

	per_device(f, m, "device_up", "gauge", "1 while the device's port or bus is open and its driver works.", dev_up);
	per_device(f, m, "device_readings_total", "counter", "Readings of the device since it was (re)configured.",
	           dev_readings);
	per_device(f, m, "device_reconnects_total", "counter", "Times the device was reopened after a failure.",
	           dev_reconnects);
	if (m->n_devices) {
		head(f, "device_errors_total", "counter", "Input the device's driver dropped, by reason.");
		for (size_t i = 0; i < m->n_devices; i++)
			for (int k = 0; k < SG_FAIL_MAX_; k++) {
				fputs("sensorgate_device_errors_total{device=\"", f);
				label_value(f, m->devices[i].name);
				fputs("\",driver=\"", f);
				label_value(f, m->devices[i].driver);
				fprintf(f, "\",reason=\"%s\"} %llu\n", sg_fail_name((enum sg_fail)k),
				        (unsigned long long)m->devices[i].fail[k]);
			}
	}
	per_device(f, m, "device_frames_good_total", "counter", "Frames (or poll cycles) the device's driver accepted.",
	           dev_good);
	if (m->n_devices) {
		head(f, "device_link_quality_ratio", "gauge", "Good frames / all frames over the health window "
		     "(NaN: no frame in it).");
		for (size_t i = 0; i < m->n_devices; i++) {
			fputs("sensorgate_device_link_quality_ratio{device=\"", f);
			label_value(f, m->devices[i].name);
			fputs("\",driver=\"", f);
			label_value(f, m->devices[i].driver);
			if (isfinite(m->devices[i].quality))
				fprintf(f, "\"} %.4f\n", m->devices[i].quality);
			else
				fputs("\"} NaN\n", f);
		}
	}
	if (m->n_actuators) {
		head(f, "actuator_up", "gauge", "1 while the actuator's hardware is open.");
		for (size_t i = 0; i < m->n_actuators; i++) {
			fputs("sensorgate_actuator_up{actuator=\"", f);
			label_value(f, m->actuators[i].name);
			fprintf(f, "\"} %d\n", m->actuators[i].up ? 1 : 0);
		}
		head(f, "actuator_fail_safe_total", "counter", "Times the actuator went to its safe state because the "
		     "controller was gone.");
		for (size_t i = 0; i < m->n_actuators; i++) {
			fputs("sensorgate_actuator_fail_safe_total{actuator=\"", f);
			label_value(f, m->actuators[i].name);
			fprintf(f, "\"} %llu\n", (unsigned long long)m->actuators[i].fail_safe);
		}
	}
	if (ferror(f)) {
		fclose(f);
		free(buf);
		return -ENOMEM;
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

int metrics_write(const char *path, const char *text, size_t len)
{
	char *tmp = NULL;
	size_t off = 0;
	int fd, r = 0;

	if (asprintf(&tmp, "%s" TMP_SUFFIX, path) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		r = -errno;
		free(tmp);
		return r;
	}
	if (fchmod(fd, 0644) < 0)
		r = -errno;
	while (r == 0 && off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r = n < 0 ? -errno : -EIO;
		else
			off += (size_t)n;
	}
	if (close(fd) < 0 && r == 0)
		r = -errno;
	/* No fsync: a file lost with a power cut is rewritten within one interval, and node_exporter's
	 * node_textfile_mtime_seconds shows its age; an fsync could stall the loop on a busy SD card. */
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	free(tmp);
	return r;
}
