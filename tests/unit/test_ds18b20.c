/* SPDX-License-Identifier: MIT */
/*
 * test_ds18b20.c — the ds18b20 driver against a w1 sysfs fixture tree in a
 * temporary directory. A FIFO standing in for w1_slave models the kernel's
 * blocking read: the worker thread blocks in it while poll() keeps
 * returning at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "drivers/driver.h"
#include "drivers/drivers.h"
#include "fake_i2c.h"
#include "opts_helper.h"

#define RECHECK_US 100000

struct rig {
	char dir[64];
	char file[128];
	void *opts;
	struct fake_i2c_sink sink;
	struct sg_dev dev;
};

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
	nanosleep(&ts, NULL);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A fixture: <tmp>/28-0316a2795cff/w1_slave holding TEXT (NULL: make no file). */
static void rig_setup(struct rig *g, const char *text)
{
	char cfgtext[256];
	struct sg_opt_error err = {0};

	memset(g, 0, sizeof(*g));
	snprintf(g->dir, sizeof(g->dir), "/tmp/sg-w1-XXXXXX");
	assert_non_null(mkdtemp(g->dir));
	strcat(g->dir, "/28-0316a2795cff");
	assert_int_equal(mkdir(g->dir, 0700), 0);
	snprintf(g->file, sizeof(g->file), "%s/w1_slave", g->dir);
	if (text)
		write_file(g->file, text);
	snprintf(cfgtext, sizeof(cfgtext), "path = \"%s\";", g->dir);
	assert_int_equal(opts_fixture_parse(&sg_driver_ds18b20, cfgtext, &g->opts, &err), 0);
	fake_i2c_dev_setup(&g->dev, &sg_driver_ds18b20, g->opts, NULL, &g->sink);
	g->dev.interval_s = 30;
}

static void rig_free(struct rig *g)
{
	char *slash;

	sg_driver_ds18b20.fini(&g->dev);
	fake_i2c_dev_free(&g->dev);
	sg_driver_ds18b20.free_options(g->opts);
	unlink(g->file);
	rmdir(g->dir);
	slash = strrchr(g->dir, '/');
	*slash = '\0';
	rmdir(g->dir);
}

/* One cycle: request, then poll until the worker's result is taken (bounded). Returns the last poll's result. */
static int cycle(struct rig *g, uint64_t *delay)
{
	int r = sg_driver_ds18b20.poll(&g->dev, delay);

	if (r < 0)
		return r;
	assert_int_equal(*delay, 800000); /* 750 ms conversion + 50 ms */
	for (int i = 0; i < 1000; i++) {
		r = sg_driver_ds18b20.poll(&g->dev, delay);
		if (r < 0 || *delay != RECHECK_US)
			return r;
		sleep_ms(2);
	}
	fail_msg("the worker never answered");
	return -1;
}

#define LINE1_YES "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"

