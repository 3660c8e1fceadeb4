/* SPDX-License-Identifier: MIT */
/*
 * test_commands.c — the command router (gateway/commands.c) with fake
 * actuator drivers and a recorder in place of MQTT.
 *
 * The fake drivers are registered under the names "gpio" (switches, reads
 * back) and "serial" (no read-back) so that ordinary configs load; each
 * actuator's fake keeps what it was asked to do in fakes[] (by name), and
 * can be told to complete at once, later (the test calls the done callback)
 * or to fail. Time is the `now` argument. Covered: the payload validation
 * table for switch/number/enum, every refusal (unknown topic, oversize,
 * empty, retained, expired, invalid, unavailable, rate limit, interlock) —
 * each checks that nothing moved and what was published where —, MQTT 5
 * response topic and correlation data, state published only once
 * confirmed, queueing behind a slow command, superseding, expiry while
 * queued, losing and reopening the hardware, subscriptions on connect, safe
 * states at shutdown, and the JSON escaping of error messages.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfg_helper.h"
#include "drivers/actuator.h"
#include "gateway/commands.h"
#include "pub_helper.h"

#define T0 1000000000ULL
#define MS 1000ULL
#define S  1000000ULL

/* ---- fake actuator drivers ---------------------------------------------------------------------- */

enum fake_mode { FAKE_SYNC = 0, FAKE_ASYNC, FAKE_FAIL };

struct fake {
	char name[32];
	enum fake_mode mode;
	int fail_with;        /* FAKE_FAIL: what set() returns */
	int open_error;       /* nonzero: open() returns it */
	int readback;         /* gpio: level read back at open */
	bool open;
	unsigned n_opens, n_sets, n_sync;
	char last[64];        /* text of the last value set */
	bool last_on;
	struct sg_act *act;
};

#define N_FAKES 16
static struct fake fakes[N_FAKES];

static struct fake *fake(const char *name)
{
	for (size_t i = 0; i < N_FAKES; i++)
		if (strcmp(fakes[i].name, name) == 0)
			return &fakes[i];
	for (size_t i = 0; i < N_FAKES; i++)
		if (!fakes[i].name[0]) {
			snprintf(fakes[i].name, sizeof(fakes[i].name), "%s", name);
			return &fakes[i];
		}
	fail();
	return NULL;
}

static int fake_open(struct sg_act *a)
{
	struct fake *f = fake(a->params->name);

	if (f->open_error)
		return f->open_error;
	f->open = true;
	f->n_opens++;
	f->act = a;
	if (a->params->initial >= 0)
		f->readback = a->params->initial;
	return 0;
}

static void fake_close(struct sg_act *a)
{
	fake(a->params->name)->open = false;
}

static int fake_read_back(struct sg_act *a)
{
	return fake(a->params->name)->readback;
}

static int fake_set(struct sg_act *a, const struct sg_act_value *v, uint64_t now)
{
	struct fake *f = fake(a->params->name);
	(void)now;

	f->n_sets++;
	snprintf(f->last, sizeof(f->last), "%s", v->text);
	f->last_on = v->on;
	if (f->mode == FAKE_FAIL)
		return f->fail_with;
	f->readback = v->on;
	return f->mode == FAKE_ASYNC ? 1 : 0;
}

static int fake_set_sync(struct sg_act *a, const struct sg_act_value *v, int timeout_ms)
{
	struct fake *f = fake(a->params->name);
	(void)timeout_ms;

	f->n_sync++;
	snprintf(f->last, sizeof(f->last), "%s", v->text);
	return f->mode == FAKE_FAIL ? f->fail_with : 0;
}

/* Complete the fake's pending set() the way a driver would, from its io(). */
static void fake_finish(const char *name, int result, const char *detail)
{
	struct fake *f = fake(name);
	sg_act_done(f->act, result, detail);
}

static const struct sg_act_driver fake_gpio_drv = {
	.name = "gpio", .kinds = SG_ACT_KIND_BIT(SG_ACT_SWITCH), .state_size = 8, .open = fake_open,
	.close = fake_close, .read_back = fake_read_back, .set = fake_set, .set_sync = fake_set_sync,
};
static const struct sg_act_driver fake_serial_drv = {
	.name = "serial", .kinds = SG_ACT_KINDS_ALL, .state_size = 8, .open = fake_open, .close = fake_close,
	.set = fake_set, .set_sync = fake_set_sync,
};
static const struct sg_act_driver *const fake_drivers[] = {&fake_gpio_drv, &fake_serial_drv, NULL};

/* ---- fixtures ------------------------------------------------------------------------------------- */

#define CONFIG                                                                                               \
	"gateway: { id = \"gw\"; base_topic = \"h\"; };\n"                                                       \
	"actuators = (\n"                                                                                        \
	" { name = \"sw\"; driver = \"gpio\"; line = 1; initial = \"OFF\"; },\n"                                 \
	" { name = \"door\"; driver = \"gpio\"; line = 2; payload_on = \"OPEN\"; payload_off = \"CLOSE\";\n"     \
	"   initial = \"CLOSE\"; },\n"                                                                           \
	" { name = \"fan\"; driver = \"serial\"; port = \"@DIR@/tty\"; type = \"number\"; min = 0; max = 100;\n" \
	"   step = 0.5; set = \"F{value}\"; },\n"                                                                \
	" { name = \"mode\"; driver = \"serial\"; port = \"@DIR@/tty2\"; type = \"enum\";\n"                      \
	"   options = [\"low\", \"medium\", \"high\"]; set = \"M{value}\"; },\n"                                 \
	" { name = \"ret\"; driver = \"gpio\"; line = 3; accept_retained = true; initial = \"OFF\"; },\n"        \
	" { name = \"slow\"; driver = \"gpio\"; line = 4; min_interval_ms = 1000; initial = \"OFF\"; },\n"       \
	" { name = \"up\"; driver = \"gpio\"; line = 5; interlock = \"blind\"; initial = \"OFF\"; qos = 2; },\n" \
	" { name = \"down\"; driver = \"gpio\"; line = 6; interlock = \"blind\"; initial = \"OFF\"; }\n"         \
	");\n"

enum { SW, DOOR, FAN, MODE, RET, SLOW, UP, DOWN, N_ACTS };

static struct sg_config *cfg;
static struct sg_commands *cmds;

static struct sg_commands *make_router(const struct sg_config *c, uint64_t now)
{
	static const struct sg_cmd_env env = {
		.publish = rec_publish, .subscribe = rec_subscribe, .drivers = fake_drivers,
	};
	struct sg_commands *r = commands_new(c, &env, NULL, now);
	assert_non_null(r);
	return r;
}

static int setup(void **state)
{
	(void)state;
	memset(fakes, 0, sizeof(fakes));
	rec_reset();
	cfg = fixture_config(CONFIG);
	if (!cfg) {
		fprintf(stderr, "config: %s\n", fixture_error);
		return -1;
	}
	cmds = make_router(cfg, T0);
	rec_reset(); /* what opening published (initial states read back) is not what tests look at */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	commands_free(cmds);
	config_free(cfg);
	cmds = NULL;
	cfg = NULL;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fixture_cleanup();
	return 0;
}

static int send_full(const char *topic, const void *payload, size_t len, bool retain, uint64_t now)
{
	struct sg_cmd_msg m = {.topic = topic, .payload = payload, .len = len, .retain = retain};
	return commands_message(cmds, &m, now);
}

