# SPDX-License-Identifier: MIT
"""Old brokers and cloud brokers, emulated on 127.0.0.1.

  - protocol = "3.1": the gateway speaks MQTT 3.1 ("MQIsdp", protocol level 3),
    as mosquitto's log of the connection shows, and its readings arrive; a
    client id longer than 3.1's 23 characters is refused by --check.
  - tls.alpn: the protocol name is offered in the TLS handshake, as a test-side
    TLS listener (cloud_front.py, in front of mosquitto) that selects it sees.
"""

import re

import pytest

from cloud_front import CloudFront
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


@pytest.fixture
def front_factory():
	fronts = []

	def make(*args, **kw):
		f = CloudFront(*args, **kw)
		fronts.append(f)
		return f

	yield make
	for f in fronts:
		f.close()


def test_tls_alpn_offered(broker, tls_certs, front_factory, make_pty, make_gateway, make_sub, tmp_path):
	front = front_factory(broker.port, certfile=tls_certs["certfile"], keyfile=tls_certs["keyfile"],
	                      alpn=["x-amzn-mqtt-ca"])
	pty = make_pty("tty")
	ca = tls_certs["cafile"]
	cfg = gateway_config(front.port, tmp_path, sim_device(pty.link), scheme="mqtts",
	                     mqtt_extra=f'tls: {{ ca_file = "{ca}"; alpn = "x-amzn-mqtt-ca"; }};')
	gw = make_gateway(cfg)
	cp = gw.check()
	assert cp.returncode == 0 and "; ALPN x-amzn-mqtt-ca" in cp.stdout, cp.stdout + cp.stderr
	sub = make_sub(broker.port, ["test/#"])
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=15)
	assert front.connects and all(c.alpn == "x-amzn-mqtt-ca" for c in front.connects), front.connects
	gw.wait_open(pty)
	feed_until(pty, "t=20.5 h=41", sub, lambda m: m.topic == "test/room/temperature" and m.payload == b"20.5")
	gw.stop()


def test_tls_alpn_needs_tls(make_pty, make_gateway, tmp_path):
	pty = make_pty("tty")
	cfg = gateway_config(1883, tmp_path, sim_device(pty.link), mqtt_extra='tls: { alpn = "x-amzn-mqtt-ca"; };')
	cp = make_gateway(cfg).check()
	assert cp.returncode == 1
	line = next(i for i, t in enumerate(cfg.splitlines(), 1) if "alpn" in t)
	assert f"sensorgate.conf:{line}: \"alpn\" is a TLS setting, but the brokers are mqtt:// (no TLS)" in cp.stderr, \
		cp.stderr
