/* SPDX-License-Identifier: MIT */
/*
 * resolve.c — broker host names looked up off the event loop (see resolve.h).
 *
 * Why a thread and not c-ares: the lookup must follow the system's own rules
 * (/etc/nsswitch.conf, /etc/hosts, mDNS modules, resolv.conf options) exactly
 * as libmosquitto's getaddrinfo() would, and only the C library implements
 * all of them; a lookup happens once per connection attempt, so one
 * short-lived thread each costs nothing that matters.
 *
 * Why getaddrinfo() is defined here: see resolve.h. The definitions in the
 * executable come before the C library's in the dynamic linker's search, so
 * libmosquitto's calls reach them; everything but the pinned name is handed
 * to the next definition (the C library's, or a sanitizer's wrapper).
 */
#include "resolve.h"

#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define PINNED_MAX 4 /* answers from the pin not yet freed: libmosquitto holds one at a time */

struct sg_resolve {
	pthread_mutex_t lock;
	int refs;              /* the caller's and the thread's */
	int efd;               /* written once the lookup is done */
	bool done;
	int err;               /* 0 or EAI_* */
	struct addrinfo *ai;   /* the answer until resolve_result() hands it over */
	char host[256];
	char port[8];
};

/* ---- the C library's functions ------------------------------------------------------------------- */

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
typedef void (*fai_fn)(struct addrinfo *);

static pthread_once_t next_once = PTHREAD_ONCE_INIT;
static gai_fn next_gai;
static fai_fn next_fai;

static void next_find(void)
{
	/* POSIX's way to turn dlsym()'s object pointer into a function pointer */
	*(void **)&next_gai = dlsym(RTLD_NEXT, "getaddrinfo");
	*(void **)&next_fai = dlsym(RTLD_NEXT, "freeaddrinfo");
}

static int lib_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                           struct addrinfo **res)
{
	pthread_once(&next_once, next_find);
	return next_gai ? next_gai(node, service, hints, res) : EAI_SYSTEM;
}

static void lib_freeaddrinfo(struct addrinfo *ai)
{
	pthread_once(&next_once, next_find);
	if (next_fai && ai)
		next_fai(ai);
}

/* ---- lookups on a thread ------------------------------------------------------------------------- */

static void resolve_unref(struct sg_resolve *q)
{
	bool last;

	pthread_mutex_lock(&q->lock);
	last = --q->refs == 0;
	pthread_mutex_unlock(&q->lock);
	if (!last)
		return;
	lib_freeaddrinfo(q->ai);
	close(q->efd);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

static void *resolve_main(void *arg)
{
	struct sg_resolve *q = arg;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
	struct addrinfo *ai = NULL;
	uint64_t one = 1;
	int err;

	err = lib_getaddrinfo(q->host, q->port, &hints, &ai);
	pthread_mutex_lock(&q->lock);
	q->err = err;
	q->ai = err ? NULL : ai;
	q->done = true;
	pthread_mutex_unlock(&q->lock);
	if (write(q->efd, &one, sizeof(one)) < 0) {
		/* an eventfd takes this write unless its counter is near 2^64: it is not */
	}
	resolve_unref(q);
	return NULL;
}

struct sg_resolve *resolve_start(const char *host, const char *port)
{
	struct sg_resolve *q;
	pthread_attr_t attr;
	pthread_t thread;
	sigset_t all, old;
	int r;

	if (strlen(host) >= sizeof(q->host) || strlen(port) >= sizeof(q->port)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0)
		goto err_free;
	pthread_mutex_init(&q->lock, NULL);
	strcpy(q->host, host);
	strcpy(q->port, port);
	q->refs = 2;

	/* the thread takes no signals (the loop reads them through a signalfd) and is never joined */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&thread, &attr, resolve_main, q);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		errno = r;
		goto err_close;
	}
	return q;

err_close:
	pthread_mutex_destroy(&q->lock);
	close(q->efd);
err_free:
	r = errno;
	free(q);
	errno = r;
	return NULL;
}

