"""Takeover without the lease wait when the old master provably died on this host (issues 12/13).

A new master waits the old holder's lease (holder.json lease_ms) after an unclean end
wherever a freed lock does not prove the holder gone: on a FUSE or network file system, and
on any file system when DIR/lock was removed or replaced behind the holder. When holder.json
names this host, boot and pid namespace and that process is gone, it appends nothing more and
the wait ends (lockmgr/holder_process.h, docs/failover.md "Kill on the same host").

- kill_on_fuse_store_needs_no_lease_wait: two brokers on a tandem-faultfs mount (FUSE, so the
  lease wait applies; lease 4 s), a producer receipting every persistent SEND, kill -9 of the
  master. The slave must log predecessor=gone and wait less than the lease; every receipted
  message is delivered afterwards. Prints kill -> new master serving. Before the change the
  slave waited the whole lease (takeover_delay_ms=4000).
- replaced_lock_with_live_holder_still_waits: the lock-replaced case of issue 12 bug 1 on a
  local store: the master is alive (stopped with SIGSTOP, so it cannot notice), DIR/lock is
  replaced, a second broker starts: it must wait the holder's full lease (predecessor=alive)
  and the old master, resumed, exits 75 without a RECEIPT after the new epoch; every message
  receipted before is delivered by the new master.
- deposed_master_does_not_receipt_a_duplicate (issue 12, promise.md "Long run 3" finding 4):
  as above, but what reaches the stopped master is a producer's reconnect: CONNECT and the
  resend (same tandem-producer-id and -seq) of a message it already receipted. Resumed after
  the new master serves, it must not answer the resend with a RECEIPT (before the fix: one
  marked tandem-duplicate, from its duplicate window, without passing the fence); the
  connection ends as it steps down (exit 75), and the new master holds the message once.
- failed_close_or_open_is_an_unclean_end: while fdatasync fails (tandem-faultfs) a master's
  journal close fails at SIGTERM and the next broker's journal open fails: neither may leave
  holder.json saying clean_release; the master after them sees an unclean end, re-syncs the
  tail and delivers every receipted message.
- slow_recovery_keeps_the_lock: on a mount whose lock lease (tandem-faultfs, 800 ms) is
  renewed only by the lock holder's own checks, a new master whose journal recovery takes
  longer than the lease (segment reads delayed 1.5 s each) while another broker waits for the
  lock must keep the lock and serve. Before the fix its lock checks started only once it
  served: the lease ran out during recovery, the waiting broker was given the lock, the
  recovering one exited 75 at its first write, and with every recovery that slow no broker
  ever served (a long tandem-drill run stopped on this: "no new master accepted a message").
- slave_preloads_the_checkpoint_and_the_takeover_uses_it (issue 13): a slave reads and
  decodes the store's newest checkpoint while it waits (journal/standby.h); /health shows
  it; after kill -9 of the master the slave's open uses it (log: preloaded=true) and replays
  only the tail; every receipted message is delivered, the tail's too.

Usage: 07_failover_same_host.py TANDEMD TANDEM_FAULTFS
"""
import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time

from tandem_test import Faultfs, Raw, SharedBroker, drain, run, send_persistent, skip, wait_for

FAULTFS = sys.argv[2] if len(sys.argv) > 2 else "tandem-faultfs"
CHECK_INTERVAL_MS = 2000  # lease 4 s: long enough that "did not wait it" is unmistakable


class Producer:
    """Sends persistent messages with a RECEIPT each on one connection until stopped; keeps
    the bodies whose RECEIPT arrived."""

    def __init__(self, broker, dest):
        self.raw = Raw(broker)
        self.raw.connect()
        self.dest = dest
        self.receipted = set()
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        i = 0
        try:
            while not self.stop_flag.is_set():
                body = f"m{i}"
                self.raw.frame("SEND", {"destination": self.dest, "persistent": "true", "receipt": body}, body)
                f = self.raw.read_frame(timeout=10)
                if f is None or f[0] != "RECEIPT":
                    return
                self.receipted.add(f[1]["receipt-id"])
                i += 1
        except OSError:
            return  # the master died or stepped down: the connection ends

    def wait_receipts(self, n):
        wait_for(lambda: len(self.receipted) >= n, 20, f"{n} receipts")

    def stop(self):
        self.stop_flag.set()
        self.thread.join(15)
        try:
            self.raw.close()
        except OSError:
            pass


