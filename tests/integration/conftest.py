# SPDX-License-Identifier: MIT
"""Integration harness: a real mosquitto, real ptys, the real binary.

Fixtures (each cleans up everything it started, whatever the test did):
  broker          a private mosquitto on 127.0.0.1:<free port>, started.
                  Options through @pytest.mark.broker(tls=..., password_file=...,
                  persistence=True, ...) or the broker_factory fixture.
  broker_factory  make_broker(**options) -> started Broker (several per test).
  make_pty        make_pty(name="tty") -> Pty whose .link (a symlink in
                  tmp_path) is the port path to put in the gateway config.
  make_gateway    make_gateway(config_text, verbose=True) -> Gateway (not
                  started: call .start()). At teardown the process is killed
                  if alive and the test FAILS if its stderr (or that of any
                  --check run) holds a sanitizer report.
  make_sub        make_sub(port, topics, qos=2, protocol="5") -> Sub,
                  subscribed (SUBACK received) when returned.
  tls_certs       a CA, a server cert for 127.0.0.1/localhost and a client
                  cert, made with openssl once per session.
  spawn           spawn(args, name) -> Popen of any helper (simulate-sensor,
                  socat), output in tmp_path/<name>.log, stopped at teardown.
Helpers: gateway_config(), sim_device(), feed_until(), wait_until(),
free_port(), make_password_file().

Every wait is bounded; each test also has a hard limit (SG_TEST_TIMEOUT,
default 120 s) after which it fails with a TimeoutError. Processes started
here are registered and killed at exit, also when pytest is terminated.

Environment: SENSORGATE_BIN (default <repo>/build/sensorgate),
MOSQUITTO (default: mosquitto on PATH, else /usr/sbin/mosquitto).
"""

import collections
import errno
import fcntl
import os
import pwd
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import termios
import threading
import time
import tty
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

REPO = Path(__file__).resolve().parents[2]
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
TEST_TIMEOUT = float(os.environ.get("SG_TEST_TIMEOUT", "120"))


def sensorgate_bin():
	return os.environ.get("SENSORGATE_BIN") or str(REPO / "build" / "sensorgate")


def mosquitto_bin():
	env = os.environ.get("MOSQUITTO")
	if env:
		return env
	return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


# --------------------------------------------------------------------------
# Process registry: whatever we start dies with us.

_live_procs = set()
_live_lock = threading.Lock()


def _register(proc):
	with _live_lock:
		_live_procs.add(proc)


def _unregister(proc):
	with _live_lock:
		_live_procs.discard(proc)


def _kill_all():
	with _live_lock:
		procs = list(_live_procs)
		_live_procs.clear()
	for p in procs:
		if p.poll() is None:
			try:
				p.kill()
				p.wait(timeout=5)
			except (OSError, subprocess.TimeoutExpired):
				pass


def _on_sigterm(signo, _frame):
	_kill_all()
	raise KeyboardInterrupt(f"signal {signo}")


def pytest_configure(config):
	config.addinivalue_line("markers",
	                        "broker(**options): options for the broker fixture")
	config.addinivalue_line("markers",
	                        "stress: a long delivery-guarantee run under faults; scripts/test.sh runs it in "
	                        "the plain pass only (the sanitizers look for memory errors, which the shorter "
	                        "fault tests reach through the same code)")
	signal.signal(signal.SIGTERM, _on_sigterm)


def pytest_unconfigure(config):
	_kill_all()


# --------------------------------------------------------------------------
# Small helpers.

def free_port():
	"""A TCP port free on 127.0.0.1 right now (bind to 0, read, close)."""
	with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
	try:
		with socket.create_connection((host, port), timeout=0.5):
			return True
	except OSError:
		return False


def wait_until(pred, timeout, interval=0.05):
	"""Poll pred() until truthy or timeout; returns its last value."""
	deadline = time.monotonic() + timeout
	while True:
		v = pred()
		if v or time.monotonic() >= deadline:
			return v
		time.sleep(interval)


def tail(text, n=60):
	lines = text.splitlines()
	return "\n".join(lines[-n:])


def sanitizer_report(text):
	"""The sanitizer part of a stderr text, or None."""
	for m in SANITIZER_MARKERS:
		i = text.find(m)
		if i >= 0:
			start = text.rfind("\n", 0, max(0, i - 200)) + 1
			return text[start:start + 6000]
	return None


