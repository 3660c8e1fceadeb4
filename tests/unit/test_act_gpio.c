/* SPDX-License-Identifier: MIT */
/*
 * test_act_gpio.c — the `gpio` actuator driver against the fake gpiochip
 * (fake_gpio.c), alone and behind the command router.
 *
 * Alone: how the line is requested (consumer, active_low, initial level or
 * the level found), that set() moves the pin and confirms it by reading
 * back, how chip/line/busy/I/O errors come out, that close() releases.
 * Behind the router (the real sg_act_gpio with the fake bus): the initial
 * state at start, pulse_ms and max_on_s as timers driven by the `now` the
 * test passes (no sleeping), the safe state at shutdown, and reopening with
 * backoff when the chip is missing at start.
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

#include "opts_helper.h"
#include "cfg_helper.h"
#include "drivers/actuator.h"
#include "fake_gpio.h"
#include "gateway/commands.h"
#include "pub_helper.h"

#define T0 1000000000ULL /* a monotonic "now" far from zero */
#define MS 1000ULL
#define S  1000000ULL

static const struct sg_act_buses fake_buses = {.gpio = &fake_gpio_ops};

struct drv {
	struct sg_act_params p;
	struct sg_act a;
	void *opts;
};

static void drv_init_chip(struct drv *d, const char *chip, unsigned line, bool active_low, int initial)
{
	struct sg_opt_error err;
	char text[128];

	memset(d, 0, sizeof(*d));
	snprintf(text, sizeof(text), "chip = \"%s\"; line = %u; active_low = %s;", chip, line,
	         active_low ? "true" : "false");
	if (act_fixture_parse(&sg_act_gpio, "relay", SG_ACT_SWITCH, text, &d->opts, &err) != 0)
		fail_msg("options \"%s\": %s", text, err.msg);
	d->p = (struct sg_act_params){
		.name = "relay", .kind = SG_ACT_SWITCH, .initial = initial, .opts = d->opts,
	};
	d->a = (struct sg_act){
		.driver = &sg_act_gpio, .params = &d->p, .buses = &fake_buses, .fd = -1, .wake_us = UINT64_MAX,
	};
	d->a.state = calloc(1, sg_act_gpio.state_size);
	assert_non_null(d->a.state);
}

static void drv_init(struct drv *d, unsigned line, bool active_low, int initial)
{
	drv_init_chip(d, "gpiochip0", line, active_low, initial);
}

static void drv_fini(struct drv *d)
{
	sg_act_gpio.close(&d->a);
	free(d->a.state);
	d->a.state = NULL;
	act_fixture_free(&sg_act_gpio, d->opts);
	d->opts = NULL;
}

static int setup(void **state)
{
	(void)state;
	fake_gpio_reset();
	rec_reset();
	return 0;
}

/* --- the driver alone ---------------------------------------------------------------------------- */

struct open_case {
	const char *legend;
	bool active_low;
	int initial;      /* -1 keep */
	int level_before; /* physical */
	int level_after;  /* physical */
	int logical;      /* read back */
};

static const struct open_case open_cases[] = {
	{"initial on, active high: pin high", false, 1, 0, 1, 1},
	{"initial off, active high: pin low", false, 0, 1, 0, 0},
	{"initial on, active low: pin low", true, 1, 1, 0, 1},
	{"initial off, active low: pin high", true, 0, 0, 1, 0},
	{"no initial keeps a high pin (on)", false, -1, 1, 1, 1},
	{"no initial keeps a low pin (off)", false, -1, 0, 0, 0},
	{"no initial, active low, low pin reads on", true, -1, 0, 0, 1},
};

static void test_open_levels(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(open_cases) / sizeof(open_cases[0]); i++) {
		const struct open_case *c = &open_cases[i];
		struct drv d;

		fake_gpio_reset();
		fake_gpio.lines[17].level = c->level_before;
		drv_init(&d, 17, c->active_low, c->initial);
		print_message("case: %s\n", c->legend);
		assert_int_equal(sg_act_gpio.open(&d.a), 0);
		assert_true(fake_gpio.lines[17].requested);
		assert_string_equal(fake_gpio.lines[17].consumer, "sensorgate");
		assert_int_equal(fake_gpio.lines[17].active_low, c->active_low);
		assert_int_equal(fake_gpio.lines[17].level, c->level_after);
		assert_int_equal(sg_act_gpio.read_back(&d.a), c->logical);
		assert_int_equal(d.a.fd, -1); /* nothing to poll */
		assert_true(d.a.wake_us == UINT64_MAX);
		drv_fini(&d);
		assert_false(fake_gpio.lines[17].requested);
		assert_int_equal(fake_gpio.n_releases, 1);
	}
}

