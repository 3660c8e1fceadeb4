/* SPDX-License-Identifier: MIT */
/*
 * resolve.h — broker host names looked up off the event loop.
 *
 * getaddrinfo() blocks for as long as DNS takes (seconds when a server is
 * slow or gone), and the gateway has one loop: devices, the spool and the
 * watchdog would all wait. So a lookup runs on a thread of its own and says
 * it is done through a descriptor the loop polls (resolve_fd()).
 *
 * libmosquitto then looks the same name up again inside
 * mosquitto_connect_bind_v5(): 2.0.11 has no call that connects a given
 * address while keeping the host name for TLS (SNI and the certificate's
 * name check both use the name it was given), and its asynchronous connect
 * resolves synchronously too. An IP literal would lose SNI (cloud brokers
 * route by it) and the name check. So for the span of that one call the
 * answer just found is pinned (resolve_pin()): this file defines
 * getaddrinfo()/freeaddrinfo() for the process, and a lookup of exactly the
 * pinned name on the loop's thread is answered from memory; every other
 * lookup goes to the C library's own functions unchanged.
 *
 * Ownership: a struct sg_resolve belongs to its caller until
 * resolve_cancel()/resolve_free(); the thread keeps its own reference and
 * the last of the two frees it, so cancelling a lookup that is still
 * waiting on DNS never blocks.
 */
#ifndef SG_RESOLVE_H
#define SG_RESOLVE_H

#include <netdb.h>

struct sg_resolve;

/* Start looking HOST (port PORT, a number as text) up for a TCP connection. NULL (errno set) on failure. */
struct sg_resolve *resolve_start(const char *host, const char *port);

/* Readable (POLLIN) once the lookup is done. */
int resolve_fd(const struct sg_resolve *q);

/*
 * The answer, once resolve_fd() was readable: 0 and *RET_AI (the caller frees
 * it with freeaddrinfo()), -EAGAIN while the lookup runs, or a positive
 * getaddrinfo() error code (EAI_*: gai_strerror() words it).
 */
int resolve_result(struct sg_resolve *q, struct addrinfo **ret_ai);

/* Done with Q, finished or not (NULL is fine): a lookup still waiting on DNS is left to end on its own. */
void resolve_free(struct sg_resolve *q);

/*
 * Until resolve_unpin(): getaddrinfo(HOST, …) on this thread answers AI's
 * first address (copied), without asking DNS. One pin at a time.
 * Returns 0 or -ENOMEM.
 */
int resolve_pin(const char *host, const struct addrinfo *ai);
void resolve_unpin(void);

#endif
