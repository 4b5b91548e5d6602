#include "journal/identity.h"

#include <charconv>
#include <chrono>
#include <random>

#include "journal/errc.h"
#include "journal/format.h"

namespace tandem::journal {

store_id store_id::generate() {
  std::random_device rd;  // getrandom(2) on Linux
  store_id id;
  for (std::size_t i = 0; i < id.bytes.size(); i += 4) {
    std::uint32_t v = rd();
    for (std::size_t j = 0; j < 4; ++j) id.bytes[i + j] = static_cast<std::uint8_t>(v >> (8 * j));
  }
  return id;
}

std::optional<store_id> store_id::parse(std::string_view hex) {
  if (hex.size() != 32) return std::nullopt;
  store_id id;
  for (std::size_t i = 0; i < 16; ++i) {
    std::uint8_t v = 0;
    auto [p, ec] = std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, v, 16);
    if (ec != std::errc{} || p != hex.data() + 2 * i + 2) return std::nullopt;
    id.bytes[i] = v;
  }
  return id;
}

std::string store_id::to_hex() const {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  s.reserve(32);
  for (auto b : bytes) {
    s.push_back(digits[b >> 4]);
    s.push_back(digits[b & 0xf]);
  }
  return s;
}

namespace {

std::string render(const identity& id) {
  std::string s;
  s += "format=";
  s += id.format;
  s += "\nversion=" + std::to_string(id.version);
  s += "\nstore_id=" + id.id.to_hex();
  s += "\ncreated_ms=" + std::to_string(id.created_ms);
  s += '\n';
  return s;
}

// Takes the next "key=value\n" line; false when it is not exactly `key`.
bool take(std::string_view& text, std::string_view key, std::string_view& value) {
  auto nl = text.find('\n');
  if (nl == std::string_view::npos) return false;
  std::string_view line = text.substr(0, nl);
  text.remove_prefix(nl + 1);
  if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != '=') return false;
  value = line.substr(key.size() + 1);
  return true;
}

template <class Int>
bool to_int(std::string_view s, Int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

}  // namespace

result<identity> read_identity(fs::file_system& fs, const std::filesystem::path& dir) {
  auto text = fs::read_file(fs, dir / format::identity_file_name);
  if (!text) {
    if (text.error() == std::errc::no_such_file_or_directory) return make_error_code(errc::not_a_store);
    return text.error();
  }
  std::string_view t = text.value();
  std::string_view v;
  identity id;
  if (!take(t, "format", v)) return make_error_code(errc::corrupt_file);
  id.format = std::string(v);
  if (id.format != format::identity_format_name) return make_error_code(errc::unsupported_version);
  if (!take(t, "version", v) || !to_int(v, id.version)) return make_error_code(errc::corrupt_file);
  if (id.version != format::identity_version) return make_error_code(errc::unsupported_version);
  if (!take(t, "store_id", v)) return make_error_code(errc::corrupt_file);
  auto sid = store_id::parse(v);
  if (!sid) return make_error_code(errc::corrupt_file);
  id.id = *sid;
  if (!take(t, "created_ms", v) || !to_int(v, id.created_ms)) return make_error_code(errc::corrupt_file);
  if (!t.empty()) return make_error_code(errc::corrupt_file);
  return id;
}

result<identity> create_store(fs::file_system& fs, const std::filesystem::path& dir,
                              std::optional<store_id> sid) {
  auto path = dir / format::identity_file_name;
  auto present = fs.exists(path);
  if (!present) return present.error();
  if (present.value()) return std::make_error_code(std::errc::file_exists);
  if (auto ec = fs.create_directories(dir / format::journal_dir_name)) return ec;
  if (auto ec = fs.sync_dir(dir)) return ec;
  identity id;
  id.format = std::string(format::identity_format_name);
  id.version = format::identity_version;
  id.id = sid ? *sid : store_id::generate();
  id.created_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  std::string text = render(id);
  if (auto ec = fs::write_file_atomically(fs, path, std::as_bytes(std::span(text)))) return ec;
  return id;
}

}  // namespace tandem::journal
