"""15 postgresql: tandemd on a PostgreSQL store (issue 14), real brokers on a real
PostgreSQL 15 primary with a synchronous streaming standby (tests/pg/pg_cluster.sh), driven
by raw STOMP sockets.

schema (refused absent, created by --create-store, newer refused by name), passwords never in
the URI, the election in the database (slave has no client port, /health names holder and
epoch), a consumer's body read waiting on a locked table while /health and another session
answer (the reads run on the store's reader thread, not the io thread), kill -9 of the master (nothing receipted lost), a master paused past its lease
(exit 75, nothing receipted or committed after the new epoch), the database primary killed
and the standby promoted under load (the master's writer reconnects through a multi-host
URI with target_session_attrs=read-write and keeps serving; nothing receipted is lost).

Skips (exit 77) when PostgreSQL 15 cannot run here (not root, no postgres user).
Run one case: TANDEM_ITEST_ONLY=paused python3 15_postgresql.py /path/to/tandemd"""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from owner_support import USERS, check_owner_kept, make_subscription_and_publish, publish
from pg_support import Producer, start_cluster
from tandem_test import Raw, SharedBroker, client, drain, new_group, run, send_persistent, wait_for

EXIT_DEPOSED = 75
HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER = os.path.join(HERE, "..", "pg", "pg_cluster.sh")
# lock_check_interval 500 ms: the lease is 3 x that, 1.5 s (broker/database_store.cpp).
FAST = ["--lock-check-interval", "500", "--lock-poll-interval-ms", "100"]


class Cluster:
    """A primary and a synchronous standby in a temp dir; one database per case."""

    def __init__(self):
        self.dir, self.env = start_cluster(CLUSTER, "tandem-pg-")
        self.count = 0

    def superuser_sql(self, sql, port=None, db="postgres"):
        port = port or self.env["PG_PRIMARY_PORT"]
        out = subprocess.run(["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/psql", "-qAt", "-h",
                              self.dir, "-p", port, "-d", db, "-v", "ON_ERROR_STOP=1", "-c", sql],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def new_database(self):
        self.count += 1
        name = f"t{self.count}"
        self.superuser_sql(f"create database {name} owner tandem")
        return name

    def uri(self, db, multi=False):
        p1, p2 = self.env["PG_PRIMARY_PORT"], self.env["PG_STANDBY_PORT"]
        if multi:
            return f"postgresql://tandem@127.0.0.1:{p1},127.0.0.1:{p2}/{db}?target_session_attrs=read-write"
        return f"postgresql://tandem@127.0.0.1:{p1}/{db}"

    def stop(self):
        subprocess.run([CLUSTER, "stop", self.dir], capture_output=True)


CLUSTERS = []


def cluster():
    if not CLUSTERS:
        CLUSTERS.append(Cluster())
    return CLUSTERS[0]


def pair(brokers, uri):
    return new_group(brokers, 2, args=FAST, store=uri, slave_log=r"slave: waiting for the lease, held by b0")


def journal_tool():
    return os.environ.get("TANDEM_JOURNAL") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[1]))), "tools", "journal", "tandem-journal")


def bodies(prefix, n):
    return [f"{prefix}-{i:05d}".encode() * 8 for i in range(n)]


# ---- schema ----------------------------------------------------------------------------------

def test_a_database_without_the_schema_is_refused_unless_create_store(brokers):
    c = cluster()
    uri = c.uri(c.new_database())
    b = SharedBroker(uri, "x", args=FAST)
    brokers.append(b)
    b.start(wait=False)
    assert b.exit_code() == 1
    assert "not a store: the database has no Tandem schema" in b.log_text(), b.log_text()
    b2 = SharedBroker(uri, "y", create=True, args=FAST)
    brokers.append(b2)
    b2.start()
    h = b2.health()
    assert h["role"] == "master" and h["epoch"] == 1, h
    assert len(h["store_id"]) == 32, h
    assert "store created" in b2.log_text()
    assert "the store database is synchronously replicated" in b2.log_text(), b2.log_text()


def test_a_schema_of_a_newer_tandem_is_refused_by_name(brokers):
    c = cluster()
    db = c.new_database()
    b = SharedBroker(c.uri(db), "x", create=True, args=FAST)
    brokers.append(b)
    b.start()
    assert b.stop() == 0
    c.superuser_sql("update tandem_meta set version = 99", db=db)
    b2 = SharedBroker(c.uri(db), "y", args=FAST)
    brokers.append(b2)
    b2.start(wait=False)
    assert b2.exit_code() == 1
    assert 'holds a \\"tandem-pg-store\\" schema version 99' in b2.log_text() or "schema version 99" in b2.log_text(), b2.log_text()


