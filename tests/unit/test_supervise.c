/* SPDX-License-Identifier: MIT */
/*
 * test_supervise.c — the hardware supervision devices and actuators share:
 * a problem is a warning once and only debug while it stays the same, a new
 * one is a warning again; the retry delays grow with the failures in a row
 * within the 1 s .. 60 s backoff; a recovery after trouble is one notice
 * naming the place and starts the backoff afresh, one without trouble says
 * nothing; a reset forgets silently. The log lines are read back from stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway/log.h"
#include "gateway/supervise.h"

#define S 1000000ULL

/* stderr into a temporary file while a test runs; captured() returns what was written since. */
static FILE *cap;
static int saved_stderr = -1;
static char text[8192];

static void capture_start(void)
{
	fflush(stderr);
	cap = tmpfile();
	assert_non_null(cap);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_true(dup2(fileno(cap), STDERR_FILENO) >= 0);
}

static const char *captured(void)
{
	size_t n;

	fflush(stderr);
	rewind(cap);
	n = fread(text, 1, sizeof(text) - 1, cap);
	text[n] = '\0';
	assert_int_equal(ftruncate(fileno(cap), 0), 0);
	rewind(cap);
	return text;
}

static void capture_stop(void)
{
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	fclose(cap);
}

static int setup(void **state)
{
	(void)state;
	unsetenv("JOURNAL_STREAM");
	log_setup();
	log_set_max_level(LOG_DEBUG);
	capture_start();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	capture_stop();
	return 0;
}

static void test_problem_logged_when_it_changes(void **state)
{
	struct sg_supervise s;
	(void)state;

	supervise_init(&s);
	assert_false(supervise_troubled(&s));
	supervise_problem(&s, "meter", "cannot open %s: %s", "/dev/ttyUSB0", "No such file or directory");
	assert_string_equal(captured(), "<4>meter: cannot open /dev/ttyUSB0: No such file or directory\n");
	assert_true(supervise_troubled(&s));
	assert_string_equal(s.problem, "cannot open /dev/ttyUSB0: No such file or directory");

	/* the same again: debug only */
	supervise_problem(&s, "meter", "cannot open %s: %s", "/dev/ttyUSB0", "No such file or directory");
	assert_string_equal(captured(), "<7>meter: cannot open /dev/ttyUSB0: No such file or directory\n");

	/* another one: a warning again */
	supervise_problem(&s, "meter", "cannot open %s: %s", "/dev/ttyUSB0", "Permission denied");
	assert_string_equal(captured(), "<4>meter: cannot open /dev/ttyUSB0: Permission denied\n");
}

static void test_retry_delays_back_off(void **state)
{
	struct sg_supervise s;
	uint64_t d;
	(void)state;

	backoff_seed(42);
	supervise_init(&s);
	for (int i = 0; i < 12; i++) {
		uint64_t ceiling = (1 * S) << i;

		if (ceiling > 60 * S)
			ceiling = 60 * S;
		d = supervise_retry(&s, "relay");
		assert_true(d >= S / 10);
		assert_true(d <= ceiling);
	}
	/* counted failures alone are trouble: a device that failed before it logged anything */
	assert_true(supervise_troubled(&s));
	assert_non_null(strstr(captured(), "<7>relay: next attempt in "));
}

static void test_recovery_said_once(void **state)
{
	struct sg_supervise s;
	(void)state;

	supervise_init(&s);
	/* never in trouble: nothing to say */
	assert_false(supervise_recovered(&s, "relay", "gpiochip0 line 17"));
	assert_string_equal(captured(), "");

	supervise_problem(&s, "relay", "gpiochip0 line 17: Device or resource busy; reopening");
	for (int i = 0; i < 6; i++)
		supervise_retry(&s, "relay");
	captured();
	assert_true(supervise_recovered(&s, "relay", "gpiochip0 line 17"));
	assert_string_equal(captured(), "<5>relay: gpiochip0 line 17 open again\n");
	assert_false(supervise_troubled(&s));
	assert_string_equal(s.problem, "");
	/* the backoff starts from the bottom: the next delay is within the first ceiling */
	assert_true(supervise_retry(&s, "relay") <= 1 * S);

	/* and the same problem as before is news again */
	captured();
	supervise_problem(&s, "relay", "gpiochip0 line 17: Device or resource busy; reopening");
	assert_string_equal(captured(), "<4>relay: gpiochip0 line 17: Device or resource busy; reopening\n");
}

static void test_reset_is_silent(void **state)
{
	struct sg_supervise s;
	(void)state;

	supervise_init(&s);
	supervise_problem(&s, "env", "read failed: Input/output error; retrying");
	supervise_retry(&s, "env");
	captured();
	supervise_reset(&s);
	assert_false(supervise_troubled(&s));
	assert_false(supervise_recovered(&s, "env", "/dev/i2c-1"));
	assert_string_equal(captured(), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_problem_logged_when_it_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_delays_back_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_said_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_is_silent, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
