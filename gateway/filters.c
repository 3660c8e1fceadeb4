/* SPDX-License-Identifier: MIT */
/*
 * filters.c — the filter chain of a reading (filters.h).
 *
 * Semantics follow ESPHome's sensor filters (esphome.io/components/sensor/,
 * "Sensor Filters", and the per-filter pages under
 * esphome.io/components/sensor/filter/; esphome/components/sensor/filter.cpp),
 * in our own words and code:
 *
 *  median   the median of the last `window` inputs (the mean of the two middle
 *           ones for an even count), output every `send_every` inputs, the
 *           first after `send_first_at`. Defaults 5, 5, 1 as ESPHome's.
 *  exponential_moving_average
 *           acc = alpha * x + (1 - alpha) * acc, the first input taken as is;
 *           output every `send_every` (default 15, first at 1). Our addition:
 *           `time_constant` instead of alpha, for irregular intervals:
 *           alpha = 1 - exp(-dt / time_constant), dt the time since the
 *           previous input (the explicit clock).
 *  clamp    limit to [min_value, max_value]; with ignore_out_of_range the
 *           value is dropped instead.
 *  filter_out
 *           drop the listed values. ESPHome compares them rounded to the
 *           sensor's accuracy_decimals; here to the reading's `round` when it
 *           has one, else exactly.
 *  calibrate_linear
 *           the least-squares line through `measured -> truth` pairs (ESPHome's
 *           default method, least_squares; its `exact` method is not offered).
 *  calibrate_polynomial
 *           c0 + c1 x + c2 x² ... from given coefficients (ESPHome fits them from
 *           datapoints and a degree; here they are given, e.g. from a
 *           certificate).
 *  timeout  after the first input, when `timeout` seconds pass without another,
 *           send once: "unavailable" (ESPHome's NaN), "last" (the last input
 *           again) or a number. A number or "last" goes through the rest of the
 *           chain; "unavailable" leaves it at once and makes the delta filters
 *           after it forget their last value, so the next reading is published.
 *  delta    pass a value only when it differs from the last value passed by at
 *           least min_value (absolute, or "N%" of the last value) and not more
 *           than max_value; the first value passes, an equal one never does.
 *           That is what ESPHome's DeltaFilter code does (diff > 0 and
 *           diff >= delta), where its page says "more than". A few ulps of the
 *           operands are allowed, so 20.1 -> 20.2 is a change of 0.1 whatever
 *           the doubles say.
 *  or       every branch sees every input; the first branch (in order) that
 *           outputs gives the output, at most one per input (ESPHome's OrFilter).
 *           A timeout inside a branch fires into the rest of the chain.
 *
 * State is allocated in filter_chain_new(); pushing a value allocates nothing.
 */
#include "filters.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stage {
	const struct sg_filter_spec *spec;
	double *win, *sorted;   /* median: ring of inputs, and scratch to sort */
	int fill, pos;
	int send_at;            /* median, ema: counts up to send_every */
	double acc;             /* ema */
	bool have;              /* ema: acc valid; delta: last valid; timeout: last valid */
	double last;            /* delta: last passed; timeout: last received */
	uint64_t last_us;       /* ema: time of the previous input */
	uint64_t deadline;      /* timeout: when it fires, UINT64_MAX when disarmed */
	struct sg_filter_chain **branches; /* or */
};

struct sg_filter_chain {
	size_t n;
	struct stage st[];
};

/* ---- specs ------------------------------------------------------------------------------------ */

static void spec_release(struct sg_filter_spec *s)
{
	switch (s->kind) {
	case SG_FILTER_FILTER_OUT:
		free(s->u.filter_out.values);
		break;
	case SG_FILTER_CALIBRATE_POLYNOMIAL:
		free(s->u.poly.coef);
		break;
	case SG_FILTER_OR:
		filter_specs_free(s->u.any.branches, s->u.any.n);
		break;
	default:
		break;
	}
}

void filter_specs_free(struct sg_filter_spec *specs, size_t n)
{
	if (!specs)
		return;
	for (size_t i = 0; i < n; i++)
		spec_release(&specs[i]);
	free(specs);
}

int filter_fit_linear(const double *x, const double *y, size_t n, double *ret_slope, double *ret_intercept)
{
	double mx = 0, my = 0, sxx = 0, sxy = 0;

	if (n < 2)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		mx += x[i];
		my += y[i];
	}
	mx /= (double)n;
	my /= (double)n;
	/* centred sums: no cancellation between two large totals */
	for (size_t i = 0; i < n; i++) {
		sxx += (x[i] - mx) * (x[i] - mx);
		sxy += (x[i] - mx) * (y[i] - my);
	}
	if (!(sxx > 0) || !isfinite(sxx) || !isfinite(sxy))
		return -EINVAL;
	*ret_slope = sxy / sxx;
	*ret_intercept = my - *ret_slope * mx;
	return 0;
}