static void test_set_moves_pin(void **state)
{
	struct sg_act_value on = {.on = true, .text = "ON"}, off = {.on = false, .text = "OFF"};
	struct drv d;
	(void)state;

	drv_init(&d, 4, true, 0);
	assert_int_equal(sg_act_gpio.open(&d.a), 0);
	assert_int_equal(fake_gpio.lines[4].level, 1); /* active low, off = high */
	assert_int_equal(sg_act_gpio.set(&d.a, &on, T0), 0);
	assert_int_equal(fake_gpio.lines[4].level, 0);
	assert_int_equal(fake_gpio_logical(4), 1);
	assert_int_equal(sg_act_gpio.set(&d.a, &off, T0), 0);
	assert_int_equal(fake_gpio.lines[4].level, 1);
	assert_int_equal(fake_gpio.lines[4].n_sets, 2);
	assert_int_equal(sg_act_gpio.set_sync(&d.a, &on, 100), 0);
	assert_int_equal(fake_gpio_logical(4), 1);
	drv_fini(&d);
}

struct err_case {
	const char *legend;
	const char *chip;
	unsigned line;
	bool pre_requested;
	int expect;
};

static const struct err_case err_cases[] = {
	{"no such chip", "gpiochip7", 3, false, -ENOENT},
	{"line beyond the chip", "gpiochip0", FAKE_GPIO_LINES + 5, false, -EINVAL},
	{"line held by another consumer", "gpiochip0", 3, true, -EBUSY},
};

static void test_open_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *c = &err_cases[i];
		struct drv d;

		fake_gpio_reset();
		print_message("case: %s\n", c->legend);
		if (c->pre_requested)
			fake_gpio.lines[c->line].requested = true;
		drv_init_chip(&d, c->chip, c->line, false, 0);
		assert_int_equal(sg_act_gpio.open(&d.a), c->expect);
		drv_fini(&d); /* close after a failed open is harmless */
		assert_int_equal(fake_gpio.n_releases, 0);
	}
}

static void test_set_errors(void **state)
{
	struct sg_act_value on = {.on = true, .text = "ON"};
	struct drv d;
	(void)state;

	drv_init(&d, 5, false, 0);
	assert_int_equal(sg_act_gpio.open(&d.a), 0);
	fake_gpio.lines[5].fail = -EIO;
	assert_int_equal(sg_act_gpio.set(&d.a, &on, T0), -EIO);
	assert_int_equal(sg_act_gpio.read_back(&d.a), -EIO);
	fake_gpio.lines[5].fail = 0;
	fake_gpio.lines[5].stuck = true; /* the ioctl works, the pin does not follow */
	assert_int_equal(sg_act_gpio.set(&d.a, &on, T0), -EIO);
	assert_int_equal(fake_gpio.lines[5].level, 0);
	drv_fini(&d);
}

/* The real table: no gpiochip on a test machine, so a lookup must fail cleanly. */
static void test_libgpiod_missing_chip(void **state)
{
	void *h = NULL;
	(void)state;

	assert_int_equal(sg_gpio_libgpiod.request_output("sg-no-such-chip", 3, false, "sensorgate", 0, &h), -ENOENT);
	assert_null(h);
	sg_gpio_libgpiod.release(NULL); /* harmless */
}

/* --- behind the router --------------------------------------------------------------------------- */

static struct sg_commands *router(struct sg_config *cfg, uint64_t now)
{
	static const struct sg_cmd_env env = {
		.publish = rec_publish, .subscribe = rec_subscribe, .drivers = NULL, .buses = &fake_buses,
	};
	struct sg_commands *c = commands_new(cfg, &env, NULL, now);
	assert_non_null(c);
	return c;
}

static int send(struct sg_commands *c, const char *topic, const char *payload, uint64_t now)
{
	struct sg_cmd_msg m = {.topic = topic, .payload = payload, .len = strlen(payload)};
	return commands_message(c, &m, now);
}

