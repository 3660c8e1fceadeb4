/* SPDX-License-Identifier: MIT */
/*
 * test_resolve.c — lookups on a thread (resolve_start(): done through a
 * descriptor, answers and errors as getaddrinfo() gives them) and the pin
 * (getaddrinfo() of the pinned name on the pinning thread answers the pinned
 * address; other names, other threads, and the time after resolve_unpin()
 * get the C library's answer). Names used: IP literals and "localhost"
 * (/etc/hosts), so no test asks DNS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

#include "gateway/resolve.h"

/* Wait (bounded: 5 s) for Q to be done; its answer as resolve_result() gives it. */
static int wait_result(struct sg_resolve *q, struct addrinfo **ai)
{
	struct pollfd p = {.fd = resolve_fd(q), .events = POLLIN};

	assert_int_equal(poll(&p, 1, 5000), 1);
	return resolve_result(q, ai);
}

static const char *addr_text(const struct addrinfo *ai, char *buf, size_t len, int *port)
{
	if (ai->ai_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ai->ai_addr;
		*port = ntohs(in->sin_port);
		return inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)len);
	}
	const struct sockaddr_in6 *in6 = (const void *)ai->ai_addr;
	*port = ntohs(in6->sin6_port);
	return inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)len);
}

static void test_literal(void **state)
{
	struct addrinfo *ai = NULL;
	struct sg_resolve *q = resolve_start("127.0.0.1", "1883");
	char text[64];
	int port;

	(void)state;
	assert_non_null(q);
	assert_int_equal(wait_result(q, &ai), 0);
	assert_non_null(ai);
	assert_string_equal(addr_text(ai, text, sizeof(text), &port), "127.0.0.1");
	assert_int_equal(port, 1883);
	assert_int_equal(ai->ai_socktype, SOCK_STREAM);
	freeaddrinfo(ai);
	resolve_free(q);
}

static void test_hosts_name(void **state)
{
	struct addrinfo *ai = NULL;
	struct sg_resolve *q = resolve_start("localhost", "8883");
	char text[64];
	int port;

	(void)state;
	assert_non_null(q);
	assert_int_equal(wait_result(q, &ai), 0);
	addr_text(ai, text, sizeof(text), &port);
	assert_int_equal(port, 8883);
	assert_true(strcmp(text, "127.0.0.1") == 0 || strcmp(text, "::1") == 0);
	freeaddrinfo(ai);
	resolve_free(q);
}

/* An error comes back as getaddrinfo()'s code: a service name that /etc/services does not know. */
static void test_error(void **state)
{
	struct addrinfo *ai = NULL;
	struct sg_resolve *q = resolve_start("127.0.0.1", "zzsvc");

	(void)state;
	assert_non_null(q);
	assert_int_equal(wait_result(q, &ai), EAI_SERVICE);
	assert_null(ai);
	resolve_free(q);
}

/* Given up at once: nothing waits, and the thread frees what is left (the sanitizer build checks). */
static void test_free_before_done(void **state)
{
	(void)state;
	for (int i = 0; i < 16; i++) {
		struct sg_resolve *q = resolve_start("localhost", "1883");
		assert_non_null(q);
		resolve_free(q);
	}
}

static void test_too_long(void **state)
{
	char host[300];

	(void)state;
	memset(host, 'a', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	errno = 0;
	assert_null(resolve_start(host, "1883"));
	assert_int_equal(errno, ENAMETOOLONG);
}

/* getaddrinfo("localhost", …) as libmosquitto calls it: AF_UNSPEC, a stream, no service. */
static int lookup(const char *name, const char *service, int socktype, char *text, size_t len, int *port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = socktype};
	struct addrinfo *ai = NULL;
	int r = getaddrinfo(name, service, &hints, &ai);

	if (r == 0) {
		addr_text(ai, text, len, port);
		freeaddrinfo(ai);
	}
	return r;
}

static void *other_thread(void *arg)
{
	char *text = arg;
	int port;

	if (lookup("localhost", NULL, SOCK_STREAM, text, 64, &port) != 0)
		strcpy(text, "error");
	return NULL;
}

static void test_pin(void **state)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(1883)};
	struct addrinfo peer = {.ai_family = AF_INET, .ai_addr = (struct sockaddr *)&in, .ai_addrlen = sizeof(in)};
	char text[64], theirs[64] = "";
	pthread_t t;
	int port;

	(void)state;
	inet_pton(AF_INET, "127.0.0.9", &in.sin_addr);
	assert_int_equal(resolve_pin("localhost", &peer), 0);

	/* the pinned name, this thread: the pinned address, with the asked port when one is asked */
	assert_int_equal(lookup("localhost", NULL, SOCK_STREAM, text, sizeof(text), &port), 0);
	assert_string_equal(text, "127.0.0.9");
	assert_int_equal(port, 1883);
	assert_int_equal(lookup("localhost", "8883", 0, text, sizeof(text), &port), 0);
	assert_string_equal(text, "127.0.0.9");
	assert_int_equal(port, 8883);
	/* answers that are not ours to give: datagrams, another name, another thread */
	assert_int_equal(lookup("localhost", NULL, SOCK_DGRAM, text, sizeof(text), &port), 0);
	assert_string_not_equal(text, "127.0.0.9");
	assert_int_equal(lookup("127.0.0.1", NULL, SOCK_STREAM, text, sizeof(text), &port), 0);
	assert_string_equal(text, "127.0.0.1");
	assert_int_equal(pthread_create(&t, NULL, other_thread, theirs), 0);
	pthread_join(t, NULL);
	assert_true(strcmp(theirs, "127.0.0.1") == 0 || strcmp(theirs, "::1") == 0);

	resolve_unpin();
	assert_int_equal(lookup("localhost", NULL, SOCK_STREAM, text, sizeof(text), &port), 0);
	assert_string_not_equal(text, "127.0.0.9");
}

/* Pinned answers that are never freed do not pile up: after a few the pin gives none, and says so. */
static void test_pin_answers_bounded(void **state)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	struct addrinfo peer = {.ai_family = AF_INET, .ai_addr = (struct sockaddr *)&in, .ai_addrlen = sizeof(in)};
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	struct addrinfo *held[8] = {0};
	int ok = 0, again = 0;

	(void)state;
	inet_pton(AF_INET, "127.0.0.9", &in.sin_addr);
	assert_int_equal(resolve_pin("localhost", &peer), 0);
	for (int i = 0; i < 8; i++) {
		int r = getaddrinfo("localhost", NULL, &hints, &held[i]);
		ok += r == 0;
		again += r == EAI_AGAIN;
		if (r != 0)
			held[i] = NULL;
	}
	resolve_unpin();
	assert_int_equal(ok, 4);
	assert_int_equal(again, 4);
	for (int i = 0; i < 8; i++)
		freeaddrinfo(held[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal),
		cmocka_unit_test(test_hosts_name),
		cmocka_unit_test(test_error),
		cmocka_unit_test(test_free_before_done),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_pin),
		cmocka_unit_test(test_pin_answers_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
