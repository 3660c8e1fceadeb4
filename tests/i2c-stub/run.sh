#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run.sh — bus_i2c.c and the I2C drivers against Linux's i2c-dev + i2c-stub.
#
# Boots Debian's 6.1 kernel in QEMU (TCG, no KVM needed) with a busybox
# initramfs holding check.c built statically, loads i2c-dev and i2c-stub
# (chip_addr=0x76) and runs the check; about 4 s. Exit 0 on "I2C-STUB CHECK
# PASSED", 1 on failure, 77 (skip) when the kernel, qemu or busybox is not
# there. The kernel comes from the system rig's cache: a vmlinux or vmlinuz
# and its modules anywhere under $SG_RIG_CACHE/kernel (default
# /var/cache/sensorgate-rig/kernel); nothing is downloaded here.
#
# Usage: tests/i2c-stub/run.sh [-v]   (-v: show the whole guest console)

set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${SG_RIG_CACHE:-/var/cache/sensorgate-rig}/kernel
VERBOSE=0
[ "${1:-}" = "-v" ] && VERBOSE=1

skip() { echo "i2c-stub check SKIPPED: $*" >&2; exit 77; }

command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64"
BUSYBOX=$(command -v busybox) || skip "no busybox"
! ldd "$BUSYBOX" >/dev/null 2>&1 || skip "busybox is not static"
KERNEL=$(find "$CACHE" \( -name vmlinux -o -name 'vmlinuz-*' \) -type f 2>/dev/null | head -1 || true)
[ -n "$KERNEL" ] || skip "no kernel under $CACHE (run the system rig once to fetch it)"
STUB=$(find "$CACHE" -name 'i2c-stub.ko*' 2>/dev/null | head -1 || true)
DEV=$(find "$CACHE" -name 'i2c-dev.ko*' 2>/dev/null | head -1 || true)
[ -n "$STUB" ] && [ -n "$DEV" ] || skip "no i2c-stub/i2c-dev modules under $CACHE"

WORK=$(mktemp -d /tmp/sg-i2c-stub.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"/root/{bin,proc,sys,dev,mod}

# common/ (options.c: every driver reads its options through it) and every driver file but the
# serial-line ones (bus_serial, line, line_*: libserialport) and the actuators. The GPIO drivers come
# along because the registry names them; libgpiod links statically.
${CC:-cc} -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -I. -static -o "$WORK/root/bin/check" \
	tests/i2c-stub/check.c common/*.c $(ls drivers/*.c | grep -v -e bus_serial -e '/line\.c' -e '/line_' -e '/act_') \
	-lconfig -lgpiod -lm -lpthread

cp "$BUSYBOX" "$WORK/root/bin/busybox"
for a in sh mount insmod poweroff cat i2cdetect; do ln -s busybox "$WORK/root/bin/$a"; done
for m in "$DEV" "$STUB"; do
	case $m in
	*.xz) xz -dc "$m" >"$WORK/root/mod/$(basename "$m" .xz)" ;;
	*) cp "$m" "$WORK/root/mod/" ;;
	esac
done
cat >"$WORK/root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
insmod /mod/i2c-dev.ko && insmod /mod/i2c-stub.ko chip_addr=0x76 || echo "I2C-STUB CHECK FAILED (modules)"
i2cdetect -y -r 0
/bin/check /dev/i2c-0
poweroff -f
INIT
chmod +x "$WORK/root/init"
(cd "$WORK/root" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$WORK/initrd.gz")

timeout 120 qemu-system-x86_64 -accel tcg -cpu max -m 256 -nographic -no-reboot \
	-kernel "$KERNEL" -initrd "$WORK/initrd.gz" -append "console=ttyS0 quiet panic=-1" \
	>"$WORK/console.log" 2>&1 || true
if [ "$VERBOSE" = 1 ]; then
	cat "$WORK/console.log"
else
	sed -n '/^bme280 at\|^sht3x at\|^bh1750 at\|^  \|FAIL\|PASSED/p' "$WORK/console.log"
fi
grep -q "I2C-STUB CHECK PASSED" "$WORK/console.log"
