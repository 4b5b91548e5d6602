#!/usr/bin/python3
"""Scheduled delivery at scale (issue 16): schedules N messages (default 100,000) with
AMQ_SCHEDULED_DELAY so that their firing times spread evenly over SPREAD seconds (default
15) after a lead time that covers the sending, then measures how late each arrives at a
subscriber and the broker's RSS per scheduled message.

    /usr/bin/python3 bench/scheduler.py build/broker/tandemd [N [SPREAD_S [FAR]]] > result.json

FAR (default 0) more messages are scheduled first, an hour out: they stay pending for the
whole run, so N firings are measured with N + FAR schedules pending (e.g. N 3000, FAR
100000: the timer's accuracy at 100,000 scheduled, apart from how fast the broker can
deliver).

Lateness = arrival at the subscriber (wall clock, this host) - the time the message was due:
the broker's `timestamp` header (stamped when it took the SEND, the same instant it computes
the firing time from) + the delay the sender asked for (repeated in a header). It includes
the broker's timer, the firing's journal commit (sync_policy always: an fdatasync per
group), dispatch, loopback and this client's parsing, so it is an upper bound on the
timer's own lateness. The subscriber is a raw socket reader (no stomp.py: it must keep up
with ~7,000 messages a second without adding its own queueing). Persistent messages, one
subscriber with ack:auto on one queue. RSS per scheduled message = (VmRSS once every
schedule is stored - VmRSS before) / N: the engine's heap entry plus the journal index entry.

SCHEDULER_BENCH_SYNC=periodic (environment) runs the broker with that `sync` policy instead
of the default `always`, to see what the fdatasync of each firing costs the subscriber.

firing_phase_cost: from the last schedule stored to the last message received, the
journal's appends and fdatasyncs (/metrics: tandem_journal_appends_total,
tandem_journal_fsync_seconds) and tandemd's CPU seconds (/proc/<pid>/stat), also per firing
(auto-acks included: a delivery's remove is an append).
"""
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
os.environ["TANDEMD"] = sys.argv[1]
from tandem_test import Broker, wait_for  # noqa: E402

N = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
SPREAD_S = float(sys.argv[3]) if len(sys.argv) > 3 else 15.0
FAR = int(sys.argv[4]) if len(sys.argv) > 4 else 0
DEST = "/queue/bench.scheduled"
DELAY = re.compile(rb"\nbench-delay-ms:(\d+)\n")
STAMP = re.compile(rb"\ntimestamp:(\d+)\n")


def now_ms():
    return time.time() * 1000.0


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\x00")
    buf = b""
    while b"\x00" not in buf:
        buf += s.recv(4096)
    assert buf.startswith(b"CONNECTED"), buf[:200]
    return s, buf[buf.index(b"\x00") + 1:]


def receiver(port, lateness, ready):
    s, buf = connect(port)
    s.sendall(b"SUBSCRIBE\nid:s\ndestination:" + DEST.encode() + b"\nack:auto\n\n\x00")
    ready.set()
    while len(lateness) < N:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        t = now_ms()
        buf += chunk
        frames = buf.split(b"\x00")
        buf = frames.pop()
        for f in frames:
            d, ts = DELAY.search(f), STAMP.search(f)
            if d and ts:
                lateness.append(t - (int(ts.group(1)) + int(d.group(1))))
    s.close()


def schedule_far(port):
    """FAR schedules an hour out, to another queue; returns when all are stored."""
    s, _ = connect(port)
    frames = [f"SEND\ndestination:/queue/bench.far\npersistent:true\nAMQ_SCHEDULED_DELAY:3600000\n"
              f"{'receipt:far' + chr(10) if i == FAR - 1 else ''}content-length:3\n\nabc\x00".encode()
              for i in range(FAR)]
    for i in range(0, FAR, 500):
        s.sendall(b"".join(frames[i:i + 500]))
    buf = b""
    while b"receipt-id:far" not in buf:
        chunk = s.recv(65536)
        assert chunk and not chunk.startswith(b"ERROR"), chunk[:300]
        buf = (buf + chunk)[-4096:]
    s.close()


def sender(port, lead_ms):
    s, _ = connect(port)
    start = now_ms()
    first_due = start + lead_ms
    batch = []
    for i in range(N):
        due = first_due + SPREAD_S * 1000.0 * i / N
        delay = max(0, int(round(due - now_ms())))
        receipt = f"receipt:r{i}\n" if i == N - 1 else ""
        batch.append(f"SEND\ndestination:{DEST}\npersistent:true\nAMQ_SCHEDULED_DELAY:{delay}\n"
                     f"bench-delay-ms:{delay}\n{receipt}content-length:3\n\nabc\x00".encode())
        if len(batch) == 200:
            s.sendall(b"".join(batch))
            batch = []
    s.sendall(b"".join(batch))
    buf = b""
    while f"receipt-id:r{N - 1}".encode() not in buf:
        chunk = s.recv(65536)
        assert chunk, "connection closed before the last RECEIPT"
        assert not chunk.startswith(b"ERROR"), chunk[:300]
        buf = (buf + chunk)[-4096:]
    stored_at = now_ms()
    s.close()
    return start, stored_at, first_due


