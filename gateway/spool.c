/* SPDX-License-Identifier: MIT */
/*
 * spool.c — the store-and-forward queue in SQLite (WAL, batched transactions).
 *
 * One table, one row per message:
 *   msg(id INTEGER PRIMARY KEY, topic TEXT, payload BLOB, qos, retain, last)
 * plus a partial index on topic for the rows put with SG_OFFLINE_LAST, so
 * compaction touches only those. A second, small table keeps named integers
 * for the rest of the gateway (a pulse counter's total):
 *   value(name TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID
 * added to files of schema 1 that lack it (older sensorgates ignore it). Ids are given by us, increasing (max + 1 at
 * open), so "the rows after the last one handed over" is a range scan of
 * the primary key and a drained table never reuses an id within a process.
 *
 * The connection is opened in exclusive locking mode: the WAL index lives in
 * our heap (no -shm file, no mmap) and a second process cannot open the same
 * spool. The page cache is small and fixed; statements are prepared once.
 *
 * In memory: the range of ids handed over (cursor, sent_max), the table of
 * messages in flight (token -> id, open addressing) and counters. This file
 * owns all of it; nothing here is allocated per message.
 *
 * An invariant makes write errors cheap to survive: every row whose id is at
 * most the cursor and that is not in flight has been acknowledged (or was
 * removed). So removals that were rolled back, or acknowledgements that came
 * while nothing could be written, need no list: once writing works again,
 * those id ranges are deleted.
 *
 * A full disk. SQLite needs space to free space (a delete writes WAL frames;
 * a checkpoint grows the database file before the WAL can be reused), so a
 * disk filled to the last block could keep the spool from ever deleting what
 * was acknowledged. Four things prevent that:
 *  - the reserve (spool_reserve.h), released when a write fails for want of
 *    space and taken back before new messages are written;
 *  - a bounded WAL: we checkpoint after the commit that takes it to
 *    WAL_CHECKPOINT_PAGES, a batch is committed at BATCH_MAX_BYTES, so a
 *    checkpoint never needs to grow the database by more than about 100 pages
 *    (400 KiB), less than the reserve; a checkpoint that fails is a write error;
 *  - after a write error, deletes in transactions of DELETE_CHUNK_BYTES, each
 *    committed before the next, so that the WAL they need stays within the
 *    same bound;
 *  - puts stop with FREE_MIN still free on the disk, and start again only
 *    with the reserve held and FREE_AGAIN free beside it.
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../common/clock.h"
#include "spool_reserve.h"

#define SCHEMA_VERSION       2
#define SCHEMA_VERSION_STR   "2"
#define SCHEMA_COLUMNS_V1    "id,topic,payload,qos,retain,last"   /* of table msg, in order */
#define SCHEMA_COLUMNS       SCHEMA_COLUMNS_V1 ",ts,boot_us,boot_id,seq,epoch,flags"
/*
 * Version 2 adds the measurement's time and what replay needs (spool.h, struct sg_spool_meta).
 * A version 1 file is migrated in place: its rows get no time (unknown) and seq = id, which keeps
 * each topic's order.
 */
#define SCHEMA_V2_COLUMNS_SQL \
	"ALTER TABLE msg ADD COLUMN ts INTEGER NOT NULL DEFAULT 0;" \
	"ALTER TABLE msg ADD COLUMN boot_us INTEGER NOT NULL DEFAULT 0;" \
	"ALTER TABLE msg ADD COLUMN boot_id INTEGER NOT NULL DEFAULT 0;" \
	"ALTER TABLE msg ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;" \
	"ALTER TABLE msg ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;" \
	"ALTER TABLE msg ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;"
#define CACHE_KIB            256            /* page cache: 64 pages of 4 KiB */
#define WAL_CHECKPOINT_PAGES 64             /* checkpoint when the WAL reaches 256 KiB ... */
#define WAL_SIZE_LIMIT       (256 * 1024)   /* ... and keep the file no larger after it */
#define BATCH_MAX_BYTES      (64 * 1024)    /* a batch this large is committed before the next put */
#define DELETE_CHUNK_BYTES   (64 * 1024)    /* after a write error, rows are deleted in transactions of this */
#define FREE_MIN             (64 * 1024)    /* puts stop with this much (plus the batch, twice) left free */
#define FREE_AGAIN           (256 * 1024)   /* and go on once the reserve is held and this much is free */
#define ACK_COMMIT_US        1000000ULL     /* a batch of QoS 0/1 removals only waits this long for company */
#define FREE_CHECK_BYTES     (16 * 1024)    /* free space is looked at again after this much was put */
#define RETRY_DELAY_US       (2 * 1000000ULL)
#define PROBE_BYTES_STR      "65536"              /* a retry writes (and removes) this much first */
#define BYTES_PER_MIB        (1024ULL * 1024ULL)

/* The table of named values (see the top of this file). */
#define VALUE_TABLE_SQL \
	"CREATE TABLE IF NOT EXISTS value(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"

/* The accounted size of a row, in SQL and in C. */
#define SQL_ROW_SIZE "(length(CAST(topic AS BLOB)) + length(payload))"

/*
 * The messages put last, so that handing one over needs no read back: in a
 * steady stream the next message to hand over (the row after the cursor) is
 * one put lately, in the same burst, and reading it back from SQLite cost
 * about 5,000 instructions (README, Benchmarks). The messages are written
 * one after the other into a ring of RECENT_RING bytes, found through a slot
 * per row ID & (RECENT_N - 1); an entry is good while the ring has not come
 * round to it again. A row deleted by its acknowledgement or a drop empties
 * its slot; any other delete (compaction, the oldest dropped for room) and a
 * batch rolled back forget them all (a new generation), so an entry found is
 * always a row that is still in the file, as it was put.
 */
#define RECENT_N    1024
#define RECENT_RING (64 * 1024)
#define RECENT_MAX  1024 /* larger messages are read back */

struct recent_hdr {
	struct sg_spool_meta meta;
	uint32_t len;
	uint16_t topic_len;
	uint8_t qos;
	bool retain;
	/* then the topic, NUL, the payload */
};

struct recent_slot {
	int64_t id;   /* 0: empty */
	uint64_t pos; /* where in the ring's stream of bytes it starts */
	uint32_t gen;
};

struct inflight {
	int64_t id;      /* 0 = free slot */
	int64_t size;    /* its SQL_ROW_SIZE, -1: not known */
	int token;
	int qos;
};

struct sg_spool {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *st_begin, *st_commit, *st_rollback;
	sqlite3_stmt *st_insert, *st_delete, *st_delete_id, *st_delete_range, *st_oldest, *st_compact, *st_next, *st_sizes;
	sqlite3_stmt *st_pages;
	sqlite3_stmt *st_vget, *st_vput;
	int64_t page_size;
	bool in_txn;
	bool next_active;           /* st_next holds a row for the caller */

	uint64_t limit;             /* bytes */
	bool drop_new;
	bool sync_full;             /* every commit fsync'ed; else only those of spool_value_save() */

