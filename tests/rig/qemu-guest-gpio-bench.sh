# SPDX-License-Identifier: MIT
#
# qemu-guest-gpio-bench.sh — GPIO input figures in the QEMU guest (a
# benchmark, not a test): staged as /rig/hook-gpio-bench.sh by qemu.sh when
# SG_RIG_BENCH=1 (scripts/bench-gpio.sh) and sourced by qemu-guest.sh instead
# of its checks, with /rig/pulse and the guest's broker on 127.0.0.1:1883.
# Prints "bench: ..." lines; a figure that could not be taken counts as a
# failure so the run says so.
#
#   latency  a contact (debounce_ms = 0, QoS 0) on a gpio-sim line changed
#            200 times, 50 ms apart, by /rig/pulse, which notes the
#            CLOCK_REALTIME of each write to `pull`; mosquitto_sub (-F %U)
#            notes each arrival on the same clock: p50, p99 and max of the
#            difference (the interrupt, the event read, the mapper, the
#            broker, the subscriber; all on emulated CPUs).
#   rate     a counter: bursts of 2,000 pulses at rising rates, each edge
#            made only once the kernel made the last one an event (pulse -i);
#            for each the rate the source achieved, the count, the interrupts
#            taken and the events the kernel dropped; the highest rate counted exactly, beside
#            an S0 meter's 17 Hz (10 kW at 1000 imp/kWh); and the gateway's CPU
#            time per pulse at 200 Hz.

echo "== bench: GPIO inputs on gpio-sim (emulated CPUs: compare runs, not hardware)"
b_cfs=/sys/kernel/config/gpio-sim/rig-bench
b_chip=
modprobe gpio-sim 2>/dev/null
grep -q " /sys/kernel/config " /proc/mounts || mount -t configfs configfs /sys/kernel/config
if mkdir "$b_cfs" "$b_cfs/bank0" && echo 8 >"$b_cfs/bank0/num_lines" &&
	echo rig-bench >"$b_cfs/bank0/label" && echo 1 >"$b_cfs/live"; then
	b_chip=$(cat "$b_cfs/bank0/chip_name")
	b_lines=/sys/devices/platform/$(cat "$b_cfs/dev_name")/$b_chip
fi
check "gpio-sim chip rig-bench live (/dev/$b_chip)" sh -c "[ -n '$b_chip' ] && [ -c /dev/$b_chip ]"

if [ -n "$b_chip" ]; then
	last() { grep "^rig/$1 " /tmp/bench-msgs | tail -n 1 | cut -d' ' -f2; }
	is() { [ "$(last "$1")" = "$2" ]; }
	irqs() { grep ' sensorgate$' /proc/interrupts | awk '{ for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i } END { print n + 0 }'; }
	# line_irq LINE: the interrupt sensorgate requested for LINE (as in qemu-guest-gpio-in.sh)
	line_irq() { awk -v l="$1" '$NF == "sensorgate" && $(NF - 1) == l && $(NF - 2) == "irq_sim" { sub(":", "", $1); print $1 }' /proc/interrupts; }
	echo pull-down >"$b_lines/sim_gpio0/pull"
	echo pull-down >"$b_lines/sim_gpio2/pull"
	cat >/etc/sensorgate/bench.conf <<EOF
