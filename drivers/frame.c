/* SPDX-License-Identifier: MIT */
/* frame.c — see frame.h. */
#include "frame.h"

#include <string.h>

size_t frame_resync(uint8_t *buf, size_t len, uint8_t start)
{
	const uint8_t *next = len > 1 ? memchr(buf + 1, start, len - 1) : NULL;

	if (!next)
		return 0;
	len -= (size_t)(next - buf);
	memmove(buf, next, len);
	return len;
}
