/* SPDX-License-Identifier: MIT */
/*
 * line.c — shared serial lines and their transaction scheduler (see line.h).
 *
 * A line is idle, or one user has the turn (owner). A turn becomes a
 * transaction once the owner sends a request:
 *
 *   want ──(round robin, gap passed, not held)── turn() ──┬── line_done(): turn given back
 *                                                         └── line_send() ── written ──┬── no answer awaited: ended(0)
 *                                                                                     └── rx() ... line_done(): answered
 *                                                                                         deadline: ended(-ETIMEDOUT)
 *
 * Timing. Characters take line_char_us() each on the wire; a request of N
 * bytes written at t is taken to be out at t + N characters (the UART
 * drains it meanwhile), and the answer's deadline counts from then. The
 * next request waits until the line has been silent for the largest gap any
 * user asked for (Modbus RTU, Serial Line V1.02 §2.5.1.1: 3.5 characters,
 * 1750 µs above 19200 baud), measured from the end of the last request or
 * the last byte received, whichever is later. While an owner keeps bytes as
 * the start of its answer, the deadline is stretched to give the rest of
 * the answer SG_LINE_BYTE_GAP characters (at least SG_LINE_BYTE_MIN_US,
 * since USB adapters hand bytes over in bursts), so a long answer at a low
 * baud rate is not cut off by a timeout meant for the first byte.
 *
 * Dispatch. Users are called only from line_io() and line_timer(). A user
 * may detach inside any callback: its record stays in the table, marked,
 * until the dispatch is over (and is then freed). A port failure seen
 * inside a user's call (line_send()) is acted on once that call returned.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "line.h"

#define SG_LINE_BYTE_GAP 20            /* characters the rest of an answer may pause */
#define SG_LINE_BYTE_MIN_US 50000ULL   /* ... at least this long (USB latency timers: 1-16 ms) */
#define SG_LINE_READS_PER_IO 16        /* so a chatty device cannot hog the loop */
#define SG_LINE_NAME_MAX 64

struct sg_line_user {
	struct sg_line *line;
	char name[SG_LINE_NAME_MAX];
	struct sg_line_user_params params;
	const struct sg_line_ops *ops;
	void *ctx;
	bool wants;
	bool down;      /* the line failed since this user attached: it must detach */
	bool detached;  /* line_detach() was called during a dispatch: freed at its end */
	unsigned timeouts_in_row;
	uint64_t hold_until;
	struct sg_backoff hold;
};

struct sg_line {
	struct sg_lines *set;
	char *name;                 /* as configured: the path or the USB serial number */
	bool by_usb_serial;
	char *path;                 /* opened at last */
	struct sg_line_settings settings;
	struct sg_serial *serial;   /* NULL while closed */
	unsigned gen;
	double char_us;
	uint64_t gap_us;

	struct sg_line_user **users;
	size_t n_users, cap_users;
	size_t rr;                  /* index of the user that had the last turn; SIZE_MAX: none yet */

	struct sg_line_user *owner; /* has the turn */
	bool txn;                   /* the owner sent a request */
	bool awaiting;              /* ... and waits for an answer */
	uint64_t timeout_us;
	uint64_t deadline;          /* of the transaction */
	uint64_t tx_end;            /* when the last request is out on the wire */
	uint64_t last_rx;           /* when bytes were read last */
	uint64_t quiet_at;          /* the next request may start then */
	uint8_t tx[SG_LINE_TX_MAX];
	size_t tx_len, tx_off;
	uint8_t rx[SG_LINE_RX_MAX];
	size_t rx_len;

	int dispatching;            /* depth of line_io()/line_timer() */
	int pending_fail;           /* a port error seen inside a user's call */
	bool reaped;                /* users were detached during the dispatch */
	struct sg_line_stats stats;
	bool no_counters;           /* the port's driver keeps no UART counters (ptys, most USB adapters) */
	void *loop_data;
};

struct sg_lines {
	struct sg_line **lines;
	size_t n;
	void (*watch)(void *ud, struct sg_line *l);
	void *ud;
};

/* ---- the set ------------------------------------------------------------------------------------ */

