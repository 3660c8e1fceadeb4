/* SPDX-License-Identifier: MIT */
/*
 * test_spool.c — unit tests of the store-and-forward spool (gateway/spool.c).
 *
 * Every test works on a spool file in its own temporary directory (removed
 * afterwards). Covered: order of hand-over, acknowledgement by token,
 * uncommitted messages never handed over, replay after reopening, requeue of
 * messages the transport lost, compaction of SG_OFFLINE_LAST topics, the
 * size bound under both policies with its counters, unreadable files moved
 * aside (table of ways to spoil a file), write errors (a page limit stands in
 * for a full disk) and recovery, a real full disk (a small tmpfs, as root;
 * skipped otherwise) with the reserve file, the default path, the file lock,
 * the in-flight table under churn, flat SQLite memory over many cycles
 * (statements are reused; ASan reports any leak), and the durable values
 * (a counter's total: saved, read back, added to older files, a full disk).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common/clock.h"
#include "gateway/spool.h"
#include "gateway/spool_reserve.h"

/* ---- harness ---------------------------------------------------------------------------------- */

struct fixture {
	char dir[64];
	char path[128];
	struct sg_spool_cfg cfg;
	struct sg_spool *s;
	struct sg_spool_info info;
	unsigned max_out; /* max_outstanding for reopen(); 100 unless a test says otherwise */
	char fs[80];      /* a small tmpfs mounted here (mount_small_fs) */
	bool mounted;
};

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/sg-spool-test.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/spool.db", f->dir);
	f->cfg = (struct sg_spool_cfg){.path = f->path, .max_size_mb = 64, .sync_full = false};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	spool_close(f->s);
	if (f->mounted)
		umount2(f->fs, MNT_DETACH);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct sg_spool *reopen(struct fixture *f)
{
	spool_close(f->s);
	f->s = spool_open(&f->cfg, f->max_out ? f->max_out : 100, &f->info);
	assert_non_null(f->s);
	return f->s;
}

static void put(struct sg_spool *s, const char *topic, const char *payload, int qos,
                enum sg_offline_policy policy)
{
	assert_int_equal(spool_put(s, topic, payload, strlen(payload), qos, false, policy, NULL), 0);
}

/* Hand over everything that is ready (tokens from *next_token on); payloads go to OUT, joined by ','. */
static unsigned drain(struct sg_spool *s, int *next_token, char *out, size_t outlen)
{
	struct sg_spool_msg m;
	unsigned n = 0;
	size_t off = 0;
	int r;

	if (out)
		out[0] = '\0';
	while ((r = spool_next(s, &m)) == 1) {
		if (out) {
			int k = snprintf(out + off, outlen - off, "%s%.*s", off ? "," : "", (int)m.len,
			                 (const char *)m.payload);
			assert_true(k > 0 && (size_t)k < outlen - off);
			off += (size_t)k;
		}
		assert_int_equal(spool_sent(s, m.id, (*next_token)++), 0);
		n++;
	}
	assert_int_equal(r, 0);
	return n;
}

static struct sg_spool_stats stats(const struct sg_spool *s)
{
	struct sg_spool_stats st;
	spool_get_stats(s, &st);
	return st;
}

/* ---- order, acknowledgement, durability --------------------------------------------------------- */

static void test_order_and_ack(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s = reopen(f);
	char got[256];
	int token = 1;

	put(s, "a/t", "1", 1, SG_OFFLINE_SPOOL);
	put(s, "b/t", "2", 2, SG_OFFLINE_SPOOL);
	put(s, "a/t", "3", 0, SG_OFFLINE_SPOOL);
	assert_true(spool_pending(s));
	/* not committed: nothing may be handed over yet */
	assert_int_equal(drain(s, &token, got, sizeof(got)), 0);
	assert_int_equal(spool_commit(s), 0);
	assert_false(spool_pending(s));
	assert_true(spool_backlog(s));
	assert_int_equal(drain(s, &token, got, sizeof(got)), 3);
	assert_string_equal(got, "1,2,3");
	assert_false(spool_backlog(s));
	assert_int_equal(spool_outstanding(s), 3);

	/* acknowledged out of order; an unknown token is not ours */
	assert_int_equal(spool_ack(s, 2), 1);
	assert_int_equal(spool_ack(s, 2), 0);
	assert_int_equal(spool_ack(s, 99), 0);
	assert_int_equal(spool_ack(s, 1), 1);
	assert_int_equal(spool_ack(s, 3), 1);
	assert_int_equal(spool_commit(s), 0);

	struct sg_spool_stats st = stats(s);
	assert_int_equal(st.spooled, 3);
	assert_int_equal(st.sent, 3);
	assert_int_equal(st.acknowledged, 3);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.outstanding, 0);

	/* later puts continue after the last id even though the table is empty */
	put(s, "a/t", "4", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 1);
	assert_string_equal(got, "4");
}

/*
 * An acknowledged message is deleted without asking SQLite for its size
 * (RETURNING costs a temporary table each time): the size remembered from
 * spool_next() must be the one the spool counted, multi-byte topics and
 * empty payloads included. The counts after acknowledgements must equal
 * those a reopen computes from the file.
 */
static void test_ack_keeps_exact_sizes(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s = reopen(f);
	struct sg_spool_stats before, after;
	char got[256];
	int token = 1;

	put(s, "caf\xc3\xa9/temp\xc3\xa9rature", "21.5", 1, SG_OFFLINE_SPOOL);
	put(s, "a/t", "", 1, SG_OFFLINE_SPOOL);
	put(s, "b/\xe2\x82\xac", "1234567890", 2, SG_OFFLINE_SPOOL);
	put(s, "c/t", "x", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	before = stats(s);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 4);
	assert_int_equal(spool_ack(s, 1), 1);
	assert_int_equal(spool_ack(s, 2), 1);
	assert_int_equal(spool_ack(s, 3), 1);
	assert_int_equal(spool_commit(s), 0);
	after = stats(s);
	assert_int_equal(after.depth, 1);
	assert_true(after.bytes < before.bytes);
	s = reopen(f);
	assert_int_equal(stats(s).depth, after.depth);
	assert_int_equal(stats(s).bytes, after.bytes);
}

/*
 * Messages put lately are handed over from memory, the others read back
 * from the file; either way each comes whole, in order, with its fields,
 * and a row deleted meanwhile (compaction, a drop, a rollback) never comes
 * from memory.
 */
