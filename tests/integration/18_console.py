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

from tandem_test import Broker, DEFAULT_TIMEOUT, client, run

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


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
