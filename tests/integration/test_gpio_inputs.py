# SPDX-License-Identifier: MIT
"""GPIO inputs end to end: the real binary, a real broker, and (where the host
has it) a real kernel gpiochip simulated by gpio-sim.

Everywhere:
  - --check lists a contact's field, its line and its Home Assistant entity,
    and refuses, at FILE:LINE, a second user of a line (a relay on the same
    line, however the chip is spelled) and bad options;
  - a chip that is not there is one clear log line, retried, and the rest of
    the gateway runs.

With gpio-sim (root, configfs, the gpio-sim module; skipped with the reason
otherwise, the QEMU rig tests the same on Debian's kernel:
tests/rig/qemu-guest-gpio-in.sh): the test moves a line with gpio-sim's `pull`
attribute, which makes the kernel raise real edge interrupts, and checks what
reaches an MQTT subscriber:
  - contact: the level at start, ON/OFF on every change, retained;
  - counter: 300 pulses counted exactly; a kill -9 loses at most save_pulses - 1
    and the total never goes back; a clean stop loses nothing;
  - button: a single, a double and a long press, in that order, not retained.
"""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import gateway_config, wait_until

CONFIGFS = Path("/sys/kernel/config")


def contact(name="door", line=4, extra=""):
	return f'{{ name = "{name}"; driver = "contact"; line = {line}; {extra} }}'


def test_check_lists_the_contact(broker, make_gateway, tmp_path):
	cfg = gateway_config(broker.port, tmp_path, contact(extra='bias = "pull-up"; active_low = true; '
	                                                           'device_class = "door";'),
	                     extra='discovery: { enabled = true; };\n')
	gw = make_gateway(cfg)
	cp = gw.check()
	assert cp.returncode == 0, cp.stderr
	out = " ".join(cp.stdout.split())
	assert "door.state test/door/state 0 yes plain spool" in out, cp.stdout
	assert "gpio gpiochip0 line 4, bias pull-up, active-low, debounce 20 ms; state ON/OFF, device_class door" in out
	assert "binary_sensor homeassistant/binary_sensor/gw1/door_state/config" in out, cp.stdout


@pytest.mark.parametrize("chip", ["gpiochip0", "0", "/dev/gpiochip0"])
def test_check_refuses_a_relay_on_the_same_line(broker, make_gateway, tmp_path, chip):
	relay = f'actuators = ( {{ name = "relay"; driver = "gpio"; chip = "{chip}"; line = 4; topic = "r"; }} );\n'
	gw = make_gateway(gateway_config(broker.port, tmp_path, contact(), extra=relay))
	cp = gw.check()
	assert cp.returncode == 1
	assert re.search(r"sensorgate\.conf:7: actuator \"relay\" uses gpiochip0 line 4, which device \"door\" "
	                 r"\(line 6\) already uses", cp.stderr), cp.stderr
	# the start refuses the same file with the same words
	gw.start()
	assert gw.wait_exit(10) == 78  # EX_CONFIG: a refused configuration is not restarted
	assert "actuator \"relay\" uses gpiochip0 line 4" in gw.stderr_text()


def test_check_refuses_bad_options_at_their_line(broker, make_gateway, tmp_path):
	gw = make_gateway(gateway_config(broker.port, tmp_path,
	                                 '{ name = "door"; driver = "contact";\n line = 4;\n bias = "up"; }'))
	cp = gw.check()
	assert cp.returncode == 1
	assert re.search(r"sensorgate\.conf:8: device \"door\": \"bias\" must be one of \"as-is\", \"disabled\", "
	                 r"\"pull-up\", \"pull-down\"", cp.stderr), cp.stderr
	gw2 = make_gateway(gateway_config(broker.port, tmp_path, '{ name = "door"; driver = "contact"; }'))
	cp = gw2.check()
	assert cp.returncode == 1
	assert re.search(r"sensorgate1\.conf:6: device \"door\": needs \"line\"", cp.stderr), cp.stderr


def counter(name="meter", line=22, extra=""):
	return f'{{ name = "{name}"; driver = "counter"; line = {line}; {extra} }}'


S0 = 'per_unit = 1000; unit = "kWh"; device_class = "energy"; min_pulse_ms = 20;'


def test_check_lists_the_counter(broker, make_gateway, tmp_path):
	gw = make_gateway(gateway_config(broker.port, tmp_path, counter(extra=S0),
	                                 extra='discovery: { enabled = true; };\n'))
	cp = gw.check()
	assert cp.returncode == 0, cp.stderr
	out = " ".join(cp.stdout.split())
	assert "meter.total test/meter/total 0 yes plain spool" in out, cp.stdout
	assert "meter.rate test/meter/rate 0 yes plain spool" in out, cp.stdout
	assert ("gpio gpiochip0 line 22, bias as-is; counts rising edges, min pulse 20 ms; 1000 pulses per kWh; "
	        "rate in kW; saved every 10 pulses or 1 s") in out, cp.stdout
	assert "sensor homeassistant/sensor/gw1/meter_total/config" in out


