# SPDX-License-Identifier: MIT
#
# qemu-guest-arm64.sh — sourced by qemu-guest.sh in the ARM guest (as
# /rig/hook-arm64.sh): the arm64 build of sensorgate on Debian's arm64
# kernel, natively (the rest of the guest is the armhf build on the same
# kernel's 32-bit compat paths). Its libraries are in /lib/aarch64-linux-gnu;
# LD_LIBRARY_PATH names them ahead of the armhf ones, which the arm64 loader
# would skip anyway. Reads the PL011 the host feeds and publishes, like the
# first armhf check. Uses ok/bad/check/wait_for and $dev from qemu-guest.sh.

echo "== hook: the arm64 build"
em64=$(od -An -tx1 -j18 -N1 /usr/bin/sensorgate-arm64 | tr -d ' ')
check "arm64 build: /usr/bin/sensorgate-arm64 is an AArch64 ELF (e_machine 0x$em64)" test "$em64" = b7
env LD_LIBRARY_PATH=/lib/aarch64-linux-gnu sensorgate-arm64 --version >/tmp/v64 2>&1
check "arm64 build: --version ($(head -n1 /tmp/v64))" grep -q "sensorgate" /tmp/v64
cat >/etc/sensorgate/arm64.conf <<CONF
gateway: { id = "qemu-arm64"; base_topic = "rig"; };
mqtt: { brokers = ( "mqtt://127.0.0.1:1883" ); };
devices = (
	{ name = "uart"; driver = "lines"; port = "$dev"; baud = 115200; format = "kv";
	  readings = ( { field = "t"; topic = "arm64/temperature"; qos = 1; } ); }
);
CONF
env LD_LIBRARY_PATH=/lib/aarch64-linux-gnu sensorgate-arm64 -c /etc/sensorgate/arm64.conf -v >/tmp/gw64.log 2>&1 &
gw64=$!
mosquitto_sub -h 127.0.0.1 -t rig/arm64/temperature -C 3 -W 60 >/tmp/got64 2>/dev/null
check "arm64 build: 3 readings from the UART published ($(tr '\n' ' ' </tmp/got64))" \
	sh -c '[ "$(wc -l </tmp/got64)" -ge 3 ] && grep -qx "2[0-9].5" /tmp/got64'
check "arm64 build: port opened through libserialport" \
	grep -q "uart: $dev open at 115200 baud 8N1 (libserialport)" /tmp/gw64.log
kill "$gw64" 2>/dev/null
wait_for 10 sh -c "! kill -0 $gw64"
check "arm64 build: clean exit on SIGTERM" grep -q "stopped: " /tmp/gw64.log
[ "$failed" -eq 0 ] || tail -n 20 /tmp/gw64.log
