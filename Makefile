# sensorgate — build, test, install.
#   make            build/sensorgate
#   make check      scripts/test.sh --no-deps: unit, integration, ASan, fuzzers, rig
#   make asan       the same binary and unit tests with ASan+UBSan in build-asan/
#   make bench      benchmarks (figures, not pass/fail)
#   make fuzz       fuzz the drivers (clang, libFuzzer), FUZZ_SECONDS=30 each
#   make install DESTDIR=... PREFIX=/usr
#   make deb        build/sensorgate_<version>_<arch>.deb (dpkg-buildpackage)
#   make ARCH=armhf|arm64 [unit|deb]  cross build in build-ARCH/; unit tests under qemu-user
#   make rig        system tests: nspawn (systemd) and QEMU (kernel), as root

VERSION    := 0.1.0
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share
SYSCONFDIR ?= /etc
UNITDIR    ?= /lib/systemd/system

# Cross builds (Debian multiarch): make ARCH=armhf|arm64 [unit-build|unit|deb] builds in build-ARCH/ with
# the GNU triplet's compiler and pkg-config from crossbuild-essential-ARCH and the ARCH -dev
# packages (scripts/deps.sh --cross ARCH); `unit` runs the unit tests under qemu-user.
ARCH       ?=
ifeq ($(ARCH),armhf)
TRIPLET    := arm-linux-gnueabihf
QEMU_USER  ?= qemu-arm-static
else ifeq ($(ARCH),arm64)
TRIPLET    := aarch64-linux-gnu
QEMU_USER  ?= qemu-aarch64-static
else ifneq ($(ARCH),)
$(error ARCH=$(ARCH): armhf, arm64 or empty for a native build)
endif
ifneq ($(ARCH),)
BUILD      ?= build-$(ARCH)
ifeq ($(origin CC),default)
CC         := $(TRIPLET)-gcc
endif
PKG_CONFIG ?= $(TRIPLET)-pkg-config
endif
BUILD      ?= build
CC         ?= cc
PKG_CONFIG ?= pkg-config
# the archiver of the compiler's binutils: a cross compiler given as CC (dh_auto_build does
# that under dpkg-buildpackage -a) brings its own
ifeq ($(origin AR),default)
AR         := $(shell $(CC) -print-prog-name=ar)
endif

PKGS       := libmosquitto libconfig libserialport libsystemd sqlite3 libgpiod openssl
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS))

OPT        ?= -O2 -g
SAN        ?=
# 64-bit time_t and off_t on 32-bit glibc targets (armhf): timestamps past 2038-01-19, files past
# 2 GiB. No-ops where they are already 64 bits.
TIME64     := -D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(TIME64) -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers \
              $(OPT) $(SAN) -DSG_VERSION=\"$(VERSION)\" -I. $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(SAN) $(LDFLAGS)
LIBS_ALL   := $(PKG_LIBS) -lm

