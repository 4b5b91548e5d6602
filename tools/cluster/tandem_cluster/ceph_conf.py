"""The cluster's ceph.conf, generated from a Layout. Pure: returns text.

Failure-detection timers are shortened from Ceph's defaults because this is a test cluster on
one bridge, where a missed heartbeat is a failure and not congestion. Each value is listed in
TIMERS with the stock default beside it, and docs/cephfs.md explains what each bounds.
"""
from __future__ import annotations

from . import layout as L

# option: (value used here, Ceph 16.2 default, what it bounds)
TIMERS = {
    "osd_heartbeat_interval": (1, 6, "OSD peer pings; an OSD of a lost site is noticed after grace"),
    # A site loss stalls every write whose PG has the lost OSD until the OSD is marked down,
    # the MDS's too: its eviction of the dead master's client (the fence) returns only once
    # its journal write went through (seen: blocklist committed at +4.6 s, eviction returned
    # at +8.8 s, 1.4 s after the OSD was marked down at grace 6 s + 1).
    "osd_heartbeat_grace": (3, 20, "seconds without a ping before peers report an OSD down"),
    # Two of three OSDs must report a third down by default; after a site loss the second
    # report came up to 4 s after the first on this loaded machine (seen: 45.6 s and 49.4 s).
    "mon_osd_min_down_reporters": (1, 2, "OSDs (on other hosts) whose reports mark an OSD down"),
    "mds_beacon_interval": (1, 4, "MDS beacons to the mons"),
    "mds_beacon_grace": (4, 15, "seconds without a beacon before the mons fail an MDS over"),
    # The mons check MDS beacons once per tick and, when a tick comes later than
    # grace - interval after the previous one, assume their own slowness and reset every
    # beacon timer: with the 5 s default tick and a grace of 6 s, no MDS is ever failed.
    "mon_tick_interval": (1, 5, "how often the mons check beacons and failure reports"),
    "mds_beacon_mon_down_grace": (3, 60, "after a mon quorum change (a site lost with its mon) "
                                          "MDS beacons are excused this long: the floor of an "
                                          "MDS failover when a site goes"),
    "mds_reconnect_timeout": (3, 45, "a new active MDS waits this long for clients of the dead "
                                      "one, e.g. a host lost with its site, to reconnect"),
    # Any mon's loss costs an election: a lost peon stops acking the leader's lease, a lost
    # leader stops extending it, and either side calls an election after 2x mon_lease. A
    # round that lacks the dead mon's ack ends only at mon_election_timeout, and after a site
    # loss the survivors often needed two rounds (seen: lease timeout at +3 s, rounds of 5 s
    # each, quorum at +13 s, which was the floor of every site-loss failover).
    "mon_lease": (1, 5, "mon leader lease; peons (and the leader, for acks) call an election "
                        "after 2x this"),
    "mon_election_timeout": (1, 5, "an election round that lacks a mon's ack ends after this; "
                                   "a site loss needs one or two rounds"),
    # Every daemon and client talks to one mon. When that mon's site goes silent the session
    # is declared dead only after the ping timeout, and until then OSD failure reports and
    # MDS beacons go nowhere: with the defaults a silent site's OSD was marked down 28 s
    # after it died although its peers' heartbeat grace was 6 s.
    "mon_client_ping_interval": (1, 10, "keepalive pings from every daemon and client to its mon"),
    "mon_client_ping_timeout": (2, 30, "a mon that answers no ping this long is abandoned "
                                       "for another (hunting)"),
    "mon_mgr_beacon_grace": (6, 30, "seconds before a silent mgr is replaced; until then the "
                                    "PG states the mons show are stale"),
    "mgr_stats_period": (1, 5, "how often OSD and PG stats reach the mgr (and `status`)"),
    # A client's lookup or open of a file that another client has just fsynced, closed or
    # renamed waits for a lock that is released only when the MDS flushes its journal, and
    # with nothing else to flush it the MDS does that once per tick: every first read across
    # clients (a slave reading holder.json, a new master reading the epoch and the journal)
    # took up to 5 s with the default (seen: 4.5-5.0 s per file, 0.6-1.0 s at a 1 s tick,
    # <= 0.2 s at 0.2 s, <= 56 ms at 0.05 s: the open of a file another client had just
    # renamed, e.g. the newest checkpoint at a takeover; idle MDS CPU unchanged within 0.1 %).
    "mds_tick_interval": (0.05, 5, "MDS housekeeping, including its periodic journal flush: "
                                   "the wait of another client's first read after an fsync"),
}


