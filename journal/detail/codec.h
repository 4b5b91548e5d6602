// Little-endian field-by-field encoding helpers (format.h section 3). Private to journal.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::journal::detail {

// On a little-endian host the value's bytes already are the encoding, so one unaligned
// store or load does it; GCC 12 does not merge the byte loop into one (measured: the loop
// made encoding a million-entry checkpoint ~40% slower). Big-endian hosts take the loop.
inline void put_u64_at(std::byte* p, std::uint64_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(p, &v, 8);
  } else {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
  }
}
inline void put_u32_at(std::byte* p, std::uint32_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(p, &v, 4);
  } else {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
  }
}
inline std::uint64_t get_u64_at(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&v, p, 8);
  } else {
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  }
  return v;
}
inline std::uint32_t get_u32_at(const std::byte* p) noexcept {
  std::uint32_t v = 0;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&v, p, 4);
  } else {
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  }
  return v;
}
inline std::uint16_t get_u16_at(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>(static_cast<std::uint8_t>(p[0]) |
                                    (static_cast<std::uint8_t>(p[1]) << 8));
}

// Appends encodings to a byte vector.
class encoder {
 public:
  explicit encoder(std::vector<std::byte>& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(static_cast<std::byte>(v)); }
  void u32(std::uint32_t v) {
    std::size_t at = out_.size();
    out_.resize(at + 4);
    put_u32_at(out_.data() + at, v);
  }
  void u64(std::uint64_t v) {
    std::size_t at = out_.size();
    out_.resize(at + 8);
    put_u64_at(out_.data() + at, v);
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  // Caller guarantees size < 4 GiB (checked by the record encoder).
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    raw(s.data(), s.size());
  }
  void raw(const void* p, std::size_t n) {
    std::size_t at = out_.size();
    out_.resize(at + n);
    if (n != 0) std::memcpy(out_.data() + at, p, n);
  }
  std::size_t size() const { return out_.size(); }
  std::vector<std::byte>& buffer() { return out_; }

 private:
  std::vector<std::byte>& out_;
};

// Reads encodings from a span; any overrun sets the failed flag (checked once at the end),
// so decoders stay linear instead of testing every field.
class decoder {
 public:
  explicit decoder(std::span<const std::byte> in) : p_(in.data()), end_(in.data() + in.size()) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && p_ == end_; }
  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }
  void fail() { ok_ = false; p_ = end_; }

  std::uint8_t u8() {
    if (remaining() < 1) { fail(); return 0; }
    return static_cast<std::uint8_t>(*p_++);
  }
  std::uint32_t u32() {
    if (remaining() < 4) { fail(); return 0; }
    auto v = get_u32_at(p_);
    p_ += 4;
    return v;
  }
  std::uint64_t u64() {
    if (remaining() < 8) { fail(); return 0; }
    auto v = get_u64_at(p_);
    p_ += 8;
    return v;
  }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  // A view into the input (no copy); valid while the input is.
  std::string_view str_view() {
    std::uint32_t n = u32();
    if (remaining() < n) { fail(); return {}; }
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  std::string str() { return std::string(str_view()); }
  std::span<const std::byte> bytes(std::size_t n) {
    if (remaining() < n) { fail(); return {}; }
    std::span<const std::byte> s(p_, n);
    p_ += n;
    return s;
  }
  // A count that must be plausible: each element takes at least `min_bytes`.
  std::uint32_t count(std::size_t min_bytes) {
    std::uint32_t n = u32();
    if (min_bytes != 0 && static_cast<std::uint64_t>(n) * min_bytes > remaining()) { fail(); return 0; }
    return n;
  }

 private:
  const std::byte* p_;
  const std::byte* end_;
  bool ok_ = true;
};

}  // namespace tandem::journal::detail
