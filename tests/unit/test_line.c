/* SPDX-License-Identifier: MIT */
/*
 * test_line.c — the shared serial line and its transaction scheduler (drivers/line.c), on
 * real pseudo-terminals, with an explicit clock: the test passes every `now` itself and
 * plays the devices on the pty master, so no case sleeps or depends on the machine's speed.
 *
 * Covered: one port for every user naming it (and a refusal of other settings while it is
 * open); the framing as termios flags (8E1 with INPCK and IGNPAR, 7E1 with ISTRIP, 8O2 with
 * CSTOPB; PARENB and CS7 only where the tty keeps them: Linux's pty driver forces CS8
 * without parity, drivers/tty/pty.c pty_set_termios(), so a pty shows the input flags and
 * the rig's 16550A shows the rest); turns in round-robin
 * order; the silence before a request (3.5 characters at 9600 8E1, 1750 µs at 115200)
 * counted from the last byte on the wire; the answer's deadline counted from the end of the
 * request on the wire, stretched while an answer is arriving; a user that times out twice
 * in a row held back 1 s, then 2 s, while the others keep their turns, and let go by an
 * answer; bytes claimed by the owner, passed on to the stream user, and counted when nobody
 * takes them; input that arrived before a request not taken for its answer; a request
 * without an answer; users leaving inside their own callbacks; the port failing (every user
 * told) and opened again at the next attach.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/line.h"

#define T0 1000000000ULL
#define MS 1000ULL
#define WAIT_MS 2000

/* ---- the device side: a pty master -------------------------------------------------------------- */

struct pty {
	int master;
	char path[64];
};

static void pty_open(struct pty *p)
{
	struct termios tio;

	p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	assert_true(p->master >= 0);
	assert_int_equal(grantpt(p->master), 0);
	assert_int_equal(unlockpt(p->master), 0);
	assert_int_equal(ptsname_r(p->master, p->path, sizeof(p->path)), 0);
	assert_int_equal(tcgetattr(p->master, &tio), 0);
	cfmakeraw(&tio);
	assert_int_equal(tcsetattr(p->master, TCSANOW, &tio), 0);
}

static void pty_close(struct pty *p)
{
	if (p->master >= 0)
		close(p->master);
	p->master = -1;
}

