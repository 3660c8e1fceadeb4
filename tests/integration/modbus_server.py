# SPDX-License-Identifier: MIT
"""A small Modbus TCP server for the tests, written here from the specifications
(MODBUS Application Protocol V1.1b3 §6, §7; Messaging on TCP/IP Implementation
Guide V1.0b §3.1.3), independent of the gateway's C code.

Several units on one port, each with its own coils, discrete inputs, holding and
input registers (ITEMS of each); every request is counted per (unit, function) and
logged, so tests can assert how many requests the gateway sent. A unit in `mute`
never answers; a unit not configured is answered with exception 0x0B (gateway
target failed to respond), as a TCP-to-RTU gateway would. stop() closes the
listening socket and every connection (a server restart); start() listens again
on the same port.
"""

import collections
import select
import socket
import struct
import threading

ITEMS = 1000


class ModbusServer:
	def __init__(self, port, units=(1, 2)):
		self.port = port
		self.tables = {u: {"coil": [0] * ITEMS, "discrete": [0] * ITEMS,
		                   "holding": [0] * ITEMS, "input": [0] * ITEMS} for u in units}
		self.requests = collections.Counter()
		self.log = []
		self.mute = set()
		self.lock = threading.Lock()
		self._listen = None
		self._conns = []
		self._stop = threading.Event()
		self._thread = None
		self.connections = 0

	# --- tables -----------------------------------------------------------------
	def set_registers(self, unit, table, address, words):
		with self.lock:
			for i, w in enumerate(words):
				self.tables[unit][table][address + i] = w & 0xFFFF

	def set_bits(self, unit, table, address, bits):
		with self.lock:
			for i, b in enumerate(bits):
				self.tables[unit][table][address + i] = 1 if b else 0

	def get(self, unit, table, address, count=1):
		with self.lock:
			return list(self.tables[unit][table][address:address + count])

	# --- life -------------------------------------------------------------------
	def start(self):
		s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
		s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		s.bind(("127.0.0.1", self.port))
		s.listen(8)
		self._listen = s
		self._stop.clear()
		self._thread = threading.Thread(target=self._serve, daemon=True)
		self._thread.start()

	def stop(self):
		self._stop.set()
		if self._thread:
			self._thread.join(timeout=5)
		self._thread = None
		for c in self._conns:
			try:
				c.close()
			except OSError:
				pass
		self._conns = []
		if self._listen:
			self._listen.close()
			self._listen = None

	def _serve(self):
		bufs = {}
		while not self._stop.is_set():
			socks = [self._listen] + self._conns
			ready, _, _ = select.select(socks, [], [], 0.05)
			for s in ready:
				if s is self._listen:
					c, _ = s.accept()
					self._conns.append(c)
					bufs[c] = b""
					self.connections += 1
					continue
				try:
					data = s.recv(4096)
				except OSError:
					data = b""
				if not data:
					self._conns.remove(s)
					s.close()
					continue
				bufs[s] += data
				while len(bufs[s]) >= 7:
					tid, proto, length, unit = struct.unpack(">HHHB", bufs[s][:7])
					if len(bufs[s]) < 6 + length:
						break
					pdu = bufs[s][7:6 + length]
					bufs[s] = bufs[s][6 + length:]
					answer = self._handle(unit, pdu)
					if answer is not None and proto == 0:
						s.sendall(struct.pack(">HHHB", tid, 0, len(answer) + 1, unit) + answer)

	# --- the protocol ---------------------------------------------------------------
	def _handle(self, unit, pdu):
		fc = pdu[0]
		with self.lock:
			self.requests[(unit, fc)] += 1
			self.log.append((unit, pdu))
			if unit in self.mute:
				return None
			if unit not in self.tables:
				return bytes([fc | 0x80, 0x0B])
			t = self.tables[unit]
			try:
				return self._function(t, fc, pdu)
			except IndexError:
				return bytes([fc | 0x80, 0x02])

	@staticmethod
	def _function(t, fc, pdu):
		def exc(code):
			return bytes([fc | 0x80, code])
		if fc in (1, 2, 3, 4):
			addr, count = struct.unpack(">HH", pdu[1:5])
			if addr + count > ITEMS:
				return exc(2)
			if fc in (1, 2):  # §6.1, §6.2: packed LSB first
				bits = t["coil" if fc == 1 else "discrete"][addr:addr + count]
				data = bytearray((count + 7) // 8)
				for i, b in enumerate(bits):
					if b:
						data[i // 8] |= 1 << (i % 8)
				return bytes([fc, len(data)]) + bytes(data)
			regs = t["holding" if fc == 3 else "input"][addr:addr + count]
			return bytes([fc, 2 * count]) + b"".join(struct.pack(">H", r) for r in regs)
		if fc == 5:  # §6.5: FF00 on, 0000 off, echo
			addr, value = struct.unpack(">HH", pdu[1:5])
			if value not in (0xFF00, 0x0000):
				return exc(3)
			if addr >= ITEMS:
				return exc(2)
			t["coil"][addr] = 1 if value == 0xFF00 else 0
			return pdu[:5]
		if fc == 6:  # §6.6: echo
			addr, value = struct.unpack(">HH", pdu[1:5])
			if addr >= ITEMS:
				return exc(2)
			t["holding"][addr] = value
			return pdu[:5]
		if fc == 15:  # §6.11
			addr, count, n = struct.unpack(">HHB", pdu[1:6])
			if addr + count > ITEMS:
				return exc(2)
			for i in range(count):
				t["coil"][addr + i] = (pdu[6 + i // 8] >> (i % 8)) & 1
			return pdu[:5]
		if fc == 16:  # §6.12
			addr, count, n = struct.unpack(">HHB", pdu[1:6])
			if addr + count > ITEMS:
				return exc(2)
			for i in range(count):
				t["holding"][addr + i] = struct.unpack(">H", pdu[6 + 2 * i:8 + 2 * i])[0]
			return pdu[:5]
		return exc(1)
