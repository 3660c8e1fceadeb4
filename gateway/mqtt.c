/* SPDX-License-Identifier: MIT */
/*
 * mqtt.c — libmosquitto in external-loop mode, with our own reconnect.
 *
 * States: BACKOFF (waiting to try) -> PROBE (our non-blocking TCP connect to
 * the broker, bounded) -> CONNECTING (libmosquitto's socket: TLS handshake,
 * CONNECT/CONNACK, bounded) -> CONNECTED. See mqtt.h for why the probe exists.
 *
 * Failures and waits ("The broker link" below): an attempt that fails, and
 * a connection that does not stay up for STABLE_US after its CONNACK, count
 * alike: the next broker in the list is tried, and after each full round of
 * the list the wait (backoff.h: exponential, full jitter, reconnect_min ..
 * reconnect_max) grows. Only a connection that stayed up STABLE_US resets
 * it; when such a connection is lost, the same broker is tried again first
 * (its session is there) after a jittered wait, and the list is walked on
 * from there, never restarted from the top. A failure is logged when it
 * first happens or when its wording changes, so a wrong password or a broker
 * that drops every connection does not flood the journal.
 *
 * Once connected: "the send window" (how many QoS 1/2 messages may be
 * unanswered, smaller while the broker refuses for quota) and "the in-flight
 * ledger" (a message the broker closes the connection over is dropped after
 * the second time) below.
 */
#include "mqtt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

#include "../drivers/backoff.h"
#include "../common/clock.h"
#include "cloud.h"
#include "log.h"
#include "mqtt_guard.h"
#include "mqtt_packet.h"
#include "mqtt_setup.h"
#include "resolve.h"

#define RESOLVE_TIMEOUT_US (30 * 1000000ULL)  /* DNS: resolv.conf's default allows 2 tries of 5 s per server */
#define PROBE_TIMEOUT_US   (5 * 1000000ULL)   /* TCP connect to a silent broker */
#define CONNACK_TIMEOUT_US (15 * 1000000ULL)  /* TLS handshake + CONNACK */
#define SESSION_EXPIRY_S   (7 * 24 * 3600)    /* MQTT 5: keep our session a week */
#define STABLE_US          (30 * 1000000ULL)  /* a connection up this long was a success */
#define HEAL_MIN_US        (100 * 1000ULL)    /* "online" again this long after a stale "offline" ... */
#define HEAL_JITTER_US     (900 * 1000ULL)    /* ... plus up to this: one republication per burst */
#define TRIAL_US           (2 * 1000000ULL)   /* how long the suspect is resent alone (see the ledger) */
#define CLOSE_SLACK_US     (20 * 1000ULL)     /* "right after" a message: within 2 handshake times + this */
#define SOON_US            (10 * 1000000ULL)  /* a loss this soon after CONNACK, with messages unanswered, */
                                              /* shrinks the send window to 1 */
#define GROW_MIN_US        (1 * 1000000ULL)   /* after a "quota exceeded": no more in flight than then ... */
#define GROW_MAX_US        (60 * 1000000ULL)  /* ... for this long, doubling with every refusal */
#define QUOTA_CLOSES       3                  /* closed after "quota exceeded": not a failure this often */

enum state {
	ST_IDLE = 0,
	ST_BACKOFF,
	ST_RESOLVE,
	ST_PROBE,
	ST_CONNECTING,
	ST_CONNECTED,
	ST_SHUTDOWN,
};

/* A QoS 1/2 message handed to libmosquitto and not answered yet (see "The in-flight ledger"). */
struct pending {
	uint64_t seq;          /* in the order handed over; 0: answered */
	uint64_t added;        /* when it was handed over (monotonic) */
	int mid;
	int qos;
	bool status;           /* our own "online" */
	bool received;         /* QoS 2: the broker's PUBREC came (libmosquitto sent PUBREL) */
	char topic[48];        /* for the log line, cut */
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
	struct sg_backoff bo;  /* failures: rounds of the list that failed since the last stable connection */
	uint64_t deadline;     /* of the current state */
	uint64_t next_misc;    /* next mosquitto_loop_misc() */
	int probe_fd;
	struct sg_resolve *lookup; /* the broker name's lookup (ST_RESOLVE) */
	bool numeric;          /* the broker is given by address: no lookup, nothing to pin */
	bool pin;              /* peer answers libmosquitto's lookup of the name (resolve_pin()) */
	struct sockaddr_storage peer; /* the address the probe connected to */
	socklen_t peer_len;
	unsigned fd_gen;       /* bumped whenever the polled socket changes */
	char host[256];
	int port;
	int broker_receive_max;
	uint32_t broker_max_packet; /* MQTT 5 Maximum Packet Size of the broker, 0: none */
	bool stopping;         /* mqtt_shutdown() runs: a disconnect is expected */

	/* the broker link: see "The broker link" below */
	int protocol;          /* of the current connection or attempt: 5, 4 for 3.1.1, 3 for 3.1 */
	bool *v311;            /* per broker: it refused MQTT 5 (protocol = "5" falls back to 3.1.1) */
	bool *no_retain;       /* per broker: it refused a retained Last Will (it keeps no retained messages) */
	bool retry_now;        /* the attempt failed in a way trying again at once fixes */
	uint64_t up_since;     /* CONNACK of the current connection */
	uint64_t connect_at;   /* when the current connection's CONNECT (and TLS handshake) began */
	uint64_t handshake_us; /* connect_at to CONNACK: the round trip the ledger's "right after" scales with */
	bool stable;           /* it stayed up STABLE_US: the backoff was reset */
	uint64_t heal_at;      /* republish "online" then (0: nothing pending) */
	struct sg_ratelimit takeover_rl, heal_rl;

	/* messages the broker will not take: see "The in-flight ledger" below */
	struct pending *pend;  /* QoS 1/2 messages libmosquitto holds, oldest first, from pend_head to pend_len */
	size_t pend_head, pend_len, pend_cap;
	uint64_t pend_seq;     /* the last number given */
	unsigned pubrec_wait;  /* QoS 2 messages in the ledger whose PUBREC has not come: see log_hook() */
	bool log_hooked;       /* on_log is libmosquitto's log callback now */
	uint64_t suspect_seq;  /* the oldest unanswered message at the last loss, 0: none */
	bool trial;            /* this connection resent the suspect alone; nothing else until it is answered */
	uint64_t trial_until;
	unsigned answers;      /* PUBACK, PUBREC (refusing) or PUBCOMP of any kind on this connection */
	bool rebuild;          /* make a fresh libmosquitto client before the next attempt */
	struct sg_ratelimit poison_rl;

	/* the send window: see "The send window" below */
	int window;            /* QoS 1/2 messages unanswered at most (libmosquitto's send maximum) */
	int ssthresh;          /* below it the window grows by one per answer, above by one per window */
	int ceiling;           /* where the broker last refused for quota: not above it before grow_at */
	unsigned window_acks;
	uint64_t grow_at;
	struct sg_backoff grow_bo;
	uint64_t send_after;   /* pacing: the broker refused with nothing else in flight; wait until then */
	bool quota_refused;    /* on this connection */
	unsigned quota_closes; /* connections closed after a quota refusal since the last stable one */
	struct sg_ratelimit quota_rl;

	/* Azure IoT Hub: see "SAS tokens" below */
	uint64_t renew_at;     /* close and connect again with a fresh token then (0: never) */
	bool renewing;         /* we closed the connection for that */

	bool announce;         /* CONNACK handled: "online", subscriptions and connected() once libmosquitto returns */
	bool session_present;

	char reason[256];      /* why the current attempt failed */
	char logged[512];      /* last failure line logged */

	struct sg_mqtt_guard *guard; /* plaintext links: the validating relay (mqtt_guard.h) */
	bool flush_due;        /* flush_soon() was called; mqtt_flush() has not come yet */
	bool lib_wrote;        /* libmosquitto may have written to the guard's pair since the guard took it all */
	bool retain_ok;        /* the broker takes retained messages (MQTT 5 Retain Available, §3.2.2.3.5) */
	size_t out_hwm;        /* largest QoS 1/2 PUBLISH handed to libmosquitto so far */
};

