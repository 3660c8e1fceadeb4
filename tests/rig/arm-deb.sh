#!/bin/bash
# SPDX-License-Identifier: MIT
#
# arm-deb.sh — the armhf .deb installed the way a Raspberry Pi OS (32-bit)
# user installs it: `apt-get install ./sensorgate_*_armhf.deb` in a Debian 12
# armhf root, every program in it (apt, dpkg, the maintainer scripts, our
# daemon) an armhf binary run by qemu-arm through binfmt_misc. Then the
# installed /usr/bin/sensorgate runs in that root (chroot: it shares the
# host's network, so it reaches a private mosquitto on the host's loopback),
# with NOTIFY_SOCKET pointing at a datagram socket read here, and must say
# READY=1 and publish what a pseudo-terminal "sensor" prints.
#
# The root (mmdebstrap --variant=apt, plus systemd and the runtime libraries
# the package depends on, so apt resolves the package's dependencies without
# a network, as in the nspawn part) is built once under $SG_RIG_CACHE/arm/
# and copied for each run. Why not boot it with systemd-nspawn: systemd as
# PID 1 under user-mode emulation adds minutes and proves nothing the amd64
# nspawn part does not; what is architecture-specific is the package, its
# dependencies and the binary, and those are what runs here.
#
# Usage: tests/rig/arm-deb.sh [DEB]   (default: build-armhf/sensorgate_*_armhf.deb)
# Exit: 0 pass, 1 fail, 77 skipped (loudly) when it cannot run here.

set -euo pipefail
source "$(dirname "$0")/common.sh"

rig_need_root
arch=armhf
deb=${1:-$(ls -t "$RIG_TOP"/build-$arch/sensorgate_*_$arch.deb 2>/dev/null | head -n1)}
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
	command -v arm-linux-gnueabihf-gcc >/dev/null ||
		rig_skip "the armhf .deb: no armhf cross toolchain to build it (scripts/deps.sh --cross armhf)"
	rig_die "no $arch .deb: run 'make ARCH=$arch deb' first"
fi
command -v qemu-arm-static >/dev/null || rig_host_tools qemu-user-static
command -v qemu-arm-static >/dev/null || rig_skip "qemu-user-static is not available"
command -v mosquitto >/dev/null || rig_host_tools mosquitto mosquitto-clients
rig_binfmt_arm || rig_skip "binfmt_misc cannot run $arch programs here (no qemu-arm registration)"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "  ok    $*"; }
bad() { failed=$((failed + 1)); echo "  FAIL  $*"; }

cached=$(rig_arm_aptroot "$arch")
work=$(mktemp -d /tmp/sensorgate-rig-armdeb.XXXXXX)
root=$work/root
broker_pid=
sensor_pid=
notify_pid=
gw_pid=
cleanup() {
	[ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null || true
	for p in $sensor_pid $notify_pid $broker_pid; do kill "$p" 2>/dev/null || true; done
	umount -l "$root/dev/pts" "$root/dev" "$root/proc" 2>/dev/null || true
	if [ "${SG_RIG_KEEP:-0}" = 1 ]; then rig_log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

t0=$SECONDS
cp -a "$cached" "$root"
rig_log "copied the $arch root ($(du -sh "$root" | cut -f1)) in $((SECONDS - t0)) s"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
cp "$deb" "$root/tmp/"

# ---- apt-get install ./sensorgate_*_armhf.deb, under emulation ----------------------
t0=$SECONDS
echo "     $(chroot "$root" uname -m) (uname -m in the root, through binfmt_misc)"
if chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	"/tmp/$(basename "$deb")" >"$work/apt.log" 2>&1; then
	ok "apt-get install $(basename "$deb") in a Debian 12 $arch root ($((SECONDS - t0)) s)"
else
	bad "apt-get install $(basename "$deb") in a Debian 12 $arch root"
	tail -n 30 "$work/apt.log"
fi
status=$(chroot "$root" dpkg-query -W -f='${Status} ${Architecture} ${Version}' sensorgate 2>&1 || true)
case $status in
	"install ok installed $arch "*) ok "dpkg: sensorgate $status" ;;
	*) bad "dpkg: sensorgate is '$status'" ;;
