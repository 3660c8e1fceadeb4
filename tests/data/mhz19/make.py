#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes transcript.txt and expected.txt for the MH-Z19B driver (see README.md).

The transcript lists the request the driver sends at its turn ("> bytes"), what the sensor
answers ("< bytes") and "timeout" where no answer comes in time.
Checksum (MH-Z19B manual): (0xFF - (byte1 + ... + byte7) + 1) & 0xFF.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def checksum(f):
    return (0xFF - (sum(f[1:8]) & 0xFF) + 1) & 0xFF


def response(ppm, temp_c=None, corrupt=0):
    f = [0xFF, 0x86, ppm >> 8, ppm & 0xFF, (temp_c + 40) if temp_c is not None else 0, 0, 0, 0]
    return bytes(f + [(checksum(f + [0]) + corrupt) & 0xFF])


def hx(b):
    return " ".join("%02X" % x for x in b)


REQUEST = bytes.fromhex("FF 01 86 00 00 00 00 00 79")
EXAMPLE = bytes.fromhex("FF 86 02 20 00 00 00 00 58")   # the manual's example: 544 ppm
assert checksum(REQUEST) == 0x79 and response(544) == EXAMPLE


def main():
    lines = [
        "# MH-Z19B transcript: '>' the request sent at the driver's turn, '<' the sensor's answer",
        "> " + hx(REQUEST), "< " + hx(EXAMPLE),                                # 544 ppm
        "> " + hx(REQUEST), "< " + hx(response(1000, 29)),                     # 1000 ppm, 29 °C
        "> " + hx(REQUEST), "timeout",                                          # no answer: timeout 1
        "> " + hx(REQUEST), "< 00 " + hx(response(812, 25)),                   # noise byte first: garbage 1
        "> " + hx(REQUEST), "< " + hx(response(900, 26, corrupt=1)),           # checksum 1
        "> " + hx(REQUEST), "< " + hx(response(20000, 26)),                    # insane 1 (20000 ppm)
        "> " + hx(REQUEST), "< " + hx(response(650, 27)[:4]), "< " + hx(response(650, 27)[4:]),  # split
    ]
    with open(os.path.join(HERE, "transcript.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    exp = ["# field payload with temperature = true (see README.md)",
           "co2 544", "temperature -40", "co2 1000", "temperature 29", "co2 812", "temperature 25",
           "co2 650", "temperature 27"]
    with open(os.path.join(HERE, "expected.txt"), "w") as f:
        f.write("\n".join(exp) + "\n")


main()