def test_counter_discovery(broker, make_gateway, make_sub, tmp_path):
	"""The entities are announced even while the chip is missing (they describe the config)."""
	gw = make_gateway(gateway_config(broker.port, tmp_path, counter(extra=S0 + ' chip = "gpiochip77";'),
	                                 extra='discovery: { enabled = true; };\n'))
	sub = make_sub(broker.port, ["homeassistant/sensor/gw1/#"])
	gw.start()
	total = json.loads(sub.wait_topic("homeassistant/sensor/gw1/meter_total/config", timeout=10).payload)
	rate = json.loads(sub.wait_topic("homeassistant/sensor/gw1/meter_rate/config", timeout=10).payload)
	assert (total["state_topic"], total["unit_of_measurement"], total["device_class"], total["state_class"]) == \
		("test/meter/total", "kWh", "energy", "total_increasing"), total
	assert (rate["state_topic"], rate["unit_of_measurement"], rate["device_class"], rate["state_class"]) == \
		("test/meter/rate", "kW", "power", "measurement"), rate
	gw.stop()


def test_button_check_and_discovery(broker, make_gateway, make_sub, tmp_path):
	bell = '{ name = "bell"; driver = "button"; line = 27; chip = "gpiochip77"; }'
	gw = make_gateway(gateway_config(broker.port, tmp_path, bell, extra='discovery: { enabled = true; };\n'))
	cp = gw.check()
	assert cp.returncode == 0, cp.stderr
	out = " ".join(cp.stdout.split())
	assert "bell.action test/bell/action 0 no plain spool" in out, cp.stdout  # events are not retained
	for t in ("single", "double", "long"):
		assert f"device_automation homeassistant/device_automation/gw1/bell_action_{t}/config" in out, cp.stdout
	assert "event homeassistant/event/gw1/bell_action/config" in out
	sub = make_sub(broker.port, ["homeassistant/event/gw1/#", "homeassistant/device_automation/gw1/#"])
	gw.start()
	ev = json.loads(sub.wait_topic("homeassistant/event/gw1/bell_action/config", timeout=10).payload)
	assert ev["event_types"] == ["single", "double", "long"] and ev["state_topic"] == "test/bell/action", ev
	tr = json.loads(sub.wait_topic("homeassistant/device_automation/gw1/bell_action_double/config",
	                               timeout=10).payload)
	assert (tr["automation_type"], tr["type"], tr["payload"], tr["topic"]) == \
		("trigger", "button_double_press", "double", "test/bell/action"), tr
	gw.stop()
	gw2 = make_gateway(gateway_config(broker.port, tmp_path, bell[:-1] + ' retain = true; }'))
	cp = gw2.check()
	assert cp.returncode == 1
	assert re.search(r"sensorgate1\.conf:6: device \"bell\": events are never retained", cp.stderr), cp.stderr


def test_missing_chip_is_one_clear_line_and_retried(broker, make_gateway, make_sub, tmp_path):
	gw = make_gateway(gateway_config(broker.port, tmp_path, contact(extra='chip = "gpiochip77";')))
	sub = make_sub(broker.port, ["test/gateway/gw1/status"])
	gw.start()
	sub.wait_topic("test/gateway/gw1/status", "online", timeout=10)
	want = ("gpiochip77 line 4: initialisation failed: No such file or directory: no gpiochip \"gpiochip77\" "
	        "(gpiodetect lists them)")
	assert wait_until(lambda: want in gw.stderr_text(), 10), gw.stderr_text()
	time.sleep(2.5)  # retried with backoff (1 s, 2 s ...), warned about once (the retries at debug level)
	warned = [ln for ln in gw.stderr_text().splitlines() if want in ln and not ln.startswith("<7>")]
	assert len(warned) == 1 and warned[0].startswith("<4>"), gw.stderr_text()
	assert gw.stderr_text().count(want) >= 2, gw.stderr_text()
	gw.assert_alive()
	gw.stop()


# ---- gpio-sim ---------------------------------------------------------------------------------------

class SimChip:
	"""A gpio-sim chip made through configfs: .name ("gpiochipN"), .pull(line, up)."""

	def __init__(self, label, lines=8):
		self.cfs = CONFIGFS / "gpio-sim" / label
		self.cfs.mkdir()
		(self.cfs / "bank0").mkdir()
		(self.cfs / "bank0" / "num_lines").write_text(str(lines))
		(self.cfs / "bank0" / "label").write_text(label)
		(self.cfs / "live").write_text("1")
		self.name = (self.cfs / "bank0" / "chip_name").read_text().strip()
		dev = (self.cfs / "dev_name").read_text().strip()
		self.sysfs = Path("/sys/devices/platform") / dev / self.name

	def pull(self, line, up):
		(self.sysfs / f"sim_gpio{line}" / "pull").write_text("pull-up" if up else "pull-down")

	def close(self):
		try:
			(self.cfs / "live").write_text("0")
			(self.cfs / "bank0").rmdir()
			self.cfs.rmdir()
		except OSError:
			pass


