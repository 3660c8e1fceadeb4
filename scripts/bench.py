#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""End-to-end benchmarks of sensorgate against a floor measured in the same run.

  throughput  N kv lines (3 fields each, QoS 0) written into a pty as fast as it takes
              them; a subscriber counts the messages. Floor: mosquitto_pub -l publishing
              the same payloads from a pipe to the same broker.
  latency     line written to the pty -> message at a subscriber, 100 lines/s, QoS 0 and 1.
  idle        voluntary context switches of the gateway over 10 s with nothing to do.

Figures, not pass/fail. Usage: scripts/bench.py [--lines N] [--bin build/sensorgate]
"""
import argparse
import os
import platform
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(tmp):
    port = free_port()
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "max_queued_messages 0\nmax_inflight_messages 0\n")
    proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("broker did not start")


class Counter:
    """A real MQTT subscriber that counts messages and timestamps them."""

    def __init__(self, port, topic, qos=0, on_msg=None):
        self.n = 0
        self.first = self.last = None
        self.on_msg = on_msg
        self.done = threading.Event()
        self.target = None
        self.c = mqtt.Client(client_id=f"bench-{os.getpid()}-{time.monotonic_ns()}")
        self.c.on_message = self._msg
        ready = threading.Event()
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.on_connect = lambda c, u, f, rc: c.subscribe(topic, qos)
        self.c.connect("127.0.0.1", port, 60)
        self.c.loop_start()
        if not ready.wait(5):
            sys.exit("subscriber did not subscribe")

    def _msg(self, c, u, m):
        now = time.monotonic()
        if self.first is None:
            self.first = now
        self.last = now
        self.n += 1
        if self.on_msg:
            self.on_msg(m, now)
        if self.target and self.n >= self.target:
            self.done.set()

    def wait(self, target, timeout):
        self.target = target
        if self.n < target:
            self.done.wait(timeout)
        return self.n

    def stop(self):
        self.c.loop_stop()
        self.c.disconnect()


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rollup_kib(pid, key):
    """A line of /proc/PID/smaps_rollup in KiB (Private_Dirty, Pss, ...); -1 when unreadable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def private_dirty_kib(pid):
    return rollup_kib(pid, "Private_Dirty")


class SyscallCounter:
    """Counts the system calls of PID from start() to stop(); None when no tool can."""

    def __init__(self, pid, tmp):
        self.pid = pid
        self.out = os.path.join(tmp, f"syscalls-{pid}-{time.monotonic_ns()}.txt")
        self.proc = None
        self.tool = None
        if shutil.which("perf") and subprocess.run(
                ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"],
                capture_output=True).returncode == 0:
            self.tool = "perf"
        elif shutil.which("strace"):
            self.tool = "strace"

    def start(self):
        if self.tool == "perf":
            args = ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", str(self.pid), "-o", self.out]
        elif self.tool == "strace":
            args = ["strace", "-c", "-f", "-p", str(self.pid), "-o", self.out]
        else:
            return
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached

    def stop(self):
        if not self.proc:
            return None
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        try:
            text = open(self.out).read()
        except OSError:
            return None
        if self.tool == "perf":
            m = re.search(r"^(\d+),[^,]*,raw_syscalls:sys_enter", text, re.M)
            return int(m.group(1)) if m else None
        return strace_total(self.out)


def strace_total(path):
    """The system calls an `strace -c` summary counted in all."""
    try:
        text = open(path).read()
    except OSError:
        return None
    m = re.search(r"^\S+\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total$", text, re.M)
    return int(m.group(1)) if m else None


def callgrind_total(path):
    """The instructions (Ir) a callgrind run counted in all, user space only."""
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    return None


