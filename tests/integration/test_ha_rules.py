# SPDX-License-Identifier: MIT
"""Every discovery message the gateway can make, checked against Home Assistant's own rules.

One real gateway with every sensor driver (several option sets where options
change the fields), every actuator kind and the health entities, against a
real mosquitto; every retained config message it publishes is checked by
ha_rules.check(): required keys per component, the unit each sensor device
class accepts, the state classes it allows, entity names, precision and
categories. The rules are Home Assistant's facts, kept in ha_rules.py with the
version they were taken from (ha_rules.HA_SOURCE), independently of the
gateway's own table (gateway/ha_classes.c): a Home Assistant change is a
one-table update there.

Then the readings not every meter sends: a DSMR meter's gas reading is
announced once the first telegram brings it, in m³ with the gas class, and it
stays announced across a restart (the discovery state file).
"""

import json
import re
import time

import pytest

import ha_rules
from conftest import REPO, gateway_config, wait_until

PREFIX = "homeassistant"
TOPIC_RE = re.compile(r"^homeassistant/([a-z_]+)/gw1/([A-Za-z0-9_-]+)/config$")
SPEC_TELEGRAM = (REPO / "tests/data/dsmr/spec_fixed.txt").read_bytes()

SERIAL = [  # (name, device text with {port}) — one port each: their line settings differ
	("ard", '{{ name = "ard"; driver = "lines"; port = "{port}"; format = "kv"; readings = ('
	        ' {{ field = "t"; unit = "°C"; }}, {{ field = "h"; unit = "%"; }},'
	        ' {{ field = "soil"; unit = "%"; device_class = "moisture"; }},'
	        ' {{ field = "amps"; unit = "A"; device_class = "current"; }},'
	        ' {{ field = "tank"; unit = "l"; }}, {{ field = "gas"; unit = "m3"; }},'
	        ' {{ field = "dust"; unit = "ug/m3"; device_class = "pm25"; }},'
	        ' {{ field = "msg"; }} ); }}'),
	("gps", '{{ name = "gps"; driver = "nmea"; port = "{port}"; }}'),
	("meter", '{{ name = "meter"; driver = "dsmr"; port = "{port}"; }}'),
	("air", '{{ name = "air"; driver = "pms5003"; port = "{port}"; }}'),
	("air2", '{{ name = "air2"; driver = "pms5003"; port = "{port}"; cf1 = true; counts = true; }}'),
	("dust", '{{ name = "dust"; driver = "sds011"; port = "{port}"; }}'),
	("co2", '{{ name = "co2"; driver = "mhz19"; port = "{port}"; }}'),
	("co2t", '{{ name = "co2t"; driver = "mhz19"; port = "{port}"; temperature = true; }}'),
	("sdm", '{{ name = "sdm"; driver = "modbus"; port = "{port}"; baud = 9600; slave = 1; registers = ('
	        ' {{ name = "voltage"; address = 0; type = "f32"; function = "input"; unit = "V"; }},'
	        ' {{ name = "current"; address = 6; type = "f32"; function = "input"; unit = "A"; }},'
	        ' {{ name = "power"; address = 12; type = "f32"; function = "input"; unit = "W"; }},'
	        ' {{ name = "energy"; address = 0x156; type = "f32"; function = "input"; unit = "kWh"; }},'
	        ' {{ name = "freq"; address = 70; type = "f32"; function = "input"; unit = "Hz"; }},'
	        ' {{ name = "gasm3"; address = 80; type = "f32"; unit = "m3"; device_class = "gas"; }},'
	        ' {{ name = "cost"; address = 90; type = "f32"; unit = "EUR"; device_class = "monetary";'
	        '   state_class = "total"; }},'
	        ' {{ name = "alarm"; address = 1; function = "discrete"; }},'
	        ' {{ name = "status"; address = 89; bit = 2; }} ); }}'),
]

