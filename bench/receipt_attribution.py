#!/usr/bin/env python3
"""Where the slow RECEIPTs' time went: tandem-bench --receipt-log samples lined up with a
perf trace (perf record -a -k CLOCK_MONOTONIC, then perf script) of every thread's
sched_switch / sched_wakeup and the journal writer's pwritev / fdatasync.

    bench/receipt_attribution.py RUN_DIR

RUN_DIR as bench/receipt_trace.sh leaves it: trace.txt (perf script -F
comm,tid,cpu,time,event,trace --ns), receipts.txt ("sent_ns received_ns producer"),
tandemd.threads and bench.threads (ps -L -o tid,comm).

For each RECEIPT, sent at s and handled at r by the client:
  before     s -> the start (pwritev) of the first group the writer began after s
  prev_sync  the part of `before` the writer spent in an fdatasync (the group ahead)
  own        that first group's pwritev -> end of its fdatasync (own_sync: the fdatasync)
  missed     end of that group's sync -> end of the last sync before r, when the append
             came too late for the first group (groups_missed: how many)
  after      end of the covering sync -> r: completion posted to the io thread, RECEIPT
             written, the client reading it
  wait_X     time in [s, r] that thread X (io, writer, reader, client) was runnable but not
             running: waiting for a CPU
  frozen     time in [s, r] with no event at all on any CPU for over 1 ms. While the bench
             runs (a SEND every 125 us, a RECEIPT, a delivery and two fdatasyncs per ms)
             such a silence means the whole machine stood still: on this VM both vCPUs are
             stopped together by the host (tools: a SCHED_FIFO 99 thread per CPU sees the
             same wake-ups late on both at once, bench/results/performance.md)
  less_frozen  total minus frozen: what the RECEIPT would have taken without the freezes
All in ms, means over the RECEIPTs in each band of the latency distribution. The attribution
of a RECEIPT to a group is by time, not by id (the trace has no message ids), so `missed`
is an upper bound when the groups are short.
"""
import bisect
import collections
import re
import sys


def read_threads(path):
    out = {}
    for line in open(path).read().split("\n")[1:]:
        if line.strip():
            tid, comm = line.split(None, 1)
            out[int(tid)] = comm.strip()
    return out


def overlap(intervals, a, b):
    """Total overlap of sorted, disjoint (start, end) intervals with [a, b]."""
    i = bisect.bisect_left(intervals, (a - 50_000_000,))
    total = 0
    while i < len(intervals) and intervals[i][0] < b:
        s, e = intervals[i]
        total += max(0, min(e, b) - max(s, a))
        i += 1
    return total


