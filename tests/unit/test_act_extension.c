/* SPDX-License-Identifier: MIT */
/*
 * test_act_extension.c — adding an actuator driver is one file plus one line
 * in the registry: proven with a third driver that exists only here.
 *
 * The toy driver `pwm` (type number only, keys chip/channel/period_ns) is
 * written the way drivers/actuator.h tells a driver author to, and this file
 * defines the registry table (sg_act_drivers[] = gpio, serial, pwm) and
 * sg_act_driver_find() itself. Those two are all that act_registry.o
 * defines, so the linker takes them from here and never pulls
 * act_registry.o out of libsensorgate.a: config.c, the router and the real
 * gpio and serial drivers run unmodified against a registry with a driver
 * they have never heard of. Covered: the toy's keys are accepted for it and
 * refused on gpio ("does not apply"), gpio's and serial's keys refused on it,
 * its own messages and lines, the list of known drivers, the types it
 * supports, the timers that are switch-only, --check's describe() line, and
 * the router opening it, moving it, and naming it (where()) when it fails.
 */
#include <errno.h>
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

/* ---- the toy driver, as a driver file would have it ---------------------------------------------- */

#define PWM_DEFAULT_CHIP      "pwmchip0"
#define PWM_DEFAULT_PERIOD_NS 20000000 /* 50 Hz, a servo's */

struct pwm_opts {
	char *chip;
	int channel;
	int period_ns;
};

static const char *const pwm_keys[] = {"chip", "channel", "period_ns", NULL};

static void pwm_free_options(void *opts)
{
	struct pwm_opts *o = opts;

	if (!o)
		return;
	free(o->chip);
	free(o);
}

static int pwm_parse_options(const config_setting_t *g, const struct sg_act_common *common, void **ret_opts,
                             struct sg_opt_error *err)
{
	struct pwm_opts *o = calloc(1, sizeof(*o));
	int r;

	if (!o)
		return -ENOMEM;
	o->period_ns = PWM_DEFAULT_PERIOD_NS;
	if (!(o->chip = strdup(PWM_DEFAULT_CHIP))) {
		r = -ENOMEM;
		goto err_free;
	}
	if ((r = sg_opt_string_dup(g, "chip", &o->chip, err)) < 0 ||
	    (r = sg_opt_require(g, "channel", err, "actuator \"%.80s\"", common->name)) < 0 ||
	    (r = sg_opt_int(g, "channel", 0, 255, &o->channel, err)) < 0 ||
	    (r = sg_opt_int(g, "period_ns", 1000, 1000000000, &o->period_ns, err)) < 0)
		goto err_free;
	if (!*o->chip) {
		r = sg_opt_fail(err, config_setting_get_member(g, "chip"), "actuator \"%s\": \"chip\" must name a "
		                    "pwmchip", common->name);
		goto err_free;
	}
	*ret_opts = o;
	return 0;

err_free:
	pwm_free_options(o);
	return r;
}

static void pwm_describe(const void *opts, char *buf, size_t len)
{
	const struct pwm_opts *o = opts;

	snprintf(buf, len, "pwm %s channel %d, period %d ns", o->chip, o->channel, o->period_ns);
}

static void pwm_where(const void *opts, char *buf, size_t len)
{
	const struct pwm_opts *o = opts;

	snprintf(buf, len, "%s channel %d", o->chip, o->channel);
}

/* What the "hardware" was told; test-only global state, reset by setup(). */
static struct {
	int open_error;
	unsigned n_opens, n_sets;
	double duty;             /* the last number set */
	const struct pwm_opts *opts_seen;
} pwm_hw;

struct pwm_state {
	bool open;
};

static int pwm_open(struct sg_act *a)
{
	struct pwm_state *st = a->state;

	a->fd = -1;
	a->events = 0;
	a->wake_us = UINT64_MAX;
	if (pwm_hw.open_error)
		return pwm_hw.open_error;
	st->open = true;
	pwm_hw.n_opens++;
	pwm_hw.opts_seen = a->params->opts;
	return 0;
}