def lock_acquired_line(broker):
    return broker.wait_log(r"lockmgr lock acquired .*").group(0)


def field(line, key):
    m = re.search(rf"\b{key}=(\S+)", line)
    assert m, f"no {key}= in {line!r}"
    return m.group(1)


def check_delivered(broker, dest, receipted):
    got = drain(broker, dest, len(receipted))
    bodies = {f[2].decode() if isinstance(f[2], bytes) else f[2] for f in got if f[0] == "MESSAGE"}
    missing = receipted - bodies
    assert not missing, f"{len(missing)} receipted messages lost, e.g. {sorted(missing)[:5]}"


@contextlib.contextmanager
def faultfs_store(brokers):
    """A store directory on a fresh tandem-faultfs mount; on the way out every broker of the
    case is killed before the mount goes (skips the case without tandem-faultfs)."""
    if not os.path.exists(FAULTFS):
        skip(f"no tandem-faultfs at {FAULTFS}")
    ffs = Faultfs(FAULTFS)
    try:
        yield ffs, os.path.join(ffs.mount, "store")
    finally:
        for b in brokers:
            b.kill()
        ffs.close()


def kill_on_fuse_store_needs_no_lease_wait(brokers):
    with faultfs_store(brokers) as (ffs, store):
        args = ["--lock-check-interval", str(CHECK_INTERVAL_MS)]
        master = SharedBroker(store, "b0", create=True, args=args)
        slave = SharedBroker(store, "b1", args=args)
        brokers += [master, slave]
        master.start()
        slave.start(wait=False)
        slave.wait_log(r"slave: waiting for lock")
        producer = Producer(master, "/queue/samehost")
        producer.wait_receipts(200)
        killed_at = time.monotonic()
        master.proc.send_signal(signal.SIGKILL)
        wait_for(slave.client_port_open, 30, "the slave serving", interval=0.001)
        serving_ms = (time.monotonic() - killed_at) * 1000
        producer.stop()
        line = lock_acquired_line(slave)
        print(f"kill -9 -> new master's port open: {serving_ms:.0f} ms; {line.strip()}", flush=True)
        assert "fs=fuse" in line, line
        assert field(line, "previous_clean") == "false", line
        assert field(line, "predecessor") == "gone", line
        # Before: takeover_delay_ms=4000 (the old holder's whole lease).
        assert int(field(line, "takeover_delay_ms")) < 2 * CHECK_INTERVAL_MS, line
        slave.wait_log(r"main master epoch=2")
        check_delivered(slave, "/queue/samehost", producer.receipted)


def settle_receipts(producer, quiet_s=0.5, timeout_s=10):
    deadline = time.monotonic() + timeout_s
    seen, since = len(producer.receipted), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if len(producer.receipted) != seen:
            seen, since = len(producer.receipted), time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
    raise AssertionError("RECEIPTs kept arriving from a stopped broker")


