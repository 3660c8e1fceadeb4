# SPDX-License-Identifier: MIT
#
# qemu-guest-gpio-in.sh — the GPIO input hook of the QEMU guest: a contact,
# a button and a pulse counter on a gpio-sim chip, edges to MQTT. Staged as
# /rig/hook-gpio-in.sh by rig_qemu_hook_gpio (qemu.sh) next to the relay hook,
# with /rig/pulse (tests/rig/pulse.c, built on the host), and sourced by
# qemu-guest.sh (busybox sh): it uses that script's check/wait_for/ok/bad and
# its broker on 127.0.0.1:1883.
#
# Lines of the chip "rig-inputs" are moved with gpio-sim's sysfs `pull`
# attribute: the kernel raises a real edge interrupt for each change, and the
# real sensorgate reads it through the GPIO character device (uAPI v2).
#   line 0  contact "door" (debounce 10 ms)
#   line 1  button "bell" (debounce 10 ms, double-click window 300 ms, long press 800 ms)
#   line 2  counter "meter" (save_pulses 10, save_interval 1 s, published every 0.5 s)
# Checks: the contact's level at start and on changes; 1,000 pulses at 200 Hz
# counted exactly with no event dropped; a kill -9 after pulse 500 of a
# second burst loses at most save_pulses - 1 (9) pulses and the total never
# goes back; 100 more after the restart are counted exactly; the libgpiod
# 1.6 (uAPI v1) fallback counts a slower burst exactly; single, double and
# long presses come out as such. The pulse source checks its own side: one
# interrupt per pulse, each made an event by the kernel before the next edge
# (pulse -i; why in tests/rig/pulse.c), so a total below the pulses made is
# the gateway's loss, not the emulation's.

echo "== hook: gpio-sim inputs: a contact, a button and a pulse counter"
i_cfs=/sys/kernel/config/gpio-sim/rig-in
i_chip=
modprobe gpio-sim 2>/dev/null
grep -q " /sys/kernel/config " /proc/mounts || mount -t configfs configfs /sys/kernel/config
if mkdir "$i_cfs" "$i_cfs/bank0" && echo 8 >"$i_cfs/bank0/num_lines" &&
	echo rig-inputs >"$i_cfs/bank0/label" && echo 1 >"$i_cfs/live"; then
	i_chip=$(cat "$i_cfs/bank0/chip_name")
	i_lines=/sys/devices/platform/$(cat "$i_cfs/dev_name")/$i_chip
fi
check "gpio-sim chip rig-inputs live (/dev/$i_chip)" sh -c "[ -n '$i_chip' ] && [ -c /dev/$i_chip ]"

if [ -n "$i_chip" ]; then
	# pull LINE up|down: move the line (a real edge interrupt when it changes)
	pull() { echo "pull-$2" >"$i_lines/sim_gpio$1/pull"; }
	# last TOPIC: the newest payload seen on rig/TOPIC; is TOPIC PAYLOAD: it is PAYLOAD
	last() { grep "^rig/$1 " /tmp/in-msgs | tail -n 1 | cut -d' ' -f2; }
	is() { [ "$(last "$1")" = "$2" ]; }
	# events TOPIC: every payload on rig/TOPIC so far, on one line
	events() { grep "^rig/$1 " /tmp/in-msgs | cut -d' ' -f2 | tr '\n' ' '; }
	# line_irq LINE: the interrupt sensorgate requested for LINE of an irq_sim chip (/proc/interrupts:
	# "N: <per CPU> irq_sim LINE sensorgate", on arm64 with the trigger before the name:
	# "... irq_sim LINE Edge sensorgate"); only rig-inputs has lines with interrupts
	line_irq() {
		awk -v l="$1" '$NF == "sensorgate" { n = NF - 1; if ($n == "Edge" || $n == "Level") n--
			if ($n == l && $(n - 1) == "irq_sim") { sub(":", "", $1); print $1 } }' /proc/interrupts
	}
	# burst OUT N HZ [KILL_AT PID]: N pulses at HZ on the counter's line 2 by /rig/pulse, output in OUT.
	# With -i the source makes an edge only once the kernel made the last one an event: in the
	# emulation two edges can otherwise become one event with no gap in its numbers (see
	# tests/rig/pulse.c). Checked: as many interrupts as pulses (up to KILL_AT), each its own event.
	burst() {
		b_out=$1
		shift
		b_irq=$(line_irq 2)
		/rig/pulse -i "${b_irq:-0}" "$i_lines/sim_gpio2/pull" "$@" >"$b_out" 2>&1
		b_rc=$?
		echo "     $(tr '\n' ' ' <"$b_out")"
		b_want=${3:-$1}
		b_got=$(sed -n 's/.*; interrupts \([0-9]*\), thread runs \([0-9]*\).*/\1 \2/p' "$b_out")
		check "pulse source: $b_want interrupts of irq ${b_irq:-?}, each made an event before the next edge ($b_got)" \
			sh -c "[ $b_rc = 0 ] && [ '$b_got' = '$b_want $b_want' ]"
	}
	pull 0 up
	pull 1 down
	pull 2 down
	cat >/etc/sensorgate/in.conf <<EOF
