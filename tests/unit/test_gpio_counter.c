/* SPDX-License-Identifier: MIT */
/*
 * test_gpio_counter.c — the `counter` driver on the fake gpiochip and its
 * explicit clock, and its total in a real spool file through a crash at
 * every point of the write.
 *
 * On the fake chip: only the counted edge is requested; totals in units
 * (per_unit); the rate from the kernel's timestamps (1 Hz at 1000 imp/kWh is
 * 3.6 kW), falling without pulses and 0 after rate_timeout; min_pulse_ms as a
 * bounce filter for one edge and for both; events the kernel dropped counted
 * from the gap in its numbering; the save cadence (save_pulses or
 * save_interval, whichever first); only saved totals published; a store that
 * fails (reported once, the total waits, resumes); fini() saving; a restart
 * reading the total back; and a kill at every pulse of a burst: never more
 * than save_pulses - 1 lost, the total never back.
 *
 * Through a crash: an SQLite VFS of this file's own wraps the real one and
 * counts the writes, truncations and syncs of the spool's files. For every
 * point k of the save's I/O it takes the files as they would be after a
 * crash just before operation k, in two models: a killed process (every
 * write so far is in the kernel's page cache and survives) and a power cut
 * (only what was fsync'ed survives; everything written since is gone), then
 * opens that copy with the real spool and a fresh counter. The total must be
 * the old one or the new one, never anything else, never less than a total
 * published before, and the new one once the save returned (the fsync: with
 * sync = "normal" too). Both sync settings are swept.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "drivers/drivers.h"
#include "fake_gpio.h"
#include "gateway/spool.h"
#include "gpio_helper.h"
#include "opts_helper.h"
#include "replay.h"

#define MS GR_MS
#define S  GR_S
#define LINE 3

static int setup(void **state)
{
	(void)state;
	fake_gpio_reset();
	return 0;
}

static uint64_t now(void)
{
	return fake_gpio.now_ns;
}

/* One pulse on LINE: active at T for WIDTH, each edge read by the loop at once. */
static void pulse(struct gpio_run *g, uint64_t t, uint64_t width)
{
	gr_edge(g, LINE, 1, t);
	gr_edge(g, LINE, 0, t + width);
}

/* Every published total (in the order published) is not below the one before it. */
static void assert_totals_grow(const struct gpio_run *g)
{
	double last = -1;

	for (size_t i = 0; i < g->n; i++) {
		if (strcmp(g->r[i].field, "total") != 0)
			continue;
		if (g->r[i].number < last)
			fail_msg("total went back from %g to %g (reading %zu)", last, g->r[i].number, i);
		last = g->r[i].number;
	}
}

/* ---- on the fake chip --------------------------------------------------------------------------- */

static void test_counts_the_edge_in_units_with_a_rate(void **state)
{
	struct gpio_run g;
	const struct gr_reading *r;
	uint64_t t;
	(void)state;

	assert_int_equal(gr_start(&g, &sg_driver_counter,
	                          "line = 3; per_unit = 1000; unit = \"kWh\"; device_class = \"energy\";"), 0);
	assert_int_equal(fake_gpio.lines[LINE].in.edges, SG_GPIO_EDGE_RISING); /* only the counted edge */
	/* at start: the saved total (none yet: 0) and no rate */
	assert_int_equal(gr_count(&g, "total", 0), 1);
	assert_true(gr_last(&g, "total")->number == 0);
	assert_string_equal(gr_last(&g, "total")->unit, "kWh");
	assert_string_equal(gr_last(&g, "rate")->unit, "kW");
	assert_true(gr_last(&g, "rate")->number == 0);

	/* 1 pulse per second, 30 ms wide: 3.6 kW at 1000 imp/kWh */
	t = now() + 500 * MS;
	for (int i = 0; i < 25; i++)
		pulse(&g, t + (uint64_t)i * S, 30 * MS);
	gr_advance(&g, t + 40 * S);
	assert_totals_grow(&g);
	r = gr_last(&g, "total");
	assert_true(fabs(r->number - 0.025) < 1e-12);
	/* the rate published while the pulses came */
	for (size_t i = 0; i < g.n; i++)
		if (strcmp(g.r[i].field, "rate") == 0 && g.r[i].at_ns > t + 5 * S && g.r[i].at_ns < t + 24 * S)
			assert_true(fabs(g.r[i].number - 3.6) < 1e-9);
	gr_stop(&g);
}

