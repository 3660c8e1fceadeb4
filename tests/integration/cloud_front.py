# SPDX-License-Identifier: MIT
"""A cloud MQTT endpoint emulated in front of a local mosquitto.

  CloudFront(upstream_port, certfile=, keyfile=, cafile=None, alpn=None,
             check_connect=None, drop_qos2=False)
      listens on 127.0.0.1:<.port>. With certfile it terminates TLS (client
      certificates required when cafile is given; ALPN offered by the client
      is matched against the list alpn, as Python's ssl selects it) and
      forwards the plain MQTT to mosquitto at 127.0.0.1:upstream_port.
      Every CONNECT from the client is parsed and recorded in .connects
      (Connect tuples, with the ALPN protocol the handshake chose and the
      subject CN of the client's certificate). check_connect(connect) may
      return a reason (a string): the front then answers CONNACK "not
      authorized" (3.1.1 return code 5) itself and closes, which is what a
      cloud service does with a bad SAS token. drop_qos2: a QoS 2 PUBLISH
      closes the connection (Azure IoT Hub and AWS IoT Core do that); each
      is counted in .qos2_drops. expires(connect): when the connection's
      credentials expire; it is cut then (counted in .expired_cuts), as the
      hub does at a SAS token's expiry. Every PUBLISH from the client is recorded in
      .publishes as (topic, qos, retain, payload).

One thread per connection drives both directions (an SSL object is not used
from two threads at once). Everything is bounded and stops with .close().
"""

import collections
import select
import socket
import ssl
import threading
import time

from mqtt_wire import read_str as _utf8, read_varint as _varint, take_packet

Connect = collections.namedtuple("Connect", "name level flags keepalive client_id username password alpn cn t")


def parse_connect(body, alpn=None, cn=None):
	"""A CONNECT packet's body (MQTT 3.1, 3.1.1; no MQTT 5 properties) as a Connect."""
	name, pos = _utf8(body, 0)
	level, flags = body[pos], body[pos + 1]
	keepalive = int.from_bytes(body[pos + 2:pos + 4], "big")
	pos += 4
	if level == 5:
		plen, pos = _varint(body, pos)
		pos += plen
	client_id, pos = _utf8(body, pos)
	if flags & 0x04:  # will flag: will properties (5), topic, payload
		if level == 5:
			plen, pos = _varint(body, pos)
			pos += plen
		_t, pos = _utf8(body, pos)
		_p, pos = _utf8(body, pos)
	username = password = None
	if flags & 0x80:
		username, pos = _utf8(body, pos)
	if flags & 0x40:
		password, pos = _utf8(body, pos)
	return Connect(name.decode(), level, flags, keepalive, client_id.decode(),
	               username.decode() if username is not None else None,
	               password.decode() if password is not None else None, alpn, cn, time.time())


