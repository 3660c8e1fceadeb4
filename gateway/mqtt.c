/* SPDX-License-Identifier: MIT */
/*
 * mqtt.c — libmosquitto in external-loop mode, with our own reconnect.
 *
 * States: BACKOFF (waiting to try) -> PROBE (our non-blocking TCP connect to
 * the broker, bounded) -> CONNECTING (libmosquitto's socket: TLS handshake,
 * CONNECT/CONNACK, bounded) -> CONNECTED. Any failure goes to the next
 * broker in the list; after a full round the wait doubles (with jitter) up
 * to reconnect_max. A failure is logged when it first happens or when its
 * reason changes, so a wrong password does not flood the journal.
 * See mqtt.h for why the probe exists.
 */
#include "mqtt.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mqtt_protocol.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "clock.h"
#include "log.h"

#define PROBE_TIMEOUT_US   (5 * 1000000ULL)   /* TCP connect to a silent broker */
#define CONNACK_TIMEOUT_US (15 * 1000000ULL)  /* TLS handshake + CONNACK */
#define SESSION_EXPIRY_S   (7 * 24 * 3600)    /* MQTT 5: keep our session a week */
#define ONLINE_PAYLOAD     "online"
#define OFFLINE_PAYLOAD    "offline"

enum state {
	ST_IDLE = 0,
	ST_BACKOFF,
	ST_PROBE,
	ST_CONNECTING,
	ST_CONNECTED,
	ST_SHUTDOWN,
};

struct sg_mqtt {
	const struct sg_mqtt_cfg *cfg;
	char *status_topic;
	struct sg_mqtt_handlers h;
	void *ud;
	struct mosquitto *mosq;

	enum state state;
	size_t broker;         /* index into cfg->brokers being tried / used */
	size_t tried;          /* brokers tried in this round */
	unsigned rounds;       /* failed rounds since the last success */
	uint64_t deadline;     /* of the current state */
	uint64_t next_misc;    /* next mosquitto_loop_misc() */
	int probe_fd;
	unsigned fd_gen;       /* bumped whenever the polled socket changes */
	char host[256];
	int port;
	int broker_receive_max;
	bool stopping;         /* mqtt_shutdown() runs: a disconnect is expected */

	char reason[256];      /* why the current attempt failed */
	char logged[256];      /* last failure reason logged */
};

static void set_watch(struct sg_mqtt *m)
{
	if (m->h.watch)
		m->h.watch(m->ud);
}

int mqtt_parse_url(const char *url, bool *ret_tls, char *host, size_t hostlen, int *ret_port)
{
	const char *p, *end, *colon = NULL;
	bool tls;
	int port;
	size_t n;

	if (strncmp(url, "mqtt://", 7) == 0) {
		tls = false;
		p = url + 7;
	} else if (strncmp(url, "mqtts://", 8) == 0) {
		tls = true;
		p = url + 8;
	} else {
		return -EINVAL;
	}
	port = tls ? 8883 : 1883;
	if (*p == '[') {
		end = strchr(p, ']');
		if (!end)
			return -EINVAL;
		n = (size_t)(end - p - 1);
		if (n == 0 || n >= hostlen)
			return -EINVAL;
		memcpy(host, p + 1, n);
		host[n] = '\0';
		p = end + 1;
		if (*p == ':')
			colon = p;
		else if (*p && strcmp(p, "/") != 0)
			return -EINVAL;
	} else {
		end = p + strcspn(p, ":/");
		n = (size_t)(end - p);
		if (n == 0 || n >= hostlen)
			return -EINVAL;
		memcpy(host, p, n);
		host[n] = '\0';
		if (*end == ':')
			colon = end;
		else if (*end && strcmp(end, "/") != 0)
			return -EINVAL;
	}
	if (colon) {
		char *e;
		long v = strtol(colon + 1, &e, 10);
		if (e == colon + 1 || (*e && strcmp(e, "/") != 0) || v < 1 || v > 65535)
			return -EINVAL;
		port = (int)v;
	}
	*ret_tls = tls;
	*ret_port = port;
	return 0;
}

