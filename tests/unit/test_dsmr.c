/* SPDX-License-Identifier: MIT */
/*
 * test_dsmr.c — unit tests of the `dsmr` driver (drivers/dsmr.c).
 *
 * The telegrams live in tests/data/dsmr/ (written by make.py there, CRCs computed in
 * Python): the DSMR 5.0.2 §6.12 example as printed (its printed CRC is wrong: it must fail)
 * and with the CRC of its text, a DSMR 2.2 telegram as a 7E1 port delivers it (and with its
 * parity bits, which the driver no longer strips: the port's framing does), an
 * e-MUCS telegram, one with a vacant M-Bus channel and two gas meters. Each table row
 * concatenates some of them with noise and is replayed whole, split at every byte boundary,
 * bytewise and in random chunks. Then the meter timestamps of the gas readings, the
 * recorded stream through the mapper, and the real captures in ../shared/testdata/real/dsmr.
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

#define SPEC_EXP                                                                                           \
	RP_STR("version", "50"), RP_STR("timestamp", "2010-12-09T11:30:20+01:00"),                         \
		RP_NUM("energy_delivered_tariff1", 123456.789, "kWh"),                                     \
		RP_NUM("energy_delivered_tariff2", 123456.789, "kWh"),                                     \
		RP_NUM("energy_returned_tariff1", 123456.789, "kWh"),                                      \
		RP_NUM("energy_returned_tariff2", 123456.789, "kWh"), RP_NUM("tariff", 2, ""),             \
		RP_NUM("power_delivered", 1.193, "kW"), RP_NUM("power_returned", 0, "kW"),                 \
		RP_NUM("power_failures", 4, ""), RP_NUM("long_power_failures", 2, ""),                     \
		RP_NUM("voltage_l1", 220.1, "V"), RP_NUM("voltage_l2", 220.2, "V"),                        \
		RP_NUM("voltage_l3", 220.3, "V"), RP_NUM("current_l1", 1, "A"), RP_NUM("current_l2", 2, "A"), \
		RP_NUM("current_l3", 3, "A"), RP_NUM("power_delivered_l1", 1.111, "kW"),                   \
		RP_NUM("power_delivered_l2", 2.222, "kW"), RP_NUM("power_delivered_l3", 3.333, "kW"),      \
		RP_NUM("power_returned_l1", 4.444, "kW"), RP_NUM("power_returned_l2", 5.555, "kW"),        \
		RP_NUM("power_returned_l3", 6.666, "kW"), RP_NUM("gas_delivered", 12785.123, "m³")

#define EMUCS_EXP                                                                                          \
	RP_STR("version", "50217"), RP_STR("timestamp", "2023-07-04T10:15:30+02:00"),                      \
		RP_NUM("energy_delivered_tariff1", 123.456, "kWh"),                                        \
		RP_NUM("energy_delivered_tariff2", 234.567, "kWh"),                                        \
		RP_NUM("energy_returned_tariff1", 1.234, "kWh"), RP_NUM("energy_returned_tariff2", 2.345, "kWh"), \
		RP_NUM("tariff", 2, ""), RP_NUM("average_demand", 1.5, "kW"),                              \
		RP_NUM("max_demand_month", 3.25, "kW"), RP_NUM("power_delivered", 0.42, "kW"),             \
		RP_NUM("power_returned", 0, "kW"), RP_NUM("voltage_l1", 231.5, "V"),                       \
		RP_NUM("current_l1", 2.1, "A"), RP_NUM("gas_delivered", 456.789, "m³"),                    \
		RP_NUM("water_delivered", 78.901, "m³")

#define MBUS_EXP                                                                                           \
	RP_STR("version", "50"), RP_STR("timestamp", "2024-01-01T00:00:05+01:00"),                         \
		RP_NUM("power_delivered", 0.1, "kW"), RP_NUM("gas_delivered", 1000.001, "m³"),             \
		RP_NUM("gas_delivered_2", 2000.002, "m³")

#define DSMR22_EXP                                                                                         \
	RP_NUM("energy_delivered_tariff1", 1234.567, "kWh"), RP_NUM("energy_delivered_tariff2", 2345.678, "kWh"), \
		RP_NUM("energy_returned_tariff1", 12.345, "kWh"),                                          \
		RP_NUM("energy_returned_tariff2", 23.456, "kWh"), RP_NUM("tariff", 1, ""),                 \
		RP_NUM("power_delivered", 1.25, "kW"), RP_NUM("power_returned", 0, "kW"),                  \
		RP_NUM("gas_delivered", 4321.098, "m³")

/* Input parts: a data file name, or a literal when it starts with '=' (the '=' dropped). */
struct dsmr_row {
	const char *legend;
	const char *parts[6];
	struct rp_exp exp[RP_MAX_EXP];
	unsigned fails[SG_FAIL_MAX_];
	unsigned frames;
};

