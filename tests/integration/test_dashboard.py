# SPDX-License-Identifier: MIT
"""The dashboard (dashboard/) in a real browser, over a real broker's websockets.

A real mosquitto with a plain listener for the gateway and a websockets
listener that also serves dashboard/ (http_dir), a real sensorgate with a pty
sensor and two pty actuators, and Debian's Chromium, headless, driven over the
DevTools protocol (browser.py). Asserted from the page's DOM: the gateway
online with its version and stats, readings as they change (unit, JSON and
plain payloads), a switch toggled from the page reaching the pty device and
its confirmed state coming back, a number set from the page, a refused command
shown as the actuator's error, the gateway going offline (kill -9: its Last
Will) with every control disabled, and back. Screenshots (desktop and phone)
are kept in the test's directory.
"""

import time

import pytest

from browser import Browser, chromium_bin
from conftest import REPO, free_port, gateway_config, publish, wait_until

DASHBOARD = REPO / "dashboard"
BUNDLE = DASHBOARD / "vendor" / "mqtt.min.js"

DEVICES = """{{ name = "sim"; driver = "lines"; port = "{port}"; format = "kv";
    readings = ( {{ field = "t"; topic = "room/temperature"; unit = "°C"; payload = "json"; }},
                 {{ field = "h"; topic = "room/humidity"; unit = "%"; }} ); }}"""

ACTUATORS = """actuators = (
  {{ name = "heater"; driver = "serial"; port = "{a1}"; topic = "heater"; on = "H1\\n"; off = "H0\\n"; }},
  {{ name = "fan"; driver = "serial"; port = "{a2}"; topic = "fan"; type = "number"; min = 0; max = 100;
     step = 5; set = "F{{value}}\\n"; }}
);
"""

pytestmark = pytest.mark.skipif(not chromium_bin(), reason="no chromium (scripts/deps.sh installs it)")


def q(uid, sel=""):
	"""A JavaScript expression: the element of entity UID (or SEL inside it)."""
	return f'document.querySelector(\'[data-entity="{uid}"] {sel}\')'


def text(uid, sel):
	return f"({q(uid, sel)} || {{}}).textContent"


@pytest.fixture
def browser(tmp_path):
	b = Browser(tmp_path)
	yield b
	b.close()