static int send(const char *topic, const char *payload, uint64_t now)
{
	return send_full(topic, payload, strlen(payload), false, now);
}

/* ---- validation table --------------------------------------------------------------------------- */

struct pcase {
	const char *legend;
	int act;
	const char *payload;
	int expect;          /* commands_message() result */
	const char *state;   /* resulting state when accepted */
	const char *error;   /* substring of the error message when refused */
};

static const char *const act_names[] = {"sw", "door", "fan", "mode", "ret", "slow", "up", "down"};

static const struct pcase pcases[] = {
	{"switch ON", SW, "ON", 0, "ON", NULL},
	{"switch off, lower case", SW, "off", 0, "OFF", NULL},
	{"switch mixed case", SW, "On", 0, "ON", NULL},
	{"switch with blanks around", SW, "  ON\r\n", 0, "ON", NULL},
	{"switch 1", SW, "1", 0, "ON", NULL},
	{"switch 0", SW, "0", 0, "OFF", NULL},
	{"switch true", SW, "true", 0, "ON", NULL},
	{"switch FALSE", SW, "FALSE", 0, "OFF", NULL},
	{"switch JSON state", SW, "{\"state\":\"ON\"}", 0, "ON", NULL},
	{"switch JSON state lower, blanks", SW, " { \"state\" : \"off\" } ", 0, "OFF", NULL},
	{"switch JSON true", SW, "{\"state\":true}", 0, "ON", NULL},
	{"switch JSON number 0", SW, "{\"state\":0}", 0, "OFF", NULL},
	{"switch JSON with other keys", SW, "{\"brightness\":[1,{\"x\":2}],\"state\":\"ON\"}", 0, "ON", NULL},
	{"switch JSON unicode escape", SW, "{\"state\":\"\\u004fN\"}", 0, "ON", NULL},
	{"custom payload_on", DOOR, "OPEN", 0, "OPEN", NULL},
	{"custom payload_off, lower case", DOOR, "close", 0, "CLOSE", NULL},
	{"generic ON on a custom switch", DOOR, "ON", 0, "OPEN", NULL},
	{"switch garbage", SW, "ONN", -EINVAL, NULL, "expected ON or OFF"},
	{"switch 2", SW, "2", -EINVAL, NULL, "expected ON or OFF"},
	{"switch yes", SW, "yes", -EINVAL, NULL, "expected ON or OFF"},
	{"switch JSON bad value", SW, "{\"state\":\"maybe\"}", -EINVAL, NULL, "expected ON or OFF"},
	{"switch JSON without state", SW, "{\"value\":\"ON\"}", -EINVAL, NULL, "JSON without \\\"state\\\""},
	{"switch JSON broken", SW, "{\"state\":\"ON\"", -EINVAL, NULL, "not valid JSON"},
	{"switch JSON trailing garbage", SW, "{\"state\":\"ON\"}x", -EINVAL, NULL, "not valid JSON"},
	{"switch JSON array value", SW, "{\"state\":[\"ON\"]}", -EINVAL, NULL, "expected ON or OFF"},
	{"switch JSON null", SW, "{\"state\":null}", -EINVAL, NULL, "expected ON or OFF"},
	{"switch JSON array at top", SW, "[\"ON\"]", -EINVAL, NULL, "expected ON or OFF"},
	{"switch JSON too deep", SW, "{\"a\":[[[[[[[[[[1]]]]]]]]]],\"state\":\"ON\"}", -EINVAL, NULL, "not valid JSON"},
	{"switch JSON duplicate member (issue #10: JSON.parse reads OFF)", SW, "{\"state\":\"ON\",\"state\":\"OFF\"}",
	 -EINVAL, NULL, "the member \\\"state\\\" twice"},
	{"switch JSON duplicate through an escape", SW, "{\"state\":\"ON\",\"\\u0073tate\":\"OFF\"}", -EINVAL, NULL,
	 "\\\"state\\\" twice"},
	{"switch JSON duplicate same value", SW, "{\"state\":\"ON\",\"state\":\"ON\"}", -EINVAL, NULL, "twice"},
	{"switch JSON duplicate in a nested object", SW, "{\"x\":{\"a\":1,\"a\":2},\"state\":\"ON\"}", -EINVAL, NULL,
	 "\\\"a\\\" twice"},
	{"switch JSON duplicate in an array's object", SW, "{\"x\":[{\"b\":1,\"b\":2}],\"state\":\"ON\"}", -EINVAL,
	 NULL, "\\\"b\\\" twice"},
	{"switch JSON same name in two objects", SW, "{\"state\":\"ON\",\"x\":{\"state\":\"OFF\"}}", 0, "ON", NULL},
	{"switch JSON: a sensorgate answer", SW, "{\"actuator\":\"relay\",\"state\":\"ON\"}", -EINVAL, NULL,
	 "sensorgate answer or error, not a command"},
	{"switch JSON: a sensorgate error", SW, "{\"actuator\":\"sw\",\"error\":\"x\",\"payload\":\"ON\"}", -EINVAL,
	 NULL, "sensorgate answer"},
	{"door: generic payload of another switch", DOOR, "OPENED", -EINVAL, NULL, "expected OPEN or CLOSE"},
	{"number integer", FAN, "42", 0, "42", NULL},
	{"number half step", FAN, "12.5", 0, "12.5", NULL},
	{"number trailing zeros", FAN, "12.50", 0, "12.5", NULL},
	{"number min", FAN, "0", 0, "0", NULL},
	{"number max", FAN, "100", 0, "100", NULL},
	{"number exponent", FAN, "1e1", 0, "10", NULL},
	{"number blanks", FAN, " 7\n", 0, "7", NULL},
	{"number JSON value", FAN, "{\"value\":55}", 0, "55", NULL},
	{"number JSON string value", FAN, "{\"value\":\"55.5\"}", 0, "55.5", NULL},
	{"number JSON state", FAN, "{\"state\":3}", 0, "3", NULL},
	{"number above max", FAN, "100.5", -EINVAL, NULL, "out of range"},
	{"number below min", FAN, "-1", -EINVAL, NULL, "out of range"},
	{"number off the step", FAN, "12.3", -EINVAL, NULL, "not a multiple of step 0.5"},
	{"number text", FAN, "abc", -EINVAL, NULL, "expected a number from 0 to 100"},
	{"number nan", FAN, "nan", -EINVAL, NULL, "expected a number"},
	{"number inf", FAN, "inf", -EINVAL, NULL, "expected a number"},
	{"number hex", FAN, "0x10", -EINVAL, NULL, "expected a number"},
	{"number decimal comma", FAN, "1,5", -EINVAL, NULL, "expected a number"},
	{"number JSON duplicate value", FAN, "{\"value\":5,\"value\":6}", -EINVAL, NULL, "\\\"value\\\" twice"},
	{"number JSON: a sensorgate answer", FAN, "{\"actuator\":\"fan2\",\"state\":\"50\"}", -EINVAL, NULL,
	 "sensorgate answer"},
	{"number JSON bool", FAN, "{\"value\":true}", -EINVAL, NULL, "expected a number"},
	{"enum exact", MODE, "medium", 0, "medium", NULL},
	{"enum other case", MODE, "HIGH", 0, "high", NULL},
	{"enum JSON value", MODE, "{\"value\":\"low\"}", 0, "low", NULL},
	{"enum unknown", MODE, "off", -EINVAL, NULL, "expected one of low, medium, high"},
	{"enum prefix", MODE, "lo", -EINVAL, NULL, "expected one of"},
	{"enum JSON number", MODE, "{\"value\":1}", -EINVAL, NULL, "expected one of"},
};

