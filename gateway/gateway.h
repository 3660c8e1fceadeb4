/* SPDX-License-Identifier: MIT */
/*
 * gateway.h — the one place that wires devices, mapper and MQTT together
 * around a single sd-event loop.
 */
#ifndef SG_GATEWAY_H
#define SG_GATEWAY_H

#include "config.h"

struct sg_gateway;

/* A gateway for CFG; takes ownership of CFG. NULL with errno set when it cannot start (logged). */
struct sg_gateway *gateway_new(struct sg_config *cfg);
/* Run until SIGTERM/SIGINT. Returns the process exit code. */
int gateway_run(struct sg_gateway *g);
void gateway_free(struct sg_gateway *g);

#endif