bool filter_specs_timed(const struct sg_filter_spec *specs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (specs[i].kind == SG_FILTER_TIMEOUT)
			return true;
		if (specs[i].kind == SG_FILTER_OR && filter_specs_timed(specs[i].u.any.branches, specs[i].u.any.n))
			return true;
	}
	return false;
}

/* ---- chains ----------------------------------------------------------------------------------- */

void filter_chain_free(struct sg_filter_chain *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		struct stage *s = &c->st[i];
		free(s->win);
		free(s->sorted);
		if (s->branches) {
			for (size_t b = 0; b < s->spec->u.any.n; b++)
				filter_chain_free(s->branches[b]);
			free(s->branches);
		}
	}
	free(c);
}

struct sg_filter_chain *filter_chain_new(const struct sg_filter_spec *specs, size_t n)
{
	struct sg_filter_chain *c = calloc(1, sizeof(*c) + n * sizeof(struct stage));

	if (!c)
		return NULL;
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		const struct sg_filter_spec *sp = &specs[i];
		struct stage *s = &c->st[i];

		s->spec = sp;
		s->deadline = UINT64_MAX;
		switch (sp->kind) {
		case SG_FILTER_MEDIAN:
			s->win = calloc((size_t)sp->u.median.window, sizeof(double));
			s->sorted = calloc((size_t)sp->u.median.window, sizeof(double));
			if (!s->win || !s->sorted)
				goto err_free;
			s->send_at = sp->u.median.send_every - sp->u.median.send_first_at;
			break;
		case SG_FILTER_EMA:
			s->send_at = sp->u.ema.send_every - sp->u.ema.send_first_at;
			break;
		case SG_FILTER_OR:
			s->branches = calloc(sp->u.any.n ? sp->u.any.n : 1, sizeof(*s->branches));
			if (!s->branches)
				goto err_free;
			for (size_t b = 0; b < sp->u.any.n; b++) {
				s->branches[b] = filter_chain_new(&sp->u.any.branches[b], 1);
				if (!s->branches[b])
					goto err_free;
			}
			break;
		default:
			break;
		}
	}
	return c;

err_free:
	filter_chain_free(c);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* One more input for a send_every counter: whether this one is sent. */
static bool send_due(int *send_at, int every)
{
	if (++*send_at < every)
		return false;
	*send_at = 0;
	return true;
}

static bool same_rounded(double a, double b, int decimals)
{
	double p;

	if (decimals < 0)
		return a == b;
	p = pow(10.0, decimals);
	return nearbyint(a * p) == nearbyint(b * p);
}

/* The threshold of a delta bound: absolute, or percent of the last value passed. */
static double delta_bound(double bound, bool percent, double last)
{
	return percent ? fabs(last) * bound / 100.0 : bound;
}

static enum sg_filter_result run_from(struct sg_filter_chain *c, size_t i, double v, uint64_t now_us, double *ret);

