/* SPDX-License-Identifier: MIT */
/*
 * test_modbus_tcp_libmodbus.c — drivers/modbus_proto.c against libmodbus, the independent reference.
 *
 * A libmodbus Modbus TCP server (modbus_new_tcp on 127.0.0.1, an ephemeral port,
 * modbus_mapping_new for its tables) runs in a thread. The test is the client: it
 * encodes each request with modbus_proto, frames it with the MBAP header, sends it over
 * a real TCP socket and decodes what libmodbus answers. Every function code (01, 02,
 * 03, 04, 05, 06, 15, 16) must round-trip against libmodbus's tables; an address
 * outside them must come back as exception 2; and the four float orders are checked
 * both ways against libmodbus's modbus_get_float_abcd/badc/cdab/dcba(). libmodbus is
 * linked into this test only (Makefile).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <modbus.h>

#include "drivers/modbus_proto.h"

#define MAP_ITEMS 100
#define IO_WAIT_MS 3000

struct server {
	modbus_t *ctx;
	modbus_mapping_t *map;
	int listen_fd;
	int port;
	pthread_t thread;
	atomic_int stop;
	atomic_int served;
};

static void *server_main(void *arg)
{
	struct server *s = arg;
	uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
	int fd = s->listen_fd;

	if (modbus_tcp_accept(s->ctx, &fd) < 0)
		return NULL;
	modbus_set_indication_timeout(s->ctx, 0, 100000);
	while (!atomic_load(&s->stop)) {
		int rc = modbus_receive(s->ctx, query);
		if (rc > 0) {
			modbus_reply(s->ctx, query, rc, s->map);
			atomic_fetch_add(&s->served, 1);
		} else if (rc < 0 && errno != ETIMEDOUT) {
			break;
		}
	}
	return NULL;
}

static struct server srv;
static int client = -1;
static uint16_t tid = 0x1000;

static int setup(void **state)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);

	(void)state;
	srv.ctx = modbus_new_tcp("127.0.0.1", 0);
	assert_non_null(srv.ctx);
	srv.map = modbus_mapping_new(MAP_ITEMS, MAP_ITEMS, MAP_ITEMS, MAP_ITEMS);
	assert_non_null(srv.map);
	srv.listen_fd = modbus_tcp_listen(srv.ctx, 1);
	assert_true(srv.listen_fd >= 0);
	assert_int_equal(getsockname(srv.listen_fd, (struct sockaddr *)&a, &alen), 0);
	srv.port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&srv.thread, NULL, server_main, &srv), 0);

	client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(client >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)srv.port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(client, (struct sockaddr *)&a, sizeof(a)), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(client);
	atomic_store(&srv.stop, 1);
	pthread_join(srv.thread, NULL);
	close(srv.listen_fd);
	modbus_close(srv.ctx);
	modbus_mapping_free(srv.map);
	modbus_free(srv.ctx);
	return 0;
}

/* Read exactly N bytes within IO_WAIT_MS. */
static void read_exact(uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = {.fd = client, .events = POLLIN};
		ssize_t k;

		assert_int_equal(poll(&p, 1, IO_WAIT_MS), 1);
		k = read(client, buf + got, n - got);
		assert_true(k > 0);
		got += (size_t)k;
	}
}

/* Send request PDU REQ to UNIT and decode the answer into *R. Returns the decoder's result. */
static int transact(const uint8_t *req, int req_len, uint8_t unit, struct mbp_response *r, uint8_t *rsp_buf)
{
	uint8_t adu[MBP_TCP_MAX_ADU];
	struct mbp_tcp_header h;
	int n, total;

	assert_true(req_len > 0);
	n = mbp_tcp_frame(adu, sizeof(adu), ++tid, unit, req, (size_t)req_len);
	assert_true(n > 0);
	assert_int_equal(write(client, adu, (size_t)n), n);
	read_exact(rsp_buf, MBP_TCP_HEADER);
	total = mbp_tcp_header_parse(rsp_buf, MBP_TCP_HEADER, &h);
	assert_true(total > MBP_TCP_HEADER);
	read_exact(rsp_buf + MBP_TCP_HEADER, (size_t)total - MBP_TCP_HEADER);
	assert_int_equal(h.transaction, tid);
	assert_int_equal(h.unit, unit);
	return mbp_decode_response(req, (size_t)req_len, rsp_buf + MBP_TCP_HEADER, (size_t)total - MBP_TCP_HEADER, r);
}

static void test_reads(void **state)
{
	uint8_t req[MBP_MAX_PDU], rsp[MBP_TCP_MAX_ADU];
	struct mbp_response r;
	(void)state;

	for (unsigned i = 0; i < MAP_ITEMS; i++) {
		srv.map->tab_bits[i] = (uint8_t)((i * 7) % 3 == 0);
		srv.map->tab_input_bits[i] = (uint8_t)((i * 5) % 4 == 1);
		srv.map->tab_registers[i] = (uint16_t)(i * 1031u + 7);
		srv.map->tab_input_registers[i] = (uint16_t)(0xffffu - i * 311u);
	}
	assert_int_equal(transact(req, mbp_encode_read(req, sizeof(req), MBP_FC_READ_COILS, 3, 19), 1, &r, rsp), MBP_OK);
	for (unsigned k = 0; k < 19; k++)
		assert_int_equal(mbp_bit(r.data, k), srv.map->tab_bits[3 + k]);
	assert_int_equal(transact(req, mbp_encode_read(req, sizeof(req), MBP_FC_READ_DISCRETE, 0, 100), 2, &r, rsp),
	                 MBP_OK);
	for (unsigned k = 0; k < 100; k++)
		assert_int_equal(mbp_bit(r.data, k), srv.map->tab_input_bits[k]);
	assert_int_equal(transact(req, mbp_encode_read(req, sizeof(req), MBP_FC_READ_HOLDING, 10, 90), 1, &r, rsp),
	                 MBP_OK);
	for (unsigned k = 0; k < 90; k++)
		assert_int_equal(r.data[2 * k] << 8 | r.data[2 * k + 1], srv.map->tab_registers[10 + k]);
	assert_int_equal(transact(req, mbp_encode_read(req, sizeof(req), MBP_FC_READ_INPUT, 0, 1), 255, &r, rsp),
	                 MBP_OK);
	assert_int_equal(r.data[0] << 8 | r.data[1], srv.map->tab_input_registers[0]);
}

