/* SPDX-License-Identifier: MIT */
/*
 * act_pwm.c — the `pwm` actuator driver: one channel of a PWM controller
 * through the kernel's sysfs interface (a fan, an LED dimmer, a servo).
 *
 *   { name = "fan"; driver = "pwm"; chip = "pwmchip0"; channel = 0; frequency = 25000;
 *     type = "number"; min = 0; max = 100; step = 1; initial = "30"; safe = "100"; }
 *
 * A number from min to max sets the duty cycle linearly from duty_min to
 * duty_max percent of the period (defaults 0 and 100): a servo at 50 Hz
 * takes min = 0; max = 180; duty_min = 5; duty_max = 10 (1 to 2 ms).
 *
 * The channel (Documentation/ABI/testing/sysfs-class-pwm of the kernel):
 * <root>/<chip>/export creates <chip>/pwm<channel>/ with period and
 * duty_cycle (nanoseconds), enable and polarity. The kernel refuses any
 * write that would leave duty_cycle above period, and polarity while
 * enabled; so a value is applied as: the new duty first when the old one
 * is above the new period, else the period first; then the duty; enable
 * last, once both are right. Every value written is read back; a
 * difference fails the command. Writes to sysfs complete at once: nothing
 * here waits, except for the channel after an export, whose files udev may
 * hand to the gpio group only a moment later (Raspberry Pi OS does): until
 * they are writable a command waits in timer(), at most 5 s.
 *
 * initial and safe (the router's) work as for any number actuator; the
 * channel stays exported and as it was left when sensorgate stops (set
 * `safe` to have it go somewhere). <root> (default /sys/class/pwm) is a
 * setting so that tests can point the driver at a directory tree.
 *
 * Keys of its own: chip (default "pwmchip0"; a number N means pwmchipN),
 * channel (required), frequency (Hz, required), duty_min, duty_max (0..100),
 * polarity ("normal" or "inversed"; unset: as it is), root. Type number only.
 *
 * Ownership: struct pwm_opts is made by pwm_parse_options() and owned by the
 * config; struct pwm_state lives in a->state; no descriptor is kept open.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actuator.h"

#define PWM_DEFAULT_ROOT   "/sys/class/pwm"
#define PWM_DEFAULT_CHIP   "pwmchip0"
#define PWM_READY_WAIT_US  (5 * 1000000ULL) /* udev's permissions after an export */
#define PWM_READY_POLL_US  (20 * 1000ULL)

static const char *const polarity_names[] = {"normal", "inversed", NULL};

static const char *const pwm_option_keys[] = {
	"chip", "channel", "frequency", "duty_min", "duty_max", "polarity", "root", NULL,
};

struct pwm_opts {
	char *root;
	char chip[40];
	int channel;
	double frequency;
	uint64_t period_ns;
	double min, max;          /* the actuator's range of commands */
	double duty_min, duty_max;
	int polarity;             /* -1: as it is */
};

static void pwm_free_options(void *opts)
{
	struct pwm_opts *o = opts;

	if (!o)
		return;
	free(o->root);
	free(o);
}

/* The actuator's own min or max (common keys, checked by config.c already). */
static double common_number(const config_setting_t *g, const char *key)
{
	double v = NAN;

	sg_opt_double(g, key, -INFINITY, INFINITY, &v, NULL);
	return v;
}

static int pwm_parse_options(const config_setting_t *g, const struct sg_act_common *common, void **ret_opts,
                             struct sg_opt_error *err)
{
	struct pwm_opts *o = calloc(1, sizeof(*o));
	char *chip = NULL;
	int r;

