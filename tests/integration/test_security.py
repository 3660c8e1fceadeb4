# SPDX-License-Identifier: MIT
"""TLS and authentication against a real mosquitto.

The broker's CA and certificates are made per session with openssl (conftest
tls_certs); the password file with mosquitto_passwd. Asserted:
  - mqtts with the right CA connects (status "online" seen by a TLS subscriber);
  - a wrong CA and a host-name mismatch are refused with a clear log line that
    names the certificate problem, and the gateway keeps running;
  - a client certificate is presented when the broker requires one;
  - username + password_file: right accepted; wrong refused, reported once
    (not once per attempt) and retried with backoff, not in a storm;
  - a password_file readable by others is warned about.
Both MQTT 3.1.1 and 5.
"""

import os
import re
import subprocess
import time

import pytest

from conftest import _openssl, gateway_config, make_password_file, sim_device, wait_until

PROTOCOLS = ["3.1.1", "5"]
STATUS = "test/gateway/gw1/status"


def warnings_matching(gw, pattern):
	"""Lines logged at warning level or above (<0>..<4>) matching pattern."""
	return [l for l in gw.stderr_text().splitlines()
	        if re.match(r"<[0-4]>", l) and re.search(pattern, l)]


@pytest.fixture
def other_certs(tls_certs, tmp_path):
	"""A second, unrelated CA; and a server cert from the real CA for the wrong host name."""
	d = tmp_path
	ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
	_openssl("req", "-x509", *ec, "-keyout", "other-ca.key", "-out", "other-ca.crt",
	         "-days", "30", "-subj", "/CN=some other CA", cwd=d)
	(d / "wrong.ext").write_text("subjectAltName=DNS:broker.example\nextendedKeyUsage=serverAuth\n")
	_openssl("req", *ec, "-keyout", "wrong.key", "-out", "wrong.csr", "-subj", "/CN=broker.example", cwd=d)
	_openssl("x509", "-req", "-in", "wrong.csr", "-CA", tls_certs["cafile"], "-CAkey",
	         str(tls_certs["dir"] / "ca.key"), "-CAcreateserial", "-days", "30",
	         "-extfile", "wrong.ext", "-out", "wrong.crt", cwd=d)
	return {"other_ca": str(d / "other-ca.crt"), "wrong_cert": str(d / "wrong.crt"),
	        "wrong_key": str(d / "wrong.key")}


def tls_gateway(make_gateway, make_pty, tmp_path, port, protocol, ca, extra=""):
	pty = make_pty("tty")
	cfg = gateway_config(port, tmp_path, sim_device(pty.link), protocol=protocol, scheme="mqtts",
	                     mqtt_extra=f'tls: {{ ca_file = "{ca}"; {extra} }};')
	return make_gateway(cfg).start()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tls_right_ca_connects(broker_factory, tls_certs, make_gateway, make_pty, make_sub, tmp_path, protocol):
	b = broker_factory(tls=tls_certs)
	sub = make_sub(b.port, ["test/#"], tls=tls_certs, protocol=protocol)
	gw = tls_gateway(make_gateway, make_pty, tmp_path, b.port, protocol, tls_certs["cafile"])
	sub.wait_topic(STATUS, "online", timeout=15)
	gw.assert_alive()
	assert "TLS" not in gw.stderr_text()
	gw.stop()
	sub.wait_topic(STATUS, "offline", timeout=10)