@pytest.fixture(autouse=True)
def _test_time_limit():
	"""Hard per-test limit: a hung test fails instead of hanging the suite."""
	def on_alarm(_signo, _frame):
		raise TimeoutError(f"test exceeded {TEST_TIMEOUT:.0f} s (SG_TEST_TIMEOUT)")
	old = signal.signal(signal.SIGALRM, on_alarm)
	signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT)
	yield
	signal.setitimer(signal.ITIMER_REAL, 0)
	signal.signal(signal.SIGALRM, old)


# Logs of the processes of a test, attached to its report when it fails.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
	outcome = yield
	rep = outcome.get_result()
	if rep.failed:
		for title, fn in getattr(item, "_sg_logs", []):
			try:
				rep.sections.append((title, tail(fn(), 80)))
			except OSError:
				pass


def _attach_log(request, title, fn):
	node = request.node
	if not hasattr(node, "_sg_logs"):
		node._sg_logs = []
	node._sg_logs.append((title, fn))


# --------------------------------------------------------------------------
# Broker.

class Broker:
	"""A private mosquitto. .port stays the same across stop()/start()."""

	def __init__(self, workdir, tls=None, password_file=None, persistence=False,
	             allow_anonymous=None, extra_conf=""):
		self.dir = Path(workdir)
		self.dir.mkdir(parents=True, exist_ok=True)
		self.tls = tls                  # dict: cafile, certfile, keyfile, require_certificate
		self.password_file = password_file
		self.persistence = persistence
		self.allow_anonymous = (password_file is None) if allow_anonymous is None else allow_anonymous
		self.extra_conf = extra_conf
		self.conf = self.dir / "mosquitto.conf"
		self.log_path = self.dir / "mosquitto.log"
		self.port = None
		self.proc = None
		self._logf = None

	@property
	def url(self):
		return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

	def _write_conf(self):
		user = pwd.getpwuid(os.geteuid()).pw_name
		c = [
			"per_listener_settings false",
			# As root mosquitto would switch to user "mosquitto", which cannot
			# write into the test's private directory. Stay who we are.
			f"user {user}",
			f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
			"log_dest stderr",
			"log_type all",
			"connection_messages true",
		]
		if self.persistence:
			c += ["persistence true", f"persistence_location {self.dir}/",
			      "autosave_interval 1"]
		else:
			c += ["persistence false"]
		if self.password_file:
			c.append(f"password_file {self.password_file}")
		c.append(f"listener {self.port} 127.0.0.1")
		if self.tls:
			c.append(f"cafile {self.tls['cafile']}")
			c.append(f"certfile {self.tls['certfile']}")
			c.append(f"keyfile {self.tls['keyfile']}")
			if self.tls.get("require_certificate"):
				c.append("require_certificate true")
		if self.extra_conf:
			c.append(self.extra_conf)
		self.conf.write_text("\n".join(c) + "\n")

	def _spawn(self):
		self._write_conf()
		self._logf = open(self.log_path, "ab")
		self.proc = subprocess.Popen([mosquitto_bin(), "-c", str(self.conf)],
		                             stdin=subprocess.DEVNULL, stdout=self._logf,
		                             stderr=subprocess.STDOUT, cwd=self.dir)
		_register(self.proc)

	def _wait_listening(self, timeout):
		deadline = time.monotonic() + timeout
		while time.monotonic() < deadline:
			if self.proc.poll() is not None:
				return False
			if port_open(self.port):
				return True
			time.sleep(0.05)
		return False

	def start(self, timeout=5.0):
		"""Start (or restart on the same port); bounded wait for the listener."""
		assert not self.running(), "broker already running"
		fixed = self.port is not None
		tries = 10 if fixed else 3
		for _ in range(tries):
			if not fixed:
				self.port = free_port()
			self._spawn()
			if self._wait_listening(timeout):
				return self
			self._reap()
			if fixed:
				time.sleep(0.5)  # the old socket may still be closing
		raise RuntimeError(f"mosquitto did not listen on {self.port}:\n{tail(self.log_text())}")

	def running(self):
		return self.proc is not None and self.proc.poll() is None

	def _reap(self):
		if self.proc is not None:
			if self.proc.poll() is None:
				self.proc.kill()
			try:
				self.proc.wait(timeout=5)
			except subprocess.TimeoutExpired:
				pass
			_unregister(self.proc)
		if self._logf:
			self._logf.close()
			self._logf = None

	def stop(self, timeout=5.0):
		"""SIGTERM (clients see the connection close), SIGKILL after timeout."""
		if self.running():
			self.proc.terminate()
			try:
				self.proc.wait(timeout=timeout)
			except subprocess.TimeoutExpired:
				pass
		self._reap()

	def kill9(self):
		if self.running():
			self.proc.send_signal(signal.SIGKILL)
		self._reap()

	def restart(self, down_for=0.0):
		self.stop()
		time.sleep(down_for)
		return self.start()

	def log_text(self):
		try:
			return self.log_path.read_text(errors="replace")
		except OSError:
			return ""


