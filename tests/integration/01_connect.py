"""01 connect: versions, login, anonymous access, CONNECT deadline, process life cycle."""
import json
import os
import signal
import subprocess
import urllib.request

from tandem_test import Broker, Raw, client, new_broker, run, tandemd_path, wait_for


def test_each_stomp_version_is_negotiated(brokers):
    b = new_broker(brokers)
    for offered, expected in [("1.0", "1.0"), ("1.1", "1.1"), ("1.2", "1.2"), ("1.0,1.1,1.2", "1.2"), ("1.1,1.0", "1.1")]:
        r = Raw(b)
        cmd, headers, _ = r.connect(offered)
        assert headers.get("version") == expected, (offered, headers)
        assert headers.get("server", "").startswith("Tandem/"), headers
        r.close()
    # No accept-version header at all: STOMP 1.0.
    r = Raw(b)
    r.frame("CONNECT", {})
    cmd, headers, _ = r.read_frame()
    assert cmd == "CONNECTED" and headers.get("version", "1.0") == "1.0", (cmd, headers)
    r.close()


def test_python_stomp_connects_and_disconnects_with_receipt(brokers):
    b = new_broker(brokers)
    c = client(b)
    assert c.is_connected()
    c.disconnect(receipt="bye")
    # python-stomp may return from disconnect() before its listeners saw the RECEIPT.
    c.collector.wait_receipt("bye")


def test_quick_start_allows_anonymous_and_says_so(brokers):
    b = new_broker(brokers)
    assert "anonymous access is allowed" in b.log_text()


def test_login_is_checked_against_configured_users(brokers):
    b = Broker(config={"users": [{"login": "alice", "password": "wonder"}]})
    brokers.append(b)
    b.start()
    assert "plaintext password" in b.log_text()
    c = client(b, login="alice", passcode="wonder")
    assert c.is_connected()
    c.disconnect()
    r = Raw(b)
    r.frame("CONNECT", {"accept-version": "1.2", "host": "x", "login": "alice", "passcode": "nope"})
    cmd, headers, _ = r.read_frame()
    assert cmd == "ERROR", cmd
    assert "message" in headers
    assert r.read_eof() is not None
    r = Raw(b)
    r.frame("CONNECT", {"accept-version": "1.2", "host": "x"})
    cmd, _, _ = r.read_frame()
    assert cmd == "ERROR", "anonymous access must be refused when users are configured"


