/* SPDX-License-Identifier: MIT */
/*
 * test_modbus_libmodbus.c — the `modbus` driver against libmodbus, the independent reference.
 *
 * A libmodbus RTU server (modbus_new_rtu on the slave side of a pseudo-terminal, a
 * modbus_mapping_new register map filled with libmodbus's own value helpers) runs in a
 * thread; the requests the driver makes at its turns (request()) are written into the pty
 * master and the bytes coming back are handed to answer(), as its serial line would (the
 * line itself: test_line.c, test_shared_line.py). Adjacent entries share a block read, so
 * voltage and temp come in one request. libmodbus checks every request's CRC (it
 * drops a frame with a bad one, which would show up here as a timeout) and the driver checks
 * every response's: each reading arriving with the right value proves both ends agree on
 * framing, CRC, register and word order. An address outside the map must come back as
 * exception 2, counted as SG_FAIL_IO. libmodbus is linked into this test only (Makefile).
 */
#include <errno.h>
#include <fcntl.h>
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
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <modbus.h>

#include "drivers/driver.h"
#include "drivers/drivers.h"
#include "replay.h"

#define SLAVE 42
#define MAP_REGISTERS 64
#define REPLY_WAIT_MS 2000

struct server {
	char path[128];
	modbus_t *ctx;
	modbus_mapping_t *map;
	pthread_t thread;
	atomic_int ready;   /* 1 connected, -1 failed */
	atomic_int stop;
	atomic_int served;
};

static void *server_main(void *arg)
{
	struct server *s = arg;
	uint8_t query[MODBUS_RTU_MAX_ADU_LENGTH];

	if (modbus_connect(s->ctx) < 0) {
		atomic_store(&s->ready, -1);
		return NULL;
	}
	/* wake up now and then to look at the stop flag */
	modbus_set_indication_timeout(s->ctx, 0, 100000);
	atomic_store(&s->ready, 1);
	while (!atomic_load(&s->stop)) {
		int rc = modbus_receive(s->ctx, query);

		if (rc > 0) {
			modbus_reply(s->ctx, query, rc, s->map);
			atomic_fetch_add(&s->served, 1);
		}
	}
	modbus_close(s->ctx);
	return NULL;
}

/*
 * The register map the driver must read back. Floats are laid out by hand (230.5 =
 * 0x43668000, -17.25 = 0xC18A0000): libmodbus 3.1.6's modbus_set_float_abcd() does not
 * round-trip with its own modbus_get_float_abcd() on little-endian hosts, so the getters
 * are the reference (checked in the test) and the setters are not used.
 */
static void server_fill(modbus_mapping_t *m)
{
	m->tab_input_registers[0] = 0x4366;                             /* float32, big word order */
	m->tab_input_registers[1] = 0x8000;
	m->tab_input_registers[2] = 0x0000;                             /* float32, little word order */
	m->tab_input_registers[3] = 0xc18a;
	m->tab_registers[6] = (uint16_t)(int16_t)-1234;                 /* int16, scale 0.01 */
	m->tab_registers[10] = 0x0001;                                  /* uint32 123456, big */
	m->tab_registers[11] = 0xe240;
	m->tab_input_registers[20] = 0xe240;                            /* uint32 123456, little */
	m->tab_input_registers[21] = 0x0001;
	m->tab_registers[30] = 0xffff;                                  /* int32 -2, big */
	m->tab_registers[31] = 0xfffe;
	m->tab_registers[40] = 65535;                                   /* uint16 */
}

#define OPTIONS                                                                                              \
	"slave = 42; timeout = 1.0;\n"                                                                       \
	"registers = (\n"                                                                                    \
	"  { name = \"voltage\"; address = 0; type = \"float32\"; function = \"input\"; unit = \"V\"; },\n"  \
	"  { name = \"temp\"; address = 2; type = \"float32\"; function = \"input\"; word_order = \"little\"; },\n" \
	"  { name = \"current\"; address = 6; type = \"int16\"; scale = 0.01; unit = \"A\"; },\n"            \
	"  { name = \"energy\"; address = 10; type = \"uint32\"; scale = 0.1; unit = \"kWh\"; },\n"          \
	"  { name = \"energy_le\"; address = 20; type = \"uint32\"; function = \"input\"; word_order = \"little\"; },\n" \
	"  { name = \"signed32\"; address = 30; type = \"int32\"; },\n"                                      \
	"  { name = \"u16\"; address = 40; },\n"                                                             \
	"  { name = \"missing\"; address = 63; type = \"uint32\"; }\n"                                       \
	");"

