# SPDX-License-Identifier: MIT
"""Commands against a hostile client (issue #10, "Commands: a confused deputy").

A client allowed to command one actuator must not be able to make the gateway
command another one, publish on its own topics, on Home Assistant's, on the
broker's `$SYS`, or anywhere a broker refuses it so that the link drops again
and again. The contract tested here (README.md, "Security", "Commands from a
hostile client"):
  - a command whose MQTT 5 Response Topic is one the gateway never answers on
    (under its base topic or the discovery prefix, `$...`, too long) is refused
    whole: nothing moves, nothing is published on that topic, the error topic
    says why, and the link stays up;
  - a legitimate Response Topic gets the answer with its Correlation Data, at QoS 0;
  - commands.response_topic_prefix confines answers to one place;
  - a JSON command with a member twice is refused;
  - command topics are subscribed with No Local on MQTT 5 (read on the wire),
    and without options on MQTT 3.1.1;
  - behind a broker ACL that lets a client write only <base>/relay/set, the
    client reaches no other actuator; an answer the broker refuses (its ACL,
    with max_queued_messages 0, which makes mosquitto 2.0.11 close the link on
    any refused PUBLISH) costs the connection once, not again after every
    reconnect.
Real mosquitto, real paho MQTT 5 clients, the real binary, serial devices on ptys.
"""

import json
import time

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import mqtt_tap
from conftest import gateway_config, make_password_file, publish, sim_device, wait_until
from test_actuators import Device, PropSub, correlation

STATUS = "test/gateway/gw1/status"
ONE = ('{{ name = "{name}"; driver = "serial"; port = "{port}"; on = "{tag}=1\\n"; off = "{tag}=0\\n";\n'
       '   reply = "OK"; initial = "OFF"; }}')
NUM = ('{{ name = "{name}"; driver = "serial"; port = "{port}"; type = "number"; min = 0; max = 100;\n'
       '   step = 10; set = "{tag} {{value}}\\n"; }}')
DISCOVERY_RELAY = "homeassistant/switch/gw1/relay/config"

def command(port, topic, payload, response_topic=None, corr=None, user=None, password=None, qos=1,
            timeout=5.0):
	"""Publish one MQTT 5 command with its Response Topic and Correlation Data; returns once the broker has it."""
	props = Properties(PacketTypes.PUBLISH)
	if response_topic is not None:
		props.ResponseTopic = response_topic
	if corr is not None:
		props.CorrelationData = corr
	publish(port, topic, payload, qos=qos, props=props, user=user, password=password, timeout=timeout)


@pytest.fixture
def rig(broker_factory, make_pty, make_gateway, make_sub, tmp_path):
	"""Factory: a gateway with switches relay and other, numbers fan and fan2, a reading, discovery on."""
	devices = []

	def start(protocol="5", broker=None, mqtt_extra="", extra="", sub_auth=None):
		b = broker or broker_factory()
		names = {"relay": ("R", ONE, b"OK\n"), "other": ("O", ONE, b"OK\n"), "fan": ("F", NUM, None),
		         "fan2": ("G", NUM, None)}
		acts, devs = [], {}
		for name, (tag, tmpl, reply) in names.items():
			pty = make_pty(name)
			devs[name] = Device(pty, reply=reply)
			devices.append(devs[name])
			acts.append(tmpl.format(name=name, port=pty.link, tag=tag))
		sensor = make_pty("sensor")
		cfg = gateway_config(b.port, tmp_path, sim_device(sensor.link), protocol=protocol, mqtt_extra=mqtt_extra,
		                     extra=(f'discovery: {{ enabled = true; state_file = "{tmp_path}/disc.state"; }};\n'
		                            f'actuators = (\n{",".join(acts)}\n);\n{extra}'))
		gw = make_gateway(cfg)
		sub = make_sub(b.port, ["#", "$SYS/x"], qos=1, protocol="5", **(sub_auth or {}))
		gw.start()
		sub.wait_topic(STATUS, "online", timeout=15)
		devs["relay"].wait_line("R=0\n")
		devs["other"].wait_line("O=0\n")
		sub.wait_topic("test/relay", "OFF")
		sub.wait_topic("test/other", "OFF")
		return b, gw, sub, devs

	yield start
	for d in devices:
		d.close()


def errors_since(sub, topic, since):
	return [json.loads(m.payload) for m in sub.messages(topic, since=since)]


# The attacks of finding 1, each as: (legend, command topic, payload, Response Topic, reason in the error).
LONG = "a" * 60000
ATTACKS = [
	("another switch's command topic", "test/relay/set", "ON", "test/other/set", "under the gateway's own topics"),
	("another number's command topic", "test/fan/set", "50", "test/fan2/set", "under the gateway's own topics"),
	("the gateway status topic", "test/relay/set", "ON", STATUS, "under the gateway's own topics"),
	("a reading's topic", "test/relay/set", "ON", "test/room/temperature", "under the gateway's own topics"),
	("a discovery config topic", "test/relay/set", "ON", DISCOVERY_RELAY, "Home Assistant discovery prefix"),
	("Home Assistant's status topic", "test/relay/set", "ON", "homeassistant/status", "discovery prefix"),
	("$SYS", "test/relay/set", "ON", "$SYS/x", "starts with '$'"),
	("a 60,000-byte topic", "test/relay/set", "ON", LONG, "60000 bytes (at most 256)"),
]


