# SPDX-License-Identifier: MIT
"""Home Assistant MQTT discovery against a real broker.

The contract tested here (gateway/discovery.h):
  - with discovery enabled, every configured reading, actuator and the
    gateway's health entities get a retained config message (QoS 1) on
    homeassistant/<component>/<gateway id>/<object id>/config, exactly the
    topics `sensorgate --check` lists; each payload is a JSON object using
    only options the Home Assistant MQTT documentation defines, with the
    fields Home Assistant needs (name, unique_id, state_topic, command_topic
    for actuators, device with identifiers and name, origin) and stable
    unique_ids;
  - when Home Assistant announces "online" on homeassistant/status (its
    birth message, i.e. it restarted), everything is announced again, with
    the gateway's own "online"; "offline" and retained replays do not;
  - a device removed from the config while the gateway was stopped gets an
    empty retained config at the next start (which deletes the entity), and
    nothing else is deleted; disabling discovery deletes what was announced;
  - discovery.enabled = false on a fresh install publishes nothing at all
    under homeassistant/.
Checked against the Home Assistant MQTT documentation as in home-assistant.io
source/_integrations/mqtt.markdown at commit 0a314403e71f72c2 (2025; topics,
device/origin mappings, availability list, birth message, deletion by empty
payload) and the sensor/binary_sensor/switch/number/select pages of that tree;
default_entity_id per home-assistant/core PR 151775 (2025.10) and 151996.
"""

import json
import shutil
import subprocess
import re
import time

import pytest

from conftest import REPO, gateway_config, publish, sim_device, tail, wait_until

PREFIX = "homeassistant"
STATUS = "test/gateway/gw1/status"
LINE = "t=21.4 h=40.2"

# Options defined by the Home Assistant MQTT documentation, per component.
COMMON = {"name", "unique_id", "object_id", "default_entity_id", "availability", "availability_mode",
          "device", "origin", "qos", "entity_category", "state_topic", "value_template"}
ALLOWED = {
	"sensor": COMMON | {"unit_of_measurement", "device_class", "state_class",
	                    "suggested_display_precision", "expire_after"},
	"binary_sensor": COMMON | {"payload_on", "payload_off", "device_class", "expire_after"},
	"switch": COMMON | {"command_topic", "payload_on", "payload_off", "state_on", "state_off"},
	"number": COMMON | {"command_topic", "min", "max", "step", "unit_of_measurement"},
	"select": COMMON | {"command_topic", "options"},
}
DEVICE_KEYS = {"identifiers", "name", "manufacturer", "model", "sw_version", "via_device"}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
AVAIL_KEYS = {"topic", "payload_available", "payload_not_available"}
TOPIC_RE = re.compile(r"^homeassistant/([a-z_]+)/([A-Za-z0-9_-]+)/([A-Za-z0-9_-]+)/config$")
SLUG_RE = re.compile(r"^(?!_)(?!.*__)[a-z0-9_]+(?<!_)$")

ACTUATORS = """actuators = (
  {{ name = "heater"; driver = "serial"; port = "{port}"; on = "H1\\n"; off = "H0\\n"; }},
  {{ name = "fan"; driver = "serial"; port = "{port2}"; type = "number"; min = 0; max = 100; step = 5;
     set = "F{{value}}\\n"; }},
  {{ name = "mode"; driver = "serial"; port = "{port3}"; type = "enum"; options = ["eco", "comfort"];
     set = "M{{value}}\\n"; }}
);
"""

SECOND = """{{ name = "sim2"; driver = "lines"; port = "{port}"; baud = 9600; format = "kv";
    readings = ( {{ field = "co2"; unit = "ppm"; }}, {{ field = "v"; unit = "V"; payload = "json"; }} ); }}"""


def discovery(enabled=True, extra=""):
	return f'discovery: {{ enabled = {"true" if enabled else "false"}; {extra} }};\n'


