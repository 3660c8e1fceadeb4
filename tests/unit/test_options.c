/* SPDX-License-Identifier: MIT */
/*
 * test_options.c — common/options.c, the typed reader of config keys used
 * by config.c and every driver: each type at and past its range edges, the
 * wrong type, an absent key (not an error, *out untouched), and the exact
 * wording and line of every message, since users and the integration tests
 * see these words.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/options.h"
#include "opts_helper.h"

/* One reader's run on a snippet: its result, the message and line when it failed. */
struct run {
	config_t cfg;
	config_setting_t *g;
	struct sg_opt_error err;
};

static void run_open(struct run *r, const char *text)
{
	memset(r, 0, sizeof(*r));
	r->g = opts_fixture_group(&r->cfg, text);
	r->err.line = -1;
}

/* Assert a failure with MSG at LINE (the snippet's first line is 2) and close R. */
static void expect_fail(struct run *r, int rc, int line, const char *msg)
{
	assert_int_equal(rc, -EINVAL);
	assert_string_equal(r->err.msg, msg);
	assert_int_equal(r->err.line, line);
	config_destroy(&r->cfg);
}

static void test_string(void **state)
{
	struct run r;
	const char *v = "unset";
	char *d;
	(void)state;

	run_open(&r, "port = \"/dev/ttyUSB0\";");
	assert_int_equal(sg_opt_string(r.g, "port", &v, &r.err), 0);
	assert_string_equal(v, "/dev/ttyUSB0");
	v = "unset";
	assert_int_equal(sg_opt_string(r.g, "missing", &v, &r.err), 0);
	assert_string_equal(v, "unset");
	assert_int_equal(sg_opt_string(NULL, "port", &v, &r.err), 0);
	assert_string_equal(v, "unset");
	assert_int_equal(r.err.line, -1);
	config_destroy(&r.cfg);

	run_open(&r, "\nport = 5;");
	expect_fail(&r, sg_opt_string(r.g, "port", &v, &r.err), 3, "\"port\" must be a string");

	/* 1..MAX bytes */
	run_open(&r, "u = \"kWh\"; e = \"\";");
	assert_int_equal(sg_opt_string_len(r.g, "u", 3, &v, &r.err), 0);
	assert_string_equal(v, "kWh");
	v = "unset";
	assert_int_equal(sg_opt_string_len(r.g, "missing", 3, &v, &r.err), 0);
	assert_string_equal(v, "unset");
	assert_int_equal(sg_opt_string_len(r.g, "u", 2, &v, &r.err), -EINVAL);
	assert_string_equal(r.err.msg, "\"u\" must be 1..2 characters");
	expect_fail(&r, sg_opt_string_len(r.g, "e", 3, &v, &r.err), 2, "\"e\" must be 1..3 characters");
	assert_string_equal(v, "unset");
	run_open(&r, "u = 1;");
	expect_fail(&r, sg_opt_string_len(r.g, "u", 3, &v, &r.err), 2, "\"u\" must be a string");

	/* the copy outlives the config and replaces the old value */
	run_open(&r, "on = \"ON\";");
	d = strdup("old");
	assert_non_null(d);
	assert_int_equal(sg_opt_string_dup(r.g, "on", &d, &r.err), 0);
	assert_int_equal(sg_opt_string_dup(r.g, "off", &d, &r.err), 0);
	config_destroy(&r.cfg);
	assert_string_equal(d, "ON");
	free(d);

	run_open(&r, "on = true;");
	d = NULL;
	expect_fail(&r, sg_opt_string_dup(r.g, "on", &d, &r.err), 2, "\"on\" must be a string");
	assert_null(d);
}

static void test_int(void **state)
{
	struct run r;
	int v = 42;
	(void)state;

	run_open(&r, "lo = 1; hi = 10; big = 5000000000L;");
	assert_int_equal(sg_opt_int(r.g, "lo", 1, 10, &v, &r.err), 0);
	assert_int_equal(v, 1);
	assert_int_equal(sg_opt_int(r.g, "hi", 1, 10, &v, &r.err), 0);
	assert_int_equal(v, 10);
	v = 42;
	assert_int_equal(sg_opt_int(r.g, "missing", 1, 10, &v, &r.err), 0);
	assert_int_equal(v, 42);
	expect_fail(&r, sg_opt_int(r.g, "big", 0, 255, &v, &r.err), 2, "\"big\" must be between 0 and 255");
	assert_int_equal(v, 42);

	run_open(&r, "n = 0;");
	expect_fail(&r, sg_opt_int(r.g, "n", 1, 10, &v, &r.err), 2, "\"n\" must be between 1 and 10");
	run_open(&r, "n = 11;");
	expect_fail(&r, sg_opt_int(r.g, "n", 1, 10, &v, &r.err), 2, "\"n\" must be between 1 and 10");
	run_open(&r, "n = -3;");
	expect_fail(&r, sg_opt_int(r.g, "n", -2, 2, &v, &r.err), 2, "\"n\" must be between -2 and 2");
	run_open(&r, "\n\nn = 1.0;");
	expect_fail(&r, sg_opt_int(r.g, "n", 1, 10, &v, &r.err), 4, "\"n\" must be an integer");
	run_open(&r, "n = \"1\";");
	expect_fail(&r, sg_opt_int(r.g, "n", 1, 10, &v, &r.err), 2, "\"n\" must be an integer");
	assert_int_equal(v, 42);
}

