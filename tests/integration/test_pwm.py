# SPDX-License-Identifier: MIT
"""The pwm actuator end to end: MQTT commands -> sensorgate -> a directory tree
laid out like /sys/class/pwm (the driver's `root` setting points at it).

The tree plays the kernel's part where it acts: a thread watches it with
inotify and, when the channel number is written to pwmchip0/export, makes
pwmchip0/pwm<N>/ with period, duty_cycle, enable and polarity (after a delay
when the test asks: udev handing the files over late). The same watch
records the order in which the gateway writes the files; from the values
before and after a command and that order, every state the channel passed
through is rebuilt and the kernel's rules checked: the duty never above the
period, enable written last. Checked: the export, the initial value, commands
to duty cycles and their retained state, refusals (range, step), a channel
that appears late, the safe value at SIGTERM, --check and discovery.
"""

import ctypes
import ctypes.util
import json
import os
import re
import struct
import threading
import time
from pathlib import Path

import pytest

from conftest import gateway_config, wait_until
from test_actuators import publish

IN_CLOSE_WRITE = 0x8
IN_NONBLOCK = 0o4000

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class FakePwmTree:
	"""<root>/pwmchip0 with npwm and export; the kernel's export played by a thread."""

	def __init__(self, root, npwm=2, export_delay=0.0):
		self.root = Path(root)
		self.chip = self.root / "pwmchip0"
		self.chip.mkdir(parents=True)
		(self.chip / "npwm").write_text(f"{npwm}\n")
		(self.chip / "export").write_text("")
		(self.chip / "unexport").write_text("")
		self.export_delay = export_delay
		self.writes = []  # (file name) in the order inotify reported them
		self._lock = threading.Lock()
		self._fd = _libc.inotify_init1(IN_NONBLOCK)
		assert self._fd >= 0
		self._wds = {}
		self._watch(self.chip)
		self._stop = threading.Event()
		self._thread = threading.Thread(target=self._run, daemon=True)
		self._thread.start()

	def _watch(self, path):
		wd = _libc.inotify_add_watch(self._fd, str(path).encode(), IN_CLOSE_WRITE)
		assert wd >= 0, os.strerror(ctypes.get_errno())
		self._wds[wd] = path

	def _make_channel(self, n):
		"""Made aside, watched, then renamed into place: the watch sees every write the gateway makes."""
		time.sleep(self.export_delay)
		d = self.chip / f"pwm{n}.new"
		d.mkdir()
		for name, value in (("period", "0"), ("duty_cycle", "0"), ("enable", "0"), ("polarity", "normal")):
			(d / name).write_text(value + "\n")
		with self._lock:
			self._watch(d)
		d.rename(self.chip / f"pwm{n}")

	def _run(self):
		while not self._stop.is_set():
			try:
				buf = os.read(self._fd, 4096)
			except BlockingIOError:
				time.sleep(0.002)
				continue
			off = 0
			while off < len(buf):
				wd, _mask, _cookie, length = struct.unpack_from("iIII", buf, off)
				name = buf[off + 16:off + 16 + length].split(b"\0", 1)[0].decode()
				off += 16 + length
				with self._lock:
					self.writes.append(name)
				if name == "export" and self._wds.get(wd) == self.chip:
					text = (self.chip / "export").read_text().strip()
					if text and not (self.chip / f"pwm{text}").exists():
						threading.Thread(target=self._make_channel, args=(int(text),), daemon=True).start()

	def mark(self):
		with self._lock:
			return len(self.writes)

	def since(self, mark):
		with self._lock:
			return list(self.writes[mark:])

	def value(self, n, name):
		return int((self.chip / f"pwm{n}" / name).read_text().split()[0])

	def values(self, n=0):
		return tuple(self.value(n, k) for k in ("period", "duty_cycle", "enable"))

	def close(self):
		self._stop.set()
		self._thread.join(2)
		os.close(self._fd)


@pytest.fixture
def tree(tmp_path):
	made = []

	def make(**kw):
		t = FakePwmTree(tmp_path / "pwm", **kw)
		made.append(t)
		return t

	yield make
	for t in made:
		t.close()


def assert_kernel_order(before, order, after):
	"""before/after: (period, duty, enable); order: the files written between them."""
	p, d, e = before
	for w in order:
		if w == "period":
			p = after[0]
		elif w == "duty_cycle":
			d = after[1]
		elif w == "enable":
			e = after[2]
			assert not e or (p, d) == after[:2], f"enabled before period and duty were right: {order}"
		assert d <= p, f"after writing {w}: duty {d} above period {p} (order {order})"
	assert (p, d, e) == after, f"files changed without being written: {order}"


FAN = ('{{ name = "fan"; driver = "pwm"; root = "{root}"; channel = 0; frequency = 25000;\n'
       '   type = "number"; min = 0; max = 100; step = 5; {extra} }}')


def config(broker, tmp_path, extra='initial = "20"; safe = "100";', more=""):
	return gateway_config(broker.port, tmp_path, "",
	                      extra=f"actuators = ( {FAN.format(root=tmp_path / 'pwm', extra=extra)} );\n{more}")


