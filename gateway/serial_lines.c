/* SPDX-License-Identifier: MIT */
/*
 * serial_lines.c — sd-event sources for the shared serial lines.
 *
 * Each line gets an io source on its fd (replaced when the port is reopened:
 * fd numbers get reused, so the line's fd generation is compared too) and a
 * timer at its deadline, both re-read whenever the line says they changed.
 * After each dispatch the UARTs' error and break counters and the bytes
 * nobody claimed are compared with what was logged, and news is logged, at
 * most 3 times a minute per line.
 */
#include "serial_lines.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "../common/clock.h"
#include "log.h"

#define LINE_TIMER_ACCURACY_US 100 /* a Modbus gap at 115200 baud is 1.75 ms */

struct gw_line {
	struct gw_lines *gl;
	struct sg_line *line;
	sd_event_source *io;
	sd_event_source *timer;
	int fd;
	unsigned gen;
	struct sg_line_stats logged; /* counters as last logged */
	struct sg_ratelimit rl;
};

struct gw_lines {
	sd_event *loop;
	struct sg_lines *set;
	void (*after)(void *ud, uint64_t now_us);
	void *ud;
	bool paused;
};

static void gw_line_sync(struct gw_lines *gl, struct sg_line *l);

static void gw_line_report(struct gw_line *x)
{
	const struct sg_line_stats *s = line_stats(x->line);
	char text[160];
	unsigned suppressed;

	if (!line_errors_differ(s, &x->logged))
		return;
	if (!ratelimit_allow(&x->rl, now_mono_us(), &suppressed))
		return;
	log_warning("line %s: %s (so far)%s; check baud, data_bits, parity and stop_bits against the devices, and the wiring",
	            line_name(x->line), line_errors_text(s, text, sizeof(text)), suppressed ? "; more not logged" : "");
	x->logged = *s;
}

static void gw_line_after(struct gw_line *x)
{
	struct gw_lines *gl = x->gl;

	gw_line_report(x);
	if (gl->after)
		gl->after(gl->ud, now_mono_us());
}

static int on_line_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct gw_line *x = ud;
	(void)s;
	(void)fd;

	line_io(x->line, (short)revents, now_mono_us());
	gw_line_after(x);
	return 0;
}

static int on_line_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct gw_line *x = ud;
	(void)s;
	(void)usec;

	line_timer(x->line, now_mono_us());
	gw_line_after(x);
	return 0;
}

/* The loop record of line L, made on first sight. NULL on ENOMEM. */
static struct gw_line *gw_line_of(struct gw_lines *gl, struct sg_line *l)
{
	void **slot = line_loop_data(l);
	struct gw_line *x = *slot;
	int r;

	if (x)
		return x;
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->gl = gl;
	x->line = l;
	x->fd = -1;
	x->rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(60, 3);
	r = sd_event_add_time(gl->loop, &x->timer, CLOCK_MONOTONIC, UINT64_MAX, LINE_TIMER_ACCURACY_US, on_line_timer, x);
	if (r < 0) {
		free(x);
		return NULL;
	}
	sd_event_source_set_enabled(x->timer, SD_EVENT_OFF);
	*slot = x;
	return x;
}

/* Bring L's sources in line with its fd, events and deadline. */
static void gw_line_sync(struct gw_lines *gl, struct sg_line *l)
{
	struct gw_line *x = gw_line_of(gl, l);
	int fd = line_fd(l);
	unsigned gen = line_fd_generation(l);
	short ev = line_events(l);
	uint32_t events = (ev & POLLIN ? EPOLLIN : 0) | (ev & POLLOUT ? EPOLLOUT : 0);
	uint64_t deadline = line_deadline(l);
	bool run = !gl->paused || line_in_transaction(l);
	int r;

	if (!x) {
		log_error("line %s: cannot watch it: %s", line_name(l), strerror(ENOMEM));
		return;
	}
	if (x->io && (fd != x->fd || gen != x->gen)) {
		x->io = sd_event_source_disable_unref(x->io);
		x->fd = -1;
	}
	if (!x->io && fd >= 0) {
		r = sd_event_add_io(gl->loop, &x->io, fd, events, on_line_io, x);
		if (r < 0) {
			log_error("line %s: cannot watch its port: %s", line_name(l), strerror(-r));
		} else {
			x->fd = fd;
			x->gen = gen;
		}
	} else if (x->io) {
		sd_event_source_set_io_events(x->io, events);
	}
	if (x->io)
		sd_event_source_set_enabled(x->io, run ? SD_EVENT_ON : SD_EVENT_OFF);
	if (deadline == UINT64_MAX || !run) {
		sd_event_source_set_enabled(x->timer, SD_EVENT_OFF);
	} else {
		sd_event_source_set_time(x->timer, deadline);
		sd_event_source_set_enabled(x->timer, SD_EVENT_ONESHOT);
	}
}

static void on_line_watch(void *ud, struct sg_line *l)
{
	gw_line_sync(ud, l);
}

struct gw_lines *gw_lines_new(sd_event *loop, void (*after)(void *ud, uint64_t now_us), void *ud)
{
	struct gw_lines *gl = calloc(1, sizeof(*gl));

	if (!gl)
		return NULL;
	gl->loop = loop;
	gl->after = after;
	gl->ud = ud;
	gl->set = lines_new(on_line_watch, gl);
	if (!gl->set) {
		free(gl);
		errno = ENOMEM;
		return NULL;
	}
	return gl;
}

void gw_lines_free(struct gw_lines *gl)
{
	if (!gl)
		return;
	for (size_t i = 0; i < lines_count(gl->set); i++) {
		struct sg_line *l = lines_at(gl->set, i);
		struct gw_line *x = *line_loop_data(l);

		if (!x)
			continue;
		sd_event_source_disable_unref(x->io);
		sd_event_source_disable_unref(x->timer);
		free(x);
		*line_loop_data(l) = NULL;
	}
	lines_free(gl->set);
	free(gl);
}

struct sg_lines *gw_lines_set(struct gw_lines *gl)
{
	return gl ? gl->set : NULL;
}

void gw_lines_pause(struct gw_lines *gl, bool pause)
{
	if (!gl || gl->paused == pause)
		return;
	gl->paused = pause;
	for (size_t i = 0; i < lines_count(gl->set); i++)
		gw_line_sync(gl, lines_at(gl->set, i));
}
