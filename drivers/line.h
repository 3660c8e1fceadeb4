/* SPDX-License-Identifier: MIT */
/*
 * line.h — a serial line shared by every device and actuator that names it.
 *
 * One port (a `port` path or a `usb_serial` number) is one line: opened once
 * with one baud rate and framing, when its first user attaches, and closed
 * when its last user detaches. Users come in two kinds, and a line may carry
 * both:
 *
 *  - request users (Modbus slaves, an MH-Z19, serial actuators) get the line
 *    one transaction at a time: line_want() asks for a turn; the line calls
 *    ops->turn() when the user's turn has come, in round-robin order among
 *    those waiting, and not before the silence a user asked for (Modbus RTU's
 *    3.5 characters) has passed since the last byte on the wire. In turn()
 *    the user sends a request with line_send() (or gives the turn back with
 *    line_done()). Bytes received then go to that user first (ops->rx()): it
 *    claims the bytes of its answer and passes on what is not its answer;
 *    line_done() ends the transaction. No answer within the timeout ends it
 *    with ops->ended(-ETIMEDOUT). A user whose requests time out twice in a
 *    row is held back (1 s, doubling to 60 s) until it answers again, so a
 *    dead slave costs the others one timeout per hold, not one per request.
 *  - stream users (a `lines` device, NMEA, DSMR) receive every byte that no
 *    transaction claimed (ops->stream()).
 *
 * A read or write error, or a hang-up (the adapter unplugged), closes the
 * port and tells every user (ops->down()); each detaches, and the first one
 * to attach again reopens the port for all: the line survives its users'
 * errors and comes back after a replug.
 *
 * Nothing here blocks, sleeps or reads a clock: every call that needs the
 * time takes `now` (CLOCK_MONOTONIC µs), so a test drives it with an
 * explicit clock. The owner of the event loop watches each line's fd for
 * line_events() and calls line_io(), and calls line_timer() at
 * line_deadline(); the set's watch callback tells it when these changed.
 * Callbacks into users run only from line_io() and line_timer(), never from
 * inside a call a user made. Nothing is logged (counters: line_stats()).
 *
 * Ownership: the set owns its lines, a line its port and its user records
 * (struct sg_line_user, valid from line_attach() to line_detach()).
 */
#ifndef SG_LINE_H
#define SG_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bus_serial.h"
#include "driver.h" /* struct sg_opt_error, libconfig */

#define SG_LINE_HOLD_AFTER 2                  /* timeouts in a row before a user is held back */
#define SG_LINE_HOLD_MIN_US (1 * 1000000ULL)
#define SG_LINE_HOLD_MAX_US (60 * 1000000ULL)
#define SG_LINE_RX_MAX 512                    /* bytes of an answer kept for its user */
#define SG_LINE_TX_MAX 1024                   /* longest request */
#define SG_LINE_WRITE_TIMEOUT_US (1000000ULL) /* a request with no answer awaited must be out by then */

struct sg_lines;
struct sg_line;
struct sg_line_user;

/* How the port is set up; every user of a line shares it. */
struct sg_line_settings {
	int baud;
	struct sg_serial_framing framing;
};

/* What a user is called with; CTX is what it gave line_attach(). Every member may be NULL. */
struct sg_line_ops {
	/* The line is yours: line_send() a request, or line_done() when there is nothing to send. */
	void (*turn)(void *ctx, uint64_t now_us);
	/*
	 * Bytes received since your request and not yet claimed: return N > 0
	 * to claim the first N (your answer, or part of it), -N when the first
	 * N are not yours (they go to the stream users), 0 to wait for more.
	 * Call line_done() once the answer is complete.
	 */
	ssize_t (*rx)(void *ctx, const uint8_t *buf, size_t len, uint64_t now_us);
	/* Your transaction is over without line_done(): 0 when the request is out and no answer was
	 * awaited; -ETIMEDOUT when no answer (or not the whole request) went through in time. */
	void (*ended)(void *ctx, int result, uint64_t now_us);
	/* Stream users: bytes no transaction claimed. */
	void (*stream)(void *ctx, const uint8_t *buf, size_t len);
	/* The line failed (-EIO, a hang-up ...): the port is closed. Detach; attach again later. */
	void (*down)(void *ctx, int err);
};

