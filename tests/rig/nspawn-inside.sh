#!/bin/bash
# SPDX-License-Identifier: MIT
#
# nspawn-inside.sh — the systemd tests, run inside the booted Debian 12
# container by tests/rig/nspawn.sh (through nsenter). /rig holds our .deb.
#
# Installs the package the way a user does (apt-get install ./x.deb), then
# checks what systemd and journald see: READY and STATUS=, journal fields,
# reload without a reconnect, a refused reload, broker loss, the watchdog
# after SIGSTOP, the Last Will after SIGKILL and the sandbox of the process.
# Prints one line per check and "N passed, M failed" at the end; exit 1 on any
# failure. Every wait is bounded. /src is the source tree, built, read-only:
# scripts/install.sh is checked from it after the package is purged.

set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0

CONF=/etc/sensorgate/sensorgate.conf
BASE=rig
STATUS_TOPIC=$BASE/gateway/rig/status
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "  ok    $*"; }
bad() { failed=$((failed + 1)); echo "  FAIL  $*"; }
check() { # check "what" command...
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
prop() { systemctl show -p "$1" --value sensorgate; }

# wait_for SECONDS command...: true once the command succeeds, polling every 0.2 s.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@" 2>/dev/null; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.2
	done
}

# The journal of the current service invocation only.
journal() { journalctl -q -u sensorgate _SYSTEMD_INVOCATION_ID="$(prop InvocationID)" "$@"; }
journal_has() { journal -o cat | grep -qF -- "$1"; }
status_has() { prop StatusText | grep -qF -- "$1"; }
active_running() { [ "$(prop ActiveState)/$(prop SubState)" = active/running ]; }

# One message from TOPIC within SECONDS, printed.
mqtt_one() { mosquitto_sub -h localhost -t "$1" -C 1 -W "$2" 2>/dev/null; }

write_config() { # write_config TOPIC [PORT]
	cat >"$CONF" <<EOF
gateway: { id = "rig"; base_topic = "$BASE"; };
mqtt: { brokers = ( "mqtt://localhost:1883" ); keepalive = 5; reconnect_min = 0.5; reconnect_max = 2; };
devices = (
	{ name = "sim"; driver = "lines"; port = "${2:-/run/rig/sensor}"; baud = 9600; format = "kv";
	  readings = ( { field = "t"; topic = "$1"; qos = 1; offline = "drop"; } ); }
);
EOF
}

echo "== package"
deb=$(ls /rig/sensorgate_*.deb | head -n1)
if apt-get install -y -q --no-install-recommends "$deb" >/tmp/apt.log 2>&1; then
	ok "apt-get install $(basename "$deb")"
else
	bad "apt-get install $(basename "$deb")"
	tail -n 20 /tmp/apt.log
	echo "$passed passed, $failed failed"
	exit 1
fi
check "system user sensorgate in dialout, i2c, gpio" \
	sh -c 'id -nG sensorgate | tr " " "\n" | sort | tr "\n" " " | grep -q "dialout gpio i2c sensorgate"'
check "conffile /etc/sensorgate/sensorgate.conf registered" \
	sh -c 'dpkg-query -W -f="\${Conffiles}" sensorgate | grep -q /etc/sensorgate/sensorgate.conf'
check "config readable by the service only (0640 root:sensorgate)" \
	sh -c '[ "$(stat -c "%a %U:%G" /etc/sensorgate/sensorgate.conf)" = "640 root:sensorgate" ]'
check "service enabled by the package" sh -c '[ "$(systemctl is-enabled sensorgate)" = enabled ]'
# The shipped example (a USB serial number to fill in, no broker yet) must still run.
check "example config: service active after install" wait_for 10 active_running
check "example config: STATUS= names the missing device" wait_for 10 status_has "down: arduino"
echo "     status: $(prop StatusText)"

echo "== start with a device on a pty and a local broker"
systemctl start mosquitto
mkdir -p /run/rig
# The "sensor": a pty owned by group dialout; a reading every 0.2 s, every tenth followed by garbage.
printf '%s\n' '#!/bin/sh' 'i=0' \
	'while true; do i=$((i + 1)); echo "t=2$((i % 10)).5"; [ $((i % 10)) = 0 ] && echo "@@@ garbage"; sleep 0.2; done' \
	>/run/rig/feeder
chmod +x /run/rig/feeder
systemd-run -q --unit=rig-sensor socat -u SYSTEM:/run/rig/feeder \
	PTY,link=/run/rig/sensor,raw,echo=0,mode=660,group=dialout
