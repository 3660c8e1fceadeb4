# SPDX-License-Identifier: MIT
"""Replay after an outage, and measurement time without a trusted clock (issue 17, items 2 and 3).

A real mosquitto, the real gateway on a pty, and a proxy between them
(mqtt_tap.TapProxy) that is blocked for the outage, so that the subscriber
stays connected to the broker throughout and sees every message:

  1. readings taken during an outage are replayed in order with their
     measurement time (user property `ts` and the JSON "ts"), `replayed=1`
     and consecutive `seq`; only the newest is retained, and a fresh
     subscriber gets it; a reading after the reconnect is live again;
  2. replay = "history": the older ones go to "<topic>/history",
     not retained; the newest goes to the live topic, retained; with
     properties = "replays" live messages carry no user properties;
  3. an unsynchronised clock (trust = "file", flag file absent): readings
     say "ts":null; those spooled get their true time once the flag
     appears, before they go out.
"""

import json
import time
from datetime import datetime, timezone

import pytest

from conftest import gateway_config, feed_until, wait_until
from mqtt_tap import TapProxy

STATUS = "test/gateway/gw1/status"
T = "test/room/t"
HISTORY = "test/room/t/history"


def device(port):
	return (f'{{ name = "sim"; driver = "lines"; port = "{port}"; baud = 9600; format = "kv";\n'
	        f'    readings = ( {{ field = "t"; topic = "room/t"; qos = 1; retain = true; payload = "json"; }} ); }}')


@pytest.fixture
def proxy(broker):
	p = TapProxy(broker.port)
	yield p
	p.close()


def start(broker, proxy, make_pty, make_gateway, make_sub, tmp_path, spool="", clock=None, protocol="5"):
	"""The gateway behind PROXY; a retain-as-published subscriber on the broker itself."""
	sync = tmp_path / "synchronized"
	if clock is None:
		sync.touch()  # systemd-timesyncd's flag: the clock is trusted
		clock = f'time: {{ sync_file = "{sync}"; }};\n'
	pty = make_pty("tty")
	cfg = gateway_config(0, tmp_path, device(pty.link), extra=clock, protocol=protocol)
	cfg = cfg.replace('"mqtt://127.0.0.1:0"', f'"{proxy.url}"')
	cfg = cfg.replace(f'spool: {{ path = "{tmp_path}/spool.db"; }};',
	                  f'spool: {{ path = "{tmp_path}/spool.db"; {spool} }};')
	gw = make_gateway(cfg)
	sub = make_sub(broker.port, ["test/#"], qos=1, retain_as_published=True)
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=15)
	gw.wait_open(pty)
	return pty, gw, sub


def live_reading(pty, sub):
	"""One live reading on T; returns how many were sent once the pty is quiet (the last seq)."""
	feed_until(pty, "t=1", sub, lambda m: m.topic == T, timeout=10)
	time.sleep(0.5)  # a repeated line still on its way
	return len(sub.messages(T))


def outage(proxy, sub, pty, values):
	"""Cut the gateway off, feed VALUES one by one (0.3 s apart); returns their wall times."""
	mark = sub.mark()
	proxy.set_blocked(True)
	sub.wait_topic(STATUS, "offline", timeout=10, since=mark)  # the broker sent the will
	fed = []
	for v in values:
		fed.append(time.time())
		pty.write_line(f"t={v}")
		time.sleep(0.3)
	time.sleep(0.5)  # read and spooled (the spool file is locked: it cannot be looked into)
	return fed


def reconnect(proxy, sub, topics, n):
	mark = sub.mark()
	proxy.set_blocked(False)
	assert wait_until(lambda: len([m for m in sub.messages(since=mark) if m.topic in topics]) >= n, timeout=15), \
		sub.messages(since=mark)
	time.sleep(0.3)  # nothing more is to come: checked below
	return [m for m in sub.messages(since=mark) if m.topic in topics]


