/* SPDX-License-Identifier: MIT */
/*
 * mqtt_setup.h — the mqtt configuration applied to a libmosquitto client:
 * protocol, Last Will, credentials and TLS, and the check of all of it.
 *
 * mqtt_new() configures its client with mqtt_setup_client(). The start and
 * --check both run mqtt_setup_check() on the loaded configuration (main.c,
 * one call for both): it applies the same settings to a throw-away client
 * and loads the TLS files as OpenSSL will at connect time, so whatever would
 * make the client fail is refused by both, with the FILE:LINE of the key at
 * fault (struct sg_mqtt_cfg.where).
 *
 * Nothing here logs; the caller prints the report.
 */
#ifndef SG_MQTT_SETUP_H
#define SG_MQTT_SETUP_H

#include <mosquitto.h>

#include "config.h"

/* The status payloads when the configuration names none (struct sg_mqtt_cfg birth_payload, will_payload):
 * "online" retained after each connect, "offline" as Last Will and at a clean stop. */
#define SG_STATUS_ONLINE  SG_STATUS_PAYLOAD_ONLINE
#define SG_STATUS_OFFLINE SG_STATUS_PAYLOAD_OFFLINE

/* What mqtt_setup_check() found; every string "" when there is nothing to say. */
struct mqtt_setup_report {
	char error[1024];   /* "FILE:LINE: what is wrong", when the call failed */
	char warning[768];  /* "FILE:LINE: ..." for a setting that weakens security (tls.insecure) */
	char tls[768];      /* how the broker's certificate is checked, for --check; "" without TLS */
};

/* libmosquitto's MOSQ_OPT_PROTOCOL_VERSION value for protocol level 5, 4 or 3 (sg_mqtt_cfg.protocol). */
int mqtt_setup_level(int protocol);

/*
 * Apply CFG (borrowed) to MOSQ: protocol version, Last Will (config_will_payload()) on
 * WILL_TOPIC (none when NULL), user name and password, TLS. 0, or -EINVAL/-ENOMEM with
 * REP->error filled (REP may not be NULL).
 */
int mqtt_setup_client(struct mosquitto *mosq, const struct sg_mqtt_cfg *cfg, const char *will_topic,
                      struct mqtt_setup_report *rep);

/*
 * Everything mqtt_new() will do with CFG, on a client that is then thrown
 * away, plus loading the TLS files (CA, certificate, key, or the system
 * trust store) and checking that certificate and key belong together.
 * 0 with REP->warning and REP->tls filled, or -errno with REP->error.
 */
int mqtt_setup_check(const struct sg_mqtt_cfg *cfg, const char *will_topic, struct mqtt_setup_report *rep);

#endif
