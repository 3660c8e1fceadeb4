# SPDX-License-Identifier: MIT
"""Shared serial lines end to end: devices and actuators on one pseudo-terminal,
the real binary, a real mosquitto, devices simulated on the pty's far end
(serial_sim.py, written from the specifications).

  - an RS-485 bus: three Modbus RTU slaves (one device entry each) on one line,
    every function code and type, block reads counted per slave, 8E1 applied
    (the input flags a pty keeps), the 3.5-character silence before every
    request; a mute slave and one answering exceptions do not hold up the
    others, which keep their interval (fairness); writes from MQTT (`modbus`
    actuators over RTU) confirmed by their echo and read back, between the
    devices' reads; --check's bus plan and refusals of entries that disagree;
  - the Arduino pattern: a `lines` device and two `serial` actuators on one
    cable; commands and readings interleave, the device's own state lines
    confirm the relays, a shared reply is also a reading;
  - a 4-relay board: four actuators on one port, commands one at a time in order;
  - unplug and replug: the line goes down for every user and comes back;
  - DSMR 2.2 at 9600 baud: 7E1 with ISTRIP, the parity bits cleared by the line;
  - mhz19 and sds011 query mode as transactions.
"""

import os
import re
import termios
import time

import pytest

from conftest import gateway_config, wait_until
from serial_sim import RtuBus, TextDevice, words_f32, words_f64, words_i64, words_u32
from test_actuators import errors, publish

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
STATUS = "test/gateway/gw1/status"


def values(sub, device, since=0):
	out = {}
	for m in sub.messages(since=since):
		parts = m.topic.split("/")
		if len(parts) == 3 and parts[1] == device:
			out[parts[2]] = float(m.payload)
	return out


def times(sub, topic):
	return [m.t for m in sub.messages(topic)]


def tty_flags(path):
	fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
	try:
		return termios.tcgetattr(fd)
	finally:
		os.close(fd)


@pytest.fixture
def bus(tmp_path):
	b = RtuBus(tmp_path / "rs485", slaves=(1, 2, 3))
	yield b
	b.close()


METER1 = """{{ name = "meter1"; driver = "modbus"; port = "{port}"; slave = 1; interval = {interval};
    timeout = {timeout}; registers = (
      {{ name = "voltage"; address = 0; type = "f32"; function = "input"; unit = "V"; }},
      {{ name = "current"; address = 2; type = "f32"; function = "input"; unit = "A"; }},
      {{ name = "power"; address = 4; type = "i32"; function = "input"; word_order = "little"; scale = 0.1; }},
      {{ name = "energy"; address = 10; type = "u64"; }},
      {{ name = "balance"; address = 14; type = "i64"; }},
      {{ name = "exact"; address = 18; type = "f64"; }},
      {{ name = "raw"; address = 22; type = "i16"; scale = 0.5; offset = 10; }},
      {{ name = "swapped"; address = 23; type = "u32"; byte_order = "little"; word_order = "little"; }},
      {{ name = "alarm"; address = 25; bit = 2; }},
      {{ name = "relay"; address = 0; function = "coil"; count = 3; }},
      {{ name = "door"; address = 8; function = "discrete"; }} ); }}"""

METER = """{{ name = "meter{n}"; driver = "modbus"; port = "{port}"; slave = {n}; interval = {interval};
    timeout = {timeout}; registers = (
      {{ name = "block"; address = 100; count = 20; }} ); }}"""

EXPECTED1 = {"voltage": 230.5, "current": 4.25, "power": -123.4, "energy": 2 ** 40 + 7, "balance": -5,
             "exact": -17.125, "raw": 10 - 2.5, "swapped": 0x12345678, "alarm": 1, "relay_0": 1, "relay_1": 0,
             "relay_2": 1, "door": 1}


def fill(bus):
	bus.set_registers(1, "input", 0, words_f32(230.5) + words_f32(4.25) + words_u32((-1234) & 0xFFFFFFFF, little=True))
	bus.set_registers(1, "holding", 10, words_i64(2 ** 40 + 7) + words_i64(-5) + words_f64(-17.125))
	swapped = [0x7856, 0x3412]  # DCBA of 0x12345678
	bus.set_registers(1, "holding", 22, [(-5) & 0xFFFF] + swapped + [0b100])
	bus.set_bits(1, "coil", 0, [1, 0, 1])
	bus.set_bits(1, "discrete", 8, [1])
	for n in (2, 3):
		bus.set_registers(n, "holding", 100, [n * 100 + i for i in range(20)])


