#!/usr/bin/python3
"""Planned handover (issue 12): how many fsync/fdatasync calls lie on its critical path.

Starts two brokers on a fresh store under `strace -f -y`, sends persistent messages to the
master and acknowledges half of them, sends SIGTERM to the master and waits for the slave to
serve. Counts the sync calls of the old master between its "main stopping" and "lock
released" lines, and of the new master from its start to its "server stomp listening" line
(a slave makes none while it waits), and lists each with its file. A count is a figure that
the machine's load does not blur, unlike the latency of tools/bench/handover.py.

Usage: tools/bench/handover_syncs.py build/broker/tandemd [--messages 200]
Needs strace and Debian's python3-stomp (/usr/bin/python3).
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import stomp

SYNCS = "trace=fsync,fdatasync,syncfs,sync_file_range"
CALL = re.compile(r"^\d+\s+(\d\d):(\d\d):(\d\d\.\d+) (\w+)\((\d+<[^>]*>)?")
LOG_TIME = r"(\d\d):(\d\d):(\d\d\.\d+)Z \S+\s+"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seconds(h, m, s):
    return int(h) * 3600 + int(m) * 60 + float(s)


class Broker:
    def __init__(self, tandemd, base, name, create=False):
        self.log = os.path.join(base, name + ".log")
        self.trace = os.path.join(base, name + ".trace")
        self.port = free_port()
        cmd = ["strace", "-f", "-tt", "-y", "-e", SYNCS, "-o", self.trace, tandemd, "--store",
               os.path.join(base, "store"), "--listen", f"127.0.0.1:{self.port}", "--admin",
               f"127.0.0.1:{free_port()}", "--name", name]
        if create:
            cmd.append("--create-store")
        with open(self.log, "w") as out:
            self.strace = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    def wait_log(self, pattern, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log, errors="replace") as f:
                m = re.search(pattern, f.read())
            if m:
                return m
            time.sleep(0.01)
        sys.exit(f"no line {pattern!r} in {self.log} within {timeout} s")

    def at(self, pattern):
        """UTC time of day (s) of the first log line matching pattern."""
        return seconds(*self.wait_log(LOG_TIME + pattern).groups()[:3])

    def signal(self, sig):
        # The signal goes to tandemd itself, not to strace (which would not pass SIGTERM on).
        os.kill(int(self.wait_log(r"main starting .* pid=(\d+)").group(1)), sig)
        self.strace.wait(30)

    def syncs(self, since=None, until=None):
        found = []
        with open(self.trace) as f:
            for line in f:
                m = CALL.match(line)
                if not m:
                    continue
                t = seconds(m.group(1), m.group(2), m.group(3))
                if (since is None or t >= since) and (until is None or t <= until):
                    found.append(f"{m.group(4)} {m.group(5) or ''}")
        return found


def load_store(port, messages):
    c = stomp.Connection([("127.0.0.1", port)])
    got = []

    class Listener(stomp.ConnectionListener):
        def on_message(self, frame):
            got.append(frame)

    c.set_listener("l", Listener())
    c.connect(wait=True)
    for i in range(messages):
        c.send("/queue/handover", f"m{i}", headers={"persistent": "true"})
    c.subscribe("/queue/handover", id=1, ack="client-individual")
    deadline = time.monotonic() + 20
    while len(got) < messages // 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    for frame in got[: messages // 2]:
        c.ack(frame.headers["message-id"], 1)
    c.disconnect(receipt="bye")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tandemd")
    ap.add_argument("--messages", type=int, default=200)
    a = ap.parse_args()
    if time.localtime().tm_gmtoff != 0:
        sys.exit("run with TZ=UTC: strace's times are local, the brokers' logs UTC")
    base = tempfile.mkdtemp(prefix="tandem-handover-syncs-")
    old = Broker(a.tandemd, base, "old", create=True)
    old.wait_log(r"main master epoch")
    new = Broker(a.tandemd, base, "new")
    new.wait_log(r"slave: waiting for lock")
    load_store(old.port, a.messages)
    old.signal(signal.SIGTERM)
    new.wait_log(r"server stomp listening")
    stopping, released, serving = old.at(r"main stopping"), old.at(r"lockmgr lock released"), new.at(r"server stomp listening")
    master_line = new.wait_log(r"main master epoch=2.*").group(0)
    new.signal(signal.SIGKILL)
    old_syncs = old.syncs(stopping - 0.001, released + 0.001)
    new_syncs = new.syncs(None, serving + 0.001)
    print(f"old master, stopping -> lock released: {len(old_syncs)}")
    for s in old_syncs:
        print("   ", s)
    print(f"new master, start -> port open: {len(new_syncs)}")
    for s in new_syncs:
        print("   ", s)
    print(f"total on the path: {len(old_syncs) + len(new_syncs)}")
    print(master_line)
    print(f"logs and traces in {base}")


if __name__ == "__main__":
    main()
