/* SPDX-License-Identifier: MIT */
/*
 * test_modbus_tcp.c — the `modbus_tcp` driver and the `modbus` actuator, each against a
 * real TCP socket on 127.0.0.1 that the test itself plays the server on, one step at a
 * time (no threads, no sleeps): the connect, the exact request bytes (MBAP header,
 * transaction ids, block reads), responses whole and split, answers to an older
 * transaction, exceptions, timeouts, a server that closes or talks garbage; writes with
 * their echo, read-back and refusals before sending. And every option error with its line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "opts_helper.h"
#include "drivers/actuator.h"
#include "drivers/drivers.h"
#include "drivers/modbus_proto.h"
#include "replay.h"

#define WAIT_MS 2000

/* A listening socket on 127.0.0.1 and the connection the driver made to it. */
struct peer {
	int listen_fd;
	int port;
	int conn;
};

static void peer_listen(struct peer *p)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);

	p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(p->listen_fd >= 0);
	assert_int_equal(bind(p->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(p->listen_fd, 4), 0);
	assert_int_equal(getsockname(p->listen_fd, (struct sockaddr *)&a, &alen), 0);
	p->port = ntohs(a.sin_port);
	p->conn = -1;
}

static void peer_accept(struct peer *p)
{
	struct pollfd pf = {.fd = p->listen_fd, .events = POLLIN};

	assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
	p->conn = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(p->conn >= 0);
}

static void peer_close(struct peer *p)
{
	if (p->conn >= 0)
		close(p->conn);
	close(p->listen_fd);
}

/* Read one request ADU (header + PDU) from the client into BUF; its length. */
static size_t peer_request(struct peer *p, uint8_t *buf)
{
	size_t got = 0, want = MBP_TCP_HEADER;

	while (got < want) {
		struct pollfd pf = {.fd = p->conn, .events = POLLIN};
		ssize_t n;

		assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
		n = read(p->conn, buf + got, want - got);
		assert_true(n > 0);
		got += (size_t)n;
		if (got == MBP_TCP_HEADER)
			want = 6 + ((size_t)buf[4] << 8 | buf[5]);
	}
	return got;
}

/* Answer transaction TID from UNIT with PDU. */
static void peer_answer(struct peer *p, uint16_t tid, uint8_t unit, const uint8_t *pdu, size_t len)
{
	uint8_t adu[MBP_TCP_MAX_ADU];
	int n = mbp_tcp_frame(adu, sizeof(adu), tid, unit, pdu, len);

	assert_true(n > 0);
	assert_int_equal(write(p->conn, adu, (size_t)n), n);
}

/* Wait until the client's socket FD is readable (what the gateway's epoll would do). */
static void wait_readable(int fd)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};

	assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
}

static void wait_connected(int fd)
{
	struct pollfd pf = {.fd = fd, .events = POLLOUT};

	assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
}

#define TABLE                                                                                              \
	"units = ( { unit = 1; registers = (\n"                                                            \
	"    { name = \"v\"; address = 0; type = \"f32\"; unit = \"V\"; },\n"                             \
	"    { name = \"t\"; address = 2; type = \"i16\"; scale = 0.1; },\n"                              \
	"    { name = \"c\"; address = 4; function = \"coil\"; count = 3; } ); },\n"                      \
	"  { unit = 7; registers = ( { name = \"p\"; address = 10; function = \"input\"; } ); } );\n"

/* Start the driver on a fresh server; returns with the connection accepted and established. */
static void start(struct rp_run *run, struct peer *p, const char *extra)
{
	char opts[1024];
	uint64_t delay = UINT64_MAX;

	peer_listen(p);
	snprintf(opts, sizeof(opts), "host = \"127.0.0.1\"; port = %d; timeout = 0.25; %s\n%s", p->port,
	         extra ? extra : "", TABLE);
	rp_start(run, &sg_driver_modbus_tcp, opts);
	assert_true(run->dev.watch_fd >= 0);
	assert_int_equal(strncmp(run->dev.path, "127.0.0.1:", 10), 0);
	peer_accept(p);
	wait_connected(run->dev.watch_fd);
	assert_int_equal(sg_driver_modbus_tcp.io(&run->dev, EPOLLOUT, &delay), 0);
	assert_int_equal(run->dev.watch_events, EPOLLIN);
	assert_int_equal(delay, 0); /* connected: poll at once */
}

