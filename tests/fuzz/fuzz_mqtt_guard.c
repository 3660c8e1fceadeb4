/* SPDX-License-Identifier: MIT */
/*
 * fuzz_mqtt_guard.c — libFuzzer target: the MQTT guard (gateway/mqtt_guard.c), what a broker
 * sends on a plaintext link. The first byte chooses the protocol (bit 0: MQTT 5, else 3.1.1),
 * whether a valid CONNACK goes first (bit 1), whether the real libmosquitto reads what the
 * guard passes on (bit 2), and the size of the writes (bits 3-7); the rest is the broker's bytes.
 *
 * Checked: the checker names the fault of every refusal and never accepts more bytes than it
 * was given or than the bound; the relay passes on exactly the complete packets the checker
 * accepts, in order, nothing after the first refusal, and then the end of the connection;
 * libmosquitto behind the relay never aborts (that would be a crash of this target). A
 * violation traps.
 */
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mosquitto.h>

#include "gateway/mqtt_guard.h"
#include "fuzz_loopback.h"

#define CONNACK5 "\x20\x03\x00\x00\x00"
#define CONNACK4 "\x20\x02\x00\x00"

static uint8_t stream[65536 + 8];
static uint8_t got[65536 + 8];

/* The checker over the whole stream: the length of its valid prefix. */
static size_t valid_prefix(int protocol, const uint8_t *p, size_t n)
{
	struct mqtt_guard_state st = {.protocol = protocol};
	struct mqtt_guard_packet pk;
	size_t off = 0;

	for (;;) {
		int v = mqtt_guard_check(&st, p + off, n - off, MQTT_GUARD_MAX_PACKET, &pk);
		if (v == MQTT_GUARD_BAD) {
			if (!pk.why[0])
				__builtin_trap();
			return off;
		}
		if (v == MQTT_GUARD_MORE) {
			if (pk.size && (pk.size <= n - off || pk.size > MQTT_GUARD_MAX_PACKET))
				__builtin_trap();
			return off;
		}
		if (pk.size == 0 || pk.size > n - off || pk.size > MQTT_GUARD_MAX_PACKET || !st.connacked)
			__builtin_trap();
		if (pk.max_packet && pk.max_packet < MQTT_GUARD_MIN_BROKER_PACKET)
			return off; /* the relay refuses such a CONNACK */
		off += pk.size;
	}
}

/* Read what the guard passed on to "libmosquitto" (the pair's other end). */
static void collect(int lib_fd, size_t *n)
{
	for (;;) {
		ssize_t k = recv(lib_fd, got + *n, sizeof(got) - *n, MSG_DONTWAIT);
		if (k <= 0)
			return;
		*n += (size_t)k;
	}
}

/* The relay alone: a socket pair stands for the TCP connection. */
static void relay_only(int protocol, const uint8_t *p, size_t n, size_t piece, size_t valid)
{
	struct sg_mqtt_guard *g;
	int sv[2], lib_fd;
	size_t n_got = 0;
	bool cut = false;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	lib_fd = sv[0];
	g = mqtt_guard_new(lib_fd, protocol, MQTT_GUARD_MIN_BROKER_PACKET);
	if (!g) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	for (size_t off = 0; (off < n || off == 0) && !cut; off += piece) {
		size_t k = n - off < piece ? n - off : piece;
		if (k && send(sv[1], p + off, k, MSG_NOSIGNAL) != (ssize_t)k)
			__builtin_trap(); /* the guard closed the connection without saying so */
		if (off + k >= n)
			shutdown(sv[1], SHUT_WR); /* the broker's last word */
		for (int i = 0; i < 64; i++) {
			int r = mqtt_guard_read(g);
			if (r < 0 && r != -EPROTO && r != -ECONNRESET && r != -ENOMEM)
				__builtin_trap();
			while (mqtt_guard_deliver(g)) {
				size_t before = n_got;
				collect(lib_fd, &n_got);
				if (n_got == before)
					break; /* only the end of the connection is left */
			}
			if (r < 0) {
				cut = true; /* the broker's side is closed now */
				break;
			}
		}
	}
	collect(lib_fd, &n_got);
	if (n_got != valid || memcmp(got, p, valid) != 0)
		__builtin_trap();
	/* and then the end */
	if (recv(lib_fd, got, 1, MSG_DONTWAIT) != 0)
		__builtin_trap();
	mqtt_guard_free(g);
	close(lib_fd);
	close(sv[1]);
}

