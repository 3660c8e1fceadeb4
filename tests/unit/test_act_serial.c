/* SPDX-License-Identifier: MIT */
/*
 * test_act_serial.c — the `serial` actuator driver on real pseudo-terminals.
 *
 * The test plays the device on the pty master: it reads what the driver
 * wrote and writes replies. Without the gateway's lines the driver runs a
 * line of its own, and the test drives it as the router would: io() when
 * poll() says its fd is ready, timer() at wake_us with a `now` the test
 * chooses. Covered: a command waits for the line's turn (timer), the bytes
 * of on/off and of a "{value}" template, completion without a reply once
 * written, a reply found inside noise and split across reads, the reply's
 * deadline counted from the end of the command on the wire, a reply that
 * does not come (timeout with its message), input that arrived before the
 * command not counting as the reply, reply_on/reply_off and "{value}" in a
 * reply, the port going away, and set_sync() at shutdown. Every wait is
 * bounded. test_line.c covers the line; test_shared_line.py several
 * actuators and a device on one.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "opts_helper.h"
#include "drivers/actuator.h"

#define WAIT_MS 2000
#define T0      1000000000ULL
#define MS      1000ULL

struct dev {
	int master;
	char slave[64];
	void *opts;
	struct sg_act_params p;
	struct sg_act a;
	int n_done;
	int result;
	char detail[160];
};

static void on_done(struct sg_act *a, int result, const char *detail, void *ud)
{
	struct dev *d = ud;
	(void)a;
	d->n_done++;
	d->result = result;
	snprintf(d->detail, sizeof(d->detail), "%s", detail ? detail : "");
}

/* S as a libconfig string literal, quotes included: the escapes a user would type. */
static void cfg_quote(const char *s, char *out, size_t len)
{
	size_t o = 0;

	out[o++] = '"';
	for (; *s && o + 4 < len; s++) {
		if (*s == '\r' || *s == '\n' || *s == '"' || *s == '\\') {
			out[o++] = '\\';
			out[o++] = *s == '\r' ? 'r' : *s == '\n' ? 'n' : *s;
		} else {
			out[o++] = *s;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
}

static void dev_open_text(struct dev *d, bool is_switch, const char *extra);

static void dev_open(struct dev *d, bool is_switch, const char *reply)
{
	char quoted[64] = "", extra[96] = "";

	if (reply) {
		cfg_quote(reply, quoted, sizeof(quoted));
		snprintf(extra, sizeof(extra), "reply = %s;", quoted);
	}
	dev_open_text(d, is_switch, extra);
}

static void dev_open_text(struct dev *d, bool is_switch, const char *extra)
{
	enum sg_actuator_kind kind = is_switch ? SG_ACT_SWITCH : SG_ACT_NUMBER;
	struct sg_opt_error err;
	char text[384];
	const char *name;

	memset(d, 0, sizeof(*d));
	d->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	assert_true(d->master >= 0);
	assert_int_equal(grantpt(d->master), 0);
	assert_int_equal(unlockpt(d->master), 0);
	name = ptsname(d->master);
	assert_non_null(name);
	snprintf(d->slave, sizeof(d->slave), "%s", name);
	/* written as in a config file: libconfig resolves the escapes */
	snprintf(text, sizeof(text), "port = \"%s\"; baud = 9600; reply_timeout_ms = 500; %s %s", d->slave,
	         is_switch ? "on = \"R1=1\\r\\n\"; off = \"R1=0\\r\\n\";" : "set = \"PWM {value} ({value})\\n\";",
	         extra);
	if (act_fixture_parse(&sg_act_serial, "dev", kind, text, &d->opts, &err) != 0)
		fail_msg("options '%s': %s", text, err.msg);
	d->p = (struct sg_act_params){
		.name = "dev", .kind = kind, .initial = -1, .opts = d->opts,
	};
	d->a = (struct sg_act){
		.driver = &sg_act_serial, .params = &d->p, .fd = -1, .wake_us = UINT64_MAX, .done = on_done,
		.userdata = d,
	};
	d->a.state = calloc(1, sg_act_serial.state_size);
	assert_non_null(d->a.state);
	assert_int_equal(sg_act_serial.open(&d->a), 0);
	assert_true(d->a.fd >= 0);
	assert_true(d->a.events & POLLIN);
}

/* The line's turn: what the router does at wake_us. The command goes out. */
static void turn(struct dev *d, uint64_t now)
{
	assert_true(d->a.wake_us <= now);
	assert_int_equal(sg_act_serial.timer(&d->a, now), 0);
}

static void dev_close(struct dev *d)
{
	sg_act_serial.close(&d->a);
	assert_int_equal(d->a.fd, -1);
	free(d->a.state);
	if (d->master >= 0)
		close(d->master);
	act_fixture_free(&sg_act_serial, d->opts);
}

/* Read from the master until LEN bytes came or WAIT_MS passed. */
static size_t master_read(struct dev *d, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = {.fd = d->master, .events = POLLIN};
		ssize_t n;
		if (poll(&p, 1, WAIT_MS) <= 0)
			break;
		n = read(d->master, buf + got, len - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static void master_expect(struct dev *d, const char *want)
{
	char buf[256] = {0};
	size_t n = master_read(d, buf, strlen(want));

	assert_int_equal(n, strlen(want));
	assert_memory_equal(buf, want, n);
}

static void master_write(struct dev *d, const char *s)
{
	assert_int_equal(write(d->master, s, strlen(s)), (ssize_t)strlen(s));
}

/* Let the driver handle what is ready on its fd, as the loop would; false if nothing came. */
static bool pump_io(struct dev *d, int *ret)
{
	struct pollfd p = {.fd = d->a.fd, .events = d->a.events};

	if (poll(&p, 1, WAIT_MS) <= 0)
		return false;
	*ret = sg_act_serial.io(&d->a, p.revents, T0 + 10 * MS);
	return true;
}

struct bytes_case {
	const char *legend;
	bool is_switch;
	bool on;
	const char *text;
	const char *expect;
};

static const struct bytes_case bytes_cases[] = {
	{"switch on", true, true, "ON", "R1=1\r\n"},
	{"switch off", true, false, "OFF", "R1=0\r\n"},
	{"number in the template (twice)", false, false, "42.5", "PWM 42.5 (42.5)\n"},
	{"enum option in the template", false, false, "high", "PWM high (high)\n"},
};

static void test_bytes_written(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bytes_cases) / sizeof(bytes_cases[0]); i++) {
		const struct bytes_case *c = &bytes_cases[i];
		struct sg_act_value v = {.on = c->on, .text = c->text};
		struct dev d;

		print_message("case: %s\n", c->legend);
		dev_open(&d, c->is_switch, NULL);
		assert_int_equal(sg_act_serial.set(&d.a, &v, T0), 1); /* waits for the line's turn */
		assert_int_equal(d.n_done, 0);
		turn(&d, T0);
		assert_int_equal(d.n_done, 1); /* no reply configured: done once written */
		assert_int_equal(d.result, 0);
		master_expect(&d, c->expect);
		assert_true(d.a.wake_us == UINT64_MAX);
		dev_close(&d);
	}
}

static void test_reply_confirms(void **state)
{
	struct sg_act_value on = {.on = true, .text = "ON"};
	struct dev d;
	int r = 0;
	(void)state;

	dev_open(&d, true, "OK\r\n");
	assert_int_equal(sg_act_serial.set(&d.a, &on, T0), 1);
	turn(&d, T0);
	/* the reply is due 500 ms after the 6 bytes are out: 6 × 10 bits at 9600 baud = 6250 µs */
	assert_true(d.a.wake_us == T0 + 500 * MS + 6250);
	master_expect(&d, "R1=1\r\n");
	master_write(&d, "noise R1 O");            /* the reply, split and inside noise */
	assert_true(pump_io(&d, &r));
	assert_int_equal(r, 0);
	assert_int_equal(d.n_done, 0);
	master_write(&d, "K\r\nmore");
	for (int i = 0; i < 5 && !d.n_done; i++)
		assert_true(pump_io(&d, &r));
	assert_int_equal(r, 0);
	assert_int_equal(d.n_done, 1);
	assert_int_equal(d.result, 0);
	assert_true(d.a.wake_us == UINT64_MAX);
	/* a late timer does nothing once confirmed */
	assert_int_equal(sg_act_serial.timer(&d.a, T0 + 600 * MS), 0);
	assert_int_equal(d.n_done, 1);
	dev_close(&d);
}

static void test_reply_timeout(void **state)
{
	struct sg_act_value v = {.text = "7"};
	struct dev d;
	(void)state;

	dev_open(&d, false, "OK");
	assert_int_equal(sg_act_serial.set(&d.a, &v, T0), 1);
	turn(&d, T0);
	master_expect(&d, "PWM 7 (7)\n");
	master_write(&d, "ERR\n");
	assert_int_equal(sg_act_serial.timer(&d.a, T0 + 499 * MS), 0);
	assert_int_equal(d.n_done, 0);
	assert_int_equal(sg_act_serial.timer(&d.a, d.a.wake_us), 0);
	assert_int_equal(d.n_done, 1);
	assert_int_equal(d.result, -ETIMEDOUT);
	assert_string_equal(d.detail, "no reply \"OK\" within 500 ms");
	/* the next command works */
	assert_int_equal(sg_act_serial.set(&d.a, &v, T0 + 1000 * MS), 1);
	dev_close(&d);
}

static void test_stale_input_is_not_the_reply(void **state)
{
	struct sg_act_value on = {.on = true, .text = "ON"};
	struct dev d;
	int r = 0;
	(void)state;

	dev_open(&d, true, "OK");
	master_write(&d, "boot banner OK\n");   /* before the command, not read yet */
	usleep(20000);
	assert_int_equal(sg_act_serial.set(&d.a, &on, T0), 1);
	turn(&d, T0);
	master_expect(&d, "R1=1\r\n");
	assert_int_equal(d.n_done, 0);
	master_write(&d, "OK");
	while (!d.n_done && pump_io(&d, &r))
		assert_int_equal(r, 0);
	assert_int_equal(d.n_done, 1);
	assert_int_equal(d.result, 0);
	dev_close(&d);
}

static void test_port_gone(void **state)
{
	struct sg_act_value on = {.on = true, .text = "ON"};
	struct dev d;
	int r = 0;
	(void)state;

	dev_open(&d, true, "OK");
	assert_int_equal(sg_act_serial.set(&d.a, &on, T0), 1);
	turn(&d, T0);
	master_expect(&d, "R1=1\r\n");
	close(d.master);
	d.master = -1;
	assert_true(pump_io(&d, &r));
	assert_true(r < 0);          /* the router reopens; it fails the command itself */
	assert_int_equal(d.n_done, 0);
	dev_close(&d);
}

static void test_set_sync(void **state)
{
	struct sg_act_value off = {.on = false, .text = "OFF"};
	struct dev d;
	char buf[16];
	(void)state;

	dev_open(&d, true, NULL);
	assert_int_equal(sg_act_serial.set_sync(&d.a, &off, 200), 0);
	master_expect(&d, "R1=0\r\n");
	dev_close(&d);

	dev_open(&d, true, "OK");
	assert_int_equal(sg_act_serial.set_sync(&d.a, &off, 100), -ETIMEDOUT); /* nobody answers */
	assert_int_equal(master_read(&d, buf, 6), 6);
	dev_close(&d);
}

/* reply_on / reply_off: the device answers with its state line; "{value}" in a reply. */
static void test_state_replies(void **state)
{
	struct sg_act_value on = {.on = true, .text = "ON"}, off = {.on = false, .text = "OFF"};
	struct sg_act_value v = {.text = "40"};
	struct dev d;
	int r = 0;
	(void)state;

	dev_open_text(&d, true, "reply_on = \"r1=1\"; reply_off = \"r1=0\";");
	assert_int_equal(sg_act_serial.set(&d.a, &on, T0), 1);
	turn(&d, T0);
	master_expect(&d, "R1=1\r\n");
	master_write(&d, "t=21.5\r\nr1=0\r\n"); /* a reading, and a state line that is not the one asked for */
	while (pump_io(&d, &r) && !d.n_done)
		;
	assert_int_equal(d.n_done, 0);
	master_write(&d, "r1=1\r\n");
	while (!d.n_done && pump_io(&d, &r))
		assert_int_equal(r, 0);
	assert_int_equal(d.n_done, 1);
	assert_int_equal(d.result, 0);
	assert_int_equal(sg_act_serial.set(&d.a, &off, T0 + 1000 * MS), 1);
	turn(&d, T0 + 1000 * MS);
	master_expect(&d, "R1=0\r\n");
	master_write(&d, "r1=0\r\n");
	while (d.n_done < 2 && pump_io(&d, &r))
		assert_int_equal(r, 0);
	assert_int_equal(d.n_done, 2);
	dev_close(&d);

	dev_open_text(&d, false, "reply = \"PWM={value}\";");
	assert_int_equal(sg_act_serial.set(&d.a, &v, T0), 1);
	turn(&d, T0);
	master_expect(&d, "PWM 40 (40)\n");
	master_write(&d, "PWM=4\nPWM=40\n");
	while (!d.n_done && pump_io(&d, &r))
		assert_int_equal(r, 0);
	assert_int_equal(d.n_done, 1);
	assert_int_equal(d.result, 0);
	dev_close(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bytes_written),
		cmocka_unit_test(test_reply_confirms),
		cmocka_unit_test(test_reply_timeout),
		cmocka_unit_test(test_stale_input_is_not_the_reply),
		cmocka_unit_test(test_port_gone),
		cmocka_unit_test(test_state_replies),
		cmocka_unit_test(test_set_sync),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
