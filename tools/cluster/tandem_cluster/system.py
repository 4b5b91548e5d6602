"""The host-side mechanics: network namespaces, the bridge, processes found by namespace,
FUSE mounts. Everything here is plain Linux (iproute2, nsenter, umount), nothing Ceph.

PITFALL: `ip netns exec NS cmd` does more than enter the network namespace: it also unshares
the mount namespace and remounts /sys for NS. A ceph-fuse mount made under it exists only in
that private mount namespace and is invisible to every other process, including a broker
started by a second `ip netns exec`. So every process the harness starts goes through
`nsenter --net=/run/netns/NS`, which switches the network namespace only: mounts made or used
there are the root mount namespace's, visible from the root side and from every host.
"""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterable, Sequence

NETNS_DIR = Path("/run/netns")


class SystemError_(RuntimeError):
    """A host command failed; the message names the command and its stderr."""


def run(cmd: Sequence[str], check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    p = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise SystemError_(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["ip", *args], check=check)


def in_netns(ns: str, cmd: Sequence[str]) -> list[str]:
    """The argv that runs cmd in network namespace ns and the caller's mount namespace."""
    return ["nsenter", f"--net={NETNS_DIR / ns}", "--", *cmd]


# --- namespaces and links -----------------------------------------------------------------

def netns_exists(ns: str) -> bool:
    return (NETNS_DIR / ns).exists()


def list_netns() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def create_bridge(bridge: str) -> None:
    ip("link", "add", bridge, "type", "bridge")
    # No STP and no forwarding delay: a port that comes back (heal) forwards at once.
    run(["ip", "link", "set", bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
    ip("link", "set", bridge, "up")


def add_namespace_on_bridge(ns: str, link: str, bridge: str, address_cidr: str) -> None:
    """Create ns with one interface eth0 = address_cidr, cabled to bridge via link."""
    ip("netns", "add", ns)
    peer = f"{link}p"
    ip("link", "add", link, "type", "veth", "peer", "name", peer)
    ip("link", "set", peer, "netns", ns)
    ip("-n", ns, "link", "set", peer, "name", "eth0")
    ip("-n", ns, "addr", "add", address_cidr, "dev", "eth0")
    ip("-n", ns, "link", "set", "eth0", "up")
    ip("-n", ns, "link", "set", "lo", "up")
    ip("link", "set", link, "master", bridge)
    ip("link", "set", link, "up")


def set_link(link: str, up: bool) -> None:
    ip("link", "set", link, "up" if up else "down")


def link_is_up(link: str) -> bool:
    try:
        flags = int(Path("/sys/class/net", link, "flags").read_text(), 16)
    except FileNotFoundError:
        return False
    return bool(flags & 0x1)  # IFF_UP


def delete_link(link: str) -> None:
    if link_exists(link):
        ip("link", "del", link, check=False)


def delete_netns(ns: str) -> None:
    if netns_exists(ns):
        ip("netns", "del", ns, check=False)


# --- processes by namespace -----------------------------------------------------------------

def _netns_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def pids_by_netns(namespaces: Iterable[str]) -> dict[str, list[int]]:
    """{ns: pids} for every live process whose network namespace is /run/netns/<ns> (what
    `ip netns pids` does), all namespaces in one pass over /proc."""
    wanted = {}
    for ns in namespaces:
        ident = _netns_id(f"{NETNS_DIR}/{ns}")
        if ident is not None:
            wanted[ident] = ns
    found: dict[str, list[int]] = {ns: [] for ns in namespaces}
    if not wanted:
        return found
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            ns = wanted.get(_netns_id(f"/proc/{entry.name}/ns/net"))
            if ns is not None:
                found[ns].append(int(entry.name))
    return found


def pids_in_netns(ns: str) -> list[int]:
    return pids_by_netns([ns])[ns]


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def process_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def ancestors(pid: int) -> set[int]:
    """pid and every process above it up to init."""
    chain = set()
    while pid > 1 and pid not in chain:
        chain.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return chain


def is_alive(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pids_named(ns: str, comm: str) -> list[int]:
    return [p for p in pids_in_netns(ns) if process_name(p) == comm and is_alive(p)]


def kill_all(pids: Iterable[int], sig: int = signal.SIGKILL) -> list[int]:
    sent = []
    for pid in pids:
        try:
            os.kill(pid, sig)
            sent.append(pid)
        except ProcessLookupError:
            pass
    return sent


def kill_namespaces(namespaces: Sequence[str], deadline_s: float = 10) -> list[dict]:
    """SIGKILL every process of these namespaces in one sweep, then sweep again until none is
    left (a process may fork between the scan and the kill). Returns what was killed."""
    killed: dict[int, dict] = {}
    end = time.monotonic() + deadline_s
    while True:
        batch = [(ns, pid) for ns, pids in pids_by_netns(namespaces).items() for pid in pids
                 if pid != os.getpid() and is_alive(pid)]
        if not batch:
            break
        for ns, pid in batch:
            killed.setdefault(pid, {"pid": pid, "netns": ns, "comm": process_name(pid)})
        kill_all(pid for _, pid in batch)
        if time.monotonic() > end:
            raise SystemError_(f"processes in {', '.join(namespaces)} survive SIGKILL: "
                               f"{[pid for _, pid in batch]} (stuck in the kernel?)")
        time.sleep(0.02)
    return list(killed.values())


def wait_gone(pids: Iterable[int], deadline_s: float) -> list[int]:
    end = time.monotonic() + deadline_s
    left = [p for p in pids if is_alive(p)]
    while left and time.monotonic() < end:
        time.sleep(0.02)
        left = [p for p in left if is_alive(p)]
    return left


def wait_reaped(pids: Iterable[int], deadline_s: float) -> list[int]:
    end = time.monotonic() + deadline_s
    left = [p for p in pids if os.path.exists(f"/proc/{p}")]
    while left and time.monotonic() < end:
        time.sleep(0.02)
        left = [p for p in left if os.path.exists(f"/proc/{p}")]
    return left


def start_in_netns(ns: str, cmd: Sequence[str], log_path: Path, env: dict | None = None) -> int:
    """Start a long-running process in ns, detached (own session, stdio to a log), and return
    its pid. A shell starts it in the background and exits, so the daemon is reparented to
    init, which reaps it when it dies: a SIGKILLed daemon never lingers as our zombie."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = ["setsid", *in_netns(ns, cmd)]  # setsid and nsenter both exec: the pid stays
    p = subprocess.run(["/bin/sh", "-c", 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!',
                        "sh", str(log_path), *argv],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10,
                       env={**os.environ, **(env or {})})
    if p.returncode != 0 or not p.stdout.strip().isdigit():
        raise SystemError_(f"starting {cmd[0]} in {ns}: {p.stderr.strip()}")
    return int(p.stdout.strip())


# --- mounts -----------------------------------------------------------------------------------

def _unescape_mount_field(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mounts_under(base: Path) -> list[tuple[str, str]]:
    """(mount point, fs type) of every mount at or under base, deepest first. Read from
    /proc/self/mounts: a mount whose FUSE daemon died fails stat() with ENOTCONN, so
    `mountpoint -q` cannot see it."""
    base_s = str(base).rstrip("/")
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mp = _unescape_mount_field(fields[1])
        if mp == base_s or mp.startswith(base_s + "/"):
            found.append((mp, fields[2]))
    return sorted(found, key=lambda m: -len(m[0]))


def is_mounted(path: Path) -> bool:
    return any(mp == str(path) for mp, _ in mounts_under(path))


def unmount(path: str) -> None:
    """Detach a mount even when its FUSE daemon is dead or unreachable: a plain umount of a
    partitioned ceph-fuse can hang, a lazy one never does."""
    p = run(["umount", "-l", path], check=False, timeout=10)
    if p.returncode != 0 and is_mounted(Path(path)):
        raise SystemError_(f"umount -l {path}: {p.stderr.strip()}")


def probe_path(path: Path, timeout_s: float = 2.0) -> str:
    """'ok', or what stat(2) said, asked by a child so a hung mount cannot hang us. A stat
    stuck on a FUSE mount (MDS failover, partition) ignores even SIGKILL until the request
    ends, so on timeout the child is killed and left for init, never waited for."""
    p = subprocess.Popen(["stat", "-c", "%i", str(path)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = p.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        p.kill()  # subprocess reaps it later, whenever it ends
        return f"hung (no answer in {timeout_s:g} s)"
    if p.returncode == 0:
        return "ok"
    return err.strip().split(": ", 1)[-1] or f"stat exit {p.returncode}"


def errno_name(e: int) -> str:
    return errno.errorcode.get(e, str(e))