def test_response_topic_attacks_refused(rig):
	"""Finding 1 and 2: every attack is refused whole, reported, and costs nothing."""
	b, gw, sub, devs = rig()
	d0 = {n: d.mark() for n, d in devs.items()}
	for legend, topic, payload, rtopic, reason in ATTACKS:
		m0 = sub.mark()
		command(b.port, topic, payload, response_topic=rtopic, corr=b"c1")
		err_topic = topic[:-len("set")] + "error"
		e = sub.wait_topic(err_topic, since=m0, timeout=5)
		err = json.loads(e.payload)
		assert reason in err["error"] and "command refused" in err["error"], (legend, err)
		assert err["payload"] == payload
		# nothing on the attacked topic (our answer JSON has an "actuator" member)
		time.sleep(0.3)
		bad = [m for m in sub.messages(since=m0) if m.topic == rtopic or b'"actuator"' in m.payload
		       and m.topic != err_topic]
		assert not bad, (legend, bad)
	time.sleep(0.5)
	for name, d in devs.items():
		assert d.received(d0[name]) == [], f"{name} moved: {d.received(d0[name])}"  # nothing moved at all
	assert not [m for m in sub.messages(STATUS) if m.payload == b"offline"], "the link dropped"
	gw.assert_alive()


def test_legitimate_response_topic_answered(rig):
	b, gw, sub, devs = rig()
	resp = PropSub(b.port, "client/7/reply")
	try:
		command(b.port, "test/relay/set", "ON", response_topic="client/7/reply", corr=b"\x00req-1\xff")
		topic, payload, props = resp.wait(1)
		assert json.loads(payload) == {"actuator": "relay", "state": "ON"}
		assert correlation(props) == b"\x00req-1\xff"
		devs["relay"].wait_line("R=1\n")
		# a topic that only begins like the base topic is not the gateway's
		command(b.port, "test/fan/set", "30", response_topic="testing/reply", corr=b"r2")
		devs["fan"].wait_line("F 30\n")
		m = sub.wait_topic("testing/reply")
		assert json.loads(m.payload) == {"actuator": "fan", "state": "30"}
		assert m.qos == 0  # answers go out at QoS 0
		# Correlation Data over 128 bytes: refused whole, no answer
		m0, d0 = sub.mark(), devs["relay"].mark()
		command(b.port, "test/relay/set", "OFF", response_topic="client/7/reply", corr=b"x" * 129)
		e = sub.wait_topic("test/relay/error", since=m0)
		assert "Correlation Data of 129 bytes" in json.loads(e.payload)["error"]
		time.sleep(0.3)
		assert devs["relay"].received(d0) == []
		assert len(resp.msgs) == 1
	finally:
		resp.close()
	gw.assert_alive()


def test_response_topic_prefix(rig):
	b, gw, sub, devs = rig(extra='commands: { response_topic_prefix = "replies"; };\n')
	command(b.port, "test/relay/set", "ON", response_topic="replies/me", corr=b"1")
	m = sub.wait_topic("replies/me")
	assert json.loads(m.payload) == {"actuator": "relay", "state": "ON"}
	m0, d0 = sub.mark(), devs["relay"].mark()
	command(b.port, "test/relay/set", "OFF", response_topic="elsewhere/me", corr=b"2")
	e = sub.wait_topic("test/relay/error", since=m0)
	assert "not under commands.response_topic_prefix (replies/...)" in json.loads(e.payload)["error"]
	time.sleep(0.3)
	assert devs["relay"].received(d0) == []
	assert not sub.messages("elsewhere/me")
	check = gw.check()
	assert check.returncode == 0, check.stderr
	assert "MQTT 5 Response Topics: answers only under replies/" in check.stdout
	gw.assert_alive()