static void test_rate_falls_without_pulses_then_zero(void **state)
{
	struct gpio_run g;
	uint64_t t, last;
	double prev = 1e9;
	(void)state;

	assert_int_equal(gr_start(&g, &sg_driver_counter, "line = 3; rate_per = \"s\"; rate_timeout = 60;"), 0);
	assert_string_equal(gr_last(&g, "rate")->unit, "pulses/s");
	t = now() + 100 * MS;
	for (int i = 0; i < 11; i++) /* 2 pulses per second */
		pulse(&g, t + (uint64_t)i * 500 * MS, 10 * MS);
	last = t + 5 * S;
	gr_advance(&g, t + 10 * S + 1);
	assert_true(fabs(gr_last(&g, "rate")->number - 2.0) < 1e-9);
	gr_clear(&g);
	/* no pulse: each publication at most 1 / (time since the last pulse), falling */
	gr_advance(&g, last + 59 * S);
	assert_true(gr_count(&g, "rate", 0) >= 4);
	for (size_t i = 0; i < g.n; i++) {
		if (strcmp(g.r[i].field, "rate") != 0)
			continue;
		assert_true(g.r[i].number <= 1e9 / (double)(g.r[i].at_ns - last) + 1e-9);
		assert_true(g.r[i].number < prev);
		prev = g.r[i].number;
	}
	gr_advance(&g, last + 75 * S); /* past rate_timeout */
	assert_true(gr_last(&g, "rate")->number == 0);
	gr_stop(&g);
}

static void test_min_pulse_filters_bounce(void **state)
{
	struct gpio_run g;
	uint64_t t;
	(void)state;

	/* one edge requested: a counted edge closer than 2 x 20 ms to the last is bounce */
	assert_int_equal(gr_start(&g, &sg_driver_counter, "line = 3; min_pulse_ms = 20; save_pulses = 1;"), 0);
	t = now() + S;
	for (int i = 0; i < 5; i++, t += 100 * MS) {
		gr_edge(&g, LINE, 1, t);                 /* the pulse ... */
		gr_edge(&g, LINE, 0, t + 500000);        /* ... bouncing as it closes */
		gr_edge(&g, LINE, 1, t + 1 * MS);
		gr_edge(&g, LINE, 0, t + 30 * MS);       /* and as it opens */
		gr_edge(&g, LINE, 1, t + 30 * MS + 500000);
		gr_edge(&g, LINE, 0, t + 31 * MS);
	}
	gr_advance(&g, t + 20 * S);
	assert_true(gr_last(&g, "total")->number == 5);
	gr_stop(&g);

	/* both edges counted: each at least 20 ms after the last */
	fake_gpio_reset();
	assert_int_equal(gr_start(&g, &sg_driver_counter,
	                          "line = 3; edge = \"both\"; min_pulse_ms = 20; save_pulses = 1;"), 0);
	assert_int_equal(fake_gpio.lines[LINE].in.edges, SG_GPIO_EDGE_BOTH);
	t = now() + S;
	for (int i = 0; i < 5; i++, t += 100 * MS) {
		gr_edge(&g, LINE, 1, t);
		gr_edge(&g, LINE, 0, t + 500000);
		gr_edge(&g, LINE, 1, t + 1 * MS);
		gr_edge(&g, LINE, 0, t + 30 * MS);
		gr_edge(&g, LINE, 1, t + 30 * MS + 500000);
		gr_edge(&g, LINE, 0, t + 31 * MS);
	}
	gr_advance(&g, t + 20 * S);
	assert_true(gr_last(&g, "total")->number == 10); /* two edges per pulse */
	gr_stop(&g);

	/* without the filter every rising edge counts, bounce included */
	fake_gpio_reset();
	assert_int_equal(gr_start(&g, &sg_driver_counter, "line = 3; save_pulses = 1;"), 0);
	t = now() + S;
	gr_edge(&g, LINE, 1, t);
	gr_edge(&g, LINE, 0, t + 500000);
	gr_edge(&g, LINE, 1, t + 1 * MS);
	gr_advance(&g, t + 20 * S);
	assert_true(gr_last(&g, "total")->number == 2);
	gr_stop(&g);
}

