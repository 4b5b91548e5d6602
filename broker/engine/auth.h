// Password hashes of broker users: "sha256:<salt hex>:<digest hex>", where digest =
// SHA-256(salt bytes || password bytes), salt = 16 random bytes, hex lowercase. This is the
// form engine_config.h's user_account::password_hash holds and `tandemd --hash-password`
// prints; config.cpp checks only the form (is_password_hash_form), this file the content.
//
// Why salted SHA-256 and not a slow KDF: the broker checks a password on every CONNECT, and a
// reconnect storm after a failover is hundreds of CONNECTs at once on the io thread; the salt
// stops precomputed tables, and the config file holding the hashes is root-readable only.
// Comparison is constant-time (CRYPTO_memcmp) so a timing probe learns nothing.
//
// Threads: pure functions, safe on any thread (OpenSSL 3's EVP and RAND are thread-safe).
#pragma once

#include <string>
#include <string_view>

namespace tandem::broker {

// A fresh hash of `password` with a random 16-byte salt (RAND_bytes). Throws
// std::runtime_error only if the OS random source fails (startup / the --hash-password tool).
std::string hash_password(std::string_view password);

// The same with a given salt (tests, golden values).
std::string hash_password_with_salt(std::string_view password, std::string_view salt);

// True when `stored` is a well-formed hash of `password`. A malformed `stored` is never a match.
bool verify_password(std::string_view stored, std::string_view password);

}  // namespace tandem::broker
