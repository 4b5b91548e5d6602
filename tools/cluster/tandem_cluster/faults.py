"""The fault primitives the drill injects, and the repairs that undo them.

Each returns at once with a report dict saying what it did ("took_ms" is the primitive's own
time, from its start to the fault being in place). None waits for the cluster to react: that
is what the caller measures. Timing-critical ones (kill-*, partition, evict) use signals,
`ip link` and admin sockets only, never the `ceph` CLI.

  fault           what happens                                   undone by
  kill-site N     both links down, then SIGKILL every process     restart-site N
                  of <name>-siteN and <name>-hostN in one sweep:
                  peers see silence, not resets
  partition-host  host N's link down (its ceph-fuse and brokers   heal-host N
                  live on, cut off)
  kill-fuse N     SIGKILL host N's ceph-fuse (host death as the   remount N (after evict-host
                  cluster sees it; the mount gives ENOTCONN)      N, or session_autoclose)
  evict-host N    the active MDS evicts host N's session and      remount N
                  blocklists its address (fencing)
  kill-osd N      SIGKILL site N's ceph-osd                      restart-site N
  fail-mds        `mds fail` of the active MDS (its daemon        (it respawns as a standby)
                  respawns as a standby), or SIGKILL with --kill  restart-site N
"""
from __future__ import annotations

import time

from . import ceph_io, system
from .cluster import Cluster, ClusterError, log, wait_for


def _ms_since(t0: float) -> float:
    return round((time.monotonic() - t0) * 1000, 1)


def _check_site(c: Cluster, n: int) -> None:
    if n not in c.lay.sites():
        raise ClusterError(f"no site or host {n}: this cluster has 1..{len(c.lay.sites())}")


def kill_site(c: Cluster, n: int, keep_links: bool = False) -> dict:
    """Lose site n. Default, power loss: links first, then SIGKILL. A SIGKILLed process's
    sockets are closed by the kernel, which sends FIN or RST to every peer, and Ceph reacts to
    a refused connection at once (osd_fast_fail_on_connection_refused); a site losing power
    sends nothing, so cut the links, then kill into the silence. keep_links: every process
    dies but the links stay up (the site's kernel still answers, with resets)."""
    _check_site(c, n)
    lay = c.lay
    t0 = time.monotonic()
    if not keep_links:
        system.set_link(lay.site_link(n), False)
        system.set_link(lay.host_link(n), False)
    killed = system.kill_namespaces([lay.site_ns(n), lay.host_ns(n)])
    took = _ms_since(t0)
    mp = lay.mount_point(n)
    return {"fault": "kill-site", "site": n, "killed": killed,
            "links_down": [] if keep_links else [lay.site_link(n), lay.host_link(n)],
            "took_ms": took,
            "note": f"host{n}'s mount {mp} is dead (ENOTCONN) until restart-site {n}"}


def restart_site(c: Cluster, n: int) -> dict:
    """Bring site n back: links up, start whichever of its daemons is not running, remount
    host n if its mount is dead. Returns once the processes run and the mount is back (the
    cluster may still be recovering: see `wait-healthy`)."""
    _check_site(c, n)
    lay = c.lay
    t0 = time.monotonic()
    system.set_link(lay.site_link(n), True)
    system.set_link(lay.host_link(n), True)
    started = []
    ns = lay.site_ns(n)
    for comm, start in (("ceph-mon", c._start_mon), ("ceph-osd", c._start_osd),
                        ("ceph-mgr", c._start_mgr), ("ceph-mds", c._start_mds)):
        if not system.pids_named(ns, comm):
            started.append({"comm": comm, "pid": start(n)})
    report = {"fault": "restart-site", "site": n, "links_up": [lay.site_link(n), lay.host_link(n)],
              "started": started}
    if c.fuse_pid(n) is None or system.probe_path(lay.mount_point(n), 2.0) != "ok":
        report["remount"] = remount(c, n)
    report["took_ms"] = _ms_since(t0)
    return report