def check_topics(gw):
	"""The discovery topics `sensorgate --check` lists, with their unique_ids."""
	cp = gw.check()
	assert cp.returncode == 0, cp.stderr
	out = {}
	for line in cp.stdout.splitlines():
		f = line.split()
		if len(f) == 3 and f[1].startswith(PREFIX + "/"):
			out[f[1]] = f[2]
	return out


def configs(sub, since=0):
	"""{topic: payload bytes} of the discovery messages received (last one wins)."""
	got = {}
	for m in sub.messages(since=since):
		if m.topic.startswith(PREFIX + "/") and m.topic.endswith("/config"):
			got[m.topic] = m.payload
	return got


def wait_configs(sub, topics, since=0, timeout=15.0):
	deadline = time.monotonic() + timeout
	while True:
		got = configs(sub, since)
		if set(topics) <= set(got):
			return got
		if time.monotonic() >= deadline:
			raise AssertionError(f"missing discovery configs: {sorted(set(topics) - set(got))}")
		time.sleep(0.05)


def validate(topic, payload, version):
	"""Every check that holds for any config message; returns the parsed dict."""
	m = TOPIC_RE.match(topic)
	assert m, topic
	component, node, _obj = m.groups()
	assert node == "gw1"
	cfg = json.loads(payload.decode("utf-8"))  # a real JSON parser, strict UTF-8
	assert isinstance(cfg, dict), topic
	extra = set(cfg) - ALLOWED[component]
	assert not extra, f"{topic}: options not in the documentation: {extra}"
	for k in ("name", "unique_id", "object_id", "default_entity_id", "state_topic", "device", "origin"):
		assert k in cfg, f"{topic}: no {k}"
	assert cfg["unique_id"].startswith("sensorgate_gw1_")
	assert SLUG_RE.match(cfg["object_id"]), cfg["object_id"]
	assert cfg["default_entity_id"] == f"{component}.{cfg['object_id']}"
	if component in ("switch", "number", "select"):
		assert cfg["command_topic"] == cfg["state_topic"] + "/set"
	dev = cfg["device"]
	assert set(dev) <= DEVICE_KEYS, dev
	assert isinstance(dev["identifiers"], list) and dev["identifiers"], dev
	assert dev["name"]
	assert set(cfg["origin"]) <= ORIGIN_KEYS
	assert cfg["origin"] == {"name": "sensorgate", "sw_version": version}
	for a in cfg.get("availability", []):
		assert set(a) <= AVAIL_KEYS and a["topic"]
		assert (a["payload_available"], a["payload_not_available"]) == ("online", "offline")
	if "availability_mode" in cfg:
		assert cfg["availability_mode"] == "all" and len(cfg["availability"]) == 2
	if component == "sensor" and "/gateway_" not in topic:
		assert "expire_after" not in cfg  # deadband/throttle would make live sensors expire
	return component, cfg


@pytest.fixture
def version(make_gateway, tmp_path):
	cp = make_gateway("", name="version").run("--version")
	return cp.stdout.split()[-1]


@pytest.fixture
def disc_rig(broker, make_pty, make_gateway, make_sub, tmp_path):
	"""Factory: a gateway with discovery on the test broker and a subscriber to homeassistant/#."""

	def start(devices=None, enabled=True, actuators=True, wait=True):
		pty = make_pty("tty")
		act_ptys = [make_pty(n) for n in ("act", "act2", "act3")]  # one port per actuator
		devs = devices.format(port=pty.link) if devices else sim_device(pty.link)
		extra = discovery(enabled) + (ACTUATORS.format(port=act_ptys[0].link, port2=act_ptys[1].link,
		                                               port3=act_ptys[2].link) if actuators else "")
		gw = make_gateway(gateway_config(broker.port, tmp_path, devs, extra=extra))
		sub = make_sub(broker.port, [PREFIX + "/#", "test/#"], qos=2)
		gw.start()
		if wait:
			sub.wait_topic(STATUS, "online", timeout=15)
		return pty, gw, sub

	return start


# --------------------------------------------------------------------------