OTHER = """
  { name = "plant"; driver = "modbus_tcp"; host = "127.0.0.1"; port = 1; units = (
      { unit = 1; registers = ( { name = "power"; address = 83; type = "i16"; unit = "W"; },
                                { name = "energy"; address = 85; type = "u32"; unit = "Wh"; },
                                { name = "relay"; address = 0; function = "coil"; count = 2; } ); } ); },
  { name = "env"; driver = "bme280"; bus = "/dev/i2c-9"; address = 0x76; },
  { name = "bath"; driver = "sht3x"; bus = "/dev/i2c-9"; address = 0x44; },
  { name = "light"; driver = "bh1750"; bus = "/dev/i2c-9"; address = 0x23; },
  { name = "adc"; driver = "ads1115"; bus = "/dev/i2c-9"; address = 0x48;
    channels = ( { name = "battery"; mux = "0"; gain = 6.144; }, { name = "shunt"; mux = "2-3"; gain = 0.256; } );
    readings = ( { field = "battery"; round = 2; scale = 3.0; device_class = "voltage"; },
                 { field = "shunt"; scale = 10.0; unit = "A"; device_class = "current"; } ); },
  { name = "adc2"; driver = "ads1115"; bus = "/dev/i2c-9"; address = 0x49; },
  { name = "tank"; driver = "ds18b20"; path = "28-0316a2795cff"; expire_after = 300.0; },
  { name = "frontdoor"; driver = "contact"; chip = "gpiochip9"; line = 17; device_class = "door"; },
  { name = "bell"; driver = "button"; chip = "gpiochip9"; line = 27; },
  { name = "power"; driver = "counter"; chip = "gpiochip9"; line = 22; per_unit = 1000; unit = "kWh";
    device_class = "energy"; },
  { name = "water"; driver = "counter"; chip = "gpiochip9"; line = 23; per_unit = 1000; unit = "m³";
    device_class = "water"; rate_per = "min"; rate_per_unit = 1; rate_unit = "L/min"; }
"""

ACTUATORS = """actuators = (
  { name = "relay"; driver = "gpio"; chip = "gpiochip9"; line = 5; },
  { name = "heater"; driver = "serial"; port = "{a1}"; on = "H1\\n"; off = "H0\\n"; },
  { name = "fan"; driver = "serial"; port = "{a2}"; type = "number"; min = 0; max = 100; step = 5;
    set = "F{{value}}\\n"; },
  { name = "mode"; driver = "serial"; port = "{a3}"; type = "enum"; options = ["eco", "comfort"];
    set = "M{{value}}\\n"; },
  { name = "boiler"; driver = "modbus"; host = "127.0.0.1"; port = 1; unit = 1; address = 12; },
  { name = "setpoint"; driver = "modbus"; host = "127.0.0.1"; port = 1; unit = 1; type = "number";
    function = "holding"; address = 100; register_type = "i16"; scale = 0.1; min = 5; max = 30; step = 0.5; },
  { name = "pump"; driver = "pwm"; chip = "pwmchip9"; channel = 0; frequency = 25000; type = "number"; min = 0;
    max = 100; step = 1; }
);
"""


def config(broker_port, tmp_path, make_pty):
	ptys = {name: make_pty(name) for name, _ in SERIAL}
	devices = ",\n  ".join(text.format(port=ptys[name].link) for name, text in SERIAL) + "," + OTHER
	acts = ACTUATORS.replace("{a1}", str(make_pty("a1").link)).replace(
		"{a2}", str(make_pty("a2").link)).replace("{a3}", str(make_pty("a3").link)).replace("{{", "{").replace("}}", "}")
	extra = 'discovery: { enabled = true; };\n' + acts
	cfg = gateway_config(broker_port, tmp_path, devices, extra=extra)
	cfg = cfg.replace('spool: {', 'spool: { stats_interval = 30.0;')
	return cfg, ptys


