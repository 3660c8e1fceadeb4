/* SPDX-License-Identifier: MIT */
/*
 * spool_reserve.c — see spool_reserve.h.
 *
 * fallocate(2) allocates the blocks without writing them. A file system
 * without it (EOPNOTSUPP: FAT, some network file systems) gets the bytes
 * written instead, varied so that a compressing file system stores them too.
 */
#include "spool_reserve.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define WRITE_CHUNK 4096

int reserve_open(struct sg_reserve *r, const char *spool_path)
{
	char path[PATH_MAX];
	struct stat st;
	int n;

	r->fd = -1;
	r->held = false;
	n = snprintf(path, sizeof(path), "%s-reserve", spool_path);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	r->fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (r->fd < 0)
		return -errno;
	if (fstat(r->fd, &st) < 0) {
		int err = errno;
		reserve_close(r);
		return -err;
	}
	if (!S_ISREG(st.st_mode)) {
		reserve_close(r);
		return -EINVAL;
	}
	return 0;
}

/* Write the reserve's bytes: a varying pattern (a linear congruential sequence), block by block. */
static int write_bytes(int fd)
{
	unsigned char buf[WRITE_CHUNK];
	uint32_t x = 0x2545f491u;

	for (off_t off = 0; off < SPOOL_RESERVE_BYTES; off += WRITE_CHUNK) {
		for (size_t i = 0; i < sizeof(buf); i++) {
			x = x * 1664525u + 1013904223u;
			buf[i] = (unsigned char)(x >> 24);
		}
		ssize_t n;
		do
			n = pwrite(fd, buf, sizeof(buf), off);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
		if ((size_t)n != sizeof(buf))
			return -ENOSPC;
	}
	return 0;
}

int reserve_take(struct sg_reserve *r)
{
	struct stat st;
	int err;

	if (r->fd < 0)
		return -EBADF;
	if (r->held)
		return 0;
	/* left allocated by an earlier run */
	if (fstat(r->fd, &st) == 0 && st.st_size == SPOOL_RESERVE_BYTES &&
	    (uint64_t)st.st_blocks * 512 >= SPOOL_RESERVE_BYTES) {
		r->held = true;
		return 0;
	}
	if (fallocate(r->fd, 0, 0, SPOOL_RESERVE_BYTES) == 0) {
		r->held = true;
		return 0;
	}
	err = errno;
	if (err == EOPNOTSUPP) {
		err = -write_bytes(r->fd);
		if (err == 0) {
			r->held = true;
			return 0;
		}
	}
	/* a part may have been allocated: give it back (the error reported stays the first one) */
	int rc = ftruncate(r->fd, 0);
	(void)rc;
	return err == EDQUOT ? -ENOSPC : -err;
}

void reserve_release(struct sg_reserve *r)
{
	if (r->fd < 0)
		return;
	if (ftruncate(r->fd, 0) == 0)
		r->held = false;
}

int reserve_avail(const struct sg_reserve *r, uint64_t *ret)
{
	struct statvfs v;

	if (r->fd < 0)
		return -EBADF;
	if (fstatvfs(r->fd, &v) < 0)
		return -errno;
	*ret = (uint64_t)v.f_bavail * v.f_frsize;
	return 0;
}

void reserve_close(struct sg_reserve *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->held = false;
}