gateway: { id = "qemu-in"; base_topic = "rig"; };
mqtt: { brokers = ( "mqtt://127.0.0.1:1883" ); };
spool: { path = "/var/lib/sensorgate/in.db"; };
devices = (
	{ name = "door"; driver = "contact"; chip = "$i_chip"; line = 0; debounce_ms = 10; },
	{ name = "bell"; driver = "button"; chip = "$i_chip"; line = 1; debounce_ms = 10;
	  double_click_ms = 300; long_press_ms = 800; },
	{ name = "meter"; driver = "counter"; chip = "rig-inputs"; line = 2; interval = 0.5;
	  save_pulses = 10; save_interval = 1.0; }
);
EOF
	mosquitto_sub -h 127.0.0.1 -v -t 'rig/door/#' -t 'rig/meter/total' -t 'rig/bell/#' >/tmp/in-msgs 2>/dev/null &
	i_sub=$!
	sensorgate -c /etc/sensorgate/in.conf -v >/tmp/gw-in.log 2>&1 &
	i_gw=$!
	check "contact: ON at start (line pulled up)" wait_for 20 is door/state ON
	check "edge events through the kernel's uAPI v2 with its 1024-event buffer" \
		grep -q "door: $i_chip line 0: edge events (both) through uAPI v2, 1024-event buffer" /tmp/gw-in.log
	pull 0 down
	check "contact: OFF after the line went down" wait_for 5 is door/state OFF
	pull 0 up
	check "contact: ON again" wait_for 5 is door/state ON
	check "contact: retained" sh -c '[ "$(mosquitto_sub -h 127.0.0.1 -t rig/door/state -C 1 -W 2)" = ON ]'

	# button: a single press, a double press, a long press (shell sleeps: generous margins)
	pull 1 up; sleep 0.1; pull 1 down
	sleep 1
	pull 1 up; sleep 0.1; pull 1 down; sleep 0.1; pull 1 up; sleep 0.1; pull 1 down
	sleep 1
	pull 1 up; sleep 1.5; pull 1 down
	wait_for 5 sh -c '[ $(grep -c "^rig/bell/action " /tmp/in-msgs) -ge 3 ]'
	check "button: single, double, long press come out as such ($(events bell/action))" \
		sh -c '[ "$(grep "^rig/bell/action " /tmp/in-msgs | cut -d" " -f2 | tr "\n" " ")" = "single double long " ]'
	check "button: events are not retained" \
		sh -c '[ -z "$(mosquitto_sub -h 127.0.0.1 -t rig/bell/action -C 1 -W 1 2>/dev/null)" ]'

	check "counter: total 0 at start" wait_for 10 is meter/total 0
	burst /tmp/pulse1 1000 200
	wait_for 10 is meter/total 1000
	check "counter: 1000 pulses at 200 Hz counted exactly (total $(last meter/total))" is meter/total 1000
	check "counter: no event dropped by the kernel" sh -c '! grep -q "dropped by the kernel" /tmp/gw-in.log'

	# kill -9 after pulse 500 of a second burst; the burst goes on to 1000 without a gateway
	burst /tmp/pulse2 1000 200 500 "$i_gw"
	sleep 0.5
	i_before=$(last meter/total)
	i_mark=$(wc -l </tmp/in-msgs)
	sensorgate -c /etc/sensorgate/in.conf -v >>/tmp/gw-in.log 2>&1 &
	i_gw=$!
	wait_for 10 sh -c "[ \$(tail -n +$((i_mark + 1)) /tmp/in-msgs | grep -c '^rig/meter/total ') -ge 1 ]"
	i_after=$(tail -n +$((i_mark + 1)) /tmp/in-msgs | grep '^rig/meter/total ' | head -n 1 | cut -d' ' -f2)
	check "kill -9 after pulse 1500: total after the restart $i_after, last published before $i_before: never back" \
		sh -c "[ -n '$i_after' ] && [ -n '$i_before' ] && [ $i_after -ge $i_before ]"
	check "kill -9 after pulse 1500: at most 9 pulses lost (save_pulses - 1; lost $((1500 - ${i_after:-0})))" \
		sh -c "[ -n '$i_after' ] && [ $i_after -le 1500 ] && [ $((1500 - i_after)) -le 9 ]"
	burst /tmp/pulse3 100 200
	wait_for 10 is meter/total $((${i_after:-0} + 100))
	check "counter: 100 more after the restart counted exactly ($((${i_after:-0} + 100)): $(last meter/total))" \
		is meter/total $((${i_after:-0} + 100))

	# the libgpiod 1.6 (uAPI v1) fallback, forced: the same counter, a slower burst
	kill "$i_gw" 2>/dev/null
	wait_for 10 sh -c "! kill -0 $i_gw"
	i_base=$(last meter/total)
	SENSORGATE_GPIO_UAPI=v1 sensorgate -c /etc/sensorgate/in.conf -v >/tmp/gw-in-v1.log 2>&1 &
	i_gw=$!
	wait_for 10 grep -q "edge events (rising) through libgpiod 1.6" /tmp/gw-in-v1.log
	check "uAPI v1 fallback (libgpiod 1.6) in use when forced" \
		grep -q "meter: rig-inputs line 2: edge events (rising) through libgpiod 1.6, uAPI v1" /tmp/gw-in-v1.log
	burst /tmp/pulse4 200 50
	wait_for 10 is meter/total $((${i_base:-0} + 200))
	check "uAPI v1: 200 pulses at 50 Hz counted exactly ($((${i_base:-0} + 200)): $(last meter/total))" \
		is meter/total $((${i_base:-0} + 200))
	kill "$i_gw" 2>/dev/null
	wait_for 10 sh -c "! kill -0 $i_gw"
	check "clean exit on SIGTERM" grep -q "stopped: " /tmp/gw-in-v1.log
	kill "$i_sub" 2>/dev/null
	if [ "$failed" -ne 0 ]; then
		echo "---- sensorgate (inputs) log ----"
		grep -v "libmosquitto" /tmp/gw-in.log | tail -n 30
		tail -n 10 /tmp/gw-in-v1.log
	fi
else
	bad "no gpio-sim chip for the inputs: their checks could not run"
fi
