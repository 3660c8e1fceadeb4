/* SPDX-License-Identifier: MIT */
/*
 * test_mqtt_setup.c — mqtt_setup_check(): what the start and --check refuse,
 * and where they say it is. Each case builds a struct sg_mqtt_cfg by hand
 * (the config loader has its own tests) with "FILE:LINE" places of its own,
 * and runs the real libmosquitto and OpenSSL on it. The system trust store is
 * pointed at private files through SSL_CERT_FILE / SSL_CERT_DIR. Good TLS
 * files against a real broker are tests/integration/test_security.py's job.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway/mqtt_setup.h"

#define WILL "base/gateway/gw/status"

static char tmpdir[64];
static char junk[PATH_MAX], emptydir[PATH_MAX];
static char *plain[] = {"mqtt://127.0.0.1:1883"};
static char *tls[] = {"mqtts://127.0.0.1:8883", "mqtts://[::1]:8883"};
static char *mixed[] = {"mqtts://127.0.0.1:8883", "mqtt://127.0.0.1:1883"};

static int group_setup(void **state)
{
	FILE *f;

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg-test-mqtt-setup-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(junk, sizeof(junk), "%s/junk.pem", tmpdir);
	snprintf(emptydir, sizeof(emptydir), "%s/empty", tmpdir);
	f = fopen(junk, "w");
	if (!f || fputs("not a certificate\n", f) < 0 || fclose(f) != 0)
		return -1;
	return mkdir(emptydir, 0700);
}

static int group_teardown(void **state)
{
	(void)state;
	unlink(junk);
	rmdir(emptydir);
	return rmdir(tmpdir);
}

/* A valid plain config, everything at lines of "t.conf". */
static struct sg_mqtt_cfg base_cfg(void)
{
	struct sg_mqtt_cfg c = {
		.brokers = plain,
		.n_brokers = 1,
		.protocol = 5,
		.keepalive = 30,
		.client_id = "sensorgate-gw",
		.reconnect_min_s = 1,
		.reconnect_max_s = 60,
		.max_inflight = 100,
	};
	static char *where[SG_MQTT_KEY_N] = {
		[SG_MQTT_KEY_GROUP] = "t.conf:2",      [SG_MQTT_KEY_BROKERS] = "t.conf:3",
		[SG_MQTT_KEY_CLIENT_ID] = "t.conf:4",  [SG_MQTT_KEY_USERNAME] = "t.conf:5",
		[SG_MQTT_KEY_TLS] = "t.conf:6",        [SG_MQTT_KEY_CA_FILE] = "t.conf:7",
		[SG_MQTT_KEY_INSECURE] = "t.conf:8",
	};
	memcpy(c.where, where, sizeof(where));
	return c;
}

static void expect_error(const struct sg_mqtt_cfg *c, const char *prefix, const char *msg)
{
	struct mqtt_setup_report rep;
	int r = mqtt_setup_check(c, WILL, &rep);

	if (r != -EINVAL || strncmp(rep.error, prefix, strlen(prefix)) != 0 || !strstr(rep.error, msg))
		fail_msg("r=%d, got \"%s\", want \"%s...%s\"", r, rep.error, prefix, msg);
}

static void test_plain_ok(void **state)
{
	struct sg_mqtt_cfg c = base_cfg();
	struct mqtt_setup_report rep;

	(void)state;
	assert_int_equal(mqtt_setup_check(&c, WILL, &rep), 0);
	assert_string_equal(rep.error, "");
	assert_string_equal(rep.warning, "");
	assert_string_equal(rep.tls, ""); /* no TLS, nothing to say */
	c.password = "secret";            /* MQTT 5: a password without a user name is fine */
	assert_int_equal(mqtt_setup_check(&c, WILL, &rep), 0);
}

static void test_refused_settings(void **state)
{
	struct sg_mqtt_cfg c;

	(void)state;
	c = base_cfg();
	c.brokers = mixed;
	c.n_brokers = 2;
	expect_error(&c, "t.conf:3: ", "mixes mqtt:// and mqtts://");

	c = base_cfg();
	c.client_id = "gw-\xff"; /* not UTF-8 */
	expect_error(&c, "t.conf:4: ", "refuses the client id");

	c = base_cfg();
	c.username = "user-\xc3"; /* a cut UTF-8 sequence */
	expect_error(&c, "t.conf:5: ", "refuses the user name or password");

	c = base_cfg(); /* the defaults have no line of their own: the mqtt group's */
	c.where[SG_MQTT_KEY_CLIENT_ID] = NULL;
	c.client_id = "\xfe";
	expect_error(&c, "t.conf:2: ", "refuses the client id");
}

static void test_tls_files(void **state)
{
	struct sg_mqtt_cfg c = base_cfg();

	(void)state;
	c.brokers = tls;
	c.n_brokers = 2;
	c.ca_file = junk;
	expect_error(&c, "t.conf:7: ", "no CA certificate can be loaded from it");

	c.where[SG_MQTT_KEY_CA_FILE] = NULL; /* a TLS key without a line of its own: its group's */
	expect_error(&c, "t.conf:6: ", "\"ca_file\"");

	c.ca_file = NULL;
	c.ca_path = emptydir; /* a directory is searched at verification time: accepted here */
	c.tls_insecure = true;
	{
		struct mqtt_setup_report rep;
		assert_int_equal(mqtt_setup_check(&c, WILL, &rep), 0);
		assert_non_null(strstr(rep.tls, emptydir));
		assert_non_null(strstr(rep.tls, "host name NOT CHECKED (insecure = true)"));
		assert_int_equal(strncmp(rep.warning, "t.conf:8: tls.insecure = true: ", 31), 0);
	}
}

/* No CA in the config: OpenSSL's default paths, here pointed at an empty file and directory. */
static void test_system_store(void **state)
{
	struct sg_mqtt_cfg c = base_cfg();
	struct mqtt_setup_report rep;
	char nofile[PATH_MAX + 16];

	(void)state;
	c.brokers = tls;
	c.n_brokers = 1;
	snprintf(nofile, sizeof(nofile), "%s/none.pem", tmpdir);
	setenv("SSL_CERT_FILE", nofile, 1);
	setenv("SSL_CERT_DIR", emptydir, 1);
	expect_error(&c, "t.conf:3: ", "the system trust store, but it has no certificate");
	assert_int_equal(mqtt_setup_check(&c, WILL, &rep), -EINVAL);
	assert_non_null(strstr(rep.error, nofile));

	/* a directory with anything in it counts: OpenSSL searches it only at verification time */
	setenv("SSL_CERT_DIR", tmpdir, 1);
	assert_int_equal(mqtt_setup_check(&c, WILL, &rep), 0);
	assert_non_null(strstr(rep.tls, "system trust store"));
	assert_non_null(strstr(rep.tls, "host name checked"));
	assert_string_equal(rep.warning, "");
	unsetenv("SSL_CERT_FILE");
	unsetenv("SSL_CERT_DIR");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_ok),
		cmocka_unit_test(test_refused_settings),
		cmocka_unit_test(test_tls_files),
		cmocka_unit_test(test_system_store),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
