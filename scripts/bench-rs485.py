#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A simulated RS-485 line at 9600 baud 8E1: 4 Modbus RTU slaves x 20 registers polled as fast as
the line allows (interval 0.01 s), the real binary and a private mosquitto.

The slaves (tests/integration/serial_sim.py) sit on a pseudo-terminal, which carries bytes
instantly; so each slave answers only after the time its request and its answer would take on a
real wire at 9600 baud 8E1 (11 bits a character), plus a 0.5 ms turnaround. The physical minimum
of a cycle is what its bytes need at that rate plus the 3.5-character silence Modbus RTU demands
before every request (Serial Line V1.02 §2.5.1.1); utilisation = minimum / achieved cycle.

  merged     20 adjacent registers per slave: one block read each (4 requests a cycle)
  unmerged   20 registers two apart, max_gap 0: 20 requests per slave (80 a cycle)
  gap 1      the same table with max_gap 1: one block of 39 registers per slave again
  cpu        gateway CPU time per transaction (utime + stime), and instructions per transaction
             under callgrind (two runs of different length, the difference divided by the
             difference in transactions, so start-up does not count)

Figures, not pass/fail. Usage: scripts/bench-rs485.py [--seconds S] [--bin build/sensorgate]
[--no-callgrind]
"""
import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from serial_sim import RtuBus  # noqa: E402
from bench import callgrind_total, start_broker  # noqa: E402

BAUD = 9600
CHAR_S = 11 / BAUD
GAP_S = max(3.5 * CHAR_S, 0.00175)
SLAVES = (1, 2, 3, 4)


def config(port, link, tmp, spacing, max_gap):
	devs = []
	for s in SLAVES:
		regs = ", ".join(f'{{ name = "r{i}"; address = {i * spacing}; }}' for i in range(20))
		devs.append(f'{{ name = "meter{s}"; driver = "modbus"; port = "{link}"; slave = {s}; interval = 0.01; '
		            f'timeout = 0.3; max_gap = {max_gap}; registers = ( {regs} ); }}')
	return (f'gateway: {{ id = "bench"; base_topic = "bench"; }};\n'
	        f'mqtt: {{ brokers = ( "mqtt://127.0.0.1:{port}" ); }};\n'
	        f'spool: {{ path = "{tmp}/spool.db"; }};\n'
	        f'devices = ( {", ".join(devs)} );\n')


def minimum_cycle(requests_per_slave, regs_per_request):
	answer = 5 + 2 * regs_per_request  # slave, function, byte count, registers, CRC
	per_request = (8 + answer) * CHAR_S
	n = requests_per_slave * len(SLAVES)
	return n * per_request, n * (per_request + GAP_S)


def cpu_seconds(pid):
	with open(f"/proc/{pid}/stat") as f:
		fields = f.read().rsplit(")", 1)[1].split()
	return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(binary, port, tmp, spacing, max_gap, seconds, wrap=None):
	"""Transactions (in the window, and in the whole run), per slave, CPU seconds and the window's length
	of a run of about SECONDS once polling started."""
	work = tempfile.mkdtemp(dir=tmp)
	bus = RtuBus(os.path.join(work, "rs485"), slaves=SLAVES, baud=BAUD, turnaround=0.0005)
	for s in SLAVES:
		bus.set_registers(s, "holding", 0, list(range(100)))
	conf = os.path.join(work, "bench.conf")
	with open(conf, "w") as f:
		f.write(config(port, bus.link, work, spacing, max_gap))
	args = (wrap or []) + [binary, "-c", conf]
	proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
	                        stderr=open(os.path.join(work, "stderr"), "w"), cwd=work)
	try:
		deadline = time.monotonic() + 30
		while not bus.requests() and time.monotonic() < deadline:
			time.sleep(0.05)
		if not bus.requests():
			sys.exit(f"bench-rs485: the gateway sent nothing; see {work}/stderr")
		n0, c0, t0 = len(bus.requests()), cpu_seconds(proc.pid), time.monotonic()
		time.sleep(seconds)
		n1, c1, t1 = len(bus.requests()), cpu_seconds(proc.pid), time.monotonic()
	finally:
		proc.terminate()
		try:
			proc.wait(timeout=30)
		except subprocess.TimeoutExpired:
			proc.kill()
			proc.wait(timeout=5)
		bus.close()
	per_slave = {s: len([r for r in bus.requests(s) if t0 <= r[0] < t1]) for s in SLAVES}
	return {"n": n1 - n0, "total": len(bus.requests()), "per_slave": per_slave, "cpu": c1 - c0, "dt": t1 - t0}


def callgrind_instructions(binary, port, tmp, seconds):
	"""Instructions per transaction: the difference of two runs under callgrind."""
	out = []
	for secs in (seconds, 2 * seconds):
		d = tempfile.mkdtemp(dir=tmp)
		cg = os.path.join(d, "callgrind.out")
		r = run(binary, port, d, 1, 0, secs, wrap=["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}"])
		ir = callgrind_total(cg)
		# the whole run, start-up included, against every request the slaves saw
		out.append((ir, r["total"]))
	(i1, n1), (i2, n2) = out
	if not i1 or not i2 or n2 <= n1:
		return None
	return (i2 - i1) / (n2 - n1), out


def main():
	ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
	ap.add_argument("--seconds", type=float, default=15.0)
	ap.add_argument("--bin", default=os.path.join(ROOT, "build", "sensorgate"))
	ap.add_argument("--no-callgrind", action="store_true")
	a = ap.parse_args()
	if not os.access(a.bin, os.X_OK):
		sys.exit(f"bench-rs485: {a.bin} not built (make)")
	tmp = tempfile.mkdtemp(prefix="sg-bench-rs485.")
	broker, port = start_broker(tmp)
	try:
		print(f"# RS-485 bench: {platform.machine()}, {os.cpu_count()} cores, {BAUD} baud 8E1, "
		      f"4 slaves x 20 registers, {a.seconds:.0f} s per run")
		cases = [("merged", 1, 0, 1, 20), ("unmerged", 2, 0, 20, 1), ("gap 1", 2, 1, 1, 39)]
		for name, spacing, max_gap, req_per_slave, regs in cases:
			r = run(a.bin, port, tmp, spacing, max_gap, a.seconds)
			n, per_slave, cpu = r["n"], r["per_slave"], r["cpu"]
			cycles = min(per_slave.values()) / req_per_slave
			achieved = r["dt"] / cycles if cycles else float("inf")
			wire, with_gaps = minimum_cycle(req_per_slave, regs)
			print(f"{name:9s}  {req_per_slave * len(SLAVES)} requests/cycle: cycle {achieved * 1000:.0f} ms, "
			      f"minimum {with_gaps * 1000:.0f} ms ({wire * 1000:.0f} ms of bytes, {(with_gaps - wire) * 1000:.0f} ms "
			      f"of gaps) -> utilisation "
			      f"{with_gaps / achieved * 100:.0f} % ({wire / achieved * 100:.0f} % counting bytes only); "
			      f"requests per slave {sorted(per_slave.values())}; cpu {cpu / max(n, 1) * 1e6:.0f} us/transaction")
		if not a.no_callgrind and shutil.which("valgrind"):
			r = callgrind_instructions(a.bin, port, tmp, min(a.seconds, 10))
			if r:
				per, runs = r
				print(f"callgrind  {per:,.0f} instructions per transaction (20 readings each, published): runs "
				      + ", ".join(f"{i:,} Ir / {n} requests" for i, n in runs))
			else:
				print("callgrind  no result")
	finally:
		broker.terminate()
		broker.wait(5)
		shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
	main()