struct sg_lines *lines_new(void (*watch)(void *ud, struct sg_line *l), void *ud)
{
	struct sg_lines *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	set->watch = watch;
	set->ud = ud;
	return set;
}

static void line_close_port(struct sg_line *l)
{
	if (l->serial)
		serial_close(l->serial);
	l->serial = NULL;
	l->owner = NULL;
	l->txn = false;
	l->rx_len = 0;
	l->tx_len = l->tx_off = 0;
	l->gen++;
}

void lines_free(struct sg_lines *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++) {
		struct sg_line *l = set->lines[i];

		line_close_port(l);
		for (size_t k = 0; k < l->n_users; k++)
			free(l->users[k]);
		free(l->users);
		free(l->name);
		free(l->path);
		free(l);
	}
	free(set->lines);
	free(set);
}

size_t lines_count(const struct sg_lines *set)
{
	return set ? set->n : 0;
}

struct sg_line *lines_at(const struct sg_lines *set, size_t i)
{
	return set && i < set->n ? set->lines[i] : NULL;
}

/* The line named NAME, made when missing. NULL on ENOMEM. */
static struct sg_line *lines_get(struct sg_lines *set, const char *name, bool by_usb_serial)
{
	struct sg_line **grown, *l;

	for (size_t i = 0; i < set->n; i++)
		if (set->lines[i]->by_usb_serial == by_usb_serial && strcmp(set->lines[i]->name, name) == 0)
			return set->lines[i];
	grown = realloc(set->lines, (set->n + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	set->lines = grown;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->name = strdup(name);
	if (!l->name) {
		free(l);
		return NULL;
	}
	l->set = set;
	l->by_usb_serial = by_usb_serial;
	l->rr = SIZE_MAX; /* the first turn goes to the first user */
	set->lines[set->n++] = l;
	return l;
}

/* ---- small pieces ------------------------------------------------------------------------------- */

static bool user_active(const struct sg_line_user *u)
{
	return u && !u->down && !u->detached;
}

/* Tell the loop's owner that fd, events or deadline may have changed (not while dispatching: at its end). */
static void line_changed(struct sg_line *l)
{
	if (!l->dispatching && l->set->watch)
		l->set->watch(l->set->ud, l);
}

static uint64_t us_of(double us)
{
	return us > 0 ? (uint64_t)(us + 0.5) : 0;
}

static void line_update_gap(struct sg_line *l)
{
	l->gap_us = 0;
	for (size_t i = 0; i < l->n_users; i++) {
		const struct sg_line_user *u = l->users[i];
		uint64_t g;

		if (!user_active(u))
			continue;
		g = us_of(u->params.gap_chars * l->char_us);
		if (g < u->params.gap_min_us)
			g = u->params.gap_min_us;
		if (g > l->gap_us)
			l->gap_us = g;
	}
}

/* The line is busy with bytes until then; the next request waits a gap more. */
static void line_quiet_from_now_on(struct sg_line *l)
{
	uint64_t t = l->tx_end > l->last_rx ? l->tx_end : l->last_rx;

	l->quiet_at = t + l->gap_us;
}

static void line_refresh_counters(struct sg_line *l)
{
	struct sg_serial_counters c;

	if (!l->serial || l->no_counters)
		return;
	if (serial_counters(l->serial, &c) == 0)
		l->stats.uart = c;
	else
		l->no_counters = true;
}

/* Bytes nobody's transaction claimed: to every stream user. */
static void line_stream(struct sg_line *l, const uint8_t *buf, size_t len)
{
	bool taken = false;

	if (!len)
		return;
	for (size_t i = 0; i < l->n_users && l->serial; i++) {
		struct sg_line_user *u = l->users[i];

		if (!user_active(u) || !u->params.stream || !u->ops->stream)
			continue;
		taken = true;
		u->ops->stream(u->ctx, buf, len);
	}
	if (!taken)
		l->stats.unclaimed += len;
}

/* The transaction is over: what its owner did not claim goes to the streams. */
static void line_txn_clear(struct sg_line *l)
{
	uint8_t rest[SG_LINE_RX_MAX];
	size_t n = l->rx_len;

	l->owner = NULL;
	l->txn = false;
	l->awaiting = false;
	l->tx_len = l->tx_off = 0;
	l->rx_len = 0;
	line_refresh_counters(l);
	if (n) {
		memcpy(rest, l->rx, n);
		line_stream(l, rest, n);
	}
}

/* The port failed: close it and tell every user. */
static void line_fail(struct sg_line *l, int err)
{
	if (!l->serial)
		return;
	line_close_port(l);
	for (size_t i = 0; i < l->n_users; i++) {
		struct sg_line_user *u = l->users[i];

		if (!user_active(u))
			continue;
		u->down = true;
		u->wants = false;
	}
	for (size_t i = 0; i < l->n_users; i++) {
		struct sg_line_user *u = l->users[i];

		if (u && !u->detached && u->down && u->ops->down)
			u->ops->down(u->ctx, err);
	}
}

/* ---- attaching ---------------------------------------------------------------------------------- */

static bool settings_equal(const struct sg_line_settings *a, const struct sg_line_settings *b)
{
	return a->baud == b->baud && a->framing.data_bits == b->framing.data_bits &&
	       a->framing.parity == b->framing.parity && a->framing.stop_bits == b->framing.stop_bits;
}

static int line_open_port(struct sg_line *l, const struct sg_line_settings *s)
{
	char *path = NULL;
	int r;

	if (l->by_usb_serial) {
		r = serial_find_by_usb_serial(l->name, &path);
		if (r < 0)
			return r;
	} else {
		path = strdup(l->name);
		if (!path)
			return -ENOMEM;
	}
	l->serial = serial_open(path, s->baud, &s->framing);
	if (!l->serial) {
		r = -errno;
		free(path);
		return r;
	}
	free(l->path);
	l->path = path;
	l->settings = *s;
	l->char_us = serial_char_us(s->baud, &s->framing);
	l->gen++;
	l->stats.opens++;
	l->owner = NULL;
	l->txn = false;
	l->rx_len = 0;
	l->tx_end = l->last_rx = l->quiet_at = 0;
	l->no_counters = false;
	line_refresh_counters(l);
	return 0;
}

int line_attach(struct sg_lines *set, const char *port, const char *usb_serial, const struct sg_line_settings *settings,
                const struct sg_line_user_params *params, const struct sg_line_ops *ops, void *ctx,
                struct sg_line_user **ret)
{
	static const struct sg_line_ops no_ops = {0};
	struct sg_line_user *u, **grown;
	struct sg_line *l;
	int r;

	if (!set || (!port && !usb_serial) || !settings || !params || !ret)
		return -EINVAL;
	if (!serial_baud_valid(settings->baud) || !serial_framing_valid(&settings->framing))
		return -EINVAL;
	l = lines_get(set, port ? port : usb_serial, !port);
	if (!l)
		return -ENOMEM;
	if (l->serial && !settings_equal(&l->settings, settings))
		return -EBUSY;
	if (l->n_users == l->cap_users) {
		size_t cap = l->cap_users ? 2 * l->cap_users : 4;

		grown = realloc(l->users, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		l->users = grown;
		l->cap_users = cap;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	if (!l->serial) {
		r = line_open_port(l, settings);
		if (r < 0) {
			free(u);
			return r;
		}
	}
	u->line = l;
	snprintf(u->name, sizeof(u->name), "%s", params->name ? params->name : "?");
	u->params = *params;
	u->params.name = u->name;
	u->ops = ops ? ops : &no_ops;
	u->ctx = ctx;
	u->hold = (struct sg_backoff)SG_BACKOFF_INIT(SG_LINE_HOLD_MIN_US, SG_LINE_HOLD_MAX_US);
	l->users[l->n_users++] = u;
	line_update_gap(l);
	*ret = u;
	line_changed(l);
	return 0;
}

/* Free the records of users that detached during a dispatch; close a line nobody uses. */
static void line_reap(struct sg_line *l)
{
	size_t k = 0;
	bool any = false;

	for (size_t i = 0; i < l->n_users; i++) {
		struct sg_line_user *u = l->users[i];

		if (u->detached) {
			free(u);
			continue;
		}
		if (k != i && l->rr == i)
			l->rr = k; /* the same user keeps its place in the rotation */
		l->users[k++] = u;
		any = true;
	}
	l->n_users = k;
	if (l->rr >= k)
		l->rr = SIZE_MAX;
	l->reaped = false;
	if (!any)
		line_close_port(l);
	line_update_gap(l);
}

void line_detach(struct sg_line_user *u)
{
	struct sg_line *l;

	if (!u || u->detached)
		return;
	l = u->line;
	u->detached = true;
	u->wants = false;
	if (l->owner == u) {
		/* its transaction is abandoned; the wire stays busy until the request is out */
		l->owner = NULL;
		l->txn = false;
		l->awaiting = false;
		l->tx_len = l->tx_off = 0;
		l->rx_len = 0;
		line_quiet_from_now_on(l);
	}
	if (l->dispatching) {
		l->reaped = true;
		return;
	}
	line_reap(l);
	line_changed(l);
}

/* ---- transactions ------------------------------------------------------------------------------- */

int line_want(struct sg_line_user *u)
{
	struct sg_line *l;

	if (!u || u->detached)
		return -EINVAL;
	l = u->line;
	if (u->down || !l->serial)
		return -ENODEV;
	if (u->wants || l->owner == u)
		return 0;
	u->wants = true;
	line_changed(l);
	return 0;
}

/* Write what fits of the request. 0, or -errno (the port failed). */
static int line_write_some(struct sg_line *l, uint64_t now)
{
	while (l->tx_off < l->tx_len) {
		ssize_t n = serial_write(l->serial, l->tx + l->tx_off, l->tx_len - l->tx_off);

		if (n == -EAGAIN || n == -EINTR)
			return 0;
		if (n < 0)
			return (int)n;
		l->tx_off += (size_t)n;
		l->stats.tx_bytes += (uint64_t)n;
		/* these bytes start now, or once those before them are out */
		l->tx_end = (l->tx_end > now ? l->tx_end : now) + us_of((double)n * l->char_us);
	}
	if (l->awaiting)
		l->deadline = l->tx_end + l->timeout_us;
	return 0;
}

int line_send(struct sg_line_user *u, const void *buf, size_t len, uint64_t timeout_us, uint64_t now_us)
{
	struct sg_line *l;
	int r;

	if (!u || u->detached || !buf || !len)
		return -EINVAL;
	l = u->line;
	if (l->owner != u || l->txn)
		return -EINVAL;
	if (!l->serial || u->down)
		return -ENODEV;
	if (len > sizeof(l->tx))
		return -E2BIG;
	memcpy(l->tx, buf, len);
	l->tx_len = len;
	l->tx_off = 0;
	l->rx_len = 0;
	l->txn = true;
	l->awaiting = timeout_us > 0;
	l->timeout_us = timeout_us;
	l->tx_end = now_us;
	l->deadline = now_us + (l->awaiting ? timeout_us : 0) + SG_LINE_WRITE_TIMEOUT_US; /* until it is all written */
	l->stats.transactions++;
	r = line_write_some(l, now_us);
	if (r < 0) {
		l->pending_fail = r;
		return r;
	}
	line_changed(l);
	return 0;
}

void line_done(struct sg_line_user *u, uint64_t now_us)
{
	struct sg_line *l;

	(void)now_us;
	if (!u || u->detached || u->line->owner != u)
		return;
	l = u->line;
	if (l->txn) {
		u->timeouts_in_row = 0;
		u->hold_until = 0;
		backoff_reset(&u->hold);
		line_quiet_from_now_on(l);
	}
	/* inside rx(), the bytes still in rx[] are sorted out by line_offer() once rx() returned */
	l->owner = NULL;
	l->txn = false;
	l->awaiting = false;
	l->tx_len = l->tx_off = 0;
	line_changed(l);
}

/* The owner's request is out and no answer is awaited: it is over. */
static void line_end_unanswered(struct sg_line *l, uint64_t now)
{
	struct sg_line_user *u = l->owner;

	line_quiet_from_now_on(l);
	line_txn_clear(l);
	if (user_active(u) && u->ops->ended)
		u->ops->ended(u->ctx, 0, now);
}

/* No answer in time (or the request could not be written): the owner's transaction ends. */
static void line_timeout(struct sg_line *l, uint64_t now)
{
	struct sg_line_user *u = l->owner;

	l->stats.timeouts++;
	if (++u->timeouts_in_row >= SG_LINE_HOLD_AFTER) {
		/* the ceiling itself, not a jittered draw: one gateway's own bus has no fleet to spread
		 * out, and a hold of exactly 1 s, 2 s, 4 s ... is what the bus plan and the log promise */
		u->hold_until = now + backoff_ceiling(&u->hold);
		backoff_failed(&u->hold);
	}
	if (l->tx_end > now)
		l->tx_end = now;
	line_quiet_from_now_on(l);
	if (l->quiet_at < now)
		l->quiet_at = now;
	line_txn_clear(l);
	if (user_active(u) && u->ops->ended)
		u->ops->ended(u->ctx, -ETIMEDOUT, now);
}

/* Offer the owner what arrived for it; pass on what it does not want. */
static void line_offer(struct sg_line *l, uint64_t now)
{
	while (l->rx_len && l->owner && l->awaiting && l->serial) {
		struct sg_line_user *u = l->owner;
		ssize_t r = u->ops->rx ? u->ops->rx(u->ctx, l->rx, l->rx_len, now) : -(ssize_t)l->rx_len;
		size_t k;

		if (!l->serial)
			return;
		if (r == 0)
			break;
		k = (size_t)(r > 0 ? r : -r);
		if (k > l->rx_len)
			k = l->rx_len;
		if (r < 0) {
			uint8_t pass[SG_LINE_RX_MAX];

			memcpy(pass, l->rx, k);
			memmove(l->rx, l->rx + k, l->rx_len - k);
			l->rx_len -= k;
			line_stream(l, pass, k);
		} else {
			memmove(l->rx, l->rx + k, l->rx_len - k);
			l->rx_len -= k;
		}
	}
	if (!l->owner || !l->txn) {
		/* the transaction ended (answered, or its owner left): the rest is stream */
		uint8_t rest[SG_LINE_RX_MAX];
		size_t n = l->rx_len;

		l->rx_len = 0;
		if (n) {
			memcpy(rest, l->rx, n);
			line_stream(l, rest, n);
		}
		return;
	}
	if (l->rx_len) { /* the owner holds the start of its answer: give the rest time */
		uint64_t more = us_of(SG_LINE_BYTE_GAP * l->char_us);

		if (more < SG_LINE_BYTE_MIN_US)
			more = SG_LINE_BYTE_MIN_US;
		if (l->deadline < now + more)
			l->deadline = now + more;
	}
}

/* Bytes read from the port. */
static void line_received(struct sg_line *l, const uint8_t *buf, size_t len, uint64_t now)
{
	while (len && l->serial) {
		size_t room, k;

		if (!l->owner || !l->txn || !l->awaiting) {
			line_stream(l, buf, len);
			return;
		}
		room = sizeof(l->rx) - l->rx_len;
		if (room == 0) { /* the owner keeps wanting more than an answer can be: the older half is not its */
			size_t half = sizeof(l->rx) / 2;
			uint8_t pass[SG_LINE_RX_MAX / 2];

			memcpy(pass, l->rx, half);
			memmove(l->rx, l->rx + half, l->rx_len - half);
			l->rx_len -= half;
			line_stream(l, pass, half);
			continue;
		}
		k = len < room ? len : room;
		memcpy(l->rx + l->rx_len, buf, k);
		l->rx_len += k;
		buf += k;
		len -= k;
		line_offer(l, now);
	}
}

static void line_read(struct sg_line *l, uint64_t now);

/* Start turns while the line is free: round robin over the users that want one and are not held. */
static void line_run(struct sg_line *l, uint64_t now)
{
	for (size_t guard = 0; guard <= 2 * l->n_users + 2; guard++) {
		struct sg_line_user *u = NULL;
		size_t at = 0;

		if (l->pending_fail) {
			int err = l->pending_fail;

			l->pending_fail = 0;
			line_fail(l, err);
		}
		if (!l->serial || l->owner || now < l->quiet_at)
			return;
		for (size_t k = 1; k <= l->n_users && !u; k++) {
			size_t i = (l->rr + k) % l->n_users;
			struct sg_line_user *c = l->users[i];

			if (user_active(c) && c->wants && c->hold_until <= now) {
				u = c;
				at = i;
			}
		}
		if (!u)
			return;
		/* whatever arrived before the request is not its answer: the streams' */
		line_read(l, now);
		if (!l->serial || l->owner || u->detached || !u->wants)
			continue;
		l->rr = at;
		u->wants = false;
		l->owner = u;
		if (u->ops->turn)
			u->ops->turn(u->ctx, now);
		if (l->owner != u)
			continue; /* done, detached, or the line failed */
		if (!l->txn) {
			l->owner = NULL; /* nothing sent: the turn is given back */
			continue;
		}
		if (l->pending_fail)
			continue;
		if (l->tx_off == l->tx_len && !l->awaiting) {
			line_end_unanswered(l, now);
			continue;
		}
		return;
	}
}

static void line_dispatch_end(struct sg_line *l)
{
	if (--l->dispatching > 0)
		return;
	if (l->pending_fail) {
		int err = l->pending_fail;

		l->pending_fail = 0;
		l->dispatching++;
		line_fail(l, err);
		l->dispatching--;
	}
	if (l->reaped)
		line_reap(l);
	line_changed(l);
}

/*
 * Read what the port has, at most SG_LINE_READS_PER_IO times; a read error or
 * hang-up fails the line. Then the UART's counters: a line that only streams
 * has no transactions to refresh them, and a break or a bad character comes
 * with a read (the break as a NUL byte).
 */
static void line_read(struct sg_line *l, uint64_t now)
{
	uint8_t buf[SG_LINE_RX_MAX];
	ssize_t n;

	for (int i = 0; i < SG_LINE_READS_PER_IO && l->serial; i++) {
		n = serial_read(l->serial, buf, sizeof(buf));
		if (n > 0) {
			l->stats.rx_bytes += (uint64_t)n;
			l->last_rx = now;
			line_received(l, buf, (size_t)n, now);
			if ((size_t)n < sizeof(buf))
				break; /* drained: no read() just to hear EAGAIN; the (level-triggered) loop says when more comes */
			continue;
		}
		if (n == -EAGAIN || n == -EINTR)
			break;
		line_fail(l, n == 0 ? -EIO : (int)n);
		return;
	}
	line_refresh_counters(l);
}

void line_io(struct sg_line *l, short revents, uint64_t now_us)
{
	int r;

	if (!l || !l->serial)
		return;
	l->dispatching++;
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		/* read what is there first: a device may send its last bytes and hang up */
		line_read(l, now_us);
		if (l->serial && (revents & (POLLHUP | POLLERR)) && !(revents & POLLIN))
			line_fail(l, -EIO);
	}
	if (l->serial && (revents & POLLOUT) && l->txn && l->tx_off < l->tx_len) {
		r = line_write_some(l, now_us);
		if (r < 0)
			line_fail(l, r);
		else if (l->tx_off == l->tx_len && !l->awaiting)
			line_end_unanswered(l, now_us);
	}
	line_run(l, now_us);
	line_dispatch_end(l);
}

void line_timer(struct sg_line *l, uint64_t now_us)
{
	if (!l)
		return;
	l->dispatching++;
	if (l->serial && l->txn && now_us >= l->deadline) {
		if (l->tx_off == l->tx_len && !l->awaiting)
			line_end_unanswered(l, now_us);
		else
			line_timeout(l, now_us);
	}
	line_run(l, now_us);
	line_dispatch_end(l);
}

int line_drive(struct sg_line *l, const bool *busy, uint64_t end_us, uint64_t (*clock)(void))
{
	while (*busy) {
		uint64_t now = clock(), deadline, until;
		struct pollfd p;
		int ms;

		if (!l->serial)
			return -ENODEV;
		if (now >= end_us)
			return -ETIMEDOUT;
		deadline = line_deadline(l);
		until = deadline < end_us ? deadline : end_us;
		ms = until <= now ? 0 : (int)((until - now + 999) / 1000);
		p = (struct pollfd){.fd = line_fd(l), .events = line_events(l)};
		if (poll(&p, 1, ms) > 0)
			line_io(l, p.revents, clock());
		else if (clock() >= deadline)
			line_timer(l, clock());
	}
	return 0;
}

/* ---- what the loop and the users read ------------------------------------------------------------- */

struct sg_line *line_of(const struct sg_line_user *u)
{
	return u ? u->line : NULL;
}

bool line_is_up(const struct sg_line *l)
{
	return l && l->serial;
}

bool line_in_transaction(const struct sg_line *l)
{
	return l && l->serial && l->txn;
}

size_t line_users(const struct sg_line *l, size_t *ret_streams)
{
	size_t n = 0, streams = 0;

	for (size_t i = 0; l && i < l->n_users; i++) {
		if (l->users[i]->detached)
			continue;
		n++;
		streams += l->users[i]->params.stream;
	}
	if (ret_streams)
		*ret_streams = streams;
	return n;
}

const char *line_name(const struct sg_line *l)
{
	return l->name;
}

const char *line_path(const struct sg_line *l)
{
	return l->path ? l->path : l->name;
}

const struct sg_line_settings *line_settings(const struct sg_line *l)
{
	return &l->settings;
}

double line_char_us(const struct sg_line *l)
{
	return l->char_us;
}

bool line_user_held(const struct sg_line_user *u, uint64_t now_us)
{
	return u && u->hold_until > now_us;
}

const struct sg_line_stats *line_stats(const struct sg_line *l)
{
	return &l->stats;
}

bool line_errors_differ(const struct sg_line_stats *a, const struct sg_line_stats *b)
{
	return a->uart.parity != b->uart.parity || a->uart.frame != b->uart.frame || a->uart.overrun != b->uart.overrun ||
	       a->uart.brk != b->uart.brk || a->unclaimed != b->unclaimed;
}

const char *line_errors_text(const struct sg_line_stats *s, char *buf, size_t len)
{
	snprintf(buf, len, "%llu parity errors, %llu framing errors, %llu overruns, %llu breaks, %llu bytes nobody expected",
	         (unsigned long long)s->uart.parity, (unsigned long long)s->uart.frame, (unsigned long long)s->uart.overrun,
	         (unsigned long long)s->uart.brk, (unsigned long long)s->unclaimed);
	return buf;
}

bool line_via_libserialport(const struct sg_line *l)
{
	return l && serial_via_libserialport(l->serial);
}

int line_fd(const struct sg_line *l)
{
	return l && l->serial ? serial_fd(l->serial) : -1;
}

short line_events(const struct sg_line *l)
{
	if (!l || !l->serial)
		return 0;
	return (short)(POLLIN | (l->txn && l->tx_off < l->tx_len ? POLLOUT : 0));
}

unsigned line_fd_generation(const struct sg_line *l)
{
	return l ? l->gen : 0;
}

uint64_t line_deadline(const struct sg_line *l)
{
	uint64_t first = UINT64_MAX;

	if (!l || !l->serial)
		return UINT64_MAX;
	if (l->txn)
		return l->deadline;
	if (l->owner)
		return 0; /* a turn given back inside a callback: run the next one */
	for (size_t i = 0; i < l->n_users; i++) {
		const struct sg_line_user *u = l->users[i];

		if (user_active(u) && u->wants && u->hold_until < first)
			first = u->hold_until;
	}
	if (first == UINT64_MAX)
		return UINT64_MAX;
	return first > l->quiet_at ? first : l->quiet_at;
}

void *line_user_ctx(const struct sg_line_user *u)
{
	return u ? u->ctx : NULL;
}

void **line_loop_data(struct sg_line *l)
{
	return &l->loop_data;
}