/* Stage S takes V; returns whether it passes a value on, in *out. */
static bool stage_push(struct stage *s, double v, uint64_t now_us, double *out)
{
	const struct sg_filter_spec *sp = s->spec;

	switch (sp->kind) {
	case SG_FILTER_MEDIAN: {
		int w = sp->u.median.window, k = s->fill;

		s->win[s->pos] = v;
		s->pos = (s->pos + 1) % w;
		if (s->fill < w)
			s->fill++;
		if (!send_due(&s->send_at, sp->u.median.send_every))
			return false;
		k = s->fill;
		memcpy(s->sorted, s->win, (size_t)k * sizeof(double));
		qsort(s->sorted, (size_t)k, sizeof(double), cmp_double);
		*out = k % 2 ? s->sorted[k / 2] : (s->sorted[k / 2 - 1] + s->sorted[k / 2]) / 2.0;
		return true;
	}
	case SG_FILTER_EMA: {
		double alpha = sp->u.ema.alpha;

		if (!s->have) { /* the first value as it is, as ESPHome starts */
			s->acc = v;
			s->have = true;
		} else {
			if (sp->u.ema.time_constant_s > 0) {
				double dt = now_us > s->last_us ? (double)(now_us - s->last_us) / 1e6 : 0;
				alpha = -expm1(-dt / sp->u.ema.time_constant_s);
			}
			double lo = fmin(v, s->acc), hi = fmax(v, s->acc);

			/* between the two, as the exact result is: rounding must not step outside */
			s->acc = fmin(fmax(alpha * v + (1 - alpha) * s->acc, lo), hi);
		}
		s->last_us = now_us;
		if (!send_due(&s->send_at, sp->u.ema.send_every))
			return false;
		*out = s->acc;
		return true;
	}
	case SG_FILTER_CLAMP:
		if (v < sp->u.clamp.min || v > sp->u.clamp.max) {
			if (sp->u.clamp.drop)
				return false;
			v = v < sp->u.clamp.min ? sp->u.clamp.min : sp->u.clamp.max;
		}
		*out = v;
		return true;
	case SG_FILTER_FILTER_OUT:
		for (size_t i = 0; i < sp->u.filter_out.n; i++)
			if (same_rounded(v, sp->u.filter_out.values[i], sp->u.filter_out.decimals))
				return false;
		*out = v;
		return true;
	case SG_FILTER_CALIBRATE_LINEAR:
		*out = sp->u.linear.slope * v + sp->u.linear.intercept;
		return true;
	case SG_FILTER_CALIBRATE_POLYNOMIAL: {
		double r = 0;

		for (size_t i = sp->u.poly.n; i-- > 0;) /* Horner */
			r = r * v + sp->u.poly.coef[i];
		*out = r;
		return true;
	}
	case SG_FILTER_TIMEOUT: {
		double us = sp->u.timeout.after_s * 1e6;

		s->last = v;
		s->have = true;
		s->deadline = us >= 1e15 ? UINT64_MAX : now_us + (uint64_t)us;
		*out = v;
		return true;
	}
	case SG_FILTER_DELTA:
		if (s->have) {
			double d = fabs(v - s->last);
			double lo = delta_bound(sp->u.delta.min, sp->u.delta.min_percent, s->last);
			double hi = delta_bound(sp->u.delta.max, sp->u.delta.max_percent, s->last);

			double ulps = 4 * DBL_EPSILON * fmax(fabs(v), fabs(s->last));

			if (!(d > 0) || d < lo - ulps || d > hi + ulps)
				return false;
		}
		s->last = v;
		s->have = true;
		*out = v;
		return true;
	case SG_FILTER_OR: {
		bool any = false;

		for (size_t b = 0; b < sp->u.any.n; b++) {
			double o;
			if (filter_chain_push(s->branches[b], v, now_us, &o) == SG_FILTER_VALUE && !any) {
				*out = o;
				any = true;
			}
		}
		return any;
	}
	}
	return false;
}

static enum sg_filter_result run_from(struct sg_filter_chain *c, size_t i, double v, uint64_t now_us, double *ret)
{
	for (; i < c->n; i++)
		if (!stage_push(&c->st[i], v, now_us, &v))
			return SG_FILTER_NONE;
	*ret = v;
	return SG_FILTER_VALUE;
}

enum sg_filter_result filter_chain_push(struct sg_filter_chain *c, double v, uint64_t now_us, double *ret)
{
	return run_from(c, 0, v, now_us, ret);
}

uint64_t filter_chain_deadline(const struct sg_filter_chain *c)
{
	uint64_t at = UINT64_MAX;

	for (size_t i = 0; i < c->n; i++) {
		const struct stage *s = &c->st[i];

		if (s->deadline < at)
			at = s->deadline;
		if (s->branches)
			for (size_t b = 0; b < s->spec->u.any.n; b++) {
				uint64_t t = filter_chain_deadline(s->branches[b]);
				if (t < at)
					at = t;
			}
	}
	return at;
}

/* "No value" left the chain at stage I: the delta filters after it start afresh. */
static void forget_after(struct sg_filter_chain *c, size_t i)
{
	for (size_t k = i + 1; k < c->n; k++)
		if (c->st[k].spec->kind == SG_FILTER_DELTA)
			c->st[k].have = false;
}

