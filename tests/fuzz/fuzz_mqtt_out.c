/* SPDX-License-Identifier: MIT */
/*
 * fuzz_mqtt_out.c — libFuzzer target: the two writers of the queue to the broker. libmosquitto
 * writes its packets to the guard's socket pair; the gateway writes its own QoS 0 PUBLISHes
 * straight into the guard's queue (gateway/mqtt_guard.c, gateway/mqtt_packet.c), under the rules
 * mqtt.c follows in publish_own(): everything libmosquitto may have written is taken in first,
 * and while libmosquitto holds a packet begun or queued (mosquitto_want_write()) the message goes
 * through libmosquitto instead.
 *
 * Byte 0, bit 0: MQTT 5 (else 3.1.1). Then operations, a byte each, some with an argument byte:
 *   0 q s  libmosquitto publishes at QoS q % 3 a payload of s * s bytes (s = 255: 300,000)
 *   1 s    the gateway publishes at QoS 0 a payload of s * s bytes (300,000 for 255)
 *   2 n    the broker reads up to n * 64 + 1 bytes
 *   3 t    the relay sends what is queued (bit 0 of t: taking in the pair too, as after a call
 *          into libmosquitto) and libmosquitto writes what it holds
 * Each publish has its own topic (L/<n> or O/<n>, n counting every publish) and a payload of
 * that n's low byte. Checked once everything is sent and read: the broker got whole PUBLISH
 * packets, one per publish made, in the order they were made, each with its topic and payload,
 * and nothing else. A violation traps.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mosquitto.h>

#include "gateway/mqtt_guard.h"
#include "gateway/mqtt_packet.h"
#include "fuzz_loopback.h"

#define MAX_PUBS      512
#define MAX_PAYLOADS  (2u * 1024 * 1024) /* bytes published per input at most */
#define BIG           300000u

static uint8_t payload[BIG];
static uint8_t *got;
static size_t got_len, got_cap = 4u * 1024 * 1024 + 65536;

struct pub {
	char topic[16];
	size_t len;
};

static struct pub pubs[MAX_PUBS];
static unsigned n_pubs;

struct link {
	struct mosquitto *m;
	struct sg_mqtt_guard *g;
	int srv;
	int protocol;
	bool lib_wrote;
};

static void broker_reads(struct link *l, size_t most)
{
	while (most > 0 && got_len < got_cap) {
		size_t want = most < got_cap - got_len ? most : got_cap - got_len;
		ssize_t k = recv(l->srv, got + got_len, want, MSG_DONTWAIT);
		if (k <= 0)
			return;
		got_len += (size_t)k;
		most -= (size_t)k;
	}
}

static void relay_out(struct link *l, bool take)
{
	int r = mqtt_guard_flush(l->g, take || l->lib_wrote);
	if (r == 0)
		l->lib_wrote = false;
	if (mosquitto_want_write(l->m)) {
		mosquitto_loop_write(l->m, 64);
		l->lib_wrote = true;
	}
}

static size_t size_of(uint8_t s)
{
	return s == 255 ? BIG : (size_t)s * s;
}

static bool lib_publish(struct link *l, const char *topic, size_t len, int qos)
{
	l->lib_wrote = true;
	return mosquitto_publish_v5(l->m, NULL, topic, (int)len, payload, qos, false, NULL) == MOSQ_ERR_SUCCESS;
}

/* What publish_own() in mqtt.c does, the guard's part of it. */
static bool own_publish(struct link *l, const char *topic, size_t len)
{
	size_t size = mqtt_packet_publish_size(l->protocol, strlen(topic), len, 0);
	uint8_t *d;

	if (mosquitto_want_write(l->m))
		return lib_publish(l, topic, len, 0);
	if (l->lib_wrote) {
		if (mqtt_guard_take(l->g) < 0)
			return lib_publish(l, topic, len, 0);
		l->lib_wrote = false;
	}
	d = mqtt_guard_room(l->g, size);
	if (!d)
		return lib_publish(l, topic, len, 0);
	if (mqtt_packet_publish(d, l->protocol, topic, strlen(topic), payload, len, false, NULL) != size)
		__builtin_trap();
	mqtt_guard_put(l->g, size);
	return true;
}

