# SPDX-License-Identifier: MIT
"""A real headless Chromium for the tests, driven over the DevTools protocol.

Debian's chromium, started with --remote-debugging-port=0 on a private profile;
the port it chose is read from the profile's DevToolsActivePort file, and one
page target is driven with websocket-client (Debian's python3-websocket). Only
what the dashboard test needs: open a URL, evaluate JavaScript in the page,
wait for a condition, set the viewport, take a screenshot. Every wait is
bounded.
"""

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import websocket


def chromium_bin():
	for name in ("chromium", "chromium-browser", "google-chrome"):
		path = shutil.which(name)
		if path:
			return path
	return None


class Browser:
	def __init__(self, workdir):
		self.dir = Path(workdir)
		self.profile = self.dir / "chromium-profile"
		self.profile.mkdir(parents=True, exist_ok=True)
		self.log = open(self.dir / "chromium.log", "ab")
		args = [chromium_bin(), "--headless=new", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		        "--disable-extensions", "--disable-background-networking", "--disable-sync",
		        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		        f"--user-data-dir={self.profile}", "--window-size=1280,900", "about:blank"]
		if os.geteuid() == 0:
			args.insert(1, "--no-sandbox")  # Chromium refuses to run its sandbox as root
		self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
		self.ws = None
		self._id = 0
		self.console = []
		port = self._devtools_port(30)
		target = self._page_target(port, 10)
		self.ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=10)
		self.call("Page.enable")
		self.call("Runtime.enable")

	def _devtools_port(self, timeout):
		f = self.profile / "DevToolsActivePort"
		deadline = time.monotonic() + timeout
		while time.monotonic() < deadline:
			if self.proc.poll() is not None:
				raise AssertionError(f"chromium exited with {self.proc.returncode}")
			try:
				return int(f.read_text().splitlines()[0])
			except (OSError, ValueError, IndexError):
				time.sleep(0.1)
		raise AssertionError(f"chromium did not open its DevTools port within {timeout} s")

	@staticmethod
	def _page_target(port, timeout):
		deadline = time.monotonic() + timeout
		while time.monotonic() < deadline:
			with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
				pages = [t for t in json.load(r) if t.get("type") == "page"]
			if pages:
				return pages[0]
			time.sleep(0.1)
		raise AssertionError("chromium has no page target")

	def call(self, method, timeout=15.0, **params):
		"""One DevTools command; returns its result (events that arrive meanwhile are kept as console lines)."""
		self._id += 1
		mid = self._id
		self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
		deadline = time.monotonic() + timeout
		while True:
			left = deadline - time.monotonic()
			if left <= 0:
				raise AssertionError(f"no answer to {method} within {timeout} s")
			self.ws.settimeout(left)
			msg = json.loads(self.ws.recv())
			if msg.get("id") == mid:
				if "error" in msg:
					raise AssertionError(f"{method}: {msg['error']}")
				return msg.get("result", {})
			if msg.get("method") == "Runtime.consoleAPICalled":
				args = msg["params"].get("args", [])
				self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
			elif msg.get("method") == "Runtime.exceptionThrown":
				d = msg["params"]["exceptionDetails"]
				self.console.append("exception: " + d.get("exception", {}).get("description", d.get("text", "")))

	def open(self, url):
		self.call("Page.navigate", url=url)

	def js(self, expression):
		"""The value of EXPRESSION in the page (JSON-serialisable), awaiting a promise."""
		r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
		if "exceptionDetails" in r:
			raise AssertionError(f"{expression}: {r['exceptionDetails'].get('exception', {}).get('description')}")
		return r["result"].get("value")

	def wait(self, expression, timeout=15.0, what=None):
		"""Poll EXPRESSION until it is truthy; returns its value."""
		deadline = time.monotonic() + timeout
		last = None
		while time.monotonic() < deadline:
			last = self.js(expression)
			if last:
				return last
			time.sleep(0.1)
		raise AssertionError(f"{what or expression}: not true within {timeout} s (last {last!r}); "
		                     f"page console: {self.console[-5:]}")

	def viewport(self, width, height, mobile=False):
		self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
		          mobile=mobile)

	def screenshot(self, path):
		data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
		Path(path).write_bytes(base64.b64decode(data))
		return path

	def close(self):
		try:
			if self.ws:
				self.ws.close()
		finally:
			if self.proc.poll() is None:
				self.proc.terminate()
				try:
					self.proc.wait(10)
				except subprocess.TimeoutExpired:
					self.proc.kill()
					self.proc.wait(5)
			self.log.close()
