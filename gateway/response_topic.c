/* SPDX-License-Identifier: MIT */
/* response_topic.c — the rules of response_topic.h. */
#include "response_topic.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../common/utf8.h"

#define QUOTE_MAX 64 /* bytes of a refused topic quoted in the reason */

/* T[0..LEN) equals P or lies under it ("P/..."). */
static bool under(const char *t, size_t len, const char *p)
{
	size_t n = p ? strlen(p) : 0;

	return n && len >= n && memcmp(t, p, n) == 0 && (len == n || t[n] == '/');
}

static int refuse(char *why, size_t whylen, const char *fmt, const char *t, size_t len, const char *what)
{
	int q = len > QUOTE_MAX ? QUOTE_MAX : (int)len;

	snprintf(why, whylen, fmt, q, t, len > QUOTE_MAX ? "..." : "", what);
	return -EACCES;
}

int response_topic_check(const struct sg_config *const *own, size_t n_own, const char *t, size_t len,
                         char *why, size_t whylen)
{
	const char *prefix = n_own && own[0] ? own[0]->commands.response_topic_prefix : NULL;

	if (!t || len == 0) {
		snprintf(why, whylen, "empty Response Topic");
		return -EACCES;
	}
	if (len > SG_RESPONSE_TOPIC_MAX) {
		snprintf(why, whylen, "Response Topic of %zu bytes (at most %d)", len, SG_RESPONSE_TOPIC_MAX);
		return -EACCES;
	}
	if (memchr(t, '\0', len)) {
		snprintf(why, whylen, "Response Topic with a NUL byte");
		return -EACCES;
	}
	/* t is a C string of LEN bytes from here on */
	if (!sg_utf8_valid(t, len)) {
		snprintf(why, whylen, "Response Topic that is not valid UTF-8");
		return -EACCES;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f) {
			snprintf(why, whylen, "Response Topic with a control character");
			return -EACCES;
		}
	if (strpbrk(t, "+#"))
		return refuse(why, whylen, "Response Topic \"%.*s%s\" has a wildcard ('+' or '#')%s", t, len, "");
	if (t[0] == '$')
		return refuse(why, whylen, "Response Topic \"%.*s%s\" starts with '$'%s (the broker's own topics, "
		              "such as $SYS)", t, len, "");
	for (size_t i = 0; i < n_own; i++) {
		if (!own[i])
			continue;
		if (under(t, len, own[i]->base_topic))
			return refuse(why, whylen, "Response Topic \"%.*s%s\" lies under the gateway's own topics (%s/...)",
			              t, len, own[i]->base_topic);
		if (under(t, len, own[i]->discovery.prefix))
			return refuse(why, whylen, "Response Topic \"%.*s%s\" lies under the Home Assistant discovery "
			              "prefix (%s/...)", t, len, own[i]->discovery.prefix);
		/* gateway.status_topic and discovery.ha_status_topic may lie outside both: an answer there would
		 * speak for the gateway's availability, or for Home Assistant's */
		if (under(t, len, own[i]->status_topic))
			return refuse(why, whylen, "Response Topic \"%.*s%s\" is the gateway's status topic%s", t, len, "");
		if (under(t, len, own[i]->discovery.ha_status_topic))
			return refuse(why, whylen, "Response Topic \"%.*s%s\" is Home Assistant's status topic%s", t, len,
			              "");
	}
	if (prefix && !(len > strlen(prefix) && under(t, len, prefix)))
		return refuse(why, whylen, "Response Topic \"%.*s%s\" is not under commands.response_topic_prefix "
		              "(%s/...)", t, len, prefix);
	return 0;
}

void response_topic_rule(const struct sg_config *cfg, char *buf, size_t len)
{
	const char *p = cfg->commands.response_topic_prefix;
	int n;

	if (p)
		n = snprintf(buf, len, "answers only under %s/", p);
	else
		n = snprintf(buf, len, "answers on any topic but");
	if (n < 0 || (size_t)n >= len)
		return;
	snprintf(buf + n, len - (size_t)n, "%s %s/..., %s/..., $..., wildcards, over %d bytes; QoS 0; "
	         "Correlation Data up to %d bytes%s", p ? "; never" : "", cfg->base_topic,
	         cfg->discovery.prefix ? cfg->discovery.prefix : "homeassistant", SG_RESPONSE_TOPIC_MAX,
	         SG_CORRELATION_MAX, p ? "" : " (set commands.response_topic_prefix to allow one place only)");
}
