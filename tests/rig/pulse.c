/* SPDX-License-Identifier: MIT */
/*
 * pulse.c — a pulse source for the rig: drives a gpio-sim line through its
 * sysfs `pull` attribute, which makes the kernel raise real edge interrupts
 * on the simulated chip. Built on the host, run in the QEMU guest.
 *
 * A stimulus, not a test of its own: tests/rig/qemu-guest-gpio-in.sh runs it
 * and its `check`s assert on what it reports (exit status 0 and, with -i, as
 * many interrupts and thread runs as pulses), and on what the gateway
 * published for those pulses; a mismatch fails the rig's qemu pass.
 *
 *   pulse [-i IRQ] PULL_FILE COUNT HZ [KILL_AT PID]
 *       COUNT pulses at HZ (50 % duty), on an absolute schedule
 *       (clock_nanosleep TIMER_ABSTIME: a late wake-up is caught up, so
 *       the burst keeps its rate on average, not added to every later
 *       period). "pull-up" is the pulse, "pull-down" the pause. With KILL_AT, PID
 *       gets SIGKILL right after pulse KILL_AT ends (the burst goes on).
 *       Prints "pulses N in S s (R Hz)"; with -i, then
 *       "; interrupts H, thread runs T, waited W times (longest M ms)".
 *   pulse PULL_FILE toggle N GAP_MS
 *       N changes, GAP_MS apart, starting with pull-up; prints each
 *       change's CLOCK_REALTIME time in µs ("<n> <level> <us>"), for the
 *       edge-to-MQTT latency of scripts/bench-gpio.sh.
 *
 * -i IRQ: the line's interrupt (the rig finds it in /proc/interrupts). The
 * source then makes each change only once the kernel has turned every
 * interrupt of the line so far into an event, so what it sends is what a
 * reader can get. Why: the character device's handler (edge_irq_handler in
 * drivers/gpio/gpiolib-cdev.c, Linux 6.1) only takes the timestamp and wakes
 * the line's interrupt thread; the thread (edge_irq_thread) makes the event
 * and numbers it (line_seqno++). A second interrupt while the thread has
 * not run yet only finds it already woken (__irq_wake_thread in
 * kernel/irq/handle.c: IRQTF_RUNTHREAD already set) and overwrites the
 * timestamp: two edges, two interrupts in /proc/interrupts, ONE event, and
 * no gap in the numbers for a reader to see. In the rig this happened to
 * 6-13 of 1,000 pulses at 200 Hz whenever the thread sat on the other
 * emulated CPU (a traced run: edge_irq_handler 1000 times on CPU 0,
 * edge_irq_thread 994 times on CPU 1, the gateway's total 994): the host
 * stalls one emulated CPU while the other goes on, and the source catches
 * up its schedule with edges 0.1 ms apart. A limit of the emulation, not
 * of the gateway (it counted every event the kernel made); on hardware the
 * thread runs within microseconds of an edge, far inside a pulse period.
 *
 * So with -i the source (1) binds the interrupt's thread to CPU 0, where it
 * runs itself: the write to `pull` raises the interrupt on the writing CPU
 * (irq_sim's irq_work) and the woken thread (real-time priority) runs
 * before the writer gets the CPU back, so no wait is needed at all. The
 * interrupt's own affinity cannot be set instead: irq_sim's irq_chip has no
 * irq_set_affinity, so /proc/irq/IRQ/smp_affinity_list refuses every write
 * (EIO), and the thread follows that affinity only when it changes. And (2)
 * it checks, after each change, that the thread went back to sleep once per
 * interrupt taken since the start (its voluntary_ctxt_switches in
 * /proc/PID/status against /sys/kernel/irq/IRQ/per_cpu_count), waiting for
 * it if not (up to 2 s, then an error): an edge is made only when the last
 * one is an event. The waits are counted and printed. Nothing here reads
 * the events or knows the reader: a gateway that loses one still shows a
 * total below COUNT. After KILL_AT the checks stop (the reader is gone and
 * its thread with it).
 *
 * It runs on CPU 0 only, so that an emulated CPU the host stalls stalls the
 * source and the interrupt's thread together.
 *
 * Exit 0, or 1 with a message on stderr.
 */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONFIRM_TIMEOUT_NS 2000000000LL
#define CONFIRM_POLL_NS    100000L

static int fd = -1;

/* The interrupt watched with -i: its thread, and what was counted at the start. */
static struct {
	int irq;            /* 0 = none */
	pid_t thread;
	long long irqs0, runs0;
	long long irqs, runs;
	long waits;
	double longest_ms;
} w;

static void set(int up)
{
	const char *v = up ? "pull-up" : "pull-down";

	if (pwrite(fd, v, strlen(v), 0) < 0) {
		fprintf(stderr, "pulse: write: %s\n", strerror(errno));
		exit(1);
	}
}

static void add_ns(struct timespec *t, long long ns)
{
	t->tv_nsec += ns % 1000000000LL;
	t->tv_sec += ns / 1000000000LL;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_nsec -= 1000000000L;
		t->tv_sec++;
	}
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long long real_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "pulse: %s: %s\n", what, detail);
	exit(1);
}

/* Interrupts of w.irq taken so far, all CPUs. */
static long long irq_count(void)
{
	char path[64], buf[512], *p, *end;
	long long n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/irq/%d/per_cpu_count", w.irq);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f))
		die(path, f ? "empty" : strerror(errno));
	fclose(f);
	for (p = buf;; p = end + 1) {
		n += strtoll(p, &end, 10);
		if (end == p || *end != ',')
			break;
	}
	return n;
}