static void test_dropped_events_counted_from_the_gap(void **state)
{
	struct gpio_run g;
	uint64_t t;
	(void)state;

	fake_gpio.queue_cap = 16;
	assert_int_equal(gr_start(&g, &sg_driver_counter, "line = 3;"), 0);
	t = now() + S;
	for (int i = 0; i < 100; i++) { /* 100 pulses while the loop is stuck */
		gr_edge_late(&g, LINE, 1, t + (uint64_t)i * 5 * MS);
		gr_edge_late(&g, LINE, 0, t + (uint64_t)i * 5 * MS + 2 * MS);
	}
	assert_int_equal(fake_gpio.lines[LINE].dropped, 84);
	gr_io(&g);
	assert_int_equal(g.fails[SG_FAIL_LOST], 1);
	assert_non_null(strstr(g.last_detail, "84 edge events dropped by the kernel"));
	assert_non_null(strstr(g.last_detail, "counted from the gap in the kernel's numbering"));
	gr_advance(&g, t + 20 * S);
	assert_true(gr_last(&g, "total")->number == 100);
	gr_stop(&g);
}

static void test_save_cadence(void **state)
{
	struct gpio_run g;
	uint64_t t;
	(void)state;

	assert_int_equal(gr_start(&g, &sg_driver_counter, "line = 3; save_pulses = 10; save_interval = 1.0;"), 0);
	t = now() + 100 * MS;
	for (int i = 0; i < 9; i++)
		pulse(&g, t + (uint64_t)i * 10 * MS, 2 * MS);
	assert_int_equal(g.n_saves, 0);
	pulse(&g, t + 90 * MS, 2 * MS); /* the 10th: saved at once */
	assert_int_equal(g.n_saves, 1);
	assert_int_equal(g.values[0].v, 10);
	pulse(&g, t + 100 * MS, 2 * MS);
	pulse(&g, t + 110 * MS, 2 * MS); /* 2 unsaved, the first at +100 ms */
	assert_int_equal(g.next_poll_ns, t + 100 * MS + S);
	gr_advance(&g, t + 100 * MS + S - 1);
	assert_int_equal(g.n_saves, 1);
	gr_advance(&g, t + 100 * MS + S);
	assert_int_equal(g.n_saves, 2);
	assert_int_equal(g.values[0].v, 12);
	gr_stop(&g);
}

static void test_only_saved_totals_are_published(void **state)
{
	struct gpio_run g;
	uint64_t t;
	(void)state;

	assert_int_equal(gr_start(&g, &sg_driver_counter, "line = 3; save_pulses = 5;"), 0);
	t = now() + 100 * MS;
	for (int i = 0; i < 5; i++)
		pulse(&g, t + (uint64_t)i * 10 * MS, 2 * MS);
	g.save_fail = -ENOSPC; /* the disk is full */
	for (int i = 5; i < 20; i++)
		pulse(&g, t + (uint64_t)i * 10 * MS, 2 * MS);
	gr_advance(&g, t + 35 * S);
	assert_int_equal(g.fails[SG_FAIL_IO], 1); /* said once, however often retried */
	assert_non_null(strstr(g.last_detail, "cannot save the total (No space left on device)"));
	assert_true(gr_last(&g, "total")->number == 5); /* the last one on disk */
	g.save_fail = 0;
	gr_advance(&g, t + 50 * S);
	assert_true(gr_last(&g, "total")->number == 20);
	assert_int_equal(g.values[0].v, 20);
	assert_totals_grow(&g);
	gr_stop(&g);
}

static void test_stop_saves_and_start_reads_back(void **state)
{
	struct gpio_run g;
	uint64_t t;
	(void)state;

	assert_int_equal(gr_start(&g, &sg_driver_counter, "line = 3; save_pulses = 1000; per_unit = 2;"), 0);
	t = now() + 100 * MS;
	for (int i = 0; i < 7; i++)
		pulse(&g, t + (uint64_t)i * 10 * MS, 2 * MS);
	assert_int_equal(g.n_saves, 0);
	gr_clear(&g);
	assert_int_equal(gr_restart(&g), 0); /* fini() then init(), as a reload or a restart */
	assert_int_equal(g.values[0].v, 7);
	assert_true(gr_last(&g, "total")->number == 3.5); /* published at once after the start */
	pulse(&g, now() + 100 * MS, 2 * MS);
	gr_advance(&g, now() + 20 * S);
	assert_true(gr_last(&g, "total")->number == 4);
	/* refresh (a reconnection) says both again */
	gr_clear(&g);
	sg_driver_counter.refresh(&g.dev);
	assert_int_equal(gr_count(&g, "total", 0), 1);
	assert_int_equal(gr_count(&g, "rate", 0), 1);
	gr_stop(&g);
}