check "pty /run/rig/sensor created (group dialout)" wait_for 5 test -e /run/rig/sensor
write_config room/temperature
if systemctl restart sensorgate; then ok "systemctl restart (Type=notify: returns after READY=1)"; else bad "systemctl restart"; fi
check "active/running" active_running
check "READY: NotifyAccess=main, Type=notify" sh -c '[ "$(systemctl show -p Type --value sensorgate)" = notify ]'
check "STATUS=: connected, device up" wait_for 15 status_has "connected to mqtt://localhost:1883; devices 1/1 up"
echo "     status: $(prop StatusText)"
v=$(mqtt_one $BASE/room/temperature 10)
check "reading published on $BASE/room/temperature ($v)" test -n "$v"
check "availability \"online\" retained on $STATUS_TOPIC" sh -c "[ \"\$(mosquitto_sub -h localhost -t $STATUS_TOPIC -C 1 -W 5)\" = online ]"
check "journal: start-up line with version, config, device count, broker" \
	journal_has "sensorgate 0.1.0 starting: config $CONF, 1 device, broker mqtt://localhost:1883"
check "journal: connect line" journal_has "mqtt: connected to mqtt://localhost:1883"
check "journal: SENSORGATE_DEVICE=sim field on the device's line" \
	wait_for 5 sh -c "journalctl -q -u sensorgate -o json | grep -q '\"SENSORGATE_DEVICE\":\"sim\"'"
check "journal: the garbage line dropped at warning priority, tagged with the device" wait_for 10 \
	sh -c "journalctl -q -u sensorgate -o json | grep '\"SENSORGATE_DEVICE\":\"sim\"' | grep 'dropped input' | grep -q '\"PRIORITY\":\"4\"'"

echo "== sandbox of the running process"
pid=$(prop MainPID)
check "runs as user sensorgate" sh -c "[ \"\$(ps -o user= -p $pid)\" = sensorgate ]"
check "no capabilities (CapEff 0)" grep -q '^CapEff:[[:space:]]*0000000000000000' /proc/"$pid"/status
check "NoNewPrivs" grep -q '^NoNewPrivs:[[:space:]]*1' /proc/"$pid"/status
check "seccomp filter active" grep -q '^Seccomp:[[:space:]]*2' /proc/"$pid"/status
score=$(systemd-analyze security sensorgate 2>/dev/null | sed -n 's/.*exposure level for sensorgate.service: \([0-9.]*\).*/\1/p')
check "systemd-analyze security (loaded unit) = $score <= 2.0" awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }'

echo "== reload: new topic, same connection"
connects=$(journal -o cat | grep -c "mqtt: connected to")
write_config room/temp2
systemctl reload sensorgate
check "back to active/running after reload" wait_for 10 active_running
v=$(mqtt_one $BASE/room/temp2 10)
check "reading on the new topic $BASE/room/temp2 ($v)" test -n "$v"
check "journal: reload applied" journal_has "reload: $CONF applied"
check "connection kept (no new connect, no disconnect)" \
	sh -c "[ \"\$(journalctl -q -u sensorgate _SYSTEMD_INVOCATION_ID=$(prop InvocationID) -o cat | grep -c 'mqtt: connected to')\" = $connects ] &&
	       ! journalctl -q -u sensorgate _SYSTEMD_INVOCATION_ID=$(prop InvocationID) -o cat | grep -q 'mqtt: disconnected'"
check "same process (MainPID $pid)" sh -c "[ \"\$(systemctl show -p MainPID --value sensorgate)\" = $pid ]"

echo "== reload: invalid file refused"
printf 'devices = ( { name = "sim"; driver = "no-such-driver"; } );\n' >"$CONF"
systemctl reload sensorgate
check "refusal logged as an error with FILE:LINE" wait_for 5 sh -c \
	"journalctl -q -u sensorgate -p err -o cat | grep -q 'reload: $CONF:1: .*; keeping the running configuration'"
check "still active/running" wait_for 5 active_running
v=$(mqtt_one $BASE/room/temp2 10)
check "still publishing with the old configuration ($v)" test -n "$v"
write_config room/temp2
systemctl reload sensorgate
wait_for 10 active_running

echo "== broker outage"
systemctl stop mosquitto
check "disconnect logged with its reason" wait_for 10 journal_has "mqtt: disconnected from mqtt://localhost:1883"
check "STATUS= says connecting" wait_for 15 status_has "connecting to"
# offline = "drop": what is read during the outage is not kept, and that is logged (rate-limited) with its topic
check "journal: MQTT_TOPIC field on a dropped reading" wait_for 10 sh -c \
	"journalctl -q -u sensorgate -o json | grep -q '\"MQTT_TOPIC\":\"$BASE/room/temp2\"'"
systemctl start mosquitto
check "reconnected after the broker came back" wait_for 15 status_has "connected to mqtt://localhost:1883"

