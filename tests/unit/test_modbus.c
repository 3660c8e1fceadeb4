/* SPDX-License-Identifier: MIT */
/*
 * test_modbus.c — unit tests of the `modbus` driver (drivers/modbus.c), without libmodbus.
 *
 * The request frames poll() writes are compared with frames whose CRCs were computed
 * independently (tests/data/modbus/make.py; the well-known 11 03 00 6B 00 03 76 87 check is
 * in there); responses go through feed() whole, split at every byte boundary, bytewise and
 * in random chunks. The transcript in tests/data/modbus drives several poll cycles through
 * the driver and the mapper: timeouts, exception responses, bad CRCs, noise, wrong sizes,
 * NaN. Option parsing is checked for every key and its errors. test_modbus_libmodbus.c
 * checks the same driver against a libmodbus server.
 */
#include <errno.h>
#include <fcntl.h>
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

#define REGS                                                                                                  \
	"slave = 17; timeout = 0.2;\n"                                                                        \
	"registers = (\n"                                                                                     \
	"  { name = \"voltage\"; address = 0; type = \"float32\"; function = \"input\"; unit = \"V\"; },\n"   \
	"  { name = \"current\"; address = 6; type = \"int16\"; scale = 0.01; unit = \"A\"; },\n"             \
	"  { name = \"energy\"; address = 0x156; type = \"uint32\"; function = \"input\"; word_order = \"little\";" \
	" scale = 0.1; unit = \"kWh\"; },\n"                                                                  \
	"  { name = \"r108\"; address = 107; function = \"holding\"; },\n"                                    \
	"  { name = \"r110\"; address = 109; },\n"                                                            \
	"  { name = \"r9\"; address = 8; function = \"input\"; }\n"                                           \
	");"

static void test_transcript(void **state)
{
	struct sg_dev_stats st;

	(void)state;
	rp_replay_transcript(&sg_driver_modbus, REGS, rp_data_path("modbus/transcript.txt"),
			     rp_data_path("modbus/expected.txt"), &st);
	assert_int_equal(st.fail[SG_FAIL_TIMEOUT], 2); /* voltage unanswered; energy answered with a bad CRC */
	assert_int_equal(st.fail[SG_FAIL_IO], 1);
	assert_int_equal(st.fail[SG_FAIL_CHECKSUM], 1);
	assert_int_equal(st.fail[SG_FAIL_GARBAGE], 1);
	assert_int_equal(st.fail[SG_FAIL_SYNTAX], 1);
	assert_int_equal(st.fail[SG_FAIL_INSANE], 1);
	assert_int_equal(st.frames, 10);
}

/* One request out (through a pipe), then RESPONSE split every way: same result each time. */
static void test_response_splits(void **state)
{
	static const uint8_t resp[] = {0x11, 0x04, 0x04, 0x43, 0x66, 0x80, 0x00, 0x7e, 0x1e}; /* 230.5 */
	static const uint8_t exc[] = {0x11, 0x83, 0x02, 0xc1, 0x34};
	static const uint8_t want_req[] = {0x11, 0x03, 0x00, 0x06, 0x00, 0x01, 0x66, 0x9b};

	(void)state;
	for (size_t cut = 0; cut <= sizeof(resp); cut++) {
		struct rp_run run;
		uint64_t delay;
		uint8_t got[16];
		int p[2];

		assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
		rp_start(&run, &sg_driver_modbus, REGS);
		run.dev.fd = p[1];
		assert_int_equal(sg_driver_modbus.poll(&run.dev, &delay), 0);
		assert_int_equal(delay, 200000);
		assert_int_equal(read(p[0], got, sizeof(got)), 8);
		rp_feed(&run, resp, cut, 0);
		assert_int_equal(run.cap.n, cut == sizeof(resp));
		rp_feed(&run, resp + cut, sizeof(resp) - cut, 1);
		assert_int_equal(run.cap.n, 1);
		assert_string_equal(run.cap.r[0].field, "voltage");
		assert_true(run.cap.r[0].number == 230.5);
		assert_string_equal(run.cap.r[0].unit, "V");
		assert_int_equal(rp_total_fails(&run.cap), 0);

		/* the second entry: holding register 6; an exception answer names its code */
		assert_int_equal(sg_driver_modbus.poll(&run.dev, &delay), 0);
		assert_int_equal(read(p[0], got, sizeof(got)), 8);
		assert_memory_equal(got, want_req, sizeof(want_req));
		rp_feed(&run, exc, sizeof(exc), cut % 3 + 1);
		assert_int_equal(run.cap.fails[SG_FAIL_IO], 1);
		assert_non_null(strstr(run.cap.last_detail, "exception 2 (illegal data address)"));
		/* bytes nobody asked for */
		rp_feed(&run, resp, sizeof(resp), 0);
		assert_int_equal(run.cap.fails[SG_FAIL_GARBAGE], 1);
		assert_int_equal(run.cap.n, 1);
		close(p[0]);
		close(p[1]);
		rp_stop(&run);
	}
}

