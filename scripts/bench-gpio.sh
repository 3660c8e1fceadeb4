#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench-gpio.sh — GPIO input figures on a real kernel (a benchmark, not a test).
#
# Usage: scripts/bench-gpio.sh [BINARY]    (default: build/sensorgate)
#
# Boots the rig's QEMU guest (tests/rig/qemu.sh, Debian's kernel with
# gpio-sim) with SG_RIG_BENCH=1, which runs tests/rig/qemu-guest-gpio-bench.sh
# instead of the checks: the edge-to-MQTT latency of a contact (p50, p99,
# max) and the highest pulse rate a counter takes without loss, beside an S0
# meter's 17 Hz. The guest's CPUs are emulated (TCG): the figures compare
# runs and versions, they are not a Raspberry Pi's. Needs root and the rig's
# cache; without them it says so and exits 0 (`make bench` goes on).

set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/sensorgate}
if [ "$(id -u)" -ne 0 ]; then
	echo "bench-gpio.sh: SKIPPED: the QEMU guest needs root (as the system test rig does)"
	exit 0
fi
[ -x "$BIN" ] || { echo "bench-gpio.sh: $BIN not built (make)" >&2; exit 1; }
log=$(mktemp /tmp/sg-bench-gpio.XXXXXX)
trap 'rm -f "$log"' EXIT
SG_RIG_BENCH=1 SG_RIG_QEMU_TIMEOUT=${SG_RIG_QEMU_TIMEOUT:-300} tests/rig/qemu.sh "$(realpath "$BIN")" >"$log" 2>&1
rc=$?
if [ "$rc" -eq 77 ]; then
	grep -a "SKIPPED" "$log" | head -n 1
	exit 0
fi
echo "GPIO inputs (QEMU guest, $(grep -a -m1 '^== kernel' "$log" | sed 's/^== //'), gpio-sim):"
grep -a '^bench: ' "$log" | sed 's/^bench: /  /'
if [ "$rc" -ne 0 ]; then
	echo "bench-gpio.sh: the guest run failed (exit $rc):" >&2
	grep -a -E '^  FAIL|qemu: ' "$log" >&2
	exit 1
fi
