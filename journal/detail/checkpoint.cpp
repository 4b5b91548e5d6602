#include "journal/detail/checkpoint.h"

// XXH3_state_t on the stack needs the static-linking-only API.
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "journal/detail/codec.h"
#include "journal/detail/huge_pages.h"
#include "journal/errc.h"
#include "journal/format.h"

namespace tandem::journal::detail {

namespace {

constexpr std::size_t location_bytes = 16;  // u64 segment, u32 offset, u32 size

// Targets with fewer entries take their nodes from operator new: an arena's last chunk
// is mapped for what it holds, but a target this size is where 2 MiB chunks pay off.
constexpr std::uint64_t arena_min_entries = 1 << 15;

void put_location(encoder& e, const location* where) {
  e.u64(where ? where->segment : 0);
  e.u32(where ? where->offset : 0);
  e.u32(where ? where->size : 0);
}

const location* find_location(const index::location_map& m, std::string_view key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

location get_location(decoder& d) {
  location where;
  where.segment = d.u64();
  where.offset = d.u32();
  where.size = d.u32();
  return where;
}

// The checks of the fixed header that need no more of the file than its size: magic,
// version (returned) and the body length. 0 on failure, with `reason` set.
std::uint32_t check_header(const std::byte* h, std::uint64_t file_bytes, std::error_code& ec, std::string& reason) {
  auto fail = [&](errc e, const char* why) {
    ec = make_error_code(e);
    reason = why;
    return std::uint32_t{0};
  };
  if (file_bytes < format::checkpoint_header_bytes + 8) return fail(errc::corrupt_file, "file too short");
  if (std::memcmp(h, format::checkpoint_magic.data(), 8) != 0) return fail(errc::corrupt_file, "bad magic");
  const std::uint32_t version = get_u32_at(h + 8);
  if (version < format::oldest_checkpoint_format_version || version > format::checkpoint_format_version)
    return fail(errc::unsupported_version, "unsupported checkpoint version");
  if (get_u64_at(h + 88) != file_bytes - format::checkpoint_header_bytes - 8)
    return fail(errc::corrupt_file, "length does not match the file size (truncated?)");
  return version;
}

// The header's fields, once the checksum verified; errc::wrong_store when the id differs.
result<checkpoint_meta> header_meta(const std::byte* h, const store_id& expected, std::string& reason) {
  checkpoint_meta m;
  std::memcpy(m.id.bytes.data(), h + 16, 16);
  if (!(m.id == expected)) {
    reason = "store id differs from the identity";
    return make_error_code(errc::wrong_store);
  }
  m.lsn = get_u64_at(h + 32);
  m.replay = {get_u64_at(h + 40), get_u64_at(h + 48)};
  m.next_msg_seq = get_u64_at(h + 56);
  m.max_epoch = get_u64_at(h + 64);
  m.cut = {get_u64_at(h + 72), get_u64_at(h + 80)};
  return m;
}

}  // namespace

std::error_code read_checkpoint_image(fs::file_system& fs, const std::filesystem::path& path,
                                      std::vector<std::byte>& image) {
  auto f = fs.open(path, fs::open_mode::read_only);
  if (!f) return f.error();
  auto size = f.value()->size();
  if (!size) return size.error();
  const std::size_t bytes = size.value();
  image.clear();
  if (image.capacity() < bytes) {
    std::vector<std::byte>().swap(image);
    image.reserve(bytes + bytes / 2);
  }
  advise_huge_pages(image.data(), image.capacity());
  image.resize(bytes);
  for (std::size_t done = 0; done < bytes;) {
    auto n = f.value()->read_at(std::span(image).subspan(done), done);
    if (!n) return n.error();
    if (n.value() == 0) {  // shrank since its size was taken
      image.resize(done);
      break;
    }
    done += n.value();
  }
  return {};
}

result<checkpoint_meta> verify_checkpoint_file(fs::file_system& fs, const std::filesystem::path& path,
                                               const store_id& expected, std::string& reason) {
  auto f = fs.open(path, fs::open_mode::read_only);
  if (!f) {
    reason = "cannot open: " + f.error().message();
    return f.error();
  }
  auto size = f.value()->size();
  if (!size) {
    reason = "cannot stat: " + size.error().message();
    return size.error();
  }
  const std::uint64_t file_bytes = size.value();
  std::vector<std::byte> buf(std::size_t{1} << 20);
  auto read_fully = [&](std::span<std::byte> out, std::uint64_t at) -> std::error_code {
    auto n = f.value()->read_at(out, at);
    if (!n) {
      reason = "cannot read: " + n.error().message();
      return n.error();
    }
    if (n.value() != out.size()) {
      reason = "shrank while being read";
      return make_error_code(errc::corrupt_file);
    }
    return {};
  };
  std::array<std::byte, format::checkpoint_header_bytes> header{};
  std::error_code ec;
  if (file_bytes >= header.size()) {
    if (auto e = read_fully(header, 0)) return e;
  }
  if (check_header(header.data(), file_bytes, ec, reason) == 0) return ec;
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  const std::uint64_t summed = file_bytes - 8;
  for (std::uint64_t at = 0; at < summed;) {
    auto piece = std::span(buf).first(static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), summed - at)));
    if (auto e = read_fully(piece, at)) return e;
    XXH3_64bits_update(&state, piece.data(), piece.size());
    at += piece.size();
  }
  std::array<std::byte, 8> trailer{};
  if (auto e = read_fully(trailer, summed)) return e;
  if (get_u64_at(trailer.data()) != XXH3_64bits_digest(&state)) {
    reason = "checksum mismatch";
    return make_error_code(errc::corrupt_file);
  }
  return header_meta(header.data(), expected, reason);
}

