#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test.sh — THE test command: build, unit tests, integration tests, the same
# again under AddressSanitizer + UndefinedBehaviorSanitizer, the parser
# fuzzers for a bounded time, the ARM pass (cross-built for armhf and arm64,
# unit tests under qemu-user) and the system test rig (real systemd in
# systemd-nspawn, real kernels in QEMU: amd64, and arm64 running the armhf
# build).
#
# Usage: scripts/test.sh [--no-deps] [--no-asan] [--no-fuzz] [--no-arm] [--no-rig] [--quick] [-- PYTEST-ARGS...]
#   --no-deps   do not run scripts/deps.sh first
#   --no-asan   skip the sanitizer pass (ignored when CI=true: CI always runs it)
#   --no-fuzz   skip the fuzzers (tests/fuzz/run.sh, FUZZ_SECONDS each, default 20)
#   --no-arm    skip the ARM pass, the rig's ARM guests and the armhf .deb (ignored when CI=true). Without the
#               cross toolchain and qemu-user, and when deps.sh cannot install them
#               (--cross ARCH; root or sudo), that architecture is skipped loudly
#   --no-rig    skip the system test rig (tests/rig/run.sh; needs root, skips loudly without)
#   --quick     all four: --no-asan --no-fuzz --no-arm --no-rig (a fast local loop)
#   PYTEST-ARGS passed to both pytest runs (e.g. -- -k lwt -x)
#
# Steps: deps.sh; make -j2 (build/sensorgate + every tests/unit/test_*.c);
# make dashboard and node --test dashboard/test/;
# run-unit.sh on the unit binaries; pytest -q tests/integration against
# build/sensorgate; then make asan and both again against build-asan/ with
# ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 and
# UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 (the harness fails a test
# whose gateway stderr holds a sanitizer report). The ARM pass, for armhf and
# arm64: make ARCH=... (build-ARCH/sensorgate and the unit binaries),
# run-unit.sh --emulator qemu-arm-static / qemu-aarch64-static on them, and
# the binary's --version under the same.
# Finally every process the run started must be gone (scripts/leftovers.py);
# one left running counts as one failure, named, and is stopped.
# The last line is "N passed, N failed" (", N skipped" when any), summed over
# every cmocka and pytest run; a build failure counts as one failure. Exit
# status is 0 only if nothing failed.

set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
PY=/usr/bin/python3   # not a pyenv/venv python: the apt packages live here
PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-1800}

do_deps=1
do_asan=1
do_rig=1
do_fuzz=1
do_arm=1
pytest_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--no-deps) do_deps=0 ;;
	--no-asan) do_asan=0 ;;
	--rig) do_rig=1 ;;  # the default; kept for old habits
	--no-rig) do_rig=0 ;;
	--no-fuzz) do_fuzz=0 ;;
	--no-arm) do_arm=0 ;;
	--quick) do_asan=0; do_fuzz=0; do_arm=0; do_rig=0 ;;
	--) shift; pytest_args=("$@"); break ;;
	-h|--help) sed -n '4,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "test.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ "${CI:-}" = "true" ]; then
	[ "$do_asan$do_fuzz$do_arm$do_rig" = 1111 ] || echo "test.sh: CI=true: running every pass anyway"
	do_asan=1; do_fuzz=1; do_arm=1; do_rig=1
fi

export PYTHONDONTWRITEBYTECODE=1
# Every process this run starts inherits this mark; at the end, any process
# still carrying it was left running by a test (scripts/leftovers.py says
# why the environment, not process groups, sessions or names).
export SG_TEST_RUN="sg-test-$$-${EPOCHREALTIME/./}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sg-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
skipped=0
notes=()

section() { printf '\n==== %s ====\n' "$*"; }
fail_step() {
	failed=$((failed + 1))
	notes+=("$1")
	echo "test.sh: FAILED: $1"
}

