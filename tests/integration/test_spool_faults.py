# SPDX-License-Identifier: MIT
"""Store and forward under faults: nothing read is lost (issue 5).

Every test feeds `seq=N` lines through a pty; the gateway publishes each on
test/seq with payload N, at QoS 1 or 2, so gaps and duplicates can be
counted. The promise checked: QoS 1 has no gap (duplicates are counted and
printed), QoS 2 has no gap and no duplicate, where "received" is defined per
test below so that the assertion is exact. Every wait is bounded; each test
takes well under a minute.

  1. broker kill -9 and restart 10 times during a 100,000-reading stream;
  2. a proxy that cuts the connection at random 0.2-2 s intervals;
  3. gateway kill -9 mid-stream and restart: everything it read arrives;
  4. broker down when the gateway starts, up 5 s later;
  5. an outage longer than the spool holds (max_size_mb = 1): the stated
     drop policy, exact counters on the stats topic, flat memory;
  6. the spool's filesystem full (a 2 MiB tmpfs, filled to the last block):
     no crash, readings go out directly while connected, acknowledged
     messages are still deleted, and readings flow through the spool again
     once space is back;
  7. a corrupt spool file at start-up: moved aside, logged, fresh spool;
     so is a valid SQLite file of another schema; a directory as the spool
     is reported as one; spooled messages the client refuses are dropped
     with a rate-limited log.
"""

import errno
import json
import os
import re
import sqlite3
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from conftest import free_port, gateway_config, tail, wait_until
from mqtt_tap import Ledger, TapProxy

# The subscribers here are slower than the gateway: let the broker queue for them without limit
# (mosquitto's default drops QoS 1/2 messages beyond 1000 queued for a client).
UNLIMITED = "max_queued_messages 0"
unlimited_broker = pytest.mark.broker(extra_conf=UNLIMITED)

SEQ = "test/seq"
STATS = "test/gateway/gw1/stats"
QOS = [1, 2]


def seq_device(port, qos, extra=""):
	return (f'{{ name = "seq"; driver = "lines"; port = "{port}"; baud = 115200; format = "kv";\n'
	        f'    readings = ( {{ field = "seq"; topic = "seq"; qos = {qos}; retain = false; {extra} }} ); }}')


def config(port_or_url, tmp_path, pty, qos, spool="", mqtt_extra="", extra=""):
	cfg = gateway_config(0, tmp_path, seq_device(pty.link, qos), mqtt_extra=mqtt_extra, extra=extra)
	url = port_or_url if isinstance(port_or_url, str) else f"mqtt://127.0.0.1:{port_or_url}"
	cfg = cfg.replace('"mqtt://127.0.0.1:0"', f'"{url}"')
	return cfg.replace(f'spool: {{ path = "{tmp_path}/spool.db"; }};',
	                   f'spool: {{ path = "{tmp_path}/spool.db"; stats_interval = 0.2; {spool} }};')


def lines(start, stop):
	return "".join(f"seq={i}\n" for i in range(start, stop)).encode()


def feed(pty, start, stop, chunk=2000, pause=0.0):
	"""Write seq lines start..stop-1 into the pty, chunk by chunk (bounded by the pty's own timeout)."""
	for i in range(start, stop, chunk):
		pty.write(lines(i, min(stop, i + chunk)), timeout=30)
		if pause:
			time.sleep(pause)


def seqs(sub, since=0):
	return [int(m.payload) for m in sub.messages(SEQ, since=since)]


def wait_seqs(sub, want, timeout, since=0):
	"""Wait until every sequence number in want was received; returns the received list."""
	want = set(want)
	deadline = time.monotonic() + timeout
	while True:
		got = seqs(sub, since)
		if want <= set(got) or time.monotonic() >= deadline:
			return got
		time.sleep(0.1)


def report(got, want, qos, what):
	"""Assert no gap (and no duplicate at QoS 2); print the duplicates at QoS 1."""
	want = set(want)
	missing = sorted(want - set(got))
	dups = len(got) - len(set(got))
	print(f"\n{what}: {len(want)} expected, {len(set(got) & want)} received, {dups} duplicates")
	assert not missing, f"{len(missing)} sequence numbers never arrived, first {missing[:20]}"
	assert set(got) <= want, f"unexpected sequence numbers {sorted(set(got) - want)[:20]}"
	if qos == 2:
		assert dups == 0, f"QoS 2 delivered {dups} duplicates"