/* Read exactly LEN bytes the line wrote, waiting at most WAIT_MS. */
static void pty_expect(struct pty *p, const char *want)
{
	char buf[256];
	size_t got = 0, len = strlen(want);

	while (got < len) {
		struct pollfd pfd = {.fd = p->master, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, WAIT_MS) <= 0)
			break;
		n = read(p->master, buf + got, len - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	assert_int_equal(got, len);
	assert_memory_equal(buf, want, len);
}

static void pty_nothing(struct pty *p)
{
	struct pollfd pfd = {.fd = p->master, .events = POLLIN};

	assert_int_equal(poll(&pfd, 1, 20), 0);
}

static void pty_say(struct pty *p, const char *s)
{
	assert_int_equal(write(p->master, s, strlen(s)), (ssize_t)strlen(s));
}

/* Let the line read what the device said (the bytes are in the kernel once write() returned). */
static void line_hear(struct sg_line *l, uint64_t now)
{
	struct pollfd pfd = {.fd = line_fd(l), .events = POLLIN};

	assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
	line_io(l, pfd.revents, now);
}

/* ---- users that record what happens to them ---------------------------------------------------------- */

struct user {
	const char *name;
	struct sg_line_user *u;
	struct sg_line_user_params params;
	const char *request;  /* sent at each turn; NULL: give the turn back */
	uint64_t timeout_us;
	const char *answer;   /* claimed when it appears (from the start of what arrived), then done */
	int turns, answered, ended_ok, timeouts, downs, down_err;
	char stream[512];     /* what the stream delivered */
	size_t stream_len;
	bool leave_on_end;    /* detach inside ended() */
	char *log;            /* shared: "A B C ..." turns in order */
};

static void on_turn(void *ctx, uint64_t now)
{
	struct user *x = ctx;

	x->turns++;
	if (x->log)
		strncat(x->log, x->name, 64);
	if (!x->request) {
		line_done(x->u, now);
		return;
	}
	assert_int_equal(line_send(x->u, x->request, strlen(x->request), x->timeout_us, now), 0);
}

static ssize_t on_rx(void *ctx, const uint8_t *buf, size_t len, uint64_t now)
{
	struct user *x = ctx;
	size_t alen = x->answer ? strlen(x->answer) : 0;
	const char *nl;

	if (!x->answer)
		return -(ssize_t)len;
	if (len >= alen && memcmp(buf, x->answer, alen) == 0) {
		x->answered++;
		line_done(x->u, now);
		return (ssize_t)alen;
	}
	if (len < alen && memcmp(buf, x->answer, len) == 0)
		return 0; /* the start of the answer */
	nl = memchr(buf, '\n', len);
	return nl ? -(ssize_t)(nl - (const char *)buf + 1) : 0; /* a line that is not ours */
}

static void on_ended(void *ctx, int result, uint64_t now)
{
	struct user *x = ctx;

	(void)now;
	if (result == 0)
		x->ended_ok++;
	else if (result == -ETIMEDOUT)
		x->timeouts++;
	if (x->leave_on_end) {
		line_detach(x->u);
		x->u = NULL;
	}
}

static void on_stream(void *ctx, const uint8_t *buf, size_t len)
{
	struct user *x = ctx;

	assert_true(x->stream_len + len < sizeof(x->stream));
	memcpy(x->stream + x->stream_len, buf, len);
	x->stream_len += len;
	x->stream[x->stream_len] = '\0';
}

static void on_down(void *ctx, int err)
{
	struct user *x = ctx;

	x->downs++;
	x->down_err = err;
}

static const struct sg_line_ops ops = {
	.turn = on_turn, .rx = on_rx, .ended = on_ended, .stream = on_stream, .down = on_down,
};

static const struct sg_line_settings s9600_8e1 = {.baud = 9600, .framing = {8, 'E', 1}};

static void user_attach(struct sg_lines *set, const char *path, const struct sg_line_settings *s, struct user *x)
{
	x->params.name = x->name;
	assert_int_equal(line_attach(set, path, NULL, s, &x->params, &ops, x, &x->u), 0);
}

/* ---- the cases -------------------------------------------------------------------------------------- */

static int n_watch;

static void count_watch(void *ud, struct sg_line *l)
{
	(void)ud;
	(void)l;
	n_watch++;
}

static void test_one_port_for_all(void **state)
{
	struct sg_line_settings other = s9600_8e1;
	struct sg_lines *set = lines_new(count_watch, NULL);
	struct user a = {.name = "a"}, b = {.name = "b"}, c = {.name = "c"};
	struct sg_line *l;
	unsigned gen;
	struct pty p;

	(void)state;
	pty_open(&p);
	n_watch = 0;
	user_attach(set, p.path, &s9600_8e1, &a);
	user_attach(set, p.path, &s9600_8e1, &b);
	assert_int_equal(lines_count(set), 1);
	l = line_of(a.u);
	assert_ptr_equal(line_of(b.u), l);
	assert_true(line_is_up(l));
	assert_true(line_fd(l) >= 0);
	assert_int_equal(line_users(l, NULL), 2);
	assert_true(n_watch > 0);
	assert_string_equal(line_name(l), p.path);
	/* 11 bits a character at 9600 baud */
	assert_true(line_char_us(l) > 1145.8 && line_char_us(l) < 1145.9);
	/* another rate while it is open: refused, the line untouched */
	other.baud = 19200;
	c.params.name = "c";
	assert_int_equal(line_attach(set, p.path, NULL, &other, &c.params, &ops, &c, &c.u), -EBUSY);
	assert_int_equal(line_users(l, NULL), 2);
	/* the last one out closes the port; the next one in opens it again */
	gen = line_fd_generation(l);
	line_detach(a.u);
	assert_true(line_is_up(l));
	line_detach(b.u);
	assert_false(line_is_up(l));
	assert_int_equal(line_fd(l), -1);
	assert_int_equal(line_attach(set, p.path, NULL, &other, &c.params, &ops, &c, &c.u), 0);
	assert_true(line_is_up(l));
	assert_true(line_fd_generation(l) != gen);
	assert_int_equal(line_settings(l)->baud, 19200);
	assert_int_equal(line_stats(l)->opens, 2);
	line_detach(c.u);
	/* a port that is not there */
	assert_int_equal(line_attach(set, "/dev/sg-no-such-port", NULL, &s9600_8e1, &c.params, &ops, &c, &c.u), -ENOENT);
	lines_free(set);
	pty_close(&p);
}

static void test_framing_flags(void **state)
{
	static const struct {
		struct sg_serial_framing f;
		tcflag_t csize;
		bool parenb, parodd, cstopb, istrip;
	} cases[] = {
		{{8, 'N', 1}, CS8, false, false, false, false},
		{{8, 'E', 1}, CS8, true, false, false, false},
		{{7, 'E', 1}, CS7, true, false, false, true},
		{{8, 'O', 2}, CS8, true, true, true, false},
		{{8, 'N', 2}, CS8, false, false, true, false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_line_settings s = {.baud = 9600, .framing = cases[i].f};
		struct sg_lines *set = lines_new(NULL, NULL);
		struct user a = {.name = "a"};
		struct termios tio;
		char fr[8];
		struct pty p;

		pty_open(&p);
		user_attach(set, p.path, &s, &a);
		assert_int_equal(tcgetattr(line_fd(line_of(a.u)), &tio), 0);
		print_message("%s\n", serial_framing_text(&cases[i].f, fr, sizeof(fr)));
		/* a pty forces CS8 and clears PARENB; a tty that keeps them must show ours */
		if ((tio.c_cflag & CSIZE) != CS8 || cases[i].csize == CS8)
			assert_int_equal(tio.c_cflag & CSIZE, cases[i].csize);
		if (tio.c_cflag & PARENB)
			assert_true(cases[i].parenb);
		if (cases[i].parenb)
			assert_int_equal(!!(tio.c_cflag & PARODD), cases[i].parodd);
		assert_int_equal(!!(tio.c_cflag & CSTOPB), cases[i].cstopb);
		assert_int_equal(!!(tio.c_iflag & ISTRIP), cases[i].istrip);
		assert_int_equal(!!(tio.c_iflag & INPCK), cases[i].parenb);
		assert_int_equal(!!(tio.c_iflag & IGNPAR), cases[i].parenb);
		assert_int_equal(cfgetospeed(&tio), B9600);
		line_detach(a.u);
		lines_free(set);
		pty_close(&p);
	}
}

static void test_round_robin_and_gaps(void **state)
{
	char log[64] = "";
	struct user a = {.name = "A", .request = "qa", .timeout_us = 100 * MS, .answer = "ra", .log = log};
	struct user b = {.name = "B", .request = "qb", .timeout_us = 100 * MS, .answer = "rb", .log = log};
	struct user c = {.name = "C", .request = "qc", .timeout_us = 100 * MS, .answer = "rc", .log = log};
	struct sg_lines *set = lines_new(NULL, NULL);
	uint64_t gap, t;
	struct sg_line *l;
	struct pty p;

	(void)state;
	pty_open(&p);
	a.params.gap_chars = b.params.gap_chars = c.params.gap_chars = 3.5;
	a.params.gap_min_us = b.params.gap_min_us = c.params.gap_min_us = 1750;
	user_attach(set, p.path, &s9600_8e1, &a);
	user_attach(set, p.path, &s9600_8e1, &b);
	user_attach(set, p.path, &s9600_8e1, &c);
	l = line_of(a.u);
	gap = 4010; /* 3.5 × 1145.8 µs, more than 1750 µs */
	assert_true(line_deadline(l) == UINT64_MAX); /* nobody wants a turn */
	assert_int_equal(line_want(c.u), 0);
	assert_int_equal(line_want(b.u), 0);
	assert_int_equal(line_want(a.u), 0);
	assert_int_equal(line_want(a.u), 0); /* twice is once */
	assert_true(line_deadline(l) <= T0);

	/* A first (the first user), its request out at T0: 2 characters, answer due 100 ms after */
	line_timer(l, T0);
	assert_string_equal(log, "A");
	pty_expect(&p, "qa");
	assert_true(line_in_transaction(l));
	assert_true(line_deadline(l) == T0 + 2292 + 100 * MS);
	/* the answer, in two pieces: the deadline stretches for the rest */
	pty_say(&p, "r");
	line_hear(l, T0 + 90 * MS);
	assert_int_equal(a.answered, 0);
	assert_true(line_deadline(l) == T0 + 90 * MS + 50 * MS);
	pty_say(&p, "a");
	line_hear(l, T0 + 120 * MS);
	assert_int_equal(a.answered, 1);
	assert_false(line_in_transaction(l));
	/* B next, but not before the line has been quiet for 3.5 characters */
	assert_true(line_deadline(l) == T0 + 120 * MS + gap);
	line_timer(l, T0 + 120 * MS + gap - 1);
	assert_string_equal(log, "A");
	pty_nothing(&p);
	t = T0 + 120 * MS + gap;
	line_timer(l, t);
	assert_string_equal(log, "AB");
	pty_expect(&p, "qb");
	/* B gets no answer: over 100 ms after its request is out; the wire has been quiet
	 * longer than a gap by then, so C follows at once */
	line_timer(l, t + 2292 + 100 * MS - 1);
	assert_int_equal(b.timeouts, 0);
	assert_string_equal(log, "AB");
	line_want(a.u);
	assert_int_equal(line_want(b.u), 0); /* no effect while it has the line */
	t += 2292 + 100 * MS;
	line_timer(l, t);
	line_want(b.u);
	assert_int_equal(b.timeouts, 1);
	assert_int_equal(line_stats(l)->timeouts, 1);
	assert_string_equal(log, "ABC");
	pty_expect(&p, "qc");
	pty_say(&p, "rc");
	line_hear(l, t + 10 * MS);
	/* then A and B again, in their order */
	line_timer(l, t + 10 * MS + gap);
	assert_string_equal(log, "ABCA");
	pty_expect(&p, "qa");
	pty_say(&p, "ra");
	line_hear(l, t + 20 * MS);
	line_timer(l, t + 20 * MS + gap);
	assert_string_equal(log, "ABCAB");
	pty_expect(&p, "qb");

	line_detach(a.u);
	line_detach(b.u);
	line_detach(c.u);
	lines_free(set);
	pty_close(&p);
}

static void test_fast_line_gap(void **state)
{
	struct sg_line_settings fast = {.baud = 115200, .framing = {8, 'E', 1}};
	struct user a = {.name = "A", .request = "q", .timeout_us = 10 * MS, .answer = "r"};
	struct sg_lines *set = lines_new(NULL, NULL);
	struct sg_line *l;
	struct pty p;

	(void)state;
	pty_open(&p);
	a.params.gap_chars = 3.5;
	a.params.gap_min_us = 1750;
	user_attach(set, p.path, &fast, &a);
	l = line_of(a.u);
	line_want(a.u);
	line_timer(l, T0);
	pty_expect(&p, "q");
	pty_say(&p, "r");
	line_hear(l, T0 + 5 * MS);
	line_want(a.u);
	/* 3.5 characters are 334 µs at 115200 baud: the 1750 µs minimum applies */
	assert_true(line_deadline(l) == T0 + 5 * MS + 1750);
	line_detach(a.u);
	lines_free(set);
	pty_close(&p);
}

static void test_dead_user_held_back(void **state)
{
	char log[128] = "";
	struct user a = {.name = "A", .request = "qa", .timeout_us = 100 * MS, .answer = "ra", .log = log};
	struct user d = {.name = "D", .request = "qd", .timeout_us = 100 * MS, .answer = "rd", .log = log};
	struct sg_lines *set = lines_new(NULL, NULL);
	uint64_t t = T0, held_until;
	struct sg_line *l;
	struct pty p;

	(void)state;
	pty_open(&p);
	user_attach(set, p.path, &s9600_8e1, &a);
	user_attach(set, p.path, &s9600_8e1, &d);
	l = line_of(a.u);
	/* D never answers: its first timeout costs one turn, its second holds it back 1 s */
	for (int round = 0; round < 2; round++) {
		line_want(a.u);
		line_want(d.u);
		line_timer(l, t);
		pty_expect(&p, "qa");
		pty_say(&p, "ra");
		line_hear(l, t + 5 * MS);
		t += 5 * MS;
		line_timer(l, t);
		pty_expect(&p, "qd");
		t += 2292 + 100 * MS;
		line_timer(l, t);
		assert_int_equal(d.timeouts, round + 1);
	}
	assert_true(line_user_held(d.u, t));
	held_until = t + 1000 * MS;
	/* meanwhile A keeps its turns, and D gets none though it wants one */
	line_want(d.u);
	for (int i = 0; i < 5; i++) {
		line_want(a.u);
		t += 20 * MS;
		line_timer(l, t);
		pty_expect(&p, "qa");
		pty_say(&p, "ra");
		line_hear(l, t + 5 * MS);
		t += 5 * MS;
	}
	assert_int_equal(a.answered, 7);
	assert_int_equal(d.turns, 2);
	assert_true(line_deadline(l) == held_until); /* only D waits, until its hold ends */
	line_timer(l, held_until - 1);
	assert_int_equal(d.turns, 2);
	line_timer(l, held_until);
	assert_int_equal(d.turns, 3);
	pty_expect(&p, "qd");
	t = held_until + 2292 + 100 * MS;
	line_timer(l, t);
	assert_int_equal(d.timeouts, 3);
	/* the next hold is twice as long */
	assert_true(line_user_held(d.u, t + 1999 * MS));
	assert_false(line_user_held(d.u, t + 2000 * MS));
	/* an answer lets it go: no hold after the next timeout */
	line_want(d.u);
	t += 2000 * MS;
	line_timer(l, t);
	pty_expect(&p, "qd");
	pty_say(&p, "rd");
	line_hear(l, t + 5 * MS);
	assert_int_equal(d.answered, 1);
	assert_false(line_user_held(d.u, t + 5 * MS));
	line_want(d.u);
	t += 10 * MS;
	line_timer(l, t);
	pty_expect(&p, "qd");
	t += 2292 + 100 * MS;
	line_timer(l, t);
	assert_int_equal(d.timeouts, 4);
	assert_false(line_user_held(d.u, t));
	line_detach(a.u);
	line_detach(d.u);
	lines_free(set);
	pty_close(&p);
}

static void test_claims_and_stream(void **state)
{
	struct user s = {.name = "S", .params = {.stream = true}};
	struct user r = {.name = "R", .request = "relay1=1\n", .timeout_us = 500 * MS, .answer = "OK\n"};
	struct sg_lines *set = lines_new(NULL, NULL);
	struct sg_line *l;
	struct pty p;

	(void)state;
	pty_open(&p);
	user_attach(set, p.path, &s9600_8e1, &s);
	user_attach(set, p.path, &s9600_8e1, &r);
	l = line_of(s.u);
	/* no transaction: everything to the stream user */
	pty_say(&p, "t=21.5\n");
	line_hear(l, T0);
	assert_string_equal(s.stream, "t=21.5\n");
	/* bytes that came before the request are not its answer */
	pty_say(&p, "OK\nh=40\n");
	line_want(r.u);
	line_timer(l, T0 + MS);
	pty_expect(&p, "relay1=1\n");
	assert_string_equal(s.stream, "t=21.5\nOK\nh=40\n");
	/* during it: a reading passed on, the answer claimed, what follows to the stream again */
	pty_say(&p, "t=21.6\nOK\nt=21.7\n");
	line_hear(l, T0 + 30 * MS);
	assert_int_equal(r.answered, 1);
	assert_string_equal(s.stream, "t=21.5\nOK\nh=40\nt=21.6\nt=21.7\n");
	line_detach(s.u);
	/* nobody reads the stream now: counted */
	pty_say(&p, "xyz");
	line_hear(l, T0 + 40 * MS);
	assert_int_equal(line_stats(l)->unclaimed, 3);
	line_detach(r.u);
	lines_free(set);
	pty_close(&p);
}

static void test_no_answer_awaited(void **state)
{
	char log[16] = "";
	struct user a = {.name = "A", .request = "on1\n", .timeout_us = 0, .log = log};
	struct user b = {.name = "B", .request = "on2\n", .timeout_us = 0, .log = log};
	struct user c = {.name = "C", .request = NULL, .log = log};
	struct sg_lines *set = lines_new(NULL, NULL);
	struct sg_line *l;
	struct pty p;

	(void)state;
	pty_open(&p);
	user_attach(set, p.path, &s9600_8e1, &a);
	user_attach(set, p.path, &s9600_8e1, &b);
	user_attach(set, p.path, &s9600_8e1, &c);
	l = line_of(a.u);
	line_want(a.u);
	line_want(b.u);
	line_want(c.u);
	/* A's command is over once written; B's waits until A's bytes are out on the wire */
	line_timer(l, T0);
	assert_int_equal(a.ended_ok, 1);
	assert_string_equal(log, "A");
	assert_true(line_deadline(l) == T0 + 4583);
	line_timer(l, T0 + 4583);
	assert_int_equal(b.ended_ok, 1);
	/* C gives its turn back without a word; nothing is left to do */
	line_timer(l, T0 + 2 * 4583);
	assert_string_equal(log, "ABC");
	assert_int_equal(c.ended_ok, 0);
	assert_true(line_deadline(l) == UINT64_MAX);
	pty_expect(&p, "on1\non2\n");
	line_detach(a.u);
	line_detach(b.u);
	line_detach(c.u);
	lines_free(set);
	pty_close(&p);
}

static void test_leave_in_callback(void **state)
{
	struct user a = {.name = "A", .request = "q", .timeout_us = 10 * MS, .leave_on_end = true};
	struct user b = {.name = "B", .request = "q", .timeout_us = 10 * MS, .answer = "r"};
	struct sg_lines *set = lines_new(NULL, NULL);
	struct sg_line *l;
	struct pty p;

	(void)state;
	pty_open(&p);
	user_attach(set, p.path, &s9600_8e1, &a);
	user_attach(set, p.path, &s9600_8e1, &b);
	l = line_of(a.u);
	line_want(a.u);
	line_want(b.u);
	line_timer(l, T0);
	line_timer(l, T0 + 20 * MS); /* A times out and leaves inside ended(); B's turn comes */
	assert_null(a.u);
	assert_int_equal(line_users(l, NULL), 1);
	line_timer(l, T0 + 40 * MS);
	assert_int_equal(b.turns, 1);
	pty_expect(&p, "qq");
	line_detach(b.u);
	assert_false(line_is_up(l));
	lines_free(set);
	pty_close(&p);
}

static void test_port_fails_and_comes_back(void **state)
{
	struct user a = {.name = "A", .request = "q", .timeout_us = 100 * MS, .answer = "r"};
	struct user s = {.name = "S", .params = {.stream = true}};
	struct sg_lines *set = lines_new(NULL, NULL);
	char dir[] = "/tmp/sg-test-line-XXXXXX", link[PATH_MAX];
	struct sg_line *l;
	struct pty p, q;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(link, sizeof(link), "%s/port", dir);
	pty_open(&p);
	assert_int_equal(symlink(p.path, link), 0);
	user_attach(set, link, &s9600_8e1, &a);
	user_attach(set, link, &s9600_8e1, &s);
	l = line_of(a.u);
	line_want(a.u);
	line_timer(l, T0);
	pty_expect(&p, "q");
	/* the adapter is pulled out: every user is told, the port is closed */
	pty_close(&p);
	line_hear(l, T0 + MS);
	assert_int_equal(a.downs, 1);
	assert_int_equal(s.downs, 1);
	assert_false(line_is_up(l));
	assert_int_equal(line_want(a.u), -ENODEV);
	line_detach(a.u);
	line_detach(s.u);
	/* plugged in again (a new pty behind the same name): the next attach opens it */
	pty_open(&q);
	assert_int_equal(unlink(link), 0);
	assert_int_equal(symlink(q.path, link), 0);
	a = (struct user){.name = "A", .request = "q2", .timeout_us = 100 * MS, .answer = "r"};
	user_attach(set, link, &s9600_8e1, &a);
	assert_ptr_equal(line_of(a.u), l);
	assert_true(line_is_up(l));
	line_want(a.u);
	line_timer(l, T0 + 2000 * MS);
	pty_expect(&q, "q2");
	pty_say(&q, "r");
	line_hear(l, T0 + 2010 * MS);
	assert_int_equal(a.answered, 1);
	line_detach(a.u);
	lines_free(set);
	pty_close(&q);
	unlink(link);
	rmdir(dir);
}

/* The line-error log: every UART counter and the unclaimed bytes are news, traffic is not. */
static void test_errors_report(void **state)
{
	struct sg_line_stats logged = {.rx_bytes = 10, .uart = {.parity = 1}}, now = logged;
	char buf[160];
	(void)state;

	now.rx_bytes = 500;
	now.transactions = 3;
	assert_false(line_errors_differ(&now, &logged));
	now.uart.brk = 1; /* a break alone is news */
	assert_true(line_errors_differ(&now, &logged));
	assert_string_equal(line_errors_text(&now, buf, sizeof(buf)),
	                    "1 parity errors, 0 framing errors, 0 overruns, 1 breaks, 0 bytes nobody expected");
	now = logged;
	now.uart.frame = 2;
	assert_true(line_errors_differ(&now, &logged));
	now = logged;
	now.uart.overrun = 2;
	assert_true(line_errors_differ(&now, &logged));
	now = logged;
	now.uart.parity = 2;
	assert_true(line_errors_differ(&now, &logged));
	now = logged;
	now.unclaimed = 7;
	assert_true(line_errors_differ(&now, &logged));
	now = (struct sg_line_stats){.uart = {.parity = 4, .frame = 3, .overrun = 2, .brk = 1}, .unclaimed = 12345678901ULL};
	assert_string_equal(line_errors_text(&now, buf, sizeof(buf)),
	                    "4 parity errors, 3 framing errors, 2 overruns, 1 breaks, 12345678901 bytes nobody expected");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_port_for_all),
		cmocka_unit_test(test_framing_flags),
		cmocka_unit_test(test_round_robin_and_gaps),
		cmocka_unit_test(test_fast_line_gap),
		cmocka_unit_test(test_dead_user_held_back),
		cmocka_unit_test(test_claims_and_stream),
		cmocka_unit_test(test_no_answer_awaited),
		cmocka_unit_test(test_leave_in_callback),
		cmocka_unit_test(test_port_fails_and_comes_back),
		cmocka_unit_test(test_errors_report),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