static void test_handed_over_from_memory_or_file(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s = reopen(f);
	struct sg_spool_meta meta = {.ts_us = 1700000000000000, .boot_us = 42, .boot_id = 7, .seq = 0, .flags = 1};
	struct sg_spool_msg m;
	static char payload[1600];
	char topic[64], got[256];
	int token = 1;

	/* 1,200 messages: more than memory keeps (the ring comes round), every fifth too large for it */
	for (int i = 0; i < 1200; i++) {
		snprintf(topic, sizeof(topic), "t/%d", i);
		memset(payload, 'a' + i % 26, sizeof(payload));
		meta.seq = (uint64_t)i + 1;
		assert_int_equal(spool_put_meta(s, topic, payload, i % 5 == 4 ? 1500 : (size_t)(i % 7) * 40, i % 3, i % 2,
		                                SG_OFFLINE_SPOOL, &meta, NULL),
		                 0);
	}
	assert_int_equal(spool_commit(s), 0);
	for (int i = 0; i < 1200; i++) {
		assert_int_equal(spool_next(s, &m), 1);
		snprintf(topic, sizeof(topic), "t/%d", i);
		assert_string_equal(m.topic, topic);
		assert_int_equal(m.len, i % 5 == 4 ? 1500 : (size_t)(i % 7) * 40);
		for (size_t k = 0; k < m.len; k++)
			assert_int_equal(((const char *)m.payload)[k], 'a' + i % 26);
		assert_int_equal(m.qos, i % 3);
		assert_int_equal(m.retain, i % 2);
		assert_int_equal(m.meta.seq, (uint64_t)i + 1);
		assert_int_equal(m.meta.ts_us, meta.ts_us);
		assert_int_equal(m.meta.boot_id, 7);
		assert_int_equal(m.meta.flags, 1);
		assert_int_equal(spool_sent(s, m.id, token), 0);
		assert_int_equal(spool_ack(s, token++), 1);
	}
	assert_int_equal(spool_next(s, &m), 0);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(stats(s).depth, 0);
	assert_int_equal(stats(s).bytes, 0);

	/* compaction deletes the older value of a topic kept as "last": it must not come from memory */
	put(s, "x/t", "old", 1, SG_OFFLINE_LAST);
	put(s, "x/t", "new", 1, SG_OFFLINE_LAST);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 1);
	assert_string_equal(got, "new");

	/* a dropped message is not handed over again */
	put(s, "y/t", "bad", 1, SG_OFFLINE_SPOOL);
	put(s, "y/t", "good", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(spool_next(s, &m), 1);
	assert_int_equal(spool_drop(s, m.id), 0);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 1);
	assert_string_equal(got, "good");

	/* refused and sent again while the one after it was acknowledged: that one does not come again */
	put(s, "z/t", "1", 1, SG_OFFLINE_SPOOL);
	put(s, "z/t", "2", 1, SG_OFFLINE_SPOOL);
	put(s, "z/t", "3", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	int first = token;
	assert_int_equal(drain(s, &token, got, sizeof(got)), 3);
	assert_int_equal(spool_unsent(s, first, NULL), 1);
	assert_int_equal(spool_ack(s, first + 1), 1);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 1);
	assert_string_equal(got, "1");
}

static void test_message_fields_round_trip(void **state)
{
	static const unsigned char bin[] = {0, 1, 2, 0xff, 0, 'x'};
	struct fixture *f = *state;
	struct sg_spool *s = reopen(f);
	struct sg_spool_msg m;

	assert_int_equal(spool_put(s, "dev/ü/bin", bin, sizeof(bin), 2, true, SG_OFFLINE_SPOOL, NULL), 0);
	assert_int_equal(spool_put(s, "dev/empty", NULL, 0, 1, false, SG_OFFLINE_SPOOL, NULL), 0);
	assert_int_equal(spool_put(s, "dev/bad", "x", 1, 3, false, SG_OFFLINE_SPOOL, NULL), -EINVAL);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(spool_next(s, &m), 1);
	assert_string_equal(m.topic, "dev/ü/bin");
	assert_int_equal(m.len, sizeof(bin));
	assert_memory_equal(m.payload, bin, sizeof(bin));
	assert_int_equal(m.qos, 2);
	assert_true(m.retain);
	assert_int_equal(spool_sent(s, m.id, 7), 0);
	assert_int_equal(spool_next(s, &m), 1);
	assert_string_equal(m.topic, "dev/empty");
	assert_int_equal(m.len, 0);
	assert_non_null(m.payload);
	assert_int_equal(m.qos, 1);
	assert_false(m.retain);
}

static void test_replay_after_reopen(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s = reopen(f);
	char got[256];
	int token = 1;

	for (int i = 1; i <= 5; i++) {
		char p[16];
		snprintf(p, sizeof(p), "%d", i);
		put(s, "seq", p, 1, SG_OFFLINE_SPOOL);
	}
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 5);
	assert_int_equal(spool_ack(s, 2), 1); /* "2" acknowledged; 1, 3, 4, 5 in flight */
	put(s, "seq", "6", 1, SG_OFFLINE_SPOOL);
	put(s, "seq", "7", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);

	s = reopen(f);
	assert_int_equal(f->info.depth, 6);
	assert_string_equal(f->info.aside, "");
	assert_int_equal(stats(s).depth, 6);
	assert_int_equal(spool_outstanding(s), 0);
	token = 1;
	assert_int_equal(drain(s, &token, got, sizeof(got)), 6);
	assert_string_equal(got, "1,3,4,5,6,7");

	/* a put after the reopen comes after everything stored before */
	put(s, "seq", "8", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 1);
	assert_string_equal(got, "8");
}

/*
 * commit_interval: a put is handed over at once; the batch (puts and the
 * removals of what was acknowledged) is due for its commit commit_interval
 * after it was begun, not at once; what was committed survives a reopen.
 */
static void test_commit_interval(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s;
	char got[256];
	int token = 1;
	uint64_t t0, due;

	f->cfg.commit_interval_s = 1.5;
	s = reopen(f);
	assert_int_equal(spool_commit_due(s), UINT64_MAX); /* nothing open */
	t0 = now_mono_us();
	put(s, "seq", "1", 1, SG_OFFLINE_SPOOL);
	put(s, "seq", "2", 2, SG_OFFLINE_SPOOL);
	due = spool_commit_due(s);
	assert_true(due >= t0 + 1500000 && due <= now_mono_us() + 1500000);
	assert_true(spool_backlog(s));
	assert_int_equal(drain(s, &token, got, sizeof(got)), 2); /* before any commit */
	assert_string_equal(got, "1,2");
	assert_int_equal(spool_ack(s, 1), 1);
	assert_true(spool_pending(s));
	assert_int_equal(spool_commit_due(s), due); /* the same batch */
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(spool_commit_due(s), UINT64_MAX);
	assert_int_equal(stats(s).dropped, 0);

	s = reopen(f);
	assert_int_equal(f->info.depth, 1);
	token = 1;
	assert_int_equal(drain(s, &token, got, sizeof(got)), 1);
	assert_string_equal(got, "2");

	/* without it: due at once, and nothing handed over before the commit */
	f->cfg.commit_interval_s = 0;
	s = reopen(f);
	put(s, "seq", "3", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit_due(s), 0);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 1);
	assert_string_equal(got, "2"); /* the committed one only */
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 1);
	assert_string_equal(got, "3");

	/* removals of acknowledged QoS 1 messages alone wait (up to 1 s) for the next put; QoS 2 ones do not */
	t0 = now_mono_us();
	assert_int_equal(spool_ack(s, token - 1), 1); /* "3", QoS 1 */
	due = spool_commit_due(s);
	assert_true(due >= t0 + 1000000 && due <= now_mono_us() + 1000000);
	put(s, "seq", "4", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit_due(s), 0); /* a put: at once, and it carries the removal */
	assert_int_equal(spool_commit(s), 0);
	put(s, "seq", "5", 2, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 2);
	assert_string_equal(got, "4,5");
	assert_int_equal(spool_ack(s, token - 1), 1); /* "5", QoS 2 */
	assert_int_equal(spool_commit_due(s), 0);
}