/* mosquitto_strerror() of 2.0.11 does not know its own keepalive code. */
static const char *mosq_reason(int rc, bool connecting)
{
	if (rc == MOSQ_ERR_KEEPALIVE)
		return connecting ? "no CONNACK within the keepalive interval" : "keepalive timeout";
	return mosquitto_strerror(rc);
}

/* ---- callbacks from libmosquitto ------------------------------------------------------------ */

static void on_log(struct mosquitto *mosq, void *ud, int level, const char *str)
{
	struct sg_mqtt *m = ud;
	SSL *ssl;
	long v;

	if (level == MOSQ_LOG_ERR || level == MOSQ_LOG_WARNING) {
		/* The certificate verdict says more than OpenSSL's "certificate verify failed". */
		ssl = mosquitto_ssl_get(mosq);
		if (strstr(str, "host name verification failed"))
			snprintf(m->reason, sizeof(m->reason),
			         "TLS: certificate verify failed: host name mismatch (the certificate is not for %.100s)",
			         m->host);
		else if (strstr(m->reason, "host name mismatch"))
			; /* keep the precise verdict over OpenSSL's generic follow-up */
		else if (ssl && (v = SSL_get_verify_result(ssl)) != X509_V_OK)
			snprintf(m->reason, sizeof(m->reason), "TLS: certificate verify failed: %s",
			         X509_verify_cert_error_string(v));
		else if (m->state == ST_CONNECTING)
			snprintf(m->reason, sizeof(m->reason), "%s", str);
	}
	log_debug("mqtt: libmosquitto: %s", str);
}

static void on_connect(struct mosquitto *mosq, void *ud, int rc, int flags, const mosquitto_property *props)
{
	struct sg_mqtt *m = ud;
	uint16_t rmax = 0;
	int r;
	(void)mosq;

	if (rc != 0) {
		snprintf(m->reason, sizeof(m->reason), "connection refused: %s",
		         m->cfg->protocol == 5 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc));
		return; /* libmosquitto closes the socket and calls on_disconnect */
	}
	m->state = ST_CONNECTED;
	m->rounds = 0;
	m->tried = 0;
	m->logged[0] = '\0';
	m->broker_receive_max = 65535;
	if (props && mosquitto_property_read_int16(props, MQTT_PROP_RECEIVE_MAXIMUM, &rmax, false))
		m->broker_receive_max = rmax;
	log_notice("mqtt: connected to %s (MQTT %s%s)", m->cfg->brokers[m->broker],
	           m->cfg->protocol == 5 ? "5" : "3.1.1", (flags & 1) ? ", session resumed" : "");

	r = mosquitto_publish(m->mosq, NULL, m->status_topic, (int)strlen(ONLINE_PAYLOAD), ONLINE_PAYLOAD, 1,
	                      true);
	if (r != MOSQ_ERR_SUCCESS)
		log_warning("mqtt: cannot publish online status: %s", mosquitto_strerror(r));
	if (m->h.connected)
		m->h.connected(m->ud, flags & 1);
}

static void on_disconnect(struct mosquitto *mosq, void *ud, int rc, const mosquitto_property *props)
{
	struct sg_mqtt *m = ud;
	(void)mosq;
	(void)props;

	m->fd_gen++;
	if (m->stopping) {
		log_info("mqtt: disconnected from %s", m->cfg->brokers[m->broker]);
		return;
	}
	if (m->state == ST_CONNECTED) {
		log_warning("mqtt: disconnected from %s: %s", m->cfg->brokers[m->broker],
		            mosq_reason(rc, false));
		m->state = ST_IDLE;
		if (m->h.disconnected)
			m->h.disconnected(m->ud);
		m->reason[0] = '\0';
		m->logged[0] = '\0';
		m->tried = 0;
		m->broker = 0; /* back to the preferred broker */
		m->rounds = 0;
		/* first retry soon; from then on exponential */
		m->state = ST_BACKOFF;
		m->deadline = now_mono_us() + (uint64_t)(m->cfg->reconnect_min_s * 1e6 / 2);
	} else if (m->state == ST_CONNECTING) {
		if (!m->reason[0])
			snprintf(m->reason, sizeof(m->reason), "%s", mosq_reason(rc, true));
		m->state = ST_IDLE; /* fail_attempt() runs after the loop call returns */
	}
}