@pytest.fixture
def broker_factory(tmp_path, request):
	brokers = []

	def make(**options):
		b = Broker(tmp_path / f"broker{len(brokers)}", **options)
		brokers.append(b)
		_attach_log(request, f"mosquitto {len(brokers) - 1} log", b.log_text)
		return b.start()

	yield make
	for b in brokers:
		b.stop()


@pytest.fixture
def broker(broker_factory, request):
	m = request.node.get_closest_marker("broker")
	return broker_factory(**(m.kwargs if m else {}))


def make_password_file(path, users):
	"""A mosquitto password file for {user: password} (mosquitto_passwd -b)."""
	path = Path(path)
	tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
	first = True
	for user, password in users.items():
		args = [tool, "-b"] + (["-c"] if first else []) + [str(path), user, password]
		subprocess.run(args, check=True, timeout=30, capture_output=True)
		first = False
	return str(path)


# --------------------------------------------------------------------------
# TLS material.

def _openssl(*args, cwd):
	subprocess.run(["openssl", *args], cwd=cwd, check=True, timeout=30,
	               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory):
	"""CA + server cert (SAN 127.0.0.1, localhost) + client cert, EC P-256."""
	d = tmp_path_factory.mktemp("tls")
	ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
	_openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt",
	         "-days", "30", "-subj", "/CN=sensorgate test CA", cwd=d)
	(d / "server.ext").write_text(
		"subjectAltName=IP:127.0.0.1,DNS:localhost\n"
		"extendedKeyUsage=serverAuth\n")
	(d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
	for name in ("server", "client"):
		_openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
		         "-subj", f"/CN={'localhost' if name == 'server' else 'sensorgate-client'}",
		         cwd=d)
		_openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt",
		         "-CAkey", "ca.key", "-CAcreateserial", "-days", "30",
		         "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=d)
	return {
		"dir": d,
		"cafile": str(d / "ca.crt"),
		"certfile": str(d / "server.crt"),
		"keyfile": str(d / "server.key"),
		"client_cert": str(d / "client.crt"),
		"client_key": str(d / "client.key"),
	}


# --------------------------------------------------------------------------
# Pseudo-terminal standing in for a serial sensor.

