"""02 send/receive: queues, topics, competing consumers, headers, receipts."""
from tandem_test import Raw, client, new_broker, run, wait_for


def test_a_queue_message_reaches_one_subscriber_with_its_headers(brokers):
    b = new_broker(brokers)
    c = client(b)
    c.subscribe("/queue/a", id="s1")
    c.send("/queue/a", "hello", headers={"color": "blue", "receipt": "r1"})
    c.collector.wait_receipt("r1")
    [m] = c.collector.wait_messages(1)
    assert m.body == "hello"
    assert m.headers["destination"] == "/queue/a"
    assert m.headers["subscription"] == "s1"
    assert m.headers["color"] == "blue"
    assert m.headers.get("message-id")
    c.disconnect()


def test_messages_sent_before_subscribing_wait_in_the_queue(brokers):
    b = new_broker(brokers)
    p = client(b)
    for i in range(10):
        p.send("/queue/wait", f"m{i}", headers={"receipt": f"r{i}"})
    p.collector.wait_receipt("r9")
    c = client(b)
    c.subscribe("/queue/wait", id="s")
    msgs = c.collector.wait_messages(10)
    assert [m.body for m in msgs] == [f"m{i}" for i in range(10)]


def test_topic_messages_fan_out_to_every_subscriber(brokers):
    b = new_broker(brokers)
    subs = [client(b) for _ in range(3)]
    for i, s in enumerate(subs):
        s.subscribe("/topic/news", id=f"t{i}", headers={"receipt": f"sub{i}"})
        s.collector.wait_receipt(f"sub{i}")
    p = client(b)
    p.send("/topic/news", "flash", headers={"receipt": "r"})
    p.collector.wait_receipt("r")
    for s in subs:
        [m] = s.collector.wait_messages(1)
        assert m.body == "flash"


def test_competing_consumers_share_a_queue_without_duplicates(brokers):
    b = new_broker(brokers)
    c1, c2 = client(b), client(b)
    for i, c in enumerate((c1, c2)):
        c.subscribe("/queue/work", id="w", headers={"receipt": f"s{i}"})
        c.collector.wait_receipt(f"s{i}")
    p = client(b)
    n = 200
    for i in range(n):
        p.send("/queue/work", str(i), headers={"receipt": f"r{i}"} if i == n - 1 else None)
    p.collector.wait_receipt(f"r{n - 1}")
    wait_for(lambda: len(c1.collector.messages) + len(c2.collector.messages) >= n, what="all messages")
    bodies = [m.body for m in c1.collector.messages] + [m.body for m in c2.collector.messages]
    assert sorted(bodies, key=int) == [str(i) for i in range(n)]
    assert c1.collector.messages and c2.collector.messages, \
        f"both consumers should get work: {len(c1.collector.messages)} and {len(c2.collector.messages)}"


def test_an_unknown_destination_kind_is_an_error(brokers):
    b = new_broker(brokers)
    r = Raw(b)
    r.connect()
    r.frame("SEND", {"destination": "/nowhere/x", "receipt": "r1"}, "x")
    cmd, headers, _ = r.read_frame()
    assert cmd == "ERROR", cmd
    assert headers.get("receipt-id") == "r1", headers


def test_a_binary_body_with_nul_bytes_round_trips(brokers):
    b = new_broker(brokers)
    r = Raw(b)
    r.connect()
    r.frame("SUBSCRIBE", {"destination": "/queue/bin", "id": "s", "receipt": "s"})
    assert r.read_frame()[0] == "RECEIPT"
    body = bytes(range(256)) * 4
    r.frame("SEND", {"destination": "/queue/bin", "content-length": str(len(body))}, body)
    cmd, headers, got = r.read_frame()
    assert cmd == "MESSAGE"
    assert got == body


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