static void on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
	struct sg_mqtt *m = ud;
	struct sg_mqtt_msg x = {
		.topic = msg->topic,
		.payload = msg->payload,
		.len = (size_t)msg->payloadlen,
		.qos = msg->qos,
		.retain = msg->retain,
		.props = props,
	};
	(void)mosq;
	if (m->h.message)
		m->h.message(m->ud, &x);
}

static void on_publish(struct mosquitto *mosq, void *ud, int mid, int reason, const mosquitto_property *props)
{
	struct sg_mqtt *m = ud;
	(void)mosq;
	(void)props;
	if (reason >= 0x80 && m->h.refused) {
		m->h.refused(m->ud, mid, reason);
		return;
	}
	if (reason >= 0x80)
		log_warning("mqtt: broker rejected message %d: %s", mid, mosquitto_reason_string(reason));
	if (m->h.published)
		m->h.published(m->ud, mid);
}

/* ---- connection state machine -------------------------------------------------------------- */

static void close_probe(struct sg_mqtt *m)
{
	if (m->probe_fd >= 0) {
		close(m->probe_fd);
		m->fd_gen++;
	}
	m->probe_fd = -1;
}

static uint64_t backoff_us(const struct sg_mqtt *m)
{
	double base = m->cfg->reconnect_min_s;
	for (unsigned i = 1; i < m->rounds && base < m->cfg->reconnect_max_s; i++)
		base *= 2;
	if (base > m->cfg->reconnect_max_s)
		base = m->cfg->reconnect_max_s;
	/* "equal jitter": half fixed, half random, so many gateways do not reconnect in step */
	return (uint64_t)(base * 1e6 * (0.5 + 0.5 * ((double)random() / RAND_MAX)));
}

static void fail_attempt(struct sg_mqtt *m)
{
	const char *url = m->cfg->brokers[m->broker];
	uint64_t delay;

	close_probe(m);
	if (!m->reason[0])
		snprintf(m->reason, sizeof(m->reason), "unknown error");
	if (strcmp(m->reason, m->logged) != 0) {
		log_warning("mqtt: cannot connect to %s: %s; retrying", url, m->reason);
		snprintf(m->logged, sizeof(m->logged), "%s", m->reason);
	} else {
		log_debug("mqtt: cannot connect to %s: %s", url, m->reason);
	}
	m->reason[0] = '\0';
	m->broker = (m->broker + 1) % m->cfg->n_brokers;
	m->tried++;
	if (m->tried >= m->cfg->n_brokers) {
		m->tried = 0;
		m->rounds++;
		delay = backoff_us(m);
	} else {
		delay = 100000; /* next broker in the list: almost at once */
	}
	m->state = ST_BACKOFF;
	m->deadline = now_mono_us() + delay;
}

static void start_attempt(struct sg_mqtt *m)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
	struct addrinfo *ai = NULL;
	char portstr[8];
	bool tls;
	int r, fd;

	m->reason[0] = '\0';
	if (mqtt_parse_url(m->cfg->brokers[m->broker], &tls, m->host, sizeof(m->host), &m->port) < 0) {
		snprintf(m->reason, sizeof(m->reason), "invalid broker URL");
		fail_attempt(m);
		return;
	}
	snprintf(portstr, sizeof(portstr), "%d", m->port);
	/* getaddrinfo blocks on DNS; IP literals and /etc/hosts names answer at once. */
	r = getaddrinfo(m->host, portstr, &hints, &ai);
	if (r != 0) {
		snprintf(m->reason, sizeof(m->reason), "cannot resolve %.128s: %s", m->host, gai_strerror(r));
		fail_attempt(m);
		return;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(m->reason, sizeof(m->reason), "socket: %s", strerror(errno));
		freeaddrinfo(ai);
		fail_attempt(m);
		return;
	}
	r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (r < 0 && errno != EINPROGRESS) {
		snprintf(m->reason, sizeof(m->reason), "%s", strerror(errno));
		close(fd);
		fail_attempt(m);
		return;
	}
	m->probe_fd = fd;
	m->fd_gen++;
	m->state = ST_PROBE;
	m->deadline = now_mono_us() + PROBE_TIMEOUT_US;
	if (r == 0)
		mqtt_io(m, POLLOUT); /* connected at once (loopback) */
}

