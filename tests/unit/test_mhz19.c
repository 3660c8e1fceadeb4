/* SPDX-License-Identifier: MIT */
/*
 * test_mhz19.c — unit tests of the `mhz19` driver (drivers/mhz19.c).
 *
 * Responses: the MH-Z19B manual's example FF 86 02 20 00 00 00 00 58 (544 ppm) and frames
 * of ours with checksums computed by hand; replayed whole, split at every byte boundary,
 * bytewise and in random chunks, as answers to one request after another. The request
 * side: poll() makes one request due per interval, request() gives the manual's frame
 * FF 01 86 00 00 00 00 00 79 once and then nothing until the next interval, with an
 * answer timeout of 1 s (the interval when shorter); no_answer() counts a timeout. Then a
 * request/response transcript (tests/data/mhz19) through the driver and the mapper.
 * tests/unit/test_line.c and tests/integration/test_shared_line.py put it on a real line.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/driver.h"
#include "drivers/drivers.h"
#include "opts_helper.h"
#include "replay.h"

#define EXAMPLE "#FF 86 02 20 00 00 00 00 58"
#define R1000 "#FF 86 03 E8 45 00 00 00 4A" /* 1000 ppm, 29 °C */

struct mhz_row {
	const char *legend;
	const char *opts;
	const char *parts[6];
	struct rp_exp exp[RP_MAX_EXP];
	unsigned fails[SG_FAIL_MAX_];
	unsigned frames;
};

static const struct mhz_row mhz_rows[] = {
	{"the manual's example response", NULL, {EXAMPLE}, {RP_NUM("co2", 544, "ppm")}, {0}, 1},
	{"with the temperature byte", "temperature = true;", {R1000},
	 {RP_NUM("co2", 1000, "ppm"), RP_NUM("temperature", 29, "°C")}, {0}, 1},
	{"checksum off by one", NULL, {"#FF 86 02 20 00 00 00 00 59", EXAMPLE}, {RP_NUM("co2", 544, "ppm")},
	 {[SG_FAIL_CHECKSUM] = 1}, 1},
	{"noise and an echoed request around responses", NULL,
	 {"#00 11 FF 01 86 00 00 00 00 00 79", EXAMPLE, "#FE", R1000},
	 {RP_NUM("co2", 544, "ppm"), RP_NUM("co2", 1000, "ppm")}, {[SG_FAIL_GARBAGE] = 2}, 2},
	/* the range's top corner: 10000 ppm exactly is published, one more is not (integers: no rounding) */
	{"10000 ppm, the top of the range", NULL, {"#FF 86 27 10 42 00 00 00 01"}, {RP_NUM("co2", 10000, "ppm")}, {0}, 1},
	{"10001 ppm, above it", NULL, {"#FF 86 27 11 42 00 00 00 00", EXAMPLE}, {RP_NUM("co2", 544, "ppm")},
	 {[SG_FAIL_INSANE] = 1}, 1},
	{"20000 ppm is beyond any range of the sensor", NULL, {"#FF 86 4E 20 42 00 00 00 CA", EXAMPLE},
	 {RP_NUM("co2", 544, "ppm")}, {[SG_FAIL_INSANE] = 1}, 1},
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(mhz_rows) / sizeof(mhz_rows[0]); i++) {
		struct rp_case c = {.legend = mhz_rows[i].legend, .opts = mhz_rows[i].opts, .frames = mhz_rows[i].frames};
		size_t len;
		uint8_t *in = rp_concat("mhz19", mhz_rows[i].parts, 6, &len);

		c.input = (const char *)in;
		c.len = len;
		memcpy(c.exp, mhz_rows[i].exp, sizeof(c.exp));
		memcpy(c.fails, mhz_rows[i].fails, sizeof(c.fails));
		rp_run_cases(&sg_driver_mhz19, &c, 1);
		free(in);
	}
}

