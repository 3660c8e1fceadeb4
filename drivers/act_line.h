/* SPDX-License-Identifier: MIT */
/*
 * act_line.h — an actuator's place on a serial line (line.h), for the
 * actuator drivers that talk over one (serial, modbus RTU).
 *
 * With the gateway's set of lines (act->buses->lines) the actuator is one
 * more user of a line the gateway drives. Without it (unit tests, another
 * host program) the actuator opens a line of its own and the router drives
 * it through act->fd, events and wake_us, which act_line_sync() keeps up to
 * date. A line that fails is reported by act_line_check() from the
 * driver's io()/timer()/set(), so that the router closes the actuator and
 * opens it again with backoff, as for any lost hardware.
 */
#ifndef SG_ACT_LINE_H
#define SG_ACT_LINE_H

#include "actuator.h"
#include "line.h"

struct act_line {
	struct sg_lines *own;       /* a private set, without the gateway's */
	struct sg_line_user *user;  /* NULL while closed */
	int lost;                   /* the line went down: -errno, else 0 */
};

/*
 * Attach A to the line SPEC names, with the settings the configuration resolved (params->line) or
 * SPEC's; GAP_CHARS / GAP_MIN_US: the silence its protocol needs before a request (line.h).
 */
int act_line_open(struct sg_act *a, struct act_line *al, const struct sg_line_spec *spec,
                  const struct sg_line_ops *ops, double gap_chars, unsigned gap_min_us);
void act_line_close(struct sg_act *a, struct act_line *al);
/* A private line's fd, events and deadline into A (nothing for a shared line). */
void act_line_sync(struct sg_act *a, struct act_line *al);
/* For ops->down(): remember ERR and have the router call timer() at once. */
void act_line_down(struct sg_act *a, struct act_line *al, int err);
/* io() and timer(): drive a private line; then the loss, if any (-errno), else 0. */
int act_line_io(struct sg_act *a, struct act_line *al, short revents, uint64_t now_us);
int act_line_timer(struct sg_act *a, struct act_line *al, uint64_t now_us);

#endif