static void test_payload_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
		const struct pcase *c = &pcases[i];
		const char *name = act_names[c->act];
		char topic[64], etopic[64];
		unsigned sets_before;
		size_t errs_before;
		int r;

		print_message("case: %s\n", c->legend);
		snprintf(topic, sizeof(topic), "h/%s/set", name);
		snprintf(etopic, sizeof(etopic), "h/%s/error", name);
		sets_before = fake(name)->n_sets;
		errs_before = rec_count(etopic);
		r = send(topic, c->payload, T0 + (i + 1) * S);
		assert_int_equal(r, c->expect);
		if (c->expect == 0) {
			char stopic[64];
			snprintf(stopic, sizeof(stopic), "h/%s", name);
			assert_int_equal(fake(name)->n_sets, sets_before + 1);
			assert_string_equal(fake(name)->last, c->state);
			assert_string_equal(commands_state(cmds, (size_t)c->act), c->state);
			assert_string_equal(rec_last(stopic)->payload, c->state);
			assert_true(rec_last(stopic)->retain);
			assert_int_equal(rec_count(etopic), errs_before);
		} else {
			assert_int_equal(fake(name)->n_sets, sets_before); /* nothing moved */
			assert_int_equal(rec_count(etopic), errs_before + 1);
			assert_non_null(rec_last(etopic));
			if (!strstr(rec_last(etopic)->payload, c->error))
				fail_msg("error %s lacks %s", rec_last(etopic)->payload, c->error);
			assert_false(rec_last(etopic)->retain);
		}
	}
}

/* ---- refusals ----------------------------------------------------------------------------------- */

static void test_unknown_topic(void **state)
{
	(void)state;
	assert_int_equal(send("h/nothing/set", "ON", T0), -ENOENT);
	assert_int_equal(send("h/sw", "ON", T0), -ENOENT);      /* the state topic is not a command topic */
	assert_int_equal(send("h/sw/set/x", "ON", T0), -ENOENT);
	assert_int_equal(pub_rec.n_pubs, 0);
	assert_int_equal(fake("sw")->n_sets, 0);
}

static void test_oversize(void **state)
{
	char big[SG_CMD_MAX_PAYLOAD + 2];
	(void)state;

	memset(big, 'A', sizeof(big));
	assert_int_equal(send_full("h/sw/set", big, SG_CMD_MAX_PAYLOAD + 1, false, T0), -EMSGSIZE);
	assert_non_null(strstr(rec_last("h/sw/error")->payload, "payload too long (257 bytes, at most 256)"));
	/* the error quotes only the start of it */
	assert_true(strlen(rec_last("h/sw/error")->payload) < 300);
	/* 256 bytes is not too long, just invalid */
	assert_int_equal(send_full("h/sw/set", big, SG_CMD_MAX_PAYLOAD, false, T0), -EINVAL);
	/* a 256-byte valid command */
	memset(big, ' ', sizeof(big));
	memcpy(big + 100, "ON", 2);
	assert_int_equal(send_full("h/sw/set", big, SG_CMD_MAX_PAYLOAD, false, T0 + S), 0);
	assert_int_equal(fake("sw")->n_sets, 1);
}

static void test_empty_ignored(void **state)
{
	(void)state;
	/* deleting a retained command publishes an empty message: not an error */
	assert_int_equal(send_full("h/sw/set", "", 0, true, T0), -ENODATA);
	assert_int_equal(send_full("h/sw/set", "", 0, false, T0), -ENODATA);
	assert_int_equal(pub_rec.n_pubs, 0);
	assert_int_equal(fake("sw")->n_sets, 0);
}

static void test_retained_ignored(void **state)
{
	(void)state;
	assert_int_equal(send_full("h/sw/set", "ON", 2, true, T0), -EPERM);
	assert_int_equal(fake("sw")->n_sets, 0);
	assert_string_equal(commands_state(cmds, SW), "OFF");
	assert_non_null(strstr(rec_last("h/sw/error")->payload, "retained command ignored"));
	assert_null(rec_last("h/sw"));
	/* the same command not retained is carried out */
	assert_int_equal(send_full("h/sw/set", "ON", 2, false, T0), 0);
	assert_string_equal(commands_state(cmds, SW), "ON");
	/* accept_retained = true */
	assert_int_equal(send_full("h/ret/set", "ON", 2, true, T0), 0);
	assert_string_equal(commands_state(cmds, RET), "ON");
}

static void test_rate_limit(void **state)
{
	(void)state;
	assert_int_equal(send("h/slow/set", "ON", T0), 0);
	assert_int_equal(send("h/slow/set", "OFF", T0 + 999 * MS), -EAGAIN);
	assert_string_equal(commands_state(cmds, SLOW), "ON");
	assert_int_equal(fake("slow")->n_sets, 1);
	assert_non_null(strstr(rec_last("h/slow/error")->payload, "at most one every 1000 ms"));
	/* a refused command does not restart the interval */
	assert_int_equal(send("h/slow/set", "OFF", T0 + 1000 * MS), 0);
	assert_string_equal(commands_state(cmds, SLOW), "OFF");
	/* invalid commands do not count either */
	assert_int_equal(send("h/slow/set", "bogus", T0 + 1500 * MS), -EINVAL);
	assert_int_equal(send("h/slow/set", "ON", T0 + 2000 * MS), 0);
	/* other actuators are not limited */
	assert_int_equal(send("h/sw/set", "ON", T0 + 2000 * MS), 0);
	assert_int_equal(send("h/sw/set", "OFF", T0 + 2000 * MS), 0);
}

static void test_interlock(void **state)
{
	(void)state;
	assert_int_equal(send("h/up/set", "ON", T0), 0);
	assert_int_equal(send("h/down/set", "ON", T0 + 1 * S), -EBUSY);
	assert_int_equal(fake("down")->n_sets, 0);
	assert_string_equal(commands_state(cmds, DOWN), "OFF");
	assert_non_null(strstr(rec_last("h/down/error")->payload, "interlock \\\"blind\\\": \\\"up\\\" is on"));
	/* OFF is always allowed, also for the refused one */
	assert_int_equal(send("h/down/set", "OFF", T0 + 2 * S), 0);
	/* up still on: nothing else switched implicitly */
	assert_string_equal(commands_state(cmds, UP), "ON");
	assert_int_equal(send("h/up/set", "OFF", T0 + 3 * S), 0);
	assert_int_equal(send("h/down/set", "ON", T0 + 4 * S), 0);
	assert_string_equal(commands_state(cmds, DOWN), "ON");
	assert_int_equal(send("h/up/set", "1", T0 + 5 * S), -EBUSY);
	/* actuators outside the group are not affected */
	assert_int_equal(send("h/sw/set", "ON", T0 + 5 * S), 0);
}

