/* SPDX-License-Identifier: MIT */
/*
 * bus_modbus_tcp.c — a Modbus TCP client connection (see bus_modbus_tcp.h).
 */
#include "bus_modbus_tcp.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

void mbtcp_init(struct mbtcp_conn *c)
{
	*c = (struct mbtcp_conn){.fd = -1};
}

int mbtcp_open(struct mbtcp_conn *c, const char *host, int port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char portstr[8];
	int one = 1, fd, r;

	mbtcp_close(c);
	snprintf(portstr, sizeof(portstr), "%d", port);
	r = getaddrinfo(host, portstr, &hints, &ai);
	if (r != 0)
		return r == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		freeaddrinfo(ai);
		return r;
	}
	/* requests are small and each waits for its answer: Nagle would only delay them */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (r < 0 && errno != EINPROGRESS) {
		r = -errno;
		close(fd);
		return r;
	}
	c->fd = fd;
	c->connecting = r < 0;
	return 0;
}

int mbtcp_finish_connect(struct mbtcp_conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (!c->connecting)
		return 0;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	if (err)
		return -err;
	c->connecting = false;
	return 1;
}

uint32_t mbtcp_events(const struct mbtcp_conn *c)
{
	return c->connecting ? EPOLLOUT : EPOLLIN;
}

int mbtcp_send(struct mbtcp_conn *c, uint8_t unit, const uint8_t *pdu, size_t len)
{
	uint8_t adu[MBP_TCP_MAX_ADU];
	int n;
	ssize_t w;

	if (c->fd < 0 || c->connecting)
		return -ENOTCONN;
	n = mbp_tcp_frame(adu, sizeof(adu), (uint16_t)(c->transaction + 1), unit, pdu, len);
	if (n < 0)
		return n;
	w = send(c->fd, adu, (size_t)n, MSG_NOSIGNAL);
	if (w < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (w != n)
		return -EPIPE;
	c->transaction++;
	return 0;
}

/* Drop the ADU handed out last. */
static void mbtcp_compact(struct mbtcp_conn *c)
{
	if (c->consumed) {
		memmove(c->rx, c->rx + c->consumed, c->rx_len - c->consumed);
		c->rx_len -= c->consumed;
		c->consumed = 0;
	}
}

int mbtcp_read(struct mbtcp_conn *c)
{
	mbtcp_compact(c);
	while (c->rx_len < sizeof(c->rx)) {
		ssize_t n = read(c->fd, c->rx + c->rx_len, sizeof(c->rx) - c->rx_len);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		}
		c->rx_len += (size_t)n;
	}
	return 0;
}

int mbtcp_next(struct mbtcp_conn *c, struct mbp_tcp_header *h, const uint8_t **pdu, size_t *len)
{
	int k;

	mbtcp_compact(c);
	k = mbp_tcp_header_parse(c->rx, c->rx_len, h);
	if (k < 0)
		return k;
	if (k == 0 || (size_t)k > c->rx_len)
		return 0;
	*pdu = c->rx + MBP_TCP_HEADER;
	*len = (size_t)k - MBP_TCP_HEADER;
	c->consumed = (size_t)k;
	return 1;
}

void mbtcp_close(struct mbtcp_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->connecting = false;
	c->rx_len = 0;
	c->consumed = 0;
}
