#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run-unit.sh — run cmocka test binaries and add up their results.
#
# Usage: scripts/run-unit.sh [--counts FILE] [--emulator CMD] BINARY...
#
# Each binary runs with cmocka's standard output format (forced through
# CMOCKA_MESSAGE_OUTPUT), a 300 s limit, and whatever ASAN_OPTIONS /
# UBSAN_OPTIONS the caller exported. Per binary, failed = tests run - passed -
# skipped, so setup errors count as failures; a binary that crashes, times out
# or exits non-zero with no failure counted adds one failure. The last line is
# "N passed, N failed" (", N skipped" when some were). --counts FILE also
# writes "PASSED FAILED SKIPPED" there for scripts/test.sh. Exit 1 if anything
# failed. --emulator CMD runs each binary as CMD BINARY (word-split), e.g.
# "qemu-arm-static -L /usr/arm-linux-gnueabihf" for `make ARCH=armhf unit`.
# Called by `make unit` and scripts/test.sh.

set -uo pipefail

counts_file=
emulator=()
while [ $# -gt 0 ]; do
	case "$1" in
	--counts) counts_file=${2:?--counts needs a file}; shift 2 ;;
	--emulator) read -r -a emulator <<<"${2:?--emulator needs a command}"; shift 2 ;;
	*) break ;;
	esac
done

UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
export CMOCKA_MESSAGE_OUTPUT=STDOUT

total_pass=0
total_fail=0
total_skip=0
log=$(mktemp "${TMPDIR:-/tmp}/sg-unit.XXXXXX")
trap 'rm -f "$log"' EXIT

for bin in "$@"; do
	if [ ! -x "$bin" ]; then
		echo "run-unit: $bin: missing or not executable"
		total_fail=$((total_fail + 1))
		continue
	fi
	echo "---- $bin"
	timeout --kill-after=10 "$UNIT_TIMEOUT" "${emulator[@]}" "$bin" >"$log" 2>&1
	rc=$?
	cat "$log"
	# Sum over every group the binary ran (cmocka prints one block per group).
	read -r run pass skip < <(awk '
		/^\[==========\] Running [0-9]+ test/ { run += $3 }
		/^\[  PASSED  \] [0-9]+ test/        { pass += $4 }
		/^\[  SKIPPED \] [0-9]+ test\(s\), listed below/ { skip += $4 }
		END { printf "%d %d %d\n", run, pass, skip }' "$log")
	fail=$((run - pass - skip))
	[ "$fail" -lt 0 ] && fail=0
	if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail=1
		case $rc in
		124|137) why="timed out after ${UNIT_TIMEOUT}s" ;;
		*) why="exit code $rc" ;;
		esac
		echo "run-unit: $bin: $why with no failed test counted (crash, sanitizer report at exit?)"
	fi
	echo "run-unit: $bin: $pass passed, $fail failed, $skip skipped"
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
done

if [ -n "$counts_file" ]; then
	echo "$total_pass $total_fail $total_skip" >"$counts_file"
fi
line="$total_pass passed, $total_fail failed"
[ "$total_skip" -gt 0 ] && line="$line, $total_skip skipped"
echo "$line"
[ "$total_fail" -eq 0 ]
