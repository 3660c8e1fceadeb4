#!/bin/sh
# SPDX-License-Identifier: MIT
#
# qemu-guest.sh — the kernel tests, run by /init inside the QEMU guest
# (busybox sh). The host feeds "t=..." lines into the guest's second UART, a
# 16550A at /dev/ttyS1; a private mosquitto listens on the guest's loopback.
# Results go to the console (ttyS0) as "ok"/"FAIL" lines and a closing
# "qemu: N passed, M failed" that tests/rig/qemu.sh reads.

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "  ok    $*"; }
bad() { failed=$((failed + 1)); echo "  FAIL  $*"; }
check() {
	what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
# wait_for SECONDS command...
wait_for() {
	n=$(($1 * 5))
	shift
	while ! "$@" 2>/dev/null; do
		n=$((n - 1))
		[ "$n" -le 0 ] && return 1
		sleep 0.2
	done
}

echo "== kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpu(s)"
check "/dev/ttyS1 is a 16550A UART" sh -c 'grep -q "^1: uart:16550A" /proc/tty/driver/serial'
check "sysfs entry /sys/class/tty/ttyS1" test -e /sys/class/tty/ttyS1/device
sensorgate --list-ports >/tmp/ports 2>&1
sed 's/^/     /' /tmp/ports
check "sensorgate --list-ports (libserialport enumeration) lists /dev/ttyS1" grep -q "/dev/ttyS1" /tmp/ports

mkdir -p /etc/mosquitto /etc/sensorgate /var/lib/sensorgate
printf 'listener 1883 127.0.0.1\nallow_anonymous true\nuser root\npersistence false\n' >/etc/mosquitto/rig.conf
mosquitto -c /etc/mosquitto/rig.conf -d
check "mosquitto up on the guest's loopback" wait_for 10 sh -c 'mosquitto_pub -h 127.0.0.1 -t rig/ping -m x'

cat >/etc/sensorgate/rig.conf <<EOF
gateway: { id = "qemu"; base_topic = "rig"; };
mqtt: { brokers = ( "mqtt://127.0.0.1:1883" ); };
devices = (
	{ name = "uart"; driver = "lines"; port = "/dev/ttyS1"; baud = 115200; format = "kv";
	  readings = ( { field = "t"; topic = "serial/temperature"; qos = 1; } ); }
);
EOF
sensorgate -c /etc/sensorgate/rig.conf -v >/tmp/gw.log 2>&1 &
gw=$!
mosquitto_sub -h 127.0.0.1 -t rig/serial/temperature -C 3 -W 60 >/tmp/got 2>/dev/null
check "3 readings from the UART published ($(tr '\n' ' ' </tmp/got))" sh -c '[ "$(wc -l </tmp/got)" -ge 3 ]'
check "port opened through libserialport (not the termios fallback)" \
	grep -q "uart: /dev/ttyS1 open at 115200 baud (libserialport)" /tmp/gw.log
check "values are what the host sent" sh -c 'grep -qx "2[0-9].5" /tmp/got'

# ---- hooks for the I2C and GPIO branches (see tests/rig/qemu.sh) ----------
if [ -x /rig/hook-i2c.sh ]; then . /rig/hook-i2c.sh; fi
if [ -x /rig/hook-gpio.sh ]; then . /rig/hook-gpio.sh; fi

kill "$gw" 2>/dev/null
wait_for 10 sh -c "! kill -0 $gw"
check "clean exit on SIGTERM (\"stopped:\" logged)" grep -q "stopped: " /tmp/gw.log
if [ "$failed" -ne 0 ]; then
	echo "---- sensorgate log ----"
	tail -n 40 /tmp/gw.log
fi
echo "qemu: $passed passed, $failed failed"
