# SPDX-License-Identifier: MIT
"""A broker that speaks just enough MQTT, in raw bytes, to misbehave on purpose.

FakeBroker listens on 127.0.0.1:<free port> and serves each connection on a
thread of its own. It accepts CONNECT (3.1.1 and 5), answers CONNACK, SUBACK,
PINGRESP, PUBACK / PUBREC / PUBCOMP, keeps retained messages and forwards
PUBLISH to matching subscriptions; and, set through its attributes (they may
change while it runs), it breaks the rules a real broker breaks:

  drop_after      close every connection this many seconds after CONNACK
  garbage         bytes sent right after CONNACK (a malformed packet), then
                  the connection is left to the client to close
  refuse_v5       answer an MQTT 5 CONNECT with a 3.1.1 CONNACK "unacceptable
                  protocol version" (20 02 00 01) and close, as a 3.1.1-only
                  broker does
  disconnect_after, disconnect_reason
                  send an MQTT 5 DISCONNECT with this reason code (0x8E:
                  session taken over) this many seconds after CONNACK
  refuse          a function topic -> reason code (or None) for every QoS 1/2
                  PUBLISH: >= 0x80 refuses it in the PUBACK / PUBREC (MQTT 5)
  close_on_refuse close the connection right after a refusal (what mosquitto
                  2.0.11 does with max_queued_messages 0); with 3.1.1, which
                  cannot refuse, a refused message only closes the connection
  refuse_silently refuse by closing the connection without a PUBACK / PUBREC
                  (brokers that disconnect a client for an unauthorized
                  publish; mosquitto when its PUBACK is lost with the link)
  receive_maximum the Receive Maximum announced in an MQTT 5 CONNACK (None: none)
  quota           a function conn -> how many QoS 1/2 messages the broker
                  takes at once on that connection before it refuses with 0x97
                  "quota exceeded" (None: no limit)

Scripted per connection: FakeBroker(plans=[Plan(...), ...]) makes the n-th
connection that sends a CONNECT follow plans[n] (.plans may grow while it
runs; connections past the list follow Plan(), which changes nothing):

  Plan(connack=None, hostile=None, after="connack", ack=True, drop_after=None)
      connack  raw bytes sent instead of the CONNACK
      hostile  raw bytes sent once, when `after` happened: "connack" (right
               after it), "publish" (the client's first PUBLISH) or
               "publish:TOPIC" (its first PUBLISH on TOPIC); the connection
               is then left to the client to close, and closed 3 s later
      ack      False: PUBLISH packets are recorded, never acknowledged; a
               function topic -> bool: only those it says True for (a
               broker whose store is stuck for some topics)
      drop_after close this connection this many seconds after CONNACK (a
               link that breaks, unrelated to what was sent)

Everything that happened is recorded: .conns (one Conn per accepted
connection: times, protocol level, client id, packets) and .publishes
(every PUBLISH received: connection number, topic, payload, QoS, dup, mid).
pubs(topic) gives them as Pub(conn, topic, payload, qos, dup, size), conn
counting CONNECTs (a reachability probe without one does not count), size
the whole packet's; n_connections() counts CONNECTs.
kick() closes every connection open now, as a broker restart would.
Every wait is bounded; close() stops the listener and every connection.
Written from the MQTT 3.1.1 and 5.0 OASIS specifications (packet formats in
their section 3), not from any other broker's code.
"""

import collections
import socket
import struct
import threading
import time

from mqtt_wire import read_str as _read_str, read_varint as _read_varint, take_packet, varint as _varint

Pub = collections.namedtuple("Pub", "conn topic payload qos dup size")


def _str(s):
	b = s.encode() if isinstance(s, str) else s
	return struct.pack(">H", len(b)) + b


def packet(first, body):
	return bytes([first]) + _varint(len(body)) + body


def topic_matches(pattern, topic):
	p, t = pattern.split("/"), topic.split("/")
	for i, level in enumerate(p):
		if level == "#":
			return True
		if i >= len(t) or (level != "+" and level != t[i]):
			return False
	return len(p) == len(t)


class Plan:
	def __init__(self, connack=None, hostile=None, after="connack", ack=True, drop_after=None):
		assert after in ("connack", "publish") or after.startswith("publish:")
		self.connack = connack
		self.hostile = hostile
		self.after = after
		self.ack = ack
		self.drop_after = drop_after

	def acks(self, topic):
		return self.ack(topic) if callable(self.ack) else self.ack


class Conn:
	"""One accepted connection, as the broker saw it."""

	def __init__(self, n, sock):
		self.n = n
		self.sock = sock
		self.accepted = time.monotonic()
		self.connack = None        # monotonic time of a successful CONNACK
		self.closed = None
		self.level = None          # protocol level of CONNECT: 4 (3.1.1) or 5
		self.client_id = None
		self.clean = None
		self.packets = []          # (monotonic time, packet type) received
		self.subs = []             # topic filters
		self.taken = 0             # QoS 1/2 messages taken and not yet completed (quota)
		self.connect_n = None      # this connection's CONNECT among all CONNECTs (plans[connect_n])
		self.plan = Plan()
		self.hostile_sent = False
		self.timers = []
		self.lock = threading.Lock()

	def send(self, data):
		with self.lock:
			try:
				self.sock.sendall(data)
				return True
			except OSError:
				return False

	def close(self):
		try:
			self.sock.shutdown(socket.SHUT_RDWR)
		except OSError:
			pass
		self.sock.close()
		if self.closed is None:
			self.closed = time.monotonic()


