"""16 scheduler management (issue 16): ActiveMQ's ActiveMQ.Scheduler.Management destination over
STOMP against a real tandemd, driven by Debian's python3-stomp: BROWSE copies the pending
schedules to reply-to (a named queue and a temporary one), REMOVE cancels one job, REMOVEALL
the rest, and after a SIGKILL and restart nothing removed fires; a malformed request gets an
ERROR and changes nothing; with authorization configured only group "admin" may."""
import base64
import http.client
import json
import time

from tandem_test import Broker, client, run, wait_for

MANAGEMENT = "/topic/ActiveMQ.Scheduler.Management"
USERS = [{"login": "ops", "password": "ops-secret", "groups": ["admin"]},
         {"login": "app", "password": "app-secret", "groups": ["apps"]}]
CONFIG = {"allow_anonymous": True, "users": USERS}
AUTH = {"Authorization": "Basic " + base64.b64encode(b"ops:ops-secret").decode()}


def pending(b):
    conn = http.client.HTTPConnection("127.0.0.1", b.admin_port, timeout=30)
    conn.request("GET", "/api/scheduled?offset=0&limit=1000", headers=AUTH)
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    assert r.status == 200, (r.status, body)
    return json.loads(body)["total"]


def start(brokers, config=CONFIG):
    b = Broker(config=config)
    brokers.append(b)
    return b.start()


def request(c, headers, rid):
    h = {"receipt": rid}
    h.update(headers)
    c.send(MANAGEMENT, "", headers=h)
    c.collector.wait_receipt(rid)
    assert not c.collector.errors, c.collector.errors[0].headers


def browse(c, reply_to, rid, expect):
    """BROWSE into `reply_to` (which `c` subscribes to); returns the `expect` copies, and
    anything more that came before the RECEIPT (the broker sends the copies first)."""
    before = len(c.collector.messages)
    request(c, {"AMQ_SCHEDULER_ACTION": "BROWSE", "reply-to": reply_to}, rid)
    return c.collector.wait_messages(before + expect)[before:]


def schedule_three(b):
    p = client(b)
    for i, delay in enumerate((600_000, 300_000, 900_000)):
        p.send("/queue/work", f"job{i}", headers={"persistent": "true", "AMQ_SCHEDULED_DELAY": str(delay),
                                                  "custom": str(i), "receipt": f"s{i}"})
        p.collector.wait_receipt(f"s{i}")
    p.disconnect()


def test_browse_remove_removeall_and_nothing_fires_after_a_restart(brokers):
    b = start(brokers)
    schedule_three(b)
    c = client(b)
    c.subscribe("/queue/jobs", id="jobs", ack="auto", headers={"receipt": "sub"})
    c.collector.wait_receipt("sub")
    copies = browse(c, "/queue/jobs", "b1", 3)
    assert [m.body for m in copies] == ["job1", "job0", "job2"], [m.body for m in copies]  # by next firing
    for m in copies:
        assert m.headers["original-destination"] == "/queue/work", m.headers
        assert m.headers["type"] == "Advisory" and "AMQ_SCHEDULED_DELAY" in m.headers, m.headers
    jobs = [m.headers["scheduledJobId"] for m in copies]
    assert len(set(jobs)) == 3, jobs
    assert pending(b) == 3  # a BROWSE removes nothing

    request(c, {"AMQ_SCHEDULER_ACTION": "REMOVE", "scheduledJobId": jobs[0]}, "r1")
    assert pending(b) == 2
    c.subscribe("/temp-queue/mine", id="tmp", ack="auto", headers={"receipt": "sub2"})
    c.collector.wait_receipt("sub2")
    again = browse(c, "/temp-queue/mine", "b2", 2)
    assert sorted(m.headers["scheduledJobId"] for m in again) == sorted(jobs[1:]), again

    # One due soon, so the restart below would fire it if the REMOVEALL were lost.
    p = client(b)
    p.send("/queue/work", "soon", headers={"persistent": "true", "AMQ_SCHEDULED_DELAY": "1500", "receipt": "s"})
    p.collector.wait_receipt("s")
    request(c, {"AMQ_SCHEDULER_ACTION": "REMOVEALL"}, "r2")
    assert pending(b) == 0
    b.kill()
    b.start()
    assert pending(b) == 0
    w = client(b)
    w.subscribe("/queue/work", id="w", ack="auto")
    # A marker due after "soon" was: once it arrives, "soon" would have too.
    p = client(b)
    p.send("/queue/work", "marker", headers={"persistent": "true", "AMQ_SCHEDULED_DELAY": "2500", "receipt": "m"})
    p.collector.wait_receipt("m")
    got = w.collector.wait_messages(1, timeout=30)
    wait_for(lambda: pending(b) == 0, 10, "the marker to fire")
    assert [m.body for m in w.collector.messages] == ["marker"], [m.body for m in got]


