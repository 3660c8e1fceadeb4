/* SPDX-License-Identifier: MIT */
/*
 * test_gpio_input.c — GPIO inputs on the fake gpiochip with its explicit
 * clock: the debouncer alone, the `contact` driver (initial level, debounce
 * from the kernel's timestamps, bounce storms, active_low, payloads, the
 * level said again after a reconnection, events the kernel dropped), the
 * `button` driver (single, double and long presses with bounces, read late
 * by the loop, held at start; never retained; its event entity and device
 * triggers), the line's refusals (no chip, no line, in use, an output), the options and
 * what --check and discovery learn from them, and the one-user-per-line
 * check of the configuration.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cfg_helper.h"
#include "drivers/drivers.h"
#include "drivers/gpio_input.h"
#include "fake_gpio.h"
#include "gateway/discovery.h"
#include "gpio_helper.h"
#include "opts_helper.h"

#define MS GR_MS
#define S  GR_S

static uint64_t t0(void)
{
	return fake_gpio.now_ns;
}

static int setup(void **state)
{
	(void)state;
	fake_gpio_reset();
	return 0;
}

/* ---- the debouncer alone ---------------------------------------------------------------------- */

static void test_debounce_takes_a_level_after_quiet(void **state)
{
	struct gpio_debounce d;
	uint64_t since = 0;
	(void)state;

	gpio_deb_init(&d, 20, 0);
	assert_int_equal(gpio_deb_due(&d), UINT64_MAX);
	assert_false(gpio_deb_edge(&d, 1000 * MS, 1));
	assert_int_equal(gpio_deb_due(&d), 1020 * MS);
	assert_false(gpio_deb_settle(&d, 1019 * MS, -1, &since)); /* not quiet long enough */
	assert_true(gpio_deb_settle(&d, 1020 * MS, -1, &since));
	assert_int_equal(d.stable, 1);
	assert_int_equal(since, 1000 * MS); /* the change began at the first edge */
	assert_int_equal(gpio_deb_due(&d), UINT64_MAX);
}

static void test_debounce_bounce_back_is_nothing(void **state)
{
	struct gpio_debounce d;
	uint64_t since = 0;
	(void)state;

	gpio_deb_init(&d, 20, 1);
	assert_false(gpio_deb_edge(&d, 100 * MS, 0));
	assert_false(gpio_deb_edge(&d, 101 * MS, 1));
	assert_int_equal(gpio_deb_due(&d), 121 * MS);
	assert_false(gpio_deb_settle(&d, 121 * MS, -1, &since));
	assert_int_equal(d.stable, 1);
	assert_false(d.pending);
}

static void test_debounce_storm_postpones(void **state)
{
	struct gpio_debounce d;
	uint64_t since = 0, t = 500 * MS, last = 0;
	(void)state;

	gpio_deb_init(&d, 10, 0);
	/* 201 edges 2 ms apart (a vibrating contact), ending active */
	for (int i = 0; i <= 200; i++, t += 2 * MS) {
		assert_false(gpio_deb_edge(&d, t, i % 2 == 0));
		assert_false(gpio_deb_settle(&d, t + MS, -1, &since)); /* never quiet for 10 ms */
		last = t;
	}
	assert_int_equal(d.stable, 0);
	assert_int_equal(gpio_deb_due(&d), last + 10 * MS);
	assert_true(gpio_deb_settle(&d, last + 10 * MS, -1, &since));
	assert_int_equal(d.stable, 1);
	assert_int_equal(since, 500 * MS); /* the episode began with the storm */
}

static void test_debounce_line_read_wins(void **state)
{
	struct gpio_debounce d;
	uint64_t since;
	(void)state;

	/* The edges said 1, but the line reads 0 (an edge was lost): the line is believed. */
	gpio_deb_init(&d, 5, 0);
	gpio_deb_edge(&d, 10 * MS, 1);
	assert_false(gpio_deb_settle(&d, 15 * MS, 0, &since));
	assert_int_equal(d.stable, 0);
}

static void test_debounce_zero_is_immediate(void **state)
{
	struct gpio_debounce d;
	(void)state;

	gpio_deb_init(&d, 0, 0);
	assert_true(gpio_deb_edge(&d, 1 * MS, 1));
	assert_false(gpio_deb_edge(&d, 2 * MS, 1));
	assert_true(gpio_deb_edge(&d, 3 * MS, 0));
	assert_int_equal(gpio_deb_due(&d), UINT64_MAX);
}

static void test_delay_rounding(void **state)
{
	(void)state;
	assert_int_equal(gpio_delay_us(UINT64_MAX, 5), UINT64_MAX);
	assert_int_equal(gpio_delay_us(5, 10), 0);
	assert_int_equal(gpio_delay_us(10 * MS, 10 * MS), 0);
	assert_int_equal(gpio_delay_us(10 * MS + 1, 10 * MS), 1); /* rounded up, never early */
	assert_int_equal(gpio_delay_us(30 * MS, 10 * MS), 20000);
}