static bool link_up(struct link *l, int protocol)
{
	uint16_t port;
	int listener = fuzz_loopback(&port);
	uint8_t junk[512];
	struct pollfd pf;

	if (!got && !(got = malloc(got_cap)))
		abort();
	memset(l, 0, sizeof(*l));
	l->protocol = protocol;
	l->srv = -1;
	l->m = mosquitto_new("fuzz-out", true, NULL);
	if (!l->m)
		return false;
	mosquitto_int_option(l->m, MOSQ_OPT_PROTOCOL_VERSION, protocol == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
	mosquitto_int_option(l->m, MOSQ_OPT_SEND_MAXIMUM, 65535); /* QoS 1/2 written at once, never held back */
	mosquitto_int_option(l->m, MOSQ_OPT_TCP_NODELAY, 1);      /* as mqtt.c: no Nagle delay */
	if (mosquitto_connect_bind_v5(l->m, "127.0.0.1", port, 60, NULL, NULL) != MOSQ_ERR_SUCCESS)
		return false;
	l->srv = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (l->srv < 0)
		return false;
	l->g = mqtt_guard_new(mosquitto_socket(l->m), protocol, MQTT_GUARD_MIN_BROKER_PACKET);
	if (!l->g)
		return false;
	pf = (struct pollfd){.fd = l->srv, .events = POLLIN};
	if (poll(&pf, 1, 2000) <= 0)
		return false;
	while (recv(l->srv, junk, sizeof(junk), 0) > 0) /* the CONNECT */
		;
	if (send(l->srv, protocol == 5 ? "\x20\x03\x00\x00\x00" : "\x20\x02\x00\x00", protocol == 5 ? 5 : 4,
	         MSG_NOSIGNAL) < 0)
		return false;
	pf = (struct pollfd){.fd = mqtt_guard_fd(l->g), .events = POLLIN};
	if (poll(&pf, 1, 2000) <= 0 || mqtt_guard_read(l->g) < 0)
		return false;
	for (int i = 0; i < 64 && mqtt_guard_deliver(l->g); i++)
		mosquitto_loop_read(l->m, 64);
	return true;
}

static void link_down(struct link *l)
{
	mqtt_guard_free(l->g);
	if (l->srv >= 0)
		close(l->srv);
	mosquitto_destroy(l->m);
}

static size_t vbi(const uint8_t *p, size_t n, size_t *v)
{
	size_t i = 0, mult = 1;

	*v = 0;
	do {
		if (i >= n || i >= 4)
			__builtin_trap();
		*v += (size_t)(p[i] & 0x7f) * mult;
		mult *= 128;
	} while (p[i++] & 0x80);
	return i;
}

/* The broker's bytes: exactly the publishes made, in order, whole. */
static void check(int protocol)
{
	size_t off = 0;

	for (unsigned k = 0; k < n_pubs; k++) {
		size_t rl, h, tl, pos, plen;
		uint8_t b0;

		if (off >= got_len)
			__builtin_trap(); /* a publish never arrived */
		b0 = got[off];
		if ((b0 >> 4) != 3)
			__builtin_trap(); /* not a PUBLISH where one must start */
		h = 1 + vbi(got + off + 1, got_len - off - 1, &rl);
		if (off + h + rl > got_len)
			__builtin_trap(); /* cut short */
		pos = off + h;
		tl = (size_t)got[pos] << 8 | got[pos + 1];
		if (tl != strlen(pubs[k].topic) || memcmp(got + pos + 2, pubs[k].topic, tl) != 0)
			__builtin_trap(); /* another message here: out of order, or bytes interleaved */
		pos += 2 + tl;
		if ((b0 >> 1) & 3)
			pos += 2; /* packet identifier */
		if (protocol == 5) {
			size_t pl;
			pos += vbi(got + pos, off + h + rl - pos, &pl);
			pos += pl;
		}
		plen = off + h + rl - pos;
		if (plen != pubs[k].len)
			__builtin_trap();
		for (size_t i = 0; i < plen; i++)
			if (got[pos + i] != (uint8_t)k)
				__builtin_trap();
		off += h + rl;
	}
	if (off != got_len)
		__builtin_trap(); /* more than was published */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct link l;
	size_t total = 0, expect = 0, i = 1;
	int protocol;

	if (size < 1)
		return 0;
	protocol = data[0] & 1 ? 5 : 4;
	n_pubs = 0;
	got_len = 0;
	if (!link_up(&l, protocol)) {
		link_down(&l);
		return 0;
	}
	while (i < size && n_pubs < MAX_PUBS) {
		uint8_t op = data[i++] % 4, a = i < size ? data[i] : 0, b = i + 1 < size ? data[i + 1] : 0;
		struct pub *p = &pubs[n_pubs];
		bool ok;

		switch (op) {
		case 0:
			i += 2;
			p->len = size_of(b);
			if (total + p->len > MAX_PAYLOADS)
				continue;
			snprintf(p->topic, sizeof(p->topic), "L/%u", n_pubs);
			memset(payload, (uint8_t)n_pubs, p->len);
			ok = lib_publish(&l, p->topic, p->len, a % 3);
			break;
		case 1:
			i += 1;
			p->len = size_of(a);
			if (total + p->len > MAX_PAYLOADS)
				continue;
			snprintf(p->topic, sizeof(p->topic), "O/%u", n_pubs);
			memset(payload, (uint8_t)n_pubs, p->len);
			ok = own_publish(&l, p->topic, p->len);
			break;
		case 2:
			i += 1;
			broker_reads(&l, (size_t)a * 64 + 1);
			continue;
		default:
			i += 1;
			relay_out(&l, a & 1);
			continue;
		}
		if (!ok)
			__builtin_trap(); /* a publish refused on a good connection */
		expect += op == 1 ? mqtt_packet_publish_size(protocol, strlen(p->topic), p->len, 0)
		                  : mqtt_guard_publish_size(protocol, p->topic, p->len, a % 3, NULL);
		total += p->len;
		n_pubs++;
	}
	/* everything out and read by the broker (bounded: 100 quiet rounds of 50 ms at the most), then
	 * a last look for anything more */
	for (int quiet = 0; got_len < expect && quiet < 100;) {
		size_t before = got_len;
		struct pollfd pf = {.fd = l.srv, .events = POLLIN};
		relay_out(&l, true);
		broker_reads(&l, SIZE_MAX);
		if (got_len == before && !mosquitto_want_write(l.m) && !mqtt_guard_pending(l.g) && poll(&pf, 1, 50) <= 0)
			quiet++;
	}
	{
		struct pollfd pf = {.fd = l.srv, .events = POLLIN};
		if (poll(&pf, 1, 10) > 0)
			broker_reads(&l, SIZE_MAX);
	}
	check(protocol);
	link_down(&l);
	return 0;
}
