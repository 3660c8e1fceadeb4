/* SPDX-License-Identifier: MIT */
/*
 * commands.h — the command router: MQTT commands in, actuators moved,
 * state and errors out.
 *
 * The router owns every configured actuator (its driver runtime, its
 * state, its queue of at most one command in flight and one waiting) and
 * decides what a command may do:
 *
 *   topic known? ── not empty? ── Response Topic one we may answer on and
 *   Correlation Data <= 128 bytes (response_topic.h)? ── size <= 256? ──
 *   not retained (unless accept_retained)? ── not expired? ── payload valid
 *   for the type (JSON: valid, no duplicate member, not a sensorgate answer)?
 *   ── actuator available? ── min_interval_ms since the last command? ──
 *   interlock group free? ──> the driver moves ──> confirmed ──> state
 *
 * A refused command moves nothing; it is logged (rate-limited per
 * actuator) and answered on the actuator's error topic, and on the
 * command's MQTT 5 Response Topic with its Correlation Data when it has one.
 * A command that succeeds is answered on the Response Topic too. A command
 * whose Response Topic is refused is refused whole (answered on the error
 * topic only). Answers on a Response Topic go out at QoS 0, not retained:
 * a topic a client chose must not be able to hold the session hostage (a
 * QoS 1 message the broker refuses would be sent again after every
 * reconnect). The state topic (retained) changes only once the driver has
 * confirmed the change.
 *
 * It knows nothing of MQTT or of the event loop: the gateway translates
 * incoming messages into struct sg_cmd_msg, gives it callbacks to publish
 * and subscribe, polls commands_fd()/commands_events() for each actuator
 * and calls commands_timer() at commands_deadline(), re-reading those after
 * every call. Time comes in as a CLOCK_MONOTONIC argument so tests can drive it.
 *
 * Interlock: switching an actuator ON is refused while another actuator
 * of its group is, or may be, on (its state unknown, or a command to switch
 * it on in progress); switch the other OFF first. Nothing is ever switched
 * off implicitly. OFF is always accepted.
 */
#ifndef SG_COMMANDS_H
#define SG_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../drivers/actuator.h"
#include "config.h"

#define SG_CMD_MAX_PAYLOAD 256 /* longer commands are refused unread */

struct sg_commands;

/* An incoming command; everything is borrowed for the duration of the call. */
struct sg_cmd_msg {
	const char *topic;
	const void *payload;
	size_t len;
	bool retain;                /* delivered as a retained message (a stale one, at subscribe time) */
	bool has_expiry;            /* MQTT 5 Message Expiry Interval present */
	uint32_t expiry_s;          /* its remaining lifetime, seconds */
	const char *response_topic; /* MQTT 5 Response Topic, or NULL */
	size_t response_topic_len;  /* its bytes (it may hold a NUL, which is refused); 0: strlen() */
	const void *correlation;    /* MQTT 5 Correlation Data, or NULL */
	size_t correlation_len;
};

/* How the router reaches the rest of the gateway. */
struct sg_cmd_env {
	/* Publish; CORRELATION (may be NULL) goes out as MQTT 5 Correlation Data. 0 or -errno. */
	int (*publish)(void *ud, const char *topic, const void *payload, size_t len, int qos, bool retain,
	               const void *correlation, size_t correlation_len);
	/* Subscribe to TOPIC at QOS. 0 or -errno. */
	int (*subscribe)(void *ud, const char *topic, int qos);
	/* Actuator I's fd is about to be closed: stop polling it now (its number may be reused at once). */
	void (*closing)(void *ud, size_t i);
	/* Actuator drivers to use, NULL-terminated; NULL = the registry (tests put fakes here). A substitute
	 * gets the options parsed by the registry's driver of the same name (params->opts). */
	const struct sg_act_driver *const *drivers;
	/* Buses for the drivers; NULL = the real ones. */
	const struct sg_act_buses *buses;
};

/*
 * A router for CFG's actuators (CFG and ENV are borrowed and must outlive
 * it). Opens every actuator now, driving it to its `initial` state; one
 * that cannot be opened is retried with backoff (logged), it does not fail
 * this. NULL with errno: ENOMEM, or EINVAL for an actuator driver that does not exist.
 */
struct sg_commands *commands_new(const struct sg_config *cfg, const struct sg_cmd_env *env, void *ud,
                                 uint64_t now_us);
void commands_free(struct sg_commands *c);

