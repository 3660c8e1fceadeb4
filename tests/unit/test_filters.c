/* SPDX-License-Identifier: MIT */
/*
 * test_filters.c — the filter chains of gateway/filters.c, and how the mapper
 * publishes what they send.
 *
 * Every filter against vectors computed by hand (the arithmetic is in the
 * comments), with explicit monotonic times; then properties over random
 * inputs from a fixed seed (a median outputs a value of its window, an
 * exponential moving average stays within its inputs, clamp within its
 * bounds, delta never passes two values closer than its threshold); then
 * the mapper with a config file's chain: a timeout sends the last value, a
 * number, or "None" / JSON null, and the existing transforms still apply.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/config.h"
#include "gateway/filters.h"
#include "gateway/mapper.h"
#include "cfg_helper.h"

#define S(x)   ((uint64_t)((x) * 1000000.0)) /* seconds -> µs */
#define NONE_V (-12345.678)                  /* "no output" in the vectors */

static struct sg_filter_spec median(int window, int every, int first)
{
	return (struct sg_filter_spec){.kind = SG_FILTER_MEDIAN, .u.median = {window, every, first}};
}

static struct sg_filter_spec ema(double alpha, double tau, int every, int first)
{
	return (struct sg_filter_spec){.kind = SG_FILTER_EMA, .u.ema = {alpha, tau, every, first}};
}

static struct sg_filter_spec clamp(double lo, double hi, bool drop)
{
	return (struct sg_filter_spec){.kind = SG_FILTER_CLAMP, .u.clamp = {lo, hi, drop}};
}

static struct sg_filter_spec delta(double min, bool min_pct, double max, bool max_pct)
{
	return (struct sg_filter_spec){.kind = SG_FILTER_DELTA, .u.delta = {min, max, min_pct, max_pct}};
}

static struct sg_filter_spec timeout(double s, enum sg_timeout_value what, double value)
{
	return (struct sg_filter_spec){.kind = SG_FILTER_TIMEOUT, .u.timeout = {s, what, value}};
}

struct step {
	double t;   /* seconds */
	double in;
	double out; /* NONE_V: nothing comes out */
};

/* Push STEPS through a chain of SPECS; each output must equal the expected one within EPS. */
static void run_steps(const char *legend, const struct sg_filter_spec *specs, size_t n, const struct step *steps,
                      size_t n_steps, double eps)
{
	struct sg_filter_chain *c = filter_chain_new(specs, n);

	assert_non_null(c);
	for (size_t i = 0; i < n_steps; i++) {
		double out = NONE_V;
		enum sg_filter_result r = filter_chain_push(c, steps[i].in, S(steps[i].t), &out);

		if (steps[i].out == NONE_V) {
			if (r != SG_FILTER_NONE)
				fail_msg("%s, step %zu (%g): output %g, expected none", legend, i, steps[i].in, out);
		} else if (r != SG_FILTER_VALUE) {
			fail_msg("%s, step %zu (%g): no output, expected %g", legend, i, steps[i].in, steps[i].out);
		} else if (fabs(out - steps[i].out) > eps) {
			fail_msg("%s, step %zu (%g): output %.10g, expected %.10g", legend, i, steps[i].in, out,
			         steps[i].out);
		}
	}
	filter_chain_free(c);
}

#define RUN(legend, specs, steps, eps) \
	run_steps(legend, specs, sizeof(specs) / sizeof(specs[0]), steps, sizeof(steps) / sizeof(steps[0]), eps)

/* ---- one filter at a time, hand-computed ------------------------------------------------------ */

