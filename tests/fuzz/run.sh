#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run.sh — build and run the fuzz targets (libFuzzer + ASan + UBSan).
#
# Each tests/fuzz/fuzz_<driver>.c is built with clang -fsanitize=fuzzer,address,undefined
# together with all of drivers/*.c (fuzz_commands also with the command router and what it
# needs from gateway/, fuzz_mqtt_guard and fuzz_mqtt_out
# with gateway/mqtt_guard.c, gateway/mqtt_packet.c and libmosquitto, fuzz_json with
# jansson as its oracle), then run
# for FUZZ_SECONDS seconds (default 30) on a corpus
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
	if [ "$d" = modbus_rtu ] || [ "$d" = modbus_tcp ]; then
		# the Application Protocol's §6.3 example (11 03 00 6B 00 03 answered by three registers), as
		# an RTU frame (CRC from tests/unit/test_modbus_proto.c) and with an MBAP header; a §7 exception
		printf '\002\000\153\002\021\003\006\002\053\000\000\000\144\310\272' >"$dir/seed-spec-6.3-rtu"
		printf '\002\000\153\002\007\000\001\000\000\000\011\021\003\006\002\053\000\000\000\144' \
			>"$dir/seed-spec-6.3-tcp"
		printf '\000\004\241\000\007\000\001\000\000\000\003\001\201\002' >"$dir/seed-spec-7-tcp"
	fi
	if [ "$d" = mqtt_guard ]; then
		# first byte: bit 0 MQTT 5, bit 1 a CONNACK first, bit 2 libmosquitto behind (fuzz_mqtt_guard.c);
		# a session's answers, then the byte strings of issue #10
		printf '\003\040\002\000\001\100\002\000\001\220\004\000\002\000\001\320\000' >"$dir/seed-session-5"
		printf '\002\040\002\000\001\062\007\000\001a\000\005hi\260\002\000\007' >"$dir/seed-session-4"
		printf '\007\061\016\000\003a/b\013\010\000\003r/t\011\000\001x{}' >"$dir/seed-publish-props"
		printf '\007\220\004\000\001\005\000' >"$dir/seed-issue-suback"
		printf '\007\100\011\302\202\006\347\343\125\224\252\153' >"$dir/seed-issue-puback"
		printf '\001\040\011\000\000\006\047\000\000\004\000\041\000\024' >"$dir/seed-connack-props"
	fi
	if [ "$d" = mqtt_out ]; then
		# byte 0 bit 0 MQTT 5; then operations (fuzz_mqtt_out.c): 0 q s libmosquitto publishes,
		# 1 s the gateway publishes, 2 n the broker reads, 3 t the relay sends
		printf '\001\000\001\012\001\012\003\001\001\003\000\000\005' >"$dir/seed-interleave-5"
		printf '\000\000\002\377\001\004\001\005\002\010\003\000\001\006' >"$dir/seed-large-first-4"
		printf '\001\001\377\002\001\000\001\012\003\001\001\377\000\002\000' >"$dir/seed-own-large-5"
	fi
	if [ "$d" = commands ]; then
		# flags, expiry, topic length, Response Topic length (2 bytes), Correlation Data length, then
		# topic, Response Topic, Correlation Data, payload (see fuzz_commands.c); issue #10's attacks
		cmd() { printf "$2" >"$dir/seed-$1"; }
		cmd on '\000\000\000\000\000\000ON'
		cmd json-state '\000\000\000\000\000\000{"state":"OFF"}'
		cmd json-dup '\000\000\000\000\000\000{"state":"ON","state":"OFF"}'
		cmd json-escaped-dup '\000\000\000\000\000\000{"state":"ON","\\u0073tate":"OFF"}'
		cmd answer-shape '\000\000\000\000\000\000{"actuator":"sw","state":"ON"}'
		cmd number '\100\000\000\000\000\000{"value":12.5}'
		cmd enum-retained '\141\000\000\000\000\000high'
		cmd expiry '\002\000\000\000\000\000ON'
		cmd rt-reply '\014\000\000\000\016\002client/7/replyk1ON'
		cmd rt-other-set '\014\000\000\000\012\002h/door/setk1ON'
		cmd rt-sys '\014\000\000\000\006\002$SYS/xk1ON'
		cmd rt-discovery '\014\000\000\000\040\002homeassistant/switch/gw/sw/configk1ON'
		cmd rt-nul '\014\000\000\000\011\002ok\000h/sw/xk1ON'
		cmd rt-prefix '\034\000\000\000\012\002replies/mek1ON'
		cmd raw-topic '\300\000\010\000\000\000h/sw/setON'
	fi
	if [ "$d" = json ]; then
		# raw JSON text (fuzz_json.c): a lines-driver document, every escape, numbers at the edges,
		# what must be refused, bytes that are not UTF-8
		js() { printf '%s' "$2" >"$dir/seed-$1"; }
		js document '{"t":21.4,"env":{"h":40,"in":{"x":"y"}},"ok":true,"off":false,"fw":"v1.2","tags":[1,{"a":2}],"n":null}'
		js dotted-keys '{"a.b":-0,"c-d_e":"\u00b0C","e":{"f.g":1E-2}}'
		js escapes '"\"q\" \\ \/ \b\f\n\r\t \u00e9 \u20AC \ud83d\ude00 é"'
		js numbers '[-0, 0.5, -12.5e+3, 1E-2, 9007199254740993, 12345678901234567890, 1e999, 01, 1., -]'
		js literals 'true false null tru nul fals'
		js refused '"\ud800" "\udc00x" "\u0000" "\x" "\u12g4" {"a":1,"a":2} "open'
		printf '"\377\300\257\001\177"\r\n{"k":"\342\202"}' >"$dir/seed-not-utf8"
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
	extra=()
	if [ "$t" = commands ]; then
		extra=(gateway/commands.c gateway/response_topic.c gateway/supervise.c gateway/config.c gateway/log.c
			gateway/filters.c gateway/cloud.c $(pkg-config --cflags --libs libsystemd libmosquitto libcrypto))
	elif [ "$t" = mqtt_guard ]; then
		extra=(gateway/mqtt_guard.c gateway/mqtt_packet.c $(pkg-config --cflags --libs libmosquitto))
	elif [ "$t" = mqtt_out ]; then
		extra=(gateway/mqtt_guard.c gateway/mqtt_packet.c $(pkg-config --cflags --libs libmosquitto))
	elif [ "$t" = json ]; then
		extra=($(pkg-config --cflags --libs jansson))
	fi
	if ! "$CC_FUZZ" "${CFLAGS[@]}" -o "$bin" "$src" drivers/*.c common/*.c "${extra[@]}" "${LIBS[@]}"; then
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
