/* SPDX-License-Identifier: MIT */
/* replay.c — see replay.h. */
#include "replay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- sequence numbers: an open-addressing table, topic -> last number ---------------------------- */

struct seq_slot {
	char *topic;  /* NULL = free */
	uint64_t hash;
	uint64_t seq;
};

struct sg_seqs {
	struct seq_slot *slot;
	size_t cap;   /* power of two */
	size_t n;
};

#define SEQS_INITIAL 64

/* FNV-1a, 64 bits (the offset basis and prime of the FNV reference) */
static uint64_t hash_topic(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

struct sg_seqs *seqs_new(void)
{
	struct sg_seqs *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->cap = SEQS_INITIAL;
	q->slot = calloc(q->cap, sizeof(*q->slot));
	if (!q->slot) {
		free(q);
		return NULL;
	}
	return q;
}

void seqs_free(struct sg_seqs *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->cap; i++)
		free(q->slot[i].topic);
	free(q->slot);
	free(q);
}

static struct seq_slot *find(const struct sg_seqs *q, const char *topic, uint64_t h)
{
	size_t i = h & (q->cap - 1);

	while (q->slot[i].topic) {
		if (q->slot[i].hash == h && strcmp(q->slot[i].topic, topic) == 0)
			return &q->slot[i];
		i = (i + 1) & (q->cap - 1);
	}
	return &q->slot[i]; /* the free slot where it would go */
}

static int grow(struct sg_seqs *q)
{
	struct seq_slot *old = q->slot;
	size_t oldcap = q->cap;

	q->slot = calloc(oldcap * 2, sizeof(*q->slot));
	if (!q->slot) {
		q->slot = old;
		return -ENOMEM;
	}
	q->cap = oldcap * 2;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].topic)
			*find(q, old[i].topic, old[i].hash) = old[i];
	free(old);
	return 0;
}

/* The slot of TOPIC, made when missing; NULL when out of memory. */
static struct seq_slot *slot_of(struct sg_seqs *q, const char *topic)
{
	uint64_t h = hash_topic(topic);
	struct seq_slot *s = find(q, topic, h);

	if (s->topic)
		return s;
	if ((q->n + 1) * 2 > q->cap) { /* at most half full */
		if (grow(q) < 0)
			return NULL;
		s = find(q, topic, h);
	}
	s->topic = strdup(topic);
	if (!s->topic)
		return NULL;
	s->hash = h;
	s->seq = 0;
	q->n++;
	return s;
}

uint64_t seqs_next(struct sg_seqs *q, const char *topic)
{
	struct seq_slot *s = slot_of(q, topic);

	return s ? ++s->seq : 0;
}

uint64_t seqs_last(const struct sg_seqs *q, const char *topic)
{
	const struct seq_slot *s = find(q, topic, hash_topic(topic));

	return s->topic ? s->seq : 0;
}

int seqs_seen(struct sg_seqs *q, const char *topic, uint64_t seq)
{
	struct seq_slot *s = slot_of(q, topic);

	if (!s)
		return -ENOMEM;
	if (seq > s->seq)
		s->seq = seq;
	return 0;
}

/* ---- payloads and properties ----------------------------------------------------------------------- */

int replay_json(char *buf, size_t cap, const char *payload, size_t len, const char *iso, bool replayed,
                uint64_t seq)
{
	static const char key[] = ",\"ts\":";
	const char *at = NULL;
	size_t head;
	int n;

	if (len < sizeof(key) || payload[len - 1] != '}')
		return -EINVAL;
	/* the last ,"ts": — the mapper writes it last; a string value before it may hold the same bytes */
	for (const char *p = payload + len - sizeof(key); p >= payload; p--)
		if (memcmp(p, key, sizeof(key) - 1) == 0) {
			at = p;
			break;
		}
	if (!at || memchr(at + sizeof(key) - 1, ',', (size_t)(payload + len - (at + sizeof(key) - 1))))
		return -EINVAL;
	head = (size_t)(at - payload) + sizeof(key) - 1;
	if (head >= cap)
		return -ENOBUFS;
	memcpy(buf, payload, head);
	if (replayed)
		n = snprintf(buf + head, cap - head, "%s%s%s,\"replayed\":true,\"seq\":%" PRIu64 "}", iso ? "\"" : "",
		             iso ? iso : "null", iso ? "\"" : "", seq);
	else
		n = snprintf(buf + head, cap - head, "%s%s%s}", iso ? "\"" : "", iso ? iso : "null", iso ? "\"" : "");
	if (n < 0 || head + (size_t)n >= cap)
		return -ENOBUFS;
	return (int)(head + (size_t)n);
}

int replay_props(struct mqtt_props *props, const char *iso, bool unknown, uint64_t seq, bool replayed)
{
	char num[24], *d = num + sizeof(num) - 1;
	uint64_t v = seq;

	*d = '\0';
	do /* a message's own work: no printf machinery for one number */
		*--d = (char)('0' + v % 10);
	while (v /= 10);
	if (iso && mqtt_props_user(props, "ts", iso) < 0)
		return -ENOSPC;
	if (unknown && mqtt_props_user(props, "ts_unknown", "1") < 0)
		return -ENOSPC;
	if (seq && mqtt_props_user(props, "seq", d) < 0)
		return -ENOSPC;
	if (replayed && mqtt_props_user(props, "replayed", "1") < 0)
		return -ENOSPC;
	return 0;
}

int replay_history_topic(char *buf, size_t cap, const char *template, const char *topic)
{
	const char *at = strstr(template, "{topic}");
	int n;

	if (!at)
		return -EINVAL;
	n = snprintf(buf, cap, "%.*s%s%s", (int)(at - template), template, topic, at + strlen("{topic}"));
	if (n < 0 || (size_t)n >= cap)
		return -ENOBUFS;
	return n;
}