static void test_median(void **state)
{
	/* window 3, every value: medians of [1], [1 5] (mean of the middle two: 3), [1 5 2], [5 2 8], [2 8 3] */
	const struct sg_filter_spec every[] = {median(3, 1, 1)};
	const struct step s1[] = {{0, 1, 1}, {1, 5, 3}, {2, 2, 2}, {3, 8, 5}, {4, 3, 3}};
	/* ESPHome's defaults (5, 5, 1): the first value at once, then every fifth: median of 2..6 = 4 */
	const struct sg_filter_spec dflt[] = {median(5, 5, 1)};
	const struct step s2[] = {{0, 1, 1},      {1, 2, NONE_V}, {2, 3, NONE_V}, {3, 4, NONE_V}, {4, 5, NONE_V},
	                          {5, 6, 4},      {6, 7, NONE_V}, {7, 8, NONE_V}, {8, 9, NONE_V}, {9, 10, NONE_V},
	                          {10, 100, 9}}; /* [7 8 9 10 100] */
	/* an outlier inside an odd window never comes out */
	const struct sg_filter_spec w5[] = {median(5, 1, 1)};
	const struct step s3[] = {{0, 20, 20}, {1, 21, 20.5}, {2, 85, 21}, {3, 20, 20.5}, {4, 22, 21}};
	(void)state;
	RUN("median 3/1/1", every, s1, 0);
	RUN("median 5/5/1", dflt, s2, 0);
	RUN("median 5/1/1, outlier", w5, s3, 0);
}

static void test_ema(void **state)
{
	/* alpha 0.5: 10; 0.5*20 + 0.5*10 = 15; 0.5*20 + 0.5*15 = 17.5; 0.5*0 + 0.5*17.5 = 8.75 */
	const struct sg_filter_spec a[] = {ema(0.5, 0, 1, 1)};
	const struct step s1[] = {{0, 10, 10}, {1, 20, 15}, {2, 20, 17.5}, {3, 0, 8.75}};
	/* send_every 3, first at 1: out at inputs 1 and 4 (10, then 15, 17.5 -> 8.75 as above) */
	const struct sg_filter_spec b[] = {ema(0.5, 0, 3, 1)};
	const struct step s2[] = {{0, 10, 10}, {1, 20, NONE_V}, {2, 20, NONE_V}, {3, 0, 8.75}};
	/*
	 * time constant 10 s: alpha = 1 - exp(-dt/10). 0 at t=0; 10 at t=10: alpha = 1 - e^-1 =
	 * 0.6321205588 -> 6.321205588; 10 at t=20: 6.321205588 + 0.6321205588 * 3.678794412 =
	 * 8.646647168; 0 at t=20 (dt 0, alpha 0): unchanged; 0 at t=25: alpha = 1 - e^-0.5 =
	 * 0.3934693403 -> 8.646647168 * e^-0.5 = 5.244456611.
	 */
	const struct sg_filter_spec c[] = {ema(0, 10, 1, 1)};
	const struct step s3[] = {
		{0, 0, 0}, {10, 10, 6.321205588}, {20, 10, 8.646647168}, {20, 0, 8.646647168}, {25, 0, 5.244456611},
	};
	(void)state;
	RUN("ema alpha 0.5", a, s1, 1e-12);
	RUN("ema send_every 3", b, s2, 1e-12);
	RUN("ema time constant", c, s3, 1e-8);
}

static void test_clamp(void **state)
{
	const struct sg_filter_spec limit[] = {clamp(0, 100, false)};
	const struct step s1[] = {{0, -5, 0}, {1, 50, 50}, {2, 150, 100}, {3, 100, 100}, {4, 0, 0}};
	const struct sg_filter_spec drop[] = {clamp(0, 100, true)};
	const struct step s2[] = {{0, -5, NONE_V}, {1, 50, 50}, {2, 150, NONE_V}, {3, 100, 100}, {4, 0, 0}};
	const struct sg_filter_spec upper[] = {clamp(-HUGE_VAL, 10, false)};
	const struct step s3[] = {{0, -1e9, -1e9}, {1, 11, 10}};
	(void)state;
	RUN("clamp limit", limit, s1, 0);
	RUN("clamp drop", drop, s2, 0);
	RUN("clamp max only", upper, s3, 0);
}