static void test_cycle_block_reads_and_values(void **state)
{
	static const uint8_t holding[] = {0x03, 0x06, 0x43, 0x66, 0x80, 0x00, 0xff, 0xe7}; /* 230.5 V, -25 -> -2.5 */
	static const uint8_t coils[] = {0x01, 0x01, 0x05};                                /* 1, 0, 1 */
	static const uint8_t input[] = {0x04, 0x02, 0x01, 0x00};                          /* 256 */
	struct rp_run run;
	struct peer p;
	uint8_t req[MBP_TCP_MAX_ADU];
	uint64_t delay;
	(void)state;

	start(&run, &p, NULL);
	/* 4 entries, 3 blocks: unit 1 coils 4+3, unit 1 holding 0+3, unit 7 input 10+1 */
	assert_int_equal(sg_driver_modbus_tcp.poll(&run.dev, &delay), 0);
	assert_int_equal(delay, 250000);
	assert_int_equal(peer_request(&p, req), 12);
	assert_memory_equal(req, ((const uint8_t[]){0, 1, 0, 0, 0, 6, 1, 0x01, 0, 4, 0, 3}), 12);
	peer_answer(&p, 1, 1, coils, sizeof(coils));
	wait_readable(run.dev.watch_fd);
	delay = UINT64_MAX;
	assert_int_equal(sg_driver_modbus_tcp.io(&run.dev, EPOLLIN, &delay), 0);
	assert_int_equal(delay, 0);
	assert_int_equal(sg_driver_modbus_tcp.poll(&run.dev, &delay), 0);
	assert_int_equal(peer_request(&p, req), 12);
	assert_memory_equal(req, ((const uint8_t[]){0, 2, 0, 0, 0, 6, 1, 0x03, 0, 0, 0, 3}), 12);
	/* the answer in two pieces: nothing until it is whole */
	{
		uint8_t adu[32];
		int n = mbp_tcp_frame(adu, sizeof(adu), 2, 1, holding, sizeof(holding));
		assert_int_equal(write(p.conn, adu, 5), 5);
		wait_readable(run.dev.watch_fd);
		delay = UINT64_MAX;
		assert_int_equal(sg_driver_modbus_tcp.io(&run.dev, EPOLLIN, &delay), 0);
		assert_int_equal(delay, UINT64_MAX);
		assert_int_equal(write(p.conn, adu + 5, (size_t)n - 5), n - 5);
	}
	wait_readable(run.dev.watch_fd);
	assert_int_equal(sg_driver_modbus_tcp.io(&run.dev, EPOLLIN, &delay), 0);
	assert_int_equal(sg_driver_modbus_tcp.poll(&run.dev, &delay), 0);
	assert_int_equal(peer_request(&p, req), 12);
	assert_memory_equal(req, ((const uint8_t[]){0, 3, 0, 0, 0, 6, 7, 0x04, 0, 10, 0, 1}), 12);
	peer_answer(&p, 3, 7, input, sizeof(input));
	wait_readable(run.dev.watch_fd);
	assert_int_equal(sg_driver_modbus_tcp.io(&run.dev, EPOLLIN, &delay), 0);
	{
		static const struct rp_exp exp[] = {RP_NUM("c_0", 1, ""), RP_NUM("c_1", 0, ""), RP_NUM("c_2", 1, ""),
		                                    RP_NUM("v", 230.5, "V"),  RP_NUM("t", -2.5, ""), RP_NUM("p", 256, ""),
		                                    {NULL}};
		rp_assert_readings(&run.cap, exp, "one cycle");
	}
	assert_int_equal(rp_total_fails(&run.cap), 0);
	/* the cycle is over: poll waits out the rest of the interval (10 s by default) */
	assert_int_equal(sg_driver_modbus_tcp.poll(&run.dev, &delay), 0);
	assert_true(delay > 9000000 && delay <= 10000000);
	rp_stop(&run);
	peer_close(&p);
}