static void test_interlock_pending_and_unknown(void **state)
{
	struct sg_config *c2;
	struct sg_commands *r2;
	struct sg_cmd_msg m = {.topic = "h/b/set", .payload = "ON", .len = 2};
	(void)state;

	/* a: serial without initial (state unknown), b: serial with initial OFF, confirmed later */
	c2 = fixture_config("gateway: { base_topic = \"h\"; };\nactuators = (\n"
	                    " { name = \"a\"; driver = \"serial\"; port = \"@DIR@/tty\"; on = \"1\"; off = \"0\";\n"
	                    "   interlock = \"g\"; },\n"
	                    " { name = \"b\"; driver = \"serial\"; port = \"@DIR@/tty2\"; on = \"1\"; off = \"0\";\n"
	                    "   interlock = \"g\"; initial = \"OFF\"; }\n);\n");
	assert_non_null(c2);
	r2 = make_router(c2, T0);
	assert_null(commands_state(r2, 0));
	assert_string_equal(commands_state(r2, 1), "OFF");
	/* a's state is unknown: b may not go on */
	assert_int_equal(commands_message(r2, &m, T0), -EBUSY);
	assert_non_null(strstr(rec_last("h/b/error")->payload, "may be on (state unknown)"));
	/* a OFF (slow device): while it is not confirmed, b still may not go on */
	fake("a")->mode = FAKE_ASYNC;
	m.topic = "h/a/set";
	m.payload = "OFF";
	m.len = 3;
	assert_int_equal(commands_message(r2, &m, T0), 0);
	m.topic = "h/b/set";
	m.payload = "ON";
	m.len = 2;
	assert_int_equal(commands_message(r2, &m, T0), -EBUSY);
	fake_finish("a", 0, NULL);
	assert_string_equal(commands_state(r2, 0), "OFF");
	/* b ON while slow: a may not go on during b's confirmation */
	fake("b")->mode = FAKE_ASYNC;
	assert_int_equal(commands_message(r2, &m, T0), 0);
	assert_string_equal(commands_state(r2, 1), "OFF"); /* not confirmed yet */
	m.topic = "h/a/set";
	assert_int_equal(commands_message(r2, &m, T0), -EBUSY);
	assert_non_null(strstr(rec_last("h/a/error")->payload, "is being switched on"));
	fake_finish("b", 0, NULL);
	assert_string_equal(commands_state(r2, 1), "ON");
	commands_free(r2);
	config_free(c2);
}

static void test_interlock_config_errors(void **state)
{
	struct sg_config *c2;
	(void)state;

	c2 = fixture_config("actuators = (\n"
	                    " { name = \"a\"; driver = \"gpio\"; line = 1; interlock = \"g\"; initial = \"ON\"; },\n"
	                    " { name = \"b\"; driver = \"gpio\"; line = 2; interlock = \"g\"; initial = \"ON\"; }\n);\n");
	assert_null(c2);
	assert_non_null(strstr(fixture_error, "\"a\" and \"b\" of interlock group \"g\" would both be on"));
	c2 = fixture_config("actuators = (\n"
	                    " { name = \"a\"; driver = \"gpio\"; line = 1; interlock = \"g\"; safe = \"ON\"; },\n"
	                    " { name = \"b\"; driver = \"gpio\"; line = 2; interlock = \"g\"; initial = \"ON\"; }\n);\n");
	assert_null(c2);
	assert_non_null(strstr(fixture_error, "would both be on"));
	c2 = fixture_config("actuators = (\n"
	                    " { name = \"n\"; driver = \"serial\"; port = \"@DIR@/tty\"; type = \"number\"; min = 0;\n"
	                    "   max = 1; set = \"x\"; interlock = \"g\"; }\n);\n");
	assert_null(c2);
	assert_non_null(strstr(fixture_error, "\"interlock\" applies only to type \"switch\""));
}

static void test_expiry(void **state)
{
	struct sg_cmd_msg m = {.topic = "h/sw/set", .payload = "ON", .len = 2, .has_expiry = true, .expiry_s = 0};
	(void)state;

	assert_int_equal(commands_message(cmds, &m, T0), -ETIME);
	assert_int_equal(fake("sw")->n_sets, 0);
	assert_non_null(strstr(rec_last("h/sw/error")->payload, "expired"));
	m.expiry_s = 5;
	assert_int_equal(commands_message(cmds, &m, T0), 0);
	assert_string_equal(commands_state(cmds, SW), "ON");
}

static void test_expiry_while_queued(void **state)
{
	struct sg_cmd_msg m = {.topic = "h/fan/set", .payload = "10", .len = 2};
	(void)state;

	fake("fan")->mode = FAKE_ASYNC;
	assert_int_equal(commands_message(cmds, &m, T0), 0);        /* in flight */
	m.payload = "20";
	m.has_expiry = true;
	m.expiry_s = 1;
	assert_int_equal(commands_message(cmds, &m, T0), 0);        /* queued, 1 s to live */
	assert_int_equal(fake("fan")->n_sets, 1);
	commands_timer(cmds, T0 + 2 * S);
	fake_finish("fan", 0, NULL);                                /* the first completes late */
	commands_timer(cmds, T0 + 2 * S);                           /* the router starts the next: expired */
	assert_int_equal(fake("fan")->n_sets, 1);
	assert_string_equal(commands_state(cmds, FAN), "10");
	assert_non_null(strstr(rec_last("h/fan/error")->payload, "expired before it could be carried out"));
	assert_non_null(strstr(rec_last("h/fan/error")->payload, "\"payload\":\"20\""));
}

/* ---- confirmation, queueing --------------------------------------------------------------------- */

static void test_state_only_when_confirmed(void **state)
{
	(void)state;
	fake("fan")->mode = FAKE_ASYNC;
	assert_int_equal(send("h/fan/set", "30", T0), 0);
	assert_int_equal(fake("fan")->n_sets, 1);
	assert_null(rec_last("h/fan"));
	assert_null(commands_state(cmds, FAN));
	fake_finish("fan", 0, NULL);
	assert_string_equal(rec_last("h/fan")->payload, "30");

	/* a device that does not confirm: error, state unchanged */
	assert_int_equal(send("h/fan/set", "40", T0 + S), 0);
	fake_finish("fan", -ETIMEDOUT, "no reply \"OK\" within 500 ms");
	assert_string_equal(commands_state(cmds, FAN), "30");
	assert_int_equal(rec_count("h/fan"), 1);
	assert_string_equal(rec_last("h/fan/error")->payload,
	                    "{\"actuator\":\"fan\",\"error\":\"no reply \\\"OK\\\" within 500 ms\",\"payload\":\"40\"}");
}

static void test_queue_and_supersede(void **state)
{
	(void)state;
	fake("mode")->mode = FAKE_ASYNC;
	assert_int_equal(send("h/mode/set", "low", T0), 0);     /* in flight */
	assert_int_equal(send("h/mode/set", "medium", T0), 0);  /* waits */
	assert_int_equal(send("h/mode/set", "high", T0), 0);    /* replaces the waiting one */
	assert_non_null(strstr(rec_last("h/mode/error")->payload, "superseded"));
	assert_non_null(strstr(rec_last("h/mode/error")->payload, "\"payload\":\"medium\""));
	assert_int_equal(fake("mode")->n_sets, 1);
	fake_finish("mode", 0, NULL);
	commands_timer(cmds, T0);                               /* the loop comes back: next one starts */
	assert_int_equal(fake("mode")->n_sets, 2);
	assert_string_equal(fake("mode")->last, "high");
	fake_finish("mode", 0, NULL);
	assert_string_equal(commands_state(cmds, MODE), "high");
	assert_int_equal(rec_count("h/mode"), 2);
}

