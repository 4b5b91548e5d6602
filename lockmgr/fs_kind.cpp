#include "lockmgr/fs_kind.h"

#include <linux/magic.h>
#include <sys/vfs.h>

#include <cerrno>
#include <cstdio>

namespace tandem::lockmgr {
namespace {

struct known_fs {
  std::uint64_t magic;
  const char* name;
  bool shared;
};

// Magic numbers not in every <linux/magic.h>; values from the kernel sources.
constexpr std::uint64_t xfs_magic = 0x58465342;
constexpr std::uint64_t fuse_magic = 0x65735546;
constexpr std::uint64_t cifs_magic = 0xFF534D42;
constexpr std::uint64_t smb2_magic = 0xFE534D42;
constexpr std::uint64_t ceph_magic = 0x00C36400;
constexpr std::uint64_t gfs2_magic = 0x01161970;
constexpr std::uint64_t ocfs2_magic = 0x7461636f;
constexpr std::uint64_t zfs_magic = 0x2fc12fc1;
constexpr std::uint64_t lustre_magic = 0x0BD00BD0;
constexpr std::uint64_t gpfs_magic = 0x47504653;

constexpr known_fs known[] = {
    {EXT4_SUPER_MAGIC, "ext4", false},  // also ext2/ext3: same magic
    {xfs_magic, "xfs", false},
    {BTRFS_SUPER_MAGIC, "btrfs", false},
    {TMPFS_MAGIC, "tmpfs", false},
    {OVERLAYFS_SUPER_MAGIC, "overlay", false},
    {RAMFS_MAGIC, "ramfs", false},
    {F2FS_SUPER_MAGIC, "f2fs", false},
    {zfs_magic, "zfs", false},
    {NFS_SUPER_MAGIC, "nfs", true},
    {SMB_SUPER_MAGIC, "smb", true},
    {cifs_magic, "cifs", true},
    {smb2_magic, "smb2", true},
    {fuse_magic, "fuse", true},  // GlusterFS, sshfs, bindfs, s3fs, ... all report FUSE
    {ceph_magic, "ceph", true},
    {V9FS_MAGIC, "9p", true},
    {AFS_SUPER_MAGIC, "afs", true},
    {CODA_SUPER_MAGIC, "coda", true},
    {gfs2_magic, "gfs2", true},
    {ocfs2_magic, "ocfs2", true},
    {lustre_magic, "lustre", true},
    {gpfs_magic, "gpfs", true},
};

}  // namespace

fs_kind classify_fs_magic(std::uint64_t magic) {
  for (const auto& k : known) {
    if (k.magic == magic) return {magic, k.name, k.shared};
  }
  char name[40];
  std::snprintf(name, sizeof name, "unknown(0x%llx)", static_cast<unsigned long long>(magic));
  // Unknown means we cannot prove the kernel arbitrates the lock: treat it as shared.
  return {magic, name, true};
}

boost::outcome_v2::std_result<fs_kind> detect_fs_kind(int fd) {
  struct statfs st {};
  while (::fstatfs(fd, &st) != 0) {
    if (errno != EINTR) return std::error_code(errno, std::generic_category());
  }
  // f_type is a signed word on some ABIs; the magics are 32-bit patterns.
  return classify_fs_magic(static_cast<std::uint64_t>(st.f_type) & 0xffffffffULL);
}

takeover_decision decide_takeover_delay(const fs_kind& fs, std::chrono::milliseconds check_interval,
                                        const std::optional<std::chrono::milliseconds>& configured) {
  takeover_decision d{fs, {}, {}};
  if (configured) {
    d.delay = *configured;
    d.reason = "takeover delay set by configuration (file system " + fs.name + ")";
    if (fs.shared && *configured < 2 * check_interval)
      d.warning = "takeover_delay_ms " + std::to_string(configured->count()) + " on " + fs.name +
                  ", a network, cluster or FUSE file system: a freed lock does not prove the old master is gone, "
                  "so a new master still waits the old holder's own lease (holder.json lease_ms) after an unclean end; "
                  "remove takeover_delay_ms (default " + std::to_string((2 * check_interval).count()) +
                  " ms here) or set it at least that high";
  } else if (fs.shared) {
    d.delay = 2 * check_interval;
    d.reason = fs.name + " is a network, cluster or FUSE file system (or unknown): a freed lock does not prove the "
               "old master is gone, so wait 2x the check interval for it to notice it was deposed";
  } else {
    d.delay = std::chrono::milliseconds(0);
    d.reason = fs.name + " is local: the kernel freed the lock because the old master's descriptor is gone";
  }
  return d;
}

}  // namespace tandem::lockmgr
