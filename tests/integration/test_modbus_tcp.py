# SPDX-License-Identifier: MIT
"""Modbus TCP end to end: a Modbus TCP server on 127.0.0.1 with two units
(modbus_server.py, written from the specifications), the real binary, a real
mosquitto, real MQTT clients.

  - reads of every function code (01 coils, 02 discrete inputs, 03 holding,
    04 input registers) and every type (u16 i16 u32 i32 u64 i64 f32 f64) in the
    four byte/word orders, scale and offset, bit fields, `count` blocks;
  - block reads: the server counts the requests of one cycle, one per
    (unit, function) for adjacent registers;
  - writes from MQTT (`modbus` actuators): a coil with read-back, registers
    with 06 and 16, confirmed state on the state topic; invalid writes refused
    on the error topic with nothing sent, exceptions reported by name;
  - a server restart mid-run: the gateway reconnects and readings resume;
  - --check: register-table errors name the file and line.
"""

import json
import re
import struct
import time

import pytest

from conftest import free_port, gateway_config, wait_until
from modbus_server import ModbusServer
from test_actuators import errors, publish

STATUS = "test/gateway/gw1/status"


def f32_words(v):
	return struct.unpack(">HH", struct.pack(">f", v))


def f64_words(v):
	return struct.unpack(">HHHH", struct.pack(">d", v))


def swap_bytes(words):
	return [((w & 0xFF) << 8) | (w >> 8) for w in words]


@pytest.fixture
def server():
	s = ModbusServer(free_port(), units=(1, 2))
	s.start()
	yield s
	s.stop()


READ_UNITS = """
  units = (
    { unit = 1; registers = (
      { name = "voltage"; address = 0; type = "f32"; unit = "V"; },
      { name = "v_cdab"; address = 2; type = "f32"; word_order = "little"; },
      { name = "v_badc"; address = 4; type = "f32"; byte_order = "little"; },
      { name = "v_dcba"; address = 6; type = "f32"; byte_order = "little"; word_order = "little"; },
      { name = "current"; address = 8; type = "i16"; scale = 0.01; unit = "A"; },
      { name = "raw"; address = 9; type = "u16"; },
      { name = "count32"; address = 10; type = "u32"; },
      { name = "delta"; address = 12; type = "i32"; word_order = "little"; },
      { name = "energy"; address = 14; type = "u64"; },
      { name = "i64"; address = 18; type = "i64"; },
      { name = "f64"; address = 22; type = "f64"; },
      { name = "alarm"; address = 26; bit = 3; },
      { name = "fault"; address = 26; bit = 4; },
      { name = "temp"; address = 100; function = "input"; scale = 0.1; offset = -40.0; unit = "°C"; },
      { name = "relay"; address = 0; function = "coil"; count = 4; },
      { name = "door"; address = 5; function = "discrete"; count = 2; } ); },
    { unit = 2; registers = (
      { name = "level"; address = 0; },
      { name = "flow"; address = 1; type = "int16"; },
      { name = "u2temp"; address = 3; function = "input"; type = "int16"; } ); } );
"""

EXPECTED = {
	"voltage": 230.5, "v_cdab": 230.5, "v_badc": 230.5, "v_dcba": 230.5, "current": -12.34, "raw": 65535,
	"count32": 123456, "delta": -2, "energy": 2 ** 40 + 5, "i64": -3, "f64": -17.25, "alarm": 1, "fault": 0,
	"temp": 10.0, "relay_0": 1, "relay_1": 0, "relay_2": 1, "relay_3": 1, "door_0": 0, "door_1": 1,
	"level": 42, "flow": -7, "u2temp": -5,
}


def fill(s):
	a, b = f32_words(230.5)
	s.set_registers(1, "holding", 0, [a, b, b, a] + swap_bytes([a, b]) + swap_bytes([b, a]))
	s.set_registers(1, "holding", 8, [(-1234) & 0xFFFF, 65535, 0x0001, 0xE240, 0xFFFE, 0xFFFF])
	s.set_registers(1, "holding", 14, [0, 0x0100, 0, 5, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFD])
	s.set_registers(1, "holding", 22, list(f64_words(-17.25)) + [0x0008])
	s.set_registers(1, "input", 100, [500])
	s.set_bits(1, "coil", 0, [1, 0, 1, 1])
	s.set_bits(1, "discrete", 5, [0, 1])
	s.set_registers(2, "holding", 0, [42, (-7) & 0xFFFF])
	s.set_registers(2, "input", 3, [(-5) & 0xFFFF])


