# SPDX-License-Identifier: MIT
"""A TCP proxy for the fault tests that can cut, refuse, and read MQTT.

  TapProxy(upstream_port, cut=(0.2, 2.0), seed=1)
      listens on 127.0.0.1:<.port> and forwards each connection to the broker
      at 127.0.0.1:upstream_port (one thread per direction). While the broker
      is down, a connection is accepted and closed at once (what a client sees
      of a dead broker behind a load balancer).
      cut=(lo, hi): a timer thread closes the live connection after a random
      lo..hi s (random.Random(seed)), again and again; .cuts counts them.
      set_blocked(True): closes every connection and refuses new ones (a
      network outage); set_blocked(False) ends it.
  Ledger
      every MQTT packet in both directions is parsed; PUBLISH packets from the
      client and PUBACK/PUBREC/PUBREL/PUBCOMP/CONNACK are recorded in order,
      so a test can tell exactly what the gateway sent and what the broker
      acknowledged, whatever happened to the broker afterwards.

MQTT 3.1.1 and 5 are both understood (the protocol level is read from each
CONNECT). Everything here is bounded and stops with .close().
"""

import random
import socket
import threading
import time

from mqtt_wire import read_varint as _varint, take_packet

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7


class Ledger:
	"""What went over the proxy. All methods are thread-safe."""

	def __init__(self, topic):
		self.topic = topic
		self.lock = threading.Lock()
		self.cond = threading.Condition(self.lock)
		self.mid_seq = {}        # packet id -> sequence number of the last PUBLISH with it
		self.new_sends = {}      # seq -> PUBLISH packets with DUP = 0 (new messages)
		self.first_mid = {}      # seq -> packet id of its first PUBLISH
		self.released = set()    # QoS 2: seqs the client sent PUBREL for (the broker may deliver then)
		self.anew = set()        # seqs published as new after their PUBREL, or under another packet id
		self.resends = 0         # PUBLISH packets with DUP = 1 (protocol retransmissions)
		self.acked = set()       # seqs the broker took ownership of (PUBACK / PUBREC)
		self.completed = set()   # QoS 2: seqs whose PUBCOMP arrived
		self.connacks = 0
		self.publishes = 0

	def on_publish(self, topic, qos, dup, mid, payload):
		if topic != self.topic:
			return
		try:
			seq = int(payload)
		except ValueError:
			return
		with self.lock:
			self.publishes += 1
			if dup:
				self.resends += 1
			else:
				self.new_sends[seq] = self.new_sends.get(seq, 0) + 1
				if seq in self.first_mid and (seq in self.released or mid != self.first_mid[seq]):
					self.anew.add(seq)
			self.first_mid.setdefault(seq, mid)
			if qos > 0:
				self.mid_seq[mid] = seq

	def on_ack(self, kind, mid):
		with self.cond:
			seq = self.mid_seq.get(mid)
			if seq is None:
				return
			if kind in (PUBACK, PUBREC):
				self.acked.add(seq)
			elif kind == PUBCOMP:
				self.completed.add(seq)
			self.cond.notify_all()

	def on_pubrel(self, mid):
		"""The client released a QoS 2 message: from here on a new PUBLISH of it is a second message."""
		with self.lock:
			seq = self.mid_seq.get(mid)
			if seq is not None:
				self.released.add(seq)

	def on_connack(self):
		with self.cond:
			self.connacks += 1
			self.cond.notify_all()

	def n_acked(self):
		with self.lock:
			return len(self.acked)

	def wait(self, pred, timeout):
		deadline = time.monotonic() + timeout
		with self.cond:
			while not pred():
				left = deadline - time.monotonic()
				if left <= 0:
					return False
				self.cond.wait(min(left, 0.2))
			return True

	def duplicates(self):
		"""Sequence numbers the gateway published as a new message again after it had sent
		their PUBREL, or under another packet id: what makes a broker deliver a QoS 2 message
		twice. A PUBLISH sent again under the same packet id before the PUBREL is not one,
		with or without DUP: until the PUBREL, a QoS 2 receiver must take any PUBLISH with
		that packet id as the same message (MQTT 5.0 4.3.3, 3.1.1 4.3.3), and libmosquitto
		sends a message it had to queue again at a reconnect without DUP. (The broker's
		PUBREC is not the line: a cut can lose it on the way, and then the gateway rightly
		sends the PUBLISH again.)"""
		with self.lock:
			return sorted(self.anew)

	def sent_again(self):
		"""Sequence numbers sent as a new PUBLISH (DUP = 0) more than once, for any reason."""
		with self.lock:
			return sorted(s for s, n in self.new_sends.items() if n > 1)


