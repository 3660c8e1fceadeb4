#!/bin/bash
# SPDX-License-Identifier: MIT
#
# qemu.sh — sensorgate on a real Linux kernel: Debian's 6.1 under QEMU (TCG).
#
# The guest is a small initramfs made from the cached Debian 12 root (busybox,
# mosquitto and the libraries of build/sensorgate, resolved by the root's own
# dynamic loader) plus our binary and qemu-guest.sh. QEMU gives it a real
# 16550A UART as /dev/ttyS1, backed by a unix socket that this script feeds
# with "t=..." lines; the guest has no network device at all (its broker is
# on its own loopback). The console (ttyS0) goes to a file that is read back.
# When the guest writes the line "== rig: break on ttyS1 now" to its console,
# this script sends a break into ttyS1 through QEMU's QMP socket
# (chardev-send-break): the UART model sets its line status register's break
# bit, the guest's 8250 driver counts it (icount.brk).
#
# Hooks for the driver and actuator branches: rig_qemu_hook_i2c (i2c-stub with
# a BME280 register map) and rig_qemu_hook_gpio (a relay on gpio-sim, and the
# GPIO inputs: a contact, a button, a pulse counter), below.
#
# --arm: the same guest on Debian's arm64 kernel under qemu-system-aarch64
# (-M virt -cpu max, TCG) with an armhf user space, as Raspberry Pi OS's
# 32-bit image runs on a 64-bit kernel: build-armhf/sensorgate with its
# libraries from the host's multiarch dirs, busybox and mosquitto from
# Debian's armhf packages (rig_arm_root). The sensor line is the virt
# machine's PL011 (/dev/ttyAMA0; QEMU 7.2's virt has one UART for the
# non-secure world), so the console is a virtio console (hvc0). With
# build-arm64/sensorgate there, the arm64 build reads the line too.
#
# --armmp: the same armhf guest on Debian's 32-bit armmp kernel under
# qemu-system-arm (-M virt -cpu cortex-a15): the armhf user space on a 32-bit
# kernel, as on a Pi 2 or 3 running the 32-bit image (Raspberry Pi OS has its
# own kernel; Debian's armmp is the 32-bit ARM kernel this rig can fetch).
#
# Usage: tests/rig/qemu.sh [--arm | --armmp] [BINARY]    (default: build/sensorgate, ARM: build-armhf/sensorgate)
# SG_RIG_BENCH=1: the GPIO benchmark instead of the checks (scripts/bench-gpio.sh).
# Exit: 0 pass, 1 fail, 77 skipped (loudly) when QEMU cannot run here.

set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/gpio-sim.sh"

arm=0
karch=amd64 # the guest kernel's Debian architecture
case ${1:-} in
	--arm) arm=1 karch=arm64; shift ;;
	--armmp) arm=1 karch=armhf; shift ;;
esac
qemu_arm=qemu-system-aarch64
[ "$karch" = armhf ] && qemu_arm=qemu-system-arm
# the guest's user space: its architecture's GNU triplet and loader
ARM_ARCH=armhf
ARM_TRIPLET=arm-linux-gnueabihf

rig_need_root
[ "$(uname -m)" = x86_64 ] || rig_skip "the QEMU rig runs on an x86-64 host; this host is $(uname -m)"
command -v socat >/dev/null || rig_host_tools socat
command -v cpio >/dev/null || rig_host_tools cpio
if [ "$arm" = 1 ]; then
	command -v "$qemu_arm" >/dev/null || rig_host_tools qemu-system-arm
	command -v "$qemu_arm" >/dev/null || rig_skip "$qemu_arm not available (package qemu-system-arm)"
	command -v readelf >/dev/null || rig_host_tools binutils
	dpkg --print-foreign-architectures | grep -qx "$karch" ||
		rig_skip "dpkg knows no $karch architecture: Debian's $karch kernel cannot be fetched (scripts/deps.sh --cross $karch)"
	bin=${1:-$RIG_TOP/build-$ARM_ARCH/sensorgate}
	if [ ! -x "$bin" ]; then
		command -v "$ARM_TRIPLET-gcc" >/dev/null ||
			rig_skip "the ARM guest: no $ARM_ARCH cross toolchain to build $bin (scripts/deps.sh --cross $ARM_ARCH)"
		rig_die "no binary $bin: run 'make ARCH=$ARM_ARCH' first"
	fi
	root=$(rig_arm_root "$ARM_ARCH")
	kdir=$(rig_kernel "$karch")
	tty=ttyAMA0
