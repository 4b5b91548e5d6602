#!/usr/bin/python3
"""The harness's pure parts, without root or Ceph: names and addresses, the generated
ceph.conf, command-line splitting. Prints PASS/FAIL per case; exit 1 if any failed."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "cluster"))
sys.dont_write_bytecode = True

from tandem_cluster import ceph_conf, cli  # noqa: E402
from tandem_cluster.layout import Layout, LayoutError, default_layout  # noqa: E402


def every_link_name_fits_the_kernel_limit():
    lay = default_layout("abcdefghij")  # the longest name allowed
    for link in lay.all_links() + [lay.bridge] + [f"{lay.host_link(3)}p"]:
        assert len(link) <= 15, link


def _refused(field: str, values, reason: str) -> None:
    for value in values:
        try:
            Layout(**{field: value})
        except LayoutError as e:
            assert reason in str(e), e
        else:
            raise AssertionError(f"{field} {value!r} accepted")


def bad_names_and_subnets_are_refused_with_the_reason():
    _refused("name", ("", "Tc", "1tc", "abcdefghijk", "t-c"), "cluster name")
    _refused("subnet", ("10.77", "10.77.0.0", "10.300.0"), "subnet")
    _refused("base", (Path("relative"), Path("/" + "d" * 90)), "base")


def addresses_are_distinct_and_inside_the_subnet():
    lay = default_layout("tc", subnet="10.77.5")
    ips = [lay.admin_ip] + [lay.site_ip(n) for n in lay.sites()] + [lay.host_ip(n) for n in lay.sites()]
    assert len(set(ips)) == len(ips)
    assert all(ip.startswith("10.77.5.") for ip in ips)
    assert lay.site_of_namespace("tc-host2") == 2 and lay.site_of_namespace("tc-site3") == 3
    assert lay.site_of_namespace("tc-admin") is None


def conf_places_one_replica_per_site():
    lay = default_layout("tc")
    conf = ceph_conf.render(lay, "fsid-1")
    assert "osd_crush_chooseleaf_type = 8" in conf
    for n in lay.sites():
        assert f"[osd.{n - 1}]\ncrush_location = root=default datacenter=site{n} host=site{n}-node" in conf
    assert "osd_pool_default_size = 3" in conf and "osd_pool_default_min_size = 2" in conf
    assert conf.count("[v2:10.77.0.1") == 3  # three mons, one per site address


def stock_timers_leave_ceph_defaults():
    lay = default_layout("tc")
    tuned, stock = ceph_conf.render(lay, "f"), ceph_conf.render(lay, "f", stock_timers=True)
    for option in ceph_conf.TIMERS:
        assert f"\n{option} = " in tuned, option
        assert f"\n{option} = " not in stock, option
    # The MDS check resets every beacon timer when a mon tick comes later than
    # grace - interval: the tuned values must leave room for one tick.
    t = {k: v[0] for k, v in ceph_conf.TIMERS.items()}
    assert t["mds_beacon_grace"] - t["mds_beacon_interval"] > t["mon_tick_interval"]


def exec_and_ceph_pass_their_arguments_verbatim():
    assert cli._split_verbatim(["ceph", "-s"]) == (["ceph"], ["-s"])
    assert cli._split_verbatim(["--name", "x", "exec", "2", "ls", "-l"]) == \
        (["--name", "x", "exec", "2"], ["ls", "-l"])
    assert cli._split_verbatim(["--base=/b", "status", "--local"]) == \
        (["--base=/b", "status", "--local"], [])


CASES = [every_link_name_fits_the_kernel_limit, bad_names_and_subnets_are_refused_with_the_reason,
         addresses_are_distinct_and_inside_the_subnet, conf_places_one_replica_per_site,
         stock_timers_leave_ceph_defaults, exec_and_ceph_pass_their_arguments_verbatim]


def main() -> int:
    failed = 0
    for case in CASES:
        try:
            case()
            print(f"PASS {case.__name__}")
        except AssertionError as e:
            failed += 1
            print(f"FAIL {case.__name__}: {e}")
    print(f"{len(CASES) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