def test_hash_password_output_is_accepted_as_password_hash(brokers):
    out = subprocess.run([tandemd_path(), "--hash-password", "s3cret"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    h = out.stdout.strip()
    assert h.startswith("pbkdf2-sha256:"), h  # issue 17: a slow KDF, not one round of SHA-256
    b = Broker(config={"users": [{"login": "bob", "password_hash": h}]})
    brokers.append(b)
    b.start()
    assert "plaintext password" not in b.log_text()
    c = client(b, login="bob", passcode="s3cret")
    assert c.is_connected()
    c.disconnect()


def test_a_frame_before_connect_is_an_error(brokers):
    b = new_broker(brokers)
    r = Raw(b)
    r.frame("SEND", {"destination": "/queue/a"}, "x")
    cmd, headers, _ = r.read_frame()
    assert cmd == "ERROR" and headers.get("message"), (cmd, headers)
    r.read_eof()


def test_a_client_that_never_connects_is_closed(brokers):
    b = Broker(config={"allow_anonymous": True, "connect_timeout_ms": 300})
    brokers.append(b)
    b.start()
    r = Raw(b)
    r.read_eof(timeout=10)
    assert "no CONNECT within 300 ms" in b.log_text()


def test_admin_health_says_master_with_epoch(brokers):
    b = new_broker(brokers)
    with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}/health", timeout=10) as resp:
        health = json.loads(resp.read())
    assert health["role"] == "master", health
    assert health["epoch"] >= 1
    assert health["broker_name"] == "itest"
    with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert 'tandem_role{role="master"} 1' in text, text[:500]
    assert "tandem_connections " in text
    # Prometheus refuses an exposition that declares a family twice.
    families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(families) == len(set(families)), sorted(f for f in families if families.count(f) > 1)
    c = client(b)
    c.send("/queue/metrics", "x", headers={"persistent": "true", "receipt": "r"})
    c.collector.wait_receipt("r")
    with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert int(values["tandem_journal_appends_total"]) >= 1, text
    assert int(values["tandem_journal_fsync_seconds_count"]) >= 1, text
    assert values['tandem_journal_fsync_seconds_bucket{le="+Inf"}'] == values["tandem_journal_fsync_seconds_count"]
    assert 1 <= int(values["tandem_journal_groups_total"]) <= int(values["tandem_journal_group_records_total"])
    assert int(values["tandem_journal_fsyncs_total"]) >= int(values["tandem_journal_fsync_seconds_count"]) >= 1
    assert int(values["tandem_epoch"]) >= 1


def test_sigterm_as_master_exits_zero_and_releases(brokers):
    b = new_broker(brokers)
    assert b.stop(signal.SIGTERM) == 0
    assert "lock released" in b.log_text()


def test_a_master_whose_lock_file_is_replaced_steps_down_with_exit_75(brokers):
    b = new_broker(brokers, args=["--lock-check-interval", "50"])
    c = client(b)
    c.send("/queue/x", "x", headers={"receipt": "r"})
    c.collector.wait_receipt("r")
    # Another inode at DIR/lock: the watchdog must see that our lock no longer guards the store.
    fresh = os.path.join(b.store, "lock.new")
    open(fresh, "w").close()
    os.rename(fresh, os.path.join(b.store, "lock"))
    rc = b.proc.wait(timeout=20)
    assert rc == 75, rc
    assert "stepping down" in b.log_text()


def test_a_missing_store_is_an_error_without_create_store(brokers):
    b = Broker()
    brokers.append(b)
    out = subprocess.run([tandemd_path(), "--store", os.path.join(b.dir, "not-mounted"), "--listen", "127.0.0.1:0"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode != 0
    assert "not a store" in out.stderr and "--create-store" in out.stderr, out.stderr


def test_check_config_validates_and_names_the_bad_key(brokers):
    b = Broker()
    brokers.append(b)
    good = os.path.join(b.dir, "good.json")
    bad = os.path.join(b.dir, "bad.json")
    with open(good, "w") as f:
        json.dump({"store": "/tmp/x", "allow_anonymous": True}, f)
    with open(bad, "w") as f:
        json.dump({"store": "/tmp/x", "allow_anonymous": True, "segmnt_bytes": 5}, f)
    ok = subprocess.run([tandemd_path(), "--check-config", good], capture_output=True, text=True, timeout=10)
    assert ok.returncode == 0, ok.stderr
    ko = subprocess.run([tandemd_path(), "--check-config", bad], capture_output=True, text=True, timeout=10)
    assert ko.returncode != 0
    assert "segmnt_bytes" in ko.stderr and "segment_bytes" in ko.stderr and bad in ko.stderr, ko.stderr


def test_help_lists_every_option(brokers):
    out = subprocess.run([tandemd_path(), "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    for flag in ["--config", "--store", "--listen", "--admin", "--name", "--create-store", "--check-config",
                 "--sync", "--threads", "--lock-check-interval", "--hash-password"]:
        assert flag in out.stdout, flag


def test_a_second_broker_on_the_same_store_waits_as_slave(brokers):
    a = new_broker(brokers, name="a")
    b = Broker(store=a.store, name="b")
    brokers.append(b)
    b.start(wait=False)
    b.wait_log(r"slave: waiting for lock")
    # The slave keeps no client port open, but its admin port says slave.
    m = b.wait_log(r"admin listening .*port=(\d+)")
    url = f"http://127.0.0.1:{m.group(1)}/health"
    try:
        urllib.request.urlopen(url, timeout=10)
        raise AssertionError("slave health must not be 200")
    except urllib.error.HTTPError as e:
        assert e.code == 503
        health = json.loads(e.read())
    assert health["role"] == "slave", health
    # SIGTERM to a waiting slave ends it at once.
    assert b.stop(signal.SIGTERM, timeout=5) == 0
    # Kill the master: a new slave takes over with a higher epoch.
    c = Broker(store=a.store, name="c")
    brokers.append(c)
    c.start(wait=False)
    c.wait_log(r"slave: waiting for lock")
    a.kill()
    c.wait_master()
    epoch_a = int(__import__("re").search(r"master epoch=(\d+)", a.log_text()).group(1))
    epoch_c = int(__import__("re").search(r"master epoch=(\d+)", c.log_text()).group(1))
    assert epoch_c > epoch_a, (epoch_a, epoch_c)


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
