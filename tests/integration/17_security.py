"""17 security (issue 17): the admin port's authentication, Host / Origin checks and
cross-site refusals, slow password hashes, and throttled login failures.
Each regression test names the finding of issue 17 it pins."""
import base64
import http.client
import json
import re
import time

from tandem_test import Broker, Raw, client, run, wait_for

USERS = [
    {"login": "ops", "password": "ops-secret", "groups": ["admin"]},
    {"login": "prom", "password": "prom-secret", "groups": ["metrics"]},
    {"login": "app", "password": "app-secret"},
]


def basic(login, password):
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def http_call(b, method, path, headers=None, body=None, host=None):
    """One request to b's admin port; returns (status, headers dict, body text)."""
    conn = http.client.HTTPConnection("127.0.0.1", b.admin_port, timeout=30)
    h = {"Host": host or f"127.0.0.1:{b.admin_port}"}
    h.update(headers or {})
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in h.items():
        conn.putheader(k, v)
    data = body.encode() if isinstance(body, str) else body
    if data is not None:
        conn.putheader("Content-Length", str(len(data)))
    conn.endheaders(data)
    r = conn.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode())
    conn.close()
    return out


def pending(b, dest):
    status, _, body = http_call(b, "GET", "/api/destinations", {"Authorization": basic("ops", "ops-secret")})
    assert status == 200, body
    for d in json.loads(body):
        if d["name"] == dest:
            return d["pending"]
    return 0


def secured_broker(brokers, **extra):
    cfg = {"users": USERS}
    cfg.update(extra)
    b = Broker(config=cfg)
    brokers.append(b)
    b.start()
    return b


def fill(b, dest, n):
    c = client(b, login="app", passcode="app-secret")
    for i in range(n):
        c.send(dest, f"m{i}", headers={"persistent": "true", "receipt": f"r{i}"})
    c.collector.wait_receipt(f"r{n - 1}")
    c.disconnect()


def test_cross_site_simple_post_does_not_purge(brokers):
    # Regression (issue 17, finding 1): a text/plain POST without credentials purged 500
    # messages with HTTP 200.
    b = secured_broker(brokers)
    fill(b, "/queue/orders", 50)
    path = "/api/destinations/%2Fqueue%2Forders/purge"
    status, _, body = http_call(b, "POST", path, {"Content-Type": "text/plain", "Origin": "http://evil.example"}, "")
    assert status in (401, 403, 415), (status, body)
    status, _, body = http_call(b, "POST", path, {"Content-Type": "text/plain"}, "")
    assert status == 415 and "application/json" in body, (status, body)
    # Right credentials do not make a simple or foreign request acceptable.
    ops = {"Authorization": basic("ops", "ops-secret")}
    status, _, body = http_call(b, "POST", path, {**ops, "Content-Type": "text/plain"}, "")
    assert status == 415, (status, body)
    status, _, body = http_call(b, "POST", path, {**ops, "Content-Type": "application/json", "Origin": "http://evil.example"}, "{}")
    assert status == 403 and "Origin" in body, (status, body)
    status, _, body = http_call(b, "POST", path, {**ops, "X-Tandem-Admin": "1", "Sec-Fetch-Site": "cross-site"})
    assert status == 403, (status, body)
    # No credentials, wrong password, a user without group admin.
    status, headers, body = http_call(b, "POST", path, {"Content-Type": "application/json"}, "{}")
    assert status == 401 and headers.get("www-authenticate", "").startswith("Basic"), (status, headers, body)
    status, _, body = http_call(b, "POST", path, {"Authorization": basic("ops", "nope"), "X-Tandem-Admin": "1"})
    assert status == 401, (status, body)
    status, _, body = http_call(b, "POST", path, {"Authorization": basic("prom", "prom-secret"), "X-Tandem-Admin": "1"})
    assert status == 403 and "admin" in body, (status, body)
    assert pending(b, "/queue/orders") == 50
    assert "request refused" in b.log_text()
    # The admin, from its own origin, with a JSON request: purged.
    own = f"http://127.0.0.1:{b.admin_port}"
    status, _, body = http_call(b, "POST", path, {**ops, "Content-Type": "application/json", "Origin": own}, "{}")
    assert status == 200 and json.loads(body)["purged"] == 50, (status, body)
    assert pending(b, "/queue/orders") == 0