static void test_filter_out(void **state)
{
	double values[] = {85.0, -127.0};
	const struct sg_filter_spec exact[] = {
		{.kind = SG_FILTER_FILTER_OUT, .u.filter_out = {values, 2, -1}},
	};
	const struct step s1[] = {{0, 85, NONE_V}, {1, 85.0001, 85.0001}, {2, -127, NONE_V}, {3, 21.5, 21.5}};
	/* with the reading's round = 1: 85.04 reads as 85.0, dropped; 85.06 reads as 85.1 */
	const struct sg_filter_spec r1[] = {
		{.kind = SG_FILTER_FILTER_OUT, .u.filter_out = {values, 2, 1}},
	};
	const struct step s2[] = {{0, 85.04, NONE_V}, {1, 85.06, 85.06}, {2, -126.96, NONE_V}};
	(void)state;
	RUN("filter_out exact", exact, s1, 0);
	RUN("filter_out round 1", r1, s2, 0);
}

static void test_calibrate_linear(void **state)
{
	double x2[] = {0, 10}, y2[] = {1, 12.1};
	/* three points: mean x 1, mean y 4/3; Sxx = 2, Sxy = (-1)(-4/3) + 0 + (1)(5/3) = 3: slope 1.5, b = -1/6 */
	double x3[] = {0, 1, 2}, y3[] = {0, 1, 3};
	double same[] = {1, 1};
	double slope = 0, b = 0;
	struct sg_filter_spec f = {.kind = SG_FILTER_CALIBRATE_LINEAR};
	(void)state;

	assert_int_equal(filter_fit_linear(x2, y2, 2, &slope, &b), 0);
	assert_float_equal(slope, 1.11, 1e-12);
	assert_float_equal(b, 1.0, 1e-12);
	assert_int_equal(filter_fit_linear(x3, y3, 3, &slope, &b), 0);
	assert_float_equal(slope, 1.5, 1e-12);
	assert_float_equal(b, -1.0 / 6.0, 1e-12);
	assert_int_equal(filter_fit_linear(same, y2, 2, &slope, &b), -EINVAL);
	assert_int_equal(filter_fit_linear(x2, y2, 1, &slope, &b), -EINVAL);

	f.u.linear.slope = 1.5;
	f.u.linear.intercept = -1.0 / 6.0;
	{
		const struct sg_filter_spec c[] = {f};
		const struct step s[] = {{0, 0, -1.0 / 6.0}, {1, 2, 3 - 1.0 / 6.0}, {2, -4, -6 - 1.0 / 6.0}};
		RUN("calibrate_linear", c, s, 1e-12);
	}
}

static void test_calibrate_polynomial(void **state)
{
	double coef[] = {1, 2, 3}; /* 1 + 2x + 3x² */
	const struct sg_filter_spec c[] = {{.kind = SG_FILTER_CALIBRATE_POLYNOMIAL, .u.poly = {coef, 3}}};
	const struct step s[] = {{0, 2, 17}, {1, -1, 2}, {2, 0, 1}, {3, 0.5, 2.75}};
	(void)state;
	RUN("calibrate_polynomial", c, s, 1e-12);
}