/* ---- contact ------------------------------------------------------------------------------------ */

static void test_contact_initial_level(void **state)
{
	struct gpio_run g;
	(void)state;

	fake_gpio.lines[4].level = 1;
	assert_int_equal(gr_start(&g, &sg_driver_contact, "line = 4; bias = \"pull-down\";"), 0);
	/* requested as an input for both edges, with the bias asked for */
	assert_true(fake_gpio.lines[4].input);
	assert_int_equal(fake_gpio.lines[4].in.edges, SG_GPIO_EDGE_BOTH);
	assert_int_equal(fake_gpio.lines[4].in.bias, SG_GPIO_BIAS_PULL_DOWN);
	assert_string_equal(fake_gpio.lines[4].consumer, "sensorgate");
	assert_string_equal(g.dev.path, "gpiochip0 line 4");
	/* the level read at start is published by the first poll(), at once */
	assert_int_equal(g.n, 1);
	assert_string_equal(g.r[0].field, "state");
	assert_string_equal(g.r[0].string, "ON");
	gr_stop(&g);
	assert_false(fake_gpio.lines[4].requested);

	fake_gpio.lines[4].level = 0;
	assert_int_equal(gr_start(&g, &sg_driver_contact, "line = 4;"), 0);
	assert_string_equal(gr_last(&g, "state")->string, "OFF");
	gr_stop(&g);
}

static void test_contact_active_low_and_payloads(void **state)
{
	struct gpio_run g;
	(void)state;

	/* a reed contact to ground with the pull-up: closed = low = active */
	fake_gpio.lines[7].level = 0;
	assert_int_equal(gr_start(&g, &sg_driver_contact,
	                          "line = 7; active_low = true; bias = \"pull-up\"; debounce_ms = 0;"
	                          "payload_on = \"closed\"; payload_off = \"open\";"), 0);
	assert_true(fake_gpio.lines[7].in.active_low);
	assert_string_equal(gr_last(&g, "state")->string, "closed");
	gr_edge(&g, 7, 1, t0() + 100 * MS);
	assert_string_equal(gr_last(&g, "state")->string, "open");
	gr_edge(&g, 7, 0, t0() + 100 * MS);
	assert_string_equal(gr_last(&g, "state")->string, "closed");
	assert_int_equal(gr_count(&g, "state", 0), 3);
	gr_stop(&g);
}

static void test_contact_debounce_from_kernel_timestamps(void **state)
{
	struct gpio_run g;
	uint64_t start;
	(void)state;

	assert_int_equal(gr_start(&g, &sg_driver_contact, "line = 2; debounce_ms = 30;"), 0);
	gr_clear(&g);
	start = t0();
	/* a press with bounces: 1 0 1 0 1 within 3 ms, then held */
	gr_edge(&g, 2, 1, start + 100 * MS);
	gr_edge(&g, 2, 0, start + 100 * MS + 500000);
	gr_edge(&g, 2, 1, start + 101 * MS);
	gr_edge(&g, 2, 0, start + 102 * MS);
	gr_edge(&g, 2, 1, start + 103 * MS);
	assert_int_equal(g.n, 0);
	/* the driver asked for its timer at the end of the quiet time after the last edge */
	assert_int_equal(g.next_poll_ns, start + 133 * MS);
	gr_advance(&g, start + 132 * MS);
	assert_int_equal(g.n, 0);
	gr_advance(&g, start + 133 * MS);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.r[0].string, "ON");
	assert_int_equal(g.r[0].at_ns, start + 133 * MS);
	assert_true(g.r[0].timestamp_us > 0);

	/* a glitch shorter than the debounce changes nothing */
	gr_edge(&g, 2, 0, start + 500 * MS);
	gr_edge(&g, 2, 1, start + 510 * MS);
	gr_advance(&g, start + 2 * S);
	assert_int_equal(g.n, 1);
	gr_stop(&g);
}

static int64_t real_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void test_contact_timestamp_is_first_edge(void **state)
{
	struct gpio_run g;
	uint64_t edge;
	int64_t lag;
	(void)state;

	/* A change read 400 ms late by a busy loop is stamped with its edge's time, not the reading's. */
	assert_int_equal(gr_start(&g, &sg_driver_contact, "line = 2; debounce_ms = 10;"), 0);
	gr_clear(&g);
	edge = t0() + 1 * S;
	gr_edge_late(&g, 2, 1, edge);
	gr_advance(&g, edge + 400 * MS);
	gr_io(&g);
	gr_advance(&g, edge + 401 * MS);
	assert_int_equal(g.n, 1);
	lag = real_now_us() - g.r[0].timestamp_us; /* taken at +400 ms of fake time, and a little real time */
	assert_true(lag >= 400000 && lag < 400000 + 200000);
	gr_stop(&g);
}

