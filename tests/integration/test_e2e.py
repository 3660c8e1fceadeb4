# SPDX-License-Identifier: MIT
"""End to end: pty sensor -> sensorgate -> mosquitto -> subscriber.

The contract tested here (see DESIGN.md):
  - readings of a `lines` device go to <base>/<topic> with the configured qos
    and retain flag; plain payloads print numbers like %.15g ("21.4");
    payload = "json" gives {"value":..,"unit":..,"ts":"...Z"};
  - a device without a readings list publishes every field on
    <base>/<device>/<field> (defaults: qos 0, retained);
  - availability on <base>/gateway/<id>/status: "online" retained after
    connect, "offline" retained as the will (kill -9) and published by the
    gateway itself on SIGTERM, which exits 0;
  - the gateway reconnects by itself after a broker restart and reopens a
    serial port that went away and came back, without dying or spinning;
  - garbage on the line is survived; --check validates and reports
    FILE:LINE: for errors; --version prints the version.
Every test owns a private broker on a free port and a pty behind a symlink.
"""

import json
import random
import re
import sys
import time
from datetime import datetime, timezone

import pytest

from conftest import REPO, feed_until, gateway_config, sim_device, tail, wait_until

PROTOCOLS = ["3.1.1", "5"]
STATUS = "test/gateway/gw1/status"
TEMP = "test/room/temperature"
HUM = "test/room/humidity"
LINE = "t=21.4 h=40.2 p=1012.8"


@pytest.fixture
def rig(broker, make_pty, make_gateway, make_sub, tmp_path):
	"""Factory: a running gateway on a pty, online on the test broker."""

	def start(protocol="5", devices=None, t_extra="", sub_topics=("test/#",), **cfg):
		pty = make_pty("tty")
		devs = devices.format(port=pty.link) if devices else sim_device(pty.link, t_extra)
		gw = make_gateway(gateway_config(broker.port, tmp_path, devs, protocol=protocol, **cfg))
		sub = make_sub(broker.port, list(sub_topics), qos=2, protocol=protocol)
		gw.start()
		sub.wait_topic(STATUS, "online", timeout=15)
		gw.wait_open(pty)
		return pty, gw, sub

	return start


def late_sub(make_sub, broker, topics, protocol="5", settle=1.0):
	"""A new subscriber; waits `settle` s so retained messages can arrive."""
	s = make_sub(broker.port, topics, qos=2, protocol=protocol)
	time.sleep(settle)
	return s


# --------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_readings_reach_their_topics_with_qos_and_retain(rig, broker, make_sub, protocol):
	pty, gw, sub = rig(protocol=protocol)
	t = feed_until(pty, LINE, sub, lambda m: m.topic == TEMP)
	h = sub.wait_topic(HUM, timeout=5)

	assert t.payload == b"21.4"
	assert t.qos == 1
	assert t.retain is False  # a live subscriber sees retain=0
	assert h.payload == b"40.2"
	assert h.qos == 0
	assert h.retain is False

	# p has no entry in the readings list: it is not published anywhere.
	time.sleep(0.5)
	topics = {m.topic for m in sub.messages()}
	assert topics <= {TEMP, HUM, STATUS}, topics

	late = late_sub(make_sub, broker, ["test/room/#", STATUS], protocol)
	got = {m.topic: m for m in late.messages()}
	assert TEMP in got, got
	assert got[TEMP].payload == b"21.4"
	assert got[TEMP].retain is True
	assert HUM not in got, "room/humidity is retain = false"
	assert got[STATUS].payload == b"online"
	assert got[STATUS].retain is True
	gw.assert_alive()


