#!/usr/bin/python3
"""The floor under any broker's RECEIPT latency on a file system: an ideal group commit.

    bench/receipt_floor.py DIR [--producers 16] [--rate MSG_S] [--seconds 8] [--size 1024]
                               [--cpu-load CORES]

Models what a broker with no CPU, network or parsing cost would do for --producers clients
that each keep one persistent SEND with a RECEIPT outstanding (tandem-bench --window 1),
paced to --rate messages a second over all of them as tandem-bench --rate paces them
(producer k is due at k/P * interval + i * interval; a producer whose RECEIPT is late sends
its next message the moment the RECEIPT comes). One loop appends every message that has
been sent by now to a preallocated file (fallocate, as a journal segment is) in one write,
fdatasyncs, and "receipts" them all: the messages sent while an fdatasync runs wait for the
next one, which is group commit. A message's latency is from the moment its producer sent
it to the end of the fdatasync that made it durable. Without --rate, producers send as fast
as their RECEIPTs come back (the floor's peak rate).

--cpu-load CORES keeps that many cores busy beside it (one process per started core, each
busy for that share of every millisecond), standing in for the CPU a real broker and its
clients use: on a VM whose disk is emulated by host threads, a guest that keeps its CPUs
busy can slow its own fdatasyncs.

Prints one JSON object: the rate reached, latency p50/p99/p99.9/max, the fdatasyncs (count,
records per group, how many took over 2 ms and over 5 ms), and where the slow ones fell in time: the share
of gaps between two slow fdatasyncs that are within 10 ms of a multiple of 100 ms (on this
project's Firecracker VM the block device stalls 5-9 ms on some 100 ms ticks, whatever the
load; a disk whose slow syncs come at random gives a share near 0.2).
"""
import argparse
import json
import os
import signal
import sys
import time


def percentile(sorted_values, q):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def on_100ms_ticks(slow_starts):
    gaps = [b - a for a, b in zip(slow_starts, slow_starts[1:])]
    if not gaps:
        return None
    near = sum(1 for g in gaps if min(g % 0.1, 0.1 - g % 0.1) <= 0.010)
    return near / len(gaps)


def burn(share):
    """Busy for `share` of every millisecond, forever (a child process)."""
    while True:
        start = time.monotonic()
        while time.monotonic() - start < share * 0.001:
            pass
        time.sleep(max(0.0, (1 - share) * 0.001))


def start_cpu_load(cores):
    children = []
    whole, part = int(cores), cores - int(cores)
    for share in [1.0] * whole + ([part] if part > 0 else []):
        pid = os.fork()
        if pid == 0:
            try:
                burn(share)
            finally:
                os._exit(0)
        children.append(pid)
    return children


def run(directory, producers, rate, seconds, size):
    path = os.path.join(directory, "receipt-floor.%d" % os.getpid())
    file_bytes = 256 << 20
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.posix_fallocate(fd, 0, file_bytes)
        os.fsync(fd)
        interval = producers / rate if rate else 0.0
        start = time.monotonic() + 0.05
        due = [start + interval * k / producers for k in range(producers)]  # next send, if paced
        sent_index = [0] * producers
        ready = list(due)  # when each producer sends its next message
        end = start + seconds
        latencies, syncs, slow = [], [], []
        offset, messages = 0, 0
        payload = b"m" * size
        while True:
            now = time.monotonic()
            if now >= end:
                break
            group = [k for k in range(producers) if ready[k] <= now]
            if not group:
                wake = min(ready)
                if wake - now > 0.0003:
                    time.sleep(wake - now - 0.0002)
                continue
            data = payload * len(group)
            if offset + len(data) > file_bytes:
                offset = 0
            os.pwrite(fd, data, offset)
            offset += len(data)
            t0 = time.monotonic()
            os.fdatasync(fd)
            done = time.monotonic()
            syncs.append(done - t0)
            if done - t0 > 0.002:
                slow.append(t0)
            for k in group:
                latencies.append(done - ready[k])
                sent_index[k] += 1
                next_due = due[k] + interval * sent_index[k] if rate else done
                ready[k] = max(next_due, done)
            messages += len(group)
        elapsed = time.monotonic() - start
    finally:
        os.close(fd)
        os.unlink(path)
    latencies.sort()
    syncs.sort()
    ms = lambda s: round(s * 1000, 3)
    return {
        "producers": producers,
        "rate_asked": rate,
        "msgs_per_s": round(messages / elapsed),
        "latency_ms": {"p50": ms(percentile(latencies, 0.5)), "p99": ms(percentile(latencies, 0.99)),
                       "p99_9": ms(percentile(latencies, 0.999)), "max": ms(latencies[-1] if latencies else 0)},
        "fdatasyncs": len(syncs),
        "records_per_group": round(messages / max(1, len(syncs)), 1),
        "fdatasync_ms": {"p50": ms(percentile(syncs, 0.5)), "p99": ms(percentile(syncs, 0.99))},
        "fdatasyncs_over_2ms": len(slow),
        "fdatasyncs_over_5ms": sum(1 for d in syncs if d > 0.005),
        "slow_gaps_on_100ms_ticks": on_100ms_ticks(slow),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", help="a directory on the file system to measure (the store's)")
    p.add_argument("--producers", type=int, default=16)
    p.add_argument("--rate", type=float, default=0, help="messages per second over all producers (0: as fast as receipts come)")
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--size", type=int, default=1024, help="bytes appended per message")
    p.add_argument("--cpu-load", type=float, default=0, help="cores kept busy beside it (default 0)")
    a = p.parse_args()
    if a.producers < 1 or a.seconds <= 0 or a.size < 1 or a.rate < 0 or a.cpu_load < 0:
        sys.exit("receipt_floor.py: --producers, --seconds and --size must be positive, --rate and --cpu-load not negative")
    children = start_cpu_load(a.cpu_load)
    try:
        result = run(a.dir, a.producers, a.rate, a.seconds, a.size)
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    result["cpu_load_cores"] = a.cpu_load
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