esac
# e_machine of the installed binary: 0x28 is 32-bit ARM
em=$(od -An -tx1 -j18 -N1 "$root/usr/bin/sensorgate" 2>/dev/null | tr -d ' ')
if [ "$em" = 28 ]; then ok "/usr/bin/sensorgate is a 32-bit ARM ELF"; else bad "/usr/bin/sensorgate e_machine is '$em', not 28 (ARM)"; fi
if [ -f "$root/lib/systemd/system/sensorgate.service" ] || [ -f "$root/usr/lib/systemd/system/sensorgate.service" ]; then
	ok "the package installed sensorgate.service"
else
	bad "no sensorgate.service in the root"
fi

# ---- the installed daemon: READY=1 and a reading published --------------------------
port=$((20000 + RANDOM % 20000))
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
broker_pid=$!
for _ in $(seq 50); do mosquitto_pub -p "$port" -t rig/ping -m x 2>/dev/null && break; sleep 0.1; done

# The sensor: a pty whose other end prints a reading every 0.2 s.
socat PTY,link="$root/dev/sgsensor",raw,echo=0 \
	SYSTEM:'i=0; while echo "t=2$((i % 10)).5"; do i=$((i + 1)); sleep 0.2; done' 2>"$work/socat.log" &
sensor_pid=$!
# The service manager's end of sd_notify.
socat -u UNIX-RECV:"$root/run/notify.sock",mode=0666 OPEN:"$work/notify.log",creat,append 2>/dev/null &
notify_pid=$!
for _ in $(seq 50); do [ -e "$root/dev/sgsensor" ] && [ -S "$root/run/notify.sock" ] && break; sleep 0.1; done

mkdir -p "$root/etc/sensorgate" "$root/var/lib/sensorgate"
cat >"$root/etc/sensorgate/rig.conf" <<EOF
gateway: { id = "armhf"; base_topic = "rig"; };
mqtt: { brokers = ( "mqtt://127.0.0.1:$port" ); };
spool: { path = "/var/lib/sensorgate/spool.db"; };
devices = ( { name = "uart"; driver = "lines"; port = "/dev/sgsensor"; baud = 115200; format = "kv";
	readings = ( { field = "t"; topic = "armhf/temperature"; qos = 1; } ); } );
EOF
if chroot "$root" /usr/bin/sensorgate --check -c /etc/sensorgate/rig.conf >"$work/check.log" 2>&1; then
	ok "sensorgate --check accepts the configuration"
else
	bad "sensorgate --check"
	cat "$work/check.log"
fi
mosquitto_sub -p "$port" -t rig/armhf/temperature -C 3 -W 90 >"$work/got" 2>/dev/null &
sub_pid=$!
t0=$SECONDS
chroot "$root" env NOTIFY_SOCKET=/run/notify.sock /usr/bin/sensorgate -c /etc/sensorgate/rig.conf -v \
	>"$work/gw.log" 2>&1 &
gw_pid=$!
ready=
for _ in $(seq 600); do # 60 s
	grep -q 'READY=1' "$work/notify.log" 2>/dev/null && { ready=$((SECONDS - t0)); break; }
	kill -0 "$gw_pid" 2>/dev/null || break
	sleep 0.1
done
if [ -n "$ready" ]; then
	ok "READY=1 on NOTIFY_SOCKET, ${ready} s after start under emulation"
else
	bad "no READY=1 on NOTIFY_SOCKET"
fi
wait "$sub_pid" 2>/dev/null || true
if [ "$(wc -l <"$work/got")" -ge 3 ] && grep -qx '2[0-9].5' "$work/got"; then
	ok "3 readings published from the pty ($(tr '\n' ' ' <"$work/got"))"
else
	bad "readings published: '$(tr '\n' ' ' <"$work/got")'"
fi
kill "$gw_pid" 2>/dev/null || true
for _ in $(seq 100); do kill -0 "$gw_pid" 2>/dev/null || break; sleep 0.1; done
wait "$gw_pid" 2>/dev/null || true
gw_pid=
if grep -q 'STOPPING=1' "$work/notify.log" && grep -q 'stopped: ' "$work/gw.log"; then
	ok "clean stop on SIGTERM (STOPPING=1, \"stopped:\" logged)"
else
	bad "clean stop on SIGTERM"
fi
if [ "$failed" -ne 0 ]; then
	echo "---- notify ----"; cat "$work/notify.log" 2>/dev/null || true
	echo "---- sensorgate log ----"; tail -n 30 "$work/gw.log"
fi
echo "arm-deb: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
