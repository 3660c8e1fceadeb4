#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the PMS5003 test frames of this directory (see README.md), stream.bin and expected.txt.

Frames follow the PMS5003 datasheet "Appendix I" layout: 0x42 0x4D, frame length 28, 13 big-endian
data words, check word = sum of bytes 0..29. Values are ours.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(cf1, atm, counts, reserved=0, length=28, corrupt=0):
    body = struct.pack(">2BH3H3H6HH", 0x42, 0x4D, length, *cf1, *atm, *counts, reserved)
    check = (sum(body) + corrupt) & 0xFFFF
    return body + struct.pack(">H", check)


F1 = frame((5, 8, 9), (5, 8, 9), (1200, 350, 60, 8, 2, 1), reserved=0x9700)
F2 = frame((12, 20, 25), (10, 17, 22), (3000, 900, 150, 20, 5, 2))
F3 = frame((0, 0, 0), (0, 0, 0), (0, 0, 0, 0, 0, 0))
BAD_SUM = frame((12, 20, 25), (10, 17, 22), (3000, 900, 150, 20, 5, 2), corrupt=1)
INSANE = frame((30, 20, 25), (30, 20, 25), (3000, 900, 150, 20, 5, 2))
# A 24-byte frame of the older PMS3003 (length 20): not a PMS5003 frame
PMS3003 = struct.pack(">2BH9H", 0x42, 0x4D, 20, 7, 11, 13, 7, 11, 13, 0, 0, 0)
PMS3003 += struct.pack(">H", sum(PMS3003) & 0xFFFF)


def main():
    for name, data in (("frame1.bin", F1), ("frame2.bin", F2), ("zeros.bin", F3), ("bad_sum.bin", BAD_SUM),
                       ("insane.bin", INSANE), ("pms3003.bin", PMS3003)):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    stream = (b"\x4d\x00\x1c\x42"           # noise, with a lone 0x42: garbage 1
              + F1
              + F2[:13]                      # frame cut off by a restart of the sensor...
              + F2                           # ...then the full one (checksum 1: the cut frame swallows
                                             #   19 bytes of this one and fails; resync finds it)
              + BAD_SUM                      # checksum 2
              + PMS3003                      # syntax 1
              + INSANE                       # insane 1
              + F3 + F1)
    with open(os.path.join(HERE, "stream.bin"), "wb") as f:
        f.write(stream)
    exp = ["# field payload, one line per reading published (see README.md)"]
    for atm in ((5, 8, 9), (10, 17, 22), (0, 0, 0), (5, 8, 9)):
        exp += ["pm1_0 %d" % atm[0], "pm2_5 %d" % atm[1], "pm10 %d" % atm[2]]
    with open(os.path.join(HERE, "expected.txt"), "w") as f:
        f.write("\n".join(exp) + "\n")


main()
