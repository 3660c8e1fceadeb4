/* SPDX-License-Identifier: MIT */
/*
 * test_sds011.c — unit tests of the `sds011` driver (drivers/sds011.c).
 *
 * Frames in tests/data/sds011/ (make.py there): the Control Protocol V1.3 reply example
 * AA C0 D4 04 3A 0A A1 60 1D AB (PM2.5 123.6, PM10 261.8), frames of ours, a command reply
 * (0xC5), a wrong checksum, a wrong tail, a value above the datasheet's 999.9 µg/m³ range.
 * Rows are replayed whole, split at every byte boundary, bytewise and in random chunks;
 * then the recorded stream through the mapper. Query mode: the command frames (set reporting
 * mode, query data) and their answers, and active mode setting itself once.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "drivers/driver.h"
#include "drivers/drivers.h"
#include "opts_helper.h"
#include "replay.h"

#define UG "µg/m³"
#define EX_EXP RP_NUM("pm2_5", 123.6, UG), RP_NUM("pm10", 261.8, UG)
#define OURS_EXP RP_NUM("pm2_5", 15.3, UG), RP_NUM("pm10", 27.1, UG)

struct sds_row {
	const char *legend;
	const char *parts[8];
	struct rp_exp exp[RP_MAX_EXP];
	unsigned fails[SG_FAIL_MAX_];
	unsigned frames;
};

static const struct sds_row sds_rows[] = {
	{"the protocol's reply example", {"example.bin"}, {EX_EXP}, {0}, 1},
	{"the example as hex in the test", {"#AA C0 D4 04 3A 0A A1 60 1D AB"}, {EX_EXP}, {0}, 1},
	{"ours, then the example", {"frame.bin", "example.bin"}, {OURS_EXP, EX_EXP}, {0}, 2},
	{"command reply: checked, no reading", {"reply.bin", "frame.bin"}, {OURS_EXP}, {0}, 1},
	{"wrong checksum", {"bad_sum.bin", "frame.bin"}, {OURS_EXP}, {[SG_FAIL_CHECKSUM] = 1}, 1},
	{"wrong tail", {"bad_tail.bin", "frame.bin"}, {OURS_EXP}, {[SG_FAIL_SYNTAX] = 1}, 1},
	{"above the measuring range", {"insane.bin", "frame.bin"}, {OURS_EXP}, {[SG_FAIL_INSANE] = 1}, 1},
	/* the range's corner: raw 9999 / 10 is the double nearest 999.9, as the limit is: published */
	{"999.9 µg/m³, the top of the range", {"#AA C0 0F 27 0F 27 A1 60 6D AB"},
	 {RP_NUM("pm2_5", 999.9, UG), RP_NUM("pm10", 999.9, UG)}, {0}, 1},
	{"1000.0 µg/m³, above it", {"#AA C0 0F 27 10 27 A1 60 6E AB", "frame.bin"}, {OURS_EXP},
	 {[SG_FAIL_INSANE] = 1}, 1},
	{"noise around frames", {"#AB AB 00", "frame.bin", "#C0 AA 00", "example.bin"}, {OURS_EXP, EX_EXP},
	 {[SG_FAIL_GARBAGE] = 2}, 2},
	{"recorded stream", {"stream.bin"}, {EX_EXP, OURS_EXP, OURS_EXP, EX_EXP},
	 {[SG_FAIL_GARBAGE] = 1, [SG_FAIL_CHECKSUM] = 1, [SG_FAIL_SYNTAX] = 2, [SG_FAIL_INSANE] = 1}, 4},
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(sds_rows) / sizeof(sds_rows[0]); i++) {
		struct rp_case c = {.legend = sds_rows[i].legend, .opts = NULL, .frames = sds_rows[i].frames};
		size_t len;
		uint8_t *in = rp_concat("sds011", sds_rows[i].parts, 8, &len);

		c.input = (const char *)in;
		c.len = len;
		memcpy(c.exp, sds_rows[i].exp, sizeof(c.exp));
		memcpy(c.fails, sds_rows[i].fails, sizeof(c.fails));
		rp_run_cases(&sg_driver_sds011, &c, 1);
		free(in);
	}
}

static void test_descriptor(void **state)
{
	(void)state;
	assert_ptr_equal(sg_driver_find("sds011"), &sg_driver_sds011);
	assert_int_equal(sg_driver_sds011.default_baud, 9600);
	assert_non_null(sg_driver_sds011.poll);      /* query mode */
	assert_true(sg_driver_sds011.streams(NULL)); /* active mode reads the stream */
	assert_string_equal(sg_driver_sds011.fields[0].name, "pm2_5");
}

