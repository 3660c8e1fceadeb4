/* SPDX-License-Identifier: MIT */
/*
 * fuzz_commands.c — libFuzzer target: the command path (gateway/commands.c and
 * gateway/response_topic.c) with whatever a client can put in a PUBLISH: topic,
 * payload, retain, Message Expiry, Response Topic and Correlation Data.
 *
 * Input: byte 0 flags (bit 0 retain, bit 1 expiry present, bit 2 Response Topic
 * present, bit 3 Correlation Data present, bit 4 the router with a
 * response_topic_prefix, bits 5-7 which command topic: 0-5 an actuator's, 6-7 the
 * raw topic below); byte 1 expiry seconds; byte 2 topic length; bytes 3-4 Response
 * Topic length (big endian); byte 5 Correlation Data length; then topic, Response
 * Topic, Correlation Data, and the rest is the payload. The Response Topic may
 * hold NULs (its length is passed, as the router allows).
 *
 * Fake actuator drivers stand in for the hardware (registered under the names
 * "gpio" and "serial", as in tests/unit/test_commands.c). Checked on every input,
 * trapping on a violation: a command refused moved nothing; every publication
 * is on one of the gateway's own state or error topics, or is an answer on a
 * Response Topic the rules allow (not '$', not under the base topic "h" or the
 * prefix "homeassistant", at most 256 bytes, no wildcard, no control character,
 * under "replies/" for the router with a prefix), at QoS 0, with at most 128
 * bytes of Correlation Data; a retained publication is a state. The payload
 * also goes through commands_json_each(), the reader of the cloud profiles'
 * desired states: what it hands on lies inside the document.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/actuator.h"
#include "gateway/commands.h"
#include "gateway/config.h"
#include "gateway/log.h"

#define N_TOPICS 6

static const char *const cmd_topics[N_TOPICS] = {"h/sw/set", "h/door/set", "h/fan/set",
                                                   "h/mode/set", "h/up/set", "h/down/set"};
static unsigned sets;      /* set() calls during the current message */
static bool with_prefix;   /* the current router has response_topic_prefix = "replies" */

static int fake_open(struct sg_act *a)
{
	(void)a;
	return 0;
}

static void fake_close(struct sg_act *a)
{
	(void)a;
}

static int fake_read_back(struct sg_act *a)
{
	(void)a;
	return 0;
}

static int fake_set(struct sg_act *a, const struct sg_act_value *v, uint64_t now)
{
	(void)a;
	(void)v;
	(void)now;
	sets++;
	return 0;
}

static int fake_set_sync(struct sg_act *a, const struct sg_act_value *v, int timeout_ms)
{
	(void)a;
	(void)v;
	(void)timeout_ms;
	return 0;
}

static const struct sg_act_driver fake_gpio = {
	.name = "gpio", .kinds = SG_ACT_KIND_BIT(SG_ACT_SWITCH), .state_size = 8, .open = fake_open,
	.close = fake_close, .read_back = fake_read_back, .set = fake_set, .set_sync = fake_set_sync,
};
static const struct sg_act_driver fake_serial = {
	.name = "serial", .kinds = SG_ACT_KINDS_ALL, .state_size = 8, .open = fake_open, .close = fake_close,
	.set = fake_set, .set_sync = fake_set_sync,
};
static const struct sg_act_driver *const fake_drivers[] = {&fake_gpio, &fake_serial, NULL};

static bool under(const char *t, const char *p)
{
	size_t n = strlen(p);
	return strncmp(t, p, n) == 0 && (t[n] == '\0' || t[n] == '/');
}

static bool own_topic(const char *t)
{
	static const char *const names[] = {"sw", "door", "fan", "mode", "up", "down"};
	char s[64];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(s, sizeof(s), "h/%s", names[i]);
		if (strcmp(t, s) == 0)
			return true;
		snprintf(s, sizeof(s), "h/%s/error", names[i]);
		if (strcmp(t, s) == 0)
			return true;
	}
	return false;
}

