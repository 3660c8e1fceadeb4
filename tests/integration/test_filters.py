# SPDX-License-Identifier: MIT
"""Filter chains end to end: the real binary, a pty device, a real mosquitto.

Contract (README, "Filters"): a reading's `filters` run in order on each
value (after scale/offset, before round); what leaves the chain is
published. A `timeout` filter sends of itself when its input has been silent
that long: the last value again, or "None" (Home Assistant's "no value").
`--check` prints each chain; a bad filter is refused with file and line.
"""

import time

from conftest import feed_until, gateway_config

SYNC = "test/sim/sync"
T = "test/sim/t"
H = "test/sim/h"

DEVICE = """{{ name = "sim"; driver = "lines"; port = "{port}"; baud = 9600; format = "kv";
    readings = (
      {{ field = "sync"; }},
      {{ field = "t"; round = 1; qos = 1;
        filters = (
          {{ filter_out = 85; }},
          {{ median = {{ window_size = 3; send_every = 1; }}; }},
          {{ clamp = {{ min_value = 0; max_value = 50; }}; }},
          {{ delta = 0.5; }},
          {{ timeout = {{ timeout = 1.0; value = "last"; }}; }}
        ); }},
      {{ field = "h"; qos = 1; filters = ( {{ timeout = 1.0; }} ); }}
    ); }}"""


def test_chain_and_timeouts(broker, make_pty, make_gateway, make_sub, tmp_path):
	pty = make_pty("tty")
	gw = make_gateway(gateway_config(broker.port, tmp_path, DEVICE.format(port=pty.link)))
	sub = make_sub(broker.port, ["test/sim/#"], qos=2)
	gw.start()
	gw.wait_open(pty)
	# lines written before the gateway reads the port are lost: sync on a reading without filters
	feed_until(pty, "sync=1", sub, SYNC)

	mark = sub.mark()
	# 20 -> median [20] = 20, passes; 85 filtered out (never reaches the median);
	# 20.2 -> median 20.1: less than delta 0.5 from 20; 90 -> median [20 20.2 90] = 20.2: too;
	# 95 -> median [20.2 90 95] = 90 -> clamped to 50: published
	for line in ("t=20", "t=85", "t=20.2", "t=90", "t=95"):
		pty.write_line(line)
		time.sleep(0.05)
	first = sub.wait_topic(T, "50.0", timeout=5, since=mark)
	assert [m.payload for m in sub.messages(T, since=mark)] == [b"20.0", b"50.0"]

	# the timeout: 1 s after its last input the last value once more, and only once
	again = sub.wait_for(lambda m: m.topic == T and m.t > first.t, timeout=5, since=mark)
	assert again.payload == b"50.0"
	elapsed = again.t - first.t
	print(f"timeout republished after {elapsed:.3f} s (timeout = 1.0)")
	assert 0.9 <= elapsed <= 1.6, elapsed
	time.sleep(1.3)
	assert [m.payload for m in sub.messages(T, since=mark)] == [b"20.0", b"50.0", b"50.0"]

	# "unavailable": None, retained, after 1 s without h; the next h is published again
	mark = sub.mark()
	pty.write_line("h=40")
	val = sub.wait_topic(H, "40", timeout=5, since=mark)
	none = sub.wait_topic(H, "None", timeout=5, since=mark)
	assert 0.9 <= none.t - val.t <= 1.6, none.t - val.t
	late = make_sub(broker.port, [H], qos=1)
	m = late.wait_topic(H, timeout=5)
	assert m.payload == b"None" and m.retain
	mark = sub.mark()
	pty.write_line("h=40")
	sub.wait_topic(H, "40", timeout=5, since=mark)
	gw.assert_alive()


def test_check_prints_chain_and_refuses_bad_filter(make_gateway, tmp_path):
	conf = gateway_config(1, tmp_path, DEVICE.format(port=tmp_path / "tty"))
	(tmp_path / "tty").write_text("")
	gw = make_gateway(conf)
	cp = gw.check()
	assert cp.returncode == 0, cp.stderr
	assert ("filters: filter_out(85) -> median(window 3, every 1, first at 1) -> clamp(0..50, limit) -> "
	        "delta(>= 0.5) -> timeout(1 s, then last)") in cp.stdout, cp.stdout
	assert "filters: timeout(1 s, then unavailable)" in cp.stdout, cp.stdout

	bad = conf.replace("{ delta = 0.5; }", "{ delta = \"half\"; }")
	assert bad != conf
	gw2 = make_gateway(bad, name="bad")
	cp = gw2.check()
	assert cp.returncode == 1
	line = next(i + 1 for i, text in enumerate(bad.splitlines()) if "half" in text)
	assert f"bad.conf:{line}: delta must be a number or a percentage" in cp.stderr, cp.stderr