static void test_kill_at_every_pulse_loses_little_never_back(void **state)
{
	const int save_pulses = 10, burst = 60;
	(void)state;

	for (int kill_at = 1; kill_at <= burst; kill_at++) {
		struct gpio_run g;
		double before = 0;
		uint64_t t;
		int64_t counted = 0;

		fake_gpio_reset();
		assert_int_equal(gr_start(&g, &sg_driver_counter, "line = 3; save_pulses = 10; save_interval = 1.0;"), 0);
		g.dev.interval_s = 0.1; /* publish often: totals published before the kill */
		t = now() + 100 * MS;
		for (int i = 0; i < kill_at; i++) /* 200 Hz */
			pulse(&g, t + (uint64_t)i * 5 * MS, 2 * MS);
		counted = kill_at;
		for (size_t i = 0; i < g.n; i++)
			if (strcmp(g.r[i].field, "total") == 0 && g.r[i].number > before)
				before = g.r[i].number;
		gr_crash(&g); /* kill -9: no fini(), nothing saved on the way out */
		gr_clear(&g);
		assert_int_equal(gr_restart(&g), 0);
		{
			double after = gr_last(&g, "total")->number;

			if (after < before || after > (double)counted || (double)counted - after > save_pulses - 1)
				fail_msg("killed after %d pulses: published %g before, %g after", kill_at, before, after);
		}
		gr_stop(&g);
	}
}

static void test_store_not_ready_or_missing(void **state)
{
	struct gpio_run g;
	(void)state;

	assert_int_equal(gr_start(&g, &sg_driver_counter, "line = 3;"), 0);
	/* the spool file cannot be opened yet: wait for it (the gateway retries), do not count from 0 */
	g.load_fail = -EAGAIN;
	assert_int_equal(gr_restart(&g), -EAGAIN);
	assert_non_null(strstr(g.dev.why, "the spool file that keeps its total is not open yet"));
	assert_false(fake_gpio.lines[LINE].requested); /* the line is not taken meanwhile */
	g.load_fail = -EIO;
	assert_int_equal(gr_restart(&g), -EIO);
	assert_non_null(strstr(g.dev.why, "cannot read its saved total"));
	g.load_fail = 0;
	assert_int_equal(gr_restart(&g), 0);
	gr_stop(&g);
}

