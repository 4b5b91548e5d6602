#!/usr/bin/python3
"""stomp.py producers against a broker, and against a sink that does nothing (issue 19).

    bench/stomppy_bench.py HOST:PORT [--producers N] [--seconds S] [--warmup W] [--receipt-every K] [--json F]
    bench/stomppy_bench.py --sink [--producers N] ...

Each producer is its own process (stomp.py holds the GIL while it encodes; threads would
measure Python, not the broker) with one STOMP 1.2 connection. It sends persistent 1 KiB
messages to /queue/stomppy-bench-<i> and asks a RECEIPT for every K-th one (K = 1: every
SEND waits for its RECEIPT before the next, as a careful application does), then waits for
that RECEIPT before going on. The figure is messages sent per second over S seconds, after
a warm-up of W seconds (default 1) on the same connections.

--sink starts a STOMP server in this process that parses nothing but frame boundaries and
the receipt header and answers at once: the most a stomp.py client can do on this machine
(the "client ceiling"). It runs on its own core-sized share like a broker would: one asyncio
loop, no disk. Against a sink the producers measure themselves; against a broker, the
broker. The issue's goal is broker >= 80 % of the sink with 16 producers.

Prints (or writes to F) one JSON object whose "send" and "client" parts have tandem-bench's
field names, so bench/summarize.py reads both tools alike: {"tool": "stomp.py", "target",
"producers", "receipt_every", "per_producer", "send": {"messages", "seconds", "msgs_per_s",
"mib_per_s"}, "client": {"wall_s", "cpu_user_s", "cpu_system_s"}} (client CPU: the producer
processes, not the sink). bench/compare.sh runs it as cases py_p1 and py_p16.
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import signal
import socket
import sys
import threading
import time

import stomp

BODY = "x" * 1024


def _sink_serve(port_pipe):
    """A do-nothing STOMP 1.2 server: CONNECTED to CONNECT, RECEIPT to any frame with a
    receipt header, nothing else. Frames end at NUL (bodies here carry content-length, but the
    1 KiB body is 'x's, so the first NUL after the headers ends the frame)."""

    async def handle(reader, writer):
        buf = b""
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            buf += data
            out = []
            while True:
                end = buf.find(b"\0")
                if end < 0:
                    break
                frame, buf = buf[:end], buf[end + 1:]
                frame = frame.lstrip(b"\r\n")
                if frame.startswith(b"CONNECT") or frame.startswith(b"STOMP"):
                    out.append(b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0")
                    continue
                head = frame.split(b"\n\n", 1)[0]
                i = head.find(b"\nreceipt:")
                if i >= 0:
                    rid = head[i + 9:].split(b"\n", 1)[0]
                    out.append(b"RECEIPT\nreceipt-id:" + rid + b"\n\n\0")
            if out:
                writer.write(b"".join(out))
                await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_pipe.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class _Receipts(stomp.ConnectionListener):
    def __init__(self):
        self.cond = threading.Condition()
        self.seen = set()
        self.error = None

    def on_receipt(self, frame):
        with self.cond:
            self.seen.add(frame.headers.get("receipt-id"))
            self.cond.notify_all()

    def on_error(self, frame):
        with self.cond:
            self.error = frame.body or frame.headers.get("message", "ERROR")
            self.cond.notify_all()

    def wait(self, rid, timeout=30.0):
        with self.cond:
            ok = self.cond.wait_for(lambda: rid in self.seen or self.error, timeout)
            if self.error:
                raise RuntimeError(f"broker ERROR: {self.error}")
            if not ok:
                raise RuntimeError(f"no RECEIPT {rid} in {timeout} s")
            self.seen.discard(rid)


def _producer(index, host, port, receipt_every, start_at, stop_at, out):
    conn = stomp.Connection12([(host, port)], heartbeats=(0, 0), auto_content_length=True)
    listener = _Receipts()
    conn.set_listener("r", listener)
    conn.connect(wait=True)
    dest = f"/queue/stomppy-bench-{index}"
    counted = 0
    seq = 0
    while True:
        now = time.monotonic()
        if now >= stop_at:
            break
        seq += 1
        headers = {"persistent": "true"}
        wants_receipt = seq % receipt_every == 0
        if wants_receipt:
            headers["receipt"] = f"p{index}-{seq}"
        conn.send(dest, BODY, headers=headers)
        if wants_receipt:
            listener.wait(f"p{index}-{seq}")
        if now >= start_at:
            counted += 1
    conn.disconnect()
    out.put(counted)


def run(host, port, producers, seconds, warmup, receipt_every):
    start_at = time.monotonic() + warmup + 0.05 * producers  # connect + warm-up
    stop_at = start_at + seconds
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_producer, args=(i, host, port, receipt_every, start_at, stop_at, out))
             for i in range(producers)]
    for p in procs:
        p.start()
    counts = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a producer failed (exit {p.exitcode})")
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("target", nargs="?", help="HOST:PORT of a STOMP broker (omit with --sink)")
    ap.add_argument("--sink", action="store_true", help="measure against a do-nothing sink instead")
    ap.add_argument("--producers", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--receipt-every", type=int, default=1)
    ap.add_argument("--json", help="write the result here instead of stdout")
    a = ap.parse_args()
    if a.sink == bool(a.target):
        ap.error("give HOST:PORT or --sink, not both")
    if a.receipt_every < 1:
        ap.error("--receipt-every must be at least 1")
    sink = None
    if a.sink:
        parent, child = multiprocessing.Pipe()
        sink = multiprocessing.Process(target=_sink_serve, args=(child,), daemon=True)
        sink.start()
        host, port = "127.0.0.1", parent.recv()
    else:
        host, _, p = a.target.rpartition(":")
        host, port = host or "127.0.0.1", int(p)
    wall0, ru0 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        counts = run(host, port, a.producers, a.seconds, a.warmup, a.receipt_every)
        wall, ru = time.monotonic() - wall0, resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        if sink:
            os.kill(sink.pid, signal.SIGTERM)
            sink.join(5)
    total = sum(counts)
    result = {"tool": "stomp.py", "target": "sink" if a.sink else a.target, "producers": a.producers,
              "receipt_every": a.receipt_every, "per_producer": counts,
              "send": {"messages": total, "seconds": a.seconds, "msgs_per_s": round(total / a.seconds, 1),
                       "mib_per_s": round(total * len(BODY) / a.seconds / 1048576, 3)},
              "client": {"wall_s": round(wall, 3), "cpu_user_s": round(ru.ru_utime - ru0.ru_utime, 3),
                         "cpu_system_s": round(ru.ru_stime - ru0.ru_stime, 3)}}
    text = json.dumps(result)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    else:
        print(text)

if __name__ == "__main__":
    main()