def test_a_password_in_the_store_uri_is_refused(brokers):
    c = cluster()
    b = SharedBroker(f"postgresql://tandem:secret@127.0.0.1:{c.env['PG_PRIMARY_PORT']}/tandem", "x", args=FAST)
    brokers.append(b)
    b.start(wait=False)
    assert b.exit_code() == 2
    assert "PGPASSFILE" in b.log_text(), b.log_text()


# ---- reads off the io thread -----------------------------------------------------------------

READ_LOCK_S = 5.0
# What "still answering" means: far below the lock's 5 s, with room for a loaded 2-core machine.
ANSWER_WITHIN_S = 1.0


def test_a_body_read_waiting_on_the_database_stalls_only_its_consumer(brokers):
    """Issue 17, finding 8, on the database store: persistent messages are sent, the broker
    restarts (its body cache is empty), then another session holds tandem_message in ACCESS
    EXCLUSIVE mode for 5 s and a consumer subscribes: its first delivery's SELECT waits for
    the lock. Meanwhile GET /health and another session's SEND->RECEIPT (non-persistent: a
    persistent one's INSERT waits for the same lock, in the writer) must answer well within
    the 5 s. Before the store had a reader thread the SELECT ran on the io thread and both
    waited for the lock. Once it is released the consumer gets every message, in order."""
    c = cluster()
    db = c.new_database()
    # A 12 s lease: the reader's statement_timeout (one lease) outlasts the 5 s lock.
    args = ["--lock-check-interval", "4000", "--lock-poll-interval-ms", "100"]
    b = SharedBroker(c.uri(db), "b0", create=True, args=args)
    brokers.append(b)
    b.start()
    n = 20
    sent = [f"cold {i}".encode() for i in range(n)]
    send_persistent(b, "/queue/cold", sent)
    assert b.stop() == 0
    b = SharedBroker(c.uri(db), "b1", args=args)
    brokers.append(b)
    b.start()

    locker = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/psql", "-qAt", "-h", c.dir, "-p",
         c.env["PG_PRIMARY_PORT"], "-d", db, "-v", "ON_ERROR_STOP=1", "-c",
         f"begin; lock table tandem_message in access exclusive mode; select pg_sleep({READ_LOCK_S}); commit;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    consumer = None
    try:
        wait_for(lambda: c.superuser_sql("select count(*) from pg_locks l join pg_class r on r.oid = l.relation "
                                         "where r.relname = 'tandem_message' and l.mode = 'AccessExclusiveLock' "
                                         "and l.granted", db=db) == "1", 10, "the lock on tandem_message")
        locked_at = time.monotonic()
        consumer = Raw(b)
        consumer.connect()
        consumer.frame("SUBSCRIBE", {"destination": "/queue/cold", "id": "s", "ack": "auto"})
        wait_for(lambda: c.superuser_sql("select count(*) from pg_stat_activity where application_name = "
                                         "'tandemd-reader' and wait_event_type = 'Lock'", db=db) == "1",
                 READ_LOCK_S, "the consumer's body read to wait for the lock")
        t0 = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}/health", timeout=10) as r:
            assert r.status == 200, r.status
        health_s = time.monotonic() - t0
        other = Raw(b)
        other.connect()
        t0 = time.monotonic()
        other.frame("SEND", {"destination": "/queue/other", "receipt": "fast"}, "x")
        f = other.read_frame(timeout=10)
        send_s = time.monotonic() - t0
        assert f and f[0] == "RECEIPT" and f[1].get("receipt-id") == "fast", f
        other.close()
        still_locked = time.monotonic() - locked_at < READ_LOCK_S
        print(f"  while the consumer's body read waits {READ_LOCK_S:.0f} s for a lock: /health {health_s * 1000:.1f} ms, "
              f"SEND->RECEIPT {send_s * 1000:.1f} ms", flush=True)
        assert health_s < ANSWER_WITHIN_S, f"/health took {health_s:.3f} s while a body read waited"
        assert send_s < ANSWER_WITHIN_S, f"SEND->RECEIPT took {send_s:.3f} s while a body read waited"
        assert still_locked, "the checks took longer than the lock: nothing was shown"
        got = []
        while len(got) < n:
            f = consumer.read_frame(timeout=30)
            assert f and f[0] == "MESSAGE", f
            got.append(f[2])
        assert got == sent, got
    finally:
        if consumer:
            consumer.close()
        locker.wait(timeout=30)
    assert locker.returncode == 0, locker.stderr.read()
    assert b.stop() == 0


