#!/usr/bin/python3
"""The hostile-client soak of issue 17: hostile and careless clients in parallel against one
tandemd on loopback while a well-behaved producer/consumer pair measures its own RECEIPT
latency; the broker's RSS is sampled from /proc.

    /usr/bin/python3 bench/hostile_soak.py build/broker/tandemd [SECONDS [baseline]] > result.json

("baseline": the well-behaved pair alone, for the machine's own latency.)

Hostile load (each on its own thread, reconnecting when the broker closes it):
  slowloris     20 sessions that CONNECT and then send a frame one byte a second
  transient     one session that SUBSCRIBEs and UNSUBSCRIBEs fresh destination names
  never-read    5 subscribers of /topic/firehose that never read, and a producer that
                floods the topic with 4 KiB persistent messages
  passwords     2 sessions that CONNECT with a wrong passcode in a loop
  oversized     one session that sends frames over max_frame_bytes (11 MiB)
The well-behaved pair CONNECTs before the attack (the password throttle is per peer address,
and every client here is 127.0.0.1) and sends a persistent SEND with a receipt every 20 ms.
"""
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from tandem_test import Broker  # noqa: E402
import tandem_test  # noqa: E402

DURATION = float(sys.argv[2]) if len(sys.argv) > 2 else 90.0
BASELINE = len(sys.argv) > 3 and sys.argv[3] == "baseline"  # the pair alone, no hostile clients
STOP = threading.Event()
COUNTS = {k: 0 for k in ("slowloris_closed", "transient_pairs", "firehose_sent", "wrong_passwords", "oversized_sent")}
LOCK = threading.Lock()
MEMORY_BUDGET = int(os.environ.get("TANDEM_SOAK_BUDGET_MIB", "64")) << 20
# TANDEM_SOAK_COUNT_BASELINE=0: the budget counts only what is held for clients (as before
# max_memory_counts_baseline), for an A/B run.
COUNT_BASELINE = os.environ.get("TANDEM_SOAK_COUNT_BASELINE", "1") != "0"


def rss_parts(pid):
    """The broker's RSS by kind of mapping (/proc/PID/smaps): file-backed (executable,
    libraries), [heap] (malloc's main arena), anonymous (other arenas, large allocations),
    stacks; and how many anonymous mappings hold over 1 MiB (mostly malloc arenas)."""
    parts = {"file": 0, "heap": 0, "anon": 0, "stack": 0, "anon_over_1mib": 0}
    name = ""
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:
                name = fields[5] if len(fields) > 5 else ""
            elif fields[0] == "Rss:":
                kb = int(fields[1]) * 1024
                kind = ("heap" if name == "[heap]" else "stack" if name.startswith("[stack") else
                        "file" if name.startswith("/") else "anon")
                parts[kind] += kb
                if kind == "anon" and kb > (1 << 20):
                    parts["anon_over_1mib"] += 1
    return parts


def bump(key, n=1):
    with LOCK:
        COUNTS[key] += n


def connect(port, login="app", passcode="app-pw", extra=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"CONNECT\naccept-version:1.2\nhost:x\nheart-beat:0,0\nlogin:" + login.encode() + b"\npasscode:" +
              passcode.encode() + b"\n" + extra + b"\n\0")
    return s


def read_until(s, marker, limit=1 << 16):
    buf = b""
    while marker not in buf and len(buf) < limit:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    return buf


