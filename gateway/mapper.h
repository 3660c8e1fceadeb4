/* SPDX-License-Identifier: MIT */
/*
 * mapper.h — reading in, MQTT message out.
 *
 * The mapper knows the configuration and nothing of MQTT or the spool: it
 * decides whether a reading is published (the device's readings list, the
 * transforms scale/offset/round/deadband/throttle/heartbeat/average, the
 * `filters` chains of filters.h), to
 * which topic, with which payload, QoS and retain flag. It does not log.
 */
#ifndef SG_MAPPER_H
#define SG_MAPPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* An outgoing message; its strings belong to the mapper and stay valid until the next call. */
struct sg_message {
	const char *topic;
	const char *payload;
	size_t payload_len;
	int qos;
	bool retain;
	enum sg_offline_policy offline;
};

struct sg_mapper;

/* A mapper for CFG (borrowed: it must outlive the mapper). NULL on allocation failure. */
struct sg_mapper *mapper_new(const struct sg_config *cfg);
void mapper_free(struct sg_mapper *m);

/*
 * Map reading R of device number DEV (index into cfg->devices) at monotonic
 * time NOW_US. Returns 1 and fills *ret when it is to be published, 0 when it
 * is filtered out (field not listed, inside the deadband, throttled, still
 * averaging), -EINVAL when the field cannot be a topic level, -ERANGE for a
 * non-finite number, -ENOBUFS when the payload does not fit.
 */
int mapper_map(struct sg_mapper *m, size_t dev, const struct sg_reading *r, uint64_t now_us,
               struct sg_message *ret);

/*
 * When mapper_tick() has something to do (a chain's timeout filter), in
 * monotonic µs; UINT64_MAX for never. Changes after mapper_map() and mapper_tick().
 */
uint64_t mapper_deadline(const struct sg_mapper *m);

/*
 * Time NOW_US has come: one message a timeout filter sends (its reading's
 * last value again, a fixed number, or "no value": payload None, JSON null).
 * Returns 1 with *ret filled (valid until the next call), 0 when nothing more
 * is due, -errno as mapper_map(). Call until it returns 0 or less.
 */
int mapper_tick(struct sg_mapper *m, uint64_t now_us, struct sg_message *ret);

/* Format V the way plain payloads do: ROUND decimals, or shortest exact when ROUND < 0. */
int mapper_format_number(char *buf, size_t len, double v, int round);

#endif