std::size_t checkpoint_size_estimate(const index& idx) {
  std::size_t windows = 0;
  for (const auto& [producer, window] : idx.producer_windows()) windows += 8 + producer.size() + 8 * window.size();
  return format::checkpoint_header_bytes + 64 + 8 + windows +
         idx.live_messages() * format::checkpoint_message_entry_bytes + idx.targets().size() * 64 +
         (idx.destinations().size() + idx.durable_subscriptions().size()) * 96 + 4 +
         idx.schedules().size() * 64;
}

void encode_checkpoint_unsealed(const checkpoint_meta& meta, const index& idx, std::vector<std::byte>& out) {
  out.clear();
  // Headroom when growing, so a slowly growing index does not reallocate (and fault in a
  // fresh buffer) at every checkpoint; and huge pages for the fresh buffer: this runs on
  // the owner (io) thread, where first touching 4 KiB pages cost 10-20 us each on the
  // development VM, more than the walk itself (a 1-million-entry encode: 77-99 ms when the
  // buffer grew, 32 ms when it did not; bench/results/io_thread.md).
  const std::size_t need = checkpoint_size_estimate(idx);
  if (out.capacity() < need) {
    std::vector<std::byte>().swap(out);  // the old image is not kept: nothing to copy
    out.reserve(need + need / 2);
    advise_huge_pages(out.data(), out.capacity());
  }
  out.resize(format::checkpoint_header_bytes);
  std::byte* h = out.data();
  std::memcpy(h, format::checkpoint_magic.data(), 8);
  put_u32_at(h + 8, format::checkpoint_format_version);
  put_u32_at(h + 12, 0);
  std::memcpy(h + 16, meta.id.bytes.data(), 16);
  put_u64_at(h + 32, meta.lsn);
  put_u64_at(h + 40, meta.replay.segment);
  put_u64_at(h + 48, meta.replay.offset);
  put_u64_at(h + 56, meta.next_msg_seq);
  put_u64_at(h + 64, meta.max_epoch);
  put_u64_at(h + 72, meta.cut.segment);
  put_u64_at(h + 80, meta.cut.offset);

  encoder e(out);
  e.u32(static_cast<std::uint32_t>(idx.destinations().size()));
  for (const auto& d : idx.destinations()) {
    e.str(d);
    put_location(e, find_location(idx.destination_locations(), d));
  }
  e.u32(static_cast<std::uint32_t>(idx.durable_subscriptions().size()));
  for (const auto& [key, s] : idx.durable_subscriptions()) {
    e.str(s.client_id);
    e.str(s.subscription_name);
    e.str(s.topic);
    e.str(s.selector);
    e.str(s.owner_login);
    put_location(e, find_location(idx.subscription_locations(), key));
  }
  e.u32(static_cast<std::uint32_t>(idx.producer_windows().size()));
  for (const auto* p : idx.producers_by_recency()) {  // least recent first: loading restores the order
    const auto& [producer, window] = *p;
    e.str(producer);
    e.u32(static_cast<std::uint32_t>(window.size()));
    for (auto seq : window.seqs()) e.u64(seq);
  }
  e.u32(static_cast<std::uint32_t>(idx.targets().size()));
  // The hot loop (a million entries is ~33 MB): fixed-size entries written straight into
  // the reserved buffer, one resize per target.
  for (const auto& [target, messages] : idx.targets()) {
    e.str(target);
    e.u64(messages.size());
    std::size_t at = out.size();
    out.resize(at + messages.size() * format::checkpoint_message_entry_bytes);
    std::byte* p = out.data() + at;
    for (const auto& [seq, ref] : messages) {
      put_u64_at(p, seq);
      put_u64_at(p + 8, ref.where.segment);
      put_u32_at(p + 16, ref.where.offset);
      put_u32_at(p + 20, ref.where.size);
      put_u64_at(p + 24, static_cast<std::uint64_t>(ref.expires_ms));
      p[32] = static_cast<std::byte>(ref.priority);
      p += format::checkpoint_message_entry_bytes;
    }
  }
  e.u32(static_cast<std::uint32_t>(idx.schedules().size()));
  for (const auto& [seq, s] : idx.schedules()) {
    e.u64(seq);
    e.i64(s.deliver_at_ms);
    e.str(s.job_id);
  }
  put_u64_at(out.data() + 88, out.size() - format::checkpoint_header_bytes);
}