def forever(fn):
    def loop():
        while not STOP.is_set():
            try:
                fn()
            except OSError:
                time.sleep(0.05)
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def main():
    os.environ["TANDEMD"] = sys.argv[1]
    b = Broker(config={"users": [{"login": "app", "password": "app-pw"}], "admin_open_reads": True,
                       "max_memory_bytes": MEMORY_BUDGET, "max_session_backlog_bytes": 1 << 20,
                       "frame_timeout_ms": 5000, "idle_timeout_ms": 20000, "write_timeout_ms": 5000,
                       "destination_gc_ms": 2000, "max_destinations": 5000, "send_timeout_ms": 5000,
                       "max_memory_counts_baseline": COUNT_BASELINE})
    b.start()
    port = b.port
    pid = b.proc.pid

    # The well-behaved pair, connected before the attack.
    good = connect(port)
    read_until(good, b"\0")
    cons = connect(port)
    read_until(cons, b"\0")
    cons.sendall(b"SUBSCRIBE\ndestination:/queue/good\nid:1\nack:auto\n\n\0")
    received = [0]

    def drain():
        cons.settimeout(1)
        while not STOP.is_set():
            try:
                d = cons.recv(65536)
            except socket.timeout:
                continue
            if not d:
                return
            received[0] += d.count(b"MESSAGE\n")

    def slowloris():
        s = connect(port)
        read_until(s, b"\0")
        s.sendall(b"SEND\ndestination:/queue/slow\ncontent-length:100000\n\n")
        while not STOP.is_set():
            s.sendall(b"x")
            time.sleep(1)
        s.close()
    def slowloris_loop():
        try:
            slowloris()
        except OSError:
            bump("slowloris_closed")
            raise

    def transient():
        s = connect(port)
        read_until(s, b"\0")
        i = 0
        while not STOP.is_set():
            name = f"/topic/transient.{time.monotonic_ns()}.{i}"
            s.sendall(f"SUBSCRIBE\ndestination:{name}\nid:{i}\n\n\0UNSUBSCRIBE\nid:{i}\n\n\0".encode())
            i += 1
            bump("transient_pairs")
            if i % 200 == 0:
                s.sendall(b"SEND\ndestination:/queue/sync\nreceipt:r\n\n\0")
                read_until(s, b"receipt-id:r")
        s.close()

    def never_reader():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.sendall(b"CONNECT\naccept-version:1.2\nhost:x\nheart-beat:0,0\nlogin:app\npasscode:app-pw\n\n\0"
                  b"SUBSCRIBE\ndestination:/topic/firehose\nid:1\nack:client\n\n\0")
        while not STOP.is_set():
            time.sleep(0.5)
            try:
                if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    break  # closed by the broker (write deadline)
            except BlockingIOError:
                pass
        s.close()

    def firehose():
        s = connect(port)
        read_until(s, b"\0")
        body = b"f" * 4096
        frame = b"SEND\ndestination:/topic/firehose\npersistent:true\ncontent-length:4096\n\n" + body + b"\0"
        while not STOP.is_set():
            s.sendall(frame)
            bump("firehose_sent")
        s.close()

    def passwords():
        s = connect(port, passcode="guess")
        read_until(s, b"\0")
        s.close()
        bump("wrong_passwords")

    def oversized():
        s = connect(port)
        read_until(s, b"\0")
        chunk = b"o" * (1 << 20)
        s.sendall(b"SEND\ndestination:/queue/big\n\n")
        for _ in range(12):
            s.sendall(chunk)
        bump("oversized_sent")
        read_until(s, b"\0")
        s.close()

    # The hostile clients run in a child process: their threads must not hold the measuring
    # loop's GIL (that would be the client's latency, not the broker's).
    parent_end, child_end = multiprocessing.Pipe()

    def hostile():
        [forever(slowloris_loop) for _ in range(20)]
        [forever(f) for f in (transient, firehose, oversized)]
        [forever(never_reader) for _ in range(5)]
        [forever(passwords) for _ in range(2)]
        time.sleep(DURATION)
        STOP.set()
        child_end.send(dict(COUNTS))

    def idle():
        time.sleep(DURATION)
        child_end.send({"baseline": "no hostile clients"})

    child = multiprocessing.get_context("fork").Process(target=idle if BASELINE else hostile, daemon=True)
    child.start()

    threading.Thread(target=drain, daemon=True).start()
    latencies = []
    rss = []
    t_end = time.monotonic() + DURATION
    seq = 0
    good.settimeout(10)
    next_rss = 0.0
    peak_parts = {}
    while time.monotonic() < t_end:
        seq += 1
        t0 = time.monotonic()
        good.sendall(f"SEND\ndestination:/queue/good\npersistent:true\nreceipt:{seq}\n\nping\0".encode())
        read_until(good, f"receipt-id:{seq}\n".encode())
        latencies.append(time.monotonic() - t0)
        if time.monotonic() >= next_rss:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss.append(int(line.split()[1]) * 1024)
            if rss[-1] == max(rss):
                peak_parts = rss_parts(pid)
            next_rss = time.monotonic() + 1
        time.sleep(0.02)
    STOP.set()
    counts = parent_end.recv() if parent_end.poll(30) else {"error": "the hostile process did not report"}
    child.join(5)
    with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}/metrics", timeout=30) as r:
        metrics = {l.split()[0]: float(l.split()[1]) for l in r.read().decode().splitlines()
                   if l and not l.startswith("#") and "{" not in l}
    lat = sorted(latencies)
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    out = {
        "duration_s": DURATION, "receipts": len(lat), "consumer_received": received[0],
        "receipt_ms": {"p50": round(pick(0.50), 2), "p99": round(pick(0.99), 2), "max": round(lat[-1] * 1000, 2)},
        "rss_bytes": {"first": rss[0], "max": max(rss), "last": rss[-1]}, "max_memory_bytes": MEMORY_BUDGET,
        "max_memory_counts_baseline": COUNT_BASELINE, "rss_at_peak": peak_parts,
        "hostile": counts,
        "broker": {k: metrics.get(k) for k in ("tandem_memory_bytes", "tandem_memory_baseline_bytes", "tandem_destinations", "tandem_destinations_collected_total",
                                               "tandem_auth_failures_total", "tandem_login_throttled_total",
                                               "tandem_connections", "tandem_producers_blocked",
                                               "tandem_memory_partial_frame_bytes", "tandem_memory_write_queue_bytes",
                                               "tandem_memory_budget_waiting", "tandem_memory_budget_waits_total")},
        "loadavg_after": os.getloadavg(),
    }
    print(json.dumps(out, indent=2))
    b.stop()
    b.cleanup()


if __name__ == "__main__":
    main()
