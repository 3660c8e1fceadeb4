#!/bin/bash
# SPDX-License-Identifier: MIT
#
# nspawn.sh — sensorgate under a real systemd: a Debian 12 container.
#
# Boots the cached debootstrapped root with systemd-nspawn (read-only root
# with a throw-away overlay, its own network namespace: only its loopback),
# enters it with nsenter and runs nspawn-inside.sh there against our .deb.
# Also scores the unit with `systemd-analyze security --offline=true` (<= 2.0).
#
# Usage: tests/rig/nspawn.sh [DEB]     (default: build/sensorgate_*_<arch>.deb)
# Exit: 0 pass, 1 fail, 77 skipped (loudly) when it cannot run here.

set -euo pipefail
source "$(dirname "$0")/common.sh"

rig_need_root
command -v systemd-nspawn >/dev/null || rig_host_tools systemd-container
command -v systemd-nspawn >/dev/null || rig_skip "systemd-nspawn not available"

failed=0

# ---- the unit's sandbox score, on the host ---------------------------------
score=$(systemd-analyze security --offline=true "$RIG_TOP/systemd/sensorgate.service" 2>/dev/null |
	sed -n 's/.*exposure level for sensorgate.service: \([0-9.]*\).*/\1/p')
if awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }'; then
	echo "  ok    systemd-analyze security --offline=true systemd/sensorgate.service: $score <= 2.0"
else
	echo "  FAIL  systemd-analyze security --offline=true systemd/sensorgate.service: '$score' > 2.0"
	failed=1
fi

# ---- the container ------------------------------------------------------------
arch=$(dpkg --print-architecture)
deb=${1:-$(ls -t "$RIG_TOP"/build/sensorgate_*_"$arch".deb 2>/dev/null | head -n1)}
[ -n "$deb" ] && [ -f "$deb" ] || rig_die "no .deb: run 'make deb' first"
root=$(rig_rootfs)
work=$(mktemp -d /tmp/sensorgate-rig-nspawn.XXXXXX)
cp "$deb" "$RIG_DIR/nspawn-inside.sh" "$work/"
nspawn_pid=
leader=

cleanup() {
	if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then
		nsenter -t "$leader" -a /bin/systemctl poweroff >/dev/null 2>&1 || true
		for _ in $(seq 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
	fi
	[ -n "$nspawn_pid" ] && kill "$nspawn_pid" 2>/dev/null && sleep 1 || true
	[ -n "$nspawn_pid" ] && kill -9 "$nspawn_pid" 2>/dev/null || true
	if [ "${SG_RIG_KEEP:-0}" = 1 ]; then rig_log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# nspawn keeps per-container state under /run/systemd/nspawn and insists it
# is a tmpfs; give it a private one (this host's /run may be on disk).
# --keep-unit/--register=no: no host systemd or machined is needed.
rig_log "booting $root (volatile overlay, private network)"
unshare --mount --propagation private sh -c '
	mkdir -p /run/systemd/nspawn && mount -t tmpfs -o mode=0755 tmpfs /run/systemd/nspawn &&
	exec systemd-nspawn -q -D "$1" --volatile=overlay --private-network --register=no --keep-unit \
		--machine=sensorgate-rig --bind-ro="$2":/rig --bind-ro="$3":/src --console=pipe -b' sh "$root" "$work" "$RIG_TOP" \
	>"$work/console.log" 2>&1 </dev/null &
nspawn_pid=$!

t0=$SECONDS
state=
while [ $((SECONDS - t0)) -lt 60 ]; do
	kill -0 "$nspawn_pid" 2>/dev/null || { cat "$work/console.log" >&2; rig_die "container exited during boot"; }
	[ -n "$leader" ] || leader=$(pgrep -P "$nspawn_pid" -x systemd || true)
	if [ -n "$leader" ]; then
		state=$(nsenter -t "$leader" -a /bin/systemctl is-system-running 2>/dev/null || true)
		case "$state" in running | degraded) break ;; esac
	fi
	sleep 0.2
done
case "$state" in
	running | degraded) rig_log "container up ($state) in $((SECONDS - t0)) s" ;;
	*) cat "$work/console.log" >&2; rig_die "container did not boot within 60 s (state '$state')" ;;
esac

if nsenter -t "$leader" -a /bin/bash /rig/nspawn-inside.sh; then :; else
	failed=1
	echo "---- journal of sensorgate in the container ----"
	nsenter -t "$leader" -a /bin/journalctl -q -u sensorgate --no-pager -n 60 || true
fi
exit $failed