def devices(bus, interval=1.0, timeout=0.2, slaves=(2, 3)):
	port = bus.link
	return ",\n".join([METER1.format(port=port, interval=interval, timeout=timeout)] +
	                  [METER.format(n=n, port=port, interval=interval, timeout=timeout) for n in slaves])


def test_three_slaves_every_type_block_reads_and_8e1(broker, bus, make_gateway, make_sub, tmp_path):
	fill(bus)
	gw = make_gateway(gateway_config(broker.port, tmp_path, devices(bus, interval=30)))
	sub = make_sub(broker.port, ["test/#"])
	gw.start()
	assert wait_until(lambda: len(values(sub, "meter1")) == len(EXPECTED1) and "block_19" in values(sub, "meter3"),
	                  15), (values(sub, "meter1"), gw.stderr_text())
	got = values(sub, "meter1")
	for k, v in EXPECTED1.items():
		assert got[k] == pytest.approx(v), k
	for n in (2, 3):
		assert values(sub, f"meter{n}") == {f"block_{i}": n * 100 + i for i in range(20)}
	# block reads: meter1 is 4 requests (input 0+6, holding 10+16, coils 0+3, discrete 8+1), the others one each
	time.sleep(0.3)
	assert len(bus.requests(1)) == 4, bus.requests(1)
	assert len(bus.requests(2)) == 1 and len(bus.requests(3)) == 1
	assert any(p == bytes([3, 0, 10, 0, 16]) for _t, _s, p in bus.requests(1))
	assert any(p == bytes([3, 0, 100, 0, 20]) for _t, _s, p in bus.requests(2))
	assert bus.bad_crc == 0
	# one port for all three, 8E1 by default: the parity check a pty keeps (PARENB only a UART keeps)
	fds = [f for f in gw.open_fds() if f == os.path.realpath(bus.link)]
	assert len(fds) == 1, gw.open_fds()
	iflag = tty_flags(bus.path)[0]
	assert iflag & termios.INPCK and iflag & termios.IGNPAR and not iflag & termios.ISTRIP
	assert "9600 baud 8E1" in gw.stderr_text() and "a shared line" in gw.stderr_text()
	# the silence before every request after the first: 3.5 characters at 9600 8E1 = 4 ms
	assert min(bus.gaps[1:]) >= 0.0039, bus.gaps
	gw.stop()


def test_mute_and_failing_slaves_do_not_hold_up_the_others(broker, bus, make_gateway, make_sub, tmp_path):
	fill(bus)
	bus.mute.add(3)
	bus.failing[2] = 4  # server device failure
	gw = make_gateway(gateway_config(broker.port, tmp_path, devices(bus, interval=0.5, timeout=0.2)))
	sub = make_sub(broker.port, ["test/#"])
	gw.start()
	assert wait_until(lambda: len(sub.messages("test/meter1/voltage")) >= 14, 20), gw.stderr_text()
	log = gw.stderr_text()
	assert "slave 3 holding 100+20: no response within 0.2 s" in log, log
	assert "slave 2 holding 100+20: exception 4 (server device failure)" in log, log
	assert not values(sub, "meter2") and not values(sub, "meter3")
	# fairness: meter1 keeps its 0.5 s interval although slave 3 times out
	t = times(sub, "test/meter1/voltage")[2:]
	gaps = [b - a for a, b in zip(t, t[1:])]
	assert max(gaps) < 0.75 and sum(gaps) / len(gaps) == pytest.approx(0.5, abs=0.05), gaps
	# the mute slave is held back: far fewer tries than meter1's cycles
	assert len(bus.requests(3)) <= len(t) // 2, (len(bus.requests(3)), len(t))
	# it answers again: read at once at its next try (the hold is at most a few seconds here)
	bus.mute.discard(3)
	assert wait_until(lambda: "block_0" in values(sub, "meter3"), 10), gw.stderr_text()
	gw.assert_alive()
	gw.stop()