# Unit binaries, one per tests/unit/test_*.c, under build dir $1.
unit_bins() {
	local src
	for src in tests/unit/test_*.c; do
		[ -e "$src" ] || continue
		src=${src#tests/unit/}
		echo "$1/tests/${src%.c}"
	done
}

run_unit() { # build-dir label [run-unit.sh options...]
	local bins counts=$WORK/unit.counts p f s dir=$1 label=$2
	shift 2
	mapfile -t bins < <(unit_bins "$dir")
	section "unit tests ($label): ${#bins[@]} binaries"
	if [ "${#bins[@]}" -eq 0 ]; then
		echo "test.sh: no tests/unit/test_*.c"
		return
	fi
	rm -f "$counts"
	scripts/run-unit.sh --counts "$counts" "$@" "${bins[@]}"
	if read -r p f s <"$counts" 2>/dev/null; then
		passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
		[ "$f" -eq 0 ] || notes+=("unit tests ($label): $f failed")
	else
		fail_step "unit tests ($label): runner gave no counts"
	fi
}

run_integration() { # binary label [pytest options]
	local bin=$1 label=$2 xml=$WORK/junit-$2.xml rc counts p f s
	shift 2
	section "integration tests ($label): SENSORGATE_BIN=$bin"
	rm -f "$xml"
	SENSORGATE_BIN=$ROOT/$bin timeout --kill-after=30 "$PYTEST_TIMEOUT" \
		"$PY" -m pytest -q tests/integration --durations=8 --junitxml="$xml" "$@" "${pytest_args[@]}"
	rc=$?
	# Counts from the JUnit report: errors (fixture/teardown failures such
	# as a sanitizer report) count as failures.
	counts=$("$PY" - "$xml" <<-'EOF'
		import sys, xml.etree.ElementTree as ET
		try:
		    root = ET.parse(sys.argv[1]).getroot()
		except (OSError, ET.ParseError):
		    sys.exit(1)
		suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
		t = f = s = 0
		for su in suites:
		    t += int(su.get("tests", 0))
		    f += int(su.get("failures", 0)) + int(su.get("errors", 0))
		    s += int(su.get("skipped", 0))
		print(max(0, t - f - s), f, s)
	EOF
	) || counts=""
	if [ -z "$counts" ]; then
		fail_step "integration tests ($label): pytest exit $rc and no report (timeout or crash?)"
		return
	fi
	read -r p f s <<<"$counts"
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
	[ "$f" -eq 0 ] || notes+=("integration tests ($label): $f failed")
	if [ "$rc" -eq 5 ] && [ "${#pytest_args[@]}" -eq 0 ]; then
		fail_step "integration tests ($label): no test collected"
	elif [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ] && [ "$f" -eq 0 ]; then
		fail_step "integration tests ($label): pytest exit $rc"
	fi
}

if [ "$do_deps" -eq 1 ]; then
	section "dependencies"
	deps_args=()
	[ "$do_rig" -eq 1 ] && deps_args+=(--deb --rig)
	# not marked: a service a package starts when installed (the system mosquitto) is no test's
	env -u SG_TEST_RUN scripts/deps.sh "${deps_args[@]}" || fail_step "scripts/deps.sh"
fi

# A failed build is one failure; what did build still runs (make -k), so one
# broken file does not hide the results of everything else.
run_all() { # build-dir label [pytest options]
	if [ -x "$1/sensorgate" ]; then
		run_unit "$1" "$2"
		run_integration "$1/sensorgate" "$2" "${@:3}"
	else
		run_unit "$1" "$2"
		fail_step "integration tests ($2): no $1/sensorgate"
	fi
}

section "build"
mapfile -t plain_bins < <(unit_bins build)
make -j2 -k build/sensorgate "${plain_bins[@]}" || fail_step "make (build/)"
make dashboard || fail_step "make dashboard (its MQTT client from npm)"

# The dashboard's own logic (dashboard/model.js) under Node's test runner.
section "dashboard unit tests (node --test)"
if node --test dashboard/test/ >"$WORK/node.out" 2>&1; then rc=0; else rc=$?; fi
cat "$WORK/node.out"
p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$WORK/node.out" | tail -1)
f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$WORK/node.out" | tail -1)
if [ -z "$p" ] || [ -z "$f" ]; then
	fail_step "dashboard unit tests: node gave no counts (exit $rc)"
else
	passed=$((passed + p)); failed=$((failed + f))
	[ "$f" -eq 0 ] || notes+=("dashboard unit tests: $f failed")
	[ "$p" -gt 0 ] || fail_step "dashboard unit tests: none ran"
fi

run_all build plain

if [ "$do_asan" -eq 1 ]; then
	section "build with ASan+UBSan"
	make -j2 -k asan || fail_step "make asan (build-asan/)"
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	# The long delivery runs under faults (pytest -m stress) only in the plain pass: what the
	# sanitizers look for, the shorter fault tests reach through the same code.
	run_all build-asan asan -m "not stress"
	unset ASAN_OPTIONS UBSAN_OPTIONS
fi

if [ "$do_fuzz" -eq 1 ]; then
	section "fuzzers (${FUZZ_SECONDS:-12} s each)"
	for f in tests/fuzz/fuzz_*.c; do
		t=$(basename "$f" .c); t=${t#fuzz_}
		if FUZZ_SECONDS=${FUZZ_SECONDS:-12} tests/fuzz/run.sh "$t"; then
			passed=$((passed + 1))
		else
			fail_step "fuzzer $t"
		fi
	done
fi

# ARM: the Pi's two user spaces, armhf (Raspberry Pi OS 32-bit) and arm64, cross-built with
# Debian's toolchains and the :ARCH libraries; their unit tests under user-mode QEMU (named,
# so binfmt_misc is not needed). The rig below boots the armhf build on Debian's arm64 kernel.
# A toolchain that is missing and cannot be installed is a loud skip of that architecture,
# counted as one skipped, not a failure.
arm_skip() { # ARCH why
	{
		echo
		echo "###########################################################################"
		echo "##  ARM PASS SKIPPED FOR $1: $2"
		echo "##  Nothing was built or run for $1 in this run."
		echo "###########################################################################"
		echo
	} >&2
	skipped=$((skipped + 1)); notes+=("ARM pass ($1): SKIPPED ($2)")
}
arm_ready() { scripts/deps.sh --check --build-only --cross "$1" >/dev/null 2>&1; }
if [ "$do_arm" -eq 1 ]; then
	for arch in armhf arm64; do
		case $arch in armhf) emu=qemu-arm-static ;; arm64) emu=qemu-aarch64-static ;; esac
		section "ARM: $arch cross build"
		arm_t0=$SECONDS
		if ! arm_ready "$arch" && [ "$do_deps" -eq 1 ]; then
			env -u SG_TEST_RUN scripts/deps.sh --build-only --cross "$arch" ||
				echo "test.sh: scripts/deps.sh --cross $arch failed (above)"
		fi
		if ! arm_ready "$arch"; then
			arm_skip "$arch" "the cross toolchain, :$arch libraries or qemu-user-static are missing and could not be installed ($(scripts/deps.sh --check --build-only --cross "$arch" 2>&1 | tail -n1))"
			continue
		fi
		mapfile -t arm_bins < <(unit_bins "build-$arch")
		make -j2 -k ARCH="$arch" "build-$arch/sensorgate" "${arm_bins[@]}" || fail_step "make ARCH=$arch (build-$arch/)"
		echo "test.sh: $arch build $((SECONDS - arm_t0)) s"
		run_unit "build-$arch" "$arch" --emulator "$emu"
		section "ARM: build-$arch/sensorgate --version under $emu"
		if out=$("$emu" "build-$arch/sensorgate" --version 2>&1) &&
			[[ "$out" == *"$(sed -n 's/^VERSION *:= *//p' Makefile)"* ]]; then
			echo "$out"
			passed=$((passed + 1))
		else
			echo "$out"
			fail_step "build-$arch/sensorgate --version under $emu"
		fi
		echo "test.sh: ARM pass for $arch $((SECONDS - arm_t0)) s"
	done