class FakeBroker:
	def __init__(self, plans=()):
		self.plans = list(plans)
		self.n_connects = 0
		self.drop_after = None
		self.garbage = None
		self.refuse_v5 = False
		self.disconnect_after = None
		self.disconnect_reason = 0x8E
		self.refuse = None
		self.close_on_refuse = False
		self.refuse_silently = False
		self.receive_maximum = None
		self.quota = None
		self.conns = []
		self.publishes = []
		self.retained = {}
		self.lock = threading.Lock()
		self._stop = threading.Event()
		self._threads = []
		self.srv = socket.socket()
		self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		self.srv.bind(("127.0.0.1", 0))
		self.srv.listen(64)
		self.srv.settimeout(0.1)
		self.port = self.srv.getsockname()[1]
		self.url = f"mqtt://127.0.0.1:{self.port}"
		t = threading.Thread(target=self._accept, daemon=True)
		t.start()
		self._threads.append(t)

	# -- what happened

	def connects(self, since=0.0):
		"""Connections that got a CONNACK (accepted) at or after monotonic time since."""
		with self.lock:
			return [c for c in self.conns if c.connack is not None and c.connack >= since]

	def accepted(self, since=0.0):
		with self.lock:
			return [c for c in self.conns if c.accepted >= since]

	def pubs(self, topic=None):
		with self.lock:
			return [Pub(p["connect_n"], p["topic"], p["payload"], p["qos"], p["dup"], p["size"])
			        for p in self.publishes if topic is None or p["topic"] == topic]

	def n_connections(self):
		with self.lock:
			return self.n_connects

	def published(self, topic=None):
		with self.lock:
			return [p for p in self.publishes if topic is None or p["topic"] == topic]

	# -- acting as the broker

	def inject(self, topic, payload, retain=True, qos=0):
		"""Publish to every matching subscription, as another client (or a broker node) would."""
		if retain:
			with self.lock:
				self.retained[topic] = payload
		with self.lock:
			conns = [c for c in self.conns if c.closed is None and c.connack is not None]
		for c in conns:
			if any(topic_matches(s, topic) for s in c.subs):
				self._deliver(c, topic, payload, retain, qos)

	def kick(self):
		"""Close every connection open now (the listener stays)."""
		with self.lock:
			conns = [c for c in self.conns if c.closed is None]
		for c in conns:
			c.close()
		return len(conns)

	def close(self):
		self._stop.set()
		self.srv.close()
		with self.lock:
			conns = list(self.conns)
		for c in conns:
			c.close()
		for t in self._threads:
			t.join(2)

	# -- internals

	def _accept(self):
		while not self._stop.is_set():
			try:
				s, _ = self.srv.accept()
			except OSError:
				continue
			with self.lock:
				c = Conn(len(self.conns), s)
				self.conns.append(c)
			t = threading.Thread(target=self._serve, args=(c,), daemon=True)
			t.start()
			self._threads.append(t)

	def _read_packet(self, c, buf):
		"""One packet (type byte, body) from buf (a bytearray filled from the socket), or None at EOF."""
		while True:
			p = take_packet(buf)
			if p is not None:
				return p[0], p[1]
			if self._stop.is_set():
				return None
			try:
				data = c.sock.recv(65536)
			except socket.timeout:
				continue
			except OSError:
				return None
			if not data:
				return None
			buf += data

	def _serve(self, c):
		c.sock.settimeout(0.1)
		buf = bytearray()
		timers = c.timers
		try:
			while True:
				p = self._read_packet(c, buf)
				if p is None:
					return
				first, body = p
				kind = first >> 4
				c.packets.append((time.monotonic(), kind))
				if kind == 1:
					if not self._on_connect(c, body, timers):
						return
				elif kind == 3:
					if not self._on_publish(c, first, body):
						return
				elif kind == 6:                         # PUBREL -> PUBCOMP
					mid = body[:2]
					c.taken = max(0, c.taken - 1)
					c.send(packet(0x70, mid))
				elif kind == 4 or kind == 5 or kind == 7:  # PUBACK, PUBREC, PUBCOMP of our deliveries
					if kind == 5:
						c.send(packet(0x62, body[:2]))
				elif kind == 8:
					self._on_subscribe(c, body)
				elif kind == 10:                        # UNSUBSCRIBE -> UNSUBACK
					c.send(packet(0xB0, body[:2] + (b"\x00\x00" if c.level == 5 else b"")))
				elif kind == 12:                        # PINGREQ
					c.send(b"\xd0\x00")
				elif kind == 14:                        # DISCONNECT
					return
		finally:
			for t in timers:
				t.cancel()
			c.close()

	def _on_connect(self, c, body, timers):
		pos = 0
		_name, pos = _read_str(body, pos)
		c.level = body[pos]
		flags = body[pos + 1]
		pos += 4                                          # level, flags, keepalive
		if c.level == 5:
			n, pos = _read_varint(body, pos)
			pos += n
		cid, pos = _read_str(body, pos)
		c.client_id = cid.decode(errors="replace")
		c.clean = bool(flags & 0x02)
		with self.lock:
			c.connect_n = self.n_connects
			self.n_connects += 1
			if c.connect_n < len(self.plans):
				c.plan = self.plans[c.connect_n]
		if c.plan.connack is not None:
			c.send(c.plan.connack)
			c.connack = time.monotonic()
			self._hostile(c, "connack")
			return True
		if c.level == 5 and self.refuse_v5:
			c.send(b"\x20\x02\x00\x01")                   # a 3.1.1 CONNACK: unacceptable protocol version
			return False
		if c.level == 5:
			props = b""
			if self.receive_maximum is not None:
				props += b"\x21" + struct.pack(">H", self.receive_maximum)
			c.send(packet(0x20, b"\x00\x00" + _varint(len(props)) + props))
		else:
			c.send(b"\x20\x02\x00\x00")
		c.connack = time.monotonic()
		self._hostile(c, "connack")
		if self.garbage:
			c.send(self.garbage)
		drop_after = c.plan.drop_after if c.plan.drop_after is not None else self.drop_after
		if drop_after is not None:
			t = threading.Timer(drop_after, c.close)
			t.daemon = True
			t.start()
			timers.append(t)
		if self.disconnect_after is not None and c.level == 5:
			reason = self.disconnect_reason

			def disconnect():
				c.send(bytes([0xE0, 2, reason, 0]))
				c.close()
			t = threading.Timer(self.disconnect_after, disconnect)
			t.daemon = True
			t.start()
			timers.append(t)
		return True

	def _on_publish(self, c, first, body):
		qos = (first >> 1) & 3
		dup = bool(first & 8)
		retain = bool(first & 1)
		topic, pos = _read_str(body, 0)
		mid = None
		if qos:
			mid = struct.unpack_from(">H", body, pos)[0]
			pos += 2
		if c.level == 5:
			n, pos = _read_varint(body, pos)
			pos += n
		payload = body[pos:]
		topic = topic.decode(errors="replace")
		reason = self.refuse(topic) if (self.refuse and qos) else None
		limit = self.quota(c) if (self.quota and qos) else None
		if not reason and limit is not None and c.taken >= limit:
			reason = 0x97
		with self.lock:
			self.publishes.append({"conn": c.n, "topic": topic, "payload": payload, "qos": qos, "dup": dup,
			                       "mid": mid, "retain": retain, "refused": reason or 0, "t": time.monotonic(),
			                       "connect_n": c.connect_n, "size": len(packet(first, body))})
		if not c.plan.acks(topic):
			self._hostile(c, f"publish:{topic}")
			return True
		if reason and reason >= 0x80:
			if c.level == 5 and not self.refuse_silently:
				c.send(packet(0x40 if qos == 1 else 0x50, struct.pack(">HBB", mid, reason, 0)))
			if self.close_on_refuse or self.refuse_silently or c.level != 5:
				return False
			return True
		if retain:
			with self.lock:
				if payload:
					self.retained[topic] = payload
				else:
					self.retained.pop(topic, None)
		if qos == 1:
			c.send(packet(0x40, struct.pack(">H", mid)))
		elif qos == 2:
			c.taken += 1
			c.send(packet(0x50, struct.pack(">H", mid)))
		self._hostile(c, f"publish:{topic}")
		return True

	def _hostile(self, c, event):
		"""Send the plan's hostile bytes if EVENT ("connack" or "publish:TOPIC") is the one it waits for."""
		plan = c.plan
		if plan.hostile is None or c.hostile_sent:
			return
		if not (plan.after == event or (plan.after == "publish" and event.startswith("publish:"))):
			return
		c.hostile_sent = True
		c.send(plan.hostile)
		t = threading.Timer(3, c.close)
		t.daemon = True
		t.start()
		c.timers.append(t)

	def _on_subscribe(self, c, body):
		mid = body[:2]
		pos = 2
		if c.level == 5:
			n, pos = _read_varint(body, pos)
			pos += n
		codes = bytearray()
		new = []
		while pos < len(body):
			f, pos = _read_str(body, pos)
			opts = body[pos]
			pos += 1
			new.append(f.decode(errors="replace"))
			codes.append(min(opts & 3, 2))
		c.subs += new
		c.send(packet(0x90, mid + (b"\x00" if c.level == 5 else b"") + bytes(codes)))
		with self.lock:
			retained = list(self.retained.items())
		for topic, payload in retained:
			if any(topic_matches(f, topic) for f in new):
				self._deliver(c, topic, payload, True, 0)

	def _deliver(self, c, topic, payload, retain, qos):
		body = _str(topic)
		if qos:
			body += struct.pack(">H", 1)
		if c.level == 5:
			body += b"\x00"
		body += payload if isinstance(payload, bytes) else payload.encode()
		c.send(packet(0x30 | (qos << 1) | (1 if retain else 0), body))