static void guard_sync(struct sg_mqtt *m);
static void on_log(struct mosquitto *mosq, void *ud, int level, const char *str);

/*
 * libmosquitto formats a log line for every packet it sends or receives
 * whenever a log callback is installed (lib/logging_mosq.c checks only that
 * one is), and at the rate of a flood that was almost half of the work per
 * PUBLISH (README, Benchmarks). on_log is needed while a connection is being
 * made (the TLS verdict, the refusal's detail), while a QoS 2 message waits
 * for its PUBREC (the only sign of one: see on_log()), and when the debug
 * level shows libmosquitto's lines; otherwise it is taken away.
 */
static void log_hook(struct sg_mqtt *m)
{
	bool want = m->state != ST_CONNECTED || m->pubrec_wait > 0 || log_enabled(LOG_DEBUG);

	if (want != m->log_hooked && m->mosq) {
		mosquitto_log_callback_set(m->mosq, want ? on_log : NULL);
		m->log_hooked = want;
	}
}

/*
 * Every call into libmosquitto that may write goes through lib(m): our own
 * QoS 0 packets must not overtake what it wrote to the guard's pair
 * (publish_own()).
 */
static struct mosquitto *lib(struct sg_mqtt *m)
{
	m->lib_wrote = true;
	return m->mosq;
}

static void set_watch(struct sg_mqtt *m)
{
	m->flush_due = false;
	log_hook(m);
	guard_sync(m);
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

/*
 * mosquitto_strerror() of 2.0.11 does not know its own keepalive code. A
 * DISCONNECT from an MQTT 5 broker reaches on_disconnect() as its reason
 * code (lib/handle_disconnect.c), 0x80 and above: libmosquitto's own error
 * codes are all below that.
 */
static const char *mosq_reason(int rc, bool connecting)
{
	if (rc == MOSQ_ERR_KEEPALIVE)
		return connecting ? "no CONNACK within the keepalive interval" : "keepalive timeout";
	if (rc >= 0x80)
		return mosquitto_reason_string(rc);
	return mosquitto_strerror(rc);
}

static void ledger_add(struct sg_mqtt *m, int mid, int qos, const char *topic);
static bool ledger_ack(struct sg_mqtt *m, int mid);
static unsigned ledger_count(const struct sg_mqtt *m);
static void ledger_received(struct sg_mqtt *m, int mid);
static bool ledger_check(struct sg_mqtt *m, uint64_t now);
static int send_maximum(const struct sg_mqtt *m);
static int ledger_rebuild(struct sg_mqtt *m);
static void window_set(struct sg_mqtt *m, int w);
static void window_answered(struct sg_mqtt *m, uint64_t now);
static void window_refused(struct sg_mqtt *m, uint64_t now, int mid);
static bool window_lost(struct sg_mqtt *m, uint64_t now);
static void link_announce(struct sg_mqtt *m);
static void link_connected(struct sg_mqtt *m, const mosquitto_property *props);
static void link_timer(struct sg_mqtt *m, uint64_t now);
static bool link_refused(struct sg_mqtt *m, int rc);
static void link_lost(struct sg_mqtt *m, int rc);
static bool link_status_message(struct sg_mqtt *m, const struct mosquitto_message *msg);

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
	/*
	 * libmosquitto has no callback for a PUBREC; 2.0.11 logs each one
	 * (lib/handle_pubrec.c) before it sends the PUBREL. The send maximum
	 * needs to know which messages are past that point: see send_maximum().
	 */
	else if (level == MOSQ_LOG_DEBUG && strncmp(str, "Client ", 7) == 0) {
		const char *at = strstr(str, " received PUBREC (Mid: ");
		if (at)
			ledger_received(m, atoi(at + strlen(" received PUBREC (Mid: ")));
	}
	log_debug("mqtt: libmosquitto: %s", str);
}

static void on_connect(struct mosquitto *mosq, void *ud, int rc, int flags, const mosquitto_property *props)
{
	struct sg_mqtt *m = ud;
	uint16_t rmax = 0;
	(void)mosq;

	if (rc != 0) {
		if (link_refused(m, rc))
			return;
		snprintf(m->reason, sizeof(m->reason), "connection refused: %s",
		         m->protocol == 5 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc));
		return; /* libmosquitto closes the socket and calls on_disconnect */
	}
	m->state = ST_CONNECTED;
	m->broker_receive_max = 65535;
	if (props && mosquitto_property_read_int16(props, MQTT_PROP_RECEIVE_MAXIMUM, &rmax, false))
		m->broker_receive_max = rmax;
	m->broker_max_packet = 0;
	m->retain_ok = true;
	if (props) {
		uint8_t retain = 1;
		mosquitto_property_read_int32(props, MQTT_PROP_MAXIMUM_PACKET_SIZE, &m->broker_max_packet, false);
		mosquitto_property_read_byte(props, MQTT_PROP_RETAIN_AVAILABLE, &retain, false);
		m->retain_ok = retain != 0; /* libmosquitto then clears the flag of what it sends; publish_own() too */
	}
	log_notice("mqtt: connected to %s (MQTT %s%s)", m->cfg->brokers[m->broker],
	           config_protocol_name(m->protocol), (flags & 1) ? ", session resumed" : "");
	m->session_present = flags & 1;
	/*
	 * "online", our subscriptions and the owner's connected() wait until
	 * libmosquitto has returned (link_announce() from after_loop()): it sends
	 * what it resends after this callback, and the broker's quota is theirs first.
	 */
	m->announce = true;
	link_connected(m, props);
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
		m->state = ST_IDLE;
		if (m->h.disconnected)
			m->h.disconnected(m->ud);
		link_lost(m, rc);
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
	if (link_status_message(m, msg))
		return;
	if (m->h.message)
		m->h.message(m->ud, &x);
}

static void on_publish(struct mosquitto *mosq, void *ud, int mid, int reason, const mosquitto_property *props)
{
	struct sg_mqtt *m = ud;
	uint64_t now = now_mono_us();
	bool status;
	(void)mosq;
	(void)props;

	m->answers++;
	status = ledger_ack(m, mid);
	if (reason == MQTT_RC_QUOTA_EXCEEDED) {
		window_refused(m, now, mid);
		if (status && !m->heal_at)
			m->heal_at = now + HEAL_MIN_US + backoff_random(HEAL_JITTER_US); /* "online" again, later */
	} else if (reason < 0x80) {
		window_answered(m, now);
	}
	if (status)
		return; /* ours, not the owner's */
	if (reason >= 0x80 && m->h.refused) {
		m->h.refused(m->ud, mid, reason);
		return;
	}
	if (reason >= 0x80)
		log_warning("mqtt: broker rejected message %d: %s", mid, mosquitto_reason_string(reason));
	if (m->h.published)
		m->h.published(m->ud, mid);
}

/* ---- the guard on plaintext links (mqtt_guard.h) ---------------------------------------------- */

/*
 * Right after libmosquitto's connect: put the relay between it and the broker.
 * A broker must accept packets as large as the largest QoS 1/2 message
 * libmosquitto may still hold (it resends those after the CONNACK, and
 * abort()s on one larger than the broker's limit).
 */
static int guard_attach(struct sg_mqtt *m)
{
	size_t min = m->out_hwm > MQTT_GUARD_MIN_BROKER_PACKET ? m->out_hwm : MQTT_GUARD_MIN_BROKER_PACKET;

	if (mosquitto_ssl_get(m->mosq))
		return 0; /* TLS: the bytes are encrypted inside libmosquitto; the certificate vouches for the broker */
#ifdef SG_BENCH_NO_GUARD
	return 0; /* only in scripts/bench-guard.py's second binary, which measures what the guard costs */
#endif
	m->guard = mqtt_guard_new(mosquitto_socket(m->mosq), m->protocol == 5 ? 5 : 4,
	                          min > UINT32_MAX ? UINT32_MAX : (uint32_t)min);
	m->lib_wrote = true;
	return m->guard ? 0 : -errno;
}