static void test_options(void **state)
{
	static const struct {
		const char *text;
		const char *msg;
	} bad[] = {
		{"line = 3; edge = \"up\";", "\"edge\" must be one of \"rising\", \"falling\", \"both\""},
		{"line = 3; per_unit = 0;", "\"per_unit\" must be between"},
		{"line = 3; debounce_ms = 5;", NULL}, /* not the driver's: config.c refuses it as unknown */
		{"line = 3; device_class = \"power\";", "\"device_class\" must be one of \"energy\", \"gas\", \"water\""},
		{"line = 3; rate_per = \"day\";", "\"rate_per\" must be one of \"s\", \"min\", \"h\""},
		{"line = 3; save_pulses = 0;", "\"save_pulses\" must be between 1 and 1000000"},
		{"line = 3; save_interval = 0.01;", "\"save_interval\" must be between 0.1 and 3600"},
		{"line = 3; unit = \"\";", "\"unit\" must be 1..24 characters"},
	};
	struct sg_opt_error err;
	struct sg_field_info fi;
	char name[32], buf[512];
	void *opts;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r;

		err = (struct sg_opt_error){.line = 0};
		opts = NULL;
		r = opts_fixture_parse(&sg_driver_counter, bad[i].text, &opts, &err);
		if (!bad[i].msg) {
			assert_int_equal(r, 0);
			sg_driver_counter.free_options(opts);
			continue;
		}
		if (r != -EINVAL || !strstr(err.msg, bad[i].msg) || err.line != 2)
			fail_msg("\"%s\": %d line %d \"%s\"", bad[i].text, r, err.line, err.msg);
	}
	assert_true(sg_driver_counter.option_keys != NULL);

	/* water: 1 pulse per litre, total in m³, rate in L/min */
	assert_int_equal(opts_fixture_parse(&sg_driver_counter,
	                               "line = 5; bias = \"pull-up\"; active_low = true; per_unit = 1000; unit = \"m³\";"
	                               "device_class = \"water\"; rate_per = \"min\"; rate_per_unit = 1;"
	                               "rate_unit = \"L/min\"; min_pulse_ms = 50;", &opts, &err), 0);
	assert_true(sg_driver_counter.option_field(opts, 0, name, sizeof(name), &fi));
	assert_string_equal(fi.name, "total");
	assert_string_equal(fi.unit, "m³");
	assert_string_equal(fi.device_class, "water");
	assert_string_equal(fi.state_class, "total_increasing");
	assert_true(sg_driver_counter.option_field(opts, 1, name, sizeof(name), &fi));
	assert_string_equal(fi.name, "rate");
	assert_string_equal(fi.unit, "L/min");
	assert_false(sg_driver_counter.option_field(opts, 2, name, sizeof(name), &fi));
	sg_driver_counter.describe(opts, buf, sizeof(buf));
	assert_string_equal(buf, "gpio gpiochip0 line 5, bias pull-up, active-low; counts rising edges, min pulse 50 ms; "
	                         "1000 pulses per m³; rate in L/min; saved every 10 pulses or 1 s");
	sg_driver_counter.where(opts, buf, sizeof(buf));
	assert_string_equal(buf, "gpiochip0 line 5");
	sg_driver_counter.free_options(opts);

	/* default rate units: kWh per hour is kW; others per their time */
	assert_int_equal(opts_fixture_parse(&sg_driver_counter, "line = 5; unit = \"Wh\";", &opts, &err), 0);
	assert_true(sg_driver_counter.option_field(opts, 1, name, sizeof(name), &fi));
	assert_string_equal(fi.unit, "W");
	sg_driver_counter.free_options(opts);
	assert_int_equal(opts_fixture_parse(&sg_driver_counter, "line = 5; unit = \"m³\";", &opts, &err), 0);
	assert_true(sg_driver_counter.option_field(opts, 1, name, sizeof(name), &fi));
	assert_string_equal(fi.unit, "m³/h");
	sg_driver_counter.free_options(opts);
}

/* ---- a crash at every point of the write -------------------------------------------------------- */

/*
 * The VFS: every call goes to the real (default) one; the writes, truncations
 * and syncs of named files are counted, and when the count reaches crash_at
 * the files are copied as a crash just then would leave them.
 */
enum crash_model { KILL, POWER };

#define CV_FILES 4

struct cv_file {
	char path[PATH_MAX];
	unsigned char *durable;   /* POWER: the content as of the last sync */
	size_t durable_len;
	bool has_durable;
	bool open;
};

static struct {
	sqlite3_vfs *real;
	bool armed;
	enum crash_model model;
	unsigned ops, crash_at;
	bool crashed;
	char snap_dir[PATH_MAX];
	struct cv_file files[CV_FILES];
} cv;

struct cfile {
	sqlite3_file base;
	struct cv_file *f;        /* NULL: a file we do not follow */
	sqlite3_file *real;       /* follows this struct */
};

static bool read_whole(const char *path, unsigned char **ret, size_t *ret_len)
{
	uint8_t *b;
	size_t n;

	if (!rp_read_file(path, &b, &n))
		return false;
	*ret = b;
	*ret_len = n;
	return true;
}

static void write_whole(const char *path, const unsigned char *b, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, n), (ssize_t)n);
	close(fd);
}

