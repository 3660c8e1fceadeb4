/* SPDX-License-Identifier: MIT */
/*
 * mqtt_guard.c — see mqtt_guard.h. Section numbers are those of the OASIS
 * standards MQTT Version 3.1.1 (2014) and MQTT Version 5.0 (2019).
 *
 * The checker refuses what a server may not send, and nothing a conforming
 * broker passes on from other clients: payloads, Response Topics,
 * Correlation Data and user properties are the command router's business
 * (a client could otherwise cut our connection with one publish). Reason
 * codes are passed on as they are; libmosquitto reports them.
 */
#include "mqtt_guard.h"
#include "mqtt_packet.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mqtt_protocol.h>

/* Control packet types (§2.1.2 in both standards). */
enum {
	T_CONNECT = 1, T_CONNACK, T_PUBLISH, T_PUBACK, T_PUBREC, T_PUBREL, T_PUBCOMP,
	T_SUBSCRIBE, T_SUBACK, T_UNSUBSCRIBE, T_UNSUBACK, T_PINGREQ, T_PINGRESP, T_DISCONNECT, T_AUTH,
};

static const char *const type_names[16] = {
	"reserved", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
};

const char *mqtt_guard_type_name(uint8_t type)
{
	return type_names[type & 15];
}

/* ---- MQTT 5 properties (§2.2.2.2, table 2-4) ------------------------------------------------- */

enum ptype {
	PT_NONE = 0,
	PT_BOOL,   /* Byte, 0 or 1 */
	PT_U16,
	PT_U16NZ,  /* Two Byte Integer, not 0 */
	PT_U32,
	PT_U32NZ,  /* Four Byte Integer, not 0 */
	PT_VBI_NZ, /* Variable Byte Integer, not 0 */
	PT_STR,    /* UTF-8 Encoded String */
	PT_BIN,    /* Binary Data */
	PT_PAIR,   /* UTF-8 String Pair */
};

#define IN(t) (1u << (t))
#define ACKS  (IN(T_PUBACK) | IN(T_PUBREC) | IN(T_PUBREL) | IN(T_PUBCOMP))

struct prop_def {
	const char *name;
	uint8_t type;
	uint16_t in; /* the packets a server may send it in */
	bool many;   /* may appear more than once */
};

