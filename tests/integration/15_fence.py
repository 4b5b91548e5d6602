"""The fence hook (broker/fence_hook.h) with real brokers, and what a fenced master does.

- fence_silent_master: the master runs in a network namespace of its own (unshare --net), so
  from the slave it looks like a dead or cut-off host: neither its /health nor its STOMP
  port answers, while it keeps the lock. The slave's fence_command is a script that records
  its environment, fails the first time, and on the second run kills the master by the pid
  it was given (STONITH). The slave must run it only after fence_after_ms, retry after the
  failure, and take over after the success, as epoch 2. Needs root (skips otherwise).
- fence_answering_master: a master that answers is never fenced.
- fenced_master_*: the master's store is a tandem-faultfs mount that starts failing the way
  an evicted CephFS client fails (ESHUTDOWN on write and fsync, EIO or ENOTCONN on the lock):
  the master completes no further append (no RECEIPT) and exits 75.

Usage: 15_fence.py TANDEMD TANDEM_FAULTFS
"""
import datetime
import errno
import os
import shutil
import socket
import sys
import tempfile
import time

from tandem_test import Faultfs, Raw, SharedBroker, run, skip

FAULTFS = sys.argv[2] if len(sys.argv) > 2 else "tandem-faultfs"

FENCE_SCRIPT = """#!/bin/sh
# Records the environment of each run; run 1 fails, run 2 kills the master (STONITH).
dir=$(dirname "$0")
n=$(( $(cat "$dir/runs" 2>/dev/null || echo 0) + 1 ))
echo $n > "$dir/runs"
env | grep '^TANDEM_FENCE_' | sort > "$dir/env.$n"
date +%s.%N > "$dir/at.$n"
if [ $n -eq 1 ]; then echo "cannot reach the fencing device" >&2; exit 1; fi
kill -9 "$TANDEM_FENCE_PID" || exit 1
echo "powered off $TANDEM_FENCE_HOST pid $TANDEM_FENCE_PID"
"""


class IsolatedBroker(SharedBroker):
    """A broker in a network namespace of its own: alive, holding the lock, unreachable."""

    def command(self):
        return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] + super().command()


def read_env(path):
    with open(path) as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def new_store():
    return os.path.join(tempfile.mkdtemp(prefix="tandem-itest-store-"), "store")