echo "== watchdog: a stopped process is killed and restarted"
mkdir -p /etc/systemd/system/sensorgate.service.d
printf '[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\nRestartSec=1s\n' \
	>/etc/systemd/system/sensorgate.service.d/rig.conf
systemctl daemon-reload
systemctl restart sensorgate
wait_for 10 active_running
pid=$(prop MainPID)
restarts=$(prop NRestarts)
# Healthy: the loop keeps pinging, nothing happens for 3 watchdog periods.
sleep 6
check "healthy loop not killed by a 2 s watchdog over 6 s" sh -c "[ \"\$(systemctl show -p MainPID --value sensorgate)\" = $pid ]"
[ "$pid" -gt 1 ] && kill -STOP "$pid"
check "watchdog timeout restarted the service" wait_for 30 sh -c \
	"[ \"\$(systemctl show -p NRestarts --value sensorgate)\" -gt $restarts ] &&
	 [ \"\$(systemctl show -p MainPID --value sensorgate)\" != $pid ] &&
	 [ \"\$(systemctl show -p ActiveState --value sensorgate)\" = active ]"
check "journal: systemd logged the watchdog timeout" sh -c \
	"journalctl -q -u sensorgate -o cat | grep -q 'Watchdog timeout'"

echo "== Last Will after SIGKILL"
wait_for 15 status_has "connected to mqtt://localhost:1883"
pid=$(prop MainPID)
mosquitto_sub -h localhost -t "$STATUS_TOPIC" -W 15 >/tmp/lwt.log 2>/dev/null &
sub=$!
wait_for 5 grep -q online /tmp/lwt.log
[ "$pid" -gt 1 ] && kill -9 "$pid"
check "\"offline\" published by the broker on $STATUS_TOPIC" wait_for 10 grep -q offline /tmp/lwt.log
check "restarted after SIGKILL (Restart=on-failure)" wait_for 15 sh -c \
	"[ \"\$(systemctl show -p MainPID --value sensorgate)\" != $pid ] && [ \"\$(systemctl show -p MainPID --value sensorgate)\" != 0 ]"
check "\"online\" again after the restart" wait_for 15 sh -c "[ \"\$(tail -n1 /tmp/lwt.log)\" = online ]"
kill "$sub" 2>/dev/null
rm -f /etc/systemd/system/sensorgate.service.d/rig.conf
systemctl daemon-reload

echo "== stop"
systemctl stop sensorgate
check "clean stop: \"stopped:\" line and STOPPING" sh -c "journalctl -q -u sensorgate -o cat | grep -q 'stopped: '"
check "inactive after stop" sh -c "[ \"\$(systemctl show -p ActiveState --value sensorgate)\" = inactive ]"

echo "== scripts/install.sh from the source tree (/src)"
apt-get purge -y -q sensorgate >/tmp/apt.log 2>&1
check "apt-get purge sensorgate" sh -c '! dpkg-query -W -f="\${Status}" sensorgate 2>/dev/null | grep -q "ok installed"'
if /src/scripts/install.sh --no-deps >/tmp/install.log 2>&1; then ok "install.sh"; else
	bad "install.sh"
	tail -n 20 /tmp/install.log
fi
check "installed: binary, unit, sysusers.d, tmpfiles.d" test -x /usr/bin/sensorgate -a \
	-f /lib/systemd/system/sensorgate.service -a -f /usr/lib/sysusers.d/sensorgate.conf -a \
	-f /usr/lib/tmpfiles.d/sensorgate.conf
check "example config installed, 0640 root:sensorgate" sh -c \
	"grep -q 'usb_serial = \"CHANGE-ME\"' $CONF && [ \"\$(stat -c '%a %U:%G' $CONF)\" = '640 root:sensorgate' ]"
check "service enabled and running" sh -c '[ "$(systemctl is-enabled sensorgate)" = enabled ] && systemctl -q is-active sensorgate'
echo "# edited by the rig" >>"$CONF"
if /src/scripts/install.sh --no-deps >/tmp/install.log 2>&1; then ok "install.sh again (idempotent)"; else
	bad "install.sh again (idempotent)"
	tail -n 20 /tmp/install.log
fi
check "edited config kept" grep -q "edited by the rig" "$CONF"
check "running after the second install" wait_for 10 active_running
/src/scripts/install.sh --uninstall >/tmp/install.log 2>&1
check "uninstall: stopped, binary and unit gone" sh -c \
	'! systemctl -q is-active sensorgate && [ ! -e /usr/bin/sensorgate ] && [ ! -e /lib/systemd/system/sensorgate.service ]'
check "uninstall: config kept" grep -q "edited by the rig" "$CONF"
if /src/scripts/install.sh --uninstall >/tmp/install.log 2>&1; then ok "uninstall again (idempotent)"; else bad "uninstall again (idempotent)"; fi

echo "nspawn: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