/* ---- MQTT 5 request/response -------------------------------------------------------------------- */

static void test_response_topic(void **state)
{
	static const unsigned char corr[] = {0x00, 0x01, 0xfe, 'x'};
	struct sg_cmd_msg m = {
		.topic = "h/sw/set", .payload = "bogus", .len = 5, .response_topic = "client/7/reply",
		.correlation = corr, .correlation_len = sizeof(corr),
	};
	const struct rec_pub *p;
	(void)state;

	assert_int_equal(commands_message(cmds, &m, T0), -EINVAL);
	p = rec_last("client/7/reply");
	assert_non_null(p);
	assert_true(p->has_corr);
	assert_int_equal(p->corr_len, sizeof(corr));
	assert_memory_equal(p->corr, corr, sizeof(corr));
	assert_false(p->retain);
	assert_string_equal(p->payload, rec_last("h/sw/error")->payload); /* same message in both places */
	assert_non_null(strstr(p->payload, "\"error\":"));

	m.payload = "ON";
	m.len = 2;
	assert_int_equal(commands_message(cmds, &m, T0), 0);
	p = rec_last("client/7/reply");
	assert_string_equal(p->payload, "{\"actuator\":\"sw\",\"state\":\"ON\"}");
	assert_memory_equal(p->corr, corr, sizeof(corr));

	/* an asynchronous command answers when confirmed, with its own correlation data */
	fake("fan")->mode = FAKE_ASYNC;
	m.topic = "h/fan/set";
	m.payload = "5";
	m.len = 1;
	m.correlation = "abc";
	m.correlation_len = 3;
	assert_int_equal(commands_message(cmds, &m, T0), 0);
	assert_string_equal(rec_last("client/7/reply")->payload, "{\"actuator\":\"sw\",\"state\":\"ON\"}");
	fake_finish("fan", 0, NULL);
	p = rec_last("client/7/reply");
	assert_string_equal(p->payload, "{\"actuator\":\"fan\",\"state\":\"5\"}");
	assert_memory_equal(p->corr, "abc", 3);

	/* answers go out at QoS 0 (the actuators' qos is 1): a refused one cannot come back after a reconnect */
	assert_int_equal(p->qos, 0);
	assert_int_equal(rec_last("h/fan")->qos, 1);

	/* a response topic with wildcards is not published to, and the command is refused whole */
	rec_reset();
	m.topic = "h/sw/set";
	m.payload = "OFF";
	m.len = 3;
	m.response_topic = "client/+/reply";
	assert_int_equal(commands_message(cmds, &m, T0), -EACCES);
	assert_int_equal(pub_rec.n_pubs, 1); /* the error topic only */
	assert_string_equal(commands_state(cmds, SW), "ON");
}

/*
 * The Response Topic rules (response_topic.h): each refused topic refuses the whole command — nothing
 * moves, nothing is published on it, the error topic says why — and each accepted one gets the answer.
 * The attacks of issue #10: another actuator's command topic (the answer {"actuator":..,"state":"ON"} would
 * command it), the status, a reading, discovery and $SYS topics, a 60,000-byte topic.
 */
struct rtcase {
	const char *legend;
	const char *topic;
	size_t len;          /* 0: strlen */
	int expect;
	const char *error;   /* substring of the error message */
};

static char long_topic[60001];

static const struct rtcase rtcases[] = {
	{"another actuator's command topic", "h/door/set", 0, -EACCES, "under the gateway's own topics (h/...)"},
	{"its own command topic", "h/sw/set", 0, -EACCES, "under the gateway's own topics"},
	{"a state topic", "h/fan", 0, -EACCES, "under the gateway's own topics"},
	{"an error topic", "h/sw/error", 0, -EACCES, "under the gateway's own topics"},
	{"the status topic", "h/gateway/gw/status", 0, -EACCES, "under the gateway's own topics"},
	{"a reading's topic", "h/room/temperature", 0, -EACCES, "under the gateway's own topics"},
	{"the base topic itself", "h", 0, -EACCES, "under the gateway's own topics"},
	{"a discovery config topic", "homeassistant/switch/gw/sw/config", 0, -EACCES, "discovery prefix (homeassistant/...)"},
	{"Home Assistant's status topic", "homeassistant/status", 0, -EACCES, "discovery prefix"},
	{"$SYS", "$SYS/broker/x", 0, -EACCES, "starts with '$'"},
	{"$share", "$share/g/t", 0, -EACCES, "starts with '$'"},
	{"a wildcard +", "a/+/b", 0, -EACCES, "wildcard"},
	{"a wildcard #", "a/#", 0, -EACCES, "wildcard"},
	{"empty", "", 0, -EACCES, "empty Response Topic"},
	{"a NUL inside", "ok\0h/door/set", 13, -EACCES, "NUL"},
	{"a control character", "a/\x01" "b", 0, -EACCES, "control character"},
	{"DEL", "a/\x7f" "b", 0, -EACCES, "control character"},
	{"invalid UTF-8", "a/\xc3" "(", 0, -EACCES, "not valid UTF-8"},
	{"an overlong UTF-8 form", "a/\xc0\xaf", 0, -EACCES, "not valid UTF-8"},
	{"257 bytes", NULL, 257, -EACCES, "257 bytes (at most 256)"},
	{"60,000 bytes", NULL, 60000, -EACCES, "60000 bytes"},
	{"a topic only starting like the base", "hx/reply", 0, 0, NULL},
	{"a leading slash", "/h/sw/set", 0, 0, NULL},
	{"UTF-8", "r\xc3\xa9ponse/1", 0, 0, NULL},
	{"256 bytes", NULL, 256, 0, NULL},
};

static void test_response_topic_rules(void **state)
{
	(void)state;
	memset(long_topic, 'r', sizeof(long_topic) - 1);
	for (size_t i = 0; i < sizeof(rtcases) / sizeof(rtcases[0]); i++) {
		const struct rtcase *c = &rtcases[i];
		const char *topic = c->topic;
		const char *payload = i % 2 ? "ON" : "OFF";
		char t[300];
		struct sg_cmd_msg m = {.topic = "h/sw/set", .payload = payload, .len = strlen(payload),
		                       .correlation = "k", .correlation_len = 1};
		size_t errs = rec_count("h/sw/error"), pubs, sets = fake("sw")->n_sets;

		print_message("case: %s\n", c->legend);
		if (!topic) {
			topic = long_topic + sizeof(long_topic) - 1 - c->len; /* c->len bytes of 'r' */
			if (c->len < sizeof(t)) {
				snprintf(t, sizeof(t), "%s", topic); /* an ordinary short string */
				topic = t;
			}
		}
		m.response_topic = topic;
		m.response_topic_len = c->len;
		pubs = pub_rec.n_pubs;
		assert_int_equal(commands_message(cmds, &m, T0 + (i + 1) * S), c->expect);
		if (c->expect == 0) {
			assert_int_equal(fake("sw")->n_sets, sets + 1);
			assert_int_equal(rec_count("h/sw/error"), errs);
			/* the last publication is the answer (the recorder keeps 160 bytes of a topic) */
			assert_true(pub_rec.n_pubs > pubs);
			assert_int_equal(strncmp(pub_rec.pubs[pub_rec.n_pubs - 1].topic, topic, 100), 0);
			assert_true(pub_rec.pubs[pub_rec.n_pubs - 1].has_corr);
			assert_int_equal(pub_rec.pubs[pub_rec.n_pubs - 1].qos, 0);
			continue;
		}
		assert_int_equal(fake("sw")->n_sets, sets); /* nothing moved */
		assert_int_equal(pub_rec.n_pubs, pubs + 1);  /* the error topic and nothing else */
		assert_int_equal(rec_count("h/sw/error"), errs + 1);
		if (!strstr(rec_last("h/sw/error")->payload, c->error))
			fail_msg("error %s lacks %s", rec_last("h/sw/error")->payload, c->error);
		assert_non_null(strstr(rec_last("h/sw/error")->payload, "command refused"));
	}
}