static const struct prop_def props[0x2B] = {
	[MQTT_PROP_PAYLOAD_FORMAT_INDICATOR] = {"Payload Format Indicator", PT_BOOL, IN(T_PUBLISH), false},
	[MQTT_PROP_MESSAGE_EXPIRY_INTERVAL] = {"Message Expiry Interval", PT_U32, IN(T_PUBLISH), false},
	[MQTT_PROP_CONTENT_TYPE] = {"Content Type", PT_STR, IN(T_PUBLISH), false},
	[MQTT_PROP_RESPONSE_TOPIC] = {"Response Topic", PT_STR, IN(T_PUBLISH), false},
	[MQTT_PROP_CORRELATION_DATA] = {"Correlation Data", PT_BIN, IN(T_PUBLISH), false},
	/* §3.3.2.3.8: a PUBLISH to the client may carry several */
	[MQTT_PROP_SUBSCRIPTION_IDENTIFIER] = {"Subscription Identifier", PT_VBI_NZ, IN(T_PUBLISH), true},
	/* §3.14.2.2.2: a server must not send it in DISCONNECT */
	[MQTT_PROP_SESSION_EXPIRY_INTERVAL] = {"Session Expiry Interval", PT_U32, IN(T_CONNACK), false},
	[MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER] = {"Assigned Client Identifier", PT_STR, IN(T_CONNACK), false},
	[MQTT_PROP_SERVER_KEEP_ALIVE] = {"Server Keep Alive", PT_U16, IN(T_CONNACK), false},
	[MQTT_PROP_AUTHENTICATION_METHOD] = {"Authentication Method", PT_STR, IN(T_CONNACK), false},
	[MQTT_PROP_AUTHENTICATION_DATA] = {"Authentication Data", PT_BIN, IN(T_CONNACK), false},
	[MQTT_PROP_REQUEST_PROBLEM_INFORMATION] = {"Request Problem Information", PT_BOOL, 0, false},
	[MQTT_PROP_WILL_DELAY_INTERVAL] = {"Will Delay Interval", PT_U32, 0, false},
	[MQTT_PROP_REQUEST_RESPONSE_INFORMATION] = {"Request Response Information", PT_BOOL, 0, false},
	[MQTT_PROP_RESPONSE_INFORMATION] = {"Response Information", PT_STR, IN(T_CONNACK), false},
	[MQTT_PROP_SERVER_REFERENCE] = {"Server Reference", PT_STR, IN(T_CONNACK) | IN(T_DISCONNECT), false},
	[MQTT_PROP_REASON_STRING] = {"Reason String", PT_STR,
	                             IN(T_CONNACK) | ACKS | IN(T_SUBACK) | IN(T_UNSUBACK) | IN(T_DISCONNECT), false},
	[MQTT_PROP_RECEIVE_MAXIMUM] = {"Receive Maximum", PT_U16NZ, IN(T_CONNACK), false},
	[MQTT_PROP_TOPIC_ALIAS_MAXIMUM] = {"Topic Alias Maximum", PT_U16, IN(T_CONNACK), false},
	/* §3.1.2.11.5: our CONNECT allows no topic alias (Topic Alias Maximum absent = 0) */
	[MQTT_PROP_TOPIC_ALIAS] = {"Topic Alias", PT_U16NZ, 0, false},
	/* §3.2.2.3.4: 0 or 1 */
	[MQTT_PROP_MAXIMUM_QOS] = {"Maximum QoS", PT_BOOL, IN(T_CONNACK), false},
	[MQTT_PROP_RETAIN_AVAILABLE] = {"Retain Available", PT_BOOL, IN(T_CONNACK), false},
	[MQTT_PROP_USER_PROPERTY] = {"User Property", PT_PAIR, 0xFFFF, true},
	[MQTT_PROP_MAXIMUM_PACKET_SIZE] = {"Maximum Packet Size", PT_U32NZ, IN(T_CONNACK), false},
	[MQTT_PROP_WILDCARD_SUB_AVAILABLE] = {"Wildcard Subscription Available", PT_BOOL, IN(T_CONNACK), false},
	[MQTT_PROP_SUBSCRIPTION_ID_AVAILABLE] = {"Subscription Identifier Available", PT_BOOL, IN(T_CONNACK), false},
	[MQTT_PROP_SHARED_SUB_AVAILABLE] = {"Shared Subscription Available", PT_BOOL, IN(T_CONNACK), false},
};

/* ---- reading ------------------------------------------------------------------------------------ */

struct rd {
	const uint8_t *p;
	size_t pos, end;
};

static size_t rd_left(const struct rd *r)
{
	return r->end - r->pos;
}

static bool rd_u8(struct rd *r, uint8_t *v)
{
	if (rd_left(r) < 1)
		return false;
	*v = r->p[r->pos++];
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	if (rd_left(r) < 2)
		return false;
	*v = (uint16_t)(r->p[r->pos] << 8 | r->p[r->pos + 1]);
	r->pos += 2;
	return true;
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
	if (rd_left(r) < 4)
		return false;
	*v = (uint32_t)r->p[r->pos] << 24 | (uint32_t)r->p[r->pos + 1] << 16 | (uint32_t)r->p[r->pos + 2] << 8 |
	     r->p[r->pos + 3];
	r->pos += 4;
	return true;
}

/* Variable Byte Integer (§1.5.5 in MQTT 5, §2.2.3 in 3.1.1): 1 ok, 0 truncated, -1 too long or not minimal. */
static int rd_vbi(struct rd *r, uint32_t *v)
{
	uint32_t x = 0;

	for (unsigned i = 0; i < 4; i++) {
		uint8_t b;
		if (!rd_u8(r, &b))
			return 0;
		x |= (uint32_t)(b & 0x7F) << (7 * i);
		if (!(b & 0x80)) {
			if (i > 0 && b == 0)
				return -1; /* "MUST use the minimum number of bytes" */
			*v = x;
			return 1;
		}
	}
	return -1;
}