static void test_delta(void **state)
{
	/* absolute 1: a change of exactly 1 passes (ESPHome's code: diff >= delta), then from 11 */
	const struct sg_filter_spec abs1[] = {delta(1, false, HUGE_VAL, false)};
	const struct step s1[] = {{0, 10, 10}, {1, 10.5, NONE_V}, {2, 11, 11}, {3, 11.01, NONE_V},
	                          {4, 10.5, NONE_V}, {5, 9, 9}};
	/* 10 %: of the last value passed (100: 10, then 110: 11) */
	const struct sg_filter_spec pct[] = {delta(10, true, HUGE_VAL, false)};
	const struct step s2[] = {{0, 100, 100}, {1, 105, NONE_V}, {2, 110, 110}, {3, 120, NONE_V}, {4, 121, 121}};
	/* max 5: a jump of more than 5 from the last value passed is refused; with min 0 an equal value too */
	const struct sg_filter_spec max5[] = {delta(0, false, 5, false)};
	const struct step s3[] = {{0, 0, 0}, {1, 3, 3}, {2, 20, NONE_V}, {3, 7, 7}, {4, 7, NONE_V}};
	/* 0.1 from 20.0 to 20.1 to 20.2: each a change of 0.1, whatever the doubles say (20.2 - 20.1 < 0.1) */
	const struct sg_filter_spec tenth[] = {delta(0.1, false, HUGE_VAL, false)};
	const struct step s4[] = {{0, 20.0, 20.0}, {1, 20.1, 20.1}, {2, 20.2, 20.2}, {3, 20.25, NONE_V}};
	(void)state;
	RUN("delta 1", abs1, s1, 0);
	RUN("delta 10%", pct, s2, 0);
	RUN("delta max 5", max5, s3, 0);
	RUN("delta 0.1", tenth, s4, 0);
}

static void test_timeout(void **state)
{
	const struct sg_filter_spec last[] = {timeout(10, SG_TIMEOUT_LAST, 0), clamp(0, 3, false)};
	const struct sg_filter_spec unav[] = {timeout(10, SG_TIMEOUT_UNAVAILABLE, 0), delta(1, false, HUGE_VAL, false)};
	const struct sg_filter_spec num[] = {timeout(10, SG_TIMEOUT_NUMBER, -1)};
	struct sg_filter_chain *c;
	double v = 0;
	(void)state;

	/* "last": 5 at t=0 passes (clamped to 3); nothing before t=10; at 10 the last input goes through the clamp */
	c = filter_chain_new(last, 2);
	assert_non_null(c);
	assert_int_equal(filter_chain_deadline(c), UINT64_MAX);
	assert_int_equal(filter_chain_push(c, 5, S(0), &v), SG_FILTER_VALUE);
	assert_float_equal(v, 3, 0);
	assert_int_equal(filter_chain_deadline(c), S(10));
	assert_int_equal(filter_chain_tick(c, S(9.999), &v), SG_FILTER_NONE);
	v = 0;
	assert_int_equal(filter_chain_tick(c, S(10), &v), SG_FILTER_VALUE);
	assert_float_equal(v, 3, 0);
	/* once: nothing more until the next input */
	assert_int_equal(filter_chain_tick(c, S(100), &v), SG_FILTER_NONE);
	assert_int_equal(filter_chain_deadline(c), UINT64_MAX);
	assert_int_equal(filter_chain_push(c, 1, S(12), &v), SG_FILTER_VALUE);
	assert_int_equal(filter_chain_deadline(c), S(22));
	/* an input before the deadline moves it */
	assert_int_equal(filter_chain_push(c, 2, S(20), &v), SG_FILTER_VALUE);
	assert_int_equal(filter_chain_tick(c, S(22), &v), SG_FILTER_NONE);
	assert_int_equal(filter_chain_tick(c, S(30), &v), SG_FILTER_VALUE);
	assert_float_equal(v, 2, 0);
	filter_chain_free(c);

	/* "unavailable": and the delta after it forgets, so the same value is news again */
	c = filter_chain_new(unav, 2);
	assert_non_null(c);
	assert_int_equal(filter_chain_push(c, 5, S(0), &v), SG_FILTER_VALUE);
	assert_int_equal(filter_chain_push(c, 5.5, S(1), &v), SG_FILTER_NONE); /* delta 1 */
	assert_int_equal(filter_chain_tick(c, S(11), &v), SG_FILTER_UNAVAILABLE);
	assert_int_equal(filter_chain_push(c, 5.5, S(12), &v), SG_FILTER_VALUE);
	assert_float_equal(v, 5.5, 0);
	filter_chain_free(c);

	/* a number */
	c = filter_chain_new(num, 1);
	assert_non_null(c);
	assert_int_equal(filter_chain_tick(c, S(50), &v), SG_FILTER_NONE); /* nothing before the first value */
	assert_int_equal(filter_chain_push(c, 7, S(50), &v), SG_FILTER_VALUE);
	assert_int_equal(filter_chain_tick(c, S(60), &v), SG_FILTER_VALUE);
	assert_float_equal(v, -1, 0);
	filter_chain_free(c);
}