class Gateway:
    """The daemon on a fresh pty; wrap (e.g. valgrind) goes in front of the binary."""

    def __init__(self, binary, tmp, port, qos=0, name="gw", protocol="3.1.1", fmt="kv", wrap=None,
                 spool_sync="normal", retain=False, spool_extra=""):
        self.master, slave = pty.openpty()
        self.tty = os.ttyname(slave)
        # Keep no slave fd open here: the gateway owns the port.
        os.close(slave)
        conf = os.path.join(tmp, f"{name}.conf")
        with open(conf, "w") as f:
            f.write(f"""
gateway: {{ id = "{name}"; base_topic = "bench"; }};
mqtt: {{ brokers = ( "mqtt://127.0.0.1:{port}" ); protocol = "{protocol}"; keepalive = 60; }};
spool: {{ path = "{tmp}/{name}-spool.db"; {f'sync = "{spool_sync}";' if spool_sync else ""} {spool_extra} }};
devices = ( {{ name = "s"; driver = "lines"; port = "{self.tty}"; baud = 115200; format = "{fmt}";
    qos = {qos}; retain = {"true" if retain else "false"}; }} );
""")
        self.log = open(os.path.join(tmp, f"{name}.log"), "w")
        self.proc = subprocess.Popen((wrap or []) + [binary, "-c", conf], stdout=self.log, stderr=self.log)
        # Written before the gateway opened the port, bytes could be flushed by its open: wait for it.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None and not self.holds(self.tty):
            time.sleep(0.05)
        time.sleep(0.2)

    def daemon_pid(self):
        """The gateway's pid: the process started, or its child when a wrapper (strace) forks it."""
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                kids = f.read().split()
        except OSError:
            kids = []
        return int(kids[0]) if kids else self.proc.pid

    def holds(self, path):
        pid = self.daemon_pid()
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return False
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                    return True
            except OSError:
                pass
        return False

    def write_all(self, data, timeout=120):
        view = memoryview(data)
        deadline = time.time() + timeout
        while view and time.time() < deadline:
            _, w, _ = select.select([], [self.master], [], 1)
            if w:
                n = os.write(self.master, view[:65536])
                view = view[n:]
        return not view

    def stop(self, timeout=10):
        os.kill(self.daemon_pid(), signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.master)
        self.log.close()


def mapping_kib(pid, name):
    """(Rss, Private_Dirty) in KiB of the mappings of PID whose path contains NAME."""
    rss = dirty = 0
    current = ""
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                p = line.split()
                if not p[0].endswith(":"):
                    current = p[5] if len(p) > 5 else ""
                elif name in current and p[0] == "Rss:":
                    rss += int(p[1])
                elif name in current and p[0] == "Private_Dirty:":
                    dirty += int(p[1])
    except OSError:
        pass
    return rss, dirty


def bench_floor(port, payloads):
    """Throughput of mosquitto_pub -l; its memory once all arrived (its input still open)."""
    sub = Counter(port, "floor/#")
    t0 = time.monotonic()
    pub = subprocess.Popen(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", "floor/x", "-q", "0", "-l"],
                           stdin=subprocess.PIPE)
    pub.stdin.write(payloads)
    pub.stdin.flush()
    got = sub.wait(len(payloads.splitlines()), 120)
    t1 = sub.last or time.monotonic()
    mem = (proc_status(pub.pid, "VmHWM"), private_dirty_kib(pub.pid))
    pub.stdin.close()
    pub.wait(30)
    sub.stop()
    return got, t1 - t0, mem


def bench_gateway(binary, tmp, port, lines):
    gw = Gateway(binary, tmp, port, name="tp")
    sub = Counter(port, "bench/s/#")
    data = b"".join(b"t=%d.5 h=%d p=%d\n" % (i % 40, i % 100, 900 + i % 200) for i in range(lines))
    cpu0 = proc_stat(gw.proc.pid)
    t0 = time.monotonic()
    ok = gw.write_all(data)
    got = sub.wait(lines * 3, 120)
    t1 = sub.last or time.monotonic()
    cpu = proc_stat(gw.proc.pid) - cpu0
    hwm = proc_status(gw.proc.pid, "VmHWM")
    dirty = private_dirty_kib(gw.proc.pid)
    pss = rollup_kib(gw.proc.pid, "Pss")
    crypto = mapping_kib(gw.proc.pid, "libcrypto")
    sub.stop()
    gw.stop()
    return ok, got, t1 - t0, cpu, hwm, dirty, pss, crypto


