#!/bin/sh
# SPDX-License-Identifier: MIT
#
# qemu-guest.sh — the kernel tests, run by /init inside the QEMU guest
# (busybox sh). The host feeds "t=..." lines into the guest's sensor UART:
# the x86 guest's second UART, a 16550A at /dev/ttyS1, or the ARM guest's
# PL011 at /dev/ttyAMA0 (sg_tty= on the kernel command line names it); a
# private mosquitto listens on the guest's loopback.
# Results go to the console (ttyS0) as "ok"/"FAIL" lines and a closing
# "qemu: N passed, M failed" that tests/rig/qemu.sh reads.

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "  ok    $*"; }
bad() { failed=$((failed + 1)); echo "  FAIL  $*"; }
check() {
	what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
# wait_for SECONDS command...
wait_for() {
	n=$(($1 * 5))
	shift
	while ! "$@" 2>/dev/null; do
		n=$((n - 1))
		[ "$n" -le 0 ] && return 1
		sleep 0.2
	done
}

# The sensor UART: its name, its driver's /proc/tty/driver file, its line there, its model.
tty=$(sed -n 's/.*sg_tty=\([^ ]*\).*/\1/p' /proc/cmdline)
tty=${tty:-ttyS1}
case $tty in
	ttyAMA*) uart_proc=/proc/tty/driver/ttyAMA uart_model=PL011 ;;
	*) uart_proc=/proc/tty/driver/serial uart_model=16550A ;;
esac
uart_line=${tty##*[!0-9]}
dev=/dev/$tty

# the user space's ELF e_machine (busybox's): 0x28 ARM (32-bit), 0xb7 AArch64, 0x3e x86-64
em=$(od -An -tx1 -j18 -N1 /bin/busybox | tr -d ' ')
case $em in 28) userland="32-bit ARM" ;; b7) userland=AArch64 ;; 3e) userland=x86-64 ;; *) userland="e_machine 0x$em" ;; esac
echo "== kernel $(uname -r) ($(uname -m)), $(grep -c ^processor /proc/cpuinfo) cpu(s), user space $userland"
check "$dev is a $uart_model UART" grep -q "^$uart_line: uart:$uart_model" "$uart_proc"
check "sysfs entry /sys/class/tty/$tty" test -e "/sys/class/tty/$tty/device"
sensorgate --list-ports >/tmp/ports 2>&1
sed 's/^/     /' /tmp/ports
check "sensorgate --list-ports (libserialport enumeration) lists $dev" grep -q "$dev" /tmp/ports

mkdir -p /etc/mosquitto /etc/sensorgate /var/lib/sensorgate
printf 'listener 1883 127.0.0.1\nallow_anonymous true\nuser root\npersistence false\n' >/etc/mosquitto/rig.conf
mosquitto -c /etc/mosquitto/rig.conf -d
check "mosquitto up on the guest's loopback" wait_for 10 sh -c 'mosquitto_pub -h 127.0.0.1 -t rig/ping -m x'

# scripts/bench-gpio.sh: the GPIO figures only
if grep -q ' sg_bench=1' /proc/cmdline && [ -x /rig/hook-gpio-bench.sh ]; then
	. /rig/hook-gpio-bench.sh
	echo "qemu: $passed passed, $failed failed"
	exit 0
fi

cat >/etc/sensorgate/rig.conf <<EOF
gateway: { id = "qemu"; base_topic = "rig"; };
mqtt: { brokers = ( "mqtt://127.0.0.1:1883" ); };
devices = (
	{ name = "uart"; driver = "lines"; port = "$dev"; baud = 115200; format = "kv";
	  readings = ( { field = "t"; topic = "serial/temperature"; qos = 1; } ); }
);
EOF
sensorgate -c /etc/sensorgate/rig.conf -v >/tmp/gw.log 2>&1 &
gw=$!
mosquitto_sub -h 127.0.0.1 -t rig/serial/temperature -C 3 -W 60 >/tmp/got 2>/dev/null
check "3 readings from the UART published ($(tr '\n' ' ' </tmp/got))" sh -c '[ "$(wc -l </tmp/got)" -ge 3 ]'
check "port opened through libserialport (not the termios fallback)" \
	grep -q "uart: $dev open at 115200 baud 8N1 (libserialport)" /tmp/gw.log
stty -F "$dev" -a >/tmp/stty 2>&1
check "the UART is 8N1 as the gateway set it (stty: cs8 -parenb -cstopb)" \
	sh -c 'grep -qw cs8 /tmp/stty && grep -qw -- -parenb /tmp/stty && grep -qw -- -cstopb /tmp/stty' 
check "values are what the host sent" sh -c 'grep -qx "2[0-9].5" /tmp/got'

# ---- hooks for the I2C and GPIO branches (see tests/rig/qemu.sh) ----------
if [ -x /rig/hook-i2c.sh ]; then . /rig/hook-i2c.sh; fi
if [ -x /rig/hook-gpio.sh ]; then . /rig/hook-gpio.sh; fi
if [ -x /rig/hook-gpio-in.sh ]; then . /rig/hook-gpio-in.sh; fi

kill "$gw" 2>/dev/null
wait_for 10 sh -c "! kill -0 $gw"
check "clean exit on SIGTERM (\"stopped:\" logged)" grep -q "stopped: " /tmp/gw.log

# the arm64 build on the same line, once the armhf one has let go of it (see tests/rig/qemu.sh)
if [ -x /rig/hook-arm64.sh ]; then . /rig/hook-arm64.sh; fi