else
	command -v qemu-system-x86_64 >/dev/null || rig_host_tools qemu-system-x86
	command -v qemu-system-x86_64 >/dev/null || rig_skip "qemu-system-x86_64 not available"
	bin=${1:-$RIG_TOP/build/sensorgate}
	[ -x "$bin" ] || rig_die "no binary $bin: run 'make' first"
	root=$(rig_rootfs)
	kdir=$(rig_kernel)
	tty=ttyS1
fi
release=$(cat "$kdir/release")
work=$(mktemp -d /tmp/sensorgate-rig-qemu.XXXXXX)
stage=$work/initramfs
qemu_pid=
feeder_pid=

cleanup() {
	# the feeder's whole process group: socat, the shell it runs the feeder in, the feeder, its sleep
	[ -n "$feeder_pid" ] && kill -- -"$feeder_pid" 2>/dev/null || true
	[ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
	if [ "${SG_RIG_KEEP:-0}" = 1 ]; then rig_log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Copy FILE (a path inside the root, or a host path for our own binary) to
# DEST in the stage, with every library it needs taken from the root.
stage_elf() {
	local src=$1 dest=$2 lib
	if [ "$arm" = 1 ]; then
		stage_elf_cross "$src" "$dest"
		return
	fi
	install -D -m 0755 "$src" "$stage$dest"
	"$root/lib64/ld-linux-x86-64.so.2" \
		--library-path "$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu" --list "$src" |
		awk '/=> \// {print $3} /^\t\/lib64\// {print $1}' |
		while read -r lib; do
			lib=${lib#"$root"}
			[ -e "$stage$lib" ] && continue
			[ -e "$root$lib" ] || rig_die "$src needs $lib, not in the root"
			install -D -m 0755 "$(readlink -f "$root$lib")" "$stage$lib"
		done
}

# The same for the ARM guest, whose loader cannot run here: its ELF NEEDED
# entries, followed recursively, looked up in the staging root, then in the
# host's multiarch dirs; every library lands in /lib/TRIPLET of the stage.
# TRIPLET: the guest user space's (default), or aarch64-linux-gnu for the
# arm64 build run beside it.
stage_elf_cross() {
	local src=$1 dest=$2 t=${3:-$ARM_TRIPLET} f so p d interp queue=("$1")
	install -D -m 0755 "$src" "$stage$dest"
	interp=$(readelf -l "$src" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
	if [ -n "$interp" ] && [ ! -e "$stage$interp" ]; then
		p=$root$interp
		[ -e "$p" ] || p=$interp
		[ -e "$p" ] || rig_die "$src needs the loader $interp: neither in $root nor on the host"
		install -D -m 0755 "$(readlink -f "$p")" "$stage$interp"
	fi
	while [ "${#queue[@]}" -gt 0 ]; do
		f=${queue[0]}
		queue=("${queue[@]:1}")
		for so in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			[ -e "$stage/lib/$t/$so" ] && continue
			p=
			for d in "$root/lib/$t" "$root/usr/lib/$t" "/lib/$t" "/usr/lib/$t"; do
				[ -e "$d/$so" ] && { p=$d/$so; break; }
			done
			[ -n "$p" ] || rig_die "$src needs $so: not in $root nor in the host's /usr/lib/$t"
			install -D -m 0755 "$(readlink -f "$p")" "$stage/lib/$t/$so"
			queue+=("$p")
		done
	done
}

# ---- hooks -------------------------------------------------------------------

# I2C: Debian's kernel has i2c-stub. The hook loads it with a chip at 0x76,
# preloads a BME280 register map (chip id, the calibration words 0x88..0xA1
# and 0xE1..0xE7, and one raw sample 0xF7..0xFE: the same worked example as
# tests/i2c-stub/check.c) and runs the real binary with a bme280 device on
# it, checking the published values. i2c-stub speaks SMBus only (byte, word,
# I2C block), which is what bus_i2c.c uses.
rig_qemu_hook_i2c() {
	local preload=()
	# le16 REG VALUE: a little-endian 16-bit calibration word as two byte writes.
	le16() { preload+=("$(printf 0x%02X "$1")=$(($2 & 0xff))" "$(printf 0x%02X $(($1 + 1)))=$((($2 >> 8) & 0xff))"); }
	preload+=("0xD0=0x60")
	le16 0x88 27504; le16 0x8A 26435; le16 0x8C -1000; le16 0x8E 36477
	le16 0x90 -10685; le16 0x92 3024; le16 0x94 2855; le16 0x96 140
	le16 0x98 -7; le16 0x9A 15500; le16 0x9C -14600; le16 0x9E 6000
	preload+=("0xA1=75")
	le16 0xE1 370
	preload+=("0xE4=$((313 >> 4))" "0xE5=$(((313 & 15) | (50 & 15) << 4))" "0xE6=$((50 >> 4))" "0xE7=30")
	preload+=("0xF7=$((415148 >> 12))" "0xF8=$(((415148 >> 4) & 0xff))" "0xF9=$(((415148 & 15) << 4))")
	preload+=("0xFA=$((519888 >> 12))" "0xFB=$(((519888 >> 4) & 0xff))" "0xFC=$(((519888 & 15) << 4))")
	preload+=("0xFD=$((28000 >> 8))" "0xFE=$((28000 & 0xff))")

	mkdir -p "$stage/lib/modules"
	cp -a "$kdir/modules/lib/modules/$release" "$stage/lib/modules/"
	if [ "$arm" = 1 ]; then
		# Debian's arm64 kernel has no i2c-stub: gpio-sim.sh cross-builds it with gpio-sim.
		local mods r=0
		mods=$(rig_gpio_sim "$kdir") || r=$?
		if [ "$r" -ne 0 ]; then
			printf '%s\n' 'echo "== hook: i2c-stub with a BME280 at 0x76"' \
				"bad \"i2c-stub could not be built for $release on the host (exit $r; log: $RIG_CACHE/gpio-sim/$release.log)\"" \
				>"$stage/rig/hook-i2c.sh"
			chmod +x "$stage/rig/hook-i2c.sh"
			return
		fi
		mkdir -p "$stage/lib/modules/$release/extra"
		cp "$mods/i2c-stub.ko" "$stage/lib/modules/$release/extra/"
		depmod -b "$stage" "$release"
	fi
	{
		echo 'echo "== hook: i2c-stub with a BME280 at 0x76"'
		echo 'modprobe i2c-dev && modprobe i2c-stub chip_addr=0x76'
		cat <<'HOOK'
bus=
for d in /sys/bus/i2c/devices/i2c-*; do
	grep -q "SMBus stub" "$d/name" 2>/dev/null && bus=${d##*/i2c-}
done
check "i2c-stub adapter present (/dev/i2c-$bus)" test -n "$bus" -a -e "/dev/i2c-$bus"
HOOK
		for p in "${preload[@]}"; do echo "i2cset -y "\$bus" 0x76 ${p%%=*} ${p#*=} b"; done
		cat <<'HOOK'
check "BME280 chip id 0x60 readable at 0x76/0xD0" sh -c "[ \"\$(i2cget -y $bus 0x76 0xd0 b)\" = 0x60 ]"
if sensorgate --help | grep -q bme280; then
	cat >/etc/sensorgate/i2c.conf <<EOF
gateway: { id = "qemu-i2c"; base_topic = "rig"; };
mqtt: { brokers = ( "mqtt://127.0.0.1:1883" ); };
devices = ( { name = "env"; driver = "bme280"; bus = "/dev/i2c-$bus"; address = 0x76; interval = 1.0; } );
EOF
	sensorgate -c /etc/sensorgate/i2c.conf -v >/tmp/gw-i2c.log 2>&1 &
	gwi=$!
	mosquitto_sub -h 127.0.0.1 -t rig/env/temperature -t rig/env/pressure -t rig/env/humidity \
		-v -C 3 -W 30 >/tmp/got-i2c 2>/dev/null
	sed 's/^/     /' /tmp/got-i2c
	check "bme280 on i2c-stub: temperature 25.08" grep -qx "rig/env/temperature 25.08" /tmp/got-i2c
	check "bme280 on i2c-stub: pressure 1006.53 hPa" grep -q "^rig/env/pressure 1006.53" /tmp/got-i2c
	check "bme280 on i2c-stub: humidity 44.8 %" grep -q "^rig/env/humidity 44.8" /tmp/got-i2c
	kill "$gwi" 2>/dev/null
	[ "$failed" -eq 0 ] || tail -n 20 /tmp/gw-i2c.log
else
	echo "  skip  bme280 driver not in this build"
fi
HOOK
	} >"$stage/rig/hook-i2c.sh"
	chmod +x "$stage/rig/hook-i2c.sh"
}

# GPIO: Debian's 6.1 kernel has neither gpio-sim nor irq_sim (nor configfs
# built in: it is a module, in RIG_KERNEL_MODULES). rig_gpio_sim (gpio-sim.sh)
# builds both out of tree from Debian's linux-source-6.1 with
# linux-headers-$release and linux-kbuild-6.1, once per kernel release, and
# caches the .ko files; they are added to the guest's modules (extra/) and
# depmod'ed there, so `modprobe gpio-sim` loads configfs and irq_sim too.
# The guest part, qemu-guest-gpio.sh, makes a chip through configfs, runs the
# real binary with two gpio actuators on it, switches them with mosquitto_pub
# and reads the lines back from gpio-sim's sysfs (see that file). Without the
# packages (offline on a first run) the checks are skipped, loudly; a failed
# build is a failure.
rig_qemu_hook_gpio() {
	local mods r=0
	mods=$(rig_gpio_sim "$kdir") || r=$?
	if [ "$r" -eq 2 ]; then
		rig_log "GPIO CHECKS SKIPPED: cannot download Debian's kernel sources for $release (offline?)"
		printf '%s\n' 'echo "== hook: gpio-sim"' \
			"echo \"  skip  gpio-sim: the kernel sources for $release could not be downloaded on the host\"" \
			>"$stage/rig/hook-gpio.sh"
	elif [ "$r" -ne 0 ]; then
		printf '%s\n' 'echo "== hook: gpio-sim"' \
			"bad \"gpio-sim/irq_sim could not be built for $release on the host (log: $RIG_CACHE/gpio-sim/$release.log)\"" \
			>"$stage/rig/hook-gpio.sh"
	else
		mkdir -p "$stage/lib/modules/$release/extra"
		cp -a "$kdir/modules/lib/modules/$release/." "$stage/lib/modules/$release/"
		cp "$mods/gpio-sim.ko" "$mods/irq_sim.ko" "$stage/lib/modules/$release/extra/"
		depmod -b "$stage" "$release"
		install -m 0755 "$RIG_DIR/qemu-guest-gpio.sh" "$stage/rig/hook-gpio.sh"
		# GPIO inputs: their checks and the pulse source they drive gpio-sim with
		local cc=cc
		[ "$arm" = 1 ] && cc=$ARM_TRIPLET-gcc
		"$cc" -O2 -Wall -o "$work/pulse" "$RIG_DIR/pulse.c" || rig_die "cannot build tests/rig/pulse.c"
		stage_elf "$work/pulse" /rig/pulse
		install -m 0755 "$RIG_DIR/qemu-guest-gpio-in.sh" "$stage/rig/hook-gpio-in.sh"
		# scripts/bench-gpio.sh: the figures instead of the checks
		[ "${SG_RIG_BENCH:-0}" = 1 ] && install -m 0755 "$RIG_DIR/qemu-guest-gpio-bench.sh" "$stage/rig/hook-gpio-bench.sh"
	fi
	chmod +x "$stage/rig/hook-gpio.sh"
}

# arm64: the arm64 build (build-arm64/sensorgate, when the ARM pass made it)
# runs in the same guest after the armhf one, natively on the arm64 kernel,
# with its libraries from the host's /usr/lib/aarch64-linux-gnu (the :arm64
# packages it was built against): the same UART read, as the arm64 user space
# of a Pi would do it. qemu-guest-arm64.sh is the guest's part.
rig_qemu_hook_arm64() {
	local bin64=$RIG_TOP/build-arm64/sensorgate
	[ "$karch" = arm64 ] || return 0
	if [ ! -x "$bin64" ]; then
		rig_log "no $bin64 (the ARM pass builds it): the arm64 binary is not booted"
		return 0
	fi
	stage_elf_cross "$bin64" /usr/bin/sensorgate-arm64 aarch64-linux-gnu
	install -m 0755 "$RIG_DIR/qemu-guest-arm64.sh" "$stage/rig/hook-arm64.sh"
}

# ---- the guest -----------------------------------------------------------------
rig_log "staging the initramfs (kernel $release)"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,rig,var/lib,root}
install -m 0755 "$root/bin/busybox" "$stage/bin/busybox"
stage_elf "$bin" /usr/bin/sensorgate
stage_elf "$root/usr/sbin/mosquitto" /usr/sbin/mosquitto
stage_elf "$root/usr/bin/mosquitto_sub" /usr/bin/mosquitto_sub
stage_elf "$root/usr/bin/mosquitto_pub" /usr/bin/mosquitto_pub
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$stage/etc/passwd"
printf 'root:x:0:\ndialout:x:20:\n' >"$stage/etc/group"
printf '127.0.0.1\tlocalhost\n' >"$stage/etc/hosts"
install -m 0755 "$RIG_DIR/qemu-guest.sh" "$stage/rig/qemu-guest.sh"
cat >"$stage/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ip link set lo up
[ -x /rig/console.sh ] && . /rig/console.sh
sh /rig/qemu-guest.sh
sync
poweroff -f
INIT
chmod 0755 "$stage/init"
if [ "$arm" = 1 ]; then
	# The console: a virtio console, whose drivers are modules in Debian's arm64 and armmp kernels; until
	# it is there nothing is printed (the kernel's own console= names it too, for a panic).
	mkdir -p "$stage/lib/modules"
	cp -a "$kdir/modules/lib/modules/$release" "$stage/lib/modules/"
	cat >"$stage/rig/console.sh" <<'CONSOLE'
modprobe virtio_mmio && modprobe virtio_console
n=50
# the node appears before its port is ready (an open then fails with ENXIO): wait for an open
while ! { [ -c /dev/hvc0 ] && (: >/dev/hvc0) 2>/dev/null; } && [ "$n" -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
exec >/dev/hvc0 2>&1 </dev/null
export LD_LIBRARY_PATH=/lib/ARM_TRIPLET
CONSOLE
	sed -i "s|ARM_TRIPLET|$ARM_TRIPLET|" "$stage/rig/console.sh"
	chmod +x "$stage/rig/console.sh"
fi
rig_qemu_hook_i2c
rig_qemu_hook_gpio
rig_qemu_hook_arm64
(cd "$stage" && find . | cpio -o -H newc --quiet) >"$work/initrd.cpio"

# The sensor on the other end of the UART: a reading every 0.1 s, until the
# line is gone. socat ignores SIGPIPE and its child inherits that, so a write
# to a closed socket only fails: the loop has to stop on that failure itself.
# What the guest sends the other way (the tty's echo while a port is open
# with its default termios, as under `stty -F`) is read and kept in
# uart-out (through fd 3: an asynchronous command's stdin is /dev/null
# before its own redirections apply, so `cat <&0 &` would read nothing).
# QEMU's PL011 model writes each byte with a blocking write while it holds
# the global lock, and a socket nobody reads fills after a few hundred of
# them (each byte its own socket buffer), which froze the whole ARM guest,
# its monitor included.
printf '%s\n' '#!/bin/sh' 'exec 3<&0' "cat <&3 >'$work/uart-out' &" 'exec 3<&-' 'i=0' \
	'while echo "t=2$((i % 10)).5"; do i=$((i + 1)); sleep 0.1; done' >"$work/feeder"
chmod +x "$work/feeder"

rig_log "booting Debian's $release under QEMU (TCG), initramfs $(du -h "$work/initrd.cpio" | cut -f1)"
t0=$SECONDS
if [ "$arm" = 1 ]; then
	# armhf: Debian's armmp kernel is not LPAE, and highmem=off keeps the virt machine's PCIe
	# windows below 4 GiB. arm64: pauth-impdef=on, pointer authentication with QEMU's cheap
	# algorithm instead of the architected QARMA, which TCG computes in software at every
	# signed return of the kernel's functions (Debian's arm64 kernel signs them) and which
	# dominates its time.
	machine=(qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on)
	[ "$karch" = armhf ] && machine=(qemu-system-arm -M virt,highmem=off -cpu cortex-a15)
	"${machine[@]}" -accel tcg -smp 2 -m 512 -nodefaults -no-reboot -display none \
		-kernel "$kdir/vmlinux" -initrd "$work/initrd.cpio" \
		-append "console=hvc0 loglevel=4 panic=-1 rdinit=/init sg_tty=$tty${SG_RIG_BENCH:+ sg_bench=$SG_RIG_BENCH}" \
		-chardev socket,id=ttyS1,path="$work/ttyS1.sock",server=on,wait=off -serial chardev:ttyS1 \
		-device virtio-serial-device -chardev file,id=con,path="$work/console.log" -device virtconsole,chardev=con \
		-qmp unix:"$work/qmp.sock",server=on,wait=off \
		-nic none >"$work/qemu.log" 2>&1 </dev/null &
else
	qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 512 -nodefaults -no-reboot -display none \
		-kernel "$kdir/vmlinux" -initrd "$work/initrd.cpio" \
		-append "console=ttyS0 loglevel=4 panic=-1 rdinit=/init${SG_RIG_BENCH:+ sg_bench=$SG_RIG_BENCH}" \
		-serial file:"$work/console.log" \
		-chardev socket,id=ttyS1,path="$work/ttyS1.sock",server=on,wait=off -serial chardev:ttyS1 \
		-qmp unix:"$work/qmp.sock",server=on,wait=off \
		-nic none >"$work/qemu.log" 2>&1 </dev/null &
fi
qemu_pid=$!
for _ in $(seq 100); do [ -S "$work/ttyS1.sock" ] && break; sleep 0.1; done
# In a session (and process group) of its own, numbered $!: socat's SYSTEM: child outlives a kill of
# socat alone, so cleanup() stops the whole group.
setsid socat SYSTEM:"$work/feeder" UNIX-CONNECT:"$work/ttyS1.sock" 2>/dev/null &
feeder_pid=$!

# A break on ttyS1, the guest's UART, through QMP: the greeting, then one answer per command.
send_break() {
	local out
	out=$(printf '%s\n' '{"execute":"qmp_capabilities"}' \
		'{"execute":"chardev-send-break","arguments":{"id":"ttyS1"}}' |
		socat -t 2 - UNIX-CONNECT:"$work/qmp.sock" 2>&1 | tr -d '\r')
	rig_log "QMP chardev-send-break ttyS1: $(printf '%s' "$out" | tail -n1)"
}

# Bounded: the guest powers off by itself when its tests are done.
# (the ARM guest takes about 100 s where the x86 one takes 45 s)
limit=${SG_RIG_QEMU_TIMEOUT:-240}
[ "$arm" = 1 ] && limit=${SG_RIG_QEMU_TIMEOUT:-480}
break_sent=0
while kill -0 "$qemu_pid" 2>/dev/null; do
	if [ $((SECONDS - t0)) -ge "$limit" ]; then
		rig_log "guest still running after $limit s: killing it"
		kill "$qemu_pid"
		# QEMU stops on SIGTERM from its main loop; one stuck in the guest's
		# emulation never gets there, and the wait below would never return.
		for _ in $(seq 20); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.5; done
		kill -9 "$qemu_pid" 2>/dev/null
		break
	fi
	if [ "$break_sent" = 0 ] && grep -aq "^== rig: break on $tty now" "$work/console.log" 2>/dev/null; then
		send_break
		break_sent=1
	fi
	sleep 0.5
done
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=
rig_log "guest ran for $((SECONDS - t0)) s; it sent $(wc -c <"$work/uart-out" 2>/dev/null || echo 0) bytes back on its sensor line"

tr -d '\r' <"$work/console.log" >"$work/console.txt" # the serial console ends lines with CR LF
sed -n '/^== kernel/,$p' "$work/console.txt"
result=$(grep -a '^qemu: [0-9]* passed, [0-9]* failed' "$work/console.txt" | tail -n1 || true)
if [ -z "$result" ]; then
	echo "  FAIL  the guest did not report (console and QEMU output follow)"
	tail -n 40 "$work/console.txt"
	cat "$work/qemu.log"
	exit 1
fi
case "$result" in
	*" 0 failed") exit 0 ;;
	*) exit 1 ;;
esac
