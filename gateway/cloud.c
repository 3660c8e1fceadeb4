/* SPDX-License-Identifier: MIT */
/*
 * cloud.c — Azure IoT Hub's credentials (see cloud.h).
 *
 * Where the facts come from (read 2026-12, Microsoft Learn):
 * - "Control access to IoT Hub using Shared Access Signatures"
 *   (learn.microsoft.com/azure/iot-hub/authenticate-authorization-sas, formerly
 *   iot-hub-dev-guide-sas): a token is "SharedAccessSignature" followed by the
 *   fields sig, se, skn and sr joined by '&', in any order; skn (the policy
 *   name) is left out for a device's own key. sr is the URL-encoded resource
 *   URI, for a device "{hub host name}/devices/{device id}"; se is the expiry
 *   in seconds since the epoch, as decimal text; sig is the URL-encoded base64
 *   of HMAC-SHA256 over "{URL-encoded resource URI}\n{expiry}", keyed with the
 *   base64-decoded device key. That page asks for a lower-case encoding of a
 *   lower-case URI; Microsoft's device SDKs encode the URI as it is, upper-case
 *   hex (RFC 3986 §2.1's recommendation), and so does this file: host names
 *   are lower case anyway, and device ids are case-sensitive.
 * - "Communicate with an IoT hub using the MQTT protocol"
 *   (learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub): client id =
 *   device id; user name "{hub host name}/{device id}/?api-version=2021-04-12";
 *   password the SAS token.
 */
#include "cloud.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

/* SHA-256's output: FIPS 180-4 §6.2 */
#define SHA256_BYTES 32

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int cloud_key_decode(const char *b64, unsigned char **ret, size_t *ret_len)
{
	size_t n = strlen(b64), pad = 0;
	unsigned char *out;
	int got;

	if (n == 0 || n % 4 != 0 || n > 4096)
		return -EINVAL;
	while (pad < 2 && b64[n - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < n - pad; i++)
		if (!b64_char(b64[i]))
			return -EINVAL;
	out = malloc(n / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	got = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
	if (got < 0 || (size_t)got < pad) {
		free(out);
		return -EINVAL;
	}
	*ret = out;
	*ret_len = (size_t)got - pad; /* EVP_DecodeBlock counts the padding as zero bytes */
	return 0;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
	       c == '_' || c == '~';
}

int cloud_url_encode(const char *s, char *buf, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (o + 4 > len) {
			if (len)
				buf[0] = '\0';
			return -ENOBUFS;
		}
		if (unreserved(*p)) {
			buf[o++] = (char)*p;
		} else {
			buf[o++] = '%';
			buf[o++] = hex[*p >> 4];
			buf[o++] = hex[*p & 15];
		}
	}
	if (o >= len)
		return -ENOBUFS;
	buf[o] = '\0';
	return 0;
}

int cloud_azure_username(const char *hub, const char *device_id, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s/?api-version=%s", hub, device_id, CLOUD_AZURE_API_VERSION);

	if (n < 0 || (size_t)n >= len) {
		if (len)
			buf[0] = '\0';
		return -ENOBUFS;
	}
	return 0;
}

int cloud_azure_sas(const char *hub, const char *device_id, const unsigned char *key, size_t key_len,
                    int64_t expiry, char *buf, size_t len)
{
	char uri[512], sr[CLOUD_SAS_MAX / 2], to_sign[CLOUD_SAS_MAX / 2 + 32];
	unsigned char mac[SHA256_BYTES];
	unsigned int mac_len = 0;
	char sig64[4 * ((SHA256_BYTES + 2) / 3) + 1], sig[3 * sizeof(sig64)];
	int n;

	if (len)
		buf[0] = '\0';
	n = snprintf(uri, sizeof(uri), "%s/devices/%s", hub, device_id);
	if (n < 0 || (size_t)n >= sizeof(uri) || cloud_url_encode(uri, sr, sizeof(sr)) < 0)
		return -ENOBUFS;
	n = snprintf(to_sign, sizeof(to_sign), "%s\n%" PRId64, sr, expiry);
	if (n < 0 || (size_t)n >= sizeof(to_sign))
		return -ENOBUFS;
	if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)to_sign, (size_t)n, mac, &mac_len) ||
	    mac_len != SHA256_BYTES)
		return -EIO;
	EVP_EncodeBlock((unsigned char *)sig64, mac, (int)mac_len);
	if (cloud_url_encode(sig64, sig, sizeof(sig)) < 0)
		return -ENOBUFS;
	n = snprintf(buf, len, "SharedAccessSignature sr=%s&sig=%s&se=%" PRId64, sr, sig, expiry);
	if (n < 0 || (size_t)n >= len) {
		if (len)
			buf[0] = '\0';
		return -ENOBUFS;
	}
	return 0;
}