static void test_recorded_stream(void **state)
{
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_true(rp_read_file(rp_data_path("sds011/stream.bin"), &buf, &len));
	rp_replay_mapped(&sg_driver_sds011, "", buf, len, rp_data_path("sds011/expected.txt"));
	free(buf);
}

/*
 * Query mode (Laser Dust Sensor Control Protocol V1.3): first "set data reporting mode" to
 * query (command 2), then "query data" (command 4) once per interval; the frames are the
 * protocol's layout with device id FF FF (any sensor), checksums summed here by hand:
 * 02+01+01+FF+FF = 0x202 -> 02, and 04+FF+FF = 0x202 -> 02.
 */
static void test_query_mode(void **state)
{
	static const uint8_t set_query[19] = {0xaa, 0xb4, 0x02, 0x01, 0x01, 0, 0, 0, 0, 0,
	                                      0,    0,    0,    0,    0,    0xff, 0xff, 0x02, 0xab};
	static const uint8_t query[19] = {0xaa, 0xb4, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x02, 0xab};
	static const uint8_t set_active[19] = {0xaa, 0xb4, 0x02, 0x01, 0x00, 0, 0, 0, 0, 0,
	                                       0,    0,    0,    0,    0,    0xff, 0xff, 0x01, 0xab};
	static const uint8_t reply[10] = {0xaa, 0xc5, 0x02, 0x01, 0x01, 0x00, 0xa1, 0x60, 0x05, 0xab};
	static const uint8_t example[10] = {0xaa, 0xc0, 0xd4, 0x04, 0x3a, 0x0a, 0xa1, 0x60, 0x1d, 0xab};
	struct sg_opt_error err = {.line = 0};
	uint8_t buf[32];
	uint64_t timeout, delay;
	struct rp_run run;
	void *opts = NULL;

	(void)state;
	rp_start(&run, &sg_driver_sds011, "mode = \"query\"; interval = 30.0;");
	assert_false(sg_driver_sds011.streams(run.opts));
	/* first the mode, due or not */
	assert_int_equal(sg_driver_sds011.request(&run.dev, buf, sizeof(buf), &timeout), 19);
	assert_memory_equal(buf, set_query, 19);
	assert_int_equal(timeout, 1000000);
	sg_driver_sds011.no_answer(&run.dev); /* not answered: asked again */
	assert_int_equal(run.cap.fails[SG_FAIL_TIMEOUT], 1);
	assert_int_equal(sg_driver_sds011.request(&run.dev, buf, sizeof(buf), &timeout), 19);
	assert_memory_equal(buf, set_query, 19);
	assert_int_equal(sg_driver_sds011.answer(&run.dev, reply, 4), 0);
	assert_int_equal(sg_driver_sds011.answer(&run.dev, reply, sizeof(reply)), 10);
	/* then nothing until an interval, then one query */
	assert_int_equal(sg_driver_sds011.request(&run.dev, buf, sizeof(buf), &timeout), 0);
	assert_int_equal(sg_driver_sds011.poll(&run.dev, &delay), 0);
	assert_int_equal(sg_driver_sds011.request(&run.dev, buf, sizeof(buf), &timeout), 19);
	assert_memory_equal(buf, query, 19);
	assert_int_equal(sg_driver_sds011.answer(&run.dev, example, sizeof(example)), 10);
	assert_int_equal(run.cap.n, 2);
	assert_true(run.cap.r[0].number == 123.6 && run.cap.r[1].number == 261.8);
	assert_int_equal(sg_driver_sds011.request(&run.dev, buf, sizeof(buf), &timeout), 0);
	rp_stop(&run);

	/* active mode: the mode set once at the start, then the stream */
	rp_start(&run, &sg_driver_sds011, NULL);
	assert_true(sg_driver_sds011.streams(run.opts));
	assert_int_equal(sg_driver_sds011.request(&run.dev, buf, sizeof(buf), &timeout), 19);
	assert_memory_equal(buf, set_active, 19);
	assert_int_equal(sg_driver_sds011.poll(&run.dev, &delay), 0);
	assert_int_equal(sg_driver_sds011.request(&run.dev, buf, sizeof(buf), &timeout), 0);
	rp_stop(&run);

	assert_int_equal(opts_fixture_parse(&sg_driver_sds011, "mode = \"passive\";", &opts, &err), -EINVAL);
	assert_string_equal(err.msg, "\"mode\" must be one of \"active\", \"query\"");
	assert_int_equal(err.line, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_descriptor),
		cmocka_unit_test(test_recorded_stream),
		cmocka_unit_test(test_query_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