static const struct dsmr_row dsmr_rows[] = {
	{"§6.12 example with the CRC of its text", {"spec_fixed.txt"}, {SPEC_EXP}, {0}, 1},
	{"§6.12 example as printed: CRC EF2F does not match", {"spec_printed.txt"}, {{NULL}},
	 {[SG_FAIL_CHECKSUM] = 1}, 0},
	{"one value changed, CRC kept", {"bad_crc.txt", "spec_fixed.txt"}, {SPEC_EXP}, {[SG_FAIL_CHECKSUM] = 1}, 1},
	{"DSMR 2.2 as a 7E1 port delivers it, no CRC, gas on a continuation line", {"dsmr22.txt"}, {DSMR22_EXP},
	 {0}, 1},
	{"DSMR 2.2 with its parity bits, as an 8N1 port would read it: not P1 text", {"dsmr22_7e1.bin"}, {{NULL}},
	 {[SG_FAIL_GARBAGE] = 1}, 0},
	{"e-MUCS: 96.1.4 version, 24.2.3 gas, water on channel 2, peaks", {"emucs.txt"}, {EMUCS_EXP}, {0}, 1},
	{"vacant M-Bus channel, two gas meters", {"mbus.txt"}, {MBUS_EXP}, {0}, 1},
	{"noise between telegrams", {"=\x01\x02 noise\r\n", "mbus.txt", "=\xff\xfe\r\n\r\n", "mbus.txt"},
	 {MBUS_EXP, MBUS_EXP}, {[SG_FAIL_GARBAGE] = 2}, 2},
	{"capture starting mid-telegram", {"=1-0:62.7.0(06.666*kW)\r\n0-1:24.1.0(003)\r\n!1234\r\n", "mbus.txt"},
	 {MBUS_EXP}, {[SG_FAIL_GARBAGE] = 1}, 1},
	{"telegram cut short by the next one",
	 {"=/ISk5\\2MT382-1000\r\n\r\n1-3:0.2.8(50)\r\n1-0:1.8.1(000", "=\r\n", "emucs.txt"}, {EMUCS_EXP},
	 {[SG_FAIL_SYNTAX] = 1}, 1},
	{"insane voltage with a valid CRC", {"insane.txt", "mbus.txt"}, {MBUS_EXP}, {[SG_FAIL_INSANE] = 1}, 1},
	{"CRC with a non-hex digit", {"=/X\r\n\r\n1-0:1.7.0(00.100*kW)\r\n!12G4\r\n", "mbus.txt"}, {MBUS_EXP},
	 {[SG_FAIL_SYNTAX] = 1}, 1},
	{"CRC of three digits", {"=/X\r\n\r\n1-0:1.7.0(00.100*kW)\r\n!124\r\n", "mbus.txt"}, {MBUS_EXP},
	 {[SG_FAIL_SYNTAX] = 1}, 1},
	{"malformed value, no CRC", {"=/X\r\n\r\n1-0:1.7.0(00.1a0*kW)\r\n!\r\n"}, {{NULL}}, {[SG_FAIL_SYNTAX] = 1},
	 0},
	{"line without OBIS code, no CRC", {"=/X\r\n\r\nhello\r\n!\r\n"}, {{NULL}}, {[SG_FAIL_SYNTAX] = 1}, 0},
	{"empty value is no reading", {"=/X\r\n\r\n1-0:1.7.0()\r\n1-0:2.7.0(01.000*kW)\r\n!\r\n"},
	 {RP_NUM("power_returned", 1, "kW")}, {0}, 1},
	{"a value without unit takes the table's", {"=/X\r\n\r\n1-0:32.7.0(230.0)\r\n!\r\n"},
	 {RP_NUM("voltage_l1", 230, "V")}, {0}, 1},
	{"invalid date in 0-0:1.0.0", {"=/X\r\n\r\n0-0:1.0.0(230231120000W)\r\n!\r\n"}, {{NULL}},
	 {[SG_FAIL_INSANE] = 1}, 0},
	{"M-Bus device type too large for an int (found by fuzzing)",
	 {"=/X\r\n\r\n0-1:24.1.0(230115140000)\r\n0-1:24.2.1(231231230000W)(00001.000*m3)\r\n!\r\n"}, {{NULL}},
	 {[SG_FAIL_INSANE] = 1}, 0},
	{"overlong telegram, then a good one", {"=/X\r\n", "@5000", "=\r\n!\r\n", "mbus.txt"}, {MBUS_EXP},
	 {[SG_FAIL_OVERLONG] = 1}, 1},
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(dsmr_rows) / sizeof(dsmr_rows[0]); i++) {
		struct rp_case c = {.legend = dsmr_rows[i].legend, .opts = NULL, .frames = dsmr_rows[i].frames};
		size_t len;
		uint8_t *in = rp_concat("dsmr", dsmr_rows[i].parts, 6, &len);

		c.input = (const char *)in;
		c.len = len;
		memcpy(c.exp, dsmr_rows[i].exp, sizeof(c.exp));
		memcpy(c.fails, dsmr_rows[i].fails, sizeof(c.fails));
		rp_run_cases(&sg_driver_dsmr, &c, 1);
		free(in);
	}
}

