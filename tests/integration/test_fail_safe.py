# SPDX-License-Identifier: MIT
"""Fail-safe actuators: the controller goes away, the relay goes to its safe state.

The contract (README.md, "When the controller goes away"):
  - fail_safe_after_s = N: after N s without the broker connection the
    actuator is driven to its safe state (`safe`, else `initial`); not
    before; the state topic shows it once the broker is back, followed by a
    JSON message on the error topic saying why;
  - fail_safe_on_ha_offline = true: "offline" on Home Assistant's status
    topic (discovery.ha_status_topic) drives it to its safe state at once,
    said on the state and error topics; "online" moves nothing;
  - actuators without these options are left alone.
The outage is real: the gateway reaches the broker through a TCP proxy
(mqtt_tap.TapProxy) that is blocked, as a network outage would; the broker and
the test's subscriber stay up, so everything the gateway says when it is back
is seen. The "devices" are ptys played by test_actuators.Device.
"""

import json
import time

import pytest

from conftest import gateway_config, publish, wait_until
from mqtt_tap import TapProxy
from test_actuators import Device

STATUS = "test/gateway/gw1/status"
RELAY, RELAY_SET, RELAY_ERR = "test/relay", "test/relay/set", "test/relay/error"
FAN, FAN_SET, FAN_ERR = "test/fan", "test/fan/set", "test/fan/error"
AFTER_S = 2


def actuators(relay_port, fan_port, relay_extra="", fan_extra=""):
	return (
		"actuators = (\n"
		f'  {{ name = "relay"; driver = "serial"; port = "{relay_port}"; on = "R1=1\\r\\n"; off = "R1=0\\r\\n";\n'
		f'     reply = "OK"; initial = "OFF"; {relay_extra} }},\n'
		f'  {{ name = "fan"; driver = "serial"; port = "{fan_port}"; type = "number"; min = 0; max = 100;\n'
		f'     set = "F {{value}}\\n"; reply = "OK"; initial = "0"; safe = "100"; {fan_extra} }}\n'
		");\n")


@pytest.fixture
def rig(broker, make_pty, make_gateway, make_sub, tmp_path):
	"""start(via_proxy, relay_extra, fan_extra, extra) -> (gw, sub, relay, fan, proxy); initial states confirmed."""
	made = []

	def start(via_proxy=False, relay_extra="", fan_extra="", extra=""):
		proxy = TapProxy(broker.port) if via_proxy else None
		if proxy:
			made.append(proxy)
		relay_pty, fan_pty = make_pty("relay"), make_pty("fan")
		relay, fan = Device(relay_pty), Device(fan_pty)
		made.extend([relay, fan])
		cfg = gateway_config(proxy.port if proxy else broker.port, tmp_path, "",
		                     extra=actuators(relay_pty.link, fan_pty.link, relay_extra, fan_extra) + extra)
		gw = make_gateway(cfg)
		sub = make_sub(broker.port, ["test/#"], qos=1)
		gw.start()
		sub.wait_topic(STATUS, "online", timeout=15)
		relay.wait_line("R1=0\r\n")
		fan.wait_line("F 0\n")
		sub.wait_topic(RELAY, "OFF")
		sub.wait_topic(FAN, "0")
		return gw, sub, relay, fan, proxy

	yield start
	for m in made:
		m.close()


