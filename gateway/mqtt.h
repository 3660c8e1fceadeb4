/* SPDX-License-Identifier: MIT */
/*
 * mqtt.h — the broker connection, driven from our own event loop.
 *
 * Wraps one libmosquitto client (its in-flight QoS 1/2 state survives
 * reconnects, so a message in flight when the link drops is resent with its
 * packet id and DUP, not duplicated); it is only made afresh to get rid of a
 * message the broker keeps closing the connection over (discarded() below).
 * Never uses libmosquitto's threads or its own loops: the owner polls
 * mqtt_fd() for mqtt_events(), calls mqtt_io() when it is ready and
 * mqtt_timer() at mqtt_deadline(); after any call the owner's watch handler
 * is told to re-read those three.
 *
 * Connecting: libmosquitto's asynchronous connect cannot carry MQTT 5
 * CONNECT properties (we need Session Expiry Interval for durable sessions),
 * and its blocking connect could hang the loop on a silent broker. So each
 * attempt first probes the broker with our own non-blocking TCP connect,
 * bounded by a timeout; only a reachable broker gets the real (then
 * immediate) connect, after which the socket is non-blocking and the TLS
 * handshake and CONNACK run through the loop. Failures (and connections
 * that do not stay up) move down the broker list and back off exponentially
 * with full jitter (backoff.h); see mqtt.c, "the broker link".
 *
 * Publishing while not connected returns -ENOTCONN and queues nothing
 * (libmosquitto would keep it in RAM only): the caller keeps it.
 */
#ifndef SG_MQTT_H
#define SG_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mosquitto.h>

#include "config.h"

struct sg_mqtt;
struct mqtt_props; /* mqtt_packet.h */

/* An incoming message; everything is borrowed for the duration of the call. */
struct sg_mqtt_msg {
	const char *topic;
	const void *payload;
	size_t len;
	int qos;
	bool retain;
	const mosquitto_property *props; /* MQTT 5 properties or NULL */
};

struct sg_mqtt_handlers {
	/* CONNACK accepted: subscribe and announce here. session_present as the broker said. */
	void (*connected)(void *ud, bool session_present);
	/* The connection is gone (only called after connected()). */
	void (*disconnected)(void *ud);
	void (*message)(void *ud, const struct sg_mqtt_msg *msg);
	/* The broker acknowledged mid (PUBACK for QoS 1, PUBCOMP for QoS 2; at once for QoS 0). */
	void (*published)(void *ud, int mid);
	/*
	 * MQTT 5: the broker refused mid (PUBACK/PUBREC with a reason code >= 0x80,
	 * e.g. 0x97 quota exceeded); the message is not delivered. When set, it is
	 * called instead of published() (and nothing is logged); NULL: published().
	 */
	void (*refused)(void *ud, int mid, int reason);
	/*
	 * The broker closed the connection twice in a row right after the same
	 * message (POISON: its mid, from mqtt_publish() or one of our own) was
	 * sent, without answering it. The client is made afresh: every QoS 1/2
	 * message handed over and not acknowledged is gone and will not be sent
	 * again by it (the owner sends its own again, without POISON). NULL: nothing.
	 */
	void (*discarded)(void *ud, int poison);
	/* fd, events or deadline changed: re-read mqtt_fd/mqtt_events/mqtt_deadline. */
	void (*watch)(void *ud);
	/*
	 * mqtt_publish() wrote: call mqtt_flush() before the loop next waits
	 * (once for a burst of publishes: the guard relays them in one write,
	 * and watch() comes once). NULL: mqtt_publish() does that itself.
	 */
	void (*flush_soon)(void *ud);
};

/*
 * A client for CFG (borrowed, must outlive it) announcing itself on
 * STATUS_TOPIC (Last Will "offline", retained), or nowhere when it is NULL
 * (a cloud service takes only its own topics). With cfg->cloud set to Azure
 * IoT Hub, every connect carries a fresh SAS token, and a connection is
 * closed and made again with a new one before its token expires (the
 * messages in flight are resent on the new connection, as after any loss).
 * NULL with errno on failure.
 */
