/* SPDX-License-Identifier: MIT */
/* mqtt_packet.c — see mqtt_packet.h. */
#include "mqtt_packet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

/* Variable Byte Integer (MQTT 5.0 §1.5.5, 3.1.1 §2.2.3's Remaining Length): 7 bits a byte, low first. */
static size_t vbi_len(size_t v)
{
	return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

static uint8_t *put_vbi(uint8_t *d, size_t v)
{
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		*d++ = v ? (uint8_t)(b | 0x80) : b;
	} while (v);
	return d;
}

/* A UTF-8 String (§1.5.4 / §1.5.3): a two-byte big-endian length, then the bytes. */
static uint8_t *put_str(uint8_t *d, const void *s, size_t n)
{
	*d++ = (uint8_t)(n >> 8);
	*d++ = (uint8_t)n;
	memcpy(d, s, n);
	return d + n;
}

int mqtt_props_user(struct mqtt_props *p, const char *key, const char *value)
{
	size_t kl = strlen(key), vl = strlen(value);

	if (kl > 65535 || vl > 65535 || 5 + kl + vl > sizeof(p->b) - p->len)
		return -ENOSPC;
	p->b[p->len] = MQTT_PROP_USER_PROPERTY;
	p->len = (size_t)(put_str(put_str(p->b + p->len + 1, key, kl), value, vl) - p->b);
	return 0;
}

/* The two-byte length at S, then the string copied out with a terminator (libmosquitto's API wants one). */
static char *get_str(const uint8_t **s, char *buf)
{
	size_t n = (size_t)(*s)[0] << 8 | (*s)[1];

	memcpy(buf, *s + 2, n);
	buf[n] = '\0';
	*s += 2 + n;
	return buf;
}

int mqtt_props_list(const struct mqtt_props *p, mosquitto_property **list)
{
	char key[MQTT_PROPS_MAX], value[MQTT_PROPS_MAX];
	const uint8_t *s = p->b, *end = p->b + p->len;

	while (s < end) { /* only what mqtt_props_user() wrote */
		s++;
		get_str(&s, key);
		get_str(&s, value);
		if (mosquitto_property_add_string_pair(list, MQTT_PROP_USER_PROPERTY, key, value) != MOSQ_ERR_SUCCESS)
			return -ENOMEM;
	}
	return 0;
}

static size_t remaining(int protocol, size_t topic_len, size_t payload_len, size_t props_len)
{
	size_t rl = 2 + topic_len + payload_len;

	if (protocol == 5)
		rl += vbi_len(props_len) + props_len;
	return rl;
}

size_t mqtt_packet_publish_size(int protocol, size_t topic_len, size_t payload_len, size_t props_len)
{
	size_t rl = remaining(protocol, topic_len, payload_len, props_len);

	return 1 + vbi_len(rl) + rl;
}

size_t mqtt_packet_publish(uint8_t *dst, int protocol, const char *topic, size_t topic_len, const void *payload,
                           size_t payload_len, bool retain, const struct mqtt_props *props)
{
	size_t plen = protocol == 5 && props ? props->len : 0;
	uint8_t *d = dst;

	*d++ = (uint8_t)(CMD_PUBLISH | (retain ? 1 : 0)); /* DUP 0, QoS 0 */
	d = put_vbi(d, remaining(protocol, topic_len, payload_len, plen));
	d = put_str(d, topic, topic_len);
	if (protocol == 5) {
		d = put_vbi(d, plen);
		if (plen)
			memcpy(d, props->b, plen);
		d += plen;
	}
	if (payload_len)
		memcpy(d, payload, payload_len);
	return (size_t)(d - dst) + payload_len;
}
