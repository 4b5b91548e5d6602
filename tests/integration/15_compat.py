"""15 compatibility (issue 15): what stock STOMP clients and applications moving from ActiveMQ
expect of a broker started as the README says: no security without a config, negotiated
heart-beats, the frame size limit, JMS-mapped headers, selectors."""
import subprocess
import time

from tandem_test import Broker, Raw, client, new_broker, run, tandemd_path, wait_for


def test_no_config_accepts_any_login_and_logs_it_unauthenticated(brokers):
    b = new_broker(brokers)
    c = client(b, login="guest", passcode="guest")  # what stomp.py's and RabbitMQ's tests send
    assert c.is_connected()
    c.disconnect()
    r = Raw(b)
    cmd, headers, _ = r.connect(extra={"login": "someone", "passcode": "anything"})
    assert cmd == "CONNECTED", (cmd, headers)
    b.wait_log(r"unauthenticated CONNECT.*login=(guest|someone)")


def test_no_config_on_a_non_loopback_address_refuses_to_start(brokers):
    b = Broker()
    brokers.append(b)
    out = subprocess.run([tandemd_path(), "--store", b.store, "--create-store", "--listen", "0.0.0.0:0"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode != 0, out
    assert "not a loopback address" in out.stderr and "--config" in out.stderr, out.stderr


def test_a_config_without_users_that_allows_anonymous_accepts_any_login(brokers):
    b = Broker(config={"allow_anonymous": True})
    brokers.append(b)
    b.start()
    c = client(b, login="guest", passcode="guest")
    assert c.is_connected()
    c.disconnect()


def test_heart_beats_are_the_clients_down_to_the_floor(brokers):
    b = new_broker(brokers)
    r = Raw(b)
    _, headers, _ = r.connect(extra={"heart-beat": "300,400"})
    # The broker sends every 400 ms (the client's wish) and expects one every 300 ms.
    assert headers.get("heart-beat") == "400,300", headers
    r.close()
    r = Raw(b)
    _, headers, _ = r.connect(extra={"heart-beat": "1,1"})
    assert headers.get("heart-beat") == "100,100", headers  # the 100 ms floor
    r.close()
    r = Raw(b)
    _, headers, _ = r.connect(extra={"heart-beat": "0,0"})
    assert headers.get("heart-beat") == "0,0", headers


def test_a_silent_client_is_dropped_after_its_interval_times_the_grace(brokers):
    b = new_broker(brokers)
    r = Raw(b)
    r.connect(extra={"heart-beat": "300,0"})
    t0 = time.monotonic()
    r.read_eof(timeout=10)
    took = time.monotonic() - t0
    # 300 ms x 1.5 = 450 ms; the old 10 s floor made it 15 s.
    assert 0.3 < took < 2.0, took


def test_stomp_1_0_connected_carries_heart_beat_0_0(brokers):
    b = new_broker(brokers)
    r = Raw(b)
    r.frame("CONNECT", {"heart-beat": "100,100"})
    cmd, headers, _ = r.read_frame()
    assert cmd == "CONNECTED" and headers.get("heart-beat") == "0,0", (cmd, headers)


def test_a_frame_over_max_frame_bytes_gets_an_error_naming_the_limit_and_key(brokers):
    b = Broker(config={"allow_anonymous": True, "max_frame_bytes": 8192})
    brokers.append(b)
    b.start()
    r = Raw(b)
    r.connect()
    r.frame("SEND", {"destination": "/queue/big"}, b"x" * 6000)
    r.frame("SEND", {"destination": "/queue/big", "receipt": "small"}, b"x" * 100)
    assert r.read_frame()[0] == "RECEIPT"
    r.frame("SEND", {"destination": "/queue/big"}, b"x" * 9000)
    cmd, headers, body = r.read_frame()
    assert cmd == "ERROR", cmd
    assert "max_frame_bytes" in headers.get("message", ""), headers
    assert b"8192" in body and b"max_frame_bytes" in body, body


def test_the_default_frame_limit_takes_a_20_mib_message(brokers):
    b = new_broker(brokers)
    r = Raw(b)
    r.connect()
    r.frame("SEND", {"destination": "/queue/big", "receipt": "r"}, b"y" * (20 << 20))
    cmd, headers, _ = r.read_frame(timeout=60)
    assert cmd == "RECEIPT", (cmd, headers)


def test_timestamp_is_stamped_at_receipt_and_jms_headers_round_trip(brokers):
    b = new_broker(brokers)
    p, c = client(b), client(b)
    c.subscribe("/queue/jms", id="s")
    before = int(time.time() * 1000)
    jms = {"correlation-id": "c-1", "reply-to": "/queue/answers", "type": "order", "priority": "7",
           "persistent": "true", "expires": str(before + 3600_000)}
    p.send("/queue/jms", "a", headers=dict(jms))
    p.send("/queue/jms", "b", headers={"timestamp": "12345"})
    a, bb = sorted(c.collector.wait_messages(2), key=lambda m: m.body)  # "a" is journaled first
    after = int(time.time() * 1000)
    assert before <= int(a.headers["timestamp"]) <= after, a.headers
    for k, v in jms.items():
        assert a.headers.get(k) == v, (k, a.headers)
    assert bb.headers.get("timestamp") == "12345", bb.headers


def test_a_queue_selector_filters_and_keeps_what_nobody_matches(brokers):
    b = new_broker(brokers)
    p = client(b)
    red = client(b)
    red.subscribe("/queue/sel", id="r", ack="client-individual", headers={"selector": "color = 'red'"})
    for i, color in enumerate(["red", "blue", "red", "green", "red"]):
        p.send("/queue/sel", f"{color}{i}", headers={"color": color})
    got = red.collector.wait_messages(3)
    assert [m.body for m in got] == ["red0", "red2", "red4"], [m.body for m in got]
    blue = client(b)
    blue.subscribe("/queue/sel", id="b", headers={"selector": "color IN ('blue', 'green')"})
    assert [m.body for m in blue.collector.wait_messages(2)] == ["blue1", "green3"]


def test_selectors_see_jms_headers_and_compare_numbers_as_activemq(brokers):
    b = new_broker(brokers)
    p, c = client(b), client(b)
    c.subscribe("/topic/prices", id="s", headers={"selector": "JMSPriority > 5 AND price > 10.0"})
    p.send("/topic/prices", "cheap", headers={"priority": "9", "price": "3.5"})
    p.send("/topic/prices", "low", headers={"priority": "1", "price": "30"})
    p.send("/topic/prices", "hit", headers={"priority": "9", "price": "10.5", "receipt": "r"})
    p.collector.wait_receipt("r")
    [m] = c.collector.wait_messages(1)
    assert m.body == "hit"


def test_an_invalid_selector_is_refused_with_where(brokers):
    b = new_broker(brokers)
    r = Raw(b)
    r.connect()
    r.frame("SUBSCRIBE", {"destination": "/queue/x", "id": "s", "selector": "color = 'red' AND (size > 3"})
    cmd, headers, body = r.read_frame()
    assert cmd == "ERROR" and headers.get("message") == "invalid selector", (cmd, headers)
    assert b"column" in body, body


def test_a_durable_subscription_keeps_its_selector_over_a_restart(brokers):
    b = new_broker(brokers)
    c = client(b, headers={"client-id": "app"})
    c.subscribe("/topic/ev", id="d", ack="client-individual",
                headers={"activemq.subscriptionName": "only-big", "selector": "size > 100", "receipt": "sub"})
    c.collector.wait_receipt("sub")
    c.disconnect()
    b.stop()
    b.start()
    p = client(b)
    for size in (5, 500, 50, 1000):
        p.send("/topic/ev", f"s{size}", headers={"size": str(size), "persistent": "true"})
    p.send("/topic/ev", "end", headers={"size": "101", "receipt": "r", "persistent": "true"})
    p.collector.wait_receipt("r")
    c = client(b, headers={"client-id": "app"})
    c.subscribe("/topic/ev", id="d", ack="auto",
                headers={"activemq.subscriptionName": "only-big", "selector": "size > 100"})
    got = c.collector.wait_messages(3)
    assert [m.body for m in got] == ["s500", "s1000", "end"], [m.body for m in got]


def test_a_queue_browser_sees_a_filtered_snapshot_then_browser_end_and_consumes_nothing(brokers):
    b = new_broker(brokers)
    r = Raw(b)
    r.connect()
    for i, color in enumerate(["red", "blue", "red"]):
        r.frame("SEND", {"destination": "/queue/br", "color": color, "persistent": "true" if i else "false",
                         "receipt": f"r{i}"}, str(i))
        assert r.read_frame()[0] == "RECEIPT"
    r.frame("SUBSCRIBE", {"destination": "/queue/br", "id": "b", "browser": "true", "selector": "color = 'red'"})
    seen = []
    while True:
        cmd, headers, body = r.read_frame()
        assert cmd == "MESSAGE", (cmd, headers)
        if headers.get("browser") == "end":
            assert body == b"" and headers.get("subscription") == "b", headers
            break
        seen.append(body)
    assert seen == [b"0", b"2"], seen
    c = client(b)
    c.subscribe("/queue/br", id="c")
    assert [m.body for m in c.collector.wait_messages(3)] == ["0", "1", "2"]


def test_wildcard_topic_subscriptions_get_the_real_destination(brokers):
    b = new_broker(brokers)
    p, c = client(b), client(b)
    c.subscribe("/topic/prices.*", id="one")
    c.subscribe("/topic/prices.>", id="all", headers={"receipt": "s"})
    c.collector.wait_receipt("s")
    p.send("/topic/prices.eur", "1")
    p.send("/topic/prices.eur.spot", "2")
    p.send("/topic/other.eur", "x", headers={"receipt": "r"})
    p.collector.wait_receipt("r")
    got = c.collector.wait_messages(3)
    seen = sorted((m.headers["subscription"], m.headers["destination"], m.body) for m in got)
    assert seen == [("all", "/topic/prices.eur", "1"), ("all", "/topic/prices.eur.spot", "2"),
                    ("one", "/topic/prices.eur", "1")], seen


def test_a_wildcard_queue_subscription_consumes_every_matching_queue(brokers):
    b = new_broker(brokers)
    p = client(b)
    p.send("/queue/jobs.eu", "eu", headers={"receipt": "r1"})
    p.send("/queue/jobs.us.east", "us", headers={"receipt": "r2", "persistent": "true"})
    p.collector.wait_receipt("r2")
    c = client(b)
    c.subscribe("/queue/jobs.>", id="w", ack="client-individual")
    got = c.collector.wait_messages(2)
    assert sorted((m.headers["destination"], m.body) for m in got) == [("/queue/jobs.eu", "eu"),
                                                                      ("/queue/jobs.us.east", "us")]
    p.send("/queue/jobs.asia", "later", headers={"receipt": "r3"})
    p.collector.wait_receipt("r3")
    assert c.collector.wait_messages(3)[2].body == "later"
    c.disconnect()  # unacked: back on their own queues
    d = client(b)
    d.subscribe("/queue/jobs.eu", id="e")
    [m] = d.collector.wait_messages(1)
    assert m.body == "eu" and m.headers.get("redelivered") == "true", m.headers


def test_a_composite_destination_delivers_to_each_part(brokers):
    b = new_broker(brokers)
    p, c = client(b), client(b)
    c.subscribe("/queue/ca", id="a")
    c.subscribe("/topic/cb", id="b", headers={"receipt": "s"})
    c.collector.wait_receipt("s")
    p.send("/queue/ca,/topic/cb", "both", headers={"persistent": "true", "receipt": "r"})
    p.collector.wait_receipt("r")
    got = c.collector.wait_messages(2)
    assert sorted((m.headers["destination"], m.body) for m in got) == [("/queue/ca", "both"), ("/topic/cb", "both")]


def test_a_composite_subscribe_consumes_from_each_queue(brokers):
    b = new_broker(brokers)
    p, c = client(b), client(b)
    p.send("/queue/cs.a", "a1", headers={"persistent": "true"})
    c.subscribe("/queue/cs.a,/queue/cs.b,/queue/cs.w.>", id="s", ack="client-individual",
                headers={"receipt": "s"})
    c.collector.wait_receipt("s")
    p.send("/queue/cs.b", "b1", headers={"persistent": "true"})
    p.send("/queue/cs.w.new", "w1", headers={"persistent": "true"})  # made after the SUBSCRIBE
    p.send("/queue/cs.other", "no", headers={"persistent": "true", "receipt": "r"})
    p.collector.wait_receipt("r")
    got = c.collector.wait_messages(3)
    assert sorted((m.headers["destination"], m.body) for m in got) == [
        ("/queue/cs.a", "a1"), ("/queue/cs.b", "b1"), ("/queue/cs.w.new", "w1")]
    time.sleep(0.3)
    assert len(c.collector.messages) == 3, c.collector.messages
    c.ack(got[1].headers["ack"])  # acks go to the queue the message came from
    c.disconnect()  # the two unacked go back to their own queues
    d = client(b)
    d.subscribe("/queue/cs.a", id="a")
    d.subscribe("/queue/cs.w.new", id="w")
    again = d.collector.wait_messages(2)
    assert sorted(m.body for m in again) == sorted(m.body for i, m in enumerate(got) if i != 1)


def test_a_composite_subscribe_with_a_topic_part_is_refused(brokers):
    b = new_broker(brokers)
    r = Raw(b)
    r.connect()
    r.frame("SUBSCRIBE", {"destination": "/queue/x,/topic/y", "id": "s", "receipt": "r"})
    f = r.read_frame()
    assert f[0] == "ERROR" and "'/topic/y' on its own" in f[2].decode() + f[1].get("message", ""), f


def test_a_virtual_topic_feeds_each_consumer_queue_persistently(brokers):
    b = new_broker(brokers)
    a1, a2, bb = client(b), client(b), client(b)
    for c, q in ((a1, "A"), (a2, "A"), (bb, "B")):
        c.subscribe(f"/queue/Consumer.{q}.VirtualTopic.Orders", id="s", ack="client-individual",
                    headers={"receipt": "s"})
        c.collector.wait_receipt("s")
    p = client(b)
    for i in range(4):
        p.send("/topic/VirtualTopic.Orders", str(i), headers={"persistent": "true"})
    p.send("/topic/VirtualTopic.Orders", "end", headers={"persistent": "true", "receipt": "r"})
    p.collector.wait_receipt("r")
    wait_for(lambda: len(a1.collector.messages) + len(a2.collector.messages) == 5, what="group A")
    got_b = bb.collector.wait_messages(5)
    assert [m.body for m in got_b] == ["0", "1", "2", "3", "end"]
    assert got_b[0].headers["destination"] == "/queue/Consumer.B.VirtualTopic.Orders"
    assert sorted(m.body for m in a1.collector.messages + a2.collector.messages) == ["0", "1", "2", "3", "end"]
    # Persistent: B's queue keeps what B did not ack across a restart.
    bb.disconnect()
    b.stop()
    b.start()
    again = client(b)
    again.subscribe("/queue/Consumer.B.VirtualTopic.Orders", id="s")
    assert [m.body for m in again.collector.wait_messages(5)] == ["0", "1", "2", "3", "end"]


def test_a_temporary_queue_as_reply_to_is_rewritten_and_dies_with_its_connection(brokers):
    b = new_broker(brokers)
    asker = Raw(b)
    asker.connect()
    asker.frame("SUBSCRIBE", {"destination": "/temp-queue/replies", "id": "t", "receipt": "s"})
    assert asker.read_frame()[0] == "RECEIPT"
    asker.frame("SEND", {"destination": "/queue/requests", "reply-to": "/temp-queue/replies"}, "ask")
    server = client(b)
    server.subscribe("/queue/requests", id="srv")
    [req] = server.collector.wait_messages(1)
    reply_to = req.headers["reply-to"]
    assert reply_to.startswith("/remote-temp-queue/"), reply_to
    server.send(reply_to, "answer")
    cmd, headers, body = asker.read_frame()
    assert cmd == "MESSAGE" and body == b"answer", (cmd, headers, body)
    assert headers["destination"] == "/temp-queue/replies", headers
    asker.close()
    r = Raw(b)
    r.connect()
    wait_for(lambda: not _temp_exists(b, reply_to), what="temporary queue deleted")
    r.frame("SEND", {"destination": reply_to, "receipt": "late"}, "too late")
    cmd, headers, _ = r.read_frame()
    assert cmd == "ERROR" and headers.get("message") == "no such destination", (cmd, headers)


def _temp_exists(b, name):
    import json
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}/api/destinations", timeout=5) as resp:
        return any(d.get("name") == name for d in json.loads(resp.read()))


if __name__ == "__main__":
    run([
        test_no_config_accepts_any_login_and_logs_it_unauthenticated,
        test_no_config_on_a_non_loopback_address_refuses_to_start,
        test_a_config_without_users_that_allows_anonymous_accepts_any_login,
        test_heart_beats_are_the_clients_down_to_the_floor,
        test_a_silent_client_is_dropped_after_its_interval_times_the_grace,
        test_stomp_1_0_connected_carries_heart_beat_0_0,
        test_a_frame_over_max_frame_bytes_gets_an_error_naming_the_limit_and_key,
        test_the_default_frame_limit_takes_a_20_mib_message,
        test_timestamp_is_stamped_at_receipt_and_jms_headers_round_trip,
        test_a_queue_selector_filters_and_keeps_what_nobody_matches,
        test_selectors_see_jms_headers_and_compare_numbers_as_activemq,
        test_an_invalid_selector_is_refused_with_where,
        test_a_durable_subscription_keeps_its_selector_over_a_restart,
        test_a_queue_browser_sees_a_filtered_snapshot_then_browser_end_and_consumes_nothing,
        test_wildcard_topic_subscriptions_get_the_real_destination,
        test_a_composite_destination_delivers_to_each_part,
        test_a_composite_subscribe_consumes_from_each_queue,
        test_a_composite_subscribe_with_a_topic_part_is_refused,
        test_a_virtual_topic_feeds_each_consumer_queue_persistently,
        test_a_temporary_queue_as_reply_to_is_rewritten_and_dies_with_its_connection,
        test_a_wildcard_queue_subscription_consumes_every_matching_queue,
    ])
