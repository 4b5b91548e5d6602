"""Shared by the durable-subscription owner tests (issue 17): 17_durable_owner.py on the
file store and 15_postgresql.py on the database store. Login "shipping" makes the durable
subscription "feed" of client-id "shipping-app"; login "shop" publishes, then tries to take
it over."""
from tandem_test import client

USERS = [
    {"login": "shipping", "password": "shipping-pw"},
    {"login": "shop", "password": "shop-pw"},
]
SUB = {"activemq.subscriptionName": "feed"}
# A clean stop checkpoints a tail of more than 4096 records (broker_process.cpp), so this
# many extra records make the restart load the owner from a checkpoint instead of the log.
CHECKPOINTED_TAIL = 4200


def make_subscription_and_publish(b, n=3):
    c = client(b, login="shipping", passcode="shipping-pw", headers={"client-id": "shipping-app"})
    c.subscribe("/topic/events", id="t", ack="auto", headers=dict(SUB, receipt="s"))
    c.collector.wait_receipt("s")
    c.disconnect()
    publish(b, n)


def publish(b, n=3):
    """shop sends e0..e{n-1} to the topic, persistent, and waits for every RECEIPT."""
    p = client(b, login="shop", passcode="shop-pw")
    for i in range(n):
        p.send("/topic/events", f"e{i}", headers={"persistent": "true", "receipt": f"r{i}"})
    p.collector.wait_receipt(f"r{n - 1}")
    p.disconnect()


def frame_error(c):
    """The first ERROR frame c received (waits for it)."""
    c.collector.wait(lambda x: x.errors, what="an ERROR")
    return c.collector.errors[0]


def check_owner_kept(b, n=3):
    """shop presents shipping's client-id and name: refused, naming the subscription and the
    permission, for SUBSCRIBE and for UNSUBSCRIBE; shipping then gets every message."""
    thief = client(b, login="shop", passcode="shop-pw", headers={"client-id": "shipping-app"})
    thief.subscribe("/topic/events", id="t", ack="auto", headers=SUB)
    e = frame_error(thief)
    assert e.headers["message"] == "durable subscription owned by another login", e.headers
    for part in ("Durable subscription 'feed'", "client-id 'shipping-app'", "belongs to login 'shipping'",
                 "not to login 'shop'", "permission"):
        assert part in e.body, (part, e.body)
    thief = client(b, login="shop", passcode="shop-pw", headers={"client-id": "shipping-app"})
    thief.unsubscribe(id="t", headers=SUB)
    e = frame_error(thief)
    assert "Durable subscription 'feed'" in e.body and "belongs to login 'shipping'" in e.body, e.body
    owner = client(b, login="shipping", passcode="shipping-pw", headers={"client-id": "shipping-app"})
    owner.subscribe("/topic/events", id="t", ack="auto", headers=SUB)
    assert [m.body for m in owner.collector.wait_messages(n)] == [f"e{i}" for i in range(n)]
    owner.disconnect()