def test_foreign_host_is_refused_everywhere(brokers):
    # Regression (issue 17, finding 1): DNS rebinding read /api/connections (logins, peers).
    b = secured_broker(brokers, admin_allowed_hosts=["broker-a.mgmt.example"])
    ops = {"Authorization": basic("ops", "ops-secret")}
    for path in ("/api/connections", "/metrics", "/health"):
        status, _, body = http_call(b, "GET", path, ops, host=f"evil.example:{b.admin_port}")
        assert status == 403 and "Host" in body, (path, status, body)
    assert http_call(b, "GET", "/api/connections", ops)[0] == 200
    assert http_call(b, "GET", "/api/connections", ops, host=f"localhost:{b.admin_port}")[0] == 200
    assert http_call(b, "GET", "/api/connections", ops, host=f"broker-a.mgmt.example:{b.admin_port}")[0] == 200
    assert http_call(b, "GET", "/api/connections", ops, host="broker-a.mgmt.example")[0] == 200


def test_reads_need_group_metrics_or_admin_unless_opened(brokers):
    b = secured_broker(brokers)
    assert http_call(b, "GET", "/health")[0] == 200  # load balancers
    for path in ("/metrics", "/api/destinations", "/api/connections"):
        status, headers, _ = http_call(b, "GET", path)
        assert status == 401 and "www-authenticate" in headers, (path, status)
        assert http_call(b, "GET", path, {"Authorization": basic("prom", "prom-secret")})[0] == 200, path
        assert http_call(b, "GET", path, {"Authorization": basic("app", "app-secret")})[0] == 403, path
    opened = secured_broker(brokers, admin_open_reads=True)
    assert http_call(opened, "GET", "/metrics")[0] == 200
    # Opening reads opens no write.
    status, _, _ = http_call(opened, "POST", "/api/destinations/%2Fqueue%2Fx/purge", {"X-Tandem-Admin": "1"})
    assert status == 401


def test_no_config_quick_start_keeps_reads_open_on_loopback_but_not_purge(brokers):
    b = Broker()
    brokers.append(b)
    b.start()
    assert http_call(b, "GET", "/api/destinations")[0] == 200
    status, _, body = http_call(b, "POST", "/api/destinations/%2Fqueue%2Fx/purge", {"X-Tandem-Admin": "1"})
    assert status == 401, (status, body)


def connect_error(b, login, passcode):
    r = Raw(b)
    r.frame("CONNECT", {"accept-version": "1.2", "host": "x", "login": login, "passcode": passcode})
    f = r.read_frame()
    r.sock.close()
    return f


def test_wrong_passwords_are_throttled_per_peer_and_login(brokers):
    # Regression (issue 17, finding 6): 4,525 wrong passcodes a second were answered.
    b = secured_broker(brokers)
    t0 = time.monotonic()
    answers = []

    def retry_after(f):
        m = re.search(rb"retry in (\d+) s", f[2])
        return int(m.group(1)) if m else 0

    # Guess until the broker has doubled its delay once (the hash takes ~0.4 s a guess, more
    # on a loaded machine: no fixed duration).
    while time.monotonic() - t0 < 120 and not (answers and retry_after(answers[-1]) >= 2):
        answers.append(connect_error(b, "app", "guess"))
    assert all(f[0] == "ERROR" for f in answers)
    throttled = [f for f in answers if retry_after(f)]
    assert throttled, [f[2] for f in answers[:10]]
    # Only the free failures and one after each delay ran the password check.
    checked = len(answers) - len(throttled)
    assert checked <= 8, checked
    # While blocked, even the right password waits (the attacker must not learn it works).
    f = connect_error(b, "app", "app-secret")
    assert f[0] == "ERROR" and retry_after(f), f
    text = b.log_text()
    assert "login failed" in text and "login attempts throttled" in text
    # Another login from the same peer is blocked too (per peer); it works once the block ends.
    wait_for(lambda: connect_error(b, "ops", "ops-secret")[0] == "CONNECTED", timeout=70, interval=0.5)


