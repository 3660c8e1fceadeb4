#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run.sh — build and run the driver fuzz targets (libFuzzer + ASan + UBSan).
#
# Each tests/fuzz/fuzz_<driver>.c is built with clang -fsanitize=fuzzer,address,undefined
# together with all of drivers/*.c, then run for FUZZ_SECONDS seconds (default 30) on a corpus
# in build-fuzz/corpus/<driver>/, seeded from tests/data/<driver>/ (recorded streams, frames;
# for the request/response drivers the answers of the transcripts). The corpus is kept between
# runs. Inputs in tests/fuzz/regressions/<driver>-* (crashes found before, now fixed) are
# replayed first. Exits non-zero if a target fails to build or finds a crash, a leak or undefined
# behaviour; the reproducer is left in build-fuzz/.
#
# Usage: tests/fuzz/run.sh [driver ...]      (default: all targets)
# Environment: FUZZ_SECONDS (30), FUZZ_OUT (build-fuzz), CC_FUZZ (clang)

set -euo pipefail

cd "$(dirname "$0")/../.."
SECONDS_EACH=${FUZZ_SECONDS:-30}
OUT=${FUZZ_OUT:-build-fuzz}
CC_FUZZ=${CC_FUZZ:-clang}
PKGS="libconfig libserialport libgpiod"

if ! command -v "$CC_FUZZ" >/dev/null; then
	echo "run.sh: $CC_FUZZ not found (scripts/deps.sh installs clang)" >&2
	exit 2
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for f in tests/fuzz/fuzz_*.c; do
		t=$(basename "$f" .c)
		targets+=("${t#fuzz_}")
	done
fi

mkdir -p "$OUT"
CFLAGS=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
	-DSG_VERSION=\"fuzz\" -I. $(pkg-config --cflags $PKGS))
LIBS=($(pkg-config --libs $PKGS) -lm)

# A seed is "<option-set byte><chunk byte>" followed by the device's bytes (see fuzz_common.h).
seed() { # seed FILE-OUT SRC [hex]
	{ printf '\000\077'; if [ "${3:-}" = hex ]; then sed -n 's/^< //p' "$2" | xxd -r -p; else cat "$2"; fi; } >"$1"
}

seed_corpus() { # seed_corpus DRIVER DIR
	local d=$1 dir=$2 i=0
	mkdir -p "$dir"
	if [ -d "tests/data/$d" ]; then
		for f in "tests/data/$d"/*; do
			case "$f" in
			*.md|*.py|*/expected.txt) ;;
			*/transcript.txt) seed "$dir/seed-transcript" "$f" hex ;;
			*) seed "$dir/seed-$(basename "$f")" "$f" ;;
			esac
		done
	fi
	if [ "$d" = lines ]; then
		for s in 't=21.4 h=40.2 p=1012.8' '{"t":21.4,"env":{"h":40},"ok":true,"fw":"v1.2","tags":[1,2]}' \
			'21.4,40.2,1012.8' 'a=1;b:2,c=\u00e9'; do
			i=$((i + 1))
			printf '\000\077%s\r\n' "$s" >"$dir/seed-inline-$i"
			printf '\001\005%s\n' "$s" >"$dir/seed-inline-json-$i"
			printf '\002\011%s\n' "$s" >"$dir/seed-inline-csv-$i"
		done
	fi
}

status=0
start=$(date +%s)
for t in "${targets[@]}"; do
	src=tests/fuzz/fuzz_$t.c
	bin=$OUT/fuzz_$t
	if [ ! -f "$src" ]; then
		echo "run.sh: no target $src" >&2
		status=1
		continue
	fi
	echo "== fuzz_$t: build"
	if ! "$CC_FUZZ" "${CFLAGS[@]}" -o "$bin" "$src" drivers/*.c "${LIBS[@]}"; then
		echo "run.sh: fuzz_$t does not build" >&2
		status=1
		continue
	fi
	corpus=$OUT/corpus/$t
	seed_corpus "$t" "$corpus"
	# inputs that once crashed a target are replayed first (tests/fuzz/regressions/<driver>-*)
	regressions=(tests/fuzz/regressions/"$t"-*)
	if [ -e "${regressions[0]}" ] && ! "$bin" "${regressions[@]}" >"$OUT/fuzz_$t.regressions.log" 2>&1; then
		echo "run.sh: fuzz_$t fails on a recorded regression input, see $OUT/fuzz_$t.regressions.log" >&2
		status=1
		continue
	fi
	echo "== fuzz_$t: ${SECONDS_EACH}s, corpus $corpus ($(ls "$corpus" | wc -l) inputs)"
	if ! (cd "$OUT" && "./fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len=8192 -print_final_stats=1 \
		-artifact_prefix="crash-$t-" "corpus/$t" 2>"fuzz_$t.log"); then
		echo "run.sh: fuzz_$t FAILED, see $OUT/fuzz_$t.log and $OUT/crash-$t-*" >&2
		tail -40 "$OUT/fuzz_$t.log" >&2
		status=1
	else
		grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$OUT/fuzz_$t.log" | tr '\n' ' '
		echo
	fi
done
echo "== fuzzing done in $(( $(date +%s) - start ))s, status $status"
exit $status
