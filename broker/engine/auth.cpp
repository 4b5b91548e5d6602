#include "broker/engine/auth.h"

#include <array>
#include <memory>
#include <optional>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace tandem::broker {
namespace {

constexpr std::string_view scheme = "sha256:";
constexpr std::size_t salt_bytes = 16;

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0xf]);
  }
  return out;
}

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
std::optional<std::array<unsigned char, 32>> digest(std::string_view salt, std::string_view password) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), salt.data(), salt.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), password.data(), password.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 || len != out.size()) {
    return std::nullopt;
  }
  return out;
}

}  // namespace

std::string hash_password_with_salt(std::string_view password, std::string_view salt) {
  auto d = digest(salt, password);
  if (!d) throw std::runtime_error("SHA-256 unavailable in libcrypto");
  std::string out(scheme);
  out += to_hex(salt);
  out += ':';
  out += to_hex(std::string_view(reinterpret_cast<const char*>(d->data()), d->size()));
  return out;
}

std::string hash_password(std::string_view password) {
  std::array<unsigned char, salt_bytes> salt{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1)
    throw std::runtime_error("RAND_bytes failed: no random source for the password salt");
  return hash_password_with_salt(password, std::string_view(reinterpret_cast<const char*>(salt.data()), salt.size()));
}

bool verify_password(std::string_view stored, std::string_view password) {
  if (stored.substr(0, scheme.size()) != scheme) return false;
  stored.remove_prefix(scheme.size());
  auto colon = stored.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  auto salt = from_hex(stored.substr(0, colon));
  auto expected = from_hex(stored.substr(colon + 1));
  if (!salt || !expected || expected->size() != 32) return false;
  auto d = digest(*salt, password);
  if (!d) return false;
  return CRYPTO_memcmp(d->data(), expected->data(), d->size()) == 0;
}

}  // namespace tandem::broker