RTU_ACTS = """actuators = (
  {{ name = "pump"; driver = "modbus"; port = "{port}"; slave = 1; address = 20; read_back = true; }},
  {{ name = "setpoint"; driver = "modbus"; port = "{port}"; slave = 2; type = "number"; function = "holding";
     address = 200; register_type = "i16"; scale = 0.1; min = 5; max = 30; step = 0.5; }},
  {{ name = "limit"; driver = "modbus"; port = "{port}"; slave = 2; type = "number"; address = 210;
     register_type = "u32"; min = 0; max = 100000; }},
  {{ name = "gone"; driver = "modbus"; port = "{port}"; slave = 9; address = 1; timeout_ms = 200; }},
  {{ name = "badcoil"; driver = "modbus"; port = "{port}"; slave = 1; address = 5000; }}
);
"""


def test_bus_plan_of_a_line_with_only_modbus_actuators(broker, bus, make_gateway, tmp_path):
	"""No Modbus device on the line: its actuators' own 3.5-character gap is in the plan."""
	gw = make_gateway(gateway_config(broker.port, tmp_path, "", extra=RTU_ACTS.format(port=bus.link)))
	cp = gw.check()
	assert cp.returncode == 0, cp.stderr
	assert f"LINE      {bus.link}  9600 8E1 (a character 1.15 ms, 4.01 ms between frames)" in cp.stdout, cp.stdout
	assert "actuator pump (line" in cp.stdout, cp.stdout


def test_writes_over_rtu_between_the_reads(broker, bus, make_gateway, make_sub, tmp_path):
	fill(bus)
	cfg = gateway_config(broker.port, tmp_path, devices(bus, interval=0.3, slaves=(2,)),
	                     extra=RTU_ACTS.format(port=bus.link))
	gw = make_gateway(cfg)
	sub = make_sub(broker.port, ["test/#"])
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=15)
	assert wait_until(lambda: len(sub.messages("test/meter2/block_0")) >= 2, 10)
	m0 = sub.mark()
	# a coil (05) confirmed by its echo and read back (01)
	publish(broker.port, "test/pump/set", "ON")
	sub.wait_topic("test/pump", b"ON", since=m0)
	assert bus.get(1, "coil", 20) == [1]
	assert bus.requests(1, fc=5) and any(p == bytes([1, 0, 20, 0, 1]) for _t, _s, p in bus.requests(1, fc=1))
	# registers: 06 with scale, 16 for a u32
	publish(broker.port, "test/setpoint/set", "21.5")
	sub.wait_topic("test/setpoint", b"21.5", since=m0)
	assert bus.get(2, "holding", 200) == [215]
	publish(broker.port, "test/limit/set", "70000")
	sub.wait_topic("test/limit", b"70000", since=m0)
	assert bus.get(2, "holding", 210, 2) == [0x0001, 0x1170]
	# refused before anything is sent; a slave that is not there; an exception by name
	m1 = sub.mark()
	sent = len(bus.requests())
	publish(broker.port, "test/setpoint/set", "31")
	assert wait_until(lambda: sub.messages("test/setpoint/error", m1), 5)
	assert "out of range" in errors(sub, "test/setpoint/error", m1)[0]["error"]
	assert not [r for r in bus.requests()[sent:] if r[1] == 2 and r[2][0] in (6, 16)]
	publish(broker.port, "test/gone/set", "ON")
	assert wait_until(lambda: sub.messages("test/gone/error", m1), 5)
	assert "no response from unit 9 within 200 ms" in errors(sub, "test/gone/error", m1)[0]["error"]
	publish(broker.port, "test/badcoil/set", "ON")
	assert wait_until(lambda: sub.messages("test/badcoil/error", m1), 5)
	assert "exception 2 (illegal data address)" in errors(sub, "test/badcoil/error", m1)[0]["error"]
	# the reads went on meanwhile
	n = len(sub.messages("test/meter2/block_0"))
	assert wait_until(lambda: len(sub.messages("test/meter2/block_0")) >= n + 2, 5)
	gw.stop()


