#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What the MQTT guard (gateway/mqtt_guard.c) costs per published message (a benchmark, not a test).

Two builds of the same source: the daemon as shipped, and one with the guard compiled out
(-DSG_BENCH_NO_GUARD, `make bench` builds it in build-noguard/). Each publishes N readings,
one per line written into a pty as fast as it takes them, over MQTT 5 to a private mosquitto
on 127.0.0.1, at QoS 0 and at QoS 1 (through the spool, sync = "normal"); a subscriber counts
them. Per message it measures the gateway's CPU time (utime + stime), its system calls (perf
stat -e raw_syscalls:sys_enter on the gateway process, when perf can; else strace -c -f) and
the throughput; then the guard's figures divided by the others. The two builds take turns,
RUNS times each; the medians are printed.

Usage: scripts/bench-guard.py [--lines N] [--runs R] [--bin build/sensorgate]
                              [--noguard build-noguard/sensorgate]
"""
import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (scripts/bench.py: broker, subscriber, gateway on a pty)

ROOT = bench.ROOT


def run_once(binary, tmp, port, qos, lines, name):
    gw = bench.Gateway(binary, tmp, port, qos=qos, name=name, protocol="5")
    sub = bench.Counter(port, "bench/s/#")
    data = b"".join(b"seq=%d\n" % i for i in range(lines))
    sc = bench.SyscallCounter(gw.proc.pid, tmp)
    sc.start()
    cpu0 = bench.proc_stat(gw.proc.pid)
    t0 = time.monotonic()
    ok = gw.write_all(data)
    got = sub.wait(lines, 180)
    t1 = sub.last or time.monotonic()
    cpu = bench.proc_stat(gw.proc.pid) - cpu0
    calls = sc.stop()
    sub.stop()
    gw.stop()
    return {
        "ok": ok and got == lines,
        "got": got,
        "rate": got / (t1 - t0) if t1 > t0 else 0.0,
        "cpu_us": cpu / max(got, 1) * 1e6,
        "calls": calls / max(got, 1) if calls is not None else None,
    }


def median(runs, key):
    vals = [r[key] for r in runs if r[key] is not None]
    return statistics.median(vals) if vals else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "sensorgate"))
    ap.add_argument("--noguard", default=os.path.join(ROOT, "build-noguard", "sensorgate"))
    a = ap.parse_args()
    for b in (a.bin, a.noguard):
        if not os.access(b, os.X_OK):
            sys.exit(f"bench-guard.py: {b} not built (make bench builds both)")
    with tempfile.TemporaryDirectory() as tmp:
        broker, port = bench.start_broker(tmp)
        try:
            tool = bench.SyscallCounter(os.getpid(), tmp).tool or "none"
            print(f"# MQTT guard cost, {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
                  f"{a.lines} readings per run, {a.runs} runs each, system calls counted by {tool}")
            for qos in (0, 1):
                res = {"guard": [], "noguard": []}
                for i in range(a.runs):
                    for which, binary in (("guard", a.bin), ("noguard", a.noguard)):
                        res[which].append(run_once(binary, tmp, port, qos, a.lines, f"{which}{qos}{i}"))
                for which in ("noguard", "guard"):
                    rs = res[which]
                    calls = median(rs, "calls")
                    bad = sum(1 for r in rs if not r["ok"])
                    print(f"QoS {qos} {'with the guard   ' if which == 'guard' else 'without the guard'}: "
                          f"{median(rs, 'rate'):8,.0f} msgs/s, {median(rs, 'cpu_us'):6.2f} us CPU/msg, "
                          + (f"{calls:5.2f} syscalls/msg" if calls is not None else "syscalls n/a")
                          + (f"  ({bad} runs lost messages)" if bad else ""))
                g, n = res["guard"], res["noguard"]
                ratio = lambda k: (median(g, k) / median(n, k)) if median(n, k) else float("nan")  # noqa: E731
                line = f"QoS {qos} guard / no guard: throughput {ratio('rate'):.2f}x, CPU per message {ratio('cpu_us'):.2f}x"
                if median(g, "calls") is not None and median(n, "calls") is not None:
                    line += (f", system calls per message {ratio('calls'):.2f}x "
                             f"(+{median(g, 'calls') - median(n, 'calls'):.2f})")
                print(line)
        finally:
            broker.terminate()
            broker.wait(5)


if __name__ == "__main__":
    main()