class Pty:
	"""A pty whose slave is reached through a stable symlink (.link).

	unplug(): close the master (the gateway's reads fail with EIO/POLLHUP,
	/dev/pts/N disappears) and remove the link, as udev would.
	replug(): a new pty, link repointed. The slave is never held open here;
	a thread drains the master so the gateway's writes never block and keeps
	what it read (.received()).
	"""

	def __init__(self, link):
		self.link = Path(link)
		self.master = None
		self.path = None
		self._rx = bytearray()
		self._rx_lock = threading.Lock()
		self._stop = None
		self._thread = None
		self._open()

	def _open(self):
		master, slave = os.openpty()
		try:
			tty.setraw(slave)  # no echo/translation before the gateway sets its mode
			self.path = os.ttyname(slave)
		finally:
			os.close(slave)
		fcntl.fcntl(master, fcntl.F_SETFL,
		            fcntl.fcntl(master, fcntl.F_GETFL) | os.O_NONBLOCK)
		self.master = master
		tmp = self.link.with_name(self.link.name + ".new")
		try:
			tmp.unlink()
		except FileNotFoundError:
			pass
		os.symlink(self.path, tmp)
		os.replace(tmp, self.link)
		self._stop = threading.Event()
		self._thread = threading.Thread(target=self._drain, args=(master, self._stop),
		                                daemon=True)
		self._thread.start()

	def _drain(self, fd, stop):
		p = select.poll()
		p.register(fd, select.POLLIN)
		while not stop.is_set():
			try:
				ev = p.poll(100)
			except InterruptedError:
				continue
			if not ev:
				continue
			if ev[0][1] & select.POLLIN:
				try:
					data = os.read(fd, 65536)
				except BlockingIOError:
					continue
				except OSError as e:
					if e.errno != errno.EIO:
						return
					data = b""
				if data:
					with self._rx_lock:
						self._rx += data
					continue
			# POLLHUP: nobody has the slave open; nothing to read yet.
			stop.wait(0.05)

	def received(self):
		with self._rx_lock:
			return bytes(self._rx)

	def plugged(self):
		return self.master is not None

	def write(self, data, timeout=5.0):
		"""Write all of data to the master; bounded wait if the buffer is full."""
		assert self.master is not None, "pty is unplugged"
		if isinstance(data, str):
			data = data.encode()
		view = memoryview(data)
		deadline = time.monotonic() + timeout
		while view:
			try:
				n = os.write(self.master, view)
				view = view[n:]
			except BlockingIOError:
				if time.monotonic() >= deadline:
					raise TimeoutError(f"pty buffer full: {len(view)} bytes not written")
				time.sleep(0.01)

	def unread(self):
		"""Bytes written that the gateway has not read yet (FIONREAD on the slave)."""
		fd = os.open(self.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
		try:
			return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
		finally:
			os.close(fd)

	def write_line(self, line, eol="\n"):
		self.write(line + eol)

	def close_master(self, remove_link=True):
		if self.master is None:
			return
		self._stop.set()
		self._thread.join(timeout=5)
		os.close(self.master)
		self.master = None
		if remove_link:
			try:
				self.link.unlink()
			except FileNotFoundError:
				pass

	unplug = close_master

	def reopen(self):
		"""A new pty behind the same link (a replug)."""
		self.close_master(remove_link=False)
		self._open()
		return self

	replug = reopen

	def close(self):
		self.close_master(remove_link=True)


@pytest.fixture
def make_pty(tmp_path):
	ptys = []

	def make(name="tty"):
		p = Pty(tmp_path / name)
		ptys.append(p)
		return p

	yield make
	for p in ptys:
		p.close()


# --------------------------------------------------------------------------
# The gateway under test.

class Gateway:
	"""One sensorgate process (and its --check runs) on one config file."""

	def __init__(self, workdir, config_text, name="sensorgate", verbose=True):
		self.dir = Path(workdir)
		self.bin = sensorgate_bin()
		self.conf = self.dir / f"{name}.conf"
		self.conf.write_text(config_text, encoding="utf-8")
		self.stderr_path = self.dir / f"{name}.stderr"
		self.stdout_path = self.dir / f"{name}.stdout"
		self.verbose = verbose
		self.proc = None
		self.returncode = None
		self._outputs = []  # (what, stderr text) of short runs, for the sanitizer check

	# -- long-running process

	def start(self, *extra, env=None, wrap=()):
		"""env: variables to set (e.g. SSL_CERT_FILE) on top of ours; wrap: a command that execs
		the rest of its arguments (the gateway's command line), e.g. to run it in a namespace."""
		assert os.access(self.bin, os.X_OK), \
			f"{self.bin} missing or not executable (set SENSORGATE_BIN or run make)"
		assert not self.alive(), "gateway already running"
		args = list(wrap) + [self.bin, "-c", str(self.conf)]
		if self.verbose:
			args.append("-v")
		args += list(extra)
		with open(self.stderr_path, "ab") as err, open(self.stdout_path, "ab") as out:
			self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
			                             stderr=err, cwd=self.dir,
			                             env=dict(os.environ, **env) if env else None)
		_register(self.proc)
		self.returncode = None
		return self

	@property
	def pid(self):
		return self.proc.pid

	def alive(self):
		return self.proc is not None and self.proc.poll() is None

	def wait_exit(self, timeout=10.0):
		"""Returns the exit code, or None if still running after timeout."""
		try:
			self.returncode = self.proc.wait(timeout=timeout)
		except subprocess.TimeoutExpired:
			return None
		_unregister(self.proc)
		return self.returncode

	def terminate(self, timeout=10.0):
		"""SIGTERM and a bounded wait; SIGKILL if it does not exit. Returns the code."""
		if self.alive():
			self.proc.send_signal(signal.SIGTERM)
		rc = self.wait_exit(timeout)
		if rc is None:
			self.kill9()
			raise AssertionError(f"sensorgate did not exit within {timeout:.0f} s of SIGTERM\n"
			                     f"{tail(self.stderr_text())}")
		return rc

	def stop(self, timeout=10.0):
		"""SIGTERM; asserts a clean exit (code 0) within timeout."""
		rc = self.terminate(timeout)
		assert rc == 0, f"sensorgate exited with {rc} on SIGTERM\n{tail(self.stderr_text())}"
		return rc

	def kill9(self):
		if self.alive():
			self.proc.send_signal(signal.SIGKILL)
		if self.proc is not None:
			self.wait_exit(5)

	def stderr_text(self):
		try:
			return self.stderr_path.read_text(errors="replace")
		except OSError:
			return ""

	def assert_alive(self):
		assert self.alive(), (f"sensorgate died (code {self.proc.poll()})\n"
		                      f"{tail(self.stderr_text())}")

	# -- what the process has open, how busy it is

	def open_fds(self):
		out = []
		try:
			names = os.listdir(f"/proc/{self.pid}/fd")
		except OSError:
			return out
		for n in names:
			try:
				out.append(os.readlink(f"/proc/{self.pid}/fd/{n}"))
			except OSError:
				pass
		return out

	def has_open(self, path):
		real = os.path.realpath(path)
		return real in self.open_fds()

	def wait_open(self, pty, timeout=10.0):
		"""Wait until the process holds pty's slave open (it opened the port)."""
		ok = wait_until(lambda: self.alive() and self.has_open(pty.path), timeout)
		assert ok, (f"sensorgate did not open {pty.link} -> {pty.path} within {timeout:.0f} s\n"
		            f"{tail(self.stderr_text())}")

	def cpu_seconds(self):
		with open(f"/proc/{self.pid}/stat") as f:
			fields = f.read().rsplit(")", 1)[1].split()
		ticks = os.sysconf("SC_CLK_TCK")
		return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

	# -- short runs

	def run(self, *args, timeout=10.0, env=None):
		"""Run the binary with args to completion (bounded); returns CompletedProcess."""
		assert os.access(self.bin, os.X_OK), \
			f"{self.bin} missing or not executable (set SENSORGATE_BIN or run make)"
		try:
			cp = subprocess.run([self.bin, *args], stdin=subprocess.DEVNULL,
			                    capture_output=True, timeout=timeout, cwd=self.dir,
			                    env=dict(os.environ, **env) if env else None)
		except subprocess.TimeoutExpired as e:
			raise AssertionError(f"sensorgate {' '.join(args)} still running after {timeout} s") from e
		cp.stdout = cp.stdout.decode(errors="replace")
		cp.stderr = cp.stderr.decode(errors="replace")
		self._outputs.append((" ".join(args), cp.stderr))
		return cp

	def check(self, timeout=10.0, env=None):
		return self.run("--check", "-c", str(self.conf), timeout=timeout, env=env)

	# -- teardown

	def finalize(self):
		"""Kill if alive; return sanitizer findings (list of strings)."""
		if self.proc is not None and self.alive():
			self.kill9()
		found = []
		rep = sanitizer_report(self.stderr_text())
		if rep:
			found.append(f"{self.stderr_path}:\n{rep}")
		for what, text in self._outputs:
			rep = sanitizer_report(text)
			if rep:
				found.append(f"sensorgate {what}:\n{rep}")
		return found


