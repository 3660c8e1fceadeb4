# SPDX-License-Identifier: MIT
"""The broker link under adverse conditions, all on 127.0.0.1.

  - broker failover: the first broker in the list is down, the second is used;
  - a broker that never answers a SYN (a listening socket whose accept queue is
    full, so the kernel drops further SYNs) must not block the loop: the
    gateway keeps reading its serial port, answers SIGTERM at once, and moves on
    to the next broker after its probe timeout;
  - a broker that accepts TCP but never sends CONNACK: the attempt times out and
    the next broker is used.
"""

import socket
import threading
import time

import pytest

from conftest import free_port, gateway_config, sim_device, wait_until

STATUS = "test/gateway/gw1/status"


def config_with_brokers(tmp_path, pty, urls, protocol="5"):
	cfg = gateway_config(0, tmp_path, sim_device(pty.link), protocol=protocol)
	brokers = ", ".join(f'"{u}"' for u in urls)
	return cfg.replace('brokers = ( "mqtt://127.0.0.1:0" )', f"brokers = ( {brokers} )")


@pytest.fixture
def silent_listener():
	"""A port whose SYNs go unanswered: backlog 0, accept queue filled, never accepted."""
	srv = socket.socket()
	srv.bind(("127.0.0.1", 0))
	srv.listen(0)
	port = srv.getsockname()[1]
	fillers = []
	for _ in range(4):
		c = socket.socket()
		c.setblocking(False)
		try:
			c.connect(("127.0.0.1", port))
		except BlockingIOError:
			pass
		fillers.append(c)
	time.sleep(0.2)
	# Prove it: a fresh blocking connect must not complete within a second.
	probe = socket.socket()
	probe.settimeout(1.0)
	try:
		probe.connect(("127.0.0.1", port))
		silent = False
	except (socket.timeout, OSError):
		silent = True
	probe.close()
	if not silent:
		for c in fillers:
			c.close()
		srv.close()
		pytest.skip("this kernel answers SYNs beyond the accept queue; cannot emulate a silent broker")
	yield port
	for c in fillers:
		c.close()
	srv.close()


@pytest.fixture
def mute_broker():
	"""Accepts TCP connections and reads them, but never says a word (no CONNACK)."""
	srv = socket.socket()
	srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	srv.bind(("127.0.0.1", 0))
	srv.listen(16)
	srv.settimeout(0.2)
	stop = threading.Event()
	conns = []

	def run():
		while not stop.is_set():
			try:
				c, _ = srv.accept()
				conns.append(c)
			except OSError:
				continue

	t = threading.Thread(target=run, daemon=True)
	t.start()
	yield srv.getsockname()[1], conns
	stop.set()
	t.join(2)
	for c in conns:
		c.close()
	srv.close()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_failover_to_second_broker(broker, make_pty, make_gateway, make_sub, tmp_path, protocol):
	pty = make_pty("tty")
	dead = free_port()
	gw = make_gateway(config_with_brokers(tmp_path, pty, [f"mqtt://127.0.0.1:{dead}", broker.url], protocol))
	sub = make_sub(broker.port, ["test/#"], protocol=protocol)
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=15)
	assert f"cannot connect to mqtt://127.0.0.1:{dead}" in gw.stderr_text()
	gw.stop()


def test_silent_broker_does_not_block_the_loop(silent_listener, broker, make_pty, make_gateway, make_sub, tmp_path):
	pty = make_pty("tty")
	gw = make_gateway(config_with_brokers(tmp_path, pty, [f"mqtt://127.0.0.1:{silent_listener}", broker.url]))
	sub = make_sub(broker.port, ["test/#"])
	t0 = time.monotonic()
	gw.start()
	gw.wait_open(pty)
	# While the probe to the silent broker is pending, the serial port is still read:
	# the bytes leave the pty (the kernel's queue towards the gateway drains).
	time.sleep(0.3)
	pty.write(b"t=1 h=2\n" * 200)
	assert wait_until(lambda: pty.unread() == 0, 2), "the loop stopped reading the serial port"
	assert "no answer within" not in gw.stderr_text(), "the probe should still be pending here"
	# The probe gives up after its timeout and the second broker is used.
	sub.wait_topic(STATUS, "online", timeout=20)
	assert time.monotonic() - t0 < 15
	assert "no answer within" in gw.stderr_text()
	gw.stop()


def test_silent_broker_sigterm_is_prompt(silent_listener, make_pty, make_gateway, tmp_path):
	pty = make_pty("tty")
	gw = make_gateway(config_with_brokers(tmp_path, pty, [f"mqtt://127.0.0.1:{silent_listener}"]))
	gw.start()
	gw.wait_open(pty)
	time.sleep(0.5)  # the probe is now waiting on the silent port
	t0 = time.monotonic()
	gw.stop(timeout=5)
	assert time.monotonic() - t0 < 2, "SIGTERM must be handled while a connect is pending"


def test_mute_broker_times_out_and_fails_over(mute_broker, broker, make_pty, make_gateway, make_sub, tmp_path):
	port, conns = mute_broker
	pty = make_pty("tty")
	gw = make_gateway(config_with_brokers(tmp_path, pty, [f"mqtt://127.0.0.1:{port}", broker.url]))
	sub = make_sub(broker.port, ["test/#"])
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=30)
	assert conns, "the mute broker was never tried"
	assert "no CONNACK within" in gw.stderr_text()
	gw.stop()