static void pwm_close(struct sg_act *a)
{
	struct pwm_state *st = a->state;

	st->open = false;
}

static int pwm_set(struct sg_act *a, const struct sg_act_value *v, uint64_t now_us)
{
	struct pwm_state *st = a->state;
	(void)now_us;

	if (!st->open)
		return -ENODEV;
	pwm_hw.n_sets++;
	pwm_hw.duty = v->number;
	return 0;
}

static int pwm_set_sync(struct sg_act *a, const struct sg_act_value *v, int timeout_ms)
{
	(void)timeout_ms;
	return pwm_set(a, v, 0);
}

static const struct sg_act_driver toy_pwm = {
	.name = "pwm",
	.description = "a PWM channel (test only)",
	.kinds = SG_ACT_KIND_BIT(SG_ACT_NUMBER),
	.option_keys = pwm_keys,
	.parse_options = pwm_parse_options,
	.free_options = pwm_free_options,
	.describe = pwm_describe,
	.where = pwm_where,
	.state_size = sizeof(struct pwm_state),
	.open = pwm_open,
	.close = pwm_close,
	.read_back = NULL,
	.set = pwm_set,
	.io = NULL,
	.timer = NULL,
	.set_sync = pwm_set_sync,
};

/* ---- the registry with it: one line more than act_registry.c ------------------------------------- */

const struct sg_act_driver *const sg_act_drivers[] = {
	&sg_act_gpio,
	&sg_act_serial,
	&toy_pwm,
	NULL,
};

const struct sg_act_driver *sg_act_driver_find(const struct sg_act_driver *const *table, const char *name)
{
	if (!name)
		return NULL;
	if (!table)
		table = sg_act_drivers;
	for (size_t i = 0; table[i]; i++)
		if (strcmp(table[i]->name, name) == 0)
			return table[i];
	return NULL;
}

/* ---- tests ------------------------------------------------------------------------------------------ */

#define GW "gateway: { id = \"gw\"; base_topic = \"home\"; };\n"

static int setup(void **state)
{
	(void)state;
	memset(&pwm_hw, 0, sizeof(pwm_hw));
	rec_reset();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fixture_cleanup();
	return 0;
}

static void test_loads_with_its_keys(void **state)
{
	struct sg_config *cfg;
	char hw[200];
	(void)state;

	cfg = fixture_config(GW "actuators = (\n"
	                     "  { name = \"servo\"; driver = \"pwm\"; type = \"number\"; min = 0; max = 100;\n"
	                     "    chip = \"pwmchip2\"; channel = 1; period_ns = 1000000; },\n"
	                     "  { name = \"dim\"; driver = \"pwm\"; type = \"number\"; min = 0; max = 1; step = 0.01;\n"
	                     "    channel = 0; },\n"
	                     "  { name = \"relay\"; driver = \"gpio\"; chip = \"gpiochip1\"; line = 3; }\n"
	                     ");\n");
	if (!cfg)
		fail_msg("config: %s", fixture_error);
	assert_int_equal(cfg->n_actuators, 3);
	assert_ptr_equal(cfg->actuators[0].drv, &toy_pwm);
	assert_string_equal(cfg->actuators[0].driver, "pwm");
	toy_pwm.describe(cfg->actuators[0].opts, hw, sizeof(hw));
	assert_string_equal(hw, "pwm pwmchip2 channel 1, period 1000000 ns");
	toy_pwm.describe(cfg->actuators[1].opts, hw, sizeof(hw)); /* the driver's defaults */
	assert_string_equal(hw, "pwm pwmchip0 channel 0, period 20000000 ns");
	/* "chip" is a key of both: each driver gets its own */
	assert_ptr_equal(cfg->actuators[2].drv, &sg_act_gpio);
	sg_act_gpio.describe(cfg->actuators[2].opts, hw, sizeof(hw));
	assert_string_equal(hw, "gpio gpiochip1 line 3");
	config_free(cfg); /* frees the toy's options through its free_options (ASan: no leak) */
}

