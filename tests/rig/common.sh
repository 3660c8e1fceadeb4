# SPDX-License-Identifier: MIT
#
# common.sh — shared pieces of the system test rig (sourced, not run).
#
# Owns the download cache: a debootstrapped Debian 12 root (systemd, mosquitto,
# our runtime libraries) and Debian's 6.1 kernel unpacked next to it. Both are
# built once and reused; a stamp file names what went into each, so changing
# the package list rebuilds the root. Nothing here installs anything on the
# host except through apt (the rig's own tools) and nothing is fetched but
# Debian's packages, from the mirror the host's apt already uses.
#
# Environment:
#   SG_RIG_CACHE   cache directory (default /var/cache/sensorgate-rig)
#   SG_RIG_MIRROR  Debian mirror for debootstrap (default: the host's apt source)
#   SG_RIG_KEEP=1  keep the per-run work directory for inspection

RIG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RIG_TOP=$(cd "$RIG_DIR/../.." && pwd)
RIG_CACHE=${SG_RIG_CACHE:-/var/cache/sensorgate-rig}
RIG_SUITE=bookworm

# The guest root: systemd for nspawn, mosquitto for a private broker inside,
# socat for a pty "sensor", make for scripts/install.sh, busybox and kmod for
# the QEMU initramfs, and the runtime libraries of our binary so the .deb
# installs without a network.
RIG_PACKAGES=(
	systemd systemd-sysv dbus kmod udev
	mosquitto mosquitto-clients socat procps busybox-static make
	libmosquitto1 libconfig9 libserialport0 libsystemd0 libsqlite3-0 libgpiod2 libssl3
)

rig_log() { printf '[rig %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
rig_die() { printf '[rig] ERROR: %s\n' "$*" >&2; exit 1; }

# A test that cannot run at all on this machine: say so loudly, exit 77 (skip).
rig_skip() {
	{
		echo
		echo "###########################################################################"
		echo "##  SYSTEM TEST RIG SKIPPED: $*"
		echo "##  Nothing was tested on a real systemd / a real kernel in this run."
		echo "###########################################################################"
		echo
	} >&2
	exit 77
}

rig_need_root() {
	[ "$(id -u)" -eq 0 ] || rig_skip "needs root (debootstrap, systemd-nspawn, mounts)"
}

# Install the rig's host tools through apt if they are missing.
rig_host_tools() {
	local want=() p
	for p in "$@"; do
		[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || want+=("$p")
	done
	[ "${#want[@]}" -eq 0 ] && return 0
	rig_log "installing host tools: ${want[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${want[@]}" >&2 ||
		{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "${want[@]}" >&2; }
}

# The Debian mirror the host's apt uses (deb822 or one-line format).
rig_mirror() {
	if [ -n "${SG_RIG_MIRROR:-}" ]; then
		echo "$SG_RIG_MIRROR"
		return
	fi
	local m
	m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' |
		grep -v -- '-security' | head -n1)
	[ -n "$m" ] || m=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
		awk '{print $2}' | grep -v -- '-security' | head -n1)
	[ -n "$m" ] || rig_die "no Debian mirror found in the host's apt sources; set SG_RIG_MIRROR"
	echo "$m"
}

