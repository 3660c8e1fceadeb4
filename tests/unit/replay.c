/* SPDX-License-Identifier: MIT */
/*
 * replay.c — test helpers for stream drivers; see replay.h. Tests only: allocates freely
 * and reports failures through cmocka's assertions.
 */
#include "replay.h"
#include "opts_helper.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libconfig.h>

#include "gateway/config.h"
#include "gateway/mapper.h"

#define RP_MAX_LINE 256

/* ---- capture ---------------------------------------------------------------------------------- */

static void rp_copy(char *dst, size_t cap, const char *s)
{
	assert_non_null(s);
	assert_true(strlen(s) < cap);
	strcpy(dst, s);
}

static void rp_on_emit(struct sg_dev *dev, const struct sg_reading *r, void *userdata)
{
	struct rp_capture *c = userdata;
	struct rp_reading *g;

	(void)dev;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->r = realloc(c->r, c->cap * sizeof(*c->r));
		assert_non_null(c->r);
	}
	g = &c->r[c->n++];
	memset(g, 0, sizeof(*g));
	rp_copy(g->field, sizeof(g->field), r->field);
	g->kind = r->kind;
	g->number = r->number;
	if (r->kind == SG_VALUE_STRING)
		rp_copy(g->string, sizeof(g->string), r->string);
	g->has_unit = r->unit != NULL;
	if (r->unit)
		rp_copy(g->unit, sizeof(g->unit), r->unit);
	g->timestamp_us = r->timestamp_us;
}

static void rp_on_fail(struct sg_dev *dev, enum sg_fail f, const char *detail, void *userdata)
{
	struct rp_capture *c = userdata;

	(void)dev;
	assert_true((unsigned)f < SG_FAIL_MAX_);
	assert_non_null(detail);
	c->fails[f]++;
	snprintf(c->last_detail, sizeof(c->last_detail), "%s", detail);
}

void rp_start(struct rp_run *run, const struct sg_driver *drv, const char *opts_text)
{
	struct sg_opt_error err = {.line = 0};

	memset(run, 0, sizeof(*run));
	if (drv->parse_options) {
		int r = opts_fixture_parse(drv, opts_text, &run->opts, &err);

		if (r < 0)
			fprintf(stderr, "options rejected: line %d: %s\n", err.line, err.msg);
		assert_int_equal(r, 0);
	}
	run->dev = (struct sg_dev){
		.name = "d",
		.driver = drv,
		.opts = run->opts,
		.fd = -1,
		.path = "/dev/null",
		.address = -1,
		.interval_s = drv->default_interval_s,
		.emit = rp_on_emit,
		.on_fail = rp_on_fail,
		.userdata = &run->cap,
	};
	run->dev.state = calloc(1, drv->state_size ? drv->state_size : 1);
	assert_non_null(run->dev.state);
	run->line.autoreq = true;
	if (drv->init)
		assert_int_equal(drv->init(&run->dev), 0);
}

void rp_capture_free(struct rp_capture *c)
{
	free(c->r);
	memset(c, 0, sizeof(*c));
}

void rp_stop(struct rp_run *run)
{
	if (run->dev.driver->fini)
		run->dev.driver->fini(&run->dev);
	free(run->dev.state);
	if (run->opts && run->dev.driver->free_options)
		run->dev.driver->free_options(run->opts);
	rp_capture_free(&run->cap);
}

void rp_clear(struct rp_run *run)
{
	run->cap.n = 0;
	memset(run->cap.fails, 0, sizeof(run->cap.fails));
	memset(&run->dev.stats, 0, sizeof(run->dev.stats));
}

size_t rp_line_request(struct sg_dev *dev, struct rp_line *l, uint8_t *req, size_t cap)
{
	uint64_t timeout = 0, delay = 0;
	int n = dev->driver->request(dev, req, cap, &timeout);

	if (n == 0 && dev->driver->poll) {
		assert_int_equal(dev->driver->poll(dev, &delay), 0);
		n = dev->driver->request(dev, req, cap, &timeout);
	}
	assert_true(n >= 0);
	if (n > 0) {
		assert_true(timeout > 0);
		l->txn = true;
		l->len = 0;
	}
	return (size_t)n;
}

