/* SPDX-License-Identifier: MIT */
/* test_replay.c — gateway/replay.c: sequence numbers, the JSON rewrite, history topics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "gateway/replay.h"

static void test_seqs(void **state)
{
	struct sg_seqs *q = seqs_new();
	char topic[32];
	(void)state;

	assert_int_equal(seqs_last(q, "a"), 0);
	assert_int_equal(seqs_next(q, "a"), 1);
	assert_int_equal(seqs_next(q, "a"), 2);
	assert_int_equal(seqs_next(q, "b"), 1);
	assert_int_equal(seqs_last(q, "a"), 2);
	/* a restart: the spool holds up to 41 for "a" */
	assert_int_equal(seqs_seen(q, "a", 41), 0);
	assert_int_equal(seqs_seen(q, "a", 7), 0); /* lower: ignored */
	assert_int_equal(seqs_next(q, "a"), 42);
	/* many topics: the table grows and forgets nothing */
	for (int i = 0; i < 1000; i++) {
		snprintf(topic, sizeof(topic), "t/%d", i);
		assert_int_equal(seqs_next(q, topic), 1);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(topic, sizeof(topic), "t/%d", i);
		assert_int_equal(seqs_next(q, topic), 2);
	}
	assert_int_equal(seqs_last(q, "a"), 42);
	assert_int_equal(seqs_last(q, "b"), 1);
	seqs_free(q);
}

/* IN rewritten must give WANT (NULL: refused with -EINVAL). */
static void json(const char *in, const char *iso, bool replayed, uint64_t seq, const char *want)
{
	char buf[256];
	int n = replay_json(buf, sizeof(buf), in, strlen(in), iso, replayed, seq);

	if (!want) {
		assert_int_equal(n, -EINVAL);
		return;
	}
	assert_int_equal(n, (int)strlen(want));
	assert_string_equal(buf, want);
}

static void test_json(void **state)
{
	(void)state;
	/* the time learnt afterwards */
	json("{\"value\":1,\"ts\":null}", "2026-12-06T05:00:00.000Z", false, 3,
	     "{\"value\":1,\"ts\":\"2026-12-06T05:00:00.000Z\"}");
	/* a replay: its markers follow */
	json("{\"value\":1,\"unit\":\"°C\",\"ts\":\"2026-12-06T05:00:00.000Z\"}", "2026-12-06T05:00:00.000Z", true, 7,
	     "{\"value\":1,\"unit\":\"°C\",\"ts\":\"2026-12-06T05:00:00.000Z\",\"replayed\":true,\"seq\":7}");
	/* unknown time stays null */
	json("{\"value\":\"x\",\"ts\":null}", NULL, true, 2, "{\"value\":\"x\",\"ts\":null,\"replayed\":true,\"seq\":2}");
	/* a string value holding the same bytes is not taken for the ts member */
	json("{\"value\":\",\\\"ts\\\":1\",\"ts\":null}", NULL, false, 0, "{\"value\":\",\\\"ts\\\":1\",\"ts\":null}");
	/* not the mapper's JSON: refused, never mangled */
	json("21.5", NULL, true, 1, NULL);
	json("{\"value\":1}", NULL, true, 1, NULL);
	json("", NULL, true, 1, NULL);
}

static void test_json_too_small(void **state)
{
	const char *in = "{\"value\":1,\"ts\":null}";
	char buf[30];
	(void)state;

	assert_int_equal(replay_json(buf, sizeof(buf), in, strlen(in), "2026-12-06T05:00:00.000Z", true, 1), -ENOBUFS);
}

static void test_history_topic(void **state)
{
	char buf[64];
	(void)state;

	assert_int_equal(replay_history_topic(buf, sizeof(buf), "{topic}/history", "home/room/t"), 19);
	assert_string_equal(buf, "home/room/t/history");
	replay_history_topic(buf, sizeof(buf), "old/{topic}", "home/room/t");
	assert_string_equal(buf, "old/home/room/t");
	assert_int_equal(replay_history_topic(buf, 8, "old/{topic}", "home/room/t"), -ENOBUFS);
}

static void test_props(void **state)
{
	mosquitto_property *props = NULL;
	struct mqtt_props wire = {0};
	char *name = NULL, *value = NULL;
	const mosquitto_property *p;
	int n = 0;
	(void)state;

	assert_int_equal(replay_props(&wire, "2026-12-06T05:00:00.000Z", false, 12, true), 0);
	/* MQTT 5.0 §3.3.2.3.7: 0x26, then the name and the value as UTF-8 strings */
	assert_int_equal(wire.len, (1 + 2 + 2 + 2 + 24) + (1 + 2 + 3 + 2 + 2) + (1 + 2 + 8 + 2 + 1));
	assert_memory_equal(wire.b, "\x26\x00\x02ts\x00\x18" "2026-12-06T05:00:00.000Z", 31);
	assert_memory_equal(wire.b + 31, "\x26\x00\x03seq\x00\x02" "12", 10);
	assert_int_equal(mqtt_props_list(&wire, &props), 0);
	for (p = props; p; p = mosquitto_property_next(p)) {
		assert_non_null(mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value, false));
		if (n == 0) {
			assert_string_equal(name, "ts");
			assert_string_equal(value, "2026-12-06T05:00:00.000Z");
		} else if (n == 1) {
			assert_string_equal(name, "seq");
			assert_string_equal(value, "12");
		} else {
			assert_string_equal(name, "replayed");
			assert_string_equal(value, "1");
		}
		free(name);
		free(value);
		n++;
	}
	assert_int_equal(n, 3);
	mosquitto_property_free_all(&props);

	wire.len = 0;
	assert_int_equal(replay_props(&wire, NULL, true, 1, false), 0);
	assert_int_equal(mqtt_props_list(&wire, &props), 0);
	assert_non_null(mosquitto_property_read_string_pair(props, MQTT_PROP_USER_PROPERTY, &name, &value, false));
	assert_string_equal(name, "ts_unknown");
	free(name);
	free(value);
	mosquitto_property_free_all(&props);

	/* seq 0 is "none"; the largest one is written whole; what does not fit is refused, not cut */
	wire.len = 0;
	assert_int_equal(replay_props(&wire, NULL, false, 0, false), 0);
	assert_int_equal(wire.len, 0);
	assert_int_equal(replay_props(&wire, NULL, false, UINT64_MAX, false), 0);
	assert_memory_equal(wire.b, "\x26\x00\x03seq\x00\x14" "18446744073709551615", 28);
	char big[MQTT_PROPS_MAX];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	wire.len = 0;
	assert_int_equal(replay_props(&wire, big, false, 1, false), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seqs),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_json_too_small),
		cmocka_unit_test(test_history_topic),
		cmocka_unit_test(test_props),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
