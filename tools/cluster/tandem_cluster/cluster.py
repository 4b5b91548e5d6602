"""Bring-up, tear-down, status and the description file of one harness instance.

The description (<base>/cluster.json, also printed by `up`) is the contract with the tools
built on the harness (tandem-drill --cluster, tandemctl fscheck tests): see docs/cephfs.md,
"The description". Processes are never tracked by pid files: a daemon is "the ceph-osd in
namespace <name>-site2", found by scanning /proc, so a restarted daemon or a crashed run
cannot leave a stale pid behind.
"""
from __future__ import annotations

import concurrent.futures
import fcntl
import json
import os
import shutil
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from . import ceph_conf, ceph_io, system
from . import layout as L

PACKAGES = ["ceph-mon", "ceph-mgr", "ceph-osd", "ceph-mds", "ceph-fuse", "ceph-common",
            "iproute2", "util-linux", "fuse3"]
MARKER = ".tandem-cluster"  # down deletes a base directory only if it holds this file
DESCRIPTION_VERSION = 1


class ClusterError(RuntimeError):
    """What failed, where, and what to do; printed as is by the command."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=os.sys.stderr, flush=True)


def wait_for(what: str, check, deadline_s: float, interval_s: float = 0.1):
    """Poll check() until it returns a true value; ClusterError naming `what` on timeout."""
    end = time.monotonic() + deadline_s
    last_error = None
    while True:
        try:
            value = check()
            if value:
                return value
        except ClusterError:
            raise
        except Exception as e:  # noqa: BLE001 - any other failure of a probe means "not yet"
            last_error = e
        if time.monotonic() > end:
            detail = f" (last error: {last_error})" if last_error else ""
            raise ClusterError(f"timed out after {deadline_s:g} s waiting for {what}{detail}")
        time.sleep(interval_s)


# --- packages -------------------------------------------------------------------------------

def missing_packages(packages=PACKAGES) -> list[str]:
    missing = []
    for p in packages:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        if "install ok installed" not in r.stdout:
            missing.append(p)
    return missing


def ensure_packages(packages=PACKAGES) -> list[str]:
    missing = missing_packages(packages)
    if missing:
        log(f"installing Debian packages: {' '.join(missing)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
            p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
            if p.returncode != 0:
                raise ClusterError(f"{' '.join(cmd)} failed (exit {p.returncode}):\n"
                                   f"{p.stdout[-2000:]}\ninstall them by hand and run up again")
    return missing


def preflight() -> list[str]:
    """Why this machine cannot run the harness (empty: it can)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root: namespaces, the bridge and FUSE mounts need root")
    if not os.path.exists("/dev/fuse"):
        problems.append("no /dev/fuse: ceph-fuse cannot mount")
    if shutil.which("ip") is None or shutil.which("nsenter") is None:
        problems.append("ip (iproute2) or nsenter (util-linux) is missing")
    else:
        probe = f"tcprobe{os.getpid() % 100000}"
        r = system.run(["ip", "netns", "add", probe], check=False)
        if r.returncode != 0:
            problems.append(f"cannot create a network namespace: {r.stderr.strip()}")
        else:
            system.run(["ip", "netns", "del", probe], check=False)
    return problems


# --- the description file -------------------------------------------------------------------

