# SPDX-License-Identifier: MIT
#
# gpio-sim.sh — gpio-sim and irq_sim for Debian's 6.1 kernel (sourced by
# qemu.sh, not run).
#
# Debian builds its 6.1 kernel without CONFIG_GPIO_SIM and without
# CONFIG_IRQ_SIM, so a simulated gpiochip needs both as out-of-tree modules.
# rig_gpio_sim builds them from Debian's own packages for exactly the
# kernel the guest boots (same release, same Debian version, so the
# vermagic and the modversions CRCs match) and caches the two .ko files in
# $RIG_CACHE/gpio-sim/<release>/: the first run downloads about 155 MB
# (linux-source-6.1 is 139 MB of it) and takes about 20 s plus the download
# (mostly decompressing the source tarball; the build itself is 2-4 s);
# later runs only copy the two files. The handful of source files taken from
# linux-source are kept per Debian version ($RIG_CACHE/gpio-sim/src-<ver>/),
# so the other architectures' kernels of that version skip its download. The result's vermagic is checked
# against the kernel's own configfs.ko before it is cached.
#
# What is fetched (apt-get download, unpacked with dpkg -x into a temporary
# directory, nothing installed on the host): linux-headers-<release>,
# linux-headers-<abi>-common, linux-kbuild-6.1 (the prebuilt modpost, fixdep,
# objtool the headers use) and linux-source-6.1, of which only
# drivers/gpio/gpio-sim.c, drivers/gpio/gpiolib.h (gpio-sim reaches into
# struct gpio_device; not in the headers package) and kernel/irq/irq_sim.c
# are unpacked. Two changes make irq_sim.c a module: irq_to_desc() is not
# exported in 6.1, so its handler calls generic_handle_irq(n) (which runs
# the same handle_simple_irq the line was mapped with) instead of
# handle_simple_irq(irq_to_desc(n)); and it gets a MODULE_LICENSE("GPL")
# (built-in code has none, and without it the GPL-only irq domain symbols
# would be refused). gpio-sim.c builds unchanged.
#
# For Debian's arm64 kernel (the ARM guest, qemu.sh --arm) the same is
# cross-built (ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-, from
# crossbuild-essential-arm64) with the arm64 headers package and the host's
# own linux-kbuild; that kernel also lacks CONFIG_I2C_STUB, so i2c-stub.ko is
# built too, from drivers/i2c/i2c-stub.c unchanged. The same for the armmp
# kernel (qemu.sh --armmp): ARCH=arm CROSS_COMPILE=arm-linux-gnueabihf-.
#
# The modules are not signed. Debian's kernel has CONFIG_MODULE_SIG=y but
# not MODULE_SIG_FORCE, and lockdown is only enforced under EFI Secure
# Boot: booted with -kernel the guest loads them and taints itself (E:
# unsigned, O: out of tree), which the guest hook prints.

