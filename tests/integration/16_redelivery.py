"""16 redelivery (issue 16): redelivery delay and back-off per destination policy.

A NACK on a queue whose "destination_policies" entry has "redelivery" puts the message back
after its delay (ActiveMQ's redeliveryPlugin) instead of dead-lettering it at once; the
messages behind it are not held up; after maximum_redeliveries the next NACK dead-letters
it; its delay and count survive a SIGKILL + restart and a failover to a slave. Driven by
Debian's python3-stomp. Times: the broker's tick is 100 ms, so a redelivery comes at its
delay + up to 100 ms; the checks here are "not before the delay" and a generous upper
bound, since a loaded CI machine can be slow (speed is the benchmarks' business)."""
import json
import time
import urllib.request

from tandem_test import Broker, client, new_group, run, wait_for


def policy(pattern=">", **redelivery):
    return {"allow_anonymous": True, "admin_open_reads": True,
            "destination_policies": [{"queue": pattern, "redelivery": redelivery}]}


def consumer(b, dest):
    c = client(b)
    c.subscribe(dest, id="s", ack="client-individual")
    return c


def nack_last(c, receipt):
    """NACKs the last message and waits for the RECEIPT; returns when the NACK was sent,
    which is when the broker starts the delay (the RECEIPT comes after the move is durable,
    an fsync later: timing from it made the delay look up to that much short)."""
    m = c.collector.messages[-1]
    sent_at = time.monotonic()
    c.nack(m.headers["ack"], receipt=receipt)
    c.collector.wait_receipt(receipt)
    return sent_at


def send(b, dest, body, persistent=True):
    p = client(b)
    p.send(dest, body, headers={"persistent": "true" if persistent else "false", "receipt": "r"})
    p.collector.wait_receipt("r")
    p.disconnect()


def destination(b, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}/api/destinations", timeout=5) as resp:
        return next(d for d in json.loads(resp.read()) if d.get("name") == name)


def start(brokers, config):
    b = Broker(config=config)
    brokers.append(b)
    return b.start()


def test_a_nack_comes_back_after_its_backed_off_delays_then_goes_to_the_dlq(brokers):
    b = start(brokers, policy(maximum_redeliveries=2, initial_redelivery_delay_ms=400, use_exponential_back_off=True,
                              back_off_multiplier=2.0))
    c = consumer(b, "/queue/work")
    send(b, "/queue/work", "poison")
    c.collector.wait_messages(1)
    for n, delay in ((1, 0.4), (2, 0.8)):
        t0 = nack_last(c, f"n{n}")
        c.collector.wait_messages(n + 1, timeout=20)
        waited = time.monotonic() - t0
        m = c.collector.messages[n]
        assert m.body == "poison" and m.headers.get("redelivered") == "true", m.headers
        assert waited >= delay - 0.01, f"redelivery {n} came after {waited:.3f}s, before its {delay}s delay"
        assert waited < delay + 5.0, f"redelivery {n} took {waited:.3f}s"
    nack_last(c, "n3")  # redelivered twice: this NACK dead-letters
    d = consumer(b, "/queue/ActiveMQ.DLQ")
    d.collector.wait_messages(1)
    cause = d.collector.messages[0].headers.get("dlqDeliveryFailureCause", "")
    assert "after 2 redeliveries" in cause, cause
    assert d.collector.messages[0].headers.get("original-destination") == "/queue/work"
    # It left the queue for good: nothing pending or in flight there.
    work = destination(b, "/queue/work")
    assert work["pending"] == 0 and work["inflight"] == 0 and work["dead_lettered"] == 1, work
    assert len(c.collector.messages) == 3


def test_a_delayed_redelivery_does_not_block_the_messages_behind_it(brokers):
    b = start(brokers, policy(initial_redelivery_delay_ms=3000))
    c = consumer(b, "/queue/line")
    send(b, "/queue/line", "first")
    c.collector.wait_messages(1)
    nack_last(c, "n")
    send(b, "/queue/line", "second")
    send(b, "/queue/line", "third", persistent=False)
    c.collector.wait_messages(3, timeout=2.5)  # well before first's 3 s delay
    assert [m.body for m in c.collector.messages] == ["first", "second", "third"]
    c.collector.wait_messages(4, timeout=20)
    assert c.collector.messages[3].body == "first"


