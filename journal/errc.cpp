#include "journal/errc.h"

namespace tandem::journal {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "journal"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::not_a_store:
        return "journal: no identity file: not a Tandem store (create it explicitly with "
               "`tandem-journal create` or the broker's --create-store)";
      case errc::wrong_store:
        return "journal: store id differs from the expected one (wrong directory or mount?)";
      case errc::unsupported_version:
        return "journal: unsupported format name or version (use a newer tandem build)";
      case errc::mid_log_corruption:
        return "journal: corruption in the middle of the log; refusing to recover "
               "(run `tandem-journal verify` on the store, see the damage report)";
      case errc::journal_failed:
        return "journal: failed after an earlier write/fsync error; no further appends";
      case errc::fenced:
        return "journal: fenced: this process is no longer the master";
      case errc::record_too_large:
        return "journal: record larger than a segment";
      case errc::closed:
        return "journal: store is closed";
      case errc::corrupt_file:
        return "journal: malformed file (bad magic, checksum or payload)";
      case errc::not_found:
        return "journal: not found";
      case errc::invalid_argument:
        return "journal: invalid argument";
    }
    return "journal: unknown error " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& journal_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace tandem::journal
