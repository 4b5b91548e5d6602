#include "lockmgr/errc.h"

namespace tandem::lockmgr {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "lockmgr"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::cancelled:
        return "lockmgr: cancelled while waiting for the lock";
      case errc::lost_mastership:
        return "lockmgr: mastership lost (another broker may be master now); stop writing and exit";
      case errc::not_master:
        return "lockmgr: this process is not the master";
      case errc::busy:
        return "lockmgr: already master or already acquiring";
      case errc::bad_epoch_file:
        return "lockmgr: the epoch file is malformed; refusing to guess an epoch (see lockmgr/format.h)";
      case errc::bad_holder_record:
        return "lockmgr: holder.json is malformed (see lockmgr/format.h)";
      case errc::lock_not_enforced:
        return "lockmgr: the file system granted a second conflicting lock: locks are not enforced "
               "here (bindfs --enable-lock-forwarding?); do not share a store on this mount";
      case errc::ofd_locks_unsupported:
        return "lockmgr: open-file-description locks (F_OFD_SETLK) are not supported here";
      case errc::no_native_handle:
        return "lockmgr: the lock file has no OS descriptor (simulated file system?)";
      case errc::no_lock_file:
        return "lockmgr: no lock file in the directory (never used as a store?)";
    }
    return "lockmgr: unknown error " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& lockmgr_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace tandem::lockmgr
