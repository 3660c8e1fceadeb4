/* SPDX-License-Identifier: MIT */
/*
 * replay.h — what a message carries about itself on the way out: its
 * per-topic sequence number, its measurement time, and whether it is a
 * replay of the spool's backlog (README, "Replay after an outage").
 *
 * The gateway numbers every message of a topic 1, 2, 3... when it is mapped
 * (seq); a consumer that sees a number skipped knows something was lost
 * (dropped from a full spool, compacted by offline = "last"). On the way
 * out a message becomes:
 *  - MQTT 5: user properties `ts` (ISO 8601 UTC with ms, when known),
 *    `seq`, and on replays `replayed`=1; `ts_unknown`=1 when the time of
 *    an earlier boot was never learnt (timesync.h);
 *  - JSON payloads (any protocol): "ts" filled in once known, and on replays
 *    "replayed":true and "seq":N.
 * Library-like: no logging, no MQTT knowledge beyond building properties.
 */
#ifndef SG_REPLAY_H
#define SG_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt_packet.h"

/* The last sequence number per topic. */
struct sg_seqs;

struct sg_seqs *seqs_new(void);
void seqs_free(struct sg_seqs *q);
/* The next number of TOPIC (1 for a topic not seen); 0 when out of memory. */
uint64_t seqs_next(struct sg_seqs *q, const char *topic);
/* The last number given to TOPIC (0: none). */
uint64_t seqs_last(const struct sg_seqs *q, const char *topic);
/* TOPIC has reached SEQ already (from the spool after a restart); a lower SEQ is ignored. 0 or -ENOMEM. */
int seqs_seen(struct sg_seqs *q, const char *topic, uint64_t seq);

/*
 * Rewrite the mapper's JSON PAYLOAD (LEN bytes, ending in "ts":<x>}) into
 * BUF: "ts" becomes ISO (a quoted time) or null when ISO is NULL; with
 * REPLAYED, "replayed":true,"seq":SEQ follow. Returns the new length,
 * -EINVAL when PAYLOAD is not of that form, -ENOBUFS when BUF is too small.
 */
int replay_json(char *buf, size_t cap, const char *payload, size_t len, const char *iso, bool replayed,
                uint64_t seq);

/*
 * MQTT 5 user properties for a message: ts (ISO, or ts_unknown=1 when
 * UNKNOWN), seq (when not 0), replayed. Appended to PROPS in their wire form
 * (mqtt_packet.h). 0 or -ENOSPC.
 */
int replay_props(struct mqtt_props *props, const char *iso, bool unknown, uint64_t seq, bool replayed);

/*
 * The history topic for TOPIC: TEMPLATE with its "{topic}" replaced by
 * TOPIC (config.h, spool.history_topic). The length, or -ENOBUFS.
 */
int replay_history_topic(char *buf, size_t cap, const char *template, const char *topic);

#endif
