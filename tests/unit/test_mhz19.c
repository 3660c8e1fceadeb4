/* SPDX-License-Identifier: MIT */
/*
 * test_mhz19.c — unit tests of the `mhz19` driver (drivers/mhz19.c).
 *
 * Responses: the MH-Z19B manual's example FF 86 02 20 00 00 00 00 58 (544 ppm) and frames
 * of ours with checksums computed by hand; replayed whole, split at every byte boundary,
 * bytewise and in random chunks. poll() is exercised on a pipe: it must write the manual's
 * request FF 01 86 00 00 00 00 00 79, return the interval, count an unanswered request as a
 * timeout at the next tick, survive a full port (EAGAIN) and report a dead one. Then a
 * request/response transcript (tests/data/mhz19) through the driver and the mapper.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

static void test_poll(void **state)
{
	static const uint8_t request[9] = {0xff, 0x01, 0x86, 0x00, 0x00, 0x00, 0x00, 0x00, 0x79};
	static const uint8_t answer[9] = {0xff, 0x86, 0x02, 0x20, 0x00, 0x00, 0x00, 0x00, 0x58};
	struct rp_run run;
	uint8_t got[64];
	uint64_t delay = 0;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	rp_start(&run, &sg_driver_mhz19, NULL);
	run.dev.fd = p[1];
	run.dev.interval_s = 5;

	/* first tick: one request, nothing counted */
	assert_int_equal(sg_driver_mhz19.poll(&run.dev, &delay), 0);
	assert_int_equal(delay, 5000000);
	assert_int_equal(read(p[0], got, sizeof(got)), 9);
	assert_memory_equal(got, request, 9);
	assert_int_equal(rp_total_fails(&run.cap), 0);

	/* no answer: the next tick counts a timeout and asks again */
	assert_int_equal(sg_driver_mhz19.poll(&run.dev, &delay), 0);
	assert_int_equal(run.cap.fails[SG_FAIL_TIMEOUT], 1);
	assert_int_equal(read(p[0], got, sizeof(got)), 9);

	/* answered: no timeout at the next tick */
	rp_feed(&run, answer, sizeof(answer), 0);
	assert_int_equal(run.cap.n, 1);
	assert_int_equal(sg_driver_mhz19.poll(&run.dev, &delay), 0);
	assert_int_equal(run.cap.fails[SG_FAIL_TIMEOUT], 1);
	assert_int_equal(read(p[0], got, sizeof(got)), 9);

	/* a full port: counted, not fatal; the missing request is no timeout later */
	while (write(p[1], got, sizeof(got)) > 0)
		;
	assert_int_equal(sg_driver_mhz19.poll(&run.dev, &delay), 0);
	assert_int_equal(run.cap.fails[SG_FAIL_TIMEOUT], 2); /* the previous request was never answered */
	assert_int_equal(run.cap.fails[SG_FAIL_IO], 1);
	while (read(p[0], got, sizeof(got)) > 0)
		;
	assert_int_equal(sg_driver_mhz19.poll(&run.dev, &delay), 0);
	assert_int_equal(run.cap.fails[SG_FAIL_TIMEOUT], 2);

	/* a dead port is the gateway's business (EPIPE here; a vanished tty gives EIO) */
	signal(SIGPIPE, SIG_IGN);
	close(p[0]);
	assert_int_equal(sg_driver_mhz19.poll(&run.dev, &delay), -EPIPE);
	run.dev.fd = -1;
	assert_int_equal(sg_driver_mhz19.poll(&run.dev, &delay), -EBADF);
	close(p[1]);
	rp_stop(&run);
}

static void test_options(void **state)
{
	struct sg_opt_error err = {.line = 0};
	void *opts = NULL;

	(void)state;
	assert_int_equal(rp_parse_opts(&sg_driver_mhz19, "temperature = false;", &opts, &err), 0);
	sg_driver_mhz19.free_options(opts);
	opts = NULL;
	assert_int_equal(rp_parse_opts(&sg_driver_mhz19, "temperature = \"on\";", &opts, &err), -EINVAL);
	assert_null(opts);
	assert_int_equal(err.line, 2);
	assert_ptr_equal(sg_driver_find("mhz19"), &sg_driver_mhz19);
	assert_non_null(sg_driver_mhz19.poll);
	assert_non_null(sg_driver_mhz19.feed);
	assert_true(sg_driver_mhz19.default_interval_s > 0);
}

static void test_transcript(void **state)
{
	struct sg_dev_stats st;

	(void)state;
	rp_replay_transcript(&sg_driver_mhz19, "temperature = true; interval = 5.0;", rp_data_path("mhz19/transcript.txt"),
			     rp_data_path("mhz19/expected.txt"), &st);
	assert_int_equal(st.fail[SG_FAIL_TIMEOUT], 2); /* the unanswered request and the one answered with a bad checksum */
	assert_int_equal(st.fail[SG_FAIL_GARBAGE], 1);
	assert_int_equal(st.fail[SG_FAIL_CHECKSUM], 1);
	assert_int_equal(st.fail[SG_FAIL_INSANE], 1);
	assert_int_equal(st.frames, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_poll),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_transcript),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