def fence_silent_master(brokers):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        skip("needs root and unshare(1) for a network namespace")
    store = new_store()
    hook_dir = tempfile.mkdtemp(prefix="tandem-fence-")
    script = os.path.join(hook_dir, "fence.sh")
    with open(script, "w") as f:
        f.write(FENCE_SCRIPT)
    os.chmod(script, 0o755)

    master = IsolatedBroker(store, "b0", create=True)
    brokers.append(master)
    master.start()
    after_ms = 600
    slave = SharedBroker(store, "b1", config={"fence_command": script, "fence_after_ms": after_ms, "fence_timeout_ms": 5000})
    brokers.append(slave)
    slave.start(wait=False)
    # When the slave began watching, by its own log line: the silence counts from its first
    # probe round, right after that line (issue 13), so the moment this test notices the line
    # would be too late by the test's own polling delay.
    m = slave.wait_log(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z \w+\s+fence watching the master")
    watch_started = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    slave.wait_log(r"main master epoch=2", timeout=30)
    assert master.proc.wait(10) == -9, "the fence command did not kill the master"

    log = slave.log_text()
    assert "fence command failed" in log and "cannot reach the fencing device" in log, log
    assert "fence command succeeded" in log and "taking over after the fence command succeeded" in log, log
    with open(os.path.join(hook_dir, "runs")) as f:
        assert f.read().strip() == "2"
    env = read_env(os.path.join(hook_dir, "env.2"))
    assert env["TANDEM_FENCE_PID"] == str(master.proc.pid), env
    assert env["TANDEM_FENCE_EPOCH"] == "1", env
    assert env["TANDEM_FENCE_BROKER_NAME"] == "b0", env
    assert env["TANDEM_FENCE_CLIENT_URL"] == f"tcp://127.0.0.1:{master.port}", env
    assert env["TANDEM_FENCE_ADMIN_URL"] == f"http://127.0.0.1:{master.admin_port}", env
    assert env["TANDEM_FENCE_ADDRESS"] == "127.0.0.1", env
    assert env["TANDEM_FENCE_HOST"] == socket.gethostname(), env
    assert env["TANDEM_FENCE_STORE"] == store, env
    assert env["TANDEM_FENCE_ATTEMPT"] == "2", env
    assert "TANDEM_FENCE_MOUNT_CLIENT_ID" in env  # empty: not CephFS
    # Not before the master was silent for fence_after_ms, as seen from the slave.
    with open(os.path.join(hook_dir, "at.1")) as f:
        first = float(f.read())
    assert first - watch_started >= after_ms / 1000 * 0.9, (first, watch_started)
    # The new master serves.
    r = Raw(slave)
    r.connect()
    r.close()
    shutil.rmtree(hook_dir, ignore_errors=True)


def fence_answering_master(brokers):
    store = new_store()
    hook_dir = tempfile.mkdtemp(prefix="tandem-fence-")
    marker = os.path.join(hook_dir, "ran")
    master = SharedBroker(store, "b0", create=True)
    brokers.append(master)
    master.start()
    slave = SharedBroker(store, "b1", config={"fence_command": f"touch {marker}", "fence_after_ms": 200})
    brokers.append(slave)
    slave.start(wait=False)
    slave.wait_log(r"fence watching the master")
    # Ten times fence_after_ms of probing a master that answers: never a run.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        assert not os.path.exists(marker), "the fence command ran against a master that answers"
        time.sleep(0.05)
    assert slave.health()["role"] == "slave"
    assert master.proc.poll() is None
    # A SIGSTOPped master still accepts TCP connections (listen backlog): the STOMP probe
    # answers, so it is left to the lock lease, not fenced.
    master.proc.send_signal(19)  # SIGSTOP
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            assert not os.path.exists(marker), "the fence command ran against a paused master"
            time.sleep(0.05)
    finally:
        master.proc.send_signal(18)  # SIGCONT
    shutil.rmtree(hook_dir, ignore_errors=True)


def fenced_master_case(brokers, ops, err, with_traffic):
    if not os.path.exists(FAULTFS):
        skip(f"no tandem-faultfs at {FAULTFS}")
    ffs = Faultfs(FAULTFS)
    try:
        store = os.path.join(ffs.mount, "store")
        master = SharedBroker(store, "b0", create=True, args=["--lock-check-interval", "100"])
        brokers.append(master)
        master.start()
        r = Raw(master)
        r.connect()
        r.frame("SEND", {"destination": "/queue/f", "persistent": "true", "receipt": "before"}, "x")
        f = r.read_frame()
        assert f and f[0] == "RECEIPT", f
        # Every later operation of these classes fails as on an evicted CephFS client.
        ffs.ctl("fail", ops, str(err), "count=0")
        receipts = 0
        if with_traffic:
            for i in range(20):
                try:
                    r.frame("SEND", {"destination": "/queue/f", "persistent": "true", "receipt": f"after{i}"}, "y")
                except OSError:
                    break
            while True:
                try:
                    f = r.read_frame()
                except OSError:
                    break
                if f is None:
                    break
                if f[0] == "RECEIPT":
                    receipts += 1
        code = master.exit_code(timeout=20)
        assert code == 75, f"a fenced master exited {code}, not 75"
        assert receipts == 0, f"{receipts} appends completed after the fence"
        assert "stepping down" in master.log_text()
    finally:
        ffs.close()


def fenced_master_eshutdown_write(brokers):
    fenced_master_case(brokers, "write,fsync", errno.ESHUTDOWN, with_traffic=True)


def fenced_master_enotconn_all(brokers):
    fenced_master_case(brokers, "write,fsync,lock,stat", errno.ENOTCONN, with_traffic=True)


def fenced_master_eio_lock_idle(brokers):
    # No traffic at all: the watchdog's lock check (F_OFD_GETLK answers EIO after an
    # eviction) must find it.
    fenced_master_case(brokers, "lock", errno.EIO, with_traffic=False)


if __name__ == "__main__":
    run([fence_answering_master, fence_silent_master, fenced_master_eshutdown_write, fenced_master_enotconn_all,
         fenced_master_eio_lock_idle])
