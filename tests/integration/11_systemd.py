"""11 systemd: the unit file (systemd-analyze verify, the settings issue 7 asks for) and
tandemd's sd_notify protocol (READY=1 once the role is known, STATUS=, STOPPING=1), checked
with a NOTIFY_SOCKET of our own, as systemd would provide it."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile

from tandem_test import Broker, run, skip, tandemd_path, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT = os.path.join(HERE, "..", "..", "packaging", "systemd", "tandem@.service")


def unit_settings():
    """{(section, key): [values]} of the template unit."""
    out, section = {}, None
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, _, v = line.partition("=")
            out.setdefault((section, k), []).append(v)
    return out


class NotifySocket:
    """A unix datagram socket standing in for systemd's notification socket."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tandem-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages = []

    def poll(self):
        try:
            while True:
                self.messages.append(self.sock.recv(4096).decode())
        except socket.timeout:
            pass
        return self.messages

    def wait(self, pattern, timeout=20.0):
        rx = re.compile(pattern, re.M)

        def found():
            return next((m for m in self.poll() if rx.search(m)), None)

        return wait_for(found, timeout, f"sd_notify message matching {pattern!r}; got {self.messages}")

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_notified(broker, notify):
    os.environ["NOTIFY_SOCKET"] = notify.path
    try:
        return broker.start(wait=False)
    finally:
        del os.environ["NOTIFY_SOCKET"]


def test_the_unit_file_passes_systemd_analyze_verify(brokers):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        skip("systemd-analyze is not installed (Debian package systemd)")
    work = tempfile.mkdtemp(prefix="tandem-unit-")
    try:
        # ExecStart must name an executable that exists: point it at the tandemd under test.
        with open(UNIT) as f:
            text = f.read().replace("/usr/sbin/tandemd", os.path.abspath(tandemd_path()))
        unit = os.path.join(work, "tandem@.service")
        with open(unit, "w") as f:
            f.write(text)
        r = subprocess.run([analyze, "verify", os.path.join(work, "tandem@example.service")], capture_output=True,
                           text=True, timeout=60)
        output = (r.stdout + r.stderr).strip()
        if r.returncode != 0 and ("Failed to connect" in output or "No such file or directory" in output
                                  and "tandem@" not in output):
            skip(f"systemd-analyze cannot run here: {output[:300]}")
        # verify exits 0 on unknown keys and bad values ("..., ignoring."): any word about our
        # unit is a failure.
        assert r.returncode == 0 and "tandem@" not in output, output
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_unit_has_the_settings_operations_rely_on(brokers):
    s = unit_settings()
    assert s[("Service", "Type")] == ["notify"]
    assert s[("Service", "Restart")] == ["on-failure"]
    # 75 (deposed) must be restarted; only 2 (bad config) is not.
    assert "75" not in " ".join(s.get(("Service", "RestartPreventExitStatus"), []))
    assert s[("Service", "User")] == ["tandem"]
    assert s[("Service", "NoNewPrivileges")] == ["yes"]
    assert s[("Service", "ProtectSystem")] == ["strict"]
    assert s[("Service", "PrivateTmp")] == ["yes"]
    assert s[("Unit", "RequiresMountsFor")] == ["/srv/tandem/%i"]
    assert s[("Service", "ReadWritePaths")] == ["-/srv/tandem/%i"]
    assert s[("Service", "StateDirectory")] == ["tandem/%i"]
    assert any("/etc/tandem/%i.json" in v for v in s[("Service", "ExecStart")])
    stop = s[("Service", "TimeoutStopSec")][0]
    assert stop.endswith("s") and 10 <= int(stop[:-1]) <= 600, stop


def test_a_master_notifies_ready_with_its_epoch_and_address_then_stopping(brokers):
    notify = NotifySocket()
    try:
        b = Broker(name="notified")
        brokers.append(b)
        start_notified(b, notify)
        b.wait_master()
        msg = notify.wait(r"^READY=1$")
        assert re.search(rf"^STATUS=master, epoch 1, serving on 127\.0\.0\.1:{b.port}$", msg, re.M), msg
        assert b.stop() == 0
        notify.wait(r"^STOPPING=1$")
    finally:
        notify.close()


def test_a_slave_is_ready_at_once_and_says_whom_it_waits_for(brokers):
    a = Broker(name="first")
    brokers.append(a)
    a.start()
    notify = NotifySocket()
    try:
        b = Broker(name="second", store=a.store)
        brokers.append(b)
        start_notified(b, notify)
        msg = notify.wait(r"^READY=1$")
        assert re.search(r"^STATUS=slave, waiting for first \(pid \d+ on .+, epoch 1\)$", msg, re.M), msg
        assert a.stop() == 0
        b.wait_master()
        notify.wait(r"^STATUS=recovering the journal, epoch 2$")
        notify.wait(r"^STATUS=master, epoch 2, serving on ")
        b.stop(signal.SIGINT)
        notify.wait(r"^STOPPING=1$")
    finally:
        notify.close()


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