def test_every_config_is_valid_and_complete(disc_rig, broker, make_sub, version):
	pty, gw, sub = disc_rig()
	expected = check_topics(gw)
	# 2 readings, 3 actuators, status + 4 stats entities
	assert len(expected) == 2 + 3 + 5, expected
	got = wait_configs(sub, expected)
	assert set(got) == set(expected), "published and --check topics differ"

	parsed = {}
	for topic, payload in got.items():
		component, cfg = validate(topic, payload, version)
		assert cfg["unique_id"] == expected[topic]
		parsed[topic] = (component, cfg)
	msgs = [m for m in sub.messages() if m.topic in expected]
	assert all(m.qos == 1 for m in msgs)

	# the temperature reading: inferred class, availability on gateway and device
	_, t = parsed["homeassistant/sensor/gw1/sim_t/config"]
	assert t["state_topic"] == "test/room/temperature"
	assert t["name"] == "temperature"
	assert (t["device_class"], t["unit_of_measurement"], t["state_class"]) == ("temperature", "°C", "measurement")
	# no expire_after on sim: nothing publishes test/sim/status, so only the gateway's counts
	assert [a["topic"] for a in t["availability"]] == [STATUS]
	assert "availability_mode" not in t
	assert t["device"]["identifiers"] == ["sensorgate_gw1_sim"]
	assert t["device"]["via_device"] == "sensorgate_gw1"
	# h has no unit: a plain sensor
	_, h = parsed["homeassistant/sensor/gw1/sim_h/config"]
	assert "device_class" not in h and "unit_of_measurement" not in h and "state_class" not in h

	# actuators, under the gateway device
	_, sw = parsed["homeassistant/switch/gw1/heater/config"]
	assert (sw["payload_on"], sw["payload_off"], sw["state_on"], sw["state_off"]) == ("ON", "OFF", "ON", "OFF")
	assert sw["command_topic"] == "test/heater/set"
	_, num = parsed["homeassistant/number/gw1/fan/config"]
	assert (num["min"], num["max"], num["step"]) == (0, 100, 5)
	_, sel = parsed["homeassistant/select/gw1/mode/config"]
	assert sel["options"] == ["eco", "comfort"]
	for topic in ("homeassistant/switch/gw1/heater/config", "homeassistant/sensor/gw1/gateway_spool_depth/config"):
		dev = parsed[topic][1]["device"]
		assert dev["identifiers"] == ["sensorgate_gw1"]
		assert dev["sw_version"] == version and dev["manufacturer"] == "sensorgate"

	# health: connectivity on the status topic, stats fields from the stats topic
	_, st = parsed["homeassistant/binary_sensor/gw1/gateway_status/config"]
	assert (st["state_topic"], st["payload_on"], st["payload_off"]) == (STATUS, "online", "offline")
	assert st["device_class"] == "connectivity" and "availability" not in st
	for field in ("readings_per_s", "spool_depth", "dropped"):
		_, s = parsed[f"homeassistant/sensor/gw1/gateway_{field}/config"]
		assert s["state_topic"] == "test/gateway/gw1/stats"
		assert s["value_template"] == f"{{{{ value_json.{field} }}}}"
		assert s["entity_category"] == "diagnostic"

	# retained: Home Assistant starting later still finds them all
	late = make_sub(broker.port, [PREFIX + "/#"], qos=1)
	late_got = wait_configs(late, expected, timeout=5)
	assert all(m.retain for m in late.messages() if m.topic in expected)
	assert late_got == got
	gw.stop()