struct sg_mqtt *mqtt_new(const struct sg_mqtt_cfg *cfg, const char *status_topic,
                         const struct sg_mqtt_handlers *h, void *ud);
void mqtt_free(struct sg_mqtt *m);

/* Begin connecting (to the first broker). 0 or -errno. */
int mqtt_start(struct sg_mqtt *m);
/* Publish "offline" retained, send DISCONNECT and flush for at most TIMEOUT_MS. */
void mqtt_shutdown(struct sg_mqtt *m, int timeout_ms);

/* What flush_soon() asked for: the relay's output, then watch(). Nothing when nothing is due. */
void mqtt_flush(struct sg_mqtt *m);

int mqtt_fd(const struct sg_mqtt *m);            /* -1 when there is nothing to poll */
/* Changes whenever the socket behind mqtt_fd() is replaced (numbers are reused). */
unsigned mqtt_fd_generation(const struct sg_mqtt *m);
short mqtt_events(const struct sg_mqtt *m);      /* POLLIN, plus POLLOUT when output is pending */
uint64_t mqtt_deadline(const struct sg_mqtt *m); /* CLOCK_MONOTONIC µs of the next mqtt_timer() */
void mqtt_io(struct sg_mqtt *m, short revents);
void mqtt_timer(struct sg_mqtt *m);

/* Connected and announced (connected() was called): publishing works. */
bool mqtt_connected(const struct sg_mqtt *m);
/*
 * True while the socket cannot take what was published (libmosquitto then
 * holds the rest in RAM): the owner should stop reading inputs until the
 * next watch() says otherwise. This bounds memory under any input rate.
 */
bool mqtt_backlogged(const struct sg_mqtt *m);
/*
 * How many QoS>0 messages may be outstanding: max_inflight, the broker's
 * Receive Maximum, and less while the broker shows it takes fewer (the send
 * window, mqtt.c).
 */
int mqtt_send_quota(const struct sg_mqtt *m);
/* CLOCK_MONOTONIC µs before which nothing new should be handed over (0: now): the broker refused for quota. */
uint64_t mqtt_send_after(const struct sg_mqtt *m);
int mqtt_protocol(const struct sg_mqtt *m);
/* The URL of the broker connected to, or being tried. */
const char *mqtt_broker(const struct sg_mqtt *m);

/*
 * Publish. 0 with *ret_mid set, -ENOTCONN when not connected (nothing
 * queued), -EINVAL for a bad topic/payload, -EIO otherwise. PROPS may be NULL.
 *
 * A QoS 0 message without RET_MID nor a libmosquitto property list goes, on
 * a plaintext link, straight into the guard's queue, encoded by us
 * (mqtt_packet.h); published() is not called for it. Otherwise libmosquitto
 * sends it and calls published() once written (QoS 0) or acknowledged.
 */
int mqtt_publish(struct sg_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                 bool retain, const mosquitto_property *props, int *ret_mid);
/* The same with the properties in their wire form (MQTT 5 links; ignored on 3.1.1). PROPS may be NULL. */
int mqtt_publish_with(struct sg_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                      bool retain, const struct mqtt_props *props, int *ret_mid);
/* Subscribe to PATTERN (wildcards allowed) at QOS; call from connected(). */
int mqtt_subscribe(struct sg_mqtt *m, const char *pattern, int qos);
/*
 * The same with MQTT 5 No Local (MQTT 5.0 §3.8.3.1): the broker does not send
 * our own publications on PATTERN back to us. An MQTT 3.1.1 link has no such
 * option: a plain subscription.
 */
int mqtt_subscribe_no_local(struct sg_mqtt *m, const char *pattern, int qos);

/* Broker URL parsing (shared with config validation): mqtt[s]://host[:port]. */
int mqtt_parse_url(const char *url, bool *ret_tls, char *host, size_t hostlen, int *ret_port);

#endif