def replaced_lock_with_live_holder_still_waits(brokers):
    store = os.path.join(tempfile.mkdtemp(prefix="tandem-itest-store-"), "store")
    args = ["--lock-check-interval", str(CHECK_INTERVAL_MS)]
    master = SharedBroker(store, "b0", create=True, args=args)
    brokers.append(master)
    master.start()
    producer = Producer(master, "/queue/replaced")
    producer.wait_receipts(100)
    master.proc.send_signal(signal.SIGSTOP)
    # RECEIPTs b0 wrote just before it stopped may still be in the socket: let the producer
    # read them before taking the set b0 must not add to.
    settle_receipts(producer)
    # An operator's restored backup: a new lock file renamed over the one b0 locks.
    fresh = os.path.join(store, "lock.restored")
    open(fresh, "w").close()
    os.rename(fresh, os.path.join(store, "lock"))
    before = set(producer.receipted)
    taker = SharedBroker(store, "b1", args=args)
    brokers.append(taker)
    taker.start(wait=False)
    line = lock_acquired_line(taker)
    assert field(line, "predecessor") == "alive", line
    assert int(field(line, "takeover_delay_ms")) >= 2 * CHECK_INTERVAL_MS, line
    taker.wait_log(r"main master epoch=2")
    master.proc.send_signal(signal.SIGCONT)
    code = master.exit_code(timeout=20)
    assert code == 75, f"the deposed master exited {code}, not 75"
    producer.stop()
    # The producer has one SEND outstanding. SIGSTOP can land after b0's writer confirmed that
    # SEND's group (fdatasync done, lock and epoch checked: still ours, before b1 existed) but
    # before its io thread wrote the RECEIPT; that RECEIPT then leaves after SIGCONT. It is
    # true: the record precedes b1's cut, so b1 recovered it (check_delivered below). Anything
    # more would be a SEND that b0 took after the new epoch existed: the fence must stop it.
    late = producer.receipted - before
    assert len(late) <= 1, f"{len(late)} RECEIPTs after the new epoch: {sorted(late)}"
    check_delivered(taker, "/queue/replaced", producer.receipted)


def deposed_master_does_not_receipt_a_duplicate(brokers):
    with faultfs_store(brokers) as (ffs, store):
        args = ["--lock-check-interval", str(CHECK_INTERVAL_MS)]
        master = SharedBroker(store, "b0", create=True, args=args)
        brokers.append(master)
        master.start()
        dest = "/queue/dupfence"
        sent = 5
        first = Raw(master)
        first.connect()
        for seq in range(1, sent + 1):
            first.frame("SEND", {"destination": dest, "persistent": "true", "receipt": f"r{seq}",
                                 "tandem-producer-id": "p-fence", "tandem-producer-seq": str(seq)}, f"m{seq}")
            f = first.read_frame()
            assert f and f[0] == "RECEIPT" and "tandem-duplicate" not in f[1], f
        master.proc.send_signal(signal.SIGSTOP)
        # The producer lost its connection and reconnects; the kernel accepts for the stopped
        # process and keeps what it sends: CONNECT, then the resend of seq 3 (already stored).
        resend = Raw(master)
        resend.frame("CONNECT", {"accept-version": "1.2", "host": "localhost"})
        resend.frame("SEND", {"destination": dest, "persistent": "true", "receipt": "resend-3",
                              "tandem-producer-id": "p-fence", "tandem-producer-seq": "3"}, "m3")
        fresh = os.path.join(store, "lock.restored")
        open(fresh, "w").close()
        os.rename(fresh, os.path.join(store, "lock"))
        taker = SharedBroker(store, "b1", args=args)
        brokers.append(taker)
        taker.start(wait=False)
        taker.wait_log(r"main master epoch=2", 30)
        # The old master's watchdog is overdue when it resumes and races its io thread; its
        # look at DIR/lock is made slow so the resend is surely handled first. Only the
        # fence then stands between the resend and a RECEIPT.
        ffs.ctl("delay", "stat", "1500", "count=0", "path=store/lock", f"pid={master.proc.pid}")
        master.proc.send_signal(signal.SIGCONT)
        answers = []
        try:
            while True:
                f = resend.read_frame(timeout=20)
                if f is None:
                    break
                answers.append(f)
        except OSError:
            pass  # reset as the process exits
        code = master.exit_code(timeout=20)
        ffs.ctl("clear")
        assert code == 75, f"the deposed master exited {code}, not 75"
        receipts = [f for f in answers if f[0] == "RECEIPT"]
        # Before the fix: ('RECEIPT', {'receipt-id': 'resend-3', 'tandem-duplicate': 'true'}).
        assert not receipts, f"the deposed master receipted the resend after epoch 2 existed: {receipts}"
        got = drain(taker, dest, sent)
        bodies = sorted(f[2].decode() for f in got if f[0] == "MESSAGE")
        assert bodies == [f"m{i}" for i in range(1, sent + 1)], bodies

def read_holder(store):
    with open(os.path.join(store, "holder.json")) as f:
        return json.load(f)


