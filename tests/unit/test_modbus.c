/* SPDX-License-Identifier: MIT */
/*
 * test_modbus.c — unit tests of the `modbus` driver (drivers/modbus.c), without libmodbus.
 *
 * The request frames the driver makes at its turns on the line are compared with frames
 * whose CRCs were computed independently (tests/data/modbus/make.py; the well-known
 * 11 03 00 6B 00 03 76 87 check is in there); answers go through answer() whole and split at
 * every byte boundary. The transcript in tests/data/modbus drives three cycles through the
 * driver and the mapper: timeouts, exception responses, bad CRCs, noise, wrong sizes, NaN.
 * Block reads: adjacent entries share one request. Option parsing is checked for its keys and
 * errors (the register table's own are test_modbus_proto.c's). test_modbus_libmodbus.c
 * checks the same driver against a libmodbus server, tests/integration/test_shared_line.py
 * several slaves on one line.
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
	assert_int_equal(st.fail[SG_FAIL_TIMEOUT], 1); /* voltage unanswered */
	assert_int_equal(st.fail[SG_FAIL_IO], 1);
	assert_int_equal(st.fail[SG_FAIL_CHECKSUM], 1);
	assert_int_equal(st.fail[SG_FAIL_GARBAGE], 1);
	assert_int_equal(st.fail[SG_FAIL_SYNTAX], 1);
	assert_int_equal(st.fail[SG_FAIL_INSANE], 1);
	assert_int_equal(st.frames, 14);
}

/* One request out, then RESPONSE split every way: same result each time. */
static void test_response_splits(void **state)
{
	static const uint8_t resp[] = {0x11, 0x04, 0x04, 0x43, 0x66, 0x80, 0x00, 0x7e, 0x1e}; /* 230.5 */
	static const uint8_t exc[] = {0x11, 0x83, 0x02, 0xc1, 0x34};
	static const uint8_t want_req[] = {0x11, 0x03, 0x00, 0x06, 0x00, 0x01, 0x66, 0x9b};
	static const uint8_t want_volt[] = {0x11, 0x04, 0x00, 0x00, 0x00, 0x02, 0x73, 0x5b};

	(void)state;
	for (size_t cut = 1; cut <= sizeof(resp); cut++) {
		struct rp_run run;
		uint64_t delay, timeout = 0;
		uint8_t got[16];

		rp_start(&run, &sg_driver_modbus, REGS);
		assert_int_equal(sg_driver_modbus.request(&run.dev, got, sizeof(got), &timeout), 0); /* no cycle yet */
		assert_int_equal(sg_driver_modbus.poll(&run.dev, &delay), 0);
		/* holding register 6 first (the planner's order); an exception answer names its code */
		assert_int_equal(sg_driver_modbus.request(&run.dev, got, sizeof(got), &timeout), 8);
		assert_memory_equal(got, want_req, sizeof(want_req));
		assert_int_equal(timeout, 200000);
		assert_int_equal(sg_driver_modbus.answer(&run.dev, exc, cut < sizeof(exc) ? cut : sizeof(exc)),
		                 cut < sizeof(exc) ? 0 : (ssize_t)sizeof(exc));
		if (cut < sizeof(exc))
			assert_int_equal(sg_driver_modbus.answer(&run.dev, exc, sizeof(exc)), (ssize_t)sizeof(exc));
		assert_int_equal(run.cap.fails[SG_FAIL_IO], 1);
		assert_non_null(strstr(run.cap.last_detail, "exception 2 (illegal data address)"));
		/* on to the input registers: voltage */
		for (int i = 0; i < 2; i++) {
			assert_int_equal(sg_driver_modbus.request(&run.dev, got, sizeof(got), &timeout), 8);
			sg_driver_modbus.no_answer(&run.dev);
		}
		assert_int_equal(sg_driver_modbus.request(&run.dev, got, sizeof(got), &timeout), 8);
		assert_memory_equal(got, want_volt, sizeof(want_volt));
		assert_int_equal(sg_driver_modbus.answer(&run.dev, resp, cut), cut == sizeof(resp) ? (ssize_t)cut : 0);
		if (cut < sizeof(resp))
			assert_int_equal(sg_driver_modbus.answer(&run.dev, resp, sizeof(resp)), (ssize_t)sizeof(resp));
		assert_int_equal(run.cap.n, 1);
		assert_string_equal(run.cap.r[0].field, "voltage");
		assert_true(run.cap.r[0].number == 230.5);
		assert_string_equal(run.cap.r[0].unit, "V");
		/* noise before an answer is passed on up to the slave's address, counted once */
		{
			static const uint8_t noisy[] = {0x00, 0x42, 0x11, 0x04};

			assert_int_equal(sg_driver_modbus.request(&run.dev, got, sizeof(got), &timeout), 8);
			assert_int_equal(sg_driver_modbus.answer(&run.dev, noisy, sizeof(noisy)), -2);
			assert_int_equal(run.cap.fails[SG_FAIL_GARBAGE], 1);
		}
		rp_stop(&run);
	}
}

