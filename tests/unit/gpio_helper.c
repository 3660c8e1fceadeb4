/* SPDX-License-Identifier: MIT */
/*
 * gpio_helper.c — see gpio_helper.h. Test-only; fails through cmocka.
 */
#include "gpio_helper.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_gpio.h"
#include "opts_helper.h"

static void gr_emit(struct sg_dev *dev, const struct sg_reading *r, void *ud)
{
	struct gpio_run *g = ud;
	struct gr_reading *x;

	(void)dev;
	assert_true(g->n < GR_MAX_READINGS);
	x = &g->r[g->n++];
	memset(x, 0, sizeof(*x));
	snprintf(x->field, sizeof(x->field), "%s", r->field);
	x->is_string = r->kind == SG_VALUE_STRING;
	x->number = r->number;
	if (x->is_string)
		snprintf(x->string, sizeof(x->string), "%s", r->string);
	if (r->unit)
		snprintf(x->unit, sizeof(x->unit), "%s", r->unit);
	x->timestamp_us = r->timestamp_us;
	x->at_ns = fake_gpio.now_ns;
}

static void gr_fail(struct sg_dev *dev, enum sg_fail f, const char *detail, void *ud)
{
	struct gpio_run *g = ud;

	(void)dev;
	g->fails[f]++;
	snprintf(g->last_detail, sizeof(g->last_detail), "%s", detail ? detail : "");
}

static struct gr_value *gr_slot(struct gpio_run *g, const char *key, bool create)
{
	for (size_t i = 0; i < sizeof(g->values) / sizeof(g->values[0]); i++) {
		struct gr_value *v = &g->values[i];

		if (v->set && strcmp(v->key, key) == 0)
			return v;
	}
	if (!create)
		return NULL;
	for (size_t i = 0; i < sizeof(g->values) / sizeof(g->values[0]); i++) {
		struct gr_value *v = &g->values[i];

		if (!v->set) {
			snprintf(v->key, sizeof(v->key), "%s", key);
			v->set = true;
			return v;
		}
	}
	fail_msg("too many durable values");
	return NULL;
}

static int gr_value_load(struct sg_dev *dev, const char *key, int64_t *ret)
{
	struct gpio_run *g = dev->userdata;
	struct gr_value *v;

	if (g->load_fail)
		return g->load_fail;
	if (g->store_load)
		return g->store_load(g->store_ud, key, ret);
	v = gr_slot(g, key, false);
	if (!v)
		return -ENOENT;
	*ret = v->v;
	return 0;
}

static int gr_value_save(struct sg_dev *dev, const char *key, int64_t value)
{
	struct gpio_run *g = dev->userdata;

	if (g->save_fail)
		return g->save_fail;
	if (g->store_save) {
		int r = g->store_save(g->store_ud, key, value);
		g->n_saves += r == 0;
		return r;
	}
	gr_slot(g, key, true)->v = value;
	g->n_saves++;
	return 0;
}

static void gr_set_next(struct gpio_run *g, uint64_t delay_us)
{
	g->next_poll_ns = delay_us == UINT64_MAX ? UINT64_MAX : fake_gpio.now_ns + delay_us * 1000;
}

static void gr_poll(struct gpio_run *g)
{
	uint64_t delay = 0;
	int r;

	if (!g->up || !g->dev.driver->poll)
		return;
	g->n_polls++;
	r = g->dev.driver->poll(&g->dev, &delay);
	assert_int_equal(r, 0);
	gr_set_next(g, delay);
}

static int gr_init(struct gpio_run *g)
{
	int r;

	memset(g->dev.state, 0, g->dev.driver->state_size);
	g->dev.watch_fd = -1;
	g->dev.why = NULL;
	r = g->dev.driver->init(&g->dev);
	if (r < 0)
		return r;
	g->up = true;
	assert_true(g->dev.watch_fd >= 0);
	gr_poll(g); /* the gateway arms the timer at once after opening */
	return 0;
}

int gr_start(struct gpio_run *g, const struct sg_driver *drv, const char *opts_text)
{
	return gr_start_store(g, drv, opts_text, NULL, NULL, NULL);
}