static void test_contact_bounce_storm(void **state)
{
	struct gpio_run g;
	uint64_t t;
	(void)state;

	assert_int_equal(gr_start(&g, &sg_driver_contact, "line = 3; debounce_ms = 20;"), 0);
	gr_clear(&g);
	/* 1000 edges 1 ms apart, read in bursts by a loop that is late, ending at active */
	t = t0() + 1 * MS;
	for (int i = 0; i < 1000; i++) {
		gr_edge_late(&g, 3, i % 2 == 0, t + (uint64_t)i * MS);
		if (i % 10 == 9)
			gr_io(&g);
	}
	gr_io(&g);
	assert_int_equal(g.n, 0);
	gr_edge(&g, 3, 1, t + 1000 * MS);
	gr_advance(&g, t + 2 * S);
	assert_int_equal(g.n, 1); /* one change, after the storm */
	assert_string_equal(g.r[0].string, "ON");
	assert_true(g.r[0].at_ns >= t + 1020 * MS);
	/* polls were bounded: a timer per quiet period, not per edge */
	assert_true(g.n_polls < 200);
	gr_stop(&g);
}

static void test_contact_refresh_says_it_again(void **state)
{
	struct gpio_run g;
	(void)state;

	fake_gpio.lines[1].level = 1;
	assert_int_equal(gr_start(&g, &sg_driver_contact, "line = 1;"), 0);
	gr_clear(&g);
	sg_driver_contact.refresh(&g.dev);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.r[0].string, "ON");
	gr_stop(&g);
}

static void test_contact_lost_events_counted_and_level_reread(void **state)
{
	struct gpio_run g;
	uint64_t t;
	(void)state;

	fake_gpio.queue_cap = 4;
	assert_int_equal(gr_start(&g, &sg_driver_contact, "line = 5; debounce_ms = 0;"), 0);
	gr_clear(&g);
	t = t0();
	for (int i = 1; i <= 11; i++) /* 11 edges while the loop stalls; the queue keeps the last 4 */
		gr_edge_late(&g, 5, i % 2, t + (uint64_t)i * MS);
	gr_io(&g);
	assert_int_equal(g.fails[SG_FAIL_LOST], 1);
	assert_non_null(strstr(g.last_detail, "7 edge events dropped by the kernel"));
	assert_string_equal(gr_last(&g, "state")->string, "ON"); /* where the line is: 11 edges from 0 */
	/* the next read continues the numbering without a new gap */
	gr_edge(&g, 5, 0, t + 20 * MS);
	assert_int_equal(g.fails[SG_FAIL_LOST], 1);
	assert_string_equal(gr_last(&g, "state")->string, "OFF");
	gr_stop(&g);
}

static void test_contact_no_seqno_no_gap_claims(void **state)
{
	struct gpio_run g;
	(void)state;

	/* uAPI v1: no numbers, so no claim of a loss either way */
	fake_gpio.lines[6].no_seqno = true;
	assert_int_equal(gr_start(&g, &sg_driver_contact, "line = 6; debounce_ms = 0;"), 0);
	fake_gpio.lines[6].no_seqno = true;
	gr_edge(&g, 6, 1, t0() + MS);
	gr_edge(&g, 6, 0, t0() + MS);
	assert_int_equal(g.fails[SG_FAIL_LOST], 0);
	assert_int_equal(gr_count(&g, "state", 0), 3);
	gr_stop(&g);
}

/* ---- button ------------------------------------------------------------------------------------ */

#define BTN 8

static const char *actions(const struct gpio_run *g, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < g->n && at < len; i++)
		if (strcmp(g->r[i].field, "action") == 0)
			at += (size_t)snprintf(buf + at, len - at, "%s%s", at ? " " : "", g->r[i].string);
	return buf;
}

/* A press from T for HOLD, bouncing for 2 ms at both ends. */
static void press(struct gpio_run *g, uint64_t t, uint64_t hold)
{
	gr_edge(g, BTN, 1, t);
	gr_edge(g, BTN, 0, t + 500000);
	gr_edge(g, BTN, 1, t + 2 * MS);
	gr_edge(g, BTN, 0, t + hold);
	gr_edge(g, BTN, 1, t + hold + 500000);
	gr_edge(g, BTN, 0, t + hold + 2 * MS);
}

static const char *BUTTON_OPTS = "line = 8; debounce_ms = 20; double_click_ms = 300; long_press_ms = 800;";

