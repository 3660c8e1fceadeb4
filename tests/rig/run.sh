#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run.sh — the system test rig: sensorgate on a real systemd (nspawn.sh) and
# on real kernels (qemu.sh): Debian's amd64 kernel with build/sensorgate, and
# Debian's arm64 kernel with the armhf (and arm64) build (qemu.sh --arm), and
# Debian's 32-bit armmp kernel with the armhf build (qemu.sh --armmp). Builds
# build/sensorgate, build-armhf/sensorgate and the .deb first.
#
# Downloads (a debootstrapped Debian 12 root, Debian's 6.1 kernel) are cached
# in $SG_RIG_CACHE (default /var/cache/sensorgate-rig) and reused.
# Needs root; without it the rig is skipped with a loud message (exit 77).
#
# The ARM guest needs the armhf cross toolchain (scripts/deps.sh --cross armhf
# --cross arm64: arm64 for its kernel); without it that part is skipped loudly.
#
# Usage: tests/rig/run.sh [--nspawn-only | --qemu-only] [--no-arm] [--no-build]
# Ends with "rig: N passed, M failed" (checks of both parts) and the timings.

set -uo pipefail
source "$(dirname "$0")/common.sh"

do_nspawn=1
do_qemu=1
do_arm=1
build=1
for arg in "$@"; do
	case "$arg" in
		--nspawn-only) do_qemu=0 ;;
		--qemu-only) do_nspawn=0 ;;
		--no-arm) do_arm=0 ;;
		--no-build) build=0 ;;
		-h | --help) sed -n '4,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) rig_die "unknown argument: $arg" ;;
	esac
done

rig_need_root
t_start=$SECONDS
log=$(mktemp /tmp/sensorgate-rig-run.XXXXXX)
trap 'rm -f "$log"' EXIT

if [ "$build" = 1 ]; then
	rig_log "building build/sensorgate and the .deb"
	make -C "$RIG_TOP" -j2 all >"$log" 2>&1 || { cat "$log"; rig_die "make failed"; }
	armhf=0
	[ "$do_arm" = 1 ] && [ -x "$(command -v arm-linux-gnueabihf-gcc)" ] && armhf=1
	if [ "$do_qemu" = 1 ] && [ "$armhf" = 1 ]; then
		rig_log "building build-armhf/sensorgate"
		make -C "$RIG_TOP" -j2 ARCH=armhf all >"$log" 2>&1 || { cat "$log"; rig_die "make ARCH=armhf failed"; }
	fi
	if [ "$do_nspawn" = 1 ]; then
		make -C "$RIG_TOP" deb >"$log" 2>&1 || { tail -n 40 "$log"; rig_die "make deb failed"; }
		# the armhf package for arm-deb.sh, built here so that part never installs an older one
		if [ "$armhf" = 1 ]; then
			make -C "$RIG_TOP" ARCH=armhf deb >"$log" 2>&1 || { tail -n 40 "$log"; rig_die "make ARCH=armhf deb failed"; }
		fi
	fi
fi
t_build=$((SECONDS - t_start))

passed=0
failed=0
summary=()
# run_part NAME SCRIPT: run it, echo its output, add its closing counts.
run_part() {
	local name=$1 script=$2 t0=$SECONDS rc out p f
	shift 2
	out=$(mktemp /tmp/sensorgate-rig-part.XXXXXX)
	# Each part bounds its own waits; this bounds the part as a whole, so that
	# nothing the rig starts can hold CI past its limit (124: timed out).
	timeout --kill-after=30 "${SG_RIG_PART_TIMEOUT:-900}" "$script" "$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	[ "$rc" -eq 124 ] && echo "  FAIL  $name: still running after ${SG_RIG_PART_TIMEOUT:-900} s, stopped"
	p=$(grep -c '^  ok ' "$out")
	f=$(grep -c '^  FAIL ' "$out")
	rm -f "$out"
	if [ "$rc" -eq 77 ]; then
		summary+=("$name SKIPPED")
		return
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # died before reporting
	passed=$((passed + p))
	failed=$((failed + f))
	summary+=("$name $([ "$rc" -eq 0 ] && echo PASS || echo FAIL) ($p ok, $f failed, $((SECONDS - t0)) s)")
}

[ "$do_nspawn" = 1 ] && { echo "==== systemd (nspawn)"; run_part nspawn "$RIG_DIR/nspawn.sh"; }
[ "$do_qemu" = 1 ] && { echo "==== kernel (qemu)"; run_part qemu "$RIG_DIR/qemu.sh"; }
[ "$do_qemu" = 1 ] && { echo "==== i2c-stub (qemu)"; run_part i2c-stub "$RIG_DIR/i2c-stub.sh"; }
[ "$do_qemu" = 1 ] && [ "$do_arm" = 1 ] && { echo "==== ARM kernel (qemu-system-aarch64, armhf user space)"; run_part qemu-arm "$RIG_DIR/qemu.sh" --arm; }
[ "$do_qemu" = 1 ] && [ "$do_arm" = 1 ] && { echo "==== 32-bit ARM kernel (qemu-system-arm, armmp, armhf user space)"; run_part qemu-armmp "$RIG_DIR/qemu.sh" --armmp; }
[ "$do_nspawn" = 1 ] && [ "$do_arm" = 1 ] &&
	{ echo "==== armhf .deb (apt-get install in a Debian 12 armhf root, qemu-user)"; run_part arm-deb "$RIG_DIR/arm-deb.sh"; }

echo
echo "rig: build ${t_build} s; ${summary[*]}; total $((SECONDS - t_start)) s"
echo "rig: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
