"""16 groups (issue 16): exclusive consumers (SUBSCRIBE activemq.exclusive:true), consumer
priority (activemq.priority) and message groups (JMSXGroupID) through real tandemd processes
and Debian's python3-stomp: the exclusive consumer gets everything and the next one takes over
with the unacked messages first; a group stays on one consumer and moves with no message
reordered when its owner goes; group owners are not persisted (as in ActiveMQ) and each group
keeps its order across a failover to a slave (SIGKILL of the master, the consumers reconnect);
a queue keeps at most message_group_map_cache_size groups (destination_policies, ActiveMQ's
CachedMessageGroupMap) and evicts the least recently used, shown in /api/destinations and
/metrics.
"""
import collections
import json
import urllib.request

from tandem_test import Broker, client, new_group, run, send_persistent, wait_for


def start(brokers):
    b = Broker(config={"allow_anonymous": True})
    brokers.append(b)
    return b.start()


def acker(conn):
    def ack(frame):
        conn.ack(frame.headers["ack"])
    return ack


def test_the_next_exclusive_consumer_takes_over_in_order(brokers):
    b = start(brokers)
    first = client(b)
    first.subscribe("/queue/ex", id="s", ack="client-individual",
                    headers={"activemq.exclusive": "true", "activemq.prefetchSize": "3"})
    second = client(b)
    second.subscribe("/queue/ex", id="s", ack="client-individual", headers={"activemq.exclusive": "true"})
    plain = client(b)
    plain.subscribe("/queue/ex", id="s", ack="auto")
    send_persistent(b, "/queue/ex", [f"m{i}" for i in range(8)])
    got = first.collector.wait_messages(3)
    assert [m.body for m in got] == ["m0", "m1", "m2"]
    first.ack(got[0].headers["ack"])
    first.collector.wait_messages(4)
    first.disconnect()  # m1, m2, m3 unacked: they go to the next exclusive consumer first
    got = second.collector.wait_messages(7)
    assert [m.body for m in got] == [f"m{i}" for i in range(1, 8)]
    assert [m.headers.get("redelivered") for m in got[:3]] == ["true"] * 3
    assert plain.collector.messages == []


def test_a_higher_priority_consumer_is_preferred_while_it_has_room(brokers):
    b = start(brokers)
    low = client(b)
    low.subscribe("/queue/prio", id="s", ack="client-individual",
                  headers={"activemq.priority": "1", "activemq.prefetchSize": "2"})
    high = client(b)
    high.subscribe("/queue/prio", id="s", ack="client-individual",
                   headers={"activemq.priority": "100", "activemq.prefetchSize": "2"})
    send_persistent(b, "/queue/prio", [f"m{i}" for i in range(4)])
    assert [m.body for m in high.collector.wait_messages(2)] == ["m0", "m1"]
    assert [m.body for m in low.collector.wait_messages(2)] == ["m2", "m3"]


def group_headers(groups, per_group):
    """Messages g<k>-<n> in round-robin order over the groups; JMSXGroupID g<k>."""
    order = [(g, n) for n in range(per_group) for g in range(groups)]
    return [f"g{g}-{n}" for g, n in order], lambda i: {"JMSXGroupID": f"g{order[i][0]}"}


def check_groups(deliveries, groups, per_group):
    """deliveries: (consumer, body) in arrival order per consumer. Every group went to one
    consumer, and each group's messages arrived in order, every one of them."""
    owner = collections.defaultdict(set)
    seen = collections.defaultdict(list)
    for who, body in deliveries:
        g, n = body.split("-")
        owner[g].add(who)
        seen[g].append(int(n))
    for g in range(groups):
        assert len(owner[f"g{g}"]) == 1, (g, owner[f"g{g}"])
        assert seen[f"g{g}"] == list(range(per_group)), (g, seen[f"g{g}"])


def test_a_group_moves_to_another_consumer_with_nothing_reordered(brokers):
    b = start(brokers)
    bodies, headers = group_headers(4, 5)
    a = client(b)
    a.subscribe("/queue/grp", id="s", ack="client-individual", headers={"activemq.prefetchSize": "100"})
    c = client(b)
    c.subscribe("/queue/grp", id="s", ack="client-individual", headers={"activemq.prefetchSize": "100"})
    send_persistent(b, "/queue/grp", bodies, headers)
    wait_for(lambda: len(a.collector.messages) + len(c.collector.messages) == 20, what="20 deliveries")
    for conn in (a, c):
        for m in conn.collector.messages:
            if m.body.endswith("-0"):
                assert m.headers.get("JMSXGroupFirstForConsumer") == "true", m.body
    check_groups([(k, m.body) for k, conn in (("a", a), ("c", c)) for m in conn.collector.messages], 4, 5)
    # a goes without acking: its groups move to c, which gets them from the start, in order.
    moved = {m.headers["JMSXGroupID"] for m in a.collector.messages}
    for m in c.collector.messages:
        c.ack(m.headers["ack"])
    kept = len(c.collector.messages)
    a.disconnect()
    got = c.collector.wait_messages(kept + 5 * len(moved))[kept:]
    assert {m.headers["JMSXGroupID"] for m in got} == moved
    check_groups([("c", m.body) for m in got], 0, 0)
    for g in moved:
        assert [m.body for m in got if m.headers["JMSXGroupID"] == g] == [f"{g}-{n}" for n in range(5)]


