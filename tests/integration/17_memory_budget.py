"""17 memory budget (issue 17, "one global memory budget over all sessions' buffers and
messages"): max_memory_bytes bounds messages held in memory, partial frames and write queues
together. At the limit a connection in the middle of a frame is not read (its client's send
blocks, like ActiveMQ's producer flow control) while ACKs and small frames still are, so
consumers drain; a frame that waits send_timeout_ms gets an ERROR naming max_memory_bytes."""
import os
import shutil
import socket
import struct
import subprocess
import threading
import time

from tandem_test import Broker, Raw, client, metric, rss, run, skip, wait_for

MiB = 1 << 20


def budget_broker(brokers, **limits):
    cfg = {"allow_anonymous": True, "frame_timeout_ms": 0, "idle_timeout_ms": 0, "admin_open_reads": True}
    cfg.update(limits)
    b = Broker(config=cfg)
    brokers.append(b)
    b.start()
    return b


class PartialFrameSender:
    """A session that CONNECTs and then sends `size` octets of one SEND's body, never its end:
    a slowloris with a large frame. Its sendall blocks once the broker stops reading."""

    def __init__(self, b, size):
        self.sock = socket.create_connection(("127.0.0.1", b.port), timeout=120)
        # A small send buffer: what the broker has not read stays with this client.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        self.sock.sendall(b"CONNECT\naccept-version:1.2\nhost:x\nheart-beat:0,0\n\n\0")
        got = b""
        while b"\0" not in got:
            got += self.sock.recv(4096)
        assert got.startswith(b"CONNECTED"), got
        self.size = size
        self.sent = 0
        self.thread = threading.Thread(target=self._send, daemon=True)
        self.thread.start()

    def _send(self):
        self.sock.sendall(f"SEND\ndestination:/queue/big\ncontent-length:{self.size}\n\n".encode())
        chunk = b"x" * (256 * 1024)
        try:
            while self.sent < self.size:
                n = self.sock.send(chunk[:self.size - self.sent])
                self.sent += n
        except OSError:
            pass

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def wait_until_senders_settle(senders, timeout=60):
    """Until every sender has sent all it meant to, or none has progressed for 1 s (the
    broker stopped reading them)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        total = sum(s.sent for s in senders)
        if all(s.sent >= s.size for s in senders):
            return total
        if total != last:
            last, since = total, time.monotonic()
        elif time.monotonic() - since >= 1.0:
            return total
        time.sleep(0.05)
    raise AssertionError("partial-frame senders neither finished nor stalled")


def pair_round_trips(b, n, what):
    """A well-behaved producer/consumer pair: n persistent SENDs with receipts, each received
    and ACKed. Returns the slowest RECEIPT in seconds."""
    p = client(b)
    pc = p.collector
    c = client(b)
    cc = c.collector
    c.subscribe("/queue/good", id="g", ack="client-individual")
    slowest = 0.0
    for i in range(n):
        rid = f"{what}{i}"
        t0 = time.monotonic()
        p.send("/queue/good", f"ping {i}", headers={"persistent": "true", "receipt": rid})
        pc.wait_receipt(rid, timeout=10)
        slowest = max(slowest, time.monotonic() - t0)
        cc.wait_messages(i + 1, timeout=10)
        m = cc.messages[i]
        c.ack(m.headers["ack"])
    assert not pc.errors and not cc.errors, (pc.errors, cc.errors)
    p.disconnect()
    c.disconnect()
    return slowest


def test_partial_frames_stay_within_the_memory_budget(brokers):
    # Regression (issue 17, finding 3): 20 sessions holding 9 MiB partial frames added 200 MB;
    # no bound covered connections' buffers, only messages.
    budget = 32 * MiB
    overhead = 24 * MiB  # malloc slack, the pair's traffic
    b = budget_broker(brokers, max_memory_bytes=budget, send_timeout_ms=20000)
    pair_round_trips(b, 5, "warm")
    before = rss(b)
    senders = [PartialFrameSender(b, 9 * MiB) for _ in range(20)]
    try:
        taken = wait_until_senders_settle(senders)
        peak = rss(b)
        # The broker still serves a well-behaved pair while the budget is full.
        slowest = pair_round_trips(b, 20, "during")
        peak = max(peak, rss(b))
        print(f"senders pushed {taken / MiB:.1f} MiB; RSS {before / MiB:.1f} -> {peak / MiB:.1f} MiB; "
              f"slowest RECEIPT {slowest * 1000:.1f} ms", flush=True)
        assert peak - before <= budget + overhead, \
            f"RSS grew {(peak - before) / MiB:.1f} MiB with a budget of {budget / MiB:.0f} MiB"
        held = metric(b, "tandem_memory_partial_frame_bytes")
        assert held <= budget + 20 * 64 * 1024, held
        assert metric(b, "tandem_memory_budget_waiting") >= 1
    finally:
        for s in senders:
            s.close()
    # These clients' FINs cannot reach the broker: they wait in the clients' send buffers
    # behind frame bytes the broker's full socket buffer has no room for, so the broker cannot
    # tell they hung up (test_a_client_that_hangs_up_while_its_frame_waits_for_memory_... is
    # the case where it can): send_timeout_ms ends the wait and gives the partial frames back.
    wait_for(lambda: metric(b, "tandem_memory_partial_frame_bytes") == 0, timeout=60, interval=0.2)


def connect_idle(b, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", b.port), timeout=30)
        s.sendall(b"CONNECT\naccept-version:1.2\nhost:x\nheart-beat:0,0\n\n\0")
        socks.append(s)
    for s in socks:
        got = b""
        while b"\0" not in got:
            got += s.recv(4096)
        assert got.startswith(b"CONNECTED"), got
    return socks


def test_idle_connections_hold_small_read_buffers_counted_in_the_budget(brokers):
    # Regression (issue 17, "one global memory budget over all sessions' buffers"): every
    # connection held a 64 KiB read buffer outside max_memory_bytes: 1,000 idle CONNECTed
    # clients added 74 KiB of RSS each (74 MiB) and the budget counted none of it. Now an idle
    # connection holds 4 KiB (64 KiB only while its client streams), and it is counted.
    n = 500
    b = budget_broker(brokers, max_connections=10000)
    pair_round_trips(b, 5, "warm")
    # The pair's connections are gone once their buffers are given back.
    wait_for(lambda: metric(b, "tandem_memory_read_buffer_bytes") == 0, timeout=10, interval=0.05)
    buffers_before = 0
    before = rss(b)
    socks = connect_idle(b, n)
    try:
        time.sleep(0.5)
        grown = rss(b) - before
        counted = metric(b, "tandem_memory_read_buffer_bytes") - buffers_before
        print(f"{n} idle connections: RSS +{grown / 1024 / n:.1f} KiB each, "
              f"read buffers counted {counted / n / 1024:.1f} KiB each", flush=True)
        assert counted == n * 4096, counted
        assert grown / n < 40 * 1024, f"RSS grew {grown / n / 1024:.1f} KiB per idle connection"
        # A client that streams gets the large buffer, and gives it back when it goes quiet.
        streamer = socks[0]
        frame = b"SEND\ndestination:/queue/stream\n\n" + b"x" * 1000 + b"\0"
        streamer.sendall(frame * 2000)
        wait_for(lambda: metric(b, "tandem_memory_read_buffer_bytes") - buffers_before > counted,
                 timeout=10, interval=0.05)
    finally:
        for s in socks:
            s.close()
    wait_for(lambda: metric(b, "tandem_memory_read_buffer_bytes") == buffers_before, timeout=30, interval=0.2)


def test_consumers_drain_while_producers_wait(brokers):
    # No deadlock: with the budget full of messages nobody has read and a producer stuck in
    # the middle of a large frame, a consumer can still SUBSCRIBE, receive and ACK, and the
    # freed memory lets the waiting frame in.
    budget = 4 * MiB
    b = budget_broker(brokers, max_memory_bytes=budget, send_timeout_ms=60000)
    p = client(b)
    pc = p.collector
    body = "m" * (256 * 1024)
    for i in range(14):  # 3.5 MiB of non-persistent messages nobody reads yet
        p.send("/queue/backlog", body, headers={"receipt": f"f{i}"})
        pc.wait_receipt(f"f{i}")
    # A 3 MiB frame fills the rest: its reader stops in the middle of it.
    big = PartialFrameSender(b, 3 * MiB)
    wait_for(lambda: metric(b, "tandem_memory_budget_waiting") >= 1, timeout=10, interval=0.1)
    assert metric(b, "tandem_memory_partial_frame_bytes") < 1 * MiB
    c = client(b)
    cc = c.collector
    c.subscribe("/queue/backlog", id="d", ack="client-individual", headers={"activemq.prefetchSize": "2"})
    for i in range(14):
        cc.wait_messages(i + 1, timeout=15)
        c.ack(cc.messages[i].headers["ack"])
    # Memory freed: the waiting frame is read to its end (the broker would take it once its
    # NUL came, which this sender never sends).
    wait_for(lambda: metric(b, "tandem_memory_partial_frame_bytes") >= 3 * MiB, timeout=30, interval=0.1)
    assert metric(b, "tandem_memory_budget_waiting") == 0
    assert not cc.errors, cc.errors
    big.close()


def test_a_frame_that_waits_too_long_gets_an_error_naming_the_limit(brokers):
    b = budget_broker(brokers, max_memory_bytes=2 * MiB, send_timeout_ms=1500)
    p = client(b)
    pc = p.collector
    for i in range(7):  # 1.75 MiB held by a queue nobody reads
        p.send("/queue/unread", "u" * (256 * 1024), headers={"receipt": f"u{i}"})
        pc.wait_receipt(f"u{i}")
    r = Raw(b)
    r.connect(extra={"heart-beat": "0,0"})
    r.send(b"SEND\ndestination:/queue/x\ncontent-length:1000000\n\n" + b"y" * 600000)
    t0 = time.monotonic()
    f = r.read_frame(timeout=15)
    took = time.monotonic() - t0
    assert f is not None and f[0] == "ERROR", f
    assert "max_memory_bytes" in f[1]["message"] and b"send_timeout_ms" in f[2], f
    assert 1.0 <= took < 10, took
    assert r.read_eof(timeout=10) is not None


def parked_sender(b, body_bytes, sent_bytes):
    """A raw session that CONNECTs and sends the first `sent_bytes` of a SEND whose body is
    `body_bytes` long: with the budget full its reader stops in the middle of it."""
    r = Raw(b)
    r.connect(extra={"heart-beat": "0,0"})
    r.send(f"SEND\ndestination:/queue/parked\ncontent-length:{body_bytes}\n\n".encode() + b"p" * sent_bytes)
    return r


def test_a_client_that_hangs_up_while_its_frame_waits_for_memory_is_closed_at_once(brokers):
    # Regression (issue 17): a connection parked mid-frame on a full budget was not read, so
    # its client's hang-up (a FIN behind the unread bytes, or an RST) went unnoticed until
    # send_timeout_ms: the session, its partial frame and its unacked messages stayed held.
    # Now a parked connection's socket is looked at without reading (poll POLLRDHUP).
    send_timeout_ms = 60000
    b = budget_broker(brokers, max_memory_bytes=2 * MiB, send_timeout_ms=send_timeout_ms)
    p = client(b)
    pc = p.collector
    p.send("/queue/held", "held by a parked session", headers={"persistent": "true", "receipt": "h"})
    pc.wait_receipt("h")
    for i in range(7):  # 1.75 MiB held by a queue nobody reads
        p.send("/queue/unread", "u" * (256 * 1024), headers={"receipt": f"u{i}"})
        pc.wait_receipt(f"u{i}")
    # A fills the budget with its partial frame and waits; it stays for the whole test.
    stays = parked_sender(b, 1000000, 600000)
    wait_for(lambda: metric(b, "tandem_memory_budget_waiting") == 1, timeout=10, interval=0.05)
    # B holds an unacked message, then waits in the middle of a small frame (read 4 KiB at a
    # time while the budget is full: the rest and the FIN fit in the socket buffers).
    fin = Raw(b)
    fin.connect(extra={"heart-beat": "0,0"})
    fin.frame("SUBSCRIBE", {"destination": "/queue/held", "id": "s", "ack": "client-individual"})
    f = fin.read_frame(timeout=10)
    assert f[0] == "MESSAGE", f
    fin.send(b"SEND\ndestination:/queue/parked\ncontent-length:100000\n\n" + b"p" * 20000)
    # C waits the same way and then aborts (SO_LINGER 0: an RST).
    rst = parked_sender(b, 100000, 20000)
    wait_for(lambda: metric(b, "tandem_memory_budget_waiting") == 3, timeout=10, interval=0.05)
    sessions = metric(b, "tandem_connections")
    partial = metric(b, "tandem_memory_partial_frame_bytes")
    t0 = time.monotonic()
    fin.close()
    rst.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    rst.close()
    wait_for(lambda: metric(b, "tandem_memory_budget_waiting") == 1, timeout=10, interval=0.02,
             what="the two hung-up parked sessions closed")
    took = time.monotonic() - t0
    assert metric(b, "tandem_connections") == sessions - 2
    assert metric(b, "tandem_memory_partial_frame_bytes") < partial
    # B's unacked message is redelivered, as for any client that goes without DISCONNECT.
    c = client(b)
    cc = c.collector
    c.subscribe("/queue/held", id="again", ack="auto")
    cc.wait_messages(1, timeout=10)
    assert cc.messages[0].headers.get("redelivered") == "true", cc.messages[0].headers
    log = b.log_text()
    assert log.count("client hung up while its frame waited for memory") == 2, log[-3000:]
    print(f"two hung-up parked sessions closed {took * 1000:.0f} ms after their clients went "
          f"(send_timeout_ms {send_timeout_ms})", flush=True)
    assert took < 5, took
    stays.close()
    c.disconnect()
    p.disconnect()


def test_a_producer_held_by_flow_control_that_hangs_up_is_closed_at_once(brokers):
    # Regression (issue 17): a SEND held for space (max_destination_bytes: the engine parks it
    # and stops reading the connection) kept its session until send_timeout_ms when the client
    # hung up: nobody read the socket, so its FIN went unnoticed. Now the watchdog looks (poll
    # POLLRDHUP), as for a frame waiting for memory. The held SEND is dropped: no RECEIPT was
    # promised, and the first message stays the queue's only one.
    send_timeout_ms = 60000
    b = budget_broker(brokers, max_destination_bytes=4096, send_timeout_ms=send_timeout_ms)
    p = client(b)
    pc = p.collector
    p.send("/queue/full", "f" * 5000, headers={"persistent": "true", "receipt": "fill"})
    pc.wait_receipt("fill")

    def held_producer(receipt):
        r = Raw(b)
        r.connect(extra={"heart-beat": "0,0"})
        r.frame("SEND", {"destination": "/queue/full", "persistent": "true", "receipt": receipt}, "held")
        return r

    closes, half, stays = held_producer("closes"), held_producer("half"), held_producer("stays")
    wait_for(lambda: metric(b, "tandem_producers_blocked") == 3, timeout=10, interval=0.05)
    sessions = metric(b, "tandem_connections")
    t0 = time.monotonic()
    closes.close()
    half.sock.shutdown(socket.SHUT_WR)
    wait_for(lambda: metric(b, "tandem_producers_blocked") == 1, timeout=10, interval=0.02,
             what="the two hung-up producers' sessions closed")
    took = time.monotonic() - t0
    assert metric(b, "tandem_connections") == sessions - 2
    assert b.log_text().count("client hung up while its SEND waited for space") == 2, b.log_text()[-3000:]
    print(f"two hung-up producers held by flow control went {took * 1000:.0f} ms after they hung up "
          f"(send_timeout_ms {send_timeout_ms})", flush=True)
    assert took < 5, took
    # The one still connected gets its RECEIPT once a consumer makes room.
    c = client(b)
    c.subscribe("/queue/full", id="drain", ack="auto")
    c.collector.wait_messages(2, timeout=10)
    f = stays.read_frame(timeout=10)
    assert f[0] == "RECEIPT" and f[1].get("receipt-id") == "stays", f
    time.sleep(0.5)
    assert sorted(m.body for m in c.collector.messages) == ["f" * 5000, "held"], c.collector.messages
    stays.close()
    c.disconnect()
    p.disconnect()

class Netns:
    """A network namespace of this test's own; deleting it removes its interfaces."""

    def __init__(self, name):
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.name = name

    def run(self, *cmd):
        subprocess.run(["ip", "netns", "exec", self.name, *cmd], check=True, capture_output=True, timeout=30)

    def popen(self, cmd, **kwargs):
        return subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], **kwargs)

    def delete(self):
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)


