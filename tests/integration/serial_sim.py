# SPDX-License-Identifier: MIT
"""Devices on the far end of a pseudo-terminal, for the shared-line tests.

RtuBus: several Modbus RTU slaves on one line (MODBUS over Serial Line V1.02
§2.5.1: slave address, PDU, CRC-16/MODBUS low byte first, §6.2.2), each with
the tables and functions of modbus_server.py (Application Protocol V1.1b3 §6,
§7), written from the specifications and independent of the gateway's C code.
Requests are framed by their length (functions 01-06: 8 bytes; 15/16: 9 +
byte count) and checked by CRC; a frame for an address nobody has, or with a
bad CRC, gets no answer, as on a real bus. A slave in `mute` never answers;
one in `failing` answers every request with that exception code. Every
request is logged with its arrival time, and the silence before it (since
the last byte either side wrote) is kept, so tests can check the 3.5-character
gap and each slave's polling interval. With `baud` set, answers are delayed
by the time the request and the answer would take on a real wire at that rate
(the pty itself is instant), for the benchmark.

TextDevice: an Arduino-like device that prints lines on its own (readings)
and answers command lines through a handler.

Both own their pty master (a stable symlink to the slave, as make_pty does)
and a reader thread; close() stops them.
"""

import fcntl
import os
import select
import struct
import threading
import time
import tty
from pathlib import Path

from modbus_server import ModbusServer


def crc16(data):
	crc = 0xFFFF
	for b in data:
		crc ^= b
		for _ in range(8):
			crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
	return crc


def rtu_frame(slave, pdu):
	c = crc16(bytes([slave]) + pdu)
	return bytes([slave]) + pdu + bytes([c & 0xFF, c >> 8])


class _PtyEnd:
	def __init__(self, link):
		self.link = Path(link)
		master, slave = os.openpty()
		try:
			tty.setraw(slave)
			self.path = os.ttyname(slave)
		finally:
			os.close(slave)
		fcntl.fcntl(master, fcntl.F_SETFL, fcntl.fcntl(master, fcntl.F_GETFL) | os.O_NONBLOCK)
		self.master = master
		tmp = self.link.with_name(self.link.name + ".new")
		try:
			tmp.unlink()
		except FileNotFoundError:
			pass
		os.symlink(self.path, tmp)
		os.replace(tmp, self.link)
		self.lock = threading.Lock()
		self._stop = threading.Event()
		self._thread = threading.Thread(target=self._run, daemon=True)
		self.last_activity = time.monotonic()

	def start(self):
		self._thread.start()
		return self

	def write(self, data):
		view = memoryview(data)
		deadline = time.monotonic() + 5
		while view:
			try:
				n = os.write(self.master, view)
				view = view[n:]
			except BlockingIOError:
				if time.monotonic() > deadline:
					raise
				time.sleep(0.001)
		self.last_activity = time.monotonic()

	def _run(self):
		p = select.poll()
		p.register(self.master, select.POLLIN)
		while not self._stop.is_set():
			try:
				ev = p.poll(20)
			except InterruptedError:
				continue
			if ev and ev[0][1] & select.POLLIN:
				try:
					data = os.read(self.master, 4096)
				except BlockingIOError:
					data = b""
				except OSError:
					data = b""
					time.sleep(0.02)
				if data:
					self.received(data, time.monotonic())
					continue
			elif ev:
				time.sleep(0.02)  # POLLHUP: the gateway does not have the port open
			self.idle(time.monotonic())

	def received(self, data, now):
		pass

	def idle(self, now):
		pass

	def close(self):
		self._stop.set()
		if self._thread.is_alive():
			self._thread.join(timeout=5)
		try:
			os.close(self.master)
		except OSError:
			pass
		try:
			self.link.unlink()
		except FileNotFoundError:
			pass