#define GW "gateway: { id = \"gw\"; base_topic = \"home\"; };\n"

static void test_router_initial_and_safe(void **state)
{
	struct sg_config *cfg;
	struct sg_commands *c;
	(void)state;

	fake_gpio.lines[17].level = 0;
	fake_gpio.lines[18].level = 1;
	cfg = fixture_config(GW "actuators = (\n"
	                     " { name = \"light\"; driver = \"gpio\"; line = 17; topic = \"hall/light\";\n"
	                     "   initial = \"ON\"; safe = \"OFF\"; },\n"
	                     " { name = \"fan\"; driver = \"gpio\"; line = 18; active_low = true; }\n"
	                     ");\n");
	assert_non_null(cfg);
	c = router(cfg, T0);
	/* light: driven ON at start; fan: no initial, keeps its level (high = off, active low) */
	assert_int_equal(fake_gpio.lines[17].level, 1);
	assert_true(fake_gpio.lines[18].requested);
	assert_int_equal(fake_gpio.lines[18].level, 1);
	assert_string_equal(commands_state(c, 0), "ON");
	assert_string_equal(commands_state(c, 1), "OFF");

	commands_connected(c);
	assert_int_equal(pub_rec.n_subs, 2);
	assert_string_equal(pub_rec.subs[0], "home/hall/light/set");
	assert_int_equal(pub_rec.sub_qos[0], 1);
	assert_string_equal(rec_last("home/hall/light")->payload, "ON");
	assert_true(rec_last("home/hall/light")->retain);
	assert_string_equal(rec_last("home/fan")->payload, "OFF");

	assert_int_equal(send(c, "home/fan/set", "ON", T0 + S), 0);
	assert_int_equal(fake_gpio.lines[18].level, 0);
	assert_string_equal(rec_last("home/fan")->payload, "ON");

	commands_shutdown(c, 100);
	assert_int_equal(fake_gpio.lines[17].level, 0);  /* safe = OFF */
	assert_int_equal(fake_gpio.lines[18].level, 0);  /* no safe, no initial: left on */
	assert_string_equal(rec_last("home/hall/light")->payload, "OFF");
	assert_false(fake_gpio.lines[17].requested);
	assert_false(fake_gpio.lines[18].requested);
	commands_free(c);
	config_free(cfg);
}

static void test_router_pulse(void **state)
{
	struct sg_config *cfg;
	struct sg_commands *c;
	(void)state;

	cfg = fixture_config(GW "actuators = ( { name = \"door\"; driver = \"gpio\"; line = 6; initial = \"OFF\";\n"
	                     "   pulse_ms = 500; } );\n");
	assert_non_null(cfg);
	c = router(cfg, T0);
	assert_true(commands_deadline(c) == UINT64_MAX);
	assert_int_equal(send(c, "home/door/set", "ON", T0), 0);
	assert_int_equal(fake_gpio_logical(6), 1);
	assert_string_equal(rec_last("home/door")->payload, "ON");
	assert_true(commands_deadline(c) == T0 + 500 * MS);
	/* a second ON during the pulse does not extend it */
	assert_int_equal(send(c, "home/door/set", "ON", T0 + 300 * MS), 0);
	assert_true(commands_deadline(c) == T0 + 500 * MS);
	commands_timer(c, T0 + 499 * MS);
	assert_int_equal(fake_gpio_logical(6), 1);
	commands_timer(c, T0 + 500 * MS);
	assert_int_equal(fake_gpio_logical(6), 0);
	assert_string_equal(rec_last("home/door")->payload, "OFF");
	assert_string_equal(commands_state(c, 0), "OFF");
	assert_true(commands_deadline(c) == UINT64_MAX);

	/* OFF before the end cancels the timer */
	assert_int_equal(send(c, "home/door/set", "ON", T0 + 2 * S), 0);
	assert_int_equal(send(c, "home/door/set", "OFF", T0 + 2 * S + 100 * MS), 0);
	assert_true(commands_deadline(c) == UINT64_MAX);
	commands_free(c);
	config_free(cfg);
}