@pytest.fixture
def make_gateway(tmp_path, request):
	gws = []

	def make(config_text, name=None, verbose=True):
		name = name or ("sensorgate" if not gws else f"sensorgate{len(gws)}")
		g = Gateway(tmp_path, config_text, name=name, verbose=verbose)
		gws.append(g)
		_attach_log(request, f"{name} stderr", g.stderr_text)
		return g

	yield make
	problems = []
	for g in gws:
		problems += g.finalize()
	if problems:
		pytest.fail("sanitizer report(s):\n" + "\n".join(problems), pytrace=False)


# --------------------------------------------------------------------------
# MQTT subscriber.

# props: the MQTT 5 user properties, as a dict (empty under 3.1.1)
Msg = collections.namedtuple("Msg", "topic payload qos retain t props", defaults=({},))


def _paho_client(client_id, protocol):
	proto = mqtt.MQTTv5 if str(protocol) == "5" else mqtt.MQTTv311
	kw = {"client_id": client_id, "protocol": proto}
	if proto != mqtt.MQTTv5:
		kw["clean_session"] = True
	if hasattr(mqtt, "CallbackAPIVersion"):  # paho >= 2.0
		kw["callback_api_version"] = mqtt.CallbackAPIVersion.VERSION1
	return mqtt.Client(**kw)


