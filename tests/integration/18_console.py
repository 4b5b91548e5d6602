"""18 console: what the web console's panels ask of the admin port (issue 18). The browse
endpoint (GET /api/destinations/NAME/browse: pages of a queue's pending messages, admin group
only, nothing consumed) and the WebSocket origin of the console's send panel (the admin port's
own origin is accepted on ws_listen without being listed in ws_allowed_origins). The panels
themselves run in Chromium in 18_browser.py."""
import base64
import http.client
import json
import urllib.parse

import websocket

import os
import signal
import tempfile

from tandem_test import Broker, DEFAULT_TIMEOUT, SharedBroker, client, run, wait_for

USERS = [
    {"login": "ops", "password": "ops-secret", "groups": ["admin"]},
    {"login": "prom", "password": "prom-secret", "groups": ["metrics"]},
    {"login": "app", "password": "app-secret", "groups": ["apps"]},
]
OPS = "Basic " + base64.b64encode(b"ops:ops-secret").decode()
PROM = "Basic " + base64.b64encode(b"prom:prom-secret").decode()


def console_broker(brokers, **extra):
    config = {"users": USERS, "admin_open_reads": True, "ws_listen": "127.0.0.1:0",
              "ws_allowed_origins": ["http://app.example"]}
    config.update(extra)
    b = Broker(config=config, name="console")
    brokers.append(b)
    b.start()
    b.ws_port = int(b.wait_log(r"stomp ws listening .*port=(\d+)").group(1))
    return b


def get(b, path, auth=OPS):
    conn = http.client.HTTPConnection("127.0.0.1", b.admin_port, timeout=30)
    headers = {"Authorization": auth} if auth else {}
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    return r.status, (json.loads(body) if body.startswith(("{", "[")) else body)


def browse_path(queue, **query):
    return f"/api/destinations/{urllib.parse.quote(queue, safe='')}/browse?" + urllib.parse.urlencode(query)


def send_as_app(b, dest, bodies, headers=None):
    c = client(b, login="app", passcode="app-secret")
    for i, body in enumerate(bodies):
        h = {"persistent": "true", "receipt": f"s{i}"}
        h.update(headers(i) if headers else {})
        c.send(dest, body, headers=h)
        c.collector.wait_receipt(f"s{i}")
    c.disconnect()


def test_browse_pages_through_a_queue_in_order_and_consumes_nothing(brokers):
    b = console_broker(brokers)
    bodies = [f"m{i:02d}" for i in range(25)] + ["x" * 3000]
    send_as_app(b, "/queue/browse-me", bodies, headers=lambda i: {"colour": "red" if i % 2 else "blue"})
    seen, after, pages = [], 0, 0
    while True:
        status, page = get(b, browse_path("/queue/browse-me", after=after, limit=10))
        assert status == 200, page
        pages += 1
        assert len(page["messages"]) <= 10
        seen += page["messages"]
        after = page["next"]
        if not page["more"]:
            break
        assert pages < 10, "browse pages never end"
    assert pages == 3, pages
    assert [m["body_preview"] for m in seen[:25]] == bodies[:25]
    last = seen[25]
    assert last["body_bytes"] == 3000 and last["body_truncated"] and len(last["body_preview"]) == 1024, last
    assert ["colour", "red"] in seen[1]["headers"] and ["colour", "blue"] in seen[0]["headers"], seen[0]
    assert all(m["persistent"] for m in seen)
    # Nothing was consumed: a consumer still gets every message, in order.
    c = client(b, login="app", passcode="app-secret")
    c.subscribe("/queue/browse-me", id="s", ack="auto")
    got = c.collector.wait_messages(26)
    assert [m.body for m in got[:25]] == bodies[:25]
    c.disconnect()
    # Now the queue is empty: a page with no messages, and no more.
    status, page = get(b, browse_path("/queue/browse-me"))
    assert status == 200 and page["messages"] == [] and not page["more"], page


def test_browse_needs_a_user_in_group_admin_even_with_open_reads(brokers):
    b = console_broker(brokers)
    send_as_app(b, "/queue/secret", ["payroll"])
    assert get(b, "/api/destinations", auth=None)[0] == 200  # reads are open here...
    assert get(b, browse_path("/queue/secret"), auth=None)[0] == 401  # ...message bodies are not
    status, body = get(b, browse_path("/queue/secret"), auth=PROM)
    assert status == 403 and "admin" in body["error"], body
    status, body = get(b, browse_path("/queue/secret"), auth=OPS)
    assert status == 200 and [m["body_preview"] for m in body["messages"]] == ["payroll"], body