def _host_link(c: Cluster, n: int, up: bool) -> dict:
    _check_site(c, n)
    t0 = time.monotonic()
    system.set_link(c.lay.host_link(n), up)
    return {"fault": "heal-host" if up else "partition-host", "host": n,
            "link_up" if up else "link_down": c.lay.host_link(n), "took_ms": _ms_since(t0)}


def partition_host(c: Cluster, n: int) -> dict:
    return _host_link(c, n, up=False)


def heal_host(c: Cluster, n: int) -> dict:
    return _host_link(c, n, up=True)


def kill_fuse(c: Cluster, n: int) -> dict:
    _check_site(c, n)
    t0 = time.monotonic()
    pid = c.fuse_pid(n)
    if pid is None:
        raise ClusterError(f"host{n} has no running ceph-fuse; `remount {n}` starts one")
    system.kill_all([pid])
    desc = c.describe()
    cid = desc["hosts"][n - 1]["client_id"]
    return {"fault": "kill-fuse", "host": n, "pid": pid, "client_id": cid,
            "took_ms": _ms_since(t0),
            "note": f"the MDS keeps client {cid}'s session, caps and locks until "
                    f"session_autoclose ({desc['session_autoclose_s']} s) or evict-host {n}"}


def evict_host(c: Cluster, n: int, wait_active_s: float = 60) -> dict:
    """Fence host n: the active MDS evicts its session (freeing its caps and locks) and adds
    its address to the OSD blocklist, so its in-flight writes are refused by the OSDs too.
    The MDS answers only once the blocklist is in the OSD map. Waits up to wait_active_s for
    an active MDS (during an MDS failover there is none)."""
    _check_site(c, n)
    t0 = time.monotonic()
    host = c.describe()["hosts"][n - 1]
    mds = wait_for("an active MDS to evict through", c.active_mds, wait_active_s, 0.05)
    t_mds = time.monotonic()
    asok = c.lay.daemon_asok("mds", mds)
    reply = ceph_io.admin_socket(asok, {"prefix": "client evict",
                                        "filters": [f"id={host['client_id']}"]}, 60)
    return {"fault": "evict-host", "host": n, "client_id": host["client_id"],
            "client_addr": host["client_addr"], "mds": mds, "reply": reply,
            "waited_for_active_mds_ms": round((t_mds - t0) * 1000, 1),
            "took_ms": _ms_since(t0)}


def remount(c: Cluster, n: int) -> dict:
    """Replace host n's mount with a fresh ceph-fuse (a new client id): after eviction, death
    of its ceph-fuse, or to recover a partitioned host whose session was closed."""
    _check_site(c, n)
    t0 = time.monotonic()
    lay = c.lay
    old = c.fuse_pid(n)
    mp = lay.mount_point(n)
    if system.is_mounted(mp):
        system.unmount(str(mp))
    if old is not None:
        system.kill_all([old])
        system.wait_gone([old], 5)
    ident = c._mount(n)
    with c.locked():
        c.refresh_host(n, ident)
    return {"fault": "remount", "host": n, "old_fuse_pid": old, **ident,
            "took_ms": _ms_since(t0)}


def kill_osd(c: Cluster, n: int) -> dict:
    _check_site(c, n)
    t0 = time.monotonic()
    pids = system.pids_named(c.lay.site_ns(n), "ceph-osd")
    if not pids:
        raise ClusterError(f"site{n} has no running ceph-osd; `restart-site {n}` starts it")
    system.kill_all(pids)
    return {"fault": "kill-osd", "site": n, "osd": c.lay.osd_id(n), "pids": pids,
            "took_ms": _ms_since(t0)}


