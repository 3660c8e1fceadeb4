#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench-spool.sh — store-and-forward figures (a benchmark, not a test).
#
# Usage: scripts/bench-spool.sh [-n MESSAGES] [-s normal|full] [-b BINARY]
#   -n  messages per run (default 100000)
#   -s  the spool's sync setting (default: full, the configuration default)
#   -b  the sensorgate binary (default build/sensorgate)
#
# On a private mosquitto (127.0.0.1, free port) it measures, at QoS 1:
#   floor   mosquitto_pub -q 1 -l -M <max_inflight> publishing the same
#           payloads ("0".."N-1") from a pipe, in runs of 50000 lines
#           (mosquitto_pub 2.0.11 -l stops when its packet id wraps at 65535);
#   steady  sensorgate with the spool on: "seq=N" lines written into a pty as
#           fast as it takes them, connected all along;
#   replay  sensorgate reads N lines while the broker is down (all spooled),
#           then the broker comes back: the rate at which the spool empties;
#           and the peak RSS (VmHWM) of the gateway at the end of the outage.
# Every rate is counted by one mosquitto_sub (QoS 1) from the first to the
# last message it receives; a run that loses a message says so. Prints the
# figures and the ratios to the floor (targets: >= 0.5, peak RSS <= 8 MiB).
# Needs mosquitto, mosquitto_pub/_sub and /usr/bin/python3.

set -euo pipefail
cd "$(dirname "$0")/.."

N=100000
SYNC=full
BIN=build/sensorgate
while getopts "n:s:b:h" o; do
	case $o in
	n) N=$OPTARG ;;
	s) SYNC=$OPTARG ;;
	b) BIN=$OPTARG ;;
	*) sed -n '4,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ -x "$BIN" ] || { echo "bench-spool.sh: $BIN not built (make)" >&2; exit 1; }

exec /usr/bin/python3 - "$N" "$SYNC" "$(realpath "$BIN")" <<'PY'
import os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time, tty

N, SYNC, BIN = int(sys.argv[1]), sys.argv[2], sys.argv[3]
MAX_INFLIGHT = 100
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
work = tempfile.mkdtemp(prefix="sg-bench-spool.")
procs = []


def free_port():
	with socket.socket() as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


def spawn(args, **kw):
	p = subprocess.Popen(args, **kw)
	procs.append(p)
	return p


def cleanup():
	for p in procs:
		if p.poll() is None:
			p.kill()
			p.wait()
	shutil.rmtree(work, ignore_errors=True)