_pub_n = 0


def publish(port, topic, payload, qos=1, retain=False, protocol="5", props=None, user=None, password=None,
            timeout=5.0):
	"""Publish one message with a fresh paho client; returns once the broker has it (QoS 1/2)."""
	global _pub_n
	_pub_n += 1
	c = _paho_client(f"sg-test-pub-{os.getpid()}-{_pub_n}", protocol)
	if user:
		c.username_pw_set(user, password)
	connected = threading.Event()
	c.on_connect = lambda *_a: connected.set()
	c.connect("127.0.0.1", port, keepalive=30)
	c.loop_start()
	try:
		assert connected.wait(timeout), "publisher: no CONNACK"
		kw = {"properties": props} if props is not None else {}
		info = c.publish(topic, payload, qos=qos, retain=retain, **kw)
		if qos:
			info.wait_for_publish(timeout)
			assert info.is_published(), f"publisher: {topic} not acknowledged"
	finally:
		c.disconnect()
		c.loop_stop()


class Sub:
	"""A subscriber on its own paho thread, collecting every message."""

	_n = 0

	def __init__(self, port, topics, qos=2, protocol="5", host="127.0.0.1",
	             client_id=None, tls=None, username=None, password=None, timeout=5.0,
	             retain_as_published=False):
		Sub._n += 1
		if isinstance(topics, str):
			topics = [topics]
		self.topics = [(t, qos) for t in topics]
		if retain_as_published:  # MQTT 5 §3.8.3.1: the retain flag as the publisher set it
			from paho.mqtt.subscribeoptions import SubscribeOptions
			self.topics = [(t, SubscribeOptions(qos=qos, retainAsPublished=True)) for t in topics]
		self._cond = threading.Condition()
		self._msgs = []
		self._suback = threading.Event()
		self._sub_mid = None
		self.client = _paho_client(client_id or f"sg-test-sub-{os.getpid()}-{Sub._n}", protocol)
		if tls:  # dict like tls_certs: cafile, and client_cert/client_key if wanted
			ctx = ssl.create_default_context(cafile=tls.get("cafile"))
			ctx.check_hostname = not tls.get("insecure", False)
			if tls.get("client_cert"):
				ctx.load_cert_chain(tls["client_cert"], tls.get("client_key"))
			self.client.tls_set_context(ctx)
		if username is not None:
			self.client.username_pw_set(username, password)
		self.client.on_connect = self._on_connect
		self.client.on_subscribe = self._on_subscribe
		self.client.on_message = self._on_message
		self.client.connect(host, port, keepalive=30)
		self.client.loop_start()
		if not self._suback.wait(timeout):
			self.close()
			raise AssertionError(f"subscriber: no SUBACK from 127.0.0.1:{port} within {timeout} s")

	def _on_connect(self, client, _userdata, _flags, rc, *_props):
		if rc == 0:
			_res, self._sub_mid = client.subscribe(self.topics)

	def _on_subscribe(self, _client, _userdata, mid, *_rest):
		if mid == self._sub_mid:
			self._suback.set()

	def _on_message(self, _client, _userdata, m):
		user = getattr(getattr(m, "properties", None), "UserProperty", None) or []
		msg = Msg(m.topic, bytes(m.payload), m.qos, bool(m.retain), time.monotonic(), dict(user))
		with self._cond:
			self._msgs.append(msg)
			self._cond.notify_all()

	def messages(self, topic=None, since=0):
		with self._cond:
			return [m for m in self._msgs[since:] if topic is None or m.topic == topic]

	def mark(self):
		"""Index to pass as since= to look only at messages from now on."""
		with self._cond:
			return len(self._msgs)

	def wait_for(self, pred, timeout=10.0, since=0):
		"""First message (from index since) for which pred(msg) is true; bounded."""
		if isinstance(pred, str):
			topic = pred
			pred = lambda m: m.topic == topic  # noqa: E731
		deadline = time.monotonic() + timeout
		with self._cond:
			while True:
				for m in self._msgs[since:]:
					if pred(m):
						return m
				left = deadline - time.monotonic()
				if left <= 0:
					got = "\n".join(f"  {m.topic} {m.payload[:80]!r} qos={m.qos} retain={m.retain}"
					                for m in self._msgs[-30:])
					raise AssertionError(f"no matching message within {timeout} s; "
					                     f"got {len(self._msgs)}:\n{got}")
				self._cond.wait(min(left, 0.2))

	def wait_topic(self, topic, payload=None, timeout=10.0, since=0):
		if isinstance(payload, str):
			payload = payload.encode()
		return self.wait_for(lambda m: m.topic == topic and (payload is None or m.payload == payload),
		                     timeout=timeout, since=since)

	def close(self):
		try:
			self.client.disconnect()
		except Exception:  # noqa: BLE001 — closing is best effort
			pass
		self.client.loop_stop()


