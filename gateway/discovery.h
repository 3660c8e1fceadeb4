/* SPDX-License-Identifier: MIT */
/*
 * discovery.h — Home Assistant MQTT discovery messages, built from the config.
 *
 * A pure builder: from a struct sg_config (and the field tables the drivers
 * declare) it makes the list of retained config messages Home Assistant reads
 * under <prefix>/<component>/<gateway id>/<object id>/config, and the empty
 * payloads that delete entities which are no longer configured. It neither
 * publishes nor logs: gateway_discovery.c publishes the list and logs
 * failures. What was announced, and the state file that remembers it across
 * restarts, are discovery_state.c's (below).
 *
 * What is announced (single-component discovery, one message per entity):
 *  - one `sensor` per reading (a device's `readings` list, or, for a device
 *    without one, every field its driver declares), grouped in one Home
 *    Assistant device per sensor device, linked to the gateway with
 *    via_device; available while the gateway status topic says "online"
 *    and, for a device with expire_after, its own status topic
 *    (<base>/<device>/status) too;
 *    a field that is an event (a button's presses) is an `event` entity and
 *    one device trigger (`device_automation`) per event type instead;
 *  - one `switch`, `number` or `select` per actuator, under the gateway;
 *  - the gateway's health: a connectivity `binary_sensor` on its status topic
 *    and, when the stats topic is enabled (spool.stats_interval > 0), the
 *    fields connected, readings_per_s, spool_depth and dropped of
 *    <base>/gateway/<id>/stats.
 * unique_id is "sensorgate_<gateway id>_<object id>", where the object id is
 * "<device>_<field>" for readings, the actuator's name for actuators and
 * "gateway_<what>" for health entities; it does not change when a topic,
 * unit or name changes, so Home Assistant keeps the entity and its history.
 *
 * The payloads use only options defined in the Home Assistant MQTT
 * documentation (full names, no abbreviations); see tests/unit/test_discovery.c
 * for the version checked against.
 *
 * Ownership: a struct sg_disc_list owns every string in it; it borrows
 * nothing from the config it was built from (discovery_list_clear() frees).
 */
#ifndef SG_DISCOVERY_H
#define SG_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* One message to publish (retained, QoS 1). */
struct sg_disc_msg {
	char *topic;           /* <prefix>/<component>/<gateway id>/<object id>/config */
	char *payload;         /* a JSON object, or "" to delete the entity */
	char *unique_id;       /* NULL for a deletion */
	const char *component; /* "sensor", "binary_sensor", "event", "device_automation", "switch", "number", "select";
	                        * NULL for a deletion */
};

struct sg_disc_list {
	struct sg_disc_msg *v;
	size_t n, cap;
};

/* A set of discovery topics (the state file's content). */
struct sg_disc_topics {
	char **v;
	size_t n;
};

/*
 * Build every discovery message for CFG into *RET (which must be empty:
 * zero-initialised or cleared). Nothing when discovery is disabled.
 * Returns 0; -ENOMEM; -EEXIST when two entities would share a discovery
 * topic or unique_id (e.g. device "a_b" field "c" and device "a" field "b_c"),
 * with a one-line explanation in ERR (may be NULL). *RET is empty on failure.
 */
int discovery_build(const struct sg_config *cfg, struct sg_disc_list *ret, char *err, size_t errlen);

/*
 * Whether field FIELD of device D, a field its driver declares `when_seen`
 * (not every meter sends it), is to be announced: it arrived, or TOPIC (its
 * discovery topic) was announced before. discovery_build() announces none
 * of them.
 */
typedef bool (*sg_disc_seen_fn)(void *ud, const struct sg_device_cfg *d, const char *field, const char *topic);

/* discovery_build(), with SEEN (may be NULL) deciding on the `when_seen` fields of devices without readings lists. */
int discovery_build_seen(const struct sg_config *cfg, sg_disc_seen_fn seen, void *seen_ud, struct sg_disc_list *ret,
                         char *err, size_t errlen);

/*
 * The deletions a configuration change needs: an empty payload for every
 * discovery topic OLD_CFG announces and NEW_CFG does not (everything when
 * NEW_CFG has discovery disabled). 0, -ENOMEM, or -EEXIST as above.
 */
int discovery_diff(const struct sg_config *old_cfg, const struct sg_config *new_cfg, struct sg_disc_list *ret);

/* The same against a set of topics announced earlier (read from the state file). */
int discovery_removals(const struct sg_disc_topics *old, const struct sg_disc_list *now, struct sg_disc_list *ret);

void discovery_list_clear(struct sg_disc_list *l);
void discovery_topics_clear(struct sg_disc_topics *t);

/* Home Assistant's birth/will topic: discovery.ha_status_topic, by default "<prefix>/status"; caller frees.
 * NULL on ENOMEM. */
char *discovery_ha_status_topic(const struct sg_config *cfg);
/* True when a message on the HA status topic says Home Assistant (re)started: a live "online". */
bool discovery_is_ha_online(const void *payload, size_t len, bool retained);
/* True when a message on the HA status topic says Home Assistant is gone: "offline" (its will or its stop). */
bool discovery_is_ha_offline(const void *payload, size_t len);

/* The availability topic of device DEV: "<base>/<device>/status"; caller frees. */
char *discovery_device_status_topic(const struct sg_config *cfg, const struct sg_device_cfg *dev);
/* The gateway's stats topic: "<base>/gateway/<id>/stats"; caller frees. */
char *discovery_stats_topic(const struct sg_config *cfg);

/* ---- discovery_state.c: the state file, and the sync that keeps the broker in line ---- */

/*
 * Where the set of announced topics is kept between runs, so that an entity
 * removed from the config while sensorgate was stopped is deleted at the next
 * start: discovery.state_file when set, else
 * "<STATE_DIRECTORY>/discovery-<id>.state" (STATE_DIRECTORY as systemd sets
 * it; the first of a colon-separated list), else next to the spool file.
 * NULL when none applies (or on ENOMEM: errno says which; 0 = none applies).
 */
char *discovery_state_path(const struct sg_config *cfg, const char *state_directory);
/* Read the state file. A missing file is an empty set (0). 0 or -errno. */
int discovery_state_load(const char *path, struct sg_disc_topics *ret);
/* Replace the state file (write a temporary file, fsync, rename) with LIST's topics. 0 or -errno. */
int discovery_state_save(const char *path, const struct sg_disc_list *list);

/* Publish TOPIC with PAYLOAD (LEN bytes, may be 0), retained, QoS 1. 0, -ENOTCONN or -errno. */
typedef int (*sg_disc_publish_fn)(void *ud, const char *topic, const char *payload, size_t len);

struct sg_disc_sync {
	size_t deleted;        /* empty payloads published */
	size_t announced;      /* configs published */
	int save_error;        /* 0, or -errno of writing the state file (the rest succeeded) */
};

/*
 * Bring the broker in line with LIST: when DELETIONS, first an empty payload
 * for every topic of *ANNOUNCED that LIST lacks, then every config of LIST.
 * Once all were accepted and DELETIONS was asked, *ANNOUNCED becomes LIST's
 * topics and, if that changed it and STATE_PATH is set, the state file is
 * rewritten. Returns 0 (see RES, may be NULL), or the first publish error
 * (-ENOTCONN: the connection is gone) or -ENOMEM, *ANNOUNCED then unchanged.
 */
int discovery_sync(const struct sg_disc_list *list, struct sg_disc_topics *announced, const char *state_path,
                   bool deletions, sg_disc_publish_fn publish, void *ud, struct sg_disc_sync *res);

#endif
