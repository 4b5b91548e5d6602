// How a record changes the index: the one place that says so.
//
// Three paths apply records, and all three call apply_record (LevelDB's
// WriteBatchInternal::InsertInto serves both the live write and the log replay the same
// way):
// - recovery replays every record it reads (detail/recovery.cpp), stage `replay`;
// - the store applies each of its own appends (detail/append.cpp) in two stages: what
//   must be visible at once when append() returns (`appended`), and the rest once the
//   record is durable (`durable`);
// - `tandem-journal summary` shows the index recovery builds, through the same read-only
//   recovery (reader.h, rebuild_index), so the tool cannot drift from the broker either.
// A record type added to records.h gets its effect here, once.
//
// Why two stages for a live append: removes must be visible to the broker at once (an
// acked message must not be delivered again while its remove is being synced), while an
// add needs its location, known only once written. Applying a record's `appended` stage
// and then its `durable` stage leaves the index as replaying it does, with one exception
// that the store's observer covers: a remove or delete appended after an add but
// completing before it (see apply_observer::keep_target).
//
// Thread: the index's owner thread (index.h); no I/O, no allocation beyond the index's.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

#include "journal/index.h"
#include "journal/records.h"

namespace tandem::journal {

enum class apply_stage {
  // The record as read back from the log (recovery, tandem-journal): every effect, at
  // `where`. A compaction copy (format.h section 5) adds without touching the producer's
  // dedup window; index_state restores next_msg_seq and the windows.
  replay,
  // The store's append, before the record is written: removes, destination deletes and
  // subscription removes take effect, destinations and subscriptions are created without
  // a location. Adds wait. `where` is unused.
  appended,
  // The store's append is durable at `where`: adds take effect (minus the targets the
  // observer drops), a compaction copy only moves entries that are still live (a remove
  // appended after the copy has already taken effect), definitions move to `where` if
  // they still exist. The store's own index_state changes nothing: the index is its source.
  durable,
};

// What the store learns while applying its own appends. Replay passes none.
class apply_observer {
 public:
  // appended: a remove found no such entry (its add may still be in flight). `item` is
  // the remove's position in its batch (0 outside a batch).
  virtual void remove_missed(std::string_view target, std::uint64_t msg_seq, std::uint32_t item) = 0;
  // appended: a destination delete or subscription remove dropped every entry of `target`.
  virtual void target_dropped(std::string_view target) = 0;
  // appended: a send (not a compaction copy) whose producer seq enters the dedup window
  // once durable.
  virtual void send_appended(std::string_view producer_id, std::uint64_t producer_seq) = 0;
  // durable: false leaves `target` out of the add at batch position `item`, because a
  // remove or delete appended after the add has taken effect already (replay of "add,
  // then remove" ends without it). The add still counts its msg_seq and producer seq.
  virtual bool keep_target(std::uint64_t msg_seq, std::uint32_t item, std::string_view target) = 0;

 protected:
  ~apply_observer() = default;
};

// Applies the record of `type` whose payload (format.h section 5, as in the log) is
// `payload`, located at `where`, for `stage`. Returns errc::corrupt_file when the payload
// does not parse (the index may then hold the effects of the items before the bad one).
std::error_code apply_record(index& idx, record_type type, std::span<const std::byte> payload,
                             const location& where, apply_stage stage, apply_observer* observer = nullptr);

}  // namespace tandem::journal