/* Binary Data / the bytes of a UTF-8 string: a two-byte length, then that many bytes. */
static bool rd_bytes(struct rd *r, const uint8_t **s, uint16_t *n)
{
	if (!rd_u16(r, n) || rd_left(r) < *n)
		return false;
	*s = r->p + r->pos;
	r->pos += *n;
	return true;
}

static unsigned vbi_len(size_t v)
{
	return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

/* ---- the checker -------------------------------------------------------------------------------- */

static int bad(struct mqtt_guard_packet *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct mqtt_guard_packet *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->why, sizeof(out->why), fmt, ap);
	va_end(ap);
	return MQTT_GUARD_BAD;
}

/* A UTF-8 Encoded String (§1.5.4): what libmosquitto itself accepts (no NUL, no control characters). */
static bool utf8_ok(const uint8_t *s, uint16_t n)
{
	return mosquitto_validate_utf8((const char *)s, n) == MOSQ_ERR_SUCCESS;
}

static int check_props(struct rd *r, uint8_t type, struct mqtt_guard_packet *out)
{
	const char *tn = type_names[type];
	uint64_t seen = 0;
	uint32_t plen;
	struct rd pr;
	int v;

	v = rd_vbi(r, &plen);
	if (v == 0)
		return bad(out, "the property length is missing");
	if (v < 0)
		return bad(out, "the property length is not a valid variable byte integer");
	if (plen > rd_left(r))
		return bad(out, "property length %u, but %zu byte%s left", plen, rd_left(r), rd_left(r) == 1 ? "" : "s");
	pr = (struct rd){.p = r->p, .pos = r->pos, .end = r->pos + plen};
	r->pos += plen;

	while (rd_left(&pr) > 0) {
		const struct prop_def *d;
		const uint8_t *s, *s2;
		uint16_t n, n2, u16;
		uint32_t u32;
		uint8_t id, b;
		bool ok = true;

		rd_u8(&pr, &id); /* identifiers are Variable Byte Integers; all defined ones take one byte */
		d = id < sizeof(props) / sizeof(props[0]) ? &props[id] : NULL;
		if (!d || !d->name)
			return bad(out, "unknown property 0x%02x", id);
		if (!(d->in & IN(type)))
			return bad(out, "property %s (0x%02x) is not allowed in %s", d->name, id, tn);
		if (!d->many && (seen >> id) & 1)
			return bad(out, "property %s appears twice", d->name);
		seen |= 1ULL << id;
		switch (d->type) {
		case PT_BOOL:
			ok = rd_u8(&pr, &b);
			if (ok && b > 1)
				return bad(out, "property %s is %u, not 0 or 1", d->name, b);
			break;
		case PT_U16:
		case PT_U16NZ:
			ok = rd_u16(&pr, &u16);
			if (ok && d->type == PT_U16NZ && u16 == 0)
				return bad(out, "property %s is 0", d->name);
			break;
		case PT_U32:
		case PT_U32NZ:
			ok = rd_u32(&pr, &u32);
			if (ok && d->type == PT_U32NZ && u32 == 0)
				return bad(out, "property %s is 0", d->name);
			if (ok && id == MQTT_PROP_MAXIMUM_PACKET_SIZE)
				out->max_packet = u32;
			break;
		case PT_VBI_NZ:
			v = rd_vbi(&pr, &u32);
			if (v < 0)
				return bad(out, "property %s is not a valid variable byte integer", d->name);
			ok = v > 0;
			if (ok && u32 == 0)
				return bad(out, "property %s is 0", d->name);
			break;
		case PT_STR:
		case PT_BIN:
			ok = rd_bytes(&pr, &s, &n);
			if (ok && d->type == PT_STR && !utf8_ok(s, n))
				return bad(out, "property %s is not valid UTF-8", d->name);
			break;
		case PT_PAIR:
			ok = rd_bytes(&pr, &s, &n) && rd_bytes(&pr, &s2, &n2);
			if (ok && (!utf8_ok(s, n) || !utf8_ok(s2, n2)))
				return bad(out, "property %s is not valid UTF-8", d->name);
			break;
		default:
			return bad(out, "unknown property 0x%02x", id);
		}
		if (!ok)
			return bad(out, "property %s overruns the property length", d->name);
	}
	return MQTT_GUARD_OK;
}