/* libmosquitto behind the relay, connected over loopback TCP to a listener of ours. */
static void with_libmosquitto(int protocol, const uint8_t *p, size_t n, size_t piece)
{
	uint16_t port;
	int listener = fuzz_loopback(&port);
	struct sg_mqtt_guard *g;
	struct mosquitto *m;
	uint8_t junk[4096];
	int srv;

	m = mosquitto_new("fuzz", true, NULL);
	if (!m)
		return;
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, protocol == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
	if (mosquitto_connect_bind_v5(m, "127.0.0.1", port, 60, NULL, NULL) != MOSQ_ERR_SUCCESS) {
		mosquitto_destroy(m);
		return;
	}
	srv = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	g = srv >= 0 ? mqtt_guard_new(mosquitto_socket(m), protocol, MQTT_GUARD_MIN_BROKER_PACKET) : NULL;
	if (!g) {
		if (srv >= 0)
			close(srv);
		mosquitto_destroy(m);
		return;
	}
	for (size_t off = 0; off < n && mosquitto_socket(m) == mqtt_guard_lib_fd(g); off += piece) {
		size_t k = n - off < piece ? n - off : piece;
		struct pollfd pf = {.fd = mqtt_guard_fd(g), .events = POLLIN};
		while (recv(srv, junk, sizeof(junk), 0) > 0) /* the CONNECT, acknowledgements: not our business */
			;
		if (send(srv, p + off, k, MSG_NOSIGNAL) != (ssize_t)k)
			break;
		if (poll(&pf, 1, 100) <= 0)
			break;
		mqtt_guard_read(g);
		for (int i = 0; i < 4096 && mosquitto_socket(m) == mqtt_guard_lib_fd(g) && mqtt_guard_deliver(g); i++)
			mosquitto_loop_read(m, 64);
		mqtt_guard_flush(g, true);
		if (mosquitto_want_write(m))
			mosquitto_loop_write(m, 64);
		mqtt_guard_flush(g, true);
	}
	/* the broker hangs up: libmosquitto must see the end too */
	shutdown(srv, SHUT_WR);
	for (int round = 0; round < 8 && mosquitto_socket(m) == mqtt_guard_lib_fd(g); round++) {
		struct pollfd pf = {.fd = mqtt_guard_fd(g), .events = POLLIN};
		if (poll(&pf, 1, 100) <= 0)
			break;
		mqtt_guard_read(g);
		for (int i = 0; i < 4096 && mosquitto_socket(m) == mqtt_guard_lib_fd(g) && mqtt_guard_deliver(g); i++)
			mosquitto_loop_read(m, 64);
	}
	if (mosquitto_socket(m) >= 0)
		__builtin_trap(); /* libmosquitto was never told the connection ended */
	mqtt_guard_free(g);
	close(srv);
	mosquitto_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int protocol;
	size_t n = 0, piece, valid;

	if (size < 1 || size > 65536)
		return 0;
	protocol = data[0] & 1 ? 5 : 4;
	piece = (size_t)(data[0] >> 3) * 37 + 1;
	if (data[0] & 2) {
		const char *ca = protocol == 5 ? CONNACK5 : CONNACK4;
		n = protocol == 5 ? 5 : 4;
		memcpy(stream, ca, n);
	}
	memcpy(stream + n, data + 1, size - 1);
	n += size - 1;
	valid = valid_prefix(protocol, stream, n);
	if (data[0] & 4)
		with_libmosquitto(protocol, stream, n, piece);
	else
		relay_only(protocol, stream, n, piece, valid);
	return 0;
}