def test_home_assistant_restart_triggers_reannouncement(disc_rig, broker):
	pty, gw, sub = disc_rig()
	expected = check_topics(gw)
	wait_configs(sub, expected)

	# Home Assistant going away, or its birth replayed as retained, is no restart.
	mark = sub.mark()
	publish(broker.port, PREFIX + "/status", "offline")
	publish(broker.port, PREFIX + "/status", "online", retain=True)  # live: this one counts
	t0 = time.monotonic()
	got = wait_configs(sub, expected, since=mark, timeout=10)
	took = time.monotonic() - t0
	assert set(got) == set(expected)
	sub.wait_topic(STATUS, "online", since=mark, timeout=5)
	# announced once, after a short random delay (at most ~2.2 s)
	assert took < 5, took
	time.sleep(0.5)
	counts = {}
	for m in sub.messages(since=mark):
		counts[m.topic] = counts.get(m.topic, 0) + 1
	assert all(counts[t] == 1 for t in expected), counts

	# A new subscription replays the retained "online": not a restart.
	gw.stop()  # clears nothing: configs stay retained
	mark = sub.mark()
	gw.start()
	sub.wait_topic(STATUS, "online", since=mark, timeout=15)
	wait_configs(sub, expected, since=mark)
	time.sleep(3)  # longer than the largest re-announcement delay
	counts = {}
	for m in sub.messages(since=mark):
		counts[m.topic] = counts.get(m.topic, 0) + 1
	assert all(counts[t] == 1 for t in expected), counts

	# a real restart again, with several birth messages in a burst: one re-announcement
	mark = sub.mark()
	for _ in range(3):
		publish(broker.port, PREFIX + "/status", "online")
	wait_configs(sub, expected, since=mark, timeout=10)
	time.sleep(3)
	counts = {}
	for m in sub.messages(since=mark):
		counts[m.topic] = counts.get(m.topic, 0) + 1
	assert all(counts[t] == 1 for t in expected), counts
	gw.stop()


def test_broker_restart_reannounces(disc_rig, broker, make_sub):
	"""A broker without persistence forgets retained configs; reconnecting brings them back."""
	pty, gw, sub = disc_rig(actuators=False)
	expected = check_topics(gw)
	wait_configs(sub, expected)
	broker.restart(down_for=0.5)
	deadline = time.monotonic() + 20
	while True:
		late = make_sub(broker.port, [PREFIX + "/#", STATUS], qos=1)
		try:
			late.wait_topic(STATUS, "online", timeout=3)
			got = wait_configs(late, expected, timeout=3)
			break
		except AssertionError:
			late.close()
			if time.monotonic() >= deadline:
				raise
	assert set(got) == set(expected)
	# and retained again: a Home Assistant connecting now finds them
	final = make_sub(broker.port, [PREFIX + "/#"], qos=1)
	wait_configs(final, expected, timeout=5)
	assert all(m.retain for m in final.messages() if m.topic in expected)
	gw.assert_alive()
	gw.stop()


def test_removed_device_is_deleted_at_next_start(broker, make_pty, make_gateway, make_sub, tmp_path, version):
	pty, pty2 = make_pty("tty"), make_pty("tty2")
	both = sim_device(pty.link) + ", " + SECOND.format(port=pty2.link)
	gw = make_gateway(gateway_config(broker.port, tmp_path, both, extra=discovery()))
	sub = make_sub(broker.port, [PREFIX + "/#"], qos=2)
	gw.start()
	before = check_topics(gw)
	gone = {t for t in before if "/sim2_" in t}
	assert gone == {"homeassistant/sensor/gw1/sim2_co2/config", "homeassistant/sensor/gw1/sim2_v/config"}
	got = wait_configs(sub, before)
	_, co2 = validate("homeassistant/sensor/gw1/sim2_co2/config", got["homeassistant/sensor/gw1/sim2_co2/config"],
	                  version)
	assert co2["device_class"] == "carbon_dioxide"
	_, v = validate("homeassistant/sensor/gw1/sim2_v/config", got["homeassistant/sensor/gw1/sim2_v/config"], version)
	assert v["value_template"] == "{{ value_json.value }}"
	gw.stop()
	state = (tmp_path / "discovery-gw1.state").read_text()
	assert all(t in state for t in before)

	# sim2 removed while the gateway was stopped
	gw.conf.write_text(gateway_config(broker.port, tmp_path, sim_device(pty.link), extra=discovery()))
	after = check_topics(gw)
	assert set(after) == set(before) - gone
	mark = sub.mark()
	gw.start()
	wait_configs(sub, after, since=mark)
	for t in gone:
		m = sub.wait_topic(t, b"", since=mark, timeout=10)
		assert m.qos == 1
	time.sleep(0.5)
	deleted = {m.topic for m in sub.messages(since=mark) if m.payload == b""}
	assert deleted == gone  # nothing else deleted
	state = (tmp_path / "discovery-gw1.state").read_text()
	assert not any(t in state for t in gone)

	# the broker no longer holds them: a late Home Assistant does not see them
	late = make_sub(broker.port, [PREFIX + "/#"], qos=1)
	wait_configs(late, after, timeout=5)
	time.sleep(0.5)
	assert set(configs(late)) == set(after)

	# a second restart with the same config deletes nothing more
	gw.stop()
	mark = sub.mark()
	gw.start()
	wait_configs(sub, after, since=mark)
	time.sleep(0.5)
	assert not [m for m in sub.messages(since=mark) if m.payload == b""]
	gw.stop()