static void test_button_single(void **state)
{
	struct gpio_run g;
	char buf[128];
	uint64_t t;
	(void)state;

	assert_int_equal(gr_start(&g, &sg_driver_button, BUTTON_OPTS), 0);
	assert_int_equal(g.n, 0); /* nothing at start: events only */
	t = t0() + S;
	press(&g, t, 100 * MS);
	gr_advance(&g, t + 400 * MS - 1); /* the double-click window is still open */
	assert_int_equal(g.n, 0);
	gr_advance(&g, t + 400 * MS); /* 300 ms after the release began */
	assert_string_equal(actions(&g, buf, sizeof(buf)), "single");
	assert_int_equal(g.r[0].at_ns, t + 400 * MS);
	gr_advance(&g, t + 10 * S);
	assert_string_equal(actions(&g, buf, sizeof(buf)), "single");
	gr_stop(&g);
}

static void test_button_double_and_long(void **state)
{
	struct gpio_run g;
	char buf[128];
	uint64_t t;
	(void)state;

	assert_int_equal(gr_start(&g, &sg_driver_button, BUTTON_OPTS), 0);
	t = t0() + S;
	press(&g, t, 100 * MS);
	press(&g, t + 250 * MS, 100 * MS); /* pressed again 150 ms after the release */
	gr_advance(&g, t + 2 * S);
	assert_string_equal(actions(&g, buf, sizeof(buf)), "double");

	/* held: "long" while still held, at 800 ms; the release adds nothing */
	gr_clear(&g);
	t += 5 * S;
	gr_edge(&g, BTN, 1, t);
	gr_advance(&g, t + 799 * MS);
	assert_int_equal(g.n, 0);
	gr_advance(&g, t + 800 * MS);
	assert_string_equal(actions(&g, buf, sizeof(buf)), "long");
	gr_edge(&g, BTN, 0, t + 3 * S);
	gr_advance(&g, t + 5 * S);
	assert_string_equal(actions(&g, buf, sizeof(buf)), "long");

	/* a click, then a second press held long: the first was a single */
	gr_clear(&g);
	t += 10 * S;
	press(&g, t, 100 * MS);
	gr_edge(&g, BTN, 1, t + 300 * MS);
	gr_advance(&g, t + 2 * S);
	gr_edge(&g, BTN, 0, t + 2 * S);
	gr_advance(&g, t + 3 * S);
	assert_string_equal(actions(&g, buf, sizeof(buf)), "single long");

	/* two presses too far apart: two singles */
	gr_clear(&g);
	t += 10 * S;
	press(&g, t, 100 * MS);
	press(&g, t + 500 * MS, 100 * MS);
	gr_advance(&g, t + 2 * S);
	assert_string_equal(actions(&g, buf, sizeof(buf)), "single single");
	gr_stop(&g);
}

static void test_button_classified_by_kernel_time(void **state)
{
	struct gpio_run g;
	char buf[128];
	uint64_t t;
	(void)state;

	/* the loop reads a short press 2 s late: still a single, stamped with the press */
	assert_int_equal(gr_start(&g, &sg_driver_button, BUTTON_OPTS), 0);
	t = t0() + S;
	gr_edge_late(&g, BTN, 1, t);
	gr_edge_late(&g, BTN, 0, t + 100 * MS);
	gr_advance(&g, t + 2 * S);
	gr_io(&g);
	gr_advance(&g, t + 2 * S + 1 * MS);
	assert_string_equal(actions(&g, buf, sizeof(buf)), "single");
	assert_true(g.r[0].timestamp_us > 0);
	/* and a double read late in one go */
	gr_clear(&g);
	t += 5 * S;
	gr_edge_late(&g, BTN, 1, t);
	gr_edge_late(&g, BTN, 0, t + 80 * MS);
	gr_edge_late(&g, BTN, 1, t + 200 * MS);
	gr_edge_late(&g, BTN, 0, t + 280 * MS);
	gr_advance(&g, t + 3 * S);
	gr_io(&g);
	gr_advance(&g, t + 3 * S + 1 * MS);
	assert_string_equal(actions(&g, buf, sizeof(buf)), "double");
	gr_stop(&g);
}

static void test_button_no_double_window_and_held_at_start(void **state)
{
	struct gpio_run g;
	char buf[128];
	uint64_t t;
	(void)state;

	/* double_click_ms = 0: a single at the release, no waiting */
	assert_int_equal(gr_start(&g, &sg_driver_button, "line = 8; double_click_ms = 0;"), 0);
	t = t0() + S;
	gr_edge(&g, BTN, 1, t);
	gr_edge(&g, BTN, 0, t + 100 * MS);
	gr_advance(&g, t + 120 * MS);
	assert_string_equal(actions(&g, buf, sizeof(buf)), "single");
	gr_stop(&g);

	/* held when the device starts: nothing until it was released and pressed again */
	fake_gpio_reset();
	fake_gpio.lines[BTN].level = 1;
	assert_int_equal(gr_start(&g, &sg_driver_button, BUTTON_OPTS), 0);
	t = t0() + S;
	gr_advance(&g, t + 5 * S);
	gr_edge(&g, BTN, 0, t + 5 * S);
	gr_advance(&g, t + 7 * S);
	assert_int_equal(g.n, 0);
	press(&g, t + 8 * S, 100 * MS);
	gr_advance(&g, t + 10 * S);
	assert_string_equal(actions(&g, buf, sizeof(buf)), "single");
	gr_stop(&g);
}

