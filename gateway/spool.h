/* SPDX-License-Identifier: MIT */
/*
 * spool.h — the durable store-and-forward queue between the mapper and MQTT.
 *
 * A message is put into the spool, committed to disk in a batch, handed to
 * the transport (spool_next() + spool_sent()), and removed when the
 * transport reports that the receiver acknowledged it (spool_ack()). The
 * spool does not know MQTT: the transport's handle for a message in flight is
 * an opaque integer token (the gateway uses the MQTT packet id).
 *
 * Order: messages are handed over oldest first. Within one process a message
 * handed over is never handed over again, unless the transport says it lost
 * it (spool_requeue()); after the process restarts nothing is in flight, so
 * every stored message is handed over again, oldest first.
 *
 * Durability: puts go into one open transaction (a batch); spool_commit()
 * makes them durable, and only committed messages are returned by
 * spool_next(). With cfg->sync_full each commit is fsync'ed; otherwise a
 * commit survives a crash of the process but not a power cut. With
 * cfg->commit_interval_s > 0 spool_next() returns a message as soon as it is
 * put, and spool_commit_due() says when the batch must be committed: a crash
 * may lose the messages of that interval the broker has not acknowledged,
 * and send again those it had (the removals were not committed either).
 *
 * Bounds: the stored messages are accounted as topic + payload + a fixed
 * per-message cost; when that would exceed cfg->max_size_mb the oldest
 * messages not yet handed over are dropped (or, with cfg->drop_new, the new
 * one is refused). Every drop is counted.
 *
 * Errors: a write that fails (disk full, I/O error) rolls the open batch
 * back (its messages are counted as dropped) and puts the spool into a
 * failed state in which spool_put() fails at once with the same error until
 * the retry delay has passed; spool_next() still returns what is on disk.
 *
 * Disk space: spool_put() fails with -ENOSPC (the open batch committed,
 * nothing lost) rather than take the last 64 KiB of the disk. The file
 * "<path>-reserve" (spool_reserve.h) holds 512 KiB that the spool gives back
 * when a write fails for want of space, so that acknowledged messages are
 * still deleted on a full disk; new messages are taken again once the
 * reserve is held and 256 KiB more are free.
 *
 * The spool does not log: every function reports, its caller logs once.
 * Not thread-safe; one spool per file (the file is locked while open).
 */
#ifndef SG_SPOOL_H
#define SG_SPOOL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* The default location: $STATE_DIRECTORY/spool.db (systemd), else this. */
#define SPOOL_DEFAULT_PATH "/var/lib/sensorgate/spool.db"
/* Accounted cost of one stored message besides its topic and payload bytes. */
#define SPOOL_MSG_OVERHEAD 24

struct sg_spool;

/*
 * What a message carries besides its bytes, for replay (README, Replay); the
 * spool stores it and gives it back, and does not interpret it.
 */
struct sg_spool_meta {
	int64_t ts_us;      /* wall time of the measurement, µs; 0 = not known when stored */
	int64_t boot_us;    /* CLOCK_BOOTTIME of it */
	uint64_t boot_id;   /* the boot it was taken in; 0 = unknown (stored by an older version) */
	uint64_t seq;       /* per-topic sequence number */
	int64_t epoch;      /* the broker connection it was put during, 0 = none */
	unsigned flags;     /* SG_SPOOL_F_* */
};
#define SG_SPOOL_F_JSON 1u /* the payload is the mapper's JSON, ending in a "ts" member */

/* A stored message; strings and payload belong to the spool (see spool_next). */
struct sg_spool_msg {
	int64_t id;           /* increasing in the order of spool_put() */
	const char *topic;
	const void *payload;
	size_t len;
	int qos;
	bool retain;
	struct sg_spool_meta meta;
};

struct sg_spool_stats {
	uint64_t spooled;      /* messages stored */
	uint64_t sent;         /* messages handed over (spool_sent) */
	uint64_t acknowledged; /* messages removed by spool_ack() */
	uint64_t dropped;      /* dropped or refused for want of room, or lost with a failed batch */
	uint64_t compacted;    /* replaced by a newer message on the same topic (SG_OFFLINE_LAST) */
	uint64_t depth;        /* messages stored now, in flight or not */
	uint64_t bytes;        /* their accounted size */
	uint64_t limit;        /* max_size_mb in bytes */
	unsigned outstanding;  /* handed over and not yet acknowledged */
};

/* What spool_open() found, for its caller to report. */
struct sg_spool_info {
	char path[PATH_MAX];   /* the file in use (or that could not be opened) */
	char aside[PATH_MAX];  /* where an unreadable file was moved, or "" */
	char why[160];         /* why it was moved aside, or why opening failed */
	uint64_t depth;        /* messages found from an earlier run */
};

/*
 * Open (creating it and its directory if missing) the spool at cfg->path,
 * or at the default location when that is NULL. A file SQLite cannot read
 * (not a database, corrupt, failing its quick check) is renamed to
 * "<path>.corrupt-<UTC time>" and a fresh spool started; info->aside says so.
 * MAX_OUTSTANDING is the most messages that will ever be in flight at once.
 * Returns NULL with errno set (EBUSY: another process has the file open;
 * info->why has SQLite's words) on failure. INFO may be NULL.
 */