def test_check_prints_the_bus_plan_and_refuses_disagreement(broker, bus, make_gateway, tmp_path):
	gw = make_gateway(gateway_config(broker.port, tmp_path, devices(bus, interval=1.0)))
	cp = gw.check()
	assert cp.returncode == 0, cp.stderr
	out = cp.stdout
	assert f"LINE      {bus.link}  9600 8E1 (a character 1.15 ms, 4.01 ms between frames)" in out, out
	assert "device   meter1 (line 6, modbus): 4 requests every 1 s: slave 1 coil 0+3 (8+6 bytes), " \
	       "slave 1 discrete 8+1 (8+6 bytes), slave 1 holding 10+16 (8+37 bytes), slave 1 input 0+6 (8+17 bytes)" in out, out
	assert "device   meter2 (line 19, modbus): 1 request every 1 s: slave 2 holding 100+20 (8+45 bytes)" in out, out
	m = re.search(r"cycle    6 requests, (\d+) bytes: ([\d.]+) s on the wire at best \(gaps included\), ([\d.]+) s if "
	              r"every request timed out; the polling keeps the line (\d+) % busy", out)
	assert m, out
	assert int(m.group(1)) == 6 * 8 + 6 + 6 + 37 + 17 + 2 * 45
	# 204 bytes × 11 bits / 9600 + 6 gaps of 4.01 ms
	assert float(m.group(2)) == pytest.approx(204 * 11 / 9600 + 6 * 0.00401, abs=0.001)
	assert float(m.group(3)) == pytest.approx(6 * 8 * 11 / 9600 + 6 * 0.2 + 6 * 0.00401, abs=0.001)

	# two entries that disagree: refused by --check and by the start, both named with their lines
	bad = devices(bus).replace('slave = 2; interval', 'slave = 2; parity = "none"; interval').replace(
		'slave = 1; interval', 'slave = 1; parity = "odd"; interval')
	gw2 = make_gateway(gateway_config(broker.port, tmp_path, bad))
	cp = gw2.check()
	assert cp.returncode != 0
	assert (f'{gw2.conf}:19: device "meter2" sets parity = "none" on {bus.link}, but device "meter1" (line 6) '
	        f'sets parity = "odd"') in cp.stderr, cp.stderr
	gw2.start()
	assert gw2.wait_exit(10) not in (None, 0)
	assert f'{gw2.conf}:19: device "meter2" sets parity' in gw2.stderr_text()


def arduino_config(pty_link, extra_act=""):
	return f"""{{ name = "arduino"; driver = "lines"; port = "{pty_link}"; baud = 115200; format = "kv"; }}""", \
		f"""actuators = (
  {{ name = "relay1"; driver = "serial"; port = "{pty_link}"; on = "relay1=1\\n"; off = "relay1=0\\n";
     reply_on = "relay1=1"; reply_off = "relay1=0"; reply_timeout_ms = 500; }},
  {{ name = "relay2"; driver = "serial"; port = "{pty_link}"; on = "relay2=1\\n"; off = "relay2=0\\n";
     reply_on = "relay2=1"; reply_off = "relay2=0"; share_reply = true; {extra_act} }}
);
"""


