# SPDX-License-Identifier: MIT
"""The metrics file and the configurable availability words, end to end.

  - metrics.path: a Prometheus text file that a real parser
    (prometheus_client.parser, Debian's python3-prometheus-client) reads,
    complete at every moment (rewritten by rename), mode 0644, its counters
    following the readings, its MQTT state and spool depth following a
    broker outage;
  - gateway.status_topic / payload_online / payload_offline: the broker
    delivers the configured birth on connect and the configured Last Will when
    the gateway is killed with SIGKILL; Home Assistant's discovery
    availability speaks the same words.
"""

import json
import os
import stat
import time

from prometheus_client.parser import text_string_to_metric_families

from conftest import gateway_config, sim_device, wait_until

STATUS = "test/gateway/gw1/status"


def read_metrics(path):
	"""{(name, (label pairs)): value} of the file, parsed by prometheus_client; {} if it is not there yet."""
	try:
		text = path.read_text()
	except FileNotFoundError:
		return {}
	out = {}
	for fam in text_string_to_metric_families(text):
		for s in fam.samples:
			out[(s.name, tuple(sorted(s.labels.items())))] = s.value
	return out


def value(m, name, **labels):
	return m.get((name, tuple(sorted(labels.items()))))


def test_metrics_file_follows_readings_and_the_broker(broker, make_pty, make_gateway, make_sub, tmp_path):
	pty = make_pty("sim")
	prom = tmp_path / "textfile" / "sensorgate.prom"
	prom.parent.mkdir()
	gw = make_gateway(gateway_config(broker.port, tmp_path, sim_device(pty.link),
	                                 extra=f'metrics: {{ path = "{prom}"; interval = 1; }};\n'))
	sub = make_sub(broker.port, ["test/#"], qos=1)
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=15)
	gw.wait_open(pty)
	assert wait_until(lambda: value(read_metrics(prom), "sensorgate_mqtt_connected",
	                                broker=f"mqtt://127.0.0.1:{broker.port}") == 1, 10), gw.stderr_text()
	m = read_metrics(prom)
	assert value(m, "sensorgate_build_info", version="0.1.0") == 1
	assert value(m, "sensorgate_device_up", device="sim", driver="lines") == 1
	assert value(m, "sensorgate_spool_open") == 1
	start = value(m, "sensorgate_readings_total")
	assert start == 0 and value(m, "sensorgate_device_readings_total", device="sim", driver="lines") == 0
	assert stat.S_IMODE(os.stat(prom).st_mode) == 0o644  # node_exporter runs as another user
	assert sorted(os.listdir(prom.parent)) == ["sensorgate.prom"]  # no temporary file left

	for i in range(5):
		pty.write_line(f"t={20 + i} h=40")
		sub.wait_topic("test/room/temperature", f"{20 + i}")
	assert wait_until(lambda: value(read_metrics(prom), "sensorgate_readings_total") == 10, 5)
	m = read_metrics(prom)
	assert value(m, "sensorgate_device_readings_total", device="sim", driver="lines") == 10
	assert value(m, "sensorgate_published_total") >= 10
	assert value(m, "sensorgate_dropped_total") == 0
	assert value(m, "sensorgate_uptime_seconds") > 0
	assert value(m, "sensorgate_mqtt_connects_total") == 1

	# the broker goes away: the state says so, the readings wait in the spool
	broker.stop()
	assert wait_until(lambda: value(read_metrics(prom), "sensorgate_mqtt_connected",
	                                broker=f"mqtt://127.0.0.1:{broker.port}") == 0, 10)
	for i in range(3):
		pty.write_line(f"t={30 + i} h=41")
		time.sleep(0.05)
	assert wait_until(lambda: (value(read_metrics(prom), "sensorgate_spool_depth_messages") or 0) >= 6, 10), \
		read_metrics(prom)
	# every version of the file is whole: read it while it is being replaced (a torn file fails the parser
	# or misses the last metric)
	deadline = time.monotonic() + 2.5
	reads = 0
	while time.monotonic() < deadline:
		m = read_metrics(prom)
		assert ("sensorgate_actuator_up", ()) not in m  # no actuators configured
		assert value(m, "sensorgate_device_errors_total", device="sim", driver="lines", reason="lost") == 0
		reads += 1
	assert reads > 10

	broker.start()
	assert wait_until(lambda: value(read_metrics(prom), "sensorgate_spool_depth_messages") == 0, 15)
	m = read_metrics(prom)
	assert value(m, "sensorgate_mqtt_connected", broker=f"mqtt://127.0.0.1:{broker.port}") == 1
	assert value(m, "sensorgate_mqtt_connects_total") == 2
	assert value(m, "sensorgate_readings_total") == 16
	gw.stop()
	m = read_metrics(prom)  # the last counters, written at the stop
	assert value(m, "sensorgate_mqtt_connected", broker=f"mqtt://127.0.0.1:{broker.port}") == 0