# rig_rootfs: print the path of the cached Debian 12 root, building it if needed.
rig_rootfs() {
	local root="$RIG_CACHE/rootfs" stamp want tmp
	want="rev2 $RIG_SUITE ${RIG_PACKAGES[*]}"
	stamp="$root/.sensorgate-rig-stamp"
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
		echo "$root"
		return
	fi
	rig_host_tools debootstrap
	mkdir -p "$RIG_CACHE"
	tmp="$RIG_CACHE/rootfs.new"
	rm -rf "$tmp"
	rig_log "debootstrap $RIG_SUITE (minbase + ${#RIG_PACKAGES[@]} packages) into $tmp"
	local incl
	incl=$(IFS=,; echo "${RIG_PACKAGES[*]}")
	debootstrap --variant=minbase --include="$incl" "$RIG_SUITE" "$tmp" "$(rig_mirror)" \
		>"$RIG_CACHE/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$RIG_CACHE/debootstrap.log" >&2; rig_die "debootstrap failed (log: $RIG_CACHE/debootstrap.log)"; }
	# No services of the image's own start by themselves in the tests: the test starts what it needs.
	chroot "$tmp" systemctl disable mosquitto.service >/dev/null 2>&1 || true
	chroot "$tmp" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true
	rm -f "$tmp"/var/cache/apt/archives/*.deb
	echo "rig" >"$tmp/etc/hostname"
	# What every installed system has and debootstrap leaves out.
	printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\trig\n' >"$tmp/etc/hosts"
	echo "$want" >"$tmp/.sensorgate-rig-stamp"
	rm -rf "$root"
	mv "$tmp" "$root"
	echo "$root"
}

# Modules the QEMU guest may load (i2c-stub for the BME280 hook, configfs for
# gpio-sim). gpio-sim itself is not built in Debian's 6.1 kernel: gpio-sim.sh
# builds it. Changing this list re-extracts the kernel (the stamp names it).
RIG_KERNEL_MODULES=(kernel/drivers/i2c/i2c-dev.ko kernel/drivers/i2c/i2c-stub.ko kernel/drivers/i2c/i2c-smbus.ko
	kernel/fs/configfs/configfs.ko)

# The ARM guests' modules (tests/rig/qemu.sh --arm, --armmp): Debian's arm64 and armmp kernels have
# neither i2c-stub nor gpio-sim built (gpio-sim.sh builds them), and its
# console is a virtio console (the virt machine's one PL011 is the sensor line).
RIG_KERNEL_MODULES_ARM=(kernel/drivers/i2c/i2c-dev.ko kernel/drivers/i2c/i2c-smbus.ko
	kernel/fs/configfs/configfs.ko kernel/drivers/virtio/virtio_mmio.ko kernel/drivers/char/virtio_console.ko)

# rig_kernel [amd64|arm64|armhf]: print the directory holding Debian's 6.1
# kernel for that architecture (default amd64) as "vmlinux": for amd64 the
# uncompressed ELF (boots about twice as fast under TCG as the bzImage), for
# arm64 the Image Debian ships (already uncompressed), for armhf the armmp
# flavour's zImage (qemu-system-arm boots it as it is). Next to it its
# config, its Debian version (file "version"), its release and the
# architecture's modules (RIG_KERNEL_MODULES, RIG_KERNEL_MODULES_ARM) with
# modules.dep. Fetched with apt-get download (arm64: from the arm64 index,
# which `dpkg --add-architecture arm64` makes apt read) and unpacked with
# dpkg -x: nothing is installed on the host. amd64 kernels are cached under
# $RIG_CACHE/kernel/ (where tests/i2c-stub/run.sh looks for one), the others
# under $RIG_CACHE/kernel-ARCH/.
rig_kernel() {
	local arch=${1:-amd64} pkg dir tmp off meta mods=("${RIG_KERNEL_MODULES[@]}") kcache=$RIG_CACHE/kernel
	meta=linux-image-$arch
	if [ "$arch" != amd64 ]; then
		kcache=$RIG_CACHE/kernel-$arch
		meta=linux-image-$arch:$arch
		[ "$arch" = armhf ] && meta=linux-image-armmp:armhf # armhf's flavours: armmp, armmp-lpae, rt
		mods=("${RIG_KERNEL_MODULES_ARM[@]}")
	fi
	pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	if [ -z "$pkg" ]; then
		apt-get update -q >&2 || true
		pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	fi
	if [ -z "$pkg" ]; then # offline: the newest cached one will do
		dir=$(ls -d "$kcache"/linux-image-*-"$arch"/ 2>/dev/null | sort -V | tail -n1)
		[ -n "$dir" ] && [ -f "$dir/vmlinux" ] || rig_die "cannot find Debian's kernel package (apt-cache depends $meta)"
		echo "${dir%/}"
		return
	fi
	dir="$kcache/${pkg%:*}"
	if [ -f "$dir/.done" ] && [ "$(cat "$dir/.done")" = "${mods[*]}" ]; then
		echo "$dir"
		return
	fi
	rig_log "fetching $pkg"
	command -v depmod >/dev/null || rig_host_tools kmod
	tmp="$dir.new"
	rm -rf "$tmp"
	mkdir -p "$tmp/deb" "$tmp/x"
	(cd "$tmp/deb" && apt-get download -q "$pkg" >&2 2>/dev/null) || rig_die "apt-get download $pkg failed"
	dpkg -x "$tmp"/deb/*.deb "$tmp/x"
	dpkg-deb -f "$tmp"/deb/*.deb Version >"$tmp/version"
	cp "$tmp"/x/boot/vmlinuz-* "$tmp/vmlinuz"
	cp "$tmp"/x/boot/config-* "$tmp/config"
	ls "$tmp"/x/lib/modules >"$tmp/release"
	# amd64: vmlinuz is a bzImage around an xz stream: cut from the xz magic and decompress.
	# (No pipes that end early here: under pipefail a writer killed by SIGPIPE fails them.)
	if [ "$arch" != amd64 ]; then
		mv "$tmp/vmlinuz" "$tmp/vmlinux"
	elif off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$tmp/vmlinuz" | cut -d: -f1 | sed -n 1p) && [ -n "$off" ] && tail -c +$((off + 1)) "$tmp/vmlinuz" >"$tmp/vmlinuz.xz" &&
		xz -dc --single-stream "$tmp/vmlinuz.xz" >"$tmp/vmlinux" 2>/dev/null &&
		[ "$(head -c 4 "$tmp/vmlinux" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
		:
	else
		rig_log "could not extract vmlinux; booting the bzImage (slower)"
		cp "$tmp/vmlinuz" "$tmp/vmlinux"
	fi
	local rel m
	rel=$(cat "$tmp/release")
	for m in "${mods[@]}"; do
		mkdir -p "$tmp/modules/lib/modules/$rel/$(dirname "$m")"
		cp "$tmp/x/lib/modules/$rel/$m" "$tmp/modules/lib/modules/$rel/$m"
	done
	cp "$tmp/x/lib/modules/$rel"/modules.{order,builtin,builtin.modinfo} "$tmp/modules/lib/modules/$rel/" 2>/dev/null || true
	depmod -b "$tmp/modules" "$rel"
	rm -rf "$tmp/x" "$tmp/deb" "$tmp/vmlinuz" "$tmp/vmlinuz.xz"
	echo "${mods[*]}" >"$tmp/.done"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	echo "$dir"
}

# The ARM guest's user space: Debian 12's own armhf packages (Raspberry Pi OS's
# 32-bit user space), unpacked with dpkg -x into one staging root, cached. Our
# binary's libraries come from the host's multiarch dirs (the :armhf -dev
# packages it was built against); these are the guest's tools and whatever
# their libraries need beyond those.
RIG_ARM_PACKAGES=(busybox-static mosquitto mosquitto-clients libmosquitto1 libcjson1 libdlt2 libwrap0
	libcap2 libnsl2 libtirpc3 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2
	libkeyutils1)

# rig_arm_root ARCH: print the staging root of RIG_ARM_PACKAGES for ARCH
# (apt-get download PKG:ARCH, dpkg -x), building it once.
rig_arm_root() {
	local arch=$1 root tmp want p
	root="$RIG_CACHE/arm/$arch-root"
	want="rev1 $arch ${RIG_ARM_PACKAGES[*]}"
	if [ -f "$root/.sensorgate-rig-stamp" ] && [ "$(cat "$root/.sensorgate-rig-stamp")" = "$want" ]; then
		echo "$root"
		return
	fi
	tmp="$root.new"
	rm -rf "$tmp"
	mkdir -p "$tmp/.deb"
	rig_log "fetching the $arch guest's packages: ${RIG_ARM_PACKAGES[*]}"
	(cd "$tmp/.deb" && apt-get download -q "${RIG_ARM_PACKAGES[@]/%/:$arch}" >"$tmp/.download.log" 2>&1) ||
		{ cat "$tmp/.download.log" >&2; rig_die "apt-get download of the $arch packages failed (is $arch a dpkg architecture? scripts/deps.sh --cross $arch)"; }
	for p in "$tmp"/.deb/*.deb; do dpkg -x "$p" "$tmp"; done
	rm -rf "$tmp/.deb" "$tmp/.download.log"
	echo "$want" >"$tmp/.sensorgate-rig-stamp"
	rm -rf "$root"
	mv "$tmp" "$root"
	echo "$root"
}

# rig_binfmt_arm: make sure the kernel runs 32-bit ARM programs through
# qemu-arm-static, with binfmt_misc's F flag: the interpreter is opened when
# registered, so it works inside a chroot that does not hold it. Debian's
# binfmt-support registers without F (and may not be active at all in a
# container or a fresh VM), so this mounts binfmt_misc if needed and
# registers qemu-user-static's own line. 1 when it cannot.
rig_binfmt_arm() {
	local dir=/proc/sys/fs/binfmt_misc conf=/usr/lib/binfmt.d/qemu-arm.conf
	[ -e "$dir/register" ] || mount -t binfmt_misc binfmt_misc "$dir" 2>/dev/null || return 1
	if [ -e "$dir/qemu-arm" ]; then
		grep -q '^flags:.*F' "$dir/qemu-arm" && return 0
		echo -1 >"$dir/qemu-arm" || return 1
	fi
	[ -f "$conf" ] || return 1
	cat "$conf" >"$dir/register" 2>/dev/null || return 1
	grep -q '^flags:.*F' "$dir/qemu-arm"
}

# What the armhf .deb's Depends resolve to (debian/control: shlibs + systemd),
# in the apt root below, so apt-get install ./x.deb needs no network.
RIG_ARMDEB_PACKAGES=(systemd libmosquitto1 libconfig9 libserialport0 libsystemd0 libsqlite3-0 libgpiod2 libssl3)

# rig_arm_aptroot ARCH: print a Debian 12 ARCH root with apt and dpkg
# (mmdebstrap --variant=apt, maintainer scripts run through binfmt_misc),
# building it once under $RIG_CACHE/arm/ARCH-aptroot.
rig_arm_aptroot() {
	local arch=$1 root tmp want incl t0=$SECONDS
	root="$RIG_CACHE/arm/$arch-aptroot"
	want="rev1 $arch ${RIG_ARMDEB_PACKAGES[*]}"
	if [ -f "$root/.sensorgate-rig-stamp" ] && [ "$(cat "$root/.sensorgate-rig-stamp")" = "$want" ]; then
		echo "$root"
		return
	fi
	rig_host_tools mmdebstrap arch-test # arch-test: how mmdebstrap checks it can run ARCH
	command -v mmdebstrap >/dev/null || rig_die "mmdebstrap is not available"
	mkdir -p "$RIG_CACHE/arm"
	tmp="$root.new"
	rm -rf "$tmp"
	incl=$(IFS=,; echo "${RIG_ARMDEB_PACKAGES[*]}")
	rig_log "mmdebstrap $RIG_SUITE $arch (apt + ${#RIG_ARMDEB_PACKAGES[@]} packages) into $tmp"
	mmdebstrap --variant=apt --architectures="$arch" --include="$incl" \
		"$RIG_SUITE" "$tmp" "$(rig_mirror)" >"$RIG_CACHE/arm/mmdebstrap-$arch.log" 2>&1 ||
		{ tail -n 30 "$RIG_CACHE/arm/mmdebstrap-$arch.log" >&2; rig_die "mmdebstrap failed (log: $RIG_CACHE/arm/mmdebstrap-$arch.log)"; }
	echo "$want" >"$tmp/.sensorgate-rig-stamp"
	rm -rf "$root"
	mv "$tmp" "$root"
	rig_log "the $arch apt root built in $((SECONDS - t0)) s ($(du -sh "$root" | cut -f1))"
	echo "$root"
}