enum sg_filter_result filter_chain_tick(struct sg_filter_chain *c, uint64_t now_us, double *ret)
{
	for (size_t i = 0; i < c->n; i++) {
		struct stage *s = &c->st[i];
		const struct sg_filter_spec *sp = s->spec;
		double v;

		if (sp->kind == SG_FILTER_TIMEOUT && s->deadline <= now_us) {
			s->deadline = UINT64_MAX; /* once, until the next input */
			if (sp->u.timeout.what == SG_TIMEOUT_UNAVAILABLE) {
				forget_after(c, i);
				return SG_FILTER_UNAVAILABLE;
			}
			v = sp->u.timeout.what == SG_TIMEOUT_LAST ? s->last : sp->u.timeout.value;
			if (run_from(c, i + 1, v, now_us, ret) == SG_FILTER_VALUE)
				return SG_FILTER_VALUE;
		} else if (sp->kind == SG_FILTER_OR) {
			for (size_t b = 0; b < sp->u.any.n; b++) {
				enum sg_filter_result r = filter_chain_tick(s->branches[b], now_us, &v);
				if (r == SG_FILTER_UNAVAILABLE) {
					forget_after(c, i);
					return r;
				}
				if (r == SG_FILTER_VALUE && run_from(c, i + 1, v, now_us, ret) == SG_FILTER_VALUE)
					return SG_FILTER_VALUE;
			}
		}
	}
	return SG_FILTER_NONE;
}

/* ---- description (--check) -------------------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, at;
};

__attribute__((format(printf, 2, 3)))
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->at >= o->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->at, o->len - o->at, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->at = o->at + (size_t)n < o->len ? o->at + (size_t)n : o->len - 1;
}

static void put_bound(struct out *o, double v, bool percent)
{
	put(o, "%g%s", v, percent ? "%" : "");
}

static void describe(struct out *o, const struct sg_filter_spec *specs, size_t n, const char *sep)
{
	for (size_t i = 0; i < n; i++) {
		const struct sg_filter_spec *s = &specs[i];

		if (i)
			put(o, "%s", sep);
		switch (s->kind) {
		case SG_FILTER_MEDIAN:
			put(o, "median(window %d, every %d, first at %d)", s->u.median.window, s->u.median.send_every,
			    s->u.median.send_first_at);
			break;
		case SG_FILTER_EMA:
			if (s->u.ema.time_constant_s > 0)
				put(o, "exponential_moving_average(time constant %g s", s->u.ema.time_constant_s);
			else
				put(o, "exponential_moving_average(alpha %g", s->u.ema.alpha);
			put(o, ", every %d, first at %d)", s->u.ema.send_every, s->u.ema.send_first_at);
			break;
		case SG_FILTER_CLAMP:
			put(o, "clamp(");
			if (isfinite(s->u.clamp.min))
				put(o, "%g", s->u.clamp.min);
			put(o, "..");
			if (isfinite(s->u.clamp.max))
				put(o, "%g", s->u.clamp.max);
			put(o, ", %s)", s->u.clamp.drop ? "drop outside" : "limit");
			break;
		case SG_FILTER_FILTER_OUT:
			put(o, "filter_out(");
			for (size_t k = 0; k < s->u.filter_out.n; k++)
				put(o, "%s%g", k ? ", " : "", s->u.filter_out.values[k]);
			put(o, ")");
			break;
		case SG_FILTER_CALIBRATE_LINEAR:
			put(o, "calibrate_linear(%.6g x %+.6g, from %zu points)", s->u.linear.slope, s->u.linear.intercept,
			    s->u.linear.points);
			break;
		case SG_FILTER_CALIBRATE_POLYNOMIAL:
			put(o, "calibrate_polynomial(");
			for (size_t k = 0; k < s->u.poly.n; k++) {
				if (k == 0)
					put(o, "%g", s->u.poly.coef[0]);
				else
					put(o, " %+g x%s", s->u.poly.coef[k], k == 1 ? "" : k == 2 ? "²" : k == 3 ? "³" : "^n");
			}
			put(o, ")");
			break;
		case SG_FILTER_TIMEOUT:
			put(o, "timeout(%g s, then ", s->u.timeout.after_s);
			if (s->u.timeout.what == SG_TIMEOUT_LAST)
				put(o, "last)");
			else if (s->u.timeout.what == SG_TIMEOUT_NUMBER)
				put(o, "%g)", s->u.timeout.value);
			else
				put(o, "unavailable)");
			break;
		case SG_FILTER_DELTA:
			put(o, "delta(>= ");
			put_bound(o, s->u.delta.min, s->u.delta.min_percent);
			if (isfinite(s->u.delta.max)) {
				put(o, ", <= ");
				put_bound(o, s->u.delta.max, s->u.delta.max_percent);
			}
			put(o, ")");
			break;
		case SG_FILTER_OR:
			put(o, "or(");
			describe(o, s->u.any.branches, s->u.any.n, " | ");
			put(o, ")");
			break;
		}
	}
}

void filter_specs_describe(const struct sg_filter_spec *specs, size_t n, char *buf, size_t len)
{
	struct out o = {buf, len, 0};

	if (!len)
		return;
	buf[0] = '\0';
	describe(&o, specs, n, " -> ");
}
