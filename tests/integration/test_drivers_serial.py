# SPDX-License-Identifier: MIT
"""End to end for the serial protocol drivers: recorded stream -> pty -> sensorgate -> mosquitto.

For nmea and dsmr, the project's own recorded streams (tests/data/<driver>/, with noise,
cut frames and bad checksums mixed in) are written into a pty that the real binary reads;
every reading published on <base>/<device>/<field> must match tests/data/<driver>/expected.txt,
in order, and nothing else may be published under the device. The DSMR gas reading must
carry the meter's own timestamp into the JSON payload. The gateway must survive it all.
"""

import json
import time
from pathlib import Path

from conftest import gateway_config

DATA = Path(__file__).resolve().parent.parent / "data"
STATUS = "test/gateway/gw1/status"


def expected(driver):
	"""(field, payload) pairs of tests/data/<driver>/expected.txt."""
	out = []
	for line in (DATA / driver / "expected.txt").read_text().splitlines():
		if not line or line.startswith("#"):
			continue
		field, payload = line.split(" ", 1)
		out.append((field, payload.encode()))
	return out


def prime(pty, data, sub, topic, timeout=15.0, every=0.3):
	"""Write data until a message on topic arrives: the port is open and flushed by then."""
	deadline = time.monotonic() + timeout
	while True:
		pty.write(data)
		try:
			return sub.wait_topic(topic, timeout=every)
		except AssertionError:
			if time.monotonic() >= deadline:
				raise


def start(broker, make_pty, make_gateway, make_sub, tmp_path, device, extra=""):
	pty = make_pty("tty")
	gw = make_gateway(gateway_config(broker.port, tmp_path, device.format(port=pty.link), extra=extra))
	sub = make_sub(broker.port, ["test/#"], qos=2)
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=15)
	gw.wait_open(pty)
	return pty, gw, sub


def replay(pty, sub, device, stream, want, timeout=15.0):
	"""Write stream once; wait for len(want) readings under test/<device>/; return them."""
	prefix = f"test/{device}/"
	mark = sub.mark()
	pty.write(stream)
	deadline = time.monotonic() + timeout
	while True:
		got = [(m.topic[len(prefix):], m.payload) for m in sub.messages(since=mark)
		       if m.topic.startswith(prefix)]
		if len(got) >= len(want) or time.monotonic() >= deadline:
			break
		time.sleep(0.05)
	time.sleep(0.3)  # anything extra would arrive now
	return [(m.topic[len(prefix):], m.payload) for m in sub.messages(since=mark) if m.topic.startswith(prefix)]


def test_nmea_recorded_stream(broker, make_pty, make_gateway, make_sub, tmp_path):
	dev = '{{ name = "gps"; driver = "nmea"; port = "{port}"; }}'
	pty, gw, sub = start(broker, make_pty, make_gateway, make_sub, tmp_path, dev)
	prime(pty, b"$GPVTG,120.0,T,,M,10.0,N,,K,A*11\r\n", sub, "test/gps/course")
	time.sleep(0.3)  # let the primer's readings pass before the mark

	want = expected("nmea")
	got = replay(pty, sub, "gps", (DATA / "nmea" / "stream.txt").read_bytes(), want)
	assert got == want
	gw.assert_alive()
	# the failures were logged, rate-limited, tagged with the device
	assert "checksum" in gw.stderr_text()


def test_dsmr_recorded_stream(broker, make_pty, make_gateway, make_sub, tmp_path):
	dev = '{{ name = "meter"; driver = "dsmr"; port = "{port}"; }}'
	pty, gw, sub = start(broker, make_pty, make_gateway, make_sub, tmp_path, dev)
	prime(pty, (DATA / "dsmr" / "mbus.txt").read_bytes(), sub, "test/meter/gas_delivered_2")
	time.sleep(0.3)

	want = expected("dsmr")
	got = replay(pty, sub, "meter", (DATA / "dsmr" / "stream.bin").read_bytes(), want)
	assert got == want
	gw.assert_alive()


def test_dsmr_gas_keeps_the_meter_timestamp(broker, make_pty, make_gateway, make_sub, tmp_path):
	dev = ('{{ name = "meter"; driver = "dsmr"; port = "{port}"; payload = "json";\n'
	       '   readings = ( {{ field = "gas_delivered"; }}, {{ field = "voltage_l1"; }} ); }}')
	# this host's clock is right, whatever its NTP state says (README, Measurement time)
	pty, gw, sub = start(broker, make_pty, make_gateway, make_sub, tmp_path, dev,
	                     extra='time: { trust = "always"; };\n')
	telegram = (DATA / "dsmr" / "spec_fixed.txt").read_bytes()
	gas = json.loads(prime(pty, telegram, sub, "test/meter/gas_delivered").payload)
	# 0-1:24.2.1(101209112500W): 2010-12-09 11:25:00 CET
	assert gas == {"value": 12785.123, "unit": "m³", "ts": "2010-12-09T10:25:00.000Z"}
	volt = json.loads(sub.wait_topic("test/meter/voltage_l1", timeout=5).payload)
	assert volt["value"] == 220.1 and volt["unit"] == "V"
	assert volt["ts"].startswith(time.strftime("%Y-", time.gmtime()))  # reception time
	gw.assert_alive()