def device(server, interval=60.0, timeout=0.5, body=READ_UNITS, extra=""):
	return (f'{{ name = "plc"; driver = "modbus_tcp"; host = "127.0.0.1"; port = {server.port};\n'
	        f'  interval = {interval}; timeout = {timeout}; {extra}\n{body} }}')


def readings(sub, since=0):
	out = {}
	for m in sub.messages(since=since):
		if m.topic.startswith("test/plc/") and m.topic.count("/") == 2:
			out[m.topic.split("/")[2]] = float(m.payload)
	return out


def test_reads_every_function_and_type_in_block_reads(broker, server, make_gateway, make_sub, tmp_path):
	fill(server)
	gw = make_gateway(gateway_config(broker.port, tmp_path, device(server)))
	sub = make_sub(broker.port, ["test/#"])
	gw.start()
	assert wait_until(lambda: len(readings(sub)) == len(EXPECTED), 15), (readings(sub), gw.stderr_text())
	got = readings(sub)
	for k, v in EXPECTED.items():
		assert got[k] == pytest.approx(v), k
	# One cycle, one request per unit and function: 23 readings from 6 requests.
	time.sleep(0.3)
	assert dict(server.requests) == {(1, 1): 1, (1, 2): 1, (1, 3): 1, (1, 4): 1, (2, 3): 1, (2, 4): 1}
	# the holding block of unit 1 is registers 0..26 in one request
	assert (1, bytes([3, 0, 0, 0, 27])) in server.log
	gw.stop()


def test_gap_joins_blocks_and_exceptions_are_named(broker, server, make_gateway, make_sub, tmp_path):
	server.set_registers(1, "holding", 0, [1, 0, 0, 0, 5])
	body = """ unit = 1; max_gap = 3; registers = (
	  { name = "a"; address = 0; }, { name = "b"; address = 4; },
	  { name = "missing"; address = 5000; } );"""
	gw = make_gateway(gateway_config(broker.port, tmp_path, device(server, interval=0.5, body=body)))
	sub = make_sub(broker.port, ["test/#"])
	gw.start()
	assert wait_until(lambda: readings(sub).get("b") == 5.0, 10)
	assert wait_until(lambda: "exception 2 (illegal data address)" in gw.stderr_text(), 10), gw.stderr_text()
	assert (1, bytes([3, 0, 0, 0, 5])) in server.log  # 0..4 in one request over the gap
	assert all(pdu[:5] != bytes([3, 0, 4, 0, 1]) for _u, pdu in server.log)
	assert "missing" not in readings(sub)
	gw.stop()


def test_server_restart_reconnects_and_readings_resume(broker, server, make_gateway, make_sub, tmp_path):
	server.set_registers(2, "holding", 7, [100])
	body = 'unit = 2; registers = ( { name = "n"; address = 7; } );'
	gw = make_gateway(gateway_config(broker.port, tmp_path, device(server, interval=0.2, timeout=0.3, body=body)))
	sub = make_sub(broker.port, ["test/#"])
	gw.start()
	sub.wait_topic("test/plc/n", b"100", timeout=10)
	server.stop()
	time.sleep(1.5)
	m0 = sub.mark()
	server.set_registers(2, "holding", 7, [200])
	server.start()
	sub.wait_topic("test/plc/n", b"200", timeout=20, since=m0)
	assert server.connections >= 2
	log = gw.stderr_text()
	assert "retrying" in log and "open again" in log, log
	gw.assert_alive()
	gw.stop()


def test_unreachable_server_backs_off(broker, make_gateway, tmp_path):
	port = free_port()  # nobody listens
	body = 'unit = 1; registers = ( { name = "n"; address = 0; } );'
	dev = (f'{{ name = "plc"; driver = "modbus_tcp"; host = "127.0.0.1"; port = {port}; interval = 0.2;\n{body} }}')
	gw = make_gateway(gateway_config(broker.port, tmp_path, dev))
	gw.start()
	time.sleep(4)
	log = gw.stderr_text()
	# a warning once (the same problem again is debug); the gateway's backoff (gateway/backoff.c):
	# waits drawn below a ceiling of 1 s, then 2 s, 4 s ...: 2 to about 5 attempts in 4 s
	assert log.count("<4>plc: 127.0.0.1") == 1, log
	waits = [(float(d), float(c)) for d, c in
	         re.findall(r"plc: next attempt in ([0-9.]+) s \(backoff up to ([0-9.]+) s\)", log)]
	assert [c for _, c in waits][:3] == [1.0, 2.0, 4.0][:len(waits)] and len(waits) >= 2, waits
	assert all(0.1 <= d <= c for d, c in waits), waits
	assert log.count("Connection refused; retrying") == len(waits), log
	gw.assert_alive()
	gw.stop()


