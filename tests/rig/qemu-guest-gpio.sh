# SPDX-License-Identifier: MIT
#
# qemu-guest-gpio.sh — the GPIO hook of the QEMU guest: a relay on a
# gpio-sim line switched by an MQTT command. Staged as /rig/hook-gpio.sh by
# rig_qemu_hook_gpio (qemu.sh) with gpio-sim.ko and irq_sim.ko built by
# gpio-sim.sh, and sourced by qemu-guest.sh (busybox sh): it uses that
# script's check/wait_for/ok/bad and its broker on 127.0.0.1:1883.
#
# One gpio-sim chip (label "rig-relays", 8 lines) made through configfs; the
# real sensorgate drives two actuators on it through libgpiod and the
# kernel's gpio character device:
#   relay     line 3, chip named gpiochipN, topic rig/hall/light
#   inverted  line 5, chip named by its label, active_low, topic rig/hall/fan
# Levels are read from gpio-sim's sysfs (sim_gpioN/value: the physical level
# of the line), the consumer from debugfs, the states from the retained
# topics. The lines start from pulls opposite to what sensorgate must drive
# (line 3 pulled up, line 5 pulled down), so the initial OFF is seen to be
# driven and not merely the idle level.
#
# The safe state at SIGTERM cannot be read from sysfs after the exit:
# gpio-sim puts a line back to its pull when it is released, and the process
# exit releases it. So the kernel's gpio_value trace events (every level
# gpiolib drives, physical, in order) tell what sensorgate drove last.

echo "== hook: gpio-sim, a relay switched by MQTT"
g_cfs=/sys/kernel/config/gpio-sim/rig
g_trace=/sys/kernel/tracing

# line_is N LEVEL: sim_gpioN/value (physical) is LEVEL.
line_is() { [ "$(cat "$g_lines/sim_gpio$1/value" 2>/dev/null)" = "$2" ]; }
# state_is TOPIC PAYLOAD: the latest state published on rig/TOPIC (seen by
# the subscriber started below) is PAYLOAD. Cheap enough to poll.
state_is() { [ "$(grep "^rig/$1 " /tmp/gpio-states | tail -n 1)" = "rig/$1 $2" ]; }
# retained TOPIC PAYLOAD: a new subscriber gets PAYLOAD at once, retained.
retained() { [ "$(mosquitto_sub -h 127.0.0.1 -t "rig/$1" -C 1 -W 2 2>/dev/null)" = "$2" ]; }
# state_now TOPIC PAYLOAD: within 10 s PAYLOAD is published, and it is retained.
state_now() { wait_for 10 state_is "$1" "$2" && retained "$1" "$2"; }
# sets N: the levels gpiolib drove onto line N so far, oldest first ("0101").
sets() { grep -o "gpio_value: $((g_base + $1)) set [01]" "$g_trace/trace" | awk '{printf "%s", $4}'; }
# consumer N: line N's entry in debugfs ("gpio-507 (|sensorgate) out lo"), or nothing.
consumer() { grep "^ gpio-$((g_base + $1)) " /sys/kernel/debug/gpio | tr -s ' '; }
# owned N LEVEL: line N is requested by sensorgate as an output at LEVEL (hi/lo).
owned() { grep -q "^ gpio-$((g_base + $1)) .*|sensorgate *) out $2" /sys/kernel/debug/gpio; }
both_off() { retained hall/light OFF && retained hall/fan OFF; }
released() { ! grep -q '|sensorgate' /sys/kernel/debug/gpio && line_is 3 1 && line_is 5 0; }

modprobe gpio-sim 2>/tmp/modprobe-gpio
check "gpio-sim and irq_sim loaded (out-of-tree, built for $(uname -r)), configfs with them" \
	sh -c 'grep -q "^gpio_sim " /proc/modules && grep -q "^irq_sim " /proc/modules && grep -q "^configfs " /proc/modules'
sed 's/^/     /' /tmp/modprobe-gpio
dmesg | grep -E 'gpio_sim|irq_sim|module verification' | sed 's/^/     dmesg: /'
echo "     kernel taint flags: $(cat /proc/sys/kernel/tainted) (4096 out-of-tree, 8192 unsigned module)"

grep -q " /sys/kernel/config " /proc/mounts || mount -t configfs configfs /sys/kernel/config
grep -q " /sys/kernel/debug " /proc/mounts || mount -t debugfs debugfs /sys/kernel/debug
grep -q " $g_trace " /proc/mounts || mount -t tracefs tracefs "$g_trace"
g_chip=
g_base=
if mkdir "$g_cfs" "$g_cfs/bank0" && echo 8 >"$g_cfs/bank0/num_lines" &&
	echo rig-relays >"$g_cfs/bank0/label" && echo 1 >"$g_cfs/live"; then
	g_chip=$(cat "$g_cfs/bank0/chip_name")
	g_lines=/sys/devices/platform/$(cat "$g_cfs/dev_name")/$g_chip
	for c in /sys/class/gpio/gpiochip*; do
		[ "$(cat "$c/label" 2>/dev/null)" = rig-relays ] && g_base=$(cat "$c/base")
	done
fi
check "gpio-sim chip live through configfs: /dev/$g_chip, label rig-relays (base $g_base), sim_gpio0..7 in sysfs" \
	sh -c "[ -n '$g_chip' ] && [ -n '$g_base' ] && [ -c /dev/$g_chip ] && [ -e $g_lines/sim_gpio7/value ]"

