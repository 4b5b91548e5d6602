// Messages the store holds but cannot give back (issue 12, bug 6): the index names a record
// whose bytes do not verify or are not the message. Waiting does not help (the bytes will
// not change), so such a message is set aside: logged once with where it is, counted
// (tandem_store_unreadable_messages_total, the queue's "unreadable"), skipped by dispatch
// and browse, and kept in the store, where `tandem-journal verify` / `dump` can look at it
// and a purge or a restart's recovery decides its fate. Before, dispatch stopped at it and
// the whole queue stalled behind one bad record.
//
// An OS error (EIO, a revoked lock on NFS) is not this: mastership is about to be lost, and
// the message stays pending for the next master.
#include <fmt/format.h>

#include "broker/engine/impl.h"
#include "broker/log.h"
#include "journal/errc.h"

namespace tandem::broker {

using namespace detail;

bool engine::impl::set_aside_if_unreadable(queue& q, std::uint64_t seq, std::error_code ec) {
  if (ec.category() != journal::journal_category()) return false;
  if (!q.unreadable.insert(seq).second) return true;
  ++unreadable_;
  std::string where = "unknown";
  if (store_) {
    if (const auto* m = store_->index().messages(q.key))
      if (auto it = m->find(seq); it != m->end())
        where = fmt::format("segment {:016x} offset {} size {}", it->second.where.segment, it->second.where.offset,
                            it->second.where.size);
  }
  log::error("engine", "message unreadable in the store: set aside, the queue goes on",
             {log::kv("queue", q.name), log::kv("msg_seq", seq), log::kv("where", where),
              log::kv("error", ec.message()),
              log::kv("action", "kept in the store; run tandem-journal verify on the store, then purge or restore")});
  return true;
}

}  // namespace tandem::broker
