"""07 failover, life cycle: real tandemd processes sharing one store, each step of a broker's
life checked through its process, its log, its admin port and its client port.

start (store identity) -> slave (no client port, /health names the holder) -> takeover (epoch
+ 1, recovery figures logged) -> serve -> SIGTERM (clean release) | SIGKILL | SIGSTOP/SIGCONT
(keeps the lock, resumes) | deposed behind its back (exit 75, nothing acknowledged after).

Run one case: TANDEM_ITEST_ONLY=sigstop python3 07_failover_lifecycle.py /path/to/tandemd"""
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import urllib.error
import urllib.request

from tandem_test import Broker, Raw, run, wait_for

EXIT_DEPOSED = 75  # lockmgr::exit_code_deposed


def free_port():
    """A free port BELOW the kernel's ephemeral range (32768-60999). Clients retry a dead
    broker's port in a tight loop; if that port were an ephemeral one, a connect could pick it
    as its own source port and connect to itself (TCP self-connect), which looks like a live
    broker that resets the connection."""
    import random
    for _ in range(1000):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port below 32000")


class SharedBroker(Broker):
    """A broker on a shared store with fixed ports, so clients can list it before it serves."""

    def __init__(self, store, name, create=False, args=()):
        super().__init__(store=store, name=name, args=args)
        self.port = free_port()
        self.admin_port = free_port()
        self.create = create

    def command(self):
        cmd = [self.tandemd(), "--store", self.store, "--listen", f"127.0.0.1:{self.port}",
               "--admin", f"127.0.0.1:{self.admin_port}", "--name", self.name]
        if self.create:
            cmd.append("--create-store")
        return cmd + self.args

    @staticmethod
    def tandemd():
        from tandem_test import tandemd_path
        return tandemd_path()

    def start(self, wait=True, timeout=20.0):
        port, admin = self.port, self.admin_port
        super().start(wait=False)
        self.port, self.admin_port = port, admin
        if wait:
            self.wait_log(r"main master epoch=\d+", timeout)
        return self

    def health(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/health", timeout=2) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:  # 503 while not master, still JSON
            return json.loads(e.read())
        except OSError:
            return None

    def wait_role(self, role, timeout=20.0):
        return wait_for(lambda: (h := self.health()) and h.get("role") == role and h, timeout, f"{self.name} role {role}")

    def client_port_open(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def exit_code(self, timeout=20.0):
        return self.proc.wait(timeout)

    def cleanup(self):
        super().cleanup()
        # The shared store lives beside, not inside, each broker's own temp dir.
        if os.path.basename(self.store) == "store":
            shutil.rmtree(os.path.dirname(self.store), ignore_errors=True)


def new_group(brokers, n, args=()):
    """n brokers on one new store; the first creates it and is master, the rest are slaves."""
    store = os.path.join(tempfile.mkdtemp(prefix="tandem-itest-store-"), "store")
    group = []
    for i in range(n):
        b = SharedBroker(store, f"b{i}", create=(i == 0), args=args)
        brokers.append(b)
        group.append(b)
    group[0].start()
    for b in group[1:]:
        b.start(wait=False)
        b.wait_log(r"slave: waiting for lock")
    return group


def send_persistent(b, dest, bodies, headers=None):
    r = Raw(b)
    r.connect()
    for i, body in enumerate(bodies):
        h = {"destination": dest, "persistent": "true", "receipt": f"r{i}"}
        h.update(headers(i) if headers else {})
        r.frame("SEND", h, body)
    got = set()
    while len(got) < len(bodies):
        f = r.read_frame()
        assert f is not None and f[0] == "RECEIPT", f
        got.add(f[1]["receipt-id"])
    r.close()


def drain(b, dest, expect, settle=0.3):
    r = Raw(b)
    r.connect()
    r.frame("SUBSCRIBE", {"destination": dest, "id": "d", "ack": "client-individual"})
    got = []
    while len(got) < expect:
        f = r.read_frame()
        assert f is not None and f[0] == "MESSAGE", f
        got.append(f)
        r.frame("ACK", {"id": f[1]["ack"]})
    r.frame("DISCONNECT", {"receipt": "bye"})
    while True:
        f = r.read_frame()
        if f is None or f[0] == "RECEIPT":
            break
        got.append(f)
    r.close()
    return got


# ---- start -------------------------------------------------------------------------------

def test_a_directory_that_is_not_a_store_is_refused_without_create_store(brokers):
    d = tempfile.mkdtemp(prefix="tandem-itest-notastore-")
    try:
        b = SharedBroker(d, "x")
        brokers.append(b)
        b.start(wait=False)
        code = b.exit_code()
        assert code == 1, code
        text = b.log_text()
        assert "not a store" in text and "--create-store" in text, text
        assert os.listdir(d) == [], os.listdir(d)  # nothing written into a foreign directory
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_a_store_other_than_the_configured_store_id_is_refused(brokers):
    a, = new_group(brokers, 1)
    right = a.health()["store_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", right), right
    a.proc.send_signal(signal.SIGTERM)
    assert a.exit_code() == 0
    wrong = ("0" if right[0] != "0" else "1") + right[1:]
    for store_id, want_code in ((wrong, 1), (right, None)):
        cfg = os.path.join(a.dir, f"tandemd-{store_id}.json")
        with open(cfg, "w") as f:
            json.dump({"allow_anonymous": True, "store_id": store_id}, f)
        b = SharedBroker(a.store, "b", args=["--config", cfg])
        brokers.append(b)
        if want_code is None:
            b.start()  # the right id: serves
            assert b.health()["store_id"] == right
        else:
            b.start(wait=False)
            assert b.exit_code() == want_code
            text = b.log_text()
            assert "a different store than the config names" in text and f"expected_store_id={wrong}" in text, text


def test_a_slave_opens_no_client_port_and_reports_who_holds_the_store(brokers):
    a, b = new_group(brokers, 2)
    assert a.client_port_open()
    assert not b.client_port_open()
    h = b.wait_role("slave")
    assert h["holder"]["broker_name"] == "b0", h
    assert h["holder"]["pid"] == a.proc.pid, h
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", h["holder"]["acquired_at"]), h
    assert a.health()["role"] == "master"
    assert b.log_text().count("slave: waiting for lock") == 1  # logged once, not per poll


# ---- take over ------------------------------------------------------------------------------

def test_sigkill_of_the_master_hands_over_with_a_higher_epoch_and_nothing_lost(brokers):
    a, b = new_group(brokers, 2)
    epoch = a.health()["epoch"]
    send_persistent(a, "/queue/k", [f"m{i}" for i in range(200)])
    t0 = time.monotonic()
    a.proc.kill()
    m = b.wait_log(r"main master epoch=(\d+)")
    assert int(m.group(1)) == epoch + 1
    line = re.search(r"main master .*", b.log_text()).group(0)
    for key in ("recovered=200", "bytes=", "took_ms=", "records_replayed=", "journal_ms="):
        assert key in line, line
    assert b.client_port_open()
    got = drain(b, "/queue/k", 200)
    assert [f[2].decode() for f in got[:200]] == [f"m{i}" for i in range(200)]
    print(f"  takeover after SIGKILL served in {time.monotonic() - t0:.3f}s: {line}")


def test_sigterm_releases_the_lock_cleanly_and_the_slave_takes_over_at_once(brokers):
    a, b = new_group(brokers, 2)
    send_persistent(a, "/queue/t", ["x", "y"])
    a.proc.send_signal(signal.SIGTERM)
    assert a.exit_code() == 0
    assert "lock released" in a.log_text()
    b.wait_log(r"main master epoch=")
    assert re.search(r"lock acquired .*previous_clean=true", b.log_text()), b.log_text()
    assert [f[2] for f in drain(b, "/queue/t", 2)] == [b"x", b"y"]


def test_a_slave_stopped_by_sigterm_exits_at_once(brokers):
    a, b = new_group(brokers, 2)
    b.proc.send_signal(signal.SIGTERM)
    assert b.exit_code(timeout=5) == 0
    assert a.health()["role"] == "master"


# ---- pause ---------------------------------------------------------------------------------

def test_a_stopped_master_keeps_the_lock_and_serves_again_after_sigcont(brokers):
    a, b = new_group(brokers, 2, args=["--lock-check-interval", "100"])
    epoch = a.health()["epoch"]
    send_persistent(a, "/queue/s", ["before"])
    a.proc.send_signal(signal.SIGSTOP)
    try:
        # The kernel keeps a stopped process's lock: the slave stays a slave. Watch it for a
        # while (ten lock-check periods) rather than sleeping blindly.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            h = b.health()
            assert h and h["role"] == "slave", h
            assert not b.client_port_open()
            time.sleep(0.05)
    finally:
        a.proc.send_signal(signal.SIGCONT)
    send_persistent(a, "/queue/s", ["after"])
    h = a.wait_role("master")
    assert h["epoch"] == epoch
    assert a.proc.poll() is None
    assert [f[2] for f in drain(a, "/queue/s", 2)] == [b"before", b"after"]


# ---- deposed ------------------------------------------------------------------------------

def write_epoch(store, epoch):
    tmp = os.path.join(store, "epoch.tmp")
    with open(tmp, "w") as f:
        f.write(f"tandem-epoch 1\n{epoch}\n")
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(store, "epoch"))


def drain_all(b, dest, quiet=2.0):
    """Every message `dest` holds: reads until none arrives for `quiet` seconds."""
    r = Raw(b)
    r.connect()
    r.frame("SUBSCRIBE", {"destination": dest, "id": "all", "ack": "client-individual"})
    got = []
    while True:
        try:
            f = r.read_frame(timeout=quiet)
        except AssertionError:
            break
        if f is None:
            break
        assert f[0] == "MESSAGE", f
        got.append(f)
        r.frame("ACK", {"id": f[1]["ack"]})
    r.close()
    return got


def test_a_master_whose_epoch_was_taken_exits_75_and_acknowledges_nothing_more(brokers):
    a, = new_group(brokers, 1, args=["--lock-check-interval", "100"])
    epoch = a.health()["epoch"]
    send_persistent(a, "/queue/d", ["kept"])
    r = Raw(a)
    r.connect()
    write_epoch(a.store, epoch + 5)  # another master took over behind our back
    # From now on nothing may be acknowledged: keep sending; any RECEIPT that arrives must be
    # for a SEND written before the watchdog could have seen the change (one check period).
    # The fence may answer from information up to one lease (2 x 100 ms) old; a SEND written
    # 0.5 s after the change must not be acknowledged. Each body names its receipt id, so
    # the survivors can be checked below.
    t_changed = time.monotonic()
    sent_at = {}
    receipted = ["kept"]
    receipts_late = []
    i = 0
    while a.proc.poll() is None and time.monotonic() - t_changed < 10:
        rid = f"x{i}"
        i += 1
        try:
            sent_at[rid] = time.monotonic()
            r.frame("SEND", {"destination": "/queue/d", "persistent": "true", "receipt": rid}, rid)
        except OSError:
            break
        try:
            f = r.read_frame(timeout=0.05)
        except AssertionError:
            continue
        if f is None:
            break
        if f[0] == "RECEIPT":
            receipted.append(f[1]["receipt-id"])
            if sent_at[f[1]["receipt-id"]] - t_changed > 0.5:
                receipts_late.append(f[1]["receipt-id"])
    r.close()
    assert a.exit_code(timeout=10) == EXIT_DEPOSED
    assert "stepping down" in a.log_text()
    assert receipts_late == [], receipts_late
    # A RECEIPT is a promise whenever it was sent, the tolerated half second included: the
    # next master must deliver every one of those messages (issue 12).
    b = SharedBroker(a.store, "b1")
    brokers.append(b)
    b.start()
    assert b.health()["epoch"] > epoch + 5
    bodies = {f[2].decode() for f in drain_all(b, "/queue/d")}
    missing = [m for m in receipted if m not in bodies]
    assert missing == [], f"receipted by the deposed master but lost: {missing} ({len(receipted)} receipted)"
    print(f"  {len(receipted) - 1} RECEIPTs after the epoch change, all {len(receipted)} receipted messages survive")


def test_a_master_whose_lock_file_was_replaced_exits_75(brokers):
    a, = new_group(brokers, 1, args=["--lock-check-interval", "100"])
    lock = os.path.join(a.store, "lock")
    tmp = lock + ".new"
    open(tmp, "w").close()
    os.rename(tmp, lock)  # a new inode: a starting broker could lock it; we must step down
    assert a.exit_code(timeout=10) == EXIT_DEPOSED
    assert "stepping down" in a.log_text()


if __name__ == "__main__":
    run([
        test_a_directory_that_is_not_a_store_is_refused_without_create_store,
        test_a_store_other_than_the_configured_store_id_is_refused,
        test_a_slave_opens_no_client_port_and_reports_who_holds_the_store,
        test_sigkill_of_the_master_hands_over_with_a_higher_epoch_and_nothing_lost,
        test_sigterm_releases_the_lock_cleanly_and_the_slave_takes_over_at_once,
        test_a_slave_stopped_by_sigterm_exits_at_once,
        test_a_stopped_master_keeps_the_lock_and_serves_again_after_sigcont,
        test_a_master_whose_epoch_was_taken_exits_75_and_acknowledges_nothing_more,
        test_a_master_whose_lock_file_was_replaced_exits_75,
    ])