MGR_DISABLED_MODULES = ("diskprediction_local", "iostat", "nfs", "restful")


def _timer_lines(stock_timers: bool) -> str:
    if stock_timers:
        return "# stock Ceph failure-detection timers (--stock-timers)"
    return "\n".join(f"{k} = {v[0]}" for k, v in TIMERS.items())


def render(lay: L.Layout, fsid: str, objectstore_bytes: int = 1 << 30,
           stock_timers: bool = False) -> str:
    base = lay.base
    mon_hosts = ",".join(lay.mon_addrvec(n) for n in lay.sites())
    members = ",".join(lay.mon_name(n) for n in lay.sites())
    osd_sections = "\n".join(
        f"[osd.{lay.osd_id(n)}]\n"
        f"crush_location = root=default {L.FAILURE_DOMAIN}=site{n} host=site{n}-node\n"
        for n in lay.sites())
    return f"""\
# Generated by tools/cluster/tandem-cluster for instance {lay.name!r}; rewritten by every `up`.
[global]
fsid = {fsid}
mon_host = {mon_hosts}
mon_initial_members = {members}
public_network = {lay.cidr}
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_bind_ipv6 = false
run_dir = {base}/run
admin_socket = {base}/run/$name.asok
log_file = {base}/log/$name.log
keyring = {base}/keyring
osd_pool_default_size = {L.POOL_SIZE}
osd_pool_default_min_size = {L.POOL_MIN_SIZE}
osd_pool_default_pg_num = {L.PG_NUM}
osd_pool_default_pgp_num = {L.PG_NUM}
osd_pool_default_pg_autoscale_mode = off
# One replica per {L.FAILURE_DOMAIN} (= site): the default rule is built from this at mon mkfs.
osd_crush_chooseleaf_type = {L.FAILURE_DOMAIN_TYPE_ID}
mon_allow_pool_delete = true
mgr_initial_modules = status
mon_data_avail_warn = 1
mon_data_avail_crit = 0
mon_warn_on_insecure_global_id_reclaim_allowed = false
mon_osd_adjust_heartbeat_grace = false
mon_osd_adjust_down_out_interval = false
{_timer_lines(stock_timers)}

[mon]
mon_data = {base}/mon/$id
mon_cluster_log_file = {base}/log/cluster.log

[mgr]
mgr_data = {base}/mgr/$id
# The mgr is here for PG states (`status`, wait-healthy) and `ceph fs status`; its python
# modules are most of its memory and idle CPU. Standbys run none; the active one runs the
# always-on set (disabling those is reported as HEALTH_ERR) and no optional module.
mgr_standby_modules = false
mgr_disabled_modules = {" ".join(MGR_DISABLED_MODULES)}

[osd]
osd_data = {base}/osd/$id
# memstore keeps objects in RAM (test cluster): fast and small, not durable across a kill.
osd_objectstore = memstore
memstore_device_bytes = {objectstore_bytes}
osd_crush_update_on_start = true
osd_max_object_name_len = 460
osd_max_object_namespace_len = 64

{osd_sections}
[mds]
mds_data = {base}/mds/$id
mds_join_fs = {L.FS_NAME}

[client]
# One socket per ceph-fuse process: a remounted host must not find its old socket.
admin_socket = {base}/run/$name.$pid.asok
log_file = {base}/log/$name.$pid.log
"""