def losses(gw):
	"""Connections lost so far, as the log says: a loss soon after a failed one is logged as a failed
	attempt ("cannot connect"), see gateway/mqtt.c, "The broker link"."""
	return len(re.findall(r"mqtt: (disconnected from|cannot connect to) ", gw.stderr_text()))


def last_stats(sub, pred=lambda s: True, timeout=10.0):
	"""The newest stats message satisfying pred (waits for one)."""
	deadline = time.monotonic() + timeout
	while True:
		for m in reversed(sub.messages(STATS)):
			s = json.loads(m.payload)
			if pred(s):
				return s
		if time.monotonic() >= deadline:
			got = [m.payload for m in sub.messages(STATS)[-3:]]
			raise AssertionError(f"no stats message as expected within {timeout} s; last: {got}")
		time.sleep(0.1)


def vm_hwm_kib(pid):
	with open(f"/proc/{pid}/status") as f:
		for line in f:
			if line.startswith("VmHWM:"):
				return int(line.split()[1])
	raise AssertionError("no VmHWM")


def sanitized(pid):
	"""True when the binary runs under AddressSanitizer (its quarantine makes RSS meaningless)."""
	try:
		with open(f"/proc/{pid}/maps") as f:
			return "libasan" in f.read()
	except OSError:
		return False


@pytest.fixture
def tap(request):
	proxies = []

	def make(upstream_port, **kw):
		p = TapProxy(upstream_port, **kw)
		proxies.append(p)
		return p

	yield make
	for p in proxies:
		p.close()


# --------------------------------------------------------------------------
# 1. broker kill -9, ten times