def test_arduino_readings_and_relays_on_one_cable(broker, make_gateway, make_sub, tmp_path):
	state = {"relay1": 0, "relay2": 0, "t": 20.0}

	def handle(line):
		k, _, v = line.partition("=")
		if k in ("relay1", "relay2") and v in ("0", "1"):
			state[k] = int(v)
			return f"{k}={v}"
		return "ERR"

	def reading():
		state["t"] += 0.1
		return f"t={state['t']:.1f} h=40"

	ard = TextDevice(tmp_path / "arduino", reading=reading, every=0.05, handle=handle)
	try:
		dev, acts = arduino_config(ard.link)
		gw = make_gateway(gateway_config(broker.port, tmp_path, dev, extra=acts))
		sub = make_sub(broker.port, ["test/#"])
		gw.start()
		sub.wait_topic(STATUS, "online", timeout=15)
		assert wait_until(lambda: len(sub.messages("test/arduino/t")) >= 5, 10), gw.stderr_text()
		m0 = sub.mark()
		for step, want in enumerate(("ON", "OFF", "ON")):
			mk = sub.mark()
			publish(broker.port, "test/relay1/set", want)
			publish(broker.port, "test/relay2/set", want)
			sub.wait_topic("test/relay1", want.encode(), since=mk, timeout=10)
			sub.wait_topic("test/relay2", want.encode(), since=mk, timeout=10)
			assert state["relay1"] == state["relay2"] == (1 if want == "ON" else 0), (step, state)
		# every command reached the device, in order
		cmds = ard.received_commands()
		assert [c for c in cmds if c.startswith("relay1")] == ["relay1=1", "relay1=0", "relay1=1"], cmds
		assert [c for c in cmds if c.startswith("relay2")] == ["relay2=1", "relay2=0", "relay2=1"], cmds
		# readings kept flowing while the relays switched, none of them garbled
		t_first = sub.messages("test/relay1", m0)[0].t
		t_last = sub.messages("test/relay2", m0)[-1].t
		assert wait_until(lambda: len(sub.messages("test/arduino/t", m0)) >= 10, 5)
		msgs = sub.messages("test/arduino/t", m0)
		assert [m for m in msgs if t_first <= m.t <= t_last], (t_first, t_last, [m.t for m in msgs])
		t = [float(m.payload) for m in msgs]
		assert all(b > a for a, b in zip(t, t[1:])), t
		# relay1's replies are its own; relay2's are shared, so the device publishes them as readings too
		assert not sub.messages("test/arduino/relay1")
		assert sub.messages("test/arduino/relay2", m0)
		assert "syntax" not in gw.stderr_text(), gw.stderr_text()
		gw.stop()
	finally:
		ard.close()


def test_four_relay_board(broker, make_gateway, make_sub, tmp_path):
	def handle(line):
		return "OK" if re.fullmatch(r"R[1-4][01]", line) else None

	board = TextDevice(tmp_path / "relays", handle=handle)
	try:
		acts = "actuators = (\n" + ",\n".join(
			f'  {{ name = "ch{i}"; driver = "serial"; port = "{board.link}"; on = "R{i}1\\n"; off = "R{i}0\\n"; '
			f'reply = "OK"; reply_timeout_ms = 300; }}' for i in range(1, 5)) + "\n);\n"
		gw = make_gateway(gateway_config(broker.port, tmp_path, "", extra=acts))
		sub = make_sub(broker.port, ["test/#"])
		gw.start()
		sub.wait_topic(STATUS, "online", timeout=15)
		m0 = sub.mark()
		for i in range(1, 5):
			publish(broker.port, f"test/ch{i}/set", "ON")
		for i in range(1, 5):
			sub.wait_topic(f"test/ch{i}", b"ON", since=m0, timeout=10)
		assert board.received_commands() == ["R11", "R21", "R31", "R41"]
		assert not [m for m in sub.messages(since=m0) if m.topic.endswith("/error")]
		fds = [f for f in gw.open_fds() if f == os.path.realpath(board.link)]
		assert len(fds) == 1, gw.open_fds()
		gw.stop()
	finally:
		board.close()


def test_unplug_and_replug_brings_the_line_back_for_all(broker, make_pty, make_gateway, make_sub, tmp_path):
	pty = make_pty("cable")
	dev, acts = arduino_config(pty.link)
	gw = make_gateway(gateway_config(broker.port, tmp_path, dev, extra=acts))
	sub = make_sub(broker.port, ["test/#"])
	gw.start()
	gw.wait_open(pty)
	sub.wait_topic(STATUS, "online", timeout=15)
	pty.write_line("t=1")
	sub.wait_topic("test/arduino/t", b"1", timeout=10)
	pty.unplug()
	m0 = sub.mark()
	publish(broker.port, "test/relay1/set", "ON")
	assert wait_until(lambda: sub.messages("test/relay1/error", m0), 10)
	assert "unavailable" in errors(sub, "test/relay1/error", m0)[0]["error"]
	pty.replug()
	gw.wait_open(pty)
	# every user of the line is back with it, not each after its own backoff
	assert wait_until(lambda: gw.stderr_text().count("open again") >= 3, 3), gw.stderr_text()[-2000:]
	m1 = sub.mark()
	assert wait_until(lambda: (pty.write_line("t=2") or True) and sub.messages("test/arduino/t", m1), 10, 0.3)
	# the relay is back too: a command reaches the device and its reply confirms it
	publish(broker.port, "test/relay1/set", "ON")
	assert wait_until(lambda: b"relay1=1\n" in pty.received(), 10)
	pty.write_line("relay1=1")
	sub.wait_topic("test/relay1", b"ON", since=m1, timeout=10)
	gw.assert_alive()
	gw.stop()


