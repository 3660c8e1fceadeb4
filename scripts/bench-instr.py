#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Work per published message, noise-free: instructions (callgrind) and system calls (strace -c -f).

Wall-clock figures on a shared machine swing by tens of percent from run to run; the number of
user-space instructions a process executes does not. Each case runs twice, with N and 3N
messages, and the figure is the slope: (work of the long run - work of the short one) / (the
messages between them), so start-up, connecting and shutting down cancel out.

  floor      mosquitto_pub -l (libmosquitto publishing one line per message, no parsing) with the
             payloads the gateway publishes, QoS 0 and QoS 1, to the same private broker
  kv         the gateway: a `lines` device, `kv` format, 3 fields a line (t=12.5 h=40 p=950)
  json       the same readings as JSON lines ({"t":12.5,"h":40,"p":950})
  kv5        kv over MQTT 5 with the defaults' user properties (ts, seq) on every message

QoS 1 goes through the spool with its default settings (sync = "full"). Figures, not pass/fail.
Usage: scripts/bench-instr.py [--lines N] [--bin build/sensorgate] [--no-strace]
"""
import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (scripts/bench.py: broker, subscriber, gateway on a pty, callgrind/strace readers)

ROOT = bench.ROOT
FIELDS = 3


def readings(lines):
    return [(i % 40 + 0.5, i % 100, 900 + i % 200) for i in range(lines)]


def kv_lines(rs):
    return b"".join(b"t=%.1f h=%d p=%d\n" % r for r in rs)


def json_lines(rs):
    return b"".join(b'{"t":%.1f,"h":%d,"p":%d}\n' % r for r in rs)


def payloads(rs):
    """What the gateway publishes for those readings, one message a line: the floor's input."""
    return b"".join(b"%.1f\n%d\n%d\n" % r for r in rs)


def tool_wrap(tool, out):
    if tool == "callgrind":
        return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    return ["strace", "-f", "-c", "-o", out]


def tool_total(tool, out):
    return bench.callgrind_total(out) if tool == "callgrind" else bench.strace_total(out)


def floor_run(port, tmp, qos, rs, tool):
    out = os.path.join(tmp, f"floor-{tool}-{qos}-{len(rs)}.out")
    n = len(rs) * FIELDS
    sub = bench.Counter(port, "floor/#", qos=qos)
    pub = subprocess.Popen(tool_wrap(tool, out) + ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port),
                                                   "-t", "floor/x", "-q", str(qos), "-l"],
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pub.stdin.write(payloads(rs))
    pub.stdin.close()
    got = sub.wait(n, 300)
    pub.wait(60)
    sub.stop()
    return tool_total(tool, out), got, n


def gateway_run(binary, port, tmp, qos, rs, fmt, tool):
    out = os.path.join(tmp, f"gw-{tool}-{fmt}-{qos}-{len(rs)}.out")
    n = len(rs) * FIELDS
    gw = bench.Gateway(binary, tmp, port, qos=qos, name=f"i{tool[0]}{fmt}{qos}{len(rs)}", fmt=fmt.rstrip("5"),
                       protocol="5" if fmt.endswith("5") else "3.1.1", wrap=tool_wrap(tool, out), spool_sync=None)
    sub = bench.Counter(port, "bench/s/#", qos=qos)
    gw.write_all(json_lines(rs) if fmt == "json" else kv_lines(rs), timeout=300)
    got = sub.wait(n, 300)
    sub.stop()
    gw.stop(timeout=120)
    return tool_total(tool, out), got, n


def slope(run, lines):
    """(work per message, [(work, messages)...]) from runs of lines and 3 x lines."""
    pts = []
    for k in (lines, 3 * lines):
        total, got, n = run(readings(k))
        if total is None or got != n:
            return None, f"run of {n} messages: {got} arrived, total {total}"
        pts.append((total, n))
    (w1, n1), (w2, n2) = pts
    return (w2 - w1) / (n2 - n1), pts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=2000, help="lines of the short run (the long one: 3x)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "sensorgate"))
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--only", action="append", metavar="CASE",
                    help="run only these cases (kv, json, kv5, and qos0/qos1 for a QoS level); repeatable")
    a = ap.parse_args()
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"bench-instr.py: {a.bin} not built (make)")
    tools = [t for t in ("callgrind", "strace") if shutil.which("valgrind" if t == "callgrind" else t)]
    if a.no_strace and "strace" in tools:
        tools.remove("strace")
    if "callgrind" not in tools:
        print("bench-instr.py: valgrind not installed: no instruction counts")
    with tempfile.TemporaryDirectory() as tmp:
        broker, port = bench.start_broker(tmp)
        try:
            print(f"# work per message, {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores; "
                  f"slope between {a.lines * FIELDS} and {3 * a.lines * FIELDS} messages")
            for tool in tools:
                unit = "instructions" if tool == "callgrind" else "system calls"
                for qos in (0, 1):
                    cases = [f for f in (("kv", "json", "kv5") if qos == 0 else ("kv",))
                             if not a.only or f in a.only or f"qos{qos}" in a.only]
                    if not cases:
                        continue
                    floor, fpts = slope(lambda rs: floor_run(port, tmp, qos, rs, tool), a.lines)
                    if floor is None:
                        print(f"{tool:9s} QoS {qos} floor: no result ({fpts})")
                        continue
                    print(f"{tool:9s} QoS {qos} floor mosquitto_pub -l: {floor:10,.2f} {unit}/msg")
                    for fmt in cases:
                        per, pts = slope(lambda rs: gateway_run(a.bin, port, tmp, qos, rs, fmt, tool), a.lines)
                        if per is None:
                            print(f"{tool:9s} QoS {qos} sensorgate {fmt}: no result ({pts})")
                            continue
                        print(f"{tool:9s} QoS {qos} sensorgate {fmt:4s}:       {per:10,.2f} {unit}/msg"
                              f"  -> {per / floor:.2f}x the floor")
        finally:
            broker.terminate()
            broker.wait(5)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