# rig_gpio_sim KDIR: print the directory holding gpio-sim.ko and irq_sim.ko
# for the kernel in KDIR (see rig_kernel), building them on first use.
# Returns 2 when the packages cannot be fetched (offline, or no headers for
# this release in the archive any more), 1 when the build itself failed
# (the log is kept as $RIG_CACHE/gpio-sim/<release>.log).
rig_gpio_sim() {
	local kdir=$1 rel ver series abi dir tmp hdr src log r p want got hdrpkg kmake=() srcs mods
	local karch
	rel=$(cat "$kdir/release")
	dir="$RIG_CACHE/gpio-sim/$rel"
	if [ -f "$dir/.done" ]; then
		echo "$dir"
		return 0
	fi
	series=$(echo "$rel" | cut -d. -f1,2) # 6.1
	abi=${rel%-*}                         # 6.1.0-56
	karch=${rel##*-}                      # amd64, arm64, armmp
	hdrpkg=linux-headers-$rel
	srcs="drivers/gpio/gpio-sim.c drivers/gpio/gpiolib.h kernel/irq/irq_sim.c"
	mods="irq_sim gpio-sim"
	# The ARM kernels are cross-built for, and lack i2c-stub too: it is built with the others.
	local cross=
	case $karch in
		arm64) hdrpkg=$hdrpkg:arm64 kmake=(ARCH=arm64) cross=aarch64-linux-gnu ;;
		armmp) hdrpkg=$hdrpkg:armhf kmake=(ARCH=arm) cross=arm-linux-gnueabihf ;;
	esac
	if [ -n "$cross" ]; then
		kmake+=(CROSS_COMPILE=$cross-)
		srcs="$srcs drivers/i2c/i2c-stub.c"
		mods="$mods i2c-stub"
		command -v "$cross-gcc" >/dev/null || rig_host_tools "crossbuild-essential-${hdrpkg##*:}"
	fi
	log="$RIG_CACHE/gpio-sim/$rel.log"
	# The Debian version of the guest's kernel: recorded by rig_kernel, or
	# read from the banner in the image (older caches).
	ver=$(cat "$kdir/version" 2>/dev/null) ||
		ver=$(LC_ALL=C grep -aoP -m1 'Linux version \S+ \(.*?Debian \K[0-9][^ ]*' "$kdir/vmlinux") || ver=
	rig_host_tools gcc-12 make libelf1 xz-utils kmod
	mkdir -p "$RIG_CACHE/gpio-sim"
	tmp=$(mktemp -d "$RIG_CACHE/gpio-sim/build.XXXXXX")
	mkdir -p "$tmp/deb" "$tmp/x" "$tmp/mod"
	# The few source files come out of linux-source (139 MB of xz to decompress): kept per Debian
	# version, so the other architectures' kernels of the same version do not fetch it again.
	local srcdir= all_srcs="drivers/gpio/gpio-sim.c drivers/gpio/gpiolib.h kernel/irq/irq_sim.c drivers/i2c/i2c-stub.c"
	[ -n "$ver" ] && [ -f "$RIG_CACHE/gpio-sim/src-$ver/.done" ] && srcdir=$RIG_CACHE/gpio-sim/src-$ver
	rig_log "gpio-sim: fetching linux-headers-$rel, linux-kbuild-$series $([ -n "$srcdir" ] && echo "(sources cached)" || echo "and linux-source-$series") ${ver:-(newest)}"
	fetch() { # fetch VERSION: the packages at that version ("" = the archive's candidate)
		local v=${1:+=$1}
		local want=("$hdrpkg$v" "linux-headers-$abi-common$v" "linux-kbuild-$series$v")
		[ -n "$1" ] && [ -n "$srcdir" ] || want+=("linux-source-$series$v")
		rm -f "$tmp"/deb/*.deb
		(cd "$tmp/deb" && apt-get download -q "${want[@]}" >>"$log" 2>&1)
	}
	: >"$log"
	if ! { [ -n "$ver" ] && fetch "$ver"; }; then
		srcdir=
		# The archive dropped this exact version: the same ABI name means the
		# same vermagic and, by Debian's rules, the same symbol CRCs.
		rig_log "gpio-sim: version ${ver:-?} not downloadable; trying the archive's linux-headers-$rel"
		if ! fetch ""; then
			rm -rf "$tmp"
			rig_log "gpio-sim: cannot download the kernel sources/headers for $rel (log: $log)"
			return 2
		fi
	fi
	for p in "$tmp"/deb/linux-headers-*.deb "$tmp"/deb/linux-kbuild-*.deb; do
		dpkg -x "$p" "$tmp/x"
	done
	hdr="$tmp/x/usr/src/linux-headers-$rel"
	# Its Makefile includes the common part by absolute path under /usr/src.
	sed -i "s|^include /usr/src/|include $tmp/x/usr/src/|" "$hdr/Makefile"
	src="linux-source-$series"
	if [ -z "$srcdir" ]; then
		local paths=() sver
		for p in $all_srcs; do paths+=("$src/$p"); done
		if ! dpkg-deb --fsys-tarfile "$tmp"/deb/linux-source-*.deb | tar -xO "./usr/src/$src.tar.xz" |
			tar -xJ -C "$tmp" "${paths[@]}" >>"$log" 2>&1; then
			rm -rf "$tmp"
			rig_log "gpio-sim: could not unpack the sources from linux-source-$series (log: $log)"
			return 1
		fi
		sver=$(dpkg-deb -f "$tmp"/deb/linux-source-*.deb Version)
		srcdir=$RIG_CACHE/gpio-sim/src-$sver
		rm -rf "$srcdir"
		mkdir -p "$srcdir"
		for p in $all_srcs; do cp "$tmp/$src/$p" "$srcdir/"; done
		echo "$sver" >"$srcdir/.done"
	fi
	for p in $srcs; do cp "$srcdir/${p##*/}" "$tmp/mod/"; done
	sed -i 's/handle_simple_irq(irq_to_desc(\([a-z_]*\)));/generic_handle_irq(\1);/' "$tmp/mod/irq_sim.c"
	# A 32-bit target built with the host's 64-bit modpost (linux-kbuild is the host's): its
	# device-table check measures struct of_device_id with 64-bit pointers and refuses the
	# 32-bit table. The table only names the module for autoloading; the guest loads it by name.
	[ "$karch" = armmp ] && sed -i '/^MODULE_DEVICE_TABLE(of,/d' "$tmp/mod/gpio-sim.c"
	printf '\nMODULE_LICENSE("GPL");\nMODULE_DESCRIPTION("interrupt simulator (out of tree, for the sensorgate rig)");\n' \
		>>"$tmp/mod/irq_sim.c"
	if grep -q 'irq_to_desc' "$tmp/mod/irq_sim.c" || ! grep -q 'generic_handle_irq(' "$tmp/mod/irq_sim.c"; then
		rm -rf "$tmp"
		rig_log "gpio-sim: irq_sim.c of linux-source-$series no longer has the expected handle_simple_irq(irq_to_desc(n)) call"
		return 1
	fi
	echo "obj-m := $(printf '%s.o ' $mods)" >"$tmp/mod/Kbuild"
	rig_log "gpio-sim: building irq_sim.ko and gpio-sim.ko against linux-headers-$rel"
	# A make above us (make rig, ...) must not leak its flags into kbuild.
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$hdr" M="$tmp/mod" "${kmake[@]}" modules >>"$log" 2>&1
	r=$?
	want=$(modinfo -F vermagic "$kdir/modules/lib/modules/$rel/kernel/fs/configfs/configfs.ko" 2>/dev/null)
	got=$(modinfo -F vermagic "$tmp/mod/gpio-sim.ko" 2>/dev/null)
	if [ "$r" -ne 0 ] || [ ! -f "$tmp/mod/irq_sim.ko" ] || [ -z "$got" ] || [ "$got" != "$want" ]; then
		rm -rf "$tmp"
		rig_log "gpio-sim: build failed or vermagic '$got' is not the kernel's '$want' (log: $log)"
		return 1
	fi
	mkdir -p "$tmp/out"
	for p in $mods; do cp "$tmp/mod/$p.ko" "$tmp/out/" || { rm -rf "$tmp"; return 1; }; done
	dpkg-deb -f "$tmp"/deb/linux-headers-"$rel"_*.deb Version >"$tmp/out/version"
	echo "$rel" >"$tmp/out/.done"
	rm -rf "$dir"
	mv "$tmp/out" "$dir"
	rm -rf "$tmp"
	rig_log "gpio-sim: modules for $rel cached in $dir"
	echo "$dir"
}