def fail_mds(c: Cluster, kill: bool = False) -> dict:
    """Fail the active MDS. Default: `mds fail` through the mons (what an operator does; the
    daemon respawns and rejoins as a standby). kill=True: SIGKILL it, so the mons notice only
    when its beacons stop (mds_beacon_grace)."""
    t0 = time.monotonic()
    mds = c.active_mds()
    if mds is None:
        raise ClusterError("no active MDS right now (a failover in progress?); see `status`")
    site = next(n for n in c.lay.sites() if c.lay.mds_name(n) == mds)
    if kill:
        pids = system.pids_named(c.lay.site_ns(site), "ceph-mds")
        system.kill_all(pids)
        how = {"how": "SIGKILL", "pids": pids}
    else:
        with c.mon_session(10) as mon:
            mon.command({"prefix": "mds fail", "role_or_gid": mds})
        how = {"how": "mds fail"}
    return {"fault": "fail-mds", "mds": mds, "site": site, **how, "took_ms": _ms_since(t0)}


def wait_healthy(c: Cluster, deadline_s: float = 180) -> dict:
    """Wait until the cluster is whole again: every mon in quorum, 3 OSDs up and in, every PG
    active+clean, one active + one standby-replay + one standby MDS, and every host's mount
    answering. For tests and drills between faults; not a fault itself."""
    t0 = time.monotonic()
    lay = c.lay
    with c.mon_session(deadline_s) as mon:
        def whole() -> bool:
            st = mon.json({"prefix": "status"}, timeout_s=10)
            pgs = st["pgmap"]
            clean = sum(s["count"] for s in pgs.get("pgs_by_state", [])
                        if s["state_name"] == "active+clean")
            return (st["health"]["status"] == "HEALTH_OK"
                    and len(st["quorum_names"]) == len(lay.sites())
                    and st["osdmap"]["num_up_osds"] == len(lay.sites())
                    and st["osdmap"]["num_in_osds"] == len(lay.sites())
                    and pgs["num_pgs"] > 0 and clean == pgs["num_pgs"])
        def pgs_fresh_and_clean() -> bool:
            # PG states come from the mgr and lag (mgr_stats_period): right after a site's
            # restart the mgr can still show the clean states from before the fault, while
            # the restarted OSD (memstore: it comes back empty) has not peered yet. Seen:
            # "whole" at 06:09:17, then 13 PGs degraded and backfilling from 06:09:21, and
            # the next episode's site loss left PGs below min_size (I/O blocked for 30 s).
            # Only a PG state reported at or after the last OSD boot (its up_from epoch)
            # counts: booting makes every PG of that OSD peer and publish again.
            booted = max(o["up_from"] for o in mon.json({"prefix": "osd dump"}, timeout_s=10)["osds"])
            pgs = mon.json({"prefix": "pg dump", "dumpcontents": ["pgs"]}, target="mgr", timeout_s=10)
            stats = pgs["pg_stats"] if isinstance(pgs, dict) else pgs
            return bool(stats) and all(p["state"] == "active+clean" and p["reported_epoch"] >= booted
                                       for p in stats)
        # Twice, 2 s apart, for the same reason.
        wait_for("HEALTH_OK, quorum, all OSDs up and all PGs active+clean (reported after the last OSD boot)",
                 lambda: whole() and pgs_fresh_and_clean() and time.sleep(2) is None and whole()
                 and pgs_fresh_and_clean(), deadline_s, 0.5)
        rest = max(1.0, deadline_s - (time.monotonic() - t0))
        wait_for("MDS active + standby-replay + standby",
                 lambda: sorted(c._mds_states().values()) ==
                 ["up:active", "up:standby", "up:standby-replay"], rest, 0.2)
        for n in lay.sites():
            wait_for(f"host{n}'s mount to answer",
                     lambda n=n: system.probe_path(lay.mount_point(n), 2.0) == "ok", rest, 0.2)
    took = round(time.monotonic() - t0, 2)
    log(f"cluster whole after {took} s")
    return {"healthy": True, "waited_s": took}