static void test_failures(void **state)
{
	struct rp_run run;
	struct peer p;
	uint8_t req[MBP_TCP_MAX_ADU];
	uint64_t delay;
	(void)state;

	start(&run, &p, NULL);
	run.dev.interval_s = 1e-6; /* a new cycle at once */
	/* 1: an exception, by name */
	assert_int_equal(sg_driver_modbus_tcp.poll(&run.dev, &delay), 0);
	peer_request(&p, req);
	peer_answer(&p, 1, 1, (const uint8_t[]){0x81, 0x02}, 2);
	wait_readable(run.dev.watch_fd);
	assert_int_equal(sg_driver_modbus_tcp.io(&run.dev, EPOLLIN, &delay), 0);
	assert_int_equal(run.cap.fails[SG_FAIL_IO], 1);
	assert_non_null(strstr(run.cap.last_detail, "unit 1 coil 4+3: exception 2 (illegal data address)"));
	/* 2: no answer: a timeout at the next tick, then the next request (transaction 3) */
	assert_int_equal(sg_driver_modbus_tcp.poll(&run.dev, &delay), 0);
	peer_request(&p, req);
	assert_int_equal(sg_driver_modbus_tcp.poll(&run.dev, &delay), 0);
	assert_int_equal(run.cap.fails[SG_FAIL_TIMEOUT], 1);
	assert_non_null(strstr(run.cap.last_detail, "unit 1 holding 0+3: no response within 0.25 s"));
	peer_request(&p, req);
	assert_int_equal(req[1], 3);
	/* the late answer to transaction 2 is not taken for 3 */
	peer_answer(&p, 2, 1, (const uint8_t[]){0x03, 0x06, 0, 0, 0, 0, 0, 0}, 8);
	wait_readable(run.dev.watch_fd);
	assert_int_equal(sg_driver_modbus_tcp.io(&run.dev, EPOLLIN, &delay), 0);
	assert_int_equal(run.cap.fails[SG_FAIL_GARBAGE], 1);
	/* a wrong byte count for transaction 3 */
	peer_answer(&p, 3, 7, (const uint8_t[]){0x04, 0x04, 0, 0, 0, 0}, 6);
	wait_readable(run.dev.watch_fd);
	assert_int_equal(sg_driver_modbus_tcp.io(&run.dev, EPOLLIN, &delay), 0);
	assert_int_equal(run.cap.fails[SG_FAIL_SYNTAX], 1);
	assert_non_null(strstr(run.cap.last_detail, "byte count does not match the request"));
	assert_int_equal(run.cap.n, 0);
	/* three timeouts in a row fail the device (the gateway reconnects) */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sg_driver_modbus_tcp.poll(&run.dev, &delay), 0);
		peer_request(&p, req);
	}
	assert_int_equal(sg_driver_modbus_tcp.poll(&run.dev, &delay), 0);
	peer_request(&p, req);
	assert_int_equal(sg_driver_modbus_tcp.poll(&run.dev, &delay), -ETIMEDOUT);
	/* garbage instead of an MBAP header: the stream cannot be trusted */
	assert_int_equal(write(p.conn, "HTTP/1.1 400\r\n", 14), 14);
	wait_readable(run.dev.watch_fd);
	assert_int_equal(sg_driver_modbus_tcp.io(&run.dev, EPOLLIN, &delay), -EPROTO);
	rp_stop(&run);
	peer_close(&p);

	/* the server hangs up */
	start(&run, &p, NULL);
	close(p.conn);
	p.conn = -1;
	wait_readable(run.dev.watch_fd);
	assert_int_equal(sg_driver_modbus_tcp.io(&run.dev, EPOLLIN, &delay), -ECONNRESET);
	rp_stop(&run);
	peer_close(&p);

	/* nobody listens: refused at once or when the connect completes */
	peer_listen(&p);
	close(p.listen_fd);
	{
		char opts[256];
		void *o = NULL;
		struct sg_opt_error err;
		struct sg_dev dev = {.watch_fd = -1, .opts = NULL};
		int r;

		snprintf(opts, sizeof(opts), "host = \"127.0.0.1\"; port = %d; registers = ( { name = \"a\"; address = 0; } );",
		         p.port);
		assert_int_equal(opts_fixture_parse(&sg_driver_modbus_tcp, opts, &o, &err), 0);
		dev.opts = o;
		dev.state = calloc(1, sg_driver_modbus_tcp.state_size);
		r = sg_driver_modbus_tcp.init(&dev);
		if (r == 0) {
			wait_connected(dev.watch_fd);
			r = sg_driver_modbus_tcp.io(&dev, EPOLLOUT | EPOLLERR, &delay);
			sg_driver_modbus_tcp.fini(&dev);
		}
		assert_int_equal(r, -ECONNREFUSED);
		free(dev.state);
		sg_driver_modbus_tcp.free_options(o);
	}
}

