#include "broker/engine/auth.h"

#include <array>
#include <charconv>
#include <memory>
#include <optional>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace tandem::broker {
namespace {

constexpr std::string_view legacy_scheme = "sha256:";
constexpr std::string_view pbkdf2_scheme = "pbkdf2-sha256:";
constexpr std::size_t salt_bytes = 16;
constexpr std::size_t key_bytes = 32;
using key = std::array<unsigned char, key_bytes>;

std::string to_hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[bytes[i] >> 4]);
    out.push_back(digits[bytes[i] & 0xf]);
  }
  return out;
}

std::string to_hex(std::string_view bytes) { return to_hex(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()); }

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

// SHA-256(salt || password) through EVP (the low-level SHA256_* calls are deprecated in 3.0).
std::optional<key> sha256_digest(std::string_view salt, std::string_view password) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  key out{};
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), salt.data(), salt.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), password.data(), password.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 || len != out.size()) {
    return std::nullopt;
  }
  return out;
}

std::optional<key> pbkdf2(std::string_view salt, std::string_view password, std::uint32_t iterations) {
  key out{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(), static_cast<int>(out.size()),
                        out.data()) != 1)
    return std::nullopt;
  return out;
}

bool same(const key& computed, const std::string& expected) {
  return expected.size() == computed.size() && CRYPTO_memcmp(computed.data(), expected.data(), computed.size()) == 0;
}

std::optional<std::uint32_t> parse_iterations(std::string_view text) {
  std::uint32_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < min_iterations || n > (1u << 31) - 1) return std::nullopt;
  return n;
}

bool verify_pbkdf2(std::string_view rest, std::string_view password) {
  auto c1 = rest.find(':');
  if (c1 == std::string_view::npos) return false;
  auto c2 = rest.find(':', c1 + 1);
  if (c2 == std::string_view::npos || c2 == c1 + 1) return false;
  auto iterations = parse_iterations(rest.substr(0, c1));
  auto salt = from_hex(rest.substr(c1 + 1, c2 - c1 - 1));
  auto expected = from_hex(rest.substr(c2 + 1));
  if (!iterations || !salt || !expected) return false;
  auto k = pbkdf2(*salt, password, *iterations);
  return k && same(*k, *expected);
}

bool verify_legacy(std::string_view rest, std::string_view password) {
  auto colon = rest.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  auto salt = from_hex(rest.substr(0, colon));
  auto expected = from_hex(rest.substr(colon + 1));
  if (!salt || !expected) return false;
  auto d = sha256_digest(*salt, password);
  return d && same(*d, *expected);
}

}  // namespace

std::string hash_password_with_salt(std::string_view password, std::string_view salt) {
  auto d = sha256_digest(salt, password);
  if (!d) throw std::runtime_error("SHA-256 unavailable in libcrypto");
  return std::string(legacy_scheme) + to_hex(salt) + ':' + to_hex(d->data(), d->size());
}

std::string hash_password_pbkdf2(std::string_view password, std::string_view salt, std::uint32_t iterations) {
  if (iterations < min_iterations) throw std::invalid_argument("PBKDF2 needs at least 1000 iterations");
  auto k = pbkdf2(salt, password, iterations);
  if (!k) throw std::runtime_error("PBKDF2-HMAC-SHA256 unavailable in libcrypto");
  return std::string(pbkdf2_scheme) + std::to_string(iterations) + ':' + to_hex(salt) + ':' + to_hex(k->data(), k->size());
}

std::string hash_password(std::string_view password, std::uint32_t iterations) {
  std::array<unsigned char, salt_bytes> salt{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1)
    throw std::runtime_error("RAND_bytes failed: no random source for the password salt");
  return hash_password_pbkdf2(password, std::string_view(reinterpret_cast<const char*>(salt.data()), salt.size()), iterations);
}

bool verify_password(std::string_view stored, std::string_view password) {
  if (stored.starts_with(pbkdf2_scheme)) return verify_pbkdf2(stored.substr(pbkdf2_scheme.size()), password);
  if (stored.starts_with(legacy_scheme)) return verify_legacy(stored.substr(legacy_scheme.size()), password);
  return false;
}

bool is_legacy_hash(std::string_view stored) { return stored.starts_with(legacy_scheme); }

}  // namespace tandem::broker