def test_password_hash_is_pbkdf2_and_old_sha256_hashes_still_work(brokers):
    import subprocess
    from tandem_test import tandemd_path
    out = subprocess.run([tandemd_path(), "--hash-password", "-"], input="s3cret\n", capture_output=True, text=True, check=True)
    h = out.stdout.strip()
    assert h.startswith("pbkdf2-sha256:600000:"), h
    legacy = "sha256:00112233445566778899aabbccddeeff:" + __import__("hashlib").sha256(
        bytes.fromhex("00112233445566778899aabbccddeeff") + b"old").hexdigest()
    b = Broker(config={"users": [{"login": "new", "password_hash": h}, {"login": "old", "password_hash": legacy}]})
    brokers.append(b)
    b.start()
    client(b, login="new", passcode="s3cret").disconnect()
    client(b, login="old", passcode="old").disconnect()
    assert "password hash to be rehashed" in b.log_text() and "login=old" in b.log_text()


def test_destination_names_must_be_utf8_and_bounded(brokers):
    # Regression (issue 17, finding 5): a non-UTF-8 destination was journaled and then broke
    # GET /api/destinations, tandemctl destinations and /metrics.
    b = secured_broker(brokers)
    for dest, why in ((b"/queue/bad\xff\xfe", b"UTF-8"), (b"/queue/" + b"x" * 2000, b"max_destination_name_bytes")):
        r = Raw(b)
        r.connect(extra={"login": "app", "passcode": "app-secret"})
        r.send(b"SEND\ndestination:" + dest + b"\npersistent:true\nreceipt:r1\n\nbody\0")
        f = r.read_frame()
        assert f[0] == "ERROR" and why in f[2], f
        r.sock.close()
    ops = {"Authorization": basic("ops", "ops-secret")}
    status, _, body = http_call(b, "GET", "/api/destinations", ops)
    assert status == 200 and json.loads(body) == [], body
    status, _, body = http_call(b, "GET", "/metrics", ops)
    assert status == 200
    body.encode("utf-8")


def test_a_reconnect_storm_costs_one_password_hash(brokers):
    # 40 clients of one login CONNECT at once to a broker that has verified nobody yet (a new
    # master after a takeover): they share one hash, so all are in well before
    # connect_timeout_ms; 40 queued hashes of ~0.4 s would take 16 s.
    b = secured_broker(brokers, connect_timeout_ms=8000)
    socks = [Raw(b) for _ in range(40)]
    t0 = time.monotonic()
    for r in socks:
        r.frame("CONNECT", {"accept-version": "1.2", "host": "x", "login": "app", "passcode": "app-secret"})
    for r in socks:
        f = r.read_frame(timeout=30)
        assert f and f[0] == "CONNECTED", f"{f} after {time.monotonic() - t0:.1f} s (None: closed by connect_timeout_ms)"
    took = time.monotonic() - t0
    assert took < 8, took


AUTHZ_USERS = [
    {"login": "shop", "password": "shop-pw", "groups": ["shop"]},
    {"login": "shipping", "password": "shipping-pw", "groups": ["shipping"]},
    {"login": "ops", "password": "ops-pw", "groups": ["ops", "admin"]},
]
AUTHZ = [
    {"queue": ">", "read": ["ops"], "write": ["ops"], "admin": ["ops"]},
    {"queue": "orders.>", "read": "shipping", "write": ["shop"], "admin": ["shop"]},
    {"topic": "events.>", "read": ["shop", "shipping"], "write": ["shop"], "admin": ["shop", "shipping"]},
]


def frame_error(c):
    c.collector.wait(lambda x: x.errors, what="an ERROR")
    return c.collector.errors[0]


