/* SPDX-License-Identifier: MIT */
/*
 * bus_plan.h — --check's account of the serial lines: per line, who shares
 * it, its framing, the requests of one polling cycle (block reads merged, as
 * the drivers plan them) and how long a cycle takes at the baud rate, at best
 * and with every request timing out. A builder: it computes from the
 * configuration and writes to the stream it is given.
 */
#ifndef SG_BUS_PLAN_H
#define SG_BUS_PLAN_H

#include <stdio.h>

#include "config.h"

/* Minimum time of one request on line settings S: request and answer at the baud rate, and the gap. */
double bus_plan_request_s(const struct sg_line_settings *s, double gap_s, unsigned tx_bytes, unsigned rx_bytes);
/* The "LINE ..." section for every serial line of C, into OUT (nothing when there is none). */
void bus_plan_print(const struct sg_config *c, FILE *out);

#endif