static int check_end(const struct rd *r, struct mqtt_guard_packet *out)
{
	if (rd_left(r) > 0)
		return bad(out, "%zu bytes after the end of the %s", rd_left(r), type_names[out->type]);
	return MQTT_GUARD_OK;
}

static int check_pid(struct rd *r, struct mqtt_guard_packet *out)
{
	uint16_t pid;

	if (!rd_u16(r, &pid))
		return bad(out, "the packet identifier is missing");
	if (pid == 0)
		return bad(out, "packet identifier 0");
	return MQTT_GUARD_OK;
}

/* §3.2 (both standards) */
static int check_connack(const struct mqtt_guard_state *st, struct rd *r, struct mqtt_guard_packet *out)
{
	uint8_t flags = 0, rc = 0;

	if (!rd_u8(r, &flags) || !rd_u8(r, &rc))
		return bad(out, "a CONNACK shorter than 2 bytes");
	if (flags & 0xFE)
		return bad(out, "reserved acknowledge flags set (0x%02x)", flags);
	if (rc != 0 && (flags & 1))
		return bad(out, "session present with a refusal");
	if (st->protocol != 5)
		return check_end(r, out);
	/* An MQTT 3.1.1 broker answers our MQTT 5 CONNECT with its own CONNACK, return code 1
	 * "unacceptable protocol level" (3.1.1 §3.1.2.2); libmosquitto reports that. */
	if (rd_left(r) == 0 && rc == 1)
		return MQTT_GUARD_OK;
	if (check_props(r, T_CONNACK, out) < 0)
		return MQTT_GUARD_BAD;
	return check_end(r, out);
}

/* §3.3 */
static int check_publish(const struct mqtt_guard_state *st, uint8_t flags, struct rd *r,
                         struct mqtt_guard_packet *out)
{
	const uint8_t *topic;
	uint16_t n;

	if (!rd_bytes(r, &topic, &n))
		return bad(out, "the topic name overruns the packet");
	if (n == 0)
		return bad(out, "an empty topic name");
	if (!utf8_ok(topic, n))
		return bad(out, "the topic name is not valid UTF-8");
	if (memchr(topic, '+', n) || memchr(topic, '#', n))
		return bad(out, "a wildcard in the topic name");
	if (((flags >> 1) & 3) && check_pid(r, out) < 0)
		return MQTT_GUARD_BAD;
	if (st->protocol == 5 && check_props(r, T_PUBLISH, out) < 0)
		return MQTT_GUARD_BAD;
	return MQTT_GUARD_OK; /* the rest is the payload */
}

/* §3.4–§3.7 */
static int check_ack(const struct mqtt_guard_state *st, uint8_t type, struct rd *r, struct mqtt_guard_packet *out)
{
	uint8_t rc;

	if (check_pid(r, out) < 0)
		return MQTT_GUARD_BAD;
	if (st->protocol != 5 || rd_left(r) == 0)
		return check_end(r, out);
	rd_u8(r, &rc);
	if (rd_left(r) == 0)
		return MQTT_GUARD_OK; /* reason code without properties (MQTT 5 §3.4.2.1) */
	if (check_props(r, type, out) < 0)
		return MQTT_GUARD_BAD;
	return check_end(r, out);
}

/* §3.9, §3.11 */
static int check_suback(const struct mqtt_guard_state *st, uint8_t type, struct rd *r,
                        struct mqtt_guard_packet *out)
{
	if (check_pid(r, out) < 0)
		return MQTT_GUARD_BAD;
	if (st->protocol != 5 && type == T_UNSUBACK)
		return check_end(r, out); /* 3.1.1 §3.11.3: no payload */
	if (st->protocol == 5 && check_props(r, type, out) < 0)
		return MQTT_GUARD_BAD;
	if (rd_left(r) == 0)
		return bad(out, "no reason code");
	return MQTT_GUARD_OK;
}

/* MQTT 5 §3.14 */
static int check_disconnect(struct rd *r, struct mqtt_guard_packet *out)
{
	uint8_t rc;

	if (!rd_u8(r, &rc) || rd_left(r) == 0)
		return MQTT_GUARD_OK;
	if (check_props(r, T_DISCONNECT, out) < 0)
		return MQTT_GUARD_BAD;
	return check_end(r, out);
}