static void rp_line_drop(struct rp_line *l, size_t n)
{
	memmove(l->buf, l->buf + n, l->len - n);
	l->len -= n;
}

void rp_dev_feed(struct sg_dev *dev, struct rp_line *l, const uint8_t *buf, size_t len)
{
	uint8_t req[512];

	if (!dev->driver->answer || (dev->driver->feed && sg_driver_streams(dev->driver, dev->opts))) {
		dev->driver->feed(dev, buf, len);
		return;
	}
	while (len) {
		size_t k;

		if (!l->txn && l->autoreq)
			rp_line_request(dev, l, req, sizeof(req));
		if (!l->txn) {
			l->unclaimed += len;
			return;
		}
		k = sizeof(l->buf) - l->len < len ? sizeof(l->buf) - l->len : len;
		assert_true(k > 0);
		memcpy(l->buf + l->len, buf, k);
		l->len += k;
		buf += k;
		len -= k;
		while (l->txn && l->len) {
			ssize_t r = dev->driver->answer(dev, l->buf, l->len);

			if (r == 0)
				break;
			if (r > 0) {
				assert_true((size_t)r <= l->len);
				rp_line_drop(l, (size_t)r);
				l->txn = false;
				if (l->len && l->autoreq) { /* what follows answers the next request */
					uint8_t rest[sizeof(l->buf)];
					size_t n = l->len;

					memcpy(rest, l->buf, n);
					l->len = 0;
					rp_line_request(dev, l, req, sizeof(req));
					memcpy(l->buf, rest, n);
					l->len = n;
				}
				continue;
			}
			assert_true((size_t)-r <= l->len);
			l->unclaimed += (size_t)-r;
			rp_line_drop(l, (size_t)-r);
		}
		if (!l->txn) {
			l->unclaimed += l->len;
			l->len = 0;
		}
	}
}

void rp_feed(struct rp_run *run, const void *buf, size_t len, size_t chunk)
{
	const uint8_t *p = buf;

	if (chunk == 0)
		chunk = len ? len : 1;
	for (size_t off = 0; off < len; off += chunk)
		rp_dev_feed(&run->dev, &run->line, p + off, len - off < chunk ? len - off : chunk);
}

unsigned rp_total_fails(const struct rp_capture *c)
{
	unsigned n = 0;

	for (int i = 0; i < SG_FAIL_MAX_; i++)
		n += c->fails[i];
	return n;
}

int rp_find(const struct rp_capture *c, const char *field, size_t from)
{
	for (size_t i = from; i < c->n; i++)
		if (strcmp(c->r[i].field, field) == 0)
			return (int)i;
	return -1;
}

/* ---- split replays ---------------------------------------------------------------------------- */

static void rp_assert_same(const struct rp_capture *want, const struct rp_capture *got, const char *how)
{
	bool same = want->n == got->n && memcmp(want->fails, got->fails, sizeof(want->fails)) == 0;

	for (size_t i = 0; same && i < want->n; i++) {
		const struct rp_reading *a = &want->r[i], *b = &got->r[i];

		same = strcmp(a->field, b->field) == 0 && a->kind == b->kind && a->number == b->number &&
		       strcmp(a->string, b->string) == 0 && strcmp(a->unit, b->unit) == 0 &&
		       a->has_unit == b->has_unit && a->timestamp_us == b->timestamp_us;
	}
	if (!same) {
		fprintf(stderr, "replay %s differs from the whole-buffer replay: %zu vs %zu readings, fails", how,
			got->n, want->n);
		for (int i = 0; i < SG_FAIL_MAX_; i++)
			fprintf(stderr, " %s=%u/%u", sg_fail_name((enum sg_fail)i), got->fails[i], want->fails[i]);
		fprintf(stderr, "\n");
	}
	assert_true(same);
}

