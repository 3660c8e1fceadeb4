/* SPDX-License-Identifier: MIT */
/*
 * mqtt_setup.c — the mqtt configuration applied to a libmosquitto client,
 * and the check shared by the start and --check (see mqtt_setup.h).
 *
 * libmosquitto 2.0.11 facts this relies on (its lib/options.c, lib/net_mosq.c):
 * - mosquitto_tls_set() refuses NULL for both cafile and capath, and only
 *   checks that the files open; their contents are read by OpenSSL at each
 *   connect (net__init_ssl_ctx), where a bad file fails every attempt.
 * - MOSQ_OPT_TLS_USE_OS_CERTS alone turns TLS on: the connect then makes the
 *   SSL_CTX, calls SSL_CTX_set_default_verify_paths() and verifies the peer
 *   (SSL_VERIFY_PEER plus its host-name check) as with a CA file.
 * OpenSSL's default paths honour $SSL_CERT_FILE and $SSL_CERT_DIR (read with
 * secure_getenv: crypto/x509/by_file.c, by_dir.c), else the paths built in.
 */
#include "mqtt_setup.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define TLS_MIN_VERSION "tlsv1.2"

/* Where key K was set; a TLS key not in the file points at its group, anything else at the mqtt group. */
static const char *where(const struct sg_mqtt_cfg *cfg, enum sg_mqtt_key k)
{
	if (cfg->where[k])
		return cfg->where[k];
	if (k >= SG_MQTT_KEY_CA_FILE && cfg->where[SG_MQTT_KEY_TLS])
		return cfg->where[SG_MQTT_KEY_TLS];
	return cfg->where[SG_MQTT_KEY_GROUP] ? cfg->where[SG_MQTT_KEY_GROUP] : "mqtt";
}

__attribute__((format(printf, 4, 5)))
static int fail(struct mqtt_setup_report *rep, const struct sg_mqtt_cfg *cfg, enum sg_mqtt_key k, const char *fmt,
                ...)
{
	char msg[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(rep->error, sizeof(rep->error), "%s: %s", where(cfg, k), msg);
	return -EINVAL;
}

/* 1 when every broker is mqtts://, 0 when none is, -1 for a mix (config refuses that too). */
static int tls_brokers(const struct sg_mqtt_cfg *cfg)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_brokers; i++)
		n += strncmp(cfg->brokers[i], "mqtts://", 8) == 0;
	return n == 0 ? 0 : n == cfg->n_brokers ? 1 : -1;
}

/* The system trust store, as OpenSSL's SSL_CTX_set_default_verify_paths() finds it. */
static const char *store_file(void)
{
	const char *e = secure_getenv(X509_get_default_cert_file_env());
	return e ? e : X509_get_default_cert_file();
}

static const char *store_dir(void)
{
	const char *e = secure_getenv(X509_get_default_cert_dir_env());
	return e ? e : X509_get_default_cert_dir();
}

/* OpenSSL's reason for the last failure, for messages. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e ? ERR_reason_error_string(e) : NULL;
	return s ? s : "no reason given";
}

/* A key file asking for a passphrase is refused: the daemon has nobody to ask (OpenSSL would prompt on a tty). */
static int no_passphrase(char *buf, int size, int rwflag, void *ud)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)ud;
	return -1;
}

/*
 * Whether the default verify paths CTX was given hold a certificate: the
 * file is loaded at once, the directory is searched at verification time,
 * so for it any entry counts ($SSL_CERT_DIR may list several, ':'-separated).
 */
static bool store_usable(SSL_CTX *ctx)
{
	const STACK_OF(X509_OBJECT) *objs;
	char dirs[1024], *save = NULL;

	SSL_CTX_set_default_verify_paths(ctx);
	objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
	if (objs && sk_X509_OBJECT_num(objs) > 0)
		return true;
	snprintf(dirs, sizeof(dirs), "%s", store_dir());
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		DIR *dir = opendir(d);
		struct dirent *e;
		bool any = false;

		if (!dir)
			continue;
		while (!any && (e = readdir(dir)))
			any = e->d_name[0] != '.';
		closedir(dir);
		if (any)
			return true;
	}
	return false;
}

