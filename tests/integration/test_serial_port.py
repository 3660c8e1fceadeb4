# SPDX-License-Identifier: MIT
"""Serial port ownership across crashes.

A pty tool (socat, ser2net, a simulator) often keeps the slave side open too.
A port lock that outlives the gateway (TIOCEXCL does) would then make the
service restarted after kill -9 or a watchdog kill find its own port "busy"
forever. sensorgate locks with flock(), which dies with the process.
"""

import os
import time

from conftest import feed_until, gateway_config, sim_device

TEMP = "test/room/temperature"


def test_port_reopens_after_kill9_while_another_holder_keeps_it_open(broker, make_pty, make_gateway, make_sub,
                                                                    tmp_path):
	pty = make_pty("tty")
	gw = make_gateway(gateway_config(broker.port, tmp_path, sim_device(pty.link)))
	sub = make_sub(broker.port, ["test/#"])
	gw.start()
	gw.wait_open(pty)
	holder = os.open(pty.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)  # like a pty tool would
	try:
		feed_until(pty, "t=1.5 h=2", sub, lambda m: m.topic == TEMP and m.payload == b"1.5")
		gw.kill9()
		gw.start()
		gw.wait_open(pty)
		feed_until(pty, "t=2.5 h=2", sub, lambda m: m.topic == TEMP and m.payload == b"2.5", timeout=10)
		assert "busy" not in gw.stderr_text().lower()
	finally:
		os.close(holder)
	gw.stop()


def test_second_gateway_on_the_same_port_is_refused(broker, make_pty, make_gateway, tmp_path):
	pty = make_pty("tty")
	cfg = gateway_config(broker.port, tmp_path, sim_device(pty.link))
	first = make_gateway(cfg, name="first").start()
	first.wait_open(pty)
	second = make_gateway(cfg.replace('id = "gw1"', 'id = "gw2"').replace("spool.db", "spool2.db"),
	                      name="second").start()
	deadline = time.monotonic() + 5
	while time.monotonic() < deadline and "busy" not in second.stderr_text():
		time.sleep(0.05)
	assert "Device or resource busy" in second.stderr_text()
	second.assert_alive()  # it keeps retrying, it does not die
	second.stop()
	first.stop()