static void test_or(void **state)
{
	struct sg_filter_spec branches[] = {delta(5, false, HUGE_VAL, false), clamp(-HUGE_VAL, 10, true)};
	struct sg_filter_spec tb[] = {delta(100, false, HUGE_VAL, false), timeout(5, SG_TIMEOUT_LAST, 0)};
	const struct sg_filter_spec any[] = {{.kind = SG_FILTER_OR, .u.any = {branches, 2}}};
	/* 0: both pass, one output; 3: only clamp's; 20: delta's (20 - 0 > 5), clamp drops; 16: neither (4 from 20) */
	const struct step s[] = {{0, 0, 0}, {1, 3, 3}, {2, 20, 20}, {3, 16, NONE_V}};
	const struct sg_filter_spec heartbeat[] = {{.kind = SG_FILTER_OR, .u.any = {tb, 2}}, median(1, 1, 1)};
	struct sg_filter_chain *c;
	double v = 0;
	(void)state;

	RUN("or", any, s, 0);
	/* both branches output, differently: the first branch's value goes on */
	{
		double twice[] = {0, 2};
		struct sg_filter_spec br[] = {{.kind = SG_FILTER_CALIBRATE_POLYNOMIAL, .u.poly = {twice, 2}},
		                              clamp(-HUGE_VAL, 10, true)};
		const struct sg_filter_spec first[] = {{.kind = SG_FILTER_OR, .u.any = {br, 2}}};
		const struct step s2[] = {{0, 3, 6}, {1, 12, 24}};
		RUN("or, first branch", first, s2, 0);
	}
	/* a timeout in a branch fires into the rest of the chain */
	c = filter_chain_new(heartbeat, 2);
	assert_non_null(c);
	assert_int_equal(filter_chain_push(c, 1, S(0), &v), SG_FILTER_VALUE);
	assert_int_equal(filter_chain_deadline(c), S(5));
	assert_int_equal(filter_chain_tick(c, S(5), &v), SG_FILTER_VALUE);
	assert_float_equal(v, 1, 0);
	filter_chain_free(c);
}

static void test_chain_order(void **state)
{
	/* filter_out 85, then median 3, then calibrate 2x + 1: the 85 never reaches the window */
	double out85[] = {85};
	const struct sg_filter_spec c[] = {
		{.kind = SG_FILTER_FILTER_OUT, .u.filter_out = {out85, 1, -1}},
		median(3, 1, 1),
		{.kind = SG_FILTER_CALIBRATE_LINEAR, .u.linear = {2, 1, 2}},
	};
	const struct step s[] = {{0, 20, 41}, {1, 85, NONE_V}, {2, 22, 43}, {3, 21, 43}};
	char text[512];
	(void)state;

	RUN("chain", c, s, 0);
	filter_specs_describe(c, 3, text, sizeof(text));
	assert_string_equal(text, "filter_out(85) -> median(window 3, every 1, first at 1) -> "
	                          "calibrate_linear(2 x +1, from 2 points)");
	/* a buffer too small is cut, never overrun */
	filter_specs_describe(c, 3, text, 12);
	assert_int_equal(strlen(text), 11);
}

/* ---- properties over random inputs, fixed seed ------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15u; /* fixed: a failure replays */

static double rnd(void) /* xorshift64*, uniform in [0, 1) */
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (double)((rng * 2685821657736338717u) >> 11) / 9007199254740992.0;
}

/* Values with duplicates, spikes and wide ranges: what sensors do. */
static double rnd_value(void)
{
	double u = rnd();

	if (u < 0.1)
		return 85;                       /* a repeated value */
	if (u < 0.15)
		return (rnd() - 0.5) * 1e9;      /* a spike */
	return (rnd() - 0.5) * 200;
}