def test_disabled_publishes_nothing(disc_rig, broker):
	pty, gw, sub = disc_rig(enabled=False)
	assert "discovery disabled" in gw.check().stdout
	pty.write_line(LINE)
	time.sleep(1.0)
	publish(broker.port, PREFIX + "/status", "online")  # no subscription, no reaction
	time.sleep(3.0)
	gw.stop()
	ours = [m for m in sub.messages() if m.topic.startswith(PREFIX + "/") and m.topic != PREFIX + "/status"]
	assert not ours
	assert sub.messages(PREFIX + "/status")  # the test's birth message did arrive


def test_disabling_deletes_what_was_announced(disc_rig, broker):
	pty, gw, sub = disc_rig()
	expected = check_topics(gw)
	wait_configs(sub, expected)
	gw.stop()
	gw.conf.write_text(gw.conf.read_text().replace("enabled = true", "enabled = false"))
	mark = sub.mark()
	gw.start()
	for t in expected:
		sub.wait_topic(t, b"", since=mark, timeout=10)
	time.sleep(0.5)
	assert not [m for m in sub.messages(since=mark) if m.topic.startswith(PREFIX + "/") and m.payload]
	gw.stop()


# --------------------------------------------------------------------------
# The shipped examples the walkthrough (README.md, Home Assistant) relies on.

def test_example_config_announces_what_the_walkthrough_says(broker, make_pty, make_gateway, make_sub, tmp_path,
                                                            version):
	ard, relay = make_pty("ard"), make_pty("relay")
	text = (REPO / "config" / "examples" / "home-assistant.conf").read_text(encoding="utf-8")
	text = text.replace("/dev/serial/by-id/usb-Arduino_LLC_Arduino_Uno_1234-if00", str(ard.link))
	text = text.replace("/dev/serial/by-id/usb-relay-board-if00", str(relay.link))
	text = text.replace("mqtt://homeassistant.local:1883", f"mqtt://127.0.0.1:{broker.port}")
	text += f'spool: {{ path = "{tmp_path}/spool.db"; }};\n'
	gw = make_gateway(text)
	topics = check_topics(gw)
	assert len(topics) == 10, topics
	sub = make_sub(broker.port, [PREFIX + "/#"], qos=2)
	gw.start()
	got = wait_configs(sub, topics)
	cls = {}
	for topic, payload in got.items():
		m = TOPIC_RE.match(topic)
		cfg = json.loads(payload)
		assert m.group(2) == "pi-livingroom"
		assert set(cfg) <= ALLOWED[m.group(1)]
		cls[m.group(3)] = (cfg.get("device_class"), cfg.get("unit_of_measurement"), cfg.get("state_class"))
	assert cls["arduino_t"] == ("temperature", "°C", "measurement")
	assert cls["arduino_h"] == ("humidity", "%", "measurement")
	assert cls["arduino_co2"] == ("carbon_dioxide", "ppm", "measurement")
	assert cls["arduino_soil"] == ("moisture", "%", "measurement")  # a hand-set class gets its statistics too
	t = json.loads(got["homeassistant/sensor/pi-livingroom/arduino_t/config"])
	assert t["default_entity_id"] == "sensor.pi_livingroom_arduino_t"
	assert t["suggested_display_precision"] == 1 and "expire_after" not in t
	# expire_after = 300 on the device: its status topic joins the gateway's
	assert [a["topic"] for a in t["availability"]] == ["sensorgate/gateway/pi-livingroom/status",
	                                                   "sensorgate/arduino/status"]
	assert t["availability_mode"] == "all"
	assert t["state_topic"] == "sensorgate/livingroom/temperature"
	sw = json.loads(got["homeassistant/switch/pi-livingroom/heater/config"])
	assert sw["command_topic"] == "sensorgate/heater/set"
	# logged once every config went out: the subscriber may see them first (bounded wait)
	assert wait_until(lambda: "discovery: announced 10 entities" in gw.stderr_text(), 5), tail(gw.stderr_text())
	gw.stop()