def test_dashboard_in_a_real_browser(broker_factory, make_pty, make_gateway, browser, tmp_path):
	assert BUNDLE.exists(), f"{BUNDLE} missing: run `make dashboard` (scripts/test.sh does)"
	ws = free_port()
	broker = broker_factory(extra_conf=f"listener {ws} 127.0.0.1\nprotocol websockets\nhttp_dir {DASHBOARD}")
	pty, a1, a2 = make_pty("tty"), make_pty("a1"), make_pty("a2")
	cfg = gateway_config(broker.port, tmp_path, DEVICES.format(port=pty.link),
	                     extra='discovery: { enabled = true; };\n'
	                           + ACTUATORS.format(a1=a1.link, a2=a2.link).replace("{{", "{").replace("}}", "}"))
	cfg = cfg.replace("spool: {", "spool: { stats_interval = 1.0;")
	gw = make_gateway(cfg)
	gw.start()
	gw.wait_open(pty)

	browser.open(f"http://127.0.0.1:{ws}/index.html?broker=ws://127.0.0.1:{ws}")
	gateway = 'document.querySelector(\'[data-gateway="gw1"]\')'
	browser.wait(f"{gateway} && {gateway}.querySelector('.gw-status').textContent === 'online'", 20,
	             "the gateway shown online")
	assert browser.js(f"{gateway}.querySelector('.gw-version').textContent").find("0.1.0") >= 0
	browser.wait(f"/spool_depth|readings/.test({gateway}.querySelector('.gw-stats').textContent)", 10,
	             "the gateway's stats shown")

	# readings, live, JSON and plain payloads, with their units
	t, h = "sensorgate_gw1_sim_t", "sensorgate_gw1_sim_h"
	# (°C is shown with one decimal: the suggested display precision discovery gives it)
	for value, shown in (("21.5", "21.5"), ("22.25", "22.3")):
		deadline = time.monotonic() + 10
		while browser.js(text(t, ".value")) != shown and time.monotonic() < deadline:
			pty.write_line(f"t={value} h=40")
			time.sleep(0.3)
		assert browser.js(text(t, ".value")) == shown, browser.console[-5:]
	assert browser.js(text(t, ".unit")) == "°C"
	assert browser.js(text(h, ".value")) == "40.0" and browser.js(text(h, ".unit")) == "%"  # plain payload
	assert browser.js(f"{q(t)}.dataset.available") == "true"

	# a second gateway on the same broker gets its own card
	pty2 = make_pty("tty2")
	other = gateway_config(broker.port, tmp_path / "gw2", DEVICES.format(port=pty2.link).replace('"sim"', '"sim2"')
	                       .replace("room/", "cellar/"), gw_id="gw2", extra='discovery: { enabled = true; };\n')
	(tmp_path / "gw2").mkdir()
	gw_b = make_gateway(other, name="gw2")
	gw_b.start()
	gw_b.wait_open(pty2)
	t2 = "sensorgate_gw2_sim2_t"
	deadline = time.monotonic() + 10
	while browser.js(text(t2, ".value")) != "12.5" and time.monotonic() < deadline:
		pty2.write_line("t=12.5 h=80")
		time.sleep(0.3)
	assert browser.js(text(t2, ".value")) == "12.5"
	assert browser.js(f"document.querySelector('[data-gateway=\"gw2\"] [data-entity=\"{t2}\"]') !== null")
	assert browser.js(f"document.querySelector('[data-gateway=\"gw1\"] [data-entity=\"{t2}\"]') === null")
	assert browser.js("document.querySelectorAll('section.gateway').length") == 2
	gw_b.stop()

	# a switch toggled from the page reaches the device; the confirmed state comes back
	heater = "sensorgate_gw1_heater"
	browser.wait(f"{q(heater, '.toggle')} && !{q(heater, '.toggle')}.disabled", 10, "heater's toggle enabled")
	browser.js(f"{q(heater, '.toggle')}.click()")
	assert wait_until(lambda: b"H1\n" in a1.received(), 10), "the command from the page never reached the device"
	browser.wait(f"{text(heater, '.value')} === 'ON'", 10, "heater confirmed ON")
	browser.js(f"{q(heater, '.toggle')}.click()")
	assert wait_until(lambda: b"H0\n" in a1.received(), 10)
	browser.wait(f"{text(heater, '.value')} === 'OFF'", 10, "heater confirmed OFF")

	# a number set from the page
	fan = "sensorgate_gw1_fan"
	browser.js(f"{q(fan, '.num')}.value = '35'; {q(fan, '.set')}.click()")
	assert wait_until(lambda: b"F35\n" in a2.received(), 10), "the number never reached the device"
	browser.wait(f"{text(fan, '.value')} === '35'", 10, "fan confirmed 35")

	# a command the gateway refuses: its error shown at the actuator
	publish(broker.port, "test/heater/set", "maybe")
	browser.wait(f"/invalid payload/.test({text(heater, '.error')})", 10, "the refusal shown")
	shot = browser.screenshot(tmp_path / "dashboard.png")
	browser.viewport(390, 844, mobile=True)
	browser.screenshot(tmp_path / "dashboard-phone.png")
	assert browser.js("document.documentElement.scrollWidth <= 400"), "the page does not fit a phone's width"
	browser.viewport(1280, 900)

	# the gateway dies: its Last Will says offline, every control is disabled
	gw.kill9()
	browser.wait(f"{gateway}.querySelector('.gw-status').textContent === 'offline'", 30, "the gateway shown offline")
	browser.wait(f"{q(heater, '.toggle')}.disabled && {q(fan, '.set')}.disabled", 5, "controls disabled")
	assert browser.js(f"{q(t)}.dataset.available") == "false"
	# and comes back
	gw2 = make_gateway(cfg, name="again")
	gw2.start()
	browser.wait(f"{gateway}.querySelector('.gw-status').textContent === 'online'", 30, "the gateway back online")
	browser.wait(f"!{q(heater, '.toggle')}.disabled", 10, "controls enabled again")
	errors = [c for c in browser.console if c.startswith("exception")]
	assert not errors, errors
	print(f"\nscreenshots: {shot}, {tmp_path / 'dashboard-phone.png'}")
	gw2.stop()
