"""Shared by the PostgreSQL store tests (15_postgresql.py, 15_patroni.py): starting a
cluster script's cluster, and a producer that keeps sending through a database failover and
records what got a RECEIPT."""
import os
import shutil
import subprocess
import tempfile
import threading
import time

from tandem_test import Raw, skip


def start_cluster(script, prefix):
    """Runs `script start DIR` (tests/pg/pg_cluster.sh or patroni_cluster.sh) in a new temp
    dir and returns (DIR, the variables of DIR/env); PGPASSFILE is exported for the brokers.
    Skips the case when the script exits 77 (PostgreSQL, Patroni or etcd cannot run here)."""
    d = tempfile.mkdtemp(prefix=prefix)
    rc = subprocess.run([script, "start", d], capture_output=True, text=True)
    if rc.returncode == 77:
        shutil.rmtree(d, ignore_errors=True)
        skip(rc.stderr.strip())
    assert rc.returncode == 0, rc.stderr
    env = {}
    with open(os.path.join(d, "env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v
    os.environ["PGPASSFILE"] = env["PGPASSFILE"]
    return d, env


class Producer(threading.Thread):
    """Sends persistent messages one at a time, each with a RECEIPT and a producer seq,
    through any failure: an ERROR or a broken connection makes it send the same message
    again (same seq), as a client would; the dedup window drops a copy that was stored.
    `receipted` lists the bodies that got a RECEIPT, `receipted_at` when and `sent_at` when
    the SEND that earned it went out (monotonic)."""

    def __init__(self, broker, dest):
        super().__init__(daemon=True)
        self.broker, self.dest = broker, dest
        self.receipted, self.receipted_at, self.sent_at, self.errors, self.resends = [], [], [], 0, 0
        self.stop_flag = threading.Event()

    def run(self):
        seq, r = 0, None
        while not self.stop_flag.is_set():
            body = f"f-{seq:06d}".encode()
            try:
                if r is None:
                    r = Raw(self.broker, timeout=10)
                    r.connect()
                sent = time.monotonic()
                r.frame("SEND", {"destination": self.dest, "persistent": "true", "receipt": f"s{seq}",
                                 "tandem-producer-id": "failover-producer", "tandem-producer-seq": str(seq + 1)}, body)
                f = r.read_frame(timeout=10)
                if f is not None and f[0] == "RECEIPT":
                    self.receipted.append(body)
                    self.receipted_at.append(time.monotonic())
                    self.sent_at.append(sent)
                    seq += 1
                    continue
                self.errors += 1
                r.close()
                r = None
            except (OSError, AssertionError):
                r = None
            self.resends += 1
            time.sleep(0.05)
        if r is not None:
            r.close()

    def first_receipt_sent_after(self, t):
        """Seconds from `t` to the first RECEIPT of a SEND made after `t` (None if none)."""
        after = [r for s, r in zip(self.sent_at, self.receipted_at) if s > t]
        return after[0] - t if after else None

    def longest_gap(self):
        """The longest time between two RECEIPTs, in seconds."""
        t = self.receipted_at
        return max((b - a for a, b in zip(t, t[1:])), default=0.0)