static void test_button_options(void **state)
{
	struct sg_opt_error err = {.line = 0};
	struct sg_field_info fi;
	char name[32], buf[256];
	void *opts = NULL;
	(void)state;

	assert_int_equal(opts_fixture_parse(&sg_driver_button, "line = 8; announce = \"both\";", &opts, &err), 0);
	assert_true(sg_driver_button.option_field(opts, 0, name, sizeof(name), &fi));
	assert_string_equal(fi.name, "action");
	assert_non_null(fi.event_types);
	assert_string_equal(fi.event_types[0], "single");
	assert_string_equal(fi.event_types[1], "double");
	assert_string_equal(fi.event_types[2], "long");
	assert_null(fi.event_types[3]);
	assert_false(fi.no_event_entity || fi.no_triggers);
	sg_driver_button.describe(opts, buf, sizeof(buf));
	assert_string_equal(buf, "gpio gpiochip0 line 8, bias as-is, debounce 20 ms; single/double/long, double-click "
	                         "window 300 ms, long press 800 ms; announced as an event entity and device triggers");
	sg_driver_button.free_options(opts);
	assert_int_equal(opts_fixture_parse(&sg_driver_button, "line = 8; announce = \"triggers\";", &opts, &err), 0);
	assert_true(sg_driver_button.option_field(opts, 0, name, sizeof(name), &fi));
	assert_true(fi.no_event_entity && !fi.no_triggers);
	sg_driver_button.free_options(opts);
	opts = NULL;
	assert_int_equal(opts_fixture_parse(&sg_driver_button, "line = 8; debounce_ms = 900;", &opts, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "\"debounce_ms\" (900) must be shorter than \"long_press_ms\" (800)"));
	assert_int_equal(opts_fixture_parse(&sg_driver_button, "line = 8; announce = \"all\";", &opts, &err), -EINVAL);
	assert_int_equal(opts_fixture_parse(&sg_driver_button, "line = 8; long_press_ms = 50;", &opts, &err), -EINVAL);
	assert_null(opts);
}

static void test_button_config_never_retained(void **state)
{
	struct sg_config *cfg;
	(void)state;

	cfg = fixture_config("mqtt: { brokers = ( \"mqtt://127.0.0.1:1\" ); };\n"
	                     "devices = (\n"
	                     "  { name = \"bell\"; driver = \"button\"; line = 4; }\n"
	                     ");\n");
	if (!cfg)
		fail_msg("%s", fixture_error);
	assert_false(cfg->devices[0].defaults.retain);
	config_free(cfg);
	cfg = fixture_config("mqtt: { brokers = ( \"mqtt://127.0.0.1:1\" ); };\n"
	                     "devices = (\n"
	                     "  { name = \"bell\"; driver = \"button\"; line = 4;\n"
	                     "    readings = ( { field = \"action\"; topic = \"door/bell\"; } ); }\n"
	                     ");\n");
	if (!cfg)
		fail_msg("%s", fixture_error);
	assert_false(cfg->devices[0].readings[0].retain);
	config_free(cfg);
	cfg = fixture_config("mqtt: { brokers = ( \"mqtt://127.0.0.1:1\" ); };\n"
	                     "devices = (\n"
	                     "  { name = \"bell\"; driver = \"button\"; line = 4;\n"
	                     "    retain = true; }\n"
	                     ");\n");
	assert_null(cfg);
	if (!strstr(fixture_error, ":4: device \"bell\": events are never retained"))
		fail_msg("%s", fixture_error);
	cfg = fixture_config("mqtt: { brokers = ( \"mqtt://127.0.0.1:1\" ); };\n"
	                     "devices = (\n"
	                     "  { name = \"bell\"; driver = \"button\"; line = 4;\n"
	                     "    readings = ( { field = \"action\";\n"
	                     "                   retain = true; } ); }\n"
	                     ");\n");
	assert_null(cfg);
	if (!strstr(fixture_error, ":5: device \"bell\" reading \"action\": events are never retained"))
		fail_msg("%s", fixture_error);
}

static const char *find_payload(const struct sg_disc_list *l, const char *topic)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].topic, topic) == 0)
			return l->v[i].payload;
	fail_msg("no discovery message on %s", topic);
	return NULL;
}

