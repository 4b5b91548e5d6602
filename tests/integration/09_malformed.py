"""09 malformed input: each gets an ERROR frame (message header, body quoting the bytes), then
the connection closes; other clients are unaffected."""
from tandem_test import Raw, client, new_broker, run

CASES = [
    ("bad command", b"HELLO\n\n\0", "HELLO"),
    ("header without colon", b"CONNECT\naccept-version:1.2\nnocolon\n\n\0", "nocolon"),
    ("bad content-length", b"CONNECT\naccept-version:1.2\ncontent-length:abc\n\n\0", "abc"),
    ("missing NUL after counted body", b"CONNECT\naccept-version:1.2\ncontent-length:1\n\nxy", ""),
    ("command too long", b"X" * 200 + b"\n\n\0", "XXXX"),
]


def check_rejected(b, data, quoted, after_connect=False):
    r = Raw(b)
    if after_connect:
        r.connect()
    r.send(data)
    f = r.read_frame()
    assert f is not None, "connection closed without an ERROR frame"
    cmd, headers, body = f
    assert cmd == "ERROR", f
    assert headers.get("message"), headers
    if quoted:
        assert quoted.encode() in body, body
    rest = r.read_eof()
    assert b"MESSAGE" not in rest
    r.close()


def test_each_malformed_frame_gets_an_error_and_a_close(brokers):
    b = new_broker(brokers)
    for name, data, quoted in CASES:
        try:
            check_rejected(b, data, quoted)
        except AssertionError as e:
            raise AssertionError(f"case {name!r}: {e}")


def test_a_bad_escape_after_connect_is_rejected(brokers):
    b = new_broker(brokers)
    check_rejected(b, b"SEND\ndestination:/queue/a\nx:bad\\qescape\n\nbody\0", "", after_connect=True)


def test_an_oversized_frame_is_rejected_before_it_is_buffered(brokers):
    b = new_broker(brokers)
    r = Raw(b)
    r.connect()
    # Over the default max_frame_bytes (100 MiB, as ActiveMQ's STOMP maxFrameSize).
    r.send(b"SEND\ndestination:/queue/a\ncontent-length:%d\n\n" % (128 << 20))
    cmd, headers, _ = r.read_frame()
    assert cmd == "ERROR", cmd
    assert "max_frame_bytes" in headers.get("message", ""), headers
    r.read_eof()


def test_other_clients_are_unaffected_by_a_malformed_one(brokers):
    b = new_broker(brokers)
    good = client(b)
    good.subscribe("/queue/ok", id="s", headers={"receipt": "sub"})
    good.collector.wait_receipt("sub")
    for _, data, quoted in CASES:
        check_rejected(b, data, quoted)
    good.send("/queue/ok", "still here", headers={"receipt": "r"})
    good.collector.wait_receipt("r")
    [m] = good.collector.wait_messages(1)
    assert m.body == "still here"


def test_garbage_bytes_and_an_abrupt_close_do_not_hurt_the_broker(brokers):
    b = new_broker(brokers)
    for chunk in [bytes(range(256)), b"\0" * 100, b"\r\r\r", b"SEND\n" + b"h:v\n" * 5]:
        r = Raw(b)
        r.send(chunk)
        r.close()
    c = client(b)
    c.send("/queue/alive", "x", headers={"receipt": "r"})
    c.collector.wait_receipt("r")


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