struct sg_spool *spool_open(const struct sg_spool_cfg *cfg, unsigned max_outstanding, struct sg_spool_info *info);
/* Commit what is pending and close. NULL is fine. */
void spool_close(struct sg_spool *s);

/*
 * Store a message in the open batch (opening one if needed). With POLICY
 * SG_OFFLINE_LAST, older messages of TOPIC that were also put with
 * SG_OFFLINE_LAST and are not yet handed over are removed (counted as
 * compacted); any other policy just stores. 0 when stored, with
 * *ret_dropped (may be NULL) set to the number of old messages dropped to
 * make room; -ENOBUFS when the spool is full and refuses new messages, or
 * the message alone is larger than the limit (counted as dropped); -ENOSPC
 * (disk full) or -EIO on a write error (see above), -EINVAL for QOS out of 0..2.
 */
int spool_put(struct sg_spool *s, const char *topic, const void *payload, size_t len, int qos, bool retain,
              enum sg_offline_policy policy, unsigned *ret_dropped);
/* The same, with META stored alongside (NULL: all zero). */
int spool_put_meta(struct sg_spool *s, const char *topic, const void *payload, size_t len, int qos, bool retain,
                   enum sg_offline_policy policy, const struct sg_spool_meta *meta, unsigned *ret_dropped);
/*
 * Call FN once for each topic with stored messages, with the highest seq
 * among them (to continue a sequence after a restart). 0, or -EIO.
 */
int spool_topic_seqs(struct sg_spool *s, void (*fn)(void *ud, const char *topic, uint64_t seq), void *ud);
/* Commit the open batch. 0 (also when nothing was pending), -ENOSPC or -EIO. */
int spool_commit(struct sg_spool *s);
/* Whether a batch is open (uncommitted puts or removals). */
bool spool_pending(const struct sg_spool *s);
/* CLOCK_MONOTONIC µs by which the open batch is to be committed: at once (0) unless commit_interval_s. */
uint64_t spool_commit_due(const struct sg_spool *s);
/* Whether committed messages may be waiting to be handed over (cheap; may say true once too often). */
bool spool_backlog(const struct sg_spool *s);

/*
 * The oldest committed message not in flight and not handed over since the
 * last spool_requeue(). 1 with *ret filled (valid until the next call into
 * the spool), 0 when there is none, -EIO on a read error. It stays "not
 * handed over" until spool_sent() says otherwise.
 */
int spool_next(struct sg_spool *s, struct sg_spool_msg *ret);
/* Message ID was handed over; TOKEN will identify it in spool_ack(). 0, -ENOBUFS when too many are in flight. */
int spool_sent(struct sg_spool *s, int64_t id, int token);
/* The message with TOKEN was acknowledged: remove it. 1 if it was ours, 0 if TOKEN is unknown, -errno on a write error. */
int spool_ack(struct sg_spool *s, int token);
/*
 * The message with TOKEN came back undelivered (the receiver refused it):
 * it is no longer in flight and is handed over again, in order. 1 with
 * *ret_id (may be NULL) set, 0 if TOKEN is unknown.
 */
int spool_unsent(struct sg_spool *s, int token, int64_t *ret_id);
/* Remove message ID for good (it cannot be sent); counted as dropped. 0 or -errno. */
int spool_drop(struct sg_spool *s, int64_t id);
/*
 * The transport lost the messages in flight whose QoS is <= MAX_QOS (it
 * will not send them again): they are handed over again, in order.
 */
void spool_requeue(struct sg_spool *s, int max_qos);
unsigned spool_outstanding(const struct sg_spool *s);

void spool_get_stats(const struct sg_spool *s, struct sg_spool_stats *ret);
/* True while writes are failing (between a write error and a successful retry). */
bool spool_failed(const struct sg_spool *s);
/* How long to wait after a write error before writing again (default 2 s). */
void spool_set_retry_delay(struct sg_spool *s, uint64_t usec);
/* The file in use. */
const char *spool_path(const struct sg_spool *s);

/*
 * Durable values: small named integers kept in the spool's file, for what
 * must survive a crash or a power cut (a pulse counter's total). Not
 * messages: they are not counted, bounded or handed over.
 * get: 0 with *ret, -ENOENT when NAME was never saved, -errno on a read error.
 * save: 0 once the value is on disk, fsync'ed whatever `sync` says (the open
 * batch of messages is committed with it); -ENOSPC or -EIO on a write error
 * (the spool then fails as after any write error, see above).
 */
int spool_value_get(struct sg_spool *s, const char *name, int64_t *ret);
int spool_value_save(struct sg_spool *s, const char *name, int64_t value);

/* The SQLite handle (struct sqlite3 *), for tests and diagnostics only. */
void *spool_db(struct sg_spool *s);

#endif