static void rp_replay_split(const struct sg_driver *drv, const char *opts, const uint8_t *buf, size_t len,
			    const struct rp_capture *want, const size_t *cuts, size_t n_cuts, const char *how)
{
	struct rp_run run;
	size_t at = 0;

	rp_start(&run, drv, opts);
	for (size_t i = 0; i <= n_cuts; i++) {
		size_t end = i < n_cuts ? cuts[i] : len;

		if (end > at)
			rp_dev_feed(&run.dev, &run.line, buf + at, end - at);
		at = end;
	}
	rp_assert_same(want, &run.cap, how);
	rp_stop(&run);
}

void rp_check_splits(const struct sg_driver *drv, const char *opts_text, const void *data, size_t len,
		     struct rp_capture *ret)
{
	const uint8_t *buf = data;
	struct rp_run whole;
	unsigned seed = 12345;
	char how[64];

	rp_start(&whole, drv, opts_text);
	rp_feed(&whole, buf, len, 0);

	for (size_t at = 1; at < len; at++) {
		snprintf(how, sizeof(how), "split at byte %zu", at);
		rp_replay_split(drv, opts_text, buf, len, &whole.cap, &at, 1, how);
	}
	{
		struct rp_run bytes;

		rp_start(&bytes, drv, opts_text);
		rp_feed(&bytes, buf, len, 1);
		rp_assert_same(&whole.cap, &bytes.cap, "byte by byte");
		rp_stop(&bytes);
	}
	for (int round = 0; round < 8; round++) {
		size_t cuts[64], n = 0, at = 0;

		while (n < 64 && at < len) {
			seed = seed * 1103515245u + 12345u;
			at += 1 + (seed >> 16) % 17;
			if (at < len)
				cuts[n++] = at;
		}
		snprintf(how, sizeof(how), "random chunks, round %d", round);
		rp_replay_split(drv, opts_text, buf, len, &whole.cap, cuts, n, how);
	}
	whole.cap.frames = whole.dev.stats.frames;
	if (ret) {
		*ret = whole.cap;
		memset(&whole.cap, 0, sizeof(whole.cap));
	}
	rp_stop(&whole);
}

/* ---- files ------------------------------------------------------------------------------------ */

bool rp_read_file(const char *path, uint8_t **ret, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return false;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return true;
}

/* The repository: the test binary is <repo>/<build dir>/tests/test_x. */
static const char *rp_repo(void)
{
	static char repo[PATH_MAX];
	char exe[PATH_MAX];
	ssize_t n;

	if (repo[0])
		return repo;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	for (int up = 0; up < 3; up++) {
		char *slash = strrchr(exe, '/');

		assert_non_null(slash);
		*slash = '\0';
	}
	snprintf(repo, sizeof(repo), "%s", exe);
	return repo;
}

const char *rp_data_path(const char *rel)
{
	static char paths[4][2 * PATH_MAX]; /* a few calls may be arguments of one call */
	static unsigned next;
	char *path = paths[next++ % 4];

	snprintf(path, sizeof(paths[0]), "%s/tests/data/%s", rp_repo(), rel);
	return path;
}

const char *rp_real_dir(void)
{
	static char path[PATH_MAX + 64];
	const char *env = getenv("SENSORGATE_REAL_DATA");

	if (env && *env)
		snprintf(path, sizeof(path), "%s", env);
	else
		snprintf(path, sizeof(path), "%s/../shared/testdata/real", rp_repo());
	return access(path, R_OK | X_OK) == 0 ? path : NULL;
}

static size_t rp_hex(const char *s, uint8_t *out, size_t cap);

