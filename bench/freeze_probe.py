#!/usr/bin/env python3
"""Does the machine itself stand still? One SCHED_FIFO 99 process pinned on each CPU sleeps
500 us at a time and notes every wake-up that came more than 1 ms late. Nothing in the guest
can hold back a FIFO 99 thread for milliseconds on every CPU at once, so late wake-ups seen
on all CPUs at the same instant are the host stopping the VM (its vCPUs descheduled or
throttled), which no broker setting can cut (bench/results/performance.md, "RECEIPT p99 at
half the peak: where the tail is").

    bench/freeze_probe.py [SECONDS] [LATE_MS]      (defaults: 10 1; run as root)

Prints, per CPU, how often and how long it was late, and the freezes seen on all CPUs
together (late wake-ups that overlap on every CPU), with their spacing."""
import os
import sys
import time


def probe(cpu, seconds, late_ns, out):
    os.sched_setaffinity(0, {cpu})
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(99))
    period_ns = 500_000
    end = time.monotonic_ns() + int(seconds * 1e9)
    late = []
    while True:
        t0 = time.monotonic_ns()
        if t0 > end:
            break
        time.sleep(period_ns / 1e9)
        over = time.monotonic_ns() - t0 - period_ns
        if over > late_ns:
            late.append((t0, over))
    with open(out, "w") as f:
        for t0, over in late:
            f.write("%d %d\n" % (t0, over))


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    late_ns = int(float(sys.argv[2]) * 1e6) if len(sys.argv) > 2 else 1_000_000
    cpus = sorted(os.sched_getaffinity(0))
    files, pids = [], []
    for cpu in cpus:
        out = "/tmp/freeze_probe.%d.%d" % (os.getpid(), cpu)
        files.append(out)
        pid = os.fork()
        if pid == 0:
            try:
                probe(cpu, seconds, late_ns, out)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    per_cpu = []
    for cpu, out in zip(cpus, files):
        rows = [tuple(map(int, line.split())) for line in open(out)]
        os.unlink(out)
        per_cpu.append(rows)
        total = sum(o for _, o in rows)
        print("cpu %d: %d wake-ups over %.1f ms late, %.1f ms late in all (%.2f%% of %.0f s), longest %.2f ms" % (
            cpu, len(rows), late_ns / 1e6, total / 1e6, 100 * total / (seconds * 1e9), seconds,
            max((o for _, o in rows), default=0) / 1e6))
    # A freeze of the whole machine: an interval during which every CPU was late.
    intervals = [[(t0, t0 + 500_000 + o) for t0, o in rows] for rows in per_cpu]
    common = intervals[0]
    for other in intervals[1:]:
        merged = []
        for a0, a1 in common:
            for b0, b1 in other:
                lo, hi = max(a0, b0), min(a1, b1)
                if hi - lo > late_ns // 2:
                    merged.append((lo, hi))
        common = merged
    total = sum(b - a for a, b in common)
    print("all %d CPUs late together: %d times, %.1f ms in all (%.2f%% of the time), longest %.2f ms" % (
        len(cpus), len(common), total / 1e6, 100 * total / (seconds * 1e9), max((b - a for a, b in common), default=0) / 1e6))
    if len(common) > 1:
        gaps = sorted((common[i + 1][0] - common[i][0]) / 1e6 for i in range(len(common) - 1))
        print("spacing of those freezes: p10 %.1f ms, p50 %.1f ms, p90 %.1f ms" % (
            gaps[len(gaps) // 10], gaps[len(gaps) // 2], gaps[len(gaps) * 9 // 10]))


if __name__ == "__main__":
    main()