static void test_correlation_bound(void **state)
{
	static unsigned char corr[129];
	struct sg_cmd_msg m = {.topic = "h/sw/set", .payload = "ON", .len = 2, .response_topic = "me/r",
	                       .correlation = corr, .correlation_len = sizeof(corr)};
	(void)state;

	assert_int_equal(commands_message(cmds, &m, T0), -EMSGSIZE);
	assert_int_equal(fake("sw")->n_sets, 0);
	assert_null(rec_last("me/r"));
	assert_non_null(strstr(rec_last("h/sw/error")->payload, "Correlation Data of 129 bytes (at most 128)"));
	m.correlation_len = 128;
	assert_int_equal(commands_message(cmds, &m, T0 + S), 0);
	assert_int_equal(rec_last("me/r")->corr_len, 64); /* the recorder keeps 64 */
}

/* With commands.response_topic_prefix only topics under it are answered on; a reloaded configuration's
 * base topic and discovery prefix count as the gateway's own too. */
static void test_response_topic_prefix(void **state)
{
	struct sg_config *pc, *moved;
	struct sg_commands *r;
	struct sg_cmd_msg m = {.topic = "h/sw/set", .payload = "ON", .len = 2};
	(void)state;

	pc = fixture_config("commands: { response_topic_prefix = \"replies\"; };\n" CONFIG);
	assert_non_null(pc);
	assert_string_equal(pc->commands.response_topic_prefix, "replies");
	r = make_router(pc, T0);
	m.response_topic = "replies/me/1";
	assert_int_equal(commands_message(r, &m, T0), 0);
	assert_non_null(rec_last("replies/me/1"));
	m.response_topic = "other/me/1";
	assert_int_equal(commands_message(r, &m, T0), -EACCES);
	assert_non_null(strstr(rec_last("h/sw/error")->payload, "not under commands.response_topic_prefix (replies/...)"));
	m.response_topic = "replies"; /* the prefix itself is not under it */
	assert_int_equal(commands_message(r, &m, T0), -EACCES);
	m.response_topic = "repliesX/1";
	assert_int_equal(commands_message(r, &m, T0), -EACCES);

	/* a reload moved readings and discovery to other places: those are refused as well */
	moved = fixture_config("gateway: { id = \"gw\"; base_topic = \"newbase\"; };\n"
	                       "discovery: { prefix = \"ha2\"; };\n");
	assert_non_null(moved);
	m.response_topic = "other/x";
	assert_int_equal(commands_message(cmds, &m, T0), 0);
	commands_reloaded(cmds, moved);
	m.response_topic = "newbase/room/temperature";
	assert_int_equal(commands_message(cmds, &m, T0 + S), -EACCES);
	m.response_topic = "ha2/switch/gw/sw/config";
	assert_int_equal(commands_message(cmds, &m, T0 + 2 * S), -EACCES);
	m.response_topic = "h/door/set"; /* the running base still counts */
	assert_int_equal(commands_message(cmds, &m, T0 + 3 * S), -EACCES);
	commands_reloaded(cmds, NULL);
	commands_free(r);
	config_free(pc);
	config_free(moved);
}

static void test_response_topic_prefix_config(void **state)
{
	static const struct {
		const char *text, *error;
	} bad[] = {
		{"commands: { response_topic_prefix = \"replies/\"; };", "invalid response_topic_prefix \"replies/\""},
		{"commands: { response_topic_prefix = \"a/+\"; };", "invalid response_topic_prefix"},
		{"commands: { response_topic_prefix = \"\"; };", "invalid response_topic_prefix"},
		{"commands: { response_topic_prefix = \"h/replies\"; };", "lies under the base topic \"h\""},
		{"commands: { response_topic_prefix = \"homeassistant\"; };", "lies under the discovery prefix"},
		{"commands: { response_topic_prefix = 3; };", "must be a string"},
		{"commands: { prefix = \"x\"; };", "unknown key \"prefix\" in commands"},
		{"commands = 1;", "\"commands\" must be a group"},
	};
	char text[512];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("case: %s\n", bad[i].text);
		snprintf(text, sizeof(text), "gateway: { id = \"gw\"; base_topic = \"h\"; };\n%s\n", bad[i].text);
		assert_null(fixture_config(text));
		if (!strstr(fixture_error, bad[i].error))
			fail_msg("error %s lacks %s", fixture_error, bad[i].error);
	}
}

/* ---- hardware lost and back --------------------------------------------------------------------- */

static void test_loss_and_reopen(void **state)
{
	(void)state;
	assert_int_equal(send("h/sw/set", "ON", T0), 0);
	fake("sw")->mode = FAKE_FAIL;
	fake("sw")->fail_with = -EIO;
	assert_int_equal(send("h/sw/set", "OFF", T0 + S), -EIO);
	assert_false(commands_up(cmds, SW));
	assert_false(fake("sw")->open);
	assert_string_equal(commands_state(cmds, SW), "ON"); /* last confirmed, kept for the interlock */
	assert_int_equal(send("h/sw/set", "OFF", T0 + S), -ENODEV);
	assert_in_range(commands_deadline(cmds), T0 + S + S / 10, T0 + 2 * S); /* backoff.h: up to 1 s, jittered */
	fake("sw")->mode = FAKE_SYNC;
	fake("sw")->open_error = -ENOENT;
	commands_timer(cmds, T0 + 2 * S);
	assert_false(commands_up(cmds, SW));
	assert_in_range(commands_deadline(cmds), T0 + 2 * S + S / 10, T0 + 4 * S); /* up to 2 s: doubled */
	fake("sw")->open_error = 0;
	commands_timer(cmds, T0 + 4 * S);
	assert_true(commands_up(cmds, SW));
	assert_int_equal(fake("sw")->n_opens, 2);
	assert_true(fake("sw")->readback == 1); /* opened at the last confirmed state */
}

static void test_serial_restore_after_reopen(void **state)
{
	(void)state;
	assert_int_equal(send("h/fan/set", "60", T0), 0);
	fake("fan")->mode = FAKE_FAIL;
	fake("fan")->fail_with = -ENXIO;
	assert_int_equal(send("h/fan/set", "70", T0 + S), -ENXIO);
	assert_false(commands_up(cmds, FAN));
	fake("fan")->mode = FAKE_SYNC;
	commands_timer(cmds, T0 + 2 * S);
	assert_true(commands_up(cmds, FAN));
	assert_string_equal(fake("fan")->last, "60"); /* the device is told its last confirmed state again */
}

/* ---- connect, shutdown -------------------------------------------------------------------------- */