@pytest.mark.stress
@pytest.mark.parametrize("qos", QOS)
def test_broker_kill9_ten_times_during_100k_stream(broker_factory, make_pty, make_gateway, tap, tmp_path, qos):
	"""Why the assertion is exact: a broker killed with SIGKILL loses whatever it had
	acknowledged but not yet delivered or saved (mosquitto persists at most every
	autosave_interval). That loss is the broker's, and no publisher can prevent it,
	so a subscriber on that broker cannot tell the gateway's losses from the
	broker's. The gateway's promise is that it keeps every reading until a broker
	has acknowledged it. So the test reads the wire: all traffic goes through a
	proxy that parses MQTT (mqtt_tap.Ledger) and records every PUBLISH the gateway
	sends and every PUBACK (QoS 1) / PUBREC (QoS 2: the broker took ownership)
	the broker returns, by packet id. Asserted: every one of the 100,000 sequence
	numbers was acknowledged by a broker (no gap); at QoS 2 the gateway never
	published a sequence number as a new message again once it had sent its
	PUBREL, nor under another packet id (mqtt_tap.Ledger.duplicates(); the
	retransmissions of a packet are the protocol's own and counted apart), and every
	QoS 2 flow it started was completed (PUBCOMP). Duplicates at QoS 1 are
	printed. The spool is empty at the end.
	"""
	n = 100_000
	broker = broker_factory(extra_conf=UNLIMITED)
	ledger = Ledger(SEQ)
	proxy = tap(broker.port, ledger=ledger)
	pty = make_pty("tty")
	gw = make_gateway(config(proxy.url, tmp_path, pty, qos), verbose=False)
	gw.start()
	gw.wait_open(pty)
	assert ledger.wait(lambda: ledger.connacks >= 1, 15), "gateway never connected"

	feeder = threading.Thread(target=feed, args=(pty, 0, n), kwargs={"chunk": 1000, "pause": 0.05})
	t0 = time.monotonic()
	feeder.start()
	kills = 0
	for k in range(1, 11):
		# kill when another tenth of the stream has been acknowledged (or after 4 s)
		ledger.wait(lambda: len(ledger.acked) >= k * n // 11, 4)
		broker.kill9()
		kills += 1
		time.sleep(0.05 + 0.02 * k)
		broker.start()
	feeder.join(60)
	assert not feeder.is_alive(), "the gateway stopped reading its port"
	done = ledger.wait(lambda: len(ledger.acked) >= n and (qos == 1 or len(ledger.completed) >= n), 50)
	elapsed = time.monotonic() - t0
	missing = sorted(set(range(n)) - ledger.acked)
	dups = ledger.duplicates()
	print(f"\nQoS {qos}: {kills} broker kills, {elapsed:.1f} s, {ledger.connacks} connections, "
	      f"{ledger.publishes} PUBLISH packets, {ledger.resends} DUP retransmissions, "
	      f"{len(dups)} published anew after their PUBREL")
	gw.assert_alive()
	assert kills == 10
	assert done and not missing, f"{len(missing)} readings never acknowledged by a broker: {missing[:20]}"
	if qos == 2:
		assert not dups, f"QoS 2: published anew more than once: {dups[:20]}"
		assert not sorted(ledger.acked - ledger.completed)
	gw.stop()
	assert re.search(r"stopped: 100000 readings, .* 0 dropped; 0 messages left in the spool", gw.stderr_text())


# --------------------------------------------------------------------------
# 2. a proxy cutting the connection

@pytest.mark.stress
@unlimited_broker
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
@pytest.mark.parametrize("qos", QOS)
def test_proxy_cuts_connection_randomly(broker, make_pty, make_gateway, make_sub, tap, tmp_path, qos, protocol):
	"""The broker stays up, so a subscriber on it sees exactly what the gateway
	delivered: no gap, and at QoS 2 no duplicate (the gateway's session and its
	in-flight packet ids survive each cut)."""
	n = 30_000
	proxy = tap(broker.port, ledger=Ledger(SEQ), cut=(0.2, 2.0), seed=5)
	pty = make_pty("tty")
	sub = make_sub(broker.port, [SEQ], qos=2)
	# A cut every 0.2..2 s never lets a connection count as stable, so the
	# reconnect wait sits at its ceiling; with the suite's 1 s ceiling the link
	# was down a third of the time and an ASan build needed 35-38 s of the 40.
	# This test is about the session surviving cuts, not about the backoff
	# (test_broker_faults.py covers that), so the ceiling here is 0.25 s.
	cfg = config(proxy.url, tmp_path, pty, qos).replace('protocol = "5"', f'protocol = "{protocol}"')
	cfg = cfg.replace("reconnect_min = 0.2; reconnect_max = 1.0;", "reconnect_min = 0.05; reconnect_max = 0.25;")
	assert "reconnect_max = 0.25;" in cfg
	gw = make_gateway(cfg, verbose=False)
	gw.start()
	gw.wait_open(pty)
	t0 = time.monotonic()
	feed(pty, 0, n, chunk=500, pause=0.12)  # about 7 s of readings
	got = wait_seqs(sub, range(n), 60)  # ASan, QoS 2: 13-28 s measured
	anew = proxy.ledger.duplicates()
	print(f"\n{proxy.cuts} cuts in {time.monotonic() - t0:.1f} s; {proxy.ledger.resends} DUP retransmissions, "
	      f"{len(proxy.ledger.sent_again())} readings sent again as a new PUBLISH, "
	      f"{len(anew)} published anew after their PUBREL")
	gw.assert_alive()
	assert proxy.cuts >= 3
	report(got, range(n), qos, f"QoS {qos}, MQTT {protocol}, through {proxy.cuts} cuts")
	if qos == 2:
		assert not anew


# --------------------------------------------------------------------------
# 3. gateway kill -9

@unlimited_broker
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
@pytest.mark.parametrize("qos", QOS)
def test_gateway_kill9_mid_stream_then_restart(broker, make_pty, make_gateway, make_sub, tap, tmp_path, qos,
                                              protocol):
	"""'Read' means counted in the gateway's stats: it commits its batch before
	publishing its counters, so a reading counted there is on disk. The stream
	is slowed by a proxy (the broker stays up) and a window of 4 so the kill
	lands while most readings still wait in the spool.

	Asserted: no gap. QoS 1: duplicates printed. QoS 2: at most 4 duplicates,
	the killed process's window: a message whose PUBREL was sent but whose
	PUBCOMP had not arrived is delivered by the broker and still in the spool
	(libmosquitto reports neither PUBREC nor PUBREL, so the spool cannot know).
	The restarted process also meets the dead one's unreleased QoS 2 messages
	in its session on the broker; they must not make it lose or stall.
	"""
	n = 20_000
	window = 4
	proxy = tap(broker.port)
	pty = make_pty("tty")
	sub = make_sub(broker.port, [SEQ, STATS], qos=2)
	cfg = config(proxy.url, tmp_path, pty, qos, mqtt_extra=f"max_inflight = {window};")
	cfg = cfg.replace('protocol = "5"', f'protocol = "{protocol}"')
	gw = make_gateway(cfg, verbose=False)
	gw.start()
	gw.wait_open(pty)
	last_stats(sub)
	feed(pty, 0, n)
	s = last_stats(sub, lambda s: s["readings"] == n, timeout=20)
	gw.kill9()
	before = set(seqs(sub))
	assert s["spool_depth"] > 0 and len(before) < n, "the kill came too late to prove anything"
	print(f"\nkilled with {s['spool_depth']} readings in the spool, {len(before)} delivered")

	gw2 = make_gateway(cfg.replace(f"max_inflight = {window};", ""), name="restarted", verbose=False)
	gw2.start()
	got = wait_seqs(sub, range(n), 40)
	report(got, range(n), 1, f"QoS {qos}, MQTT {protocol}, across a kill -9")
	if qos == 2:
		assert len(got) - len(set(got)) <= window
	assert re.search(r"spool: .*spool\.db holds \d+ messages from before", gw2.stderr_text())
	gw2.stop()


# --------------------------------------------------------------------------
# 4. broker down at start

class PersistentSub:
	"""A subscriber whose session the broker keeps (clean session off, QoS 2)."""

	def __init__(self, port, client_id):
		self.port = port
		self.got = []
		self.lock = threading.Lock()
		self.subscribed = threading.Event()
		kw = {"client_id": client_id, "clean_session": False, "protocol": mqtt.MQTTv311}
		if hasattr(mqtt, "CallbackAPIVersion"):
			kw["callback_api_version"] = mqtt.CallbackAPIVersion.VERSION1
		self.c = mqtt.Client(**kw)
		self.c.on_connect = lambda c, u, f, rc: c.subscribe(SEQ, 2)
		self.c.on_subscribe = lambda *a: self.subscribed.set()
		self.c.on_message = self._on_message

	def _on_message(self, _c, _u, m):
		with self.lock:
			self.got.append(int(m.payload))

	def connect(self, timeout=5):
		self.subscribed.clear()
		self.c.connect("127.0.0.1", self.port, keepalive=30)
		self.c.loop_start()
		assert self.subscribed.wait(timeout), "persistent subscriber: no SUBACK"

	def disconnect(self):
		self.c.disconnect()
		self.c.loop_stop()

	def seqs(self):
		with self.lock:
			return list(self.got)


@pytest.mark.parametrize("qos", QOS)
def test_broker_down_at_start_up_5s_later(broker_factory, make_pty, make_gateway, tmp_path, qos):
	"""The subscriber's session is made before and kept by the broker across its
	(clean) restart, so everything the gateway publishes once the broker is up
	reaches it, whenever it reconnects."""
	n = 3000
	broker = broker_factory(persistence=True, extra_conf=UNLIMITED)
	sub = PersistentSub(broker.port, f"sg-persistent-{os.getpid()}-{qos}")
	sub.connect()
	sub.disconnect()
	broker.stop()

	pty = make_pty("tty")
	gw = make_gateway(config(broker.port, tmp_path, pty, qos))
	gw.start()
	t0 = time.monotonic()
	gw.wait_open(pty)
	feed(pty, 0, n, chunk=200, pause=0.2)  # readings during the 5 s without a broker
	time.sleep(max(0.0, 5.0 - (time.monotonic() - t0)))
	assert "mqtt: connected" not in gw.stderr_text()
	broker.start()
	sub.connect()
	try:
		wait_until(lambda: set(range(n)) <= set(sub.seqs()), 30)
		got = sub.seqs()
	finally:
		sub.disconnect()
	gw.assert_alive()
	report(got, range(n), qos, f"QoS {qos}, broker up after 5 s")


@pytest.mark.parametrize("qos", QOS)
def test_commit_interval_hands_over_at_once_and_commits_later(broker, make_pty, make_gateway, make_sub, tmp_path,
                                                               qos):
	"""spool.commit_interval = 30: readings reach the broker long before their
	first commit is due (with the default they are committed first, at once);
	a SIGTERM then commits what is open and leaves a sound spool file (the
	spool's own semantics are in tests/unit/test_spool.c)."""
	n = 300
	pty = make_pty("tty")
	sub = make_sub(broker.port, [SEQ], qos=2)
	gw = make_gateway(config(broker.port, tmp_path, pty, qos, spool="commit_interval = 30;"), verbose=False)
	gw.start()
	gw.wait_open(pty)
	t0 = time.monotonic()
	feed(pty, 0, n, chunk=100, pause=0.05)
	got = wait_seqs(sub, range(n), 20)
	report(got, range(n), qos, "commit_interval = 30")
	assert time.monotonic() - t0 < 25, "delivered only once the commit came: not handed over at once"
	gw.stop()
	db = sqlite3.connect(str(tmp_path / "spool.db"))
	try:
		assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
		assert db.execute("SELECT count(*) FROM msg").fetchone()[0] <= 100  # at most those in flight
	finally:
		db.close()


# --------------------------------------------------------------------------
# 5. an outage longer than the spool holds

MIB = 1024 * 1024
OVERHEAD = 24  # SPOOL_MSG_OVERHEAD in gateway/spool.h


def msg_size(i):
	return len(SEQ) + len(str(i)) + OVERHEAD


@unlimited_broker
@pytest.mark.parametrize("when_full", ["drop_old", "drop_new"])
def test_outage_longer_than_spool(broker, make_pty, make_gateway, make_sub, tap, tmp_path, when_full):
	"""max_size_mb = 1 and about twice that many readings during an outage (a
	proxy that refuses connections; the broker stays up for the subscriber).
	The spool accounts topic + payload + 24 bytes per message, so the test
	knows exactly which readings the policy keeps: drop_old keeps the newest
	that fit, drop_new the oldest. Asserted: exactly those arrive, the stats
	topic counts exactly the others as dropped, "full" is logged once for the
	episode, and peak memory stays flat while the second MiB of readings is
	dropped."""
	proxy = tap(broker.port)
	pty = make_pty("tty")
	sub = make_sub(broker.port, [SEQ, STATS], qos=2)
	cfg = config(proxy.url, tmp_path, pty, 1, spool=f'max_size_mb = 1; when_full = "{when_full}";')
	gw = make_gateway(cfg, verbose=False)
	gw.start()
	gw.wait_open(pty)
	last_stats(sub)
	proxy.set_blocked(True)  # the outage
	assert wait_until(lambda: "mqtt: disconnected" in gw.stderr_text(), 10)

	# readings that fit, then as many again
	total, size = 0, 0
	while size + msg_size(total) <= MIB:
		size += msg_size(total)
		total += 1
	fits = total
	n = 2 * fits
	feed(pty, 0, n // 4)
	wait_until(lambda: os.path.getsize(tmp_path / "spool.db") > 0, 5)
	time.sleep(1.0)
	hwm_quarter = vm_hwm_kib(gw.pid)
	feed(pty, n // 4, n)
	time.sleep(1.5)  # read and committed (a full batch per loop iteration; 2 MiB of lines)
	hwm_end = vm_hwm_kib(gw.pid)
	gw.assert_alive()

	if when_full == "drop_old":
		kept, size = [], 0
		for i in range(n - 1, -1, -1):
			if size + msg_size(i) > MIB:
				break
			size += msg_size(i)
			kept.append(i)
		want = range(min(kept), n)
	else:
		want = range(fits)
	dropped = n - len(want)

	proxy.set_blocked(False)
	got = wait_seqs(sub, want, 40)
	report(got, want, 1, f"{when_full}: {n} readings into a spool for {fits}")
	s = last_stats(sub, lambda s: s["spool_depth"] == 0 and s["readings"] == n, timeout=10)
	assert s["dropped"] == dropped
	assert s["spooled"] == n - (dropped if when_full == "drop_new" else 0)
	text = gw.stderr_text()
	assert len(re.findall(r"spool: full \(1 MiB", text)) == 1, tail(text)
	assert re.search(r"spool: below its limit again; %d messages were dropped" % dropped, text), tail(text)

	print(f"peak RSS: {hwm_quarter} KiB after {n // 4} readings, {hwm_end} KiB after {n}")
	if sanitized(gw.pid):
		print("memory not judged: AddressSanitizer keeps freed blocks in quarantine")
	else:
		assert hwm_end - hwm_quarter <= 1024, "memory grew while the spool was full"
		assert hwm_end <= 8 * 1024


# --------------------------------------------------------------------------
# 6. the spool's filesystem full

FS_KIB = 2048          # the spool's own file system
OTHERS_KIB = 1024      # what another program keeps on it until part C
RESERVE = 512 * 1024   # SPOOL_RESERVE_BYTES in gateway/spool_reserve.h


@pytest.fixture
def small_fs(tmp_path):
	d = tmp_path / "fs"
	d.mkdir()
	r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_KIB}k,mode=0700", "tmpfs", str(d)],
	                   capture_output=True, text=True)
	if r.returncode != 0:
		msg = f"SKIPPED LOUDLY: cannot mount a {FS_KIB} KiB tmpfs ({r.stderr.strip()}); disk-full test not run"
		print(msg)
		pytest.skip(msg)
	yield d
	subprocess.run(["umount", "-l", str(d)], capture_output=True)


def fill_up(path):
	"""Write into path until the file system is full (as another program would); returns the bytes written."""
	n = 0
	with open(path, "ab", buffering=0) as f:
		block = os.urandom(4096)
		while True:
			try:
				k = f.write(block)
			except OSError as e:
				if e.errno != errno.ENOSPC:
					raise
				k = 0
			if not k:
				for size in (1024, 512):  # the last partial block
					try:
						n += f.write(block[:size]) or 0
					except OSError:
						pass
				return n
			n += k


def free_bytes(path):
	v = os.statvfs(path)
	return v.f_bavail * v.f_frsize


@unlimited_broker
def test_spool_filesystem_full(broker, make_pty, make_gateway, make_sub, tap, tmp_path, small_fs):
	"""The spool on a 2 MiB tmpfs, half of it taken by another program's file.
	Every step waits for a condition (bounded), not for time.

	A. During an outage the spool fills the rest: it stops short of a full
	   disk, logs once, and the readings after that are counted as dropped.
	   Then the other program takes the last bytes (the disk is full to the
	   last block), and more readings come while still disconnected.
	B. Reconnected with the disk still full: new readings are published
	   directly, and the spooled ones are sent AND deleted as the broker
	   acknowledges them (spool_depth reaches 0): the spool gives back its
	   reserve file so that SQLite has the room a delete and a checkpoint
	   need. It does not claim to be writable while the disk is full.
	C. The other program removes its 1 MiB: the spool takes its reserve back
	   and is writable again; an outage after that loses nothing.
	Every reading is accounted for: received, or counted as dropped on the
	stats topic; "cannot write" is logged once for the whole episode.
	"""
	others = small_fs / "others"
	others.write_bytes(os.urandom(OTHERS_KIB * 1024))
	proxy = tap(broker.port)
	pty = make_pty("tty")
	sub = make_sub(broker.port, [SEQ, STATS], qos=2)
	spool = small_fs / "spool.db"
	cfg = config(proxy.url, tmp_path, pty, 1).replace(f'path = "{tmp_path}/spool.db"', f'path = "{spool}"')
	gw = make_gateway(cfg, verbose=False)
	gw.start()
	gw.wait_open(pty)
	last_stats(sub)
	reserve = small_fs / "spool.db-reserve"
	assert reserve.exists() and reserve.stat().st_size == RESERVE, "no reserve file next to the spool"
	assert reserve.stat().st_blocks * 512 >= RESERVE, "the reserve file is sparse"

	# A: an outage until the spool is full, then the disk full to the last block
	proxy.set_blocked(True)
	assert wait_until(lambda: "mqtt: disconnected" in gw.stderr_text(), 10)
	a = 0
	while "cannot write" not in gw.stderr_text() and a < 100_000:
		feed(pty, a, a + 1000)
		a += 1000
		wait_until(lambda: pty.unread() == 0, 10)
	assert "cannot write" in gw.stderr_text() and "no space left on the device" in gw.stderr_text(), \
		tail(gw.stderr_text())
	fill_up(small_fs / "last-bytes")
	assert free_bytes(small_fs) < 4096
	feed(pty, a, a + 2000)
	a += 2000
	assert wait_until(lambda: pty.unread() == 0, 10), "the gateway stopped reading its port"
	gw.assert_alive()

	# B: connected, the disk still full: new readings go out directly, the spooled ones drain
	connects = gw.stderr_text().count("mqtt: connected")
	proxy.set_blocked(False)
	assert wait_until(lambda: gw.stderr_text().count("mqtt: connected") > connects, 10)
	since = sub.mark()

	def depths():
		return [json.loads(m.payload)["spool_depth"] for m in sub.messages(STATS, since=since)]

	b = a
	deadline = time.monotonic() + 30
	while 0 not in depths() and time.monotonic() < deadline:
		feed(pty, b, b + 100)  # a reading makes the spool try again (every 2 s at most)
		b += 100
		time.sleep(0.25)
	assert 0 in depths(), f"the spool did not drain on a full disk: {depths()[-3:]}\n{tail(gw.stderr_text())}"
	got = wait_seqs(sub, range(a, b), 20)
	assert set(range(a, b)) <= set(got), f"{len(set(range(a, b)) - set(got))} direct readings missing"
	assert "writable again" not in gw.stderr_text(), "writable again on a full disk?\n" + tail(gw.stderr_text())

	# C: space is back; the next outage is spooled again
	others.unlink()
	c = b
	deadline = time.monotonic() + 15
	while "writable again" not in gw.stderr_text() and time.monotonic() < deadline:
		feed(pty, c, c + 50)
		c += 50
		time.sleep(0.25)
	assert "writable again" in gw.stderr_text(), tail(gw.stderr_text())
	assert reserve.stat().st_size == RESERVE, "the reserve was not taken back"
	lost = losses(gw)
	proxy.set_blocked(True)
	assert wait_until(lambda: losses(gw) > lost, 10)
	d0 = c
	feed(pty, d0, d0 + 3000)
	assert wait_until(lambda: pty.unread() == 0, 10)
	proxy.set_blocked(False)
	got = wait_seqs(sub, range(d0, d0 + 3000), 30)
	report([x for x in got if x >= d0], range(d0, d0 + 3000), 1, "after the disk had room again")

	total = d0 + 3000
	s = last_stats(sub, lambda s: s["readings"] == total and s["spool_depth"] == 0, timeout=20)
	received = set(seqs(sub)) & set(range(total))
	print(f"{total} readings: {len(received)} received, {s['dropped']} dropped")
	assert len(received) + s["dropped"] == total
	assert s["dropped"] >= 2000  # at least those read while disconnected on a full disk
	assert gw.stderr_text().count("cannot write") == 1
	gw.assert_alive()


# --------------------------------------------------------------------------
# 7. a corrupt spool file

@unlimited_broker
def test_corrupt_spool_file_moved_aside(broker, make_pty, make_gateway, make_sub, tmp_path):
	spool = tmp_path / "spool.db"
	spool.write_bytes(b"this is not a database " * 400)
	pty = make_pty("tty")
	sub = make_sub(broker.port, [SEQ], qos=2)
	gw = make_gateway(config(broker.port, tmp_path, pty, 1))
	gw.start()
	gw.wait_open(pty)
	assert wait_until(lambda: re.search(r"spool: (\S+) was not a spool this version can use \((.+)\); "
	                                    r"moved it aside to (\S+) and started an empty spool", gw.stderr_text()),
	                  10), tail(gw.stderr_text())
	m = re.search(r"moved it aside to (\S+) and", gw.stderr_text())
	aside = m.group(1)
	assert re.fullmatch(re.escape(str(spool)) + r"\.corrupt-\d{8}T\d{6}Z", aside)
	assert open(aside, "rb").read().startswith(b"this is not a database")
	assert spool.exists()
	pty.write(lines(0, 100))
	got = wait_seqs(sub, range(100), 15)
	report(got, range(100), 1, "after a corrupt spool")
	gw.stop()


FOREIGN = {
	# another application's database: tables of its own, user_version untouched
	"another application's tables": "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);"
	                                "INSERT INTO notes(body) VALUES ('keep me');",
	# the same user_version as ours, and a msg table that is not ours
	"a msg table of another shape": "CREATE TABLE msg(id INTEGER PRIMARY KEY, body TEXT);"
	                                "INSERT INTO msg(body) VALUES ('keep me'); PRAGMA user_version=1;",
}


@unlimited_broker
@pytest.mark.parametrize("legend", sorted(FOREIGN))
def test_foreign_sqlite_spool_moved_aside(broker, make_pty, make_gateway, make_sub, tmp_path, legend):
	"""A valid SQLite file that is not a spool is moved aside like a corrupt one, logged once, never written."""
	spool = tmp_path / "spool.db"
	db = sqlite3.connect(spool)
	db.executescript(FOREIGN[legend])
	db.commit()
	db.close()
	pty = make_pty("tty")
	sub = make_sub(broker.port, [SEQ], qos=2)
	gw = make_gateway(config(broker.port, tmp_path, pty, 1))
	gw.start()
	gw.wait_open(pty)
	pat = r"spool: \S+ was not a spool this version can use \(an SQLite database of another application"
	assert wait_until(lambda: re.search(pat, gw.stderr_text()), 10), tail(gw.stderr_text())
	aside = re.search(r"moved it aside to (\S+) and started an empty spool", gw.stderr_text()).group(1)
	pty.write(lines(0, 50))
	report(wait_seqs(sub, range(50), 15), range(50), 1, f"after {legend} as the spool")
	assert len(re.findall(pat, gw.stderr_text())) == 1
	gw.stop()
	# the other application's data is untouched, and the new spool is ours
	db = sqlite3.connect(aside)
	table = "notes" if "notes" in FOREIGN[legend] else "msg"
	assert db.execute(f"SELECT body FROM {table}").fetchall() == [("keep me",)]
	db.close()
	db = sqlite3.connect(spool)
	assert db.execute("PRAGMA user_version").fetchone() == (2,)  # the spool format (gateway/spool.c, SCHEMA_VERSION)
	db.close()


def test_directory_as_spool_reported(broker, make_pty, make_gateway, make_sub, tmp_path):
	"""A directory where the spool file should be: said so (not "Permission denied"); readings still go out."""
	(tmp_path / "spool.db").mkdir()
	pty = make_pty("tty")
	sub = make_sub(broker.port, [SEQ, "test/gateway/gw1/status"], qos=2)
	gw = make_gateway(config(broker.port, tmp_path, pty, 1))
	gw.start()
	gw.wait_open(pty)
	want = f"spool: cannot open {tmp_path}/spool.db: Is a directory; readings are published only while"
	assert wait_until(lambda: want in gw.stderr_text(), 10), tail(gw.stderr_text())
	assert "Permission denied" not in gw.stderr_text()
	sub.wait_topic("test/gateway/gw1/status", "online", timeout=10)
	pty.write(lines(0, 20))
	report(wait_seqs(sub, range(20), 15), range(20), 1, "without a spool")
	gw.stop()


def test_unpublishable_spooled_messages_rate_limited(broker, make_pty, make_gateway, make_sub, tmp_path):
	"""200 spooled messages the client refuses (a '+' in the topic): all dropped, 3 log lines, not 200."""
	spool = tmp_path / "spool.db"
	db = sqlite3.connect(spool)
	db.executescript("CREATE TABLE msg(id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL,"
	                 " qos INTEGER NOT NULL, retain INTEGER NOT NULL, last INTEGER NOT NULL);"
	                 "CREATE INDEX msg_last ON msg(topic) WHERE last; PRAGMA user_version=1;")
	db.executemany("INSERT INTO msg(topic, payload, qos, retain, last) VALUES (?, ?, 1, 0, 0)",
	               [(f"test/bad/+/{i}", b"x") for i in range(200)] + [("test/seq", b"12345")])
	db.commit()
	db.close()
	pty = make_pty("tty")
	sub = make_sub(broker.port, [SEQ, STATS], qos=2)
	gw = make_gateway(config(broker.port, tmp_path, pty, 1))
	gw.start()
	sub.wait_topic(SEQ, "12345", timeout=15)  # the good one behind the 200 bad ones
	logged = re.findall(r"spool: message for \S+ cannot be published; dropping it", gw.stderr_text())
	assert len(logged) == 3, f"{len(logged)} lines logged:\n{tail(gw.stderr_text())}"
	stats = last_stats(sub, lambda st: st["dropped"] >= 200)
	assert stats["dropped"] == 200 and stats["spool_depth"] == 0
	gw.stop()
