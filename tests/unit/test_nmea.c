/* SPDX-License-Identifier: MIT */
/*
 * test_nmea.c — unit tests of the `nmea` driver (drivers/nmea.c).
 *
 * Table rows {legend, options, bytes, readings, failures, frames}, each replayed whole,
 * split at every byte boundary, bytewise and in random chunks (replay.h). The sentences
 * are the classic GGA/RMC/VTG examples that NMEA references print, and sentences we wrote
 * to the standard's field layout (checksums computed by hand, see tests/data/nmea/README.md).
 * Then: options, the recorded stream through the mapper against expected.txt, and the real
 * receiver logs in ../shared/testdata/real/nmea when present (positions must fall within a
 * degree of where each log says it was recorded).
 */
#include <errno.h>
#include <math.h>
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

#define GGA "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
#define RMC "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
#define VTG "$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*48"

#define LAT_4807 (48.0 + 7.038 / 60.0)
#define LON_01131 (11.0 + 31.0 / 60.0)

#define GGA_EXP                                                                                        \
	RP_NUM("latitude", LAT_4807, "°"), RP_NUM("longitude", LON_01131, "°"), RP_NUM("fix_quality", 1, ""), \
		RP_NUM("satellites", 8, ""), RP_NUM("hdop", 0.9, ""), RP_NUM("altitude", 545.4, "m")
#define RMC_EXP                                                                                        \
	RP_NUM("latitude", LAT_4807, "°"), RP_NUM("longitude", LON_01131, "°"),                        \
		RP_NUM("speed", 22.4 * 1.852, "km/h"), RP_NUM("course", 84.4, "°"),                     \
		RP_STR("time", "1994-03-23T12:35:19Z")
#define VTG_EXP RP_NUM("speed", 10.2, "km/h"), RP_NUM("course", 54.7, "°")

