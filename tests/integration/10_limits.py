"""10 limits: heart-beats, slow and half-open clients, many connections, a 10 MiB message."""
import socket
import time

from tandem_test import Broker, Raw, client, new_broker, run, wait_for


def test_broker_sends_heartbeats_when_idle(brokers):
    b = Broker(config={"allow_anonymous": True, "heartbeat_send_ms": 100})
    brokers.append(b)
    b.start()
    r = Raw(b)
    cmd, headers, _ = r.connect(extra={"heart-beat": "0,100"})
    sx = int(headers.get("heart-beat", "0,0").split(",")[0])
    assert sx > 0, headers
    # Within a few periods some EOLs arrive and nothing else.
    deadline = time.monotonic() + max(5.0, 5 * sx / 1000)
    got = b""
    r.sock.settimeout(0.5)
    while time.monotonic() < deadline and got.count(b"\n") < 3:
        try:
            got += r.sock.recv(100)
        except socket.timeout:
            pass
    assert got.count(b"\n") >= 3 and got.strip(b"\r\n") == b"", got


def test_a_silent_client_is_disconnected(brokers):
    b = Broker(config={"allow_anonymous": True, "heartbeat_expect_ms": 200, "heartbeat_send_ms": 0})
    brokers.append(b)
    b.start()
    r = Raw(b)
    cmd, headers, _ = r.connect(extra={"heart-beat": "200,0"})
    assert headers.get("heart-beat", "0,0").split(",")[1] != "0", headers
    t0 = time.monotonic()
    r.read_eof(timeout=10)
    took = time.monotonic() - t0
    assert took < 5, took
    assert "heart-beat timeout" in b.log_text()


def test_a_client_sending_heartbeats_stays_connected(brokers):
    b = Broker(config={"allow_anonymous": True, "heartbeat_expect_ms": 200, "heartbeat_send_ms": 0})
    brokers.append(b)
    b.start()
    r = Raw(b)
    r.connect(extra={"heart-beat": "200,0"})
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        r.send(b"\n")
        time.sleep(0.05)  # pacing the client's own heart-beats, not waiting for the broker
    r.frame("SEND", {"destination": "/queue/hb", "receipt": "alive"}, "x")
    f = r.read_frame()
    assert f[0] == "RECEIPT", f


def test_a_half_open_client_does_not_block_others(brokers):
    b = new_broker(brokers)
    # Half-open: a consumer that subscribes and then never reads its socket.
    stuck = Raw(b)
    stuck.connect()
    stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.frame("SUBSCRIBE", {"destination": "/topic/flood", "id": "s"})
    stuck.frame("SEND", {"destination": "/queue/x", "receipt": "sub-done"}, "")
    assert stuck.read_frame()[0] == "RECEIPT"
    p = client(b)
    body = "x" * 16384
    for i in range(400):  # ~6 MiB to a reader that never reads
        p.send("/topic/flood", body)
    p.send("/queue/after", "ok", headers={"receipt": "r"})
    p.collector.wait_receipt("r", timeout=30)
    c = client(b)
    c.subscribe("/queue/after", id="s")
    [m] = c.collector.wait_messages(1)
    assert m.body == "ok"
    stuck.close()


def test_two_hundred_concurrent_connections(brokers):
    b = new_broker(brokers)
    conns = []
    for i in range(200):
        r = Raw(b)
        r.connect()
        conns.append(r)
    for i, r in enumerate(conns):
        r.frame("SEND", {"destination": "/queue/many", "receipt": f"r{i}"}, str(i))
    for i, r in enumerate(conns):
        f = r.read_frame()
        assert f[0] == "RECEIPT" and f[1]["receipt-id"] == f"r{i}", f
    c = client(b)
    c.subscribe("/queue/many", id="s")
    msgs = c.collector.wait_messages(200)
    assert sorted(int(m.body) for m in msgs) == list(range(200))
    for r in conns:
        r.close()


def test_a_ten_mebibyte_message_round_trips(brokers):
    b = new_broker(brokers)
    body = bytes((i * 7) & 0xFF for i in range(10 << 20))
    r = Raw(b)
    r.connect()
    r.frame("SUBSCRIBE", {"destination": "/queue/big", "id": "s", "receipt": "sub"})
    assert r.read_frame()[0] == "RECEIPT"
    p = Raw(b)
    p.connect()
    p.frame("SEND", {"destination": "/queue/big", "persistent": "true", "receipt": "big",
                     "content-length": str(len(body))}, body)
    f = p.read_frame(timeout=60)
    assert f[0] == "RECEIPT", f[:2]
    f = r.read_frame(timeout=60)
    assert f[0] == "MESSAGE"
    assert f[2] == body


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