static void test_writes(void **state)
{
	uint8_t req[MBP_MAX_PDU], rsp[MBP_TCP_MAX_ADU];
	struct mbp_response r;
	uint8_t regs[8];
	(void)state;

	memset(srv.map->tab_bits, 0, MAP_ITEMS);
	assert_int_equal(transact(req, mbp_encode_write_coil(req, sizeof(req), 17, true), 1, &r, rsp), MBP_OK);
	assert_int_equal(srv.map->tab_bits[17], 1);
	assert_int_equal(transact(req, mbp_encode_write_coil(req, sizeof(req), 17, false), 1, &r, rsp), MBP_OK);
	assert_int_equal(srv.map->tab_bits[17], 0);
	assert_int_equal(transact(req, mbp_encode_write_register(req, sizeof(req), 5, 0xbeef), 1, &r, rsp), MBP_OK);
	assert_int_equal(srv.map->tab_registers[5], 0xbeef);
	assert_int_equal(transact(req, mbp_encode_write_coils(req, sizeof(req), 40, 10, (const uint8_t[]){0xcd, 0x01}),
	                          1, &r, rsp),
	                 MBP_OK);
	assert_int_equal(r.count, 10);
	for (unsigned k = 0; k < 10; k++) /* §6.11's pattern: 1011 0011 10 from coil 40 up */
		assert_int_equal(srv.map->tab_bits[40 + k], (k < 8 ? (0xcd >> k) : (0x01 >> (k - 8))) & 1);
	{
		struct mbp_format f = {.type = MBP_I32, .bit = -1, .scale = 0.5, .offset = 0};
		assert_int_equal(mbp_value_encode(&f, -1000.5, regs), 0); /* raw -2001 */
	}
	assert_int_equal(transact(req, mbp_encode_write_registers(req, sizeof(req), 60, 2, regs), 1, &r, rsp), MBP_OK);
	assert_int_equal((int32_t)((uint32_t)srv.map->tab_registers[60] << 16 | srv.map->tab_registers[61]), -2001);
}

static void test_exception(void **state)
{
	uint8_t req[MBP_MAX_PDU], rsp[MBP_TCP_MAX_ADU];
	struct mbp_response r;
	(void)state;

	assert_int_equal(transact(req, mbp_encode_read(req, sizeof(req), MBP_FC_READ_HOLDING, 95, 10), 1, &r, rsp),
	                 MBP_EXCEPTION);
	assert_int_equal(r.exception, MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS);
	assert_string_equal(mbp_exception_name(r.exception), "illegal data address");
	assert_int_equal(transact(req, mbp_encode_write_register(req, sizeof(req), 100, 1), 1, &r, rsp), MBP_EXCEPTION);
	assert_int_equal(r.exception, 2);
}

/* The four float orders, decoded and encoded, against libmodbus's getters. */
static void test_float_orders(void **state)
{
	static const uint32_t patterns[] = {0x43668000, 0xc18a0000, 0x3f800001, 0x00000001, 0x7f7fffff};
	float (*const get[4])(const uint16_t *) = {modbus_get_float_abcd, modbus_get_float_cdab, modbus_get_float_badc,
	                                           modbus_get_float_dcba};
	uint8_t req[MBP_MAX_PDU], rsp[MBP_TCP_MAX_ADU];
	struct mbp_response r;
	(void)state;

	for (size_t p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++) {
		srv.map->tab_registers[70] = (uint16_t)(patterns[p] >> 16);
		srv.map->tab_registers[71] = (uint16_t)(patterns[p] & 0xffff);
		assert_int_equal(transact(req, mbp_encode_read(req, sizeof(req), MBP_FC_READ_HOLDING, 70, 2), 1, &r, rsp),
		                 MBP_OK);
		for (int o = 0; o < 4; o++) {
			struct mbp_format f = {.type = MBP_F32, .word_little = o == 1 || o == 3, .byte_little = o >= 2,
			                       .bit = -1, .scale = 1};
			float want = get[o](&srv.map->tab_registers[70]);
			uint8_t regs[4];
			double v;

			if (!isfinite(want)) { /* a NaN or infinity is refused, never published */
				assert_int_equal(mbp_value_decode(&f, r.data, &v), -EDOM);
				continue;
			}
			assert_int_equal(mbp_value_decode(&f, r.data, &v), 0);
			assert_true((float)v == want);
			/* and back: our bytes for that value, read by libmodbus in the same order */
			assert_int_equal(mbp_value_encode(&f, want, regs), 0);
			assert_int_equal(transact(req, mbp_encode_write_registers(req, sizeof(req), 80, 2, regs), 1, &r, rsp),
			                 MBP_OK);
			assert_true(get[o](&srv.map->tab_registers[80]) == want);
			assert_int_equal(transact(req, mbp_encode_read(req, sizeof(req), MBP_FC_READ_HOLDING, 70, 2), 1, &r, rsp),
			                 MBP_OK);
		}
	}
	assert_true(atomic_load(&srv.served) > 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads),
		cmocka_unit_test(test_writes),
		cmocka_unit_test(test_exception),
		cmocka_unit_test(test_float_orders),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
