#include "journal/apply.h"

#include <algorithm>
#include <variant>

#include "journal/detail/codec.h"
#include "journal/detail/message_view.h"
#include "journal/errc.h"

namespace tandem::journal {
namespace {

// One apply_record call. Adds and removes are decoded in place (views into the payload):
// recovery replays a million of them and must not copy a header or a body; the rest are
// rare and decoded whole.
struct application {
  index& idx;
  const location& where;
  apply_stage stage;
  apply_observer* observer;
  detail::message_view& view;

  std::error_code add(std::span<const std::byte> payload, std::uint32_t item) {
    auto& m = view;
    if (!detail::decode_message_view(payload, m)) return errc::corrupt_file;
    if (stage == apply_stage::appended) {
      if (!m.compaction_copy && observer) observer->send_appended(m.producer_id, m.producer_seq);
      return {};
    }
    if (stage == apply_stage::durable) {
      if (m.compaction_copy) {
        for (auto t : m.targets) idx.relocate(t, m.msg_seq, where);
        return {};
      }
      if (observer)
        std::erase_if(m.targets, [&](std::string_view t) { return !observer->keep_target(m.msg_seq, item, t); });
    }
    const message_ref ref{where, m.expires_ms, m.priority};
    const schedule_fields schedule{m.deliver_at_ms, m.message_id};
    // A compaction copy moves the message; it is not a send, so its producer seq does not
    // enter the window (index_state records carry the windows across GC instead).
    if (m.compaction_copy)
      idx.add(m.msg_seq, std::span<const std::string_view>(m.targets), ref, {}, 0, schedule);
    else
      idx.add(m.msg_seq, std::span<const std::string_view>(m.targets), ref, m.producer_id, m.producer_seq,
              schedule);
    return {};
  }

  std::error_code remove(std::span<const std::byte> payload, std::uint32_t item) {
    detail::decoder d(payload);
    const auto target = d.str_view();
    const auto msg_seq = d.u64();
    if (!d.done()) return errc::corrupt_file;
    if (stage == apply_stage::durable) return {};  // it took effect when appended
    if (!idx.remove(target, msg_seq) && stage == apply_stage::appended && observer)
      observer->remove_missed(target, msg_seq, item);
    return {};
  }

  std::error_code batch(std::span<const std::byte> payload) {
    detail::decoder d(payload);
    const std::uint32_t n = d.count(5);
    for (std::uint32_t i = 0; i < n && d.ok(); ++i) {
      const auto type = static_cast<record_type>(d.u8());
      const auto item = d.bytes(d.u32());
      if (!d.ok()) break;
      std::error_code ec = errc::corrupt_file;
      if (type == record_type::message_add) ec = add(item, i);
      if (type == record_type::message_remove) ec = remove(item, i);
      if (ec) return ec;
    }
    return d.done() ? std::error_code{} : make_error_code(errc::corrupt_file);
  }

  void operator()(const destination_create& v) {
    if (stage == apply_stage::replay) idx.create_destination(v.name, where);
    if (stage == apply_stage::appended) idx.create_destination(v.name);
    // A create durable: the definition now lives here, unless a delete appended after it
    // already removed it.
    if (stage == apply_stage::durable) idx.locate_destination(v.name, where);
  }
  void operator()(const destination_delete& v) {
    if (stage == apply_stage::durable) return;
    idx.delete_destination(v.name);
    if (observer) observer->target_dropped(v.name);
  }
  void operator()(const durable_subscription_create& v) {
    if (stage == apply_stage::replay) idx.create_subscription(v, where);
    if (stage == apply_stage::appended) idx.create_subscription(v);
    if (stage == apply_stage::durable) idx.locate_subscription(subscription_target(v.client_id, v.subscription_name), where);
  }
  void operator()(const durable_subscription_remove& v) {
    if (stage == apply_stage::durable) return;
    idx.remove_subscription(v.client_id, v.subscription_name);
    if (observer) observer->target_dropped(subscription_target(v.client_id, v.subscription_name));
  }
  // next_msg_seq = max(current, recorded); each window replaces the producer's, or with
  // `extend` continues it (records.h). Only replay: a live store wrote it from its index.
  void operator()(const index_state& v) {
    if (stage != apply_stage::replay) return;
    if (v.next_msg_seq > idx.next_msg_seq()) idx.set_next_msg_seq(v.next_msg_seq);
    for (const auto& w : v.windows) {
      if (!w.extend) {
        idx.load_producer(w.producer_id, std::deque<std::uint64_t>(w.seqs.begin(), w.seqs.end()));
      } else {
        for (auto seq : w.seqs) idx.record_producer(w.producer_id, seq);
      }
    }
  }
  // Decoded by the paths above, or the store's own bookkeeping (epoch_start, checkpoint):
  // nothing for the index.
  template <class T>
  void operator()(const T&) {}
};

}  // namespace

std::error_code apply_record(index& idx, record_type type, std::span<const std::byte> payload,
                             const location& where, apply_stage stage, apply_observer* observer) {
  // The targets vector is reused by every add on this thread (a million replayed adds must
  // not allocate one each).
  thread_local detail::message_view view;
  application a{idx, where, stage, observer, view};
  switch (type) {
    case record_type::message_add: return a.add(payload, 0);
    case record_type::message_remove: return a.remove(payload, 0);
    case record_type::batch: return a.batch(payload);
    case record_type::epoch_start:
    case record_type::checkpoint:
      // Nothing for the index; recovery still decodes them, as a payload that does not
      // parse under a valid checksum is corruption wherever it is.
      if (stage != apply_stage::replay) return {};
      break;
    default: break;
  }
  auto rec = decode_payload(type, payload);
  if (!rec) return rec.error();
  std::visit(a, rec.value());
  return {};
}

}  // namespace tandem::journal
