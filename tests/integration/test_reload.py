# SPDX-License-Identifier: MIT
"""SIGHUP reload: the configuration is re-read without dropping the broker.

The contract (README.md "Reload", gateway_reload.c):
  - a changed topic map applies at once, on the same MQTT connection (the
    broker sees no new connection, the subscriber no "offline");
  - an invalid file is refused with "reload: FILE:LINE: ...; keeping the
    running configuration" and the old map keeps publishing;
  - a device whose port changed is reopened on the new port, a new device is
    opened, a removed one closed;
  - broker settings that changed are named in a warning (restart needed) and
    the running connection stays.
"""

import signal
import time

from conftest import feed_until, gateway_config, wait_until

STATUS = "test/gateway/gw1/status"


def device(name, port, topic):
	return (f'{{ name = "{name}"; driver = "lines"; port = "{port}"; baud = 9600; format = "kv";\n'
	        f'  readings = ( {{ field = "t"; topic = "{topic}"; qos = 1; }} ); }}')


def hup(gw, conf_text, log_line, timeout=10.0):
	"""Write the new config, SIGHUP, wait for LOG_LINE in stderr."""
	before = len(gw.stderr_text())
	gw.conf.write_text(conf_text, encoding="utf-8")
	gw.proc.send_signal(signal.SIGHUP)
	ok = wait_until(lambda: log_line in gw.stderr_text()[before:], timeout)
	assert ok, f"no {log_line!r} after SIGHUP\n{gw.stderr_text()[-3000:]}"


def connects(gw):
	return gw.stderr_text().count("mqtt: connected to")


def test_reload_topic_change_keeps_connection(broker, make_pty, make_gateway, make_sub, tmp_path):
	pty = make_pty("tty")
	conf = lambda topic: gateway_config(broker.port, tmp_path, device("sim", pty.link, topic))  # noqa: E731
	gw = make_gateway(conf("room/a"))
	sub = make_sub(broker.port, ["test/#"], qos=2)
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=15)
	gw.wait_open(pty)
	feed_until(pty, "t=21.5", sub, lambda m: m.topic == "test/room/a")
	n_conn = connects(gw)
	mark = sub.mark()

	hup(gw, conf("room/b"), "applied: topic map and transforms updated")
	feed_until(pty, "t=22.5", sub, lambda m: m.topic == "test/room/b", since=mark)
	time.sleep(0.5)
	gw.assert_alive()
	assert connects(gw) == n_conn, "reload reconnected to the broker"
	assert "disconnected" not in gw.stderr_text()
	assert not [m for m in sub.messages(STATUS, since=mark) if m.payload == b"offline"]
	# The port stayed open: the same device object, "1 kept".
	assert "(1 kept, 0 reopened, 0 added, 0 removed)" in gw.stderr_text()
	late = sub.mark()
	feed_until(pty, "t=23.5", sub, lambda m: m.topic == "test/room/b", since=late)
	assert not sub.messages("test/room/a", since=late), "old topic still published after reload"
	gw.stop()


def test_reload_invalid_config_is_refused(broker, make_pty, make_gateway, make_sub, tmp_path):
	pty = make_pty("tty")
	good = gateway_config(broker.port, tmp_path, device("sim", pty.link, "room/a"))
	gw = make_gateway(good)
	sub = make_sub(broker.port, ["test/#"], qos=2)
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=15)
	gw.wait_open(pty)

	bad = good.replace('format = "kv";', 'format = "kv"; no_such_key = 1;')
	hup(gw, bad, "keeping the running configuration")
	line = [ln for ln in gw.stderr_text().splitlines() if "keeping the running configuration" in ln][-1]
	assert line.startswith("<3>reload: "), line  # LOG_ERR
	assert f"{gw.conf}:" in line, f"no FILE:LINE in {line!r}"
	gw.assert_alive()
	mark = sub.mark()
	feed_until(pty, "t=24.5", sub, lambda m: m.topic == "test/room/a", since=mark)
	gw.stop()


def test_reload_devices_reopened_added_removed(broker, make_pty, make_gateway, make_sub, tmp_path):
	p1, p2, p3 = make_pty("tty1"), make_pty("tty2"), make_pty("tty3")
	cfg = lambda devs: gateway_config(broker.port, tmp_path, ",\n".join(devs))  # noqa: E731
	gw = make_gateway(cfg([device("a", p1.link, "a/t"), device("b", p2.link, "b/t")]))
	sub = make_sub(broker.port, ["test/#"], qos=2)
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=15)
	gw.wait_open(p1)
	gw.wait_open(p2)

	# a moves to tty3, b goes away, c arrives on tty2.
	hup(gw, cfg([device("a", p3.link, "a/t"), device("c", p2.link, "c/t")]), "applied: ")
	assert wait_until(lambda: "(0 kept, 1 reopened, 1 added, 1 removed)" in gw.stderr_text(), 5), \
		gw.stderr_text()[-2000:]
	gw.wait_open(p3)
	assert wait_until(lambda: not gw.has_open(p1.path), 5), "old port of a still open"
	mark = sub.mark()
	feed_until(p3, "t=1.5", sub, lambda m: m.topic == "test/a/t", since=mark)
	feed_until(p2, "t=2.5", sub, lambda m: m.topic == "test/c/t", since=mark)
	assert not sub.messages("test/b/t", since=mark)
	gw.stop()


def test_reload_broker_change_needs_restart(broker, make_pty, make_gateway, make_sub, tmp_path):
	pty = make_pty("tty")
	conf = gateway_config(broker.port, tmp_path, device("sim", pty.link, "room/a"))
	gw = make_gateway(conf)
	sub = make_sub(broker.port, ["test/#"], qos=2)
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=15)
	n_conn = connects(gw)
	other = conf.replace(f"127.0.0.1:{broker.port}", "127.0.0.1:1")
	hup(gw, other, "apply after a restart")
	warn = [ln for ln in gw.stderr_text().splitlines() if "apply after a restart" in ln][-1]
	assert warn.startswith("<4>") and "mqtt.brokers" in warn, warn
	mark = sub.mark()
	feed_until(pty, "t=25.5", sub, lambda m: m.topic == "test/room/a", since=mark)
	assert connects(gw) == n_conn
	gw.stop()


def test_reload_reannounces_discovery(broker, make_pty, make_gateway, make_sub, tmp_path):
	pty = make_pty("tty")
	disc = 'discovery: { enabled = true; prefix = "homeassistant"; };\n'
	conf = lambda topic: gateway_config(broker.port, tmp_path, device("sim", pty.link, topic),  # noqa: E731
	                                    extra=disc)
	gw = make_gateway(conf("room/a"))
	sub = make_sub(broker.port, ["test/#", "homeassistant/#"], qos=2)
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=15)
	first = sub.wait_for(lambda m: m.topic.startswith("homeassistant/") and b"test/room/a" in m.payload)
	mark = sub.mark()
	hup(gw, conf("room/b"), "applied: ")
	# The entity now points at the new state topic, on the same connection.
	sub.wait_for(lambda m: m.topic.startswith("homeassistant/") and b"test/room/b" in m.payload, since=mark)
	assert first.topic.endswith("/config")
	gw.assert_alive()
	gw.stop()
