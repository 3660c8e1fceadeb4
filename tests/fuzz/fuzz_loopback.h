/* SPDX-License-Identifier: MIT */
/*
 * fuzz_loopback.h — the broker's side for the MQTT fuzz targets: one listening TCP socket on
 * 127.0.0.1, made on the first call and kept for the process (libFuzzer runs many inputs in
 * one), which libmosquitto connects to; mosquitto_lib_init() with it.
 */
#ifndef SG_FUZZ_LOOPBACK_H
#define SG_FUZZ_LOOPBACK_H

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <mosquitto.h>

/* The listener's descriptor; *PORT its port. Aborts when none can be made. */
static int fuzz_loopback(uint16_t *port)
{
	static int listener = -1;
	static uint16_t bound;

	if (listener < 0) {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t alen = sizeof(a);
		listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(listener, 4) < 0 ||
		    getsockname(listener, (struct sockaddr *)&a, &alen) < 0)
			abort();
		bound = ntohs(a.sin_port);
		mosquitto_lib_init();
	}
	*port = bound;
	return listener;
}

#endif