# ---- framing on the real UART: what each configuration leaves in its termios (stty -F) ----
# framing_case LEGEND DEVICE-SETTINGS WORDS...: the gateway runs with one device on ttyS1 set so;
# every word must be in `stty -a` (a leading '-' means the flag is off). QEMU's 16550A and PL011
# models take the host's bytes whatever the framing, so readings keep coming and show the port works.
framing_case() {
	legend=$1
	settings=$2
	shift 2
	cat >/etc/sensorgate/framing.conf <<EOF
gateway: { id = "qemu"; base_topic = "rig"; };
mqtt: { brokers = ( "mqtt://127.0.0.1:1883" ); };
devices = ( { name = "uart"; driver = "lines"; port = "$dev"; format = "kv"; $settings
	readings = ( { field = "t"; topic = "framing/temperature"; qos = 1; } ); } );
EOF
	sensorgate -c /etc/sensorgate/framing.conf -v >/tmp/framing.log 2>&1 &
	fgw=$!
	mosquitto_sub -h 127.0.0.1 -t rig/framing/temperature -C 2 -W 30 >/tmp/fgot 2>/dev/null
	stty -F "$dev" -a >/tmp/stty 2>&1
	missing=""
	for w in "$@"; do grep -qw -- "$w" /tmp/stty || missing="$missing $w"; done
	check "$legend: stty shows $* ${missing:+(missing:$missing)}" test -z "$missing"
	check "$legend: readings still arrive through libserialport" \
		sh -c '[ "$(wc -l </tmp/fgot)" -ge 2 ] && grep -q "(libserialport)" /tmp/framing.log'
	kill "$fgw" 2>/dev/null
	wait_for 10 sh -c "! kill -0 $fgw"
	[ "$failed" -eq 0 ] || { echo "---- stty -a $dev ----"; cat /tmp/stty; }
}
framing_case "8E1 (the Modbus default)" 'baud = 9600; parity = "even";' cs8 parenb -parodd -cstopb inpck ignpar
framing_case "7E1 (DSMR 2.2)" 'baud = 9600; data_bits = 7; parity = "even";' cs7 parenb -parodd istrip inpck
framing_case "8O2" 'baud = 19200; parity = "odd"; stop_bits = 2;' cs8 parenb parodd cstopb
framing_case "8N2" 'baud = 9600; stop_bits = 2;' cs8 -parenb cstopb -inpck

# ---- a break on the real UART at 8E1: counted by the kernel, logged by the gateway ----
# QEMU's 16550A never sets the parity or framing error bits, so a wrong parity cannot be
# made here; a break can. On the console line below the host sends one through QEMU's
# monitor (QMP chardev-send-break, tests/rig/qemu.sh); the 8250 driver counts it in
# icount.brk (/proc/tty/driver/serial "brk:"), the gateway reads it with TIOCGICOUNT. The PL011
# model turns the same QMP command into a break in its data register; the amba-pl011 driver
# counts it the same way (/proc/tty/driver/ttyAMA).
brk_count() {
	n=$(sed -n "s/^$uart_line: .* brk:\([0-9]*\).*/\1/p" "$uart_proc")
	echo "${n:-0}"
}
brk_above() { [ "$(brk_count)" -gt "$1" ]; }
cat >/etc/sensorgate/break.conf <<EOF
gateway: { id = "qemu"; base_topic = "rig"; };
mqtt: { brokers = ( "mqtt://127.0.0.1:1883" ); };
devices = ( { name = "uart"; driver = "lines"; port = "$dev"; format = "kv"; baud = 9600; parity = "even";
	readings = ( { field = "t"; topic = "break/temperature"; qos = 1; } ); } );
EOF
sensorgate -c /etc/sensorgate/break.conf -v >/tmp/break.log 2>&1 &
bgw=$!
mosquitto_sub -h 127.0.0.1 -t rig/break/temperature -C 2 -W 30 >/tmp/bgot 2>/dev/null
check "break: the gateway reads the UART at 8E1" \
	sh -c '[ "$(wc -l </tmp/bgot)" -ge 2 ] && grep -q "open at 9600 baud 8E1" /tmp/break.log'
brk0=$(brk_count)
echo "== rig: break on $tty now"
wait_for 30 brk_above "$brk0"
brk1=$(brk_count)
check "break: the $uart_model's driver counted it ($uart_proc brk: $brk0 -> $brk1)" \
	test "$brk1" -eq $((brk0 + 1))
want="[0-9]+ parity errors, [0-9]+ framing errors, [0-9]+ overruns, $brk1 breaks,"
wait_for 10 grep -Eq "$want" /tmp/break.log
grep -F " breaks," /tmp/break.log | sed 's/^/     /'
check "break: the gateway logged it from TIOCGICOUNT (\"$brk1 breaks\")" grep -Eq "$want" /tmp/break.log
mosquitto_sub -h 127.0.0.1 -t rig/break/temperature -C 2 -W 30 >/tmp/bgot 2>/dev/null
check "break: readings go on after it" sh -c '[ "$(wc -l </tmp/bgot)" -ge 2 ]'
kill "$bgw" 2>/dev/null
wait_for 10 sh -c "! kill -0 $bgw"
if [ "$failed" -ne 0 ]; then
	echo "---- break log ----"
	tail -n 20 /tmp/break.log
	grep "^$uart_line:" "$uart_proc"
fi

if [ "$failed" -ne 0 ]; then
	echo "---- sensorgate log ----"
	tail -n 40 /tmp/gw.log
fi
echo "qemu: $passed passed, $failed failed"