#define ROUNDS 200
#define INPUTS 300

static void test_property_median(void **state)
{
	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		int w = 1 + (int)(rnd() * 9), every = 1 + (int)(rnd() * 3);
		const struct sg_filter_spec sp[] = {median(w, every, 1)};
		struct sg_filter_chain *c = filter_chain_new(sp, 1);
		double in[INPUTS];

		assert_non_null(c);
		for (int i = 0; i < INPUTS; i++) {
			double out;
			int from = i + 1 - w < 0 ? 0 : i + 1 - w;
			double lo = HUGE_VAL, hi = -HUGE_VAL;
			bool member = false;

			in[i] = rnd_value();
			if (filter_chain_push(c, in[i], S(i), &out) != SG_FILTER_VALUE)
				continue;
			for (int k = from; k <= i; k++) {
				member |= in[k] == out;
				lo = fmin(lo, in[k]);
				hi = fmax(hi, in[k]);
			}
			/* an odd count: one of its window; an even one: between the two middle ones, so within */
			if (((i - from + 1) % 2 && !member) || out < lo || out > hi)
				fail_msg("median window %d, input %d: %.17g is not in its window", w, i, out);
		}
		filter_chain_free(c);
	}
}

static void test_property_ema(void **state)
{
	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		double alpha = 1e-3 + rnd() * (1 - 1e-3), tau = rnd() < 0.5 ? 0 : 0.1 + rnd() * 100;
		const struct sg_filter_spec sp[] = {ema(alpha, tau, 1, 1)};
		struct sg_filter_chain *c = filter_chain_new(sp, 1);
		double lo = HUGE_VAL, hi = -HUGE_VAL, t = 0;

		assert_non_null(c);
		for (int i = 0; i < INPUTS; i++) {
			double v = rnd_value(), out;

			t += rnd() * 10;
			lo = fmin(lo, v);
			hi = fmax(hi, v);
			assert_int_equal(filter_chain_push(c, v, S(t), &out), SG_FILTER_VALUE);
			if (out < lo || out > hi)
				fail_msg("ema alpha %g tau %g, input %d: %.17g outside [%.17g, %.17g]", alpha, tau, i, out, lo, hi);
		}
		filter_chain_free(c);
	}
}

static void test_property_clamp(void **state)
{
	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		double a = rnd_value(), b = rnd_value();
		bool drop = rnd() < 0.5;
		const struct sg_filter_spec sp[] = {clamp(fmin(a, b), fmax(a, b), drop)};
		struct sg_filter_chain *c = filter_chain_new(sp, 1);

		assert_non_null(c);
		for (int i = 0; i < INPUTS; i++) {
			double v = rnd_value(), out;
			enum sg_filter_result r = filter_chain_push(c, v, S(i), &out);

			if (!drop && r != SG_FILTER_VALUE)
				fail_msg("clamp limit dropped %g", v);
			if (r == SG_FILTER_VALUE && (out < fmin(a, b) || out > fmax(a, b)))
				fail_msg("clamp [%g, %g]: %.17g out of bounds", fmin(a, b), fmax(a, b), out);
			if (r == SG_FILTER_VALUE && drop && out != v)
				fail_msg("clamp drop changed %g into %g", v, out);
		}
		filter_chain_free(c);
	}
}

