#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""leftovers.py — find (and stop) the processes a test run left behind.

Usage: scripts/leftovers.py [--grace SECONDS] [--kill] NAME=VALUE

scripts/test.sh exports a variable unique to the run (SG_TEST_RUN=<token>)
before it starts anything. Every process the run starts inherits it, through
fork, exec, setsid(), double forks and the reparenting to init that follow:
the environment is the one mark that a process cannot lose by accident (only a
program that clears its environment on purpose, like sudo or env -i, drops
it; Jenkins finds a build's stray processes the same way). A process-group or
session check misses anything that calls setsid() (mosquitto -d, setsid,
systemd-nspawn); the parent link is gone once init adopts an orphan; names
match other people's processes; and a cgroup needs systemd or a writable
cgroup tree, which neither CI containers nor this rig can count on.

Every process whose environment holds NAME=VALUE, other than this one and its
ancestors, is reported, one line each ("pid command line"), after waiting up
to --grace seconds (default 5) for processes that are just exiting. With
--kill they are sent SIGTERM, then SIGKILL 3 s later. Exit status: 0 none
left, 1 some left, 2 usage.
"""

import os
import signal
import sys
import time


def ancestors():
	pids = set()
	pid = os.getpid()
	while pid > 1 and pid not in pids:
		pids.add(pid)
		try:
			with open(f"/proc/{pid}/status") as f:
				pid = next(int(line.split()[1]) for line in f if line.startswith("PPid:"))
		except (OSError, StopIteration, ValueError):
			break
	return pids


def marked(mark, skip):
	"""[(pid, command line)] of the processes carrying mark (bytes) in their environment."""
	found = []
	for name in os.listdir("/proc"):
		if not name.isdigit() or int(name) in skip:
			continue
		try:
			with open(f"/proc/{name}/environ", "rb") as f:
				env = f.read().split(b"\0")
			if mark not in env:
				continue
			with open(f"/proc/{name}/cmdline", "rb") as f:
				cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
		except OSError:  # gone meanwhile, or a zombie
			continue
		found.append((int(name), cmd or "?"))
	return sorted(found)


def main(argv):
	grace, kill, args = 5.0, False, []
	it = iter(argv)
	for a in it:
		if a == "--grace":
			grace = float(next(it, "5"))
		elif a == "--kill":
			kill = True
		else:
			args.append(a)
	if len(args) != 1 or "=" not in args[0] or args[0].endswith("="):
		print(__doc__.split("\n\n")[1], file=sys.stderr)
		return 2
	mark = args[0].encode()
	skip = ancestors()
	deadline = time.monotonic() + grace
	while True:
		left = marked(mark, skip)
		if not left or time.monotonic() >= deadline:
			break
		time.sleep(0.2)
	for pid, cmd in left:
		print(f"{pid} {cmd[:200]}", flush=True)
	if kill:
		for sig in (signal.SIGTERM, signal.SIGKILL):
			for pid, _ in left:
				try:
					os.kill(pid, sig)
				except OSError:
					pass
			end = time.monotonic() + 3
			while time.monotonic() < end and marked(mark, skip):
				time.sleep(0.1)
			if not marked(mark, skip):
				break
	return 1 if left else 0

if __name__ == "__main__":
	sys.exit(main(sys.argv[1:]))