# ---- election and failover -----------------------------------------------------------------------

def test_slave_has_no_client_port_and_health_names_holder_and_epoch(brokers):
    c = cluster()
    a, s = pair(brokers, c.uri(c.new_database()))
    h = s.wait_role("slave")
    assert h["holder"]["broker_name"] == "b0" and h["holder"]["epoch"] == 1, h
    assert not s.client_port_open()
    assert a.health()["epoch"] == 1
    assert a.stop() == 0  # clean release: the slave takes over without waiting for the lease
    s.wait_log(r"main master epoch=2", timeout=10)


def test_kill_9_of_the_master_loses_nothing_receipted(brokers):
    c = cluster()
    a, s = pair(brokers, c.uri(c.new_database()))
    sent = bodies("k", 300)
    send_persistent(a, "/queue/pg", sent)
    a.kill()
    s.wait_log(r"main master epoch=2", timeout=20)
    got = drain(s, "/queue/pg", len(sent))
    assert sorted(f[2] for f in got) == sorted(sent), (len(got), len(sent))


def test_a_schedule_fires_each_time_once_across_a_kill_9_on_the_database_store(brokers):
    # Issue 16: a schedule entry and each firing are rows like any message (one transaction
    # per firing), so the new master goes on with the schedule and no firing is doubled.
    c = cluster()
    a, s = pair(brokers, c.uri(c.new_database()))
    r = Raw(a)
    r.connect()
    r.frame("SEND", {"destination": "/queue/pgsched", "persistent": "true", "receipt": "s",
                     "AMQ_SCHEDULED_PERIOD": "300", "AMQ_SCHEDULED_REPEAT": "9"}, b"tick")
    f = r.read_frame()
    assert f is not None and f[0] == "RECEIPT", f
    r.close()
    # Some firings on the first master (each persistent message lands on the queue), then kill it.
    wait_for(lambda: _pending(a, "/queue/pgsched") >= 3, 30, "three firings")
    a.kill()
    s.wait_log(r"main master epoch=2", timeout=20)
    # The store loaded the entry's due time and job id at open: the io thread read nothing back.
    s.wait_log(r"schedules recovered entries=1 read=0", timeout=5)
    wait_for(lambda: _pending(s, "/queue/pgsched") >= 10, 30, "the rest of the firings on the new master")
    got = drain(s, "/queue/pgsched", 10)
    assert len(got) == 10 and len({g[1]["message-id"] for g in got}) == 10, len(got)


def _pending(b, dest):
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}/api/destinations", timeout=5) as resp:
        for d in json.loads(resp.read()):
            if d["name"] == dest:
                return d["pending"]
    return 0


