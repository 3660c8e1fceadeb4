/* SPDX-License-Identifier: MIT */
/*
 * mqtt_packet.h — the PUBLISH packets the gateway writes itself.
 *
 * On plaintext links a QoS 0 message does not go through libmosquitto. For
 * each one libmosquitto allocates a packet, takes its locks, writes it to the
 * guard's socket pair with its own system call and calls back; that was
 * about 2,200 instructions a message, as much as mosquitto_pub spends in all
 * (README, "Benchmarks"). mqtt.c instead writes the packet straight into the
 * guard's queue to the broker (mqtt_guard_room()), where the guard sends it
 * with whatever else waits, in one send() per burst.
 *
 * The bytes are exactly those libmosquitto 2.0.11 writes for the same
 * mosquitto_publish_v5() call (lib/send_publish.c, send__real_publish():
 * topic, no packet identifier at QoS 0, the property length and properties
 * in MQTT 5, the payload); test_mqtt_guard compares the two byte for byte.
 * The layout is MQTT 3.1.1 §3.3 and MQTT 5.0 §3.3.
 *
 * QoS 1 and 2 stay with libmosquitto: their packet identifiers, resends and
 * acknowledgements are its business.
 */
#ifndef SG_MQTT_PACKET_H
#define SG_MQTT_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mosquitto.h>

/*
 * MQTT 5 properties in their wire form (MQTT 5.0 §2.2.2.2), built without an
 * allocation: the user properties the gateway puts on readings (replay.h).
 */
#define MQTT_PROPS_MAX 240

struct mqtt_props {
	size_t len;
	uint8_t b[MQTT_PROPS_MAX];
};

/* Append a User Property (0x26) KEY = VALUE. -ENOSPC when it does not fit. */
int mqtt_props_user(struct mqtt_props *p, const char *key, const char *value);

/*
 * The same properties as a libmosquitto list, appended to *LIST in the same
 * order, for a message libmosquitto sends (QoS 1/2, TLS links). 0, or
 * -ENOMEM (*LIST then holds what was added before).
 */
int mqtt_props_list(const struct mqtt_props *p, mosquitto_property **list);

/* Size of the PUBLISH packet, fixed header included (PROTOCOL 4 or 5; properties only in 5). */
size_t mqtt_packet_publish_size(int protocol, size_t topic_len, size_t payload_len, size_t props_len);

/*
 * Write a QoS 0 PUBLISH to DST, which has room for mqtt_packet_publish_size()
 * bytes; returns that size. The caller has checked what libmosquitto checks
 * first (mqtt.c): the topic valid UTF-8 without wildcards and at most 65,535
 * bytes, the size within the broker's Maximum Packet Size.
 */
size_t mqtt_packet_publish(uint8_t *dst, int protocol, const char *topic, size_t topic_len, const void *payload,
                           size_t payload_len, bool retain, const struct mqtt_props *props);

#endif
