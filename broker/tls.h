// STOMP over TLS: the server-side OpenSSL context for the `tls_listen` listener, and the
// stream a TLS connection reads and writes through (Asio SSL over the connection's socket).
//
// What is configured (config keys tls_cert, tls_key, tls_ca, tls_verify_client):
//   - TLS 1.2 or newer only (no SSLv3, TLS 1.0, 1.1); OpenSSL's default cipher list, which
//     on Debian 12 (OpenSSL 3, SECLEVEL 2) already excludes weak ciphers and small keys.
//   - tls_cert is a PEM chain (server certificate first), tls_key its private key; the key is
//     checked against the certificate at load, so a mismatched pair fails at start and at
//     `tandemd --check-config`, not at the first client.
//   - tls_verify_client: clients must present a certificate that chains to tls_ca, or the
//     handshake fails. STOMP login/passcode still apply on top of it.
//
// Why the context is made at start, on every broker, slave or master: a bad certificate must
// stop a broker before it waits hours as slave and then fails at takeover, when it matters.
// Certificates are read once; renewing one means restarting the broker (a slave first, then
// the master, so clients fail over once).
//
// Threads: the context is built on the main thread before the io_context runs and only read
// afterwards (OpenSSL contexts are safe for concurrent handshakes). A tls_stream lives on
// its connection's executor, like the socket under it.
#pragma once

#include <memory>
#include <string>

#include "broker/asio.h"
#include <boost/asio/ssl.hpp>

#include "broker/config.h"

namespace tandem::broker {

namespace ssl = boost::asio::ssl;

// The server context for `cfg` (tls_cert, tls_key, tls_ca, tls_verify_client). Null when it
// cannot be made; `why` then names the file and OpenSSL's reason.
std::shared_ptr<ssl::context> make_tls_context(const config& cfg, std::string& why);

// A TLS connection's stream. It refers to the connection's socket (which stays the owner of
// the descriptor, so closing the socket aborts a pending handshake, read or write).
struct tls_stream {
  tls_stream(asio::ip::tcp::socket& socket, ssl::context& context) : stream(socket, context) {}
  ssl::stream<asio::ip::tcp::socket&> stream;
};

// The bytes a TLS stream holds for its whole life, counted in max_memory_bytes as the
// transport's buffers (transport.h): Asio's stream_core keeps an input and an output buffer of
// one TLS record each (17 KiB, boost/asio/ssl/detail/stream_core.hpp), and the BIO pair
// between OpenSSL and Asio holds one buffer per direction (asked of the BIO, OpenSSL's default
// 17 KiB): 68 KiB in all, exact. Not counted: OpenSSL's own record buffers (about 17 KiB per
// direction), which it frees whenever no record is half read or half written, because Asio
// sets SSL_MODE_RELEASE_BUFFERS on every stream (boost/asio/ssl/detail/impl/engine.ipp), and
// the SSL object's state (an idle TLS connection costs 13 KiB of RSS beyond the counted bytes,
// 10 of them what any connection costs: tests/integration/13_tls.py, docs/operations.md).
std::size_t tls_buffer_bytes(ssl::stream<asio::ip::tcp::socket&>& stream);

// The server side of the handshake on `stream` (over `socket`), then TCP quick-ack for the
// client's first frame. Used by the TLS and the wss transports (broker/transport.h).
asio::awaitable<void> tls_handshake(ssl::stream<asio::ip::tcp::socket&>& stream, asio::ip::tcp::socket& socket,
                                    boost::system::error_code& ec);

}  // namespace tandem::broker