uint8_t *rp_concat(const char *dir, const char *const *parts, size_t n_parts, size_t *ret_len)
{
	uint8_t *out = NULL;
	size_t len = 0;

	for (size_t i = 0; i < n_parts && parts[i]; i++) {
		const char *p = parts[i];
		uint8_t *buf;
		size_t n;

		if (p[0] == '=') {
			n = strlen(p + 1);
			buf = malloc(n + 1);
			assert_non_null(buf);
			memcpy(buf, p + 1, n);
		} else if (p[0] == '#') {
			buf = malloc(strlen(p) + 1);
			assert_non_null(buf);
			n = rp_hex(p + 1, buf, strlen(p));
		} else if (p[0] == '@') {
			n = (size_t)atoi(p + 1);
			buf = malloc(n + 1);
			assert_non_null(buf);
			for (size_t k = 0; k < n; k++)
				buf[k] = k % 40 == 39 ? '\n' : 'x';
		} else {
			char rel[256];

			snprintf(rel, sizeof(rel), "%s/%s", dir, p);
			if (!rp_read_file(rp_data_path(rel), &buf, &n)) {
				fprintf(stderr, "cannot read %s\n", rp_data_path(rel));
				fail();
			}
		}
		out = realloc(out, len + n + 1);
		assert_non_null(out);
		memcpy(out + len, buf, n);
		len += n;
		free(buf);
	}
	if (!out) {
		out = malloc(1);
		assert_non_null(out);
	}
	*ret_len = len;
	return out;
}

/* ---- replay through the mapper ---------------------------------------------------------------- */

struct rp_mapped {
	struct sg_mapper *mapper;
	FILE *out;
	unsigned errors;
};

static void rp_mapped_emit(struct sg_dev *dev, const struct sg_reading *r, void *userdata)
{
	struct rp_mapped *m = userdata;
	struct sg_message msg;
	int k;

	(void)dev;
	k = mapper_map(m->mapper, 0, r, 1000000, &msg);
	if (k < 0) {
		fprintf(stderr, "mapper rejected reading %s: %d\n", r->field, k);
		m->errors++;
		return;
	}
	if (k == 0)
		return;
	assert_true(strncmp(msg.topic, "t/d/", 4) == 0);
	fprintf(m->out, "%s %.*s\n", msg.topic + 4, (int)msg.payload_len, msg.payload);
}

static void rp_mapped_fail(struct sg_dev *dev, enum sg_fail f, const char *detail, void *userdata)
{
	(void)dev;
	(void)f;
	(void)detail;
	(void)userdata;
}

/* Load a config with one device "d" of DRV; *ret_path is the temporary file (unlink it). */
static struct sg_config *rp_config(const struct sg_driver *drv, const char *device_body)
{
	char path[] = "/tmp/sg-replay-XXXXXX";
	char err[512];
	struct sg_config *cfg = NULL;
	int fd = mkstemp(path);
	FILE *f;
	int r;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f,
		"gateway: { id = \"t\"; base_topic = \"t\"; };\n"
		"mqtt: { brokers = ( \"mqtt://127.0.0.1:1883\" ); };\n"
		"devices = ( { name = \"d\"; driver = \"%s\"; port = \"/dev/null\";\n%s\n} );\n",
		drv->name, device_body ? device_body : "");
	fclose(f);
	r = config_load(path, &cfg, err, sizeof(err));
	unlink(path);
	if (r < 0)
		fprintf(stderr, "test config rejected: %s\n", err);
	assert_int_equal(r, 0);
	return cfg;
}

/* Compare the text GOT with the file EXPECTED_PATH line by line ('#' and blank lines skipped). */
static void rp_compare(const char *got, const char *expected_path)
{
	uint8_t *exp;
	size_t exp_len, line = 0;
	const char *e, *g = got;
	bool ok = true;

	if (!rp_read_file(expected_path, &exp, &exp_len)) {
		fprintf(stderr, "cannot read %s\n", expected_path);
		fail();
	}
	e = (const char *)exp;
	for (;;) {
		size_t el, gl;

		/* next expected line that is not blank or a comment */
		while (*e == '\n' || *e == '#') {
			if (*e == '#')
				e += strcspn(e, "\n");
			if (*e == '\n')
				e++;
		}
		if (!*e && !*g)
			break;
		el = strcspn(e, "\n");
		gl = strcspn(g, "\n");
		line++;
		if (el != gl || strncmp(e, g, el) != 0) {
			fprintf(stderr, "%s: reading %zu: expected \"%.*s\", got \"%.*s\"\n", expected_path, line,
				(int)el, e, (int)gl, g);
			ok = false;
			break;
		}
		e += el + (e[el] == '\n');
		g += gl + (g[gl] == '\n');
	}
	free(exp);
	assert_true(ok);
}