@pytest.fixture
def make_sub():
	subs = []

	def make(port, topics, **kw):
		s = Sub(port, topics, **kw)
		subs.append(s)
		return s

	yield make
	for s in subs:
		s.close()


# --------------------------------------------------------------------------
# Any other helper process (scripts/simulate-sensor, socat, ...).

@pytest.fixture
def spawn(tmp_path, request):
	"""spawn(args, name) -> Popen; output in tmp_path/<name>.log; killed at teardown."""
	procs = []

	def start(args, name):
		log = tmp_path / f"{name}.log"
		with open(log, "ab") as f:
			p = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL,
			                     stdout=f, stderr=subprocess.STDOUT, cwd=tmp_path)
		_register(p)
		procs.append(p)
		_attach_log(request, f"{name} log", lambda: log.read_text(errors="replace"))
		return p

	yield start
	for p in procs:
		if p.poll() is None:
			p.terminate()
			try:
				p.wait(timeout=5)
			except subprocess.TimeoutExpired:
				p.kill()
				p.wait(timeout=5)
		_unregister(p)


# --------------------------------------------------------------------------
# Configs.

SIM_DEVICE = """{{ name = "sim"; driver = "lines"; port = "{port}"; baud = 9600; format = "kv";
    readings = (
      {{ field = "t"; topic = "room/temperature"; unit = "°C"; qos = 1; retain = true; {t_extra} }},
      {{ field = "h"; topic = "room/humidity"; qos = 0; retain = false; }}
    ); }}"""


def sim_device(port, t_extra=""):
	return SIM_DEVICE.format(port=port, t_extra=t_extra)


def gateway_config(port, tmp, devices, protocol="5", base="test", gw_id="gw1",
                   keepalive=5, mqtt_extra="", extra="", scheme="mqtt"):
	"""A whole config file; devices is the text inside `devices = ( ... );`."""
	return (
		f'gateway: {{ id = "{gw_id}"; base_topic = "{base}"; }};\n'
		f'mqtt: {{ brokers = ( "{scheme}://127.0.0.1:{port}" ); protocol = "{protocol}";\n'
		f'        keepalive = {keepalive}; reconnect_min = 0.2; reconnect_max = 1.0;\n'
		f'        {mqtt_extra} }};\n'
		f'spool: {{ path = "{tmp}/spool.db"; }};\n'
		f'devices = ( {devices} );\n'
		f'{extra}'
	)


def feed_until(pty, line, sub, pred, timeout=10.0, every=0.25, since=0):
	"""Write line every `every` s until sub has a message matching pred.

	Lines written before the gateway opened (or flushed) the port are lost,
	so a test repeats its line rather than guessing when to write it.
	"""
	deadline = time.monotonic() + timeout
	while True:
		if pty.plugged():
			pty.write_line(line)
		left = deadline - time.monotonic()
		try:
			return sub.wait_for(pred, timeout=max(0.0, min(every, left)), since=since)
		except AssertionError:
			if time.monotonic() >= deadline:
				raise