static void test_button_discovery(void **state)
{
	struct sg_disc_list l = {0};
	struct sg_config *cfg;
	char err[256];
	const char *p;
	(void)state;

	cfg = fixture_config("gateway: { id = \"pi\"; base_topic = \"home\"; };\n"
	                     "mqtt: { brokers = ( \"mqtt://127.0.0.1:1\" ); };\n"
	                     "discovery: { enabled = true; };\n"
	                     "devices = (\n"
	                     "  { name = \"bell\"; driver = \"button\"; line = 4; qos = 1; },\n"
	                     "  { name = \"sw\"; driver = \"button\"; line = 5; payload = \"json\"; announce = \"triggers\"; }\n"
	                     ");\n");
	if (!cfg)
		fail_msg("%s", fixture_error);
	assert_int_equal(discovery_build(cfg, &l, err, sizeof(err)), 0);
	p = find_payload(&l, "homeassistant/event/pi/bell_action/config");
	assert_non_null(strstr(p, "\"state_topic\":\"home/bell/action\","
	                          "\"value_template\":\"{\\\"event_type\\\":\\\"{{ value }}\\\"}\","
	                          "\"event_types\":[\"single\",\"double\",\"long\"],\"device_class\":\"button\",\"qos\":1"));
	assert_non_null(strstr(p, "\"unique_id\":\"sensorgate_pi_bell_action\""));
	p = find_payload(&l, "homeassistant/device_automation/pi/bell_action_long/config");
	assert_non_null(strstr(p, "{\"automation_type\":\"trigger\",\"topic\":\"home/bell/action\","
	                          "\"type\":\"button_long_press\",\"subtype\":\"button_1\",\"payload\":\"long\",\"qos\":1,"
	                          "\"device\":{\"identifiers\":[\"sensorgate_pi_bell\"]"));
	assert_null(strstr(p, "unique_id"));
	assert_null(strstr(p, "availability"));
	p = find_payload(&l, "homeassistant/device_automation/pi/bell_action_single/config");
	assert_non_null(strstr(p, "\"type\":\"button_short_press\""));
	p = find_payload(&l, "homeassistant/device_automation/pi/bell_action_double/config");
	assert_non_null(strstr(p, "\"type\":\"button_double_press\""));
	/* triggers only, JSON payloads: the trigger picks the value out */
	p = find_payload(&l, "homeassistant/device_automation/pi/sw_action_single/config");
	assert_non_null(strstr(p, "\"payload\":\"single\",\"value_template\":\"{{ value_json.value }}\""));
	for (size_t i = 0; i < l.n; i++)
		assert_null(strstr(l.v[i].topic, "/event/pi/sw_"));
	discovery_list_clear(&l);
	config_free(cfg);
}

/* ---- refusals ------------------------------------------------------------------------------------ */

static int start_fail(const char *opts, struct gpio_run *g)
{
	int r = gr_start(g, &sg_driver_contact, opts);

	assert_false(g->up);
	return r;
}

static void test_line_refusals(void **state)
{
	const struct sg_gpio_ops *out = &fake_gpio_ops;
	struct gpio_run g;
	void *relay = NULL;
	(void)state;

	assert_int_equal(start_fail("chip = \"gpiochip9\"; line = 1;", &g), -ENOENT);
	assert_non_null(strstr(g.dev.why, "no gpiochip \"gpiochip9\""));
	gr_stop(&g);

	assert_int_equal(start_fail("line = 40;", &g), -EINVAL);
	assert_non_null(strstr(g.dev.why, "(0..31)"));
	gr_stop(&g);

	/* a relay holds line 9: the input is refused, naming the holder */
	assert_int_equal(out->request_output("gpiochip0", 9, false, "relay-x", 0, &relay), 0);
	assert_int_equal(start_fail("line = 9;", &g), -EBUSY);
	assert_string_equal(g.dev.why, "in use by \"relay-x\" as an output");
	gr_stop(&g);
	out->release(relay);

	/* released, the line is still an output: not turned into an input */
	assert_int_equal(start_fail("line = 9;", &g), -EPERM);
	assert_non_null(strstr(g.dev.why, "an output"));
	gr_stop(&g);
	assert_false(fake_gpio.lines[9].input);

	/* two inputs on one line: the second is refused */
	{
		struct gpio_run a;
		assert_int_equal(gr_start(&a, &sg_driver_contact, "line = 10;"), 0);
		assert_int_equal(start_fail("line = 10;", &g), -EBUSY);
		assert_string_equal(g.dev.why, "in use by \"sensorgate\" as an input");
		gr_stop(&g);
		gr_stop(&a);
	}
}

static void test_read_failure_fails_the_device(void **state)
{
	struct gpio_run g;
	uint64_t delay = UINT64_MAX;
	(void)state;

	assert_int_equal(gr_start(&g, &sg_driver_contact, "line = 11;"), 0);
	fake_gpio.lines[11].fail = -ENODEV; /* the chip went away */
	assert_int_equal(sg_driver_contact.io(&g.dev, 1, &delay), -ENODEV);
	gr_stop(&g);
}

/* ---- options -------------------------------------------------------------------------------------- */

struct opt_case {
	const char *text;
	int line;                  /* of the error, in "dev = {\n TEXT };" numbering (1 = the group) */
	const char *msg;
};