def fire_lateness(admin_port):
    """The broker's own figure: tandem_scheduled_fire_lateness_ms (how long after its due
    time each entry was taken by the timer, before the journal commit), cumulative buckets."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    buckets = {}
    for m in re.finditer(r'^tandem_scheduled_fire_lateness_ms_bucket\{le="([^"]+)"\} (\d+)$', text, re.M):
        buckets[m.group(1)] = int(m.group(2))
    total = re.search(r"^tandem_scheduled_fire_lateness_ms_count (\d+)$", text, re.M)
    return {"cumulative_buckets": buckets, "count": int(total.group(1)) if total else None}


def journal_and_cpu(admin_port, pid):
    """What the firing phase cost the broker: the journal's appends and fdatasyncs (count and
    summed seconds, from /metrics) and tandemd's CPU seconds (utime + stime of all its
    threads, /proc/<pid>/stat); the result holds the differences over the firing phase."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10) as r:
        text = r.read().decode()

    def number(name):
        m = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
        return float(m.group(1)) if m else 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"appends": number("tandem_journal_appends_total"),
            "fsyncs": number("tandem_journal_fsync_seconds_count"),
            "fsync_seconds": number("tandem_journal_fsync_seconds_sum"),
            "cpu_seconds": (int(fields[11]) + int(fields[12])) / ticks}


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, int(round(p / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[k]


def main():
    config = {"allow_anonymous": True, "admin_open_reads": True}
    if os.environ.get("SCHEDULER_BENCH_SYNC"):  # e.g. "periodic": what the fdatasyncs cost
        config["sync"] = os.environ["SCHEDULER_BENCH_SYNC"]
    b = Broker(config=config)
    b.start()
    try:
        pid = b.proc.pid
        lateness = []
        ready = threading.Event()
        rx = threading.Thread(target=receiver, args=(b.port, lateness, ready), daemon=True)
        rx.start()
        ready.wait(10)
        rss_before = rss_kib(pid)
        if FAR:
            schedule_far(b.port)
        lead_ms = max(10_000.0, N / 8.0)  # time to send and store every schedule first
        start, stored_at, first_due = sender(b.port, lead_ms)
        rss_stored = rss_kib(pid)
        cost_before = journal_and_cpu(b.admin_port, pid)
        all_stored_before_first_due = stored_at < first_due
        wait_for(lambda: len(lateness) >= N, lead_ms / 1000 + SPREAD_S + 120, f"{N} messages", interval=0.1)
        rss_after = rss_kib(pid)
        broker_side = fire_lateness(b.admin_port)
        cost_after = journal_and_cpu(b.admin_port, pid)
        cost = {k: round(cost_after[k] - cost_before[k], 3) for k in cost_after}
        firing_s = (now_ms() - first_due) / 1000.0
        cost["firing_phase_s"] = round(firing_s, 3)
        cost["fsyncs_per_s"] = round(cost["fsyncs"] / firing_s, 1)
        cost["mean_fsync_ms"] = round(1000.0 * cost["fsync_seconds"] / cost["fsyncs"], 3) if cost["fsyncs"] else None
        cost["appends_per_firing"] = round(cost["appends"] / N, 3)
        cost["cpu_us_per_firing"] = round(1e6 * cost["cpu_seconds"] / N, 1)
        values = sorted(lateness)
        result = {
            "scheduled": N,
            "sync": config.get("sync", "always"),
            "pending_far_schedules": FAR,
            "spread_s": SPREAD_S,
            "send_and_store_s": round((stored_at - start) / 1000.0, 3),
            "all_stored_before_first_due": all_stored_before_first_due,
            "received": len(values),
            "lateness_ms": {
                "p50": round(percentile(values, 50), 2),
                "p99": round(percentile(values, 99), 2),
                "p999": round(percentile(values, 99.9), 2),
                "max": round(values[-1], 2),
                "min": round(values[0], 2),
                "within_10ms_pct": round(100.0 * sum(1 for v in values if v <= 10.0) / len(values), 3),
            },
            "broker_fire_lateness_ms": broker_side,
            "firing_phase_cost": cost,
            "rss_kib": {"before": rss_before, "all_scheduled": rss_stored, "after_firing": rss_after},
            "rss_bytes_per_scheduled_message": round((rss_stored - rss_before) * 1024.0 / (N + FAR), 1),
        }
        print(json.dumps(result, indent=2))
    finally:
        b.kill()
        b.cleanup()


if __name__ == "__main__":
    main()