/* The cycle: one request per tick `timeout` apart, then the rest of the interval. */
static void test_cycle_timing(void **state)
{
	struct rp_run run;
	uint64_t delay, total = 0;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	rp_start(&run, &sg_driver_modbus, REGS);
	run.dev.fd = p[1];
	run.dev.interval_s = 3;
	for (int tick = 0; tick < 7; tick++) {
		assert_int_equal(sg_driver_modbus.poll(&run.dev, &delay), 0);
		total += delay;
		assert_int_equal(delay, tick < 6 ? 200000 : 3000000 - 6 * 200000);
	}
	assert_int_equal(total, 3000000);
	assert_int_equal(run.cap.fails[SG_FAIL_TIMEOUT], 6); /* nobody answered */
	/* an interval shorter than a cycle starts the next cycle at once */
	run.dev.interval_s = 0.5;
	for (int tick = 0; tick < 12; tick++) {
		assert_int_equal(sg_driver_modbus.poll(&run.dev, &delay), 0);
		assert_int_equal(delay, 200000);
	}
	close(p[0]);
	close(p[1]);
	rp_stop(&run);
}

static const struct {
	const char *text;
	int line;        /* line of the error inside "dev = {\n...", 0 = not checked */
	const char *msg; /* part of the message */
} bad_opts[] = {
	{"registers = ( { name = \"a\"; address = 1; } );", 1, "slave"},
	{"slave = 0; registers = ( { name = \"a\"; address = 1; } );", 2, "1..247"},
	{"slave = 248; registers = ( { name = \"a\"; address = 1; } );", 2, "1..247"},
	{"slave = 1;", 1, "registers"},
	{"slave = 1; registers = ();", 2, "registers"},
	{"slave = 1; registers = ( { address = 1; } );", 2, "name"},
	{"slave = 1; registers = ( { name = \"a b\"; address = 1; } );", 2, "field name"},
	{"slave = 1; registers = ( { name = \"a\"; } );", 2, "address"},
	{"slave = 1; registers = ( { name = \"a\"; address = 70000; } );", 2, "0..65535"},
	{"slave = 1; registers = ( { name = \"a\"; address = 65535; type = \"float32\"; } );", 2, "65535"},
	{"slave = 1; registers = ( { name = \"a\"; address = 1; type = \"double\"; } );", 2, "uint16"},
	{"slave = 1; registers = ( { name = \"a\"; address = 1; function = \"coil\"; } );", 2, "holding"},
	{"slave = 1; registers = ( { name = \"a\"; address = 1; word_order = \"middle\"; } );", 2, "little"},
	{"slave = 1; registers = ( { name = \"a\"; address = 1; scale = 0; } );", 2, "scale"},
	{"slave = 1; registers = ( { name = \"a\"; address = 1; unit = 5; } );", 2, "unit"},
	{"slave = 1; registers = ( { name = \"a\"; address = 1; colour = \"red\"; } );", 2, "colour"},
	{"slave = 1; registers = ( { name = \"a\"; address = 1; }, { name = \"a\"; address = 2; } );", 2, "twice"},
	{"slave = 1; timeout = 30; registers = ( { name = \"a\"; address = 1; } );", 2, "timeout"},
	{"slave = 1;\nregisters = ( \"a\" );", 3, "groups"},
};

static void test_options(void **state)
{
	struct sg_opt_error err;
	void *opts = NULL;

	(void)state;
	assert_int_equal(rp_parse_opts(&sg_driver_modbus, REGS, &opts, &err), 0);
	assert_non_null(opts);
	sg_driver_modbus.free_options(opts);
	for (size_t i = 0; i < sizeof(bad_opts) / sizeof(bad_opts[0]); i++) {
		memset(&err, 0, sizeof(err));
		opts = NULL;
		assert_int_equal(rp_parse_opts(&sg_driver_modbus, bad_opts[i].text, &opts, &err), -EINVAL);
		assert_null(opts);
		if (!strstr(err.msg, bad_opts[i].msg) || (bad_opts[i].line && err.line != bad_opts[i].line))
			fprintf(stderr, "\"%s\": line %d: %s\n", bad_opts[i].text, err.line, err.msg);
		assert_non_null(strstr(err.msg, bad_opts[i].msg));
		if (bad_opts[i].line)
			assert_int_equal(err.line, bad_opts[i].line);
	}
	assert_ptr_equal(sg_driver_find("modbus"), &sg_driver_modbus);
	assert_null(sg_driver_modbus.fields);
	assert_non_null(sg_driver_modbus.poll);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transcript),
		cmocka_unit_test(test_response_splits),
		cmocka_unit_test(test_cycle_timing),
		cmocka_unit_test(test_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