static void test_double(void **state)
{
	struct run r;
	double v = -1;
	(void)state;

	run_open(&r, "a = 0.05; b = 10; c = 2.5;");
	assert_int_equal(sg_opt_double(r.g, "a", 0.05, 10, &v, &r.err), 0);
	assert_true(v == 0.05);
	assert_int_equal(sg_opt_double(r.g, "b", 0.05, 10, &v, &r.err), 0); /* an integer is a number */
	assert_true(v == 10);
	assert_int_equal(sg_opt_double(r.g, "c", 0, INFINITY, &v, &r.err), 0);
	assert_true(v == 2.5);
	v = -1;
	assert_int_equal(sg_opt_double(r.g, "missing", 0, 1, &v, &r.err), 0);
	assert_int_equal(sg_opt_double_above(r.g, "missing", 0, 1, &v, &r.err), 0);
	assert_true(v == -1);
	config_destroy(&r.cfg);

	run_open(&r, "t = 0.049;");
	expect_fail(&r, sg_opt_double(r.g, "t", 0.05, 10, &v, &r.err), 2, "\"t\" must be between 0.05 and 10");
	run_open(&r, "t = 10.001;");
	expect_fail(&r, sg_opt_double(r.g, "t", 0.05, 10, &v, &r.err), 2, "\"t\" must be between 0.05 and 10");
	run_open(&r, "t = -1;");
	expect_fail(&r, sg_opt_double(r.g, "t", 0, INFINITY, &v, &r.err), 2, "\"t\" must be at least 0");
	run_open(&r, "t = \"5\";");
	expect_fail(&r, sg_opt_double(r.g, "t", 0, 10, &v, &r.err), 2, "\"t\" must be a number");
	run_open(&r, "t = false;");
	expect_fail(&r, sg_opt_double_above(r.g, "t", 0, 10, &v, &r.err), 2, "\"t\" must be a number");
	assert_true(v == -1);

	/* LO itself excluded */
	run_open(&r, "i = 0.001;");
	assert_int_equal(sg_opt_double_above(r.g, "i", 0, 10, &v, &r.err), 0);
	assert_true(v == 0.001);
	config_destroy(&r.cfg);
	run_open(&r, "i = 0;");
	expect_fail(&r, sg_opt_double_above(r.g, "i", 0, 10, &v, &r.err), 2, "\"i\" must be greater than 0 and at most 10");
	run_open(&r, "i = 10.5;");
	expect_fail(&r, sg_opt_double_above(r.g, "i", 0, 10, &v, &r.err), 2, "\"i\" must be greater than 0 and at most 10");
	run_open(&r, "i = 0.0;");
	expect_fail(&r, sg_opt_double_above(r.g, "i", 0, INFINITY, &v, &r.err), 2, "\"i\" must be greater than 0");
}

/* sg_opt_number(): a setting of its own (list elements), named by the caller. */
static void test_number(void **state)
{
	struct run r;
	double v = -1;
	(void)state;

	run_open(&r, "l = ( 3, 1.5,\n \"x\" );");
	assert_int_equal(sg_opt_number(config_setting_get_elem(config_setting_get_member(r.g, "l"), 0), "a value", &v,
	                               &r.err), 0);
	assert_true(v == 3);
	assert_int_equal(sg_opt_number(config_setting_get_elem(config_setting_get_member(r.g, "l"), 1), "a value", &v,
	                               &r.err), 0);
	assert_true(v == 1.5);
	expect_fail(&r, sg_opt_number(config_setting_get_elem(config_setting_get_member(r.g, "l"), 2), "a value", &v,
	                              &r.err), 3, "a value must be a number");
	assert_true(v == 1.5);
}