def discovery_topics(gw):
	cp = gw.check()
	assert cp.returncode == 0, cp.stderr + cp.stdout
	return {f[1] for f in (line.split() for line in cp.stdout.splitlines())
	        if len(f) == 3 and f[1].startswith(PREFIX + "/")}


def configs(sub):
	got = {}
	for m in sub.messages():
		if m.topic.startswith(PREFIX + "/") and m.topic.endswith("/config"):
			got[m.topic] = m.payload
	return got


def wait_configs(sub, topics, timeout=20.0):
	ok = wait_until(lambda: set(topics) <= set(configs(sub)), timeout)
	assert ok, f"missing discovery configs: {sorted(set(topics) - set(configs(sub)))}"
	return configs(sub)


def problems_of(topic, payload):
	component = TOPIC_RE.match(topic).group(1)
	cfg = json.loads(payload.decode("utf-8"))
	return component, cfg, ha_rules.check(component, cfg)


@pytest.fixture
def every_driver(broker, make_pty, make_gateway, make_sub, tmp_path):
	cfg, ptys = config(broker.port, tmp_path, make_pty)
	gw = make_gateway(cfg)
	sub = make_sub(broker.port, [f"{PREFIX}/#"], qos=1)
	topics = discovery_topics(gw)
	gw.start()
	got = wait_configs(sub, topics)
	return gw, sub, ptys, topics, got


def test_every_discovery_message_passes_home_assistants_rules(every_driver):
	gw, _sub, _ptys, topics, got = every_driver
	bad, seen = [], {}
	for topic in sorted(got):
		assert topic in topics, f"{topic} published but not listed by --check"
		if not got[topic]:
			continue
		component, cfg, problems = problems_of(topic, got[topic])
		seen.setdefault(component, 0)
		seen[component] += 1
		bad += [f"{topic}: {p}" for p in problems]
	print(f"\n{len(got)} discovery messages ({seen}), checked against {ha_rules.HA_SOURCE[:60]}...")
	assert not bad, "Home Assistant would not take these:\n" + "\n".join(bad)
	# every kind of entity was there to be checked
	for component in ("sensor", "binary_sensor", "event", "device_automation", "switch", "number", "select"):
		assert seen.get(component), f"no {component} announced: the test lost its coverage"
	assert len(got) >= 80
	gw.assert_alive()