struct err_case {
	const char *legend;
	const char *text; /* the actuators list */
	int line;         /* expected line of the message (after the one-line GW) */
	const char *msg;  /* expected substring */
};

static const struct err_case err_cases[] = {
	{"unknown driver: the list comes from the table",
	 "actuators = (\n  { name = \"l\";\n    driver = \"i2c\"; }\n);\n",
	 4, "\"driver\" must be one of \"gpio\", \"serial\", \"pwm\""},
	{"the new driver's key on gpio",
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 4;\n    period_ns = 1000; }\n);\n",
	 4, "\"period_ns\" does not apply to driver \"gpio\" in actuator \"l\""},
	{"a serial key on the new driver",
	 "actuators = (\n  { name = \"p\"; driver = \"pwm\"; type = \"number\"; min = 0; max = 1; channel = 0;\n"
	 "    baud = 9600; }\n);\n",
	 4, "\"baud\" does not apply to driver \"pwm\" in actuator \"p\""},
	{"a serial-only key on gpio, found by the generic path",
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 4;\n    reply = \"OK\"; }\n);\n",
	 4, "\"reply\" does not apply to driver \"gpio\" in actuator \"l\""},
	{"a key no driver has",
	 "actuators = (\n  { name = \"p\"; driver = \"pwm\"; type = \"number\"; min = 0; max = 1; channel = 0;\n"
	 "    duty = 3; }\n);\n",
	 4, "unknown key \"duty\" in actuator \"p\""},
	{"a type the driver cannot move, by default",
	 "actuators = (\n\n  { name = \"p\"; driver = \"pwm\"; channel = 0; }\n);\n",
	 4, "actuator \"p\": driver \"pwm\" supports only type \"number\""},
	{"a type the driver cannot move, said",
	 "actuators = (\n  { name = \"p\"; driver = \"pwm\"; channel = 0;\n    type = \"enum\"; options = [\"a\"]; }\n);\n",
	 4, "actuator \"p\": driver \"pwm\" supports only type \"number\""},
	{"the driver's required key",
	 "actuators = (\n  { name = \"p\"; driver = \"pwm\"; type = \"number\"; min = 0; max = 1; }\n);\n",
	 3, "actuator \"p\" needs \"channel\""},
	{"the driver's type check, on its line",
	 "actuators = (\n  { name = \"p\"; driver = \"pwm\"; type = \"number\"; min = 0; max = 1; channel = 0;\n"
	 "\n    period_ns = \"fast\"; }\n);\n",
	 5, "\"period_ns\" must be an integer"},
	{"the driver's range check",
	 "actuators = (\n  { name = \"p\"; driver = \"pwm\"; type = \"number\"; min = 0; max = 1;\n"
	 "    channel = 256; }\n);\n",
	 4, "\"channel\" must be between 0 and 255"},
	{"the driver's own message",
	 "actuators = (\n  { name = \"p\"; driver = \"pwm\"; type = \"number\"; min = 0; max = 1; channel = 0;\n"
	 "    chip = \"\"; }\n);\n",
	 4, "actuator \"p\": \"chip\" must name a pwmchip"},
	{"the router's switch timers are common keys, for switches only",
	 "actuators = (\n  { name = \"p\"; driver = \"pwm\"; type = \"number\"; min = 0; max = 1; channel = 0;\n"
	 "    pulse_ms = 500; }\n);\n",
	 4, "\"pulse_ms\" applies only to type \"switch\""},
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *c = &err_cases[i];
		char text[512], prefix[300];
		struct sg_config *cfg;

		snprintf(text, sizeof(text), GW "%s", c->text);
		cfg = fixture_config(text);
		snprintf(prefix, sizeof(prefix), "%s/test.conf:%d: ", fixture_dir(), c->line);
		if (cfg || strncmp(fixture_error, prefix, strlen(prefix)) != 0 || !strstr(fixture_error, c->msg)) {
			config_free(cfg);
			fail_msg("case \"%s\": got \"%s\", want \"%s...%s\"", c->legend, cfg ? "(loaded)" : fixture_error,
			         prefix, c->msg);
		}
	}
}