static void test_contact_option_errors(void **state)
{
	static const struct opt_case cases[] = {
		{"bias = \"pull-up\";", 0, "needs \"line\""},
		{"line = -1;", 2, "\"line\" must be between 0 and 65535"},
		{"line = \"17\";", 2, "\"line\" must be an integer"},
		{"line = 1; bias = \"up\";", 2, "\"bias\" must be one of \"as-is\", \"disabled\", \"pull-up\", \"pull-down\""},
		{"line = 1; debounce_ms = 20000;", 2, "\"debounce_ms\" must be between 0 and 10000"},
		{"line = 1; active_low = 1;", 2, "\"active_low\" must be a boolean"},
		{"line = 1; chip = \"\";", 2, "\"chip\" must name a gpiochip"},
		{"line = 1; payload_on = \"\";", 2, "\"payload_on\" must be 1..64 characters"},
		{"line = 1; payload_on = \"X\"; payload_off = \"X\";", 2, "must differ"},
		{"line = 1; device_class = \"doors\";", 2, "\"device_class\" must be one of \"battery\""},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_opt_error err = {.line = 0};
		void *opts = NULL;
		int r = opts_fixture_parse(&sg_driver_contact, cases[i].text, &opts, &err);

		if (r != -EINVAL || !strstr(err.msg, cases[i].msg) || err.line != cases[i].line)
			fail_msg("\"%s\": got %d, line %d, \"%s\"; want line %d, \"%s\"", cases[i].text, r, err.line, err.msg,
			         cases[i].line, cases[i].msg);
		assert_null(opts);
	}
}

static void test_contact_fields_where_describe(void **state)
{
	struct sg_opt_error err = {.line = 0};
	struct sg_field_info fi;
	char name[32], buf[256];
	void *opts = NULL;
	(void)state;

	assert_int_equal(opts_fixture_parse(&sg_driver_contact,
	                               "chip = \"/dev/gpiochip0\"; line = 17; bias = \"pull-up\"; active_low = true;"
	                               "device_class = \"window\"; payload_on = \"open\"; payload_off = \"closed\";",
	                               &opts, &err), 0);
	assert_true(sg_driver_contact.option_field(opts, 0, name, sizeof(name), &fi));
	assert_string_equal(fi.name, "state");
	assert_true(fi.binary);
	assert_string_equal(fi.device_class, "window");
	assert_string_equal(fi.payload_on, "open");
	assert_string_equal(fi.payload_off, "closed");
	assert_false(sg_driver_contact.option_field(opts, 1, name, sizeof(name), &fi));
	sg_driver_contact.where(opts, buf, sizeof(buf));
	assert_string_equal(buf, "gpiochip0 line 17"); /* the chip as every user of it spells it */
	sg_driver_contact.describe(opts, buf, sizeof(buf));
	assert_string_equal(buf, "gpio /dev/gpiochip0 line 17, bias pull-up, active-low, debounce 20 ms; "
	                         "state open/closed, device_class window");
	sg_driver_contact.free_options(opts);
}

/* ---- the configuration: one user per line, fields, discovery ----------------------------------------- */

static void test_config_refuses_a_second_user_of_a_line(void **state)
{
	struct sg_config *cfg;
	(void)state;

	/* a contact on the line of a relay, the chip spelled differently */
	cfg = fixture_config("mqtt: { brokers = ( \"mqtt://127.0.0.1:1\" ); };\n"
	                     "devices = (\n"
	                     "  { name = \"door\"; driver = \"contact\"; chip = \"0\"; line = 17; }\n"
	                     ");\n"
	                     "actuators = (\n"
	                     "  { name = \"relay\"; driver = \"gpio\"; chip = \"/dev/gpiochip0\"; line = 17;\n"
	                     "    topic = \"r\"; }\n"
	                     ");\n");
	assert_null(cfg);
	if (!strstr(fixture_error, ":6: actuator \"relay\" uses gpiochip0 line 17, which device \"door\" (line 3) "
	                           "already uses"))
		fail_msg("%s", fixture_error);

	/* two inputs on one line */
	cfg = fixture_config("mqtt: { brokers = ( \"mqtt://127.0.0.1:1\" ); };\n"
	                     "devices = (\n"
	                     "  { name = \"door\"; driver = \"contact\"; line = 4; },\n"
	                     "  { name = \"door2\"; driver = \"contact\"; chip = \"gpiochip0\"; line = 4; }\n"
	                     ");\n");
	assert_null(cfg);
	if (!strstr(fixture_error, ":4: device \"door2\" uses gpiochip0 line 4, which device \"door\" (line 3)"))
		fail_msg("%s", fixture_error);

	/* other lines, or the same line number on another chip: fine */
	cfg = fixture_config("mqtt: { brokers = ( \"mqtt://127.0.0.1:1\" ); };\n"
	                     "devices = (\n"
	                     "  { name = \"door\"; driver = \"contact\"; line = 4; },\n"
	                     "  { name = \"door2\"; driver = \"contact\"; chip = \"gpiochip1\"; line = 4; }\n"
	                     ");\n"
	                     "actuators = ( { name = \"relay\"; driver = \"gpio\"; line = 5; topic = \"r\"; } );\n");
	if (!cfg)
		fail_msg("%s", fixture_error);
	config_free(cfg);
}