static void test_connected(void **state)
{
	(void)state;
	commands_connected(cmds);
	assert_int_equal(pub_rec.n_subs, N_ACTS);
	assert_string_equal(pub_rec.subs[SW], "h/sw/set");
	assert_int_equal(pub_rec.sub_qos[SW], 1);
	assert_string_equal(pub_rec.subs[UP], "h/up/set");
	assert_int_equal(pub_rec.sub_qos[UP], 2);
	/* known states are published, retained; unknown ones (fan, mode) are not */
	assert_string_equal(rec_last("h/sw")->payload, "OFF");
	assert_true(rec_last("h/sw")->retain);
	assert_string_equal(rec_last("h/door")->payload, "CLOSE");
	assert_int_equal(rec_last("h/up")->qos, 2);
	assert_null(rec_last("h/fan"));
	assert_null(rec_last("h/mode"));
	/* again after a reconnect */
	commands_connected(cmds);
	assert_int_equal(pub_rec.n_subs, 2 * N_ACTS);
	assert_int_equal(rec_count("h/sw"), 2);
}

static void test_disconnected_publish_is_not_fatal(void **state)
{
	(void)state;
	pub_rec.publish_result = -ENOTCONN;
	assert_int_equal(send("h/sw/set", "ON", T0), 0);
	assert_string_equal(commands_state(cmds, SW), "ON");
	pub_rec.publish_result = 0;
	commands_connected(cmds);
	assert_string_equal(rec_last("h/sw")->payload, "ON");
}

static void test_shutdown(void **state)
{
	struct sg_config *c2;
	struct sg_commands *r2;
	struct sg_cmd_msg m = {.topic = "h/a/set", .payload = "ON", .len = 2};
	(void)state;

	c2 = fixture_config("gateway: { base_topic = \"h\"; };\nactuators = (\n"
	                    " { name = \"a\"; driver = \"gpio\"; line = 1; initial = \"OFF\"; },\n"
	                    " { name = \"b\"; driver = \"gpio\"; line = 2; initial = \"ON\"; safe = \"OFF\"; },\n"
	                    " { name = \"c\"; driver = \"serial\"; port = \"@DIR@/tty\"; type = \"number\"; min = 0;\n"
	                    "   max = 9; set = \"{value}\"; },\n"
	                    " { name = \"d\"; driver = \"serial\"; port = \"@DIR@/tty2\"; on = \"1\"; off = \"0\";\n"
	                    "   safe = \"OFF\"; }\n);\n");
	assert_non_null(c2);
	memset(fakes, 0, sizeof(fakes));
	rec_reset();
	r2 = make_router(c2, T0);
	assert_int_equal(commands_message(r2, &m, T0), 0);
	fake("d")->mode = FAKE_FAIL;
	fake("d")->fail_with = -ETIMEDOUT;
	commands_shutdown(r2, 50);
	assert_int_equal(fake("a")->n_sync, 1);            /* a: initial OFF is its safe state */
	assert_string_equal(fake("a")->last, "OFF");
	assert_string_equal(rec_last("h/a")->payload, "OFF");
	assert_int_equal(fake("b")->n_sync, 1);
	assert_string_equal(rec_last("h/b")->payload, "OFF");
	assert_int_equal(fake("c")->n_sync, 0);            /* neither safe nor initial: left alone */
	assert_int_equal(fake("d")->n_sync, 1);            /* tried, failed: state not published */
	assert_null(rec_last("h/d"));
	for (int i = 0; i < 4; i++)
		assert_false(commands_up(r2, (size_t)i));
	assert_false(fake("a")->open);
	commands_free(r2);
	config_free(c2);
}

/* A payload is LEN bytes, not a C string (found by fuzz_commands: the number check read on past it;
 * tests/fuzz/regressions/commands-number-overread). Exactly sized heap buffers, so ASan sees any overread. */
static void test_payload_not_nul_terminated(void **state)
{
	static const char *const payloads[] = {"12", "7", "{\"value\":5}", "ON", "low"};
	static const char *const topics[] = {"h/fan/set", "h/fan/set", "h/fan/set", "h/sw/set", "h/mode/set"};
	(void)state;

	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		size_t n = strlen(payloads[i]);
		char *p = malloc(n);
		assert_non_null(p);
		memcpy(p, payloads[i], n);
		assert_int_equal(send_full(topics[i], p, n, false, T0 + i * S), 0);
		free(p);
	}
	assert_string_equal(commands_state(cmds, FAN), "5");
}

static void test_error_message_is_json(void **state)
{
	(void)state;
	assert_int_equal(send_full("h/sw/set", "\"x\n\xff", 4, false, T0), -EINVAL);
	assert_string_equal(rec_last("h/sw/error")->payload,
	                    "{\"actuator\":\"sw\",\"error\":\"invalid payload: expected ON or OFF (also 1/0, true/false, "
	                    "{\\\"state\\\":\\\"ON\\\"})\",\"payload\":\"\\\"x\\n\\ufffd\"}");
}

static void test_unknown_driver(void **state)
{
	static const struct sg_act_driver *const only_serial[] = {&fake_serial_drv, NULL};
	static const struct sg_cmd_env env = {.publish = rec_publish, .drivers = only_serial};
	(void)state;

	errno = 0;
	assert_null(commands_new(cfg, &env, NULL, T0));
	assert_int_equal(errno, EINVAL);
}


/* ---- fail-safe ------------------------------------------------------------------------------------ */

#define FAIL_SAFE_CONFIG                                                                                     \
	"gateway: { base_topic = \"h\"; };\nactuators = (\n"                                                   \
	" { name = \"heat\"; driver = \"gpio\"; line = 1; initial = \"OFF\"; fail_safe_after_s = 30; },\n"        \
	" { name = \"fan\"; driver = \"serial\"; port = \"@DIR@/tty\"; type = \"number\"; min = 0; max = 100;\n" \
	"   set = \"{value}\"; safe = \"100\"; fail_safe_on_ha_offline = true; },\n"                              \
	" { name = \"plain\"; driver = \"gpio\"; line = 2; initial = \"OFF\"; }\n);\n"

/* A router for FAIL_SAFE_CONFIG made at T0, connected, with heat ON and fan 20: what the fail-safe must undo. */
static struct sg_commands *fail_safe_router(struct sg_config **ret_cfg)
{
	struct sg_config *c = fixture_config(FAIL_SAFE_CONFIG);
	struct sg_commands *r;
	struct sg_cmd_msg on = {.topic = "h/heat/set", .payload = "ON", .len = 2};
	struct sg_cmd_msg fan = {.topic = "h/fan/set", .payload = "20", .len = 2};
	struct sg_cmd_msg plain = {.topic = "h/plain/set", .payload = "ON", .len = 2};

	assert_non_null(c);
	memset(fakes, 0, sizeof(fakes));
	rec_reset();
	r = make_router(c, T0);
	assert_int_equal(commands_deadline(r), T0 + 30 * S); /* not connected yet: counting from the start */
	commands_connected(r);
	assert_int_equal(commands_deadline(r), UINT64_MAX);
	assert_int_equal(commands_message(r, &on, T0 + S), 0);
	assert_int_equal(commands_message(r, &fan, T0 + S), 0);
	assert_int_equal(commands_message(r, &plain, T0 + S), 0);
	assert_string_equal(commands_state(r, 0), "ON");
	rec_reset();
	*ret_cfg = c;
	return r;
}