class Broker:
	def __init__(self):
		self.port = free_port()
		self.conf = os.path.join(work, "mosquitto.conf")
		with open(self.conf, "w") as f:
			f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
			        "max_queued_messages 0\nmax_inflight_messages 100\n")
		self.proc = None

	def start(self):
		self.proc = spawn([MOSQUITTO, "-c", self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
		for _ in range(100):
			try:
				socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
				return
			except OSError:
				time.sleep(0.05)
		raise SystemExit("mosquitto did not start")

	def stop(self):
		self.proc.terminate()
		self.proc.wait()


class Counter:
	"""mosquitto_sub at QoS 1; times of the first and the last message, distinct payloads."""

	def __init__(self, port, topic, n):
		self.n = n
		self.p = spawn(["mosquitto_sub", "-p", str(port), "-t", topic, "-q", "1", "-C", str(n)],
		               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
		self.first = self.last = None
		self.seen = set()
		self.count = 0
		self.t = threading.Thread(target=self._read, daemon=True)
		self.t.start()
		time.sleep(0.3)  # subscribed

	def _read(self):
		for line in self.p.stdout:
			now = time.monotonic()
			if self.first is None:
				self.first = now
			self.last = now
			self.count += 1
			self.seen.add(line.strip())

	def wait(self, timeout):
		self.t.join(timeout)
		if self.t.is_alive():
			self.p.kill()
			self.t.join(5)
		return self

	def rate(self):
		if self.count < 2 or self.last <= self.first:
			return 0.0
		return (self.count - 1) / (self.last - self.first)

	def complete(self):
		return len(self.seen) == self.n


def floor(broker):
	payloads = [f"{i}\n" for i in range(N)]
	c = Counter(broker.port, "bench/floor", N)
	for i in range(0, N, 50000):
		p = spawn(["mosquitto_pub", "-p", str(broker.port), "-t", "bench/floor", "-q", "1", "-l",
		           "-M", str(MAX_INFLIGHT)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
		p.communicate("".join(payloads[i:i + 50000]).encode(), timeout=300)
	return c.wait(300)


class Gateway:
	def __init__(self, broker, name):
		self.dir = os.path.join(work, name)
		os.mkdir(self.dir)
		master, slave = os.openpty()
		tty.setraw(slave)
		self.tty = os.ttyname(slave)
		os.close(slave)
		self.master = master
		with open(os.path.join(self.dir, "sg.conf"), "w") as f:
			f.write(f'gateway: {{ id = "bench-{name}"; base_topic = "bench"; }};\n'
			        f'mqtt: {{ brokers = ( "mqtt://127.0.0.1:{broker.port}" ); protocol = "5";'
			        f' reconnect_min = 2.0; reconnect_max = 4.0; max_inflight = {MAX_INFLIGHT}; }};\n'
			        f'spool: {{ path = "{self.dir}/spool.db"; sync = "{SYNC}"; stats_interval = 0; }};\n'
			        f'devices = ( {{ name = "sim"; driver = "lines"; port = "{self.tty}"; baud = 115200;'
			        f' format = "kv"; readings = ( {{ field = "seq"; topic = "seq"; qos = 1; retain = false; }} ); }} );\n')
		self.err = open(os.path.join(self.dir, "stderr"), "wb")
		self.proc = spawn([BIN, "-c", os.path.join(self.dir, "sg.conf")], stdout=subprocess.DEVNULL,
		                  stderr=self.err)
		for _ in range(100):
			if self.holds_tty():
				break
			time.sleep(0.05)

	def holds_tty(self):
		try:
			return any(os.readlink(f"/proc/{self.proc.pid}/fd/{fd}") == self.tty
			           for fd in os.listdir(f"/proc/{self.proc.pid}/fd"))
		except OSError:
			return False

	def feed(self, n):
		data = memoryview("".join(f"seq={i}\n" for i in range(n)).encode())
		while data:
			try:
				k = os.write(self.master, data[:65536])
				data = data[k:]
			except BlockingIOError:
				time.sleep(0.0005)

	def status(self, key):
		with open(f"/proc/{self.proc.pid}/status") as f:
			for line in f:
				if line.startswith(key + ":"):
					return int(line.split()[1])
		return 0

	def log_has(self, text):
		with open(os.path.join(self.dir, "stderr"), errors="replace") as f:
			return text in f.read()

	def stop(self):
		self.proc.terminate()
		self.proc.wait(20)
		os.close(self.master)


def steady(broker):
	g = Gateway(broker, "steady")
	time.sleep(1.0)  # connected
	c = Counter(broker.port, "bench/seq", N)
	g.feed(N)
	c.wait(300)
	g.stop()
	return c


def replay(broker):
	g = Gateway(broker, "replay")
	time.sleep(1.0)
	broker.stop()  # the outage
	g.feed(N)
	# wait until every line is read and committed (the spool file stops growing)
	deadline = time.monotonic() + 120
	db = os.path.join(g.dir, "spool.db")
	last = -1
	while time.monotonic() < deadline:
		size = sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))
		if size == last:
			break
		last = size
		time.sleep(0.5)
	hwm = g.status("VmHWM")
	broker.start()
	c = Counter(broker.port, "bench/seq", N)  # subscribed before the gateway's next attempt (>= 1 s away)
	c.wait(300)
	g.stop()
	return c, hwm


def fmt(c):
	return f"{c.rate():9.0f} msg/s" + ("" if c.complete() else f"  (INCOMPLETE: {len(c.seen)}/{N} distinct)")


try:
	b = Broker()
	b.start()
	print(f"bench-spool: {N} messages, QoS 1, max_inflight {MAX_INFLIGHT}, sync = \"{SYNC}\", {BIN}")
	fl = floor(b)
	st = steady(b)
	fl2 = floor(b)  # again, after: the machine may have changed its mind
	rp, hwm = replay(b)
	base = max(fl.rate(), fl2.rate())
	print(f"  floor   mosquitto_pub -q 1 -l  {fmt(fl)}   (again after: {fl2.rate():.0f} msg/s)")
	print(f"  steady  sensorgate, spool on   {fmt(st)}   ratio {st.rate() / base:.2f} (target >= 0.5)")
	print(f"  replay  after a {N}-message outage {fmt(rp)}   ratio {rp.rate() / base:.2f} (target >= 0.5)")
	print(f"  peak RSS during the outage: {hwm / 1024:.1f} MiB (VmHWM; target <= 8 MiB)")
	ok = st.complete() and rp.complete()
	sys.exit(0 if ok else 1)
finally:
	cleanup()
PY