	if (!o)
		return -ENOMEM;
	o->root = strdup(PWM_DEFAULT_ROOT);
	if (!o->root) {
		r = -ENOMEM;
		goto err;
	}
	snprintf(o->chip, sizeof(o->chip), "%s", PWM_DEFAULT_CHIP);
	o->duty_max = 100;
	o->polarity = -1;
	if ((r = sg_opt_string_dup(g, "root", &o->root, err)) < 0 ||
	    (r = sg_opt_string_dup(g, "chip", &chip, err)) < 0 ||
	    (r = sg_opt_require(g, "channel", err, "actuator \"%.80s\"", common->name)) < 0 ||
	    (r = sg_opt_int(g, "channel", 0, 1023, &o->channel, err)) < 0 ||
	    (r = sg_opt_require(g, "frequency", err, "actuator \"%.80s\"", common->name)) < 0 ||
	    (r = sg_opt_double(g, "frequency", 0.01, 1e8, &o->frequency, err)) < 0 ||
	    (r = sg_opt_double(g, "duty_min", 0, 100, &o->duty_min, err)) < 0 ||
	    (r = sg_opt_double(g, "duty_max", 0, 100, &o->duty_max, err)) < 0 ||
	    (r = sg_opt_enum(g, "polarity", polarity_names, &o->polarity, err)) < 0)
		goto err;
	if (chip) {
		bool digits = *chip && strspn(chip, "0123456789") == strlen(chip);

		if (!*chip || strchr(chip, '/') || strlen(chip) + (digits ? 7 : 0) >= sizeof(o->chip)) {
			r = sg_opt_fail(err, config_setting_get_member(g, "chip"),
			                "actuator \"%.80s\": \"chip\" must name a PWM chip (\"pwmchip0\", or 0)", common->name);
			goto err;
		}
		snprintf(o->chip, sizeof(o->chip), "%s%s", digits ? "pwmchip" : "", chip);
	}
	if (!*o->root || o->root[0] != '/') {
		r = sg_opt_fail(err, config_setting_get_member(g, "root"), "actuator \"%.80s\": \"root\" must be an "
		                "absolute path (default " PWM_DEFAULT_ROOT ")", common->name);
		goto err;
	}
	if (o->duty_min == o->duty_max) {
		r = sg_opt_fail(err, config_setting_get_member(g, "duty_max"),
		                "actuator \"%.80s\": \"duty_min\" and \"duty_max\" must differ", common->name);
		goto err;
	}
	o->period_ns = (uint64_t)llround(1e9 / o->frequency);
	if (o->period_ns < 1) {
		r = sg_opt_fail(err, config_setting_get_member(g, "frequency"), "\"frequency\" is too high");
		goto err;
	}
	o->min = common_number(g, "min");
	o->max = common_number(g, "max");
	free(chip);
	*ret_opts = o;
	return 0;

err:
	free(chip);
	pwm_free_options(o);
	return r;
}

static void pwm_describe(const void *opts, char *buf, size_t len)
{
	const struct pwm_opts *o = opts;

	snprintf(buf, len, "pwm %s/%s channel %d, %g Hz (period %llu ns), duty %g..%g %% for %g..%g%s%s", o->root,
	         o->chip, o->channel, o->frequency, (unsigned long long)o->period_ns, o->duty_min, o->duty_max,
	         o->min, o->max, o->polarity >= 0 ? ", polarity " : "",
	         o->polarity >= 0 ? polarity_names[o->polarity] : "");
}

static void pwm_where(const void *opts, char *buf, size_t len)
{
	const struct pwm_opts *o = opts;

	snprintf(buf, len, "%s channel %d", o->chip, o->channel);
}

/* ---- the channel in sysfs -------------------------------------------------------------------- */

struct pwm_state {
	char dir[PATH_MAX];       /* <root>/<chip>/pwm<channel> */
	bool ready;               /* its files are there and writable, and were read */
	uint64_t ready_deadline;  /* 0: not waiting yet */
	uint64_t period, duty;    /* as the channel has them */
	bool enabled;
	bool pending;             /* a set() waiting for the channel */
	uint64_t pending_duty;
};