def failed_close_or_open_is_an_unclean_end(brokers):
    """A master that gives the store back after its journal failed must NOT mark the holder
    record released cleanly: a taker would skip the tail re-sync of bug 6 and build on
    records that may not be durable. While fdatasync fails on the journal (tandem-faultfs):
    b0 is stopped with SIGTERM (its close fails), then b1 starts and cannot open the journal
    (its tail re-sync fails) and gives the lock back. Neither may leave clean_release true;
    b1 exits 1. With the file system healthy again b2 sees an unclean end, re-syncs the tail
    and delivers every receipted message. Before the fix b1 marked the record clean (its
    release after a failed open was the clean one); b0's close failure also marked it clean
    whenever the release ran before the step-down that the journal failure posts."""
    with faultfs_store(brokers) as (ffs, store):
        # sync never: RECEIPTs before fdatasync, so the close has unsynced records to sync.
        master = SharedBroker(store, "b0", create=True, args=["--sync", "never"])
        brokers.append(master)
        master.start()
        producer = Producer(master, "/queue/failedclose")
        producer.wait_receipts(50)
        producer.stop()
        ffs.ctl("fail", "fsync", "5", "count=0", "path=store/journal/*")  # EIO
        master.proc.send_signal(signal.SIGTERM)
        code = master.exit_code(timeout=20)
        # 75 whichever comes first: the close thread's end or the step-down that the
        # journal's failure report posts (it was 1 or 75 before, by that race).
        assert code == 75, f"a master whose journal close failed exited {code}, not 75 (journal I/O error)"
        assert read_holder(store)["clean_release"] is False, f"failed close marked clean: {read_holder(store)}"
        opener = SharedBroker(store, "b1")
        brokers.append(opener)
        opener.start(wait=False)
        code = opener.exit_code(timeout=30)
        assert code == 1, f"a broker that cannot open the journal exited {code}, not 1"
        holder = read_holder(store)
        assert holder["broker_name"] == "b1", holder
        assert holder["clean_release"] is False, f"failed open marked clean: {holder}"
        ffs.ctl("clear")
        taker = SharedBroker(store, "b2")
        brokers.append(taker)
        taker.start()
        line = lock_acquired_line(taker)
        assert field(line, "previous_clean") == "false", line
        taker.wait_log(r"journal recovered tail made durable before serving")
        check_delivered(taker, "/queue/failedclose", producer.receipted)


def slow_recovery_keeps_the_lock(brokers):
    with faultfs_store(brokers) as (ffs, store):
        ffs.ctl("lease", "800")
        args = ["--lock-check-interval", "200"]
        first = SharedBroker(store, "b0", create=True, args=args)
        taker = SharedBroker(store, "b1", args=args)
        brokers += [first, taker]
        first.start()
        receipted = {f"m{i}" for i in range(20)}
        r = Raw(first)
        r.connect()
        for body in sorted(receipted):
            r.frame("SEND", {"destination": "/queue/slowrec", "persistent": "true", "receipt": body}, body)
        for _ in receipted:
            f = r.read_frame()
            assert f and f[0] == "RECEIPT", f
        r.close()
        taker.start(wait=False)
        taker.wait_log(r"slave: waiting for lock")
        ffs.ctl("delay", "read", "1500", "count=0", "path=store/journal/*.seg")
        first.kill()
        lock_acquired_line(taker)
        t0 = time.monotonic()
        # Back as a slave while the taker recovers: its lock request conflicts, so the mount
        # gives it the lock as soon as the taker's lease has run out.
        first.start(wait=False)
        first.wait_log(r"slave: waiting for lock")
        taker.wait_log(r"main master epoch=\d+", 60)
        recovery_s = time.monotonic() - t0
        print(f"recovery with segment reads delayed 1.5 s: {recovery_s:.1f} s (lease 0.8 s)", flush=True)
        assert taker.proc.poll() is None, f"the recovering master exited {taker.proc.returncode}"
        assert recovery_s > 0.8, "recovery was not longer than the lease: nothing was shown"
        ffs.ctl("clear")
        assert taker.health().get("role") == "master", taker.health()
        assert first.health().get("role") == "slave", first.health()
        assert ffs.status()["revocations"] == 0, ffs.status()
        check_delivered(taker, "/queue/slowrec", receipted)


