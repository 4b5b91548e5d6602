"""03 ack modes: auto, client (cumulative), client-individual, NACK, redelivered flag."""
from tandem_test import Raw, client, new_broker, run


def fill(b, dest, n):
    p = client(b)
    for i in range(n):
        p.send(dest, f"m{i}", headers={"receipt": f"r{i}"} if i == n - 1 else None)
    p.collector.wait_receipt(f"r{n - 1}")
    p.disconnect()


def test_unacked_messages_of_a_closed_session_are_redelivered_flagged(brokers):
    b = new_broker(brokers)
    fill(b, "/queue/ci", 3)
    c = client(b)
    c.subscribe("/queue/ci", id="s", ack="client-individual")
    msgs = c.collector.wait_messages(3)
    assert all(m.headers.get("redelivered", "false") != "true" for m in msgs)
    c.ack(msgs[1].headers["ack"])
    c.disconnect()
    d = client(b)
    d.subscribe("/queue/ci", id="s2", ack="client-individual")
    again = d.collector.wait_messages(2)
    assert sorted(m.body for m in again) == ["m0", "m2"], [m.body for m in again]
    assert all(m.headers.get("redelivered") == "true" for m in again), [m.headers for m in again]


def test_client_ack_is_cumulative(brokers):
    b = new_broker(brokers)
    fill(b, "/queue/cum", 5)
    c = client(b)
    c.subscribe("/queue/cum", id="s", ack="client")
    msgs = c.collector.wait_messages(5)
    c.ack(msgs[2].headers["ack"], receipt="acked")
    c.collector.wait_receipt("acked")
    c.disconnect()
    d = client(b)
    d.subscribe("/queue/cum", id="s", ack="auto")
    rest = d.collector.wait_messages(2)
    assert sorted(m.body for m in rest) == ["m3", "m4"], [m.body for m in rest]


def test_auto_ack_never_redelivers(brokers):
    b = new_broker(brokers)
    fill(b, "/queue/auto", 3)
    c = client(b)
    c.subscribe("/queue/auto", id="s", ack="auto")
    c.collector.wait_messages(3)
    c.disconnect()
    p = client(b)
    p.send("/queue/auto", "marker", headers={"receipt": "m"})
    p.collector.wait_receipt("m")
    d = client(b)
    d.subscribe("/queue/auto", id="s")
    [m] = d.collector.wait_messages(1)
    assert m.body == "marker"


def test_nack_moves_the_message_to_the_dead_letter_queue_at_once(brokers):
    # Issue 15: ActiveMQ's STOMP NACK is a poison ack, never a redelivery to the same subscriber.
    b = new_broker(brokers)
    fill(b, "/queue/nack", 2)
    c = client(b)
    c.subscribe("/queue/nack", id="s", ack="client-individual")
    first, second = c.collector.wait_messages(2)
    c.nack(first.headers["ack"], receipt="n")
    c.collector.wait_receipt("n")
    d = client(b)
    d.subscribe("/queue/ActiveMQ.DLQ", id="d")
    [dead] = d.collector.wait_messages(1)
    assert dead.body == "m0"
    assert dead.headers.get("original-destination") == "/queue/nack", dead.headers
    assert dead.headers.get("dlqDeliveryFailureCause", "").startswith("NACK"), dead.headers
    c.ack(second.headers["ack"], receipt="a")
    c.collector.wait_receipt("a")
    assert len(c.collector.messages) == 2, [m.body for m in c.collector.messages]


def test_prefetch_limits_unacked_deliveries(brokers):
    b = new_broker(brokers)
    fill(b, "/queue/pf", 5)
    r = Raw(b)
    r.connect()
    r.frame("SUBSCRIBE", {"destination": "/queue/pf", "id": "s", "ack": "client-individual",
                          "activemq.prefetchSize": "2"})
    first = [r.read_frame() for _ in range(2)]
    assert all(f[0] == "MESSAGE" for f in first)
    # No third message while two are unacked: a receipt round trip proves nothing else is queued.
    r.frame("SEND", {"destination": "/queue/other", "receipt": "probe"}, "x")
    f = r.read_frame()
    assert f[0] == "RECEIPT", f
    r.frame("ACK", {"id": first[0][1]["ack"]})
    f = r.read_frame()
    assert f[0] == "MESSAGE" and f[2] == b"m2", f


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
