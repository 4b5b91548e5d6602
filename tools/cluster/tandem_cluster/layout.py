"""Names and addresses of one harness instance: pure functions, no I/O.

An instance is identified by its `name` (a short prefix for every namespace and link it
creates) and its `base` directory (config, mon stores, sockets, logs and the mount points).
Two instances with different names and bases can run side by side: no address is ever
given to the root namespace, so equal subnets in two instances never meet.

    root netns:   bridge <name>-br, ports <name>-a, <name>-s1..3, <name>-h1..3 (no IP)
    <name>-admin  10.77.0.2        the operator's console: ceph CLI, rados helper
    <name>-siteN  10.77.0.(10+N)   mon.siteN, mgr.siteN, osd.(N-1), mds.siteN
    <name>-hostN  10.77.0.(20+N)   ceph-fuse client.hostN on <base>/mnt/hostN, the brokers

Site N "owns" host N: losing site N loses both namespaces.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SITES = 3
FS_NAME = "cephfs"
METADATA_POOL = "cephfs_metadata"
DATA_POOL = "cephfs_data"
POOL_SIZE = 3
POOL_MIN_SIZE = 2
PG_NUM = 8
# CRUSH bucket type that holds one replica each: the rule is built at mon mkfs time from
# osd_crush_chooseleaf_type, and 8 is "datacenter" in Ceph's default type list.
FAILURE_DOMAIN = "datacenter"
FAILURE_DOMAIN_TYPE_ID = 8
# The monitor refuses anything lower ("session_timeout must be at least 30s").
SESSION_TIMEOUT_S = 30
SESSION_AUTOCLOSE_S = 30
MON_V2_PORT = 3300
MON_V1_PORT = 6789

_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")
_SUBNET_RE = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")


class LayoutError(ValueError):
    pass


@dataclass(frozen=True)
class Layout:
    name: str = "tc"
    base: Path = Path("/var/tmp/tandem-cluster-tc")
    subnet: str = "10.77.0"  # the first three octets of a /24

    def __post_init__(self) -> None:
        # Link names are limited to 15 bytes by the kernel; "<name>-br" must fit.
        if not _NAME_RE.match(self.name):
            raise LayoutError(f"cluster name {self.name!r}: use 1-10 lowercase letters or digits, "
                              "starting with a letter")
        m = _SUBNET_RE.match(self.subnet)
        if not m or any(int(o) > 255 for o in m.groups()):
            raise LayoutError(f"subnet {self.subnet!r}: give the first three octets of a /24, "
                              "e.g. 10.77.0")
        if not Path(self.base).is_absolute():
            raise LayoutError(f"base {self.base}: must be an absolute path")
        # Admin sockets live in <base>/run; Ceph cannot bind a longer Unix socket path
        # (sun_path is 108 bytes) and says so only in the daemon's log.
        longest = len(str(self.run_dir / "client.host3.4194304.asok"))
        if longest > 107:
            raise LayoutError(f"base {self.base}: too long for the admin sockets under it "
                              f"({longest} > 107 bytes); choose a shorter --base")

    # --- namespaces and links -------------------------------------------------------------
    @property
    def bridge(self) -> str:
        return f"{self.name}-br"

    @property
    def admin_ns(self) -> str:
        return f"{self.name}-admin"

    @property
    def admin_link(self) -> str:
        return f"{self.name}-a"

    def site_ns(self, n: int) -> str:
        return f"{self.name}-site{n}"

    def host_ns(self, n: int) -> str:
        return f"{self.name}-host{n}"

    def site_link(self, n: int) -> str:
        return f"{self.name}-s{n}"

    def host_link(self, n: int) -> str:
        return f"{self.name}-h{n}"

    def all_namespaces(self) -> list[str]:
        return ([self.admin_ns] + [self.site_ns(n) for n in self.sites()]
                + [self.host_ns(n) for n in self.sites()])

    def all_links(self) -> list[str]:
        return ([self.admin_link] + [self.site_link(n) for n in self.sites()]
                + [self.host_link(n) for n in self.sites()])

    def owns_namespace(self, ns: str) -> bool:
        """True for a namespace this instance creates (down removes exactly these)."""
        return ns in self.all_namespaces()

    @staticmethod
    def sites() -> range:
        return range(1, SITES + 1)

    # --- addresses --------------------------------------------------------------------------
    @property
    def cidr(self) -> str:
        return f"{self.subnet}.0/24"

    @property
    def admin_ip(self) -> str:
        return f"{self.subnet}.2"

    def site_ip(self, n: int) -> str:
        return f"{self.subnet}.{10 + n}"

    def host_ip(self, n: int) -> str:
        return f"{self.subnet}.{20 + n}"

    def mon_addrvec(self, n: int) -> str:
        ip = self.site_ip(n)
        return f"[v2:{ip}:{MON_V2_PORT},v1:{ip}:{MON_V1_PORT}]"

    # --- daemons ----------------------------------------------------------------------------
    @staticmethod
    def mon_name(n: int) -> str:
        return f"site{n}"

    @staticmethod
    def mds_name(n: int) -> str:
        return f"site{n}"

    @staticmethod
    def mgr_name(n: int) -> str:
        return f"site{n}"

    @staticmethod
    def osd_id(n: int) -> int:
        return n - 1

    @staticmethod
    def client_name(n: int) -> str:
        return f"host{n}"

    # --- files ------------------------------------------------------------------------------
    @property
    def conf(self) -> Path:
        return Path(self.base) / "ceph.conf"

    @property
    def state_file(self) -> Path:
        return Path(self.base) / "cluster.json"

    @property
    def run_dir(self) -> Path:
        return Path(self.base) / "run"

    @property
    def log_dir(self) -> Path:
        return Path(self.base) / "log"

    def mount_point(self, n: int) -> Path:
        return Path(self.base) / "mnt" / f"host{n}"

    def daemon_asok(self, kind: str, ident: str | int) -> Path:
        return self.run_dir / f"{kind}.{ident}.asok"

    def site_of_namespace(self, ns: str) -> int | None:
        for n in self.sites():
            if ns in (self.site_ns(n), self.host_ns(n)):
                return n
        return None


def default_layout(name: str | None = None, base: str | None = None,
                   subnet: str | None = None) -> Layout:
    name = name or "tc"
    return Layout(name=name, base=Path(base) if base else Path(f"/var/tmp/tandem-cluster-{name}"),
                  subnet=subnet or "10.77.0")
