# SPDX-License-Identifier: MIT
"""systemd/sensorgate.service: the sandbox score and the service contract.

The unit is exercised under a real systemd by tests/rig/ (nspawn); here,
cheaply and on every run: `systemd-analyze security --offline=true` must
score at most 2.0 (issue: "CI checks it"), and the keys the gateway relies
on (notify protocol, watchdog, reload by SIGHUP, restart) must be there.
"""

import re
import shutil
import subprocess

import pytest

from conftest import REPO

UNIT = REPO / "systemd" / "sensorgate.service"
MAX_EXPOSURE = 2.0


def unit_keys():
	keys = {}
	for line in UNIT.read_text().splitlines():
		line = line.strip()
		if not line or line.startswith(("#", ";", "[")):
			continue
		k, _, v = line.partition("=")
		keys.setdefault(k, []).append(v)
	return keys


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_security_exposure_at_most_2():
	cp = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT)],
	                    capture_output=True, text=True, timeout=60)
	m = re.search(r"Overall exposure level for sensorgate\.service: ([0-9.]+)", cp.stdout)
	assert m, f"no score in systemd-analyze output (exit {cp.returncode}):\n{cp.stdout}\n{cp.stderr}"
	score = float(m.group(1))
	assert score <= MAX_EXPOSURE, f"exposure {score} > {MAX_EXPOSURE}:\n" + "\n".join(
		ln for ln in cp.stdout.splitlines() if ln.startswith("✗"))


@pytest.mark.parametrize("key,value", [
	("Type", "notify"),
	("NotifyAccess", "main"),
	("WatchdogSec", "30s"),
	("Restart", "on-failure"),
	("RestartSec", "5s"),
	# never fail for good after N crashes (a hostile broker could once kill the process; issue #10)
	("StartLimitIntervalSec", "0"),
	# but a configuration the start refuses (exit 78, EX_CONFIG) is not restarted in a loop
	("RestartPreventExitStatus", "78"),
	("ExecReload", "/bin/kill -HUP $MAINPID"),
	("ExecStart", "/usr/bin/sensorgate -c /etc/sensorgate/sensorgate.conf"),
	("User", "sensorgate"),
	("StateDirectory", "sensorgate"),
	("RuntimeDirectory", "sensorgate"),  # the status file of `sensorgate --status` (gateway/health.h)
	("ProtectSystem", "strict"),
	("CapabilityBoundingSet", ""),
	("NoNewPrivileges", "yes"),
	("DevicePolicy", "closed"),
	("ReadWritePaths", "-/sys/class/pwm -/sys/devices/platform"),  # the pwm actuator's channels
])
def test_unit_has(key, value):
	assert value in unit_keys().get(key, []), f"{UNIT.name}: {key}={value} missing"


def test_no_start_limit_burst():
	"""StartLimitIntervalSec=0 switches the start limit off; a burst beside it would read as a limit."""
	assert "StartLimitBurst" not in unit_keys(), f"{UNIT.name}: StartLimitBurst is set"


def test_supplementary_groups_exist_in_sysusers():
	groups = unit_keys()["SupplementaryGroups"][0].split()
	sysusers = (REPO / "systemd" / "sensorgate.sysusers").read_text()
	for g in groups:
		if g == "dialout":  # base-passwd has it on every Debian system
			continue
		assert re.search(rf"^g\s+{g}\s", sysusers, re.M), f"group {g} not created by sensorgate.sysusers"
