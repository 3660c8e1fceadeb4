/* SPDX-License-Identifier: MIT */
/*
 * test_act_pwm.c — the `pwm` actuator driver against a directory tree laid
 * out like /sys/class/pwm (a pwmchip with npwm, export and a channel's
 * period, duty_cycle, enable and polarity), in a private temporary directory.
 *
 * The order of the writes is taken from inotify (IN_CLOSE_WRITE on the chip
 * and the channel, in the order the kernel queued them), the values from the
 * files. From the values before a command, the order and the values after
 * it, every state the channel passed through is rebuilt, and the kernel's
 * rules are checked on each: the duty never above the period, enable written
 * last (and only once both are right), polarity only while disabled.
 * Covered: the options and their messages, the duty for a value (a fan's 0..100
 * %, a servo's 1..2 ms), a missing chip or channel, an export and the wait
 * for udev (the channel appears later; a command waits in timer(); 5 s
 * at most), shrinking and growing periods, a read-back that disagrees, the
 * safe state at shutdown, and the router: initial, commands, safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "opts_helper.h"
#include "cfg_helper.h"
#include "drivers/actuator.h"
#include "gateway/commands.h"
#include "pub_helper.h"

#define T0 1000000000ULL
#define MS 1000ULL
#define S  1000000ULL

/* ---- the tree ---------------------------------------------------------------------------------- */

static char root[64];
static int ino = -1;
static int wd_chip = -1, wd_chan = -1;

static void put(const char *rel, const char *text)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static unsigned long long get(const char *rel)
{
	char path[PATH_MAX], buf[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	return strtoull(buf, NULL, 10);
}

static void get_text(const char *rel, char *buf, size_t len)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "r");
	assert_non_null(f);
	buf[0] = '\0';
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

/* What the kernel makes on export: pwmN with its attributes. */
static void make_channel(int ch, unsigned long long period, unsigned long long duty, int enable)
{
	char rel[64], v[32];

	snprintf(rel, sizeof(rel), "pwmchip0/pwm%d", ch);
	{
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", root, rel);
		assert_int_equal(mkdir(path, 0755), 0);
	}
	snprintf(rel, sizeof(rel), "pwmchip0/pwm%d/period", ch);
	snprintf(v, sizeof(v), "%llu\n", period);
	put(rel, v);
	snprintf(rel, sizeof(rel), "pwmchip0/pwm%d/duty_cycle", ch);
	snprintf(v, sizeof(v), "%llu\n", duty);
	put(rel, v);
	snprintf(rel, sizeof(rel), "pwmchip0/pwm%d/enable", ch);
	put(rel, enable ? "1\n" : "0\n");
	snprintf(rel, sizeof(rel), "pwmchip0/pwm%d/polarity", ch);
	put(rel, "normal\n");
}