int gr_start_store(struct gpio_run *g, const struct sg_driver *drv, const char *opts_text,
                   int (*load)(void *ud, const char *key, int64_t *ret),
                   int (*save)(void *ud, const char *key, int64_t value), void *ud)
{
	struct sg_opt_error err = {.line = 0};
	int r;

	memset(g, 0, sizeof(*g));
	g->store_load = load;
	g->store_save = save;
	g->store_ud = ud;
	g->r = calloc(GR_MAX_READINGS, sizeof(*g->r));
	assert_non_null(g->r);
	r = opts_fixture_parse(drv, opts_text, &g->opts, &err);
	if (r < 0)
		fail_msg("options \"%s\" rejected: line %d: %s", opts_text, err.line, err.msg);
	g->dev = (struct sg_dev){
		.name = "d",
		.driver = drv,
		.opts = g->opts,
		.fd = -1,
		.watch_fd = -1,
		.address = -1,
		.interval_s = drv->default_interval_s,
		.gpio_in = &fake_gpio_in_ops,
		.value_load = gr_value_load,
		.value_save = gr_value_save,
		.emit = gr_emit,
		.on_fail = gr_fail,
		.userdata = g,
	};
	g->next_poll_ns = UINT64_MAX;
	g->dev.state = calloc(1, drv->state_size);
	assert_non_null(g->dev.state);
	return gr_init(g);
}

void gr_stop(struct gpio_run *g)
{
	if (g->up && g->dev.driver->fini)
		g->dev.driver->fini(&g->dev);
	g->up = false;
	free(g->dev.state);
	g->dev.state = NULL;
	if (g->opts && g->dev.driver->free_options)
		g->dev.driver->free_options(g->opts);
	g->opts = NULL;
	free(g->r);
	g->r = NULL;
}

int gr_restart(struct gpio_run *g)
{
	if (g->up && g->dev.driver->fini)
		g->dev.driver->fini(&g->dev);
	g->up = false;
	g->next_poll_ns = UINT64_MAX;
	return gr_init(g);
}

void gr_crash(struct gpio_run *g)
{
	/* The process is gone: the kernel releases its lines; nothing of the driver runs. */
	for (unsigned i = 0; i < FAKE_GPIO_LINES; i++)
		if (fake_gpio.lines[i].input)
			fake_gpio_in_ops.release(&fake_gpio.lines[i]);
	g->up = false;
	g->next_poll_ns = UINT64_MAX;
}

void gr_advance(struct gpio_run *g, uint64_t t_ns)
{
	for (int guard = 0; g->up && g->next_poll_ns <= t_ns; guard++) {
		assert_true(guard < 1000000);
		if (g->next_poll_ns > fake_gpio.now_ns)
			fake_gpio.now_ns = g->next_poll_ns;
		gr_poll(g);
	}
	if (t_ns > fake_gpio.now_ns)
		fake_gpio.now_ns = t_ns;
}

void gr_io(struct gpio_run *g)
{
	uint64_t delay = UINT64_MAX;
	int r;

	if (!g->up)
		return;
	g->n_io++;
	r = g->dev.driver->io(&g->dev, 1 /* EPOLLIN */, &delay);
	assert_int_equal(r, 0);
	if (delay != UINT64_MAX)
		gr_set_next(g, delay);
}

void gr_edge_late(struct gpio_run *g, unsigned line, int level, uint64_t t_ns)
{
	gr_advance(g, t_ns);
	fake_gpio_pin(line, level, t_ns);
}

void gr_edge(struct gpio_run *g, unsigned line, int level, uint64_t t_ns)
{
	gr_edge_late(g, line, level, t_ns);
	gr_io(g);
}

size_t gr_count(const struct gpio_run *g, const char *field, size_t from)
{
	size_t n = 0;

	for (size_t i = from; i < g->n; i++)
		n += strcmp(g->r[i].field, field) == 0;
	return n;
}

const struct gr_reading *gr_last(const struct gpio_run *g, const char *field)
{
	for (size_t i = g->n; i-- > 0;)
		if (strcmp(g->r[i].field, field) == 0)
			return &g->r[i];
	return NULL;
}

void gr_clear(struct gpio_run *g)
{
	g->n = 0;
	memset(g->fails, 0, sizeof(g->fails));
	g->last_detail[0] = '\0';
}