def test_broker_outage_drives_relay_to_safe_state(rig, broker, make_sub):
	gw, sub, relay, fan, proxy = rig(via_proxy=True, relay_extra=f"fail_safe_after_s = {AFTER_S};",
	                                 fan_extra="fail_safe_on_ha_offline = true;")
	publish(broker.port, RELAY_SET, "ON")
	publish(broker.port, FAN_SET, "40")
	relay.wait_line("R1=1\r\n")
	fan.wait_line("F 40\n")
	sub.wait_topic(RELAY, "ON")
	sub.wait_topic(FAN, "40")

	d0, f0, m0 = relay.mark(), fan.mark(), sub.mark()
	t_cut = time.monotonic()
	proxy.set_blocked(True)  # a network outage: the gateway cannot reach the broker
	sub.wait_topic(STATUS, "offline", since=m0, timeout=10)  # the broker published our Last Will
	t_safe = relay.wait_line("R1=0\r\n", since=d0, timeout=AFTER_S + 8)
	assert t_safe - t_cut >= AFTER_S - 0.3, f"fail-safe after {t_safe - t_cut:.2f} s, configured {AFTER_S} s"
	assert relay.received(d0) == [b"R1=0\r\n"]
	assert fan.received(f0) == [], "the fan only listens to Home Assistant's status"
	assert sub.messages(RELAY, since=m0) == []  # nothing can be said while the broker is away

	m1 = sub.mark()
	proxy.set_blocked(False)
	sub.wait_topic(STATUS, "online", since=m1, timeout=15)
	state = sub.wait_topic(RELAY, "OFF", since=m1)
	err = sub.wait_for(lambda m: m.topic == RELAY_ERR, since=m1)
	assert err.t >= state.t
	e = json.loads(err.payload)
	assert e == {"actuator": "relay", "state": "OFF",
	             "error": f"fail-safe: no connection to the broker for {AFTER_S} s; switched to its safe state"}
	assert sub.messages(FAN_ERR, since=m0) == []
	assert "fail-safe: no connection to the broker" in gw.stderr_text()
	late = make_sub(broker.port, [RELAY, RELAY_ERR], qos=1)  # the state is retained, the explanation is not
	assert late.wait_topic(RELAY, timeout=5).payload == b"OFF"
	time.sleep(0.3)
	assert late.messages(RELAY_ERR) == []

	# it stays safe until a command moves it; commands work again
	publish(broker.port, RELAY_SET, "ON")
	relay.wait_line("R1=1\r\n", since=d0)
	sub.wait_topic(RELAY, "ON", since=m1)
	gw.assert_alive()


def test_home_assistant_offline_drives_fan_to_safe_state(rig, broker):
	gw, sub, relay, fan, _proxy = rig(fan_extra="fail_safe_on_ha_offline = true;",
	                                  extra='discovery: { ha_status_topic = "hass/status"; };\n')
	publish(broker.port, RELAY_SET, "ON")
	publish(broker.port, FAN_SET, "40")
	relay.wait_line("R1=1\r\n")
	fan.wait_line("F 40\n")
	sub.wait_topic(FAN, "40")
	d0, f0, m0 = relay.mark(), fan.mark(), sub.mark()

	# the default topic is not the configured one: nothing moves
	publish(broker.port, "homeassistant/status", "offline")
	publish(broker.port, "hass/status", "online")
	time.sleep(0.5)
	assert fan.received(f0) == []

	publish(broker.port, "hass/status", "offline")
	fan.wait_line("F 100\n", since=f0)
	sub.wait_topic(FAN, "100", since=m0)
	err = json.loads(sub.wait_for(lambda m: m.topic == FAN_ERR, since=m0).payload)
	assert err == {"actuator": "fan", "state": "100",
	               "error": "fail-safe: Home Assistant went offline; switched to its safe state"}
	assert relay.received(d0) == [], "the relay has no fail-safe"
	assert sub.messages(RELAY, since=m0) == []

	# Home Assistant back: nothing moves by itself; a command does
	publish(broker.port, "hass/status", "online")
	publish(broker.port, FAN_SET, "30")
	fan.wait_line("F 30\n", since=f0)
	assert fan.received(f0) == [b"F 100\n", b"F 30\n"]
	gw.assert_alive()


def test_check_lists_fail_safe(make_gateway, make_pty, tmp_path):
	relay_pty, fan_pty = make_pty("relay"), make_pty("fan")
	gw = make_gateway(gateway_config(1883, tmp_path, "", extra=actuators(
		relay_pty.link, fan_pty.link, "fail_safe_after_s = 30;", "fail_safe_on_ha_offline = true;")))
	cp = gw.check()
	assert cp.returncode == 0, cp.stderr
	assert "fail-safe after 30 s without the broker" in cp.stdout
	assert "fail-safe when Home Assistant goes offline (homeassistant/status)" in cp.stdout
	bad = make_gateway(gateway_config(1883, tmp_path, "", extra=actuators(
		relay_pty.link, fan_pty.link).replace('initial = "OFF"; ', "fail_safe_after_s = 5; ")))
	cp = bad.check()
	assert cp.returncode != 0
	assert ':9: actuator "relay": "fail_safe_after_s" needs a state to go to: set "safe"' in cp.stderr, cp.stderr