/* The first byte (§2.1.1–§2.1.3), as soon as it is there. */
static int check_first_byte(const struct mqtt_guard_state *st, uint8_t b0, struct mqtt_guard_packet *out)
{
	uint8_t type = b0 >> 4, flags = b0 & 15;

	switch (type) {
	case T_CONNECT:
	case T_SUBSCRIBE:
	case T_UNSUBSCRIBE:
	case T_PINGREQ:
		return bad(out, "a packet only a client sends");
	case 0:
		return bad(out, "reserved packet type 0");
	case T_AUTH:
		return bad(out, "the gateway does not use enhanced authentication");
	case T_DISCONNECT:
		if (st->protocol != 5)
			return bad(out, "an MQTT 3.1.1 server does not send DISCONNECT");
		break;
	default:
		break;
	}
	if (type == T_PUBLISH) {
		if (((flags >> 1) & 3) == 3)
			return bad(out, "QoS 3");
		if ((flags & 0x08) && !(flags & 0x06))
			return bad(out, "DUP set on a QoS 0 message");
	} else if (flags != (type == T_PUBREL ? 2 : 0)) {
		return bad(out, "reserved flags 0x%x in the fixed header", flags);
	}
	if (!st->connacked && type != T_CONNACK)
		return bad(out, "a %s before the CONNACK", type_names[type]);
	if (st->connacked && type == T_CONNACK)
		return bad(out, "a second CONNACK");
	return MQTT_GUARD_MORE;
}

int mqtt_guard_check(struct mqtt_guard_state *st, const uint8_t *buf, size_t len, size_t max_size,
                     struct mqtt_guard_packet *out)
{
	struct rd r = {.p = buf, .pos = 1, .end = len};
	uint32_t rl;
	uint8_t type;
	size_t size;
	int v;

	out->type = 0;
	out->size = 0;
	out->max_packet = 0;
	out->why[0] = '\0';
	if (len == 0)
		return MQTT_GUARD_MORE;
	type = out->type = buf[0] >> 4;
	if (check_first_byte(st, buf[0], out) < 0)
		return MQTT_GUARD_BAD;
	v = rd_vbi(&r, &rl);
	if (v == 0)
		return MQTT_GUARD_MORE;
	if (v < 0)
		return bad(out, "the remaining length is not a valid variable byte integer");
	size = r.pos + rl;
	if (size > max_size)
		return bad(out, "%zu bytes, more than the %zu accepted", size, max_size);
	out->size = size;
	if (len < size)
		return MQTT_GUARD_MORE;
	r.end = size;

	switch (type) {
	case T_CONNACK:
		v = check_connack(st, &r, out);
		break;
	case T_PUBLISH:
		v = check_publish(st, buf[0] & 15, &r, out);
		break;
	case T_PUBACK:
	case T_PUBREC:
	case T_PUBREL:
	case T_PUBCOMP:
		v = check_ack(st, type, &r, out);
		break;
	case T_SUBACK:
	case T_UNSUBACK:
		v = check_suback(st, type, &r, out);
		break;
	case T_PINGRESP:
		v = check_end(&r, out);
		break;
	case T_DISCONNECT:
		v = check_disconnect(&r, out);
		break;
	default:
		v = bad(out, "unexpected packet type %u", type); /* check_first_byte() refused it already */
		break;
	}
	if (v < 0)
		return MQTT_GUARD_BAD;
	if (type == T_CONNACK)
		st->connacked = true;
	return MQTT_GUARD_OK;
}

/* ---- outgoing sizes ----------------------------------------------------------------------------- */