/* The broker answered the probe: now let libmosquitto connect for real. */
static void finish_probe(struct sg_mqtt *m)
{
	mosquitto_property *props = NULL;
	int r;

	close_probe(m);
	if (m->cfg->protocol == 5 && !m->cfg->clean_session)
		mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, SESSION_EXPIRY_S);
	m->state = ST_CONNECTING;
	m->deadline = now_mono_us() + CONNACK_TIMEOUT_US;
	m->fd_gen++;
	r = mosquitto_connect_bind_v5(m->mosq, m->host, m->port, m->cfg->keepalive, NULL, props);
	mosquitto_property_free_all(&props);
	if (r != MOSQ_ERR_SUCCESS) {
		if (!m->reason[0]) /* on_log may already know better (the certificate verdict) */
			snprintf(m->reason, sizeof(m->reason), "%s",
			         r == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(r));
		fail_attempt(m);
		return;
	}
	m->next_misc = now_mono_us() + 1000000;
}

struct sg_mqtt *mqtt_new(const struct sg_mqtt_cfg *cfg, const char *status_topic,
                         const struct sg_mqtt_handlers *h, void *ud)
{
	struct sg_mqtt *m;
	bool any_tls = false, any_plain = false;
	char host[256];
	int port, r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->cfg = cfg;
	m->h = *h;
	m->ud = ud;
	m->probe_fd = -1;
	m->status_topic = strdup(status_topic);
	if (!m->status_topic)
		goto err_free;

	for (size_t i = 0; i < cfg->n_brokers; i++) {
		bool tls;
		if (mqtt_parse_url(cfg->brokers[i], &tls, host, sizeof(host), &port) < 0) {
			errno = EINVAL;
			goto err_free;
		}
		any_tls |= tls;
		any_plain |= !tls;
	}
	if (cfg->n_brokers == 0 || (any_tls && any_plain)) {
		errno = EINVAL; /* one TLS setting per client: a list mixing both is refused by config too */
		goto err_free;
	}

	mosquitto_lib_init();
	m->mosq = mosquitto_new(cfg->client_id, cfg->clean_session, m);
	if (!m->mosq)
		goto err_free;
	mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION,
	                     cfg->protocol == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
	mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_int_option(m->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, 100);
	mosquitto_max_inflight_messages_set(m->mosq, (unsigned)cfg->max_inflight);
	mosquitto_connect_v5_callback_set(m->mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(m->mosq, on_disconnect);
	mosquitto_message_v5_callback_set(m->mosq, on_message);
	mosquitto_publish_v5_callback_set(m->mosq, on_publish);
	mosquitto_log_callback_set(m->mosq, on_log);

	r = mosquitto_will_set(m->mosq, m->status_topic, (int)strlen(OFFLINE_PAYLOAD), OFFLINE_PAYLOAD, 1, true);
	if (r != MOSQ_ERR_SUCCESS)
		goto err_inval;
	if (cfg->username) {
		r = mosquitto_username_pw_set(m->mosq, cfg->username, cfg->password);
		if (r != MOSQ_ERR_SUCCESS)
			goto err_inval;
	}
	if (any_tls) {
		if (!cfg->ca_file && !cfg->ca_path)
			mosquitto_int_option(m->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
		r = mosquitto_tls_set(m->mosq, cfg->ca_file, cfg->ca_path, cfg->cert_file, cfg->key_file, NULL);
		if (r != MOSQ_ERR_SUCCESS)
			goto err_inval;
		r = mosquitto_tls_opts_set(m->mosq, 1 /* SSL_VERIFY_PEER */, "tlsv1.2", NULL);
		if (r != MOSQ_ERR_SUCCESS)
			goto err_inval;
		mosquitto_tls_insecure_set(m->mosq, cfg->tls_insecure);
	}
	return m;

err_inval:
	errno = EINVAL;
err_free:
	mqtt_free(m);
	return NULL;
}

void mqtt_free(struct sg_mqtt *m)
{
	if (!m)
		return;
	close_probe(m);
	if (m->mosq) {
		mosquitto_destroy(m->mosq);
		mosquitto_lib_cleanup();
	}
	free(m->status_topic);
	free(m);
}

int mqtt_start(struct sg_mqtt *m)
{
	m->broker = 0;
	m->tried = 0;
	m->rounds = 0;
	start_attempt(m);
	set_watch(m);
	return 0;
}

int mqtt_fd(const struct sg_mqtt *m)
{
	switch (m->state) {
	case ST_PROBE:
		return m->probe_fd;
	case ST_CONNECTING:
	case ST_CONNECTED:
		return mosquitto_socket(m->mosq);
	default:
		return -1;
	}
}

unsigned mqtt_fd_generation(const struct sg_mqtt *m)
{
	return m->fd_gen;
}

short mqtt_events(const struct sg_mqtt *m)
{
	if (m->state == ST_PROBE)
		return POLLOUT;
	return (short)(POLLIN | (mosquitto_want_write(m->mosq) ? POLLOUT : 0));
}

uint64_t mqtt_deadline(const struct sg_mqtt *m)
{
	switch (m->state) {
	case ST_BACKOFF:
	case ST_PROBE:
		return m->deadline;
	case ST_CONNECTING:
		return m->deadline < m->next_misc ? m->deadline : m->next_misc;
	case ST_CONNECTED:
		return m->next_misc;
	default:
		return UINT64_MAX;
	}
}

/* After libmosquitto ran: a CONNECTING attempt that died, or a lost connection. */
static void after_loop(struct sg_mqtt *m, enum state before)
{
	if (before == ST_CONNECTING && m->state == ST_IDLE)
		fail_attempt(m);
	else if (m->state == ST_CONNECTING && mosquitto_socket(m->mosq) < 0)
		fail_attempt(m);
}

void mqtt_io(struct sg_mqtt *m, short revents)
{
	enum state before = m->state;
	int r;

	if (m->state == ST_PROBE) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
			return;
		if (getsockopt(m->probe_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			snprintf(m->reason, sizeof(m->reason), "%s", strerror(err));
			fail_attempt(m);
		} else {
			finish_probe(m);
		}
		set_watch(m);
		return;
	}
	if (m->state != ST_CONNECTING && m->state != ST_CONNECTED)
		return;
	if (revents & (POLLIN | POLLERR | POLLHUP)) {
		r = mosquitto_loop_read(m->mosq, 64);
		(void)r; /* errors arrive through on_disconnect */
	}
	if ((m->state == ST_CONNECTING || m->state == ST_CONNECTED) && (revents & POLLOUT) &&
	    mosquitto_socket(m->mosq) >= 0)
		mosquitto_loop_write(m->mosq, 64);
	after_loop(m, before);
	set_watch(m);
}

void mqtt_timer(struct sg_mqtt *m)
{
	enum state before = m->state;
	uint64_t now = now_mono_us();

	switch (m->state) {
	case ST_BACKOFF:
		if (now >= m->deadline)
			start_attempt(m);
		break;
	case ST_PROBE:
		if (now >= m->deadline) {
			snprintf(m->reason, sizeof(m->reason), "no answer within %llu s",
			         (unsigned long long)(PROBE_TIMEOUT_US / 1000000));
			fail_attempt(m);
		}
		break;
	case ST_CONNECTING:
		if (now >= m->deadline) {
			if (!m->reason[0])
				snprintf(m->reason, sizeof(m->reason), "no CONNACK within %llu s",
				         (unsigned long long)(CONNACK_TIMEOUT_US / 1000000));
			/* The stale socket is closed by the next connect. */
			fail_attempt(m);
			break;
		}
		/* fall through */
	case ST_CONNECTED:
		if (now >= m->next_misc) {
			uint64_t step = (uint64_t)m->cfg->keepalive * 1000000ULL / 4;
			mosquitto_loop_misc(m->mosq);
			m->next_misc = now + (step < 1000000 ? 1000000 : step);
			after_loop(m, before);
		}
		break;
	default:
		break;
	}
	set_watch(m);
}

bool mqtt_connected(const struct sg_mqtt *m)
{
	return m->state == ST_CONNECTED;
}

bool mqtt_backlogged(const struct sg_mqtt *m)
{
	return m->state == ST_CONNECTED && mosquitto_want_write(m->mosq);
}

int mqtt_send_quota(const struct sg_mqtt *m)
{
	int q = m->cfg->max_inflight;
	if (m->cfg->protocol == 5 && m->broker_receive_max > 0 && m->broker_receive_max < q)
		q = m->broker_receive_max;
	return q;
}

int mqtt_protocol(const struct sg_mqtt *m)
{
	return m->cfg->protocol;
}

const char *mqtt_broker(const struct sg_mqtt *m)
{
	return m->cfg->brokers[m->broker];
}

int mqtt_publish(struct sg_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                 bool retain, const mosquitto_property *props, int *ret_mid)
{
	int r, mid = 0;

	if (m->state != ST_CONNECTED)
		return -ENOTCONN;
	if (len > 268435455)
		return -EINVAL;
	r = mosquitto_publish_v5(m->mosq, &mid, topic, (int)len, payload, qos, retain,
	                         m->cfg->protocol == 5 ? props : NULL);
	if (ret_mid)
		*ret_mid = mid;
	set_watch(m);
	switch (r) {
	case MOSQ_ERR_SUCCESS:
		return 0;
	case MOSQ_ERR_NO_CONN:
		return -ENOTCONN;
	case MOSQ_ERR_INVAL:
	case MOSQ_ERR_PAYLOAD_SIZE:
	case MOSQ_ERR_MALFORMED_UTF8:
	case MOSQ_ERR_OVERSIZE_PACKET:
	case MOSQ_ERR_QOS_NOT_SUPPORTED:
		return -EINVAL;
	case MOSQ_ERR_NOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

int mqtt_subscribe(struct sg_mqtt *m, const char *pattern, int qos)
{
	int r;

	if (m->state != ST_CONNECTED)
		return -ENOTCONN;
	r = mosquitto_subscribe(m->mosq, NULL, pattern, qos);
	set_watch(m);
	return r == MOSQ_ERR_SUCCESS ? 0 : (r == MOSQ_ERR_INVAL ? -EINVAL : -EIO);
}

void mqtt_shutdown(struct sg_mqtt *m, int timeout_ms)
{
	uint64_t end = now_mono_us() + (uint64_t)timeout_ms * 1000;

	close_probe(m);
	m->stopping = true;
	if (m->state == ST_CONNECTED) {
		mosquitto_publish(m->mosq, NULL, m->status_topic, (int)strlen(OFFLINE_PAYLOAD), OFFLINE_PAYLOAD, 1,
		                  true);
		mosquitto_disconnect(m->mosq);
		/* Flush what is queued (the offline status, then DISCONNECT), bounded. */
		while (mosquitto_socket(m->mosq) >= 0 && mosquitto_want_write(m->mosq)) {
			struct pollfd p = {.fd = mosquitto_socket(m->mosq), .events = POLLOUT};
			uint64_t now = now_mono_us();
			if (now >= end)
				break;
			if (poll(&p, 1, (int)((end - now) / 1000) + 1) <= 0)
				break;
			if (mosquitto_loop_write(m->mosq, 64) != MOSQ_ERR_SUCCESS)
				break;
		}
	}
	m->state = ST_SHUTDOWN;
	set_watch(m);
}
