/* SPDX-License-Identifier: MIT */
/*
 * cloud.h — what a cloud service wants on the wire: Azure IoT Hub's
 * credentials (user name, SAS token from the device key) and topics.
 *
 * Pure functions: no clock, no files, no logging; the caller passes the
 * time and the key and logs once. Everything written goes into the caller's
 * buffer, "" on failure.
 */
#ifndef SG_CLOUD_H
#define SG_CLOUD_H

#include <stddef.h>
#include <stdint.h>

/* The IoT Hub MQTT API version sensorgate was written against (it goes into the user name). */
#define CLOUD_AZURE_API_VERSION "2021-04-12"

/* Room for a SAS token: host (<= 253), device id (<= 128) both URL-encoded (x3), signature, expiry. */
#define CLOUD_SAS_MAX 1536

/*
 * The base64 text B64 (RFC 4648 §4, padded, no line breaks) decoded into
 * *RET (malloc'd, the caller frees and should clear it) of *RET_LEN bytes.
 * 0, -EINVAL for text that is not base64, -ENOMEM.
 */
int cloud_key_decode(const char *b64, unsigned char **ret, size_t *ret_len);

/* S percent-encoded (RFC 3986 §2: unreserved characters kept, the rest %XX in upper case) into BUF. 0 or -ENOBUFS. */
int cloud_url_encode(const char *s, char *buf, size_t len);

/* "HUB/DEVICE_ID/?api-version=..." into BUF. 0 or -ENOBUFS. */
int cloud_azure_username(const char *hub, const char *device_id, char *buf, size_t len);

/*
 * A device-scoped SAS token for DEVICE_ID on HUB, signed with KEY (the
 * decoded device key), valid until EXPIRY (seconds since the epoch), into
 * BUF. 0, -ENOBUFS, or -EIO when OpenSSL's HMAC fails.
 */
int cloud_azure_sas(const char *hub, const char *device_id, const unsigned char *key, size_t key_len,
                    int64_t expiry, char *buf, size_t len);

#endif