/* The M-Bus readings carry the meter's own time; everything else "now" (0). */
static void test_timestamps(void **state)
{
	static const struct {
		const char *file, *field;
		int64_t utc_s;
	} want[] = {
		{"spec_fixed.txt", "gas_delivered", 1291890300},     /* 101209112500W = 2010-12-09 10:25 UTC */
		{"emucs.txt", "gas_delivered", 1688458500},          /* 230704101500S */
		{"emucs.txt", "water_delivered", 1688458200},        /* 230704101000S */
		{"emucs.txt", "max_demand_month", 1688316300},       /* 230702184500S */
		{"mbus.txt", "gas_delivered", 1704060000},           /* 231231230000W */
		{"mbus.txt", "gas_delivered_2", 1704060300},         /* 231231230500W */
		{"dsmr22.txt", "gas_delivered", 0},                  /* no DST letter: offset unknown */
		{"spec_fixed.txt", "voltage_l1", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct rp_run run;
		uint8_t *buf;
		size_t len;
		int k;

		char rel[128];

		snprintf(rel, sizeof(rel), "dsmr/%s", want[i].file);
		assert_true(rp_read_file(rp_data_path(rel), &buf, &len));
		rp_start(&run, &sg_driver_dsmr, NULL);
		rp_feed(&run, buf, len, 0);
		k = rp_find(&run.cap, want[i].field, 0);
		assert_true(k >= 0);
		assert_int_equal(run.cap.r[k].timestamp_us, want[i].utc_s * INT64_C(1000000));
		rp_stop(&run);
		free(buf);
	}
}

static void test_descriptor(void **state)
{
	(void)state;
	assert_ptr_equal(sg_driver_find("dsmr"), &sg_driver_dsmr);
	assert_int_equal(sg_driver_dsmr.default_baud, 115200);
	assert_string_equal(sg_driver_dsmr.framing(115200), "8N1");
	assert_string_equal(sg_driver_dsmr.framing(9600), "7E1"); /* DSMR 2.2/3 */
	assert_int_equal(sg_driver_dsmr.bus, SG_BUS_SERIAL);
	assert_null(sg_driver_dsmr.parse_options);
	for (const struct sg_field_info *f = sg_driver_dsmr.fields; f->name; f++)
		assert_true(strlen(f->name) > 0);
}

static void test_recorded_stream(void **state)
{
	uint8_t *buf;
	size_t len;
	struct rp_capture cap;

	(void)state;
	assert_true(rp_read_file(rp_data_path("dsmr/stream.bin"), &buf, &len));
	rp_replay_mapped(&sg_driver_dsmr, "", buf, len, rp_data_path("dsmr/expected.txt"));
	rp_check_splits(&sg_driver_dsmr, NULL, buf, len, &cap);
	assert_int_equal(cap.fails[SG_FAIL_GARBAGE], 2);
	assert_int_equal(cap.fails[SG_FAIL_SYNTAX], 1);
	assert_int_equal(cap.fails[SG_FAIL_CHECKSUM], 2);
	assert_int_equal(cap.fails[SG_FAIL_INSANE], 1);
	assert_int_equal(cap.fails[SG_FAIL_OVERLONG], 0);
	assert_int_equal(cap.frames, 4);
	rp_capture_free(&cap);
	free(buf);
}

/* Real P1 captures: every telegram parses except the altered one; gas where the meter has one. */
static const struct {
	const char *file;
	unsigned frames, checksum, syntax;
	const char *gas;        /* expected gas_delivered payload, or NULL */
	const char *water;      /* expected water_delivered, or NULL */
	const char *timestamp;  /* expected timestamp string, or NULL when the meter sends none */
} dsmr_real[] = {
	{"capture_truncated_then_valid_iskra_am550.txt", 1, 0, 1, NULL, NULL, "2022-05-28T15:02:45+02:00"},
	{"dsmr22_iskra_mt382.txt", 1, 0, 0, "13368.864", NULL, NULL},
	{"dsmr22_kamstrup_zabf.txt", 1, 0, 0, "2025.003", NULL, NULL},
	{"dsmr42_landisgyr_e350.txt", 1, 0, 0, "1091.352", NULL, "2019-09-05T21:40:03+02:00"},
	{"dsmr50_iskra_am550_two_mbus.txt", 1, 0, 0, "246.138", NULL, "2020-04-26T22:33:25+02:00"},
	{"dsmr50_sagemcom_xs210.txt", 1, 0, 0, "16.713", NULL, "2017-11-05T20:13:24+01:00"},
	{"dsmr50_sagemcom_xs210_badcrc.txt", 0, 1, 0, NULL, NULL, NULL},
	{"emucs171_fluvius.txt", 1, 0, 0, "112.384", "872.234", "2020-05-12T13:54:09+02:00"},
	{"emucs171_fluvius_alt.txt", 1, 0, 0, "92.287", "8.579", "2023-11-02T12:15:48+01:00"},
};

static void dsmr_expect_number(const struct rp_capture *c, const char *field, const char *want)
{
	int k = rp_find(c, field, 0);
	char got[64];

	if (!want) {
		assert_int_equal(k, -1);
		return;
	}
	assert_true(k >= 0);
	snprintf(got, sizeof(got), "%.15g", c->r[k].number);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "%s: %s, expected %s\n", field, got, want);
	assert_string_equal(got, want);
	assert_string_equal(c->r[k].unit, "m³");
	assert_true(c->r[k].timestamp_us > 0 || strstr(field, "gas") != NULL);
}