static struct sg_dev rp_mapped_dev(struct sg_config *cfg, struct rp_mapped *m)
{
	struct sg_dev dev = {
		.name = "d",
		.driver = cfg->devices[0].driver,
		.opts = cfg->devices[0].opts,
		.fd = -1,
		.path = "/dev/null",
		.address = -1,
		.interval_s = cfg->devices[0].interval_s,
		.emit = rp_mapped_emit,
		.on_fail = rp_mapped_fail,
		.userdata = m,
	};

	dev.state = calloc(1, dev.driver->state_size ? dev.driver->state_size : 1);
	assert_non_null(dev.state);
	if (dev.driver->init)
		assert_int_equal(dev.driver->init(&dev), 0);
	return dev;
}

void rp_replay_mapped(const struct sg_driver *drv, const char *device_body, const void *buf, size_t len,
		      const char *expected_path)
{
	struct sg_config *cfg = rp_config(drv, device_body);
	struct rp_mapped m = {.errors = 0};
	struct sg_dev dev;
	char *text = NULL;
	size_t text_len = 0;

	m.mapper = mapper_new(cfg);
	assert_non_null(m.mapper);
	m.out = open_memstream(&text, &text_len);
	assert_non_null(m.out);
	dev = rp_mapped_dev(cfg, &m);
	{
		struct rp_line l = {.autoreq = true};

		rp_dev_feed(&dev, &l, buf, len);
	}
	fclose(m.out);
	assert_int_equal(m.errors, 0);
	rp_compare(text, expected_path);
	free(text);
	free(dev.state);
	mapper_free(m.mapper);
	config_free(cfg);
}

/* Hex bytes "FF 01 86 ..." (spaces optional) into OUT; returns the count. */
static size_t rp_hex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (*s) {
		unsigned v;
		int used;

		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || *s == '#')
			break;
		assert_int_equal(sscanf(s, "%2x%n", &v, &used), 1);
		assert_true(used == 2);
		assert_true(n < cap);
		out[n++] = (uint8_t)v;
		s += used;
	}
	return n;
}