def main(run):
    tandemd, bench = read_threads(run + "/tandemd.threads"), read_threads(run + "/bench.threads")
    io = min(tandemd)  # the main thread runs the io_context
    writer = next(t for t, c in tandemd.items() if c == "journal-writer")
    reader = next(t for t, c in tandemd.items() if c == "journal-reader")
    client = max(bench)  # tandem-bench's io thread (the main thread only waits for it)
    roles = {io: "io", writer: "writer", reader: "reader", client: "client"}

    groups = []  # (pwritev enter, fdatasync enter, fdatasync exit) of the writer
    current = {}
    runnable = collections.defaultdict(list)
    ran = collections.Counter()
    state = {}  # tid -> (R runnable | X running | S sleeping, since)
    silences = []  # (start, end) with no event on any CPU for over 1 ms
    last_event = None
    line_re = re.compile(r"\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)")
    for line in open(run + "/trace.txt"):
        m = line_re.match(line)
        if not m:
            continue
        _, tid, _, t, event, rest = m.groups()
        tid, t = int(tid), int(round(float(t) * 1e9))
        if last_event is not None and t - last_event > 1_000_000:
            silences.append((last_event, t))
        last_event = t if last_event is None else max(last_event, t)
        if tid == writer and event == "syscalls:sys_enter_pwritev":
            current["w0"] = t
        elif tid == writer and event == "syscalls:sys_enter_fdatasync":
            current["f0"] = t
        elif tid == writer and event == "syscalls:sys_exit_fdatasync":
            if "w0" in current and "f0" in current:
                groups.append((current["w0"], current["f0"], t))
            current = {}
        elif event == "sched:sched_wakeup":
            woken = int(re.search(r"pid=(\d+)", rest).group(1))
            if woken in roles and state.get(woken, ("S",))[0] == "S":
                state[woken] = ("R", t)
        elif event == "sched:sched_switch":
            prev = int(re.search(r"prev_pid=(\d+)", rest).group(1))
            nxt = int(re.search(r"next_pid=(\d+)", rest).group(1))
            prev_state = re.search(r"prev_state=(\S+)", rest).group(1)
            if prev in roles:
                st = state.get(prev)
                if st and st[0] == "X":
                    ran[prev] += t - st[1]
                state[prev] = ("R", t) if prev_state.startswith("R") else ("S", t)
            if nxt in roles:
                st = state.get(nxt)
                if st and st[0] == "R":
                    runnable[nxt].append((st[1], t))
                state[nxt] = ("X", t)
    for k in runnable:
        runnable[k].sort()
    if not groups:
        sys.exit("no journal writer groups in the trace")
    syncs = sorted((f0, f1) for _, f0, f1 in groups)
    starts = [g[0] for g in groups]
    ends = [g[2] for g in groups]
    lo, hi = groups[0][0] + 100_000_000, groups[-1][2] - 100_000_000
    rows = []
    sent_times, received_times = [], []
    for line in open(run + "/receipts.txt"):
        s, r = map(int, line.split()[:2])
        sent_times.append(s)
        received_times.append(r)
        if s < lo or r > hi:
            continue
        i = bisect.bisect_left(starts, s)
        j = bisect.bisect_right(ends, r) - 1
        if i >= len(groups) or j < i:
            continue
        w0, f0, f1 = groups[i]
        row = collections.OrderedDict(
            total=r - s, before=w0 - s, prev_sync=overlap(syncs, s, w0), own=f1 - w0, own_sync=f1 - f0,
            missed=groups[j][2] - f1, groups_missed=(j - i) * 1e6, after=r - groups[j][2])
        for tid, name in roles.items():
            row["wait_" + name] = overlap(runnable[tid], s, r)
        row["frozen"] = overlap(silences, s, r)
        row["less_frozen"] = row["total"] - row["frozen"]
        rows.append(row)
    if not rows:
        sys.exit("no RECEIPT falls inside the traced span")
    rows.sort(key=lambda x: x["total"])
    n = len(rows)
    print("%d groups, %d RECEIPTs in the traced span; means in ms (groups_missed: a count)" % (len(groups), n))
    print("%-16s %7s " % ("band", "n") + " ".join("%9s" % k for k in rows[0]))
    for label, a, b in (("all", 0, n), ("below p50", 0, n // 2), ("p90-p99", int(n * .9), int(n * .99)),
                        ("p99 and above", int(n * .99), n), ("p99.9 and above", int(n * .999), n)):
        band = rows[a:b]
        print("%-16s %7d " % (label, len(band)) + " ".join("%9.3f" % (sum(x[k] for x in band) / len(band) / 1e6) for k in rows[0]))
    print("RECEIPT p50 %.3f ms, p99 %.3f ms" % (rows[n // 2]["total"] / 1e6, rows[int(n * .99)]["total"] / 1e6))
    unfrozen = sorted(x["less_frozen"] for x in rows)
    print("the same RECEIPTs less the machine's freezes: p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms" % (
        unfrozen[n // 2] / 1e6, unfrozen[int(n * .99)] / 1e6, unfrozen[int(n * .999)] / 1e6))
    span = groups[-1][2] - groups[0][0]
    # Only while RECEIPTs were in flight: before and after the bench an idle machine is
    # silent for milliseconds without being frozen.
    first_sent, last_received = min(x for x in sent_times), max(x for x in received_times)
    during = [(a, b) for a, b in silences if first_sent < a and b < last_received]
    print("machine frozen (no event on any CPU for over 1 ms) while RECEIPTs were in flight: %d times, %.1f ms in all = %.2f%% of %.1f s, longest %.2f ms" % (
        len(during), sum(b - a for a, b in during) / 1e6, 100 * sum(b - a for a, b in during) / (last_received - first_sent),
        (last_received - first_sent) / 1e9,
        max((b - a for a, b in during), default=0) / 1e6))
    durations = sorted(f1 - f0 for _, f0, f1 in groups)
    print("fdatasync: n %d, p50 %.3f p99 %.3f max %.3f ms; the writer was in one %.1f%% of the time, in one over 2 ms %.1f%%" % (
        len(durations), durations[len(durations) // 2] / 1e6, durations[int(len(durations) * .99)] / 1e6, durations[-1] / 1e6,
        100 * sum(durations) / span, 100 * sum(d for d in durations if d > 2e6) / span))
    for tid, name in roles.items():
        waits = sorted(e - s for s, e in runnable[tid])
        if waits:
            print("%-7s waited for a CPU %6d times: p50 %.3f p99 %.3f max %.3f ms, %5.0f ms in all; ran %5.0f ms" % (
                name, len(waits), waits[len(waits) // 2] / 1e6, waits[int(len(waits) * .99)] / 1e6, waits[-1] / 1e6,
                sum(waits) / 1e6, ran[tid] / 1e6))
    inside = sorted((f1 - f0, overlap(runnable[writer], f0, f1)) for _, f0, f1 in groups)
    k = len(inside)
    for label, a, b in (("fdatasyncs below p50", 0, k // 2), ("fdatasyncs p90-p99", int(k * .9), int(k * .99)),
                        ("fdatasyncs p99 and above", int(k * .99), k)):
        band = inside[a:b]
        print("%-25s mean %.3f ms, of it the writer waiting for a CPU %.3f ms" % (
            label, sum(d for d, _ in band) / len(band) / 1e6, sum(w for _, w in band) / len(band) / 1e6))


if __name__ == "__main__":
    main(sys.argv[1])
