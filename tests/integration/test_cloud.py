# SPDX-License-Identifier: MIT
"""Old brokers and cloud brokers, emulated on 127.0.0.1.

  - protocol = "3.1": the gateway speaks MQTT 3.1 ("MQIsdp", protocol level 3),
    as mosquitto's log of the connection shows, and its readings arrive; a
    client id longer than 3.1's 23 characters is refused by --check.
  - tls.alpn: the protocol name is offered in the TLS handshake, as a test-side
    TLS listener (cloud_front.py, in front of mosquitto) that selects it sees.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import time
import urllib.parse

import pytest

from cloud_front import CloudFront
from conftest import feed_until, gateway_config, publish, sim_device, wait_until

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


# --------------------------------------------------------------------------
# Azure IoT Hub, emulated: mosquitto with an ACL that allows only the hub's
# topics for the device (its client id), behind a TLS front that checks the
# SAS token of every CONNECT with the key, as the hub does, and cuts the
# connection when that token expires.

HUB = "sg-test-hub.azure-devices.net"
DEV = "pi-kitchen"
EVENTS = f"devices/{DEV}/messages/events/$.ct=application%2Fjson&$.ce=utf-8&device=sim"
REPORTED = "$iothub/twin/PATCH/properties/reported/"

AZURE_ACL = """user tester
topic readwrite #
topic readwrite $iothub/#

