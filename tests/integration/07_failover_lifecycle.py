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
import tempfile
import time

from tandem_test import Raw, SharedBroker, drain, new_group, run, send_persistent, wait_for

EXIT_DEPOSED = 75  # lockmgr::exit_code_deposed


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


def lock_waiters(path):
    """Processes blocked in the kernel waiting for a lock on `path` ("->" lines of
    /proc/locks): a slave with lock_wait "blocking" is one, a polling slave never."""
    st = os.stat(path)
    inode = f" {os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino} "
    with open("/proc/locks") as f:
        return sum(1 for line in f if "->" in line and inode in line)


def test_a_slave_polling_for_the_lock_takes_over_after_sigkill(brokers):
    """lock_wait "polling" from the config file reaches the lock manager (issue 11): the slave
    says so, never blocks in the kernel, and takes over when the master dies."""
    a, b = new_group(brokers, 2, config={"lock_wait": "polling", "lock_poll_interval_ms": 50})
    line = b.wait_log(r"slave: waiting for lock.*").group(0)
    assert "lock_wait=polling" in line and "poll_interval_ms=50" in line, line
    # Absence needs a window: ten poll intervals with the slave trying and never waiting.
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        assert lock_waiters(os.path.join(a.store, "lock")) == 0
        time.sleep(0.02)
    send_persistent(a, "/queue/poll", ["p1", "p2"])
    a.proc.kill()
    b.wait_log(r"main master epoch=2")
    assert re.search(r"lock acquired .*lock_wait=polling", b.log_text()), b.log_text()
    assert [f[2] for f in drain(b, "/queue/poll", 2)] == [b"p1", b"p2"]


def test_a_blocking_slave_waits_in_the_kernel(brokers):
    """The default, for contrast with polling: the slave is a lock waiter in /proc/locks."""
    a, b = new_group(brokers, 2)
    assert "lock_wait=blocking" in b.wait_log(r"slave: waiting for lock.*").group(0)
    wait_for(lambda: lock_waiters(os.path.join(a.store, "lock")) == 1, what="the slave to block on the lock")


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
        test_a_slave_polling_for_the_lock_takes_over_after_sigkill,
        test_a_blocking_slave_waits_in_the_kernel,
        test_sigterm_releases_the_lock_cleanly_and_the_slave_takes_over_at_once,
        test_a_slave_stopped_by_sigterm_exits_at_once,
        test_a_stopped_master_keeps_the_lock_and_serves_again_after_sigcont,
        test_a_master_whose_epoch_was_taken_exits_75_and_acknowledges_nothing_more,
        test_a_master_whose_lock_file_was_replaced_exits_75,
    ])