/* The broker socket is readable: the guard reads and checks, libmosquitto reads what passed. */
static void guard_read(struct sg_mqtt *m)
{
	int r = mqtt_guard_read(m->guard);

	if ((r == -EPROTO || r == -ENOMEM) && !m->reason[0]) /* before the CONNACK: why the attempt failed */
		snprintf(m->reason, sizeof(m->reason), "%s", mqtt_guard_error(m->guard));
	/* complete packets only, so each mosquitto_loop_read() finds whole ones; bounded. The
	 * callbacks it runs may end the connection: m->guard is looked at anew each time. */
	for (int i = 0; i < 4096 && m->guard && mosquitto_socket(m->mosq) == mqtt_guard_lib_fd(m->guard) &&
	                mqtt_guard_deliver(m->guard);
	     i++)
		mosquitto_loop_read(lib(m), 64);
}

/* After every call into libmosquitto (set_watch()): send on what it wrote; drop a finished guard. */
static void guard_sync(struct sg_mqtt *m)
{
	if (!m->guard)
		return;
	/* a failure cuts the guard; the loop then finds the socket at its end */
	if (mqtt_guard_flush(m->guard, m->lib_wrote) == 0)
		m->lib_wrote = false;
	if ((m->state == ST_CONNECTING || m->state == ST_CONNECTED) &&
	    mosquitto_socket(m->mosq) == mqtt_guard_lib_fd(m->guard))
		return;
	mqtt_guard_free(m->guard);
	m->guard = NULL;
	m->fd_gen++;
}

/* mqtt_shutdown(): the last of libmosquitto's output (offline status, DISCONNECT) to the broker, bounded. */
static void guard_drain(struct sg_mqtt *m, uint64_t end)
{
	while (m->guard && mqtt_guard_flush(m->guard, true) == 1) {
		struct pollfd p = {.fd = mqtt_guard_fd(m->guard), .events = POLLOUT};
		uint64_t now = now_mono_us();
		if (now >= end || poll(&p, 1, (int)((end - now) / 1000) + 1) <= 0)
			break;
	}
}

/* ---- connection state machine -------------------------------------------------------------- */

/* The lookup or the probe of an attempt, whichever runs, is given up. */
static void close_probe(struct sg_mqtt *m)
{
	if (m->lookup) {
		resolve_free(m->lookup); /* a thread still waiting on DNS ends on its own */
		m->lookup = NULL;
		m->fd_gen++;
	}
	if (m->probe_fd >= 0) {
		close(m->probe_fd);
		m->fd_gen++;
	}
	m->probe_fd = -1;
}

/* A failure line, logged when it first happens or when its wording changes (debug otherwise). */
static void log_failure(struct sg_mqtt *m, const char *line)
{
	if (strcmp(line, m->logged) != 0) {
		log_warning("mqtt: %s", line);
		snprintf(m->logged, sizeof(m->logged), "%s", line);
	} else {
		log_debug("mqtt: %s", line);
	}
}

/* Wait a jittered while (backoff.h), then try m->broker; the tests read the debug line. */
static void schedule_attempt(struct sg_mqtt *m)
{
	uint64_t delay = backoff_delay(&m->bo);

	m->state = ST_BACKOFF;
	m->deadline = now_mono_us() + delay;
	log_debug("mqtt: next attempt: %s in %.3f s (backoff up to %.3f s)", m->cfg->brokers[m->broker],
	          (double)delay / 1e6, (double)backoff_ceiling(&m->bo) / 1e6);
}

/* A failed attempt, or a connection that did not stay up: on to the next broker, after a jittered wait. */
static void next_broker(struct sg_mqtt *m)
{
	m->reason[0] = '\0';
	m->broker = (m->broker + 1) % m->cfg->n_brokers;
	if (++m->tried >= m->cfg->n_brokers) {
		m->tried = 0;
		backoff_failed(&m->bo);
	}
	schedule_attempt(m);
}

/* The attempt failed, m->reason says why: logged (once per wording), then the next broker. */
static void fail_attempt(struct sg_mqtt *m)
{
	char line[sizeof(m->logged)];

	close_probe(m);
	if (m->retry_now) { /* e.g. the fallback to MQTT 3.1.1: the same broker, at once */
		m->retry_now = false;
		m->reason[0] = '\0';
		m->state = ST_BACKOFF;
		m->deadline = now_mono_us();
		return;
	}
	snprintf(line, sizeof(line), "cannot connect to %s: %s; retrying", m->cfg->brokers[m->broker],
	         m->reason[0] ? m->reason : "unknown error");
	log_failure(m, line);
	next_broker(m);
}

/* ---- the broker link: failures, stability, protocol fallback, session takeover, status -------------
 *
 * - A connection counts as a success only once it has stayed up STABLE_US;
 *   one lost sooner (a broker that accepts and drops, sends garbage, or
 *   hands our session to another client) is a failed attempt like a refused
 *   one: the next broker, a longer wait.
 * - A broker that answers an MQTT 5 CONNECT with "Unsupported Protocol
 *   Version" (a 3.1.1-only broker answers with a 3.1.1 CONNACK, code 1;
 *   libmosquitto reports both as 0x84: lib/handle_connack.c) is spoken to in
 *   3.1.1 from then on, said once.
 * - MQTT 5 DISCONNECT 0x8E: another connection took our client id's session.
 * - Our status topic is watched: an "offline" there while we are connected
 *   is a stale Last Will (a cluster node publishing it late, a takeover) and
 *   is answered with "online" (retained), so the status heals by itself.
 */

static void link_connected(struct sg_mqtt *m, const mosquitto_property *props)
{
	const struct pending *p = m->pend_head < m->pend_len ? &m->pend[m->pend_head] : NULL;
	(void)props;

	m->up_since = now_mono_us();
	m->handshake_us = m->up_since - m->connect_at;
	m->stable = false;
	m->heal_at = 0;
	m->answers = 0;
	m->quota_refused = false;
	/* the CONNACK's Receive Maximum became libmosquitto's send maximum: ours again */
	window_set(m, m->window);
	/* the oldest message of the last loss resent alone (a window of one): a trial, see the ledger */
	m->trial = m->window == 1 && p && p->seq == m->suspect_seq;
	m->trial_until = m->up_since + TRIAL_US;
}

/* "online", retained, QoS 1, on the status topic; kept in the in-flight ledger as ours. */
static void publish_online(struct sg_mqtt *m)
{
	const char *online = config_birth_payload(m->cfg);
	int mid = 0, r;

	if (!m->status_topic)
		return;
	r = mosquitto_publish(lib(m), &mid, m->status_topic, (int)strlen(online), online, 1, true);
	if (r != MOSQ_ERR_SUCCESS)
		log_warning("mqtt: cannot publish online status: %s", mosquitto_strerror(r));
	else
		ledger_add(m, mid, 1, NULL);
}

/* After CONNACK, once libmosquitto is done resending (and any trial is over): say we are here. */
static void link_announce(struct sg_mqtt *m)
{
	int r;

	m->announce = false;
	publish_online(m);
	/*
	 * After "online" went out: the retained message this hands back is ours.
	 * QoS 0, so that nothing on it is queued for us in a durable session while
	 * we are away (our own "online" of every connection, our Last Wills). Not
	 * No Local: a Last Will of ours that another broker node publishes counts
	 * as published by our client id, and No Local would hide exactly that.
	 */
	r = m->status_topic ? mosquitto_subscribe(lib(m), NULL, m->status_topic, 0) : MOSQ_ERR_SUCCESS;
	if (r != MOSQ_ERR_SUCCESS)
		log_warning("mqtt: cannot watch %s: %s", m->status_topic, mosquitto_strerror(r));
	if (m->h.connected)
		m->h.connected(m->ud, m->session_present);
}

