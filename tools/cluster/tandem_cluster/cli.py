"""Command line of tools/cluster/tandem-cluster. Every command prints one JSON document on
stdout (progress goes to stderr), so tools can parse it; exit 0 on success, 1 on failure
(with the reason on stderr), 2 on bad usage, 77 when this machine cannot run the cluster."""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import faults, system
from .cluster import Cluster, ClusterError, preflight
from .layout import LayoutError, default_layout

EXIT_UNSUPPORTED = 77  # CTest's SKIP_RETURN_CODE in tests/cluster

HOST_FAULTS = {
    "kill-site": (faults.kill_site, "links of site N and host N down, then SIGKILL every "
                                    "process of both"),
    "restart-site": (faults.restart_site, "links up, start site N's missing daemons, remount host N"),
    "partition-host": (faults.partition_host, "host N's link down (its processes live on)"),
    "heal-host": (faults.heal_host, "host N's link up"),
    "kill-fuse": (faults.kill_fuse, "SIGKILL host N's ceph-fuse (host death)"),
    "evict-host": (faults.evict_host, "fence host N: MDS evict + OSD blocklist of its client"),
    "remount": (faults.remount, "replace host N's mount with a new ceph-fuse (new client id)"),
    "kill-osd": (faults.kill_osd, "SIGKILL site N's ceph-osd"),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tandem-cluster",
        description="Tandem's CephFS test cluster: 3 sites (mon, mgr, osd, mds each) and 3 "
                    "broker hosts (a ceph-fuse mount each) in network namespaces on a bridge. "
                    "See docs/cephfs.md.")
    p.add_argument("--name", default=os.environ.get("TANDEM_CLUSTER_NAME"),
                   help="instance name, prefix of its namespaces and links (default tc; env "
                        "TANDEM_CLUSTER_NAME)")
    p.add_argument("--base", default=os.environ.get("TANDEM_CLUSTER_BASE"),
                   help="instance directory (default /var/tmp/tandem-cluster-NAME; env "
                        "TANDEM_CLUSTER_BASE)")
    p.add_argument("--subnet", default=os.environ.get("TANDEM_CLUSTER_SUBNET"),
                   help="first three octets of the /24 (default 10.77.0)")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="create the cluster from nothing; prints its description")
    up.add_argument("--osd-mib", type=int, default=1024, help="memstore size per OSD (1024)")
    up.add_argument("--stock-timers", action="store_true",
                    help="keep Ceph's default failure-detection timers (see docs/cephfs.md)")
    up.add_argument("--no-install", action="store_true", help="do not apt-get missing packages")
    up.add_argument("--keep-on-failure", action="store_true",
                    help="leave a failed bring-up in place (logs in BASE/log)")
    sub.add_parser("down", help="remove everything of the instance (idempotent)")
    sub.add_parser("describe", help="print the description written by up")
    st = sub.add_parser("status", help="processes, links, mounts, MDS states, cluster summary")
    st.add_argument("--local", action="store_true", help="skip the mons' summary")
    wh = sub.add_parser("wait-healthy", help="wait until quorum, all OSDs, all PGs "
                                             "active+clean, 3 MDS, all mounts answer")
    wh.add_argument("--timeout", type=float, default=180)
    sub.add_parser("leftovers", help="what of the instance still exists (for down's tests)")
    sub.add_parser("preflight", help="exit 77 with the reason if this machine cannot run it")
    ex = sub.add_parser("exec", help="run CMD in host N's (or siteN's, admin's) network "
                                     "namespace, with every mount visible")
    ex.add_argument("where", help="N or hostN, siteN, admin")
    ex.add_argument("argv", nargs="*", help="the command and its arguments, taken verbatim")
    ce = sub.add_parser("ceph", help="the ceph CLI, run in the admin namespace")
    ce.add_argument("argv", nargs="*", help="its arguments, taken verbatim")
    for name, (_, helptext) in HOST_FAULTS.items():
        f = sub.add_parser(name, help=helptext)
        f.add_argument("n", type=int, metavar="N")
        if name == "kill-site":
            f.add_argument("--keep-links", action="store_true",
                           help="leave the links up: peers get resets instead of silence")
    fm = sub.add_parser("fail-mds", help="fail the active MDS (mds fail; --kill: SIGKILL)")
    fm.add_argument("--kill", action="store_true")
    return p