static void test_requests(void **state)
{
	static const uint8_t request[9] = {0xff, 0x01, 0x86, 0x00, 0x00, 0x00, 0x00, 0x00, 0x79};
	static const uint8_t answer[9] = {0xff, 0x86, 0x02, 0x20, 0x00, 0x00, 0x00, 0x00, 0x58};
	struct rp_run run;
	uint8_t got[64];
	uint64_t delay = 0, timeout = 0;

	(void)state;
	rp_start(&run, &sg_driver_mhz19, NULL);
	run.dev.interval_s = 5;

	/* nothing is asked before the first interval */
	assert_int_equal(sg_driver_mhz19.request(&run.dev, got, sizeof(got), &timeout), 0);
	/* an interval: one request, answered within 1 s; then nothing more until the next */
	assert_int_equal(sg_driver_mhz19.poll(&run.dev, &delay), 0);
	assert_int_equal(delay, 5000000);
	assert_int_equal(sg_driver_mhz19.request(&run.dev, got, sizeof(got), &timeout), 9);
	assert_memory_equal(got, request, 9);
	assert_int_equal(timeout, 1000000);
	assert_int_equal(sg_driver_mhz19.request(&run.dev, got, sizeof(got), &timeout), 0);
	/* no answer: a timeout */
	sg_driver_mhz19.no_answer(&run.dev);
	assert_int_equal(run.cap.fails[SG_FAIL_TIMEOUT], 1);
	/* the answer, split: 0 until it is whole, then all of it is claimed */
	assert_int_equal(sg_driver_mhz19.poll(&run.dev, &delay), 0);
	assert_int_equal(sg_driver_mhz19.request(&run.dev, got, sizeof(got), &timeout), 9);
	assert_int_equal(sg_driver_mhz19.answer(&run.dev, answer, 5), 0);
	assert_int_equal(sg_driver_mhz19.answer(&run.dev, answer, 9), 9);
	assert_int_equal(run.cap.n, 1);
	/* bytes before the answer are passed on up to the next FF, counted once */
	{
		static const uint8_t noisy[] = {0x00, 0x11, 0xff, 0x01, 0xff};

		assert_int_equal(sg_driver_mhz19.answer(&run.dev, noisy, sizeof(noisy)), -2);
		assert_int_equal(sg_driver_mhz19.answer(&run.dev, noisy + 2, 3), -2);
		assert_int_equal(run.cap.fails[SG_FAIL_GARBAGE], 1);
	}
	/* an interval shorter than 1 s bounds the wait */
	run.dev.interval_s = 0.5;
	assert_int_equal(sg_driver_mhz19.poll(&run.dev, &delay), 0);
	assert_int_equal(sg_driver_mhz19.request(&run.dev, got, sizeof(got), &timeout), 9);
	assert_int_equal(timeout, 500000);
	rp_stop(&run);
}

static void test_options(void **state)
{
	struct sg_opt_error err = {.line = 0};
	void *opts = NULL;

	(void)state;
	assert_int_equal(opts_fixture_parse(&sg_driver_mhz19, "temperature = false;", &opts, &err), 0);
	sg_driver_mhz19.free_options(opts);
	opts = NULL;
	assert_int_equal(opts_fixture_parse(&sg_driver_mhz19, "temperature = \"on\";", &opts, &err), -EINVAL);
	assert_null(opts);
	assert_int_equal(err.line, 2);
	assert_string_equal(err.msg, "\"temperature\" must be a boolean (true or false)");
	assert_ptr_equal(sg_driver_find("mhz19"), &sg_driver_mhz19);
	assert_non_null(sg_driver_mhz19.poll);
	assert_non_null(sg_driver_mhz19.request);
	assert_null(sg_driver_mhz19.feed);
	assert_true(sg_driver_mhz19.default_interval_s > 0);
}

static void test_transcript(void **state)
{
	struct sg_dev_stats st;

	(void)state;
	rp_replay_transcript(&sg_driver_mhz19, "temperature = true; interval = 5.0;", rp_data_path("mhz19/transcript.txt"),
			     rp_data_path("mhz19/expected.txt"), &st);
	assert_int_equal(st.fail[SG_FAIL_TIMEOUT], 1); /* the unanswered request */
	assert_int_equal(st.fail[SG_FAIL_GARBAGE], 1);
	assert_int_equal(st.fail[SG_FAIL_CHECKSUM], 1);
	assert_int_equal(st.fail[SG_FAIL_INSANE], 1);
	assert_int_equal(st.frames, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_transcript),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