def test_commands_move_the_duty_cycle_in_the_kernels_order(broker, make_gateway, make_sub, tmp_path, tree):
	t = tree()
	gw = make_gateway(config(broker, tmp_path))
	sub = make_sub(broker.port, ["test/fan", "test/fan/error"])
	gw.start()
	sub.wait_topic("test/fan", "20", timeout=10)
	assert t.values() == (40000, 8000, 1)  # 25 kHz, 20 %, enabled
	assert wait_until(lambda: len(t.since(0)) >= 4, 2), t.since(0)  # the watch's thread reads behind
	assert t.since(0) == ["export", "period", "duty_cycle", "enable"], t.since(0)
	assert (t.chip / "export").read_text().strip() == "0"

	for value, duty in (("80", 32000), ("0", 0), ("55", 22000)):
		before, mark = t.values(), t.mark()
		publish(broker.port, "test/fan/set", value)
		sub.wait_topic("test/fan", value, timeout=5, since=len(sub.messages()) - 1)
		assert wait_until(lambda: t.values()[1] == duty and t.since(mark), 2), (t.values(), t.since(mark))
		time.sleep(0.1)  # anything more would show by now
		order = t.since(mark)
		assert order == ["duty_cycle"], order
		assert_kernel_order(before, order, t.values())
	late = make_sub(broker.port, ["test/fan"])
	assert late.wait_topic("test/fan", "55", timeout=5).retain

	# refused: out of range, off the step; nothing written
	mark = t.mark()
	publish(broker.port, "test/fan/set", "120")
	err = json.loads(sub.wait_topic("test/fan/error", timeout=5).payload)
	assert "out of range" in err["error"], err
	publish(broker.port, "test/fan/set", "42")
	sub.wait_for(lambda m: m.topic == "test/fan/error" and b"step" in m.payload, timeout=5)
	time.sleep(0.2)
	assert t.since(mark) == [] and t.values()[1] == 22000

	# SIGTERM: the safe value (100 %), then the channel is left as it is
	gw.stop()
	assert t.values() == (40000, 40000, 1)
	assert "fan: safe state on shutdown: 100" in gw.stderr_text()


def test_existing_channel_at_a_longer_period(broker, make_gateway, make_sub, tmp_path, tree):
	"""A channel left at 1 kHz, 90 %: the duty must shrink before the period does."""
	t = tree()
	d = t.chip / "pwm0"
	d.mkdir()
	for name, value in (("period", "1000000"), ("duty_cycle", "900000"), ("enable", "1"), ("polarity", "normal")):
		(d / name).write_text(value + "\n")
	with t._lock:
		t._watch(d)
	before = t.values()
	gw = make_gateway(config(broker, tmp_path))
	sub = make_sub(broker.port, ["test/fan"])
	gw.start()
	sub.wait_topic("test/fan", "20", timeout=10)
	assert wait_until(lambda: len(t.since(0)) >= 2, 2), t.since(0)
	time.sleep(0.1)
	order = t.since(0)
	assert order == ["duty_cycle", "period"], order  # no export (it exists), no enable (it is on)
	assert_kernel_order(before, order, t.values())
	assert t.values() == (40000, 8000, 1)
	gw.stop()


def test_channel_handed_over_late(broker, make_gateway, make_sub, tmp_path, tree):
	"""udev gives the exported channel's files to the gpio group a moment later: the command waits."""
	t = tree(export_delay=0.6)
	gw = make_gateway(config(broker, tmp_path))
	sub = make_sub(broker.port, ["test/fan", "test/fan/error"])
	gw.start()
	sub.wait_topic("test/fan", "20", timeout=10)
	assert t.values() == (40000, 8000, 1)
	assert not sub.messages("test/fan/error")
	assert "cannot open" not in gw.stderr_text()
	gw.stop()


def test_missing_chip_is_retried(broker, make_gateway, make_sub, tmp_path):
	gw = make_gateway(config(broker, tmp_path))  # no tree at all
	sub = make_sub(broker.port, ["test/fan/error", "test/gateway/gw1/status"])
	gw.start()
	sub.wait_topic("test/gateway/gw1/status", "online", timeout=10)
	assert wait_until(lambda: "cannot open pwmchip0 channel 0: No such file or directory" in gw.stderr_text(), 5), \
		gw.stderr_text()
	FakePwmTree(tmp_path / "pwm").close()  # the chip appears (a module loaded late)
	assert wait_until(lambda: "pwmchip0 channel 0 open again" in gw.stderr_text(), 10), gw.stderr_text()
	gw.stop()


def test_check_and_discovery(broker, make_gateway, make_sub, tmp_path, tree):
	tree()
	gw = make_gateway(config(broker, tmp_path, more="discovery: { enabled = true; };\n"))
	cp = gw.check()
	assert cp.returncode == 0, cp.stderr
	out = " ".join(cp.stdout.split())
	assert (f"pwm {tmp_path}/pwm/pwmchip0 channel 0, 25000 Hz (period 40000 ns), duty 0..100 % for 0..100"
	        in out), cp.stdout
	assert "number homeassistant/number/gw1/fan/config" in out
	sub = make_sub(broker.port, ["homeassistant/number/gw1/fan/config"])
	gw.start()
	n = json.loads(sub.wait_topic("homeassistant/number/gw1/fan/config", timeout=10).payload)
	assert (n["command_topic"], n["min"], n["max"], n["step"]) == ("test/fan/set", 0, 100, 5), n
	gw.stop()
	bad = make_gateway(config(broker, tmp_path, extra='initial = "20"; polarity = "inverted";'))
	cp = bad.check()
	assert cp.returncode == 1
	assert re.search(r"sensorgate1\.conf:8: \"polarity\" must be one of \"normal\", \"inversed\"", cp.stderr), cp.stderr