WRITE_ACTS = """actuators = (
  {{ name = "pump"; driver = "modbus"; host = "127.0.0.1"; port = {port}; unit = 1;
     address = 20; read_back = true; }},
  {{ name = "setpoint"; driver = "modbus"; host = "127.0.0.1"; port = {port}; unit = 1; type = "number";
     function = "holding"; address = 200; register_type = "i16"; scale = 0.1; min = 5; max = 30; step = 0.5; }},
  {{ name = "limit"; driver = "modbus"; host = "127.0.0.1"; port = {port}; unit = 2; type = "number";
     address = 210; register_type = "u32"; min = 0; max = 100000; }},
  {{ name = "tiny"; driver = "modbus"; host = "127.0.0.1"; port = {port}; unit = 1; type = "number";
     address = 220; min = -10; max = 10; }},
  {{ name = "badcoil"; driver = "modbus"; host = "127.0.0.1"; port = {port}; unit = 1;
     address = 5000; timeout_ms = 500; }}
);
"""


def test_writes_from_mqtt_confirmed_and_invalid_ones_refused(broker, server, make_gateway, make_sub, tmp_path):
	cfg = gateway_config(broker.port, tmp_path, "", extra=WRITE_ACTS.format(port=server.port))
	gw = make_gateway(cfg)
	sub = make_sub(broker.port, ["test/#"])
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=15)

	# a coil (05), confirmed by its echo and read back (01)
	m0 = sub.mark()
	publish(broker.port, "test/pump/set", "ON")
	sub.wait_topic("test/pump", b"ON", since=m0)
	assert server.get(1, "coil", 20) == [1]
	assert server.requests[(1, 5)] == 1 and server.requests[(1, 1)] == 1
	publish(broker.port, "test/pump/set", "OFF")
	sub.wait_topic("test/pump", b"OFF", since=m0)
	assert server.get(1, "coil", 20) == [0]

	# a scaled i16 register (06) and a u32 on unit 2 (16)
	publish(broker.port, "test/setpoint/set", "21.5")
	sub.wait_topic("test/setpoint", b"21.5", since=m0)
	assert server.get(1, "holding", 200) == [215]
	publish(broker.port, "test/limit/set", "70000")
	sub.wait_topic("test/limit", b"70000", since=m0)
	assert server.get(2, "holding", 210, 2) == [0x0001, 0x1170]
	assert server.requests[(1, 6)] == 1 and server.requests[(2, 16)] == 1

	# invalid writes: refused on the error topic, nothing sent
	sent = sum(server.requests.values())
	m1 = sub.mark()
	publish(broker.port, "test/setpoint/set", "31")
	publish(broker.port, "test/setpoint/set", "21.3")
	publish(broker.port, "test/tiny/set", "-5")
	assert wait_until(lambda: len(sub.messages("test/setpoint/error", m1)) == 2
	                  and len(sub.messages("test/tiny/error", m1)) == 1, 5), sub.messages(since=m1)
	errs = [e["error"] for e in errors(sub, "test/setpoint/error", m1)]
	assert "out of range" in errs[0] and "step" in errs[1], errs
	tiny = errors(sub, "test/tiny/error", m1)[0]["error"]
	assert "does not fit the register (u16)" in tiny, tiny
	assert sum(server.requests.values()) == sent
	assert server.get(1, "holding", 200) == [215]

	# the device refuses: the exception by name, the state unchanged
	publish(broker.port, "test/badcoil/set", "ON")
	assert wait_until(lambda: sub.messages("test/badcoil/error", m1), 5)
	err = errors(sub, "test/badcoil/error", m1)[0]["error"]
	assert "exception 2 (illegal data address)" in err, err
	assert not sub.messages("test/badcoil", m1)
	gw.stop()