def test_duplicate_member_refused(rig):
	"""Finding 3: {"state":"ON","state":"OFF"} is neither ON nor OFF."""
	b, gw, sub, devs = rig()
	m0, d0 = sub.mark(), devs["relay"].mark()
	command(b.port, "test/relay/set", '{"state":"ON","state":"OFF"}')
	e = sub.wait_topic("test/relay/error", since=m0)
	assert 'the member "state" twice' in json.loads(e.payload)["error"]
	command(b.port, "test/relay/set", '{"actuator":"relay","state":"ON"}')  # an answer is no command
	e = sub.wait_for(lambda m: m.topic == "test/relay/error" and b"sensorgate answer" in m.payload, since=m0)
	time.sleep(0.3)
	assert devs["relay"].received(d0) == []
	command(b.port, "test/relay/set", '{"state":"ON"}')
	devs["relay"].wait_line("R=1\n", since=d0)
	gw.assert_alive()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_command_topics_subscribed_no_local(rig, broker, monkeypatch, protocol):
	"""On the wire: every command topic's SUBSCRIBE carries No Local on MQTT 5, no option bits on 3.1.1."""
	subs = []
	orig = mqtt_tap._Parser.packet

	def packet(self, b0, body):
		if self.to_broker and b0 >> 4 == 8:  # SUBSCRIBE
			pos = 2
			if self.conn.level == 5:
				plen, pos = mqtt_tap._varint(body, pos)
				pos += plen
			while pos < len(body):
				n = int.from_bytes(body[pos:pos + 2], "big")
				subs.append((body[pos + 2:pos + 2 + n].decode(), body[pos + 2 + n]))
				pos += 3 + n
		orig(self, b0, body)

	monkeypatch.setattr(mqtt_tap._Parser, "packet", packet)
	tap = mqtt_tap.TapProxy(broker.port, ledger=mqtt_tap.Ledger("-"))

	class Via:
		port = tap.port

	try:
		_b, gw, _sub, _devs = rig(protocol=protocol, broker=Via)
		assert wait_until(lambda: len([t for t, _o in subs if t.endswith("/set")]) >= 4, 5), subs
		cmd = {t: o for t, o in subs if t.endswith("/set")}
		assert set(cmd) == {"test/relay/set", "test/other/set", "test/fan/set", "test/fan2/set"}
		for t, o in cmd.items():
			if protocol == "5":
				assert o & 0x04, f"{t}: options {o:#04x} without No Local"
			else:
				assert o == 1, f"{t}: options {o:#04x} on a 3.1.1 link"  # QoS 1, nothing else
		gw.assert_alive()
	finally:
		tap.close()


def test_broker_acl_and_refused_answer(broker_factory, rig, tmp_path):
	"""A client that may write only test/relay/set reaches no other actuator through the gateway; an
	answer the broker refuses drops the link once and never again (max_queued_messages 0)."""
	pw = make_password_file(tmp_path / "passwd", {"gw": "gw-secret", "ctl": "ctl-secret", "obs": "obs-secret"})
	acl = tmp_path / "acl"
	acl.write_text("user gw\ntopic readwrite test/#\ntopic readwrite homeassistant/#\ntopic write client/#\n\n"
	               "user ctl\ntopic write test/relay/set\ntopic read client/#\n\n"
	               "user obs\ntopic read #\ntopic read $SYS/x\n")
	b = broker_factory(password_file=pw, extra_conf=f"acl_file {acl}\nmax_queued_messages 0")
	(tmp_path / "gw.password").write_text("gw-secret\n")
	b, gw, sub, devs = rig(broker=b, mqtt_extra=f'username = "gw"; password_file = "{tmp_path}/gw.password";',
	                       sub_auth={"username": "obs", "password": "obs-secret"})
	ctl = {"user": "ctl", "password": "ctl-secret"}
	d0 = {n: d.mark() for n, d in devs.items()}

	# the broker keeps the client off the other actuators' command topics
	m0 = sub.mark()
	command(b.port, "test/other/set", "ON", **ctl)
	command(b.port, "test/fan2/set", "50", **ctl)
	# and the gateway does not carry it there
	command(b.port, "test/relay/set", "ON", response_topic="test/other/set", corr=b"1", **ctl)
	sub.wait_for(lambda m: m.topic == "test/relay/error" and b"command refused" in m.payload, since=m0)
	command(b.port, "test/relay/set", "ON", response_topic="$SYS/x", corr=b"2", **ctl)
	sub.wait_for(lambda m: m.topic == "test/relay/error" and b"starts with '$'" in m.payload, since=m0)
	time.sleep(0.5)
	for name in ("other", "fan", "fan2", "relay"):
		assert devs[name].received(d0[name]) == [], f"{name} moved"
	assert not [m for m in sub.messages(STATUS, since=m0) if m.payload == b"offline"]

	# an answer on a topic the gateway's own ACL forbids: the command is carried out, the refused answer
	# costs the link once (the broker's doing), and libmosquitto has nothing to send again afterwards
	m1 = sub.mark()
	command(b.port, "test/relay/set", "ON", response_topic="forbidden/x", corr=b"3", **ctl)
	devs["relay"].wait_line("R=1\n", since=d0["relay"])
	time.sleep(8)
	offline = [m for m in sub.messages(STATUS, since=m1) if m.payload == b"offline"]
	assert len(offline) <= 1, f"{len(offline)} Last Wills in 8 s after one refused answer"
	assert sub.messages(STATUS)[-1].payload == b"online"
	assert devs["relay"].received(d0["relay"]) == [b"R=1\n"]  # acknowledged before the drop: not again
	gw.assert_alive()