int resolve_fd(const struct sg_resolve *q)
{
	return q->efd;
}

int resolve_result(struct sg_resolve *q, struct addrinfo **ret_ai)
{
	int r;

	pthread_mutex_lock(&q->lock);
	if (!q->done) {
		r = -EAGAIN;
	} else if (q->err) {
		r = q->err;
	} else {
		*ret_ai = q->ai;
		q->ai = NULL;
		r = 0;
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

void resolve_free(struct sg_resolve *q)
{
	if (q)
		resolve_unref(q);
}

/* ---- the pin: libmosquitto's own lookup of the name just resolved ------------------------------- */

static struct {
	atomic_bool on;
	pthread_t owner;
	char host[256];
	struct sockaddr_storage addr;
	socklen_t len;
} pin;

static pthread_mutex_t pinned_lock = PTHREAD_MUTEX_INITIALIZER;
static struct addrinfo *pinned[PINNED_MAX]; /* handed out by getaddrinfo() below, not yet freed */

int resolve_pin(const char *host, const struct addrinfo *ai)
{
	if (strlen(host) >= sizeof(pin.host) || ai->ai_addrlen > sizeof(pin.addr))
		return -ENAMETOOLONG;
	strcpy(pin.host, host);
	memcpy(&pin.addr, ai->ai_addr, ai->ai_addrlen);
	pin.len = ai->ai_addrlen;
	pin.owner = pthread_self();
	atomic_store(&pin.on, true);
	return 0;
}

void resolve_unpin(void)
{
	atomic_store(&pin.on, false);
}

/* The pinned address as a one-entry getaddrinfo() answer; the port from SERVICE when it is a number. */
static int pinned_answer(const char *service, struct addrinfo **res)
{
	struct addrinfo *ai;
	size_t slot;

	ai = calloc(1, sizeof(*ai) + pin.len);
	if (!ai)
		return EAI_MEMORY;
	ai->ai_family = pin.addr.ss_family;
	ai->ai_socktype = SOCK_STREAM;
	ai->ai_protocol = IPPROTO_TCP;
	ai->ai_addrlen = pin.len;
	ai->ai_addr = (struct sockaddr *)(ai + 1);
	memcpy(ai->ai_addr, &pin.addr, pin.len);
	if (service) {
		char *end;
		unsigned long port = strtoul(service, &end, 10);
		if (*service && !*end && port <= 65535) {
			if (ai->ai_family == AF_INET)
				((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)port);
			else if (ai->ai_family == AF_INET6)
				((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons((uint16_t)port);
		}
	}
	pthread_mutex_lock(&pinned_lock);
	for (slot = 0; slot < PINNED_MAX && pinned[slot]; slot++)
		;
	if (slot < PINNED_MAX)
		pinned[slot] = ai;
	pthread_mutex_unlock(&pinned_lock);
	if (slot == PINNED_MAX) { /* nobody frees them: not ours to hand out any more */
		free(ai);
		return EAI_AGAIN;
	}
	*res = ai;
	return 0;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	if (atomic_load(&pin.on) && node && pthread_equal(pthread_self(), pin.owner) && strcmp(node, pin.host) == 0 &&
	    (!hints || ((hints->ai_family == AF_UNSPEC || hints->ai_family == pin.addr.ss_family) &&
	                (hints->ai_socktype == 0 || hints->ai_socktype == SOCK_STREAM))))
		return pinned_answer(service, res);
	return lib_getaddrinfo(node, service, hints, res);
}

void freeaddrinfo(struct addrinfo *ai)
{
	bool ours = false;

	if (!ai)
		return;
	pthread_mutex_lock(&pinned_lock);
	for (size_t i = 0; i < PINNED_MAX; i++)
		if (pinned[i] == ai) {
			pinned[i] = NULL;
			ours = true;
		}
	pthread_mutex_unlock(&pinned_lock);
	if (ours)
		free(ai);
	else
		lib_freeaddrinfo(ai);
}
