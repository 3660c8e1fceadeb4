#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Cost per reading at the rates real sensors produce (a benchmark, not a test).

A flood shows the cost per message when every cost is shared by a batch; a gateway with a few
sensors sees one reading at a time. Here one `lines` device gets `seq=N` lines at 1, 10 and 100
lines a second, retained, at QoS 1 (through the spool, `sync = "full"` by default) and, for
comparison, at QoS 0. Over the window the gateway's CPU time (utime + stime), the user-space
instructions it executed (a third run under callgrind: unlike the CPU time on a shared machine,
they do not swing from run to run), its system calls (strace -c -f, attached), its
fsync()/fdatasync() calls and the bytes it had written to the disk (/proc/PID/io write_bytes:
what reaches the block layer; the spool lives in a directory on a disk, not on tmpfs) are
divided by the readings. The floor is the same gateway over the same time with no readings.
Figures, not pass/fail.

Usage: scripts/bench-rate.py [--seconds S] [--bin build/sensorgate] [--dir DIR]
"""
import argparse
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (scripts/bench.py: broker, subscriber, gateway on a pty)

ROOT = bench.ROOT


def io_bytes(pid):
    with open(f"/proc/{pid}/io") as f:
        return {k: int(v) for k, v in (line.split(":") for line in f)}


def cpu_ns(pid):
    """CPU time of PID in ns (/proc/PID/schedstat: the scheduler's own count, not 10 ms ticks)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def strace_calls(path):
    """{syscall: calls} from an `strace -c` summary."""
    calls = {}
    try:
        text = open(path).read()
    except OSError:
        return calls
    for m in re.finditer(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", text, re.M):
        if m.group(2) != "total":
            calls[m.group(2)] = int(m.group(1))
    return calls


def window(binary, tmp, spool_dir, port, qos, rate, seconds, name, trace, spool_extra="", count=False):
    """Run the gateway, feed RATE lines/s for SECONDS (none when rate is 0); the window's figures.
    TRACE: count system calls (strace slows the gateway: CPU and bytes come from a run without).
    COUNT: run it under callgrind and count its instructions, start to end (the floor's run is
    as long, so start-up and shutting down cancel)."""
    cg = os.path.join(tmp, f"{name}.callgrind")
    gw = bench.Gateway(binary, spool_dir, port, qos=qos, name=name, retain=True, spool_sync=None,
                       spool_extra=spool_extra,
                       wrap=["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}"] if count else None)
    sub = bench.Counter(port, "bench/s/#", qos=qos)
    time.sleep(1.0)  # connected, announced, settled
    pid = gw.daemon_pid()
    out = os.path.join(tmp, f"{name}.strace")
    tracer = None
    if trace:
        tracer = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", out],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    cpu0, io0, t0 = cpu_ns(pid), io_bytes(pid), time.monotonic()
    n = int(rate * seconds)
    for i in range(n):
        target = t0 + i / rate
        d = target - time.monotonic()
        if d > 0:
            time.sleep(d)
        os.write(gw.master, b"seq=%d\n" % i)
    left = t0 + seconds - time.monotonic()
    if left > 0:
        time.sleep(left)
    got = sub.wait(n, 10) if n else 0
    time.sleep(0.3)  # the last acknowledgement's delete
    cpu1, io1 = cpu_ns(pid), io_bytes(pid)
    calls = {}
    if tracer:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
        calls = strace_calls(out)
    sub.stop()
    gw.stop(timeout=60)
    return {
        "n": n, "got": got, "cpu": (cpu1 - cpu0) / 1e9, "calls": calls, "written": io1["write_bytes"] - io0["write_bytes"],
        "syscalls": sum(calls.values()), "fsync": calls.get("fsync", 0) + calls.get("fdatasync", 0),
        "instr": bench.callgrind_total(cg) if count else None,
    }


def both(binary, tmp, spool_dir, port, qos, rate, seconds, name, spool_extra="", count=True):
    """CPU and bytes of a run without strace, the system calls of one with it, the instructions
    of one under callgrind (COUNT and valgrind installed)."""
    r = window(binary, tmp, spool_dir, port, qos, rate, seconds, name, False, spool_extra)
    t = window(binary, tmp, spool_dir, port, qos, rate, seconds, name + "-t", True, spool_extra)
    r.update(syscalls=t["syscalls"], fsync=t["fsync"], calls=t["calls"], got=min(r["got"], t["got"]))
    if count and shutil.which("valgrind"):
        c = window(binary, tmp, spool_dir, port, qos, rate, seconds, name + "-c", False, spool_extra, count=True)
        r.update(instr=c["instr"], got=min(r["got"], c["got"]))
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "sensorgate"))
    ap.add_argument("--verbose", action="store_true", help="each system call's count per reading too")
    ap.add_argument("--dir", default="/var/tmp", help="where the spool lives (a disk, not tmpfs)")
    a = ap.parse_args()
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"bench-rate.py: {a.bin} not built (make)")
    if not shutil.which("strace"):
        sys.exit("bench-rate.py: strace not installed")
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory(dir=a.dir) as spool_dir:
        broker, port = bench.start_broker(tmp)
        try:
            print(f"# cost per reading, {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
                  f"{a.seconds:.0f} s per window, spool in {a.dir}, retained readings")
            cases = [(1, "", (1, 10, 100)), (1, "commit_interval = 1;", (1, 10, 100)), (0, "", (10,))]
            for qos, extra, rates in cases:
                label = f"QoS {qos}{', ' + extra.rstrip(';') if extra else ''}"
                idle = both(a.bin, tmp, spool_dir, port, qos, 0, a.seconds, f"idle{qos}{len(extra)}", extra)
                print(f"{label}: floor (no readings, {a.seconds:.0f} s): CPU {idle['cpu'] * 1e3:.0f} ms, "
                      f"{(idle.get('instr') or 0) / 1e6:.1f} M instructions, "
                      f"{idle['syscalls']} system calls, {idle['fsync']} fsyncs, {idle['written'] / 1024:.0f} KiB written")
                for rate in rates:
                    r = both(a.bin, tmp, spool_dir, port, qos, rate, a.seconds, f"r{qos}-{rate}-{len(extra)}", extra)
                    n = max(r["n"], 1)
                    lost = "" if r["got"] >= r["n"] else f" ({r['n'] - r['got']} NOT DELIVERED)"
                    instr = (f"{(r['instr'] - idle['instr']) / n:8,.0f} instructions, "
                             if r.get("instr") is not None and idle.get("instr") is not None else "")
                    print(f"{label}, {rate:3d}/s{lost}: per reading "
                          f"CPU {(r['cpu'] - idle['cpu']) / n * 1e6:6.0f} us, {instr}"
                          f"{(r['syscalls'] - idle['syscalls']) / n:5.1f} system calls, "
                          f"{(r['fsync'] - idle['fsync']) / n:4.2f} fsyncs, "
                          f"{(r['written'] - idle['written']) / n / 1024:6.1f} KiB written")
                    if a.verbose:
                        print("    " + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(r["calls"].items(), key=lambda kv: -kv[1])))
        finally:
            broker.terminate()
            broker.wait(5)


if __name__ == "__main__":
    main()