/* Adjacent entries become one block read; max_gap joins entries across holes. */
static void test_block_reads(void **state)
{
	static const char *const table =
		"slave = 3; max_gap = 2; registers = (\n"
		"  { name = \"a\"; address = 100; type = \"u32\"; },\n"
		"  { name = \"b\"; address = 102; },\n"
		"  { name = \"c\"; address = 105; type = \"i16\"; },\n"
		"  { name = \"k\"; address = 0; function = \"coil\"; count = 4; } );";
	/* slave 3: read coils 0+4, read holding 100+6 */
	static const uint8_t coils[] = {0x03, 0x01, 0x00, 0x00, 0x00, 0x04};
	static const uint8_t regs[] = {0x03, 0x03, 0x00, 0x64, 0x00, 0x06};
	uint8_t got[16], ans[32];
	uint64_t delay, timeout;
	struct rp_run run;
	size_t n;

	(void)state;
	rp_start(&run, &sg_driver_modbus, table);
	assert_int_equal(sg_driver_modbus.poll(&run.dev, &delay), 0);
	assert_int_equal(sg_driver_modbus.request(&run.dev, got, sizeof(got), &timeout), 8);
	assert_memory_equal(got, coils, sizeof(coils));
	/* coils 1, 0, 1, 1: 0b1101 */
	n = 0;
	ans[n++] = 0x03, ans[n++] = 0x01, ans[n++] = 0x01, ans[n++] = 0x0d;
	{
		unsigned crc = 0xffff;
		for (size_t i = 0; i < n; i++) {
			crc ^= ans[i];
			for (int k = 0; k < 8; k++)
				crc = (crc & 1) ? (crc >> 1) ^ 0xa001 : crc >> 1;
		}
		ans[n++] = (uint8_t)crc, ans[n++] = (uint8_t)(crc >> 8);
	}
	assert_int_equal(sg_driver_modbus.answer(&run.dev, ans, n), (ssize_t)n);
	assert_int_equal(run.cap.n, 4);
	assert_string_equal(run.cap.r[0].field, "k_0");
	assert_true(run.cap.r[1].number == 0 && run.cap.r[3].number == 1);
	assert_int_equal(sg_driver_modbus.request(&run.dev, got, sizeof(got), &timeout), 8);
	assert_memory_equal(got, regs, sizeof(regs));
	sg_driver_modbus.no_answer(&run.dev);
	assert_int_equal(run.cap.fails[SG_FAIL_TIMEOUT], 1);
	assert_non_null(strstr(run.cap.last_detail, "slave 3 holding 100+6"));
	/* two requests per cycle, and the cycle is over */
	assert_int_equal(sg_driver_modbus.request(&run.dev, got, sizeof(got), &timeout), 0);
	assert_int_equal(sg_driver_modbus.request(&run.dev, got, sizeof(got), &timeout), 0);
	rp_stop(&run);
}

/* The cycle: one request per turn until the table is done; an interval restarts it only once it is over. */
static void test_cycle(void **state)
{
	struct rp_run run;
	uint64_t delay, timeout;
	uint8_t got[16];

	(void)state;
	rp_start(&run, &sg_driver_modbus, REGS);
	run.dev.interval_s = 3;
	assert_int_equal(sg_driver_modbus.poll(&run.dev, &delay), 0);
	assert_int_equal(delay, 3000000);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(sg_driver_modbus.request(&run.dev, got, sizeof(got), &timeout), 8);
		sg_driver_modbus.no_answer(&run.dev);
	}
	/* an interval in the middle of a cycle does not start it again */
	assert_int_equal(sg_driver_modbus.poll(&run.dev, &delay), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sg_driver_modbus.request(&run.dev, got, sizeof(got), &timeout), 8);
		sg_driver_modbus.no_answer(&run.dev);
	}
	assert_int_equal(sg_driver_modbus.request(&run.dev, got, sizeof(got), &timeout), 0);
	assert_int_equal(run.cap.fails[SG_FAIL_TIMEOUT], 6);
	assert_int_equal(sg_driver_modbus.poll(&run.dev, &delay), 0);
	assert_int_equal(sg_driver_modbus.request(&run.dev, got, sizeof(got), &timeout), 8);
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
	{"slave = 1; registers = ( { name = \"a\"; address = 1; type = \"double\"; } );", 2, "u16"},
	{"slave = 1; registers = ( { name = \"a\"; address = 1; function = \"memory\"; } );", 2, "holding"},
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
	assert_int_equal(opts_fixture_parse(&sg_driver_modbus, REGS, &opts, &err), 0);
	assert_non_null(opts);
	sg_driver_modbus.free_options(opts);
	for (size_t i = 0; i < sizeof(bad_opts) / sizeof(bad_opts[0]); i++) {
		memset(&err, 0, sizeof(err));
		opts = NULL;
		assert_int_equal(opts_fixture_parse(&sg_driver_modbus, bad_opts[i].text, &opts, &err), -EINVAL);
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
	assert_string_equal(sg_driver_modbus.framing(9600), "8E1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transcript),
		cmocka_unit_test(test_response_splits),
		cmocka_unit_test(test_block_reads),
		cmocka_unit_test(test_cycle),
		cmocka_unit_test(test_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