static void test_router_max_on(void **state)
{
	struct sg_config *cfg;
	struct sg_commands *c;
	size_t n;
	(void)state;

	cfg = fixture_config(GW "actuators = ( { name = \"heater\"; driver = \"gpio\"; line = 9; max_on_s = 2.5; } );\n");
	assert_non_null(cfg);
	c = router(cfg, T0);
	assert_int_equal(send(c, "home/heater/set", "1", T0), 0);
	assert_true(commands_deadline(c) == T0 + 2500 * MS);
	commands_timer(c, T0 + 2 * S);
	assert_int_equal(fake_gpio_logical(9), 1);
	n = rec_count("home/heater");
	commands_timer(c, T0 + 2500 * MS);
	assert_int_equal(fake_gpio_logical(9), 0);
	assert_int_equal(rec_count("home/heater"), n + 1);
	assert_string_equal(rec_last("home/heater")->payload, "OFF");

	/* shutting down while a max_on_s timer runs and with no safe state: switched off anyway */
	assert_int_equal(send(c, "home/heater/set", "ON", T0 + 10 * S), 0);
	commands_shutdown(c, 100);
	assert_int_equal(fake_gpio_logical(9), 0);
	commands_free(c);
	config_free(cfg);
}

static void test_router_chip_missing_at_start(void **state)
{
	struct sg_config *cfg;
	struct sg_commands *c;
	(void)state;

	fake_gpio.chip[0] = '\0';
	cfg = fixture_config(GW "actuators = ( { name = \"pump\"; driver = \"gpio\"; chip = \"gpiochip0\"; line = 2;\n"
	                     "   initial = \"ON\"; } );\n");
	assert_non_null(cfg);
	c = router(cfg, T0);
	assert_false(commands_up(c, 0));
	assert_null(commands_state(c, 0));
	assert_in_range(commands_deadline(c), T0 + S / 10, T0 + 1 * S); /* backoff.h: up to 1 s, jittered */
	assert_int_equal(send(c, "home/pump/set", "OFF", T0), -ENODEV);
	assert_non_null(strstr(rec_last("home/pump/error")->payload, "unavailable"));
	commands_timer(c, T0 + 1 * S);                 /* still missing: backoff doubles */
	assert_in_range(commands_deadline(c), T0 + S + S / 10, T0 + 3 * S);
	snprintf(fake_gpio.chip, sizeof(fake_gpio.chip), "gpiochip0");
	commands_timer(c, T0 + 3 * S);
	assert_true(commands_up(c, 0));
	assert_int_equal(fake_gpio_logical(2), 1);     /* initial state applied on the late open */
	assert_string_equal(commands_state(c, 0), "ON");
	commands_free(c);
	assert_false(fake_gpio.lines[2].requested);
	config_free(cfg);
}

static void test_router_line_fails(void **state)
{
	struct sg_config *cfg;
	struct sg_commands *c;
	(void)state;

	cfg = fixture_config(GW "actuators = ( { name = \"l\"; driver = \"gpio\"; line = 3; initial = \"OFF\"; } );\n");
	assert_non_null(cfg);
	c = router(cfg, T0);
	fake_gpio.lines[3].fail = -EIO;
	assert_int_equal(send(c, "home/l/set", "ON", T0), -EIO);
	assert_non_null(strstr(rec_last("home/l/error")->payload, "Input/output error"));
	assert_false(commands_up(c, 0));                /* released, to be reopened */
	assert_false(fake_gpio.lines[3].requested);
	assert_string_equal(commands_state(c, 0), "OFF"); /* nothing moved */
	fake_gpio.lines[3].fail = 0;
	commands_timer(c, T0 + 1 * S);
	assert_true(commands_up(c, 0));
	assert_int_equal(send(c, "home/l/set", "ON", T0 + 2 * S), 0);
	assert_int_equal(fake_gpio_logical(3), 1);
	commands_free(c);
	config_free(cfg);
}

static int group_teardown(void **state)
{
	(void)state;
	fixture_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_open_levels, setup),
		cmocka_unit_test_setup(test_set_moves_pin, setup),
		cmocka_unit_test_setup(test_open_errors, setup),
		cmocka_unit_test_setup(test_set_errors, setup),
		cmocka_unit_test(test_libgpiod_missing_chip),
		cmocka_unit_test_setup(test_router_initial_and_safe, setup),
		cmocka_unit_test_setup(test_router_pulse, setup),
		cmocka_unit_test_setup(test_router_max_on, setup),
		cmocka_unit_test_setup(test_router_chip_missing_at_start, setup),
		cmocka_unit_test_setup(test_router_line_fails, setup),
	};
	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