static void test_bool(void **state)
{
	struct run r;
	bool v = false;
	(void)state;

	run_open(&r, "a = true; b = false;");
	assert_int_equal(sg_opt_bool(r.g, "a", &v, &r.err), 0);
	assert_true(v);
	assert_int_equal(sg_opt_bool(r.g, "b", &v, &r.err), 0);
	assert_false(v);
	v = true;
	assert_int_equal(sg_opt_bool(r.g, "missing", &v, &r.err), 0);
	assert_true(v);
	config_destroy(&r.cfg);

	run_open(&r, "a = \"yes\";");
	expect_fail(&r, sg_opt_bool(r.g, "a", &v, &r.err), 2, "\"a\" must be a boolean (true or false)");
	run_open(&r, "a = 1;");
	expect_fail(&r, sg_opt_bool(r.g, "a", &v, &r.err), 2, "\"a\" must be a boolean (true or false)");
	assert_true(v);
}

static void test_enum(void **state)
{
	static const char *const names[] = {"none", "even", "odd", NULL};
	struct run r;
	int v = -1;
	(void)state;

	run_open(&r, "p = \"none\"; q = \"odd\";");
	assert_int_equal(sg_opt_enum(r.g, "p", names, &v, &r.err), 0);
	assert_int_equal(v, 0);
	assert_int_equal(sg_opt_enum(r.g, "q", names, &v, &r.err), 0);
	assert_int_equal(v, 2);
	v = -1;
	assert_int_equal(sg_opt_enum(r.g, "missing", names, &v, &r.err), 0);
	assert_int_equal(v, -1);
	config_destroy(&r.cfg);

	run_open(&r, "p = \"mark\";");
	expect_fail(&r, sg_opt_enum(r.g, "p", names, &v, &r.err), 2, "\"p\" must be one of \"none\", \"even\", \"odd\"");
	run_open(&r, "p = \"None\";"); /* names are case-sensitive */
	expect_fail(&r, sg_opt_enum(r.g, "p", names, &v, &r.err), 2, "\"p\" must be one of \"none\", \"even\", \"odd\"");
	run_open(&r, "\np = 1;");
	expect_fail(&r, sg_opt_enum(r.g, "p", names, &v, &r.err), 3, "\"p\" must be a string");
	assert_int_equal(v, -1);
}

static void test_require_and_only_if(void **state)
{
	struct run r;
	(void)state;

	run_open(&r, "a = 1;\nb = 2;");
	assert_int_equal(sg_opt_require(r.g, "a", &r.err, "device \"%s\"", "x"), 0);
	assert_int_equal(sg_opt_only_if(r.g, "b", true, "numbers", &r.err), 0);
	assert_int_equal(sg_opt_only_if(r.g, "missing", false, "numbers", &r.err), 0);
	assert_int_equal(r.err.line, -1);
	/* the group's own line: where the key is missing */
	assert_int_equal(sg_opt_require(r.g, "c", &r.err, "actuator \"%.4s\"", "heater"), -EINVAL);
	assert_string_equal(r.err.msg, "actuator \"heat\" needs \"c\"");
	assert_int_equal(r.err.line, 1);
	assert_ptr_equal(r.err.at, r.g);
	expect_fail(&r, sg_opt_only_if(r.g, "b", false, "actuators of type \"number\"", &r.err), 3,
	            "\"b\" applies only to actuators of type \"number\"");
}

static void test_fail_and_list(void **state)
{
	static const char *const names[] = {"a", "bb", "ccc", NULL};
	struct sg_opt_error err = {.line = -1};
	char buf[64];
	(void)state;

	assert_int_equal(sg_opt_fail(NULL, NULL, "ignored %d", 1), -EINVAL);
	assert_int_equal(sg_opt_fail(&err, NULL, "no %s", "line"), -EINVAL);
	assert_int_equal(err.line, 0);
	assert_null(err.at);
	assert_string_equal(err.msg, "no line");

	sg_opt_quote_list(buf, sizeof(buf), names);
	assert_string_equal(buf, "\"a\", \"bb\", \"ccc\"");
	sg_opt_quote_list(buf, 9, names); /* cut, never overrun */
	assert_string_equal(buf, "\"a\", \"bb");
	sg_opt_quote_list(buf, sizeof(buf), (const char *const[]){NULL});
	assert_string_equal(buf, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_string),
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_double),
		cmocka_unit_test(test_number),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_enum),
		cmocka_unit_test(test_require_and_only_if),
		cmocka_unit_test(test_fail_and_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
