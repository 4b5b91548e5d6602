// Which file system holds the store, and what that means for a takeover.
//
// After the lock passes from a holder that did not release cleanly, the new master may have
// to wait before writing. On a local file system the kernel freed the lock only because the
// holder's last descriptor is gone, so the holder cannot write any more: no wait. On a
// network or FUSE file system the lock may have been freed while the holder is alive (NFS
// lease expiry on a partitioned client, a FUSE daemon restarted); the old master notices
// only at its next watchdog check, so the new one waits longer than that period (default
// 2x the check interval) before its first write.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

#include <boost/outcome/std_result.hpp>

namespace tandem::lockmgr {

struct fs_kind {
  std::uint64_t magic = 0;  // statfs f_type
  std::string name;         // "ext4", "nfs", "fuse", ..., or "unknown(0x...)"
  // true when another host or a user-space daemon arbitrates the lock, so a freed lock does
  // not prove the holder is gone (network, cluster and FUSE file systems, and unknown ones).
  bool shared = true;
};

// Classifies an f_type value (pure, for tests).
fs_kind classify_fs_magic(std::uint64_t magic);
// fstatfs on an open descriptor.
boost::outcome_v2::std_result<fs_kind> detect_fs_kind(int fd);

struct takeover_decision {
  fs_kind fs;
  std::chrono::milliseconds delay{0};  // applied only after an unclean predecessor
  std::string reason;                  // one sentence for the log
  // Non-empty when the configured delay is shorter than a shared file system needs: the
  // process logs it as a warning at start (issue 12: takeover_delay_ms 0 on NFS or FUSE).
  std::string warning;
};

// `configured` set = the operator's value wins; else 0 on local file systems and
// 2 x check_interval on shared ones.
takeover_decision decide_takeover_delay(const fs_kind& fs, std::chrono::milliseconds check_interval,
                                        const std::optional<std::chrono::milliseconds>& configured);

}  // namespace tandem::lockmgr
