"""No blocking file I/O on the io thread (issue 17, finding 8), with a real tandemd whose
store is on a tandem-faultfs mount (tools/faultfs) where every read of a segment file takes
5 s, as on a hung NFS or CephFS mount.

- slow_segment_reads: persistent messages are sent, the broker restarts (its body cache is
  empty), then segment reads are delayed 5 s and a consumer subscribes: its first delivery
  waits for the read. Meanwhile GET /health and another client's persistent SEND->RECEIPT
  must answer well within the delay (before the fix the read ran on the io thread and both
  waited the full 5 s). Then the delay is lifted and the consumer gets every message, in
  order.

- slow_expiry_read: a persistent message that expires after the restart (its body is on
  disk only) is moved to its DLQ (expired_to_dlq) while segment reads hang: the expiry scan
  reads the body for the dead-letter copy off the io thread, so /health and another
  client's SEND->RECEIPT answer meanwhile; once the mount recovers the message is on
  /queue/DLQ.exp and no longer on its queue.

The reads moved off the io thread after those two, each with body_cache_bytes 0 so every
body is read from its segment (before the fix each ran on the io thread and /health and
the other client's RECEIPT waited the full 5 s):

- slow_dead_letter_read: a NACKed message's body is read for its dead-letter copy while
  segment reads hang; afterwards it is on /queue/DLQ.dl only.

- slow_browse_read: a queue browser (SUBSCRIBE browser:true) whose bodies are read while
  segment reads hang; afterwards it gets every message in queue order, then browser:end.

- slow_scheduled_read: a scheduled message fires while segment reads hang (its entry is
  read off the io thread); afterwards its consumer gets it, once.

The admin port's reads of bodies and schedule entries (issue 17: "admin listings ... built
off the io thread"), with body_cache_bytes 0 and segment reads hanging 5 s:

- slow_admin_browse_read: GET /api/destinations/<q>/browse runs while the reads hang; /health
  and another client's SEND->RECEIPT answer meanwhile (before, the admin browse read each
  body inline: /health waited behind the 5 s reads); once the mount recovers the page holds
  every message in order.

- slow_admin_scheduled_read: GET /api/scheduled likewise; its page names the entry's
  destination and delay, read from the entry's body.

Usage: 19_io_thread.py TANDEMD TANDEM_FAULTFS
"""
import base64
import contextlib
import json
import os
import sys
import threading
import time
import urllib.request

from tandem_test import Faultfs, Raw, SharedBroker, run, skip, wait_for

FAULTFS = sys.argv[2] if len(sys.argv) > 2 else "tandem-faultfs"
READ_DELAY_MS = 5000
# What "still answering" means here: far below the read's 5 s, with room for a loaded
# 2-core CI machine (the figures are printed; docs/operations.md quotes them).
ANSWER_WITHIN_S = 1.0


def timed_health(broker):
    t0 = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.admin_port}/health", timeout=10) as r:
        assert r.status == 200, r.status
    return time.monotonic() - t0


def timed_send(broker, dest, login=None):
    r = Raw(broker)
    r.connect(extra={"login": login, "passcode": f"{login}-secret"} if login else None)
    t0 = time.monotonic()
    r.frame("SEND", {"destination": dest, "persistent": "true", "receipt": "fast"}, "x")
    f = r.read_frame(timeout=10)
    took = time.monotonic() - t0
    assert f and f[0] == "RECEIPT" and f[1].get("receipt-id") == "fast", f
    r.close()
    return took