class Cluster:
    """One harness instance. Methods that change the cluster take the instance lock
    (<base>/.lock, flock) so two commands never interleave their changes."""

    def __init__(self, lay: L.Layout):
        self.lay = lay

    # state -----------------------------------------------------------------------------
    def describe(self) -> dict:
        try:
            return json.loads(self.lay.state_file.read_text())
        except FileNotFoundError:
            raise ClusterError(f"no cluster {self.lay.name!r}: {self.lay.state_file} does not "
                               f"exist; run `tandem-cluster --name {self.lay.name} up`") from None

    def _write_description(self, desc: dict) -> None:
        tmp = self.lay.state_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(desc, indent=2) + "\n")
        os.replace(tmp, self.lay.state_file)

    @contextmanager
    def locked(self):
        Path(self.lay.base).mkdir(parents=True, exist_ok=True)
        with open(Path(self.lay.base) / ".lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def mon_session(self, connect_timeout_s: float = 30) -> ceph_io.MonSession:
        return ceph_io.MonSession(self.lay.admin_ns, self.lay.conf, connect_timeout_s)

    # up ---------------------------------------------------------------------------------
    def up(self, objectstore_mib: int = 1024, stock_timers: bool = False,
           install: bool = True, keep_on_failure: bool = False) -> dict:
        """Create the cluster from nothing and return its description. A failed bring-up is
        torn down (keep_on_failure leaves it, logs in <base>/log, for a look)."""
        t0 = time.monotonic()
        problems = preflight()
        if problems:
            raise ClusterError("cannot run the cluster here: " + "; ".join(problems))
        installed = ensure_packages() if install else []
        t_install = time.monotonic()
        if self.lay.state_file.exists() and any(
                system.pids_in_netns(ns) for ns in self.lay.all_namespaces()):
            raise ClusterError(f"cluster {self.lay.name!r} is already up ({self.lay.state_file}); "
                               f"run `tandem-cluster --name {self.lay.name} down` first")
        self.down(quiet=True)  # leftovers of a crashed run
        base = Path(self.lay.base)
        base.mkdir(parents=True)
        (base / MARKER).write_text("created by tools/cluster/tandem-cluster; `down` removes it\n")
        with self.locked():
            try:
                desc = self._build(objectstore_mib, stock_timers)
            except BaseException:
                if not keep_on_failure:
                    log(f"bring-up failed; tearing down (--keep-on-failure keeps {base}/log)")
                    self.down(quiet=True)
                raise
            desc["timings_s"] = {"install": round(t_install - t0, 2),
                                 "up": round(time.monotonic() - t_install, 2)}
            desc["installed_packages"] = installed
            self._write_description(desc)
        log(f"cluster {self.lay.name!r} up in {desc['timings_s']['up']} s")
        return desc

    def _build(self, objectstore_mib: int, stock_timers: bool) -> dict:
        lay, base = self.lay, Path(self.lay.base)
        for d in ("run", "log", "mon", "mgr", "osd", "mds", "mnt"):
            (base / d).mkdir()
        fsid = str(uuid.uuid4())
        lay.conf.write_text(ceph_conf.render(lay, fsid, objectstore_mib << 20, stock_timers))
        self._make_network()
        self._make_mons(fsid)  # mkfs looks for an address in public_network: after the network
        for n in lay.sites():
            self._start_mon(n)
        with self.mon_session() as mon:
            log("mons in quorum")
            osd_uuids = {n: str(uuid.uuid4()) for n in lay.sites()}
            for n in lay.sites():
                mon.command({"prefix": "osd new", "uuid": osd_uuids[n], "id": lay.osd_id(n)})
            self._parallel(lambda n: self._mkfs_osd(n, osd_uuids[n]), lay.sites())
            for n in lay.sites():
                self._start_osd(n)
                self._start_mgr(n)
            self._make_fs(mon)
            for n in lay.sites():
                self._start_mds(n)
            wait_for("3 OSDs up", lambda: mon.json({"prefix": "osd stat"})["num_up_osds"] == 3,
                     120, 0.2)
            log("OSDs up")
            wait_for("an active MDS", self.active_mds, 120, 0.1)
            log("MDS active")
            self._parallel(self._mount, lay.sites())
            self._parallel(self._probe_write, lay.sites())
            log("mounts writable")
            wait_for("MDS standby-replay and standby",
                     lambda: sorted(self._mds_states().values()) ==
                     ["up:active", "up:standby", "up:standby-replay"], 60, 0.2)
        return self._description(fsid, objectstore_mib, stock_timers)

    @staticmethod
    def _parallel(fn, items) -> list:
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as ex:
            return list(ex.map(fn, items))

    def _make_network(self) -> None:
        lay = self.lay
        system.create_bridge(lay.bridge)
        system.add_namespace_on_bridge(lay.admin_ns, lay.admin_link, lay.bridge,
                                       f"{lay.admin_ip}/24")
        for n in lay.sites():
            system.add_namespace_on_bridge(lay.site_ns(n), lay.site_link(n), lay.bridge,
                                           f"{lay.site_ip(n)}/24")
            system.add_namespace_on_bridge(lay.host_ns(n), lay.host_link(n), lay.bridge,
                                           f"{lay.host_ip(n)}/24")

    def _make_mons(self, fsid: str) -> None:
        lay, base = self.lay, Path(self.lay.base)
        # cephx is off, but ceph-mon --mkfs still wants a keyring with a mon. key.
        system.run(["ceph-authtool", "--create-keyring", str(base / "keyring"), "--gen-key",
                    "-n", "mon.", "--cap", "mon", "allow *"])
        addv = []
        for n in lay.sites():
            addv += ["--addv", lay.mon_name(n), lay.mon_addrvec(n)]
        system.run(["monmaptool", "--create", "--fsid", fsid, *addv, str(base / "monmap")])
        self._parallel(lambda n: system.run(system.in_netns(lay.site_ns(n), [
            "ceph-mon", "-c", str(lay.conf), "--mkfs", "-i", lay.mon_name(n),
            "--monmap", str(base / "monmap"), "--keyring", str(base / "keyring")]), timeout=60),
            lay.sites())

    def _daemon(self, n: int, kind: str, ident, *extra: str) -> int:
        return system.start_in_netns(
            self.lay.site_ns(n),
            [f"ceph-{kind}", "-f", "-c", str(self.lay.conf), "-i", str(ident), *extra],
            self.lay.log_dir / f"{kind}.{ident}.out")

    def _start_mon(self, n: int) -> int:
        return self._daemon(n, "mon", self.lay.mon_name(n))

    def _start_mgr(self, n: int) -> int:
        (Path(self.lay.base) / "mgr" / self.lay.mgr_name(n)).mkdir(exist_ok=True)
        return self._daemon(n, "mgr", self.lay.mgr_name(n))

    def _start_osd(self, n: int) -> int:
        return self._daemon(n, "osd", self.lay.osd_id(n))

    def _start_mds(self, n: int) -> int:
        (Path(self.lay.base) / "mds" / self.lay.mds_name(n)).mkdir(exist_ok=True)
        return self._daemon(n, "mds", self.lay.mds_name(n))

    def _mkfs_osd(self, n: int, osd_uuid: str) -> None:
        lay = self.lay
        osd_dir = Path(lay.base) / "osd" / str(lay.osd_id(n))
        osd_dir.mkdir()
        system.run(system.in_netns(lay.site_ns(n), [
            "ceph-osd", "-c", str(lay.conf), "-i", str(lay.osd_id(n)), "--mkfs",
            "--osd-uuid", osd_uuid]), timeout=120)

    def _make_fs(self, mon: ceph_io.MonSession) -> None:
        for pool in (L.METADATA_POOL, L.DATA_POOL):
            mon.command({"prefix": "osd pool create", "pool": pool, "pg_num": L.PG_NUM,
                         "pgp_num": L.PG_NUM})
        mon.command({"prefix": "fs new", "fs_name": L.FS_NAME, "metadata": L.METADATA_POOL,
                     "data": L.DATA_POOL})
        for var, val in (("allow_standby_replay", "true"),
                         ("session_timeout", str(L.SESSION_TIMEOUT_S)),
                         ("session_autoclose", str(L.SESSION_AUTOCLOSE_S))):
            mon.command({"prefix": "fs set", "fs_name": L.FS_NAME, "var": var, "val": val})

    # mounts -------------------------------------------------------------------------------
    def fuse_pid(self, n: int) -> int | None:
        pids = system.pids_named(self.lay.host_ns(n), "ceph-fuse")
        return pids[0] if pids else None

    def client_identity(self, n: int, pid: int) -> dict:
        """The MDS session id (client global id) and address of host n's ceph-fuse, asked of
        the ceph-fuse itself so it is known before any fault makes the MDS forget it."""
        asok = self.lay.run_dir / f"client.{self.lay.client_name(n)}.{pid}.asok"
        st = wait_for(f"the admin socket of host{n}'s ceph-fuse ({asok})",
                      lambda: ceph_io.try_admin_socket(asok, {"prefix": "status"}), 30)
        return {"client_id": int(st["id"]), "client_addr": st.get("inst_str", "").split(" ", 1)[-1],
                "fuse_pid": pid, "fuse_asok": str(asok)}

    def _mount(self, n: int, deadline_s: float = 60) -> dict:
        """Mount host n. ceph-fuse gives up at once ("probably no MDS server is up?") when it
        starts during an MDS failover, so a failed start is retried until the deadline."""
        lay = self.lay
        mp = lay.mount_point(n)
        mp.mkdir(parents=True, exist_ok=True)
        out = lay.log_dir / f"fuse.host{n}.out"
        end = time.monotonic() + deadline_s
        while True:
            pid = system.start_in_netns(
                lay.host_ns(n),
                ["ceph-fuse", "-f", "-c", str(lay.conf), "--id", lay.client_name(n),
                 "--client_fs", L.FS_NAME, str(mp)], out)
            while system.is_alive(pid) and not system.is_mounted(mp) and time.monotonic() < end:
                time.sleep(0.05)
            if system.is_mounted(mp):
                return self.client_identity(n, pid)
            if system.is_alive(pid):
                system.kill_all([pid])
            if time.monotonic() >= end:
                raise ClusterError(f"host{n}: ceph-fuse did not mount {mp} in {deadline_s:g} s; "
                                   f"see {out} and `tandem-cluster status`")
            time.sleep(0.5)

    def _probe_write(self, n: int) -> None:
        """Write and fsync a file through host n's mount from inside host n: proves the mount
        is usable by the host's processes and that the data PGs are active."""
        mp = self.lay.mount_point(n)
        probe = mp / f".probe.host{n}"
        system.run(system.in_netns(self.lay.host_ns(n), [
            "/usr/bin/python3", "-c",
            "import os,sys; fd=os.open(sys.argv[1],os.O_WRONLY|os.O_CREAT|os.O_TRUNC,0o644); "
            "os.write(fd,b'probe'); os.fsync(fd); os.close(fd); os.unlink(sys.argv[1])",
            str(probe)]), timeout=120)

    # MDS ----------------------------------------------------------------------------------
    def _mds_states(self) -> dict:
        """{mds name: state} from each MDS's admin socket; only MDSes that answer."""
        states = {}
        for n in self.lay.sites():
            name = self.lay.mds_name(n)
            st = ceph_io.try_admin_socket(self.lay.daemon_asok("mds", name), {"prefix": "status"},
                                          1.0)
            if isinstance(st, dict) and "state" in st:
                states[name] = st["state"]
        return states

    def active_mds(self) -> str | None:
        for name, state in self._mds_states().items():
            if state == "up:active":
                return name
        return None

    # description --------------------------------------------------------------------------
    def _description(self, fsid: str, objectstore_mib: int, stock_timers: bool) -> dict:
        lay = self.lay
        hosts = []
        for n in lay.sites():
            pid = self.fuse_pid(n)
            hosts.append({"host": n, "site": n, "netns": lay.host_ns(n), "ip": lay.host_ip(n),
                          "link": lay.host_link(n), "mount": str(lay.mount_point(n)),
                          "client_name": f"client.{lay.client_name(n)}",
                          **self.client_identity(n, pid)})
        return {
            "version": DESCRIPTION_VERSION,
            "name": lay.name, "base": str(lay.base), "conf": str(lay.conf), "fsid": fsid,
            "bridge": lay.bridge, "subnet": lay.cidr,
            "admin": {"netns": lay.admin_ns, "ip": lay.admin_ip, "link": lay.admin_link},
            "fs_name": L.FS_NAME,
            "pools": {p: {"size": L.POOL_SIZE, "min_size": L.POOL_MIN_SIZE, "pg_num": L.PG_NUM}
                      for p in (L.METADATA_POOL, L.DATA_POOL)},
            "crush_failure_domain": L.FAILURE_DOMAIN,
            "objectstore": {"type": "memstore", "bytes_per_osd": objectstore_mib << 20,
                            "durable": False},
            "session_timeout_s": L.SESSION_TIMEOUT_S, "session_autoclose_s": L.SESSION_AUTOCLOSE_S,
            "timers": ({} if stock_timers else
                       {k: {"value": v[0], "ceph_default": v[1]} for k, v in
                        ceph_conf.TIMERS.items()}),
            "sites": [{"site": n, "netns": lay.site_ns(n), "ip": lay.site_ip(n),
                       "link": lay.site_link(n), "crush_bucket": f"site{n}",
                       "mon": lay.mon_name(n), "mgr": lay.mgr_name(n), "osd": lay.osd_id(n),
                       "mds": lay.mds_name(n),
                       "asok": {k: str(lay.daemon_asok(k, i)) for k, i in
                                (("mon", lay.mon_name(n)), ("mgr", lay.mgr_name(n)),
                                 ("osd", lay.osd_id(n)), ("mds", lay.mds_name(n)))}}
                      for n in lay.sites()],
            "hosts": hosts,
        }

    def refresh_host(self, n: int, identity: dict) -> dict:
        desc = self.describe()
        desc["hosts"][n - 1].update(identity)
        self._write_description(desc)
        return desc["hosts"][n - 1]

    # down ---------------------------------------------------------------------------------
    def down(self, quiet: bool = False) -> dict:
        """Remove everything of this instance that exists, whatever state a crashed run left:
        processes (by namespace, and any process naming the base dir), mounts, namespaces,
        links, the bridge, the base dir. Idempotent."""
        t0 = time.monotonic()
        lay, base = self.lay, Path(self.lay.base)
        if base.exists() and any(base.iterdir()) and not (base / MARKER).exists():
            raise ClusterError(f"{base} exists but was not made by tandem-cluster (no {MARKER}); "
                               "refusing to delete it: choose another --base or remove it yourself")
        namespaces = [ns for ns in lay.all_namespaces() if system.netns_exists(ns)]
        killed = system.kill_namespaces(namespaces)
        strays = self._processes_naming_base()
        system.kill_all(strays)
        left = system.wait_gone([k["pid"] for k in killed] + strays, 10)
        if left:
            raise ClusterError(f"processes {left} survive SIGKILL; see /proc/<pid>/stack")
        # Dead daemons are init's children; give it a moment to reap them, so that `ps`
        # right after down shows none (zombies hold no resources, so no error if it lags).
        system.wait_reaped([k["pid"] for k in killed] + strays, 5)
        mounts = system.mounts_under(base)
        for mp, _ in mounts:
            system.unmount(mp)
        for ns in namespaces:
            system.delete_netns(ns)
        for link in lay.all_links() + [lay.bridge]:
            system.delete_link(link)
        if base.exists():
            shutil.rmtree(base)
        report = {"killed": len(killed) + len(strays), "unmounted": [m for m, _ in mounts],
                  "namespaces_removed": namespaces, "took_s": round(time.monotonic() - t0, 2)}
        if not quiet:
            log(f"cluster {lay.name!r} down in {report['took_s']} s")
        return report

    def _processes_naming_base(self) -> list[int]:
        """Processes outside the namespaces that name BASE in their command line (a ceph CLI
        left by a crashed run), except this process and its ancestors (`timeout 60
        tandem-cluster --base BASE down` must not kill its own timeout)."""
        base = str(self.lay.base)
        spared = system.ancestors(os.getpid())
        found = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and int(entry.name) not in spared \
                    and system.is_alive(int(entry.name)):
                if any(base in arg for arg in system.process_cmdline(int(entry.name))):
                    found.append(int(entry.name))
        return found

    def leftovers(self) -> dict:
        """What of this instance still exists (all empty after a good down)."""
        lay = self.lay
        return {
            "namespaces": [ns for ns in lay.all_namespaces() if system.netns_exists(ns)],
            "links": [lk for lk in lay.all_links() + [lay.bridge] if system.link_exists(lk)],
            "mounts": [m for m, _ in system.mounts_under(Path(lay.base))],
            "processes": self._processes_naming_base(),
            "files": [str(lay.base)] if Path(lay.base).exists() else [],
        }

    # status -------------------------------------------------------------------------------
    def status(self, cluster_view: bool = True) -> dict:
        """What runs where, from /proc, /sys and the admin sockets (fast, works during any
        fault); with cluster_view, the mons' own summary too (needs a mon quorum)."""
        lay = self.lay
        desc = self.describe()
        procs = system.pids_by_netns(lay.all_namespaces())

        def named(ns: str, comm: str) -> list[int]:
            return [p for p in procs[ns] if system.process_name(p) == comm and system.is_alive(p)]
        sites = []
        for n in lay.sites():
            ns = lay.site_ns(n)
            daemons = {}
            for kind, ident in (("mon", lay.mon_name(n)), ("mgr", lay.mgr_name(n)),
                                ("osd", lay.osd_id(n)), ("mds", lay.mds_name(n))):
                pids = named(ns, f"ceph-{kind}")
                d = {"name": f"{kind}.{ident}", "pid": pids[0] if pids else None}
                if pids and kind in ("mon", "osd", "mds"):
                    st = ceph_io.try_admin_socket(lay.daemon_asok(kind, ident),
                                                  {"prefix": "mon_status" if kind == "mon"
                                                   else "status"}, 1.0)
                    if isinstance(st, dict):
                        d["state"] = st.get("state")
                daemons[kind] = d
            sites.append({"site": n, "link_up": system.link_is_up(lay.site_link(n)),
                          "daemons": daemons})
        hosts = []
        for n in lay.sites():
            fuse = named(lay.host_ns(n), "ceph-fuse")
            mp = lay.mount_point(n)
            hosts.append({"host": n, "link_up": system.link_is_up(lay.host_link(n)),
                          "fuse_pid": fuse[0] if fuse else None,
                          "client_id": desc["hosts"][n - 1]["client_id"],
                          "mounted": system.is_mounted(mp),
                          "mount_answers": system.probe_path(mp, 1.0),
                          "processes": len(procs[lay.host_ns(n)])})
        out = {"name": lay.name, "active_mds": self.active_mds(), "sites": sites, "hosts": hosts}
        if cluster_view:
            out["cluster"] = self._cluster_view()
        return out

    def _cluster_view(self) -> dict:
        try:
            with self.mon_session(5) as mon:
                st = mon.json({"prefix": "status"}, timeout_s=5)
        except ceph_io.CephError as e:
            return {"error": f"no answer from the mons: {e}"}
        fsmap = st.get("fsmap", {})
        return {"health": st["health"]["status"],
                "checks": sorted(st["health"].get("checks", {})),
                "quorum": st.get("quorum_names"),
                "osds_up": st["osdmap"]["num_up_osds"], "osds_in": st["osdmap"]["num_in_osds"],
                "pgs": {s["state_name"]: s["count"] for s in st["pgmap"].get("pgs_by_state", [])},
                "mds": [{"name": m.get("name"), "status": m.get("status")}
                        for m in fsmap.get("by_rank", [])],
                "mds_standby": fsmap.get("up:standby", 0)}
