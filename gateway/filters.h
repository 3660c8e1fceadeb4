/* SPDX-License-Identifier: MIT */
/*
 * filters.h — per-reading filter chains, as ESPHome users know them.
 *
 * A chain is an ordered list of filters; a value enters the first and each
 * filter either passes a (possibly changed) value on to the next or stops it.
 * What leaves the last one is published. The filters and their semantics
 * follow ESPHome's sensor filters (https://esphome.io/components/sensor/,
 * "Sensor Filters", and its sensor/filter.cpp): median, exponential_moving_average,
 * clamp, filter_out, calibrate_linear, calibrate_polynomial, timeout, delta
 * and or. Differences are written at each filter in filters.c.
 *
 * This module knows numbers and a clock, nothing else: no MQTT, no config
 * file, no logging. Time is always passed in (monotonic microseconds), so
 * tests control it. A spec (struct sg_filter_spec) is the validated
 * configuration of one filter, owned by the config; a chain is the running
 * state built from specs, owned by its caller (the mapper).
 */
#ifndef SG_FILTERS_H
#define SG_FILTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sg_filter_kind {
	SG_FILTER_MEDIAN = 0,
	SG_FILTER_EMA,                  /* exponential_moving_average */
	SG_FILTER_CLAMP,
	SG_FILTER_FILTER_OUT,
	SG_FILTER_CALIBRATE_LINEAR,
	SG_FILTER_CALIBRATE_POLYNOMIAL,
	SG_FILTER_TIMEOUT,
	SG_FILTER_DELTA,
	SG_FILTER_OR,
};

/* What a timeout filter sends when its time is up. */
enum sg_timeout_value {
	SG_TIMEOUT_UNAVAILABLE = 0, /* "no value" (ESPHome sends NaN) */
	SG_TIMEOUT_LAST,            /* the last value the filter received, again */
	SG_TIMEOUT_NUMBER,          /* a fixed number */
};

struct sg_filter_spec {
	enum sg_filter_kind kind;
	int line;                       /* where it is in the config file, for messages */
	union {
		struct {
			int window;             /* values the median is taken over (window_size) */
			int send_every;         /* one output per this many inputs */
			int send_first_at;      /* the first output after this many inputs (1..send_every) */
		} median;
		struct {
			double alpha;           /* weight of a new value, 0 < alpha <= 1; or */
			double time_constant_s; /* > 0: alpha = 1 - exp(-dt / time_constant) per input */
			int send_every, send_first_at;
		} ema;
		struct {
			double min, max;        /* -HUGE_VAL / HUGE_VAL when unset */
			bool drop;              /* ignore_out_of_range: drop instead of limiting */
		} clamp;
		struct {
			double *values;         /* owned */
			size_t n;
			int decimals;           /* compare rounded to this many decimals; -1: exactly */
		} filter_out;
		struct {
			double slope, intercept; /* least-squares fit of the reference points */
			size_t points;
		} linear;
		struct {
			double *coef;           /* owned: coef[0] + coef[1] x + coef[2] x² ... */
			size_t n;
		} poly;
		struct {
			double after_s;
			enum sg_timeout_value what;
			double value;           /* SG_TIMEOUT_NUMBER */
		} timeout;
		struct {
			double min, max;        /* pass when 0 < |change|, min <= |change| <= max (max HUGE_VAL when unset) */
			bool min_percent, max_percent; /* relative to the last value passed, in % */
		} delta;
		struct {
			struct sg_filter_spec *branches; /* owned; each branch is one filter */
			size_t n;
		} any;
	} u;
};

/* What a chain produced. */
enum sg_filter_result {
	SG_FILTER_NONE = 0,     /* nothing (stopped, or not yet) */
	SG_FILTER_VALUE,        /* a value to publish */
	SG_FILTER_UNAVAILABLE,  /* a timeout says there is no current value */
};

struct sg_filter_chain;

/* Free what SPECS[0..N) own (lists, branches) and SPECS itself. */
void filter_specs_free(struct sg_filter_spec *specs, size_t n);

/*
 * Least-squares line through the N points (X[i], Y[i]): *ret_slope,
 * *ret_intercept. -EINVAL when N < 2 or all X are equal (no line).
 */
int filter_fit_linear(const double *x, const double *y, size_t n, double *ret_slope, double *ret_intercept);

/* A chain running SPECS[0..N) (borrowed: they must outlive it). NULL on allocation failure. */
struct sg_filter_chain *filter_chain_new(const struct sg_filter_spec *specs, size_t n);
void filter_chain_free(struct sg_filter_chain *c);

/*
 * Value V arrives at monotonic time NOW_US. Returns SG_FILTER_VALUE with the
 * output in *ret, or SG_FILTER_NONE when a filter stopped it.
 */
enum sg_filter_result filter_chain_push(struct sg_filter_chain *c, double v, uint64_t now_us, double *ret);

/* The monotonic time at which filter_chain_tick() has something to do; UINT64_MAX for never. */
uint64_t filter_chain_deadline(const struct sg_filter_chain *c);

/*
 * Time NOW_US has come: a timeout filter whose time is up fires (once, until
 * its next input). Its value goes through the rest of the chain. Returns
 * SG_FILTER_VALUE (*ret set), SG_FILTER_UNAVAILABLE, or SG_FILTER_NONE when
 * nothing is due. Call again until SG_FILTER_NONE: one call fires one timeout.
 */
enum sg_filter_result filter_chain_tick(struct sg_filter_chain *c, uint64_t now_us, double *ret);

/* Whether any filter of SPECS[0..N) (or branches) is a timeout. */
bool filter_specs_timed(const struct sg_filter_spec *specs, size_t n);

/* "median(5, every 5) -> clamp(0..100, drop)" into BUF; truncated to fit. */
void filter_specs_describe(const struct sg_filter_spec *specs, size_t n, char *buf, size_t len);

#endif
