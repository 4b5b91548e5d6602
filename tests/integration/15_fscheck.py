"""15 tandemctl fscheck: an operator's file-system check, run for real. On a local directory
every check passes; through bindfs mounts, which do not enforce locks between two clients
(without lock forwarding: across the mount and its source; with it: between two processes on
the mount), the lock checks fail and the exit code is 1. It must see both, or it proves
nothing."""
import json
import os
import shutil
import subprocess
import tempfile

from tandem_test import run, skip

TANDEMCTL = os.environ.get("TANDEMCTL", "tandemctl")


def fscheck(*args):
    r = subprocess.run([TANDEMCTL, "fscheck", *args, "--json", "--sync-samples", "20", "--wait-limit-ms", "3000"],
                       capture_output=True, text=True, timeout=120)
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip().startswith("{") else None), r.stderr


def results(report):
    return {c["name"]: c["result"] for c in report["checks"]}


class BindfsMount:
    def __init__(self, *options):
        if not shutil.which("bindfs") or not os.path.exists("/dev/fuse"):
            skip("bindfs or /dev/fuse not available")
        self.base = tempfile.mkdtemp(prefix="tandem-fscheck-")
        self.src, self.mnt = os.path.join(self.base, "src"), os.path.join(self.base, "mnt")
        os.makedirs(self.src)
        os.makedirs(self.mnt)
        r = subprocess.run(["bindfs", *options, self.src, self.mnt], capture_output=True, text=True)
        if r.returncode != 0:
            shutil.rmtree(self.base)
            skip(f"bindfs cannot mount here: {r.stderr.strip()}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        subprocess.run(["umount", self.mnt], check=False)
        shutil.rmtree(self.base, ignore_errors=True)


def test_a_local_directory_passes_every_check_and_is_left_clean(brokers):
    d = tempfile.mkdtemp(prefix="tandem-fscheck-")
    try:
        rc, report, err = fscheck(d)
        assert rc == 0, err
        r = results(report)
        for name in ("exclusion", "wake_up", "holder_death", "replaced_lock"):
            assert r[name] == "PASS", report
        assert r["fsync"] in ("PASS", "WARN"), report  # WARN on tmpfs: faster than a disk
        assert report["failures"] == 0
        figures = {c["name"]: c["figures"] for c in report["checks"]}
        assert 0 <= figures["wake_up"]["wake_ms"] < 1000
        assert 0 <= figures["holder_death"]["release_ms"] < 3000
        assert figures["fsync"]["samples"] == 20 and figures["fsync"]["visible_through_peer"]
        assert os.listdir(d) == [], "fscheck must remove its work directory"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_a_missing_directory_and_a_peer_that_is_another_directory_are_refused(brokers):
    rc, _, err = fscheck("/nonexistent/tandem-fscheck")
    assert rc == 2 and "is not a directory" in err
    a, b = tempfile.mkdtemp(), tempfile.mkdtemp()
    try:
        rc, _, err = fscheck(a, "--peer", b)
        assert rc == 2 and "must be the same directory through another mount" in err, err
    finally:
        shutil.rmtree(a)
        shutil.rmtree(b)


def test_bindfs_without_lock_forwarding_fails_exclusion_across_the_mount(brokers):
    with BindfsMount() as m:
        rc, report, err = fscheck(m.src, "--peer", m.mnt)
        assert rc == 1, (err, report)
        r = results(report)
        assert r["exclusion"] == "PASS" and r["exclusion_peer"] == "FAIL", report


def test_bindfs_with_lock_forwarding_fails_exclusion_between_its_own_clients(brokers):
    with BindfsMount("--multithreaded", "--enable-lock-forwarding") as m:
        rc, report, err = fscheck(m.mnt, "--peer", m.src)
        assert rc == 1, (err, report)
        r = results(report)
        assert r["exclusion"] == "FAIL" and r["exclusion_peer"] == "PASS", report


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
