// read(): a live message decoded from its record, through an LRU of decoded messages (the
// body cache) and a few open segment files.
#include "journal/detail/store_impl.h"
#include "journal/errc.h"

namespace tandem::journal {

using detail::hdr;

namespace detail {

result<std::shared_ptr<const message>> read_message_at(fs::file& f, const location& where, std::uint64_t msg_seq) {
  if (where.size < hdr) return make_error_code(errc::corrupt_file);
  std::vector<std::byte> buf(where.size);
  auto n = f.read_at(buf, where.offset);
  if (!n) return n.error();
  if (n.value() != buf.size()) return make_error_code(errc::corrupt_file);
  auto h = parse_record_header(std::span<const std::byte, hdr>(buf.data(), hdr));
  if (hdr + h.length > buf.size()) return make_error_code(errc::corrupt_file);
  auto payload = std::span<const std::byte>(buf).subspan(hdr, h.length);
  if (!verify_record(std::span<const std::byte, hdr>(buf.data(), hdr), payload).empty())
    return make_error_code(errc::corrupt_file);
  auto rec = decode_payload(h.type, payload);
  if (!rec) return rec.error();
  // The message without the record's targets: which targets still hold it is the
  // index's business, and a cached copy shared by every target must not say otherwise.
  std::shared_ptr<const message> msg;
  if (auto* m = std::get_if<message_add>(&rec.value())) {
    if (m->msg_seq == msg_seq) msg = std::make_shared<const message>(std::move(static_cast<message&>(*m)));
  } else if (auto* b = std::get_if<batch>(&rec.value())) {
    for (auto& item : b->items)
      if (auto* m = std::get_if<message_add>(&item); m && m->msg_seq == msg_seq)
        msg = std::make_shared<const message>(std::move(static_cast<message&>(*m)));
  }
  if (!msg) return make_error_code(errc::not_found);
  return msg;
}

}  // namespace detail

// Requires state_mu held.
std::shared_ptr<const message> store::impl::cached_locked(std::uint64_t msg_seq) {
  auto* at = cache.find(msg_seq);
  if (!at) return nullptr;
  lru.splice(lru.begin(), lru, *at);
  return (*at)->msg;
}

// Requires state_mu held.
void store::impl::cache_insert_locked(std::uint64_t msg_seq, const std::shared_ptr<const message>& msg) {
  if (cache.contains(msg_seq)) return;
  std::size_t bytes = msg->body.size() + 128;
  for (const auto& [k, v] : msg->headers) bytes += k.size() + v.size() + 64;
  if (bytes > opts.body_cache_bytes) return;
  lru.push_front({msg_seq, msg, bytes});
  cache.put(msg_seq, lru.begin());
  cache_bytes += bytes;
  while (cache_bytes > opts.body_cache_bytes) {
    cache_bytes -= lru.back().bytes;
    cache.erase(lru.back().msg_seq);
    lru.pop_back();
  }
}

// Requires state_mu held.
result<std::shared_ptr<const message>> store::impl::read_locked(const location& where, std::uint64_t msg_seq) {
  if (auto m = cached_locked(msg_seq)) return m;
  auto fit = read_files.find(where.segment);
  if (fit == read_files.end()) {
    if (read_files.size() >= 16) read_files.erase(read_files.begin());
    auto f = fs.open(detail::segment_path(jdir, where.segment), fs::open_mode::read_only);
    if (!f) return f.error();
    fit = read_files.emplace(where.segment, std::move(f.value())).first;
  }
  auto msg = detail::read_message_at(*fit->second, where, msg_seq);
  if (msg) cache_insert_locked(msg_seq, msg.value());
  return msg;
}

}  // namespace tandem::journal