static void test_fail_safe_after_broker_loss(void **state)
{
	struct sg_config *c;
	struct sg_commands *r = fail_safe_router(&c);
	const struct rec_pub *p;
	(void)state;

	pub_rec.publish_result = -ENOTCONN;
	commands_disconnected(r, T0 + 10 * S);
	assert_int_equal(commands_deadline(r), T0 + 40 * S);
	commands_timer(r, T0 + 40 * S - 1);
	assert_string_equal(commands_state(r, 0), "ON"); /* not a microsecond early */
	commands_timer(r, T0 + 40 * S);
	assert_string_equal(commands_state(r, 0), "OFF");
	assert_false(fake("heat")->last_on);
	assert_string_equal(commands_state(r, 1), "20"); /* only on Home Assistant's word */
	assert_string_equal(commands_state(r, 2), "ON"); /* no fail-safe configured */
	assert_int_equal(commands_deadline(r), UINT64_MAX); /* once per outage */
	assert_int_equal(commands_fail_safe_count(r, 0), 1);
	/* back: the new state, then why, on the error topic */
	pub_rec.publish_result = 0;
	rec_reset();
	commands_connected(r);
	assert_string_equal(rec_last("h/heat")->payload, "OFF");
	p = rec_last("h/heat/error");
	assert_non_null(p);
	assert_false(p->retain);
	assert_string_equal(p->payload, "{\"actuator\":\"heat\",\"error\":\"fail-safe: no connection to the broker "
	                    "for 30 s; switched to its safe state\",\"state\":\"OFF\"}");
	assert_true(&pub_rec.pubs[0] == rec_last("h/heat") || strcmp(pub_rec.pubs[0].topic, "h/heat") == 0);
	commands_connected(r); /* said once */
	assert_int_equal(rec_count("h/heat/error"), 1);
	/* a short outage does nothing */
	commands_disconnected(r, T0 + 100 * S);
	commands_connected(r);
	commands_timer(r, T0 + 200 * S);
	assert_int_equal(commands_fail_safe_count(r, 0), 1);
	commands_free(r);
	config_free(c);
}

static void test_fail_safe_on_ha_offline(void **state)
{
	struct sg_config *c;
	struct sg_commands *r = fail_safe_router(&c);
	(void)state;

	assert_true(commands_wants_ha_status(r));
	commands_ha_offline(r, T0 + 5 * S);
	assert_string_equal(commands_state(r, 1), "100");
	assert_string_equal(fake("fan")->last, "100");
	assert_string_equal(commands_state(r, 0), "ON"); /* heat waits for the broker timer only */
	assert_string_equal(rec_last("h/fan")->payload, "100");
	assert_non_null(strstr(rec_last("h/fan/error")->payload, "fail-safe: Home Assistant went offline"));
	/* again while already safe: nothing moves, nothing said */
	fake("fan")->n_sets = 0;
	rec_reset();
	commands_ha_offline(r, T0 + 6 * S);
	assert_int_equal(fake("fan")->n_sets, 0);
	assert_null(rec_last("h/fan/error"));
	commands_free(r);
	config_free(c);
}

static void test_fail_safe_hardware_away(void **state)
{
	struct sg_config *c;
	struct sg_commands *r = fail_safe_router(&c);
	(void)state;

	/* the heater's port fails during the outage: it goes safe once it is back, and says so */
	fake("heat")->mode = FAKE_FAIL;
	fake("heat")->fail_with = -EIO;
	assert_int_equal(commands_message(r, &(struct sg_cmd_msg){.topic = "h/heat/set", .payload = "ON", .len = 2},
	                                  T0 + 2 * S), -EIO);
	assert_false(commands_up(r, 0));
	commands_disconnected(r, T0 + 3 * S);
	fake("heat")->open_error = -ENOENT;
	commands_timer(r, T0 + 33 * S);
	assert_false(commands_up(r, 0));
	fake("heat")->open_error = 0;
	fake("heat")->mode = FAKE_SYNC;
	commands_timer(r, T0 + 100 * S);
	assert_true(commands_up(r, 0));
	assert_string_equal(commands_state(r, 0), "OFF");
	rec_reset();
	commands_connected(r);
	assert_non_null(strstr(rec_last("h/heat/error")->payload, "no connection to the broker for 30 s"));
	commands_free(r);
	config_free(c);
}

/* A status topic or Home Assistant's status topic outside the base topic and prefix is never answered on. */
static void test_fail_safe_status_topics_not_answered(void **state)
{
	struct sg_config *c = fixture_config("gateway: { base_topic = \"h\"; status_topic = \"tele/gw/LWT\"; };\n"
	                                     "discovery: { ha_status_topic = \"hass/status\"; };\n"
	                                     "actuators = ( { name = \"a\"; driver = \"gpio\"; line = 1; } );\n");
	struct sg_commands *r;
	struct sg_cmd_msg m = {.topic = "h/a/set", .payload = "ON", .len = 2};
	(void)state;

	assert_non_null(c);
	memset(fakes, 0, sizeof(fakes));
	rec_reset();
	r = make_router(c, T0);
	m.response_topic = "tele/gw/LWT";
	assert_int_equal(commands_message(r, &m, T0), -EACCES);
	assert_non_null(strstr(rec_last("h/a/error")->payload, "is the gateway's status topic"));
	m.response_topic = "hass/status";
	assert_int_equal(commands_message(r, &m, T0), -EACCES);
	assert_non_null(strstr(rec_last("h/a/error")->payload, "is Home Assistant's status topic"));
	m.response_topic = "tele/gw/LWTx";
	assert_int_equal(commands_message(r, &m, T0), 0);
	assert_null(rec_last("tele/gw/LWT"));
	commands_free(r);
	config_free(c);
}

static void test_fail_safe_config(void **state)
{
	struct sg_config *c;
	(void)state;

	c = fixture_config("actuators = ( { name = \"a\"; driver = \"gpio\"; line = 1; fail_safe_after_s = 5; } );\n");
	assert_null(c);
	assert_non_null(strstr(fixture_error, ":1: actuator \"a\": \"fail_safe_after_s\" needs a state to go to"));
	c = fixture_config("actuators = ( { name = \"a\"; driver = \"gpio\"; line = 1; initial = \"OFF\";\n"
	                   "  fail_safe_after_s = -1; } );\n");
	assert_null(c);
	assert_non_null(strstr(fixture_error, ":2:"));
	c = fixture_config("actuators = ( { name = \"a\"; driver = \"gpio\"; line = 1;\n"
	                   "  fail_safe_on_ha_offline = true; } );\n");
	assert_null(c);
	assert_non_null(strstr(fixture_error, ":2: actuator \"a\": \"fail_safe_on_ha_offline\" needs a state"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_payload_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_topic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retained_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interlock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interlock_pending_and_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interlock_config_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry_while_queued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_only_when_confirmed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_and_supersede, setup, teardown),
		cmocka_unit_test_setup_teardown(test_response_topic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_response_topic_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_correlation_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_response_topic_prefix, setup, teardown),
		cmocka_unit_test(test_response_topic_prefix_config),
		cmocka_unit_test_setup_teardown(test_loss_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serial_restore_after_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disconnected_publish_is_not_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_message_is_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_payload_not_nul_terminated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_driver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_safe_after_broker_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_safe_on_ha_offline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_safe_hardware_away, setup, teardown),
		cmocka_unit_test(test_fail_safe_config),
		cmocka_unit_test_setup_teardown(test_fail_safe_status_topics_not_answered, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