class RtuBus(_PtyEnd):
	def __init__(self, link, slaves=(1, 2, 3), baud=None, data_bits=8, parity="E", stop_bits=1,
	             turnaround=0.002):
		super().__init__(link)
		self.tables = ModbusServer(0, units=slaves)   # its tables and functions; never started
		self.mute = set()
		self.failing = {}                            # slave -> exception code
		self.log = []                                # (time, slave, pdu) of every well-formed request
		self.gaps = []                               # silence before each request, seconds
		self.bad_crc = 0
		self.buf = b""
		self.char_s = (1 + data_bits + (parity != "N") + stop_bits) / baud if baud else 0
		self.turnaround = turnaround
		self.start()

	def set_registers(self, slave, table, address, words):
		self.tables.set_registers(slave, table, address, words)

	def set_bits(self, slave, table, address, bits):
		self.tables.set_bits(slave, table, address, bits)

	def get(self, slave, table, address, count=1):
		return self.tables.get(slave, table, address, count)

	def requests(self, slave=None, fc=None):
		with self.lock:
			return [(t, s, p) for t, s, p in self.log if (slave is None or s == slave) and (fc is None or p[0] == fc)]

	@staticmethod
	def _length(buf):
		if len(buf) < 2:
			return 0
		fc = buf[1]
		if fc in (1, 2, 3, 4, 5, 6):
			return 8
		if fc in (15, 16):
			return 9 + buf[6] if len(buf) >= 7 else 0
		return -1

	def received(self, data, now):
		if not self.buf:
			with self.lock:
				self.gaps.append(now - self.last_activity)
		self.buf += data
		self.last_activity = now
		while self.buf:
			n = self._length(self.buf)
			if n == 0 or len(self.buf) < max(n, 1):
				return
			if n < 0 or crc16(self.buf[:n - 2]) != self.buf[n - 2] | self.buf[n - 1] << 8:
				if n > 0:
					self.bad_crc += 1
				self.buf = self.buf[1:]
				continue
			frame, self.buf = self.buf[:n], self.buf[n:]
			self._answer(frame[0], frame[1:-2], now)

	def _answer(self, slave, pdu, now):
		with self.lock:
			self.log.append((now, slave, pdu))
		if slave not in self.tables.tables or slave in self.mute:
			return
		if slave in self.failing:
			answer = bytes([pdu[0] | 0x80, self.failing[slave]])
		else:
			with self.tables.lock:
				try:
					answer = self.tables._function(self.tables.tables[slave], pdu[0], pdu)
				except IndexError:
					answer = bytes([pdu[0] | 0x80, 0x02])
		adu = rtu_frame(slave, answer)
		# the request's and the answer's time on a real wire, and the slave's turnaround
		time.sleep(self.turnaround + self.char_s * (len(pdu) + 3 + len(adu)))
		self.write(adu)


class TextDevice(_PtyEnd):
	"""Prints `reading()` every `every` seconds; hands each command line to `handle(line)`, which
	returns the reply line (or None)."""

	def __init__(self, link, reading=None, every=0.1, handle=None):
		super().__init__(link)
		self.reading = reading
		self.every = every
		self.handle = handle
		self.commands = []
		self.buf = b""
		self.next = time.monotonic()
		self.start()

	def received(self, data, now):
		self.buf += data
		while b"\n" in self.buf:
			line, self.buf = self.buf.split(b"\n", 1)
			line = line.strip().decode(errors="replace")
			with self.lock:
				self.commands.append((now, line))
			reply = self.handle(line) if self.handle else None
			if reply is not None:
				self.write((reply + "\r\n").encode())
		self.idle(now)

	def idle(self, now):
		if self.reading and now >= self.next:
			self.next = now + self.every
			try:
				self.write((self.reading() + "\r\n").encode())
			except OSError:
				pass

	def received_commands(self):
		with self.lock:
			return [c for _, c in self.commands]


def words_u32(v, little=False):
	hi, lo = (v >> 16) & 0xFFFF, v & 0xFFFF
	return [lo, hi] if little else [hi, lo]


def words_f32(v):
	return list(struct.unpack(">HH", struct.pack(">f", v)))


def words_f64(v):
	return list(struct.unpack(">HHHH", struct.pack(">d", v)))


def words_i64(v):
	return list(struct.unpack(">HHHH", struct.pack(">q", v)))
