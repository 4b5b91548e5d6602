#!/usr/bin/python3
"""How long an admin scrape holds the io thread with many destinations (issue 17, item 3 of
the last resource bounds: /metrics, /api/destinations and the Jolokia read were built whole on
the io thread; now each is built in slices, bench/results/io_thread.md).

    /usr/bin/python3 bench/admin_scrape_stall.py build/broker/tandemd [DESTINATIONS]

One raw-socket producer makes DESTINATIONS queues (default 50,000) with one non-persistent
message each (destination_gc_ms 0, so they stay). Then, for each endpoint in turn, a thread
scrapes it back to back for 8 s while another client sends a SEND with a receipt every 10 ms
and times each RECEIPT. Prints, per endpoint: the scrapes' duration and size, and the other
client's slowest SEND->RECEIPT. Run `uptime` beside it: the figures scale with the load.
"""
import os
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from tandem_test import Broker, Raw, client  # noqa: E402  (reads the tandemd path from argv[1])

JOLOKIA = "/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=*"
ENDPOINTS = ["/metrics", "/api/destinations?limit=100", "/api/destinations?limit=100&sort=pending",
             "/api/destinations", JOLOKIA + ",destinationType=Queue,destinationName=d1/QueueSize", JOLOKIA]
# A subset by name: ADMIN_SCRAPE_ONLY=destinations,jolokia (substrings of the endpoints).
if os.environ.get("ADMIN_SCRAPE_ONLY"):
    ENDPOINTS = [e for e in ENDPOINTS if any(w in e for w in os.environ["ADMIN_SCRAPE_ONLY"].split(","))]


def make_destinations(b, n):
    r = Raw(b)
    r.connect(extra={"heart-beat": "0,0"})
    t0 = time.monotonic()
    batch = b"".join(f"SEND\ndestination:/queue/d{i}\n\nx\0".encode() for i in range(n))
    r.send(batch + b"SEND\ndestination:/queue/d0\nreceipt:made\n\nx\0")
    f = r.read_frame(timeout=600)
    assert f[0] == "RECEIPT", f
    print(f"{n} destinations made in {time.monotonic() - t0:.1f} s", flush=True)
    return r


def measure(b, endpoint, seconds=8.0):
    stop = threading.Event()
    scrapes = []

    def scrape():
        while not stop.is_set():
            t0 = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}{endpoint}", timeout=300) as resp:
                size = len(resp.read())
            scrapes.append((time.monotonic() - t0, size))

    p = client(b)
    th = threading.Thread(target=scrape)
    th.start()
    worst, sends = 0.0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end or not scrapes:
        rid = f"r{sends}"
        sends += 1
        t0 = time.monotonic()
        p.send("/queue/good", "ping", headers={"receipt": rid})
        p.collector.wait_receipt(rid, timeout=300)
        worst = max(worst, time.monotonic() - t0)
        time.sleep(0.01)
    stop.set()
    th.join()
    p.disconnect()
    took = [s for s, _ in scrapes]
    label = endpoint.replace(JOLOKIA, "jolokia broker")
    print(f"{label[-60:]}: {len(scrapes)} scrapes of {scrapes[0][1] / 1e6:.2f} MB, "
          f"{min(took):.2f}-{max(took):.2f} s each; other client's slowest SEND->RECEIPT {worst * 1000:.0f} ms "
          f"over {sends} sends", flush=True)


def main():
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50000
    b = Broker(config={"allow_anonymous": True, "admin_open_reads": True, "max_destinations": max(n + 10, 10000),
                       "destination_gc_ms": 0, "idle_timeout_ms": 0})
    b.start()
    try:
        producer = make_destinations(b, n)
        for endpoint in ENDPOINTS:
            measure(b, endpoint)
        producer.close()
    finally:
        b.stop()
        b.cleanup()


if __name__ == "__main__":
    main()