LIB_SRC    := $(filter-out gateway/main.c,$(wildcard gateway/*.c)) $(wildcard drivers/*.c) $(wildcard common/*.c)
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_HELP  := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))
UNIT_HOBJ  := $(UNIT_HELP:%.c=$(BUILD)/%.o)

.PHONY: all check unit unit-build integration asan bench install clean deb fuzz rig dashboard
all: $(BUILD)/sensorgate

$(BUILD)/%.o: %.c $(wildcard common/*.h gateway/*.h drivers/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/libsensorgate.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/sensorgate: $(BUILD)/gateway/main.o $(BUILD)/libsensorgate.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_ALL)

$(BUILD)/tests/%: tests/unit/%.c $(UNIT_HOBJ) $(BUILD)/libsensorgate.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(UNIT_HOBJ) $(BUILD)/libsensorgate.a $(LIBS_ALL) -lcmocka

# libmodbus is the independent reference of the Modbus tests only; the daemon does not link it.
$(BUILD)/tests/test_modbus_libmodbus: CFLAGS_ALL += $(shell $(PKG_CONFIG) --cflags libmodbus)
$(BUILD)/tests/test_modbus_libmodbus: LIBS_ALL += $(shell $(PKG_CONFIG) --libs libmodbus) -pthread
$(BUILD)/tests/test_modbus_tcp_libmodbus: CFLAGS_ALL += $(shell $(PKG_CONFIG) --cflags libmodbus)
$(BUILD)/tests/test_modbus_tcp_libmodbus: LIBS_ALL += $(shell $(PKG_CONFIG) --libs libmodbus) -pthread

# jansson is the independent JSON parser of the discovery tests only; the daemon does not link it.
$(BUILD)/tests/test_discovery: CFLAGS_ALL += $(shell $(PKG_CONFIG) --cflags jansson)
$(BUILD)/tests/test_discovery: LIBS_ALL += $(shell $(PKG_CONFIG) --libs jansson)

# A cross build's tests run under user-mode QEMU with the ARCH loader, libc and libraries of
# the multiarch packages (/lib/ld-linux-*.so, /usr/lib/TRIPLET). Not with -L /usr/TRIPLET:
# that loader (libc6-ARCH-cross) is another glibc build than libc6:ARCH's libc.so.6, which
# the multiarch search path still finds, and the pair crashes in pthread_create.
ifneq ($(ARCH),)
UNIT_EMU   := --emulator "$(QEMU_USER)"
endif

unit-build: $(UNIT_BIN)

unit: $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_EMU) $(UNIT_BIN)

integration: $(BUILD)/sensorgate
	SENSORGATE_BIN=$(abspath $(BUILD)/sensorgate) /usr/bin/python3 -m pytest -q tests/integration

check: all $(UNIT_BIN)
	scripts/test.sh --no-deps

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	        SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" \
	        build-asan/sensorgate $(UNIT_SRC:tests/unit/%.c=build-asan/tests/%)

# libFuzzer targets of the drivers, FUZZ_SECONDS (default 30) each; see tests/fuzz/run.sh
fuzz:
	tests/fuzz/run.sh

# bench-guard.py compares with build-noguard/: the same daemon, the MQTT guard compiled out
bench: all
	$(MAKE) BUILD=build-noguard CFLAGS="$(CFLAGS) -DSG_BENCH_NO_GUARD" build-noguard/sensorgate
	/usr/bin/python3 scripts/bench-instr.py
	/usr/bin/python3 scripts/bench-rate.py
	/usr/bin/python3 scripts/bench.py
	scripts/bench-spool.sh
	scripts/bench-gpio.sh
	/usr/bin/python3 scripts/bench-rs485.py
	/usr/bin/python3 scripts/bench-guard.py

install: all
	install -D -m 0755 $(BUILD)/sensorgate $(DESTDIR)$(BINDIR)/sensorgate
	install -D -m 0644 systemd/sensorgate.service $(DESTDIR)$(UNITDIR)/sensorgate.service
	install -D -m 0644 systemd/sensorgate.sysusers $(DESTDIR)/usr/lib/sysusers.d/sensorgate.conf
	install -D -m 0644 systemd/sensorgate.tmpfiles $(DESTDIR)/usr/lib/tmpfiles.d/sensorgate.conf
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/sensorgate/sensorgate.conf ]; then \
		install -D -m 0640 config/sensorgate.conf $(DESTDIR)$(SYSCONFDIR)/sensorgate/sensorgate.conf; \
	else echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/sensorgate/sensorgate.conf"; fi
	@# the dashboard, when built (make dashboard): static files a websockets listener of mosquitto serves
	@if [ -f dashboard/vendor/mqtt.min.js ]; then \
		for f in index.html boot.js app.js model.js style.css vendor/mqtt.min.js; do \
			install -D -m 0644 dashboard/$$f $(DESTDIR)$(DATADIR)/sensorgate/dashboard/$$f; done; \
		install -D -m 0644 config/examples/mosquitto-dashboard.conf \
			$(DESTDIR)$(DATADIR)/sensorgate/mosquitto-dashboard.conf; \
	else echo "dashboard not built (make dashboard): not installed"; fi

# Debian package, built by dpkg-buildpackage in build-deb/; the .deb lands in $(BUILD)/.
# With ARCH=armhf|arm64 it is cross-built (dpkg-buildpackage -a ARCH) into build-ARCH/.
DEB_ARCH   := $(or $(ARCH),$(shell dpkg --print-architecture))
deb:
	scripts/deps.sh --deb $(if $(ARCH),--cross $(ARCH))
	$(MAKE) dashboard
	@v=$$(dpkg-parsechangelog -S Version); [ "$$v" = "$(VERSION)" ] || \
		{ echo "debian/changelog says $$v, Makefile VERSION is $(VERSION)"; exit 1; }
	dpkg-buildpackage -us -uc -b $(if $(ARCH),-a $(ARCH))
	@mkdir -p $(BUILD)
	mv ../sensorgate_$(VERSION)_$(DEB_ARCH).deb ../sensorgate_$(VERSION)_$(DEB_ARCH).buildinfo \
		../sensorgate_$(VERSION)_$(DEB_ARCH).changes $(BUILD)/
	@if [ -e ../sensorgate-dbgsym_$(VERSION)_$(DEB_ARCH).deb ]; then \
		mv ../sensorgate-dbgsym_$(VERSION)_$(DEB_ARCH).deb $(BUILD)/; fi
	@ls -l $(BUILD)/sensorgate_$(VERSION)_$(DEB_ARCH).deb

# The dashboard's MQTT client: the npm package pinned by dashboard/package-lock.json, its
# browser bundle copied next to the page (static files; nothing is fetched at run time).
dashboard: dashboard/vendor/mqtt.min.js

dashboard/vendor/mqtt.min.js: dashboard/package.json dashboard/package-lock.json
	cd dashboard && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@mkdir -p dashboard/vendor
	cp dashboard/node_modules/mqtt/dist/mqtt.min.js $@

# System tests on a real systemd (nspawn) and a real kernel (QEMU); root, cached downloads.
rig: all
	tests/rig/run.sh

clean:
	rm -rf build build-asan build-fuzz build-deb build-noguard build-armhf build-arm64 dashboard/node_modules dashboard/vendor