static size_t prop_size(const mosquitto_property *p)
{
	int id = mosquitto_property_identifier(p);
	const struct prop_def *d = id > 0 && id < (int)(sizeof(props) / sizeof(props[0])) ? &props[id] : NULL;
	char *s = NULL, *s2 = NULL;
	void *bin = NULL;
	uint16_t n = 0;
	uint32_t v = 0;
	size_t size = 1;

	switch (d ? d->type : PT_NONE) {
	case PT_BOOL: return size + 1;
	case PT_U16:
	case PT_U16NZ: return size + 2;
	case PT_U32:
	case PT_U32NZ: return size + 4;
	case PT_VBI_NZ:
		mosquitto_property_read_varint(p, id, &v, false);
		return size + vbi_len(v);
	case PT_STR:
		mosquitto_property_read_string(p, id, &s, false);
		size += 2 + (s ? strlen(s) : 0);
		break;
	case PT_BIN:
		mosquitto_property_read_binary(p, id, &bin, &n, false);
		size += 2 + n;
		break;
	case PT_PAIR:
		mosquitto_property_read_string_pair(p, id, &s, &s2, false);
		size += 4 + (s ? strlen(s) : 0) + (s2 ? strlen(s2) : 0);
		break;
	default:
		break;
	}
	free(s);
	free(s2);
	free(bin);
	return size;
}

size_t mqtt_guard_publish_size(int protocol, const char *topic, size_t payload_len, int qos,
                               const mosquitto_property *props_list)
{
	size_t plen = 0;

	if (protocol == 5)
		for (const mosquitto_property *p = props_list; p; p = mosquitto_property_next(p))
			plen += prop_size(p);
	/* the layout is the one mqtt_packet.c writes; a packet identifier (QoS 1/2) is two bytes more */
	return mqtt_packet_publish_size(protocol, strlen(topic), payload_len + (qos > 0 ? 2 : 0), plen);
}

/* ---- the relay ---------------------------------------------------------------------------------- */

#define IN_START  (16 * 1024)
#define IN_MAX    (2 * MQTT_GUARD_MAX_PACKET)
#define OUT_START (64 * 1024)        /* also the most one read from the pair asks for */
#define OUT_MAX   (4 * 1024 * 1024)  /* what may wait for the broker socket: see mqtt_guard_room() */

struct sg_mqtt_guard {
	int broker_fd;           /* the TCP connection */
	int pair_fd;             /* our end of the socket pair */
	int lib_fd;              /* libmosquitto's end: its number, its to close */
	uint32_t min_broker_packet;
	struct mqtt_guard_state st;

	/* from the broker: [head, valid) checked, not yet passed on; [valid, end) not yet complete */
	uint8_t *in;
	size_t in_cap, in_head, in_valid, in_end;
	size_t need;             /* size of the incomplete packet at in_valid, once known */

	/* to the broker: [pos, len) not yet sent, whole packets from libmosquitto and from
	 * mqtt_guard_room() in the order they came */
	uint8_t *out;
	size_t out_cap, out_pos, out_len;

	bool cut;                /* the connection is over: nothing more is read from the broker */
	bool lib_eof;            /* libmosquitto was told (shutdown of our end's writing side) */
	bool lib_closed;         /* libmosquitto closed its end */
	char error[192];
};

struct sg_mqtt_guard *mqtt_guard_new(int lib_fd, int protocol, uint32_t min_broker_packet)
{
	struct sg_mqtt_guard *g;
	int sv[2] = {-1, -1}, bfd = -1, size = MQTT_GUARD_MAX_PACKET, e;

	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->in_cap = IN_START;
	g->in = malloc(g->in_cap);
	g->out_cap = OUT_START;
	g->out = malloc(g->out_cap);
	if (!g->in || !g->out)
		goto fail;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		goto fail;
	/* room for a whole packet of the largest size each way (the kernel caps it at wmem_max) */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	bfd = fcntl(lib_fd, F_DUPFD_CLOEXEC, 3);
	if (bfd < 0)
		goto fail;
	if (fcntl(bfd, F_SETFL, fcntl(bfd, F_GETFL) | O_NONBLOCK) < 0)
		goto fail;
	/* From here on libmosquitto's number is our socket pair; the TCP connection lives on in bfd. */
	if (dup3(sv[0], lib_fd, O_CLOEXEC) < 0)
		goto fail;
	close(sv[0]);
	g->broker_fd = bfd;
	g->pair_fd = sv[1];
	g->lib_fd = lib_fd;
	g->min_broker_packet = min_broker_packet;
	g->st.protocol = protocol;
	return g;

fail:
	e = errno;
	if (bfd >= 0)
		close(bfd);
	if (sv[0] >= 0) {
		close(sv[0]);
		close(sv[1]);
	}
	free(g->in);
	free(g->out);
	free(g);
	errno = e;
	return NULL;
}

