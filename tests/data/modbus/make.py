#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes transcript.txt and expected.txt for the Modbus RTU driver (see README.md).

CRC-16/MODBUS (Modbus over Serial Line V1.02 §6.2.2): poly 0xA001 reflected, init 0xFFFF,
low byte first. Computed here, independently of drivers/modbus.c.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SLAVE = 0x11  # 17, the slave address of the Modbus serial-line examples

# name, function, address, count, config text
REGS = [
    ("voltage", 4, 0, 2),
    ("current", 3, 6, 1),
    ("energy", 4, 0x156, 2),
    ("r108", 3, 107, 1),   # Application Protocol §6.3 example: registers 108.. hold 555, 0, 100
    ("r110", 3, 109, 1),
    ("r9", 4, 8, 1),       # §6.4 example: input register 9 holds 10
]


def crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def adu(pdu):
    c = crc16(bytes(pdu))
    return bytes(pdu) + bytes([c & 0xFF, c >> 8])


def request(i):
    _, fc, addr, count = REGS[i]
    return adu([SLAVE, fc, addr >> 8, addr & 0xFF, count >> 8, count & 0xFF])


def response(i, data):
    return adu([SLAVE, REGS[i][1], len(data)] + list(data))


def hx(b):
    return " ".join("%02X" % x for x in b)


def fmt(v):
    s = "%.15g" % v
    if float(s) != v:
        s = "%.17g" % v
    return s


F230_5 = struct.pack(">f", 230.5)
F231 = struct.pack(">f", 231.0)
NAN = bytes.fromhex("7FC00000")
CURRENT = struct.pack(">h", -1234)
ENERGY_LITTLE = struct.pack(">HH", 123456 & 0xFFFF, 123456 >> 16)  # low word first


def main():
    assert adu([0x11, 0x03, 0x00, 0x6B, 0x00, 0x03]).hex().upper() == "1103006B00037687"  # the well-known example
    good = {0: response(0, F230_5), 1: response(1, CURRENT), 2: response(2, ENERGY_LITTLE),
            3: response(3, [0x02, 0x2B]), 4: response(4, [0x00, 0x64]), 5: response(5, [0x00, 0x0A])}
    t = ["# Modbus RTU transcript: '>' request poll() writes, '<' the slave's answer, 'tick' a poll()",
         "# that writes nothing (rest of the interval). Slave 17, registers as in README.md."]
    for i in range(6):                                          # cycle 1: all answered
        t += ["> " + hx(request(i)), "< " + hx(good[i])]
    t += ["tick"]
    t += ["> " + hx(request(0))]                                 # cycle 2: voltage never answered
    t += ["> " + hx(request(1)), "< " + hx(adu([SLAVE, 0x83, 0x02]))]   # timeout 1; exception 2: io 1
    bad = bytearray(response(2, ENERGY_LITTLE))
    bad[-1] ^= 0xFF
    t += ["> " + hx(request(2)), "< " + hx(bad)]                 # checksum 1 (timeout 2 at the next tick)
    t += ["> " + hx(request(3)), "< 00 " + hx(good[3])]          # noise byte: garbage 1
    wrong = adu([SLAVE, 0x03, 0x04, 0x00, 0x64, 0x00, 0x00])     # 4 bytes for a 1-register request
    assert SLAVE not in wrong[1:]
    t += ["> " + hx(request(4)), "< " + hx(wrong), "< " + hx(good[4])]   # syntax 1, then the right one
    t += ["> " + hx(request(5)), "< " + hx(good[5][:3]), "< " + hx(good[5][3:])]  # split answer
    t += ["tick"]
    t += ["> " + hx(request(0)), "< " + hx(response(0, NAN))]     # insane 1
    t += ["> " + hx(request(1)), "< " + hx(response(1, CURRENT))]
    with open(os.path.join(HERE, "transcript.txt"), "w") as f:
        f.write("\n".join(t) + "\n")

    cycle1 = [("voltage", 230.5), ("current", -1234 * 0.01), ("energy", 123456 * 0.1),
              ("r108", 555), ("r110", 100), ("r9", 10)]
    exp = ["# field payload (see README.md)"]
    exp += ["%s %s" % (n, fmt(v)) for n, v in cycle1]
    exp += ["%s %s" % (n, fmt(v)) for n, v in cycle1[3:]]
    exp += ["current %s" % fmt(-1234 * 0.01)]
    with open(os.path.join(HERE, "expected.txt"), "w") as f:
        f.write("\n".join(exp) + "\n")


main()