/* Copy the followed files as the crash leaves them into cv.snap_dir (same base names). */
static void cv_snapshot(void)
{
	for (int i = 0; i < CV_FILES; i++) {
		struct cv_file *f = &cv.files[i];
		char to[PATH_MAX + 64];
		const char *base;
		unsigned char *b = NULL;
		size_t n = 0;

		if (!f->path[0])
			continue;
		base = strrchr(f->path, '/') + 1;
		snprintf(to, sizeof(to), "%s/%s", cv.snap_dir, base);
		if (cv.model == POWER) {
			if (f->has_durable)
				write_whole(to, f->durable, f->durable_len);
			continue;
		}
		if (read_whole(f->path, &b, &n)) {
			write_whole(to, b, n);
			free(b);
		}
	}
	cv.crashed = true;
}

static void cv_op(void)
{
	if (!cv.armed || cv.crashed)
		return;
	if (++cv.ops == cv.crash_at)
		cv_snapshot();
}

static int cv_close(sqlite3_file *p)
{
	struct cfile *c = (struct cfile *)p;
	int rc = c->real->pMethods->xClose(c->real);

	if (c->f)
		c->f->open = false;
	return rc;
}

static int cv_read(sqlite3_file *p, void *b, int n, sqlite3_int64 off)
{
	struct cfile *c = (struct cfile *)p;
	return c->real->pMethods->xRead(c->real, b, n, off);
}

static int cv_write(sqlite3_file *p, const void *b, int n, sqlite3_int64 off)
{
	struct cfile *c = (struct cfile *)p;

	if (c->f)
		cv_op();
	return c->real->pMethods->xWrite(c->real, b, n, off);
}

static int cv_truncate(sqlite3_file *p, sqlite3_int64 size)
{
	struct cfile *c = (struct cfile *)p;

	if (c->f)
		cv_op();
	return c->real->pMethods->xTruncate(c->real, size);
}

static int cv_sync(sqlite3_file *p, int flags)
{
	struct cfile *c = (struct cfile *)p;
	int rc;

	if (c->f)
		cv_op();
	rc = c->real->pMethods->xSync(c->real, flags);
	if (rc == SQLITE_OK && c->f) { /* what is on the disk now */
		free(c->f->durable);
		c->f->durable = NULL;
		c->f->has_durable = read_whole(c->f->path, &c->f->durable, &c->f->durable_len);
	}
	return rc;
}

static int cv_size(sqlite3_file *p, sqlite3_int64 *size)
{
	struct cfile *c = (struct cfile *)p;
	return c->real->pMethods->xFileSize(c->real, size);
}

static int cv_lock(sqlite3_file *p, int l)
{
	struct cfile *c = (struct cfile *)p;
	return c->real->pMethods->xLock(c->real, l);
}

static int cv_unlock(sqlite3_file *p, int l)
{
	struct cfile *c = (struct cfile *)p;
	return c->real->pMethods->xUnlock(c->real, l);
}

static int cv_check_lock(sqlite3_file *p, int *out)
{
	struct cfile *c = (struct cfile *)p;
	return c->real->pMethods->xCheckReservedLock(c->real, out);
}

static int cv_fcntl(sqlite3_file *p, int op, void *arg)
{
	struct cfile *c = (struct cfile *)p;
	return c->real->pMethods->xFileControl(c->real, op, arg);
}

static int cv_sector(sqlite3_file *p)
{
	struct cfile *c = (struct cfile *)p;
	return c->real->pMethods->xSectorSize(c->real);
}

static int cv_devchar(sqlite3_file *p)
{
	struct cfile *c = (struct cfile *)p;
	return c->real->pMethods->xDeviceCharacteristics(c->real);
}

/* iVersion 1: no shared memory, which a WAL in exclusive locking mode (the spool's) does not use. */
static const sqlite3_io_methods cv_methods = {
	.iVersion = 1,
	.xClose = cv_close,
	.xRead = cv_read,
	.xWrite = cv_write,
	.xTruncate = cv_truncate,
	.xSync = cv_sync,
	.xFileSize = cv_size,
	.xLock = cv_lock,
	.xUnlock = cv_unlock,
	.xCheckReservedLock = cv_check_lock,
	.xFileControl = cv_fcntl,
	.xSectorSize = cv_sector,
	.xDeviceCharacteristics = cv_devchar,
};