	int64_t next_id;            /* id of the next put */
	int64_t committed_limit;    /* every id below this is committed (commit_us: or put), and may be handed over */
	uint64_t commit_us;         /* commit_interval: handed over at once, committed within this */
	uint64_t batch_started;     /* when the open batch was begun */
	bool batch_urgent;          /* holds more than removals of acknowledged QoS 0/1 messages */
	int64_t batch_first_id;     /* next_id then */
	int64_t cursor;             /* spool_next() scans ids above this */
	int64_t sent_max;           /* highest id handed over by this process */
	struct recent_slot *recent; /* RECENT_N slots and the ring, from the first put on (NULL: none) */
	uint8_t *ring;
	uint64_t ring_head;         /* bytes written to the ring so far */
	uint32_t recent_gen;
	int64_t last_id;            /* what spool_next() returned last */
	int last_qos;
	int64_t last_size;

	/* counters; depth and bytes follow the database, including the open batch */
	struct sg_spool_stats st;
	uint64_t batch_puts;        /* rows inserted in the open batch */
	int64_t batch_depth;        /* depth and bytes changes in the open batch */
	int64_t batch_bytes;

	struct inflight *fl;        /* messages in flight, by token */
	unsigned fl_cap;            /* power of two */
	unsigned fl_n;
	int64_t *scratch;           /* fl_cap ids, for sorting */

	bool dirty;                 /* acknowledged rows up to the cursor may not be deleted yet */

	struct sg_reserve rsv;      /* room for getting out of a full disk */
	uint64_t unchecked;         /* bytes put since free space was last looked at */
	int ckpt_rc;                /* a checkpoint after a commit failed with this */

	bool failed;                /* writes are failing */
	int fail_err;
	uint64_t failed_at;
	uint64_t retry_delay;
};

/* ---- helpers ---------------------------------------------------------------------------------- */

static int sq_err(sqlite3 *db, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_CANTOPEN:
		/* the open(2) that failed says why better than SQLite's one code for all */
		if (db && sqlite3_system_errno(db) > 0)
			return -sqlite3_system_errno(db);
		return -EACCES;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_IOERR:
		if (db && sqlite3_system_errno(db) == ENOSPC)
			return -ENOSPC;
		return -EIO;
	default:
		return -EIO;
	}
}