gateway: { id = "qemu-bench"; base_topic = "rig"; };
mqtt: { brokers = ( "mqtt://127.0.0.1:1883" ); };
spool: { path = "/var/lib/sensorgate/bench.db"; };
devices = (
	{ name = "door"; driver = "contact"; chip = "$b_chip"; line = 0; debounce_ms = 0; },
	{ name = "meter"; driver = "counter"; chip = "$b_chip"; line = 2; interval = 0.5; }
);
EOF
	mosquitto_sub -h 127.0.0.1 -v -t rig/meter/total >/tmp/bench-msgs 2>/dev/null &
	b_sub=$!
	sensorgate -c /etc/sensorgate/bench.conf >/tmp/gw-bench.log 2>&1 &
	b_gw=$!
	wait_for 20 is meter/total 0

	# latency
	mosquitto_sub -h 127.0.0.1 -t rig/door/state -R -F '%U %p' -C 200 -W 60 >/tmp/lat-recv 2>/dev/null &
	b_lat=$!
	sleep 1
	/rig/pulse "$b_lines/sim_gpio0/pull" toggle 200 50 >/tmp/lat-send
	wait "$b_lat"
	awk 'NR == FNR { sent[FNR] = $3; lvl[FNR] = $2; next }
	     { split($1, t, "."); us = t[1] * 1000000 + substr(t[2] "000000", 1, 6);
	       if (($2 == "ON") != (lvl[FNR] == 1)) bad++;
	       print (us - sent[FNR]) / 1000 }
	     END { if (bad) print "mismatch " bad > "/dev/stderr" }' /tmp/lat-send /tmp/lat-recv | sort -n >/tmp/lat
	b_n=$(wc -l </tmp/lat)
	if [ "$b_n" -ge 100 ]; then
		b_p50=$(sed -n "$(((b_n + 1) / 2))p" /tmp/lat)
		b_p99=$(sed -n "$(((b_n * 99 + 99) / 100))p" /tmp/lat)
		b_max=$(tail -n 1 /tmp/lat)
		echo "bench: contact edge-to-MQTT latency ($b_n changes, debounce 0, QoS 0): p50 $b_p50 ms, p99 $b_p99 ms, max $b_max ms"
		ok "latency measured"
	else
		bad "latency: only $b_n of 200 changes arrived"
	fi

	# pulse rates
	b_best=0
	for b_hz in 200 500 1000 2000 5000 10000; do
		b_t0=$(last meter/total)
		b_i0=$(irqs)
		b_d0=$(grep -c "dropped by the kernel" /tmp/gw-bench.log)
		set -- $(cat /proc/$b_gw/stat | sed 's/.*) //')
		b_cpu0=$(( ${12} + ${13} ))
		# -i: an edge only once the kernel made the last one an event (tests/rig/pulse.c)
		/rig/pulse -i "$(line_irq 2)" "$b_lines/sim_gpio2/pull" 2000 "$b_hz" >/tmp/b-pulse 2>&1
		wait_for 15 is meter/total $((b_t0 + 2000))
		sleep 1.5
		set -- $(cat /proc/$b_gw/stat | sed 's/.*) //')
		b_cpu1=$(( ${12} + ${13} ))
		b_got=$(($(last meter/total) - b_t0))
		b_rate=$(sed -n 's/.*(\([0-9.]*\) Hz).*/\1/p' /tmp/b-pulse)
		b_drops=$(($(grep -c "dropped by the kernel" /tmp/gw-bench.log) - b_d0))
		echo "bench: 2000 pulses asked at $b_hz Hz, made at $b_rate Hz: counted $b_got, interrupts $(($(irqs) - b_i0)), kernel drop reports $b_drops; source: $(sed -n 's/.*interrupts [0-9]*, //p' /tmp/b-pulse)"
		if [ "$b_hz" = 200 ]; then
			echo "bench: gateway CPU at 200 Hz: $(( (b_cpu1 - b_cpu0) * 10000 / 2000 )) µs per pulse (user + system, clock ticks of 10 ms)"
		fi
		# the source's rate is not monotonic once the emulated CPU is its limit: the highest one
		[ "$b_got" = 2000 ] && b_best=$(awk -v a="$b_best" -v b="$b_rate" 'BEGIN { print (b + 0 > a + 0 ? b : a) }')
	done
	echo "bench: highest pulse rate counted exactly: $b_best Hz; an S0 meter makes at most 17 Hz (10 kW at 1000 imp/kWh)"
	check "pulse rates measured" [ "$b_best" != 0 ]
	kill "$b_gw" "$b_sub" 2>/dev/null
fi