def test_configured_birth_and_last_will(broker, make_pty, make_gateway, make_sub, tmp_path):
	pty = make_pty("sim")
	cfg = gateway_config(broker.port, tmp_path, sim_device(pty.link).replace('format = "kv";', 'format = "kv"; expire_after = 60;'),
	                     extra='discovery: { enabled = true; };\n')
	cfg = cfg.replace('gateway: { id = "gw1"; base_topic = "test"; };',
	                  'gateway: { id = "gw1"; base_topic = "test"; status_topic = "tele/gw1/LWT";\n'
	                  '  payload_online = "Online"; payload_offline = "Offline"; };')
	assert "tele/gw1/LWT" in cfg
	gw = make_gateway(cfg)
	check = gw.check()
	assert check.returncode == 0, check.stderr
	assert 'status    tele/gw1/LWT (retained; "Online" on connect, "Offline" as Last Will)' in check.stdout
	sub = make_sub(broker.port, ["tele/#", "homeassistant/#", "test/#"], qos=1)
	gw.start()
	birth = sub.wait_topic("tele/gw1/LWT", "Online", timeout=15)
	assert birth.qos == 1
	assert sub.messages(STATUS) == []  # the default topic is not used

	# discovery: every availability entry is the configured topic and words
	cfgs = {}
	wanted = {"homeassistant/binary_sensor/gw1/gateway_status/config", "homeassistant/sensor/gw1/sim_t/config"}
	# every entry the assertions read, not a count: the gateway's own entries come first
	assert wait_until(lambda: wanted <= {m.topic for m in sub.messages()}, 10)
	for m in sub.messages():
		if m.topic.startswith("homeassistant/") and m.topic.endswith("/config") and m.payload:
			cfgs[m.topic] = json.loads(m.payload)
	status = cfgs["homeassistant/binary_sensor/gw1/gateway_status/config"]
	assert (status["state_topic"], status["payload_on"], status["payload_off"]) == ("tele/gw1/LWT", "Online",
	                                                                                  "Offline")
	temp = cfgs["homeassistant/sensor/gw1/sim_t/config"]
	assert [(a["topic"], a["payload_available"], a["payload_not_available"]) for a in temp["availability"]] == [
		("tele/gw1/LWT", "Online", "Offline"), ("test/sim/status", "Online", "Offline")]

	# the device status topic (expire_after) uses the same words
	m0 = sub.mark()
	pty.write_line("t=21 h=40")
	sub.wait_topic("test/sim/status", "Online", since=m0)

	m1 = sub.mark()
	gw.kill9()  # no goodbye: only the broker can say it
	will = sub.wait_topic("tele/gw1/LWT", "Offline", since=m1, timeout=15)
	assert will.qos == 1
	late = make_sub(broker.port, ["tele/gw1/LWT"], qos=1)
	assert late.wait_topic("tele/gw1/LWT", timeout=5).payload == b"Offline"  # retained