def test_debug_level_shows_libmosquittos_own_lines(rig):
	"""The gateway takes libmosquitto's log callback away while it is not
	needed (it costs a formatted line per packet); at the debug level (-v,
	which the harness passes) libmosquitto's lines about each PUBLISH it
	sends (temperature is QoS 1), sent after the connection was made, are
	still in the log. A QoS 0 message (humidity) is written by the gateway
	itself on a plaintext link, and says so in a line of the same form."""
	pty, gw, sub = rig(protocol="5")
	feed_until(pty, LINE, sub, lambda m: m.topic == TEMP)
	sub.wait_topic(HUM, timeout=5)

	def lines(who):
		return [ln for ln in gw.stderr_text().splitlines() if who in ln and "sending PUBLISH" in ln]

	assert wait_until(lambda: any(f"'{TEMP}'" in ln for ln in lines("libmosquitto:")), 5), lines("libmosquitto:")[-5:]
	assert wait_until(lambda: any(f"'{HUM}'" in ln for ln in lines("written by the gateway")), 5), \
		lines("sending")[-5:]
	own = [ln for ln in lines("written by the gateway") if f"'{HUM}'" in ln][0]
	assert "(d0, q0, r0, " in own and "(4 bytes)" in own, own
	assert not any(f"'{HUM}'" in ln for ln in lines("libmosquitto:")), "QoS 0 went through libmosquitto"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_online_is_retained(rig, broker, make_sub, protocol):
	rig(protocol=protocol)
	late = late_sub(make_sub, broker, [STATUS], protocol, settle=0)
	m = late.wait_topic(STATUS, timeout=5)
	assert (m.payload, m.retain) == (b"online", True)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_kill9_gives_offline_will(rig, broker, make_sub, protocol):
	_pty, gw, sub = rig(protocol=protocol)
	mark = sub.mark()
	gw.kill9()
	m = sub.wait_topic(STATUS, "offline", timeout=15, since=mark)
	assert m.payload == b"offline"
	late = late_sub(make_sub, broker, [STATUS], protocol, settle=0)
	m = late.wait_topic(STATUS, timeout=5)
	assert (m.payload, m.retain) == (b"offline", True)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sigterm_publishes_offline_and_exits_0(rig, broker, make_sub, protocol):
	_pty, gw, sub = rig(protocol=protocol)
	mark = sub.mark()
	t0 = time.monotonic()
	gw.stop(timeout=10)  # asserts exit code 0
	m = sub.wait_topic(STATUS, "offline", timeout=5, since=mark)
	# Published by the gateway on its way out, not a keepalive-late will.
	assert m.t - t0 < 5.0
	late = late_sub(make_sub, broker, [STATUS], protocol, settle=0)
	m = late.wait_topic(STATUS, timeout=5)
	assert (m.payload, m.retain) == (b"offline", True)


@pytest.mark.parametrize("how,protocol", [("stop", "5"), ("kill9", "3.1.1")])
def test_reconnects_after_broker_restart(rig, broker, make_sub, how, protocol):
	pty, gw, sub = rig(protocol=protocol)
	feed_until(pty, LINE, sub, lambda m: m.topic == TEMP)
	sub.close()

	if how == "stop":
		broker.stop()
	else:
		broker.kill9()
	time.sleep(1.5)  # a few failed reconnect attempts
	gw.assert_alive()
	broker.start()   # same port, empty broker (no persistence)

	sub2 = make_sub(broker.port, ["test/#"], qos=2, protocol=protocol)
	# online again: re-published by the gateway, the new broker had nothing retained
	m = sub2.wait_topic(STATUS, "online", timeout=15)
	assert m.payload == b"online"
	m = feed_until(pty, "t=23.5 h=41.0", sub2,
	               lambda m: m.topic == TEMP and m.payload == b"23.5", timeout=15)
	assert m.qos == 1
	gw.assert_alive()


def test_serial_unplug_and_replug(rig):
	pty, gw, sub = rig()
	feed_until(pty, LINE, sub, lambda m: m.topic == TEMP and m.payload == b"21.4")

	pty.unplug()
	time.sleep(0.5)
	gw.assert_alive()
	# While the port is gone the gateway retries; it must not spin on a
	# hung-up descriptor.
	c0 = gw.cpu_seconds()
	time.sleep(2.0)
	used = gw.cpu_seconds() - c0
	assert used < 0.5, f"gateway used {used:.2f} s CPU in 2 s with the port unplugged"

	pty.replug()
	mark = sub.mark()
	m = feed_until(pty, "t=30.5 h=45.0", sub,
	               lambda m: m.topic == TEMP and m.payload == b"30.5", timeout=20, since=mark)
	assert m.payload == b"30.5"
	gw.wait_open(pty)
	gw.assert_alive()


def test_device_without_readings_publishes_every_field(rig, broker, make_sub):
	dev = ('{{ name = "sim"; driver = "lines"; port = "{port}"; baud = 9600; '
	       'format = "kv"; }}')
	pty, gw, sub = rig(devices=dev)
	feed_until(pty, LINE, sub, lambda m: m.topic == "test/sim/p")
	want = {"test/sim/t": b"21.4", "test/sim/h": b"40.2", "test/sim/p": b"1012.8"}
	for topic, payload in want.items():
		m = sub.wait_topic(topic, timeout=5)
		assert m.payload == payload, topic
		assert m.qos == 0, topic  # default qos

	late = late_sub(make_sub, broker, ["test/sim/#"])
	got = {m.topic: m.payload for m in late.messages() if m.retain}
	assert got == want  # default retain = true
	gw.assert_alive()


@pytest.mark.parametrize("line,payload", [
	("t=20", b"20"),
	("t=-0.5", b"-0.5"),
	("t=1012.80", b"1012.8"),
	("t=0.1", b"0.1"),
	("t=123456.789", b"123456.789"),
])
def test_number_formatting(rig, line, payload):
	pty, _gw, sub = rig()
	m = feed_until(pty, line, sub, lambda m: m.topic == TEMP)
	assert m.payload == payload