if [ -n "$g_chip" ] && [ -n "$g_base" ]; then
	echo pull-up >"$g_lines/sim_gpio3/pull"
	echo 1 >"$g_trace/events/gpio/gpio_value/enable"
	: >"$g_trace/trace"
	cat >/etc/sensorgate/gpio.conf <<EOF
gateway: { id = "qemu-gpio"; base_topic = "rig"; };
mqtt: { brokers = ( "mqtt://127.0.0.1:1883" ); };
actuators = (
	{ name = "relay"; driver = "gpio"; chip = "$g_chip"; line = 3; topic = "hall/light"; initial = "OFF"; },
	{ name = "inverted"; driver = "gpio"; chip = "rig-relays"; line = 5; active_low = true;
	  topic = "hall/fan"; initial = "OFF"; }
);
EOF
	check "before sensorgate: line 3 high (pulled up), line 5 low (pulled down)" sh -c \
		"[ \$(cat $g_lines/sim_gpio3/value) = 1 ] && [ \$(cat $g_lines/sim_gpio5/value) = 0 ]"
	mosquitto_sub -h 127.0.0.1 -v -t rig/hall/light -t rig/hall/fan >/tmp/gpio-states 2>/dev/null &
	g_sub=$!
	sensorgate -c /etc/sensorgate/gpio.conf -v >/tmp/gw-gpio.log 2>&1 &
	g_gw=$!
	wait_for 20 state_is hall/light OFF
	check "start: retained state rig/hall/light = OFF" state_now hall/light OFF
	check "start: retained state rig/hall/fan = OFF" state_now hall/fan OFF
	check "start: initial OFF drove line 3 low" line_is 3 0
	check "start: line 3 requested by sensorgate as an output (debugfs)" owned 3 lo
	check "start: active_low line 5 (chip named by its label) is high for OFF" wait_for 5 line_is 5 1
	echo "     debugfs: line 3 $(consumer 3); line 5 $(consumer 5)"

	mosquitto_pub -h 127.0.0.1 -q 1 -t rig/hall/light/set -m ON
	check "MQTT ON on rig/hall/light/set: line 3 went high" wait_for 10 line_is 3 1
	check "retained state rig/hall/light = ON" state_now hall/light ON
	check "line 5 untouched by line 3's command (still high)" line_is 5 1
	mosquitto_pub -h 127.0.0.1 -q 1 -t rig/hall/light/set -m OFF
	check "MQTT OFF: line 3 went low" wait_for 10 line_is 3 0
	check "retained state rig/hall/light = OFF" state_now hall/light OFF

	mosquitto_pub -h 127.0.0.1 -q 1 -t rig/hall/fan/set -m ON
	check "active_low: MQTT ON drove line 5 low" wait_for 10 line_is 5 0
	check "active_low: retained state rig/hall/fan = ON" state_now hall/fan ON
	mosquitto_pub -h 127.0.0.1 -q 1 -t rig/hall/fan/set -m '{"state":"off"}'
	check "active_low: MQTT {\"state\":\"off\"} drove line 5 high" wait_for 10 line_is 5 1
	check "active_low: retained state rig/hall/fan = OFF" state_now hall/fan OFF

	# Both on, then SIGTERM: safe (= initial) OFF is line 3 low, line 5 high.
	mosquitto_pub -h 127.0.0.1 -q 1 -t rig/hall/light/set -m ON
	mosquitto_pub -h 127.0.0.1 -q 1 -t rig/hall/fan/set -m ON
	wait_for 10 line_is 3 1
	wait_for 10 line_is 5 0
	wait_for 10 state_is hall/fan ON
	g_s3=$(sets 3)
	g_s5=$(sets 5)
	kill "$g_gw" 2>/dev/null
	wait_for 10 sh -c "! kill -0 $g_gw"
	check "SIGTERM: sensorgate exited cleanly (\"stopped:\" logged)" grep -q "stopped: " /tmp/gw-gpio.log
	g_a3=$(sets 3)
	g_a5=$(sets 5)
	check "SIGTERM: line 3 driven to its safe OFF (low) before release (levels driven: $g_a3)" \
		sh -c "[ '$g_a3' = '${g_s3}0' ] && case '$g_s3' in *1) true ;; *) false ;; esac"
	check "SIGTERM: active_low line 5 driven to its safe OFF (high) before release (levels driven: $g_a5)" \
		sh -c "[ '$g_a5' = '${g_s5}1' ] && case '$g_s5' in *0) true ;; *) false ;; esac"
	check "SIGTERM: safe state logged for both actuators" \
		sh -c '[ "$(grep -c "safe state on shutdown: OFF" /tmp/gw-gpio.log)" -eq 2 ]'
	check "SIGTERM: retained states say OFF" both_off
	check "lines released at exit (no consumer; gpio-sim back to the pulls: 3 high, 5 low)" released
	kill "$g_sub" 2>/dev/null
	echo 0 >"$g_trace/events/gpio/gpio_value/enable"
	if [ "$failed" -ne 0 ]; then
		echo "---- sensorgate (gpio) log ----"
		tail -n 30 /tmp/gw-gpio.log
		grep "gpio_value" "$g_trace/trace" | tail -n 20
	fi
else
	bad "no gpio-sim chip: the GPIO checks could not run"
fi
