#!/bin/bash
# SPDX-License-Identifier: MIT
#
# demo.sh — see sensorgate work in one command, no hardware needed.
#
# Starts, all private to this run and all stopped again on Ctrl-C:
#   - mosquitto on 127.0.0.1:<free port> (anonymous, no persistence),
#   - scripts/simulate-sensor: a fake serial sensor on a pseudo-terminal,
#   - build/sensorgate with config/examples/demo.conf (broker URL and paths
#     rewritten to this run's port and temporary directory),
# then shows what arrives on demo/# with mosquitto_sub until Ctrl-C.
#
# Usage: scripts/demo.sh [--no-deps] [--no-build] [-v]
#   -v   debug logging from sensorgate (its log is shown on exit if it fails)
# Environment: SENSORGATE_BIN (default build/sensorgate), DEMO_INTERVAL (1 s).

set -euo pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
PY=/usr/bin/python3
BIN=${SENSORGATE_BIN:-$ROOT/build/sensorgate}
INTERVAL=${DEMO_INTERVAL:-1}
TEMPLATE=$ROOT/config/examples/demo.conf

do_deps=1
do_build=1
verbose=()
for a in "$@"; do
	case $a in
	--no-deps) do_deps=0 ;;
	--no-build) do_build=0 ;;
	-v) verbose=(-v) ;;
	-h|--help) sed -n '4,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "demo.sh: unknown argument: $a (see --help)" >&2; exit 2 ;;
	esac
done

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ "$do_deps" -eq 0 ] || scripts/deps.sh
[ "$do_build" -eq 0 ] || { make -j2 && make dashboard; }
[ -x "$BIN" ] || die "$BIN is missing: run make"

MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$MOSQUITTO" ] || die "mosquitto not found: run scripts/deps.sh"

DIR=$(mktemp -d "${TMPDIR:-/tmp}/sensorgate-demo.XXXXXX")
broker_pid=
sim_pid=
gw_pid=

stop_pid() { # pid
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do # up to 5 s
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	trap - EXIT INT TERM
	echo
	say "stopping"
	# gateway first: it publishes "offline" while the broker is still there
	stop_pid "$gw_pid"
	if [ -n "$gw_pid" ] && [ -s "$DIR/sensorgate.log" ] &&
	   grep -q '^<[0-3]>' "$DIR/sensorgate.log"; then
		say "sensorgate reported errors; its log:"
		tail -n 30 "$DIR/sensorgate.log"
	fi
	stop_pid "$sim_pid"
	stop_pid "$broker_pid"
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. broker on a free loopback port; a websockets listener on another serves the dashboard
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
WSPORT=$(free_port)
DASH=
if [ -f "$ROOT/dashboard/vendor/mqtt.min.js" ]; then
	DASH="listener $WSPORT 127.0.0.1
protocol websockets
http_dir $ROOT/dashboard"
fi
DASH_SAYS="not built (make dashboard fetches its MQTT client with npm)"
[ -z "$DASH" ] || DASH_SAYS="http://127.0.0.1:$WSPORT/ in a browser: live values, the fan switch"
cat >"$DIR/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
$DASH
allow_anonymous true
persistence false
log_dest file $DIR/mosquitto.log
user $(id -un)
EOF
"$MOSQUITTO" -c "$DIR/mosquitto.conf" >>"$DIR/mosquitto.log" 2>&1 &
broker_pid=$!
port_ready() {
	"$PY" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.5).close()' \
		"$PORT" 2>/dev/null
}
for _ in $(seq 50); do # up to 5 s
	port_ready && break
	kill -0 "$broker_pid" 2>/dev/null || break
	sleep 0.1
done
port_ready || { cat "$DIR/mosquitto.log" >&2; die "mosquitto did not start on port $PORT"; }

# 2. the simulated sensor
"$PY" scripts/simulate-sensor --link "$DIR/sensor" --interval "$INTERVAL" --quiet \
	>"$DIR/simulate-sensor.log" 2>&1 &
sim_pid=$!
for _ in $(seq 50); do
	[ -L "$DIR/sensor" ] && break
	sleep 0.1
done
[ -L "$DIR/sensor" ] || { cat "$DIR/simulate-sensor.log" >&2; die "simulate-sensor did not start"; }

# 3. the gateway, on the demo config pointed at this run's broker and paths
CONF=$DIR/sensorgate.conf
BASE=demo
if [ -f "$TEMPLATE" ]; then
	sed -e "s#mqtt://[^\"]*#mqtt://127.0.0.1:$PORT#g" \
	    -e "s#/tmp/sensorgate-demo#$DIR#g" \
	    -e "s#port = \"[^\"]*\"#port = \"$DIR/sensor\"#" \
	    "$TEMPLATE" >"$CONF"
	b=$(sed -n 's/^[[:space:]]*base_topic[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$CONF" | head -n 1)
	BASE=${b:-sensorgate}
else
	cat >"$CONF" <<EOF
gateway: { id = "demo-gw"; base_topic = "demo"; };
mqtt: { brokers = ( "mqtt://127.0.0.1:$PORT" ); keepalive = 30; reconnect_min = 0.5; reconnect_max = 5; };
spool: { path = "$DIR/spool.db"; };
devices = ( { name = "sim"; driver = "lines"; port = "$DIR/sensor"; baud = 9600; format = "kv";
  readings = ( { field = "t"; topic = "livingroom/temperature"; unit = "°C"; qos = 1; },
               { field = "h"; topic = "livingroom/humidity"; unit = "%"; },
               { field = "p"; topic = "livingroom/pressure"; unit = "hPa"; } ); } );
EOF
fi
if ! "$BIN" --check -c "$CONF" >"$DIR/check.txt" 2>&1; then
	cat "$DIR/check.txt" >&2
	die "the demo config does not validate"
fi
"$BIN" -c "$CONF" "${verbose[@]}" >>"$DIR/sensorgate.log" 2>&1 &
gw_pid=$!
sleep 0.5
kill -0 "$gw_pid" 2>/dev/null || { cat "$DIR/sensorgate.log" >&2; die "sensorgate exited at start"; }

cat <<EOF

  sensorgate demo is running
  -------------------------------------------------------------------------
  broker     mosquitto on 127.0.0.1:$PORT (private to this run)
  sensor     $DIR/sensor -> $(readlink "$DIR/sensor"), a line every ${INTERVAL}s
  gateway    $BIN -c $CONF
  dashboard  $DASH_SAYS
  logs       $DIR/{sensorgate,mosquitto,simulate-sensor}.log

  topic map (sensorgate --check):
$(sed 's/^/    /' "$DIR/check.txt")

  In another terminal:
    mosquitto_sub -h 127.0.0.1 -p $PORT -v -t '$BASE/#'
    mosquitto_pub -h 127.0.0.1 -p $PORT -t '$BASE/livingroom/fan/set' -m ON
    tail -f $DIR/sensorgate.log

  Messages on $BASE/# follow; Ctrl-C stops everything and removes $DIR.
  -------------------------------------------------------------------------

EOF

# 4. watch, in the foreground, until Ctrl-C
mosquitto_sub -h 127.0.0.1 -p "$PORT" -v -t "$BASE/#" || true
