#!/bin/bash
# SPDX-License-Identifier: MIT
#
# deps.sh — install what building and testing sensorgate needs.
#
# Idempotent: asks dpkg which packages are missing and installs only those
# (apt-get update runs only when something is missing). Works on Debian 12 and
# Raspberry Pi OS bookworm, as root or through sudo. Prints what it installs.
#
# The mosquitto package starts a system broker on port 1883 on most systems.
# Nothing here or in the tests uses it: the tests and the demo start private
# brokers on free loopback ports, so the system one may run or not.
#
# Usage: scripts/deps.sh [--check] [--build-only] [--deb] [--rig] [--cross ARCH]
#   --check: only report, exit 1 if missing; --build-only: only what building
#   needs (put it first); --deb, --rig: also the tools of `make deb` and of
#   the system test rig (tests/rig/); --cross armhf|arm64 (repeatable): the
#   Debian cross toolchain, the ARCH -dev libraries (multiarch) and qemu-user
#   for `make ARCH=armhf|arm64` and its unit tests (adds the dpkg architecture).

set -euo pipefail

# Building build/sensorgate (--build-only: just these; scripts/install.sh uses it).
BUILD_PACKAGES=(
	build-essential pkg-config
	libmosquitto-dev libconfig-dev libserialport-dev libsystemd-dev
	libsqlite3-dev libgpiod-dev libmodbus-dev libssl-dev
)
PACKAGES=(
	"${BUILD_PACKAGES[@]}"
	# unit tests (jansson: the discovery tests' JSON parser), fuzzing
	libcmocka-dev libjansson-dev clang libclang-rt-14-dev
	# integration tests and demo
	mosquitto mosquitto-clients openssl socat
	python3 python3-pytest python3-paho-mqtt python3-prometheus-client
	# the dashboard: its MQTT client comes from npm (make dashboard), its tests run in Node and in a
	# real headless Chromium driven over the DevTools protocol
	nodejs chromium fonts-dejavu-core python3-websocket
)
# Debian's nodejs leaves npm to its own package; NodeSource's nodejs brings npm (and conflicts with it).
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

# `make deb` (--deb): the Debian packaging tools.
DEB_PACKAGES=(debhelper dpkg-dev fakeroot)
# `make rig` (--rig): the system test rig (tests/rig/).
RIG_PACKAGES=(debootstrap systemd-container qemu-system-x86 kmod cpio xz-utils socat busybox-static
	gcc-12 make libelf1 # out-of-tree gpio-sim for the QEMU guest (tests/rig/gpio-sim.sh)
	qemu-system-arm binutils # the ARM guest (tests/rig/qemu.sh --arm): qemu-system-aarch64, readelf
	mmdebstrap arch-test) # the armhf root the armhf .deb is installed in (tests/rig/arm-deb.sh)

# `make ARCH=...` (--cross ARCH): the cross compiler, the target's libraries and pkg-config
# personality (multiarch, ARCH-qualified), and user-mode QEMU to run the unit tests.
CROSS_LIBS=(libmosquitto-dev libconfig-dev libserialport-dev libsystemd-dev libsqlite3-dev
	libgpiod-dev libmodbus-dev libssl-dev libcmocka-dev libjansson-dev)
CROSS_TOOLS=(qemu-user-static binfmt-support)

check_only=0
cross_arches=()
add_cross() {
	case "$1" in
		armhf|arm64) ;;
		*) echo "deps.sh: --cross: armhf or arm64, not '$1'" >&2; exit 2 ;;
	esac
	[ "${#cross_arches[@]}" -eq 0 ] && PACKAGES+=("${CROSS_TOOLS[@]}")
	cross_arches+=("$1")
	PACKAGES+=("crossbuild-essential-$1")
	local lib
	for lib in "${CROSS_LIBS[@]}"; do PACKAGES+=("$lib:$1"); done
}
while [ $# -gt 0 ]; do
	case "$1" in
		--check) check_only=1 ;;
		--build-only) PACKAGES=("${BUILD_PACKAGES[@]}") ;;
		--deb) PACKAGES+=("${DEB_PACKAGES[@]}") ;;
		--rig) PACKAGES+=("${RIG_PACKAGES[@]}") ;;
		--cross) add_cross "${2:?--cross needs armhf or arm64}"; shift ;;
		--cross=*) add_cross "${1#--cross=}" ;;
		-h|--help) sed -n '4,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) echo "deps.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
	shift
done

is_installed() {
	# "install ok installed" is the only state in which the files are there. A name without
	# ":ARCH" means the native (or arch-independent) package: with a foreign architecture
	# added, dpkg-query lists one line per installed architecture of the name.
	local name=${1%%:*} arch=$native_arch
	[ "$name" != "$1" ] && arch=${1#*:}
	dpkg-query -W -f='${Status} ${Architecture}\n' "$name" 2>/dev/null |
		grep -qxE "install ok installed ($arch|all)"
}

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: no dpkg here; install these by hand: ${PACKAGES[*]}" >&2
	exit 1
fi

native_arch=$(dpkg --print-architecture)
missing=()
for p in "${PACKAGES[@]}"; do
	is_installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "deps.sh: all ${#PACKAGES[@]} packages present"
	exit 0
fi

echo "deps.sh: missing: ${missing[*]}"
if [ "$check_only" -eq 1 ]; then
	exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "deps.sh: not root and no sudo; as root run: apt-get install ${missing[*]}" >&2
		exit 1
	fi
	sudo=(sudo)
fi

# A foreign architecture's packages are only known to apt once dpkg accepts the architecture.
for a in "${cross_arches[@]}"; do
	if ! dpkg --print-foreign-architectures | grep -qx "$a"; then
		echo "deps.sh: dpkg --add-architecture $a"
		"${sudo[@]}" dpkg --add-architecture "$a"
	fi
done

export DEBIAN_FRONTEND=noninteractive
echo "deps.sh: apt-get update"
# One index that fails to download (a mirror caught mid-sync: "File has unexpected size") makes
# apt-get update exit 100 although apt keeps the old lists of that index and has every other one:
# say so and go on; whether the install can work is what the check after it says.
if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q; then
	echo "deps.sh: WARNING: apt-get update failed for some index (above); installing from the lists apt has" >&2
fi
echo "deps.sh: installing: ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	--no-install-recommends "${missing[@]}"

# Verify rather than trust the exit status of a partial install.
still=()
for p in "${missing[@]}"; do
	is_installed "$p" || still+=("$p")
done
if [ "${#still[@]}" -ne 0 ]; then
	echo "deps.sh: still missing after install: ${still[*]}" >&2
	exit 1
fi
echo "deps.sh: installed ${#missing[@]} package(s)"