def test_destinations_are_authorized_per_group(brokers):
    # Regression (issue 17, finding 7): any login could read any queue, DLQs included, and
    # take over another application's durable subscription by presenting its client-id.
    b = Broker(config={"users": AUTHZ_USERS, "authorization": AUTHZ})
    brokers.append(b)
    b.start()
    shop = client(b, login="shop", passcode="shop-pw")
    shop.send("/queue/orders.eu", "o1", headers={"persistent": "true", "receipt": "r1"})
    shop.collector.wait_receipt("r1")
    shipping = client(b, login="shipping", passcode="shipping-pw")
    shipping.subscribe("/queue/orders.eu", id="s1", ack="auto")
    assert shipping.collector.wait_messages(1)[0].body == "o1"
    # shipping may not write orders, nor read (or create) the DLQ.
    bad = client(b, login="shipping", passcode="shipping-pw")
    bad.send("/queue/orders.eu", "forged")
    e = frame_error(bad)
    assert e.headers["message"] == "not authorized" and "/queue/orders.eu" in e.body and "'write'" in e.body, e.body
    bad = client(b, login="shipping", passcode="shipping-pw")
    bad.subscribe("/queue/DLQ.orders.eu", id="d", ack="auto")
    e = frame_error(bad)
    assert "/queue/DLQ.orders.eu" in e.body and "'read'" in e.body, e.body
    # shipping may read orders.new, but it does not exist yet: creating it needs admin.
    bad = client(b, login="shipping", passcode="shipping-pw")
    bad.subscribe("/queue/orders.new", id="n", ack="auto")
    e = frame_error(bad)
    assert "/queue/orders.new does not exist yet" in e.body and "'admin'" in e.body and "shop" in e.body, e.body
    ops = client(b, login="ops", passcode="ops-pw")
    ops.send("/queue/DLQ.orders.eu", "x", headers={"receipt": "r2"})
    ops.collector.wait_receipt("r2")
    bad = client(b, login="shipping", passcode="shipping-pw")
    bad.subscribe("/queue/DLQ.orders.eu", id="d", ack="auto")
    e = frame_error(bad)
    assert "/queue/DLQ.orders.eu" in e.body and "'read'" in e.body and "ops" in e.body, e.body
    # A topic nobody created yet needs admin; shipping has it on events.>.
    t = client(b, login="shipping", passcode="shipping-pw", headers={"client-id": "shipping-app"})
    t.subscribe("/topic/events.new", id="t", ack="auto", headers={"activemq.subscriptionName": "feed", "receipt": "r3"})
    t.collector.wait_receipt("r3")
    t.disconnect()
    # shop presents shipping's client-id: it may neither take over nor remove the subscription.
    thief = client(b, login="shop", passcode="shop-pw", headers={"client-id": "shipping-app"})
    thief.subscribe("/topic/events.new", id="t", ack="auto", headers={"activemq.subscriptionName": "feed"})
    e = frame_error(thief)
    assert e.headers["message"] == "durable subscription owned by another login" and "shipping" in e.body, e.body
    thief = client(b, login="shop", passcode="shop-pw", headers={"client-id": "shipping-app"})
    thief.unsubscribe(id="t", headers={"activemq.subscriptionName": "feed"})
    e = frame_error(thief)
    assert "belongs to login 'shipping'" in e.body, e.body
    back = client(b, login="shipping", passcode="shipping-pw", headers={"client-id": "shipping-app"})
    back.subscribe("/topic/events.new", id="t", ack="auto", headers={"activemq.subscriptionName": "feed", "receipt": "r4"})
    back.collector.wait_receipt("r4")


if __name__ == "__main__":
    run([test_cross_site_simple_post_does_not_purge, test_foreign_host_is_refused_everywhere,
         test_reads_need_group_metrics_or_admin_unless_opened, test_no_config_quick_start_keeps_reads_open_on_loopback_but_not_purge,
         test_wrong_passwords_are_throttled_per_peer_and_login, test_password_hash_is_pbkdf2_and_old_sha256_hashes_still_work,
         test_destination_names_must_be_utf8_and_bounded, test_destinations_are_authorized_per_group,
         test_a_reconnect_storm_costs_one_password_hash])
