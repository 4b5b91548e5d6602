"""05 persistence: persistent messages survive a clean restart and a SIGKILL.

The crash test is the broker's core promise: every SEND that got a RECEIPT is delivered after
a SIGKILL and restart, exactly once or flagged redelivered, in order per producer."""
import signal
import threading

from tandem_test import Raw, client, drain, new_broker, run, wait_for


def test_persistent_messages_survive_a_clean_restart(brokers):
    b = new_broker(brokers)
    p = client(b)
    for i in range(20):
        p.send("/queue/p", f"m{i}", headers={"persistent": "true", "receipt": f"r{i}"})
    p.collector.wait_receipt("r19")
    p.disconnect()
    assert b.stop() == 0
    b.start()
    got = drain(b, "/queue/p", 20)
    assert [f[2].decode() for f in got] == [f"m{i}" for i in range(20)]


def test_non_persistent_messages_do_not_survive_a_restart(brokers):
    b = new_broker(brokers)
    p = client(b)
    p.send("/queue/np", "gone", headers={"receipt": "r"})
    p.collector.wait_receipt("r")
    p.disconnect()
    assert b.stop() == 0
    b.start()
    p = client(b)
    p.send("/queue/np", "new", headers={"receipt": "r", "persistent": "true"})
    p.collector.wait_receipt("r")
    got = drain(b, "/queue/np", 1)
    assert [f[2] for f in got] == [b"new"]


def test_every_receipted_message_survives_sigkill_in_order_per_producer(brokers):
    b = new_broker(brokers)
    producers = 4
    receipted = [[] for _ in range(producers)]
    stop = threading.Event()

    def produce(k):
        r = Raw(b)
        r.connect()
        i = 0
        try:
            while not stop.is_set() and i < 2000:
                body = f"p{k}-{i}"
                r.frame("SEND", {"destination": "/queue/crash", "persistent": "true", "receipt": body}, body)
                f = r.read_frame(timeout=10)
                if f is None:
                    return
                if f[0] == "RECEIPT":
                    receipted[k].append(i)
                i += 1
        except (OSError, AssertionError):
            return  # the broker died under us: unreceipted sends may or may not survive

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
    for t in threads:
        t.start()
    # Kill while producers are mid-stream (after some receipts, with more in flight).
    wait_for(lambda: sum(len(x) for x in receipted) >= 200, what="200 receipts")
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    b.start()
    total_receipted = sum(len(x) for x in receipted)
    r = Raw(b)
    r.connect()
    r.frame("SUBSCRIBE", {"destination": "/queue/crash", "id": "d", "ack": "auto"})
    seen = {}
    order = {k: [] for k in range(producers)}
    # Every receipted message must come; unreceipted ones may. Read until all receipted are in
    # and the queue is quiet (a receipt round trip after the last receipted one).
    needed = {(k, i) for k in range(producers) for i in receipted[k]}
    while not needed.issubset(seen.keys()):
        f = r.read_frame(timeout=20)
        assert f is not None and f[0] == "MESSAGE", f
        k, i = f[2].decode()[1:].split("-")
        key = (int(k), int(i))
        if key in seen:
            assert f[1].get("redelivered") == "true", f"duplicate {key} without redelivered:true"
        seen[key] = f
        order[int(k)].append(int(i))
    for k in range(producers):
        firsts = []
        for i in order[k]:
            if i not in firsts:
                firsts.append(i)
        assert firsts == sorted(firsts), f"producer {k} out of order: {firsts[:20]}"
    print(f"crash test: {total_receipted} receipted, {len(seen)} delivered after restart")


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