struct sg_line_user_params {
	const char *name;   /* the device or actuator, for --check and messages */
	bool stream;        /* receives what no transaction claims */
	double gap_chars;   /* silence needed on the wire before this user's requests, in characters ... */
	uint64_t gap_min_us; /* ... and at least this long (Modbus RTU: 3.5 characters, >= 1750 µs) */
};

struct sg_line_stats {
	uint64_t rx_bytes, tx_bytes;
	uint64_t transactions;    /* requests sent */
	uint64_t timeouts;        /* transactions that ended without an answer */
	uint64_t unclaimed;       /* bytes neither a transaction nor a stream user took */
	uint64_t opens;           /* times the port was opened */
	struct sg_serial_counters uart; /* parity, framing, overrun errors and breaks the UART counted (0 on ptys) */
};

/*
 * A set of lines. WATCH (may be NULL) is called with the line whose fd,
 * events or deadline changed, outside of any user callback. NULL on ENOMEM.
 */
struct sg_lines *lines_new(void (*watch)(void *ud, struct sg_line *l), void *ud);
/* Close and free every line; their users must have detached. */
void lines_free(struct sg_lines *set);
size_t lines_count(const struct sg_lines *set);
struct sg_line *lines_at(const struct sg_lines *set, size_t i);

/*
 * Attach a user to the line named PORT (a path) or, when PORT is NULL,
 * USB_SERIAL (a USB serial number, looked up at each opening); the line is
 * made on first use. A closed line is opened now with SETTINGS; an open one
 * must have been opened with the same SETTINGS (-EBUSY otherwise). 0 with
 * *ret (owned by the line until line_detach()), or -errno from opening the
 * port (-ENOENT, -EBUSY, -EACCES ...), -ENOMEM, -EINVAL.
 */
int line_attach(struct sg_lines *set, const char *port, const char *usb_serial, const struct sg_line_settings *settings,
                const struct sg_line_user_params *params, const struct sg_line_ops *ops, void *ctx,
                struct sg_line_user **ret);
/* Leave the line (any turn or transaction of U is dropped without callbacks). The last user closes the port. */
void line_detach(struct sg_line_user *u);

/* Ask for a turn (no effect while U has one or is waiting). 0, or -ENODEV when the line went down. */
int line_want(struct sg_line_user *u);
/*
 * In turn(): write LEN bytes (at most SG_LINE_TX_MAX) and wait up to
 * TIMEOUT_US after the last of them went out for an answer (0: none is
 * awaited; ended(0) follows once it is written). 0, -EINVAL when U does not
 * have the turn, -E2BIG, or -errno when the port failed (down() follows).
 */
int line_send(struct sg_line_user *u, const void *buf, size_t len, uint64_t timeout_us, uint64_t now_us);
/* In turn() or rx(): the transaction (or the turn) of U is over, answered. */
void line_done(struct sg_line_user *u, uint64_t now_us);

struct sg_line *line_of(const struct sg_line_user *u);
/* The line is open (false after it went down, until someone attaches again). */
bool line_is_up(const struct sg_line *l);
/* A request is out (or being written) and its transaction not over. */
bool line_in_transaction(const struct sg_line *l);
/* Users attached, and of them those that read the stream. */
size_t line_users(const struct sg_line *l, size_t *ret_streams);
/* The port as configured (path or USB serial number), and the path it was opened at last. */
const char *line_name(const struct sg_line *l);
const char *line_path(const struct sg_line *l);
const struct sg_line_settings *line_settings(const struct sg_line *l);
/* Microseconds one character takes at the line's baud rate and framing. */
double line_char_us(const struct sg_line *l);
/* What U gave line_attach() as CTX. */
void *line_user_ctx(const struct sg_line_user *u);
/* True while U is held back after repeated timeouts. */
bool line_user_held(const struct sg_line_user *u, uint64_t now_us);
const struct sg_line_stats *line_stats(const struct sg_line *l);
/* True if A and B differ in the line's errors: the UART's counters or the bytes nobody expected. */
bool line_errors_differ(const struct sg_line_stats *a, const struct sg_line_stats *b);
/* "P parity errors, F framing errors, O overruns, B breaks, U bytes nobody expected" into BUF; returns BUF. */
const char *line_errors_text(const struct sg_line_stats *s, char *buf, size_t len);
/* The port is open through libserialport (false: termios, or closed). */
bool line_via_libserialport(const struct sg_line *l);