def slow_segment_reads(brokers):
    if not os.path.exists(FAULTFS):
        skip(f"no tandem-faultfs at {FAULTFS}")
    ffs = Faultfs(FAULTFS)
    broker = None
    try:
        broker = SharedBroker(os.path.join(ffs.mount, "store"), "b0", create=True)
        brokers.append(broker)
        broker.start()
        n = 20
        send_receipted(broker, "/queue/cold", [f"body {i}" for i in range(n)])
        broker.stop()
        broker.start()  # a cold body cache: the consumer's first delivery reads its segment

        hang_segment_reads(ffs)
        consumer = Raw(broker)
        consumer.connect()
        consumer.frame("SUBSCRIBE", {"destination": "/queue/cold", "id": "s", "ack": "auto"})
        check_answers_while_read_hangs(broker, ffs, "a consumer")

        # The mount recovers: the read under way ends after its 5 s, the rest (the job reads
        # each message with its own pread) run at once, and every message arrives in order.
        ffs.ctl("clear")
        bodies = []
        while len(bodies) < n:
            f = consumer.read_frame(timeout=30)
            assert f and f[0] == "MESSAGE", f
            bodies.append(f[2].decode() if isinstance(f[2], bytes) else f[2])
        assert bodies == [f"body {i}" for i in range(n)], bodies
        consumer.close()
        broker.stop()
    finally:
        if broker:
            broker.kill()  # before the unmount: a store on a vanished mount cannot close
        ffs.close()


def check_answers_while_read_hangs(broker, ffs, what, login=None):
    """Waits for a segment read to hang, then times /health and a SEND->RECEIPT (as `login`,
    whose password is "<login>-secret", when the broker has users)."""
    wait_for(lambda: ffs.status()["injected"] >= 1, 10, f"{what}'s segment read to start")
    t_read = time.monotonic()
    health_s = timed_health(broker)
    send_s = timed_send(broker, "/queue/other", login)
    still_blocked = time.monotonic() - t_read < READ_DELAY_MS / 1000.0
    print(f"while {what}'s segment read hangs {READ_DELAY_MS} ms: /health {health_s * 1000:.1f} ms, "
          f"SEND->RECEIPT {send_s * 1000:.1f} ms", flush=True)
    assert still_blocked, "the checks took longer than the read's delay: nothing was shown"
    assert health_s < ANSWER_WITHIN_S, f"/health took {health_s:.3f} s while a read hung"
    assert send_s < ANSWER_WITHIN_S, f"SEND->RECEIPT took {send_s:.3f} s while a read hung"


def slow_expiry_read(brokers):
    if not os.path.exists(FAULTFS):
        skip(f"no tandem-faultfs at {FAULTFS}")
    ffs = Faultfs(FAULTFS)
    broker = None
    expires_in_s = 4.0  # long enough to outlast the restart, so it expires with a cold cache
    try:
        broker = SharedBroker(os.path.join(ffs.mount, "store"), "b0", create=True,
                              config={"expired_to_dlq": True, "dead_letter_strategy": "individual",
                                      "admin_open_reads": True})
        brokers.append(broker)
        broker.start()
        p = Raw(broker)
        p.connect()
        expires_at = time.time() + expires_in_s
        p.frame("SEND", {"destination": "/queue/exp", "persistent": "true", "receipt": "r",
                         "expires": str(int(expires_at * 1000))}, "stale")
        f = p.read_frame()
        assert f and f[0] == "RECEIPT", f
        p.close()
        broker.stop()
        broker.start()  # a cold body cache: the expiry must read the body from its segment
        assert time.time() < expires_at - 0.5, "the restart outlasted the message's expiry: nothing shown"

        hang_segment_reads(ffs)
        check_answers_while_read_hangs(broker, ffs, "an expiry")

        ffs.ctl("clear")
        dlq = Raw(broker)
        dlq.connect()
        dlq.frame("SUBSCRIBE", {"destination": "/queue/DLQ.exp", "id": "d", "ack": "auto"})
        f = dlq.read_frame(timeout=30)
        assert f and f[0] == "MESSAGE", f
        body = f[2].decode() if isinstance(f[2], bytes) else f[2]
        assert body == "stale" and f[1].get("dlqDeliveryFailureCause") == "expired", f
        dlq.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{broker.admin_port}/api/destinations", timeout=10) as r:
            rows = {d["name"]: d for d in json.loads(r.read())}
        assert rows["/queue/exp"]["pending"] == 0 and rows["/queue/exp"]["expired"] == 1, rows["/queue/exp"]
        broker.stop()
    finally:
        if broker:
            broker.kill()  # before the unmount: a store on a vanished mount cannot close
        ffs.close()