void rp_replay_transcript(const struct sg_driver *drv, const char *device_body, const char *transcript_path,
			  const char *expected_path, struct sg_dev_stats *ret_stats)
{
	struct sg_config *cfg = rp_config(drv, device_body);
	struct rp_mapped m = {.errors = 0};
	struct rp_line l = {.autoreq = false};
	struct sg_dev dev;
	uint8_t *script;
	size_t script_len;
	char *text = NULL, *line, *save = NULL;
	size_t text_len = 0;

	assert_non_null(drv->request);
	if (!rp_read_file(transcript_path, &script, &script_len)) {
		fprintf(stderr, "cannot read %s\n", transcript_path);
		fail();
	}
	m.mapper = mapper_new(cfg);
	assert_non_null(m.mapper);
	m.out = open_memstream(&text, &text_len);
	assert_non_null(m.out);
	dev = rp_mapped_dev(cfg, &m);

	for (line = strtok_r((char *)script, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		uint8_t want[RP_MAX_LINE], got[RP_MAX_LINE];
		uint64_t delay = 0;
		size_t n, k;

		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (line[0] == '>') {
			if (l.txn) {
				fprintf(stderr, "%s: \"%s\" while the last request is still out\n", transcript_path, line);
				fail();
			}
			k = rp_line_request(&dev, &l, got, sizeof(got));
			n = rp_hex(line + 1, want, sizeof(want));
			if (k != n || memcmp(want, got, n) != 0) {
				fprintf(stderr, "%s: request differs from \"%s\"\n", transcript_path, line);
				fail();
			}
		} else if (strncmp(line, "tick", 4) == 0) {
			assert_int_equal(drv->poll(&dev, &delay), 0);
		} else if (strncmp(line, "timeout", 7) == 0) {
			assert_true(l.txn);
			l.txn = false;
			l.len = 0;
			drv->no_answer(&dev);
		} else if (line[0] == '<') {
			n = rp_hex(line + 1, want, sizeof(want));
			rp_dev_feed(&dev, &l, want, n);
		} else {
			fprintf(stderr, "%s: cannot read line \"%s\"\n", transcript_path, line);
			fail();
		}
	}
	fclose(m.out);
	assert_int_equal(m.errors, 0);
	rp_compare(text, expected_path);
	if (ret_stats)
		*ret_stats = dev.stats;
	free(text);
	free(script);
	free(dev.state);
	mapper_free(m.mapper);
	config_free(cfg);
}

/* ---- table-driven cases ----------------------------------------------------------------------- */

static bool rp_close(double a, double b)
{
	double d = a > b ? a - b : b - a, m = (a < 0 ? -a : a) > (b < 0 ? -b : b) ? (a < 0 ? -a : a) : (b < 0 ? -b : b);

	return d <= 1e-9 * (m > 1 ? m : 1);
}

void rp_assert_readings(const struct rp_capture *c, const struct rp_exp *exp, const char *legend)
{
	size_t n = 0;
	bool ok = true;

	while (exp[n].field)
		n++;
	if (c->n != n) {
		fprintf(stderr, "%s: %zu readings, expected %zu:\n", legend, c->n, n);
		ok = false;
	}
	for (size_t i = 0; ok && i < n; i++) {
		const struct rp_reading *g = &c->r[i];
		const struct rp_exp *e = &exp[i];

		if (strcmp(g->field, e->field) != 0 || g->kind != e->kind ||
		    (e->kind == SG_VALUE_NUMBER && !rp_close(g->number, e->number)) ||
		    (e->kind == SG_VALUE_STRING && strcmp(g->string, e->string) != 0) ||
		    (e->unit && (e->unit[0] ? !g->has_unit || strcmp(g->unit, e->unit) != 0 : g->has_unit))) {
			fprintf(stderr, "%s: reading %zu: expected %s=%.17g%s [%s]\n", legend, i, e->field, e->number,
				e->string ? e->string : "", e->unit ? e->unit : "?");
			ok = false;
		}
	}
	if (!ok)
		for (size_t i = 0; i < c->n; i++)
			fprintf(stderr, "  got %s = %.17g%s%s [%s]\n", c->r[i].field, c->r[i].number,
				c->r[i].kind == SG_VALUE_STRING ? " string " : "", c->r[i].string,
				c->r[i].has_unit ? c->r[i].unit : "-");
	assert_true(ok);
}

void rp_run_cases(const struct sg_driver *drv, const struct rp_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct rp_case *k = &cases[i];
		struct rp_capture cap;

		rp_check_splits(drv, k->opts, k->input, k->len, &cap);
		rp_assert_readings(&cap, k->exp, k->legend);
		for (int f = 0; f < SG_FAIL_MAX_; f++) {
			if (cap.fails[f] != k->fails[f]) {
				fprintf(stderr, "%s: %u %s failures, expected %u (last: %s)\n", k->legend, cap.fails[f],
					sg_fail_name((enum sg_fail)f), k->fails[f], cap.last_detail);
				fail();
			}
		}
		if (cap.frames != k->frames) {
			fprintf(stderr, "%s: %llu frames, expected %u\n", k->legend, (unsigned long long)cap.frames,
				k->frames);
			fail();
		}
		rp_capture_free(&cap);
	}
}