static void test_close_commits_pending(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s = reopen(f);

	put(s, "seq", "1", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	put(s, "seq", "2", 1, SG_OFFLINE_SPOOL);
	/* spool_close() commits what is pending */
	s = reopen(f);
	assert_int_equal(f->info.depth, 2);
}

static void test_requeue_lost_messages(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s = reopen(f);
	char got[256];
	int token = 100;

	put(s, "a", "q0-1", 0, SG_OFFLINE_SPOOL);
	put(s, "a", "q1-2", 1, SG_OFFLINE_SPOOL);
	put(s, "a", "q0-3", 0, SG_OFFLINE_SPOOL);
	put(s, "a", "q2-4", 2, SG_OFFLINE_SPOOL);
	put(s, "a", "q0-5", 0, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 5);
	assert_int_equal(spool_ack(s, 104), 1); /* q0-5 went out */

	/* link lost: the QoS 0 ones still in flight are handed over again, in order; QoS 1/2 stay in flight */
	spool_requeue(s, 0);
	assert_int_equal(spool_outstanding(s), 2);
	assert_true(spool_backlog(s));
	assert_int_equal(drain(s, &token, got, sizeof(got)), 2);
	assert_string_equal(got, "q0-1,q0-3");
	assert_int_equal(spool_outstanding(s), 4);
	/* the resent QoS 1 keeps its token */
	assert_int_equal(spool_ack(s, 101), 1);
	assert_int_equal(spool_ack(s, 105), 1);
	assert_int_equal(spool_ack(s, 106), 1);
	assert_int_equal(spool_ack(s, 103), 1);
	assert_int_equal(spool_outstanding(s), 0);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(stats(s).depth, 0);
}

static void test_refused_message_goes_again(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s = reopen(f);
	char got[64];
	int64_t id = 0;
	int token = 1;

	put(s, "a", "1", 2, SG_OFFLINE_SPOOL);
	put(s, "a", "2", 2, SG_OFFLINE_SPOOL);
	put(s, "a", "3", 2, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 3);
	/* "2" refused: handed over again, "1" and "3" stay in flight */
	assert_int_equal(spool_unsent(s, 2, &id), 1);
	assert_int_equal(spool_unsent(s, 2, &id), 0);
	assert_int_equal(spool_outstanding(s), 2);
	assert_true(spool_backlog(s));
	assert_int_equal(drain(s, &token, got, sizeof(got)), 1);
	assert_string_equal(got, "2");
	/* acknowledged under its new token; nothing is lost or repeated */
	assert_int_equal(spool_ack(s, 4), 1);
	assert_int_equal(spool_ack(s, 1), 1);
	assert_int_equal(spool_ack(s, 3), 1);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(stats(s).depth, 0);
	assert_int_equal(stats(s).dropped, 0);
	assert_int_equal(stats(s).sent, 4);
}

static void test_drop_unsendable(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s = reopen(f);
	struct sg_spool_msg m;
	char got[64];
	int token = 1;

	put(s, "a", "1", 1, SG_OFFLINE_SPOOL);
	put(s, "a", "2", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(spool_next(s, &m), 1);
	assert_int_equal(spool_drop(s, m.id), 0);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 1);
	assert_string_equal(got, "2");
	assert_int_equal(stats(s).dropped, 1);
	assert_int_equal(stats(s).depth, 1);
}

/* ---- offline = "last" --------------------------------------------------------------------------- */

struct put_op {
	const char *topic; /* NULL ends */
	const char *payload;
	enum sg_offline_policy policy;
	bool send_before; /* hand over everything committed before this put */
};

static const struct {
	const char *legend;
	struct put_op ops[8];
	const char *expect; /* payloads handed over after the last op, in order */
	unsigned compacted;
} compaction_cases[] = {
	{"one topic keeps its newest",
	 {{"s/a", "1", SG_OFFLINE_LAST}, {"s/a", "2", SG_OFFLINE_LAST}, {"s/a", "3", SG_OFFLINE_LAST}},
	 "3", 2},
	{"topics are compacted apart",
	 {{"s/a", "a1", SG_OFFLINE_LAST}, {"s/b", "b1", SG_OFFLINE_LAST}, {"s/a", "a2", SG_OFFLINE_LAST},
	  {"s/b", "b2", SG_OFFLINE_LAST}},
	 "a2,b2", 2},
	{"messages put with another policy are kept",
	 {{"s/a", "1", SG_OFFLINE_SPOOL}, {"s/a", "2", SG_OFFLINE_LAST}, {"s/a", "3", SG_OFFLINE_SPOOL},
	  {"s/a", "4", SG_OFFLINE_LAST}},
	 "1,3,4", 1},
	{"a message handed over is not removed (\"1\" was, \"2\" is replaced)",
	 {{"s/a", "1", SG_OFFLINE_LAST}, {"s/a", "2", SG_OFFLINE_LAST, true}, {"s/a", "3", SG_OFFLINE_LAST}},
	 "3", 1},
	{"other topics with a common prefix are not touched",
	 {{"s/a", "1", SG_OFFLINE_LAST}, {"s/ab", "2", SG_OFFLINE_LAST}, {"s/a", "3", SG_OFFLINE_LAST}},
	 "2,3", 1},
};

static void test_last_compaction(void **state)
{
	struct fixture *f = *state;

	for (size_t c = 0; c < sizeof(compaction_cases) / sizeof(compaction_cases[0]); c++) {
		struct sg_spool *s;
		char got[256];
		int token = 1;
		uint64_t depth_before;

		unlink(f->path);
		s = reopen(f);
		for (const struct put_op *op = compaction_cases[c].ops; op->topic; op++) {
			if (op->send_before) {
				assert_int_equal(spool_commit(s), 0);
				drain(s, &token, NULL, 0);
			}
			put(s, op->topic, op->payload, 1, op->policy);
		}
		assert_int_equal(spool_commit(s), 0);
		depth_before = stats(s).depth;
		drain(s, &token, got, sizeof(got));
		if (strcmp(got, compaction_cases[c].expect) != 0)
			fail_msg("%s: handed over \"%s\", expected \"%s\"", compaction_cases[c].legend, got,
			         compaction_cases[c].expect);
		if (stats(s).compacted != compaction_cases[c].compacted)
			fail_msg("%s: %llu compacted, expected %u", compaction_cases[c].legend,
			         (unsigned long long)stats(s).compacted, compaction_cases[c].compacted);
		/* depth counts the messages in the table, compacted ones excluded */
		assert_int_equal(depth_before, stats(s).spooled - stats(s).compacted);
		spool_close(s);
		f->s = NULL;
	}
}

/* ---- size bound --------------------------------------------------------------------------------- */

static void test_size_bound(void **state)
{
	struct fixture *f = *state;
	static const bool policies[] = {false, true};

	for (size_t c = 0; c < 2; c++) {
		bool drop_new = policies[c];
		struct sg_spool *s;
		struct sg_spool_stats st;
		struct sg_spool_msg m;
		char payload[512];
		uint64_t per_msg = strlen("bound/t") + sizeof(payload) + SPOOL_MSG_OVERHEAD;
		uint64_t capacity = 1024 * 1024 / per_msg;
		unsigned total = (unsigned)(capacity * 2 + 17), refused = 0, dropped_old = 0;
		int token = 1;

		unlink(f->path);
		f->cfg.max_size_mb = 1;
		f->cfg.drop_new = drop_new;
		s = reopen(f);
		/* one message in flight: never dropped to make room */
		memset(payload, 'x', sizeof(payload));
		assert_int_equal(spool_put(s, "bound/t", payload, sizeof(payload), 1, false, SG_OFFLINE_SPOOL, NULL), 0);
		assert_int_equal(spool_commit(s), 0);
		assert_int_equal(spool_next(s, &m), 1);
		assert_int_equal(spool_sent(s, m.id, token++), 0);
		for (unsigned i = 1; i < total; i++) {
			unsigned d = 0;
			int r;
			snprintf(payload, sizeof(payload), "%08u", i);
			payload[8] = 'x';
			r = spool_put(s, "bound/t", payload, sizeof(payload), 1, false, SG_OFFLINE_SPOOL, &d);
			if (r == -ENOBUFS)
				refused++;
			else
				assert_int_equal(r, 0);
			dropped_old += d;
			if (i % 500 == 0)
				assert_int_equal(spool_commit(s), 0);
		}
		assert_int_equal(spool_commit(s), 0);
		st = stats(s);
		assert_true(st.bytes <= st.limit);
		assert_int_equal(st.limit, 1024 * 1024);
		assert_int_equal(st.depth, capacity);
		assert_int_equal(st.dropped, refused + dropped_old);
		assert_int_equal(st.dropped, total - capacity);
		assert_int_equal(st.spooled + refused, total);
		assert_int_equal(st.depth, st.spooled - dropped_old);
		if (drop_new) {
			assert_int_equal(dropped_old, 0);
			/* the first ones are kept: the next is message 1 */
			assert_int_equal(spool_next(s, &m), 1);
			assert_int_equal(strncmp(m.payload, "00000001", 8), 0);
		} else {
			assert_int_equal(refused, 0);
			/* the newest are kept: the oldest left is total - capacity + 1 ("0" is in flight) */
			char want[16];
			snprintf(want, sizeof(want), "%08u", (unsigned)(total - capacity + 1));
			assert_int_equal(spool_next(s, &m), 1);
			assert_memory_equal(m.payload, want, 8);
		}
		/* the message in flight survived and is still acknowledged */
		assert_int_equal(spool_ack(s, 1), 1);
		/* a message larger than the whole spool is refused and counted */
		static char huge[1024 * 1024 + 1];
		assert_int_equal(spool_put(s, "bound/t", huge, sizeof(huge), 1, false, SG_OFFLINE_SPOOL, NULL), -ENOBUFS);
		assert_int_equal(stats(s).dropped, st.dropped + 1);
		spool_close(s);
		f->s = NULL;

		/* the accounting is the same after reopening */
		s = reopen(f);
		assert_int_equal(stats(s).depth, capacity - 1);
		assert_int_equal(stats(s).bytes, (capacity - 1) * per_msg);
		spool_close(s);
		f->s = NULL;
	}
}

/* ---- unreadable files --------------------------------------------------------------------------- */

enum spoil { GARBAGE, ZERO_HEADER, BAD_PAGES, FOREIGN_VERSION, FOREIGN_TABLES, FOREIGN_MSG };

static const struct {
	const char *legend;
	enum spoil how;
} spoil_cases[] = {
	{"garbage instead of a database", GARBAGE},
	{"header zeroed", ZERO_HEADER},
	{"pages overwritten in the middle", BAD_PAGES},
	{"a spool format we do not know", FOREIGN_VERSION},
	{"another application's database (user_version 0)", FOREIGN_TABLES},
	{"a msg table of another shape under our user_version", FOREIGN_MSG},
};

/* Replace PATH by a valid SQLite database made by SQL. */
static void make_db(const char *path, const char *sql)
{
	sqlite3 *db;

	unlink(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void write_at(const char *path, off_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void seq_of(void *ud, const char *topic, uint64_t seq)
{
	struct { uint64_t *t, *h; } *out = ud;

	if (strcmp(topic, "home/t") == 0)
		*out->t = seq;
	else if (strcmp(topic, "home/h") == 0)
		*out->h = seq;
}

/*
 * A spool file of the previous format (1: what sensorgate wrote before
 * measurement times, made here with the very statements of that version) is
 * migrated in place: nothing lost, order kept, each row's seq = its id (the
 * order within a topic), no time (unknown), not JSON to rewrite.
 */
static void test_migrate_format_1(void **state)
{
	struct fixture *f = *state;
	struct sg_spool_msg m;
	struct sg_spool_meta meta = {.ts_us = 1796533200000000, .boot_us = 5, .boot_id = 0xb007, .seq = 9,
	                             .epoch = 77, .flags = SG_SPOOL_F_JSON};
	sqlite3 *db;
	struct sg_spool *s;
	char *err = NULL;
	int token = 1;
	(void)state;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "PRAGMA journal_mode=WAL;"
	                              "BEGIN;"
	                              "CREATE TABLE IF NOT EXISTS msg(id INTEGER PRIMARY KEY, topic TEXT NOT NULL,"
	                              " payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,"
	                              " last INTEGER NOT NULL);"
	                              "CREATE INDEX IF NOT EXISTS msg_last ON msg(topic) WHERE last;"
	                              "CREATE TABLE IF NOT EXISTS value(name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
	                              " WITHOUT ROWID;"
	                              "PRAGMA user_version=1;"
	                              "INSERT INTO msg VALUES(3, 'home/t', '20.5', 1, 1, 0);"
	                              "INSERT INTO msg VALUES(4, 'home/h', '40', 1, 0, 0);"
	                              "INSERT INTO msg VALUES(5, 'home/t', '20.6', 1, 1, 1);"
	                              "INSERT INTO value VALUES('counter/total', 1234);"
	                              "COMMIT;",
	                              NULL, NULL, &err),
	                 SQLITE_OK);
	sqlite3_close(db);

	s = reopen(f);
	assert_string_equal(f->info.aside, "");
	assert_int_equal(f->info.depth, 3);
	{
		int64_t v;
		assert_int_equal(spool_value_get(s, "counter/total", &v), 0);
		assert_int_equal(v, 1234);
	}
	assert_int_equal(spool_next(s, &m), 1);
	assert_int_equal(m.id, 3);
	assert_string_equal(m.topic, "home/t");
	assert_memory_equal(m.payload, "20.5", 4);
	assert_true(m.retain);
	assert_int_equal(m.meta.seq, 3);
	assert_int_equal(m.meta.ts_us, 0);
	assert_int_equal(m.meta.boot_id, 0);
	assert_int_equal(m.meta.flags, 0);
	assert_int_equal(spool_sent(s, m.id, token++), 0);
	assert_int_equal(spool_next(s, &m), 1);
	assert_int_equal(m.id, 4);
	assert_int_equal(m.meta.seq, 4);
	assert_int_equal(spool_sent(s, m.id, token++), 0);
	assert_int_equal(spool_next(s, &m), 1);
	assert_int_equal(m.id, 5);
	assert_int_equal(m.meta.seq, 5); /* newer than 3 on the same topic */
	assert_int_equal(spool_sent(s, m.id, token++), 0);

	/* new messages carry their meta, in this file and after a reopen (format 2 now) */
	assert_int_equal(spool_put_meta(s, "home/t", "21", 2, 1, true, SG_OFFLINE_SPOOL, &meta, NULL), 0);
	assert_int_equal(spool_commit(s), 0);
	s = reopen(f);
	assert_int_equal(f->info.depth, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(spool_next(s, &m), 1);
		assert_int_equal(spool_sent(s, m.id, 100 + i), 0);
	}
	assert_int_equal(m.id, 6);
	assert_int_equal(m.meta.ts_us, meta.ts_us);
	assert_int_equal(m.meta.boot_us, meta.boot_us);
	assert_int_equal(m.meta.boot_id, meta.boot_id);
	assert_int_equal(m.meta.seq, meta.seq);
	assert_int_equal(m.meta.epoch, meta.epoch);
	assert_int_equal(m.meta.flags, meta.flags);

	/* the highest seq per topic, for the sequences to go on after a restart */
	{
		uint64_t t = 0, h = 0;
		struct { uint64_t *t, *h; } out = {&t, &h};
		assert_int_equal(spool_topic_seqs(s, seq_of, &out), 0);
		assert_int_equal(t, 9);
		assert_int_equal(h, 4);
	}
}

static void test_unreadable_file_moved_aside(void **state)
{
	struct fixture *f = *state;

	for (size_t c = 0; c < sizeof(spoil_cases) / sizeof(spoil_cases[0]); c++) {
		struct sg_spool *s;
		char buf[8192], got[64];
		struct stat st;
		int token = 1;

		unlink(f->path);
		s = reopen(f);
		for (int i = 0; i < 3000; i++)
			put(s, "some/topic/that/is/long", "payload-payload-payload", 1, SG_OFFLINE_SPOOL);
		assert_int_equal(spool_commit(s), 0);
		spool_close(s);
		f->s = NULL;

		switch (spoil_cases[c].how) {
		case GARBAGE:
			memset(buf, 'G', sizeof(buf));
			unlink(f->path);
			assert_int_equal(close(open(f->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
			write_at(f->path, 0, buf, sizeof(buf));
			break;
		case ZERO_HEADER:
			memset(buf, 0, 100);
			write_at(f->path, 0, buf, 100);
			break;
		case BAD_PAGES:
			memset(buf, 0xa5, sizeof(buf));
			write_at(f->path, 3 * 4096, buf, sizeof(buf));
			break;
		case FOREIGN_VERSION: {
			sqlite3 *db;
			assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
			assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=77", NULL, NULL, NULL), SQLITE_OK);
			sqlite3_close(db);
			break;
		}
		case FOREIGN_TABLES:
			make_db(f->path, "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);"
			                 "INSERT INTO notes(body) VALUES ('keep');");
			break;
		case FOREIGN_MSG:
			make_db(f->path, "CREATE TABLE msg(id INTEGER PRIMARY KEY, topic TEXT, payload BLOB);"
			                 "PRAGMA user_version=1;");
			break;
		}

		s = f->s = spool_open(&f->cfg, 100, &f->info);
		if (!s)
			fail_msg("%s: spool_open failed: %s (%s)", spoil_cases[c].legend, strerror(errno), f->info.why);
		if (!f->info.aside[0])
			fail_msg("%s: not moved aside", spoil_cases[c].legend);
		assert_non_null(strstr(f->info.aside, "/spool.db.corrupt-"));
		assert_true(f->info.why[0] != '\0');
		assert_int_equal(stat(f->info.aside, &st), 0);
		assert_true(st.st_size > 0);
		assert_int_equal(f->info.depth, 0);
		/* a fresh, working spool */
		put(s, "fresh", "1", 1, SG_OFFLINE_SPOOL);
		assert_int_equal(spool_commit(s), 0);
		assert_int_equal(drain(s, &token, got, sizeof(got)), 1);
		assert_string_equal(got, "1");
		spool_close(s);
		f->s = NULL;
		unlink(f->info.aside);
	}
}

/* ---- write errors ------------------------------------------------------------------------------- */

static void set_page_limit(struct sg_spool *s, long pages)
{
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%ld", pages);
	assert_int_equal(sqlite3_exec(spool_db(s), sql, NULL, NULL, NULL), SQLITE_OK);
}

static long page_count(struct sg_spool *s)
{
	sqlite3_stmt *st;
	long n;
	assert_int_equal(sqlite3_prepare_v2(spool_db(s), "PRAGMA page_count", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Allocated size of the spool's reserve file. */
static long reserve_size(const struct fixture *f)
{
	char p[160];
	struct stat st;

	snprintf(p, sizeof(p), "%s-reserve", f->path);
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_blocks * 512 >= st.st_size); /* not sparse */
	return (long)st.st_size;
}

static void test_disk_full_and_recovery(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s;

	f->max_out = 1000;
	s = reopen(f);
	struct sg_spool_msg m;
	char payload[200];
	unsigned batch = 0, acked_while_failing = 0;
	int token = 1, r = 0;

	spool_set_retry_delay(s, 0);
	/* 1000 messages in flight when the disk fills up */
	for (int i = 0; i < 1000; i++)
		put(s, "t", i ? "early" : "first", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(drain(s, &token, NULL, 0), 1000);
	set_page_limit(s, page_count(s) + 1); /* room for a batch or so: one page */
	memset(payload, 'p', sizeof(payload));
	/* fill until a write fails: in a put, or at the latest in a commit */
	for (int i = 0; i < 1000 && r == 0; i++) {
		r = spool_put(s, "t", payload, sizeof(payload), 1, false, SG_OFFLINE_SPOOL, NULL);
		if (r == 0) {
			batch++;
			if (batch == 10) {
				r = spool_commit(s);
				if (r == 0)
					batch = 0;
			}
		}
	}
	assert_int_equal(r, -ENOSPC);
	assert_true(spool_failed(s));
	assert_int_equal(reserve_size(f), 0); /* given back for the deletes to come */
	/* the open batch was rolled back: its messages are counted as dropped */
	assert_int_equal(stats(s).dropped, batch);
	assert_false(spool_pending(s));

	/* while failing: puts fail at once, acknowledgements are taken, committed messages still read */
	spool_set_retry_delay(s, 3600ULL * 1000000);
	assert_int_equal(spool_put(s, "t", "x", 1, 1, false, SG_OFFLINE_SPOOL, NULL), -ENOSPC);
	for (int t = 1000; t >= 1; t--)
		if (spool_ack(s, t) == -ENOSPC)
			acked_while_failing++;
	assert_int_equal(acked_while_failing, 1000);
	assert_int_equal(spool_outstanding(s), 0);
	assert_int_equal(stats(s).acknowledged, 1000);
	assert_int_equal(spool_next(s, &m), 1);
	assert_int_equal(m.len, sizeof(payload)); /* acknowledged ones are not handed over again */

	/* a retry while the disk is still full costs nothing */
	spool_set_retry_delay(s, 0);
	assert_int_equal(spool_put(s, "t", "x", 1, 1, false, SG_OFFLINE_SPOOL, NULL), -ENOSPC);
	assert_int_equal(stats(s).dropped, batch);

	/* space is back: the acknowledged ones are deleted, the rest kept */
	set_page_limit(s, 1000000);
	put(s, "t", "after", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	assert_false(spool_failed(s));
	assert_int_equal(reserve_size(f), SPOOL_RESERVE_BYTES); /* taken back */
	uint64_t depth = stats(s).depth;
	/* handed over without a reopen: nothing of the rolled-back batch comes from memory */
	unsigned live = 0;
	while (spool_next(s, &m) == 1) {
		assert_true(m.len == sizeof(payload) || (m.len == 5 && memcmp(m.payload, "after", 5) == 0));
		assert_int_equal(spool_sent(s, m.id, token++), 0);
		live++;
	}
	assert_int_equal(live, depth);
	s = reopen(f);
	assert_int_equal(stats(s).depth, depth);
	unsigned n = 0, after = 0;
	while (spool_next(s, &m) == 1) {
		assert_true(m.len == sizeof(payload) || (m.len == 5 && memcmp(m.payload, "after", 5) == 0));
		after += m.len == 5;
		assert_int_equal(spool_sent(s, m.id, token++), 0);
		n++;
	}
	assert_int_equal(after, 1);
	assert_int_equal(n, depth);
}

/* Messages of a batch that was rolled back are gone: memory does not hand them over either. */
static void test_rolled_back_batch_is_not_handed_over(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s = reopen(f);
	static char big[8 * 1024];
	char got[64];
	int token = 1, r = 0;

	spool_set_retry_delay(s, 0);
	put(s, "t", "kept", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 1);
	set_page_limit(s, page_count(s)); /* no page more */
	put(s, "t", "lost", 1, SG_OFFLINE_SPOOL); /* fits the last page */
	memset(big, 'b', sizeof(big));
	for (int i = 0; i < 8 && r == 0; i++)
		r = spool_put(s, "t", big, sizeof(big), 1, false, SG_OFFLINE_SPOOL, NULL);
	assert_int_equal(r, -ENOSPC);
	assert_int_equal(stats(s).dropped, 1); /* "lost", with its batch */
	set_page_limit(s, 1000000);
	put(s, "t", "after", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	assert_int_equal(drain(s, &token, got, sizeof(got)), 1);
	assert_string_equal(got, "after");
}

/* ---- a real full disk --------------------------------------------------------------------------- */

/* Put the spool on a tmpfs of KIB at <dir>/fs; skips the test when that cannot be done (not root). */
static void mount_small_fs(struct fixture *f, unsigned kib)
{
	char opts[48];

	snprintf(f->fs, sizeof(f->fs), "%s/fs", f->dir);
	snprintf(opts, sizeof(opts), "size=%uk,mode=0700", kib);
	if (mkdir(f->fs, 0700) < 0 || mount("tmpfs", f->fs, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) {
		fprintf(stderr, "SKIPPED LOUDLY: cannot mount a %u KiB tmpfs (%s); real disk-full test not run\n", kib,
		        strerror(errno));
		skip();
	}
	f->mounted = true;
	snprintf(f->path, sizeof(f->path), "%s/spool.db", f->fs);
}

static uint64_t free_bytes(const struct fixture *f)
{
	struct statvfs v;
	assert_int_equal(statvfs(f->fs, &v), 0);
	return (uint64_t)v.f_bavail * v.f_frsize;
}

/* Another program writes NAME (in the tmpfs) until the disk is full, or BYTES at most. */
static void fill(const struct fixture *f, const char *name, size_t bytes)
{
	char p[160], block[4096];
	size_t n = 0;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", f->fs, name);
	fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0600);
	assert_true(fd >= 0);
	memset(block, 0x5a, sizeof(block));
	while (n < bytes) {
		ssize_t k = write(fd, block, sizeof(block));
		if (k < 0) {
			assert_int_equal(errno, ENOSPC);
			break;
		}
		n += (size_t)k;
	}
	close(fd);
}

static void unfill(const struct fixture *f, const char *name)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/%s", f->fs, name);
	assert_int_equal(unlink(p), 0);
}

static long file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (long)st.st_size;
}

/*
 * The case that kept the spool stuck: its WAL holds pages that lie beyond the
 * end of the database file when another program takes the last block. Moving
 * them into the database (the checkpoint) needs room first, and so does every
 * delete. The spool gives back its reserve, deletes what was acknowledged
 * while the disk stays full, and writes again once there is room.
 */
static void test_full_disk_gives_back_reserve(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s;
	char payload[200];
	int token = 1;

	f->max_out = 1000;
	mount_small_fs(f, 2048);
	s = reopen(f);
	spool_set_retry_delay(s, 0);
	assert_false(spool_failed(s));
	assert_int_equal(reserve_size(f), SPOOL_RESERVE_BYTES);

	/* about 170 KiB of messages in three batches, committed into the WAL and not yet checkpointed */
	assert_int_equal(sqlite3_wal_checkpoint_v2(spool_db(s), NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL),
	                 SQLITE_OK);
	memset(payload, 'p', sizeof(payload));
	for (int b = 0; b < 3; b++) {
		for (int i = 0; i < 250; i++)
			assert_int_equal(spool_put(s, "test/seq", payload, sizeof(payload), 1, false, SG_OFFLINE_SPOOL, NULL),
			                 0);
		assert_int_equal(spool_commit(s), 0);
	}
	assert_int_equal(stats(s).depth, 750);
	/* the premise: the database in the WAL is well beyond the end of the file */
	assert_true(page_count(s) * 4096 >= file_size(f->path) + 128 * 1024);
	assert_int_equal(drain(s, &token, NULL, 0), 750);

	/* another program takes the last block; the acknowledgements cannot be written */
	fill(f, "others", SIZE_MAX);
	assert_true(free_bytes(f) < 4096);
	for (int t = 1; t < token; t++)
		assert_int_equal(spool_ack(s, t), 1);
	assert_int_equal(spool_commit(s), -ENOSPC);
	assert_true(spool_failed(s));
	assert_int_equal(reserve_size(f), 0);
	assert_int_equal(stats(s).depth, 750); /* rolled back */

	/* the disk stays full: the next try deletes them all, and still refuses new messages */
	assert_int_equal(spool_put(s, "test/seq", "x", 1, 1, false, SG_OFFLINE_SPOOL, NULL), -ENOSPC);
	assert_int_equal(stats(s).depth, 0);
	assert_true(spool_failed(s));
	assert_true(free_bytes(f) < SPOOL_RESERVE_BYTES);
	assert_int_equal(reserve_size(f), 0);

	/* room again: reserve back, messages taken */
	unfill(f, "others");
	put(s, "test/seq", "after", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	assert_false(spool_failed(s));
	assert_int_equal(reserve_size(f), SPOOL_RESERVE_BYTES);
	s = reopen(f);
	char got[32];
	assert_int_equal(drain(s, &token, got, sizeof(got)), 1);
	assert_string_equal(got, "after");
}

/*
 * Filling the disk itself, the spool stops short of the last block: the open
 * batch is kept, nothing is lost, and it starts again once there is room. A
 * spool opened without room for its reserve refuses messages from the start.
 */
static void test_full_disk_stops_short(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s;
	char payload[100];
	int r = 0, puts = 0;

	mount_small_fs(f, 1536);
	fill(f, "others", 512 * 1024);
	s = reopen(f);
	spool_set_retry_delay(s, 0);
	assert_false(spool_failed(s));
	memset(payload, 'q', sizeof(payload));
	while (r == 0 && puts < 100000) {
		r = spool_put(s, "test/seq", payload, sizeof(payload), 1, false, SG_OFFLINE_SPOOL, NULL);
		if (r == 0 && ++puts % 100 == 0)
			r = spool_commit(s);
	}
	assert_int_equal(r, -ENOSPC);
	assert_true(spool_failed(s));
	assert_int_equal(stats(s).dropped, 0);
	assert_int_equal(stats(s).depth, puts);
	assert_true(free_bytes(f) > 0);
	assert_int_equal(reserve_size(f), SPOOL_RESERVE_BYTES);
	assert_int_equal(spool_put(s, "test/seq", "x", 1, 1, false, SG_OFFLINE_SPOOL, NULL), -ENOSPC);

	/* closed and opened again on a disk without room for the reserve beside it */
	spool_close(s);
	f->s = NULL;
	char rp[160];
	snprintf(rp, sizeof(rp), "%s-reserve", f->path);
	assert_int_equal(unlink(rp), 0);
	fill(f, "more", SIZE_MAX);
	s = reopen(f);
	spool_set_retry_delay(s, 0);
	assert_true(spool_failed(s));
	assert_int_equal(stats(s).depth, puts);
	assert_int_equal(spool_put(s, "test/seq", "x", 1, 1, false, SG_OFFLINE_SPOOL, NULL), -ENOSPC);

	unfill(f, "others");
	unfill(f, "more");
	put(s, "test/seq", "again", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(s), 0);
	assert_false(spool_failed(s));
	assert_int_equal(reserve_size(f), SPOOL_RESERVE_BYTES);
	assert_int_equal(stats(s).depth, puts + 1);
}

/* ---- durable values --------------------------------------------------------------------------- */

static void test_values(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s = reopen(f);
	sqlite3 *db;
	int64_t v = -1;
	int token = 1;

	assert_int_equal(spool_value_get(s, "meter/pulses", &v), -ENOENT);
	assert_int_equal(v, -1);
	assert_int_equal(spool_value_save(s, "meter/pulses", 41), 0);
	assert_int_equal(spool_value_save(s, "meter/pulses", 42), 0);
	assert_int_equal(spool_value_save(s, "water/pulses", INT64_MAX), 0);
	assert_int_equal(spool_value_get(s, "meter/pulses", &v), 0);
	assert_int_equal(v, 42);
	/* a save commits the open batch of messages with it */
	put(s, "a/t", "1", 1, SG_OFFLINE_SPOOL);
	assert_true(spool_pending(s));
	assert_int_equal(spool_value_save(s, "meter/pulses", 43), 0);
	assert_false(spool_pending(s));
	assert_int_equal(drain(s, &token, NULL, 0), 1);
	/* values are not messages: neither counted nor handed over */
	assert_int_equal(stats(s).depth, 1);
	s = reopen(f);
	assert_int_equal(spool_value_get(s, "meter/pulses", &v), 0);
	assert_int_equal(v, 43);
	assert_int_equal(spool_value_get(s, "water/pulses", &v), 0);
	assert_int_equal(v, INT64_MAX);

	/* a spool of an earlier sensorgate (schema 1, no value table) gets one, its messages kept */
	db = spool_db(s);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE value", NULL, NULL, NULL), SQLITE_OK);
	s = reopen(f);
	assert_int_equal(f->info.aside[0], '\0');
	assert_int_equal(stats(s).depth, 1);
	assert_int_equal(spool_value_get(s, "meter/pulses", &v), -ENOENT);
	assert_int_equal(spool_value_save(s, "meter/pulses", 7), 0);
	assert_int_equal(spool_value_get(s, "meter/pulses", &v), 0);
	assert_int_equal(v, 7);
}

static void test_value_save_on_a_full_disk(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s = reopen(f);
	char payload[400];
	int64_t v = 0;
	int r = 0;

	spool_set_retry_delay(s, 0);
	assert_int_equal(spool_value_save(s, "c", 1), 0);
	set_page_limit(s, page_count(s));
	memset(payload, 'p', sizeof(payload));
	for (int i = 0; i < 10000 && r == 0; i++) {
		r = spool_put(s, "t", payload, sizeof(payload), 1, false, SG_OFFLINE_SPOOL, NULL);
		if (r == 0)
			r = spool_commit(s);
	}
	assert_int_equal(r, -ENOSPC);
	/* the disk is full: the save says so, the old value stays */
	for (int i = 0; i < 1000 && (r = spool_value_save(s, "c", 2 + i)) == 0; i++)
		;
	assert_int_equal(r, -ENOSPC);
	assert_int_equal(spool_value_get(s, "c", &v), 0);
	assert_true(v >= 1);
	set_page_limit(s, 1000000);
	assert_int_equal(spool_value_save(s, "c", 5000), 0);
	s = reopen(f);
	assert_int_equal(spool_value_get(s, "c", &v), 0);
	assert_int_equal(v, 5000);
}

/* ---- files and locks ---------------------------------------------------------------------------- */

static void test_default_path_and_directory(void **state)
{
	struct fixture *f = *state;
	char sd[160], want[200];
	struct stat st;

	snprintf(sd, sizeof(sd), "%s/state/deeper", f->dir);
	setenv("STATE_DIRECTORY", sd, 1);
	f->cfg.path = NULL;
	f->s = spool_open(&f->cfg, 10, &f->info);
	unsetenv("STATE_DIRECTORY");
	assert_non_null(f->s);
	snprintf(want, sizeof(want), "%s/spool.db", sd);
	assert_string_equal(spool_path(f->s), want);
	assert_string_equal(f->info.path, want);
	assert_int_equal(stat(want, &st), 0);

	/* several state directories: the first is ours */
	spool_close(f->s);
	snprintf(sd, sizeof(sd), "%s/one:%s/two", f->dir, f->dir);
	setenv("STATE_DIRECTORY", sd, 1);
	f->s = spool_open(&f->cfg, 10, &f->info);
	unsetenv("STATE_DIRECTORY");
	assert_non_null(f->s);
	snprintf(want, sizeof(want), "%s/one/spool.db", f->dir);
	assert_string_equal(spool_path(f->s), want);
}

/* ---- files past 2 GiB (sparse: nothing near that size is written) -------------------------------- */

#define PAST_2GIB ((int64_t)3 << 30)

/*
 * Extend PATH to PAST_2GIB with a hole: its size, not its blocks. The explicit 64-bit
 * calls make the file whatever off_t the build has: the spool is what is under test.
 */
static void make_sparse_past_2gib(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_LARGEFILE | O_CLOEXEC, 0600);
	struct stat64 st;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate64(fd, PAST_2GIB), 0);
	assert_int_equal(fstat64(fd, &st), 0);
	assert_true(st.st_size == PAST_2GIB);
	assert_true((uint64_t)st.st_blocks * 512 < ((uint64_t)1 << 20));
	close(fd);
}

/*
 * The reserve file and the database past 2 GiB: both open and the spool works on. A 32-bit
 * build (armhf) without _FILE_OFFSET_BITS=64 fails the reserve's open() with EOVERFLOW.
 */
static void test_files_past_2gib(void **state)
{
	struct fixture *f = *state;
	char rsv[160], out[64];
	int token = 1;

	snprintf(rsv, sizeof(rsv), "%s-reserve", f->path);
	make_sparse_past_2gib(rsv);
	reopen(f);
	assert_false(spool_failed(f->s));
	put(f->s, "t/a", "1", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(f->s), 0);
	spool_close(f->s);
	f->s = NULL;

	make_sparse_past_2gib(f->path); /* SQLite reads its page count from the header: the hole is ignored */
	reopen(f);
	assert_false(spool_failed(f->s));
	put(f->s, "t/b", "2", 1, SG_OFFLINE_SPOOL);
	assert_int_equal(spool_commit(f->s), 0);
	assert_int_equal(drain(f->s, &token, out, sizeof(out)), 2);
	assert_string_equal(out, "1,2");
}

static void test_second_open_is_refused(void **state)
{
	struct fixture *f = *state;
	struct sg_spool_info info;
	struct sg_spool *other;

	reopen(f);
	other = spool_open(&f->cfg, 10, &info);
	assert_null(other);
	assert_int_equal(errno, EBUSY);
	assert_string_equal(info.aside, "");
}

/* What is at the spool's path is not a file: said as it is, nothing moved or created. */
static void test_not_a_regular_file(void **state)
{
	struct fixture *f = *state;
	struct sg_spool_info info;
	char path[200];
	struct stat st;

	snprintf(path, sizeof(path), "%s/dir.db", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	f->cfg.path = path;
	assert_null(spool_open(&f->cfg, 10, &info));
	assert_int_equal(errno, EISDIR);
	assert_string_equal(info.aside, "");
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	rmdir(path);

	alarm(10); /* opening a FIFO for reading would wait for a writer */
	snprintf(path, sizeof(path), "%s/fifo.db", f->dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_null(spool_open(&f->cfg, 10, &info));
	alarm(0);
	assert_int_equal(errno, EINVAL);
	assert_string_equal(info.why, "it is a FIFO, not a regular file");
	assert_string_equal(info.aside, "");
	unlink(path);

	/* the same for its reserve file; a symbolic link there is not followed */
	snprintf(path, sizeof(path), "%s-reserve", f->path);
	assert_int_equal(mkfifo(path, 0600), 0);
	f->cfg.path = f->path;
	assert_null(spool_open(&f->cfg, 10, &info));
	assert_int_equal(errno, EINVAL);
	assert_string_equal(info.why, "cannot create its reserve file (the name with \"-reserve\"): "
	                              "something other than a regular file is there");
	unlink(path);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_null(spool_open(&f->cfg, 10, &info));
	assert_int_equal(errno, ELOOP);
	unlink(path);
	f->s = spool_open(&f->cfg, 10, &info);
	assert_non_null(f->s);
	assert_int_equal(reserve_size(f), SPOOL_RESERVE_BYTES);
}

static void test_unwritable_directory(void **state)
{
	struct fixture *f = *state;
	struct sg_spool_info info;
	char path[200];

	/* a regular file where the directory should be */
	snprintf(path, sizeof(path), "%s/file", f->dir);
	assert_int_equal(close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
	snprintf(path, sizeof(path), "%s/file/spool.db", f->dir);
	f->cfg.path = path;
	assert_null(spool_open(&f->cfg, 10, &info));
	assert_int_equal(errno, ENOTDIR);
	assert_true(info.why[0] != '\0');
}

/* ---- in-flight table, memory -------------------------------------------------------------------- */

static void test_inflight_table_churn(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s;
	struct sg_spool_msg m;
	int tokens[100];
	unsigned seed = 12345, acked = 0;
	int mid = 65000;

	s = f->s = spool_open(&f->cfg, 100, &f->info);
	assert_non_null(s);
	for (int round = 0; round < 200; round++) {
		unsigned n = 0;
		for (int i = 0; i < 100; i++)
			put(s, "churn", "x", 1, SG_OFFLINE_SPOOL);
		assert_int_equal(spool_commit(s), 0);
		while (spool_outstanding(s) < 100 && spool_next(s, &m) == 1) {
			mid = mid % 65535 + 1; /* wraps like MQTT packet ids */
			tokens[n++] = mid;
			assert_int_equal(spool_sent(s, m.id, mid), 0);
		}
		/* acknowledge in a scrambled order */
		for (unsigned i = n; i > 1; i--) {
			seed = seed * 1103515245u + 12345u;
			unsigned j = (seed >> 8) % i;
			int t = tokens[i - 1];
			tokens[i - 1] = tokens[j];
			tokens[j] = t;
		}
		for (unsigned i = 0; i < n; i++) {
			assert_int_equal(spool_ack(s, tokens[i]), 1);
			acked++;
		}
		assert_int_equal(spool_outstanding(s), 0);
		assert_int_equal(spool_commit(s), 0);
	}
	assert_int_equal(stats(s).depth, 0);
	assert_int_equal(stats(s).acknowledged, acked);
	assert_int_equal(acked, 200 * 100);
}

static void test_memory_stays_flat(void **state)
{
	struct fixture *f = *state;
	struct sg_spool *s;
	struct sg_spool_msg m;
	sqlite3_int64 after_warmup = 0;
	int token = 1;

	s = f->s = spool_open(&f->cfg, 100, &f->info);
	assert_non_null(s);
	for (int round = 0; round < 400; round++) {
		for (int i = 0; i < 50; i++)
			put(s, round % 2 ? "mem/a" : "mem/b", "21.5", 1, i % 3 ? SG_OFFLINE_SPOOL : SG_OFFLINE_LAST);
		assert_int_equal(spool_commit(s), 0);
		while (spool_next(s, &m) == 1) {
			assert_int_equal(spool_sent(s, m.id, token), 0);
			assert_int_equal(spool_ack(s, token), 1);
			token = token % 60000 + 1;
		}
		assert_int_equal(spool_commit(s), 0);
		if (round == 50)
			after_warmup = sqlite3_memory_used();
	}
	/* SQLite's heap does not grow with the number of messages handled */
	assert_true(sqlite3_memory_used() <= after_warmup + 64 * 1024);
	assert_true(sqlite3_memory_highwater(0) < 2 * 1024 * 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_and_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_fields_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ack_keeps_exact_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handed_over_from_memory_or_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rolled_back_batch_is_not_handed_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_after_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_commits_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requeue_lost_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_message_goes_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_unsendable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_format_1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_file_moved_aside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_regular_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_and_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_disk_gives_back_reserve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_disk_stops_short, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_path_and_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_past_2gib, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_open_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_table_churn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_stays_flat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_value_save_on_a_full_disk, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
