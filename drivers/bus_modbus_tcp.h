/* SPDX-License-Identifier: MIT */
/*
 * bus_modbus_tcp.h — one Modbus TCP client connection: a non-blocking connect,
 * requests framed with the MBAP header and a fresh transaction id, responses
 * cut out of the byte stream (Messaging on TCP/IP Implementation Guide V1.0b
 * §3.1.3). Shared by the `modbus_tcp` sensor driver and the `modbus`
 * actuator; the protocol itself is modbus_proto.h.
 *
 * Ownership: the connection (struct mbtcp_conn) is embedded in its user's
 * state and owns its socket from mbtcp_open() to mbtcp_close(). Nothing is
 * allocated, nothing logged, no event loop: the user watches c->fd for
 * mbtcp_events() and calls in when it is ready.
 */
#ifndef SG_BUS_MODBUS_TCP_H
#define SG_BUS_MODBUS_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modbus_proto.h"

struct mbtcp_conn {
	int fd;                /* -1 while closed */
	bool connecting;       /* connect() under way: wait for EPOLLOUT */
	uint16_t transaction;  /* of the last request sent */
	size_t rx_len;
	size_t consumed;       /* bytes of the ADU mbtcp_next() handed out, dropped at the next call */
	uint8_t rx[MBP_TCP_MAX_ADU];
};

/* A closed connection. */
void mbtcp_init(struct mbtcp_conn *c);
/*
 * Start connecting to HOST (an IPv4/IPv6 address, or a name) on PORT.
 * 0 (c->connecting says whether it completes later) or -errno. A name
 * that is not in /etc/hosts is resolved by getaddrinfo(), which blocks
 * on DNS: give addresses for devices on the local network.
 */
int mbtcp_open(struct mbtcp_conn *c, const char *host, int port);
/* The socket is ready while connecting: 1 when now connected, 0 when still connecting or
 * connected before, -errno if the attempt failed. */
int mbtcp_finish_connect(struct mbtcp_conn *c);
/* What to wait for: EPOLLOUT while connecting, EPOLLIN after. */
uint32_t mbtcp_events(const struct mbtcp_conn *c);
/*
 * Send request PDU (LEN bytes) to UNIT under the next transaction id
 * (c->transaction). 0; -EAGAIN when the socket is full and nothing was
 * sent; another -errno when the connection is broken (a partial write
 * breaks the stream too).
 */
int mbtcp_send(struct mbtcp_conn *c, uint8_t unit, const uint8_t *pdu, size_t len);
/* Read what has arrived. 0, -ECONNRESET when the server closed the connection, or -errno. */
int mbtcp_read(struct mbtcp_conn *c);
/*
 * The next complete response in what was read: 1 with *h and the PDU in
 * *pdu, *len (valid until the next call), 0 when none is complete, -EPROTO
 * when the stream is not Modbus TCP (wrong protocol id or length): the
 * connection cannot be trusted any more.
 */
int mbtcp_next(struct mbtcp_conn *c, struct mbp_tcp_header *h, const uint8_t **pdu, size_t *len);
/* Close the socket (safe when closed). */
void mbtcp_close(struct mbtcp_conn *c);

#endif