def test_browse_of_a_queue_that_does_not_exist_is_404(brokers):
    b = console_broker(brokers)
    status, body = get(b, browse_path("/queue/never-used"))
    assert status == 404 and "/queue/never-used" in body["error"], body
    status, body = get(b, browse_path("/topic/news"))
    assert status == 404, body


def test_the_admin_ports_own_origin_may_open_a_websocket(brokers):
    # The console's send panel is a page of the admin port: its origin is accepted on
    # ws_listen although ws_allowed_origins lists only http://app.example.
    b = console_broker(brokers)
    for origin in (f"http://127.0.0.1:{b.admin_port}", f"http://localhost:{b.admin_port}", "http://app.example"):
        ws = websocket.create_connection(f"ws://127.0.0.1:{b.ws_port}/", subprotocols=["v12.stomp"], origin=origin,
                                         timeout=DEFAULT_TIMEOUT)
        ws.close()
    for origin in (f"http://127.0.0.1:{b.admin_port + 1}", "http://evil.example"):
        try:
            websocket.create_connection(f"ws://127.0.0.1:{b.ws_port}/", subprotocols=["v12.stomp"], origin=origin,
                                        timeout=DEFAULT_TIMEOUT).close()
        except websocket.WebSocketBadStatusException as e:
            assert e.status_code == 403, e
        else:
            raise AssertionError(f"origin {origin} was let in")


def history(b):
    status, health = get(b, "/health", auth=None)
    assert status == 200, health
    return health.get("history", [])


def test_the_failover_timeline_outlives_every_broker_process(brokers):
    # The console's timeline reads DIR/masters.jsonl through /health: three masters of one
    # store, each a new process, and none of them remembers the others in memory.
    store = os.path.join(tempfile.mkdtemp(prefix="tandem-itest-store-"), "store")
    first = SharedBroker(store, "b0", create=True)
    brokers.append(first)
    first.start()
    wait_for(lambda: len(history(first)) == 1, DEFAULT_TIMEOUT, "b0 in the history")
    first.stop()  # SIGTERM: a clean release
    second = SharedBroker(store, "b1")
    brokers.append(second)
    second.start()
    wait_for(lambda: len(history(second)) == 2, DEFAULT_TIMEOUT, "b1 in the history")
    second.proc.send_signal(signal.SIGKILL)  # a crash: the next master finds an unclean end
    second.proc.wait()
    third = SharedBroker(store, "b0")
    brokers.append(third)
    third.start()
    wait_for(lambda: len(history(third)) == 3, DEFAULT_TIMEOUT, "the third master in the history")
    h = history(third)
    assert [(s["epoch"], s["broker_name"]) for s in h] == [(1, "b0"), (2, "b1"), (3, "b0")], h
    assert h[0]["previous_epoch"] == 0 and h[0]["failover_ms"] is None, h[0]
    assert h[1]["previous_clean"] is True and h[1]["previous_broker"] == "b0" and h[1]["previous_epoch"] == 1, h[1]
    assert h[2]["previous_clean"] is False and h[2]["previous_broker"] == "b1" and h[2]["previous_epoch"] == 2, h[2]
    for s in h[1:]:
        assert 0 <= s["failover_ms"] < 60_000, s
        assert s["acquired_at_ms"] <= s["serving_at_ms"] and s["start_ms"] >= 0, s
        assert s["host"] and s["pid"] > 0, s
    # A clean stop's failover ends at serving: it starts at the release, before this
    # process even started, so it covers at least the lock-to-serving part.
    assert h[1]["failover_ms"] >= h[1]["start_ms"], h[1]
    # After the crash, what the new master measured: its lease wait plus its start.
    assert h[2]["failover_ms"] == h[2]["takeover_delay_ms"] + h[2]["start_ms"], h[2]
    with open(os.path.join(store, "masters.jsonl")) as f:
        assert [json.loads(line)["epoch"] for line in f] == [1, 2, 3]


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
