/* SPDX-License-Identifier: MIT */
/*
 * mqtt_guard.h — a validating relay between a plaintext broker connection and
 * libmosquitto.
 *
 * libmosquitto 2.0.11 (Debian 12) abort()s on some malformed packets from the
 * broker: an unknown MQTT 5 property id makes it log through a NULL client,
 * which trips an assert() (lib/property_mosq.c, property__read()). A broker,
 * or anyone on the path of a plaintext link, could kill the gateway with six
 * bytes. So on plaintext links libmosquitto never reads the broker socket:
 *
 *   broker <-TCP-> [guard: broker socket]   [guard's end] <-socketpair-> [libmosquitto's end]
 *
 * mqtt_guard_new() takes over libmosquitto's connected socket: the TCP socket
 * moves to a new descriptor the guard keeps, and one end of a socket pair is
 * dup3()ed onto libmosquitto's descriptor number, so libmosquitto reads and
 * writes the pair without knowing it. Bytes from the broker are cut into
 * packets and each packet is checked (mqtt_guard_check()); only complete,
 * valid packets are passed on. The first invalid one ends the connection:
 * libmosquitto reads the packets before it, then end-of-file (a lost
 * connection, with its usual reconnect). Bytes from libmosquitto go to the
 * broker unchanged, and the gateway's own QoS 0 PUBLISH packets join them
 * between whole packets (mqtt_guard_room()). Everything is non-blocking and
 * bounded.
 *
 * TLS links cannot be relayed this way (the bytes are encrypted inside
 * libmosquitto); there the broker is authenticated by its certificate.
 *
 * The checker alone (mqtt_guard_check()) is pure and is what the unit tests
 * and the fuzzer exercise.
 */
#ifndef SG_MQTT_GUARD_H
#define SG_MQTT_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mosquitto.h>

/*
 * The largest packet taken from the broker (fixed header included). MQTT 5
 * CONNECTs announce it as Maximum Packet Size, so a broker drops larger
 * messages for us instead of sending them (MQTT 5.0 §3.1.2.11.4); from an
 * MQTT 3.1.1 broker a larger packet ends the connection.
 */
#define MQTT_GUARD_MAX_PACKET (256 * 1024)

/*
 * A broker must take packets of at least this size (our status messages
 * are far smaller): a CONNACK announcing a smaller Maximum Packet Size is
 * refused, see mqtt_guard_new().
 */
#define MQTT_GUARD_MIN_BROKER_PACKET 1024

/* ---- the checker ------------------------------------------------------------------------------ */

enum mqtt_guard_verdict {
	MQTT_GUARD_BAD = -1,  /* not a valid packet from a server: end the connection */
	MQTT_GUARD_MORE = 0,  /* valid so far; the packet is not complete yet */
	MQTT_GUARD_OK = 1,    /* one complete, valid packet of ->size bytes */
};

/* What the checker remembers between packets of one connection. */
struct mqtt_guard_state {
	int protocol;   /* 4 (MQTT 3.1.1) or 5, as in the CONNECT */
	bool connacked; /* a CONNACK has passed */
};

struct mqtt_guard_packet {
	uint8_t type;          /* control packet type, 1..15 (0 before a byte arrived) */
	size_t size;           /* whole packet, once its fixed header is complete; else 0 */
	uint32_t max_packet;   /* CONNACK: the broker's Maximum Packet Size, 0 if none */
	char why[128];         /* MQTT_GUARD_BAD: what is wrong, for the log */
};

/*
 * Check the packet at the start of BUF (LEN bytes, more may follow) as one
 * sent by a server to a client, under MQTT 3.1.1 §2–§3 or MQTT 5.0 §2–§3:
 * fixed-header flags, remaining length (minimal encoding, at most MAX_SIZE
 * for the whole packet), the packet types a server may send and in which
 * order (CONNACK first and once), packet identifiers non-zero, topic names
 * (non-empty, valid UTF-8, no wildcard), and for MQTT 5 every property: a
 * known identifier allowed in that packet, its value of the right type and
 * range, inside the property length, which itself lies inside the packet;
 * no property repeated that may appear once. Updates ST on MQTT_GUARD_OK.
 */
int mqtt_guard_check(struct mqtt_guard_state *st, const uint8_t *buf, size_t len, size_t max_size,
                     struct mqtt_guard_packet *out);

