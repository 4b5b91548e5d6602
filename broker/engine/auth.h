// Password hashes of broker users, the form engine_config.h's user_account::password_hash
// holds and `tandemd --hash-password` prints. Two schemes, hex lowercase:
//
//   pbkdf2-sha256:<iterations>:<salt hex>:<key hex>   (made by hash_password since issue 17)
//       key = PBKDF2-HMAC-SHA256(password, salt, iterations, 32 bytes) (OpenSSL
//       PKCS5_PBKDF2_HMAC), salt = 16 random bytes, iterations decimal (>= 1000).
//   sha256:<salt hex>:<digest hex>                    (legacy, before issue 17)
//       digest = SHA-256(salt bytes || password bytes). Still verified so existing config
//       files keep working, but one round of SHA-256 is cheap to brute-force: is_legacy_hash
//       tells main to log each such user as to be rehashed.
//
// Why a slow KDF although the broker checks a password on every CONNECT: a stolen config file
// must not give the passwords away (4,525 guesses a second were answered over the wire alone;
// offline, SHA-256 runs billions a second). The cost is paid once per login and process:
// credential_checker (credentials.h) runs verify_password off the io thread and remembers the
// logins it has verified. default_iterations costs about 0.4 s of one core on the 2026 CI
// machine (OWASP's 2023 figure for PBKDF2-HMAC-SHA256).
//
// Comparison is constant-time (CRYPTO_memcmp) so a timing probe learns nothing.
// Threads: pure functions, safe on any thread (OpenSSL 3's EVP and RAND are thread-safe).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tandem::broker {

inline constexpr std::uint32_t default_iterations = 600000;
inline constexpr std::uint32_t min_iterations = 1000;

// A fresh PBKDF2 hash of `password` with a random 16-byte salt (RAND_bytes). Throws
// std::runtime_error only if the OS random source fails (startup / the --hash-password tool).
std::string hash_password(std::string_view password, std::uint32_t iterations = default_iterations);

// PBKDF2 with a given salt (tests, golden values).
std::string hash_password_pbkdf2(std::string_view password, std::string_view salt, std::uint32_t iterations);

// The legacy salted SHA-256 form with a given salt (tests of old config files).
std::string hash_password_with_salt(std::string_view password, std::string_view salt);

// True when `stored` is a well-formed hash (either scheme) of `password`. A malformed `stored`
// is never a match.
bool verify_password(std::string_view stored, std::string_view password);

// True for the legacy "sha256:" form: still accepted, but should be made again.
bool is_legacy_hash(std::string_view stored);

}  // namespace tandem::broker
