/* SPDX-License-Identifier: MIT */
/*
 * spool_reserve.h — disk space the spool keeps back for getting out of a full disk.
 *
 * In WAL mode SQLite needs free space to free space: a delete writes pages to
 * the WAL, and a checkpoint first grows the database file by the pages the
 * WAL added, and only then can it reuse or truncate the WAL. On a disk filled
 * to the last block (by the spool or by anyone else) the spool can then
 * neither delete what the broker acknowledged nor checkpoint, and may stay
 * stuck even after some room comes back.
 *
 * The reserve is a file "<spool>-reserve" of SPOOL_RESERVE_BYTES, allocated
 * while there is room. The spool releases it (truncates it to 0) when a write
 * fails for want of space, so that its checkpoint and deletes go through, and
 * takes it again before it writes new messages. The file stays between runs.
 *
 * Each function reports; the spool's caller logs.
 */
#ifndef SG_SPOOL_RESERVE_H
#define SG_SPOOL_RESERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* More than the WAL can hold before a checkpoint, with one batch on top (see spool.c). */
#define SPOOL_RESERVE_BYTES (512 * 1024)

struct sg_reserve {
	int fd;     /* -1 when not open */
	bool held;  /* SPOOL_RESERVE_BYTES allocated */
};

/*
 * Open (creating it if missing) "<SPOOL_PATH>-reserve"; nothing is allocated
 * yet. 0, or -errno (-EINVAL: something other than a regular file is there).
 */
int reserve_open(struct sg_reserve *r, const char *spool_path);
/* Allocate the reserve (a no-op when held). 0, -ENOSPC (nothing kept), or another -errno. */
int reserve_take(struct sg_reserve *r);
/* Give its space back to the file system. */
void reserve_release(struct sg_reserve *r);
/* Bytes free on its file system for an unprivileged writer. 0, or -errno. */
int reserve_avail(const struct sg_reserve *r, uint64_t *ret);
/* Close the file (it stays on disk, allocated or not). */
void reserve_close(struct sg_reserve *r);

#endif
