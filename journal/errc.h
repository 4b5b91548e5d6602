// Journal error codes: expected failures of the journal, as std::error_code values in the
// "journal" category (OS errors from the file system keep std::generic_category).
//
// Operator-facing detail (file, offset, lsn) never fits in an error_code; it rides beside
// it: `journal::damage` in the recovery report, the `event` given to the reporter.
#pragma once

#include <string>
#include <system_error>

namespace tandem::journal {

enum class errc {
  // DIR has no `identity` file: not a store (or not yet created). Run `create` explicitly;
  // `open` never creates a store, so a typo in a path cannot start an empty broker.
  not_a_store = 1,
  // The identity's store id differs from the id the caller expected (wrong mount, wrong
  // directory, or a segment copied from another store).
  wrong_store,
  // A file (identity, segment, checkpoint) carries a format name or version this build
  // does not read. Upgrade the binary; never "fix" the file by hand.
  unsupported_version,
  // A damaged record with valid records after it, or damage in a segment that is not the
  // last one. Recovery refuses: the damage struct says where; run `tandem-journal verify`.
  mid_log_corruption,
  // A write or fsync failed earlier (or the fence failed): the journal refuses every later
  // append, because the page cache may have dropped data the kernel had accepted.
  journal_failed,
  // The fence callback reported that this process is no longer master.
  fenced,
  // A record larger than a segment can hold (segment_bytes - segment header).
  record_too_large,
  // The store was closed (or is closing); the append was not written.
  closed,
  // A file is malformed in a way that is not a torn write: bad magic, bad checksum of a
  // header, a payload that does not parse, an unknown record type.
  corrupt_file,
  // A message / target / location that the index does not hold.
  not_found,
  // An argument the API forbids (e.g. nested batch, empty target list).
  invalid_argument,
};

const std::error_category& journal_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), journal_category()};
}

}  // namespace tandem::journal

template <>
struct std::is_error_code_enum<tandem::journal::errc> : std::true_type {};