/*
 * The broker connection is (again) up: subscribe to every command topic,
 * publish every known state, then what the fail-safe did meanwhile (on the
 * error topics); the fail-safe timers stop.
 */
void commands_connected(struct sg_commands *c);
/*
 * The broker connection is gone: actuators with fail_safe_after_s go to
 * their safe state that long from NOW_US (at a commands_timer(); see
 * commands_deadline()) unless commands_connected() comes first. The router
 * starts as disconnected: the time counts from commands_new() too.
 */
void commands_disconnected(struct sg_commands *c, uint64_t now_us);
/* Home Assistant's status topic said "offline": actuators with fail_safe_on_ha_offline go to their safe state. */
void commands_ha_offline(struct sg_commands *c, uint64_t now_us);
/* True when an actuator listens to Home Assistant's status (the gateway then subscribes to it). */
bool commands_wants_ha_status(const struct sg_commands *c);
/* How often actuator I's fail-safe fired. */
uint64_t commands_fail_safe_count(const struct sg_commands *c, size_t i);

/*
 * The members of the JSON object S[0..LEN) (a cloud service's desired
 * state: {"hall-light":"ON","fan":40,"$version":7}), each handed to FN
 * with its name, its value as text (a string unescaped, a number as
 * written, "true"/"false"; NULL for an object or array) and its raw JSON;
 * null members are left out. The whole document is checked first: 0, or
 * -EINVAL (not a JSON object), -EEXIST (a member twice), -E2BIG (more
 * names than a command may hold) and FN is never called.
 */
int commands_json_each(const char *s, size_t len,
                       void (*fn)(void *ud, const char *name, const char *scalar, const char *raw, size_t raw_len),
                       void *ud);

/*
 * Route one incoming message. Returns 0 when the command was carried out
 * or accepted (in progress or queued behind the one in progress), else why
 * it was dropped or refused: -ENOENT unknown topic, -EMSGSIZE too long
 * (payload or Correlation Data), -EACCES a Response Topic the gateway does
 * not answer on, -ENODATA empty (e.g. a retained command being cleared:
 * ignored silently),
 * -EPERM retained, -ETIME expired, -EINVAL invalid payload, -ENODEV
 * actuator unavailable, -EAGAIN within min_interval_ms, -EBUSY interlock,
 * or the driver's -errno.
 */
int commands_message(struct sg_commands *c, const struct sg_cmd_msg *msg, uint64_t now_us);

/*
 * After a reload the gateway publishes readings and discovery under CFG's
 * base topic and prefix (which may differ from the configuration the router
 * was built with): Response Topics there are refused as well. CFG is
 * borrowed until the next call or commands_free(); NULL forgets it.
 */
void commands_reloaded(struct sg_commands *c, const struct sg_config *cfg);

/* Event-loop hooks, per actuator index (0 .. commands_count()-1). */
size_t commands_count(const struct sg_commands *c);
int commands_fd(const struct sg_commands *c, size_t i);                /* -1: nothing to poll */
short commands_events(const struct sg_commands *c, size_t i);          /* POLLIN/POLLOUT */
unsigned commands_fd_generation(const struct sg_commands *c, size_t i); /* changes when the fd is replaced */
void commands_io(struct sg_commands *c, size_t i, short revents, uint64_t now_us);
uint64_t commands_deadline(const struct sg_commands *c); /* UINT64_MAX: no timer needed */
void commands_timer(struct sg_commands *c, uint64_t now_us);
/*
 * The hardware at PLACE (a serial port: what an actuator's driver names as
 * where it is) works again, for a device or an actuator on it: every
 * actuator there still waiting out its reopen backoff tries at the next
 * commands_timer() (a replugged cable serves a device and several relays at
 * once; none should answer "unavailable" after it is back).
 */
void commands_hardware_back(struct sg_commands *c, const char *place, uint64_t now_us);

/*
 * Stopping: drive every actuator to its `safe` state (default: `initial`;
 * neither: left as it is), blocking at most TIMEOUT_MS each, publish the
 * resulting states, and release the hardware. Call before the MQTT
 * connection is shut down.
 */
void commands_shutdown(struct sg_commands *c, int timeout_ms);

/* The confirmed state of actuator I as its payload ("ON", "42", "low"), or NULL while unknown. */
const char *commands_state(const struct sg_commands *c, size_t i);
/* True while actuator I's hardware is open. */
bool commands_up(const struct sg_commands *c, size_t i);

#endif