@contextlib.contextmanager
def cold_broker_on_faultfs(brokers, config):
    """A master on a tandem-faultfs mount that keeps no body in memory: every body it needs
    is read from its segment. Yields (broker, faultfs)."""
    if not os.path.exists(FAULTFS):
        skip(f"no tandem-faultfs at {FAULTFS}")
    ffs = Faultfs(FAULTFS)
    broker = None
    try:
        broker = SharedBroker(os.path.join(ffs.mount, "store"), "b0", create=True,
                              config={"body_cache_bytes": 0, "admin_open_reads": True, **config})
        brokers.append(broker)
        broker.start()
        yield broker, ffs
        broker.stop()
    finally:
        if broker:
            broker.kill()  # before the unmount: a store on a vanished mount cannot close
        ffs.close()


def hang_segment_reads(ffs):
    ffs.ctl("delay", "read", str(READ_DELAY_MS), "count=0", "path=store/journal/*.seg")


def body_of(f):
    return f[2].decode() if isinstance(f[2], bytes) else f[2]


def send_receipted(broker, dest, bodies, headers=None, login=None):
    p = Raw(broker)
    p.connect(extra={"login": login, "passcode": f"{login}-secret"} if login else None)
    for i, body in enumerate(bodies):
        p.frame("SEND", {"destination": dest, "persistent": "true", "receipt": f"r{i}", **(headers or {})}, body)
    for _ in bodies:
        f = p.read_frame()
        assert f and f[0] == "RECEIPT", f
    p.close()


def slow_dead_letter_read(brokers):
    with cold_broker_on_faultfs(brokers, {"dead_letter_strategy": "individual"}) as (broker, ffs):
        send_receipted(broker, "/queue/dl", ["poison"])
        consumer = Raw(broker)
        consumer.connect()
        consumer.frame("SUBSCRIBE", {"destination": "/queue/dl", "id": "s", "ack": "client-individual"})
        f = consumer.read_frame(timeout=30)
        assert f and f[0] == "MESSAGE", f

        hang_segment_reads(ffs)
        consumer.frame("NACK", {"id": f[1]["ack"], "receipt": "n"})
        check_answers_while_read_hangs(broker, ffs, "a dead letter")

        ffs.ctl("clear")
        r = consumer.read_frame(timeout=30)
        assert r and r[0] == "RECEIPT" and r[1].get("receipt-id") == "n", r
        consumer.close()
        dlq = Raw(broker)
        dlq.connect()
        dlq.frame("SUBSCRIBE", {"destination": "/queue/DLQ.dl", "id": "d", "ack": "auto"})
        f = dlq.read_frame(timeout=30)
        assert f and f[0] == "MESSAGE" and body_of(f) == "poison", f
        dlq.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{broker.admin_port}/api/destinations", timeout=10) as r:
            rows = {d["name"]: d for d in json.loads(r.read())}
        assert rows["/queue/dl"]["pending"] == 0, rows["/queue/dl"]


def slow_browse_read(brokers):
    with cold_broker_on_faultfs(brokers, {}) as (broker, ffs):
        n = 5
        send_receipted(broker, "/queue/browsed", [f"b{i}" for i in range(n)])
        hang_segment_reads(ffs)
        browser = Raw(broker)
        browser.connect()
        browser.frame("SUBSCRIBE", {"destination": "/queue/browsed", "id": "b", "browser": "true"})
        check_answers_while_read_hangs(broker, ffs, "a queue browser")

        ffs.ctl("clear")
        got = []
        while True:
            f = browser.read_frame(timeout=30)
            assert f and f[0] == "MESSAGE", f
            if f[1].get("browser") == "end":
                break
            got.append(body_of(f))
        assert got == [f"b{i}" for i in range(n)], got
        browser.close()


