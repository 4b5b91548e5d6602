// The faults tandem-drill can inflict, one per episode (--kinds). docs/failover.md has the
// operator's view of each; drill.h the steps every episode shares.
//
//   kind            what the drill does                                         store     victim ends
//   kill            SIGKILL of the master                                       any       signal 9
//   term            SIGTERM of the master (clean handover)                      any       exit 0
//   stop            SIGSTOP of the master for a random pause, then SIGCONT      any       keeps serving
//   lock-removed    rm STORE/lock, then the slaves are restarted (a broker       any       exit 75
//                   starting on the store finds no lock and takes one)
//   lock-replaced   STORE/lock replaced by a new inode (a restored backup),      any       exit 75
//                   then the slaves are restarted
//   stop-lease      SIGSTOP of the master for longer than its lock lease on      faultfs   exit 75
//                   tandem-faultfs: a slave takes over behind it; some clients
//                   move to the new master; then SIGCONT
//   eio-write       the next write to a journal segment fails with EIO          faultfs   exit 75
//   eio-fsync       the next fsync of a journal segment fails with EIO          faultfs   exit 75
//   enospc-write    the next write to a journal segment fails with ENOSPC       faultfs   exit 75
//   enospc-fsync    the next fsync of a journal segment fails with ENOSPC       faultfs   exit 75
//   power-loss      the machine dies: the store forgets every unsynced byte     faultfs   all killed
//                   (and unsynced names), every broker is killed, then all start
//   fs-freeze       every store operation blocks for a random pause (hung NFS)  faultfs   keeps serving
//   hang-resend     the store hangs, producers lose their connections and       faultfs   all killed
//                   resend to the same master, then the machine dies (power
//                   loss): a receipt for a resend whose original was never
//                   durable is a loss
//   clock-jump      every broker's wall clock (CLOCK_REALTIME) jumps by hours    any       signal 9
//                   (libfaketime), then SIGKILL of the master
// On the CephFS cluster only (--cluster cephfs, tools/drill/cluster.h; slot i runs on host
// i+1 of site i+1; the slaves have the fence hook, tandem-fence-cephfs):
//   host-death      SIGKILL of the master and of its host's ceph-fuse at once;  cluster   signal 9
//                   the slaves fence (evict) it; then the host is remounted
//   host-death-nofence  the same, with every fence run refused (the drill's     cluster   signal 9
//                   wrapper exits 1): the lock is freed by session_autoclose
//   partition       the master's host's link goes down; the slaves fence it;   cluster   exit 75 (after heal)
//                   then heal, remount
//   site-loss       every process of the master's site and host is SIGKILLed,  cluster   signal 9
//                   links down; then restart-site and wait-healthy
//   osd-loss        SIGKILL of the OSD of the master's site (no takeover:      cluster   keeps serving
//                   measured to the first message accepted); then restart
//   mds-fail        `mds fail` of the active MDS (no takeover: measured to the  cluster   keeps serving
//                   first message accepted); then wait-healthy
// On a PostgreSQL store made by tests/pg/pg_cluster.sh or patroni_cluster.sh (--pg-cluster DIR;
// under Patroni, promote and rebuild-standby wait for Patroni to do them): measured from the
// fault to the first message accepted by any broker (the master rides it out when it
// lasts less than its lease, else it exits 75 and a slave takes over: both are expected):
//   db-primary-kill SIGKILL of the PostgreSQL primary, `pg_ctl promote` of the  pg        keeps serving
//                   standby; then rebuild-standby (two copies again)                     (or exit 75)
//   db-cut          pg_terminate_backend of every tandemd connection (writer,   pg        keeps serving
//                   reader, lease; slaves' too): cut connections                          (or exit 75)
// And `stop` with --pause-min-ms above the lease is "SIGSTOP past its lease" on any store.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::drill {

enum class fault_kind {
  kill,
  term,
  stop,
  lock_removed,
  lock_replaced,
  stop_lease,
  eio_write,
  eio_fsync,
  enospc_write,
  enospc_fsync,
  power_loss,
  fs_freeze,
  hang_resend,
  clock_jump,
  host_death,
  host_death_nofence,
  partition,
  site_loss,
  osd_loss,
  mds_fail,
  db_primary_kill,
  db_cut,
};

// "kill", "lock-removed", ... (what --kinds takes and the JSON and summary print).
const char* name(fault_kind k);
// One line for --help and the summary.
const char* describe(fault_kind k);
// "kill", "sigkill", "9", "SIGKILL" and the names above; nullopt when unknown.
std::optional<fault_kind> parse_fault_kind(std::string_view text);
const std::vector<fault_kind>& all_fault_kinds();

// The store must be a tandem-faultfs mount.
bool needs_faultfs(fault_kind k);
// The brokers run on the CephFS cluster (--cluster cephfs).
bool needs_cluster(fault_kind k);
// The store is a database of a tests/pg/pg_cluster.sh cluster (--pg-cluster).
bool needs_pg_cluster(fault_kind k);
// The master is expected to keep its lock (measured as the stall, not as a takeover).
bool is_cluster_stall(fault_kind k);
// The brokers run under libfaketime.
bool needs_faketime(fault_kind k);
// Measured as a pause (the same master resumes), not as a takeover.
bool is_pause(fault_kind k);
// The faultfs request that arms the fault (eio-write...) against the master `victim_pid`, or
// "" for the other kinds.
std::string faultfs_request(fault_kind k, long victim_pid);

}  // namespace tandem::drill