/* CONNACK refused with RC: true when trying again at once can fix it (m->retry_now set). */
static bool link_refused(struct sg_mqtt *m, int rc)
{
	/* MQTT 5.0 §3.2.2.2: a broker without retained messages refuses a CONNECT whose Will is retained */
	if (rc == MQTT_RC_RETAIN_NOT_SUPPORTED && m->protocol == 5 && m->status_topic && !m->no_retain[m->broker]) {
		m->no_retain[m->broker] = true;
		m->retry_now = true;
		log_warning("mqtt: %s keeps no retained messages (CONNACK: %s); connecting with a Last Will that is "
		            "not retained, and nothing the gateway publishes there is retained",
		            m->cfg->brokers[m->broker], mosquitto_reason_string(rc));
		return true;
	}
	if (rc != MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION || m->protocol != 5)
		return false;
	m->v311[m->broker] = true;
	m->retry_now = true;
	log_notice("mqtt: %s does not speak MQTT 5 (CONNACK: %s); talking MQTT 3.1.1 to it from now on "
	           "(protocol = \"3.1.1\" in the mqtt group skips the first attempt)",
	           m->cfg->brokers[m->broker], mosquitto_reason_string(rc));
	return true;
}

/* Why the connection was lost: the packet the guard refused, else libmosquitto's error or the broker's reason. */
static const char *lost_reason(const struct sg_mqtt *m, int rc)
{
	return m->guard && *mqtt_guard_error(m->guard) ? mqtt_guard_error(m->guard) : mosq_reason(rc, false);
}

/* The established connection is gone (RC: libmosquitto's error, or the reason of the broker's DISCONNECT). */
static void link_lost(struct sg_mqtt *m, int rc)
{
	const char *url = m->cfg->brokers[m->broker];
	char line[sizeof(m->logged)];
	uint64_t now = now_mono_us();
	unsigned suppressed;
	bool poison;

	m->heal_at = 0;
	m->announce = false;
	if (m->renewing) { /* our own DISCONNECT for a new SAS token: the same broker, at once */
		m->renewing = false;
		m->trial = false;
		m->state = ST_BACKOFF;
		m->deadline = now;
		return;
	}
	poison = ledger_check(m, now);
	m->trial = false;
	if (!poison)
		window_lost(m, now);
	if (m->quota_refused && !poison && rc != MQTT_RC_SESSION_TAKEN_OVER && ++m->quota_closes <= QUOTA_CLOSES) {
		/* explained, and the window shrank: the same broker, no longer wait (mosquitto 2.0.11 with
		 * max_queued_messages 0 closes the connection after any refusal); a few times in a row at most */
		snprintf(line, sizeof(line), "disconnected from %s after it refused a message for quota; at most %d in "
		         "flight from now on", url, m->window);
		log_failure(m, line);
		m->tried = 0;
		schedule_attempt(m);
		return;
	}
	if (rc == MQTT_RC_SESSION_TAKEN_OVER) {
		if (ratelimit_allow(&m->takeover_rl, now, &suppressed))
			log_warning("mqtt: %s closed our connection: another client with the same client id (\"%s\") took "
			            "over the session; two gateways with one client_id? Each takeover publishes the other's "
			            "Last Will \"offline\"; give every gateway its own gateway.id or mqtt.client_id%s",
			            url, m->cfg->client_id, suppressed ? " (repeated; earlier ones not logged)" : "");
		m->stable = false; /* however long it was up: a failure, the wait grows */
	}
	if (m->stable) {
		log_warning("mqtt: disconnected from %s: %s", url, lost_reason(m, rc));
		m->logged[0] = '\0';
		m->tried = 0;
		schedule_attempt(m); /* this broker again first (our session is there), jittered */
		return;
	}
	if (rc != MQTT_RC_SESSION_TAKEN_OVER) {
		snprintf(line, sizeof(line),
		         "disconnected from %s: %s; within %llu s of its CONNACK, so counted as a failed attempt%s", url,
		         lost_reason(m, rc), (unsigned long long)(STABLE_US / 1000000),
		         m->cfg->n_brokers > 1 ? ", trying the next broker" : "");
		log_failure(m, line);
	}
	log_debug("mqtt: the connection to %s was up %.1f s", url, (double)(now - m->up_since) / 1e6);
	next_broker(m);
}

/* A message on our own status topic: ours to handle, never the owner's. */
static bool link_status_message(struct sg_mqtt *m, const struct mosquitto_message *msg)
{
	const char *offline = config_will_payload(m->cfg);
	const size_t n = strlen(offline);
	uint64_t now = now_mono_us();
	unsigned suppressed;

	if (!msg->topic || !m->status_topic || strcmp(msg->topic, m->status_topic) != 0)
		return false;
	if (m->state != ST_CONNECTED || m->stopping || m->heal_at || msg->payloadlen != (int)n ||
	    memcmp(msg->payload, offline, n) != 0)
		return true; /* our own "online" coming back, or a heal already due */
	m->heal_at = now + HEAL_MIN_US + backoff_random(HEAL_JITTER_US);
	if (ratelimit_allow(&m->heal_rl, now, &suppressed))
		log_notice("mqtt: %s says \"offline\" while we are connected to %s (a Last Will of ours published late, "
		           "e.g. by another node of a broker cluster, or by a takeover); publishing \"online\" again%s",
		           m->status_topic, m->cfg->brokers[m->broker], suppressed ? " (repeated)" : "");
	return true;
}

static void sas_renew(struct sg_mqtt *m);

static void link_timer(struct sg_mqtt *m, uint64_t now)
{
	if (!m->stable && now >= m->up_since + STABLE_US) {
		m->stable = true;
		if (m->bo.failures || m->logged[0])
			log_notice("mqtt: the connection to %s has stayed up %llu s: reconnect backoff reset",
			           m->cfg->brokers[m->broker], (unsigned long long)(STABLE_US / 1000000));
		backoff_reset(&m->bo);
		m->tried = 0;
		m->quota_closes = 0;
		m->logged[0] = '\0';
	}
	if (m->heal_at && now >= m->heal_at) {
		m->heal_at = 0;
		publish_online(m);
	}
	if (m->renew_at && now >= m->renew_at && !m->renewing)
		sas_renew(m);
}