/* pulse_ms and max_on_s are the router's, so any switch may have them, serial ones too. */
static void test_switch_timers_for_any_driver(void **state)
{
	struct sg_config *cfg;
	(void)state;

	cfg = fixture_config(GW "actuators = ( { name = \"bell\"; driver = \"serial\"; port = \"@DIR@/tty\";\n"
	                     "  on = \"B1\"; off = \"B0\"; pulse_ms = 300; max_on_s = 2; } );\n");
	if (!cfg)
		fail_msg("config: %s", fixture_error);
	assert_int_equal(cfg->actuators[0].pulse_ms, 300);
	assert_true(cfg->actuators[0].max_on_s == 2.0);
	config_free(cfg);
}

static struct sg_commands *router(const struct sg_config *cfg)
{
	static const struct sg_cmd_env env = {
		.publish = rec_publish, .subscribe = rec_subscribe, .drivers = NULL, /* the table above */
	};
	struct sg_commands *c = commands_new(cfg, &env, NULL, T0);
	assert_non_null(c);
	return c;
}

static int send(struct sg_commands *c, const char *topic, const char *payload)
{
	struct sg_cmd_msg m = {.topic = topic, .payload = payload, .len = strlen(payload)};
	return commands_message(c, &m, T0 + 1000);
}

#define SERVO GW "actuators = ( { name = \"servo\"; driver = \"pwm\"; type = \"number\"; min = 0; max = 100;\n" \
	         "  channel = 1; initial = \"10\"; } );\n"

static void test_router_moves_it(void **state)
{
	struct sg_config *cfg = fixture_config(SERVO);
	struct sg_commands *c;
	(void)state;

	if (!cfg)
		fail_msg("config: %s", fixture_error);
	c = router(cfg);
	assert_int_equal(pwm_hw.n_opens, 1);
	assert_ptr_equal(pwm_hw.opts_seen, cfg->actuators[0].opts); /* its own options, handed through */
	assert_int_equal(pwm_hw.n_sets, 1);                         /* the initial state */
	assert_true(pwm_hw.duty == 10.0);
	assert_int_equal(send(c, "home/servo/set", "42.5"), -EINVAL); /* step 1 */
	assert_int_equal(send(c, "home/servo/set", "42"), 0);
	assert_true(pwm_hw.duty == 42.0);
	assert_string_equal(rec_last("home/servo")->payload, "42");
	commands_free(c);
	config_free(cfg);
}

static void test_router_names_it_by_where(void **state)
{
	struct sg_config *cfg = fixture_config(SERVO);
	struct sg_commands *c;
	const struct rec_pub *e;
	(void)state;

	if (!cfg)
		fail_msg("config: %s", fixture_error);
	pwm_hw.open_error = -ENODEV;
	c = router(cfg);
	assert_int_equal(send(c, "home/servo/set", "42"), -ENODEV);
	assert_int_equal(pwm_hw.n_sets, 0);
	e = rec_last("home/servo/error");
	assert_non_null(e);
	assert_non_null(strstr(e->payload, "cannot open pwmchip0 channel 1: No such device"));
	commands_free(c);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_loads_with_its_keys, setup),
		cmocka_unit_test_setup(test_errors, setup),
		cmocka_unit_test_setup(test_switch_timers_for_any_driver, setup),
		cmocka_unit_test_setup(test_router_moves_it, setup),
		cmocka_unit_test_setup(test_router_names_it_by_where, setup),
	};
	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