pattern write devices/%c/messages/events/#
pattern read devices/%c/messages/devicebound/#
pattern read $iothub/twin/PATCH/properties/desired/#
pattern write $iothub/twin/PATCH/properties/reported/#
pattern read $iothub/twin/res/#
pattern write $iothub/twin/GET/#
"""


def sas_fields(token):
	assert token.startswith("SharedAccessSignature "), token
	return dict(kv.split("=", 1) for kv in token[len("SharedAccessSignature "):].split("&"))


def sas_verdict(c, key):
	"""Why the hub would refuse this CONNECT, or None: the token checked as Microsoft documents it."""
	if c.client_id != DEV:
		return f"client id {c.client_id!r}"
	if c.username != f"{HUB}/{DEV}/?api-version=2021-04-12":
		return f"user name {c.username!r}"
	if c.level != 4:
		return f"protocol level {c.level}"
	f = sas_fields(c.password or "")
	if set(f) != {"sr", "sig", "se"}:
		return f"token fields {sorted(f)}"
	sr = urllib.parse.quote(f"{HUB}/devices/{DEV}", safe="")
	if f["sr"] != sr:
		return f"sr {f['sr']!r}"
	want = base64.b64encode(hmac.new(key, f"{sr}\n{f['se']}".encode(), hashlib.sha256).digest()).decode()
	if urllib.parse.unquote(f["sig"]) != want or f["sig"] != urllib.parse.quote(want, safe=""):
		return f"signature {f['sig']!r}"
	if int(f["se"]) <= time.time():
		return f"expired token (se {f['se']})"
	return None


def azure_setup(broker_factory, front_factory, tls_certs, tmp_path, lifetime=None):
	key = os.urandom(32)
	keyfile = tmp_path / "device.key"
	keyfile.write_text(base64.b64encode(key).decode() + "\n")
	keyfile.chmod(0o600)
	acl = tmp_path / "acl"
	acl.write_text(AZURE_ACL)
	broker = broker_factory(extra_conf=f"acl_file {acl}")
	front = front_factory(broker.port, certfile=tls_certs["certfile"], keyfile=tls_certs["keyfile"],
	                      check_connect=lambda c: sas_verdict(c, key), drop_qos2=True,
	                      expires=lambda c: int(sas_fields(c.password)["se"]))
	mqtt = (f'cloud = "azure-iot-hub"; hub = "{HUB}"; device_id = "{DEV}"; device_key_file = "{keyfile}";\n'
	        f'        tls: {{ ca_file = "{tls_certs["cafile"]}"; }};'
	        + (f" sas_lifetime = {lifetime};" if lifetime else ""))
	return key, broker, front, mqtt


def azure_config(front, tmp_path, pty, mqtt, extra=""):
	cfg = gateway_config(front.port, tmp_path, sim_device(pty.link), scheme="mqtts", mqtt_extra=mqtt, extra=extra)
	return cfg.replace(' protocol = "5";', "")


LIGHT = ('actuators = ( {{ name = "light"; driver = "serial"; port = "{port}"; baud = 9600;\n'
         '   on = "L=1\\n"; off = "L=0\\n"; initial = "OFF"; }} );\n')
LIGHTS = ('actuators = ( {{ name = "light"; driver = "serial"; port = "{port}"; baud = 9600;\n'
          '   on = "L=1\\n"; off = "L=0\\n"; initial = "OFF"; }},\n'
          '  {{ name = "lamp"; driver = "serial"; port = "{port2}"; baud = 9600;\n'
          '   on = "M=1\\n"; off = "M=0\\n"; initial = "OFF"; }} );\n')


def test_azure_iot_hub(broker_factory, front_factory, tls_certs, make_pty, make_gateway, make_sub, tmp_path):
	key, broker, front, mqtt = azure_setup(broker_factory, front_factory, tls_certs, tmp_path)
	pty, relay, relay2 = make_pty("tty"), make_pty("relay"), make_pty("relay2")
	# this host's clock is right, whatever its NTP state says (README, Measurement time): readings carry "ts"
	gw = make_gateway(azure_config(front, tmp_path, pty, mqtt, extra=LIGHTS.format(port=relay.link, port2=relay2.link)
	                               + 'time: { trust = "always"; };\n'))
	cp = gw.check()
	assert cp.returncode == 0, cp.stdout + cp.stderr
	assert f"cloud     Azure IoT Hub {HUB}, device {DEV}" in cp.stdout
	sub = make_sub(broker.port, ["devices/#", REPORTED + "#", "$iothub/twin/GET/#"], protocol="3.1.1",
	               username="tester")
	gw.start()
	# the identity, the SAS token and TLS, as the front checked them
	assert front.wait(lambda: front.connects, 15), gw.stderr_text()
	c = front.connects[0]
	assert not front.refused, front.refused
	assert sas_verdict(c, key) is None
	assert 3000 < int(sas_fields(c.password)["se"]) - c.t <= 3601  # sas_lifetime's default, an hour
	assert c.flags & 0x04 == 0, "no Last Will: the hub takes only its own topics"
	# the actuators' initial states, reported as twin properties
	for name in ("light", "lamp"):
		sub.wait_for(lambda m: m.topic.startswith(REPORTED + "?$rid=") and json.loads(m.payload) == {name: "OFF"},
		             timeout=10)
	# the whole twin, asked for after connecting (the test answers as the hub): a desired state that differs
	# from the gateway's own is carried out, one that does not is left alone (the hub's "reported" is stale)
	m = sub.wait_for(lambda m: m.topic.startswith("$iothub/twin/GET/?$rid="), timeout=10)
	rid = m.topic.split("$rid=")[1]
	publish(broker.port, f"$iothub/twin/res/200/?$rid={rid}",
	        json.dumps({"desired": {"light": "ON", "lamp": "OFF", "$version": 3},
	                    "reported": {"light": "ON", "lamp": "ON", "$version": 2}}), qos=1, protocol="3.1.1", user="tester")
	assert wait_until(lambda: relay.received().endswith(b"L=1\n"), 10), relay.received()
	sub.wait_for(lambda m: m.topic.startswith(REPORTED) and json.loads(m.payload) == {"light": "ON"}, timeout=10)
	assert relay2.received() == b"M=0\n", relay2.received()
	# readings of one line: one JSON message with units and times, at the QoS of the most demanding, never retained
	gw.wait_open(pty)
	m = feed_until(pty, "t=21.5 h=40", sub, lambda m: m.topic == EVENTS)
	body = json.loads(m.payload)
	assert body["device"] == "sim" and set(body["readings"]) == {"t", "h"}, body
	assert body["readings"]["t"]["value"] == 21.5 and body["readings"]["t"]["unit"] == "°C"
	assert body["readings"]["h"]["value"] == 40
	assert all(r["ts"].endswith("Z") for r in body["readings"].values())
	assert m.qos == 1 and not m.retain
	assert all(t.startswith(f"devices/{DEV}/messages/events/") or t.startswith(REPORTED) or
	           t.startswith("$iothub/twin/GET/?$rid=") for t, _q, _r, _p in front.publishes), front.publishes
	assert all(q < 2 for _t, q, _r, _p in front.publishes) and front.qos2_drops == 0
	# a cloud-to-device message and a desired-properties patch move the actuator; its state is reported
	mark = sub.mark()
	publish(broker.port, f"devices/{DEV}/messages/devicebound/%24.mid=1&%24.to=%2Fdevices%2F{DEV}%2Fmessages%2Fdevicebound",
	        json.dumps({"light": "OFF"}), qos=1, protocol="3.1.1", user="tester")
	assert wait_until(lambda: relay.received().endswith(b"L=0\n"), 10), relay.received()
	m = sub.wait_for(lambda m: m.topic.startswith(REPORTED) and json.loads(m.payload) == {"light": "OFF"},
	                 since=mark, timeout=10)
	mark = sub.mark()
	publish(broker.port, "$iothub/twin/PATCH/properties/desired/?$version=4", '{"light":"ON","$version":4}',
	        qos=1, protocol="3.1.1", user="tester")
	assert wait_until(lambda: relay.received().endswith(b"L=1\n") and relay.received().count(b"L=1") == 2, 10), \
		relay.received()
	sub.wait_for(lambda m: m.topic.startswith(REPORTED) and json.loads(m.payload) == {"light": "ON"},
	             since=mark, timeout=10)
	# a reload keeps the profile: readings still go out as the hub wants them, on the same connection
	gw.proc.send_signal(signal.SIGHUP)
	assert wait_until(lambda: "reload: " in gw.stderr_text() and " applied" in gw.stderr_text(), 10), \
		gw.stderr_text()[-2000:]
	mark = sub.mark()
	m = feed_until(pty, "t=22.5 h=41", sub, lambda m: m.topic == EVENTS, since=mark)
	assert json.loads(m.payload)["readings"]["t"]["value"] == 22.5
	assert len(front.connects) == 1 and front.expired_cuts == 0
	gw.stop()


def test_azure_qos2_refused(make_pty, make_gateway, tmp_path):
	keyfile = tmp_path / "device.key"
	keyfile.write_text(base64.b64encode(b"k" * 32).decode() + "\n")
	pty = make_pty("tty")
	cfg = gateway_config(8883, tmp_path, sim_device(pty.link).replace("qos = 1;", "qos = 2;"), scheme="mqtts",
	                     mqtt_extra=f'cloud = "azure-iot-hub"; hub = "{HUB}"; device_id = "{DEV}"; '
	                                f'device_key_file = "{keyfile}";').replace(' protocol = "5";', "")
	cp = make_gateway(cfg).check()
	assert cp.returncode == 1
	line = next(i for i, t in enumerate(cfg.splitlines(), 1) if "qos = 2" in t)
	assert f"sensorgate.conf:{line}: qos 2: cloud = \"azure-iot-hub\" takes QoS 0 and 1 only" in cp.stderr, cp.stderr


def test_azure_sas_renewed_nothing_lost(broker_factory, front_factory, tls_certs, make_pty, make_gateway, make_sub,
                                        tmp_path):
	"""Tokens valid 3 s: the gateway reconnects with a new one before the front (the hub) cuts it, and every
	reading written meanwhile arrives."""
	key, broker, front, mqtt = azure_setup(broker_factory, front_factory, tls_certs, tmp_path, lifetime=3)
	pty = make_pty("tty")
	gw = make_gateway(azure_config(front, tmp_path, pty, mqtt))
	sub = make_sub(broker.port, ["devices/#"], protocol="3.1.1", username="tester")
	gw.start()
	gw.wait_open(pty)
	feed_until(pty, "t=0", sub, lambda m: m.topic == EVENTS)
	sent = list(range(1, 141))
	for n in sent:  # 7 s of readings, 20 a second: two renewals or more
		pty.write_line(f"t={n}")
		time.sleep(0.05)

	def got():
		return {int(json.loads(m.payload)["readings"]["t"]["value"]) for m in sub.messages(EVENTS)}

	assert wait_until(lambda: set(sent) <= got(), 15), sorted(set(sent) - got())
	assert len(front.connects) >= 3, front.connects
	se = [int(sas_fields(c.password)["se"]) for c in front.connects]
	assert se == sorted(se) and len(set(se)) == len(se), se
	assert not front.refused and front.expired_cuts == 0, (front.refused, front.expired_cuts)
	assert "the SAS token expires soon: connecting again with a new one" in gw.stderr_text()
	gw.stop()


# --------------------------------------------------------------------------
# AWS IoT Core, emulated: mosquitto with an ACL for the thing's topics
# (its client id), behind a TLS front that requires a client certificate
# from the test's CA and offers only the ALPN protocol AWS uses on port 443.

THING = "pi-garage"
SHADOW = f"$aws/things/{THING}/shadow/update"

AWS_ACL = """user tester
topic readwrite #
topic readwrite $aws/#

