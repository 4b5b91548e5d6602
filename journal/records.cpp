#include "journal/records.h"

// XXH3_state_t on the stack (no malloc per record) needs the static-linking-only API.
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <algorithm>
#include <limits>

#include "journal/detail/codec.h"
#include "journal/errc.h"

namespace tandem::journal {
namespace {

using detail::decoder;
using detail::encoder;

constexpr std::uint8_t flag_persistent = 0x01;
constexpr std::uint8_t flag_compaction_copy = 0x02;
constexpr std::uint8_t flag_delivery_state = 0x04;  // deliver_at_ms and redeliveries follow
constexpr std::size_t max_field = std::numeric_limits<std::uint32_t>::max();

bool too_long(std::string_view s) { return s.size() > max_field; }

std::error_code encode_add(const message_add& m, encoder& e, std::uint8_t extra_flags = 0) {
  if (m.targets.empty()) return errc::invalid_argument;
  if (too_long(m.message_id) || too_long(m.producer_id) || too_long(m.body)) return errc::record_too_large;
  e.u64(m.msg_seq);
  e.u32(static_cast<std::uint32_t>(m.targets.size()));
  for (const auto& t : m.targets) {
    if (too_long(t)) return errc::record_too_large;
    e.str(t);
  }
  e.str(m.message_id);
  e.str(m.producer_id);
  e.u64(m.producer_seq);
  e.i64(m.expires_ms);
  e.u8(m.priority);
  const bool delivery_state = m.deliver_at_ms != 0 || m.redeliveries != 0;
  e.u8(static_cast<std::uint8_t>((m.persistent ? flag_persistent : 0) | (delivery_state ? flag_delivery_state : 0) |
                                 extra_flags));
  if (delivery_state) {
    e.i64(m.deliver_at_ms);
    e.u32(m.redeliveries);
  }
  e.u32(static_cast<std::uint32_t>(m.headers.size()));
  for (const auto& [k, v] : m.headers) {
    if (too_long(k) || too_long(v)) return errc::record_too_large;
    e.str(k);
    e.str(v);
  }
  e.str(m.body);
  return {};
}

void encode_remove(const message_remove& m, encoder& e) {
  e.str(m.target);
  e.u64(m.msg_seq);
}

void encode_sub(const durable_subscription& s, encoder& e) {
  e.str(s.client_id);
  e.str(s.subscription_name);
  e.str(s.topic);
  e.str(s.selector);
}

void encode_create_sub(const durable_subscription_create& s, encoder& e) {
  encode_sub(s, e);
  e.str(s.owner_login);
}

bool decode_add(decoder& d, message_add& m) {
  m.msg_seq = d.u64();
  std::uint32_t n = d.count(4);
  if (n == 0) return false;
  m.targets.reserve(n);
  for (std::uint32_t i = 0; i < n && d.ok(); ++i) m.targets.push_back(d.str());
  m.message_id = d.str();
  m.producer_id = d.str();
  m.producer_seq = d.u64();
  m.expires_ms = d.i64();
  m.priority = d.u8();
  std::uint8_t flags = d.u8();
  if ((flags & ~(flag_persistent | flag_compaction_copy | flag_delivery_state)) != 0) return false;
  m.persistent = (flags & flag_persistent) != 0;
  if ((flags & flag_delivery_state) != 0) {
    m.deliver_at_ms = d.i64();
    m.redeliveries = d.u32();
  }
  std::uint32_t h = d.count(8);
  m.headers.reserve(h);
  for (std::uint32_t i = 0; i < h && d.ok(); ++i) {
    std::string k = d.str();
    std::string v = d.str();
    m.headers.emplace_back(std::move(k), std::move(v));
  }
  m.body = d.str();
  return d.ok();
}

bool decode_remove(decoder& d, message_remove& m) {
  m.target = d.str();
  m.msg_seq = d.u64();
  return d.ok();
}

bool decode_sub(decoder& d, durable_subscription& s) {
  s.client_id = d.str();
  s.subscription_name = d.str();
  s.topic = d.str();
  s.selector = d.str();
  return d.ok();
}

// owner_login is the one optional trailing field of the format (format.h section 5,
// record 6): segments written before it existed end the payload after the selector.
bool decode_create_sub(decoder& d, durable_subscription_create& s) {
  if (!decode_sub(d, s)) return false;
  if (d.remaining() > 0) s.owner_login = d.str();
  return d.ok();
}

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

}  // namespace

record_type type_of(const record& r) noexcept {
  static constexpr record_type by_index[] = {
      record_type::message_add,        record_type::message_remove,
      record_type::batch,              record_type::destination_create,
      record_type::destination_delete, record_type::durable_subscription_create,
      record_type::durable_subscription_remove, record_type::epoch_start,
      record_type::checkpoint,         record_type::index_state};
  return by_index[r.index()];
}

std::string_view to_string(record_type t) noexcept {
  switch (t) {
    case record_type::message_add: return "message_add";
    case record_type::message_remove: return "message_remove";
    case record_type::batch: return "batch";
    case record_type::destination_create: return "destination_create";
    case record_type::destination_delete: return "destination_delete";
    case record_type::durable_subscription_create: return "durable_subscription_create";
    case record_type::durable_subscription_remove: return "durable_subscription_remove";
    case record_type::epoch_start: return "epoch_start";
    case record_type::checkpoint: return "checkpoint";
    case record_type::index_state: return "index_state";
  }
  return "unknown";
}

std::string subscription_target(std::string_view client_id, std::string_view subscription_name) {
  // A prefix no STOMP destination starts with ('/' or a name) plus a separator that cannot
  // appear in a STOMP client-id header value (they are single-line, but ':' could), so two
  // different (client, name) pairs never share a key.
  std::string key = "durable\n";
  key += client_id;
  key += '\n';
  key += subscription_name;
  return key;
}

std::error_code encode_payload(const record& r, std::vector<std::byte>& out) {
  encoder e(out);
  return std::visit(
      overloaded{
          [&](const message_add& m) { return encode_add(m, e); },
          [&](const message_remove& m) {
            if (too_long(m.target)) return std::error_code(errc::record_too_large);
            encode_remove(m, e);
            return std::error_code{};
          },
          [&](const batch& b) {
            e.u32(static_cast<std::uint32_t>(b.items.size()));
            for (const auto& item : b.items) {
              e.u8(static_cast<std::uint8_t>(item.index() == 0 ? record_type::message_add
                                                               : record_type::message_remove));
              std::size_t len_at = e.size();
              e.u32(0);
              std::size_t start = e.size();
              if (const auto* m = std::get_if<message_add>(&item)) {
                if (auto ec = encode_add(*m, e)) return ec;
              } else {
                encode_remove(std::get<message_remove>(item), e);
              }
              std::size_t len = e.size() - start;
              if (len > max_field) return std::error_code(errc::record_too_large);
              detail::put_u32_at(out.data() + len_at, static_cast<std::uint32_t>(len));
            }
            return std::error_code{};
          },
          [&](const destination_create& m) { e.str(m.name); return std::error_code{}; },
          [&](const destination_delete& m) { e.str(m.name); return std::error_code{}; },
          [&](const durable_subscription_create& m) { encode_create_sub(m, e); return std::error_code{}; },
          [&](const durable_subscription_remove& m) { encode_sub(m, e); return std::error_code{}; },
          [&](const epoch_start& m) {
            e.u64(m.epoch);
            e.u64(m.cut_segment);
            e.u64(m.cut_offset);
            e.u64(m.last_lsn);
            e.str(m.broker_name);
            return std::error_code{};
          },
          [&](const checkpoint_record& m) {
            e.u64(m.lsn);
            e.str(m.file_name);
            return std::error_code{};
          },
          [&](const index_state& m) {
            e.u64(m.next_msg_seq);
            e.u32(static_cast<std::uint32_t>(m.windows.size()));
            for (const auto& w : m.windows) {
              if (too_long(w.producer_id) || w.seqs.size() > max_field) return std::error_code(errc::record_too_large);
              e.str(w.producer_id);
              e.u8(w.extend ? 1 : 0);
              e.u32(static_cast<std::uint32_t>(w.seqs.size()));
              for (auto seq : w.seqs) e.u64(seq);
            }
            return std::error_code{};
          },
      },
      r);
}

std::error_code encode_compaction_copy(const message_add& m, std::vector<std::byte>& out) {
  encoder e(out);
  return encode_add(m, e, flag_compaction_copy);
}

boost::outcome_v2::std_result<record> decode_payload(record_type type,
                                                     std::span<const std::byte> payload) {
  decoder d(payload);
  record out;
  bool ok = false;
  switch (type) {
    case record_type::message_add: {
      message_add m;
      ok = decode_add(d, m);
      out = std::move(m);
      break;
    }
    case record_type::message_remove: {
      message_remove m;
      ok = decode_remove(d, m);
      out = std::move(m);
      break;
    }
    case record_type::batch: {
      batch b;
      std::uint32_t n = d.count(5);
      ok = d.ok();
      for (std::uint32_t i = 0; i < n && ok; ++i) {
        auto t = static_cast<record_type>(d.u8());
        std::uint32_t len = d.u32();
        decoder sub(d.bytes(len));
        if (!d.ok()) { ok = false; break; }
        if (t == record_type::message_add) {
          message_add m;
          ok = decode_add(sub, m) && sub.done();
          b.items.emplace_back(std::move(m));
        } else if (t == record_type::message_remove) {
          message_remove m;
          ok = decode_remove(sub, m) && sub.done();
          b.items.emplace_back(std::move(m));
        } else {
          ok = false;
        }
      }
      out = std::move(b);
      break;
    }
    case record_type::destination_create: {
      destination_create m;
      m.name = d.str();
      ok = d.ok();
      out = std::move(m);
      break;
    }
    case record_type::destination_delete: {
      destination_delete m;
      m.name = d.str();
      ok = d.ok();
      out = std::move(m);
      break;
    }
    case record_type::durable_subscription_create: {
      durable_subscription_create m;
      ok = decode_create_sub(d, m);
      out = std::move(m);
      break;
    }
    case record_type::durable_subscription_remove: {
      durable_subscription_remove m;
      ok = decode_sub(d, m);
      out = std::move(m);
      break;
    }
    case record_type::epoch_start: {
      epoch_start m;
      m.epoch = d.u64();
      m.cut_segment = d.u64();
      m.cut_offset = d.u64();
      m.last_lsn = d.u64();
      m.broker_name = d.str();
      ok = d.ok();
      out = std::move(m);
      break;
    }
    case record_type::checkpoint: {
      checkpoint_record m;
      m.lsn = d.u64();
      m.file_name = d.str();
      ok = d.ok();
      out = std::move(m);
      break;
    }
    case record_type::index_state: {
      index_state m;
      m.next_msg_seq = d.u64();
      std::uint32_t n = d.count(9);
      m.windows.reserve(n);
      ok = true;
      for (std::uint32_t i = 0; i < n && d.ok(); ++i) {
        index_state::window w;
        w.producer_id = d.str();
        std::uint8_t extend = d.u8();
        if (extend > 1) ok = false;
        w.extend = extend == 1;
        std::uint32_t k = d.count(8);
        w.seqs.reserve(k);
        for (std::uint32_t j = 0; j < k && d.ok(); ++j) w.seqs.push_back(d.u64());
        m.windows.push_back(std::move(w));
      }
      ok = ok && d.ok();
      out = std::move(m);
      break;
    }
    default:
      return make_error_code(errc::corrupt_file);
  }
  if (!ok || !d.done()) return make_error_code(errc::corrupt_file);
  return out;
}

void encode_segment_header(const segment_header& h, std::span<std::byte, format::segment_header_bytes> out) {
  std::fill(out.begin(), out.end(), std::byte{0});
  std::memcpy(out.data(), format::segment_magic.data(), 8);
  detail::put_u32_at(out.data() + 8, h.version);
  std::memcpy(out.data() + 16, h.store.bytes.data(), 16);
  detail::put_u64_at(out.data() + 32, h.seq);
  detail::put_u64_at(out.data() + 40, h.epoch);
  detail::put_u64_at(out.data() + 48, h.capacity);
  detail::put_u64_at(out.data() + 56, XXH3_64bits(out.data(), format::segment_header_checksum_offset));
}

boost::outcome_v2::std_result<segment_header> decode_segment_header(
    std::span<const std::byte, format::segment_header_bytes> in) {
  if (std::memcmp(in.data(), format::segment_magic.data(), 8) != 0) return make_error_code(errc::corrupt_file);
  if (detail::get_u64_at(in.data() + 56) != XXH3_64bits(in.data(), format::segment_header_checksum_offset))
    return make_error_code(errc::corrupt_file);
  segment_header h;
  h.version = detail::get_u32_at(in.data() + 8);
  if (h.version < format::oldest_segment_format_version || h.version > format::segment_format_version)
    return make_error_code(errc::unsupported_version);
  if (detail::get_u32_at(in.data() + 12) != 0) return make_error_code(errc::corrupt_file);
  std::memcpy(h.store.bytes.data(), in.data() + 16, 16);
  h.seq = detail::get_u64_at(in.data() + 32);
  h.epoch = detail::get_u64_at(in.data() + 40);
  h.capacity = detail::get_u64_at(in.data() + 48);
  return h;
}

namespace {
std::uint64_t record_checksum(const std::byte* header, std::span<const std::byte> payload) {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  XXH3_64bits_update(&state, header + 8, format::record_header_bytes - 8);
  XXH3_64bits_update(&state, payload.data(), payload.size());
  return XXH3_64bits_digest(&state);
}
}  // namespace

void encode_record_header(record_type type, std::uint64_t lsn, std::uint64_t epoch,
                          std::span<const std::byte> payload,
                          std::span<std::byte, format::record_header_bytes> out, std::uint8_t flags) {
  std::byte* p = out.data();
  detail::put_u32_at(p + 8, static_cast<std::uint32_t>(payload.size()));
  p[12] = static_cast<std::byte>(type);
  p[13] = static_cast<std::byte>(flags);
  p[14] = std::byte{0};
  p[15] = std::byte{0};
  detail::put_u64_at(p + 16, lsn);
  detail::put_u64_at(p + 24, epoch);
  detail::put_u64_at(p, record_checksum(p, payload));
}

record_header parse_record_header(std::span<const std::byte, format::record_header_bytes> in) noexcept {
  record_header h;
  h.checksum = detail::get_u64_at(in.data());
  h.length = detail::get_u32_at(in.data() + 8);
  h.type = static_cast<record_type>(in[12]);
  h.flags = static_cast<std::uint8_t>(in[13]);
  h.lsn = detail::get_u64_at(in.data() + 16);
  h.epoch = detail::get_u64_at(in.data() + 24);
  return h;
}

bool is_zero_header(std::span<const std::byte, format::record_header_bytes> in) noexcept {
  return std::all_of(in.begin(), in.end(), [](std::byte b) { return b == std::byte{0}; });
}

std::string_view verify_record(std::span<const std::byte, format::record_header_bytes> header,
                               std::span<const std::byte> payload) noexcept {
  if (detail::get_u32_at(header.data() + 8) != payload.size()) return "length mismatch";
  if (detail::get_u64_at(header.data()) != record_checksum(header.data(), payload)) return "checksum mismatch";
  // Checked after the checksum: a record that verifies but carries these was written by a
  // newer or broken writer, which is corruption for this reader, not a torn write.
  auto type = static_cast<std::uint8_t>(header[12]);
  if (type == 0 || type > format::max_record_type) return "unknown record type";
  if ((static_cast<std::uint8_t>(header[13]) & ~format::known_record_flags) != 0 || header[14] != std::byte{0} ||
      header[15] != std::byte{0})
    return "unknown flags or non-zero reserved bytes";
  return {};
}

}  // namespace tandem::journal
