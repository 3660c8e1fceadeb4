/* SPDX-License-Identifier: MIT */
/* act_line.c — an actuator's place on a serial line; see act_line.h. */
#include <errno.h>

#include "act_line.h"

int act_line_open(struct sg_act *a, struct act_line *al, const struct sg_line_spec *spec,
                  const struct sg_line_ops *ops, double gap_chars, unsigned gap_min_us)
{
	const struct sg_line_settings *settings = a->params->line ? a->params->line : &spec->settings;
	struct sg_lines *set = a->buses ? a->buses->lines : NULL;
	struct sg_line_user_params up = {.name = a->params->name, .stream = false, .gap_chars = gap_chars,
	                                 .gap_min_us = gap_min_us};
	int r;

	a->fd = -1;
	a->events = 0;
	a->wake_us = UINT64_MAX;
	al->lost = 0;
	if (!set) {
		al->own = lines_new(NULL, NULL);
		if (!al->own)
			return -ENOMEM;
		set = al->own;
	}
	r = line_attach(set, spec->port, spec->usb_serial, settings, &up, ops, a, &al->user);
	if (r < 0) {
		al->user = NULL;
		return r;
	}
	act_line_sync(a, al);
	return 0;
}

void act_line_close(struct sg_act *a, struct act_line *al)
{
	if (al->user)
		line_detach(al->user);
	al->user = NULL;
	lines_free(al->own);
	al->own = NULL;
	a->fd = -1;
	a->events = 0;
	a->wake_us = UINT64_MAX;
}

void act_line_sync(struct sg_act *a, struct act_line *al)
{
	const struct sg_line *l = al->user ? line_of(al->user) : NULL;

	if (al->lost) {
		a->wake_us = 0;
		return;
	}
	if (!al->own)
		return;
	a->fd = line_fd(l);
	a->events = line_events(l);
	a->wake_us = line_deadline(l);
}

void act_line_down(struct sg_act *a, struct act_line *al, int err)
{
	al->lost = err < 0 ? err : -EIO;
	a->wake_us = 0;
}

int act_line_io(struct sg_act *a, struct act_line *al, short revents, uint64_t now_us)
{
	if (al->own && al->user && !al->lost)
		line_io(line_of(al->user), revents, now_us);
	act_line_sync(a, al);
	return al->lost;
}

int act_line_timer(struct sg_act *a, struct act_line *al, uint64_t now_us)
{
	if (al->own && al->user && !al->lost)
		line_timer(line_of(al->user), now_us);
	act_line_sync(a, al);
	return al->lost;
}
