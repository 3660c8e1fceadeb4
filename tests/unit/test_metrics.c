/* SPDX-License-Identifier: MIT */
/*
 * test_metrics.c — the Prometheus text file (gateway/metrics.c): the text
 * for a known snapshot (names, types, label escaping), and the atomic write
 * (mode 0644 whatever the umask, no temporary file left, errors returned).
 * The format itself is checked by a real parser in
 * tests/integration/test_metrics.py.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway/metrics.h"

static void test_format(void **state)
{
	struct sg_metrics_device devs[] = {
		{.name = "arduino", .driver = "lines", .up = true, .readings = 42, .reconnects = 2, .good = 40,
		 .quality = 0.875},
		{.name = "env", .driver = "bme280", .up = false, .quality = NAN},
	};
	struct sg_metrics_actuator acts[] = {{.name = "heater", .up = true, .fail_safe = 3}};
	struct sg_metrics m = {
		.version = "0.1.0", .broker = "mqtt://a\"b\\c\n", .connected = true, .connects = 1,
		.uptime_s = 12.5, .start_time_s = 1.7e9, .readings = 100, .published = 99, .dropped = 1,
		.spool_open = true, .spool_depth = 7, .devices = devs, .n_devices = 2, .actuators = acts,
		.n_actuators = 1,
	};
	char *text = NULL;
	size_t len = 0;
	(void)state;

	devs[0].fail[SG_FAIL_CHECKSUM] = 5;
	assert_int_equal(metrics_format(&m, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	assert_non_null(strstr(text, "# TYPE sensorgate_readings_total counter\nsensorgate_readings_total 100\n"));
	assert_non_null(strstr(text, "# TYPE sensorgate_spool_depth_messages gauge\nsensorgate_spool_depth_messages 7\n"));
	assert_non_null(strstr(text, "sensorgate_mqtt_connected{broker=\"mqtt://a\\\"b\\\\c\\n\"} 1\n"));
	assert_non_null(strstr(text, "sensorgate_device_up{device=\"env\",driver=\"bme280\"} 0\n"));
	assert_non_null(strstr(text, "sensorgate_device_reconnects_total{device=\"arduino\",driver=\"lines\"} 2\n"));
	assert_non_null(strstr(text, "sensorgate_device_errors_total{device=\"arduino\",driver=\"lines\","
	                             "reason=\"checksum\"} 5\n"));
	assert_non_null(strstr(text, "# TYPE sensorgate_device_frames_good_total counter\n"
	                             "sensorgate_device_frames_good_total{device=\"arduino\",driver=\"lines\"} 40\n"));
	assert_non_null(strstr(text, "# TYPE sensorgate_device_link_quality_ratio gauge\n"
	                             "sensorgate_device_link_quality_ratio{device=\"arduino\",driver=\"lines\"} 0.8750\n"
	                             "sensorgate_device_link_quality_ratio{device=\"env\",driver=\"bme280\"} NaN\n"));
	assert_non_null(strstr(text, "sensorgate_actuator_fail_safe_total{actuator=\"heater\"} 3\n"));
	assert_non_null(strstr(text, "sensorgate_uptime_seconds 12.500\n"));
	assert_non_null(strstr(text, "sensorgate_start_time_seconds 1700000000\n"));
	assert_int_equal(text[len - 1], '\n');
	free(text);
}

static void test_write(void **state)
{
	char dir[] = "/tmp/sg-test-metrics-XXXXXX", path[256], tmp[280];
	struct stat st;
	mode_t old;
	FILE *f;
	char buf[64] = "";
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sensorgate.prom", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	old = umask(077); /* the unit's UMask=0077: node_exporter must still read it */
	assert_int_equal(metrics_write(path, "a 1\n", 4), 0);
	assert_int_equal(metrics_write(path, "b 2\n", 4), 0);
	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(access(tmp, F_OK), -1);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "b 2\n");
	unlink(path);
	rmdir(dir);
	snprintf(path, sizeof(path), "%s/gone/sensorgate.prom", dir);
	assert_int_equal(metrics_write(path, "a 1\n", 4), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
