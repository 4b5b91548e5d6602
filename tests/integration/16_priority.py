"""16 priority (issue 16): a queue whose "destination_policies" entry has
"prioritized_messages": true delivers its pending messages by the STOMP `priority` header
(9 first, 4 when absent), first in, first out within a priority, and keeps that order after
a SIGKILL + restart and after a failover to a slave (the priority is in the journal index).
Without the policy a queue stays first in, first out. Driven by Debian's python3-stomp."""
from tandem_test import Broker, client, new_group, run

SENDS = [("2", "a"), ("9", "b"), (None, "c"), ("2", "d"), ("9", "e"), ("0", "f"), ("5", "g")]
BY_PRIORITY = ["9b", "9e", "5g", "-c", "2a", "2d", "0f"]


def config(pattern="prio.>"):
    return {"allow_anonymous": True, "destination_policies": [{"queue": pattern, "prioritized_messages": True}]}


def send_all(b, dest):
    p = client(b)
    for i, (prio, tag) in enumerate(SENDS):
        h = {"persistent": "true", "receipt": f"r{i}"}
        if prio is not None:
            h["priority"] = prio
        p.send(dest, (prio or "-") + tag, headers=h)
    p.collector.wait_receipt(f"r{len(SENDS) - 1}")
    p.disconnect()


def receive_all(b, dest, n=len(SENDS)):
    c = client(b)
    c.subscribe(dest, id="s", ack="auto")
    c.collector.wait_messages(n)
    return [m.body for m in c.collector.messages]


def start(brokers, cfg):
    b = Broker(config=cfg)
    brokers.append(b)
    return b.start()


def test_pending_messages_go_out_by_priority_fifo_within_one(brokers):
    b = start(brokers, config())
    send_all(b, "/queue/prio.orders")
    assert receive_all(b, "/queue/prio.orders") == BY_PRIORITY


def test_a_queue_without_the_policy_stays_fifo(brokers):
    b = start(brokers, config())
    send_all(b, "/queue/plain")
    assert receive_all(b, "/queue/plain") == [(p or "-") + t for p, t in SENDS]


def test_the_order_survives_sigkill_and_restart(brokers):
    b = start(brokers, config())
    send_all(b, "/queue/prio.kept")
    b.kill()
    b.start()
    assert receive_all(b, "/queue/prio.kept") == BY_PRIORITY


def test_the_order_survives_a_failover_to_a_slave(brokers):
    master, slave = new_group(brokers, 2, config=config())
    send_all(master, "/queue/prio.fo")
    master.kill()
    slave.wait_log(r"main master epoch=\d+", timeout=30)
    assert receive_all(slave, "/queue/prio.fo") == BY_PRIORITY


if __name__ == "__main__":
    run([
        test_pending_messages_go_out_by_priority_fifo_within_one,
        test_a_queue_without_the_policy_stays_fifo,
        test_the_order_survives_sigkill_and_restart,
        test_the_order_survives_a_failover_to_a_slave,
    ])