pattern write test/#
pattern read test/gateway/%c/status
pattern read $aws/things/%c/shadow/update/delta
pattern read $aws/things/%c/shadow/update/rejected
pattern write $aws/things/%c/shadow/update
pattern write $aws/things/%c/shadow/get
pattern read $aws/things/%c/shadow/get/accepted
"""


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_aws_iot_core(broker_factory, front_factory, tls_certs, make_pty, make_gateway, make_sub, tmp_path, protocol):
	acl = tmp_path / "acl"
	acl.write_text(AWS_ACL)
	broker = broker_factory(extra_conf=f"acl_file {acl}")
	front = front_factory(broker.port, certfile=tls_certs["certfile"], keyfile=tls_certs["keyfile"],
	                      cafile=tls_certs["cafile"], alpn=["x-amzn-mqtt-ca"], drop_qos2=True,
	                      check_connect=lambda c: None if c.client_id == THING else f"client id {c.client_id!r}")
	pty, relay = make_pty("tty"), make_pty("relay")
	tls = (f'tls: {{ ca_file = "{tls_certs["cafile"]}"; cert_file = "{tls_certs["client_cert"]}"; '
	       f'key_file = "{tls_certs["client_key"]}"; alpn = "x-amzn-mqtt-ca"; }};')
	cfg = gateway_config(front.port, tmp_path, sim_device(pty.link), scheme="mqtts", protocol=protocol,
	                     mqtt_extra=f'cloud = "aws-iot-core"; thing = "{THING}"; {tls}',
	                     extra=LIGHT.format(port=relay.link))
	gw = make_gateway(cfg)
	cp = gw.check()
	assert cp.returncode == 0 and f"cloud     AWS IoT Core, thing {THING}" in cp.stdout, cp.stdout + cp.stderr
	sub = make_sub(broker.port, ["test/#", SHADOW, f"$aws/things/{THING}/shadow/get"], protocol="3.1.1",
	               username="tester")
	gw.start()
	sub.wait_topic(f"test/gateway/gw1/status", "online", timeout=15)
	c = front.connects[0]
	assert c.alpn == "x-amzn-mqtt-ca" and c.cn == "sensorgate-client" and c.client_id == THING, c
	assert c.level == (5 if protocol == "5" else 4)
	m = sub.wait_for(lambda m: m.topic == SHADOW, timeout=10)
	assert json.loads(m.payload) == {"state": {"reported": {"light": "OFF"}}}
	# the whole shadow, asked for after connecting (the test answers as the shadow service): its delta is carried out
	sub.wait_topic(f"$aws/things/{THING}/shadow/get", timeout=10)
	publish(broker.port, f"$aws/things/{THING}/shadow/get/accepted",
	        json.dumps({"state": {"desired": {"light": "ON"}, "reported": {"light": "OFF"}, "delta": {"light": "ON"}},
	                    "version": 5, "timestamp": 1700000000}), qos=1, protocol="3.1.1", user="tester")
	assert wait_until(lambda: relay.received().endswith(b"L=1\n"), 10), relay.received()
	sub.wait_for(lambda m: m.topic == SHADOW and json.loads(m.payload) == {"state": {"reported": {"light": "ON"}}},
	             timeout=10)
	gw.wait_open(pty)
	m = feed_until(pty, "t=19.5 h=50", sub, lambda m: m.topic == "test/sim")
	body = json.loads(m.payload)
	assert body["readings"]["t"]["value"] == 19.5 and body["readings"]["t"]["unit"] == "°C", body
	assert body["readings"]["h"]["value"] == 50 and m.qos == 1 and not m.retain
	# a shadow delta moves the actuator, and its state is reported to the shadow
	mark = sub.mark()
	publish(broker.port, f"$aws/things/{THING}/shadow/update/delta",
	        json.dumps({"version": 7, "timestamp": 1700000000, "state": {"light": "OFF"},
	                    "metadata": {"light": {"timestamp": 1700000000}}}), qos=1, protocol="3.1.1", user="tester")
	assert wait_until(lambda: relay.received().endswith(b"L=0\n"), 10), relay.received()
	sub.wait_for(lambda m: m.topic == SHADOW and json.loads(m.payload) == {"state": {"reported": {"light": "OFF"}}},
	             since=mark, timeout=10)
	assert all(q < 2 for _t, q, _r, _p in front.publishes) and front.qos2_drops == 0
	assert len(front.connects) == 1
	gw.stop()


def test_aws_checks(tls_certs, make_pty, make_gateway, tmp_path):
	pty = make_pty("tty")
	base = dict(scheme="mqtts", protocol="3.1.1")
	# port 443: the ALPN protocol AWS wants there, without saying so
	certs = (f'tls: {{ ca_file = "{tls_certs["cafile"]}"; cert_file = "{tls_certs["client_cert"]}"; '
	         f'key_file = "{tls_certs["client_key"]}"; }};')
	cfg = gateway_config(443, tmp_path, sim_device(pty.link), **base,
	                     mqtt_extra=f'cloud = "aws-iot-core"; thing = "{THING}"; {certs}')
	cp = make_gateway(cfg).check()
	assert cp.returncode == 0 and "; ALPN x-amzn-mqtt-ca" in cp.stdout, cp.stdout + cp.stderr
	# no client certificate: refused, at the cloud line
	cfg = gateway_config(8883, tmp_path, sim_device(pty.link), **base,
	                     mqtt_extra=f'cloud = "aws-iot-core"; thing = "{THING}";')
	cp = make_gateway(cfg, name="nocert").check()
	line = next(i for i, t in enumerate(cfg.splitlines(), 1) if "aws-iot-core" in t)
	assert cp.returncode == 1 and f":{line}: cloud = \"aws-iot-core\" needs the thing's certificate" in cp.stderr, \
		cp.stderr