static int cv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags, int *out_flags)
{
	struct cfile *c = (struct cfile *)p;
	int rc;

	(void)vfs;
	c->real = (sqlite3_file *)(c + 1);
	c->f = NULL;
	rc = cv.real->xOpen(cv.real, name, c->real, flags, out_flags);
	if (rc != SQLITE_OK) {
		p->pMethods = NULL;
		return rc;
	}
	p->pMethods = &cv_methods;
	if (name && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL))) {
		for (int i = 0; i < CV_FILES && !c->f; i++)
			if (strcmp(cv.files[i].path, name) == 0)
				c->f = &cv.files[i];
		for (int i = 0; i < CV_FILES && !c->f; i++)
			if (!cv.files[i].path[0]) {
				snprintf(cv.files[i].path, sizeof(cv.files[i].path), "%s", name);
				c->f = &cv.files[i];
			}
		if (c->f)
			c->f->open = true;
	}
	return SQLITE_OK;
}

static int cv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void)vfs;
	for (int i = 0; i < CV_FILES; i++)
		if (strcmp(cv.files[i].path, name) == 0)
			cv_op();
	return cv.real->xDelete(cv.real, name, sync_dir);
}

static int cv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return cv.real->xAccess(cv.real, name, flags, out);
}

static int cv_full(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return cv.real->xFullPathname(cv.real, name, n, out);
}

static int cv_random(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return cv.real->xRandomness(cv.real, n, out);
}

static int cv_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return cv.real->xSleep(cv.real, us);
}

static int cv_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return cv.real->xCurrentTime(cv.real, out);
}

static int cv_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return cv.real->xGetLastError(cv.real, n, out);
}

static int cv_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return cv.real->xCurrentTimeInt64(cv.real, out);
}

static sqlite3_vfs cv_vfs;

static void cv_install(void)
{
	if (cv.real)
		return;
	cv.real = sqlite3_vfs_find(NULL);
	assert_non_null(cv.real);
	cv_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct cfile) + cv.real->szOsFile,
		.mxPathname = cv.real->mxPathname,
		.zName = "sg-crash",
		.xOpen = cv_open,
		.xDelete = cv_delete,
		.xAccess = cv_access,
		.xFullPathname = cv_full,
		.xRandomness = cv_random,
		.xSleep = cv_sleep,
		.xCurrentTime = cv_time,
		.xGetLastError = cv_last_error,
		.xCurrentTimeInt64 = cv_time64,
	};
	assert_int_equal(sqlite3_vfs_register(&cv_vfs, 1), SQLITE_OK); /* the default from now on */
}

static void cv_reset(void)
{
	for (int i = 0; i < CV_FILES; i++)
		free(cv.files[i].durable);
	memset(cv.files, 0, sizeof(cv.files));
	cv.armed = cv.crashed = false;
	cv.ops = cv.crash_at = 0;
}

/* Treat what is on the disk now as durable (files made long ago, synced since). */
static void cv_all_durable(void)
{
	for (int i = 0; i < CV_FILES; i++) {
		struct cv_file *f = &cv.files[i];

		if (!f->path[0])
			continue;
		free(f->durable);
		f->durable = NULL;
		f->has_durable = read_whole(f->path, &f->durable, &f->durable_len);
	}
}

/* The spool as the counter's store. */
static int spool_load(void *ud, const char *key, int64_t *ret)
{
	return spool_value_get(ud, key, ret);
}

static int spool_save(void *ud, const char *key, int64_t value)
{
	return spool_value_save(ud, key, value);
}

static char tmp_root[PATH_MAX];