def slow_scheduled_read(brokers):
    with cold_broker_on_faultfs(brokers, {}) as (broker, ffs):
        consumer = Raw(broker)
        consumer.connect()
        consumer.frame("SUBSCRIBE", {"destination": "/queue/sched", "id": "s", "ack": "auto"})
        # Due in 2 s: time to make reads hang before it fires; the firing reads its entry.
        send_receipted(broker, "/queue/sched", ["later"], {"AMQ_SCHEDULED_DELAY": "2000"})
        hang_segment_reads(ffs)
        check_answers_while_read_hangs(broker, ffs, "a scheduled firing")

        ffs.ctl("clear")
        f = consumer.read_frame(timeout=30)
        assert f and f[0] == "MESSAGE" and body_of(f) == "later", f
        consumer.close()


ADMIN_USERS = [{"login": "ops", "password": "ops-secret", "groups": ["admin"]},
               {"login": "app", "password": "app-secret"}]


def admin_get_in_background(broker, path):
    """GET `path` as an admin user on a thread of its own; returns (thread, result dict)."""
    result = {}

    def get():
        req = urllib.request.Request(f"http://127.0.0.1:{broker.admin_port}{path}",
                                     headers={"Authorization": "Basic " + base64.b64encode(b"ops:ops-secret").decode()})
        t0 = time.monotonic()
        with urllib.request.urlopen(req, timeout=60) as r:
            result["status"] = r.status
            result["body"] = json.loads(r.read())
        result["took"] = time.monotonic() - t0

    t = threading.Thread(target=get)
    t.start()
    return t, result


def admin_get_while_reads_hang(broker, ffs, path, what):
    """GET `path` from the admin port while the store's segment reads hang: /health and a
    client's SEND must answer meanwhile and the GET must not; once the reads go on it
    answers 200. Returns (its JSON body, seconds it took)."""
    hang_segment_reads(ffs)
    t, result = admin_get_in_background(broker, path)
    check_answers_while_read_hangs(broker, ffs, what, login="app")
    assert "status" not in result, f"{what} answered while its reads hung"
    ffs.ctl("clear")
    t.join(60)
    assert result.get("status") == 200, result
    return result["body"], result["took"]


def slow_admin_browse_read(brokers):
    with cold_broker_on_faultfs(brokers, {"users": ADMIN_USERS}) as (broker, ffs):
        n = 5
        send_receipted(broker, "/queue/admin", [f"a{i}" for i in range(n)], login="app")
        page, took = admin_get_while_reads_hang(broker, ffs, "/api/destinations/%2Fqueue%2Fadmin/browse?limit=20",
                                                "an admin browse")
        assert [m["body_preview"] for m in page["messages"]] == [f"a{i}" for i in range(n)], page
        assert not page["more"], page
        print(f"the admin browse answered in {took * 1000:.0f} ms (reads hung {READ_DELAY_MS} ms)", flush=True)


def slow_admin_scheduled_read(brokers):
    with cold_broker_on_faultfs(brokers, {"users": ADMIN_USERS}) as (broker, ffs):
        send_receipted(broker, "/queue/later", ["in an hour"], {"AMQ_SCHEDULED_DELAY": "3600000"}, login="app")
        listing, _ = admin_get_while_reads_hang(broker, ffs, "/api/scheduled", "the admin list of scheduled jobs")
        items = listing["items"]
        assert [(i.get("destination"), i.get("delay_ms")) for i in items] == [("/queue/later", "3600000")], items


if __name__ == "__main__":
    run([slow_segment_reads, slow_expiry_read, slow_dead_letter_read, slow_browse_read, slow_scheduled_read,
         slow_admin_browse_read, slow_admin_scheduled_read])