def iso_seconds(ts):
	return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def check_time(m, fed_at):
	"""The JSON "ts" and the user property agree, and say when the line was written (not when sent)."""
	doc = json.loads(m.payload)
	assert doc["ts"] == m.props["ts"], (doc, m.props)
	assert abs(iso_seconds(doc["ts"]) - fed_at) < 1.0, (doc["ts"], fed_at)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_replay_marks_and_keeps_the_newest_retained(broker, proxy, make_pty, make_gateway, make_sub, tmp_path,
                                                    protocol):
	v5 = protocol == "5"
	pty, gw, sub = start(broker, proxy, make_pty, make_gateway, make_sub, tmp_path, protocol=protocol)
	last = live_reading(pty, sub)
	live = sub.messages(T)[0]
	assert live.retain and "replayed" not in json.loads(live.payload)
	if v5:
		assert live.props["seq"] == "1" and "ts" in live.props and "replayed" not in live.props
	else:
		assert live.props == {}  # MQTT 3.1.1 has no properties: the JSON payload carries it all

	fed = outage(proxy, sub, pty, [10, 11, 12])
	got = reconnect(proxy, sub, {T}, 3)
	docs = [json.loads(m.payload) for m in got]
	assert [d["value"] for d in docs] == [10, 11, 12]  # oldest first
	assert [d["replayed"] for d in docs] == [True] * 3
	assert [d["seq"] for d in docs] == [last + 1, last + 2, last + 3]
	if v5:
		assert [m.props.get("replayed") for m in got] == ["1"] * 3
		assert [int(m.props["seq"]) for m in got] == [last + 1, last + 2, last + 3]
		for m, at in zip(got, fed):
			check_time(m, at)
	else:
		assert [m.props for m in got] == [{}] * 3
		for d, at in zip(docs, fed):
			assert abs(iso_seconds(d["ts"]) - at) < 1.0, (d, at)
	# only the newest is retained: the broker keeps it, not an older one
	assert [m.retain for m in got] == [False, False, True]

	fresh = make_sub(broker.port, [T], qos=1)
	kept = fresh.wait_topic(T, timeout=5)
	assert kept.retain and json.loads(kept.payload)["value"] == 12
	assert kept.props.get("replayed") == ("1" if v5 else None)

	# connected again: a new reading is live, and continues the sequence
	mark = sub.mark()
	m = feed_until(pty, "t=30", sub, lambda m: m.topic == T, since=mark)
	assert json.loads(m.payload)["value"] == 30 and m.retain
	assert "replayed" not in json.loads(m.payload)
	if v5:
		assert "replayed" not in m.props
		assert int(m.props["seq"]) == last + 4
	gw.assert_alive()


def test_history_topic(broker, proxy, make_pty, make_gateway, make_sub, tmp_path):
	# properties = "replays": live messages go without user properties (they cost per message)
	pty, gw, sub = start(broker, proxy, make_pty, make_gateway, make_sub, tmp_path,
	                     spool='replay = "history"; properties = "replays";')
	last = live_reading(pty, sub)
	assert sub.messages(T)[0].props == {}
	fed = outage(proxy, sub, pty, [10, 11, 12])
	got = reconnect(proxy, sub, {T, HISTORY}, 3)
	assert [(m.topic, json.loads(m.payload)["value"], m.retain) for m in got] == [
		(HISTORY, 10, False), (HISTORY, 11, False), (T, 12, True)]
	assert [m.props.get("replayed") for m in got] == ["1"] * 3
	assert [int(m.props["seq"]) for m in got] == [last + 1, last + 2, last + 3]
	for m, at in zip(got, fed):
		check_time(m, at)

	# a fresh subscriber: the newest value on the live topic, nothing retained on the history topic
	fresh = make_sub(broker.port, ["test/room/#"], qos=1)
	kept = fresh.wait_topic(T, timeout=5)
	assert json.loads(kept.payload)["value"] == 12
	time.sleep(0.5)
	assert fresh.messages(HISTORY) == []
	gw.assert_alive()


def test_readings_before_the_clock_is_synchronised(broker, proxy, make_pty, make_gateway, make_sub, tmp_path):
	sync = tmp_path / "synchronized"
	clock = f'time: {{ trust = "file"; sync_file = "{sync}"; }};\n'
	pty, gw, sub = start(broker, proxy, make_pty, make_gateway, make_sub, tmp_path, clock=clock)
	last = live_reading(pty, sub)
	live = sub.messages(T)[0]
	assert json.loads(live.payload)["ts"] is None  # not a wrong date
	assert "ts" not in live.props and "ts_unknown" not in live.props

	fed = outage(proxy, sub, pty, [10, 11])
	sync.touch()  # NTP synchronised while the broker is still away
	assert wait_until(lambda: "synchronised now" in gw.stderr_text(), timeout=5)
	got = reconnect(proxy, sub, {T}, 2)
	assert [json.loads(m.payload)["value"] for m in got] == [10, 11]
	for m, at in zip(got, fed):
		check_time(m, at)  # stamped with the time they were read, learnt afterwards
	gw.assert_alive()
