"""Issue 12, item 3: a full store. Each case runs tandemd on a small tmpfs of its own (needs
root for mount(8); SKIP otherwise) with 4 MiB segments, so tandemd keeps a floor and a reserve
file of 8 MiB each (2 x segment_bytes).

Before the fix the master exited 75 ("deposed") when the file system filled up, and every
later start exited 75 while opening the journal: nobody could serve, so consumers could not
drain the queue that would free the space.
"""

import os
import signal
import subprocess
import tempfile

from tandem_test import Broker, Raw, drain, run, send_persistent, skip, wait_for

SEGMENT = 4 << 20
RESERVE = 2 * SEGMENT
BODY = b"x" * (64 << 10)


class Tmpfs:
    def __init__(self, size_mib):
        self.dir = tempfile.mkdtemp(prefix="tandem-itest-full-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", self.dir],
                           capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(self.dir)
            skip(f"cannot mount a tmpfs (needs root): {r.stderr.strip()}")
        self.filler = 0

    def available(self):
        st = os.statvfs(self.dir)
        return st.f_bavail * st.f_frsize

    def fill(self, leave=0):
        """Writes filler files until at most `leave` bytes are available (ENOSPC ends it)."""
        path = os.path.join(self.dir, f"filler.{self.filler}")
        self.filler += 1
        chunk = b"\0" * (1 << 20)
        with open(path, "wb", buffering=0) as f:
            try:
                while self.available() > leave:
                    f.write(chunk[: max(4096, min(len(chunk), self.available() - leave))])
            except OSError:
                pass

    def unmount(self):
        subprocess.run(["umount", "-l", self.dir], capture_output=True)
        os.rmdir(self.dir)


def broker_on(fs, brokers):
    b = Broker(config={"segment_bytes": SEGMENT, "broker_name": "full", "allow_anonymous": True}, store=os.path.join(fs.dir, "store"))
    brokers.append(b)
    return b


def reserve_path(fs):
    return os.path.join(fs.dir, "store", "disk-reserve")


def let_reserve_settle(fs):
    """The master makes STORE/disk-reserve soon after it starts. Waits for it a while, but goes
    on without it: the cases below then fail on what a broker without one does."""
    try:
        wait_for(lambda: os.path.exists(reserve_path(fs)), timeout=5, what="the disk reserve file")
    except AssertionError:
        pass


def send_refused(b):
    """A persistent SEND with a receipt: returns the ERROR frame (None: it was receipted)."""
    r = Raw(b)
    r.connect()
    r.frame("SEND", {"destination": "/queue/more", "persistent": "true", "receipt": "x"}, b"more")
    f = r.read_frame()
    r.close()
    assert f is not None, "no answer to the SEND"
    return f if f[0] == "ERROR" else None


def test_a_full_store_serves_consumers_and_acks_and_refuses_sends_with_disk_full(brokers):
    fs = Tmpfs(48)
    try:
        b = broker_on(fs, brokers).start()
        send_persistent(b, "/queue/full", [BODY] * 20)
        let_reserve_settle(fs)
        fs.fill(leave=RESERVE // 2)
        # Before the fix every SEND was receipted until a write failed with ENOSPC and the
        # master exited 75; now the guard notices within its period and refuses them.
        err = wait_for(lambda: send_refused(b), timeout=10, what="a persistent SEND refused")
        assert err[1].get("message") == "disk full", err
        b.wait_log(r"store file system full")
        assert "full" in err[2].decode(), err
        got = drain(b, "/queue/full", 20)
        assert len(got) == 20, len(got)
        assert b.proc.poll() is None, f"the master exited with {b.proc.returncode}"
    finally:
        for x in brokers:
            x.kill()
        fs.unmount()


def test_a_start_on_a_filled_store_releases_the_reserve_serves_and_a_hopeless_one_exits_1(brokers):
    fs = Tmpfs(48)
    try:
        b = broker_on(fs, brokers).start()
        send_persistent(b, "/queue/full", [BODY] * 20)
        let_reserve_settle(fs)
        b.stop(signal.SIGKILL)
        fs.fill(leave=0)
        b.start()  # before the fix: exit 75 while opening the journal
        b.wait_log(r"released the disk reserve")
        err = send_refused(b)
        assert err is not None and err[1].get("message") == "disk full", err
        got = drain(b, "/queue/full", 20)
        assert len(got) == 20, len(got)
        b.stop(signal.SIGKILL)
        # No reserve left and no room: the start cannot open. It says so and exits 1.
        fs.fill(leave=0)
        b.start(wait=False)
        code = b.proc.wait(30)
        assert code == 1, f"exit {code}, expected 1"
        assert "file system is full" in b.log_text(), b.log_text()[-2000:]
    finally:
        for x in brokers:
            x.kill()
        fs.unmount()


if __name__ == "__main__":
    run([
        test_a_full_store_serves_consumers_and_acks_and_refuses_sends_with_disk_full,
        test_a_start_on_a_filled_store_releases_the_reserve_serves_and_a_hopeless_one_exits_1,
    ])