static void watch_channel(int ch)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/pwmchip0/pwm%d", root, ch);
	wd_chan = inotify_add_watch(ino, path, IN_CLOSE_WRITE);
	assert_true(wd_chan >= 0);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	char path[PATH_MAX];
	(void)state;

	snprintf(root, sizeof(root), "/tmp/sg-pwm-test.XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/pwmchip0", root);
	assert_int_equal(mkdir(path, 0755), 0);
	put("pwmchip0/npwm", "2\n");
	put("pwmchip0/export", "");
	put("pwmchip0/unexport", "");
	ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	assert_true(ino >= 0);
	wd_chip = inotify_add_watch(ino, path, IN_CLOSE_WRITE);
	assert_true(wd_chip >= 0);
	wd_chan = -1;
	rec_reset();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(ino);
	ino = -1;
	nftw(root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* The files written since the last call, in order ("export period duty_cycle enable"). */
static const char *writes(void)
{
	static char out[512];
	char buf[4096] __attribute__((aligned(8)));
	size_t at = 0;
	ssize_t n;

	out[0] = '\0';
	while ((n = read(ino, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;

			if (e->len && at < sizeof(out))
				at += (size_t)snprintf(out + at, sizeof(out) - at, "%s%s", at ? " " : "", e->name);
			p += sizeof(*e) + e->len;
		}
	}
	return out;
}

/*
 * From the channel's values BEFORE (period, duty, enable), the ORDER of the
 * writes and the values now, every state between: duty <= period in each,
 * enable written last and only with both right.
 */
static void assert_kernel_order(unsigned long long p0, unsigned long long d0, int e0, const char *order, int ch)
{
	char rel[64], list[512], *save = NULL;
	unsigned long long p = p0, d = d0, p1, d1;
	int e = e0, e1;

	snprintf(rel, sizeof(rel), "pwmchip0/pwm%d/period", ch);
	p1 = get(rel);
	snprintf(rel, sizeof(rel), "pwmchip0/pwm%d/duty_cycle", ch);
	d1 = get(rel);
	snprintf(rel, sizeof(rel), "pwmchip0/pwm%d/enable", ch);
	e1 = (int)get(rel);
	snprintf(list, sizeof(list), "%s", order);
	for (char *w = strtok_r(list, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (strcmp(w, "period") == 0)
			p = p1;
		else if (strcmp(w, "duty_cycle") == 0)
			d = d1;
		else if (strcmp(w, "enable") == 0) {
			e = e1;
			if (e && (p != p1 || d != d1))
				fail_msg("enabled before period and duty were set (order: %s)", order);
		}
		if (d > p)
			fail_msg("after writing %s: duty %llu above period %llu (order: %s)", w, d, p, order);
	}
	if (p != p1 || d != d1 || e != e1)
		fail_msg("the files changed without being written (order: %s)", order);
	(void)e;
}

/* ---- the driver alone ---------------------------------------------------------------------------- */

struct drv {
	struct sg_act_params p;
	struct sg_act a;
	void *opts;
	int done, done_result;
};

static void on_done(struct sg_act *a, int result, const char *detail, void *ud)
{
	struct drv *d = ud;
	(void)a;
	(void)detail;
	d->done++;
	d->done_result = result;
}

static int drv_open(struct drv *d, const char *extra)
{
	struct sg_opt_error err;
	char text[512];

	memset(d, 0, sizeof(*d));
	snprintf(text, sizeof(text), "root = \"%s\"; %s %s", root, strstr(extra, "min =") ? "" : "min = 0; max = 100;",
	         extra);
	if (act_fixture_parse(&sg_act_pwm, "fan", SG_ACT_NUMBER, text, &d->opts, &err) != 0)
		fail_msg("options \"%s\": %s", text, err.msg);
	d->p = (struct sg_act_params){.name = "fan", .kind = SG_ACT_NUMBER, .initial = -1, .opts = d->opts};
	d->a = (struct sg_act){
		.driver = &sg_act_pwm, .params = &d->p, .fd = -1, .wake_us = UINT64_MAX, .done = on_done, .userdata = d,
	};
	d->a.state = calloc(1, sg_act_pwm.state_size);
	assert_non_null(d->a.state);
	return sg_act_pwm.open(&d->a);
}

static void drv_close(struct drv *d)
{
	sg_act_pwm.close(&d->a);
	free(d->a.state);
	act_fixture_free(&sg_act_pwm, d->opts);
}

static int set_num(struct drv *d, double v)
{
	struct sg_act_value val = {.number = v, .text = "x"};
	return sg_act_pwm.set(&d->a, &val, T0);
}

static void test_options(void **state)
{
	static const struct {
		const char *text;
		const char *msg;
	} bad[] = {
		{"frequency = 1000;", "actuator \"fan\" needs \"channel\""},
		{"channel = 0;", "actuator \"fan\" needs \"frequency\""},
		{"channel = 0; frequency = 0;", "\"frequency\" must be between 0.01 and 1e+08"},
		{"channel = 2000; frequency = 50;", "\"channel\" must be between 0 and 1023"},
		{"channel = 0; frequency = 50; polarity = \"inverted\";", "\"polarity\" must be one of \"normal\", \"inversed\""},
		{"channel = 0; frequency = 50; duty_min = 10; duty_max = 10;", "\"duty_min\" and \"duty_max\" must differ"},
		{"channel = 0; frequency = 50; duty_max = 101;", "\"duty_max\" must be between 0 and 100"},
		{"channel = 0; frequency = 50; root = \"sys/class/pwm\";", "\"root\" must be an absolute path"},
		{"channel = 0; frequency = 50; chip = \"../x\";", "\"chip\" must name a PWM chip"},
	};
	struct sg_opt_error err;
	char buf[256];
	void *opts;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = act_fixture_parse(&sg_act_pwm, "fan", SG_ACT_NUMBER, bad[i].text, &opts, &err);
		if (r != -EINVAL || !strstr(err.msg, bad[i].msg))
			fail_msg("\"%s\": %d \"%s\"", bad[i].text, r, err.msg);
	}
	assert_int_equal(act_fixture_parse(&sg_act_pwm, "servo", SG_ACT_NUMBER,
	                                   "chip = \"1\"; channel = 1; frequency = 50; min = 0; max = 180;"
	                                   "duty_min = 5; duty_max = 10; polarity = \"normal\";", &opts, &err), 0);
	sg_act_pwm.describe(opts, buf, sizeof(buf));
	assert_string_equal(buf, "pwm /sys/class/pwm/pwmchip1 channel 1, 50 Hz (period 20000000 ns), duty 5..10 % "
	                         "for 0..180, polarity normal");
	sg_act_pwm.where(opts, buf, sizeof(buf));
	assert_string_equal(buf, "pwmchip1 channel 1");
	act_fixture_free(&sg_act_pwm, opts);
	assert_true(sg_act_pwm.kinds == SG_ACT_KIND_BIT(SG_ACT_NUMBER));
}

static void test_missing_chip_or_channel(void **state)
{
	struct drv d;
	(void)state;

	assert_int_equal(drv_open(&d, "chip = \"pwmchip3\"; channel = 0; frequency = 100;"), -ENOENT);
	drv_close(&d);
	assert_int_equal(drv_open(&d, "channel = 2; frequency = 100;"), -EINVAL); /* npwm is 2 */
	drv_close(&d);
	assert_string_equal(writes(), "");
}

static void test_export_then_wait_for_the_channel(void **state)
{
	struct drv d;
	char text[16];
	(void)state;

	/* 25 kHz: a PC fan's PWM; period 40000 ns */
	assert_int_equal(drv_open(&d, "channel = 1; frequency = 25000;"), 0);
	assert_string_equal(writes(), "export");
	get_text("pwmchip0/export", text, sizeof(text));
	assert_string_equal(text, "1");
	assert_true(d.a.wake_us == 0); /* waits for the channel in timer() */
	assert_int_equal(set_num(&d, 30), 1);  /* a command waits too */
	assert_int_equal(sg_act_pwm.timer(&d.a, T0), 0);
	assert_true(d.a.wake_us == T0 + 20 * MS);
	assert_int_equal(d.done, 0);
	/* udev hands the files over */
	make_channel(1, 0, 0, 0);
	watch_channel(1);
	writes();
	assert_int_equal(sg_act_pwm.timer(&d.a, T0 + 20 * MS), 0);
	assert_int_equal(d.done, 1);
	assert_int_equal(d.done_result, 0);
	assert_string_equal(writes(), "period duty_cycle enable");
	assert_true(get("pwmchip0/pwm1/period") == 40000);
	assert_true(get("pwmchip0/pwm1/duty_cycle") == 12000);
	assert_true(get("pwmchip0/pwm1/enable") == 1);
	assert_true(d.a.wake_us == UINT64_MAX);
	/* from now on at once, only what changes */
	assert_int_equal(set_num(&d, 100), 0);
	assert_string_equal(writes(), "duty_cycle");
	assert_true(get("pwmchip0/pwm1/duty_cycle") == 40000);
	assert_int_equal(set_num(&d, 0), 0);
	assert_true(get("pwmchip0/pwm1/duty_cycle") == 0);
	assert_true(get("pwmchip0/pwm1/enable") == 1); /* 0 % is a low output, still enabled */
	drv_close(&d);
}

static void test_channel_never_appears(void **state)
{
	struct drv d;
	(void)state;

	assert_int_equal(drv_open(&d, "channel = 0; frequency = 1000;"), 0);
	assert_int_equal(set_num(&d, 50), 1);
	assert_int_equal(sg_act_pwm.timer(&d.a, T0), 0);
	assert_int_equal(sg_act_pwm.timer(&d.a, T0 + 4 * S), 0);
	assert_int_equal(sg_act_pwm.timer(&d.a, T0 + 5 * S), -ETIMEDOUT);
	assert_int_equal(d.done, 0); /* the router fails the waiting command */
	drv_close(&d);
}

static void test_order_when_the_period_shrinks_or_grows(void **state)
{
	struct drv d;
	(void)state;

	/* left at 1 kHz, 90 %, enabled: the new period 40000 is below the old duty 900000 */
	make_channel(0, 1000000, 900000, 1);
	watch_channel(0);
	assert_int_equal(drv_open(&d, "channel = 0; frequency = 25000;"), 0);
	assert_string_equal(writes(), "");           /* opening writes nothing */
	assert_int_equal(set_num(&d, 20), 0);
	assert_string_equal(writes(), "duty_cycle period");
	assert_kernel_order(1000000, 900000, 1, "duty_cycle period", 0);
	assert_true(get("pwmchip0/pwm0/duty_cycle") == 8000);
	drv_close(&d);

	/* left at 100 kHz, 50 %, disabled: the period grows first, enable last */
	teardown(NULL);
	setup(NULL);
	make_channel(0, 10000, 5000, 0);
	watch_channel(0);
	assert_int_equal(drv_open(&d, "channel = 0; frequency = 25000;"), 0);
	assert_int_equal(set_num(&d, 75), 0);
	assert_string_equal(writes(), "period duty_cycle enable");
	assert_kernel_order(10000, 5000, 0, "period duty_cycle enable", 0);
	assert_true(get("pwmchip0/pwm0/duty_cycle") == 30000);
	drv_close(&d);
}

static void test_servo_range_and_polarity(void **state)
{
	struct drv d;
	char text[16];
	(void)state;

	/* a servo: 50 Hz, 0..180 degrees as 1..2 ms, polarity set while disabled */
	make_channel(0, 0, 0, 1);
	watch_channel(0);
	assert_int_equal(drv_open(&d, "channel = 0; frequency = 50; min = 0; max = 180; duty_min = 5; duty_max = 10;"
	                              "polarity = \"inversed\";"), 0);
	assert_string_equal(writes(), "enable polarity"); /* disabled first: the kernel's rule */
	get_text("pwmchip0/pwm0/polarity", text, sizeof(text));
	assert_string_equal(text, "inversed");
	assert_int_equal(set_num(&d, 90), 0);
	assert_string_equal(writes(), "period duty_cycle enable");
	assert_kernel_order(0, 0, 0, "period duty_cycle enable", 0);
	assert_true(get("pwmchip0/pwm0/period") == 20000000);
	assert_true(get("pwmchip0/pwm0/duty_cycle") == 1500000);
	assert_int_equal(set_num(&d, 180), 0);
	assert_true(get("pwmchip0/pwm0/duty_cycle") == 2000000);
	assert_int_equal(set_num(&d, 0), 0);
	assert_true(get("pwmchip0/pwm0/duty_cycle") == 1000000);
	drv_close(&d);
}

static void test_read_back_disagrees(void **state)
{
	struct drv d;
	char path[PATH_MAX];
	(void)state;

	make_channel(0, 40000, 0, 1);
	assert_int_equal(drv_open(&d, "channel = 0; frequency = 25000;"), 0);
	/* a duty_cycle that keeps nothing written to it */
	snprintf(path, sizeof(path), "%s/pwmchip0/pwm0/duty_cycle", root);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("/dev/null", path), 0);
	assert_int_equal(set_num(&d, 50), -EIO);
	drv_close(&d);
}

static void test_set_sync(void **state)
{
	struct sg_act_value v = {.number = 100, .text = "100"};
	struct drv d;
	(void)state;

	make_channel(0, 40000, 10000, 1);
	assert_int_equal(drv_open(&d, "channel = 0; frequency = 25000;"), 0);
	assert_int_equal(sg_act_pwm.set_sync(&d.a, &v, 1000), 0);
	assert_true(get("pwmchip0/pwm0/duty_cycle") == 40000);
	drv_close(&d);
	/* not exported yet and not there: cannot */
	teardown(NULL);
	setup(NULL);
	assert_int_equal(drv_open(&d, "channel = 0; frequency = 25000;"), 0);
	assert_int_equal(sg_act_pwm.set_sync(&d.a, &v, 1000), -EAGAIN);
	drv_close(&d);
}

/* ---- behind the router ------------------------------------------------------------------------------ */

static int send(struct sg_commands *c, const char *topic, const char *payload, uint64_t now)
{
	struct sg_cmd_msg m = {.topic = topic, .payload = payload, .len = strlen(payload)};
	return commands_message(c, &m, now);
}

static void test_router(void **state)
{
	static const struct sg_cmd_env env = {.publish = rec_publish, .subscribe = rec_subscribe};
	struct sg_config *cfg;
	struct sg_commands *c;
	char text[1024];
	(void)state;

	make_channel(0, 0, 0, 0);
	snprintf(text, sizeof(text),
	         "gateway: { id = \"gw\"; base_topic = \"home\"; };\n"
	         "actuators = ( { name = \"fan\"; driver = \"pwm\"; root = \"%s\"; channel = 0; frequency = 25000;\n"
	         "   type = \"number\"; min = 0; max = 100; step = 5; initial = \"30\"; safe = \"100\"; } );\n", root);
	cfg = fixture_config(text);
	if (!cfg)
		fail_msg("%s", fixture_error);
	c = commands_new(cfg, &env, NULL, T0);
	assert_non_null(c);
	assert_true(commands_up(c, 0));
	assert_true(get("pwmchip0/pwm0/duty_cycle") == 12000); /* initial 30 % */
	assert_true(get("pwmchip0/pwm0/enable") == 1);
	assert_string_equal(commands_state(c, 0), "30");
	assert_int_equal(send(c, "home/fan/set", "75", T0 + S), 0);
	assert_true(get("pwmchip0/pwm0/duty_cycle") == 30000);
	assert_string_equal(commands_state(c, 0), "75");
	assert_int_equal(send(c, "home/fan/set", "101", T0 + 2 * S), -EINVAL); /* the router's range */
	assert_int_equal(send(c, "home/fan/set", "42", T0 + 3 * S), -EINVAL);  /* off the step */
	assert_true(get("pwmchip0/pwm0/duty_cycle") == 30000);
	commands_shutdown(c, 100);
	assert_true(get("pwmchip0/pwm0/duty_cycle") == 40000); /* safe: full speed */
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
		cmocka_unit_test(test_options),
		cmocka_unit_test_setup_teardown(test_missing_chip_or_channel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export_then_wait_for_the_channel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_channel_never_appears, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_when_the_period_shrinks_or_grows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_servo_range_and_polarity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_back_disagrees, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_router, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