def bench_latency(binary, tmp, port, qos, count=1000, rate=100):
    """Write time (CLOCK_REALTIME, just before write(2)) to receive time as stamped by a
    mosquitto_sub process (%U: its own clock_gettime at arrival), so no Python thread
    scheduling sits on the measured path."""
    gw = Gateway(binary, tmp, port, qos=qos, name=f"lat{qos}")
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", "bench/s/seq",
                            "-q", str(qos), "-C", str(count), "-W", str(int(count / rate) + 15), "-F", "%U %p"],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    sent = {}
    start = time.monotonic()
    for i in range(count):
        target = start + i / rate
        while True:
            d = target - time.monotonic()
            if d <= 0:
                break
            time.sleep(d)
        sent[i] = time.time()
        os.write(gw.master, b"seq=%d\n" % i)
    out, _ = sub.communicate(timeout=int(count / rate) + 20)
    gw.stop()
    lat = []
    for line in out.splitlines():
        try:
            ts, payload = line.split()
            seq = int(float(payload))
        except ValueError:
            continue
        if seq in sent:
            lat.append(float(ts) - sent[seq])
    lat.sort()
    if not lat:
        return None
    return len(lat), lat[len(lat) // 2] * 1e3, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3


def bench_idle(binary, tmp, port, seconds=10):
    gw = Gateway(binary, tmp, port, name="idle")
    time.sleep(1)
    v0 = proc_status(gw.proc.pid, "voluntary_ctxt_switches")
    time.sleep(seconds)
    v1 = proc_status(gw.proc.pid, "voluntary_ctxt_switches")
    gw.stop()
    return (v1 - v0) / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200000)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "sensorgate"))
    a = ap.parse_args()
    # A binary just linked sits in the page cache as dirty pages, which smaps counts as the
    # process's private dirty memory until they are written back.
    os.sync()
    with tempfile.TemporaryDirectory() as tmp:
        broker, port = start_broker(tmp)
        try:
            print(f"# sensorgate benchmark, {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
                  f"{os.cpu_count()} cores, {platform.platform()}")
            payloads = b"".join(b"%d.5\n" % (i % 40) for i in range(a.lines * 3))
            fgot, fdt, fmem = bench_floor(port, payloads)
            frate = fgot / fdt if fdt > 0 else 0
            print(f"floor      mosquitto_pub -l: {fgot} msgs in {fdt:.2f} s = {frate:,.0f} msgs/s")
            ok, got, dt, cpu, hwm, dirty, pss, crypto = bench_gateway(a.bin, tmp, port, a.lines)
            rate = got / dt if dt > 0 else 0
            print(f"sensorgate {a.lines} lines x 3 fields: {got} msgs in {dt:.2f} s = {rate:,.0f} msgs/s "
                  f"({a.lines / dt:,.0f} lines/s){'' if ok else ' (writer timed out)'}")
            print(f"ratio      sensorgate / floor = {rate / frate:.2f}x" if frate else "ratio      n/a")
            print(f"cpu        gateway {cpu:.2f} s ({cpu / max(got, 1) * 1e6:.2f} us/msg)")
            print(f"memory     peak RSS {hwm / 1024:.2f} MiB, PSS {pss / 1024:.2f} MiB, private dirty "
                  f"{dirty / 1024:.2f} MiB; of it libcrypto "
                  f"(loaded with libmosquitto, unused on mqtt:// links) {crypto[0] / 1024:.2f} MiB, "
                  f"{crypto[1] / 1024:.2f} MiB dirty; the floor mosquitto_pub -l: peak RSS {fmem[0] / 1024:.2f} MiB, "
                  f"private dirty {fmem[1] / 1024:.2f} MiB")
            for q in (0, 1):
                r = bench_latency(a.bin, tmp, port, q)
                if r:
                    print(f"latency    QoS {q}, 100 lines/s: {r[0]} samples, p50 {r[1]:.3f} ms, p99 {r[2]:.3f} ms")
                else:
                    print(f"latency    QoS {q}: no samples")
            w = bench_idle(a.bin, tmp, port)
            print(f"idle       {w:.2f} voluntary wakeups/s over 10 s (keepalive 60 s)")
        finally:
            broker.terminate()
            broker.wait(5)


if __name__ == "__main__":
    main()
