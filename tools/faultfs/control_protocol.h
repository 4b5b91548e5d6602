// The control protocol of tandem-faultfs: how a drill or a test tells the file system to
// fail, freeze or lose power while programs run on it.
//
// Transport: a Unix stream socket (tandem-faultfs --control PATH). A client sends one
// request per line (bytes up to '\n', at most 4096, UTF-8, words separated by one or more
// spaces) and reads one reply line per request, in order. A connection may carry any
// number of requests. `tandem-faultfs ctl PATH REQUEST...` sends one from a shell.
//
// Requests:
//   fail OPS ERROR [skip=N] [count=N] [path=GLOB] [pid=PID]
//        fail operations of the classes OPS (write, fsync, read, open, meta, stat, lock,
//        all, or a comma list) with ERROR (eio, enospc, edquot, erofs, eagain, enomem, or a
//        decimal errno): let the first `skip` matching ones through (default 0), then fail
//        `count` (default 1; 0 = every one until `clear`). GLOB: fnmatch over the path
//        relative to the mount root ("journal/*.seg"); default every path. PID: only
//        requests of that process. fault_rules.h has the details.
//   delay OPS MS [skip=N] [count=N] [path=GLOB] [pid=PID]
//        make matching operations wait MS milliseconds, then run (a slow server); count
//        defaults to 0 (every one until `clear`)
//   clear                 remove every fail and delay rule
//   freeze                block every operation (a hung NFS server) until thaw; the lock
//                         leases stop running while frozen
//   freeze OPS [path=GLOB]
//                         block only operations of the classes OPS (on paths matching GLOB):
//                         e.g. "freeze write,fsync path=journal/*" hangs a broker's appends
//                         while its reads go on; leases keep running
//   thaw                  release every frozen operation (all freezes end)
//   crash                 POWER LOSS: from now on every operation fails with EIO and
//                         changes nothing; every file returns to its last synced contents
//                         and every name change no directory fsync made durable is undone
//                         (power_model.h); every lock is forgotten and every lock waiter is
//                         answered EIO; blocked (frozen) operations fail with EIO
//   power-on              serve again after a crash; handles opened before it keep failing
//                         with EIO (their processes died with the machine)
//   lease MS              the lock lease in milliseconds (0: locks never expire), see
//                         lock_table.h; only with --locks daemon
//   status                one JSON object: frozen, powered, lease_ms, rules (with matched
//                         and injected counts), injected, unsynced_files, unsynced_bytes,
//                         pending_names, locks, revocations, crashes, operations
//
// Replies: "ok" or "ok " + one JSON object (status), or "error " + a sentence saying what
// was wrong with the request. A crash that could not restore everything replies
// "error crash: ..." naming the first failure, and the file system stays powered off.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "tools/faultfs/fault_rules.h"

namespace tandem::faultfs {

struct fail_request {
  fault_rule rule;
};
struct simple_request {
  enum class verb { clear, freeze, thaw, crash, power_on, status } what;
};
struct lease_request {
  std::chrono::milliseconds lease{0};
};
// A selective freeze ("freeze OPS [path=GLOB]"); a plain "freeze" is a simple_request.
struct freeze_request {
  unsigned ops = 0;
  std::string path_glob;
};
using control_request = std::variant<fail_request, simple_request, lease_request, freeze_request>;

inline constexpr std::size_t max_request_bytes = 4096;

// Parses one request line (without the '\n'); on error, nullopt and `why` says what is wrong.
std::optional<control_request> parse_request(std::string_view line, std::string& why);

}  // namespace tandem::faultfs
