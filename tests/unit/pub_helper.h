/* SPDX-License-Identifier: MIT */
/*
 * pub_helper.h — stand-ins for the router's publish/subscribe callbacks
 * (struct sg_cmd_env) that remember every call, for tests.
 *
 * Test-only global state in `pub_rec`, cleared by rec_reset(). Payloads are
 * stored NUL-terminated (they are text here); at most REC_MAX publications
 * are kept, later ones only counted.
 */
#ifndef SG_PUB_RECORDER_H
#define SG_PUB_RECORDER_H

#include <stdbool.h>
#include <stddef.h>

#define REC_MAX 64

struct rec_pub {
	char topic[160];
	char payload[1300];
	size_t len;
	int qos;
	bool retain;
	unsigned char corr[64];
	size_t corr_len;
	bool has_corr;
};

struct recorder {
	struct rec_pub pubs[REC_MAX];
	size_t n_pubs;       /* all publications, also those not kept */
	char subs[16][160];
	int sub_qos[16];
	size_t n_subs;
	int publish_result;  /* what rec_publish() returns (0, or -ENOTCONN to play disconnected) */
};

extern struct recorder pub_rec;

void rec_reset(void);
int rec_publish(void *ud, const char *topic, const void *payload, size_t len, int qos, bool retain,
                const void *correlation, size_t correlation_len);
int rec_subscribe(void *ud, const char *topic, int qos);
/* The last publication on TOPIC, or NULL. */
const struct rec_pub *rec_last(const char *topic);
/* How many publications TOPIC got. */
size_t rec_count(const char *topic);

#endif