struct opt_case {
	const char *text;
	int line; /* in the config: "dev = {" is line 1, the text starts on line 2 */
	const char *msg;
};

static void test_options(void **state)
{
	static const struct opt_case cases[] = {
		{"registers = ( { name = \"a\"; address = 0; } );", 1, "modbus_tcp needs host"},
		{"host = \"\";\nregisters = ( { name = \"a\"; address = 0; } );", 2, "modbus_tcp needs host"},
		{"host = \"h\";\nport = 70000; registers = ( { name = \"a\"; address = 0; } );", 3, "port must be"},
		{"host = \"h\";\ntimeout = 11; registers = ( { name = \"a\"; address = 0; } );", 3, "\"timeout\" must be between 0.05 and 10"},
		{"host = \"h\";\nunit = 256; registers = ( { name = \"a\"; address = 0; } );", 3, "unit must be 0..255"},
		{"host = \"h\";", 1, "needs registers = ( ... ); or units"},
		{"host = \"h\"; registers = ( { name = \"a\"; address = 0; } );\nunits = ();", 3, "not both"},
		{"host = \"h\";\nunits = ();", 3, "units must be a list"},
		{"host = \"h\"; unit = 1;\nunits = ( { unit = 1; registers = ( { name = \"a\"; address = 0; } ); } );", 2,
		 "unit goes inside each units entry"},
		{"host = \"h\"; units = (\n{ registers = ( { name = \"a\"; address = 0; } ); } );", 3, "units entry needs unit"},
		{"host = \"h\"; units = (\n{ unit = 1; colour = 2; } );", 3, "unknown key \"colour\" in a units entry"},
		{"host = \"h\"; units = ( { unit = 1; registers = ( { name = \"a\"; address = 0; } ); },\n"
		 "{ unit = 1; registers = ( { name = \"b\"; address = 0; } ); } );",
		 3, "unit 1 is listed twice"},
		{"host = \"h\"; units = ( { unit = 1; registers = ( { name = \"a\"; address = 0; } ); },\n"
		 "{ unit = 2; registers = ( { name = \"a\"; address = 0; } ); } );",
		 3, "register name \"a\" appears twice (first on line 2)"},
		{"host = \"h\"; registers = ( { name = \"a\"; address = 0;\ntype = \"u8\"; } );", 3, "type must be one of"},
		{"host = \"h\";\nmax_gap = -1; registers = ( { name = \"a\"; address = 0; } );", 3, "max_gap must be"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		void *o = NULL;
		struct sg_opt_error err = {0};

		print_message("%s\n", cases[i].text);
		assert_int_equal(opts_fixture_parse(&sg_driver_modbus_tcp, cases[i].text, &o, &err), -EINVAL);
		print_message("  -> %d: %s\n", err.line, err.msg);
		assert_non_null(strstr(err.msg, cases[i].msg));
		assert_int_equal(err.line, cases[i].line);
		assert_null(o);
	}
}

/* ---- the actuator ------------------------------------------------------------------------------- */

struct done_rec {
	int calls;
	int result;
	char detail[160];
};

static void on_done(struct sg_act *a, int result, const char *detail, void *ud)
{
	struct done_rec *d = ud;
	(void)a;
	d->calls++;
	d->result = result;
	snprintf(d->detail, sizeof(d->detail), "%s", detail ? detail : "");
}

struct act_run {
	struct sg_act act;
	struct sg_act_params params;
	void *opts;
	struct done_rec done;
};

static void act_start(struct act_run *r, struct peer *p, enum sg_actuator_kind kind, const char *extra)
{
	char text[512];
	struct sg_opt_error err = {0};

	peer_listen(p);
	snprintf(text, sizeof(text), "host = \"127.0.0.1\"; port = %d; unit = 3; %s", p->port, extra);
	memset(r, 0, sizeof(*r));
	assert_int_equal(act_fixture_parse(&sg_act_modbus, "a", kind, text, &r->opts, &err), 0);
	r->params = (struct sg_act_params){.name = "a", .kind = kind, .initial = -1, .opts = r->opts};
	r->act = (struct sg_act){.driver = &sg_act_modbus, .params = &r->params, .fd = -1, .wake_us = UINT64_MAX,
	                         .done = on_done, .userdata = &r->done};
	r->act.state = calloc(1, sg_act_modbus.state_size);
	assert_int_equal(sg_act_modbus.open(&r->act), 0);
	assert_true(r->act.fd >= 0);
	peer_accept(p);
}

static void act_stop(struct act_run *r, struct peer *p)
{
	sg_act_modbus.close(&r->act);
	free(r->act.state);
	act_fixture_free(&sg_act_modbus, r->opts);
	peer_close(p);
}

static void act_io(struct act_run *r, short revents)
{
	if (revents & POLLIN)
		wait_readable(r->act.fd);
	else
		wait_connected(r->act.fd);
	assert_int_equal(sg_act_modbus.io(&r->act, revents, 1000), 0);
}

static void test_act_number_write_and_refusals(void **state)
{
	struct act_run r;
	struct peer p;
	uint8_t req[MBP_TCP_MAX_ADU];
	struct sg_act_value v = {.number = 21.5, .text = "21.5"};
	(void)state;

	act_start(&r, &p, SG_ACT_NUMBER, "address = 100; register_type = \"i16\"; scale = 0.1;");
	/* set() before the connection is up: sent once it is */
	assert_int_equal(sg_act_modbus.set(&r.act, &v, 1000), 1);
	assert_int_equal(r.act.wake_us, 1000 + 1000000);
	if (r.act.events & POLLOUT)
		act_io(&r, POLLOUT);
	assert_int_equal(r.act.events, POLLIN);
	assert_int_equal(peer_request(&p, req), 12);
	assert_memory_equal(req + 6, ((const uint8_t[]){3, 0x06, 0, 100, 0, 215}), 6); /* 06, 215 */
	peer_answer(&p, 1, 3, req + 7, 5); /* the echo */
	act_io(&r, POLLIN);
	assert_int_equal(r.done.calls, 1);
	assert_int_equal(r.done.result, 0);
	assert_int_equal(r.act.wake_us, UINT64_MAX);

	/* a value the register cannot hold: refused from the timer, nothing sent */
	v = (struct sg_act_value){.number = 4000, .text = "4000"};
	assert_int_equal(sg_act_modbus.set(&r.act, &v, 2000), 1);
	assert_int_equal(r.act.wake_us, 2000);
	assert_int_equal(sg_act_modbus.timer(&r.act, 2000), 0);
	assert_int_equal(r.done.calls, 2);
	assert_int_equal(r.done.result, -ERANGE);
	assert_string_equal(r.done.detail, "value 4000 does not fit the register (i16 after scale and offset)");

	/* an exception answer, by name; an echo that differs */
	v = (struct sg_act_value){.number = 5, .text = "5"};
	assert_int_equal(sg_act_modbus.set(&r.act, &v, 3000), 1);
	peer_request(&p, req);
	peer_answer(&p, 2, 3, (const uint8_t[]){0x86, 0x03}, 2);
	act_io(&r, POLLIN);
	assert_int_equal(r.done.result, -EIO);
	assert_string_equal(r.done.detail, "unit 3 refused: exception 3 (illegal data value)");
	assert_int_equal(sg_act_modbus.set(&r.act, &v, 4000), 1);
	peer_request(&p, req);
	peer_answer(&p, 3, 3, (const uint8_t[]){0x06, 0, 100, 0, 51}, 5);
	act_io(&r, POLLIN);
	assert_string_equal(r.done.detail, "unit 3: write response does not echo the request");

	/* no answer: a timeout; two in a row drop the connection */
	assert_int_equal(sg_act_modbus.set(&r.act, &v, 5000), 1);
	peer_request(&p, req);
	assert_int_equal(sg_act_modbus.timer(&r.act, 5000 + 1000000), 0);
	assert_int_equal(r.done.result, -ETIMEDOUT);
	assert_string_equal(r.done.detail, "no response from unit 3 within 1000 ms");
	assert_int_equal(sg_act_modbus.set(&r.act, &v, 2000000), 1);
	peer_request(&p, req);
	assert_int_equal(sg_act_modbus.timer(&r.act, 3000000), -ETIMEDOUT);
	assert_int_equal(r.done.calls, 6);
	act_stop(&r, &p);
}

static void test_act_coil_read_back_and_u32(void **state)
{
	struct act_run r;
	struct peer p;
	uint8_t req[MBP_TCP_MAX_ADU];
	struct sg_act_value on = {.on = true, .text = "ON"};
	(void)state;

	act_start(&r, &p, SG_ACT_SWITCH, "address = 17; read_back = true;");
	if (r.act.events & POLLOUT)
		act_io(&r, POLLOUT);
	assert_int_equal(sg_act_modbus.set(&r.act, &on, 1000), 1);
	peer_request(&p, req);
	assert_memory_equal(req + 7, ((const uint8_t[]){0x05, 0, 17, 0xff, 0x00}), 5);
	peer_answer(&p, 1, 3, req + 7, 5);
	act_io(&r, POLLIN);
	assert_int_equal(r.done.calls, 0); /* confirmed, now read back */
	peer_request(&p, req);
	assert_memory_equal(req + 7, ((const uint8_t[]){0x01, 0, 17, 0, 1}), 5);
	peer_answer(&p, 2, 3, (const uint8_t[]){0x01, 0x01, 0x00}, 3); /* still off */
	act_io(&r, POLLIN);
	assert_int_equal(r.done.result, -EIO);
	assert_string_equal(r.done.detail, "unit 3: read back a different value than written");
	assert_int_equal(sg_act_modbus.set(&r.act, &on, 2000), 1);
	peer_request(&p, req);
	peer_answer(&p, 3, 3, req + 7, 5);
	act_io(&r, POLLIN);
	peer_request(&p, req);
	peer_answer(&p, 4, 3, (const uint8_t[]){0x01, 0x01, 0x01}, 3);
	act_io(&r, POLLIN);
	assert_int_equal(r.done.result, 0);
	act_stop(&r, &p);

	/* a u32 goes out as 16, word order little */
	act_start(&r, &p, SG_ACT_NUMBER, "address = 40; register_type = \"u32\"; word_order = \"little\";");
	if (r.act.events & POLLOUT)
		act_io(&r, POLLOUT);
	{
		struct sg_act_value v = {.number = 70000, .text = "70000"};
		assert_int_equal(sg_act_modbus.set(&r.act, &v, 1000), 1);
	}
	assert_int_equal(peer_request(&p, req), 17);
	assert_memory_equal(req + 7, ((const uint8_t[]){0x10, 0, 40, 0, 2, 4, 0x11, 0x70, 0x00, 0x01}), 10);
	peer_answer(&p, 1, 3, req + 7, 5);
	act_io(&r, POLLIN);
	assert_int_equal(r.done.result, 0);
	act_stop(&r, &p);
}

static void test_act_options(void **state)
{
	static const struct {
		enum sg_actuator_kind kind;
		const char *text;
		const char *msg;
	} cases[] = {
		{SG_ACT_SWITCH, "address = 1;", "actuator \"a\" needs \"host\""},
		{SG_ACT_SWITCH, "port = \"/dev/sg-no-such-tty\"; address = 1;", "port /dev/sg-no-such-tty does not exist"},
		{SG_ACT_SWITCH, "host = \"h\"; port = \"/dev/null\"; address = 1;", "set host (Modbus TCP) or a serial port"},
		{SG_ACT_SWITCH, "host = \"h\"; address = 1; parity = \"even\";", "\"parity\" applies to Modbus RTU"},
		{SG_ACT_SWITCH, "port = \"/dev/null\"; slave = 0; address = 1;", "\"slave\" must be between 1 and 247"},
		{SG_ACT_SWITCH, "port = \"/dev/null\"; slave = 1; unit = 1; address = 1;", "set slave or unit, not both"},
		{SG_ACT_SWITCH, "port = \"/dev/null\"; address = 1; parity = \"space\";", "\"parity\" must be"},
		{SG_ACT_SWITCH, "host = \"h\";", "needs \"address\""},
		{SG_ACT_SWITCH, "host = \"h\"; address = 70000;", "\"address\" must be between 0 and 65535"},
		{SG_ACT_SWITCH, "host = \"h\"; address = 1; function = \"input\";", "are read-only"},
		{SG_ACT_NUMBER, "host = \"h\"; address = 1; function = \"coil\";", "a coil is ON or OFF"},
		{SG_ACT_NUMBER, "host = \"h\"; address = 1; register_type = \"f16\";", "register_type must be one of"},
		{SG_ACT_NUMBER, "host = \"h\"; address = 1; bit = 2;", "writing one bit of a register is not supported"},
		{SG_ACT_NUMBER, "host = \"h\"; address = 65535; register_type = \"u32\";", "ends beyond address 65535"},
		{SG_ACT_SWITCH, "host = \"h\"; address = 1; scale = 2;", "does not apply to coils"},
		{SG_ACT_SWITCH, "host = \"h\"; address = 1; timeout_ms = 10;", "\"timeout_ms\" must be between 50"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		void *o = NULL;
		struct sg_opt_error err = {0};

		print_message("%s\n", cases[i].text);
		assert_int_equal(act_fixture_parse(&sg_act_modbus, "a", cases[i].kind, cases[i].text, &o, &err), -EINVAL);
		print_message("  -> %s\n", err.msg);
		assert_non_null(strstr(err.msg, cases[i].msg));
	}
	{
		void *o = NULL;
		struct sg_opt_error err = {0};
		char buf[256];

		assert_int_equal(act_fixture_parse(&sg_act_modbus, "a", SG_ACT_NUMBER,
		                                   "host = \"10.0.0.5\"; unit = 2; address = 7; register_type = \"f32\";"
		                                   " read_back = true;",
		                                   &o, &err),
		                 0);
		sg_act_modbus.describe(o, buf, sizeof(buf));
		assert_string_equal(buf, "modbus tcp 10.0.0.5:502 unit 2 holding 7 as f32 (byte order big, word order big, "
		                         "scale 1, offset 0), function 16, read back, timeout 1000 ms");
		sg_act_modbus.where(o, buf, sizeof(buf));
		assert_string_equal(buf, "10.0.0.5:502 unit 2 holding 7");
		act_fixture_free(&sg_act_modbus, o);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cycle_block_reads_and_values),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_act_number_write_and_refusals),
		cmocka_unit_test(test_act_coil_read_back_and_u32),
		cmocka_unit_test(test_act_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