void mqtt_guard_free(struct sg_mqtt_guard *g)
{
	if (!g)
		return;
	close(g->broker_fd);
	close(g->pair_fd);
	free(g->in);
	free(g->out);
	free(g);
}

int mqtt_guard_fd(const struct sg_mqtt_guard *g)
{
	return g->broker_fd;
}

int mqtt_guard_lib_fd(const struct sg_mqtt_guard *g)
{
	return g->lib_fd;
}

const char *mqtt_guard_error(const struct sg_mqtt_guard *g)
{
	return g->error;
}

bool mqtt_guard_pending(const struct sg_mqtt_guard *g)
{
	return !g->cut && g->out_pos < g->out_len;
}

/* End the connection: the broker sees it closed, libmosquitto once it has read what was valid. */
static int cut(struct sg_mqtt_guard *g, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cut(struct sg_mqtt_guard *g, int err, const char *fmt, ...)
{
	va_list ap;

	if (!g->cut) {
		g->cut = true;
		if (fmt) {
			va_start(ap, fmt);
			vsnprintf(g->error, sizeof(g->error), fmt, ap);
			va_end(ap);
		}
		/* also makes the socket readable, so the loop comes back to let libmosquitto see the end */
		shutdown(g->broker_fd, SHUT_RDWR);
	}
	return -err;
}

/* Room to read into: compact, grow to hold the packet being read, shrink back after a large one. */
static bool make_room(struct sg_mqtt_guard *g)
{
	size_t want;
	uint8_t *p;

	if (g->in_head > 0) {
		memmove(g->in, g->in + g->in_head, g->in_end - g->in_head);
		g->in_valid -= g->in_head;
		g->in_end -= g->in_head;
		g->in_head = 0;
	}
	want = g->in_valid + (g->need > IN_START ? g->need : IN_START);
	if (want > IN_MAX)
		want = IN_MAX;
	if (want > g->in_cap || (g->in_cap > IN_START && g->in_end == 0 && want < g->in_cap)) {
		p = realloc(g->in, want);
		if (p) {
			g->in = p;
			g->in_cap = want;
		}
	}
	return g->in_end < g->in_cap;
}

int mqtt_guard_read(struct sg_mqtt_guard *g)
{
	struct mqtt_guard_packet pk;
	ssize_t n;

	if (g->cut)
		return 0;
	if (!make_room(g)) {
		if (g->in_valid > g->in_head)
			return 0; /* libmosquitto has not taken what is there yet */
		return cut(g, ENOMEM, "no memory for a packet of %zu bytes", g->need);
	}
	n = recv(g->broker_fd, g->in + g->in_end, g->in_cap - g->in_end, MSG_DONTWAIT);
	if (n == 0)
		return cut(g, ECONNRESET, NULL);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : cut(g, errno, NULL);
	g->in_end += (size_t)n;

	while (g->in_valid < g->in_end) {
		int v = mqtt_guard_check(&g->st, g->in + g->in_valid, g->in_end - g->in_valid, MQTT_GUARD_MAX_PACKET,
		                         &pk);
		if (v == MQTT_GUARD_BAD)
			return cut(g, EPROTO, "broker sent a malformed %s packet (%s)", type_names[pk.type], pk.why);
		if (v == MQTT_GUARD_MORE) {
			g->need = pk.size;
			break;
		}
		if (pk.type == T_CONNACK && pk.max_packet && pk.max_packet < g->min_broker_packet)
			return cut(g, EPROTO,
			           "broker accepts packets of at most %u bytes (Maximum Packet Size), fewer than "
			           "the %u the gateway may have to send",
			           pk.max_packet, g->min_broker_packet);
		g->in_valid += pk.size;
		g->need = 0;
	}
	return 0;
}

bool mqtt_guard_deliver(struct sg_mqtt_guard *g)
{
	int queued = 0;

	if (g->in_valid > g->in_head && !g->lib_closed) {
		ssize_t n = send(g->pair_fd, g->in + g->in_head, g->in_valid - g->in_head, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			g->in_head += (size_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			g->lib_closed = true; /* nobody reads any more */
	}
	if (g->lib_closed) {
		g->in_head = g->in_valid;
		return false;
	}
	if (g->cut && g->in_head == g->in_valid && !g->lib_eof) {
		shutdown(g->pair_fd, SHUT_WR);
		g->lib_eof = true;
	}
	if (g->lib_eof || g->in_valid > g->in_head)
		return true;
	/* bytes libmosquitto has not read yet (SIOCOUTQ: our unread output) */
	return ioctl(g->pair_fd, SIOCOUTQ, &queued) == 0 && queued > 0;
}

/*
 * Room for N more bytes at the end of the queue to the broker: what was sent
 * is dropped from its front; it grows up to OUT_MAX, and goes back to
 * OUT_START once a burst has gone out.
 */
static bool out_room(struct sg_mqtt_guard *g, size_t n)
{
	size_t want;
	uint8_t *p;

	if (g->out_pos == g->out_len) {
		g->out_pos = g->out_len = 0;
		if (g->out_cap > OUT_START && n <= OUT_START && (p = realloc(g->out, OUT_START))) {
			g->out = p;
			g->out_cap = OUT_START;
		}
	}
	if (g->out_cap - g->out_len >= n)
		return true;
	if (g->out_pos > 0) {
		memmove(g->out, g->out + g->out_pos, g->out_len - g->out_pos);
		g->out_len -= g->out_pos;
		g->out_pos = 0;
		if (g->out_cap - g->out_len >= n)
			return true;
	}
	if (n > OUT_MAX - g->out_len)
		return false;
	want = g->out_cap;
	while (want - g->out_len < n)
		want *= 2;
	if (want > OUT_MAX)
		want = OUT_MAX;
	p = realloc(g->out, want);
	if (!p)
		return false;
	g->out = p;
	g->out_cap = want;
	return true;
}

/*
 * One read of what libmosquitto wrote, onto the end of the queue. Sets
 * *DRAINED when nothing more is there: a read shorter than it asked for took
 * all there was (one thread: nobody wrote since). -1: no room in the queue.
 */
static int take_once(struct sg_mqtt_guard *g, bool *drained)
{
	size_t room;
	ssize_t n;

	if (g->lib_closed) {
		*drained = true;
		return 0;
	}
	if (!out_room(g, 1))
		return -1;
	room = g->out_cap - g->out_len;
	if (room > OUT_START)
		room = OUT_START;
	do
		n = recv(g->pair_fd, g->out + g->out_len, room, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		*drained = true;
		return 0;
	}
	if (n <= 0) {
		g->lib_closed = true;
		*drained = true;
		return 0;
	}
	g->out_len += (size_t)n;
	*drained = (size_t)n < room;
	return 0;
}

int mqtt_guard_take(struct sg_mqtt_guard *g)
{
	bool drained = false;

	if (g->cut)
		return -EPIPE;
	while (!drained)
		if (take_once(g, &drained) < 0)
			return -ENOBUFS;
	return 0;
}

uint8_t *mqtt_guard_room(struct sg_mqtt_guard *g, size_t n)
{
	return !g->cut && out_room(g, n) ? g->out + g->out_len : NULL;
}

void mqtt_guard_put(struct sg_mqtt_guard *g, size_t n)
{
	g->out_len += n;
}

int mqtt_guard_flush(struct sg_mqtt_guard *g, bool take)
{
	bool drained = !take;

	for (;;) {
		ssize_t n;

		if (g->out_pos == g->out_len) {
			if (drained)
				return 0;
			take_once(g, &drained); /* the queue is empty: there is room */
			if (g->out_pos == g->out_len)
				continue;
		}
		if (g->cut) {
			g->out_pos = g->out_len; /* the connection is over: drop what libmosquitto still writes */
			continue;
		}
		n = send(g->broker_fd, g->out + g->out_pos, g->out_len - g->out_pos, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			if (errno == EINTR)
				continue;
			return cut(g, errno, NULL);
		}
		g->out_pos += (size_t)n;
	}
}