static const struct rp_case nmea_cases[] = {
	{"classic GGA, CR LF", NULL, RP_IN(GGA "\r\n"), {GGA_EXP}, {0}, 1},
	{"classic RMC, LF", NULL, RP_IN(RMC "\n"), {RMC_EXP}, {0}, 1},
	{"classic VTG, CR", NULL, RP_IN(VTG "\r"), {VTG_EXP}, {0}, 1},
	{"three sentences, mixed line ends", NULL, RP_IN(GGA "\r\n" RMC "\n" VTG "\r"),
	 {GGA_EXP, RMC_EXP, VTG_EXP}, {0}, 3},
	{"lower-case checksum digits", NULL,
	 RP_IN("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6a\r\n"), {RMC_EXP}, {0}, 1},
	{"GN talker, western hemisphere", NULL,
	 RP_IN("$GNGGA,092750.000,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,55.2,M,,*68\r\n"),
	 {RP_NUM("latitude", 53.0 + 21.6802 / 60.0, "°"), RP_NUM("longitude", -(6.0 + 30.3372 / 60.0), "°"),
	  RP_NUM("fix_quality", 1, ""), RP_NUM("satellites", 8, ""), RP_NUM("hdop", 1.03, ""),
	  RP_NUM("altitude", 61.7, "m")},
	 {0},
	 1},
	{"BeiDou RMC, southern hemisphere, empty course, fractional time", NULL,
	 RP_IN("$GBRMC,235959.50,A,3351.0000,S,15112.0000,E,0.0,,311299,,,A*78\r\n"),
	 {RP_NUM("latitude", -33.85, "°"), RP_NUM("longitude", 151.2, "°"), RP_NUM("speed", 0, "km/h"),
	  RP_STR("time", "1999-12-31T23:59:59.500Z")},
	 {0},
	 1},
	{"before the first fix: empty fields are no values", NULL, RP_IN("$GPGGA,,,,,,0,00,99.99,,,,,,*48\r\n"),
	 {RP_NUM("fix_quality", 0, ""), RP_NUM("satellites", 0, ""), RP_NUM("hdop", 99.99, "")},
	 {0},
	 1},
	{"GGA quality 0 with a stale position: no position", NULL,
	 RP_IN("$GLGGA,101010,5000.000,N,01000.000,E,0,03,9.9,100.0,M,,M,,*46\r\n"),
	 {RP_NUM("fix_quality", 0, ""), RP_NUM("satellites", 3, ""), RP_NUM("hdop", 9.9, "")},
	 {0},
	 1},
	{"RMC void: nothing", NULL, RP_IN("$GPRMC,,V,,,,,,,,,,N*53\r\n"), {{NULL}}, {0}, 1},
	{"VTG mode N: nothing", NULL, RP_IN("$GAVTG,,T,,M,,N,,K,N*3D\r\n"), {{NULL}}, {0}, 1},
	{"VTG with knots only", NULL, RP_IN("$GPVTG,120.0,T,,M,10.0,N,,K,A*11\r\n"),
	 {RP_NUM("speed", 18.52, "km/h"), RP_NUM("course", 120, "°")},
	 {0},
	 1},
	{"no checksum: accepted by default", NULL, RP_IN("$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K\r\n"),
	 {VTG_EXP}, {0}, 1},
	{"no checksum: refused with require_checksum", "require_checksum = true;",
	 RP_IN("$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K\r\n" VTG "\r\n"), {VTG_EXP}, {[SG_FAIL_CHECKSUM] = 1}, 1},
	{"corrupted checksum", NULL, RP_IN("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48\r\n"),
	 {{NULL}}, {[SG_FAIL_CHECKSUM] = 1}, 0},
	{"corrupted data, checksum kept", NULL,
	 RP_IN("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.5,M,46.9,M,,*47\r\n" GGA "\r\n"), {GGA_EXP},
	 {[SG_FAIL_CHECKSUM] = 1}, 1},
	{"checksum of one digit", NULL, RP_IN("$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*4\r\n"), {{NULL}},
	 {[SG_FAIL_SYNTAX] = 1}, 0},
	{"latitude 91.5 degrees", NULL, RP_IN("$GPGGA,120000,9130.000,N,00000.000,E,1,05,1.0,10.0,M,,M,,*61\r\n"),
	 {{NULL}}, {[SG_FAIL_INSANE] = 1}, 0},
	{"60 minutes of latitude", NULL,
	 RP_IN("$GPRMC,120000,A,4560.000,N,00700.000,E,1.0,90.0,010120,,,A*49\r\n"), {{NULL}},
	 {[SG_FAIL_INSANE] = 1}, 0},
	{"hour 24", NULL, RP_IN("$GPRMC,240000,A,4500.000,N,00700.000,E,1.0,90.0,010120,,,A*4A\r\n"), {{NULL}},
	 {[SG_FAIL_INSANE] = 1}, 0},
	{"letter O for a zero", NULL,
	 RP_IN("$GPGGA,123519,48O7.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*38\r\n"), {{NULL}},
	 {[SG_FAIL_SYNTAX] = 1}, 0},
	{"proprietary, GSV and AIS sentences are ignored", NULL,
	 RP_IN("$PGRME,15.0,M,45.0,M,25.0,M*1C\r\n"
	       "$GPGSV,1,1,03,28,28,095,33,04,30,150,46,02,07,178,32*4D\r\n"
	       "!AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0*5C\r\n"),
	 {{NULL}}, {0}, 0},
	{"noise line, then a sentence", NULL, RP_IN("# log header\r\nhello\r\n" VTG "\r\n"), {VTG_EXP},
	 {[SG_FAIL_GARBAGE] = 2}, 1},
	{"sentence cut by the next '$'", NULL, RP_IN("$GPGGA,1235" VTG "\r\n"), {VTG_EXP},
	 {[SG_FAIL_GARBAGE] = 1}, 1},
	{"non-printable byte inside", NULL, RP_IN("$GPVTG,054.7,T,0\00134.4,M,005.5,N,010.2,K*48\r\n" VTG "\r\n"),
	 {VTG_EXP}, {[SG_FAIL_GARBAGE] = 1}, 1},
	{"overlong sentence, then a good one", NULL,
	 RP_IN("$GPTXT,01,01,02,"
	       "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
	       "0123456789*00\r\n" VTG "\r\n"),
	 {VTG_EXP}, {[SG_FAIL_OVERLONG] = 1}, 1},
	{"too few fields", NULL, RP_IN("$GPGGA,123519,4807.038,N*27\r\n"), {{NULL}}, {[SG_FAIL_SYNTAX] = 1}, 0},
	{"empty lines and blanks", NULL, RP_IN("\r\n\n\r  \r\n" VTG "\r\n\r\n"), {VTG_EXP}, {0}, 1},
};

static void test_cases(void **state)
{
	(void)state;
	rp_run_cases(&sg_driver_nmea, nmea_cases, sizeof(nmea_cases) / sizeof(nmea_cases[0]));
}