/* In the planner's order: holding registers, then input registers, each by address. */
static const struct {
	const char *field;
	double value; /* NAN = must fail */
} want[] = {
	{"current", -1234 * 0.01}, {"energy", 123456 * 0.1}, {"signed32", -2}, {"u16", 65535},
	{"voltage", 230.5},        {"temp", -17.25},         {"energy_le", 123456},
};

#define REQUESTS 7 /* holding 6, 10, 30, 40, 63 (the exception); input 0+4, 20 */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Feed what the server sends until READINGS+FAILS grows, or the wait runs out. */
static void pump(struct rp_run *run, int master, size_t before)
{
	int64_t deadline = now_ms() + REPLY_WAIT_MS;

	while (run->cap.n + rp_total_fails(&run->cap) == before && now_ms() < deadline) {
		struct pollfd pfd = {.fd = master, .events = POLLIN};
		uint8_t buf[256];
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = read(master, buf, sizeof(buf));
		if (n > 0)
			rp_dev_feed(&run->dev, &run->line, buf, (size_t)n);
	}
}

static void test_against_libmodbus(void **state)
{
	struct server srv = {.ready = 0};
	struct rp_run run;
	struct termios tio;
	int master;

	(void)state;
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(master >= 0);
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	assert_int_equal(ptsname_r(master, srv.path, sizeof(srv.path)), 0);
	assert_int_equal(tcgetattr(master, &tio), 0);
	cfmakeraw(&tio);
	assert_int_equal(tcsetattr(master, TCSANOW, &tio), 0);

	srv.ctx = modbus_new_rtu(srv.path, 9600, 'N', 8, 1);
	assert_non_null(srv.ctx);
	assert_int_equal(modbus_set_slave(srv.ctx, SLAVE), 0);
	srv.map = modbus_mapping_new(0, 0, MAP_REGISTERS, MAP_REGISTERS);
	assert_non_null(srv.map);
	server_fill(srv.map);
	assert_int_equal(pthread_create(&srv.thread, NULL, server_main, &srv), 0);
	for (int i = 0; i < 200 && atomic_load(&srv.ready) == 0; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&srv.ready), 1);

	rp_start(&run, &sg_driver_modbus, OPTIONS);
	run.line.autoreq = false;
	run.dev.interval_s = 60;
	for (size_t i = 0; i < REQUESTS; i++) {
		size_t before = run.cap.n + rp_total_fails(&run.cap);
		uint8_t req[64];
		size_t n = rp_line_request(&run.dev, &run.line, req, sizeof(req));

		assert_int_equal(n, 8);
		assert_int_equal(write(master, req, n), (ssize_t)n);
		pump(&run, master, before);
		assert_false(run.line.txn);
	}
	{
		uint8_t req[64];
		uint64_t timeout;

		assert_int_equal(sg_driver_modbus.request(&run.dev, req, sizeof(req), &timeout), 0); /* the cycle is over */
	}
	atomic_store(&srv.stop, 1);
	pthread_join(srv.thread, NULL);

	for (size_t i = 0; i < run.cap.n; i++)
		fprintf(stderr, "  %s = %.17g\n", run.cap.r[i].field, run.cap.r[i].number);
	fprintf(stderr, "  libmodbus answered %d requests; last failure: %s\n", atomic_load(&srv.served),
		run.cap.last_detail);
	assert_int_equal(atomic_load(&srv.served), REQUESTS);
	assert_int_equal(run.cap.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_string_equal(run.cap.r[i].field, want[i].field);
		assert_true(run.cap.r[i].number == want[i].value);
	}
	/* libmodbus's own reading of the same registers agrees */
	assert_true(run.cap.r[4].number == modbus_get_float_abcd(&srv.map->tab_input_registers[0]));
	assert_true(run.cap.r[5].number == modbus_get_float_cdab(&srv.map->tab_input_registers[2]));
	assert_string_equal(run.cap.r[4].unit, "V");
	/* 63 + 1 is past the 64-register map: libmodbus answers "illegal data address" */
	assert_int_equal(run.cap.fails[SG_FAIL_IO], 1);
	assert_non_null(strstr(run.cap.last_detail, "slave 42 holding 63+2: exception 2"));
	assert_int_equal(rp_total_fails(&run.cap), 1);

	rp_stop(&run);
	modbus_mapping_free(srv.map);
	modbus_free(srv.ctx);
	close(master);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_against_libmodbus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
