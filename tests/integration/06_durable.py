"""06 durable subscriptions (ActiveMQ over STOMP: client-id + activemq.subscriptionName)."""
from tandem_test import client, new_broker, run


def durable(b, cid):
    c = client(b, headers={"client-id": cid})
    c.subscribe("/topic/events", id="d", headers={"activemq.subscriptionName": "sub1", "receipt": "s"})
    c.collector.wait_receipt("s")
    return c


def test_messages_published_while_away_are_delivered_on_return(brokers):
    b = new_broker(brokers)
    c = durable(b, "app1")
    c.disconnect()
    p = client(b)
    for i in range(5):
        p.send("/topic/events", f"e{i}", headers={"persistent": "true", "receipt": f"r{i}"})
    p.collector.wait_receipt("r4")
    c = durable(b, "app1")
    msgs = c.collector.wait_messages(5)
    assert [m.body for m in msgs] == [f"e{i}" for i in range(5)]


def test_a_durable_subscription_survives_a_restart(brokers):
    b = new_broker(brokers)
    durable(b, "app2").disconnect()
    p = client(b)
    p.send("/topic/events", "kept", headers={"persistent": "true", "receipt": "r"})
    p.collector.wait_receipt("r")
    p.disconnect()
    assert b.stop() == 0
    b.start()
    c = durable(b, "app2")
    [m] = c.collector.wait_messages(1)
    assert m.body == "kept"


def test_unsubscribe_removes_the_durable_subscription(brokers):
    b = new_broker(brokers)
    c = durable(b, "app3")
    c.unsubscribe("d", headers={"activemq.subscriptionName": "sub1", "receipt": "u"})
    c.collector.wait_receipt("u")
    c.disconnect()
    p = client(b)
    p.send("/topic/events", "nobody", headers={"persistent": "true", "receipt": "r"})
    p.collector.wait_receipt("r")
    c = durable(b, "app3")
    p.send("/topic/events", "fresh", headers={"persistent": "true", "receipt": "r2"})
    p.collector.wait_receipt("r2")
    msgs = c.collector.wait_messages(1)
    assert [m.body for m in msgs] == ["fresh"], [m.body for m in msgs]


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