def test_classes_units_and_precision_as_home_assistant_wants(every_driver):
	"""The issue's findings one by one, as Home Assistant receives them."""
	_gw, _sub, _ptys, _topics, got = every_driver

	def cfg(obj, component="sensor"):
		topic = f"{PREFIX}/{component}/gw1/{obj}/config"
		assert topic in got, f"{topic} not announced"
		return json.loads(got[topic])

	def absent(obj, component="sensor"):
		assert f"{PREFIX}/{component}/gw1/{obj}/config" not in got, f"{obj} announced"

	# 1. m³ (not m3) for gas and water, wherever the unit came from
	assert cfg("ard_gas")["unit_of_measurement"] == "m³" and cfg("ard_gas")["device_class"] == "gas"
	assert cfg("sdm_gasm3")["unit_of_measurement"] == "m³"
	assert cfg("water_total")["unit_of_measurement"] == "m³"
	assert cfg("water_total")["state_class"] == "total_increasing"
	assert cfg("water_rate")["device_class"] == "volume_flow_rate"
	assert cfg("ard_dust")["unit_of_measurement"] == "µg/m³"
	# 2. no entity named like its device: its name is null (Home Assistant shows the device's)
	assert cfg("co2_co2")["name"] is None
	assert cfg("co2t_co2")["name"] == "co2"
	# 3. ads1115 channels are volts; a scaled channel with its own unit is what its unit says
	assert (cfg("adc_battery")["unit_of_measurement"], cfg("adc_battery")["device_class"]) == ("V", "voltage")
	assert cfg("adc_battery")["suggested_display_precision"] == 2  # round = 2
	assert (cfg("adc_shunt")["unit_of_measurement"], cfg("adc_shunt")["device_class"]) == ("A", "current")
	assert cfg("adc2_a0")["unit_of_measurement"] == "V"
	# 4. a hand-set class gets its statistics
	assert cfg("ard_soil")["state_class"] == "measurement"
	assert cfg("ard_amps")["state_class"] == "measurement"
	# 5. Modbus registers: units, classes, energy dashboard
	assert (cfg("sdm_energy")["device_class"], cfg("sdm_energy")["state_class"]) == ("energy", "total_increasing")
	assert (cfg("sdm_voltage")["device_class"], cfg("sdm_current")["device_class"]) == ("voltage", "current")
	assert cfg("sdm_freq")["device_class"] == "frequency"
	assert (cfg("sdm_cost")["device_class"], cfg("sdm_cost")["state_class"]) == ("monetary", "total")
	assert cfg("plant_energy")["state_class"] == "total_increasing"
	assert cfg("sdm_alarm", "binary_sensor")
	# 6. only what the device as configured produces
	absent("co2_temperature")
	assert cfg("co2t_temperature")["device_class"] == "temperature"
	absent("air_pm2_5_cf1")
	absent("air_particles_0_3um")
	assert cfg("air2_pm2_5_cf1") and cfg("air2_particles_0_3um")
	for optional in ("gas_delivered", "water_delivered", "heat_delivered", "average_demand",
	                 "max_demand_month", "voltage_l2", "version"):
		absent(f"meter_{optional}")
	assert cfg("meter_energy_delivered_tariff1")["suggested_display_precision"] == 3
	# health entities are diagnostic
	assert cfg("gateway_spool_depth")["entity_category"] == "diagnostic"


def test_meter_readings_announced_when_they_first_arrive(every_driver, make_gateway, make_sub, broker):
	gw, sub, ptys, _topics, _got = every_driver
	gas = f"{PREFIX}/sensor/gw1/meter_gas_delivered/config"
	gw.wait_open(ptys["meter"])
	mark = sub.mark()
	deadline = time.monotonic() + 15
	while gas not in configs(sub) and time.monotonic() < deadline:
		ptys["meter"].write(SPEC_TELEGRAM)
		time.sleep(0.5)
	got = configs(sub)
	assert gas in got, "the gas reading arrived but was never announced"
	component, cfg, problems = problems_of(gas, got[gas])
	assert not problems, problems
	assert (cfg["unit_of_measurement"], cfg["device_class"], cfg["state_class"]) == \
		("m³", "gas", "total_increasing")
	# the meter's other new lines came with it; the ones it does not send still are not there
	assert f"{PREFIX}/sensor/gw1/meter_voltage_l1/config" in got
	assert f"{PREFIX}/sensor/gw1/meter_heat_delivered/config" not in got
	assert "for readings that arrived for the first time" in gw.stderr_text()
	for m in sub.messages(since=mark):  # announced, never deleted on the way
		assert m.payload or not m.topic.endswith("/config"), f"{m.topic} deleted"

	# a restart announces it at once (the state file), without a telegram, and deletes nothing
	gw.stop()
	sub2 = make_sub(broker.port, [f"{PREFIX}/#"], qos=1)
	assert wait_until(lambda: gas in configs(sub2), 10)  # the retained one
	mark2 = sub2.mark()
	gw2 = make_gateway(gw.conf.read_text(), name="again")
	gw2.start()
	assert wait_until(lambda: any(m.topic == gas for m in sub2.messages(since=mark2)), 20), \
		"not announced again after the restart"
	time.sleep(1.0)
	deleted = [m.topic for m in sub2.messages(since=mark2) if not m.payload and m.topic.endswith("/config")]
	assert not deleted, f"deleted after the restart: {deleted}"
	gw2.stop()
