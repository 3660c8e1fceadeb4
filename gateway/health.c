/* SPDX-License-Identifier: MIT */
/*
 * health.c — rolling link-quality figures of a device (see health.h).
 */
#include "health.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sample {
	uint64_t t_us;
	struct sg_health_counts c;
};

struct sg_health_window {
	uint64_t window_us;
	struct sample first;      /* since start */
	bool have_first;
	struct sample *ring;      /* the samples inside the window, oldest at head */
	size_t cap, head, n;
};

static const char *const kind_names[SG_HEALTH_MAX_] = {
	[SG_HEALTH_CHECKSUM] = "checksum",       [SG_HEALTH_TIMEOUT] = "timeout",
	[SG_HEALTH_IO] = "io",                   [SG_HEALTH_FRAMING] = "framing",
	[SG_HEALTH_IMPLAUSIBLE] = "implausible", [SG_HEALTH_LOST] = "lost",
	[SG_HEALTH_RECONNECTS] = "reconnects",
};

const char *health_kind_name(enum sg_health_kind k)
{
	return (unsigned)k < SG_HEALTH_MAX_ ? kind_names[k] : "?";
}

enum sg_health_kind health_kind_of(enum sg_fail f)
{
	switch (f) {
	case SG_FAIL_CHECKSUM:
		return SG_HEALTH_CHECKSUM;
	case SG_FAIL_TIMEOUT:
		return SG_HEALTH_TIMEOUT;
	case SG_FAIL_IO:
	case SG_FAIL_NODEV:
		return SG_HEALTH_IO;
	case SG_FAIL_INSANE:
		return SG_HEALTH_IMPLAUSIBLE;
	case SG_FAIL_LOST:
		return SG_HEALTH_LOST;
	case SG_FAIL_OVERLONG:
	case SG_FAIL_GARBAGE:
	case SG_FAIL_SYNTAX:
	default:
		return SG_HEALTH_FRAMING;
	}
}

void health_counts_fill(struct sg_health_counts *counts, uint64_t good, const uint64_t fail[SG_FAIL_MAX_],
                        uint64_t reconnects)
{
	*counts = (struct sg_health_counts){.good = good};
	for (int f = 0; f < SG_FAIL_MAX_; f++)
		counts->n[health_kind_of((enum sg_fail)f)] += fail[f];
	counts->n[SG_HEALTH_RECONNECTS] = reconnects;
}

struct sg_health_window *health_window_new(double window_s, double interval_s)
{
	struct sg_health_window *w;
	double slots;

	if (!(window_s > 0) || !(interval_s > 0) || window_s > 1e7)
		return NULL;
	slots = ceil(window_s / interval_s) + 2; /* both ends of the window, and one late timer */
	if (slots > 1e6)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->window_us = (uint64_t)(window_s * 1e6);
	w->cap = (size_t)slots;
	w->ring = calloc(w->cap, sizeof(*w->ring));
	if (!w->ring) {
		free(w);
		return NULL;
	}
	return w;
}

void health_window_free(struct sg_health_window *w)
{
	if (!w)
		return;
	free(w->ring);
	free(w);
}

double health_window_seconds(const struct sg_health_window *w)
{
	return (double)w->window_us / 1e6;
}

static const struct sample *at(const struct sg_health_window *w, size_t i)
{
	return &w->ring[(w->head + i) % w->cap];
}

static bool went_down(const struct sg_health_counts *old, const struct sg_health_counts *now)
{
	if (now->good < old->good)
		return true;
	for (int k = 0; k < SG_HEALTH_MAX_; k++)
		if (now->n[k] < old->n[k])
			return true;
	return false;
}

void health_window_add(struct sg_health_window *w, uint64_t now_us, const struct sg_health_counts *counts)
{
	struct sample s = {.t_us = now_us, .c = *counts};

	if (w->n && (now_us < at(w, w->n - 1)->t_us || went_down(&at(w, w->n - 1)->c, counts))) {
		w->n = 0; /* reconfigured (or a clock that went back): start afresh */
		w->have_first = false;
	}
	if (!w->have_first) {
		w->first = s;
		w->have_first = true;
	}
	if (w->n == w->cap) { /* sampled faster than the interval: the oldest goes */
		w->head = (w->head + 1) % w->cap;
		w->n--;
	}
	w->ring[(w->head + w->n) % w->cap] = s;
	w->n++;
	/* keep the oldest sample not older than the window's start */
	while (w->n > 1 && now_us - at(w, 0)->t_us > w->window_us) {
		w->head = (w->head + 1) % w->cap;
		w->n--;
	}
}

static void figures(const struct sample *from, const struct sample *to, struct sg_health_figures *ret)
{
	double s = (double)(to->t_us - from->t_us) / 1e6;

	*ret = (struct sg_health_figures){.seconds = s, .good = to->c.good - from->c.good};
	for (int k = 0; k < SG_HEALTH_MAX_; k++) {
		ret->n[k] = to->c.n[k] - from->c.n[k];
		ret->per_min[k] = s > 0 ? (double)ret->n[k] * 60.0 / s : 0;
		if (k != SG_HEALTH_RECONNECTS)
			ret->failed += ret->n[k];
	}
	ret->quality = ret->good + ret->failed ? 100.0 * (double)ret->good / (double)(ret->good + ret->failed) : NAN;
}

void health_window_figures(const struct sg_health_window *w, bool recent, struct sg_health_figures *ret)
{
	if (!w->n) {
		*ret = (struct sg_health_figures){.quality = NAN};
		return;
	}
	figures(recent ? at(w, 0) : &w->first, at(w, w->n - 1), ret);
}