def slave_preloads_the_checkpoint_and_the_takeover_uses_it(brokers):
    store = os.path.join(tempfile.mkdtemp(prefix="tandem-itest-store-"), "store")
    first = SharedBroker(store, "b0", create=True)
    brokers.append(first)
    first.start()
    # More than 4,096 records: SIGTERM's close then writes a checkpoint (takeover bound).
    before = [f"c{i}" for i in range(4200)]
    send_persistent(first, "/queue/preload", before)
    first.stop()
    assert any(n.endswith(".ckpt") for n in os.listdir(os.path.join(store, "journal")))
    first.start()
    slave = SharedBroker(store, "b1")
    brokers.append(slave)
    slave.start(wait=False)
    slave.wait_log(r"slave: waiting for lock")
    line = slave.wait_log(r"slave: checkpoint preloaded .*").group(0)
    assert field(line, "live_messages") == "4200", line
    preloaded = slave.health().get("preloaded_checkpoint")
    assert preloaded and preloaded["live_messages"] == 4200 and preloaded["lsn"] > 0, slave.health()
    tail = [f"t{i}" for i in range(50)]
    send_persistent(first, "/queue/preload", tail)
    first.kill()
    served = slave.wait_log(r"main master epoch=\d+.*").group(0)
    assert int(field(served, "records_replayed")) < 200, served  # the tail, not the 4,200
    loaded = slave.wait_log(r"journal checkpoint loaded .*").group(0)
    assert field(loaded, "preloaded") == "true", loaded
    print(f"takeover with the preloaded checkpoint: {served}", flush=True)
    check_delivered(slave, "/queue/preload", set(before) | set(tail))


def slave_holds_the_sealed_segments_and_the_takeover_reads_only_the_last(brokers):
    """1 MiB segments: the log after the checkpoint spans several, and the slave holds every
    one the master has moved on from (journal/standby.h); the takeover replays them from
    memory and reads only the last segment."""
    store = os.path.join(tempfile.mkdtemp(prefix="tandem-itest-store-"), "store")
    config = {"segment_bytes": 1048576}
    first = SharedBroker(store, "b0", create=True, config=config)
    brokers.append(first)
    first.start()
    before = [f"c{i}" for i in range(4200)]
    send_persistent(first, "/queue/sealed", before)
    first.stop()  # a checkpoint (more than 4,096 records)
    first.start()
    slave = SharedBroker(store, "b1", config=config)
    brokers.append(slave)
    slave.start(wait=False)
    slave.wait_log(r"slave: checkpoint preloaded .*")
    pad = "x" * 1000
    tail = [f"t{i}-{pad}" for i in range(3000)]  # about 3 MiB: three segments and more
    send_persistent(first, "/queue/sealed", tail)
    held = wait_for(lambda: (p := (slave.health() or {}).get("preloaded_checkpoint")) and
                    p.get("sealed_segments", 0) >= 2 and p, 10, "the slave holding 2 sealed segments")
    assert held["sealed_bytes"] > 2 * 1024 * 1024, held
    first.kill()
    served = slave.wait_log(r"main master epoch=\d+.*").group(0)
    assert int(field(served, "preloaded_segment_bytes")) >= held["sealed_bytes"] // 2, (served, held)
    print(f"takeover with {held['sealed_segments']} sealed segments held ({held['sealed_bytes']} bytes): "
          f"{served}", flush=True)
    check_delivered(slave, "/queue/sealed", set(before) | set(tail))


if __name__ == "__main__":
    run([kill_on_fuse_store_needs_no_lease_wait, replaced_lock_with_live_holder_still_waits,
         deposed_master_does_not_receipt_a_duplicate,
         failed_close_or_open_is_an_unclean_end, slow_recovery_keeps_the_lock,
         slave_preloads_the_checkpoint_and_the_takeover_uses_it,
         slave_holds_the_sealed_segments_and_the_takeover_reads_only_the_last])