static void test_property_delta(void **state)
{
	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		bool pct = rnd() < 0.5;
		double min = pct ? rnd() * 50 : rnd() * 20;
		const struct sg_filter_spec sp[] = {delta(min, pct, HUGE_VAL, false)};
		struct sg_filter_chain *c = filter_chain_new(sp, 1);
		bool have = false;
		double last = 0;
		int passed = 0;

		assert_non_null(c);
		for (int i = 0; i < INPUTS; i++) {
			double v = rnd_value(), out;

			if (filter_chain_push(c, v, S(i), &out) != SG_FILTER_VALUE)
				continue;
			passed++;
			if (have && !(fabs(out - last) > 0 &&
			              fabs(out - last) >= (pct ? fabs(last) * min / 100 : min) -
			                                           4 * DBL_EPSILON * fmax(fabs(out), fabs(last))))
				fail_msg("delta %g%s passed %.17g after %.17g", min, pct ? "%" : "", out, last);
			last = out;
			have = true;
		}
		assert_true(passed >= 1); /* the first always passes */
		filter_chain_free(c);
	}
}

/* ---- the mapper, with chains from a config file ------------------------------------------------- */

static const char conf_text[] =
	"gateway: { id = \"t\"; base_topic = \"home\"; };\n"
	"devices = (\n"
	"  { name = \"a\"; driver = \"lines\"; port = \"@DIR@/tty\";\n"
	"    readings = (\n"
	"      { field = \"t\"; scale = 0.1; round = 1;\n"
	"        filters = ( { median = { window_size = 3; send_every = 1; }; },\n"
	"                    { timeout = { timeout = 10; value = \"last\"; }; } ); },\n"
	"      { field = \"h\"; payload = \"json\"; unit = \"%\";\n"
	"        filters = ( { clamp = { min_value = 0; max_value = 100; }; }, { timeout = 30; } ); },\n"
	"      { field = \"p\"; deadband = 1;\n"
	"        filters = ( { filter_out = 0; }, { timeout = { timeout = 5; value = -1; }; } ); },\n"
	"      { field = \"plain\"; scale = 2; offset = 1; round = 0; }\n"
	"    ); }\n"
	");\n";

static struct sg_reading num(const char *field, double v)
{
	return (struct sg_reading){.field = field, .kind = SG_VALUE_NUMBER, .number = v};
}

/* Map and return the payload ("" when nothing is published). */
static const char *map(struct sg_mapper *m, const char *field, double v, double t)
{
	static char buf[1024];
	struct sg_reading r = num(field, v);
	struct sg_message msg;
	int k = mapper_map(m, 0, &r, S(t), &msg);

	assert_true(k >= 0);
	snprintf(buf, sizeof(buf), "%s", k == 1 ? msg.payload : "");
	return buf;
}

/* The next message a timeout sends at T ("" for none), with its topic in *topic. */
static const char *tick(struct sg_mapper *m, double t, const char **topic)
{
	static char buf[1024];
	struct sg_message msg;
	int k = mapper_tick(m, S(t), &msg);

	assert_true(k >= 0);
	snprintf(buf, sizeof(buf), "%s", k == 1 ? msg.payload : "");
	if (topic)
		*topic = k == 1 ? msg.topic : NULL;
	return buf;
}