def _namespace_of(c: Cluster, where: str) -> tuple[str, int | None]:
    w = where.removeprefix("host")
    if w.isdigit() and int(w) in c.lay.sites():
        return c.lay.host_ns(int(w)), int(w)
    if where.startswith("site") and where[4:].isdigit() and int(where[4:]) in c.lay.sites():
        return c.lay.site_ns(int(where[4:])), None
    if where == "admin":
        return c.lay.admin_ns, None
    raise ClusterError(f"exec: no host {where!r}; use 1-3, host1-3, site1-3 or admin")


def _exec(c: Cluster, where: str, argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise ClusterError("exec: give a command, e.g. `tandem-cluster exec 1 ls /`")
    ns, host = _namespace_of(c, where)
    if not system.netns_exists(ns):
        raise ClusterError(f"namespace {ns} does not exist: is the cluster up?")
    env = {**os.environ, "CEPH_CONF": str(c.lay.conf), "TANDEM_CLUSTER_NAME": c.lay.name,
           "TANDEM_CLUSTER_BASE": str(c.lay.base)}
    if host is not None:
        env.update(TANDEM_CLUSTER_HOST=str(host),
                   TANDEM_CLUSTER_MOUNT=str(c.lay.mount_point(host)))
    os.execvpe("nsenter", system.in_netns(ns, argv), env)


def _print(obj) -> None:
    try:
        json.dump(obj, sys.stdout, indent=2)
        sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        sys.stdout = None


_GLOBAL_OPTIONS = ("--name", "--base", "--subnet")


def _split_verbatim(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split off what `exec WHERE` and `ceph` pass on verbatim: argparse would take their
    options (`ceph -s`) for ours."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in _GLOBAL_OPTIONS:
            i += 2
        elif a.startswith(tuple(o + "=" for o in _GLOBAL_OPTIONS)):
            i += 1
        elif a == "ceph":
            return argv[:i + 1], argv[i + 1:]
        elif a == "exec":
            return argv[:i + 2], argv[i + 2:]
        else:
            break
    return argv, []


def main(argv: list[str]) -> int:
    ours, verbatim = _split_verbatim(argv)
    args = _parser().parse_args(ours)
    if verbatim:
        args.argv = verbatim
    try:
        c = Cluster(default_layout(args.name, args.base, args.subnet))
        if args.cmd == "preflight":
            problems = preflight()
            _print({"ok": not problems, "problems": problems})
            return EXIT_UNSUPPORTED if problems else 0
        if args.cmd == "up":
            problems = preflight()
            if problems:
                print("tandem-cluster: cannot run here: " + "; ".join(problems), file=sys.stderr)
                return EXIT_UNSUPPORTED
            _print(c.up(args.osd_mib, args.stock_timers, not args.no_install, args.keep_on_failure))
        elif args.cmd == "down":
            _print(c.down())
        elif args.cmd == "describe":
            _print(c.describe())
        elif args.cmd == "status":
            _print(c.status(cluster_view=not args.local))
        elif args.cmd == "wait-healthy":
            _print(faults.wait_healthy(c, args.timeout))
        elif args.cmd == "leftovers":
            left = c.leftovers()
            _print(left)
            return 1 if any(left.values()) else 0
        elif args.cmd == "exec":
            return _exec(c, args.where, args.argv)
        elif args.cmd == "ceph":
            return _exec(c, "admin", ["ceph", "-c", str(c.lay.conf), *args.argv])
        elif args.cmd == "fail-mds":
            _print(faults.fail_mds(c, kill=args.kill))
        elif args.cmd == "kill-site":
            _print(faults.kill_site(c, args.n, keep_links=args.keep_links))
        else:
            _print(HOST_FAULTS[args.cmd][0](c, args.n))
    except (ClusterError, LayoutError, system.SystemError_) as e:
        print(f"tandem-cluster {args.cmd}: {e}", file=sys.stderr)
        return 1
    return 0
