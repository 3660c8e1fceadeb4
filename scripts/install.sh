#!/bin/bash
# SPDX-License-Identifier: MIT
#
# install.sh — build sensorgate from this tree and install it as a systemd service.
#
# For Raspberry Pi OS bookworm and Debian 12 (other systemd distributions
# with the same packages may work; it says so when it is not one of those).
# Steps, each safe to repeat: build dependencies (scripts/deps.sh
# --build-only), `make`, `make install PREFIX=/usr` (binary, unit,
# sysusers.d, tmpfiles.d, and the example /etc/sensorgate/sensorgate.conf
# unless one exists: an edited config is never overwritten), the system user
# and directories, then enable and (re)start the service.
#
# --uninstall stops and disables the service and removes what was installed,
# but keeps /etc/sensorgate (your config), /var/lib/sensorgate (the spool)
# and the system user.
#
# Usage: scripts/install.sh [--uninstall] [--no-deps] [--no-start] [--dashboard]
#   --no-deps    do not install build dependencies (they are there already)
#   --no-start   install and enable, but do not start or restart the service
#   --dashboard  also the browser dashboard: builds it (its MQTT client from npm),
#                installs mosquitto and a websockets listener serving it on
#                127.0.0.1:9001 (/etc/mosquitto/conf.d/sensorgate-dashboard.conf;
#                see that file to open it to the network)

set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/usr
UNIT=/lib/systemd/system/sensorgate.service
SYSUSERS=/usr/lib/sysusers.d/sensorgate.conf
TMPFILES=/usr/lib/tmpfiles.d/sensorgate.conf
CONF=/etc/sensorgate/sensorgate.conf

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

uninstall=0
deps=1
start=1
dashboard=0
for arg in "$@"; do
	case "$arg" in
		--uninstall) uninstall=1 ;;
		--no-deps) deps=0 ;;
		--no-start) start=0 ;;
		--dashboard) dashboard=1 ;;
		-h | --help) sed -n '4,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) die "unknown argument: $arg (try --help)" ;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || die "run as root"
	say "re-running through sudo"
	exec sudo "$0" "$@"
fi
[ -d /run/systemd/system ] || die "systemd is not running here; sensorgate installs as a systemd service"

if [ "$(dpkg-query -W -f='${Status}' sensorgate 2>/dev/null)" = "install ok installed" ]; then
	die "sensorgate is installed as a Debian package; use apt (apt remove sensorgate) rather than this script"
fi

if [ "$uninstall" = 1 ]; then
	if systemctl list-unit-files sensorgate.service >/dev/null 2>&1; then
		systemctl disable --now sensorgate.service 2>/dev/null || true
	fi
	rm -f "$PREFIX/bin/sensorgate" "$UNIT" "$SYSUSERS" "$TMPFILES"
	rm -rf "$PREFIX/share/sensorgate"
	[ ! -e /etc/mosquitto/conf.d/sensorgate-dashboard.conf ] ||
		say "kept /etc/mosquitto/conf.d/sensorgate-dashboard.conf (mosquitto's config): remove it and restart mosquitto to close the dashboard's listener"
	systemctl daemon-reload
	systemctl reset-failed sensorgate.service 2>/dev/null || true
	say "removed the binary, the unit, sysusers.d and tmpfiles.d entries"
	say "kept: /etc/sensorgate (configuration), /var/lib/sensorgate (spool), the user 'sensorgate'"
	say "  (remove them by hand if you want: rm -r /etc/sensorgate /var/lib/sensorgate; userdel sensorgate)"
	exit 0
fi

. /etc/os-release 2>/dev/null || true
if [ "${VERSION_CODENAME:-}" != bookworm ]; then
	say "note: this is ${PRETTY_NAME:-an unknown system}, not Debian 12 / Raspberry Pi OS bookworm; trying anyway"
fi

if [ "$deps" = 1 ]; then
	"$TOP/scripts/deps.sh" --build-only
	if [ "$dashboard" = 1 ]; then
		pk=(mosquitto nodejs)
		command -v npm >/dev/null 2>&1 || pk+=(npm)
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pk[@]}"
	fi
fi

say "building"
make -C "$TOP" -j"$(nproc)" all >/dev/null
[ "$dashboard" = 0 ] || make -C "$TOP" dashboard
say "installing into $PREFIX"
make -C "$TOP" install PREFIX="$PREFIX" | grep -v '^install ' || true

# The user first: tmpfiles and the unit refer to it.
systemd-sysusers sensorgate.conf
systemd-tmpfiles --create sensorgate.conf
systemctl daemon-reload

if ! sensorgate --check -c "$CONF" >/dev/null 2>/tmp/sensorgate-check.$$; then
	say "warning: $CONF does not pass --check:"
	sed 's/^/    /' /tmp/sensorgate-check.$$
	say "fix it, then: systemctl restart sensorgate"
fi
rm -f /tmp/sensorgate-check.$$

systemctl enable sensorgate.service
if [ "$start" = 1 ]; then
	# restart, not start: a second run installs a new binary that must be picked up.
	systemctl restart sensorgate.service || true
	sleep 1
	systemctl --no-pager status sensorgate.service | head -n 6 || true
fi
if [ "$dashboard" = 1 ]; then
	snippet=/etc/mosquitto/conf.d/sensorgate-dashboard.conf
	if [ -e "$snippet" ]; then
		say "keeping $snippet"
	else
		install -D -m 0644 "$TOP/config/examples/mosquitto-dashboard.conf" "$snippet"
		# a plain listener on 1883 configured elsewhere already: do not define it twice
		others=$(ls /etc/mosquitto/conf.d/*.conf 2>/dev/null | grep -v "^$snippet\$" || true)
		if grep -qsE '^[[:space:]]*listener[[:space:]]+1883([[:space:]]|$)' /etc/mosquitto/mosquitto.conf $others; then
			sed -i '/^listener 1883 /d' "$snippet"
		fi
	fi
	systemctl restart mosquitto.service || say "warning: mosquitto did not restart: journalctl -u mosquitto"
	say "dashboard: http://127.0.0.1:9001/ on this machine (see $snippet to reach it from elsewhere)"
fi
cat <<EOF

sensorgate is installed.
  configuration:  $CONF   (check it: sensorgate --check -c $CONF)
  apply changes:  systemctl reload sensorgate   (ports and broker: systemctl restart sensorgate)
  logs:           journalctl -u sensorgate -f
  state:          systemctl status sensorgate
  serial ports:   ls -l /dev/serial/by-id/   or   sensorgate --list-ports
EOF