static void test_mapper_chains(void **state)
{
	struct sg_config *cfg = fixture_config(conf_text);
	struct sg_mapper *m;
	const char *topic;
	(void)state;

	if (!cfg)
		fail_msg("config: %s", fixture_error);
	assert_int_equal(cfg->devices[0].readings[0].n_filters, 2);
	m = mapper_new(cfg);
	assert_non_null(m);
	assert_int_equal(mapper_deadline(m), UINT64_MAX); /* nothing waits before a first value */

	/* t: scale 0.1 first, then the median of [21.5], [21.5 85], [21.5 85 22]; round = 1 last */
	assert_string_equal(map(m, "t", 215, 0), "21.5");
	assert_string_equal(map(m, "t", 850, 1), "53.3"); /* mean of 21.5 and 85 = 53.25, rounded half away */
	assert_string_equal(map(m, "t", 220, 2), "22.0"); /* median of 21.5 85 22, round = 1 */
	assert_int_equal(mapper_deadline(m), S(12));
	assert_string_equal(tick(m, 11.9, NULL), "");
	assert_string_equal(tick(m, 12, &topic), "22.0"); /* the timeout's last input (22), rounded */
	assert_string_equal(topic, "home/a/t");
	assert_string_equal(tick(m, 12, NULL), "");
	assert_int_equal(mapper_deadline(m), UINT64_MAX);
	/* what a timeout sends is rounded like any value: the median 22.17 is 22.2 */
	assert_string_equal(map(m, "t", 221.7, 13), "22.2");
	assert_string_equal(tick(m, 23, NULL), "22.2");

	/* h: JSON; the timeout says no value: null */
	assert_non_null(strstr(map(m, "h", 140, 20), "\"value\":100,"));
	assert_int_equal(mapper_deadline(m), S(50));
	assert_non_null(strstr(tick(m, 50, &topic), "{\"value\":null,\"unit\":\"%\""));
	assert_string_equal(topic, "home/a/h");

	/* p: filter_out 0; after 5 s a fixed -1, whatever the deadband says; then the next value is news */
	assert_string_equal(map(m, "p", 1000, 60), "1000");
	assert_string_equal(map(m, "p", 0, 61), "");
	assert_string_equal(map(m, "p", 1000.5, 62), ""); /* deadband 1 */
	assert_string_equal(tick(m, 67, NULL), "-1");
	assert_string_equal(map(m, "p", 1000, 68), "1000");

	/* a value a filter makes infinite is an error, not "no value" */
	{
		struct sg_reading r = num("h", 1e300);
		struct sg_message msg;
		struct sg_reading_cfg *h = &cfg->devices[0].readings[1];
		double big[] = {0, 0, 1}; /* x²: 1e600 */
		struct sg_filter_spec keep = h->filters[0];

		h->filters[0] = (struct sg_filter_spec){.kind = SG_FILTER_CALIBRATE_POLYNOMIAL, .u.poly = {big, 3}};
		mapper_free(m);
		m = mapper_new(cfg);
		assert_non_null(m);
		assert_int_equal(mapper_map(m, 0, &r, S(80), &msg), -ERANGE);
		h->filters[0] = keep;
	}

	/* a reading without filters: the transforms as before */
	assert_string_equal(map(m, "plain", 10.4, 70), "22");
	mapper_free(m);
	config_free(cfg);
}

/* The plain payload of "no value": Home Assistant's PAYLOAD_NONE. */
static void test_mapper_unavailable_plain(void **state)
{
	struct sg_config *cfg = fixture_config(
		"devices = ( { name = \"a\"; driver = \"lines\"; port = \"@DIR@/tty\";\n"
		"  readings = ( { field = \"t\"; throttle = 10; filters = ( { timeout = 1.5; } ); } ); } );\n");
	struct sg_mapper *m;
	(void)state;

	if (!cfg)
		fail_msg("config: %s", fixture_error);
	m = mapper_new(cfg);
	assert_non_null(m);
	assert_string_equal(map(m, "t", 3, 0), "3");
	assert_string_equal(tick(m, 1.4, NULL), "");
	assert_string_equal(tick(m, 1.5, NULL), "None");
	/* "no value" was the last word: the next reading goes out at once, throttle or not */
	assert_string_equal(map(m, "t", 3, 2), "3");
	assert_string_equal(map(m, "t", 4, 3), ""); /* throttled again */
	mapper_free(m);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_median),
		cmocka_unit_test(test_ema),
		cmocka_unit_test(test_clamp),
		cmocka_unit_test(test_filter_out),
		cmocka_unit_test(test_calibrate_linear),
		cmocka_unit_test(test_calibrate_polynomial),
		cmocka_unit_test(test_delta),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_or),
		cmocka_unit_test(test_chain_order),
		cmocka_unit_test(test_property_median),
		cmocka_unit_test(test_property_ema),
		cmocka_unit_test(test_property_clamp),
		cmocka_unit_test(test_property_delta),
		cmocka_unit_test(test_mapper_chains),
		cmocka_unit_test(test_mapper_unavailable_plain),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	fixture_cleanup();
	return r;
}
