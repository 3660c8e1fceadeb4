# SPDX-License-Identifier: MIT
"""Link quality per device, end to end (gateway/health.h).

A real NMEA stream into a pty: good sentences, sentences with a wrong
checksum and a line of noise. The real binary, against a real mosquitto, must
  - publish <base>/<device>/health retained, with exactly the checksum errors
    and the noise that were sent, and a quality that is good / (good + failed);
    a reopened port counts as a reconnect, not as a failed frame;
  - announce the link-quality entities to Home Assistant as diagnostic entities
    of that device, accepted by Home Assistant's rules (ha_rules.py);
  - show the same figures in the metrics file (read by prometheus_client) and in
    `sensorgate --status`, which reads the status file in RUNTIME_DIRECTORY and
    says "not running" (exit 3) once the daemon stopped or died.
"""

import json
import os
import subprocess
import time

from prometheus_client.parser import text_string_to_metric_families

import ha_rules
from conftest import gateway_config, sensorgate_bin, wait_until

STATUS = "test/gateway/gw1/status"
HEALTH = "test/gps/health"
GOOD = b"$GPVTG,120.0,T,,M,10.0,N,,K,A*11\r\n"
BAD_SUM = b"$GPVTG,120.0,T,,M,10.0,N,,K,A*12\r\n"  # checksum is 0x11
NOISE = b"\x01\x02 line noise \x7f\r\n"


def status(run_dir):
	cp = subprocess.run([sensorgate_bin(), "--status"], capture_output=True, timeout=10,
	                    env=dict(os.environ, RUNTIME_DIRECTORY=str(run_dir)))
	return cp.returncode, cp.stdout.decode(errors="replace"), cp.stderr.decode(errors="replace")


def metric(path, name, **labels):
	for fam in text_string_to_metric_families(path.read_text()):
		for s in fam.samples:
			if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
				return s.value
	return None


