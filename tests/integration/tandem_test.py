"""Helpers for Tandem's integration tests: a real tandemd on loopback, python3-stomp clients
and raw sockets.

Every broker gets its own temp store and binds port 0 (the kernel picks a free port, which
tandemd logs as `stomp listening ... port=N`), so tests never race for ports. Waits always
have a deadline; nothing sleeps blindly. A failing test prints the broker's log.

Run a test file directly: python3 02_send_receive.py /path/to/tandemd
Environment: TANDEM_ITEST_ONLY=<substring> runs matching cases only; TANDEM_ITEST_EXCLUDE=
<substring> leaves matching cases out; TANDEM_ITEST_ARGS adds tandemd options to every broker
(e.g. "--threads 2").

A case that cannot run here (a tool missing, FUSE unavailable) calls skip(reason): the runner
prints SKIP and, when no case failed, exits 77, which CTest reports as skipped (every test
file is registered with SKIP_RETURN_CODE 77), never as passed. Register a case that may skip
as a CTest test of its own (TANDEM_ITEST_ONLY) so the others still count as passed.
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

import stomp

DEFAULT_TIMEOUT = 20.0


def tandemd_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    return os.environ.get("TANDEMD", "tandemd")


def wait_for(predicate, timeout=DEFAULT_TIMEOUT, what="condition", interval=0.01):
    """Polls `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def read_text(path):
    """The file's text ("" if it cannot be read: a log not yet created)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


class Broker:
    """One tandemd process. `store` is reused across restarts of the same Broker."""

    def __init__(self, args=(), config=None, store=None, name="itest", admin=True):
        self.args = list(args)
        self.config = config
        self.name = name
        self.admin = admin
        self.dir = tempfile.mkdtemp(prefix="tandem-itest-")
        self.store = store or os.path.join(self.dir, "store")
        self.proc = None
        self.port = None
        self.admin_port = None
        self.logs = []
        self.log_path = None
        self.starts = 0

    def write_config(self, cfg):
        """Writes `cfg` (a dict) as this broker's config file; returns its path."""
        path = os.path.join(self.dir, "tandemd.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    def command(self):
        cmd = [tandemd_path()]
        if self.config is not None:
            cfg = dict(self.config)
            cfg.setdefault("store", self.store)
            cfg.setdefault("listen", "127.0.0.1:0")
            cmd += ["--config", self.write_config(cfg), "--create-store"]
        else:
            cmd += ["--store", self.store, "--create-store", "--listen", "127.0.0.1:0", "--name", self.name]
        if self.admin:
            cmd += ["--admin", "127.0.0.1:0"]
        # TANDEM_ITEST_ARGS adds options to every broker, e.g. "--threads 2" or "--sync periodic".
        return cmd + self.args + os.environ.get("TANDEM_ITEST_ARGS", "").split()

    def start(self, wait=True, timeout=DEFAULT_TIMEOUT):
        self.starts += 1
        self.log_path = os.path.join(self.dir, f"tandemd.{self.starts}.log")
        self.logs.append(self.log_path)
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdout=self.log_file, stderr=subprocess.STDOUT)
        self.port = None
        if wait:
            self.wait_master(timeout)
        return self

    def log_text(self):
        return read_text(self.log_path)

    def wait_log(self, pattern, timeout=DEFAULT_TIMEOUT):
        rx = re.compile(pattern)

        def found():
            m = rx.search(self.log_text())
            if m:
                return m
            if self.proc.poll() is not None:
                raise AssertionError(f"tandemd exited with {self.proc.returncode} before logging {pattern!r}")
            return None

        return wait_for(found, timeout, f"log line {pattern!r}")

    def wait_master(self, timeout=DEFAULT_TIMEOUT):
        m = self.wait_log(r"stomp listening .*port=(\d+)", timeout)
        self.port = int(m.group(1))
        self.wait_log(r"main master epoch=\d+", timeout)
        if self.admin:
            m = re.search(r"admin listening .*port=(\d+)", self.log_text())
            if m:
                self.admin_port = int(m.group(1))
        return self

    def stop(self, sig=signal.SIGTERM, timeout=DEFAULT_TIMEOUT):
        """Sends `sig` and waits for exit; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"tandemd did not exit within {timeout}s after signal {sig}")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def kill_if_running_and_check_sanitizers(self):
        """Stops a broker the test left running (SIGTERM, so a sanitizer build reports leaks)
        and fails on any AddressSanitizer / UBSan / LeakSanitizer report in its logs."""
        if self.proc and self.proc.poll() is None:
            self.stop()
        for path in self.logs:
            text = read_text(path)
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                if marker in text:
                    raise AssertionError(f"sanitizer report in {path}: {marker}")

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def dump_logs(self):
        for path in self.logs:
            sys.stderr.write(f"----- {path} -----\n{read_text(path)[-20000:]}\n")


class Collector(stomp.ConnectionListener):
    """Collects MESSAGE, RECEIPT and ERROR frames of one python-stomp connection."""

    def __init__(self):
        self.cond = threading.Condition()
        self.messages = []
        self.receipts = set()
        self.errors = []
        self.disconnected = False

    def on_message(self, frame):
        with self.cond:
            self.messages.append(frame)
            self.cond.notify_all()

    def on_receipt(self, frame):
        with self.cond:
            self.receipts.add(frame.headers.get("receipt-id"))
            self.cond.notify_all()

    def on_error(self, frame):
        with self.cond:
            self.errors.append(frame)
            self.cond.notify_all()

    def on_disconnected(self):
        with self.cond:
            self.disconnected = True
            self.cond.notify_all()

    def wait(self, predicate, timeout=DEFAULT_TIMEOUT, what="frames"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}; "
                                         f"have {len(self.messages)} messages, receipts {sorted(self.receipts)[:10]}, "
                                         f"errors {[e.headers.get('message') for e in self.errors]}")
                self.cond.wait(left)

    def wait_messages(self, n, timeout=DEFAULT_TIMEOUT):
        self.wait(lambda c: len(c.messages) >= n, timeout, f"{n} messages")
        with self.cond:
            return list(self.messages)

    def wait_receipt(self, rid, timeout=DEFAULT_TIMEOUT):
        self.wait(lambda c: rid in c.receipts, timeout, f"receipt {rid}")


def client(broker, version="1.2", login=None, passcode=None, headers=None, heartbeats=(0, 0), auto_decode=True,
           wait=True):
    cls = {"1.0": stomp.Connection10, "1.1": stomp.Connection11, "1.2": stomp.Connection12}[version]
    kwargs = dict(auto_decode=auto_decode)
    if version != "1.0":
        kwargs["heartbeats"] = heartbeats
    conn = cls([("127.0.0.1", broker.port)], **kwargs)
    listener = Collector()
    conn.set_listener("collector", listener)
    connect_headers = dict(headers or {})
    if login is not None:
        conn.connect(login, passcode, wait=wait, headers=connect_headers)
    else:
        conn.connect(wait=wait, headers=connect_headers)
    conn.collector = listener
    return conn


# ---- raw sockets ---------------------------------------------------------------------------

class Raw:
    """A STOMP client over a plain socket, for malformed input and exact timing."""

    def __init__(self, broker, timeout=DEFAULT_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", broker.port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def frame(self, command, headers=None, body=b""):
        out = command.encode() + b"\n"
        for k, v in (headers or {}).items():
            out += f"{k}:{v}\n".encode()
        out += b"\n" + (body if isinstance(body, bytes) else body.encode()) + b"\0"
        self.send(out)

    def connect(self, version="1.2", extra=None):
        h = {"accept-version": version, "host": "localhost"}
        h.update(extra or {})
        self.frame("CONNECT", h)
        f = self.read_frame()
        assert f[0] == "CONNECTED", f"expected CONNECTED, got {f}"
        return f

    def _fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return b""
        return data

    def read_frame(self, timeout=DEFAULT_TIMEOUT, skip_heartbeats=True):
        """Returns (command, headers dict, body bytes), or None at EOF. Raises on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            while skip_heartbeats and self.buf[:1] in (b"\n", b"\r"):
                self.buf = self.buf[1:]
            head_end = self.buf.find(b"\n\n")
            if head_end >= 0:
                head = self.buf[:head_end].decode("utf-8", "replace").replace("\r", "").split("\n")
                headers = {}
                for line in head[1:]:
                    k, _, v = line.partition(":")
                    headers.setdefault(k, v)
                start = head_end + 2
                if "content-length" in headers:
                    n = int(headers["content-length"])
                    if len(self.buf) >= start + n + 1:
                        body = self.buf[start:start + n]
                        self.buf = self.buf[start + n + 1:]
                        return head[0], headers, body
                else:
                    nul = self.buf.find(b"\0", start)
                    if nul >= 0:
                        body = self.buf[start:nul]
                        self.buf = self.buf[nul + 1:]
                        return head[0], headers, body
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out waiting for a frame; buffered {self.buf[:200]!r}")
            data = self._fill(deadline)
            if data is None:
                continue
            if data == b"":
                return None
            self.buf += data

    def read_eof(self, timeout=DEFAULT_TIMEOUT):
        """Waits until the broker closes; returns all bytes received before the close."""
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() >= deadline:
                raise AssertionError("timed out waiting for the broker to close the connection")
            data = self._fill(deadline)
            if data is None:
                continue
            if data == b"":
                out, self.buf = self.buf, b""
                return out
            self.buf += data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def receipt_latencies_while(b, background, args, seconds, pause=0.0, results_timeout=300):
    """One producer's SEND->RECEIPT times on broker b for `seconds` while
    background(*args, stop, results) runs in a process of its own (a thread would share the
    GIL with the producer, and its parsing would show up as the producer's latency); the
    background puts one answer in `results` once `stop` is set. Returns (sorted latencies in
    seconds, that answer)."""
    import multiprocessing
    stop = multiprocessing.Event()
    results = multiprocessing.Queue()
    producer = Raw(b)
    producer.connect()
    worker = multiprocessing.Process(target=background, args=(*args, stop, results))
    worker.start()
    latencies = []
    try:
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            t = time.monotonic()
            producer.frame("SEND", {"destination": "/queue/timed", "receipt": f"r{n}"}, "tick")
            f = producer.read_frame(timeout=60)
            latencies.append(time.monotonic() - t)
            assert f and f[0] == "RECEIPT" and f[1]["receipt-id"] == f"r{n}", f
            n += 1
            if pause:
                time.sleep(pause)
    finally:
        stop.set()
        answer = results.get(timeout=results_timeout)
        worker.join(30)
    producer.close()
    latencies.sort()
    return latencies, answer



def scrape_admin(admin_port, paths, timeout, stop, results):
    """A background for receipt_latencies_while: GETs `paths` of the admin port in turn until
    `stop`, then puts [(seconds, bytes)] of every answer on `results`."""
    out = []
    while not stop.is_set():
        path = paths[len(out) % len(paths)]
        t = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}{path}", timeout=timeout) as r:
            size = len(r.read())
        out.append((time.monotonic() - t, size))
    results.put(out)


def latency_figures(latencies):
    """(worst, text) of receipt_latencies_while's sorted latencies: the text gives the count,
    p50, p99, worst and the load average, for a test's printed figures."""
    worst, p99 = latencies[-1], latencies[int(len(latencies) * 0.99)]
    load = os.getloadavg()
    text = (f"{len(latencies)} SEND->RECEIPT: p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms, worst {worst * 1000:.1f} ms; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    return worst, text

def rss(b):
    """The broker process's resident set, in bytes."""
    with open(f"/proc/{b.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")

def metric(b, name):
    """The value of an unlabelled sample `name` in the broker's GET /metrics."""
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{b.admin_port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


# ---- a group of brokers on one store ----------------------------------------------------------

_ports_handed_out = set()


def free_port():
    """A free port BELOW the kernel's ephemeral range (32768-60999). Clients retry a dead
    broker's port in a tight loop; if that port were an ephemeral one, a connect could pick it
    as its own source port and connect to itself (TCP self-connect), which looks like a live
    broker that resets the connection.
    A port is handed out once per test process: a broker's listen and admin ports are drawn
    before it binds either, so two draws could otherwise name the same free port."""
    for _ in range(1000):
        port = random.randint(20000, 32000)
        if port in _ports_handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                _ports_handed_out.add(port)
                return port
            except OSError:
                continue
    raise AssertionError("no free port below 32000")


class SharedBroker(Broker):
    """A broker on a shared store with fixed ports, so clients can list it before it serves.
    With `config` (a dict) it starts from a config file holding those settings and its own
    store, ports and name; otherwise from command-line options alone."""

    def __init__(self, store, name, create=False, args=(), config=None):
        super().__init__(store=store, name=name, args=args, config=config)
        self.port = free_port()
        self.admin_port = free_port()
        self.create = create

    def command(self):
        listen, admin = f"127.0.0.1:{self.port}", f"127.0.0.1:{self.admin_port}"
        cmd = [tandemd_path()]
        if self.config is not None:
            cfg = dict(self.config, store=self.store, listen=listen, admin_listen=admin, broker_name=self.name)
            cfg.setdefault("allow_anonymous", True)
            cmd += ["--config", self.write_config(cfg)]
        else:
            cmd += ["--store", self.store, "--listen", listen, "--admin", admin, "--name", self.name]
        if self.create:
            cmd.append("--create-store")
        return cmd + self.args

    def start(self, wait=True, timeout=DEFAULT_TIMEOUT):
        port, admin = self.port, self.admin_port
        super().start(wait=False)
        self.port, self.admin_port = port, admin
        if wait:
            self.wait_log(r"main master epoch=\d+", timeout)
        return self

    def health(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/health", timeout=2) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:  # 503 while not master, still JSON
            return json.loads(e.read())
        except OSError:
            return None

    def wait_role(self, role, timeout=DEFAULT_TIMEOUT):
        return wait_for(lambda: (h := self.health()) and h.get("role") == role and h, timeout, f"{self.name} role {role}")

    def client_port_open(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def exit_code(self, timeout=DEFAULT_TIMEOUT):
        return self.proc.wait(timeout)

    def cleanup(self):
        super().cleanup()
        # The shared store lives beside, not inside, each broker's own temp dir.
        if os.path.basename(self.store) == "store":
            shutil.rmtree(os.path.dirname(self.store), ignore_errors=True)


def new_group(brokers, n, args=(), config=None, store=None, slave_log=r"slave: waiting for lock"):
    """n brokers on one new store (a temp directory, or `store`, e.g. a database URI); the
    first creates it and is master, the rest are slaves (logging `slave_log`)."""
    store = store or os.path.join(tempfile.mkdtemp(prefix="tandem-itest-store-"), "store")
    group = []
    for i in range(n):
        b = SharedBroker(store, f"b{i}", create=(i == 0), args=args, config=config)
        brokers.append(b)
        group.append(b)
    group[0].start()
    for b in group[1:]:
        b.start(wait=False)
        b.wait_log(slave_log)
    return group


def send_persistent(b, dest, bodies, headers=None):
    """Sends each body as a persistent SEND and waits for every RECEIPT."""
    r = Raw(b)
    r.connect()
    for i, body in enumerate(bodies):
        h = {"destination": dest, "persistent": "true", "receipt": f"r{i}"}
        h.update(headers(i) if headers else {})
        r.frame("SEND", h, body)
    got = set()
    while len(got) < len(bodies):
        f = r.read_frame()
        assert f is not None and f[0] == "RECEIPT", f
        got.add(f[1]["receipt-id"])
    r.close()


def drain(b, dest, expect, ack="client-individual"):
    """Consumes `expect` messages of `dest` (acking each unless ack is "auto"), then whatever
    else arrives before a DISCONNECT receipt, and returns them all as Raw frames: a message
    beyond `expect` shows up in the result."""
    r = Raw(b)
    r.connect()
    r.frame("SUBSCRIBE", {"destination": dest, "id": "d", "ack": ack})
    got = []
    while len(got) < expect:
        f = r.read_frame()
        assert f is not None and f[0] == "MESSAGE", f
        got.append(f)
        if ack != "auto":
            r.frame("ACK", {"id": f[1]["ack"]})
    r.frame("DISCONNECT", {"receipt": "bye"})
    while True:
        f = r.read_frame()
        if f is None or f[0] == "RECEIPT":
            break
        got.append(f)
    r.close()
    return got


class Faultfs:
    """A tandem-faultfs mount (tools/faultfs) over a fresh temp directory: `mount` is where a
    store goes, ctl() adds fault rules ("fail", "delay", "clear", ...). Skips the case when
    FUSE cannot mount here (exit 3)."""

    def __init__(self, faultfs):
        self.faultfs = faultfs
        self.dir = tempfile.mkdtemp(prefix="tandem-itest-ffs-")
        self.source = os.path.join(self.dir, "source")
        self.mount = os.path.join(self.dir, "mnt")
        self.control = os.path.join(self.dir, "control.sock")
        os.makedirs(self.source)
        os.makedirs(self.mount)
        self.proc = subprocess.Popen([faultfs, self.source, self.mount, "--control", self.control],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def ready():
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")
                if self.proc.returncode == 3:
                    skip(f"tandem-faultfs cannot mount here: {err.strip()}")
                raise AssertionError(f"tandem-faultfs exited {self.proc.returncode}: {err}")
            return self.ctl("status", check=False) == 0

        wait_for(ready, 10, "tandem-faultfs control socket")

    def ctl(self, *request, check=True):
        r = subprocess.run([self.faultfs, "ctl", self.control, *request], capture_output=True, text=True, timeout=10)
        if check:
            assert r.returncode == 0, f"faultfs ctl {request}: {r.stdout} {r.stderr}"
        return r.returncode

    def status(self):
        r = subprocess.run([self.faultfs, "ctl", self.control, "status"], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, f"faultfs status: {r.stdout} {r.stderr}"
        return json.loads(r.stdout.removeprefix("ok").strip())  # the reply is "ok {json}"

    def close(self):
        subprocess.run(["fusermount3", "-u", "-z", self.mount], capture_output=True)
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- a tiny runner ---------------------------------------------------------------------------

SKIP_EXIT_CODE = 77  # CTest SKIP_RETURN_CODE of every integration test file


class Skip(Exception):
    """Raised by skip(): the case cannot run here."""


def skip(reason):
    raise Skip(reason)


def run(tests):
    """Runs test functions in order; each gets its own brokers via the `brokers` list it may
    append to (they are cleaned up, and their logs dumped on failure). Exit code 1 on any
    failure; else 77 if a case skipped; else 0."""
    failed = 0
    skipped = 0
    selected = os.environ.get("TANDEM_ITEST_ONLY")
    excluded = os.environ.get("TANDEM_ITEST_EXCLUDE")
    for fn in tests:
        if selected and selected not in fn.__name__:
            continue
        if excluded and excluded in fn.__name__:
            continue
        brokers = []
        t0 = time.monotonic()
        try:
            fn(brokers)
            for b in brokers:
                b.kill_if_running_and_check_sanitizers()
            print(f"PASS {fn.__name__} ({time.monotonic() - t0:.2f}s)", flush=True)
        except Skip as reason:
            skipped += 1
            print(f"SKIP {fn.__name__}: {reason}", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {fn.__name__} ({time.monotonic() - t0:.2f}s)", flush=True)
            traceback.print_exc()
            for b in brokers:
                b.dump_logs()
        finally:
            for b in brokers:
                b.cleanup()
    if failed:
        sys.exit(1)
    if skipped:
        print(f"{skipped} case(s) skipped: reported to CTest as skipped (exit {SKIP_EXIT_CODE})", flush=True)
        sys.exit(SKIP_EXIT_CODE)
    sys.exit(0)


def new_broker(brokers, **kwargs):
    b = Broker(**kwargs)
    brokers.append(b)
    return b.start()