/* Load every TLS file as the connect will (and the system store when no CA is given). 0 or -errno with REP->error. */
static int check_tls_files(const struct sg_mqtt_cfg *cfg, struct mqtt_setup_report *rep)
{
	SSL_CTX *ctx;
	int r = 0;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		snprintf(rep->error, sizeof(rep->error), "%s: cannot make a TLS context: %s",
		         where(cfg, SG_MQTT_KEY_TLS), ssl_reason());
		return -ENOMEM;
	}
	if (cfg->ca_file && SSL_CTX_load_verify_file(ctx, cfg->ca_file) != 1)
		r = fail(rep, cfg, SG_MQTT_KEY_CA_FILE, "\"ca_file\" %s: no CA certificate can be loaded from it (%s)",
		         cfg->ca_file, ssl_reason());
	else if (cfg->ca_path && SSL_CTX_load_verify_dir(ctx, cfg->ca_path) != 1)
		r = fail(rep, cfg, SG_MQTT_KEY_CA_PATH, "\"ca_path\" %s cannot be used (%s)", cfg->ca_path, ssl_reason());
	else if (!cfg->ca_file && !cfg->ca_path && !store_usable(ctx))
		r = fail(rep, cfg, SG_MQTT_KEY_BROKERS,
		         "%s: without \"ca_file\" or \"ca_path\" in mqtt.tls the broker's certificate is checked against "
		         "the system trust store, but it has no certificate (%s, %s): install the ca-certificates "
		         "package, or set tls.ca_file",
		         cfg->brokers[0], store_file(), store_dir());
	else if (cfg->cert_file && SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1)
		r = fail(rep, cfg, SG_MQTT_KEY_CERT_FILE, "\"cert_file\" %s: no certificate can be loaded from it (%s)",
		         cfg->cert_file, ssl_reason());
	if (r == 0 && cfg->key_file) {
		SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
		/* OpenSSL checks the key against the certificate as it loads it (or later, in check_private_key) */
		if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1 &&
		    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
			r = fail(rep, cfg, SG_MQTT_KEY_KEY_FILE,
			         "\"key_file\" %s: no private key can be loaded from it (%s; keys protected by a passphrase "
			         "are not supported)",
			         cfg->key_file, ssl_reason());
		else if (SSL_CTX_check_private_key(ctx) != 1)
			r = fail(rep, cfg, SG_MQTT_KEY_KEY_FILE, "\"key_file\" %s is not the key of \"cert_file\" %s",
			         cfg->key_file, cfg->cert_file);
	}
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return r;
}

/* The --check line on TLS, and the warning about insecure = true. */
static void describe_tls(const struct sg_mqtt_cfg *cfg, struct mqtt_setup_report *rep)
{
	size_t o = 0, len = sizeof(rep->tls);
	char *t = rep->tls;

	if (cfg->ca_file || cfg->ca_path)
		o += (size_t)snprintf(t + o, len - o, "TLS 1.2+, broker certificate from a CA in %s%s%s",
		                      cfg->ca_file ? cfg->ca_file : "", cfg->ca_file && cfg->ca_path ? " or " : "",
		                      cfg->ca_path ? cfg->ca_path : "");
	else
		o += (size_t)snprintf(t + o, len - o,
		                      "TLS 1.2+, broker certificate from a CA of the system trust store (%s, %s)",
		                      store_file(), store_dir());
	if (o < len)
		o += (size_t)snprintf(t + o, len - o, "; host name %s", cfg->tls_insecure ? "NOT CHECKED (insecure = true)"
		                                                                            : "checked");
	if (o < len && cfg->cert_file)
		o += (size_t)snprintf(t + o, len - o, "; client certificate %s", cfg->cert_file);
	if (o < len && cfg->tls_alpn)
		snprintf(t + o, len - o, "; ALPN %s", cfg->tls_alpn);
	if (cfg->tls_insecure)
		snprintf(rep->warning, sizeof(rep->warning),
		         "%s: tls.insecure = true: the broker's host name is not checked against its certificate, so "
		         "any server holding a certificate from a trusted CA can pose as the broker; use it for tests only",
		         where(cfg, SG_MQTT_KEY_INSECURE));
}

int mqtt_setup_level(int protocol)
{
	return protocol == 5 ? MQTT_PROTOCOL_V5 : protocol == 3 ? MQTT_PROTOCOL_V31 : MQTT_PROTOCOL_V311;
}

int mqtt_setup_client(struct mosquitto *mosq, const struct sg_mqtt_cfg *cfg, const char *will_topic,
                      struct mqtt_setup_report *rep)
{
	int tls = tls_brokers(cfg);
	int r;