def _gpio_sim_reason():
	if os.geteuid() != 0:
		return "gpio-sim needs root (configfs)"
	if not CONFIGFS.is_dir():
		subprocess.run(["modprobe", "configfs"], capture_output=True)
	if not (CONFIGFS / "gpio-sim").is_dir():
		cp = subprocess.run(["modprobe", "gpio-sim"], capture_output=True, text=True)
		if cp.returncode != 0 or not (CONFIGFS / "gpio-sim").is_dir():
			why = (cp.stderr or "").strip() or "no /sys/kernel/config/gpio-sim"
			return f"gpio-sim is not available on this host ({why})"
	return None


@pytest.fixture
def sim():
	reason = _gpio_sim_reason()
	if reason:
		pytest.skip(f"{reason}; the QEMU rig runs these checks on a real kernel (tests/rig/qemu-guest-gpio-in.sh)")
	chip = SimChip(f"sg-test-{os.getpid()}")
	yield chip
	chip.close()


def test_contact_on_gpio_sim(broker, make_gateway, make_sub, tmp_path, sim):
	sim.pull(2, True)
	gw = make_gateway(gateway_config(broker.port, tmp_path,
	                                 contact(line=2, extra=f'chip = "{sim.name}"; debounce_ms = 10;')))
	sub = make_sub(broker.port, ["test/door/state"])
	gw.start()
	sub.wait_topic("test/door/state", "ON", timeout=10)  # the level at start
	mark = sub.mark()
	sim.pull(2, False)
	sub.wait_topic("test/door/state", "OFF", timeout=5, since=mark)
	mark = sub.mark()
	sim.pull(2, True)
	sub.wait_topic("test/door/state", "ON", timeout=5, since=mark)
	late = make_sub(broker.port, ["test/door/state"])
	assert late.wait_topic("test/door/state", "ON", timeout=5).retain
	gw.stop()


def _pulses(sim, line, n, period=0.01):
	for _ in range(n):
		sim.pull(line, True)
		time.sleep(period / 2)
		sim.pull(line, False)
		time.sleep(period / 2)


def _totals(sub, topic="test/meter/total"):
	return [float(m.payload) for m in sub.messages(topic)]


def test_counter_on_gpio_sim(broker, make_gateway, make_sub, tmp_path, sim):
	sim.pull(3, False)
	gw = make_gateway(gateway_config(broker.port, tmp_path,
	                                 counter(line=3, extra=f'chip = "{sim.name}"; interval = 0.5;')))
	sub = make_sub(broker.port, ["test/meter/total"])
	gw.start()
	sub.wait_topic("test/meter/total", "0", timeout=10)
	_pulses(sim, 3, 300)
	sub.wait_topic("test/meter/total", "300", timeout=10)
	# kill -9 right after a burst of 37, less than save_interval after its last pulses:
	# the total after the restart is at least the last one published, at most 9 short
	for _ in range(37):
		sim.pull(3, True)
		sim.pull(3, False)
	time.sleep(0.1)
	before = max(_totals(sub))
	gw.kill9()
	mark = sub.mark()
	gw.start()
	after = float(sub.wait_topic("test/meter/total", timeout=10, since=mark).payload)
	assert before <= after <= 337 and 337 - after <= 9, (before, after)
	# a clean stop saves everything
	_pulses(sim, 3, 5)
	time.sleep(0.3)
	gw.stop()
	gw.start()
	assert wait_until(lambda: _totals(sub) and _totals(sub)[-1] == after + 5, 10), _totals(sub)
	gw.stop()


def test_button_on_gpio_sim(broker, make_gateway, make_sub, tmp_path, sim):
	sim.pull(4, False)
	gw = make_gateway(gateway_config(broker.port, tmp_path,
	                                 f'{{ name = "bell"; driver = "button"; chip = "{sim.name}"; line = 4;'
	                                 ' debounce_ms = 10; double_click_ms = 300; long_press_ms = 800; }'))
	sub = make_sub(broker.port, ["test/bell/action", "test/gateway/gw1/status"])
	gw.start()
	sub.wait_topic("test/gateway/gw1/status", "online", timeout=10)
	time.sleep(0.3)
	for hold, gap in ((0.1, 1.0), (0.1, 0.1), (0.1, 1.0), (1.5, 0.5)):
		sim.pull(4, True)
		time.sleep(hold)
		sim.pull(4, False)
		time.sleep(gap)
	assert wait_until(lambda: len(sub.messages("test/bell/action")) >= 3, 5)
	got = [(m.payload.decode(), m.retain) for m in sub.messages("test/bell/action")]
	assert got == [("single", False), ("double", False), ("long", False)], got
	gw.stop()