/* --- output ------------------------------------------------------------------ */

char *health_status_path(void)
{
	const char *dir = getenv("RUNTIME_DIRECTORY");
	size_t n;
	char *p;

	if (!dir || !*dir)
		dir = HEALTH_RUNTIME_DIR;
	n = strcspn(dir, ":"); /* systemd lists several directories with ':' */
	if (asprintf(&p, "%.*s/%s", (int)n, dir, HEALTH_STATUS_FILE) < 0)
		return NULL;
	return p;
}

int health_status_parse(const char *text, long *ret_pid, double *ret_interval_s, long long *ret_updated,
                        const char **ret_body)
{
	const char *nl = strchr(text, '\n');
	long pid;
	double interval;
	long long updated;
	int end = 0;

	if (!nl || sscanf(text, "sensorgate %*s pid %ld interval %lf updated %lld%n", &pid, &interval, &updated, &end) != 3 ||
	    text + end != nl || pid <= 0 || !(interval > 0))
		return -EBADMSG;
	*ret_pid = pid;
	*ret_interval_s = interval;
	*ret_updated = updated;
	*ret_body = nl + 1;
	return 0;
}

/* A number for JSON: finite with 0..3 decimals as needed, else null. */
static void json_num(FILE *f, double v, int decimals)
{
	if (!isfinite(v))
		fputs("null", f);
	else if (v == floor(v) && fabs(v) < 1e15)
		fprintf(f, "%.0f", v);
	else
		fprintf(f, "%.*f", decimals, v);
}

static void json_span(FILE *f, const struct sg_health_figures *h)
{
	fputs("{\"seconds\":", f);
	json_num(f, round(h->seconds * 1000) / 1000, 3);
	fputs(",\"quality\":", f);
	json_num(f, round(h->quality * 10) / 10, 1);
	fprintf(f, ",\"good\":%llu,\"failed\":%llu,\"failed_per_min\":", (unsigned long long)h->good,
	        (unsigned long long)h->failed);
	json_num(f, h->seconds > 0 ? round((double)h->failed * 60.0 / h->seconds * 1000) / 1000 : 0, 3);
	fputs(",\"counts\":{", f);
	for (int k = 0; k < SG_HEALTH_MAX_; k++)
		fprintf(f, "%s\"%s\":%llu", k ? "," : "", kind_names[k], (unsigned long long)h->n[k]);
	fputs("},\"per_min\":{", f);
	for (int k = 0; k < SG_HEALTH_MAX_; k++) {
		fprintf(f, "%s\"%s\":", k ? "," : "", kind_names[k]);
		json_num(f, round(h->per_min[k] * 1000) / 1000, 3);
	}
	fputs("}}", f);
}

/* Close F, the memory stream of *BUF, and hand *BUF over to *RET. 0 or -ENOMEM. */
static int finish(FILE *f, char **buf, char **ret)
{
	bool failed = ferror(f);

	if (fclose(f) != 0 || failed) {
		free(*buf);
		return -ENOMEM;
	}
	*ret = *buf;
	return 0;
}

int health_json(bool up, double window_s, const struct sg_health_figures *recent,
                const struct sg_health_figures *since_start, char **ret)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	fprintf(f, "{\"up\":%s,\"quality\":", up ? "true" : "false");
	json_num(f, round(recent->quality * 10) / 10, 1);
	fputs(",\"window_s\":", f);
	json_num(f, window_s, 1);
	fputs(",\"recent\":", f);
	json_span(f, recent);
	fputs(",\"since_start\":", f);
	json_span(f, since_start);
	fputc('}', f);
	return finish(f, &buf, ret);
}

static void pct(char *buf, size_t len, double q)
{
	if (isfinite(q))
		snprintf(buf, len, "%.1f%%", q);
	else
		snprintf(buf, len, "-");
}

int health_table(const struct sg_health_row *rows, size_t n, double window_s, char **ret)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int wdev = 6, wdrv = 6;

	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int a = (int)strlen(rows[i].device), b = (int)strlen(rows[i].driver);
		wdev = a > wdev ? a : wdev;
		wdrv = b > wdrv ? b : wdrv;
	}
	fprintf(f, "link quality over the last %g s and since start; errors per minute over the last %g s\n",
	        window_s, window_s);
	fprintf(f, "%-*s  %-*s  %-4s  %7s  %7s  %7s", wdev, "DEVICE", wdrv, "DRIVER", "UP", "QUALITY", "SINCE", "GOOD");
	for (int k = 0; k < SG_HEALTH_MAX_; k++)
		fprintf(f, "  %*s", k == SG_HEALTH_IMPLAUSIBLE ? 11 : k == SG_HEALTH_RECONNECTS ? 10 : 8,
		        kind_names[k]);
	fputc('\n', f);
	for (size_t i = 0; i < n; i++) {
		const struct sg_health_row *r = &rows[i];
		char q1[16], q2[16];

		pct(q1, sizeof(q1), r->recent.quality);
		pct(q2, sizeof(q2), r->since_start.quality);
		fprintf(f, "%-*s  %-*s  %-4s  %7s  %7s  %7llu", wdev, r->device, wdrv, r->driver, r->up ? "yes" : "no",
		        q1, q2, (unsigned long long)r->recent.good);
		for (int k = 0; k < SG_HEALTH_MAX_; k++)
			fprintf(f, "  %*.2f", k == SG_HEALTH_IMPLAUSIBLE ? 11 : k == SG_HEALTH_RECONNECTS ? 10 : 8,
			        r->recent.per_min[k]);
		fputc('\n', f);
	}
	return finish(f, &buf, ret);
}