static int check_publish(void *ud, const char *topic, const void *payload, size_t len, int qos, bool retain,
                         const void *corr, size_t corr_len)
{
	(void)ud;
	(void)payload;
	(void)len;
	if (own_topic(topic))
		return 0;
	/* an answer on a Response Topic: only where the rules allow */
	if (retain || qos != 0 || corr_len > 128 || (corr_len && !corr))
		__builtin_trap();
	if (!*topic || strlen(topic) > 256 || topic[0] == '$' || strpbrk(topic, "+#") || under(topic, "h") ||
	    under(topic, "homeassistant") || (with_prefix && !(under(topic, "replies") && strcmp(topic, "replies") != 0)))
		__builtin_trap();
	for (const char *p = topic; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			__builtin_trap();
	return 0;
}

static int no_subscribe(void *ud, const char *topic, int qos)
{
	(void)ud;
	(void)topic;
	(void)qos;
	return 0;
}

#define ACTUATORS                                                                                             \
	"actuators = (\n"                                                                                         \
	" { name = \"sw\"; driver = \"gpio\"; line = 1; initial = \"OFF\"; },\n"                                  \
	" { name = \"door\"; driver = \"gpio\"; line = 2; payload_on = \"OPEN\"; payload_off = \"CLOSE\"; },\n"   \
	" { name = \"fan\"; driver = \"serial\"; port = \"/dev/null\"; type = \"number\"; min = 0; max = 100;\n" \
	"   step = 0.5; set = \"F{value}\"; },\n"                                                                 \
	" { name = \"mode\"; driver = \"serial\"; port = \"/dev/zero\"; type = \"enum\";\n"                       \
	"   options = [\"low\", \"high\"]; set = \"M{value}\"; accept_retained = true; },\n"                      \
	" { name = \"up\"; driver = \"gpio\"; line = 5; interlock = \"b\"; initial = \"OFF\"; },\n"               \
	" { name = \"down\"; driver = \"gpio\"; line = 6; interlock = \"b\"; initial = \"OFF\"; }\n"              \
	");\n"

static struct sg_config *load(const char *text)
{
	char path[] = "/tmp/fuzz_commands-XXXXXX", err[512];
	struct sg_config *cfg = NULL;
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		fprintf(stderr, "fuzz_commands: cannot write %s\n", path);
		abort();
	}
	close(fd);
	if (config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_commands: %s\n", err);
		abort();
	}
	unlink(path);
	return cfg;
}

static struct sg_commands *routers[2];
static uint64_t now_us = 1000000000ULL;

static void setup(void)
{
	static const struct sg_cmd_env env = {
		.publish = check_publish, .subscribe = no_subscribe, .drivers = fake_drivers,
	};
	static const char *const texts[2] = {
		"gateway: { id = \"gw\"; base_topic = \"h\"; };\n" ACTUATORS,
		"gateway: { id = \"gw\"; base_topic = \"h\"; };\ncommands: { response_topic_prefix = \"replies\"; };\n"
		ACTUATORS,
	};

	log_set_max_level(2); /* the refusals are the point, not the log */
	for (int i = 0; i < 2; i++) {
		with_prefix = i == 1;
		routers[i] = commands_new(load(texts[i]), &env, NULL, now_us);
		if (!routers[i])
			abort();
	}
}

/* commands_json_each() (a cloud service's desired states) on the same payload: every span it hands on
 * lies inside the document and is a value of the kind it says. */
static const char *doc_start, *doc_end;

static void each_member(void *ud, const char *name, const char *scalar, const char *raw, size_t raw_len)
{
	(void)ud;
	(void)name;
	if (raw < doc_start || raw_len == 0 || raw + raw_len > doc_end)
		__builtin_trap();
	if (!scalar && raw[0] != '{' && raw[0] != '[')
		__builtin_trap();
	if (scalar && (raw[0] == '{' || raw[0] == '['))
		__builtin_trap();
}

static void fuzz_json_each(const uint8_t *payload, size_t len)
{
	char *doc = malloc(len ? len : 1); /* its own allocation: ASan sees any read past it */

	if (!doc)
		return;
	memcpy(doc, payload, len);
	doc_start = doc;
	doc_end = doc + len;
	commands_json_each(doc, len, each_member, NULL);
	free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_cmd_msg m = {0};
	char topic[256], *rt = NULL;
	size_t tlen, rlen, clen, pos = 6;
	uint8_t flags;
	int r;

	if (!routers[0])
		setup();
	if (size < 6)
		return 0;
	flags = data[0];
	tlen = data[2];
	rlen = (size_t)data[3] << 8 | data[4];
	clen = data[5];
	if (pos + tlen + rlen + clen > size)
		return 0;
	memcpy(topic, data + pos, tlen);
	topic[tlen] = '\0';
	pos += tlen;
	m.topic = (flags >> 5) < N_TOPICS ? cmd_topics[flags >> 5] : topic;
	if (flags & 4) {
		rt = malloc(rlen + 1); /* its own allocation: ASan sees any read past it */
		if (!rt)
			return 0;
		memcpy(rt, data + pos, rlen);
		rt[rlen] = '\0';
		m.response_topic = rt;
		m.response_topic_len = rlen;
	}
	pos += rlen;
	if (flags & 8) {
		m.correlation = data + pos;
		m.correlation_len = clen;
	}
	pos += clen;
	m.payload = data + pos;
	m.len = size - pos;
	m.retain = flags & 1;
	m.has_expiry = flags & 2;
	m.expiry_s = data[1];
	with_prefix = flags & 16;
	sets = 0;
	now_us += 2000000; /* past any rate limit; the log's limiter sees time pass */
	r = commands_message(routers[with_prefix], &m, now_us);
	if (r != 0 && sets != 0)
		__builtin_trap(); /* refused, yet something moved */
	/* a refused Response Topic refuses the command */
	if (rt && r == 0 && (rlen == 0 || memchr(rt, '\0', rlen) || rt[0] == '$' || rlen > 256 || under(rt, "h") ||
	                     under(rt, "homeassistant")))
		__builtin_trap();
	free(rt);
	fuzz_json_each(m.payload, m.len);
	return 0;
}
