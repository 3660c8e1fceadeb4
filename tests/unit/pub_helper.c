/* SPDX-License-Identifier: MIT */
/* pub_helper.c — see pub_helper.h. */
#include "pub_helper.h"

#include <stdio.h>
#include <string.h>

struct recorder pub_rec;

void rec_reset(void)
{
	memset(&pub_rec, 0, sizeof(pub_rec));
}

int rec_publish(void *ud, const char *topic, const void *payload, size_t len, int qos, bool retain,
                const void *correlation, size_t correlation_len)
{
	struct rec_pub *p;
	(void)ud;

	if (pub_rec.publish_result < 0)
		return pub_rec.publish_result;
	if (pub_rec.n_pubs++ >= REC_MAX)
		return 0;
	p = &pub_rec.pubs[pub_rec.n_pubs - 1];
	snprintf(p->topic, sizeof(p->topic), "%s", topic);
	p->len = len < sizeof(p->payload) ? len : sizeof(p->payload) - 1;
	memcpy(p->payload, payload, p->len);
	p->payload[p->len] = '\0';
	p->qos = qos;
	p->retain = retain;
	p->has_corr = correlation != NULL;
	p->corr_len = correlation_len < sizeof(p->corr) ? correlation_len : sizeof(p->corr);
	if (correlation)
		memcpy(p->corr, correlation, p->corr_len);
	return 0;
}

int rec_subscribe(void *ud, const char *topic, int qos)
{
	(void)ud;
	if (pub_rec.n_subs >= sizeof(pub_rec.subs) / sizeof(pub_rec.subs[0]))
		return -1;
	snprintf(pub_rec.subs[pub_rec.n_subs], sizeof(pub_rec.subs[0]), "%s", topic);
	pub_rec.sub_qos[pub_rec.n_subs++] = qos;
	return 0;
}

const struct rec_pub *rec_last(const char *topic)
{
	size_t n = pub_rec.n_pubs < REC_MAX ? pub_rec.n_pubs : REC_MAX;

	for (size_t i = n; i-- > 0;)
		if (strcmp(pub_rec.pubs[i].topic, topic) == 0)
			return &pub_rec.pubs[i];
	return NULL;
}

size_t rec_count(const char *topic)
{
	size_t n = pub_rec.n_pubs < REC_MAX ? pub_rec.n_pubs : REC_MAX, k = 0;

	for (size_t i = 0; i < n; i++)
		k += strcmp(pub_rec.pubs[i].topic, topic) == 0;
	return k;
}
