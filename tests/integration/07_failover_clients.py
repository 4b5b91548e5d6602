"""07 failover, clients: a client that lists every broker follows the master, and a producer
that resends after a failover is not duplicated (tandem-producer-id / tandem-producer-seq).

stomp.py takes the list as host_and_ports and, on connect, tries each in turn; after a lost
connection the application connects again (docs/failover.md shows the pattern)."""
import time

import stomp

from tandem_test import Collector, drain, new_group, run, wait_for


def failover_client(group):
    """A stomp.py 1.2 connection that knows every broker of the group."""
    conn = stomp.Connection12([("127.0.0.1", b.port) for b in group], reconnect_sleep_initial=0.02,
                              reconnect_sleep_increase=0.0, reconnect_sleep_jitter=0.0, reconnect_sleep_max=0.05,
                              reconnect_attempts_max=400)
    c = Collector()
    conn.set_listener("c", c)
    conn.connect(wait=True)
    conn.collector = c
    return conn


def reconnect(conn, timeout=20.0):
    """What an application does in on_disconnected: connect again (stomp.py walks the list),
    and again if that attempt fails: a SIGKILLed master's listening socket can still complete
    a TCP handshake for a moment while the process dies, then resets it."""
    conn.collector.wait(lambda c: c.disconnected, what="the lost connection to be noticed")
    deadline = time.monotonic() + timeout
    while True:
        with conn.collector.cond:
            conn.collector.disconnected = False
        try:
            conn.connect(wait=True)
            return
        except (stomp.exception.ConnectFailedException, stomp.exception.NotConnectedException, OSError):
            if time.monotonic() >= deadline:
                raise


def send(conn, dest, seq, producer="itest-producer"):
    rid = f"{producer}-{seq}"
    conn.send(dest, f"m{seq}", headers={"persistent": "true", "receipt": rid, "tandem-producer-id": producer,
                                        "tandem-producer-seq": str(seq)})
    return rid


def test_a_client_listing_every_broker_follows_the_master_after_sigkill(brokers):
    group = new_group(brokers, 3)
    conn = failover_client(group)
    for seq in range(1, 21):
        conn.collector.wait_receipt(send(conn, "/queue/f", seq))
    group[0].proc.kill()
    reconnect(conn)
    for seq in range(21, 41):
        conn.collector.wait_receipt(send(conn, "/queue/f", seq))
    conn.disconnect()
    master = wait_for(lambda: next((b for b in group[1:] if (h := b.health()) and h["role"] == "master"), None),
                      what="a new master")
    got = drain(master, "/queue/f", 40)
    assert [f[2].decode() for f in got] == [f"m{i}" for i in range(1, 41)]


def test_a_resend_after_failover_is_dropped_as_a_duplicate_but_still_receipted(brokers):
    group = new_group(brokers, 2)
    conn = failover_client(group)
    for seq in range(1, 31):
        conn.collector.wait_receipt(send(conn, "/queue/dup", seq))
    group[0].proc.kill()
    reconnect(conn)
    # The producer does not know which of its last sends made it (say 21..30): it resends them
    # with the same producer id and seqs, then goes on.
    with conn.collector.cond:
        conn.collector.receipts.clear()
    for seq in range(21, 41):
        conn.collector.wait_receipt(send(conn, "/queue/dup", seq))
    conn.disconnect()
    got = drain(group[1], "/queue/dup", 40)
    bodies = [f[2].decode() for f in got]
    assert bodies == [f"m{i}" for i in range(1, 41)], bodies  # each exactly once, in order


def test_a_resend_to_the_same_master_is_dropped_too(brokers):
    group = new_group(brokers, 1)
    conn = failover_client(group)
    for seq in (1, 2, 2, 3, 1):
        rid = send(conn, "/queue/same", seq)
        conn.collector.wait_receipt(rid)
        with conn.collector.cond:
            conn.collector.receipts.discard(rid)
    conn.disconnect()
    assert [f[2].decode() for f in drain(group[0], "/queue/same", 3)] == ["m1", "m2", "m3"]


if __name__ == "__main__":
    run([
        test_a_client_listing_every_broker_follows_the_master_after_sigkill,
        test_a_resend_after_failover_is_dropped_as_a_duplicate_but_still_receipted,
        test_a_resend_to_the_same_master_is_dropped_too,
    ])
