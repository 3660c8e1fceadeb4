/* SPDX-License-Identifier: MIT */
/*
 * test_cloud.c — Azure IoT Hub credentials (gateway/cloud.c) against values
 * computed apart from it, with Python's hmac, base64 and urllib.parse.quote
 * (safe=""), following Microsoft's description of a SAS token:
 *   sr = quote("myhub.azure-devices.net/devices/dev 1/é"); se = 1800000000
 *   sig = quote(b64(HMAC-SHA256(b64decode(KEY), sr + "\n" + se)))
 * The integration test (tests/integration/test_cloud.py) checks the same at
 * the other end of a TLS connection, with a random key.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/cloud.h"

#define KEY_B64 "c2Vuc29yZ2F0ZSB0ZXN0IGtleSwgMzIgYnl0ZXMgbG9uZyE="
#define KEY_RAW "sensorgate test key, 32 bytes long!"

static void test_key_decode(void **state)
{
	static const char *const bad[] = {"", "abc", "ab=c", "a===", "ab!d", "YWJj\n", "====", NULL};
	unsigned char *k = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(cloud_key_decode(KEY_B64, &k, &n), 0);
	assert_int_equal(n, strlen(KEY_RAW));
	assert_memory_equal(k, KEY_RAW, n);
	free(k);
	assert_int_equal(cloud_key_decode("YWI=", &k, &n), 0); /* "ab": one padding byte less */
	assert_int_equal(n, 2);
	free(k);
	for (size_t i = 0; bad[i]; i++)
		assert_int_equal(cloud_key_decode(bad[i], &k, &n), -EINVAL);
}

static void test_url_encode(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(cloud_url_encode("a-b_c.d~e/f g+h=%", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "a-b_c.d~e%2Ff%20g%2Bh%3D%25");
	assert_int_equal(cloud_url_encode("/////", buf, 15), -ENOBUFS); /* 15 bytes + NUL */
	assert_int_equal(cloud_url_encode("////", buf, 13), 0);
}

static void test_username(void **state)
{
	char buf[128];

	(void)state;
	assert_int_equal(cloud_azure_username("myhub.azure-devices.net", "pi-1", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "myhub.azure-devices.net/pi-1/?api-version=2021-04-12");
	assert_int_equal(cloud_azure_username("myhub.azure-devices.net", "pi-1", buf, 20), -ENOBUFS);
	assert_string_equal(buf, "");
}

static void test_sas(void **state)
{
	unsigned char *k = NULL;
	size_t n = 0;
	char tok[CLOUD_SAS_MAX];

	(void)state;
	assert_int_equal(cloud_key_decode(KEY_B64, &k, &n), 0);
	assert_int_equal(cloud_azure_sas("myhub.azure-devices.net", "dev 1/\xc3\xa9", k, n, 1800000000, tok, sizeof(tok)),
	                 0);
	assert_string_equal(tok, "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev%201%2F%C3%A9"
	                         "&sig=jlr%2BwL%2FyygnyEHzG%2FK%2BSiVSBxaX9HDQUMqM2qHSFsyQ%3D&se=1800000000");
	/* another expiry, another signature */
	assert_int_equal(cloud_azure_sas("myhub.azure-devices.net", "dev 1/\xc3\xa9", k, n, 1800000001, tok, sizeof(tok)),
	                 0);
	assert_null(strstr(tok, "jlr%2BwL"));
	assert_int_equal(cloud_azure_sas("myhub.azure-devices.net", "dev", k, n, 1800000000, tok, 40), -ENOBUFS);
	assert_string_equal(tok, "");
	free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_decode),
		cmocka_unit_test(test_url_encode),
		cmocka_unit_test(test_username),
		cmocka_unit_test(test_sas),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