/* The broker's address is known (AI, freed here): a non-blocking TCP connect tells whether it answers. */
static void start_probe(struct sg_mqtt *m, struct addrinfo *ai)
{
	int r, fd;

	m->pin = ai->ai_addrlen <= sizeof(m->peer) && !m->numeric;
	if (m->pin) { /* what libmosquitto's own lookup of the name is answered with (resolve.h) */
		memcpy(&m->peer, ai->ai_addr, ai->ai_addrlen);
		m->peer_len = ai->ai_addrlen;
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

/*
 * SAS tokens (Azure IoT Hub). The hub checks the token in the CONNECT and
 * closes the connection when it expires ("the device must disconnect and
 * reconnect with a new token": iot-mqtt-connect-to-iot-hub). So every
 * attempt signs a token valid for sas_lifetime from now, and once
 * SAS_RENEW_PERMILLE of that has passed the connection is closed with a
 * DISCONNECT and made again at once with a new one: not a failure, no wait.
 * What was in flight is resent on the new connection (libmosquitto keeps
 * it) and the spool keeps everything not acknowledged, so nothing is lost.
 */
#define SAS_RENEW_PERMILLE 800

static int sas_refresh(struct sg_mqtt *m)
{
	char token[CLOUD_SAS_MAX];
	int64_t now = now_real_us(), expiry = now / 1000000 + m->cfg->sas_lifetime_s;
	uint64_t left = (uint64_t)(expiry * 1000000 - now); /* se is whole seconds: up to 1 s less than the lifetime */
	int r;

	r = cloud_azure_sas(m->cfg->hub, m->cfg->device_id, m->cfg->device_key, m->cfg->device_key_len, expiry, token,
	                    sizeof(token));
	if (r == 0)
		r = mosquitto_username_pw_set(m->mosq, m->cfg->username, token) == MOSQ_ERR_SUCCESS ? 0 : -ENOMEM;
	explicit_bzero(token, sizeof(token));
	if (r < 0) {
		snprintf(m->reason, sizeof(m->reason), "cannot make a SAS token: %s", strerror(-r));
		return r;
	}
	m->renew_at = now_mono_us() + left / 1000 * SAS_RENEW_PERMILLE;
	log_debug("mqtt: SAS token valid until %lld (unix time), renewed in %.1f s", (long long)expiry,
	          (double)(left / 1000 * SAS_RENEW_PERMILLE) / 1e6);
	return 0;
}

/* The token is getting old: close the connection; link_lost() connects again at once. */
static void sas_renew(struct sg_mqtt *m)
{
	log_info("mqtt: the SAS token expires soon: connecting again with a new one");
	m->renewing = true;
	m->renew_at = 0;
	if (mosquitto_disconnect(lib(m)) != MOSQ_ERR_SUCCESS)
		m->renewing = false;
}

/* The lookup of the broker's name ended (R: resolve_result()'s answer). */
static void lookup_done(struct sg_mqtt *m, int r, struct addrinfo *ai)
{
	resolve_free(m->lookup);
	m->lookup = NULL;
	m->fd_gen++;
	if (r != 0) {
		snprintf(m->reason, sizeof(m->reason), "cannot resolve %.128s: %s", m->host,
		         r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		fail_attempt(m);
		return;
	}
	start_probe(m, ai);
}

static void start_attempt(struct sg_mqtt *m)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char portstr[8];
	bool tls;

	m->reason[0] = '\0';
	if (m->rebuild && ledger_rebuild(m) < 0) {
		fail_attempt(m);
		return;
	}
	if (mqtt_parse_url(m->cfg->brokers[m->broker], &tls, m->host, sizeof(m->host), &m->port) < 0) {
		snprintf(m->reason, sizeof(m->reason), "invalid broker URL");
		fail_attempt(m);
		return;
	}
	snprintf(portstr, sizeof(portstr), "%d", m->port);
	/* an address needs no lookup; a name is looked up on a thread, so that DNS never holds the loop */
	m->numeric = getaddrinfo(m->host, portstr, &hints, &ai) == 0;
	if (m->numeric) {
		start_probe(m, ai);
		return;
	}
	m->lookup = resolve_start(m->host, portstr);
	if (!m->lookup) {
		lookup_done(m, EAI_SYSTEM, NULL);
		return;
	}
	m->fd_gen++;
	m->state = ST_RESOLVE;
	m->deadline = now_mono_us() + RESOLVE_TIMEOUT_US;
}

/* The broker answered the probe: now let libmosquitto connect for real. */
static void finish_probe(struct sg_mqtt *m)
{
	mosquitto_property *props = NULL;
	int r;

	close_probe(m);
	if (m->guard) { /* the last connection's, if nothing dropped it yet */
		mqtt_guard_free(m->guard);
		m->guard = NULL;
	}
	m->protocol = m->cfg->protocol == 5 && m->v311[m->broker] ? 4 : m->cfg->protocol;
	mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, mqtt_setup_level(m->protocol));
	if (m->protocol == 5 && !m->cfg->clean_session)
		mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, SESSION_EXPIRY_S);
	if (m->protocol == 5) /* what the guard takes; the broker drops larger messages for us */
		mosquitto_property_add_int32(&props, MQTT_PROP_MAXIMUM_PACKET_SIZE, MQTT_GUARD_MAX_PACKET);
	/* what libmosquitto resends at once after CONNACK: the send window (see there) */
	mosquitto_int_option(m->mosq, MOSQ_OPT_SEND_MAXIMUM, send_maximum(m));
	if (m->status_topic) /* retained unless this broker refused that (link_refused()); an error keeps the last */
		mosquitto_will_set(m->mosq, m->status_topic, (int)strlen(config_will_payload(m->cfg)),
		                   config_will_payload(m->cfg), 1, !m->no_retain[m->broker]);
	if (m->cfg->cloud == SG_CLOUD_AZURE && sas_refresh(m) < 0) {
		mosquitto_property_free_all(&props);
		fail_attempt(m);
		return;
	}
	m->state = ST_CONNECTING;
	m->connect_at = now_mono_us();
	m->deadline = m->connect_at + CONNACK_TIMEOUT_US;
	m->fd_gen++;
	if (m->pin) {
		struct addrinfo peer = {.ai_addr = (struct sockaddr *)&m->peer, .ai_addrlen = m->peer_len};
		if (resolve_pin(m->host, &peer) < 0)
			m->pin = false; /* then libmosquitto looks the name up itself, as it would anyway */
	}
	r = mosquitto_connect_bind_v5(lib(m), m->host, m->port, m->cfg->keepalive, NULL, props);
	if (m->pin)
		resolve_unpin();
	mosquitto_property_free_all(&props);
	if (r != MOSQ_ERR_SUCCESS) {
		if (!m->reason[0]) /* on_log may already know better (the certificate verdict) */
			snprintf(m->reason, sizeof(m->reason), "%s",
			         r == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(r));
		fail_attempt(m);
		return;
	}
	if (guard_attach(m) < 0) {
		snprintf(m->reason, sizeof(m->reason), "cannot relay the connection: %s", strerror(errno));
		mosquitto_disconnect(lib(m));
		fail_attempt(m);
		return;
	}
	m->next_misc = now_mono_us() + 1000000;
}