def test_removeall_of_a_time_range_keeps_the_rest(brokers):
    b = start(brokers)
    schedule_three(b)
    now = int(time.time() * 1000)
    c = client(b)
    request(c, {"AMQ_SCHEDULER_ACTION": "REMOVEALL", "ACTION_START_TIME": str(now + 500_000),
                "ACTION_END_TIME": str(now + 1_000_000)}, "r")
    assert pending(b) == 1  # the 300 s one stays
    c.subscribe("/queue/left", id="l", ack="auto", headers={"receipt": "sub"})
    c.collector.wait_receipt("sub")
    assert [m.body for m in browse(c, "/queue/left", "b", 1)] == ["job1"]


def test_a_malformed_request_gets_an_error_and_changes_nothing(brokers):
    b = start(brokers)
    schedule_three(b)
    for headers, says in (
            ({"AMQ_SCHEDULER_ACTION": "REMOVEALL", "AMQ_SCHEDULER_ACTION_START_TIME": "0",
              "AMQ_SCHEDULER_ACTION_END_TIME": "1"}, "send ACTION_START_TIME"),
            ({"AMQ_SCHEDULER_ACTION": "REMOVEALL", "ACTION_START_TIME": "later", "ACTION_END_TIME": "1"},
             "'later' is not milliseconds"),
            ({"AMQ_SCHEDULER_ACTION": "BROWSE"}, "needs a reply-to"),
            ({"AMQ_SCHEDULER_ACTION": "CLEAR"}, "'CLEAR' is not BROWSE, REMOVE or REMOVEALL")):
        c = client(b)
        c.send(MANAGEMENT, "", headers=dict(headers, receipt="r"))
        c.collector.wait(lambda col: col.errors, what="an ERROR")
        e = c.collector.errors[0]
        assert e.headers["message"] == "bad scheduler request", e.headers
        assert says in e.body, e.body
        assert pending(b) == 3


def test_only_group_admin_may_when_authorization_is_configured(brokers):
    everyone = ["admin", "apps"]
    config = dict(CONFIG, allow_anonymous=False, authorization=[
        {"queue": ">", "read": everyone, "write": everyone, "admin": everyone},
        {"topic": ">", "read": everyone, "write": everyone, "admin": everyone}])
    b = start(brokers, config)
    app = client(b, login="app", passcode="app-secret")
    app.send("/queue/work", "x", headers={"AMQ_SCHEDULED_DELAY": "600000", "receipt": "s"})
    app.collector.wait_receipt("s")
    app.send(MANAGEMENT, "", headers={"AMQ_SCHEDULER_ACTION": "REMOVEALL", "receipt": "r"})
    app.collector.wait(lambda col: col.errors, what="an ERROR")
    e = app.collector.errors[0]
    assert e.headers["message"] == "not authorized" and "group 'admin'" in e.body, (e.headers, e.body)
    assert pending(b) == 1
    ops = client(b, login="ops", passcode="ops-secret")
    request(ops, {"AMQ_SCHEDULER_ACTION": "REMOVEALL"}, "r")
    assert pending(b) == 0


if __name__ == "__main__":
    run([
        test_browse_remove_removeall_and_nothing_fires_after_a_restart,
        test_removeall_of_a_time_range_keeps_the_rest,
        test_a_malformed_request_gets_an_error_and_changes_nothing,
        test_only_group_admin_may_when_authorization_is_configured,
    ])