void seal_checkpoint(std::vector<std::byte>& image) {
  std::uint64_t sum = XXH3_64bits(image.data(), image.size());
  encoder(image).u64(sum);
}

std::vector<std::byte> encode_checkpoint(const checkpoint_meta& meta, const index& idx) {
  std::vector<std::byte> out;
  encode_checkpoint_unsealed(meta, idx, out);
  seal_checkpoint(out);
  return out;
}

result<checkpoint_meta> decode_checkpoint(std::span<const std::byte> image, const store_id& expected,
                                          index* out, std::string& reason) {
  auto fail = [&](errc e, const char* why) -> result<checkpoint_meta> {
    reason = why;
    return make_error_code(e);
  };
  std::error_code header_ec;
  const std::uint32_t version = check_header(image.data(), image.size(), header_ec, reason);
  if (version == 0) return header_ec;
  const bool has_owners = version >= format::checkpoint_owner_version;
  const std::byte* h = image.data();
  const std::uint64_t body = get_u64_at(h + 88);
  std::uint64_t sum = get_u64_at(image.data() + image.size() - 8);
  if (sum != XXH3_64bits(image.data(), image.size() - 8)) return fail(errc::corrupt_file, "checksum mismatch");
  auto meta = header_meta(h, expected, reason);
  if (!meta) return meta.error();
  checkpoint_meta m = meta.value();

  decoder d(image.subspan(format::checkpoint_header_bytes, body));
  // A definition without a location (segment 0) was created by a record not yet durable
  // when the checkpoint was taken; replaying that record after the checkpoint places it.
  std::uint32_t n = d.count(4 + location_bytes);
  for (std::uint32_t i = 0; i < n && d.ok(); ++i) {
    auto name = d.str_view();
    auto where = get_location(d);
    if (!out || !d.ok()) continue;
    if (where.segment != 0)
      out->create_destination(name, where);
    else
      out->create_destination(name);
  }
  n = d.count((has_owners ? 20 : 16) + location_bytes);
  for (std::uint32_t i = 0; i < n && d.ok(); ++i) {
    durable_subscription s;
    s.client_id = d.str();
    s.subscription_name = d.str();
    s.topic = d.str();
    s.selector = d.str();
    if (has_owners) s.owner_login = d.str();
    auto where = get_location(d);
    if (!out || !d.ok()) continue;
    if (where.segment != 0)
      out->create_subscription(s, where);
    else
      out->create_subscription(s);
  }
  n = d.count(8);
  for (std::uint32_t i = 0; i < n && d.ok(); ++i) {
    std::string producer = d.str();
    std::uint32_t k = d.count(8);
    std::deque<std::uint64_t> window;
    for (std::uint32_t j = 0; j < k && d.ok(); ++j) window.push_back(d.u64());
    if (out && d.ok()) out->load_producer(std::move(producer), std::move(window));
  }
  n = d.count(12);
  std::uint64_t scheduler_entries = 0;
  for (std::uint32_t i = 0; i < n && d.ok(); ++i) {
    std::string target = d.str();
    std::uint64_t k = d.u64();
    if (k > d.remaining() / format::checkpoint_message_entry_bytes) {
      d.fail();
      break;
    }
    auto bytes = d.bytes(k * format::checkpoint_message_entry_bytes);
    m.live_messages += k;
    if (target == format::scheduler_target) scheduler_entries = k;
    if (!out) continue;
    // A big target's nodes come from one arena (node_arena.h), not one malloc each.
    index::message_map entries(k >= arena_min_entries ? index::message_map::allocator_type(
                                                             std::make_shared<node_arena>(k))
                                                       : index::message_map::allocator_type());
    const std::byte* p = bytes.data();
    for (std::uint64_t j = 0; j < k; ++j, p += format::checkpoint_message_entry_bytes) {
      message_ref ref;
      ref.where.segment = get_u64_at(p + 8);
      ref.where.offset = get_u32_at(p + 16);
      ref.where.size = get_u32_at(p + 20);
      ref.expires_ms = static_cast<std::int64_t>(get_u64_at(p + 24));
      ref.priority = static_cast<std::uint8_t>(p[32]);
      // Entries are written in msg_seq order, so the end hint makes this O(1) each.
      entries.emplace_hint(entries.end(), get_u64_at(p), ref);
    }
    out->load_target(std::move(target), std::move(entries));
  }
  // Version 2 has no schedules list: its scheduled entries' due times and job ids are only
  // in the log, so it is refused when it has any, and recovery falls back to the other
  // checkpoint or a full replay (section 6); without any it loads as it always did.
  const bool has_schedules = version >= format::checkpoint_schedules_version;
  if (!has_schedules && scheduler_entries != 0 && d.ok())
    return fail(errc::unsupported_version, "version 2/3 checkpoint holds scheduled entries without their due times");
  if (has_schedules && d.ok()) {
    n = d.count(20);
    index::schedule_map schedules;
    for (std::uint32_t i = 0; i < n && d.ok(); ++i) {
      const std::uint64_t seq = d.u64();
      const std::int64_t deliver_at_ms = d.i64();
      const std::string_view job_id = d.str_view();
      // Written in msg_seq order, so each is an append (schedule_list.h).
      if (out && d.ok()) schedules.insert_or_assign(seq, deliver_at_ms, job_id);
    }
    if (d.ok() && n != scheduler_entries)
      return fail(errc::corrupt_file, "schedules list does not match the scheduler target's entries");
    if (out) {
      if (d.ok() && schedules.size() != n) return fail(errc::corrupt_file, "schedules list names an entry twice");
      const auto* entries = out->messages(format::scheduler_target);
      for (const auto& [seq, s] : schedules)
        if (!entries || !entries->contains(seq))
          return fail(errc::corrupt_file, "schedules list names an entry the scheduler target does not hold");
      out->load_schedules(std::move(schedules));
    }
  }
  if (!d.done()) return fail(errc::corrupt_file, "body does not parse");
  if (out) {
    out->set_next_msg_seq(std::max(out->next_msg_seq(), m.next_msg_seq));
    out->set_last_lsn(m.lsn);
  }
  return m;
}

}  // namespace tandem::journal::detail
