/* SPDX-License-Identifier: MIT */
/*
 * test_sds011.c — unit tests of the `sds011` driver (drivers/sds011.c).
 *
 * Frames in tests/data/sds011/ (make.py there): the Control Protocol V1.3 reply example
 * AA C0 D4 04 3A 0A A1 60 1D AB (PM2.5 123.6, PM10 261.8), frames of ours, a command reply
 * (0xC5), a wrong checksum, a wrong tail, a value above the datasheet's 999.9 µg/m³ range.
 * Rows are replayed whole, split at every byte boundary, bytewise and in random chunks;
 * then the recorded stream through the mapper.
 */
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
	assert_null(sg_driver_sds011.poll);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_descriptor),
		cmocka_unit_test(test_recorded_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