class CloudFront:
	def __init__(self, upstream_port, certfile=None, keyfile=None, cafile=None, alpn=None,
	             check_connect=None, drop_qos2=False, expires=None):
		self.upstream_port = upstream_port
		self.check_connect = check_connect
		self.expires = expires  # connect -> unix time its credentials expire (the connection is then cut), or None
		self.drop_qos2 = drop_qos2
		self.ctx = None
		if certfile:
			self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
			self.ctx.load_cert_chain(certfile, keyfile)
			if cafile:
				self.ctx.load_verify_locations(cafile)
				self.ctx.verify_mode = ssl.CERT_REQUIRED
			if alpn:
				self.ctx.set_alpn_protocols(alpn)
		self.lock = threading.Lock()
		self.cond = threading.Condition(self.lock)
		self.connects = []
		self.refused = []        # (Connect, reason)
		self.handshake_errors = []
		self.publishes = []
		self.qos2_drops = 0
		self.expired_cuts = 0
		self.socks = set()
		self.stopping = threading.Event()
		self.srv = socket.socket()
		self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		self.srv.bind(("127.0.0.1", 0))
		self.srv.listen(16)
		self.srv.settimeout(0.2)
		self.port = self.srv.getsockname()[1]
		self.url = f"{'mqtts' if certfile else 'mqtt'}://127.0.0.1:{self.port}"
		threading.Thread(target=self._accept, daemon=True).start()

	def wait(self, pred, timeout):
		deadline = time.monotonic() + timeout
		with self.cond:
			while not pred():
				left = deadline - time.monotonic()
				if left <= 0:
					return False
				self.cond.wait(min(left, 0.2))
			return True

	def _accept(self):
		while not self.stopping.is_set():
			try:
				client, _ = self.srv.accept()
			except socket.timeout:
				continue
			except OSError:
				return
			threading.Thread(target=self._serve, args=(client,), daemon=True).start()

	def _serve(self, client):
		alpn = cn = None
		up = None
		try:
			client.settimeout(5)
			if self.ctx:
				try:
					client = self.ctx.wrap_socket(client, server_side=True)
				except (ssl.SSLError, OSError) as e:
					with self.cond:
						self.handshake_errors.append(str(e))
						self.cond.notify_all()
					client.close()
					return
				alpn = client.selected_alpn_protocol()
				cert = client.getpeercert()
				if cert:
					cn = dict(x[0] for x in cert.get("subject", ())).get("commonName")
			up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
			with self.lock:
				self.socks.update((client, up))
			client.settimeout(0.05)
			up.settimeout(None)
			self._pump(client, up, alpn, cn)
		except (OSError, ValueError, ssl.SSLError):
			pass
		finally:
			for s in (client, up):
				if s is None:
					continue
				with self.lock:
					self.socks.discard(s)
				try:
					s.close()
				except OSError:
					pass

	def _pump(self, client, up, alpn, cn):
		buf = bytearray()
		state = {"deadline": None}
		while not self.stopping.is_set():
			if state["deadline"] is not None and time.time() >= state["deadline"]:
				with self.cond:
					self.expired_cuts += 1
					self.cond.notify_all()
				return  # what the hub does when a SAS token expires
			r, _, _ = select.select([client, up], [], [], 0.1)
			if client in r or (self.ctx and client.pending()):
				try:
					data = client.recv(65536)
				except (socket.timeout, ssl.SSLWantReadError):
					data = None
				if data == b"":
					return
				if data:
					buf += data
					out = bytearray()
					while (p := take_packet(buf)) is not None:
						first, body, pkt = p
						if not self._client_packet(client, first, body, alpn, cn, state):
							return
						out += pkt
					if out:
						up.sendall(out)
			if up in r:
				data = up.recv(65536)
				if not data:
					return
				client.sendall(data)

	def _client_packet(self, client, b0, body, alpn, cn, state):
		"""Record one packet from the client; False: the connection is to be closed."""
		kind = b0 >> 4
		if kind == 1:
			c = parse_connect(body, alpn, cn)
			reason = self.check_connect(c) if self.check_connect else None
			with self.cond:
				self.connects.append(c)
				if reason:
					self.refused.append((c, reason))
				self.cond.notify_all()
			if reason:
				client.sendall(bytes([0x20, 2, 0, 5]))  # CONNACK, return code 5: not authorized
				return False
			if self.expires:
				state["deadline"] = self.expires(c)
		elif kind == 3:
			qos = (b0 >> 1) & 3
			topic, pos = _utf8(body, 0)
			if qos:
				pos += 2
			with self.cond:
				self.publishes.append((topic.decode(errors="replace"), qos, bool(b0 & 1), body[pos:]))
				if qos == 2 and self.drop_qos2:
					self.qos2_drops += 1
				self.cond.notify_all()
			if qos == 2 and self.drop_qos2:
				return False
		return True

	def cut_all(self):
		with self.lock:
			socks = list(self.socks)
		for s in socks:
			try:
				s.shutdown(socket.SHUT_RDWR)
			except OSError:
				pass

	def close(self):
		self.stopping.set()
		self.srv.close()
		self.cut_all()
