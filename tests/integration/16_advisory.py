"""16 advisory (issue 16): advisory topics through a real tandemd and Debian's python3-stomp:
JSON bodies on /topic/ActiveMQ.Advisory.* for consumers (with consumerCount), connections,
producers, destinations and dead letters; and the master-change advisory that a new master
keeps for subscribers that connect after the failover (SIGKILL of the master)."""
import json

from tandem_test import Broker, client, new_group, run


def start(brokers):
    b = Broker(config={"allow_anonymous": True})
    brokers.append(b)
    return b.start()


def bodies(conn, n):
    return [json.loads(m.body) for m in conn.collector.wait_messages(n)]


def test_consumer_and_connection_advisories(brokers):
    b = start(brokers)
    watcher = client(b)
    watcher.subscribe("/topic/ActiveMQ.Advisory.Consumer.Queue.jobs", id="c")
    watcher.subscribe("/topic/ActiveMQ.Advisory.Connection", id="k", receipt="subscribed")
    watcher.collector.wait_receipt("subscribed")
    worker = client(b, headers={"client-id": "worker-1"})
    worker.subscribe("/queue/jobs", id="s", receipt="r1")
    worker.collector.wait_receipt("r1")
    worker.disconnect()
    got = {}
    # 5: the replay of the watcher's own connection (it existed when it subscribed), then
    # the worker's connection and consumer, added and removed.
    watcher.collector.wait(lambda c: len(c.messages) >= 5, what=str([(m.headers["destination"], m.body) for m in watcher.collector.messages]))
    for m in watcher.collector.messages:
        got.setdefault(m.headers["destination"], []).append(json.loads(m.body))
    consumers = got["/topic/ActiveMQ.Advisory.Consumer.Queue.jobs"]
    assert [(c["event"], c["consumerCount"]) for c in consumers] == [("added", 1), ("removed", 0)]
    connections = got["/topic/ActiveMQ.Advisory.Connection"]
    assert [(c["event"], c["clientId"]) for c in connections] == [("added", ""), ("added", "worker-1"),
                                                                    ("removed", "worker-1")], connections


def test_producer_destination_and_dead_letter_advisories(brokers):
    b = start(brokers)
    watcher = client(b)
    watcher.subscribe("/topic/ActiveMQ.Advisory.Producer.Queue.mail", id="p")
    watcher.subscribe("/topic/ActiveMQ.Advisory.Queue", id="q")
    watcher.subscribe("/topic/ActiveMQ.Advisory.MessageDLQd.Queue.mail", id="d", receipt="subscribed")
    watcher.collector.wait_receipt("subscribed")
    producer = client(b)
    producer.send("/queue/mail", "poison", headers={"persistent": "true", "receipt": "sent"})
    producer.collector.wait_receipt("sent")
    consumer = client(b)
    consumer.subscribe("/queue/mail", id="s", ack="client-individual")
    m = consumer.collector.wait_messages(1)[0]
    consumer.nack(m.headers["ack"])
    events = {}
    for f in watcher.collector.wait_messages(4):  # producer, queue created x2 (mail, DLQ), DLQd
        events.setdefault(f.headers["destination"].split("Advisory.")[1], []).append(json.loads(f.body))
    assert events["Producer.Queue.mail"][0]["producerCount"] == 1
    created = [e["destination"] for e in events["Queue"]]
    assert created == ["/queue/mail", "/queue/ActiveMQ.DLQ"], created
    assert events["MessageDLQd.Queue.mail"][0]["messageId"] == m.headers["message-id"]


def test_a_new_master_announces_itself_to_later_subscribers(brokers):
    master, slave = new_group(brokers, 2, config={"allow_anonymous": True})
    master.kill()
    slave.wait_log(r"main master epoch=\d+", timeout=30)
    conn = client(slave)
    conn.subscribe("/topic/ActiveMQ.Advisory.Tandem.MasterChange", id="m")
    (change,) = bodies(conn, 1)
    assert change["broker"] == slave.name, change
    assert change["previousBroker"] == master.name, change
    assert change["epoch"] == change["previousEpoch"] + 1, change
    assert change["failoverMs"] >= 0
    assert conn.collector.messages[0].headers["destination"] == "/topic/ActiveMQ.Advisory.Tandem.MasterChange"


if __name__ == "__main__":
    run([
        test_consumer_and_connection_advisories,
        test_producer_destination_and_dead_letter_advisories,
        test_a_new_master_announces_itself_to_later_subscribers,
    ])