def test_a_queue_no_entry_matches_still_dead_letters_a_nack_at_once(brokers):
    b = start(brokers, policy("orders.>", initial_redelivery_delay_ms=100))
    c = consumer(b, "/queue/other")
    send(b, "/queue/other", "m")
    c.collector.wait_messages(1)
    nack_last(c, "n")
    d = consumer(b, "/queue/ActiveMQ.DLQ")
    d.collector.wait_messages(1)
    assert d.collector.messages[0].body == "m"


def test_delay_and_count_survive_sigkill_and_restart(brokers):
    b = start(brokers, policy(maximum_redeliveries=1, initial_redelivery_delay_ms=4000))
    c = consumer(b, "/queue/kept")
    send(b, "/queue/kept", "m")
    c.collector.wait_messages(1)
    t0 = nack_last(c, "n")
    b.kill()
    b.start()
    c = consumer(b, "/queue/kept")
    c.collector.wait_messages(1, timeout=30)
    waited = time.monotonic() - t0
    assert waited >= 3.99, f"redelivered {waited:.3f}s after the NACK, before its 4 s delay"
    m = c.collector.messages[0]
    assert m.body == "m" and m.headers.get("redelivered") == "true"
    nack_last(c, "n2")  # redelivered once already (the count was journaled): dead letter
    d = consumer(b, "/queue/ActiveMQ.DLQ")
    d.collector.wait_messages(1)
    assert d.collector.messages[0].body == "m"


def test_a_delayed_redelivery_is_delivered_once_by_the_new_master_after_failover(brokers):
    group = new_group(brokers, 2, config=policy(initial_redelivery_delay_ms=3000))
    master, slave = group
    c = consumer(master, "/queue/fo")
    send(master, "/queue/fo", "m")
    c.collector.wait_messages(1)
    t0 = nack_last(c, "n")
    master.kill()
    slave.wait_log(r"main master epoch=\d+", timeout=30)
    c = consumer(slave, "/queue/fo")
    c.collector.wait_messages(1, timeout=30)
    assert time.monotonic() - t0 >= 2.99
    m = c.collector.messages[0]
    c.ack(m.headers["ack"], receipt="a")
    c.collector.wait_receipt("a")
    c.send("/queue/sync", "x", headers={"receipt": "sync"})
    c.collector.wait_receipt("sync")
    assert [m.body for m in c.collector.messages] == ["m"]


def test_a_bad_policy_is_refused_naming_the_key(brokers):
    import subprocess
    from tandem_test import tandemd_path
    b = Broker(config={})
    brokers.append(b)
    cfg = b.write_config({"destination_policies": [{"queue": ">", "redelivery": {"maximum_redelivery": 3}}]})
    r = subprocess.run([tandemd_path(), "--check-config", cfg], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "maximum_redelivery" in r.stderr + r.stdout and "maximum_redeliveries" in r.stderr + r.stdout, r.stderr
    cfg = b.write_config({"destination_policies": [{"redelivery": {}}]})
    r = subprocess.run([tandemd_path(), "--check-config", cfg], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "exactly one of \"queue\" or \"topic\"" in r.stderr + r.stdout, r.stderr


if __name__ == "__main__":
    run([
        test_a_nack_comes_back_after_its_backed_off_delays_then_goes_to_the_dlq,
        test_a_delayed_redelivery_does_not_block_the_messages_behind_it,
        test_a_queue_no_entry_matches_still_dead_letters_a_nack_at_once,
        test_delay_and_count_survive_sigkill_and_restart,
        test_a_delayed_redelivery_is_delivered_once_by_the_new_master_after_failover,
        test_a_bad_policy_is_refused_naming_the_key,
    ])