static int write_file(const char *path, const char *text)
{
	size_t n = strlen(text);
	ssize_t w;
	int fd, r = 0;

	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	w = write(fd, text, n);
	if (w < 0)
		r = -errno;
	else if ((size_t)w != n)
		r = -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

static int attr_path(const struct pwm_state *st, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", st->dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int write_attr(const struct pwm_state *st, const char *name, const char *text)
{
	char path[PATH_MAX + 16];
	int r = attr_path(st, name, path, sizeof(path));

	return r < 0 ? r : write_file(path, text);
}

static int write_u64(const struct pwm_state *st, const char *name, uint64_t v)
{
	char text[32];

	snprintf(text, sizeof(text), "%llu\n", (unsigned long long)v);
	return write_attr(st, name, text);
}

/* The first line of PATH without its newline. 0 or -errno. */
static int read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int read_u64(const char *path, uint64_t *ret)
{
	char buf[32], *end;
	int r = read_file(path, buf, sizeof(buf));

	if (r < 0)
		return r;
	errno = 0;
	*ret = strtoull(buf, &end, 10);
	return errno || end == buf ? -EIO : 0;
}

static int read_attr(const struct pwm_state *st, const char *name, uint64_t *ret)
{
	char path[PATH_MAX + 16];
	int r = attr_path(st, name, path, sizeof(path));

	return r < 0 ? r : read_u64(path, ret);
}

/* The channel's files are there and we may write them (udev may not have handed them over yet). */
static bool channel_writable(const struct pwm_state *st)
{
	static const char *const names[] = {"period", "duty_cycle", "enable"};
	char path[PATH_MAX + 16];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (attr_path(st, names[i], path, sizeof(path)) < 0 || access(path, W_OK) < 0)
			return false;
	return true;
}

/* Read what the channel has; set the polarity when asked (only while disabled, the kernel's rule). */
static int channel_take(struct sg_act *a)
{
	const struct pwm_opts *o = a->params->opts;
	struct pwm_state *st = a->state;
	uint64_t en;
	int r;

	if ((r = read_attr(st, "period", &st->period)) < 0 || (r = read_attr(st, "duty_cycle", &st->duty)) < 0 ||
	    (r = read_attr(st, "enable", &en)) < 0)
		return r;
	st->enabled = en != 0;
	if (o->polarity >= 0) {
		char path[PATH_MAX + 16], now[16] = "";

		if ((r = attr_path(st, "polarity", path, sizeof(path))) < 0)
			return r;
		read_file(path, now, sizeof(now));
		if (strcmp(now, polarity_names[o->polarity]) != 0) {
			if (st->enabled && (r = write_attr(st, "enable", "0\n")) < 0)
				return r;
			st->enabled = false;
			if ((r = write_attr(st, "polarity", polarity_names[o->polarity])) < 0)
				return r;
		}
	}
	st->ready = true;
	return 0;
}

/* Duty cycle in ns for a commanded NUMBER. */
static uint64_t duty_for(const struct pwm_opts *o, double number)
{
	double f = o->max > o->min ? (number - o->min) / (o->max - o->min) : 0, pct, d;

	if (!(f > 0))
		f = 0;
	if (f > 1)
		f = 1;
	pct = o->duty_min + f * (o->duty_max - o->duty_min);
	d = round((double)o->period_ns * pct / 100.0);
	return d > (double)o->period_ns ? o->period_ns : (uint64_t)d;
}

/*
 * Period and DUTY in an order the kernel accepts (duty never above the
 * period at any moment), enable last; then read back. 0 or -errno.
 */
static int channel_apply(struct sg_act *a, uint64_t duty)
{
	const struct pwm_opts *o = a->params->opts;
	struct pwm_state *st = a->state;
	uint64_t period = o->period_ns, got;
	int r;

	if (st->period != period) {
		if (st->duty > period) { /* the old duty would be above the new period: the duty goes first */
			if ((r = write_u64(st, "duty_cycle", duty)) < 0)
				return r;
			st->duty = duty;
		}
		if ((r = write_u64(st, "period", period)) < 0)
			return r;
		st->period = period;
	}
	if (st->duty != duty) {
		if ((r = write_u64(st, "duty_cycle", duty)) < 0)
			return r;
		st->duty = duty;
	}
	if (!st->enabled) {
		if ((r = write_attr(st, "enable", "1\n")) < 0)
			return r;
		st->enabled = true;
	}
	/* Confirm: a channel another program moved, or a driver that rounded the values, shows here. */
	if ((r = read_attr(st, "period", &got)) < 0)
		return r;
	if (got != period)
		return -EIO;
	if ((r = read_attr(st, "duty_cycle", &got)) < 0)
		return r;
	if (got != duty)
		return -EIO;
	if ((r = read_attr(st, "enable", &got)) < 0)
		return r;
	return got == 1 ? 0 : -EIO;
}

static int pwm_open(struct sg_act *a)
{
	const struct pwm_opts *o = a->params->opts;
	struct pwm_state *st = a->state;
	char chipdir[PATH_MAX], path[PATH_MAX + 16], num[16];
	uint64_t npwm;
	struct stat sb;
	int n, r;

	a->fd = -1;
	a->events = 0;
	a->wake_us = UINT64_MAX;
	n = snprintf(chipdir, sizeof(chipdir), "%s/%s", o->root, o->chip);
	if (n < 0 || (size_t)n >= sizeof(chipdir))
		return -ENAMETOOLONG;
	if (stat(chipdir, &sb) < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/npwm", chipdir);
	if ((r = read_u64(path, &npwm)) < 0)
		return r;
	if ((uint64_t)o->channel >= npwm)
		return -EINVAL;
	n = snprintf(st->dir, sizeof(st->dir), "%s/pwm%d", chipdir, o->channel);
	if (n < 0 || (size_t)n >= sizeof(st->dir))
		return -ENAMETOOLONG;
	if (stat(st->dir, &sb) < 0) {
		if (errno != ENOENT)
			return -errno;
		snprintf(path, sizeof(path), "%s/export", chipdir);
		snprintf(num, sizeof(num), "%d\n", o->channel);
		if ((r = write_file(path, num)) < 0)
			return r; /* EBUSY: a kernel driver holds the channel */
	}
	if (channel_writable(st))
		return channel_take(a);
	a->wake_us = 0; /* timer() waits for the channel's files */
	return 0;
}

static void pwm_close(struct sg_act *a)
{
	struct pwm_state *st = a->state;

	/* Nothing is held open; the channel stays exported and as it is. */
	st->ready = false;
	st->pending = false;
}

static int pwm_set(struct sg_act *a, const struct sg_act_value *v, uint64_t now_us)
{
	const struct pwm_opts *o = a->params->opts;
	struct pwm_state *st = a->state;
	uint64_t duty = duty_for(o, v->number);

	(void)now_us;
	if (!st->ready) { /* done by timer() once the channel is writable */
		st->pending = true;
		st->pending_duty = duty;
		return 1;
	}
	return channel_apply(a, duty);
}

static int pwm_timer(struct sg_act *a, uint64_t now_us)
{
	struct pwm_state *st = a->state;
	int r;

	a->wake_us = UINT64_MAX;
	if (st->ready)
		return 0;
	if (!st->ready_deadline)
		st->ready_deadline = now_us + PWM_READY_WAIT_US;
	if (!channel_writable(st)) {
		if (now_us >= st->ready_deadline)
			return -ETIMEDOUT; /* the router reopens with backoff; a waiting command fails */
		a->wake_us = now_us + PWM_READY_POLL_US;
		return 0;
	}
	r = channel_take(a);
	if (r < 0)
		return r;
	if (st->pending) {
		st->pending = false;
		r = channel_apply(a, st->pending_duty);
		sg_act_done(a, r, r < 0 ? "the PWM channel refused the values" : NULL);
	}
	return 0;
}

static int pwm_set_sync(struct sg_act *a, const struct sg_act_value *v, int timeout_ms)
{
	const struct pwm_opts *o = a->params->opts;
	struct pwm_state *st = a->state;
	int r;

	(void)timeout_ms;
	st->pending = false;
	if (!st->ready) {
		if (!channel_writable(st))
			return -EAGAIN;
		if ((r = channel_take(a)) < 0)
			return r;
	}
	return channel_apply(a, duty_for(o, v->number));
}

const struct sg_act_driver sg_act_pwm = {
	.name = "pwm",
	.description = "a PWM channel through sysfs (fan, dimmer, servo): a number sets the duty cycle",
	.kinds = SG_ACT_KIND_BIT(SG_ACT_NUMBER),
	.option_keys = pwm_option_keys,
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
	.timer = pwm_timer,
	.set_sync = pwm_set_sync,
};