static void test_readings(void **state)
{
	static const struct {
		const char *legend;
		const char *text;
		double t;          /* NAN: nothing emitted */
		enum sg_fail fail; /* counted when t is NAN */
	} cases[] = {
		{"kernel example", LINE1_YES "72 01 4b 46 7f ff 0e 10 57 t=23125\n", 23.125, 0},
		{"below zero", "5e ff 4b 46 7f ff 02 10 7c : crc=7c YES\n5e ff 4b 46 7f ff 02 10 7c t=-10125\n", -10.125,
		 0},
		{"zero", LINE1_YES "00 00 4b 46 7f ff 0e 10 57 t=0\n", 0.0, 0},
		{"range top", LINE1_YES "x t=125000\n", 125.0, 0},
		{"range bottom", LINE1_YES "x t=-55000\n", -55.0, 0},
		{"no trailing newline", LINE1_YES "x t=21500", 21.5, 0},
		{"CRC NO", "72 01 4b 46 7f ff 0e 10 57 : crc=a0 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n", NAN,
		 SG_FAIL_CHECKSUM},
		{"85 °C power-on value", "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n",
		 NAN, SG_FAIL_INSANE},
		{"above 125 °C", LINE1_YES "x t=125001\n", NAN, SG_FAIL_INSANE},
		{"below -55 °C", LINE1_YES "x t=-55001\n", NAN, SG_FAIL_INSANE},
		{"empty: the kernel failed the read", "", NAN, SG_FAIL_IO},
		{"one line only", LINE1_YES, NAN, SG_FAIL_SYNTAX},
		{"no t=", LINE1_YES "72 01 4b 46 7f ff 0e 10 57\n", NAN, SG_FAIL_SYNTAX},
		{"t= not a number", LINE1_YES "x t=abc\n", NAN, SG_FAIL_SYNTAX},
		{"t= trailing junk", LINE1_YES "x t=23125x\n", NAN, SG_FAIL_SYNTAX},
		{"no verdict", "72 01 4b 46 7f ff 0e 10 57 : crc=57\nx t=23125\n", NAN, SG_FAIL_SYNTAX},
		{"t= overflows long", LINE1_YES "x t=99999999999999999999999\n", NAN, SG_FAIL_SYNTAX},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rig g;
		uint64_t delay;
		const struct fake_i2c_reading *t;

		rig_setup(&g, cases[i].text);
		assert_int_equal(sg_driver_ds18b20.init(&g.dev), 0);
		assert_int_equal(cycle(&g, &delay), 0);
		t = fake_i2c_find(&g.sink, "temperature");
		if (isnan(cases[i].t)) {
			if (t)
				fail_msg("%s: emitted %f", cases[i].legend, t->number);
			if (g.dev.stats.fail[cases[i].fail] != 1 || g.sink.n_fail != 1)
				fail_msg("%s: expected one %s failure, got %u failures (last %s)", cases[i].legend,
				         sg_fail_name(cases[i].fail), g.sink.n_fail, sg_fail_name(g.sink.last_fail));
		} else {
			if (!t || fabs(t->number - cases[i].t) > 1e-9 || g.sink.n_fail)
				fail_msg("%s: %s", cases[i].legend, t ? "wrong value or a failure counted" : "nothing emitted");
			assert_string_equal(t->unit, "°C");
		}
		/* the rest of the 30 s interval */
		assert_true(delay <= 30000000 && delay > 28000000);
		rig_free(&g);
	}
}

