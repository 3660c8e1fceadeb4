# SPDX-License-Identifier: MIT
"""expire_after: a silent device goes "offline" on <base>/<device>/status.

Contract (DESIGN.md, config key `expire_after`): a device that has produced
no reading for expire_after seconds is marked "offline" on
<base>/<device>/status, retained; its next reading marks it "online" again
(and is published as usual). Measured here with expire_after = 1 s on a
`lines` device behind a pty: the time from the last line written to the
"offline" message as the subscriber sees it.
"""

import time

from conftest import gateway_config

GW_STATUS = "test/gateway/gw1/status"
DEV_STATUS = "test/sim/status"
TEMP = "test/room/temperature"

DEVICE = """{{ name = "sim"; driver = "lines"; port = "{port}"; baud = 9600; format = "kv";
    expire_after = 1.0;
    readings = ( {{ field = "t"; topic = "room/temperature"; qos = 1; }} ); }}"""


def start(broker, make_pty, make_gateway, make_sub, tmp_path):
	pty = make_pty("tty")
	gw = make_gateway(gateway_config(broker.port, tmp_path, DEVICE.format(port=pty.link)))
	sub = make_sub(broker.port, ["test/#"], qos=2)
	gw.start()
	sub.wait_topic(GW_STATUS, "online", timeout=15)
	gw.wait_open(pty)
	return pty, gw, sub


def write_until_published(pty, sub, value, timeout=10.0):
	"""Write t=value every 0.2 s until it is published; return the monotonic time of the last write."""
	since = sub.mark()
	deadline = time.monotonic() + timeout
	while True:
		pty.write_line(f"t={value}")
		last = time.monotonic()
		try:
			sub.wait_topic(TEMP, str(value), timeout=0.2, since=since)
			return last
		except AssertionError:
			if time.monotonic() > deadline:
				raise


def test_offline_after_silence_online_with_next_reading(broker, make_pty, make_gateway, make_sub, tmp_path):
	pty, gw, sub = start(broker, make_pty, make_gateway, make_sub, tmp_path)

	# first reading: online (retained), and the reading itself
	last = write_until_published(pty, sub, 21)
	online = sub.wait_topic(DEV_STATUS, "online", timeout=5)
	assert online.qos == 1  # (a live subscriber never sees the retain flag: the late one below does)

	# silence: offline about 1 s after the last line
	mark = sub.mark()
	offline = sub.wait_topic(DEV_STATUS, "offline", timeout=5, since=mark)
	elapsed = offline.t - last
	print(f"offline {elapsed:.3f} s after the last line (expire_after = 1.0)")
	assert 0.95 <= elapsed <= 1.5, elapsed
	assert offline.qos == 1
	# said once, not repeated while the device stays silent
	time.sleep(1.5)
	assert [m.payload for m in sub.messages(DEV_STATUS, since=mark)] == [b"offline"]

	# a late subscriber gets the retained "offline"
	late = make_sub(broker.port, [DEV_STATUS], qos=1)
	m = late.wait_topic(DEV_STATUS, timeout=5)
	assert m.payload == b"offline" and m.retain

	# the next reading: online again, then the value
	mark = sub.mark()
	write_until_published(pty, sub, 22)
	back = sub.wait_topic(DEV_STATUS, "online", timeout=5, since=mark)
	value = sub.wait_topic(TEMP, "22", since=mark)
	assert back.t <= value.t
	late = make_sub(broker.port, [DEV_STATUS], qos=1)
	m = late.wait_topic(DEV_STATUS, timeout=5)
	assert m.payload == b"online" and m.retain
	gw.assert_alive()


def test_steady_readings_never_expire(broker, make_pty, make_gateway, make_sub, tmp_path):
	pty, gw, sub = start(broker, make_pty, make_gateway, make_sub, tmp_path)
	write_until_published(pty, sub, 20)
	sub.wait_topic(DEV_STATUS, "online", timeout=5)
	mark = sub.mark()
	# a line every 0.4 s for 3 s: never 1 s of silence
	for i in range(8):
		pty.write_line(f"t={30 + i}")
		time.sleep(0.4)
	sub.wait_topic(TEMP, "37", timeout=5, since=mark)
	assert sub.messages(DEV_STATUS, since=mark) == []
	gw.assert_alive()


def test_never_heard_goes_offline(broker, make_pty, make_gateway, make_sub, tmp_path):
	"""A device that never sends anything is offline expire_after s after start."""
	pty, gw, sub = start(broker, make_pty, make_gateway, make_sub, tmp_path)
	m = sub.wait_topic(DEV_STATUS, timeout=5)
	assert m.payload == b"offline"
	assert sub.messages(TEMP) == []
	gw.assert_alive()