/* The libmosquitto client with every setting and callback: at start, and again after a poison message. */
static int client_make(struct sg_mqtt *m)
{
	struct mqtt_setup_report setup;
	struct mosquitto *mosq;

	mosq = mosquitto_new(m->cfg->client_id, m->cfg->clean_session, m);
	if (!mosq)
		return -errno;
	mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_int_option(mosq, MOSQ_OPT_RECEIVE_MAXIMUM, 100);
	mosquitto_max_inflight_messages_set(mosq, (unsigned)m->cfg->max_inflight);
	mosquitto_connect_v5_callback_set(mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(mosq, on_disconnect);
	mosquitto_message_v5_callback_set(mosq, on_message);
	mosquitto_publish_v5_callback_set(mosq, on_publish);
	mosquitto_log_callback_set(mosq, on_log); /* and then only while needed: log_hook() */

	/* The same settings mqtt_setup_check() tried at start-up (main.c): only memory can fail here. */
	if (mqtt_setup_client(mosq, m->cfg, m->status_topic, &setup) < 0) {
		log_debug("mqtt: %s", setup.error);
		mosquitto_destroy(mosq);
		errno = EINVAL;
		return -EINVAL;
	}
	m->mosq = mosq;
	m->log_hooked = true;
	return 0;
}

/* ---- the send window: how many QoS 1/2 messages may be unanswered at once ------------------------
 *
 * libmosquitto's send maximum, kept by us: never above max_inflight or the
 * broker's MQTT 5 Receive Maximum, and smaller while the broker shows it
 * takes fewer. A broker's session may hold unreleased QoS 2 messages of a
 * dead process of ours, which use up its quota without our knowing: it then
 * refuses with "quota exceeded", and mosquitto 2.0.11 with
 * max_queued_messages 0 closes the connection after any refusal, often
 * before its refusal reaches us ("Broken pipe"). So:
 * - a "quota exceeded": the window becomes what the broker had taken (the
 *   messages still in flight, at least one), and does not grow past that
 *   before GROW_MIN_US .. GROW_MAX_US (backoff.h, doubling with each such
 *   refusal); refused with nothing else in flight, nothing new is sent before
 *   then either (mqtt_send_after());
 * - a loss within SOON_US of CONNACK with messages unanswered: the window
 *   becomes one, and grows back by one per answer up to half what it was;
 * - beyond that it grows by one per window's worth of answers.
 * It is kept across reconnects (a new connection would otherwise resend a
 * whole window into the same refusal: the storm of issue #10, finding 6) and
 * applied before each connect and after each CONNACK, which sets the send
 * maximum to the broker's Receive Maximum.
 */

static int window_cap(const struct sg_mqtt *m)
{
	int q = m->cfg->max_inflight > 0 ? m->cfg->max_inflight : 1;

	if (m->protocol == 5 && m->broker_receive_max > 0 && m->broker_receive_max < q)
		q = m->broker_receive_max;
	return q;
}

/*
 * The send maximum given to libmosquitto: the window, but never so small
 * that a QoS 2 message whose PUBREC came lies beyond it. At a reconnect
 * libmosquitto (2.0.11, message__reconnect_reset()) turns every message
 * beyond its send quota, counted in the order handed over, back into a
 * queued one and later sends it as a new PUBLISH; for a message the broker
 * had already received, that replaces the PUBREL it waits for with a
 * PUBLISH it no longer recognises once released: delivered twice. Found by
 * test_spool_faults.py (proxy cuts, broker kill -9 at QoS 2). Only those
 * messages count: one whose PUBREC never came goes again as a PUBLISH
 * either way, and counting every QoS 2 message in flight would resend the
 * whole window into a broker whose quota is full (issue #10, finding 6;
 * test_drain_after_gateway_crashes_without_a_reconnect_storm). QoS 1
 * messages beyond the window are only late, and QoS 1 allows a duplicate.
 */
static int send_maximum(const struct sg_mqtt *m)
{
	int n = 0, upto = 0;

	for (size_t i = m->pend_head; i < m->pend_len; i++) {
		if (!m->pend[i].seq)
			continue;
		n++;
		if (m->pend[i].received)
			upto = n;
	}
	return m->window > upto ? m->window : upto;
}

static void window_set(struct sg_mqtt *m, int w)
{
	int cap = window_cap(m);

	m->window = w < 1 ? 1 : w > cap ? cap : w;
	mosquitto_int_option(m->mosq, MOSQ_OPT_SEND_MAXIMUM, send_maximum(m));
}

static void window_answered(struct sg_mqtt *m, uint64_t now)
{
	if (m->window >= window_cap(m))
		return;
	if (m->window >= m->ssthresh && ++m->window_acks < (unsigned)m->window)
		return;
	m->window_acks = 0;
	if (m->window >= m->ceiling && now < m->grow_at)
		return;
	window_set(m, m->window + 1);
	if (m->window >= window_cap(m)) { /* all the way back: the broker's quota is free again */
		m->ceiling = INT_MAX;
		backoff_reset(&m->grow_bo);
	}
}

static void window_refused(struct sg_mqtt *m, uint64_t now, int mid)
{
	unsigned n = ledger_count(m), suppressed;
	uint64_t hold = backoff_next(&m->grow_bo);

	m->quota_refused = true;
	m->ceiling = n ? (int)n : 1;
	m->ssthresh = m->ceiling;
	m->window_acks = 0;
	m->grow_at = now + hold;
	window_set(m, m->ceiling);
	if (!n)
		m->send_after = now + hold;
	if (ratelimit_allow(&m->quota_rl, now, &suppressed))
		log_notice("mqtt: %s refused message %d: quota exceeded with %u others in flight; sending at most %d "
		           "at a time for %.0f s%s", m->cfg->brokers[m->broker], mid, n, m->window, (double)hold / 1e6,
		           suppressed ? " (repeated)" : "");
}

/* The connection is lost: true when it came soon after CONNACK with messages unanswered (the window shrank). */
static bool window_lost(struct sg_mqtt *m, uint64_t now)
{
	if (now - m->up_since >= SOON_US || !ledger_count(m))
		return false;
	m->ssthresh = m->window > 1 ? m->window / 2 : 1;
	m->window_acks = 0;
	window_set(m, 1);
	return true;
}

/* ---- the in-flight ledger: messages the broker will not take ---------------------------------------
 *
 * libmosquitto keeps every QoS 1/2 message until it is acknowledged and
 * sends it again, first, after each reconnect. A broker that refuses a
 * message by closing the connection (mosquitto 2.0.11 with
 * max_queued_messages 0 after a refusal, when its PUBACK is lost; brokers
 * that disconnect a client for an unauthorized publish) would make that
 * message cost the connection again and again. So every such message is
 * recorded here in the order it was handed over (numbered), and removed
 * when the broker answers it (PUBACK, PUBCOMP, or a refusal). At each loss
 * of an established connection right after the oldest unanswered one went
 * out (ledger_check() says what "right after" is), that one is noted (the
 * suspect), and a loss soon after CONNACK shrinks the send window to one
 * (below), so the next connection resends the suspect alone: a trial, during
 * which nothing else is sent (no "online", no connected(): mqtt_connected()
 * says no) until it is answered or TRIAL_US have passed. When the broker
 * closes that connection right after the resend without answering anything,
 * the suspect is what it closes the connection over, and no other message can
 * be (a quota refusal of another message, say). It cannot be taken out of
 * libmosquitto's queue, so the client is made afresh (before the next
 * attempt) and the owner is told that everything in flight is gone
 * (discarded()): it sends its own messages again, without that one.
 */

/* TOPIC NULL: our own status message. */
static void ledger_add(struct sg_mqtt *m, int mid, int qos, const char *topic)
{
	struct pending *p;

	if (m->pend_len == m->pend_cap && m->pend_head > 0) { /* drop the answered ones before the head */
		memmove(m->pend, m->pend + m->pend_head, (m->pend_len - m->pend_head) * sizeof(*m->pend));
		m->pend_len -= m->pend_head;
		m->pend_head = 0;
	}
	if (m->pend_len == m->pend_cap) {
		size_t cap = m->pend_cap ? 2 * m->pend_cap : 64;
		p = realloc(m->pend, cap * sizeof(*p));
		if (!p)
			return; /* not recorded: only the protection against that message is lost */
		m->pend = p;
		m->pend_cap = cap;
	}
	p = &m->pend[m->pend_len++];
	p->seq = ++m->pend_seq;
	p->added = now_mono_us();
	p->mid = mid;
	p->qos = qos;
	p->status = !topic;
	p->received = false;
	if (qos == 2) {
		m->pubrec_wait++;
		log_hook(m); /* before the loop can read the PUBREC */
	}
	snprintf(p->topic, sizeof(p->topic), "%s", topic ? topic : m->status_topic ? m->status_topic : "");
}

/* MID was answered (acknowledged or refused): true when it was our own status message. */
static bool ledger_ack(struct sg_mqtt *m, int mid)
{
	bool status = false;

	for (size_t i = m->pend_head; i < m->pend_len; i++) {
		struct pending *p = &m->pend[i];
		if (p->seq && p->mid == mid) {
			if (p->seq == m->suspect_seq)
				m->trial = false; /* answered: the trial is over, nothing to drop */
			status = p->status;
			if (p->qos == 2 && !p->received)
				m->pubrec_wait--;
			p->seq = 0;
			break;
		}
	}
	while (m->pend_head < m->pend_len && !m->pend[m->pend_head].seq)
		m->pend_head++;
	if (m->pend_head == m->pend_len)
		m->pend_head = m->pend_len = 0;
	return status;
}

/* The broker's PUBREC for MID came: it holds the message and waits for our PUBREL. */
static void ledger_received(struct sg_mqtt *m, int mid)
{
	for (size_t i = m->pend_head; i < m->pend_len; i++)
		if (m->pend[i].seq && m->pend[i].mid == mid) {
			if (!m->pend[i].received && m->pend[i].qos == 2)
				m->pubrec_wait--;
			m->pend[i].received = true;
			return;
		}
}

static unsigned ledger_count(const struct sg_mqtt *m)
{
	unsigned n = 0;

	for (size_t i = m->pend_head; i < m->pend_len; i++)
		n += m->pend[i].seq != 0;
	return n;
}

/*
 * At the loss of an established connection: note the oldest message, or find it is a poison one.
 * Only a close that comes right after the message went out counts: a
 * broker closing over a message does so as soon as it has read it, while a
 * link that breaks does so at any time. "Right after" is two handshake times
 * (CONNECT to CONNACK, TLS included) and CLOSE_SLACK_US from the moment it
 * was handed over, or from CONNACK when it was waiting for the connection.
 * A close while our loop was busy elsewhere (the answer may be unread in
 * the socket) is seen late and does not count either: a real poison message
 * is then found on a quieter try, a reading is never dropped over a cut.
 */
static bool ledger_check(struct sg_mqtt *m, uint64_t now)
{
	const struct pending *p = m->pend_head < m->pend_len ? &m->pend[m->pend_head] : NULL;
	unsigned suppressed;
	uint64_t sent;
	int mid;

	sent = p && p->added > m->up_since ? p->added : m->up_since;
	if (!p || now - sent > 2 * m->handshake_us + CLOSE_SLACK_US) {
		m->suspect_seq = 0;
		return false;
	}
	if (!m->trial || p->seq != m->suspect_seq || m->answers || now >= m->trial_until) {
		m->suspect_seq = p->seq;
		return false;
	}
	mid = p->mid;
	if (ratelimit_allow(&m->poison_rl, now, &suppressed))
		log_warning("mqtt: %s closed the connection twice right after message %d (QoS %d, %s%s) was sent, "
		            "without answering it: taking it for a message the broker refuses and dropping it; the "
		            "other messages in flight go again%s",
		            m->cfg->brokers[m->broker], mid, p->qos, p->topic,
		            strlen(p->topic) + 1 == sizeof(p->topic) ? "..." : "",
		            suppressed ? " (earlier ones not logged)" : "");
	m->pend_head = m->pend_len = 0;
	m->pubrec_wait = 0;
	m->suspect_seq = 0;
	m->rebuild = true;
	if (m->h.discarded)
		m->h.discarded(m->ud, mid);
	return true;
}

/* Before the next attempt after a poison message: a client without it (and without anything else queued). */
static int ledger_rebuild(struct sg_mqtt *m)
{
	struct mosquitto *old = m->mosq;

	if (client_make(m) < 0) { /* keep the old one; tried again before the next attempt */
		snprintf(m->reason, sizeof(m->reason), "cannot set up the MQTT client again: %s", strerror(errno));
		return -1;
	}
	mosquitto_destroy(old);
	m->rebuild = false;
	m->fd_gen++;
	return 0;
}

struct sg_mqtt *mqtt_new(const struct sg_mqtt_cfg *cfg, const char *status_topic,
                         const struct sg_mqtt_handlers *h, void *ud)
{
	struct sg_mqtt *m;
	bool any_tls = false, any_plain = false;
	char host[256];
	int port;

	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->cfg = cfg;
	m->h = *h;
	m->ud = ud;
	m->probe_fd = -1;
	m->protocol = cfg->protocol;
	backoff_init(&m->bo, (uint64_t)(cfg->reconnect_min_s * 1e6), (uint64_t)(cfg->reconnect_max_s * 1e6));
	m->takeover_rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(600, 1);
	m->heal_rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(600, 1);
	m->poison_rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(60, 3);
	m->quota_rl = (struct sg_ratelimit)SG_RATELIMIT_INIT(60, 3);
	m->window = m->ssthresh = cfg->max_inflight > 0 ? cfg->max_inflight : 1;
	m->ceiling = INT_MAX;
	backoff_init(&m->grow_bo, GROW_MIN_US, GROW_MAX_US);
	m->status_topic = status_topic ? strdup(status_topic) : NULL;
	m->v311 = calloc(cfg->n_brokers ? cfg->n_brokers : 1, sizeof(*m->v311));
	m->no_retain = calloc(cfg->n_brokers ? cfg->n_brokers : 1, sizeof(*m->no_retain));
	if ((status_topic && !m->status_topic) || !m->v311 || !m->no_retain)
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
	if (client_make(m) < 0)
		goto err_free;
	return m;

err_free:
	mqtt_free(m);
	return NULL;
}

void mqtt_free(struct sg_mqtt *m)
{
	if (!m)
		return;
	close_probe(m);
	mqtt_guard_free(m->guard);
	if (m->mosq) {
		mosquitto_destroy(m->mosq);
		mosquitto_lib_cleanup();
	}
	free(m->status_topic);
	free(m->v311);
	free(m->no_retain);
	free(m->pend);
	free(m);
}

int mqtt_start(struct sg_mqtt *m)
{
	m->broker = 0;
	m->tried = 0;
	backoff_reset(&m->bo);
	start_attempt(m);
	set_watch(m);
	return 0;
}

int mqtt_fd(const struct sg_mqtt *m)
{
	switch (m->state) {
	case ST_RESOLVE:
		return resolve_fd(m->lookup);
	case ST_PROBE:
		return m->probe_fd;
	case ST_CONNECTING:
	case ST_CONNECTED:
		return m->guard ? mqtt_guard_fd(m->guard) : mosquitto_socket(m->mosq);
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
	bool out = mosquitto_want_write(m->mosq) || (m->guard && mqtt_guard_pending(m->guard));

	if (m->state == ST_PROBE)
		return POLLOUT;
	if (m->state == ST_RESOLVE)
		return POLLIN;
	return (short)(POLLIN | (out ? POLLOUT : 0));
}

uint64_t mqtt_deadline(const struct sg_mqtt *m)
{
	switch (m->state) {
	case ST_BACKOFF:
	case ST_RESOLVE:
	case ST_PROBE:
		return m->deadline;
	case ST_CONNECTING:
		return m->deadline < m->next_misc ? m->deadline : m->next_misc;
	case ST_CONNECTED: {
		uint64_t d = m->next_misc;
		if (m->trial && m->trial_until < d)
			d = m->trial_until;
		if (!m->stable && m->up_since + STABLE_US < d)
			d = m->up_since + STABLE_US;
		if (m->heal_at && m->heal_at < d)
			d = m->heal_at;
		if (m->renew_at && m->renew_at < d)
			d = m->renew_at;
		return d;
	}
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
	else if (m->state == ST_CONNECTED && m->announce && !m->trial)
		link_announce(m);
}

void mqtt_io(struct sg_mqtt *m, short revents)
{
	enum state before = m->state;
	int r;

	if (m->state == ST_RESOLVE) {
		struct addrinfo *ai = NULL;
		if ((revents & POLLIN) && (r = resolve_result(m->lookup, &ai)) != -EAGAIN)
			lookup_done(m, r, ai);
		set_watch(m);
		return;
	}
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
	if ((revents & (POLLIN | POLLERR | POLLHUP)) && m->guard) {
		guard_read(m);
	} else if (revents & (POLLIN | POLLERR | POLLHUP)) {
		r = mosquitto_loop_read(lib(m), 64);
		(void)r; /* errors arrive through on_disconnect */
	}
	if ((m->state == ST_CONNECTING || m->state == ST_CONNECTED) && (revents & POLLOUT) &&
	    mosquitto_socket(m->mosq) >= 0) {
		if (m->guard)
			mqtt_guard_flush(m->guard, true); /* room in the pair for what follows */
		mosquitto_loop_write(lib(m), 64);
	}
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
	case ST_RESOLVE:
		if (now >= m->deadline) {
			snprintf(m->reason, sizeof(m->reason), "cannot resolve %.128s: no answer within %llu s", m->host,
			         (unsigned long long)(RESOLVE_TIMEOUT_US / 1000000));
			fail_attempt(m);
		}
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
		if (m->state == ST_CONNECTED) {
			link_timer(m, now);
			if (m->trial && now >= m->trial_until)
				m->trial = false; /* not answered in time, yet not closed over: carry on */
			after_loop(m, before);
		}
		if (now >= m->next_misc) {
			uint64_t step = (uint64_t)m->cfg->keepalive * 1000000ULL / 4;
			mosquitto_loop_misc(lib(m));
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
	return m->state == ST_CONNECTED && !m->announce;
}

bool mqtt_backlogged(const struct sg_mqtt *m)
{
	return m->state == ST_CONNECTED &&
	       (mosquitto_want_write(m->mosq) || (m->guard && mqtt_guard_pending(m->guard)));
}

int mqtt_send_quota(const struct sg_mqtt *m)
{
	int q = window_cap(m);
	return m->window < q ? m->window : q;
}

uint64_t mqtt_send_after(const struct sg_mqtt *m)
{
	return m->send_after;
}

int mqtt_protocol(const struct sg_mqtt *m)
{
	return m->protocol;
}

const char *mqtt_broker(const struct sg_mqtt *m)
{
	return m->cfg->brokers[m->broker];
}

void mqtt_flush(struct sg_mqtt *m)
{
	if (m->flush_due)
		set_watch(m);
}

/*
 * A QoS 0 message on a plaintext link, written by us into the guard's queue
 * (mqtt_packet.h says why): 1 when done, 0 when libmosquitto is to send it,
 * -EINVAL for what libmosquitto would refuse (mosquitto_publish_v5() in
 * lib/actions.c: the topic valid UTF-8 of at most 65,535 bytes without
 * wildcards; the broker's Maximum Packet Size). libmosquitto sends it while
 * it has a packet of its own begun or queued (ours would overtake it) and
 * once the queue is at its bound. At the debug level a line like
 * libmosquitto's says what was sent.
 */
static int publish_own(struct sg_mqtt *m, const char *topic, const void *payload, size_t len, bool retain,
                       const struct mqtt_props *props)
{
	size_t tlen, size;
	uint8_t *d;

	if (!m->guard || mosquitto_want_write(m->mosq))
		return 0;
	tlen = strlen(topic);
	if (!tlen || mosquitto_validate_utf8(topic, (int)(tlen > 65536 ? 65536 : tlen)) != MOSQ_ERR_SUCCESS ||
	    mosquitto_pub_topic_check(topic) != MOSQ_ERR_SUCCESS)
		return -EINVAL;
	size = mqtt_packet_publish_size(m->protocol, tlen, len, m->protocol == 5 && props ? props->len : 0);
	if (m->broker_max_packet && size > m->broker_max_packet)
		return -EINVAL;
	if (m->lib_wrote) {
		if (mqtt_guard_take(m->guard) < 0)
			return 0;
		m->lib_wrote = false;
	}
	d = mqtt_guard_room(m->guard, size);
	if (!d)
		return 0;
	retain = retain && m->retain_ok;
	mqtt_guard_put(m->guard, mqtt_packet_publish(d, m->protocol, topic, tlen, payload, len, retain, props));
	if (log_enabled(LOG_DEBUG))
		log_debug("mqtt: sending PUBLISH (d0, q0, r%d, '%s', ... (%zu bytes)), written by the gateway", retain,
		          topic, len);
	return 1;
}

/* After a publish: the relay and the watches now, or once for the burst (mqtt_flush()). */
static void published_flush(struct sg_mqtt *m, int qos)
{
	if (!m->h.flush_soon || qos > 0) { /* the flood path is QoS 0; QoS 1/2 hand-overs keep their pace */
		set_watch(m);
	} else if (!m->flush_due) {
		m->flush_due = true;
		m->h.flush_soon(m->ud);
	}
}

static int publish(struct sg_mqtt *m, const char *topic, const void *payload, size_t len, int qos, bool retain,
                   const mosquitto_property *props, const struct mqtt_props *own, int *ret_mid)
{
	mosquitto_property *list = NULL;
	int r, mid = 0;
	size_t size;

	if (!mqtt_connected(m))
		return -ENOTCONN;
	if (len > 268435455)
		return -EINVAL;
	if (qos == 0 && !props && !ret_mid && (r = publish_own(m, topic, payload, len, retain, own)) != 0) {
		if (r > 0)
			published_flush(m, 0);
		return r < 0 ? r : 0;
	}
	if (own && own->len && m->protocol == 5) {
		if (mqtt_props_list(own, &list) < 0) {
			mosquitto_property_free_all(&list);
			return -ENOMEM;
		}
		props = list;
	}
	/* libmosquitto abort()s on a packet above the broker's Maximum Packet Size (mqtt_guard.h) */
	size = mqtt_guard_publish_size(m->protocol, topic, len, qos, m->protocol == 5 ? props : NULL);
	if (m->broker_max_packet && size > m->broker_max_packet) {
		mosquitto_property_free_all(&list);
		return -EINVAL;
	}
	if (qos > 0 && size > m->out_hwm)
		m->out_hwm = size;
	r = mosquitto_publish_v5(lib(m), &mid, topic, (int)len, payload, qos, retain,
	                         m->protocol == 5 ? props : NULL);
	if (ret_mid)
		*ret_mid = mid;
	/* queued with a packet id, also when the write then failed (the link broke): see gateway_spool.c, queued_anyway() */
	if (qos > 0 && mid != 0 && r != MOSQ_ERR_INVAL && r != MOSQ_ERR_NOMEM && r != MOSQ_ERR_PAYLOAD_SIZE &&
	    r != MOSQ_ERR_MALFORMED_UTF8 && r != MOSQ_ERR_OVERSIZE_PACKET && r != MOSQ_ERR_QOS_NOT_SUPPORTED)
		ledger_add(m, mid, qos, topic);
	mosquitto_property_free_all(&list);
	published_flush(m, qos);
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

int mqtt_publish(struct sg_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                 bool retain, const mosquitto_property *props, int *ret_mid)
{
	return publish(m, topic, payload, len, qos, retain, props, NULL, ret_mid);
}

int mqtt_publish_with(struct sg_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                      bool retain, const struct mqtt_props *props, int *ret_mid)
{
	return publish(m, topic, payload, len, qos, retain, NULL, props, ret_mid);
}

int mqtt_subscribe(struct sg_mqtt *m, const char *pattern, int qos)
{
	int r;

	if (!mqtt_connected(m))
		return -ENOTCONN;
	r = mosquitto_subscribe(lib(m), NULL, pattern, qos);
	set_watch(m);
	return r == MOSQ_ERR_SUCCESS ? 0 : (r == MOSQ_ERR_INVAL ? -EINVAL : -EIO);
}

int mqtt_subscribe_no_local(struct sg_mqtt *m, const char *pattern, int qos)
{
	int r;

	if (m->protocol != 5)
		return mqtt_subscribe(m, pattern, qos); /* 3.1.1 has no subscription options */
	if (m->state != ST_CONNECTED)
		return -ENOTCONN;
	r = mosquitto_subscribe_v5(lib(m), NULL, pattern, qos, MQTT_SUB_OPT_NO_LOCAL, NULL);
	set_watch(m);
	return r == MOSQ_ERR_SUCCESS ? 0 : (r == MOSQ_ERR_INVAL ? -EINVAL : -EIO);
}

void mqtt_shutdown(struct sg_mqtt *m, int timeout_ms)
{
	uint64_t end = now_mono_us() + (uint64_t)timeout_ms * 1000;

	close_probe(m);
	m->stopping = true;
	if (m->state == ST_CONNECTED) {
		if (m->status_topic)
			mosquitto_publish(lib(m), NULL, m->status_topic, (int)strlen(config_will_payload(m->cfg)),
			                  config_will_payload(m->cfg), 1, true);
		mosquitto_disconnect(lib(m));
		/* Flush what is queued (the offline status, then DISCONNECT), bounded. */
		while (mosquitto_socket(m->mosq) >= 0 && mosquitto_want_write(m->mosq)) {
			struct pollfd p = {.fd = mqtt_fd(m), .events = POLLOUT};
			uint64_t now = now_mono_us();
			if (now >= end)
				break;
			if (poll(&p, 1, (int)((end - now) / 1000) + 1) <= 0)
				break;
			if (m->guard)
				mqtt_guard_flush(m->guard, true);
			if (mosquitto_loop_write(lib(m), 64) != MOSQ_ERR_SUCCESS)
				break;
		}
		guard_drain(m, end);
	}
	m->state = ST_SHUTDOWN;
	set_watch(m);
}