def test_dsmr22_7e1_natively(broker, make_pty, make_gateway, make_sub, tmp_path):
	pty = make_pty("p1")
	dev = f'{{ name = "meter"; driver = "dsmr"; port = "{pty.link}"; baud = 9600; }}'
	gw = make_gateway(gateway_config(broker.port, tmp_path, dev))
	sub = make_sub(broker.port, ["test/#"])
	gw.start()
	gw.wait_open(pty)
	assert "9600 baud 7E1" in gw.stderr_text()
	assert tty_flags(pty.path)[0] & termios.ISTRIP
	telegram = open(os.path.join(DATA, "dsmr", "dsmr22_7e1.bin"), "rb").read()  # parity bits on the wire
	assert any(b & 0x80 for b in telegram)
	assert wait_until(lambda: (pty.write(telegram) or True) and sub.messages("test/meter/gas_delivered"), 10, 1.0), \
		gw.stderr_text()
	gw.stop()


def test_mhz19_on_a_line(broker, make_gateway, make_sub, tmp_path):
	link = tmp_path / "co2"
	request = bytes.fromhex("FF 01 86 00 00 00 00 00 79")

	class Sensor(TextDevice):
		buf = b""

		def received(self, data, now):
			self.buf += data
			while request in self.buf:
				self.buf = self.buf.split(request, 1)[1]
				self.write(bytes.fromhex("FF 86 02 20 00 00 00 00 58"))  # the manual's example: 544 ppm

	s = Sensor(link)
	try:
		dev = f'{{ name = "co2"; driver = "mhz19"; port = "{link}"; interval = 0.5; }}'
		gw = make_gateway(gateway_config(broker.port, tmp_path, dev))
		sub = make_sub(broker.port, ["test/#"])
		gw.start()
		assert wait_until(lambda: len(sub.messages("test/co2/co2")) >= 3, 10), gw.stderr_text()
		assert sub.messages("test/co2/co2")[0].payload == b"544"
		assert "timeout" not in gw.stderr_text()
		gw.stop()
	finally:
		s.close()


def test_sds011_query_mode(broker, make_gateway, make_sub, tmp_path):
	link = tmp_path / "dust"
	seen = []

	def frame(cmd, data):
		return bytes([0xAA, cmd] + data + [sum(data[:6]) & 0xFF, 0xAB])

	class Sensor(TextDevice):
		buf = b""

		def received(self, data, now):
			self.buf += data
			while len(self.buf) >= 19:
				i = self.buf.find(b"\xAA\xB4")
				if i < 0:
					self.buf = b""
					return
				cmd, self.buf = self.buf[i:i + 19], self.buf[i + 19:]
				seen.append(cmd[2])
				if cmd[2] == 2:   # set reporting mode: the reply echoes it
					self.write(frame(0xC5, [2, 1, cmd[4], 0, 0xA1, 0x60]))
				elif cmd[2] == 4:  # query data: PM2.5 12.3, PM10 45.6
					self.write(frame(0xC0, [123, 0, 0xC8, 0x01, 0xA1, 0x60]))

	s = Sensor(link)
	try:
		dev = f'{{ name = "dust"; driver = "sds011"; port = "{link}"; mode = "query"; interval = 0.5; }}'
		gw = make_gateway(gateway_config(broker.port, tmp_path, dev))
		sub = make_sub(broker.port, ["test/#"])
		gw.start()
		assert wait_until(lambda: len(sub.messages("test/dust/pm10")) >= 2, 10), gw.stderr_text()
		assert sub.messages("test/dust/pm2_5")[0].payload == b"12.3"
		assert sub.messages("test/dust/pm10")[0].payload == b"45.6"
		assert seen[0] == 2 and seen.count(2) == 1 and seen.count(4) >= 2, seen
		gw.stop()
	finally:
		s.close()