static void make_dir(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void make_dir(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	assert_int_equal(mkdir(buf, 0700), 0);
}

static void rm_dir(const char *dir)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/*
 * One run: a counter saves 10 pulses (the "before" total, published), then 10
 * more: the save of 20 is the write the crash interrupts at operation K (0 =
 * never). Returns the number of operations that save took. *RET_AFTER is the
 * total a counter started on the crashed copy publishes first.
 */
static unsigned crash_run(bool sync_full, enum crash_model model, unsigned k, double *ret_before, double *ret_after,
                          bool *ret_returned)
{
	struct sg_spool_cfg sc = {.max_size_mb = 16, .sync_full = sync_full};
	char dir[PATH_MAX], path[PATH_MAX + 16];
	struct sg_spool *sp;
	struct gpio_run g;
	uint64_t t;
	unsigned ops;

	cv_reset();
	cv.model = model;
	make_dir(dir, sizeof(dir), "%s/run-%u-%d-%d", tmp_root, k, sync_full, model);
	make_dir(cv.snap_dir, sizeof(cv.snap_dir), "%s/snap", dir);
	snprintf(path, sizeof(path), "%s/spool.db", dir);
	sc.path = path;
	sp = spool_open(&sc, 16, NULL);
	assert_non_null(sp);

	fake_gpio_reset();
	assert_int_equal(gr_start_store(&g, &sg_driver_counter, "line = 3; save_pulses = 10;", spool_load, spool_save,
	                                sp), 0);
	t = now() + 100 * MS;
	for (int i = 0; i < 10; i++)
		pulse(&g, t + (uint64_t)i * 5 * MS, 2 * MS);
	gr_advance(&g, t + 11 * S); /* published */
	t = now();
	assert_int_equal(g.n_saves, 1);
	*ret_before = gr_last(&g, "total")->number;
	assert_true(*ret_before == 10);
	cv_all_durable();

	cv.armed = true;
	cv.crash_at = k;
	for (int i = 10; i < 20; i++) /* the 20th pulse makes the save the crash interrupts */
		pulse(&g, t + 100 * MS + (uint64_t)i * 5 * MS, 2 * MS);
	*ret_returned = g.n_saves == 2;
	ops = cv.ops;
	if (!cv.crashed)
		cv_snapshot(); /* after the save returned */
	cv.armed = false;
	gr_crash(&g);
	spool_close(sp);
	gr_stop(&g);

	/* start again on what the crash left */
	snprintf(path, sizeof(path), "%s/spool.db", cv.snap_dir);
	sc.path = path;
	cv_reset();
	sp = spool_open(&sc, 16, NULL);
	assert_non_null(sp);
	fake_gpio_reset();
	assert_int_equal(gr_start_store(&g, &sg_driver_counter, "line = 3;", spool_load, spool_save, sp), 0);
	*ret_after = gr_last(&g, "total")->number;
	gr_stop(&g);
	spool_close(sp);
	rm_dir(dir);
	return ops;
}

static void test_crash_at_every_point_of_the_write(void **state)
{
	static const char *const model_names[] = {"killed process", "power cut"};
	(void)state;

	cv_install();
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/sg-counter-crash-XXXXXX");
	assert_non_null(mkdtemp(tmp_root));
	for (int sync_full = 0; sync_full <= 1; sync_full++) {
		for (int model = KILL; model <= POWER; model++) {
			double before, after;
			bool returned;
			unsigned total = crash_run(sync_full, (enum crash_model)model, 0, &before, &after, &returned);

			assert_true(returned);
			assert_true(total >= 2); /* at least a write and a sync */
			if (after != 20)
				fail_msg("sync %s, %s after the save returned: total %g, want 20", sync_full ? "full" : "normal",
				         model_names[model], after);
			for (unsigned k = 1; k <= total; k++) {
				crash_run(sync_full, (enum crash_model)model, k, &before, &after, &returned);
				if (after != 10 && after != 20)
					fail_msg("sync %s, %s before operation %u of %u: total %g (want 10 or 20)",
					         sync_full ? "full" : "normal", model_names[model], k, total, after);
				if (after < before)
					fail_msg("total went back from %g to %g", before, after);
			}
			print_message("sync %s, %s: the save is %u operations; a crash before each left 10 or 20\n",
			              sync_full ? "full" : "normal", model_names[model], total);
		}
	}
	rm_dir(tmp_root);
	cv_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_counts_the_edge_in_units_with_a_rate, setup),
		cmocka_unit_test_setup(test_rate_falls_without_pulses_then_zero, setup),
		cmocka_unit_test_setup(test_min_pulse_filters_bounce, setup),
		cmocka_unit_test_setup(test_dropped_events_counted_from_the_gap, setup),
		cmocka_unit_test_setup(test_save_cadence, setup),
		cmocka_unit_test_setup(test_only_saved_totals_are_published, setup),
		cmocka_unit_test_setup(test_stop_saves_and_start_reads_back, setup),
		cmocka_unit_test_setup(test_kill_at_every_pulse_loses_little_never_back, setup),
		cmocka_unit_test_setup(test_store_not_ready_or_missing, setup),
		cmocka_unit_test(test_options),
		cmocka_unit_test_setup(test_crash_at_every_point_of_the_write, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