static void test_options(void **state)
{
	struct sg_opt_error err = {.line = 0};
	void *opts = NULL;

	(void)state;
	assert_int_equal(opts_fixture_parse(&sg_driver_nmea, "require_checksum = false;", &opts, &err), 0);
	sg_driver_nmea.free_options(opts);
	opts = NULL;
	assert_int_equal(opts_fixture_parse(&sg_driver_nmea, "\nrequire_checksum = \"yes\";", &opts, &err), -EINVAL);
	assert_null(opts);
	assert_int_equal(err.line, 3);
	assert_string_equal(err.msg, "\"require_checksum\" must be a boolean (true or false)");
	assert_ptr_equal(sg_driver_find("nmea"), &sg_driver_nmea);
	assert_non_null(sg_driver_nmea.feed);
	assert_null(sg_driver_nmea.poll);
}

static void test_recorded_stream(void **state)
{
	uint8_t *buf;
	size_t len;
	struct rp_capture cap;

	(void)state;
	assert_true(rp_read_file(rp_data_path("nmea/stream.txt"), &buf, &len));
	rp_replay_mapped(&sg_driver_nmea, "", buf, len, rp_data_path("nmea/expected.txt"));
	/* and the failures the README promises */
	rp_check_splits(&sg_driver_nmea, NULL, buf, len, &cap);
	assert_int_equal(cap.fails[SG_FAIL_CHECKSUM], 2);
	assert_int_equal(cap.fails[SG_FAIL_GARBAGE], 3);
	assert_int_equal(cap.fails[SG_FAIL_INSANE], 1);
	assert_int_equal(cap.fails[SG_FAIL_OVERLONG], 1);
	assert_int_equal(cap.fails[SG_FAIL_SYNTAX], 0);
	rp_capture_free(&cap);
	free(buf);
}

/* Where each gpsd log says it was recorded; positions must fall within a degree. */
static const struct {
	const char *file;
	double lat, lon;
	bool bogus_before_fix; /* the log has an impossible latitude before the fix */
} nmea_real[] = {
	{"bu353-glonass.log", 55.69, 37.62, false},
	{"haicom-305N.log", -27.21, 153.05, false},
	{"hemi.log", 42.36, -71.03, false},
	{"mtk-3301.log", 52.21, 6.88, true},
	{"skytraq-fix.log", 44.07, -121.31, false},
	{"ublox-lea-4h.log", 49.13, -122.72, false},
};

static void test_real_captures(void **state)
{
	const char *dir = rp_real_dir();
	char path[4096];

	(void)state;
	if (!dir) {
		fprintf(stderr, "real captures not found (../shared/testdata/real or SENSORGATE_REAL_DATA): skipped\n");
		skip();
	}
	for (size_t i = 0; i < sizeof(nmea_real) / sizeof(nmea_real[0]); i++) {
		struct rp_run run;
		uint8_t *buf;
		size_t len, positions = 0;

		snprintf(path, sizeof(path), "%s/nmea/%s", dir, nmea_real[i].file);
		if (!rp_read_file(path, &buf, &len)) {
			fprintf(stderr, "%s: missing\n", path);
			fail();
		}
		rp_start(&run, &sg_driver_nmea, NULL);
		rp_feed(&run, buf, len, 61);
		for (size_t k = 0; k < run.cap.n; k++) {
			const struct rp_reading *r = &run.cap.r[k];

			if (strcmp(r->field, "latitude") == 0) {
				positions++;
				assert_true(fabs(r->number - nmea_real[i].lat) < 1.0);
			} else if (strcmp(r->field, "longitude") == 0) {
				assert_true(fabs(r->number - nmea_real[i].lon) < 1.0);
			} else if (strcmp(r->field, "time") == 0) {
				assert_int_equal(strlen(r->string) >= 20, 1);
			} else if (strcmp(r->field, "speed") == 0) {
				assert_true(r->number >= 0 && r->number < 200);
			}
		}
		fprintf(stderr, "%-20s %6zu bytes: %4zu readings, %3zu positions, %llu sentences;"
				" checksum %u, garbage %u, insane %u, overlong %u, syntax %u\n",
			nmea_real[i].file, len, run.cap.n, positions, (unsigned long long)run.dev.stats.frames,
			run.cap.fails[SG_FAIL_CHECKSUM], run.cap.fails[SG_FAIL_GARBAGE], run.cap.fails[SG_FAIL_INSANE],
			run.cap.fails[SG_FAIL_OVERLONG], run.cap.fails[SG_FAIL_SYNTAX]);
		assert_true(positions > 0);
		assert_int_equal(run.cap.fails[SG_FAIL_CHECKSUM], 0);
		assert_int_equal(run.cap.fails[SG_FAIL_SYNTAX], 0);
		assert_int_equal(run.cap.fails[SG_FAIL_INSANE] > 0, nmea_real[i].bogus_before_fix);
		rp_stop(&run);
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_recorded_stream),
		cmocka_unit_test(test_real_captures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
