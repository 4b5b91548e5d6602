"""14 tandemctl: status, destinations, purge, send and receive against real brokers (a
master and a slave on one store), and clear errors when a broker cannot be reached."""
import json
import os
import socket
import subprocess

from tandem_test import Broker, client, run, wait_for

TANDEMCTL = os.environ.get("TANDEMCTL", "tandemctl")


def ctl(*args, stdin=None, timeout=60, user=None):
    env = dict(os.environ)
    if user:
        env["TANDEM_ADMIN_USER"], env["TANDEM_ADMIN_PASSWORD"] = user
    return subprocess.run([TANDEMCTL, *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=env)


def admin(b):
    return f"http://127.0.0.1:{b.admin_port}"


def dead_port():
    """A loopback port with nothing listening (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pair(brokers):
    """A master and a slave waiting on its store."""
    a = Broker(name="ctl-a")
    brokers.append(a)
    a.start()
    b = Broker(name="ctl-b", store=a.store)
    brokers.append(b)
    b.start(wait=False)
    b.wait_log(r"slave: waiting for lock")
    b.admin_port = int(b.wait_log(r"admin listening .*port=(\d+)").group(1))
    return a, b


def test_status_shows_the_master_the_slave_and_pending_counts(brokers):
    a, b = pair(brokers)
    r = ctl("send", "/queue/orders", "--url", f"tcp://127.0.0.1:{a.port}", "--body", "o1", "--body", "o2", "--count", "2")
    assert r.returncode == 0, r.stderr
    assert "sent 4 message(s) to /queue/orders" in r.stdout
    r = ctl("status", "--admin", admin(a), "--admin", admin(b))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    master = next(l for l in lines if l.startswith("ctl-a "))
    slave = next(l for l in lines if l.startswith("ctl-b "))
    assert " master " in master and " slave " in slave
    assert "ctl-a (pid" in slave and "epoch 1)" in slave  # the holder the slave waits for
    assert any("/queue/orders" in l and " 4 pending" in l for l in lines), r.stdout
    j = json.loads(ctl("status", "--admin", admin(a), "--admin", admin(b), "--json").stdout)
    assert j["masters"] == 1
    [ja, jb] = j["brokers"]
    assert ja["health"]["role"] == "master" and ja["health"]["epoch"] == 1
    assert ja["pending"] == {"/queue/orders": 4}
    assert isinstance(ja["health"]["uptime_s"], int)
    assert jb["health"]["role"] == "slave" and jb["health"]["holder"]["broker_name"] == "ctl-a"


def test_status_names_an_unreachable_broker_and_fails(brokers):
    a = Broker(name="ctl-alone")
    brokers.append(a)
    a.start()
    port = dead_port()
    r = ctl("status", "--admin", admin(a), "--admin", f"127.0.0.1:{port}", "--timeout-ms", "2000")
    assert r.returncode == 1
    assert f"http://127.0.0.1:{port}: cannot connect" in r.stderr, r.stderr
    assert "admin_listen" in r.stderr  # what to check
    assert "ctl-alone" in r.stdout  # the reachable one is still shown


def test_send_and_receive_follow_a_failover_list(brokers):
    a = Broker(name="ctl-one")
    brokers.append(a)
    a.start()
    url = f"failover:(tcp://127.0.0.1:{dead_port()},tcp://127.0.0.1:{a.port})"
    r = ctl("send", "/queue/smoke", "--url", url, stdin="from stdin\n")
    assert r.returncode == 0, r.stderr
    r = ctl("receive", "/queue/smoke", "--url", url, "--count", "1", "--headers")
    assert r.returncode == 0, r.stderr
    assert "destination:/queue/smoke" in r.stdout and r.stdout.rstrip().endswith("from stdin"), r.stdout
    # Nothing left: a second receive times out and says so.
    r = ctl("receive", "/queue/smoke", "--url", url, "--count", "1", "--timeout-ms", "300")
    assert r.returncode == 1 and "received 0 of 1" in r.stderr, r.stderr


def test_send_to_no_broker_fails_with_a_clear_error(brokers):
    port = dead_port()
    r = ctl("send", "/queue/x", "--url", f"tcp://127.0.0.1:{port}", "--body", "x")
    assert r.returncode == 1
    assert f"cannot connect to tcp://127.0.0.1:{port}" in r.stderr, r.stderr


def test_destinations_lists_the_masters_queues(brokers):
    a, b = pair(brokers)
    c = client(a)
    c.send("/queue/d1", "x", headers={"receipt": "r"})
    c.collector.wait_receipt("r")
    r = ctl("destinations", "--admin", admin(b), "--admin", admin(a))
    assert r.returncode == 0, r.stderr
    row = next(l for l in r.stdout.splitlines() if l.startswith("/queue/d1"))
    assert row.split()[1:3] == ["queue", "1"], row
    # Asking only the slave: no master to answer.
    r = ctl("destinations", "--admin", admin(b))
    assert r.returncode == 1 and "no master" in r.stderr, r.stderr


def test_purge_asks_first_and_drops_pending_messages_for_good(brokers):
    # A purge needs a user in group "admin" (issue 17); tandemctl sends TANDEM_ADMIN_USER.
    ops = ("ops", "ops-secret")
    a = Broker(name="ctl-purge", config={"broker_name": "ctl-purge", "allow_anonymous": True,
                                         "users": [{"login": "ops", "password": "ops-secret", "groups": ["admin"]}]})
    brokers.append(a)
    a.start()
    c = client(a)
    for i in range(5):
        c.send("/queue/p", f"m{i}", headers={"persistent": "true", "receipt": f"r{i}"})
    c.collector.wait_receipt("r4")
    c.disconnect()
    # Not a terminal and no --yes: refused, nothing purged.
    r = ctl("purge", "/queue/p", "--admin", admin(a), stdin="y\n", user=ops)
    assert r.returncode == 1 and "--yes" in r.stderr, r.stderr
    r = ctl("purge", "/queue/nope", "--admin", admin(a), "--yes", user=ops)
    assert r.returncode == 1 and "no destination \"/queue/nope\"" in r.stderr, r.stderr
    # Without credentials the broker refuses (and says what it needs).
    r = ctl("purge", "/queue/p", "--admin", admin(a), "--yes")
    assert r.returncode == 1 and "401" in r.stderr, r.stdout + r.stderr
    r = ctl("purge", "/queue/p", "--admin", admin(a), "--yes", user=ops)
    assert r.returncode == 0 and "purged 5 message(s) from /queue/p" in r.stdout, r.stdout + r.stderr
    assert "destination purged" in a.log_text()
    # For good: the removes are journaled, so a restart does not bring them back.
    assert a.stop() == 0
    a.start()
    j = json.loads(ctl("status", "--admin", admin(a), "--json", user=ops).stdout)
    assert j["brokers"][0]["pending"].get("/queue/p", 0) == 0, j
    r = ctl("receive", "/queue/p", "--url", f"tcp://127.0.0.1:{a.port}", "--count", "1", "--timeout-ms", "300")
    assert r.returncode == 1


def test_scheduled_lists_and_cancels_jobs(brokers):
    # Issue 16: `tandemctl scheduled` over GET /api/scheduled and POST .../cancel.
    ops = ("ops", "ops-secret")
    a = Broker(name="ctl-sched", config={"broker_name": "ctl-sched", "allow_anonymous": True,
                                         "users": [{"login": "ops", "password": "ops-secret", "groups": ["admin"]}]})
    brokers.append(a)
    a.start()
    c = client(a)
    for i in range(3):
        c.send("/queue/later", f"m{i}", headers={"AMQ_SCHEDULED_DELAY": str(600000 + i), "receipt": f"r{i}"})
    c.collector.wait_receipt("r2")
    c.disconnect()
    r = ctl("scheduled", "list", "--admin", admin(a), "--json", user=ops)
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert listed["total"] == 3 and [i["delay_ms"] for i in listed["items"]] == ["600000", "600001", "600002"], listed
    r = ctl("scheduled", "list", "--admin", admin(a), "--limit", "2", user=ops)
    assert r.returncode == 0 and "2 of 3 scheduled job entries" in r.stdout and "/queue/later" in r.stdout, r.stdout
    job = listed["items"][0]["job_id"]
    r = ctl("scheduled", "cancel", job, "--admin", admin(a), user=ops)
    assert r.returncode == 0 and "cancelled 1 scheduled job(s)" in r.stdout, r.stdout + r.stderr
    r = ctl("scheduled", "cancel", job, "--admin", admin(a), user=ops)
    assert r.returncode == 1 and "404" in r.stderr, r.stderr
    r = ctl("scheduled", "cancel", "--admin", admin(a), user=ops)
    assert r.returncode == 2 and "job id" in r.stderr, r.stderr
    r = ctl("scheduled", "cancel-all", "--admin", admin(a))
    assert r.returncode == 1 and "401" in r.stderr, r.stderr
    r = ctl("scheduled", "cancel-all", "--admin", admin(a), user=ops)
    assert r.returncode == 0 and "cancelled 2 scheduled job(s)" in r.stdout, r.stdout + r.stderr


def test_metrics_expose_role_epoch_takeovers_recovery_and_lock_checks(brokers):
    import urllib.request
    a, b = pair(brokers)

    def metrics(x):
        with urllib.request.urlopen(f"{admin(x)}/metrics", timeout=10) as r:
            return r.read().decode()

    m = wait_for(lambda: (lambda t: t if "tandem_lock_checks_total " in t and
                          "tandem_lock_checks_total 0" not in t else None)(metrics(a)), what="a lock check")
    for line in ['tandem_role{role="master"} 1', "tandem_epoch 1", "tandem_takeovers_total 1",
                 "tandem_lock_check_failures_total 0", "tandem_journal_fsync_seconds_count"]:
        assert line in m, line
    assert "tandem_recovery_seconds " in m and "tandem_lock_check_max_seconds " in m
    s = metrics(b)
    assert 'tandem_role{role="slave"} 1' in s and "tandem_takeovers_total 0" in s


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
