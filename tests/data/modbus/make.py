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


# The order of one cycle: the driver's planner reads holding registers (03) before input
# registers (04), each by address; with max_gap 0 no two of these entries share a request.
ORDER = [1, 3, 4, 0, 5, 2]


def main():
    assert adu([0x11, 0x03, 0x00, 0x6B, 0x00, 0x03]).hex().upper() == "1103006B00037687"  # the well-known example
    good = {0: response(0, F230_5), 1: response(1, CURRENT), 2: response(2, ENERGY_LITTLE),
            3: response(3, [0x02, 0x2B]), 4: response(4, [0x00, 0x64]), 5: response(5, [0x00, 0x0A])}
    t = ["# Modbus RTU transcript: '>' the request the driver sends at its turn, '<' bytes the slave",
         "# sends, 'timeout' no answer in time, 'tick' the next interval. Slave 17, registers as in README.md."]
    t += ["tick"]
    for i in ORDER:                                              # cycle 1: all answered
        t += ["> " + hx(request(i)), "< " + hx(good[i])]
    t += ["tick"]
    t += ["> " + hx(request(1)), "< " + hx(adu([SLAVE, 0x83, 0x02]))]   # exception 2: io 1
    t += ["> " + hx(request(3)), "< 00 " + hx(good[3])]          # noise byte: garbage 1
    wrong = adu([SLAVE, 0x03, 0x04, 0x00, 0x64, 0x00, 0x00])     # 4 bytes for a 1-register request
    assert SLAVE not in wrong[1:]
    t += ["> " + hx(request(4)), "< " + hx(wrong), "< " + hx(good[4])]   # syntax 1; the late answer is nobody's
    t += ["> " + hx(request(0)), "timeout"]                       # voltage never answered: timeout 1
    t += ["> " + hx(request(5)), "< " + hx(good[5][:3]), "< " + hx(good[5][3:])]  # split answer
    bad = bytearray(response(2, ENERGY_LITTLE))
    bad[-1] ^= 0xFF
    t += ["> " + hx(request(2)), "< " + hx(bad)]                 # checksum 1
    t += ["tick"]
    for i in ORDER:                                              # cycle 3: voltage is a NaN: insane 1
        t += ["> " + hx(request(i)), "< " + hx(response(0, NAN) if i == 0 else good[i])]
    with open(os.path.join(HERE, "transcript.txt"), "w") as f:
        f.write("\n".join(t) + "\n")

    cycle1 = [("current", -1234 * 0.01), ("r108", 555), ("r110", 100), ("voltage", 230.5), ("r9", 10),
              ("energy", 123456 * 0.1)]
    exp = ["# field payload (see README.md)"]
    exp += ["%s %s" % (n, fmt(v)) for n, v in cycle1]
    exp += ["r108 555", "r9 10"]
    exp += ["%s %s" % (n, fmt(v)) for n, v in cycle1 if n != "voltage"]
    with open(os.path.join(HERE, "expected.txt"), "w") as f:
        f.write("\n".join(exp) + "\n")


main()