def test_tandem_journal_summarises_a_database_store_read_only(brokers):
    tool = journal_tool()
    c = cluster()
    db = c.new_database()
    a, = new_group(brokers, 1, args=FAST, store=c.uri(db))
    send_persistent(a, "/queue/summary", bodies("s", 7))
    out = subprocess.run([tool, "summary", c.uri(db), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    j = json.loads(out.stdout)
    assert j["live"]["/queue/summary"]["messages"] == 7, j
    assert j["lease"]["epoch"] == 1 and j["lease"]["broker_name"] == "b0", j
    assert j["store_id"] == a.health()["store_id"], j
    out = subprocess.run([tool, "lock", c.uri(db)], capture_output=True, text=True)
    assert out.returncode == 0 and "epoch 1 held by b0" in out.stdout, out
    out = subprocess.run([tool, "verify", c.uri(db)], capture_output=True, text=True)
    assert out.returncode == 0 and "7 checked, 0 problems" in out.stdout and "clean" in out.stdout, out
    # A body removed behind the broker's back: verify names the entry and exits 3.
    victim = c.superuser_sql("delete from tandem_message where msg_seq = (select min(msg_seq) from tandem_message) "
                             "returning msg_seq", db=db)
    out = subprocess.run([tool, "verify", c.uri(db), "--json"], capture_output=True, text=True)
    assert out.returncode == 3, out
    j = json.loads(out.stdout)
    assert [p["msg_seq"] for p in j["problems"]] == [int(victim)], j
    assert j["problems"][0]["target"] == "/queue/summary" and "body is gone" in j["problems"][0]["problem"], j


def test_tandem_journal_dumps_a_database_store_read_only(brokers):
    tool = journal_tool()
    c = cluster()
    db = c.new_database()
    a, = new_group(brokers, 1, args=FAST, store=c.uri(db))
    send_persistent(a, "/queue/dump-a", bodies("a", 5),
                    headers=lambda i: {"tandem-producer-id": "p1", "tandem-producer-seq": str(i + 1)})
    send_persistent(a, "/queue/dump-b", bodies("b", 3))
    drain(a, "/queue/dump-b", 3)  # acked: their rows are deleted
    before = c.superuser_sql("select epoch, next_msg_seq from tandem_lease", db=db)
    out = subprocess.run([tool, "dump", c.uri(db), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert lines[0]["kind"] == "store" and lines[0]["store_id"] == a.health()["store_id"], lines[0]
    messages = [x for x in lines if x.get("table") == "tandem_message"]
    assert [m["live"] for m in messages] == [["/queue/dump-a"]] * 5, messages
    assert [m["record"]["producer_seq"] for m in messages] == [1, 2, 3, 4, 5], messages
    assert all(m["type"] == "message_add" and m["bytes"] > 0 and m["record"]["body_bytes"] == 56 for m in messages), messages
    windows = [x for x in lines if x.get("table") == "tandem_producer"]
    assert len(windows) == 1 and windows[0]["type"] == "index_state", windows
    assert {"producer_id": "p1", "seqs": [1, 2, 3, 4, 5]}.items() <= next(
        w for w in windows[0]["record"]["windows"] if w["producer_id"] == "p1").items(), windows
    # Text: the journal dump's line with the table in place of SEG:OFF lsn= epoch=.
    out = subprocess.run([tool, "dump", c.uri(db), "--destination", "/queue/dump-a"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = [x for x in out.stdout.splitlines() if x.startswith("tandem_message ")]
    assert len(text) == 5 and all(" message_add " in x and 'live=["/queue/dump-a"]' in x for x in text), out.stdout
    out = subprocess.run([tool, "dump", c.uri(db), "--destination", "/queue/dump-b"], capture_output=True, text=True)
    assert out.returncode == 0 and "tandem_message" not in out.stdout, out.stdout
    out = subprocess.run([tool, "dump", c.uri(db), "--lsn", "3"], capture_output=True, text=True)
    assert out.returncode == 64 and "no segments or LSNs" in out.stderr, out
    assert c.superuser_sql("select epoch, next_msg_seq from tandem_lease", db=db) == before  # read-only


def test_durable_subscriptions_keep_their_owner_and_a_version_1_schema_is_upgraded(brokers):
    # Regression (issue 17, finding 7): the owner lived only in memory, so after a takeover
    # any login presenting the client-id took the subscription.
    tool = journal_tool()
    c = cluster()
    db = c.new_database()
    a, b = new_group(brokers, 2, args=FAST, config={"users": USERS}, store=c.uri(db),
                     slave_log=r"slave: waiting for the lease, held by b0")
    make_subscription_and_publish(a)
    a.kill()
    b.wait_log(r"main master epoch=\d+")
    check_owner_kept(b)
    out = subprocess.run([tool, "dump", c.uri(db), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    subs = [json.loads(x) for x in out.stdout.splitlines() if '"tandem_subscription"' in x]
    assert [s["record"]["owner_login"] for s in subs] == ["shipping"], subs
    publish(b)  # for the owner to read after the upgrade
    assert b.stop() == 0
    # The schema as Tandem before issue 17 made it: no owner column, version 1.
    c.superuser_sql("alter table tandem_subscription drop column owner_login; update tandem_meta set version = 1", db=db)
    out = subprocess.run([tool, "dump", c.uri(db), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    subs = [json.loads(x) for x in out.stdout.splitlines() if '"tandem_subscription"' in x]
    assert [s["record"]["owner_login"] for s in subs] == [""], subs
    b.start()
    b.wait_log(r"store schema upgraded .*from_version=1 to_version=2")
    assert "durable subscription has no owner" in b.log_text(), b.log_text()[-3000:]
    assert c.superuser_sql("select version from tandem_meta", db=db) == "2"
    # Unowned: the first login claims it, for good (the claim is stored).
    check_owner_kept_after_claim(b)
    assert c.superuser_sql("select owner_login from tandem_subscription", db=db) == "shipping"


def check_owner_kept_after_claim(b):
    o = client(b, login="shipping", passcode="shipping-pw", headers={"client-id": "shipping-app"})
    o.subscribe("/topic/events", id="t", ack="client-individual",
                headers={"activemq.subscriptionName": "feed", "receipt": "claimed"})
    o.collector.wait_receipt("claimed")
    o.disconnect()  # the 3 messages stay unacked: redelivered to the owner below
    b.wait_log("unowned durable subscription claimed")
    check_owner_kept(b)


def test_a_master_paused_past_its_lease_is_deposed_and_commits_nothing(brokers):
    c = cluster()
    a, s = pair(brokers, c.uri(c.new_database()))
    send_persistent(a, "/queue/pause", bodies("before", 10))
    r = Raw(a)
    r.connect()
    a.proc.send_signal(signal.SIGSTOP)
    try:
        # Buffered in the kernel; the paused master reads them only after SIGCONT.
        for i in range(20):
            r.frame("SEND", {"destination": "/queue/pause", "persistent": "true", "receipt": f"late{i}"}, f"late-{i}".encode())
        s.wait_log(r"main master epoch=2", timeout=20)
        send_persistent(s, "/queue/pause", bodies("after", 5))
    finally:
        a.proc.send_signal(signal.SIGCONT)
    assert a.exit_code() == EXIT_DEPOSED, a.log_text()
    frames = []
    while (f := r.read_frame(timeout=5)) is not None:
        frames.append(f)
    assert not [f for f in frames if f[0] == "RECEIPT"], frames
    got = drain(s, "/queue/pause", 15)
    assert sorted(f[2] for f in got) == sorted(bodies("before", 10) + bodies("after", 5)), [f[2] for f in got]


def test_the_master_keeps_serving_through_a_database_failover(brokers):
    """The primary is killed and the standby promoted while a producer sends: the master's
    writer reconnects through the multi-host URI and goes on with the same epoch (its lease,
    12 s here, outlives the failover), the slave stays slave, and every receipted message is
    there exactly once. With a 6 s lease a promotion that took 4 s at load 10 let the lease
    run out (the slave then took over, losing nothing, but that is another test's case)."""
    c = cluster()
    db = c.new_database()
    args = ["--lock-check-interval", "4000", "--lock-poll-interval-ms", "100"]
    a, s = new_group(brokers, 2, args=args, store=c.uri(db, multi=True),
                     slave_log=r"slave: waiting for the lease, held by b0")
    p = Producer(a, "/queue/failover")
    p.start()
    wait_for(lambda: len(p.receipted) >= 50, what="50 receipts before the failover")
    killed_at = time.monotonic()
    subprocess.run([CLUSTER, "kill-primary", c.dir], check=True)
    subprocess.run([CLUSTER, "promote", c.dir], check=True)
    promoted_in = time.monotonic() - killed_at
    promoted_at = len(p.receipted)
    wait_for(lambda: len(p.receipted) >= promoted_at + 50, timeout=30, what="50 receipts after the promotion")
    p.stop_flag.set()
    p.join(timeout=30)
    assert a.proc.poll() is None, a.log_text()
    gap = p.longest_gap()
    print(f"  primary killed and standby promoted in {promoted_in * 1000:.0f} ms; longest time without a RECEIPT "
          f"{gap * 1000:.0f} ms; {p.errors} failed sends, {p.resends} resends")
    h = a.health()
    assert h["role"] == "master" and h["epoch"] == 1, h
    assert s.health()["role"] == "slave", s.health()
    assert "the writer reconnected to 127.0.0.1:" + c.env["PG_STANDBY_PORT"] in a.log_text(), a.log_text()
    got = drain(a, "/queue/failover", len(p.receipted))
    bodies_got = [f[2] for f in got]
    assert len(set(bodies_got)) == len(bodies_got), "duplicates"
    missing = set(p.receipted) - set(bodies_got)
    assert not missing, (len(missing), sorted(missing)[:5])


if __name__ == "__main__":
    try:
        rc = run([
            test_a_database_without_the_schema_is_refused_unless_create_store,
            test_a_schema_of_a_newer_tandem_is_refused_by_name,
            test_a_password_in_the_store_uri_is_refused,
            test_slave_has_no_client_port_and_health_names_holder_and_epoch,
            test_kill_9_of_the_master_loses_nothing_receipted,
            test_a_schedule_fires_each_time_once_across_a_kill_9_on_the_database_store,
            test_a_body_read_waiting_on_the_database_stalls_only_its_consumer,
            test_tandem_journal_summarises_a_database_store_read_only,
            test_tandem_journal_dumps_a_database_store_read_only,
            test_durable_subscriptions_keep_their_owner_and_a_version_1_schema_is_upgraded,
            test_a_master_paused_past_its_lease_is_deposed_and_commits_nothing,
            # last: it promotes the standby, the cluster has no second copy afterwards
            test_the_master_keeps_serving_through_a_database_failover,
        ])
    finally:
        for cl in CLUSTERS:
            cl.stop()
    raise SystemExit(rc)
