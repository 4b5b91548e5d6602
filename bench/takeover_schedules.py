#!/usr/bin/python3
"""Takeover time with many pending schedules (issue 16): how long a new master takes from
"lock acquired" to serving when the store holds N schedules (AMQ_SCHEDULED_DELAY an hour
out), against the same with none, in the same run.

    /usr/bin/python3 bench/takeover_schedules.py build/broker/tandemd [N [ROUNDS]] > result.json

For each count in (0, N): a fresh store, broker A (master) takes the schedules (persistent,
pipelined, one RECEIPT at the end), broker B waits as slave; then ROUNDS times: SIGKILL the
master, the slave takes over, the killed one is restarted as the next slave. Each takeover's
figure is the new master's own log line `main master ... took_ms=T journal_ms=J`: T is lock
acquired -> serving (journal recovery, the engine's recovery, which rebuilds the schedule heap,
and opening the listeners), J the journal's share of it. Every schedule is still pending at
the end (checked in /health's sibling /metrics: tandem_scheduled_pending).
"""
import json
import os
import re
import socket
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
os.environ["TANDEMD"] = sys.argv[1]
from tandem_test import SharedBroker, wait_for  # noqa: E402

N = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
MASTER = re.compile(r"main master epoch=(\d+).*?took_ms=(\d+).*?records_replayed=(\d+).*?"
                    r"from_checkpoint=(\w+).*?journal_ms=(\d+)")


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\x00")
    buf = b""
    while b"\x00" not in buf:
        buf += s.recv(4096)
    assert buf.startswith(b"CONNECTED"), buf[:200]
    return s


def schedule(port, n):
    """n persistent schedules an hour out; returns when the last one's RECEIPT is read."""
    if n == 0:
        return
    s = connect(port)
    for start in range(0, n, 500):
        batch = []
        for i in range(start, min(n, start + 500)):
            receipt = "receipt:last\n" if i == n - 1 else ""
            batch.append(f"SEND\ndestination:/queue/bench.takeover\npersistent:true\nAMQ_SCHEDULED_DELAY:3600000\n"
                         f"{receipt}content-length:3\n\nabc\x00".encode())
        s.sendall(b"".join(batch))
    buf = b""
    s.settimeout(600)
    while b"receipt-id:last" not in buf:
        chunk = s.recv(65536)
        assert chunk and not chunk.startswith(b"ERROR"), chunk[:300]
        buf = (buf + chunk)[-4096:]
    s.close()


def pending(broker):
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.admin_port}/metrics", timeout=10) as r:
        m = re.search(r"^tandem_scheduled_pending (\d+)$", r.read().decode(), re.M)
    return int(m.group(1)) if m else None


def master_line(broker, after):
    """The (epoch, took_ms, records_replayed, from_checkpoint, journal_ms) of the first
    master line in broker's log after character `after`."""
    def found():
        m = MASTER.search(broker.log_text(), after)
        return m and (int(m[1]), int(m[2]), int(m[3]), m[4] == "true", int(m[5]))
    return wait_for(found, 600, f"{broker.name} master line")


def run(count):
    store = tempfile.mkdtemp(prefix="tandem-takeover-")
    a = SharedBroker(store, "a", create=True, config={"admin_open_reads": True})
    b = SharedBroker(store, "b", config={"admin_open_reads": True})
    try:
        a.start()
        t = time.monotonic()
        schedule(a.port, count)
        stored_s = time.monotonic() - t
        b.start(wait=False)
        wait_for(lambda: (h := b.health()) and h.get("role") == "slave", 60, "b slave")
        master, slave = a, b
        takeovers = []
        for _ in range(ROUNDS):
            offset = len(slave.log_text())
            master.kill()
            epoch, took, replayed, from_checkpoint, journal = master_line(slave, offset)
            assert pending(slave) == count, f"pending {pending(slave)} after takeover, expected {count}"
            takeovers.append({"epoch": epoch, "took_ms": took, "journal_ms": journal,
                              "from_checkpoint": from_checkpoint, "records_replayed": replayed})
            master.start(wait=False)
            wait_for(lambda m=master: (h := m.health()) and h.get("role") == "slave", 60, f"{master.name} slave")
            master, slave = slave, master
        return {"schedules": count, "store_s": round(stored_s, 2), "takeovers": takeovers,
                "took_ms_median": statistics.median(x["took_ms"] for x in takeovers),
                "journal_ms_median": statistics.median(x["journal_ms"] for x in takeovers)}
    finally:
        a.cleanup()
        b.cleanup()


def main():
    print(json.dumps({"rounds": ROUNDS, "runs": [run(0), run(N)]}, indent=2))


if __name__ == "__main__":
    main()
