#!/usr/bin/python3
"""CephFS cluster tests (CTest label "cluster"): one cluster, brought up by the `up` case
(a CTest fixture), used by the cases in order, removed by the `down` case.

    cluster_test.py CASE        CASE: up, mount_seen_from_hosts_and_root, ...  (see CASES)

Each case prints PASS or FAIL with the reason and exits 0 or 1; 77 (CTest skip) when the
machine cannot run the cluster (not root, no /dev/fuse, no network namespaces). The instance
comes from TANDEM_CLUSTER_NAME and TANDEM_CLUSTER_BASE (tests/cluster/CMakeLists.txt derives
them from the build tree so two checkouts never share one). Run one case by hand with
`ctest -R cluster_ofd --output-on-failure`: CTest adds the up and down fixtures.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "cluster"
sys.path.insert(0, str(TOOLS))
sys.dont_write_bytecode = True

from tandem_cluster import Cluster, default_layout, faults, preflight, system  # noqa: E402

CLI = str(TOOLS / "tandem-cluster")
FSPROBE = str(TOOLS / "fsprobe")
SKIP = 77


class Failure(AssertionError):
    pass


def check(cond, what: str) -> None:
    if not cond:
        raise Failure(what)


def cluster() -> Cluster:
    return Cluster(default_layout(os.environ.get("TANDEM_CLUSTER_NAME"),
                                  os.environ.get("TANDEM_CLUSTER_BASE")))


def cli(*args: str, timeout: float = 120) -> dict:
    """Run the tandem-cluster command (the interface the drill uses) and parse its JSON."""
    p = subprocess.run([CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    check(p.returncode == 0, f"tandem-cluster {' '.join(args)}: exit {p.returncode}: {p.stderr}")
    return json.loads(p.stdout)


def on_host(n: int, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run argv on host n. On timeout the process is killed but not waited for: one stuck
    in a FUSE request ignores SIGKILL until the request ends, and the test must go on."""
    p = subprocess.Popen([CLI, "exec", str(n), *argv], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Failure(f"host{n}: {' '.join(argv)} did not finish in {timeout:g} s") from None
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def mount(c: Cluster, n: int) -> Path:
    return c.lay.mount_point(n)


def write_on(c: Cluster, n: int, rel: str, text: str, deadline_s: float = 60) -> float:
    """write+fsync through host n's mount, from host n; returns how long it took."""
    t0 = time.monotonic()
    p = on_host(n, FSPROBE, "write", str(mount(c, n) / rel), text, timeout=deadline_s)
    check(p.returncode == 0, f"host{n}: write+fsync of {rel} failed: {p.stdout} {p.stderr}")
    return time.monotonic() - t0


def read_on(c: Cluster, n: int, rel: str, timeout: float = 60) -> str:
    p = on_host(n, "cat", str(mount(c, n) / rel), timeout=timeout)
    check(p.returncode == 0, f"host{n}: cannot read {rel}: {p.stderr.strip()}")
    return p.stdout


def other_hosts(c: Cluster, lost: int) -> list[int]:
    return [n for n in c.lay.sites() if n != lost]


# --- cases ------------------------------------------------------------------------------

def case_up(c: Cluster) -> None:
    desc = c.up()
    print(f"up took {desc['timings_s']['up']} s (package check/install "
          f"{desc['timings_s']['install']} s)")
    again = cli("describe")
    check(again == desc, "describe does not return what up printed")
    check(len(desc["sites"]) == 3 and len(desc["hosts"]) == 3, "not 3 sites and 3 hosts")
    for h in desc["hosts"]:
        check(system.is_mounted(Path(h["mount"])), f"{h['mount']} not mounted")
        check(h["client_id"] > 0, f"host{h['host']} has no client id")
    st = cli("status")
    states = sorted(s["daemons"]["mds"].get("state", "") for s in st["sites"])
    check(states == ["up:active", "up:standby", "up:standby-replay"], f"MDS states {states}")
    check(st["cluster"]["quorum"] and len(st["cluster"]["quorum"]) == 3, "no 3-mon quorum")
    check(st["cluster"]["osds_up"] == 3, "not 3 OSDs up")


def case_mount_seen_from_hosts_and_root(c: Cluster) -> None:
    """A broker started in a host's namespace sees the mount (nsenter --net keeps the root
    mount namespace; `ip netns exec` would not), and so does the root side."""
    for n in c.lay.sites():
        p = on_host(n, "cat", "/proc/self/mounts")
        check(f" {mount(c, n)} fuse.ceph-fuse " in p.stdout,
              f"a process in host{n}'s namespace does not see {mount(c, n)}")
    write_on(c, 1, "seen", "from host1")
    check((mount(c, 1) / "seen").read_text() == "from host1", "root side cannot read host1's file")
    for n in (2, 3):
        check(read_on(c, n, "seen") == "from host1", f"host{n} cannot read host1's file")


def case_fsync_visible_across_hosts(c: Cluster) -> None:
    for writer in c.lay.sites():
        text = f"written and fsynced by host{writer} {time.time()}"
        write_on(c, writer, f"fsync-{writer}", text)
        for reader in c.lay.sites():
            check(read_on(c, reader, f"fsync-{writer}") == text,
                  f"host{reader} does not see host{writer}'s fsynced write")


def _start_probe(n: int, *argv: str) -> subprocess.Popen:
    return subprocess.Popen([CLI, "exec", str(n), FSPROBE, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_event(p: subprocess.Popen, name: str, deadline_s: float) -> dict:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        ev = json.loads(line)
        if ev["event"] == name:
            return ev
    raise Failure(f"no {name!r} event from {p.args[3:]} within {deadline_s:g} s")


def case_ofd_lock_across_hosts(c: Cluster) -> None:
    lock1, lock2 = str(mount(c, 1) / "ofd.lock"), str(mount(c, 2) / "ofd.lock")
    holder = _start_probe(1, "hold", lock1, "--for", "3")
    _wait_event(holder, "acquired", 30)
    t = on_host(2, FSPROBE, "try", lock2)
    check(t.returncode == 3, f"host2 got the lock host1 holds: {t.stdout}")
    ev = events(t.stdout)[0]
    check(ev["error"] == "EAGAIN" and ev["holder"]["lock"] == "write",
          f"host2's failed attempt should be EAGAIN and see a write lock: {ev}")
    waiter = _start_probe(2, "wait", lock2)
    _wait_event(waiter, "waiting", 30)
    released = _wait_event(holder, "released", 30)
    acquired = _wait_event(waiter, "acquired", 30)
    wake_ms = (acquired["t"] - released["t"]) * 1000
    print(f"blocked waiter on host2 woke {wake_ms:.1f} ms after host1's close")
    check(acquired["t"] >= released["t"], "host2 acquired before host1 released")
    waiter.wait(10)
    # The holder is killed with SIGKILL: the lock goes with it.
    holder = _start_probe(1, "hold", lock1)
    _wait_event(holder, "acquired", 30)
    waiter = _start_probe(3, "wait", str(mount(c, 3) / "ofd.lock"))
    _wait_event(waiter, "waiting", 30)
    t0 = time.monotonic()
    os.kill(holder.pid, signal.SIGKILL)  # exec -> nsenter -> fsprobe: one pid throughout
    _wait_event(waiter, "acquired", 30)
    print(f"host3 got the lock {1000 * (time.monotonic() - t0):.0f} ms after SIGKILL of host1's holder")
    waiter.wait(10)
    holder.wait(10)


def case_replicas_one_per_site(c: Cluster) -> None:
    """Every PG of the file system's pools has 3 replicas, one in each site: so any one site
    can go (the kill-site cases show it for two of them)."""
    site_of_osd = {c.lay.osd_id(n): n for n in c.lay.sites()}
    with c.mon_session() as mon:
        rule = mon.json({"prefix": "osd crush rule dump", "name": "replicated_rule"})
        check(any(s.get("type") == "datacenter" for s in rule["steps"]),
              f"CRUSH rule does not choose by datacenter: {rule['steps']}")
        for pool in ("cephfs_metadata", "cephfs_data"):
            for var, want in (("size", 3), ("min_size", 2)):
                got = mon.json({"prefix": "osd pool get", "pool": pool, "var": var})[var]
                check(got == want, f"{pool} {var} = {got}, want {want}")
        pgs = mon.json({"prefix": "pg dump", "dumpcontents": ["pgs_brief"]}, target="mgr")
    pgs = pgs["pg_stats"] if isinstance(pgs, dict) else pgs
    check(len(pgs) >= 16, f"only {len(pgs)} PGs")
    for pg in pgs:
        sites = sorted(site_of_osd[o] for o in pg["acting"])
        check(sites == [1, 2, 3], f"PG {pg['pgid']} acting {pg['acting']} is not one per site")


def _lose_site(c: Cluster, lost: int, deadline_s: float) -> None:
    hosts = other_hosts(c, lost)
    before = f"before losing site{lost}"
    write_on(c, hosts[0], f"before-{lost}", before)
    cli("kill-site", str(lost))
    took = {}
    for n in hosts:
        took[n] = write_on(c, n, f"after-{lost}-{n}", f"host{n} after site{lost}", deadline_s)
    print("write+fsync after losing site%d took %s" %
          (lost, ", ".join(f"host{n} {t:.1f} s" for n, t in took.items())))
    for n in hosts:
        check(read_on(c, n, f"before-{lost}") == before, f"host{n} lost data written before")
        for m in hosts:
            check(read_on(c, n, f"after-{lost}-{m}") == f"host{m} after site{lost}",
                  f"host{n} cannot read host{m}'s write made after the loss")
    st = cli("status")["cluster"]
    check(st["osds_up"] == 2, f"expected 2 OSDs up with site{lost} lost: {st}")
    cli("restart-site", str(lost))
    cli("wait-healthy", "--timeout", "180", timeout=200)
    check(read_on(c, lost, f"after-{lost}-{hosts[0]}") == f"host{hosts[0]} after site{lost}",
          f"restarted host{lost} does not see what was written while it was gone")


def case_kill_site_without_active_mds(c: Cluster) -> None:
    states = {n: c._mds_states().get(c.lay.mds_name(n)) for n in c.lay.sites()}
    lost = next(n for n, s in states.items() if s == "up:standby")
    print(f"losing site{lost} (MDS states {states})")
    _lose_site(c, lost, 90)


def case_kill_site_with_active_mds(c: Cluster) -> None:
    active = c.active_mds()
    lost = next(n for n in c.lay.sites() if c.lay.mds_name(n) == active)
    print(f"losing site{lost}, home of the active MDS {active}")
    _lose_site(c, lost, 120)
    check(c.active_mds() is not None, "no active MDS after the site came back")


def case_partition_and_heal(c: Cluster) -> None:
    """A host cut off for a few seconds (well under session_timeout) comes back with the same
    session; the other hosts keep writing meanwhile. Each host works in a directory of its
    own: a directory whose caps the cut-off host holds would block the others for up to
    session_timeout (see docs/cephfs.md)."""
    cut = 3
    for n in c.lay.sites():
        write_on(c, n, f"own-{n}", "mine")
    on_host(1, "mkdir", "-p", str(mount(c, 1) / "part-1"))
    on_host(2, "mkdir", "-p", str(mount(c, 2) / "part-2"))
    client_before = c.describe()["hosts"][cut - 1]["client_id"]
    cli("partition-host", str(cut))
    t0 = time.monotonic()
    # A write+fsync issued on the cut-off host cannot finish while it is cut off, and must
    # finish once healed, on the same session.
    stuck = _start_probe(cut, "write", str(mount(c, cut) / f"own-{cut}"), "written during the cut")
    for n in (1, 2):
        write_on(c, n, f"part-{n}/during", f"host{n} while host{cut} is cut off", 20)
    time.sleep(max(0.0, 3 - (time.monotonic() - t0)))  # keep the cut on for at least 3 s
    check(stuck.poll() is None, f"host{cut} finished a write+fsync while cut off")
    cli("heal-host", str(cut))
    t_heal = time.monotonic()
    out, _ = stuck.communicate(timeout=25)
    check(stuck.returncode == 0, f"host{cut}'s write from the cut failed after heal: {out}")
    print(f"host{cut}'s write made during the cut finished {time.monotonic() - t_heal:.1f} s "
          "after heal")
    write_on(c, cut, f"own-{cut}", "after heal", 25)
    check(read_on(c, cut, "part-1/during") == f"host1 while host{cut} is cut off",
          f"healed host{cut} does not see what host1 wrote during the cut")
    check(c.describe()["hosts"][cut - 1]["client_id"] == client_before,
          f"host{cut} needed a new session after a short partition")


def case_down(c: Cluster) -> None:
    """down after a crashed run: a dead ceph-fuse (ENOTCONN mount) and no description
    file. Nothing may remain: no process, mount, namespace, link or file; down twice is fine."""
    if c.lay.state_file.exists():
        pid = c.fuse_pid(1)
        if pid:
            os.kill(pid, signal.SIGKILL)
        c.lay.state_file.unlink()
    t0 = time.monotonic()
    report = cli("down", timeout=120)
    print(f"down took {time.monotonic() - t0:.2f} s: {report}")
    left = c.leftovers()
    check(not any(left.values()), f"down left {left}")
    ceph = subprocess.run(["pgrep", "-f", str(c.lay.base)], stdout=subprocess.PIPE, text=True)
    check(ceph.stdout.strip() == "", f"processes naming {c.lay.base} remain: {ceph.stdout}")
    cli("down")  # idempotent


CASES = {
    "up": case_up,
    "mount_seen_from_hosts_and_root": case_mount_seen_from_hosts_and_root,
    "fsync_visible_across_hosts": case_fsync_visible_across_hosts,
    "ofd_lock_across_hosts": case_ofd_lock_across_hosts,
    "replicas_one_per_site": case_replicas_one_per_site,
    "kill_site_without_active_mds": case_kill_site_without_active_mds,
    "kill_site_with_active_mds": case_kill_site_with_active_mds,
    "partition_and_heal": case_partition_and_heal,
    "down": case_down,
}


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # CTest shows what a timed-out case printed
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        print(f"usage: cluster_test.py {{{','.join(CASES)}}}", file=sys.stderr)
        return 2
    name = sys.argv[1]
    problems = preflight()
    if problems:
        print(f"SKIP {name}: " + "; ".join(problems))
        return SKIP
    c = cluster()
    if name not in ("up", "down") and not c.lay.state_file.exists():
        print(f"FAIL {name}: no cluster (the up fixture failed?)")
        return 1
    t0 = time.monotonic()
    try:
        CASES[name](c)
    except Exception as e:  # noqa: BLE001 - any error fails the case, with its name
        print(f"FAIL {name} after {time.monotonic() - t0:.1f} s: {type(e).__name__}: {e}")
        return 1
    print(f"PASS {name} ({time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
