#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the SDS011 test frames of this directory (see README.md), stream.bin and expected.txt.

Frame (SDS011 datasheet V1.3 / Laser Dust Sensor Control Protocol V1.3):
AA C0 PM25L PM25H PM10L PM10H ID1 ID2 CS AB, CS = (sum of the six data bytes) & 0xFF.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(pm25_tenths, pm10_tenths, dev_id=0xA160, cmd=0xC0, data=None, corrupt=0, tail=0xAB):
    if data is None:
        data = [pm25_tenths & 0xFF, pm25_tenths >> 8, pm10_tenths & 0xFF, pm10_tenths >> 8,
                dev_id >> 8, dev_id & 0xFF]
    return bytes([0xAA, cmd] + data + [(sum(data) + corrupt) & 0xFF, tail])


# The reply example of the Control Protocol's query data command: PM2.5 123.6, PM10 261.8.
EXAMPLE = bytes.fromhex("AA C0 D4 04 3A 0A A1 60 1D AB")
assert EXAMPLE == frame(1236, 2618)
OURS = frame(153, 271, dev_id=0x1234)                 # 15.3 and 27.1
REPLY = frame(0, 0, cmd=0xC5, data=[7, 0x10, 0x0A, 0x05, 0xA1, 0x60])  # a command reply: no reading
BAD_SUM = frame(153, 271, dev_id=0x1234, corrupt=1)
BAD_TAIL = frame(153, 271, dev_id=0x1234, tail=0xAC)
INSANE = frame(10000, 10000)                           # 1000.0 µg/m³: above the 999.9 range


def main():
    for name, data in (("example.bin", EXAMPLE), ("frame.bin", OURS), ("reply.bin", REPLY),
                       ("bad_sum.bin", BAD_SUM), ("bad_tail.bin", BAD_TAIL), ("insane.bin", INSANE)):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    stream = (b"\xab\x00\xc0"          # garbage 1
              + EXAMPLE + REPLY + OURS
              + BAD_SUM               # checksum 1
              + EXAMPLE[:4]           # cut (the next frame's AA C0 breaks it: syntax 1 at its tail)
              + OURS
              + BAD_TAIL              # syntax 2
              + INSANE                # insane 1
              + EXAMPLE)
    with open(os.path.join(HERE, "stream.bin"), "wb") as f:
        f.write(stream)
    exp = ["# field payload, one line per reading published (see README.md)",
           "pm2_5 123.6", "pm10 261.8", "pm2_5 15.3", "pm10 27.1", "pm2_5 15.3", "pm10 27.1",
           "pm2_5 123.6", "pm10 261.8"]
    with open(os.path.join(HERE, "expected.txt"), "w") as f:
        f.write("\n".join(exp) + "\n")


main()