def test_link_quality(broker, make_pty, make_gateway, make_sub, tmp_path):
	run_dir = tmp_path / "run"
	run_dir.mkdir()
	prom = tmp_path / "sensorgate.prom"
	pty = make_pty("gps")
	dev = f'{{ name = "gps"; driver = "nmea"; port = "{pty.link}"; }}'
	extra = ('discovery: { enabled = true; };\n'
	         'health: { publish = true; interval = 1; window = 60; };\n'
	         f'metrics: {{ path = "{prom}"; interval = 1; }};\n')
	gw = make_gateway(gateway_config(broker.port, tmp_path, dev, extra=extra))
	sub = make_sub(broker.port, ["test/#", "homeassistant/#"], qos=1)
	gw.start(env={"RUNTIME_DIRECTORY": str(run_dir)})
	sub.wait_topic(STATUS, "online", timeout=15)
	gw.wait_open(pty)
	# good sentences until one is through: the port is open and flushed
	deadline = time.monotonic() + 15
	while not [m for m in sub.messages() if m.topic == "test/gps/course"]:
		assert time.monotonic() < deadline, "no reading from the gps"
		pty.write(GOOD)
		time.sleep(0.2)

	pty.write(GOOD * 5 + BAD_SUM * 3 + NOISE + GOOD * 2)

	def settled(m):
		if m.topic != HEALTH:
			return False
		h = json.loads(m.payload)
		return h["since_start"]["counts"]["checksum"] == 3 and h["since_start"]["counts"]["framing"] >= 1
	msg = sub.wait_for(settled, timeout=15)
	h = json.loads(msg.payload)
	assert h["up"] is True
	assert h["window_s"] == 60
	for span in ("recent", "since_start"):
		s = h[span]
		c = s["counts"]
		assert c["checksum"] == 3
		assert c["framing"] == 1, c  # the noise line, once
		assert c["timeout"] == c["io"] == c["implausible"] == c["lost"] == c["reconnects"] == 0
		assert s["failed"] == 4
		assert s["good"] >= 7  # at least the 7 good ones after the primer
		assert s["quality"] == round(100 * s["good"] / (s["good"] + 4), 1)
		assert s["seconds"] > 0
		assert abs(s["per_min"]["checksum"] / (3 * 60 / s["seconds"]) - 1) < 0.01
		assert abs(s["failed_per_min"] / (4 * 60 / s["seconds"]) - 1) < 0.01
	assert h["quality"] == h["recent"]["quality"] < 100

	# retained: a late subscriber gets it at once
	late = make_sub(broker.port, [HEALTH], qos=1)
	got = late.wait_topic(HEALTH, timeout=5)
	assert got.retain and json.loads(got.payload)["since_start"]["counts"]["checksum"] == 3

	# Home Assistant: diagnostic entities of the gps device, valid by HA's rules
	def config(obj):
		t = f"homeassistant/sensor/gw1/gps_{obj}/config"
		return json.loads(sub.wait_topic(t, timeout=10).payload)
	course = config("course")
	for obj, template in (("link_quality", "{{ value_json.quality }}"),
	                      ("link_errors", "{{ value_json.recent.failed_per_min }}"),
	                      ("link_reconnects", "{{ value_json.since_start.counts.reconnects }}")):
		c = config(obj)
		assert ha_rules.check("sensor", c) == [], (obj, ha_rules.check("sensor", c))
		assert c["entity_category"] == "diagnostic"
		assert c["state_topic"] == HEALTH
		assert c["value_template"] == template
		assert c["device"]["identifiers"] == course["device"]["identifiers"]
	assert config("link_quality")["unit_of_measurement"] == "%"

	# the metrics file: good frames and the quality ratio of the same window
	assert wait_until(lambda: prom.exists() and metric(prom, "sensorgate_device_link_quality_ratio",
	                                                   device="gps") is not None, 5)
	assert wait_until(lambda: abs(metric(prom, "sensorgate_device_link_quality_ratio", device="gps")
	                              - h["recent"]["quality"] / 100) < 0.0006, 5)
	assert metric(prom, "sensorgate_device_frames_good_total", device="gps") == h["since_start"]["good"]

	# --status: the same row, from the status file of the running daemon
	rc, out, err = status(run_dir)
	assert rc == 0, err
	row = [line.split() for line in out.splitlines() if line.startswith("gps ")]
	assert len(row) == 1, out
	assert row[0][1:5] == ["nmea", "yes", f'{h["recent"]["quality"]:.1f}%', f'{h["since_start"]["quality"]:.1f}%'], out
	assert "checksum" in out and "reconnects" in out
	assert float(row[0][6]) > 0  # checksum errors per minute
	assert os.stat(run_dir / "health").st_mode & 0o777 == 0o644

	# the port goes away and comes back: one reconnect, rated but not a frame
	pty.unplug()
	time.sleep(0.5)
	pty.replug()
	gw.wait_open(pty, timeout=15)
	msg = sub.wait_for(lambda m: m.topic == HEALTH and
	                   json.loads(m.payload)["since_start"]["counts"]["reconnects"] == 1, timeout=15)
	h2 = json.loads(msg.payload)
	assert h2["since_start"]["failed"] == 4 and h2["since_start"]["counts"]["checksum"] == 3
	assert h2["recent"]["per_min"]["reconnects"] > 0

	# stopped: the file goes and --status says so
	gw.stop()
	rc, out, err = status(run_dir)
	assert rc == 3 and "not running" in err, (rc, out, err)
	# died: a file left behind by a process that is gone
	dead = subprocess.Popen(["true"])
	dead.wait()
	(run_dir / "health").write_text(f"sensorgate 0.1.0 pid {dead.pid} interval 1 updated {int(time.time())}\nX\n")
	rc, out, err = status(run_dir)
	assert rc == 3 and f"process {dead.pid}" in err, (rc, out, err)
