"""17 admin listing (issue 17, finding 2: "admin views are built on the io thread"):
GET /api/connections is paged like /api/destinations and does not hold up the clients.

- connections_are_paged: {"total", "matched", "offset", "limit", "items"}, in session
  order, with offset/limit/filter/sort as /api/destinations takes them.

- scraping_connections_does_not_stall_a_producer: CROWD idle connections (raw STOMP
  CONNECT + one SUBSCRIBE each), then a well-behaved producer times SEND->RECEIPT while
  /api/connections is scraped in a loop, the way the console and a monitoring job do.
  Before the fix every scrape built one JSON document of every session on the io thread
  (with 4,000 sessions: about a megabyte of text), and each SEND that arrived meanwhile
  waited for it. The figures are printed (bench/results/io_thread.md quotes them).

Usage: 17_admin_listing.py TANDEMD [CROWD]
"""
import json
import os
import selectors
import socket
import sys
import time
import urllib.request

from tandem_test import Broker, Raw, latency_figures, metric, receipt_latencies_while, run, scrape_admin, wait_for

CROWD = int(sys.argv[2]) if len(sys.argv) > 2 else int(os.environ.get("TANDEM_ADMIN_CROWD", "4000"))
SCRAPE_S = float(os.environ.get("TANDEM_ADMIN_SCRAPE_S", "8"))
# A scrape must not stop the producer for anything near what building the whole listing
# took: 1.0-2.4 s per scrape at 4,000 sessions on this shared 2-core VM (load average 17),
# where the producer alone, with no scrape, already sees a worst of 0.2 s (the scheduler).
# Paged: 0.46-0.56 s worst in the same conditions. On a quiet machine both stay under it
# (before 124 ms, after 37 ms), so the size check below is what pins the paging; this bound
# catches a gross stall. The figures are printed either way.
WORST_RECEIPT_S = 1.0


def get_json(b, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}{path}", timeout=30) as r:
        return json.loads(r.read())


class Crowd:
    """`n` STOMP connections on raw non-blocking sockets: CONNECT (no heart-beats), wait
    for CONNECTED, SUBSCRIBE to one of a few topics; then they sit idle. Opened in batches
    so the listen backlog never overflows."""

    def __init__(self, b, n, batch=250, client_id="crowd"):
        self.socks = []
        sel = selectors.DefaultSelector()
        for start in range(0, n, batch):
            pending = {}
            for i in range(start, min(n, start + batch)):
                s = socket.create_connection(("127.0.0.1", b.port), timeout=20)
                s.sendall(f"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n"
                          f"client-id:{client_id}-{i}\n\n\0".encode())
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, i)
                pending[i] = (s, b"")
                self.socks.append(s)
            deadline = time.monotonic() + 30
            while pending:
                assert time.monotonic() < deadline, f"{len(pending)} connections got no CONNECTED"
                for key, _ in sel.select(timeout=1):
                    s, buf = pending[key.data]
                    data = s.recv(4096)
                    assert data, "the broker closed a crowd connection"
                    buf += data
                    if b"\0" not in buf:
                        pending[key.data] = (s, buf)
                        continue
                    assert buf.startswith(b"CONNECTED"), buf[:200]
                    sel.unregister(s)
                    del pending[key.data]
                    s.setblocking(True)
                    s.sendall(f"SUBSCRIBE\nid:s\ndestination:/topic/crowd.{key.data % 10}\n\n\0".encode())
        sel.close()

    def close(self):
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


# The console's poll and a monitoring job: the default page, a full page sorted by a figure
# (every session is looked at), and a filtered page.
SCRAPE_PATHS = ["/api/connections", "/api/connections?limit=1000&sort=frames_in",
                "/api/connections?limit=100&filter=crowd-39"]


def connections_are_paged(brokers):
    b = Broker(config={"admin_open_reads": True, "allow_anonymous": True})
    brokers.append(b)
    b.start()
    crowd = Crowd(b, 30, client_id="paged")
    try:
        wait_for(lambda: get_json(b, "/api/connections?limit=1")["total"] == 30, 10, "30 sessions listed")
        first = get_json(b, "/api/connections")  # no query: the first page, default limit
        assert set(first) >= {"total", "matched", "offset", "limit", "items"}, first.keys()
        assert first["total"] == 30 and first["matched"] == 30 and first["offset"] == 0, first
        ids = [c["session"] for c in first["items"]]
        assert ids == sorted(ids) and len(ids) == 30, ids
        page = get_json(b, "/api/connections?offset=10&limit=5")
        assert [c["session"] for c in page["items"]] == ids[10:15], page
        assert page["limit"] == 5 and page["offset"] == 10, page
        # filter: a case-insensitive substring of remote, login or client_id.
        one = get_json(b, "/api/connections?limit=50&filter=PAGED-17")
        assert one["matched"] == 1 and [c["client_id"] for c in one["items"]] == ["paged-17"], one
        # sort by a figure, largest first: one session sends more frames than the others.
        busy = Raw(b)
        busy.connect(extra={"client-id": "busy"})
        for i in range(5):
            busy.frame("SEND", {"destination": "/queue/x", "receipt": f"r{i}"}, "x")
            assert busy.read_frame()[0] == "RECEIPT"
        top = get_json(b, "/api/connections?limit=1&sort=frames_in")
        assert top["items"][0]["client_id"] == "busy" and top["total"] == 31, top
        # A limit past the cap is clamped; a page past the end is empty, with the totals.
        assert get_json(b, "/api/connections?limit=100000")["limit"] == 1000
        end = get_json(b, "/api/connections?offset=500&limit=10")
        assert end["items"] == [] and end["total"] == 31, end
        busy.close()
    finally:
        crowd.close()


def scraping_connections_does_not_stall_a_producer(brokers):
    b = Broker(config={"admin_open_reads": True, "allow_anonymous": True, "max_connections": CROWD + 100})
    brokers.append(b)
    b.start()
    t0 = time.monotonic()
    crowd = Crowd(b, CROWD)
    print(f"{CROWD} connections open in {time.monotonic() - t0:.1f} s", flush=True)
    try:
        # Every crowd connection got its CONNECTED: the sessions are there to be listed.
        assert metric(b, "tandem_connections") >= CROWD
        latencies, scrapes = receipt_latencies_while(b, scrape_admin, (b.admin_port, SCRAPE_PATHS, 60), SCRAPE_S,
                                                     results_timeout=120)
        worst, figures = latency_figures(latencies)
        scrape_times = sorted(s for s, _ in scrapes)
        print(f"{CROWD} sessions, {len(scrapes)} scrapes of /api/connections in {SCRAPE_S:.0f} s "
              f"(answer {scrape_times[len(scrape_times) // 2] * 1000:.0f} ms median, "
              f"{scrape_times[-1] * 1000:.0f} ms worst, up to {max(s for _, s in scrapes)} bytes); {figures}", flush=True)
        assert len(scrapes) >= 3, "too few scrapes to show anything"
        # Bounded work per scrape: at most a page of 1,000 rows (about 0.7 MB here), never the
        # whole listing (2.6 MB at 4,000 sessions before the fix).
        largest = max(size for _, size in scrapes)
        assert largest < 1_000_000, f"a scrape answered {largest} bytes: the whole listing, not a page"
        assert worst < WORST_RECEIPT_S, f"a SEND waited {worst * 1000:.0f} ms for its RECEIPT during the scrapes"
    finally:
        crowd.close()


if __name__ == "__main__":
    run([connections_are_paged, scraping_connections_does_not_stall_a_producer])
