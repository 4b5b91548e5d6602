"""18 WebSocket: STOMP over WebSocket on ws_listen and wss_listen (issue 18), with a raw WebSocket client
(Debian's python3-websocket) so every frame and message boundary is ours: subprotocols, one
frame per message, a frame split across messages, Origin checks, logins, heart-beats, binary
bodies, the same session as TCP (a TCP producer reaches a WebSocket consumer), and the port
closed on a slave."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import websocket

from tandem_test import (Broker, DEFAULT_TIMEOUT, SharedBroker, client, drain, free_port, metric, run,
                         send_persistent, wait_for)

ALLOWED = "http://app.example:8080"


def ws_broker(brokers, **extra):
    config = {"allow_anonymous": True, "admin_open_reads": True, "ws_listen": "127.0.0.1:0",
              "ws_allowed_origins": [ALLOWED]}
    config.update(extra)
    b = Broker(config=config, name="ws")
    brokers.append(b)
    b.start()
    b.ws_port = int(b.wait_log(r"stomp ws listening .*port=(\d+)").group(1))
    return b


def ws_open(port, protocols=("v12.stomp", "v11.stomp", "v10.stomp"), origin=None):
    kwargs = {"timeout": DEFAULT_TIMEOUT}
    if protocols:
        kwargs["subprotocols"] = list(protocols)
    if origin:
        kwargs["origin"] = origin
    else:
        kwargs["suppress_origin"] = True
    return websocket.create_connection(f"ws://127.0.0.1:{port}/", **kwargs)


def frame(command, headers=None, body=b""):
    out = command.encode() + b"\n"
    for k, v in (headers or {}).items():
        out += f"{k}:{v}\n".encode()
    return out + b"\n" + (body if isinstance(body, bytes) else body.encode()) + b"\0"


def send_text(ws, data):
    ws.send(data.decode() if isinstance(data, bytes) else data)


def parse(data):
    """One STOMP frame from one message: (command, headers, body bytes)."""
    head, _, rest = data.partition(b"\n\n")
    lines = head.decode().split("\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k, v)
    assert rest.endswith(b"\0"), f"message does not end with the frame's NUL: {data[-40:]!r}"
    return lines[0], headers, rest[:-1]


def recv_frame(ws, skip_heartbeats=True):
    """The next message as a frame; checks the broker wrote exactly one frame in it."""
    while True:
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return None
        if skip_heartbeats and data in (b"\n", b"\r\n"):
            continue
        f = parse(data)
        assert data.count(b"\0") == 1 or "content-length" in f[1], f"more than one frame in a message: {data!r}"
        f += (opcode,)
        return f


def connect(ws, version="1.2", extra=None):
    h = {"accept-version": version, "host": "localhost"}
    h.update(extra or {})
    send_text(ws, frame("CONNECT", h))
    f = recv_frame(ws)
    return f


def test_stomp_12_over_websocket_sends_receives_and_echoes_the_subprotocol(brokers):
    b = ws_broker(brokers)
    ws = ws_open(b.ws_port)
    assert ws.getsubprotocol() == "v12.stomp", ws.getsubprotocol()
    f = connect(ws)
    assert f[0] == "CONNECTED" and f[1]["version"] == "1.2", f
    send_text(ws, frame("SUBSCRIBE", {"destination": "/queue/ws", "id": "s1", "ack": "client-individual"}))
    send_text(ws, frame("SEND", {"destination": "/queue/ws", "persistent": "true", "receipt": "r1"}, "hello ws"))
    got = [recv_frame(ws), recv_frame(ws)]
    commands = sorted(g[0] for g in got)
    assert commands == ["MESSAGE", "RECEIPT"], got
    msg = next(g for g in got if g[0] == "MESSAGE")
    assert msg[2] == b"hello ws" and msg[3] == websocket.ABNF.OPCODE_TEXT, msg
    send_text(ws, frame("ACK", {"id": msg[1]["ack"], "receipt": "a1"}))
    assert recv_frame(ws)[0] == "RECEIPT"
    # The admin port lists the session (one session, the WebSocket one, not TLS).
    sessions = admin_connections(b)
    assert [(s["tls"], s["transport"]) for s in sessions] == [(False, "ws")], sessions
    send_text(ws, frame("DISCONNECT", {"receipt": "bye"}))
    assert recv_frame(ws)[0] == "RECEIPT"
    ws.close()


def test_older_subprotocols_are_chosen_when_offered_alone(brokers):
    b = ws_broker(brokers)
    for proto, version in (("v10.stomp", "1.0"), ("v11.stomp", "1.1")):
        ws = ws_open(b.ws_port, protocols=(proto,))
        assert ws.getsubprotocol() == proto
        f = connect(ws, version=version)
        assert f[0] == "CONNECTED", f
        ws.close()
    # No subprotocol at all (some clients offer none): accepted without one.
    ws = ws_open(b.ws_port, protocols=None)
    assert ws.getsubprotocol() is None
    assert connect(ws)[0] == "CONNECTED"
    ws.close()


def test_a_frame_split_across_messages_and_two_frames_in_one_message_are_read(brokers):
    b = ws_broker(brokers)
    ws = ws_open(b.ws_port)
    data = frame("CONNECT", {"accept-version": "1.2", "host": "localhost"})
    for part in (data[:5], data[5:17], data[17:]):
        send_text(ws, part)
    assert recv_frame(ws)[0] == "CONNECTED"
    two = frame("SEND", {"destination": "/queue/split", "receipt": "r1"}, "one") + \
        frame("SEND", {"destination": "/queue/split", "receipt": "r2"}, "two")
    send_text(ws, two)
    # A large body split over three binary messages, with content-length.
    body = bytes(range(256)) * 400
    big = frame("SEND", {"destination": "/queue/split", "receipt": "r3", "content-length": len(body)}, body)
    third = len(big) // 3
    for part in (big[:third], big[third:2 * third], big[2 * third:]):
        ws.send_binary(part)
    assert [recv_frame(ws)[1]["receipt-id"] for _ in range(3)] == ["r1", "r2", "r3"]
    send_text(ws, frame("SUBSCRIBE", {"destination": "/queue/split", "id": "s"}))
    bodies = [recv_frame(ws) for _ in range(3)]
    assert [m[2] for m in bodies] == [b"one", b"two", body]
    # Not UTF-8: the broker must send it as a binary message (a browser drops a connection
    # that gets a text message that is not UTF-8).
    assert [m[3] for m in bodies] == [websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_TEXT,
                                      websocket.ABNF.OPCODE_BINARY]
    ws.close()


def test_hundreds_of_messages_in_one_tcp_write_are_all_read(brokers):
    # The broker reads 64 KiB of WebSocket messages per recv (broker/ws_read_buffer.h): many
    # messages per read, frames of every size cut at every chunk boundary, a STOMP frame split
    # across two messages in the middle of the burst. Every SEND must be receipted, in order.
    b = ws_broker(brokers)
    ws = ws_open(b.ws_port)
    assert connect(ws)[0] == "CONNECTED"
    burst, sizes = [], [1, 100, 1000, 1500, 1600, 3000, 70000]
    for i in range(300):
        body = (b"%d:" % i) + b"x" * sizes[i % len(sizes)]
        data = frame("SEND", {"destination": "/queue/burst", "receipt": f"b{i}"}, body)
        if i == 150:  # one frame in two messages
            burst.append(websocket.ABNF.create_frame(data[:7], websocket.ABNF.OPCODE_TEXT).format())
            data = data[7:]
        burst.append(websocket.ABNF.create_frame(data, websocket.ABNF.OPCODE_TEXT).format())
    ws.sock.sendall(b"".join(burst))
    receipts = [recv_frame(ws) for _ in range(300)]
    assert [r[1].get("receipt-id") for r in receipts] == [f"b{i}" for i in range(300)], receipts[:3]
    send_text(ws, frame("SUBSCRIBE", {"destination": "/queue/burst", "id": "s", "ack": "auto"}))
    got = [recv_frame(ws)[2] for _ in range(300)]
    assert [g.split(b":")[0] for g in got] == [b"%d" % i for i in range(300)]
    assert [len(g) for g in got] == [len(b"%d:" % i) + sizes[i % len(sizes)] for i in range(300)]
    ws.close()


def ws_frame(data, opcode=websocket.ABNF.OPCODE_TEXT):
    """One masked client frame, as bytes to write on the socket."""
    return websocket.ABNF.create_frame(data, opcode).format()


def recv_until_close(ws):
    """Every message and pong up to the broker's close frame: ([(opcode, data)], close code)."""
    got = []
    while True:
        opcode, f = ws.recv_data_frame(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return got, int.from_bytes(f.data[:2], "big") if len(f.data) >= 2 else None
        got.append((opcode, f.data))


def test_pings_among_a_burst_of_messages_are_answered_and_every_message_read(brokers):
    # The broker reads whole messages out of memory with Beast's synchronous read, but only
    # up to a control frame (broker/ws_read_buffer.h): Beast answers a ping with a write.
    b = ws_broker(brokers)
    ws = ws_open(b.ws_port)
    assert connect(ws)[0] == "CONNECTED"
    burst, pings = [], []
    for i in range(60):
        burst.append(ws_frame(frame("SEND", {"destination": "/queue/pings", "receipt": f"p{i}"}, b"y" * (i * 37))))
        if i % 7 == 3:
            pings.append(b"ping%d" % i)
            burst.append(ws_frame(pings[-1], websocket.ABNF.OPCODE_PING))
    ws.sock.sendall(b"".join(burst))
    receipts, pongs = [], []
    while len(receipts) < 60 or len(pongs) < len(pings):
        opcode, f = ws.recv_data_frame(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_PONG:
            pongs.append(f.data)
        else:
            receipts.append(parse(f.data)[1].get("receipt-id"))
    assert receipts == [f"p{i}" for i in range(60)], receipts
    assert pongs == pings, pongs
    ws.close()


def test_a_text_message_that_is_not_utf8_in_a_burst_closes_with_1007(brokers):
    # Found by Beast in a synchronous read out of memory: its close frame must still go out,
    # and the messages before the bad one are taken.
    b = ws_broker(brokers)
    ws = ws_open(b.ws_port)
    assert connect(ws)[0] == "CONNECTED"
    good = [frame("SEND", {"destination": "/queue/utf8"}, f"ok{i}") for i in range(5)]
    bad = frame("SEND", {"destination": "/queue/utf8"}, b"\xff\xfe")
    ws.sock.sendall(b"".join(ws_frame(d) for d in good + [bad] + good))
    got, code = recv_until_close(ws)
    assert code == 1007, (code, got)
    ws.shutdown()
    b.wait_log(r"read failed: The WebSocket frame payload was not valid utf8")
    got = drain(b, "/queue/utf8", 5, ack="auto")
    assert [f[2] for f in got] == [b"ok%d" % i for i in range(5)], got


def test_a_message_over_the_limit_closes_with_1009(brokers):
    # The limit is max_frame_bytes + 64 KiB (a frame split across messages is bounded by the
    # STOMP parser); a client that sends more gets close code 1009.
    b = ws_broker(brokers, max_frame_bytes=4096)
    ws = ws_open(b.ws_port)
    assert connect(ws)[0] == "CONNECTED"
    # Beast refuses at the frame header; the rest of the payload is never sent, or the broker's
    # close after its one-read teardown would meet unread bytes and reset the connection.
    ws.sock.sendall(ws_frame(b"x" * (4096 + 65536 + 1), websocket.ABNF.OPCODE_BINARY)[:200])
    got, code = recv_until_close(ws)
    assert code == 1009, (code, got)
    ws.shutdown()


def admin_connections(b):
    with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}/api/connections", timeout=10) as r:
        return json.load(r)["items"]  # one page (issue 17); these tests hold a few sessions


def test_a_tcp_producer_reaches_a_websocket_consumer_on_the_same_queue(brokers):
    b = ws_broker(brokers)
    send_persistent(b, "/queue/mixed", [f"m{i}" for i in range(20)])
    ws = ws_open(b.ws_port)
    assert connect(ws)[0] == "CONNECTED"
    # Regression (issue 18): /api/connections named no transport, only "tls": a WebSocket
    # session looked like a TCP one. Here a TCP session sits beside the WebSocket one.
    tcp = client(b)
    transports = sorted(s["transport"] for s in admin_connections(b))
    assert transports == ["tcp", "ws"], transports
    tcp.disconnect()
    send_text(ws, frame("SUBSCRIBE", {"destination": "/queue/mixed", "id": "s", "ack": "auto"}))
    got = [recv_frame(ws)[2].decode() for _ in range(20)]
    assert got == [f"m{i}" for i in range(20)], got
    ws.close()


def test_origin_allow_list_refuses_foreign_pages_and_lets_programs_through(brokers):
    b = ws_broker(brokers)
    try:
        ws_open(b.ws_port, origin="http://evil.example")
        raise AssertionError("a foreign Origin was upgraded")
    except websocket.WebSocketBadStatusException as e:
        assert e.status_code == 403, e
    b.wait_log(r"WebSocket upgrade refused: Origin \S*http://evil.example")
    ws = ws_open(b.ws_port, origin=ALLOWED)
    assert connect(ws)[0] == "CONNECTED"
    ws.close()
    ws = ws_open(b.ws_port)  # no Origin: not a browser
    assert connect(ws)[0] == "CONNECTED"
    ws.close()


def test_foreign_subprotocols_and_plain_http_are_refused(brokers):
    b = ws_broker(brokers)
    try:
        ws_open(b.ws_port, protocols=("mqtt",))
        raise AssertionError("an mqtt-only client was upgraded")
    except websocket.WebSocketBadStatusException as e:
        assert e.status_code == 400, e
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{b.ws_port}/", timeout=10)
        raise AssertionError("plain HTTP got an answer other than 426")
    except urllib.error.HTTPError as e:
        assert e.code == 426, e
        assert b"STOMP over WebSocket" in e.read()


def test_logins_are_checked_as_on_tcp(brokers):
    users = [{"login": "app", "password": "s3cret", "groups": ["admins"]}]
    b = ws_broker(brokers, allow_anonymous=False, users=users)
    ws = ws_open(b.ws_port)
    f = connect(ws, extra={"login": "app", "passcode": "wrong"})
    assert f[0] == "ERROR", f
    # The broker closes after the ERROR, with a WebSocket close.
    assert recv_frame(ws) is None
    ws.close()
    ws = ws_open(b.ws_port)
    f = connect(ws, extra={"login": "app", "passcode": "s3cret"})
    assert f[0] == "CONNECTED", f
    ws.close()


def test_heart_beats_flow_both_ways_and_a_silent_client_is_closed(brokers):
    b = ws_broker(brokers)
    ws = ws_open(b.ws_port)
    f = connect(ws, extra={"heart-beat": "0,200"})
    assert f[0] == "CONNECTED" and f[1]["heart-beat"].split(",")[0] != "0", f
    beats = 0
    while beats < 3:
        opcode, data = ws.recv_data()
        assert data == b"\n", data  # a heart-beat is a message of one EOL
        beats += 1
    ws.close()
    ws = ws_open(b.ws_port)
    f = connect(ws, extra={"heart-beat": "300,0"})
    assert f[0] == "CONNECTED", f
    t = wait_for(lambda: "heart-beat timeout" in b.log_text(), 10, "heart-beat timeout of a silent client")
    assert t
    ws.close()
    # A client that sends its heart-beats as messages stays connected.
    ws = ws_open(b.ws_port)
    assert connect(ws, extra={"heart-beat": "100,0"})[0] == "CONNECTED"
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        send_text(ws, b"\n")
        time.sleep(0.05)
    send_text(ws, frame("SEND", {"destination": "/queue/hb", "receipt": "alive"}, "x"))
    assert recv_frame(ws)[1].get("receipt-id") == "alive"
    ws.close()


def test_a_malformed_frame_gets_an_error_and_a_close(brokers):
    b = ws_broker(brokers)
    ws = ws_open(b.ws_port)
    assert connect(ws)[0] == "CONNECTED"
    send_text(ws, b"SEND\ndestination:/queue/x\ncontent-length:zz\n\nbody\0")
    f = recv_frame(ws)
    assert f[0] == "ERROR", f
    assert recv_frame(ws) is None
    # Other clients do not notice.
    ws2 = ws_open(b.ws_port)
    assert connect(ws2)[0] == "CONNECTED"
    ws2.close()


def test_wss_uses_the_tls_settings_and_serves_stomp(brokers):
    d = tempfile.mkdtemp(prefix="tandem-wss-")
    cert, key = os.path.join(d, "server.pem"), os.path.join(d, "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True,
                   timeout=60)
    config = {"allow_anonymous": True, "admin_open_reads": True, "wss_listen": "127.0.0.1:0", "tls_cert": cert,
              "tls_key": key}
    b = Broker(config=config, name="wss")
    brokers.append(b)
    b.start()
    port = int(b.wait_log(r"stomp wss listening .*port=(\d+)").group(1))
    ws = websocket.create_connection(f"wss://127.0.0.1:{port}/", subprotocols=["v12.stomp"], suppress_origin=True,
                                     timeout=DEFAULT_TIMEOUT, sslopt={"ca_certs": cert})
    assert ws.getsubprotocol() == "v12.stomp"
    assert connect(ws)[0] == "CONNECTED"
    send_text(ws, frame("SEND", {"destination": "/queue/wss", "persistent": "true", "receipt": "r"}, "over tls"))
    assert recv_frame(ws)[1].get("receipt-id") == "r"
    assert [(s["tls"], s["transport"]) for s in admin_connections(b)] == [(True, "wss")]
    # A backlog goes out in batches gathered into one TLS write each (ws_write_gather.h):
    # still one frame per message, every one of them, in order.
    send_persistent(b, "/queue/wss-batch", [f"b{i}:" + "z" * (i * 97) for i in range(200)])
    send_text(ws, frame("SUBSCRIBE", {"destination": "/queue/wss-batch", "id": "s", "ack": "auto"}))
    got = [recv_frame(ws)[2].decode() for _ in range(200)]
    assert got == [f"b{i}:" + "z" * (i * 97) for i in range(200)]
    ws.close()
    shutil.rmtree(d, ignore_errors=True)


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_the_websocket_port_is_closed_on_a_slave_and_opens_at_takeover(brokers):
    store = os.path.join(tempfile.mkdtemp(prefix="tandem-itest-store-"), "store")
    ports = [free_port(), free_port()]
    master, slave = [SharedBroker(store, f"b{i}", create=(i == 0), config={"ws_listen": f"127.0.0.1:{port}"})
                     for i, port in enumerate(ports)]
    brokers += [master, slave]
    master.start()
    slave.start(wait=False)
    slave.wait_log(r"slave: waiting for lock")
    assert port_open(ports[0])
    assert not port_open(ports[1]), "a slave accepts WebSocket clients"
    master.kill()
    wait_for(lambda: port_open(ports[1]), DEFAULT_TIMEOUT, "the new master's WebSocket port")
    ws = ws_open(ports[1])
    assert connect(ws)[0] == "CONNECTED"
    ws.close()


def test_websocket_buffers_are_counted_in_the_memory_budget(brokers):
    # Regression (issue 17, "one global memory budget over all sessions' buffers"): a
    # WebSocket connection's own 64 KiB read chunk (ws_read_buffer.h) was outside
    # max_memory_bytes. Now the transport's buffers are counted and given back at the close.
    b = ws_broker(brokers)
    counted = "tandem_memory_transport_buffer_bytes"
    assert metric(b, counted) == 0
    tcp = client(b)  # a TCP session holds no transport buffer
    assert metric(b, counted) == 0
    sockets = [ws_open(b.ws_port) for _ in range(3)]
    for ws in sockets:
        assert connect(ws)[0] == "CONNECTED"
    # The read chunk and Beast's frame buffer, plus what the gather buffers keep of the
    # CONNECTED frame written (ws_write_gather.h): well under 4 KiB.
    per_connection = 64 * 1024 + 1536
    wait_for(lambda: 3 * per_connection < metric(b, counted) < 3 * (per_connection + 4096), 10,
             "three WebSocket connections counted")
    for ws in sockets:
        ws.close()
    tcp.disconnect()
    wait_for(lambda: metric(b, counted) == 0, 10, "the buffers given back")


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