def admin_get(b, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}{path}", timeout=5) as resp:
        return resp.read().decode()


def test_the_least_recently_used_group_is_evicted_past_the_bound(brokers):
    b = Broker(config={"allow_anonymous": True, "admin_open_reads": True,
                       "destination_policies": [{"queue": "grp.lru", "message_group_map_cache_size": 2}]})
    brokers.append(b)
    b.start()
    c = client(b)
    c.subscribe("/queue/grp.lru", id="s", ack="auto")
    bodies = ["x1", "y1", "x2", "z1", "x3", "y2", "z2", "x4"]
    send_persistent(b, "/queue/grp.lru", bodies, lambda i: {"JMSXGroupID": bodies[i][0]})
    got = c.collector.wait_messages(8)
    assert [m.body for m in got] == bodies
    # One consumer: JMSXGroupFirstForConsumer marks each message that found its group
    # unpinned. x2 makes x more recent than y, so z1 evicts y and x3 still finds x; then
    # y2 evicts z, z2 evicts x, x4 evicts y.
    firsts = [m.headers.get("JMSXGroupFirstForConsumer") == "true" for m in got]
    assert firsts == [True, True, False, True, False, True, True, True], firsts
    d = next(d for d in json.loads(admin_get(b, "/api/destinations")) if d.get("name") == "/queue/grp.lru")
    assert (d["message_groups"], d["message_groups_evicted"]) == (2, 4), d
    metrics = admin_get(b, "/metrics")
    assert 'tandem_message_groups{destination="/queue/grp.lru"} 2\n' in metrics
    assert 'tandem_message_groups_evicted_total{destination="/queue/grp.lru"} 4\n' in metrics


def test_each_group_keeps_its_order_across_a_failover(brokers):
    master, slave = new_group(brokers, 2, config={"allow_anonymous": True})
    groups, per_group = 6, 10
    bodies, headers = group_headers(groups, per_group)
    send_persistent(master, "/queue/grp.fo", bodies, headers)
    # Two consumers take part of the groups and ack some of it; the rest is unacked or pending
    # when the master dies.
    consumed = collections.defaultdict(list)  # group -> message numbers acked before the kill
    before = []
    for name in ("a", "b"):
        conn = client(master)
        conn.subscribe("/queue/grp.fo", id="s", ack="client-individual", headers={"activemq.prefetchSize": "4"})
        before.append(conn)
    for conn in before:
        got = conn.collector.wait_messages(4)
        for m in got[:2]:
            conn.ack(m.headers["ack"], receipt=f"ack-{m.body}")
            conn.collector.wait_receipt(f"ack-{m.body}")
            g, n = m.body.split("-")
            consumed[g].append(int(n))
    master.kill()
    slave.wait_log(r"main master epoch=\d+", timeout=30)
    # Consumers reconnect to the new master: every group is assigned again, and each one
    # goes on where its acked messages ended, in order.
    after = []
    conns = []
    for name in ("a", "b"):
        conn = client(slave)
        conn.subscribe("/queue/grp.fo", id="s", ack="client-individual", headers={"activemq.prefetchSize": "1000"})
        conns.append((name, conn))
    left = groups * per_group - sum(len(v) for v in consumed.values())
    wait_for(lambda: sum(len(c.collector.messages) for _, c in conns) == left, what=f"{left} deliveries")
    for name, conn in conns:
        for m in conn.collector.messages:
            after.append((name, m.body))
    owner = collections.defaultdict(set)
    per = collections.defaultdict(list)
    for who, body in after:
        g, n = body.split("-")
        owner[g].add(who)
        per[g].append(int(n))
    for g in range(groups):
        name = f"g{g}"
        assert len(owner[name]) <= 1, (name, owner[name])
        assert sorted(consumed[name]) + per[name] == list(range(per_group)), (name, consumed[name], per[name])


if __name__ == "__main__":
    run([
        test_the_next_exclusive_consumer_takes_over_in_order,
        test_a_higher_priority_consumer_is_preferred_while_it_has_room,
        test_a_group_moves_to_another_consumer_with_nothing_reordered,
        test_each_group_keeps_its_order_across_a_failover,
        test_the_least_recently_used_group_is_evicted_past_the_bound,
    ])
