"""15 patroni: tandemd on a PostgreSQL store whose failover Patroni decides (issue 14).

tests/pg/patroni_cluster.sh runs a single-node etcd and two PostgreSQL 15 members under
Patroni with synchronous_mode on. The brokers' store URI lists both members with
target_session_attrs=read-write. The leader's postgres is killed (-9) under a producer;
Patroni (not the harness) promotes the synchronous standby; the master broker's writer
reconnects to it and goes on with the same epoch; every receipted message is there once.

Skips (exit 77) when PostgreSQL 15, Patroni or etcd cannot run here (not root, no packages).
"""
import os
import subprocess
import time

from pg_support import Producer, start_cluster
from tandem_test import drain, new_group, run, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER = os.path.join(HERE, "..", "pg", "patroni_cluster.sh")
# lock_check_interval 3000 ms: the lease is 9 s, well above Patroni's failover here (3-5 s
# on a loaded 2-core machine), so the master must ride it out rather than step down.
ARGS = ["--lock-check-interval", "3000", "--lock-poll-interval-ms", "100"]


class PatroniCluster:
    def __init__(self):
        self.dir, self.env = start_cluster(CLUSTER, "tandem-patroni-")

    def command(self, *args):
        out = subprocess.run([CLUSTER, args[0], self.dir, *args[1:]], capture_output=True, text=True)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out.stdout.strip()

    def leader(self):
        name, port = self.command("leader").split()
        return name, port

    def stop(self):
        subprocess.run([CLUSTER, "stop", self.dir], capture_output=True)


CLUSTERS = []


def test_the_master_keeps_its_epoch_when_patroni_fails_the_primary_over(brokers):
    c = PatroniCluster()
    CLUSTERS.append(c)
    a, s = new_group(brokers, 2, args=ARGS, store=c.env["TANDEM_PG_MULTI_URI"],
                     slave_log=r"slave: waiting for the lease, held by b0")
    assert "the store database is synchronously replicated" in a.log_text(), a.log_text()
    p = Producer(a, "/queue/patroni")
    p.start()
    try:
        wait_for(lambda: len(p.receipted) >= 50, what="50 receipts before the failover")
        old_leader, _ = c.leader()
        c.command("kill-primary")
        killed_at = time.monotonic()
        n_killed = len(p.receipted)
        new_leader, new_port = c.command("promote").split()  # waits for Patroni's promotion
        promoted_in = time.monotonic() - killed_at
        assert new_leader != old_leader, (old_leader, new_leader)
        wait_for(lambda: len(p.receipted) >= n_killed + 50, timeout=60, what="50 receipts after the failover")
    finally:
        p.stop_flag.set()
        p.join(timeout=30)
    first_after = p.first_receipt_sent_after(killed_at)
    print(f"  Patroni promoted {new_leader} {promoted_in * 1000:.0f} ms after the kill; first RECEIPT of a SEND made "
          f"after the kill {first_after * 1000:.0f} ms later; longest time without a RECEIPT {p.longest_gap() * 1000:.0f} ms; "
          f"{p.errors} failed sends, {p.resends} resends")
    assert a.proc.poll() is None, a.log_text()
    h = a.health()
    assert h["role"] == "master" and h["epoch"] == 1, h
    assert s.health()["role"] == "slave", s.health()
    assert f"the writer reconnected to 127.0.0.1:{new_port}" in a.log_text(), a.log_text()
    got = [f[2] for f in drain(a, "/queue/patroni", len(p.receipted))]
    assert len(set(got)) == len(got), "duplicates"
    missing = set(p.receipted) - set(got)
    assert not missing, (len(missing), sorted(missing)[:5])


if __name__ == "__main__":
    try:
        rc = run([test_the_master_keeps_its_epoch_when_patroni_fails_the_primary_over])
    finally:
        for cl in CLUSTERS:
            cl.stop()
    raise SystemExit(rc)
