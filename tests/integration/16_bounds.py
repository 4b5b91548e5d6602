"""16 bounds (issue 17, finding 3): after CONNECT a client is bounded whatever its heart-beats:
a partial frame, an idle session and a client that stops reading are closed, and the unacked
messages of the last are redelivered."""
import socket
import time

from tandem_test import Broker, Raw, client, metric, run, wait_for


def bounded_broker(brokers, **limits):
    cfg = {"allow_anonymous": True}
    cfg.update(limits)
    b = Broker(config=cfg)
    brokers.append(b)
    b.start()
    return b


def never_reading_subscriber(b, dest, ack):
    """A subscriber with a tiny receive window that never reads (its host vanished)."""
    sock = socket.create_connection(("127.0.0.1", b.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"CONNECT\naccept-version:1.2\nhost:x\nheart-beat:0,0\n\n\0")
    sock.sendall(f"SUBSCRIBE\ndestination:{dest}\nid:1\nack:{ack}\nreceipt:sub\n\n\0".encode())
    # Peeked, not read: the subscriber reads nothing, ever.
    wait_for(lambda: b"receipt-id:sub" in sock.recv(4096, socket.MSG_PEEK), what="the SUBSCRIBE's RECEIPT")
    return sock


def test_partial_frame_after_connect_is_closed(brokers):
    # Regression: 20 sessions holding 9 MiB partial frames were kept for over 60 s.
    b = bounded_broker(brokers, frame_timeout_ms=1000, idle_timeout_ms=0)
    r = Raw(b)
    r.connect(extra={"heart-beat": "0,0"})
    t0 = time.monotonic()
    r.send(b"SEND\ndestination:/queue/a\ncontent-length:1000000\n\n" + b"x" * 1000)
    r.read_eof(timeout=10)
    took = time.monotonic() - t0
    assert 0.9 <= took < 5, took
    b.wait_log(r"frame_timeout_ms")


def test_idle_session_is_closed_whatever_its_heart_beats(brokers):
    # Regression: 500 idle sessions with heart-beats off stayed forever.
    b = bounded_broker(brokers, idle_timeout_ms=1000, frame_timeout_ms=0)
    r = Raw(b)
    r.connect(extra={"heart-beat": "0,0"})
    t0 = time.monotonic()
    r.read_eof(timeout=10)
    # The idle clock starts when the broker writes CONNECTED; t0 is when this client had read
    # it, which at load 10 was 150 ms later: the lower bound only shows it was not at once.
    took = time.monotonic() - t0
    assert 0.5 <= took < 5, took
    b.wait_log(r"idle_timeout_ms")
    # A session that talks is not idle.
    r = Raw(b)
    r.connect(extra={"heart-beat": "0,0"})
    for i in range(6):
        time.sleep(0.3)
        r.frame("SEND", {"destination": "/queue/keep", "receipt": f"k{i}"}, "x")
        f = r.read_frame()
        assert f[0] == "RECEIPT", f


def test_client_that_stops_reading_is_closed_and_its_messages_redelivered(brokers):
    # Regression: a consumer whose host vanished kept its unacked messages in flight.
    b = bounded_broker(brokers, write_timeout_ms=1000, idle_timeout_ms=0, max_session_backlog_bytes=1 << 20)
    stalled = never_reading_subscriber(b, "/queue/big", "client")
    p = client(b)
    body = "y" * 65536
    n = 100
    for i in range(n):
        p.send("/queue/big", body, headers={"i": str(i)})
    p.send("/queue/marker", "m", headers={"receipt": "done"})
    p.collector.wait_receipt("done")
    b.wait_log(r"write_timeout_ms", timeout=20)
    c = client(b)
    c.subscribe("/queue/big", id="2", ack="auto")
    got = c.collector.wait_messages(n, timeout=30)
    assert sorted(int(m.headers["i"]) for m in got) == list(range(n))
    stalled.close()


def test_persistent_topic_messages_respect_max_memory_bytes(brokers):
    # Regression (issue 17, finding 4): persistent messages to a topic with a subscriber that
    # does not read ignored max_memory_bytes (55 MB held against a 16 MiB limit).
    limit = 2 << 20
    b = bounded_broker(brokers, max_memory_bytes=limit, max_session_backlog_bytes=256 << 10, send_timeout_ms=1500,
                       admin_open_reads=True, idle_timeout_ms=0, write_timeout_ms=0)
    stalled = never_reading_subscriber(b, "/topic/ticks", "auto")
    p = client(b)
    body = "z" * 65536
    for i in range(300):
        rid = f"t{i}"
        p.send("/topic/ticks", body, headers={"persistent": "true", "receipt": rid})
        p.collector.wait(lambda c: rid in c.receipts or c.errors, timeout=30, what=f"receipt {rid} or an ERROR")
        if p.collector.errors:
            break
    assert p.collector.errors, "300 persistent messages of 64 KiB were held for a subscriber that does not read"
    assert "memory" in p.collector.errors[0].body, p.collector.errors[0].body
    assert metric(b, "tandem_memory_bytes") <= limit + 2 * 65536 + 4096
    stalled.close()


def test_transient_destinations_are_collected_and_bounded(brokers):
    # Regression (issue 17, finding 2): destinations were never freed; 100,000
    # SUBSCRIBE/UNSUBSCRIBE pairs left RSS +100 MB for good and /metrics at 190 MB.
    b = bounded_broker(brokers, destination_gc_ms=1000, max_destinations=300, admin_open_reads=True)
    r = Raw(b)
    r.connect()
    for i in range(250):
        kind = "queue" if i % 2 else "topic"
        r.frame("SUBSCRIBE", {"destination": f"/{kind}/transient.{i}", "id": str(i)})
        r.frame("UNSUBSCRIBE", {"id": str(i)})
    r.frame("SEND", {"destination": "/queue/kept", "receipt": "k"}, "stays: it holds a message")
    assert r.read_frame()[0] == "RECEIPT"
    assert metric(b, "tandem_destinations") >= 250
    wait_for(lambda: metric(b, "tandem_destinations") == 1, timeout=30, interval=0.2)
    assert metric(b, "tandem_destinations_collected_total") >= 250
    # The bound: one past max_destinations is an ERROR naming the key.
    for i in range(299):
        r.frame("SUBSCRIBE", {"destination": f"/queue/many.{i}", "id": f"m{i}"})
    r.frame("SUBSCRIBE", {"destination": "/queue/one.too.many", "id": "last"})
    f = r.read_frame()
    assert f[0] == "ERROR" and f[1]["message"] == "too many destinations" and b"max_destinations" in f[2], f


if __name__ == "__main__":
    run([test_partial_frame_after_connect_is_closed, test_idle_session_is_closed_whatever_its_heart_beats,
         test_client_that_stops_reading_is_closed_and_its_messages_redelivered,
         test_persistent_topic_messages_respect_max_memory_bytes, test_transient_destinations_are_collected_and_bounded])