def test_json_payload(rig, tmp_path):
	# the clock counts as synchronised through systemd-timesyncd's flag file (README, Measurement time)
	(tmp_path / "synchronized").touch()
	pty, gw, sub = rig(t_extra='payload = "json";', extra=f'time: {{ sync_file = "{tmp_path}/synchronized"; }};\n')
	before = datetime.now(timezone.utc)
	m = feed_until(pty, LINE, sub, lambda m: m.topic == TEMP)
	doc = json.loads(m.payload.decode("utf-8"))
	assert doc["value"] == 21.4
	assert isinstance(doc["value"], float)
	assert doc["unit"] == "°C"
	assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", doc["ts"]), doc["ts"]
	ts = datetime.strptime(doc["ts"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
	assert abs((ts - before).total_seconds()) < 60
	# the other reading keeps the plain format
	assert sub.wait_topic(HUM, timeout=5).payload == b"40.2"
	gw.assert_alive()


def test_garbage_on_the_line_is_survived(rig):
	pty, gw, sub = rig()
	feed_until(pty, LINE, sub, lambda m: m.topic == TEMP)

	rng = random.Random(20261125)
	# Random bytes (NULs, invalid UTF-8, control characters, stray newlines),
	# without '=' so no accidental "t=..." can be parsed out of them.
	junk = bytes(b for b in rng.randbytes(4096) if b != ord("="))
	pty.write(junk)
	pty.write(b"\n")
	pty.write(b"x" * 5120 + b"\n")          # overlong line
	pty.write(b"\xff\xfe\x00t\x00=\x00\n")  # NULs inside a line
	pty.write(b"\r\n\r\n\n")                # empty lines
	time.sleep(0.3)
	gw.assert_alive()

	mark = sub.mark()
	m = feed_until(pty, "t=22.5 h=40.2", sub,
	               lambda m: m.topic == TEMP and m.payload == b"22.5", since=mark)
	assert m.payload == b"22.5"
	bad = [x for x in sub.messages() if x.topic == TEMP and x.payload not in (b"21.4", b"22.5")]
	assert not bad, bad
	gw.assert_alive()


@pytest.mark.parametrize("fmt,extra", [
	("kv", ""),
	("json", ""),
	("csv", 'columns = ("t", "h", "p");'),
])
def test_simulate_sensor_drives_the_gateway(broker, make_gateway, make_sub, spawn, tmp_path,
                                            fmt, extra):
	"""scripts/simulate-sensor (used by the demo) in each format, every field published."""
	link = tmp_path / "sim-tty"
	sim = spawn([sys.executable, REPO / "scripts" / "simulate-sensor", "--link", link,
	             "--interval", "0.2", "--format", fmt, "--seed", "7"], "simulate-sensor")
	assert wait_until(link.is_symlink, 5), "simulate-sensor made no link"
	dev = (f'{{ name = "sim"; driver = "lines"; port = "{link}"; baud = 115200; '
	       f'format = "{fmt}"; {extra} }}')
	gw = make_gateway(gateway_config(broker.port, tmp_path, dev))
	sub = make_sub(broker.port, ["test/sim/#"])
	gw.start()
	for field in ("t", "h", "p"):
		m = sub.wait_topic(f"test/sim/{field}", timeout=15)
		float(m.payload)  # a plain number
	gw.assert_alive()
	gw.stop()
	sim.terminate()
	assert sim.wait(timeout=5) == 0
	assert not link.exists() and not link.is_symlink(), "simulate-sensor left its link"


# --------------------------------------------------------------------------
# CLI: --check, config errors, --version (no broker needed)

def test_check_prints_resolved_table(make_pty, make_gateway, tmp_path):
	pty = make_pty("tty")
	# port 1: --check must validate without connecting anywhere
	gw = make_gateway(gateway_config(1, tmp_path, sim_device(pty.link)))
	cp = gw.check()
	assert cp.returncode == 0, cp.stderr
	rows = cp.stdout.splitlines()
	t_rows = [r for r in rows if "sim.t" in r]
	h_rows = [r for r in rows if "sim.h" in r]
	assert t_rows and TEMP in t_rows[0], cp.stdout
	assert h_rows and HUM in h_rows[0], cp.stdout
	assert not any("sim.p" in r for r in rows), "p is not in the readings list"


BAD_CONFIGS = {
	# name: (text with {port} and {tmp}; the offending line contains MARK)
	"top-level": (
		'gateway: {{ id = "gw1"; base_topic = "test"; }};\n'
		'mqtt: {{ brokers = ( "mqtt://127.0.0.1:1" ); }};\n'
		'bogus_key = 1; # MARK\n'
		'devices = ( {{ name = "sim"; driver = "lines"; port = "{port}"; }} );\n'),
	"in-mqtt": (
		'gateway: {{ id = "gw1"; base_topic = "test"; }};\n'
		'mqtt: {{\n'
		'  brokers = ( "mqtt://127.0.0.1:1" );\n'
		'  keepalive = 5;\n'
		'  keeplive = 5; # MARK\n'
		'}};\n'
		'devices = ( {{ name = "sim"; driver = "lines"; port = "{port}"; }} );\n'),
	"in-device": (
		'gateway: {{ id = "gw1"; base_topic = "test"; }};\n'
		'mqtt: {{ brokers = ( "mqtt://127.0.0.1:1" ); }};\n'
		'devices = (\n'
		'  {{ name = "sim"; driver = "lines";\n'
		'    port = "{port}";\n'
		'    bauds = 9600; # MARK\n'
		'  }}\n'
		');\n'),
	"in-reading": (
		'gateway: {{ id = "gw1"; base_topic = "test"; }};\n'
		'mqtt: {{ brokers = ( "mqtt://127.0.0.1:1" ); }};\n'
		'devices = (\n'
		'  {{ name = "sim"; driver = "lines"; port = "{port}";\n'
		'    readings = (\n'
		'      {{ field = "t"; topic = "room/t"; }},\n'
		'      {{ field = "h"; topic = "room/h"; qso = 1; }} # MARK\n'
		'    );\n'
		'  }}\n'
		');\n'),
	"syntax": (
		'gateway: {{ id = "gw1"; base_topic = "test"; }};\n'
		'mqtt: {{ brokers = ( "mqtt://127.0.0.1:1" ); }};\n'
		'\n'
		'devices = ( {{ name = "sim"; driver = ; }} ); # MARK\n'),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_reports_file_and_line(make_pty, make_gateway, tmp_path, case):
	pty = make_pty("tty")
	text = BAD_CONFIGS[case].format(port=pty.link, tmp=tmp_path)
	lineno = next(i for i, ln in enumerate(text.splitlines(), 1) if "MARK" in ln)
	gw = make_gateway(text)
	where = f"{gw.conf}:{lineno}:"

	cp = gw.check()
	assert cp.returncode == 1, (cp.returncode, cp.stdout, cp.stderr)
	assert where in cp.stderr, cp.stderr

	cp = gw.run("-c", str(gw.conf))
	assert cp.returncode == 78, (cp.returncode, cp.stderr)  # EX_CONFIG: systemd does not restart it
	assert where in cp.stderr, cp.stderr


def test_version(make_gateway):
	gw = make_gateway("")
	cp = gw.run("--version")
	assert cp.returncode == 0, cp.stderr
	assert re.match(r"sensorgate \d+\.\d+\.\d+", cp.stdout.strip()), cp.stdout


RETAINED_QOS0 = """{{ name = "sim"; driver = "lines"; port = "{port}"; baud = 9600; format = "kv";
    readings = (
      {{ field = "t"; topic = "room/temperature"; qos = 1; retain = true; }},
      {{ field = "h"; topic = "room/humidity"; qos = 0; retain = true; }}
    ); }}"""


@pytest.mark.broker(extra_conf="retain_available false")
def test_broker_without_retained_messages(rig, broker, make_sub):
	"""An MQTT 5 broker may keep no retained messages: it refuses a CONNECT
	whose Last Will is retained (MQTT 5.0 §3.2.2.2), says Retain Available 0
	in its CONNACK (§3.2.2.3.5), and closes the connection of a client that
	sends a retained message anyway. The gateway connects again with a Will
	that is not retained, says so once, and keeps the connection:
	libmosquitto clears the flag of what it sends (temperature, QoS 1), and
	the QoS 0 messages the gateway writes itself (humidity) are cleared the
	same way."""
	pty, gw, sub = rig(protocol="5", devices=RETAINED_QOS0)
	for i in range(5):
		pty.write_line(f"t=2{i}.5 h=4{i}.5")
		sub.wait_topic(HUM, f"4{i}.5", timeout=5)
		sub.wait_topic(TEMP, f"2{i}.5", timeout=5)
	hum = [m for m in sub.messages() if m.topic == HUM]
	assert [m.payload for m in hum] == [b"40.5", b"41.5", b"42.5", b"43.5", b"44.5"]
	assert not any(m.retain for m in hum)
	log = gw.stderr_text()
	assert log.count("keeps no retained messages") == 1, tail(log)
	assert log.count("mqtt: connected to") == 1, "the broker closed the connection"
	mark = sub.mark()
	gw.kill9()
	m = sub.wait_topic(STATUS, "offline", timeout=15, since=mark)
	assert m.retain is False
