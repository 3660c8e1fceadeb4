#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the DSMR test telegrams of this directory (see README.md) and stream.txt/expected.txt.

CRCs are computed here (CRC-16/ARC, DSMR 5.0.2 P1 Companion Standard §6.4), independently
of drivers/dsmr.c. Run from anywhere: python3 tests/data/dsmr/make.py
"""
import calendar
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def telegram(lines, crc=True, crc_text=None):
    """Lines joined with CR LF, '!' and the CRC (or crc_text as printed, or none)."""
    body = ("\r\n".join(lines) + "\r\n!").encode()
    if crc_text is not None:
        return body + crc_text.encode() + b"\r\n"
    if crc:
        return body + ("%04X" % crc16(body)).encode() + b"\r\n"
    return body + b"\r\n"


# DSMR 5.0.2 P1 Companion Standard §6.12, the example telegram as printed. Its printed CRC
# (EF2F) does not match its text; spec_fixed.txt carries the CRC of the text (E47C).
SPEC = [
    "/ISk5\\2MT382-1000",
    "",
    "1-3:0.2.8(50)",
    "0-0:1.0.0(101209113020W)",
    "0-0:96.1.1(4B384547303034303436333935353037)",
    "1-0:1.8.1(123456.789*kWh)",
    "1-0:1.8.2(123456.789*kWh)",
    "1-0:2.8.1(123456.789*kWh)",
    "1-0:2.8.2(123456.789*kWh)",
    "0-0:96.14.0(0002)",
    "1-0:1.7.0(01.193*kW)",
    "1-0:2.7.0(00.000*kW)",
    "0-0:96.7.21(00004)",
    "0-0:96.7.9(00002)",
    "1-0:99.97.0(2)(0-0:96.7.19)(101208152415W)(0000000240*s)(101208151004W)(0000000301*s)",
    "1-0:32.32.0(00002)",
    "1-0:52.32.0(00001)",
    "1-0:72.32.0(00000)",
    "1-0:32.36.0(00000)",
    "1-0:52.36.0(00003)",
    "1-0:72.36.0(00000)",
    "0-0:96.13.0(" + "303132333435363738393A3B3C3D3E3F" * 5 + ")",
    "1-0:32.7.0(220.1*V)",
    "1-0:52.7.0(220.2*V)",
    "1-0:72.7.0(220.3*V)",
    "1-0:31.7.0(001*A)",
    "1-0:51.7.0(002*A)",
    "1-0:71.7.0(003*A)",
    "1-0:21.7.0(01.111*kW)",
    "1-0:41.7.0(02.222*kW)",
    "1-0:61.7.0(03.333*kW)",
    "1-0:22.7.0(04.444*kW)",
    "1-0:42.7.0(05.555*kW)",
    "1-0:62.7.0(06.666*kW)",
    "0-1:24.1.0(003)",
    "0-1:96.1.0(3232323241424344313233343536373839)",
    "0-1:24.2.1(101209112500W)(12785.123*m3)",
]

# DSMR 2.2 layout (no CRC, gas value on the line after 0-n:24.3.0), values ours.
DSMR22 = [
    "/XYZ5\\2TEST-22",
    "",
    "0-0:96.1.1(3132333435363738393031323334353637)",
    "1-0:1.8.1(01234.567*kWh)",
    "1-0:1.8.2(02345.678*kWh)",
    "1-0:2.8.1(00012.345*kWh)",
    "1-0:2.8.2(00023.456*kWh)",
    "0-0:96.14.0(0001)",
    "1-0:1.7.0(0001.25*kW)",
    "1-0:2.7.0(0000.00*kW)",
    "0-0:17.0.0(0999.00*kW)",
    "0-0:96.3.10(1)",
    "0-0:96.13.1()",
    "0-0:96.13.0()",
    "0-1:24.1.0(3)",
    "0-1:96.1.0(3132333435363738393031323334353637)",
    "0-1:24.3.0(230115140000)(00)(60)(1)(0-1:24.2.1)(m3)",
    "(04321.098)",
    "0-1:24.4.0(1)",
]

# e-MUCS 1.7.1 layout (Belgium): version on 0-0:96.1.4, gas on 24.2.3, water on channel 2,
# quarter-hour peak 1-0:1.4.0 and monthly peak 1-0:1.6.0 with its own timestamp. Values ours.
EMUCS = [
    "/FLU5\\000000001_A",
    "",
    "0-0:96.1.4(50217)",
    "0-0:96.1.1(3030303030303030303030303031)",
    "0-0:1.0.0(230704101530S)",
    "1-0:1.8.1(000123.456*kWh)",
    "1-0:1.8.2(000234.567*kWh)",
    "1-0:2.8.1(000001.234*kWh)",
    "1-0:2.8.2(000002.345*kWh)",
    "0-0:96.14.0(0002)",
    "1-0:1.4.0(01.500*kW)",
    "1-0:1.6.0(230702184500S)(03.250*kW)",
    "0-0:98.1.0(1)(1-0:1.6.0)(1-0:1.6.0)(230601000000S)(230615191500S)(04.100*kW)",
    "1-0:1.7.0(00.420*kW)",
    "1-0:2.7.0(00.000*kW)",
    "1-0:32.7.0(231.5*V)",
    "1-0:31.7.0(002.10*A)",
    "0-0:96.3.10(1)",
    "0-0:17.0.0(999.9*kW)",
    "1-0:31.4.0(999*A)",
    "0-0:96.13.0()",
    "0-1:24.1.0(003)",
    "0-1:96.1.1(3030303030303030303030303032)",
    "0-1:24.4.0(1)",
    "0-1:24.2.3(230704101500S)(00456.789*m3)",
    "0-2:24.1.0(007)",
    "0-2:96.1.1(3030303030303030303030303033)",
    "0-2:24.2.1(230704101000S)(00078.901*m3)",
]

# DSMR 5 with a vacant M-Bus channel 1 (epoch timestamp, value without unit) and two gas
# meters on channels 2 and 3: gas_delivered and gas_delivered_2. Values ours.
MBUS = [
    "/TST5\\2MULTI-MBUS",
    "",
    "1-3:0.2.8(50)",
    "0-0:1.0.0(240101000005W)",
    "1-0:1.7.0(00.100*kW)",
    "0-1:24.1.0(003)",
    "0-1:96.1.0()",
    "0-1:24.2.1(700101010000W)(00000000)",
    "0-2:24.1.0(003)",
    "0-2:24.2.1(231231230000W)(01000.001*m3)",
    "0-3:24.1.0(003)",
    "0-3:24.2.1(231231230500W)(02000.002*m3)",
]


def parity7e1(data):
    """Each byte with its even-parity bit in bit 7: a 7E1 line read by an 8N1 port."""
    return bytes(b | ((bin(b).count("1") & 1) << 7) for b in data)


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def main():
    spec_printed = telegram(SPEC, crc_text="EF2F")
    spec_fixed = telegram(SPEC)
    dsmr22 = telegram(DSMR22, crc=False)
    emucs = telegram(EMUCS)
    mbus = telegram(MBUS)
    bad_crc = spec_fixed.replace(b"1-0:32.7.0(220.1*V)", b"1-0:32.7.0(220.7*V)")
    insane = telegram(["/TST5\\2INSANE", "", "1-0:32.7.0(1234.5*V)"])
    write("spec_printed.txt", spec_printed)
    write("spec_fixed.txt", spec_fixed)
    write("dsmr22.txt", dsmr22)
    write("dsmr22_7e1.bin", parity7e1(dsmr22))
    write("emucs.txt", emucs)
    write("mbus.txt", mbus)
    write("bad_crc.txt", bad_crc)
    write("insane.txt", insane)

    # The stream: starts mid-telegram, noise between telegrams, a telegram cut short,
    # a CRC failure, the example as printed (CRC failure), an insane value.
    cut = spec_fixed[: spec_fixed.index(b"1-0:32.7.0")]
    stream = (spec_fixed[spec_fixed.index(b"1-0:52.7.0"):]  # capture starts mid-telegram: garbage 1
              + spec_fixed
              + b"\x00\x00\xff\xfe noise \r\n"                   # garbage 2
              + emucs
              + cut                                              # cut short by the next '/': syntax 1
              + mbus
              + bad_crc                                          # checksum 1
              + spec_printed                                     # checksum 2
              + insane                                           # insane 1
              + dsmr22)
    write("stream.bin", stream)

    def ts(s):
        y, mo, d, h, mi, sec = (int(s[i:i + 2]) for i in range(0, 12, 2))
        off = 2 if s[12] == "S" else 1
        return (calendar.timegm((2000 + y, mo, d, h, mi, sec)) - off * 3600)

    exp = ["# field payload, one line per reading published (see README.md)"]
    spec_readings = [
        ("version", "50"), ("timestamp", "2010-12-09T11:30:20+01:00"),
        ("energy_delivered_tariff1", "123456.789"), ("energy_delivered_tariff2", "123456.789"),
        ("energy_returned_tariff1", "123456.789"), ("energy_returned_tariff2", "123456.789"),
        ("tariff", "2"), ("power_delivered", "1.193"), ("power_returned", "0"),
        ("power_failures", "4"), ("long_power_failures", "2"),
        ("voltage_l1", "220.1"), ("voltage_l2", "220.2"), ("voltage_l3", "220.3"),
        ("current_l1", "1"), ("current_l2", "2"), ("current_l3", "3"),
        ("power_delivered_l1", "1.111"), ("power_delivered_l2", "2.222"), ("power_delivered_l3", "3.333"),
        ("power_returned_l1", "4.444"), ("power_returned_l2", "5.555"), ("power_returned_l3", "6.666"),
        ("gas_delivered", "12785.123"),
    ]
    emucs_readings = [
        ("version", "50217"), ("timestamp", "2023-07-04T10:15:30+02:00"),
        ("energy_delivered_tariff1", "123.456"), ("energy_delivered_tariff2", "234.567"),
        ("energy_returned_tariff1", "1.234"), ("energy_returned_tariff2", "2.345"),
        ("tariff", "2"), ("average_demand", "1.5"), ("max_demand_month", "3.25"),
        ("power_delivered", "0.42"), ("power_returned", "0"),
        ("voltage_l1", "231.5"), ("current_l1", "2.1"),
        ("gas_delivered", "456.789"), ("water_delivered", "78.901"),
    ]
    mbus_readings = [
        ("version", "50"), ("timestamp", "2024-01-01T00:00:05+01:00"), ("power_delivered", "0.1"),
        ("gas_delivered", "1000.001"), ("gas_delivered_2", "2000.002"),
    ]
    dsmr22_readings = [
        ("energy_delivered_tariff1", "1234.567"), ("energy_delivered_tariff2", "2345.678"),
        ("energy_returned_tariff1", "12.345"), ("energy_returned_tariff2", "23.456"),
        ("tariff", "1"), ("power_delivered", "1.25"), ("power_returned", "0"),
        ("gas_delivered", "4321.098"),
    ]
    for group in (spec_readings, emucs_readings, mbus_readings, dsmr22_readings):
        exp += ["%s %s" % r for r in group]
    with open(os.path.join(HERE, "expected.txt"), "w") as f:
        f.write("\n".join(exp) + "\n")
    print("spec CRC as printed EF2F, computed %04X" % crc16(spec_printed[:spec_printed.index(b"!") + 1]))
    print("gas timestamp of the spec example:", ts("101209112500W"))


main()