class _Parser:
	"""Splits one direction of a connection into packets and reports the interesting ones."""

	def __init__(self, conn, to_broker):
		self.conn = conn
		self.to_broker = to_broker
		self.buf = bytearray()

	def feed(self, data):
		self.buf += data
		while (p := take_packet(self.buf)) is not None:
			self.packet(p[0], p[1])

	def packet(self, b0, body):
		kind = b0 >> 4
		led = self.conn.proxy.ledger
		if self.to_broker:
			if kind == CONNECT and len(body) >= 7:
				name_len = int.from_bytes(body[0:2], "big")
				self.conn.level = body[2 + name_len]
			elif kind == PUBLISH:
				qos = (b0 >> 1) & 3
				dup = (b0 >> 3) & 1
				tlen = int.from_bytes(body[0:2], "big")
				topic = body[2:2 + tlen].decode(errors="replace")
				pos = 2 + tlen
				mid = 0
				if qos:
					mid = int.from_bytes(body[pos:pos + 2], "big")
					pos += 2
				if self.conn.level == 5:
					plen, pos = _varint(body, pos)
					pos += plen
				led.on_publish(topic, qos, dup, mid, body[pos:])
			elif kind == PUBREL and len(body) >= 2:
				led.on_pubrel(int.from_bytes(body[0:2], "big"))
		else:
			if kind == CONNACK:
				if len(body) >= 2 and body[1] == 0:
					led.on_connack()
			elif kind in (PUBACK, PUBREC, PUBCOMP) and len(body) >= 2:
				led.on_ack(kind, int.from_bytes(body[0:2], "big"))


class _Conn:
	def __init__(self, proxy, client, upstream):
		self.proxy = proxy
		self.client = client
		self.upstream = upstream
		self.level = 4
		self.closed = False
		self.lock = threading.Lock()

	def start(self):
		for src, dst, to_broker in ((self.client, self.upstream, True), (self.upstream, self.client, False)):
			threading.Thread(target=self._pump, args=(src, dst, _Parser(self, to_broker)), daemon=True).start()

	def _pump(self, src, dst, parser):
		try:
			while True:
				data = src.recv(65536)
				if not data:
					break
				if self.proxy.ledger:
					parser.feed(data)  # before forwarding: a PUBLISH is recorded before its ack can exist
				dst.sendall(data)
		except (OSError, ValueError):
			pass
		self.close()

	def close(self):
		with self.lock:
			if self.closed:
				return
			self.closed = True
		for s in (self.client, self.upstream):
			try:
				s.shutdown(socket.SHUT_RDWR)
			except OSError:
				pass
			s.close()
		self.proxy._forget(self)


class TapProxy:
	def __init__(self, upstream_port, ledger=None, cut=None, seed=1):
		self.upstream_port = upstream_port
		self.ledger = ledger
		self.cut = cut
		self.rng = random.Random(seed)
		self.cuts = 0
		self.accepted = 0
		self.blocked = False
		self.conns = set()
		self.lock = threading.Lock()
		self.stopping = threading.Event()
		self.srv = socket.socket()
		self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		self.srv.bind(("127.0.0.1", 0))
		self.srv.listen(16)
		self.srv.settimeout(0.2)
		self.port = self.srv.getsockname()[1]
		self.url = f"mqtt://127.0.0.1:{self.port}"
		threading.Thread(target=self._accept, daemon=True).start()
		if cut:
			threading.Thread(target=self._cutter, daemon=True).start()

	def _accept(self):
		while not self.stopping.is_set():
			try:
				client, _ = self.srv.accept()
			except socket.timeout:
				continue
			except OSError:
				return
			client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
			if self.blocked:
				client.close()
				continue
			try:
				up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
			except OSError:
				client.close()  # broker down
				continue
			up.settimeout(None)
			up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
			c = _Conn(self, client, up)
			with self.lock:
				self.conns.add(c)
				self.accepted += 1
			c.start()

	def _cutter(self):
		lo, hi = self.cut
		while not self.stopping.wait(self.rng.uniform(lo, hi)):
			if self.cut_all():
				self.cuts += 1

	def _forget(self, conn):
		with self.lock:
			self.conns.discard(conn)

	def cut_all(self):
		"""Close every live connection; True if there was one."""
		with self.lock:
			conns = list(self.conns)
		for c in conns:
			c.close()
		return bool(conns)

	def set_blocked(self, blocked):
		self.blocked = blocked
		if blocked:
			self.cut_all()

	def close(self):
		self.stopping.set()
		self.srv.close()
		self.cut_all()