def test_tls_broker_by_name(broker_factory, tls_certs, make_gateway, make_pty, make_sub, tmp_path):
	"""mqtts://localhost: the name is looked up off the loop and pinned for libmosquitto's own lookup
	(resolve.h); the certificate is still checked against the name, and the link comes up."""
	b = broker_factory(tls=tls_certs)
	sub = make_sub(b.port, ["test/#"], tls=tls_certs, protocol="5")
	pty = make_pty("tty")
	ca = tls_certs["cafile"]
	cfg = gateway_config(b.port, tmp_path, sim_device(pty.link), scheme="mqtts",
	                     mqtt_extra=f'tls: {{ ca_file = "{ca}"; }};').replace("127.0.0.1", "localhost", 1)
	gw = make_gateway(cfg).start()
	sub.wait_topic(STATUS, "online", timeout=15)
	assert "mqtts://localhost:" in gw.stderr_text()
	assert "TLS" not in gw.stderr_text() and "cannot resolve" not in gw.stderr_text()
	gw.stop()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tls_wrong_ca_refused(broker_factory, tls_certs, other_certs, make_gateway, make_pty, make_sub,
                              tmp_path, protocol):
	b = broker_factory(tls=tls_certs)
	sub = make_sub(b.port, ["test/#"], tls=tls_certs, protocol=protocol)
	gw = tls_gateway(make_gateway, make_pty, tmp_path, b.port, protocol, other_certs["other_ca"])
	wait_until(lambda: warnings_matching(gw, r"certificate verify failed"), 15)
	line = warnings_matching(gw, r"certificate verify failed")[0]
	assert "unable to get local issuer certificate" in line or "self-signed" in line, line
	time.sleep(2.5)  # several retries with reconnect_min 0.2 .. max 1.0
	assert len(warnings_matching(gw, r"cannot connect")) == 1, "the same failure must be logged once"
	gw.assert_alive()
	assert not [m for m in sub.messages() if m.topic == STATUS and m.payload == b"online"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tls_hostname_mismatch_refused(broker_factory, tls_certs, other_certs, make_gateway, make_pty, make_sub,
                                       tmp_path, protocol):
	certs = dict(tls_certs, certfile=other_certs["wrong_cert"], keyfile=other_certs["wrong_key"])
	b = broker_factory(tls=certs)
	gw = tls_gateway(make_gateway, make_pty, tmp_path, b.port, protocol, tls_certs["cafile"])
	wait_until(lambda: warnings_matching(gw, r"certificate verify failed"), 15)
	line = warnings_matching(gw, r"certificate verify failed")[0]
	assert re.search(r"host name mismatch", line), line
	gw.assert_alive()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tls_client_certificate(broker_factory, tls_certs, make_gateway, make_pty, make_sub, tmp_path, protocol):
	b = broker_factory(tls=dict(tls_certs, require_certificate=True))
	sub = make_sub(b.port, ["test/#"], tls=tls_certs, protocol=protocol)
	gw = tls_gateway(make_gateway, make_pty, tmp_path, b.port, protocol, tls_certs["cafile"],
	                 extra=f'cert_file = "{tls_certs["client_cert"]}"; key_file = "{tls_certs["client_key"]}";')
	sub.wait_topic(STATUS, "online", timeout=15)
	gw.stop()


def password_gateway(make_gateway, make_pty, tmp_path, port, protocol, password, mode=0o600):
	pw = tmp_path / "mqtt.password"
	pw.write_text(password + "\n")
	os.chmod(pw, mode)
	pty = make_pty("tty")
	cfg = gateway_config(port, tmp_path, sim_device(pty.link), protocol=protocol,
	                     mqtt_extra=f'username = "gw"; password_file = "{pw}";')
	cfg = cfg.replace("reconnect_min = 0.2; reconnect_max = 1.0;", "reconnect_min = 0.5; reconnect_max = 2.0;")
	return make_gateway(cfg).start()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_password_right_accepted(broker_factory, make_gateway, make_pty, make_sub, tmp_path, protocol):
	pwfile = make_password_file(tmp_path / "passwd", {"gw": "s3cret", "watcher": "w"})
	b = broker_factory(password_file=pwfile)
	sub = make_sub(b.port, ["test/#"], username="watcher", password="w", protocol=protocol)
	gw = password_gateway(make_gateway, make_pty, tmp_path, b.port, protocol, "s3cret")
	sub.wait_topic(STATUS, "online", timeout=15)
	assert not warnings_matching(gw, r"readable by others")
	gw.stop()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_password_wrong_refused_once_with_backoff(broker_factory, make_gateway, make_pty, tmp_path, protocol):
	pwfile = make_password_file(tmp_path / "passwd", {"gw": "s3cret"})
	b = broker_factory(password_file=pwfile)
	gw = password_gateway(make_gateway, make_pty, tmp_path, b.port, protocol, "wrong")
	wait_until(lambda: warnings_matching(gw, r"cannot connect"), 15)
	line = warnings_matching(gw, r"cannot connect")[0]
	assert re.search(r"(?i)not authori[sz]ed|bad user name or password", line), line
	time.sleep(6)
	assert len(warnings_matching(gw, r"cannot connect")) == 1, "a wrong password must be reported once"
	# Backoff 0.5 s doubling to 2 s, half of it jitter: about 5 attempts in 6 s, never a storm.
	# (Each attempt is a TCP probe plus the MQTT connection: count refusals.)
	attempts = len(re.findall(r"not authori[sz]ed", b.log_text()))
	assert 2 <= attempts <= 12, f"{attempts} connection attempts in ~6 s"
	gw.assert_alive()


def test_password_file_readable_by_others_warned(broker_factory, make_gateway, make_pty, tmp_path):
	pwfile = make_password_file(tmp_path / "passwd", {"gw": "s3cret"})
	b = broker_factory(password_file=pwfile)
	gw = password_gateway(make_gateway, make_pty, tmp_path, b.port, "5", "s3cret", mode=0o644)
	wait_until(lambda: warnings_matching(gw, r"readable by others"), 10)
	check = subprocess.run([gw.bin, "--check", "-c", str(gw.conf)], capture_output=True, text=True, timeout=10)
	assert check.returncode == 0
	assert "readable by others" in check.stderr
	gw.stop()


# --------------------------------------------------------------------------
# The system trust store, tls.insecure, and --check refusing what the start refuses.

def store_env(tmp_path, name, *pems):
	"""OpenSSL's default verify paths pointed at a private "system" store holding PEMS only."""
	store = tmp_path / name
	store.mkdir(exist_ok=True)
	bundle = store / "ca-certificates.crt"
	bundle.write_text("".join(open(p).read() for p in pems))
	empty_dir = store / "certs"
	empty_dir.mkdir(exist_ok=True)
	return {"SSL_CERT_FILE": str(bundle), "SSL_CERT_DIR": str(empty_dir)}


@pytest.mark.parametrize("client_cert", [False, True], ids=["server-only", "client-certificate"])
def test_tls_system_trust_store(broker_factory, tls_certs, other_certs, make_gateway, make_pty, make_sub, tmp_path,
                                client_cert):
	"""mqtts:// without ca_file/ca_path: the broker's CA is found only in the (test's) system store. With a
	client certificate, which libmosquitto takes only together with a CA path, the store works the same."""
	b = broker_factory(tls=dict(tls_certs, require_certificate=client_cert))
	sub = make_sub(b.port, ["test/#"], tls=tls_certs)
	pty = make_pty("tty")
	extra = (f'tls: {{ cert_file = "{tls_certs["client_cert"]}"; key_file = "{tls_certs["client_key"]}"; }};'
	         if client_cert else "")
	cfg = gateway_config(b.port, tmp_path, sim_device(pty.link), scheme="mqtts", mqtt_extra=extra)
	gw = make_gateway(cfg)
	env = store_env(tmp_path, "store", other_certs["other_ca"], tls_certs["cafile"])
	check = gw.check(env=env)
	assert check.returncode == 0, check.stderr
	assert f"system trust store ({env['SSL_CERT_FILE']}, {env['SSL_CERT_DIR']}); host name checked" in check.stdout
	assert (f"; client certificate {tls_certs['client_cert']}" in check.stdout) == client_cert
	gw.start(env=env)
	sub.wait_topic(STATUS, "online", timeout=15)
	gw.assert_alive()
	gw.stop()

	# The control: a store without the broker's CA is refused at the handshake, so it was the store that counted.
	gw2 = make_gateway(cfg, name="no-ca")
	gw2.start(env=store_env(tmp_path, "store-without-ca", other_certs["other_ca"]))
	assert wait_until(lambda: warnings_matching(gw2, r"certificate verify failed"), 15), gw2.stderr_text()
	gw2.assert_alive()


def test_tls_insecure_is_loud(broker_factory, tls_certs, other_certs, make_gateway, make_pty, make_sub, tmp_path):
	"""insecure = true connects to a certificate for another host name, and says so at start and in --check."""
	certs = dict(tls_certs, certfile=other_certs["wrong_cert"], keyfile=other_certs["wrong_key"])
	b = broker_factory(tls=certs)
	sub = make_sub(b.port, ["test/#"], tls=dict(tls_certs, insecure=True))
	pty = make_pty("tty")
	cfg = gateway_config(b.port, tmp_path, sim_device(pty.link), scheme="mqtts",
	                     mqtt_extra=f'tls: {{ ca_file = "{tls_certs["cafile"]}";\n insecure = true; }};')
	gw = make_gateway(cfg)
	check = gw.check()
	assert check.returncode == 0, check.stderr
	assert "host name NOT CHECKED (insecure = true)" in check.stdout
	assert re.search(rf"<4>{re.escape(str(gw.conf))}:5: tls.insecure = true: the broker's host name is not checked",
	                 check.stderr), check.stderr
	gw.start()
	sub.wait_topic(STATUS, "online", timeout=15)
	assert len(warnings_matching(gw, r"tls\.insecure = true")) == 1
	gw.stop()


def _bad_setups(tls_certs, other_certs, tmp_path):
	"""(legend, mqtt_extra, line, message, env) of configs the start must refuse."""
	junk = tmp_path / "junk.pem"
	junk.write_text("not a certificate\n")
	fifo = tmp_path / "pw.fifo"
	os.mkfifo(fifo)
	big = tmp_path / "big.password"
	big.write_bytes(b"x" * 65536 + b"\n")
	ca = tls_certs["cafile"]
	return [
		("a CA file without a certificate", f'tls: {{ ca_file = "{junk}"; }};', 4,
		 f'"ca_file" {junk}: no CA certificate can be loaded from it', None),
		("a key that is not the certificate's",
		 f'tls: {{ ca_file = "{ca}";\n cert_file = "{tls_certs["client_cert"]}";\n'
		 f' key_file = "{other_certs["wrong_key"]}"; }};', 6, "is not the key of \"cert_file\"", None),
		("an empty system trust store", "", 2, "the system trust store, but it has no certificate",
		 {"SSL_CERT_FILE": str(tmp_path / "none.pem"), "SSL_CERT_DIR": str(tmp_path / "none")}),
		("a FIFO as password_file", f'username = "gw"; password_file = "{fifo}";', 4,
		 f"cannot read password_file {fifo}: it is a FIFO, not a regular file", None),
		("/dev/zero as password_file", 'username = "gw"; password_file = "/dev/zero";', 4,
		 "it is a character device, not a regular file", None),
		("a directory as password_file", f'username = "gw"; password_file = "{tmp_path}";', 4,
		 "it is a directory, not a regular file", None),
		("an oversize password_file", f'username = "gw"; password_file = "{big}";', 4,
		 "the password is longer than 65535 bytes", None),
	]


def test_check_refuses_what_start_refuses(tls_certs, other_certs, make_gateway, make_pty, tmp_path):
	"""Each config is refused by --check and by the start, with the same FILE:LINE message, in bounded time."""
	pty = make_pty("tty")
	for i, (legend, extra, line, msg, env) in enumerate(_bad_setups(tls_certs, other_certs, tmp_path)):
		cfg = gateway_config(1883, tmp_path, sim_device(pty.link), mqtt_extra=extra,
		                     scheme="mqtts" if "tls" in extra or env else "mqtt")
		gw = make_gateway(cfg, name=f"bad{i}")
		want = f"{gw.conf}:{line}: "
		check = gw.check(env=env)
		assert check.returncode == 1, f"{legend}: --check said OK:\n{check.stdout}"
		assert check.stderr.startswith(want) and msg in check.stderr, f"{legend}: {check.stderr}"
		gw.start(env=env)
		assert gw.wait_exit(10) == 78, f"{legend}: the start did not refuse it as a configuration (EX_CONFIG)"
		assert re.search(rf"^<3>{re.escape(want)}.*{re.escape(msg)}", gw.stderr_text(), re.M), \
			f"{legend}: {gw.stderr_text()}"
