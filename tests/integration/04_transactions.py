"""04 transactions: commit, abort, rollback on disconnect, unknown transaction."""
from tandem_test import Raw, client, new_broker, run


def test_sends_in_a_transaction_appear_only_at_commit(brokers):
    b = new_broker(brokers)
    c = client(b)
    c.subscribe("/queue/tx", id="s", headers={"receipt": "sub"})
    c.collector.wait_receipt("sub")
    p = client(b)
    p.begin("t1")
    for i in range(3):
        p.send("/queue/tx", f"m{i}", headers={"transaction": "t1"})
    p.send("/queue/probe", "x", headers={"receipt": "probe"})
    p.collector.wait_receipt("probe")
    assert c.collector.messages == [], "nothing may be delivered before COMMIT"
    p.commit("t1", headers={"receipt": "commit"})
    p.collector.wait_receipt("commit")
    msgs = c.collector.wait_messages(3)
    assert [m.body for m in msgs] == ["m0", "m1", "m2"]


def test_abort_discards_sends_and_redelivers_acks(brokers):
    b = new_broker(brokers)
    p = client(b)
    p.send("/queue/ab", "keep", headers={"receipt": "r"})
    p.collector.wait_receipt("r")
    c = client(b)
    c.subscribe("/queue/ab", id="s", ack="client-individual")
    [m] = c.collector.wait_messages(1)
    c.begin("t")
    c.ack(m.headers["ack"], transaction="t")
    c.send("/queue/ab", "dropped", headers={"transaction": "t"})
    c.abort("t")
    c.disconnect()
    d = client(b)
    d.subscribe("/queue/ab", id="s")
    msgs = d.collector.wait_messages(1)
    p.send("/queue/ab", "after", headers={"receipt": "r2"})
    p.collector.wait_receipt("r2")
    msgs = d.collector.wait_messages(2)
    assert [x.body for x in msgs] == ["keep", "after"], [x.body for x in msgs]
    assert msgs[0].headers.get("redelivered") == "true"


def test_disconnect_rolls_back_an_open_transaction(brokers):
    b = new_broker(brokers)
    p = client(b)
    p.begin("t")
    p.send("/queue/rb", "lost", headers={"transaction": "t"})
    p.disconnect()
    q = client(b)
    q.send("/queue/rb", "only", headers={"receipt": "r"})
    q.collector.wait_receipt("r")
    c = client(b)
    c.subscribe("/queue/rb", id="s")
    msgs = c.collector.wait_messages(1)
    assert [m.body for m in msgs] == ["only"]


def test_an_unknown_transaction_is_an_error(brokers):
    b = new_broker(brokers)
    r = Raw(b)
    r.connect()
    r.frame("COMMIT", {"transaction": "nope", "receipt": "c"})
    cmd, headers, _ = r.read_frame()
    assert cmd == "ERROR", cmd
    assert headers.get("receipt-id") == "c"


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