static void test_config_reading_fields_checked(void **state)
{
	struct sg_config *cfg;
	(void)state;

	cfg = fixture_config("mqtt: { brokers = ( \"mqtt://127.0.0.1:1\" ); };\n"
	                     "devices = (\n"
	                     "  { name = \"door\"; driver = \"contact\"; line = 4;\n"
	                     "    readings = ( { field = \"stat\"; } ); }\n"
	                     ");\n");
	assert_null(cfg);
	if (!strstr(fixture_error, ":4: device \"door\": driver \"contact\" has no field \"stat\" (fields: state)"))
		fail_msg("%s", fixture_error);
	cfg = fixture_config("mqtt: { brokers = ( \"mqtt://127.0.0.1:1\" ); };\n"
	                     "devices = (\n"
	                     "  { name = \"door\"; driver = \"contact\"; line = 4;\n"
	                     "    readings = ( { field = \"state\"; topic = \"hall/door\"; } ); }\n"
	                     ");\n");
	if (!cfg)
		fail_msg("%s", fixture_error);
	config_free(cfg);
}

static void test_discovery_binary_sensor(void **state)
{
	struct sg_disc_list l = {0};
	struct sg_config *cfg;
	char err[256];
	const char *p = NULL;
	(void)state;

	cfg = fixture_config("gateway: { id = \"pi\"; base_topic = \"home\"; };\n"
	                     "mqtt: { brokers = ( \"mqtt://127.0.0.1:1\" ); };\n"
	                     "discovery: { enabled = true; };\n"
	                     "devices = (\n"
	                     "  { name = \"door\"; driver = \"contact\"; line = 4; device_class = \"door\";\n"
	                     "    payload_on = \"open\"; payload_off = \"closed\"; }\n"
	                     ");\n");
	if (!cfg)
		fail_msg("%s", fixture_error);
	assert_int_equal(discovery_build(cfg, &l, err, sizeof(err)), 0);
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.v[i].topic, "homeassistant/binary_sensor/pi/door_state/config") == 0)
			p = l.v[i].payload;
	assert_non_null(p);
	assert_non_null(strstr(p, "\"state_topic\":\"home/door/state\""));
	assert_non_null(strstr(p, "\"payload_on\":\"open\",\"payload_off\":\"closed\",\"device_class\":\"door\""));
	discovery_list_clear(&l);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_debounce_takes_a_level_after_quiet),
		cmocka_unit_test(test_debounce_bounce_back_is_nothing),
		cmocka_unit_test(test_debounce_storm_postpones),
		cmocka_unit_test(test_debounce_line_read_wins),
		cmocka_unit_test(test_debounce_zero_is_immediate),
		cmocka_unit_test(test_delay_rounding),
		cmocka_unit_test_setup(test_contact_initial_level, setup),
		cmocka_unit_test_setup(test_contact_active_low_and_payloads, setup),
		cmocka_unit_test_setup(test_contact_debounce_from_kernel_timestamps, setup),
		cmocka_unit_test_setup(test_contact_timestamp_is_first_edge, setup),
		cmocka_unit_test_setup(test_contact_bounce_storm, setup),
		cmocka_unit_test_setup(test_contact_refresh_says_it_again, setup),
		cmocka_unit_test_setup(test_contact_lost_events_counted_and_level_reread, setup),
		cmocka_unit_test_setup(test_contact_no_seqno_no_gap_claims, setup),
		cmocka_unit_test_setup(test_button_single, setup),
		cmocka_unit_test_setup(test_button_double_and_long, setup),
		cmocka_unit_test_setup(test_button_classified_by_kernel_time, setup),
		cmocka_unit_test_setup(test_button_no_double_window_and_held_at_start, setup),
		cmocka_unit_test(test_button_options),
		cmocka_unit_test(test_button_config_never_retained),
		cmocka_unit_test(test_button_discovery),
		cmocka_unit_test_setup(test_line_refusals, setup),
		cmocka_unit_test_setup(test_read_failure_fails_the_device, setup),
		cmocka_unit_test(test_contact_option_errors),
		cmocka_unit_test(test_contact_fields_where_describe),
		cmocka_unit_test(test_config_refuses_a_second_user_of_a_line),
		cmocka_unit_test(test_config_reading_fields_checked),
		cmocka_unit_test(test_discovery_binary_sensor),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	fixture_cleanup();
	return r;
}
