# SPDX-License-Identifier: MIT
"""Old brokers and cloud brokers, emulated on 127.0.0.1.

  - protocol = "3.1": the gateway speaks MQTT 3.1 ("MQIsdp", protocol level 3),
    as mosquitto's log of the connection shows, and its readings arrive; a
    client id longer than 3.1's 23 characters is refused by --check.
"""

import re

from conftest import feed_until, gateway_config, sim_device

STATUS = "test/gateway/gw1/status"


def test_protocol_31_connects_as_mqisdp(broker, make_pty, make_gateway, make_sub, tmp_path):
	pty = make_pty("tty")
	gw = make_gateway(gateway_config(broker.port, tmp_path, sim_device(pty.link), protocol="3.1"))
	sub = make_sub(broker.port, ["test/#"], protocol="3.1.1")
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=15)
	gw.wait_open(pty)
	m = feed_until(pty, "t=21.5 h=40", sub, lambda m: m.topic == "test/room/temperature")
	assert m.payload == b"21.5" and m.qos == 1
	# mosquitto logs the protocol it parsed from the CONNECT: p1 is its mosq_p_mqtt31 (name "MQIsdp", level 3)
	assert re.search(r"New client connected from \S+ as sensorgate-gw1 \(p1, ", broker.log_text()), broker.log_text()
	assert "(MQTT 3.1)" in gw.stderr_text()
	gw.stop()


def test_protocol_31_long_client_id_refused(make_pty, make_gateway, tmp_path):
	pty = make_pty("tty")
	cfg = gateway_config(1883, tmp_path, sim_device(pty.link), protocol="3.1",
	                     mqtt_extra='client_id = "a-client-id-of-24-bytes!";')
	gw = make_gateway(cfg)
	cp = gw.check()
	assert cp.returncode == 1
	line = next(i for i, t in enumerate(cfg.splitlines(), 1) if "client_id" in t)
	assert f"sensorgate.conf:{line}: client id \"a-client-id-of-24-bytes!\" is 24 bytes; MQTT 3.1 allows at most 23" \
		in cp.stderr, cp.stderr