def test_check_names_file_and_line(broker, server, make_gateway, tmp_path):
	body = 'unit = 1; registers = (\n  { name = "a"; address = 0; },\n  { name = "b"; address = 1; type = "u24"; } );'
	gw = make_gateway(gateway_config(broker.port, tmp_path, device(server, body=body)))
	cp = gw.check()
	assert cp.returncode != 0
	assert f"{gw.conf}:" in cp.stderr and "type must be one of" in cp.stderr, cp.stderr
	line = int(cp.stderr.split(f"{gw.conf}:")[1].split(":")[0])
	assert gw.conf.read_text().splitlines()[line - 1].strip().startswith('{ name = "b"'), cp.stderr
	acts = WRITE_ACTS.format(port=server.port).replace('register_type = "u32"', 'register_type = "u33"')
	gw2 = make_gateway(gateway_config(broker.port, tmp_path, "", extra=acts))
	cp = gw2.check()
	assert cp.returncode != 0 and "register_type must be one of" in cp.stderr, cp.stderr
	gw3 = make_gateway(gateway_config(broker.port, tmp_path, device(server)))
	cp = gw3.check()
	assert cp.returncode == 0, cp.stderr
	# every field, and the plan: one request per unit and function
	assert "plc.relay_3" in cp.stdout and "test/plc/u2temp" in cp.stdout, cp.stdout
	assert (f"modbus tcp 127.0.0.1:{server.port}, timeout 0.5 s, 6 requests per cycle for 19 entries (max_gap 0): "
	        "unit 1 coil 0+4, unit 1 discrete 5+2, unit 1 holding 0+27, unit 1 input 100+1, unit 2 holding 0+2, "
	        "unit 2 input 3+1") in cp.stdout, cp.stdout


def test_discovery_announces_coils_registers_and_writes(broker, server, make_gateway, make_sub, tmp_path):
	extra = ('discovery: { enabled = true; state_file = "%s/disc.state"; };\n' % tmp_path
	         + WRITE_ACTS.format(port=server.port))
	gw = make_gateway(gateway_config(broker.port, tmp_path, device(server), extra=extra))
	cp = gw.check()
	assert cp.returncode == 0, cp.stderr
	assert "known only from its data" not in cp.stdout
	sub = make_sub(broker.port, ["homeassistant/#"])
	gw.start()

	def config(component, obj):
		topic = f"homeassistant/{component}/gw1/{obj}/config"
		sub.wait_topic(topic, timeout=10)
		return json.loads(sub.messages(topic)[-1].payload)

	for obj in ("plc_relay_0", "plc_relay_3", "plc_door_1", "plc_alarm", "plc_fault"):
		c = config("binary_sensor", obj)
		assert c["state_topic"] == f"test/plc/{obj[4:]}" and c["payload_on"] == "1" and c["payload_off"] == "0", c
		assert "unit_of_measurement" not in c
	v = config("sensor", "plc_voltage")
	assert v["unit_of_measurement"] == "V" and v["device_class"] == "voltage", v
	assert config("sensor", "plc_energy")["state_topic"] == "test/plc/energy"
	assert config("switch", "pump")["command_topic"] == "test/pump/set"
	n = config("number", "setpoint")
	assert (n["min"], n["max"], n["step"]) == (5, 30, 0.5), n
	assert f"binary_sensor homeassistant/binary_sensor/gw1/plc_relay_0/config" in " ".join(cp.stdout.split())
	gw.stop()


def test_mute_unit_does_not_stop_the_others(broker, server, make_gateway, make_sub, tmp_path):
	server.set_registers(1, "holding", 0, [11])
	server.mute.add(2)
	body = """ units = ( { unit = 1; registers = ( { name = "a"; address = 0; } ); },
	                     { unit = 2; registers = ( { name = "b"; address = 0; } ); } );"""
	gw = make_gateway(gateway_config(broker.port, tmp_path, device(server, interval=0.3, timeout=0.2, body=body)))
	sub = make_sub(broker.port, ["test/#"])
	gw.start()
	assert wait_until(lambda: len(sub.messages("test/plc/a")) >= 5, 15), gw.stderr_text()
	log = gw.stderr_text()
	assert "unit 2 holding 0+1: no response within 0.2 s" in log, log
	assert "retrying" not in log, log  # unit 1 answers: the connection is kept
	assert server.connections == 1
	assert not sub.messages("test/plc/b")
	gw.stop()


def test_reload_applies_a_new_table_on_a_new_connection(broker, server, make_gateway, make_sub, tmp_path):
	server.set_registers(1, "holding", 0, [1, 2])
	one = 'unit = 1; registers = ( { name = "a"; address = 0; } );'
	two = 'unit = 1; registers = ( { name = "a"; address = 0; }, { name = "b"; address = 1; } );'
	gw = make_gateway(gateway_config(broker.port, tmp_path, device(server, interval=0.3, body=one)))
	sub = make_sub(broker.port, ["test/#"])
	gw.start()
	sub.wait_topic("test/plc/a", b"1", timeout=10)
	gw.conf.write_text(gateway_config(broker.port, tmp_path, device(server, interval=0.3, body=two)))
	gw.proc.send_signal(1)  # SIGHUP
	sub.wait_topic("test/plc/b", b"2", timeout=10)
	assert (1, bytes([3, 0, 0, 0, 2])) in server.log  # the new plan: one block of two
	gw.assert_alive()
	gw.stop()
