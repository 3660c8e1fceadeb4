# SPDX-License-Identifier: MIT
"""A broker named by a host name whose DNS server takes 5 s to answer.

The gateway runs in a mount namespace of its own (unshare) in which
/etc/resolv.conf names a DNS server this test runs on 127.0.0.153 (UDP,
port 53): it answers A queries for broker.sg.test with 127.0.0.1, after a
delay, and counts them. Checked: the loop keeps going while the lookup waits
(systemd watchdog pings keep coming; a reading written meanwhile is stored
in the spool at once), the reading reaches the real mosquitto once the name
is known, and libmosquitto's own lookup of the name did not ask DNS again
(resolve.h: the answer is pinned for it). Needs root (a mount namespace).
"""

import os
import socket
import struct
import threading
import time

import pytest

from conftest import gateway_config, wait_until

DNS_ADDR = "127.0.0.153"
NAME = "broker.sg.test"
DELAY = 5.0

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="SKIPPED LOUDLY: needs root for a mount namespace")


class SlowDns:
	"""A DNS server (RFC 1035 §4.1 message format) that answers every query after `delay` seconds:
	A for NAME with 127.0.0.1, anything else with no records."""

	def __init__(self, delay):
		self.delay = delay
		self.queries = []  # (monotonic time, name, qtype)
		self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		self.sock.bind((DNS_ADDR, 53))
		self.sock.settimeout(0.2)
		self.stop = threading.Event()
		self.thread = threading.Thread(target=self._serve, daemon=True)
		self.thread.start()

	def _serve(self):
		while not self.stop.is_set():
			try:
				data, peer = self.sock.recvfrom(512)
			except socket.timeout:
				continue
			except OSError:
				return
			if len(data) < 12:
				continue
			labels, pos = [], 12
			while pos < len(data) and data[pos]:
				labels.append(data[pos + 1:pos + 1 + data[pos]].decode(errors="replace"))
				pos += 1 + data[pos]
			question = data[12:pos + 5]
			qtype = struct.unpack_from(">H", data, pos + 1)[0] if pos + 3 <= len(data) else 0
			name = ".".join(labels)
			self.queries.append((time.monotonic(), name, qtype))
			answer = b""
			if qtype == 1 and name == NAME:  # A: pointer to the question's name, IN, TTL 60, 4 bytes
				answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
			head = data[:2] + struct.pack(">HHHHH", 0x8180, 1, 1 if answer else 0, 0, 0)
			t = threading.Timer(self.delay, self._send, (head + question + answer, peer))
			t.daemon = True
			t.start()

	def _send(self, msg, peer):
		try:
			self.sock.sendto(msg, peer)
		except OSError:
			pass

	def a_queries(self):
		return [q for q in self.queries if q[1] == NAME and q[2] == 1]

	def close(self):
		self.stop.set()
		self.sock.close()
		self.thread.join(2)


@pytest.fixture
def slow_dns():
	d = SlowDns(DELAY)
	yield d
	d.close()


class NotifySocket:
	"""What systemd's NOTIFY_SOCKET receives: (monotonic time, datagram) for every sd_notify()."""

	def __init__(self, path):
		self.path = str(path)
		self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
		self.sock.bind(self.path)
		self.sock.settimeout(0.2)
		self.got = []
		self.stop = threading.Event()
		self.thread = threading.Thread(target=self._read, daemon=True)
		self.thread.start()

	def _read(self):
		while not self.stop.is_set():
			try:
				self.got.append((time.monotonic(), self.sock.recv(4096).decode(errors="replace")))
			except socket.timeout:
				continue
			except OSError:
				return

	def pings(self):
		return [t for t, msg in self.got if "WATCHDOG=1" in msg.split("\n")]

	def close(self):
		self.stop.set()
		self.sock.close()
		self.thread.join(2)


DEV = """{{ name = "sim"; driver = "lines"; port = "{port}"; baud = 9600; format = "kv";
    readings = ( {{ field = "t"; topic = "t"; qos = 1; retain = false; }} ); }}"""


def test_slow_dns_does_not_hold_the_loop(broker, slow_dns, make_pty, make_gateway, make_sub, tmp_path):
	resolv = tmp_path / "resolv.conf"
	resolv.write_text(f"nameserver {DNS_ADDR}\noptions timeout:15 attempts:1\n")
	pty = make_pty("tty")
	cfg = gateway_config(broker.port, tmp_path, DEV.format(port=pty.link)).replace("127.0.0.1", NAME, 1)
	gw = make_gateway(cfg)
	sub = make_sub(broker.port, ["test/t"])
	notify = NotifySocket(tmp_path / "notify")
	try:
		gw.start(env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"},
		         wrap=["unshare", "--mount", "--propagation", "private", "sh", "-c",
		               f'mount --bind "{resolv}" /etc/resolv.conf && exec "$@"', "sh"])
		gw.wait_open(pty)
		assert wait_until(lambda: slow_dns.a_queries(), 10), slow_dns.queries
		asked = slow_dns.a_queries()[0][0]
		# the spool is locked for the gateway alone; its write-ahead log shows the reading's commit
		wal = tmp_path / "spool.db-wal"

		def wal_state():
			st = wal.stat() if wal.exists() else None
			return (st.st_size, st.st_mtime_ns) if st else None
		before = wal_state()
		pty.write_line("t=21.5")
		# stored while DNS still has not answered: the loop read the line and spooled it
		assert wait_until(lambda: wal_state() != before, 2), before
		assert time.monotonic() < asked + DELAY
		msg = sub.wait_topic("test/t", timeout=DELAY + 10)
		assert msg.payload == b"21.5"
		arrived = time.monotonic()
		pings = [t for t in notify.pings() if asked - 1 <= t <= arrived]
		gaps = [b - a for a, b in zip(pings, pings[1:])]
		print(f"\n{len(pings)} watchdog pings from the lookup to the delivery; longest gap {max(gaps):.2f} s; "
		      f"A queries: {len(slow_dns.a_queries())}")
		assert len(pings) >= 5 and max(gaps) < 2.0, gaps
		# one lookup per attempt: libmosquitto's own was answered from the pin
		assert len(slow_dns.a_queries()) == 1, slow_dns.queries
		assert "cannot resolve" not in gw.stderr_text()
		gw.stop()
	finally:
		notify.close()
