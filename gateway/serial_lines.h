/* SPDX-License-Identifier: MIT */
/*
 * serial_lines.h — the event loop's side of the shared serial lines
 * (drivers/line.h): an io source and a timer per line, kept in step with
 * what each line wants, and the line's trouble (parity and framing errors,
 * bytes nobody took) in the log, rate-limited. Devices and actuators attach
 * to the set (gw_lines_set()); this part only drives it.
 *
 * Ownership: struct gw_lines owns the set of lines and its event sources;
 * gw_lines_free() after every user detached.
 */
#ifndef SG_GW_SERIAL_LINES_H
#define SG_GW_SERIAL_LINES_H

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "../drivers/line.h"

struct gw_lines;

/*
 * Lines driven by LOOP. AFTER(UD, now) runs after every dispatch of a line
 * (users may have finished work there that their owners must pick up: the
 * command router). NULL with errno on failure.
 */
struct gw_lines *gw_lines_new(sd_event *loop, void (*after)(void *ud, uint64_t now_us), void *ud);
void gw_lines_free(struct gw_lines *gl);
/* The set devices and actuators attach to. */
struct sg_lines *gw_lines_set(struct gw_lines *gl);
/* Back-pressure: while paused, lines start no transaction and read nothing (the kernel keeps the bytes);
 * a transaction in flight is finished first. */
void gw_lines_pause(struct gw_lines *gl, bool pause);

#endif