def test_node_red_flow_example_is_a_valid_flow():
	flow = json.loads((REPO / "config" / "examples" / "node-red-flow.json").read_text(encoding="utf-8"))
	assert isinstance(flow, list)
	nodes = {n["id"]: n for n in flow}
	assert len(nodes) == len(flow), "duplicate node ids"
	tabs = [n for n in flow if n["type"] == "tab"]
	assert len(tabs) == 1
	brokers = [n for n in flow if n["type"] == "mqtt-broker"]
	assert len(brokers) == 1 and brokers[0]["broker"] and brokers[0]["port"]
	for n in flow:
		if n["type"] in ("tab", "mqtt-broker"):
			assert "z" not in n and "wires" not in n
			continue
		assert n["z"] == tabs[0]["id"], n["id"]
		assert isinstance(n["x"], int) and isinstance(n["y"], int)
		for port in n["wires"]:
			for target in port:
				assert target in nodes and nodes[target].get("z") == tabs[0]["id"], target
		if n["type"] in ("mqtt in", "mqtt out"):
			assert n["broker"] == brokers[0]["id"]
			assert n["qos"] in ("0", "1", "2")
	by_type = {}
	for n in flow:
		by_type.setdefault(n["type"], []).append(n)
	ins = {n["topic"] for n in by_type["mqtt in"]}
	outs = {n["topic"] for n in by_type["mqtt out"]}
	# reads a sensor topic, publishes to an actuator's /set topic, as the example config names them
	assert "sensorgate/livingroom/temperature" in ins
	assert outs == {"sensorgate/heater/set"}
	assert by_type["mqtt out"][0]["retain"] == "false"
	assert by_type["function"] and by_type["switch"]
	fn = by_type["function"][0]
	assert fn["outputs"] == 1 and "ON" in fn["func"] and "OFF" in fn["func"]
	assert by_type["switch"][0]["outputs"] == len(by_type["switch"][0]["rules"])


@pytest.mark.skipif(not shutil.which("node"), reason="node (Node.js) not installed")
def test_node_red_function_switches_with_hysteresis(tmp_path):
	"""Run the flow's function body the way Node-RED does, on a sequence of readings."""
	flow = json.loads((REPO / "config" / "examples" / "node-red-flow.json").read_text(encoding="utf-8"))
	fn = next(n for n in flow if n["type"] == "function")
	harness = tmp_path / "run.js"
	harness.write_text(
		"const store = {};\n"
		"const context = { get: (k) => store[k], set: (k, v) => { store[k] = v; } };\n"
		"const node = { status: () => {} };\n"
		"const f = new Function('msg', 'context', 'node', " + json.dumps(fn["func"]) + ");\n"
		"const inputs = JSON.parse(process.argv[2]);\n"
		"const out = inputs.map((p) => { const r = f({ payload: p }, context, node); return r ? r.payload : null; });\n"
		"console.log(JSON.stringify(out));\n")
	inputs = ["20.5", "19.9", "19.5", "20.5", '{"value":21.2,"unit":"°C"}', "21.5", "garbage", "19.0"]
	cp = subprocess.run(["node", str(harness), json.dumps(inputs)], capture_output=True, text=True, timeout=30)
	assert cp.returncode == 0, cp.stderr
	assert json.loads(cp.stdout) == [None, "ON", None, None, "OFF", None, None, "ON"]