/* Times the thread went to sleep of its own (after each run of its handler). */
static long long thread_runs(void)
{
	char path[64], line[128];
	long long n = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)w.thread);
	f = fopen(path, "r");
	if (!f)
		die(path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %lld", &n) == 1)
			break;
	fclose(f);
	if (n < 0)
		die(path, "no voluntary_ctxt_switches");
	return n;
}

/* The kernel thread of interrupt IRQ ("irq/IRQ-<name>"): exactly one. */
static pid_t find_thread(int irq)
{
	char prefix[32], path[300], comm[64];
	struct dirent *e;
	pid_t found = 0;
	int n = 0;
	DIR *d = opendir("/proc");

	if (!d)
		die("/proc", strerror(errno));
	snprintf(prefix, sizeof(prefix), "irq/%d-", irq);
	while ((e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && strncmp(comm, prefix, strlen(prefix)) == 0) {
			found = (pid_t)atol(e->d_name);
			n++;
		}
		fclose(f);
	}
	closedir(d);
	if (n != 1) {
		snprintf(path, sizeof(path), "%d thread%s named %s* (one wanted)", n, n == 1 ? "" : "s", prefix);
		die("-i", path);
	}
	return found;
}

/* -i: bind the thread to CPU 0 (see the top) and note where the counts start. */
static void watch_start(void)
{
	cpu_set_t one, got;

	w.thread = find_thread(w.irq);
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (sched_setaffinity(w.thread, sizeof(one), &one) < 0 || sched_getaffinity(w.thread, sizeof(got), &got) < 0)
		die("cannot bind the interrupt's thread to CPU 0", strerror(errno));
	if (!CPU_EQUAL(&one, &got))
		die("the interrupt's thread", "not bound to CPU 0");
	w.irqs0 = w.irqs = irq_count();
	w.runs0 = w.runs = thread_runs();
}

/* -i: return once the thread has run for every interrupt taken (see the top). */
static void confirm(void)
{
	struct timespec t0, t, nap = {0, CONFIRM_POLL_NS};
	long long waited;
	bool slept = false;

	if (!w.thread)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		w.irqs = irq_count() - w.irqs0;
		w.runs = thread_runs() - w.runs0;
		if (w.runs >= w.irqs)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		waited = (t.tv_sec - t0.tv_sec) * 1000000000LL + (t.tv_nsec - t0.tv_nsec);
		if (waited > CONFIRM_TIMEOUT_NS) {
			fprintf(stderr, "pulse: irq %d: %lld interrupts, its thread ran %lld times, not more in 2 s\n",
			        w.irq, w.irqs, w.runs);
			exit(1);
		}
		slept = true;
		nanosleep(&nap, NULL);
	}
	if (slept) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		waited = (t.tv_sec - t0.tv_sec) * 1000000000LL + (t.tv_nsec - t0.tv_nsec);
		w.waits++;
		if (waited / 1e6 > w.longest_ms)
			w.longest_ms = waited / 1e6;
	}
}

int main(int argc, char **argv)
{
	struct timespec at;
	long long half;
	long count, kill_at = 0;
	double hz, t0;
	pid_t pid = 0;

	if (argc >= 3 && strcmp(argv[1], "-i") == 0) {
		w.irq = atoi(argv[2]);
		if (w.irq <= 0)
			die("-i", "IRQ must be a positive number");
		argc -= 2;
		argv += 2;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: pulse [-i IRQ] PULL_FILE COUNT HZ [KILL_AT PID] | pulse PULL_FILE toggle N GAP_MS\n");
		return 1;
	}
	{
		cpu_set_t one;

		CPU_ZERO(&one);
		CPU_SET(0, &one);
		sched_setaffinity(0, sizeof(one), &one); /* best effort: a single CPU has no choice anyway */
	}
	fd = open(argv[1], O_WRONLY);
	if (fd < 0) {
		fprintf(stderr, "pulse: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (strcmp(argv[2], "toggle") == 0 && argc == 5) {
		long n = atol(argv[3]), gap_ms = atol(argv[4]);

		clock_gettime(CLOCK_MONOTONIC, &at);
		for (long i = 0; i < n; i++) {
			add_ns(&at, gap_ms * 1000000LL);
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
			long long us = real_us();
			set(i % 2 == 0);
			printf("%ld %d %lld\n", i, i % 2 == 0, us);
		}
		return 0;
	}
	count = atol(argv[2]);
	hz = atof(argv[3]);
	if (argc >= 6) {
		kill_at = atol(argv[4]);
		pid = (pid_t)atol(argv[5]);
	}
	if (count <= 0 || hz <= 0) {
		fprintf(stderr, "pulse: COUNT and HZ must be positive\n");
		return 1;
	}
	half = (long long)(1e9 / hz / 2);
	if (w.irq)
		watch_start();
	set(0);
	confirm();
	clock_gettime(CLOCK_MONOTONIC, &at);
	t0 = now_s();
	for (long i = 1; i <= count; i++) {
		add_ns(&at, half);
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
		set(1);
		confirm();
		add_ns(&at, half);
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
		set(0);
		confirm();
		if (i == kill_at && pid > 0) {
			kill(pid, SIGKILL);
			fprintf(stderr, "pulse: killed %d after pulse %ld\n", (int)pid, i);
			w.thread = 0; /* its interrupt goes with it: nothing more to check */
		}
	}
	t0 = now_s() - t0;
	printf("pulses %ld in %.3f s (%.1f Hz)", count, t0, (double)count / t0);
	if (w.irq)
		printf("; interrupts %lld, thread runs %lld%s, waited %ld times (longest %.1f ms)", w.irqs, w.runs,
		       kill_at ? " until the kill" : "", w.waits, w.longest_ms);
	printf("\n");
	return 0;
}