fi

if [ "$do_rig" -eq 1 ]; then
	section "system test rig"
	rig_args=()
	[ "$do_arm" -eq 1 ] || rig_args+=(--no-arm)
	tests/rig/run.sh "${rig_args[@]}" | tee "$WORK/rig.log"
	rc=${PIPESTATUS[0]}
	if read -r p f < <(sed -n 's/^rig: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$WORK/rig.log" | tail -n1); then
		passed=$((passed + p)); failed=$((failed + f))
		[ "$f" -eq 0 ] || notes+=("system test rig: $f failed")
		[ "$rc" -eq 0 ] || [ "$f" -ne 0 ] || fail_step "system test rig: exit $rc"
	elif [ "$rc" -eq 77 ]; then
		skipped=$((skipped + 1)); notes+=("system test rig: SKIPPED (see above)")
	else
		fail_step "system test rig: exit $rc, no counts"
	fi
fi

# A test must stop everything it started: one failure for any process left
# (listed), which is then stopped so that it does not outlive the run.
section "processes left running"
if "$PY" scripts/leftovers.py --kill "SG_TEST_RUN=$SG_TEST_RUN" >"$WORK/leftovers"; then
	echo "none"
	passed=$((passed + 1))
else
	sed 's/^/  left running: /' "$WORK/leftovers"
	fail_step "$(wc -l <"$WORK/leftovers") process(es) left running by the tests (listed above; now stopped)"
fi

section "summary"
for n in "${notes[@]}"; do
	echo "  $n"
done
line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
