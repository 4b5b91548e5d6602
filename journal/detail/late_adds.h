// What an add that becomes durable after later appends must leave out.
//
// A store applies removes, destination deletes and subscription removes when they are
// appended, but an add only when it is durable (apply.h). An add appended before such a
// drop or remove and completed after it must not re-create what the log says is gone:
// replay of "add, then remove" ends without the entry, and so must the live index, or a
// checkpoint taken later would hold the message and cover the remove's lsn.
//
// Both stores (the journal and the PostgreSQL store) keep one of these on their owner
// thread: they note each missed remove and each drop with the append number it was
// appended under, ask keep_target while applying a durable add, and forget everything up
// to an append number once every append before it has completed (completions run in
// append order). Removes of messages that never existed land here too and are forgotten
// just as fast.
//
// Thread: the store's owner thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "journal/index.h"

namespace tandem::journal::detail {

class late_adds {
 public:
  // A remove appended as `append_no` (batch position `item`) found no entry of `msg_seq`
  // on `target`: its add may still be in flight.
  void remove_missed(std::uint64_t append_no, std::string_view target, std::uint64_t msg_seq, std::uint32_t item);
  // A destination delete or subscription remove appended as `append_no` dropped `target`.
  void target_dropped(std::uint64_t append_no, std::string_view target);
  // False when the add appended as `append_no` (batch position `item`) must leave
  // `target` out, because a drop or remove appended after it has already taken effect.
  bool keep_target(std::uint64_t append_no, std::uint64_t msg_seq, std::uint32_t item, std::string_view target) const;
  // Every append up to `append_no` has completed.
  void forget_completed(std::uint64_t append_no);
  // Nothing to filter: a durable add can skip keep_target altogether.
  bool empty() const { return dropped_.empty() && early_removes_.empty(); }

 private:
  struct early_remove {
    std::uint64_t append_no;
    std::uint32_t item;  // position in its batch
    std::string target;
  };
  std::unordered_map<std::string, std::uint64_t, index::string_hash, std::equal_to<>> dropped_;  // -> append_no
  std::unordered_map<std::uint64_t, std::vector<early_remove>> early_removes_;  // by msg_seq
  std::deque<std::pair<std::uint64_t, std::uint64_t>> early_remove_order_;      // (append_no, msg_seq)
};

}  // namespace tandem::journal::detail