/* "CONNACK", "PUBLISH", ... for a control packet type (0..15). */
const char *mqtt_guard_type_name(uint8_t type);

/*
 * Size in bytes of the PUBLISH packet libmosquitto writes for these
 * arguments (fixed header included). mqtt.c refuses what exceeds the broker's
 * Maximum Packet Size: libmosquitto's own test of it underestimates by a
 * byte or two and then abort()s in the same assert().
 */
size_t mqtt_guard_publish_size(int protocol, const char *topic, size_t payload_len, int qos,
                               const mosquitto_property *props);

/* ---- the relay -------------------------------------------------------------------------------- */

struct sg_mqtt_guard;

/*
 * Take over LIB_FD, libmosquitto's connected, non-blocking TCP socket.
 * PROTOCOL as in the CONNECT; a CONNACK whose Maximum Packet Size is below
 * MIN_BROKER_PACKET is refused (libmosquitto would abort resending a larger
 * message still in flight). NULL with errno on failure; LIB_FD is unchanged then.
 */
struct sg_mqtt_guard *mqtt_guard_new(int lib_fd, int protocol, uint32_t min_broker_packet);
/* Close the broker socket and the guard's end (libmosquitto closes its own). */
void mqtt_guard_free(struct sg_mqtt_guard *g);

int mqtt_guard_fd(const struct sg_mqtt_guard *g);     /* the broker socket: poll this */
int mqtt_guard_lib_fd(const struct sg_mqtt_guard *g); /* libmosquitto's descriptor number */

/*
 * The broker socket is readable: read once, check, pass on what is valid.
 * 0; -EPROTO when the broker sent an invalid packet or a CONNACK with too
 * small a Maximum Packet Size, -ENOMEM when a packet finds no memory (for
 * both, mqtt_guard_error() says what); another -errno when the connection
 * failed or closed (-ECONNRESET for an orderly close). After an error the
 * guard is cut: nothing more is read, and libmosquitto gets end-of-file after
 * the valid packets before it.
 */
int mqtt_guard_read(struct sg_mqtt_guard *g);
/*
 * Pass on to libmosquitto what is waiting. True while it has something to
 * read (packets, or the end of the connection): call mosquitto_loop_read()
 * and ask again.
 */
bool mqtt_guard_deliver(struct sg_mqtt_guard *g);
/*
 * Send the queue on to the broker; with TAKE, also what libmosquitto wrote
 * to the pair meanwhile. 0 when all is sent (with TAKE: and the pair is
 * empty), 1 when the broker socket is full (poll it for POLLOUT), -errno when
 * it failed (the guard is cut).
 */
int mqtt_guard_flush(struct sg_mqtt_guard *g, bool take);

/*
 * The gateway's own packets (mqtt_packet.h) go into the same queue to the
 * broker. They may only go between whole packets of libmosquitto's, and after
 * everything it wrote before: the caller makes sure that libmosquitto holds
 * no packet it has begun but not finished writing (mosquitto_want_write() is
 * false), and calls mqtt_guard_take() when it may have written since.
 *
 * mqtt_guard_take(): move all libmosquitto wrote to the pair into the queue.
 * 0; -ENOBUFS when the queue is at its bound (then a packet of the
 * gateway's must go through libmosquitto, behind its own); -EPIPE when the
 * guard is cut.
 *
 * mqtt_guard_room(): N bytes at the end of the queue to write a packet into,
 * then mqtt_guard_put(N) to add it; NULL when the guard is cut or the queue,
 * while the broker does not read, would pass its bound (4 MiB) or memory ran
 * out. Nothing is sent before mqtt_guard_flush().
 */
int mqtt_guard_take(struct sg_mqtt_guard *g);
uint8_t *mqtt_guard_room(struct sg_mqtt_guard *g, size_t n);
void mqtt_guard_put(struct sg_mqtt_guard *g, size_t n);
/* Output waits for the broker socket (mqtt_guard_flush() returned 1). */
bool mqtt_guard_pending(const struct sg_mqtt_guard *g);
/* Why the guard cut the connection ("" if it did not, or the broker closed it). */
const char *mqtt_guard_error(const struct sg_mqtt_guard *g);

#endif