class NetnsBroker(Broker):
    def __init__(self, ns, **kwargs):
        super().__init__(**kwargs)
        self.ns = ns

    def command(self):
        return ["ip", "netns", "exec", self.ns.name] + super().command()


# Run in the client's namespace: CONNECT, then 4 MiB of an 8 MiB frame (its send blocks).
PARKED_CLIENT = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=300)
s.sendall(b"CONNECT\\naccept-version:1.2\\nhost:x\\nheart-beat:0,0\\n\\n\\0")
got = b""
while b"\\0" not in got:
    got += s.recv(4096)
assert got.startswith(b"CONNECTED"), got
print("connected", flush=True)
s.sendall(b"SEND\\ndestination:/queue/far\\ncontent-length:8388608\\n\\n" + b"v" * (4 << 20))
"""


def test_a_vanished_host_waiting_for_memory_is_found_out_by_keepalive_within_seconds(brokers):
    # A host that vanishes sends no FIN: only TCP keepalive tells it from a client whose send
    # is merely blocked (its kernel answers the probes). With tcp_keepalive_s 60 that verdict
    # came after 60 + 6 x 10 s, later than send_timeout_ms's 30 s; a connection that waits for
    # memory now probes after 5 s, every 2 s, 3 times. The broker and the client are in two
    # network namespaces of this test, joined by a veth pair whose client end goes down.
    if os.geteuid() != 0 or not shutil.which("ip"):
        skip("needs root and ip(8) for two network namespaces")
    tag = f"t17b{os.getpid() % 100000}"
    nb, nc = Netns(tag + "b"), None
    client_proc = None
    try:
        nc = Netns(tag + "c")
        nb.run("ip", "link", "add", tag + "v", "type", "veth", "peer", "name", tag + "w", "netns", nc.name)
        nb.run("ip", "addr", "add", "10.213.7.1/30", "dev", tag + "v")
        nb.run("ip", "link", "set", tag + "v", "up")
        nc.run("ip", "addr", "add", "10.213.7.2/30", "dev", tag + "w")
        nc.run("ip", "link", "set", tag + "w", "up")
        b = NetnsBroker(nb, admin=False, config={
            "allow_anonymous": True, "listen": "10.213.7.1:0", "frame_timeout_ms": 0, "idle_timeout_ms": 0,
            "max_memory_bytes": 1 * MiB, "send_timeout_ms": 300000, "tcp_keepalive_s": 60})
        brokers.append(b)
        b.start()
        client_proc = nc.popen(["/usr/bin/python3", "-c", PARKED_CLIENT, "10.213.7.1", str(b.port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert client_proc.stdout.readline().strip() == b"connected"
        time.sleep(3)  # the broker reads 1 MiB of the frame and waits for memory
        t0 = time.monotonic()
        nc.run("ip", "link", "set", tag + "w", "down")  # the client's host is gone
        b.wait_log(r"client hung up while its frame waited for memory", timeout=40)
        took = time.monotonic() - t0
        print(f"a vanished host's waiting connection closed {took:.1f} s after it went (send_timeout_ms 300000, "
              f"tcp_keepalive_s 60)", flush=True)
        assert took < 30, took
    finally:
        if client_proc:
            client_proc.kill()
            client_proc.wait()
        for b in brokers:
            b.kill()
        if nc:
            nc.delete()
        nb.delete()


if __name__ == "__main__":
    run([test_partial_frames_stay_within_the_memory_budget,
         test_idle_connections_hold_small_read_buffers_counted_in_the_budget, test_consumers_drain_while_producers_wait,
         test_a_frame_that_waits_too_long_gets_an_error_naming_the_limit,
         test_a_client_that_hangs_up_while_its_frame_waits_for_memory_is_closed_at_once,
         test_a_producer_held_by_flow_control_that_hangs_up_is_closed_at_once,
         test_a_vanished_host_waiting_for_memory_is_found_out_by_keepalive_within_seconds])