/* The event loop's side. */
int line_fd(const struct sg_line *l);                 /* -1 while closed */
short line_events(const struct sg_line *l);           /* POLLIN, plus POLLOUT while a request is being written */
unsigned line_fd_generation(const struct sg_line *l); /* changes whenever the port is reopened */
uint64_t line_deadline(const struct sg_line *l);      /* when line_timer() is due; UINT64_MAX: never */
void line_io(struct sg_line *l, short revents, uint64_t now_us);
void line_timer(struct sg_line *l, uint64_t now_us);
/*
 * Shutdown only, with the event loop stopped: run L here (poll() on its fd,
 * its deadlines, CLOCK() for the time) until *BUSY is false or END_US.
 * Blocks. 0, -ETIMEDOUT, or -ENODEV when the line is down.
 */
int line_drive(struct sg_line *l, const bool *busy, uint64_t end_us, uint64_t (*clock)(void));
/* For the owner of the loop: one pointer it may hang on each line. */
void **line_loop_data(struct sg_line *l);

/* ---- a sensor driver as a user of its line (line_dev.c) ------------------------------------------------ */

/*
 * Put device DEV on the line of PORT (or USB_SERIAL) with SETTINGS: a
 * request driver (driver->request) as a request user whose turns go to
 * request(), answer() and no_answer(); a streaming one (sg_driver_streams())
 * as a stream user fed through feed(). DOWN(dev, err) is called when the
 * line fails (then line_dev_detach(), and attach again later). Sets
 * dev->line. 0, or -errno as line_attach().
 */
int line_dev_attach(struct sg_lines *set, struct sg_dev *dev, const char *port, const char *usb_serial,
                    const struct sg_line_settings *settings, void (*down)(struct sg_dev *dev, int err));
void line_dev_detach(struct sg_dev *dev);
/* A request driver's poll() readied a cycle: ask for turns until request() says it is over. 0 or -ENODEV. */
int line_dev_want(struct sg_dev *dev);

/* ---- configuration: the serial keys of a device or an actuator (line_config.c) ------------------------ */

enum sg_line_key {
	SG_LINE_KEY_BAUD = 0,
	SG_LINE_KEY_DATA_BITS,
	SG_LINE_KEY_PARITY,
	SG_LINE_KEY_STOP_BITS,
	SG_LINE_KEY_N,
};

/* Where an entry's line is and how it wants it set up. */
struct sg_line_spec {
	char *port;                      /* a path, or NULL */
	char *usb_serial;                /* or a USB serial number */
	struct sg_line_settings settings;
	int set_at[SG_LINE_KEY_N];       /* configuration line of each setting the entry names, 0: its driver's default */
};

/* port, usb_serial, baud, data_bits, parity, stop_bits. */
extern const char *const sg_line_keys[];

/*
 * Read the serial keys of group G into *SPEC, whose settings hold the
 * defaults on entry: `port` (which must exist) or `usb_serial`, one of them
 * required; `baud` (a standard rate); `data_bits` 7 or 8; `parity` "none",
 * "even" or "odd"; `stop_bits` 1 or 2. WHAT names the entry in messages
 * ("device \"meter\""). 0, -EINVAL with *err (the line of the key at fault),
 * or -ENOMEM. Strings are copied (line_spec_release()).
 */
int line_spec_parse(const config_setting_t *g, const char *what, struct sg_line_spec *spec, struct sg_opt_error *err);
void line_spec_release(struct sg_line_spec *spec);
/* "8N1", "8E1", "7E1", "8N2" ... into *RET. 0 or -EINVAL. */
int line_framing_parse(const char *text, struct sg_serial_framing *ret);
/* The name of parity P ("none", "even", "odd"). */
const char *line_parity_name(char p);

#endif
