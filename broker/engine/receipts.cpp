// Receipts and errors. Every frame that asks for a RECEIPT gets a slot in its session's
// queue; slots leave in frame order once their frame's effect is applied (journaled frames:
// durable). An ERROR is a slot too, so it never overtakes a receipt owed before it, and it
// closes the connection. error_frame() is the one place an ERROR frame is built.
#include <fmt/format.h>

#include "broker/engine/impl.h"
#include "broker/stomp/encoder.h"
#include "broker/stomp/header_values.h"

namespace tandem::broker {

using namespace detail;

namespace {

// The ERROR for `why`: `message` is the code's text, the body its detail, and `receipt-id`
// the receipt the refused frame asked for.
stomp::frame error_frame(const failure& why, const std::optional<std::string>& receipt_id) {
  stomp::frame err;
  err.command = "ERROR";
  // STOMP 1.2: an ERROR for a version we do not speak lists the versions we do.
  if (why.code == errc::unsupported_version) err.add("version", std::string(stomp::supported_versions));
  err.add("message", why.code.message());
  if (receipt_id) err.add("receipt-id", *receipt_id);
  err.add("content-type", "text/plain");
  err.body = why.detail;
  if (!err.body.empty() && err.body.back() != '\n') err.body += '\n';
  return err;
}

// What a slot sends when it leaves: the encoded frame (empty: nothing, a DISCONNECT without
// receipt) and whether it must be the connection's last.
struct outgoing {
  std::string frame;
  bool close = false;
};

outgoing encode_slot(const receipt_slot& slot, stomp::version v) {
  outgoing out{{}, slot.close};
  if (slot.error) {
    if (stomp::encode(error_frame(*slot.error, slot.receipt_id), v, out.frame)) {
      // A receipt id or detail this version cannot carry: say less rather than nothing.
      out.frame.clear();
      stomp::encode(error_frame({errc::error_not_encodable, slot.error->detail}, std::nullopt), v, out.frame);
    }
    out.close = true;
    return out;
  }
  if (!slot.receipt_id) return out;
  if (stomp::encode_receipt(*slot.receipt_id, slot.kind == receipt_kind::duplicate, v, out.frame)) {
    // A receipt id this version cannot write back (e.g. a value ending in CR in 1.1): answer
    // with an ERROR rather than a RECEIPT the client could not match.
    out.frame.clear();
    stomp::encode(error_frame({errc::receipt_not_encodable, {}}, std::nullopt), v, out.frame);
    out.close = true;
  }
  return out;
}

}  // namespace

void engine::impl::send_frame(session& s, const stomp::frame& f) {
  std::string out;
  if (stomp::encode(f, s.version, out)) return;  // our own headers always encode
  s.sink->send(std::move(out));
}

std::uint64_t engine::impl::add_receipt(session& s, const stomp::frame& f, std::uint32_t waiting, receipt_kind kind) {
  auto r = f.get("receipt");
  if (!r) return 0;
  receipt_slot slot;
  slot.id = s.next_slot++;
  slot.kind = kind;
  slot.receipt_id = std::string(*r);
  slot.waiting = waiting;
  auto id = slot.id;
  s.slots.push_back(std::move(slot));
  flush_slots(s);
  return id;
}

void engine::impl::flush_slots(session& s) {
  while (!s.slots.empty() && s.slots.front().waiting == 0) {
    auto slot = std::move(s.slots.front());
    s.slots.pop_front();
    auto [frame, close] = encode_slot(slot, s.version);
    if (close) {
      // Release the session before its last frame leaves: a client that saw DISCONNECT's
      // RECEIPT may reconnect with the same client-id at once, and the socket (hence
      // close_session) can outlive that receipt.
      end_session_state(s);
      release_client_id(s);
    }
    if (!frame.empty()) s.sink->send(std::move(frame));
    if (close) {
      s.state = session_state::closing;
      s.slots.clear();
      s.sink->close_after_flush();
      return;
    }
  }
}

void engine::impl::complete_slot(session_id sid, std::uint64_t slot) {
  auto* s = find_session(sid);
  if (!s || slot == 0) return;
  for (auto& r : s->slots) {
    if (r.id == slot) {
      if (r.waiting > 0) --r.waiting;
      break;
    }
  }
  flush_slots(*s);
}

void engine::impl::fail_slot(session_id sid, std::uint64_t slot, failure why) {
  auto* s = find_session(sid);
  if (!s) return;
  for (auto& r : s->slots) {
    if (r.id == slot && slot != 0) {
      r.error = std::move(why);  // keeps the receipt id the failing frame asked for
      r.waiting = 0;
      r.close = true;
      s->state = session_state::closing;
      flush_slots(*s);
      return;
    }
  }
  fail(*s, std::move(why), nullptr);
}

void engine::impl::settle_slot(session_id sid, std::uint64_t slot, std::error_code ec, errc code, const char* what) {
  if (ec)
    fail_slot(sid, slot, {code, fmt::format("The journal refused the {}: {}.", what, ec.message())});
  else
    complete_slot(sid, slot);
}

journal::completion engine::impl::receipt_when_durable(session_id sid, std::uint64_t slot, errc code,
                                                       const char* what) {
  return guard([this, sid, slot, code, what](std::error_code ec) { settle_slot(sid, slot, ec, code, what); });
}

void engine::impl::fail(session& s, failure why, const stomp::frame* cause) {
  if (s.state == session_state::closing && s.slots.empty()) return;  // already said goodbye
  receipt_slot slot;
  slot.id = s.next_slot++;
  if (cause) {
    if (auto r = cause->get("receipt")) slot.receipt_id = std::string(*r);
  }
  slot.error = std::move(why);
  slot.close = true;
  s.slots.push_back(std::move(slot));
  s.state = session_state::closing;
  if (!s.parked.empty()) {
    s.parked.clear();
    blocked_.erase(s.id);
  }
  flush_slots(s);
}

}  // namespace tandem::broker