static void test_long_file_is_garbage(void **state)
{
	char text[600];
	struct rig g;
	uint64_t delay;
	(void)state;

	memset(text, 'a', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	rig_setup(&g, text);
	assert_int_equal(sg_driver_ds18b20.init(&g.dev), 0);
	assert_int_equal(cycle(&g, &delay), 0);
	assert_int_equal(g.dev.stats.fail[SG_FAIL_SYNTAX], 1);
	assert_int_equal(g.sink.n, 0);
	rig_free(&g);
}

/* The sensor's directory vanishes (unplugged): init fails, or poll returns the error for a reopen. */
static void test_sensor_gone(void **state)
{
	struct rig g;
	uint64_t delay;
	(void)state;

	rig_setup(&g, NULL);
	assert_int_equal(sg_driver_ds18b20.init(&g.dev), -ENOENT);
	rig_free(&g);

	rig_setup(&g, LINE1_YES "x t=20000\n");
	assert_int_equal(sg_driver_ds18b20.init(&g.dev), 0);
	assert_int_equal(cycle(&g, &delay), 0);
	assert_int_equal(g.sink.n, 1);
	unlink(g.file);
	assert_int_equal(cycle(&g, &delay), -ENOENT);
	assert_int_equal(g.sink.n, 1);
	/* the gateway then calls fini() and later init() again */
	sg_driver_ds18b20.fini(&g.dev);
	assert_int_equal(sg_driver_ds18b20.init(&g.dev), -ENOENT);
	write_file(g.file, LINE1_YES "x t=20500\n");
	assert_int_equal(sg_driver_ds18b20.init(&g.dev), 0);
	assert_int_equal(cycle(&g, &delay), 0);
	assert_float_equal(g.sink.r[g.sink.n - 1].number, 20.5, 1e-9);
	rig_free(&g);
}

/* While the read blocks (as a real conversion does for 750 ms), poll() returns at once. */
static void test_blocking_read_stays_off_the_loop(void **state)
{
	struct rig g;
	uint64_t delay, t0, worst = 0;
	int fd;
	(void)state;

	rig_setup(&g, NULL);
	assert_int_equal(mkfifo(g.file, 0600), 0);
	assert_int_equal(sg_driver_ds18b20.init(&g.dev), 0);
	assert_int_equal(sg_driver_ds18b20.poll(&g.dev, &delay), 0);
	assert_int_equal(delay, 800000);
	/* the worker is now blocked opening the FIFO, as it would be inside the kernel's read */
	for (int i = 0; i < 20; i++) {
		t0 = mono_us();
		assert_int_equal(sg_driver_ds18b20.poll(&g.dev, &delay), 0);
		if (mono_us() - t0 > worst)
			worst = mono_us() - t0;
		assert_int_equal(delay, RECHECK_US);
		sleep_ms(5);
	}
	assert_int_equal(g.sink.n, 0);
	assert_true(worst < 20000); /* each step took well under 20 ms (typically microseconds) */

	/* the "conversion" completes */
	fd = open(g.file, O_WRONLY);
	assert_true(fd >= 0);
	assert_true(write(fd, LINE1_YES "x t=19875\n", strlen(LINE1_YES "x t=19875\n")) > 0);
	close(fd);
	for (int i = 0; i < 1000 && delay == RECHECK_US; i++) {
		sleep_ms(2);
		assert_int_equal(sg_driver_ds18b20.poll(&g.dev, &delay), 0);
	}
	assert_int_equal(g.sink.n, 1);
	assert_float_equal(g.sink.r[0].number, 19.875, 1e-9);
	rig_free(&g);
}

static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/* Property: whatever the file holds, nothing crashes, and a published value is finite and in range. */
static void test_random_files(void **state)
{
	static const char *const pieces[] = {
		"72 01 4b 46 7f ff 0e 10 57", " : crc=57 ", "YES", "NO", "\n", "t=", "-", "85000", "23125", "125001",
		"99999999999999999999", " ", "\r", "x", "\xff", "=", "t=t=",
	};
	uint64_t seed = 4242;
	unsigned emitted = 0;
	struct rig g;
	uint64_t delay;
	(void)state;

	rig_setup(&g, "");
	assert_int_equal(sg_driver_ds18b20.init(&g.dev), 0);
	for (int iter = 0; iter < 400; iter++) {
		char text[300] = "";
		int n = (int)(rnd_next(&seed) % 12);

		if (iter % 3 == 0) /* well-formed, any temperature, sometimes with random bits after it */
			snprintf(text, sizeof(text), LINE1_YES "x t=%ld\n", (long)(rnd_next(&seed) % 200001) - 70000);
		for (int k = 0; k < n; k++) {
			const char *p = pieces[rnd_next(&seed) % (sizeof(pieces) / sizeof(pieces[0]))];
			strncat(text, p, sizeof(text) - strlen(text) - 1);
		}
		write_file(g.file, text);
		g.sink.n = 0;
		assert_int_equal(cycle(&g, &delay), 0);
		for (unsigned k = 0; k < g.sink.n; k++) {
			assert_true(isfinite(g.sink.r[k].number));
			assert_true(g.sink.r[k].number >= -55 && g.sink.r[k].number <= 125);
			assert_true(g.sink.r[k].number != 85);
		}
		emitted += g.sink.n;
	}
	/* some random files are valid: the property saw both sides */
	assert_true(emitted > 0);
	assert_true(g.sink.n_fail > 100);
	rig_free(&g);
}

static void test_options(void **state)
{
	struct sg_opt_error err = {0};
	void *opts = NULL;
	struct sg_dev dev;
	struct fake_i2c_sink sink;
	(void)state;

	/* a bare id means /sys/bus/w1/devices/<id>: absent on this machine, so init says ENOENT */
	assert_int_equal(opts_fixture_parse(&sg_driver_ds18b20, "path = \"28-00000000dead\";", &opts, &err), 0);
	fake_i2c_dev_setup(&dev, &sg_driver_ds18b20, opts, NULL, &sink);
	assert_int_equal(sg_driver_ds18b20.init(&dev), -ENOENT);
	fake_i2c_dev_free(&dev);
	sg_driver_ds18b20.free_options(opts);

	static const char *const bad[] = {
		"",
		"path = \"\";",
		"path = 5;",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		opts = NULL;
		memset(&err, 0, sizeof(err));
		assert_int_equal(opts_fixture_parse(&sg_driver_ds18b20, bad[i], &opts, &err), -EINVAL);
		assert_null(opts);
		assert_non_null(strstr(err.msg, "path"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readings),
		cmocka_unit_test(test_long_file_is_garbage),
		cmocka_unit_test(test_sensor_gone),
		cmocka_unit_test(test_blocking_read_stays_off_the_loop),
		cmocka_unit_test(test_random_files),
		cmocka_unit_test(test_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