static bool sq_corrupt(int rc)
{
	return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

static unsigned fl_home(const struct sg_spool *s, int token)
{
	return ((uint32_t)token * 2654435761u) & (s->fl_cap - 1);
}

static struct inflight *fl_find(struct sg_spool *s, int token)
{
	for (unsigned i = fl_home(s, token), n = 0; n < s->fl_cap; i = (i + 1) & (s->fl_cap - 1), n++) {
		if (!s->fl[i].id)
			return NULL;
		if (s->fl[i].token == token)
			return &s->fl[i];
	}
	return NULL;
}

static bool fl_has_id(const struct sg_spool *s, int64_t id)
{
	for (unsigned i = 0; i < s->fl_cap; i++)
		if (s->fl[i].id == id)
			return true;
	return false;
}

/* Remove slot I, moving later entries of its cluster back (no tombstones). */
static void fl_remove_at(struct sg_spool *s, unsigned i)
{
	unsigned mask = s->fl_cap - 1, j = i;

	s->fl[i].id = 0;
	s->fl_n--;
	for (;;) {
		j = (j + 1) & mask;
		if (!s->fl[j].id)
			return;
		unsigned home = fl_home(s, s->fl[j].token);
		/* may entry j move to hole i? only if its home is not cyclically in (i, j] */
		bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
		if (stays)
			continue;
		s->fl[i] = s->fl[j];
		s->fl[j].id = 0;
		i = j;
	}
}

static void reset_next(struct sg_spool *s)
{
	if (s->next_active) {
		sqlite3_reset(s->st_next);
		s->next_active = false;
	}
}

/* Row ID is gone (0: maybe any row: forget them all). */
static void recent_forget(struct sg_spool *s, int64_t id)
{
	if (!s->recent)
		return;
	if (!id) {
		if (++s->recent_gen == 0)
			s->recent_gen = 1;
	} else if (s->recent[id & (RECENT_N - 1)].id == id) {
		s->recent[id & (RECENT_N - 1)].id = 0;
	}
}

static void recent_keep(struct sg_spool *s, int64_t id, const char *topic, const void *payload, size_t len, int qos,
                        bool retain, const struct sg_spool_meta *meta)
{
	size_t tlen = strlen(topic), size = (sizeof(struct recent_hdr) + tlen + 1 + len + 7) & ~(size_t)7, off;
	struct recent_slot *slot;
	struct recent_hdr *h;

	if (!s->recent) {
		s->recent = calloc(RECENT_N, sizeof(*s->recent));
		s->ring = malloc(RECENT_RING);
		s->recent_gen = 1;
		if (!s->recent || !s->ring) { /* then every message is read back */
			free(s->recent);
			free(s->ring);
			s->recent = NULL;
			s->ring = NULL;
			return;
		}
	}
	slot = &s->recent[id & (RECENT_N - 1)];
	if (size > RECENT_MAX) {
		slot->id = 0;
		return;
	}
	off = s->ring_head % RECENT_RING;
	if (off + size > RECENT_RING) { /* an entry never wraps: the rest of the lap stays unused */
		s->ring_head += RECENT_RING - off;
		off = 0;
	}
	h = (struct recent_hdr *)(s->ring + off);
	*h = (struct recent_hdr){.meta = *meta, .len = (uint32_t)len, .topic_len = (uint16_t)tlen, .qos = (uint8_t)qos,
	                         .retain = retain};
	memcpy(h + 1, topic, tlen + 1);
	if (len)
		memcpy((char *)(h + 1) + tlen + 1, payload, len);
	*slot = (struct recent_slot){.id = id, .pos = s->ring_head, .gen = s->recent_gen};
	s->ring_head += size;
}

/* Row ID as it was put, or NULL when it is not in the ring (any more). */
static const struct recent_hdr *recent_get(const struct sg_spool *s, int64_t id)
{
	const struct recent_slot *slot;

	if (!s->recent)
		return NULL;
	slot = &s->recent[id & (RECENT_N - 1)];
	if (slot->id != id || slot->gen != s->recent_gen || s->ring_head - slot->pos > RECENT_RING)
		return NULL; /* the ring came round: bytes of it may be another message's now */
	return (const struct recent_hdr *)(s->ring + slot->pos % RECENT_RING);
}

/* Stop writing for a while, with nothing to roll back. Returns ERR (-errno). */
static int still_failing(struct sg_spool *s, int err)
{
	s->failed = true;
	s->dirty = true; /* acknowledgements from now on are applied by recover() */
	s->fail_err = err;
	s->failed_at = now_mono_us();
	return err;
}

/* A write failed: roll the batch back, stop writing for a while. Returns -errno. */
static int fail(struct sg_spool *s, int rc)
{
	int err = sq_err(s->db, rc);

	reset_next(s);
	recent_forget(s, 0); /* the batch's new rows are gone */
	sqlite3_reset(s->st_insert);
	sqlite3_reset(s->st_delete);
	sqlite3_reset(s->st_delete_id);
	sqlite3_reset(s->st_delete_range);
	sqlite3_reset(s->st_oldest);
	sqlite3_reset(s->st_compact);
	if (!sqlite3_get_autocommit(s->db)) {
		sqlite3_step(s->st_rollback);
		sqlite3_reset(s->st_rollback);
	}
	if (s->in_txn) {
		/* Its new rows are gone; its removals are redone by recover() (see the invariant above). */
		uint64_t handed = s->sent_max >= s->batch_first_id ? (uint64_t)(s->sent_max - s->batch_first_id + 1) : 0;
		s->st.dropped += s->batch_puts - (handed < s->batch_puts ? handed : s->batch_puts); /* commit_us */
		s->st.depth = (uint64_t)((int64_t)s->st.depth - s->batch_depth);
		s->st.bytes = (uint64_t)((int64_t)s->st.bytes - s->batch_bytes);
	}
	s->in_txn = false;
	s->batch_puts = 0;
	s->batch_depth = 0;
	s->batch_bytes = 0;
	/*
	 * Out of space: give the reserve back, so that the WAL can be moved into
	 * the database (which may have to grow for it) and the deletes that
	 * follow find room. It is taken again before new messages are written.
	 */
	if (err == -ENOSPC) {
		reserve_release(&s->rsv);
		sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	}
	return still_failing(s, err);
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Delete row ID (must be inside a transaction); its size is subtracted. */
/*
 * Delete row ID; SIZE is its SQL_ROW_SIZE when known (-1: the row says).
 * A known size saves RETURNING, which SQLite carries out through a temporary
 * table of its own, opened and closed each time: about 20,000 instructions
 * of the 33,000 a delete cost (README, Benchmarks).
 */
static int delete_row(struct sg_spool *s, int64_t id, int64_t known, bool *ret_found)
{
	int rc;

	recent_forget(s, id);
	if (known >= 0) {
		sqlite3_bind_int64(s->st_delete_id, 1, id);
		rc = sqlite3_step(s->st_delete_id);
		sqlite3_reset(s->st_delete_id);
		if (rc != SQLITE_DONE)
			return rc;
		if (sqlite3_changes(s->db) == 1) {
			int64_t size = known + SPOOL_MSG_OVERHEAD;
			s->st.depth--;
			s->st.bytes -= (uint64_t)size;
			s->batch_depth--;
			s->batch_bytes -= size;
		}
		if (ret_found)
			*ret_found = sqlite3_changes(s->db) == 1;
		return SQLITE_OK;
	}
	sqlite3_bind_int64(s->st_delete, 1, id);
	rc = sqlite3_step(s->st_delete);
	if (rc == SQLITE_ROW) {
		int64_t size = sqlite3_column_int64(s->st_delete, 0) + SPOOL_MSG_OVERHEAD;
		s->st.depth--;
		s->st.bytes -= (uint64_t)size;
		s->batch_depth--;
		s->batch_bytes -= size;
		rc = sqlite3_step(s->st_delete);
		if (ret_found)
			*ret_found = true;
	} else if (ret_found) {
		*ret_found = false;
	}
	sqlite3_reset(s->st_delete);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int delete_range(struct sg_spool *s, int64_t lo, int64_t hi)
{
	int rc;

	recent_forget(s, 0);
	if (lo > hi)
		return SQLITE_OK;
	sqlite3_bind_int64(s->st_delete_range, 1, lo);
	sqlite3_bind_int64(s->st_delete_range, 2, hi);
	while ((rc = sqlite3_step(s->st_delete_range)) == SQLITE_ROW) {
		int64_t size = sqlite3_column_int64(s->st_delete_range, 0) + SPOOL_MSG_OVERHEAD;
		s->st.depth--;
		s->st.bytes -= (uint64_t)size;
		s->batch_depth--;
		s->batch_bytes -= size;
	}
	sqlite3_reset(s->st_delete_range);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int commit_batch(struct sg_spool *s);
static int exec1(sqlite3 *db, const char *sql, char *out, size_t outlen);

/*
 * The last id of the first DELETE_CHUNK_BYTES (accounted) of rows LO..HI, or
 * HI when they are fewer. *RET_ANY: whether there is a row at all.
 */
static int chunk_end(struct sg_spool *s, int64_t lo, int64_t hi, int64_t *ret_end, bool *ret_any)
{
	int64_t sum = 0;
	int rc;

	*ret_end = hi;
	*ret_any = false;
	sqlite3_bind_int64(s->st_sizes, 1, lo);
	sqlite3_bind_int64(s->st_sizes, 2, hi);
	while ((rc = sqlite3_step(s->st_sizes)) == SQLITE_ROW) {
		*ret_any = true;
		sum += sqlite3_column_int64(s->st_sizes, 1) + SPOOL_MSG_OVERHEAD;
		if (sum >= DELETE_CHUNK_BYTES) {
			*ret_end = sqlite3_column_int64(s->st_sizes, 0);
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s->st_sizes);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Delete rows LO..HI, each DELETE_CHUNK_BYTES in a transaction of its own. 0 or -errno (failing). */
static int delete_chunked(struct sg_spool *s, int64_t lo, int64_t hi)
{
	int64_t end;
	bool any;
	int rc, r;

	while (lo <= hi) {
		rc = chunk_end(s, lo, hi, &end, &any);
		if (rc != SQLITE_OK)
			return fail(s, rc);
		if (!any)
			return 0;
		rc = step_done(s->st_begin);
		if (rc != SQLITE_OK)
			return fail(s, rc);
		s->in_txn = true;
		rc = delete_range(s, lo, end);
		if (rc != SQLITE_OK)
			return fail(s, rc);
		r = commit_batch(s);
		if (r < 0)
			return r;
		if (end == hi)
			return 0;
		lo = end + 1;
	}
	return 0;
}

/* Delete every row up to the cursor that is not in flight (acknowledged, by the invariant). 0 or -errno. */
static int delete_acknowledged(struct sg_spool *s)
{
	int64_t lo = INT64_MIN;
	unsigned n = 0;
	int r;

	for (unsigned i = 0; i < s->fl_cap; i++)
		if (s->fl[i].id && s->fl[i].id <= s->cursor)
			s->scratch[n++] = s->fl[i].id;
	qsort(s->scratch, n, sizeof(*s->scratch), cmp_id);
	for (unsigned i = 0; i < n; i++) {
		r = delete_chunked(s, lo, s->scratch[i] - 1);
		if (r < 0)
			return r;
		lo = s->scratch[i] + 1;
	}
	return delete_chunked(s, lo, s->cursor);
}

/* Hold the reserve, and FREE_AGAIN free beside it. 0, -ENOSPC, or another -errno. */
static int hold_reserve(struct sg_spool *s)
{
	uint64_t avail;
	int r;

	if (!s->rsv.held) {
		r = reserve_avail(&s->rsv, &avail);
		if (r < 0)
			return r;
		if (avail < SPOOL_RESERVE_BYTES + FREE_AGAIN)
			return -ENOSPC;
		r = reserve_take(&s->rsv);
		if (r < 0)
			return r;
	}
	r = reserve_avail(&s->rsv, &avail);
	if (r < 0)
		return r;
	return avail < FREE_AGAIN ? -ENOSPC : 0;
}

/*
 * After a write error, once the retry delay has passed: delete the rows
 * acknowledged meanwhile or whose removal was rolled back (even on a disk
 * that stays full: the reserve was released for that), take the reserve
 * back, and write (then remove) a probe row of PROBE_BYTES in a transaction
 * of its own, so a disk that is still full costs no reading.
 */
static int recover(struct sg_spool *s)
{
	int rc, r;

	if (now_mono_us() < s->failed_at + s->retry_delay)
		return s->fail_err;
	reset_next(s);
	if (s->fail_err == -ENOSPC)
		sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (s->dirty) {
		s->dirty = false; /* set again by fail() if a delete does not go through */
		r = delete_acknowledged(s);
		if (r < 0)
			return r;
	}
	r = hold_reserve(s);
	if (r < 0)
		return still_failing(s, r);
	rc = step_done(s->st_begin);
	if (rc != SQLITE_OK)
		return fail(s, rc);
	s->in_txn = true;
	/* A probe: room for PROBE_BYTES more must be there (id -1 is never handed over). */
	if ((rc = exec1(s->db, "INSERT INTO msg(id, topic, payload, qos, retain, last) VALUES(-1, '', zeroblob(" PROBE_BYTES_STR "), 0, 0, 0)", NULL, 0)) !=
	            SQLITE_OK ||
	    (rc = exec1(s->db, "DELETE FROM msg WHERE id = -1", NULL, 0)) != SQLITE_OK)
		return fail(s, rc);
	r = commit_batch(s);
	if (r < 0)
		return r;
	s->failed = false;
	return 0;
}

/* Open a batch if none is open. 0 or -errno (the spool is failing). */
static int begin(struct sg_spool *s)
{
	int rc, r;

	if (s->in_txn)
		return 0;
	if (s->failed) {
		r = recover(s);
		if (r < 0)
			return r;
	}
	reset_next(s);
	rc = step_done(s->st_begin);
	if (rc != SQLITE_OK)
		return fail(s, rc);
	s->in_txn = true;
	s->batch_started = now_mono_us();
	s->batch_first_id = s->next_id;
	s->batch_urgent = false;
	return 0;
}

/* ---- opening ---------------------------------------------------------------------------------- */

static int mkdir_parents(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0750) < 0) {
			struct stat st;
			if (errno != EEXIST)
				return -errno;
			if (stat(buf, &st) == 0 && !S_ISDIR(st.st_mode))
				return -ENOTDIR;
		}
		*p = '/';
	}
	return 0;
}

static int default_path(char *buf, size_t len)
{
	const char *sd = getenv("STATE_DIRECTORY");
	int n;

	if (sd && *sd) {
		/* systemd may give several, separated by ':'; ours is the first */
		size_t first = strcspn(sd, ":");
		n = snprintf(buf, len, "%.*s/spool.db", (int)first, sd);
	} else {
		n = snprintf(buf, len, "%s", SPOOL_DEFAULT_PATH);
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Rename PATH (and its WAL) to PATH.corrupt-<UTC time>; the name used goes to ASIDE. */
static int move_aside(const char *path, char *aside, size_t len)
{
	char stamp[32], from[PATH_MAX + 8], to[PATH_MAX + 8];
	struct tm tm;
	time_t t = time(NULL);
	int n;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (int i = 0; i < 100; i++) {
		if (i == 0)
			n = snprintf(aside, len, "%s.corrupt-%s", path, stamp);
		else
			n = snprintf(aside, len, "%s.corrupt-%s.%d", path, stamp, i);
		if (n < 0 || (size_t)n >= len)
			return -ENAMETOOLONG;
		if (access(aside, F_OK) < 0)
			break;
	}
	if (rename(path, aside) < 0)
		return -errno;
	snprintf(from, sizeof(from), "%s-wal", path);
	snprintf(to, sizeof(to), "%s-wal", aside);
	if (rename(from, to) < 0 && errno != ENOENT)
		unlink(from);
	snprintf(from, sizeof(from), "%s-shm", path);
	unlink(from);
	return 0;
}

static void finalize_all(struct sg_spool *s)
{
	sqlite3_stmt **all[] = {&s->st_begin,  &s->st_commit,  &s->st_rollback, &s->st_insert, &s->st_delete,
	                        &s->st_delete_id, &s->st_delete_range, &s->st_oldest, &s->st_compact, &s->st_next, &s->st_sizes,
	                        &s->st_pages, &s->st_vget, &s->st_vput};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		sqlite3_finalize(*all[i]);
		*all[i] = NULL;
	}
}

static void close_db(struct sg_spool *s)
{
	finalize_all(s);
	sqlite3_close(s->db);
	s->db = NULL;
}

/* Run SQL, a BEGIN ... COMMIT script: rolled back when any statement of it fails. */
static int exec_tx(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		exec1(db, "ROLLBACK", NULL, 0);
	return rc;
}

/* Run SQL that returns at most one row; its first column as text goes to OUT. */
static int exec1(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st;
	int rc;

	if (out && outlen)
		out[0] = '\0';
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (out && outlen) {
			const unsigned char *t = sqlite3_column_text(st, 0);
			snprintf(out, outlen, "%s", t ? (const char *)t : "");
		}
		rc = SQLITE_OK;
		while (sqlite3_step(st) == SQLITE_ROW)
			;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static int prepare(struct sg_spool *s, sqlite3_stmt **st, const char *sql)
{
	/* PERSISTENT: these live as long as the spool */
	return sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

/*
 * After every commit (SQLite's WAL hook): checkpoint once the WAL holds
 * WAL_CHECKPOINT_PAGES frames, as SQLite's automatic checkpoint would, but
 * keep its result: a checkpoint that fails (no room to grow the database)
 * leaves the WAL growing, which commit_batch() treats as a write error.
 */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int frames)
{
	struct sg_spool *s = ud;
	int rc;

	if (frames < WAL_CHECKPOINT_PAGES)
		return SQLITE_OK;
	rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc != SQLITE_OK)
		s->ckpt_rc = rc;
	return SQLITE_OK;
}

/*
 * Open the database at s->path and check it. SQLITE_OK, or an SQLite error
 * code (with WHY filled); a code for which sq_corrupt() holds means the file
 * is unusable and should be moved aside.
 */
static int open_db(struct sg_spool *s, const struct sg_spool_cfg *cfg, char *why, size_t whylen)
{
	char buf[64], sql[128], cols[128];
	sqlite3_stmt *st;
	int rc, version;

	recent_forget(s, 0); /* a file opened afresh (a second try after moving one aside) */
	rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		goto err;
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, 0);
	/* Exclusive before WAL: the WAL index then lives in our heap, and nobody else opens the file. */
	if ((rc = exec1(s->db, "PRAGMA locking_mode=EXCLUSIVE", NULL, 0)) != SQLITE_OK ||
	    (rc = exec1(s->db, "PRAGMA journal_mode=WAL", buf, sizeof(buf))) != SQLITE_OK)
		goto err;
	if (strcmp(buf, "wal") != 0) {
		snprintf(why, whylen, "cannot use WAL mode (journal mode is \"%s\")", buf);
		return SQLITE_CANTOPEN;
	}
	snprintf(sql, sizeof(sql), "PRAGMA cache_size=-%d", CACHE_KIB);
	if ((rc = exec1(s->db, cfg->sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", NULL, 0)) !=
	            SQLITE_OK ||
	    (rc = exec1(s->db, sql, NULL, 0)) != SQLITE_OK ||
	    (rc = exec1(s->db, "PRAGMA mmap_size=0", NULL, 0)) != SQLITE_OK ||
	    (rc = exec1(s->db, "PRAGMA temp_store=MEMORY", NULL, 0)) != SQLITE_OK)
		goto err;
	sqlite3_wal_hook(s->db, wal_hook, s); /* instead of SQLite's automatic checkpoint */
	snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit=%d", WAL_SIZE_LIMIT);
	if ((rc = exec1(s->db, sql, NULL, 0)) != SQLITE_OK)
		goto err;
	/* Take the lock now (and keep it): a second gateway on this file fails here, with BUSY. */
	if ((rc = exec1(s->db, "BEGIN EXCLUSIVE", NULL, 0)) != SQLITE_OK ||
	    (rc = exec1(s->db, "COMMIT", NULL, 0)) != SQLITE_OK)
		goto err;
	rc = exec1(s->db, "PRAGMA quick_check", buf, sizeof(buf));
	if (rc != SQLITE_OK)
		goto err;
	if (strcmp(buf, "ok") != 0) {
		snprintf(why, whylen, "integrity check failed: %s", buf);
		return SQLITE_CORRUPT;
	}
	if ((rc = exec1(s->db, "PRAGMA user_version", buf, sizeof(buf))) != SQLITE_OK)
		goto err;
	version = atoi(buf);
	if (version == 0) {
		/* A new file is empty; anything in it belongs to someone else, whose tables we do not write into. */
		if ((rc = exec1(s->db, "SELECT count(*) FROM sqlite_schema", buf, sizeof(buf))) != SQLITE_OK)
			goto err;
		if (atoi(buf) != 0) {
			snprintf(why, whylen, "an SQLite database of another application (%s tables or indexes, no spool)",
			         buf);
			return SQLITE_NOTADB;
		}
		rc = exec_tx(s->db,
		             "BEGIN;"
		             "CREATE TABLE IF NOT EXISTS msg(id INTEGER PRIMARY KEY, topic TEXT NOT NULL,"
		             " payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,"
		             " last INTEGER NOT NULL);"
		             SCHEMA_V2_COLUMNS_SQL
		             "CREATE INDEX IF NOT EXISTS msg_last ON msg(topic) WHERE last;"
		             VALUE_TABLE_SQL
		             "PRAGMA user_version=" SCHEMA_VERSION_STR ";"
		             "COMMIT;");
		if (rc != SQLITE_OK)
			goto err;
	} else if (version != SCHEMA_VERSION && version != 1) {
		snprintf(why, whylen, "unknown spool format %d", version);
		return SQLITE_NOTADB;
	} else {
		/* user_version is common property: check that msg is our table before trusting it */
		rc = exec1(s->db, "SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_table_info('msg') ORDER BY cid)",
		           cols, sizeof(cols));
		if (rc != SQLITE_OK)
			goto err;
		if (strcmp(cols, version == 1 ? SCHEMA_COLUMNS_V1 : SCHEMA_COLUMNS) != 0) {
			snprintf(why, whylen, "an SQLite database of another application (format %d, table msg: %.60s)",
			         version, cols[0] ? cols : "none");
			return SQLITE_NOTADB;
		}
		/* a spool of a sensorgate before durable values */
		if ((rc = sqlite3_exec(s->db, VALUE_TABLE_SQL, NULL, NULL, NULL)) != SQLITE_OK)
			goto err;
		if (version == 1) {
			rc = exec_tx(s->db, "BEGIN;" SCHEMA_V2_COLUMNS_SQL "UPDATE msg SET seq = id;"
			                    "PRAGMA user_version=" SCHEMA_VERSION_STR ";"
			                    "COMMIT;");
			if (rc != SQLITE_OK)
				goto err;
		}
	}

	if ((rc = prepare(s, &s->st_begin, "BEGIN IMMEDIATE")) != SQLITE_OK ||
	    (rc = prepare(s, &s->st_commit, "COMMIT")) != SQLITE_OK ||
	    (rc = prepare(s, &s->st_rollback, "ROLLBACK")) != SQLITE_OK ||
	    (rc = prepare(s, &s->st_insert,
	                  "INSERT INTO msg(id, topic, payload, qos, retain, last, ts, boot_us, boot_id, seq, epoch, flags)"
	                  " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")) !=
	            SQLITE_OK ||
	    (rc = prepare(s, &s->st_delete, "DELETE FROM msg WHERE id = ?1 RETURNING " SQL_ROW_SIZE)) != SQLITE_OK ||
	    (rc = prepare(s, &s->st_delete_id, "DELETE FROM msg WHERE id = ?1")) != SQLITE_OK ||
	    (rc = prepare(s, &s->st_delete_range,
	                  "DELETE FROM msg WHERE id >= ?1 AND id <= ?2 RETURNING " SQL_ROW_SIZE)) != SQLITE_OK ||
	    (rc = prepare(s, &s->st_oldest,
	                  "DELETE FROM msg WHERE id = (SELECT id FROM msg WHERE id > ?1 ORDER BY id LIMIT 1)"
	                  " RETURNING " SQL_ROW_SIZE)) != SQLITE_OK ||
	    (rc = prepare(s, &s->st_compact,
	                  "DELETE FROM msg WHERE topic = ?1 AND last AND id > ?2 RETURNING " SQL_ROW_SIZE)) !=
	            SQLITE_OK ||
	    (rc = prepare(s, &s->st_next,
	                  "SELECT id, topic, payload, qos, retain, ts, boot_us, boot_id, seq, epoch, flags FROM msg"
	                  " WHERE id > ?1 AND id < ?2 ORDER BY id")) !=
	            SQLITE_OK ||
	    (rc = prepare(s, &s->st_sizes,
	                  "SELECT id, " SQL_ROW_SIZE " FROM msg WHERE id >= ?1 AND id <= ?2 ORDER BY id")) != SQLITE_OK ||
	    (rc = prepare(s, &s->st_pages, "PRAGMA page_count")) != SQLITE_OK ||
	    (rc = prepare(s, &s->st_vget, "SELECT value FROM value WHERE name = ?1")) != SQLITE_OK ||
	    (rc = prepare(s, &s->st_vput,
	                  "INSERT INTO value(name, value) VALUES(?1, ?2) ON CONFLICT(name) DO UPDATE SET value = ?2")) !=
	            SQLITE_OK)
		goto err;
	if ((rc = exec1(s->db, "PRAGMA page_size", buf, sizeof(buf))) != SQLITE_OK)
		goto err;
	s->page_size = atoi(buf);

	rc = sqlite3_prepare_v2(s->db, "SELECT count(*), total(" SQL_ROW_SIZE "), max(id) FROM msg", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		s->st.depth = (uint64_t)sqlite3_column_int64(st, 0);
		s->st.bytes = (uint64_t)sqlite3_column_double(st, 1) + s->st.depth * SPOOL_MSG_OVERHEAD;
		s->next_id = sqlite3_column_int64(st, 2) + 1;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		goto err;
	s->committed_limit = s->next_id;
	return SQLITE_OK;

err:
	snprintf(why, whylen, "%s", s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
	return rc;
}

struct sg_spool *spool_open(const struct sg_spool_cfg *cfg, unsigned max_outstanding, struct sg_spool_info *info)
{
	struct sg_spool_info scratch;
	struct sg_spool *s;
	char path[PATH_MAX];
	struct stat st;
	int rc, r;

	if (!info)
		info = &scratch;
	memset(info, 0, sizeof(*info));
	if (cfg->path) {
		if (strlen(cfg->path) >= sizeof(path)) {
			errno = ENAMETOOLONG;
			return NULL;
		}
		snprintf(path, sizeof(path), "%s", cfg->path);
	} else if ((r = default_path(path, sizeof(path))) < 0) {
		errno = -r;
		return NULL;
	}
	snprintf(info->path, sizeof(info->path), "%s", path);

	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->rsv.fd = -1;
	s->path = strdup(path);
	s->fl_cap = 16;
	while (s->fl_cap < 2 * (max_outstanding ? max_outstanding : 1))
		s->fl_cap *= 2;
	s->fl = calloc(s->fl_cap, sizeof(*s->fl));
	s->scratch = calloc(s->fl_cap, sizeof(*s->scratch));
	if (!s->path || !s->fl || !s->scratch) {
		r = -ENOMEM;
		goto err;
	}
	s->limit = (uint64_t)(cfg->max_size_mb > 0 ? cfg->max_size_mb : 64) * BYTES_PER_MIB;
	s->st.limit = s->limit;
	s->drop_new = cfg->drop_new;
	s->sync_full = cfg->sync_full;
	s->commit_us = (uint64_t)(cfg->commit_interval_s * 1e6);
	s->retry_delay = RETRY_DELAY_US;
	s->last_id = -1;

	r = mkdir_parents(path);
	if (r < 0) {
		snprintf(info->why, sizeof(info->why), "cannot create its directory: %s", strerror(-r));
		goto err;
	}
	/* SQLite would open a FIFO or a device too, and report a directory as "unable to open" */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL; /* strerror(EISDIR) says it all */
		if (r == -EINVAL)
			snprintf(info->why, sizeof(info->why), "it is %s, not a regular file", config_file_kind(st.st_mode));
		goto err;
	}
	rc = open_db(s, cfg, info->why, sizeof(info->why));
	if (sq_corrupt(rc)) {
		close_db(s);
		memset(&s->st, 0, sizeof(s->st));
		s->st.limit = s->limit;
		r = move_aside(path, info->aside, sizeof(info->aside));
		if (r < 0) {
			info->aside[0] = '\0';
			snprintf(info->why + strlen(info->why), sizeof(info->why) - strlen(info->why),
			         "; cannot move it aside: %s", strerror(-r));
			goto err;
		}
		char first[sizeof(info->why)];
		snprintf(first, sizeof(first), "%s", info->why);
		rc = open_db(s, cfg, info->why, sizeof(info->why));
		if (rc == SQLITE_OK)
			snprintf(info->why, sizeof(info->why), "%s", first);
	}
	if (rc != SQLITE_OK) {
		r = sq_err(s->db, rc);
		goto err;
	}
	r = reserve_open(&s->rsv, path);
	if (r < 0) {
		snprintf(info->why, sizeof(info->why), "cannot create its reserve file (the name with \"-reserve\"): %s",
		         r == -EINVAL ? "something other than a regular file is there" : strerror(-r));
		goto err;
	}
	/* Without the reserve (or room beside it) the spool starts failing: puts are refused and retried. */
	r = hold_reserve(s);
	if (r < 0)
		still_failing(s, r);
	info->depth = s->st.depth;
	return s;

err:
	spool_close(s);
	errno = -r;
	return NULL;
}

void spool_close(struct sg_spool *s)
{
	if (!s)
		return;
	if (s->db) {
		spool_commit(s);
		close_db(s);
	}
	reserve_close(&s->rsv);
	free(s->fl);
	free(s->recent);
	free(s->ring);
	free(s->scratch);
	free(s->path);
	free(s);
}

/* ---- putting ---------------------------------------------------------------------------------- */

/* Remove older SG_OFFLINE_LAST rows of TOPIC not yet handed over. */
static int compact(struct sg_spool *s, const char *topic)
{
	int rc;

	recent_forget(s, 0);
	sqlite3_bind_text(s->st_compact, 1, topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->st_compact, 2, s->sent_max);
	while ((rc = sqlite3_step(s->st_compact)) == SQLITE_ROW) {
		int64_t size = sqlite3_column_int64(s->st_compact, 0) + SPOOL_MSG_OVERHEAD;
		s->st.depth--;
		s->st.bytes -= (uint64_t)size;
		s->batch_depth--;
		s->batch_bytes -= size;
		s->st.compacted++;
	}
	sqlite3_reset(s->st_compact);
	sqlite3_clear_bindings(s->st_compact);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* By how much the next checkpoint grows the database file: its pages in the WAL beyond the file's end. */
static uint64_t pending_growth(struct sg_spool *s)
{
	struct stat st;
	int64_t want = 0;

	if (sqlite3_step(s->st_pages) == SQLITE_ROW)
		want = sqlite3_column_int64(s->st_pages, 0) * s->page_size;
	sqlite3_reset(s->st_pages);
	if (stat(s->path, &st) < 0 || want <= st.st_size)
		return 0;
	return (uint64_t)(want - st.st_size);
}

/*
 * Room on the disk for NEED more bytes in the open batch: for the next
 * checkpoint's growth, the batch and the message twice (WAL, then database)
 * and FREE_MIN beyond. Looked at for the first put of a batch and after every
 * FREE_CHECK_BYTES. 0, or -ENOSPC with the open batch committed and the
 * spool failing (nothing lost).
 */
static int check_room(struct sg_spool *s, uint64_t need)
{
	uint64_t avail, batch = s->batch_bytes > 0 ? (uint64_t)s->batch_bytes : 0;
	int r;

	if (s->batch_puts && s->unchecked + need < FREE_CHECK_BYTES) {
		s->unchecked += need;
		return 0;
	}
	s->unchecked = 0;
	if (reserve_avail(&s->rsv, &avail) < 0)
		return 0; /* no figure: SQLite says when it is full */
	if (avail >= pending_growth(s) + 2 * (batch + need) + FREE_MIN)
		return 0;
	r = commit_batch(s);
	if (r < 0)
		return r;
	return still_failing(s, -ENOSPC);
}

/* Drop the oldest row not handed over. SQLITE_OK with *ret_found, or an error. */
static int drop_oldest(struct sg_spool *s, bool *ret_found)
{
	int rc;

	recent_forget(s, 0);
	*ret_found = false;
	sqlite3_bind_int64(s->st_oldest, 1, s->sent_max);
	rc = sqlite3_step(s->st_oldest);
	if (rc == SQLITE_ROW) {
		int64_t size = sqlite3_column_int64(s->st_oldest, 0) + SPOOL_MSG_OVERHEAD;
		s->st.depth--;
		s->st.bytes -= (uint64_t)size;
		s->batch_depth--;
		s->batch_bytes -= size;
		s->st.dropped++;
		*ret_found = true;
		rc = sqlite3_step(s->st_oldest);
	}
	sqlite3_reset(s->st_oldest);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int spool_put(struct sg_spool *s, const char *topic, const void *payload, size_t len, int qos, bool retain,
              enum sg_offline_policy policy, unsigned *ret_dropped)
{
	return spool_put_meta(s, topic, payload, len, qos, retain, policy, NULL, ret_dropped);
}

int spool_put_meta(struct sg_spool *s, const char *topic, const void *payload, size_t len, int qos, bool retain,
                   enum sg_offline_policy policy, const struct sg_spool_meta *meta, unsigned *ret_dropped)
{
	static const struct sg_spool_meta none;
	uint64_t need = strlen(topic) + len + SPOOL_MSG_OVERHEAD;
	unsigned dropped = 0;
	bool found;
	int rc, r;

	if (ret_dropped)
		*ret_dropped = 0;
	if (qos < 0 || qos > 2 || len > INT32_MAX)
		return -EINVAL;
	if (need > s->limit) {
		s->st.dropped++;
		return -ENOBUFS;
	}
	if (s->in_txn && s->batch_puts && s->batch_bytes + (int64_t)need > BATCH_MAX_BYTES) {
		r = commit_batch(s); /* keeps the WAL within what the reserve covers */
		if (r < 0)
			return r;
	}
	r = begin(s);
	if (r < 0)
		return r;
	r = check_room(s, need);
	if (r < 0)
		return r;
	if (policy == SG_OFFLINE_LAST) {
		rc = compact(s, topic);
		if (rc != SQLITE_OK)
			return fail(s, rc);
	}
	while (s->st.bytes + need > s->limit) {
		if (s->drop_new) {
			s->st.dropped++;
			return -ENOBUFS;
		}
		rc = drop_oldest(s, &found);
		if (rc != SQLITE_OK)
			return fail(s, rc);
		if (!found) { /* everything stored is in flight */
			s->st.dropped++;
			if (ret_dropped)
				*ret_dropped = dropped;
			return -ENOBUFS;
		}
		dropped++;
	}
	if (ret_dropped)
		*ret_dropped = dropped;

	sqlite3_bind_int64(s->st_insert, 1, s->next_id);
	sqlite3_bind_text(s->st_insert, 2, topic, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s->st_insert, 3, len ? payload : "", (int)len, SQLITE_STATIC);
	sqlite3_bind_int(s->st_insert, 4, qos);
	sqlite3_bind_int(s->st_insert, 5, retain);
	sqlite3_bind_int(s->st_insert, 6, policy == SG_OFFLINE_LAST);
	if (!meta)
		meta = &none;
	sqlite3_bind_int64(s->st_insert, 7, meta->ts_us);
	sqlite3_bind_int64(s->st_insert, 8, meta->boot_us);
	sqlite3_bind_int64(s->st_insert, 9, (int64_t)meta->boot_id);
	sqlite3_bind_int64(s->st_insert, 10, (int64_t)meta->seq);
	sqlite3_bind_int64(s->st_insert, 11, meta->epoch);
	sqlite3_bind_int(s->st_insert, 12, (int)meta->flags);
	rc = sqlite3_step(s->st_insert);
	sqlite3_reset(s->st_insert); /* every parameter is bound each time: no clearing */
	if (rc != SQLITE_DONE)
		return fail(s, rc);
	recent_keep(s, s->next_id, topic, payload, len, qos, retain, meta);
	s->next_id++;
	if (s->commit_us)
		s->committed_limit = s->next_id; /* handed over before it is committed */
	s->st.spooled++;
	s->st.depth++;
	s->st.bytes += need;
	s->batch_puts++;
	s->batch_depth++;
	s->batch_bytes += (int64_t)need;
	return 0;
}

int spool_topic_seqs(struct sg_spool *s, void (*fn)(void *ud, const char *topic, uint64_t seq), void *ud)
{
	sqlite3_stmt *st;
	int rc;

	reset_next(s);
	rc = sqlite3_prepare_v2(s->db, "SELECT topic, max(seq) FROM msg GROUP BY topic", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sq_err(s->db, rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *topic = (const char *)sqlite3_column_text(st, 0);
		if (topic)
			fn(ud, topic, (uint64_t)sqlite3_column_int64(st, 1));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sq_err(s->db, rc);
}

/* Commit the open batch. 0, or -errno (failing; a failed checkpoint after the commit loses nothing). */
static int commit_batch(struct sg_spool *s)
{
	int rc;

	reset_next(s);
	s->ckpt_rc = SQLITE_OK;
	rc = step_done(s->st_commit);
	if (rc != SQLITE_OK)
		return fail(s, rc);
	s->in_txn = false;
	s->committed_limit = s->next_id;
	s->batch_puts = 0;
	s->batch_depth = 0;
	s->batch_bytes = 0;
	if (s->ckpt_rc != SQLITE_OK)
		return fail(s, s->ckpt_rc);
	return 0;
}

int spool_commit(struct sg_spool *s)
{
	if (!s->in_txn)
		return 0;
	return commit_batch(s);
}

bool spool_pending(const struct sg_spool *s)
{
	return s->in_txn;
}

/*
 * Without commit_interval a batch is due at once, unless all it holds is the
 * removal of acknowledged QoS 0/1 messages: that waits up to ACK_COMMIT_US
 * for the next reading, whose commit then carries it (one flush per reading
 * at sensor rates instead of two). A crash in between sends those messages
 * again: duplicates, which QoS 1 allows. QoS 2 removals are never held.
 */
uint64_t spool_commit_due(const struct sg_spool *s)
{
	if (!s->in_txn)
		return UINT64_MAX;
	if (s->commit_us)
		return s->batch_started + s->commit_us;
	return s->batch_puts || s->batch_urgent ? 0 : s->batch_started + ACK_COMMIT_US;
}

bool spool_backlog(const struct sg_spool *s)
{
	return s->cursor < s->committed_limit - 1;
}

/* ---- handing over ------------------------------------------------------------------------------ */

int spool_next(struct sg_spool *s, struct sg_spool_msg *ret)
{
	sqlite3_stmt *st = s->st_next;
	int rc;

	reset_next(s);
	if (!spool_backlog(s))
		return 0;
	int64_t want = s->cursor + 1; /* the row after the cursor, when it is one put lately */
	const struct recent_hdr *c = want < s->committed_limit ? recent_get(s, want) : NULL;
	if (c && !(want <= s->sent_max && fl_has_id(s, want))) {
		ret->id = want;
		ret->topic = (const char *)(c + 1);
		ret->payload = (const char *)(c + 1) + c->topic_len + 1;
		ret->len = c->len;
		ret->qos = c->qos;
		ret->retain = c->retain;
		ret->meta = c->meta;
		s->last_id = want;
		s->last_qos = c->qos;
		s->last_size = (int64_t)c->topic_len + c->len; /* SQL_ROW_SIZE */
		return 1;
	}
	sqlite3_bind_int64(st, 1, s->cursor);
	sqlite3_bind_int64(st, 2, s->committed_limit);
	for (;;) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE) {
			sqlite3_reset(st);
			s->cursor = s->committed_limit - 1; /* nothing left below the limit */
			return 0;
		}
		if (rc != SQLITE_ROW) {
			sqlite3_reset(st);
			return sq_err(s->db, rc);
		}
		int64_t id = sqlite3_column_int64(st, 0);
		/* After a requeue the scan restarts below rows still in flight: skip those. */
		if (id <= s->sent_max && fl_has_id(s, id))
			continue;
		ret->id = id;
		ret->topic = (const char *)sqlite3_column_text(st, 1);
		ret->payload = sqlite3_column_blob(st, 2);
		ret->len = (size_t)sqlite3_column_bytes(st, 2);
		ret->qos = sqlite3_column_int(st, 3);
		ret->retain = sqlite3_column_int(st, 4) != 0;
		ret->meta = (struct sg_spool_meta){
			.ts_us = sqlite3_column_int64(st, 5),
			.boot_us = sqlite3_column_int64(st, 6),
			.boot_id = (uint64_t)sqlite3_column_int64(st, 7),
			.seq = (uint64_t)sqlite3_column_int64(st, 8),
			.epoch = sqlite3_column_int64(st, 9),
			.flags = (unsigned)sqlite3_column_int(st, 10),
		};
		if (!ret->topic) {
			sqlite3_reset(st);
			return -ENOMEM;
		}
		if (!ret->payload)
			ret->payload = "";
		s->next_active = true;
		s->last_id = id;
		s->last_qos = ret->qos;
		s->last_size = sqlite3_column_bytes(st, 1) + (int64_t)ret->len; /* SQL_ROW_SIZE */
		return 1;
	}
}

int spool_sent(struct sg_spool *s, int64_t id, int token)
{
	unsigned i;

	if (s->fl_n + 1 > s->fl_cap / 2)
		return -ENOBUFS;
	reset_next(s);
	for (i = fl_home(s, token); s->fl[i].id; i = (i + 1) & (s->fl_cap - 1))
		if (s->fl[i].token == token)
			break;
	if (!s->fl[i].id)
		s->fl_n++;
	s->fl[i] = (struct inflight){.id = id,
	                             .size = id == s->last_id ? s->last_size : -1,
	                             .token = token,
	                             .qos = id == s->last_id ? s->last_qos : 2};
	if (id > s->cursor)
		s->cursor = id;
	if (id > s->sent_max)
		s->sent_max = id;
	s->st.sent++;
	return 0;
}

int spool_ack(struct sg_spool *s, int token)
{
	struct inflight *e = fl_find(s, token);
	int64_t id, size;
	int rc, r, qos;

	if (!e)
		return 0;
	id = e->id;
	qos = e->qos;
	size = e->size;
	fl_remove_at(s, (unsigned)(e - s->fl));
	s->st.acknowledged++;
	r = begin(s);
	if (r < 0)
		return r; /* deleted by recover() (id <= cursor, no longer in flight) */
	if (qos == 2)
		s->batch_urgent = true;
	rc = delete_row(s, id, size, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc);
	return 1;
}

int spool_unsent(struct sg_spool *s, int token, int64_t *ret_id)
{
	struct inflight *e = fl_find(s, token);
	int64_t id;

	if (!e)
		return 0;
	id = e->id;
	fl_remove_at(s, (unsigned)(e - s->fl));
	if (id - 1 < s->cursor)
		s->cursor = id - 1;
	if (ret_id)
		*ret_id = id;
	return 1;
}

int spool_drop(struct sg_spool *s, int64_t id)
{
	bool found;
	int rc, r;

	for (unsigned i = 0; i < s->fl_cap; i++)
		if (s->fl[i].id == id) {
			fl_remove_at(s, i);
			break;
		}
	if (id > s->cursor)
		s->cursor = id; /* do not come back to it; and recover() deletes it if this fails */
	r = begin(s);
	if (r < 0)
		return r;
	s->batch_urgent = true;
	rc = delete_row(s, id, -1, &found);
	if (rc != SQLITE_OK)
		return fail(s, rc);
	if (found)
		s->st.dropped++;
	return 0;
}

void spool_requeue(struct sg_spool *s, int max_qos)
{
	unsigned i = 0;

	while (i < s->fl_cap) {
		if (s->fl[i].id && s->fl[i].qos <= max_qos) {
			if (s->fl[i].id - 1 < s->cursor)
				s->cursor = s->fl[i].id - 1;
			fl_remove_at(s, i); /* may move another entry into slot i: look at it again */
			continue;
		}
		i++;
	}
}

unsigned spool_outstanding(const struct sg_spool *s)
{
	return s->fl_n;
}

void spool_get_stats(const struct sg_spool *s, struct sg_spool_stats *ret)
{
	*ret = s->st;
	ret->outstanding = s->fl_n;
}

bool spool_failed(const struct sg_spool *s)
{
	return s->failed;
}

void spool_set_retry_delay(struct sg_spool *s, uint64_t usec)
{
	s->retry_delay = usec;
}

const char *spool_path(const struct sg_spool *s)
{
	return s->path;
}

void *spool_db(struct sg_spool *s)
{
	return s->db;
}

/* ---- durable values ------------------------------------------------------------------------------ */

int spool_value_get(struct sg_spool *s, const char *name, int64_t *ret)
{
	int rc;

	sqlite3_bind_text(s->st_vget, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s->st_vget);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(s->st_vget, 0);
	sqlite3_reset(s->st_vget);
	sqlite3_clear_bindings(s->st_vget);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : sq_err(s->db, rc);
}

/*
 * Its own transaction, fsync'ed: SQLite takes the synchronous setting at the
 * start of a transaction (a PRAGMA inside one does not change how it
 * commits), so with sync = "normal" the open batch is committed first as it
 * is, then synchronous=FULL holds for the transaction that writes the value.
 */
int spool_value_save(struct sg_spool *s, const char *name, int64_t value)
{
	int rc, r;

	r = spool_commit(s);
	if (r < 0)
		return r;
	if (!s->sync_full && (rc = exec1(s->db, "PRAGMA synchronous=FULL", NULL, 0)) != SQLITE_OK)
		return sq_err(s->db, rc);
	r = begin(s);
	if (r < 0)
		goto out;
	sqlite3_bind_text(s->st_vput, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->st_vput, 2, value);
	rc = sqlite3_step(s->st_vput);
	sqlite3_reset(s->st_vput);
	sqlite3_clear_bindings(s->st_vput);
	r = rc == SQLITE_DONE ? commit_batch(s) : fail(s, rc);
out:
	if (!s->sync_full)
		exec1(s->db, "PRAGMA synchronous=NORMAL", NULL, 0);
	return r;
}