	if (tls < 0)
		return fail(rep, cfg, SG_MQTT_KEY_BROKERS, "\"brokers\" mixes mqtt:// and mqtts://");
	mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, mqtt_setup_level(cfg->protocol));
	r = will_topic ? mosquitto_will_set(mosq, will_topic, (int)strlen(config_will_payload(cfg)), config_will_payload(cfg),
	                                    1, true)
	               : MOSQ_ERR_SUCCESS;
	if (r != MOSQ_ERR_SUCCESS)
		return fail(rep, cfg, SG_MQTT_KEY_GROUP, "libmosquitto refuses the Last Will on \"%s\": %s", will_topic,
		            mosquitto_strerror(r));
	/* MQTT 5 allows a password without a user name (3.1.1 does not: config refuses it there). */
	if (cfg->username || cfg->password) {
		r = mosquitto_username_pw_set(mosq, cfg->username, cfg->password);
		if (r != MOSQ_ERR_SUCCESS)
			return fail(rep, cfg, cfg->username ? SG_MQTT_KEY_USERNAME : SG_MQTT_KEY_PASSWORD_FILE,
			            "libmosquitto refuses the user name or password: %s", mosquitto_strerror(r));
	}
	if (!tls)
		return 0;
	if (cfg->ca_file || cfg->ca_path) {
		r = mosquitto_tls_set(mosq, cfg->ca_file, cfg->ca_path, cfg->cert_file, cfg->key_file, NULL);
	} else {
		r = mosquitto_int_option(mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
		/* A client certificate can only come through mosquitto_tls_set(), which wants a CA path: give it
		 * OpenSSL's default directory, part of the same system store. */
		if (r == MOSQ_ERR_SUCCESS && cfg->cert_file)
			r = mosquitto_tls_set(mosq, NULL, store_dir(), cfg->cert_file, cfg->key_file, NULL);
	}
	if (r != MOSQ_ERR_SUCCESS)
		return fail(rep, cfg, SG_MQTT_KEY_TLS, "libmosquitto refuses the TLS settings: %s", mosquitto_strerror(r));
	r = mosquitto_tls_opts_set(mosq, SSL_VERIFY_PEER, TLS_MIN_VERSION, NULL);
	if (r == MOSQ_ERR_SUCCESS)
		r = mosquitto_tls_insecure_set(mosq, cfg->tls_insecure);
	if (r != MOSQ_ERR_SUCCESS)
		return fail(rep, cfg, SG_MQTT_KEY_TLS, "libmosquitto refuses the TLS options: %s", mosquitto_strerror(r));
	/* libmosquitto 2.0.11 (lib/net_mosq.c) offers it with SSL_CTX_set_alpn_protos() at each connect */
	if (cfg->tls_alpn && (r = mosquitto_string_option(mosq, MOSQ_OPT_TLS_ALPN, cfg->tls_alpn)) != MOSQ_ERR_SUCCESS)
		return fail(rep, cfg, SG_MQTT_KEY_ALPN, "libmosquitto refuses the ALPN protocol \"%s\": %s", cfg->tls_alpn,
		            mosquitto_strerror(r));
	return 0;
}

int mqtt_setup_check(const struct sg_mqtt_cfg *cfg, const char *will_topic, struct mqtt_setup_report *rep)
{
	struct mosquitto *mosq;
	int r;

	memset(rep, 0, sizeof(*rep));
	r = tls_brokers(cfg);
	if (r < 0)
		return fail(rep, cfg, SG_MQTT_KEY_BROKERS, "\"brokers\" mixes mqtt:// and mqtts://");
	if (r > 0) {
		r = check_tls_files(cfg, rep);
		if (r < 0)
			return r;
		describe_tls(cfg, rep);
	}
	mosquitto_lib_init();
	errno = 0;
	mosq = mosquitto_new(cfg->client_id, cfg->clean_session, NULL);
	if (!mosq && errno == ENOMEM) {
		snprintf(rep->error, sizeof(rep->error), "%s: out of memory", where(cfg, SG_MQTT_KEY_GROUP));
		r = -ENOMEM;
	} else if (!mosq) {
		r = fail(rep, cfg, SG_MQTT_KEY_CLIENT_ID, "libmosquitto refuses the client id \"%s\" (it must be UTF-8)",
		         cfg->client_id);
	} else {
		r = mqtt_setup_client(mosq, cfg, will_topic, rep);
		mosquitto_destroy(mosq);
	}
	mosquitto_lib_cleanup();
	return r;
}
