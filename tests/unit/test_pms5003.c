/* SPDX-License-Identifier: MIT */
/*
 * test_pms5003.c — unit tests of the `pms5003` driver (drivers/pms5003.c).
 *
 * Frames in tests/data/pms5003/ are built by make.py there to the datasheet's layout
 * (Appendix I: 0x42 0x4D, length 28, 13 words, check = sum of bytes 0..29). Table rows
 * combine them with noise, cut frames and corrupted checks and are replayed whole, split
 * at every byte boundary, bytewise and in random chunks; then options and the recorded
 * stream through the mapper.
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
#define F1_EXP RP_NUM("pm1_0", 5, UG), RP_NUM("pm2_5", 8, UG), RP_NUM("pm10", 9, UG)
#define F2_EXP RP_NUM("pm1_0", 10, UG), RP_NUM("pm2_5", 17, UG), RP_NUM("pm10", 22, UG)

struct pms_row {
	const char *legend;
	const char *opts;
	const char *parts[6];
	struct rp_exp exp[RP_MAX_EXP];
	unsigned fails[SG_FAIL_MAX_];
	unsigned frames;
};

static const struct pms_row pms_rows[] = {
	{"one frame", NULL, {"frame1.bin"}, {F1_EXP}, {0}, 1},
	{"two frames back to back", NULL, {"frame1.bin", "frame2.bin"}, {F1_EXP, F2_EXP}, {0}, 2},
	{"all zeros is a valid reading", NULL, {"zeros.bin"},
	 {RP_NUM("pm1_0", 0, UG), RP_NUM("pm2_5", 0, UG), RP_NUM("pm10", 0, UG)}, {0}, 1},
	{"CF=1 values and counts when asked", "cf1 = true; counts = true;", {"frame2.bin"},
	 {F2_EXP, RP_NUM("pm1_0_cf1", 12, UG), RP_NUM("pm2_5_cf1", 20, UG), RP_NUM("pm10_cf1", 25, UG),
	  RP_NUM("particles_0_3um", 3000, "1/0.1L"), RP_NUM("particles_0_5um", 900, "1/0.1L"),
	  RP_NUM("particles_1_0um", 150, "1/0.1L"), RP_NUM("particles_2_5um", 20, "1/0.1L"),
	  RP_NUM("particles_5_0um", 5, "1/0.1L"), RP_NUM("particles_10um", 2, "1/0.1L")},
	 {0},
	 1},
	{"noise before, between and after", NULL, {"#00 FF 42 00", "frame1.bin", "#4D 4D", "frame2.bin", "#42"},
	 {F1_EXP, F2_EXP}, {[SG_FAIL_GARBAGE] = 2}, 2},
	{"check word off by one", NULL, {"bad_sum.bin", "frame1.bin"}, {F1_EXP}, {[SG_FAIL_CHECKSUM] = 1}, 1},
	{"PMS3003 frame (length 20)", NULL, {"pms3003.bin", "frame1.bin"}, {F1_EXP}, {[SG_FAIL_SYNTAX] = 1}, 1},
	{"PM1.0 above PM2.5", NULL, {"insane.bin", "frame2.bin"}, {F2_EXP}, {[SG_FAIL_INSANE] = 1}, 1},
	{"recorded stream", NULL, {"stream.bin"}, {F1_EXP, F2_EXP, RP_NUM("pm1_0", 0, UG), RP_NUM("pm2_5", 0, UG),
						   RP_NUM("pm10", 0, UG), F1_EXP},
	 {[SG_FAIL_GARBAGE] = 1, [SG_FAIL_CHECKSUM] = 2, [SG_FAIL_SYNTAX] = 1, [SG_FAIL_INSANE] = 1}, 4},
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pms_rows) / sizeof(pms_rows[0]); i++) {
		struct rp_case c = {.legend = pms_rows[i].legend, .opts = pms_rows[i].opts, .frames = pms_rows[i].frames};
		size_t len;
		uint8_t *in = rp_concat("pms5003", pms_rows[i].parts, 6, &len);

		c.input = (const char *)in;
		c.len = len;
		memcpy(c.exp, pms_rows[i].exp, sizeof(c.exp));
		memcpy(c.fails, pms_rows[i].fails, sizeof(c.fails));
		rp_run_cases(&sg_driver_pms5003, &c, 1);
		free(in);
	}
}

static void test_options(void **state)
{
	struct sg_opt_error err = {.line = 0};
	void *opts = NULL;

	(void)state;
	assert_int_equal(opts_fixture_parse(&sg_driver_pms5003, "counts = false;", &opts, &err), 0);
	sg_driver_pms5003.free_options(opts);
	opts = NULL;
	assert_int_equal(opts_fixture_parse(&sg_driver_pms5003, "\n\ncf1 = 1;", &opts, &err), -EINVAL);
	assert_null(opts);
	assert_int_equal(err.line, 4);
	assert_string_equal(err.msg, "\"cf1\" must be a boolean (true or false)");
	assert_ptr_equal(sg_driver_find("pms5003"), &sg_driver_pms5003);
	assert_int_equal(sg_driver_pms5003.default_baud, 9600);
}

static void test_recorded_stream(void **state)
{
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_true(rp_read_file(rp_data_path("pms5003/stream.bin"), &buf, &len));
	rp_replay_mapped(&sg_driver_pms5003, "", buf, len, rp_data_path("pms5003/expected.txt"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_recorded_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
