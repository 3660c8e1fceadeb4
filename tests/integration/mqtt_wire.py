# SPDX-License-Identifier: MIT
"""MQTT's wire format as the test-side broker and proxies read and write it (fake_broker.py,
mqtt_tap.py, cloud_front.py): the variable byte integer, length-prefixed strings, and whole
packets cut off the front of a byte stream. MQTT 3.1.1 §1.5.3, §2.2.3; MQTT 5.0 §1.5.4–1.5.5."""

import struct


def read_varint(buf, pos):
	"""The variable byte integer at buf[pos:]: (value, next pos), or None when buf ends inside
	it. ValueError when it runs past four bytes (the most the standard allows)."""
	mult, value = 1, 0
	for i in range(4):
		if pos + i >= len(buf):
			return None
		b = buf[pos + i]
		value += (b & 0x7F) * mult
		if not b & 0x80:
			return value, pos + i + 1
		mult *= 128
	raise ValueError("malformed variable byte integer")


def varint(n):
	"""n as a variable byte integer."""
	out = bytearray()
	while True:
		b = n % 128
		n //= 128
		if n:
			b |= 0x80
		out.append(b)
		if not n:
			return bytes(out)


def read_str(buf, pos):
	"""The two-byte-length-prefixed string at buf[pos:] (bytes): (value, next pos)."""
	n = struct.unpack_from(">H", buf, pos)[0]
	return bytes(buf[pos + 2:pos + 2 + n]), pos + 2 + n


def take_packet(buf):
	"""The first whole packet of buf (a bytearray), removed from it: (first byte, body, the
	packet's bytes), or None while it is incomplete."""
	if len(buf) < 2:
		return None
	r = read_varint(buf, 1)
	if r is None:
		return None
	length, start = r
	if len(buf) < start + length:
		return None
	pkt = bytes(buf[:start + length])
	del buf[:start + length]
	return pkt[0], pkt[start:], pkt