static void test_real_captures(void **state)
{
	const char *dir = rp_real_dir();
	char path[4096];

	(void)state;
	if (!dir) {
		fprintf(stderr, "real captures not found (../shared/testdata/real or SENSORGATE_REAL_DATA): skipped\n");
		skip();
	}
	for (size_t i = 0; i < sizeof(dsmr_real) / sizeof(dsmr_real[0]); i++) {
		struct rp_capture cap;
		uint8_t *buf;
		size_t len;
		int k;

		snprintf(path, sizeof(path), "%s/dsmr/%s", dir, dsmr_real[i].file);
		if (!rp_read_file(path, &buf, &len)) {
			fprintf(stderr, "%s: missing\n", path);
			fail();
		}
		rp_check_splits(&sg_driver_dsmr, NULL, buf, len, &cap);
		fprintf(stderr, "%-46s %5zu bytes: %2llu telegrams, %2zu readings; checksum %u, syntax %u, garbage %u\n",
			dsmr_real[i].file, len, (unsigned long long)cap.frames, cap.n, cap.fails[SG_FAIL_CHECKSUM],
			cap.fails[SG_FAIL_SYNTAX], cap.fails[SG_FAIL_GARBAGE]);
		assert_int_equal(cap.frames, dsmr_real[i].frames);
		assert_int_equal(cap.fails[SG_FAIL_CHECKSUM], dsmr_real[i].checksum);
		assert_int_equal(cap.fails[SG_FAIL_SYNTAX], dsmr_real[i].syntax);
		assert_int_equal(cap.fails[SG_FAIL_INSANE] + cap.fails[SG_FAIL_OVERLONG] + cap.fails[SG_FAIL_GARBAGE], 0);
		if (dsmr_real[i].frames == 0) {
			assert_int_equal(cap.n, 0);
		} else {
			/* every meter reports its delivered energy, in kWh */
			k = rp_find(&cap, "energy_delivered_tariff1", 0);
			assert_true(k >= 0);
			assert_string_equal(cap.r[k].unit, "kWh");
			assert_true(cap.r[k].number > 0);
			k = rp_find(&cap, "timestamp", 0);
			if (dsmr_real[i].timestamp) {
				assert_true(k >= 0);
				assert_string_equal(cap.r[k].string, dsmr_real[i].timestamp);
			} else {
				assert_int_equal(k, -1);
			}
			for (size_t r = 0; r < cap.n; r++)
				if (strncmp(cap.r[r].field, "voltage", 7) == 0)
					assert_true(cap.r[r].number > 200 && cap.r[r].number < 260);
		}
		dsmr_expect_number(&cap, "gas_delivered", dsmr_real[i].gas);
		dsmr_expect_number(&cap, "water_delivered", dsmr_real[i].water);
		assert_int_equal(rp_find(&cap, "gas_delivered_2", 0), -1);
		rp_capture_free(&cap);
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_timestamps),
		cmocka_unit_test(test_descriptor),
		cmocka_unit_test(test_recorded_stream),
		cmocka_unit_test(test_real_captures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
