#include "broker/tls.h"

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <fmt/format.h>

namespace tandem::broker {

std::size_t tls_buffer_bytes(ssl::stream<asio::ip::tcp::socket&>& stream) {
  constexpr std::size_t asio_record_buffers = 2 * ssl::detail::stream_core::max_tls_record_size;
  // Asio reads and writes the network side of the pair; OpenSSL's side is the SSL's BIO.
  // Both halves were made with one size (BIO_new_bio_pair(.., 0, .., 0): the default).
  BIO* internal = SSL_get_rbio(stream.native_handle());
  const auto half = internal ? static_cast<std::size_t>(BIO_get_write_buf_size(internal, 0)) : 0;
  return asio_record_buffers + 2 * half;
}

std::shared_ptr<ssl::context> make_tls_context(const config& cfg, std::string& why) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  boost::system::error_code ec;
  // TLS 1.2 is the floor; compression off (CRIME); single-use DH keys.
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression |
                       ssl::context::single_dh_use,
                   ec);
  auto fail = [&](std::string_view key, const std::string& file, std::string_view what) {
    why = fmt::format("{}: key \"{}\": {} \"{}\": {}", cfg.source, key, what, file, ec.message());
    return nullptr;
  };
  if (ec) return fail("tls_listen", "", "cannot set the TLS options of");
  // No TLS 1.3 session tickets. OpenSSL sends two right after the handshake, and a client
  // that reads and writes one SSL object from two threads (Debian 12's stomp.py 8.0.0:
  // receiver thread started before CONNECT, upstream issue #450) can process them in the
  // middle of its CONNECT write: the record is lost while send() reports success, and the
  // client hangs until our CONNECT deadline (issue 20). The cost is TLS 1.3 resumption:
  // every reconnect does a full handshake (~1 ms of CPU here), which a broker whose clients
  // hold long-lived connections does not notice. tests/integration/13_tls.py pins it.
  if (SSL_CTX_set_num_tickets(ctx->native_handle(), 0) != 1) {
    why = fmt::format("{}: key \"tls_listen\": OpenSSL refused to turn session tickets off", cfg.source);
    return nullptr;
  }
  ctx->use_certificate_chain_file(cfg.tls_cert, ec);
  if (ec) return fail("tls_cert", cfg.tls_cert, "cannot load the certificate chain (PEM)");
  ctx->use_private_key_file(cfg.tls_key, ssl::context::pem, ec);
  if (ec) return fail("tls_key", cfg.tls_key, "cannot load the private key (PEM)");
  // use_private_key_file does not compare the key with the certificate; OpenSSL does here.
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    why = fmt::format("{}: key \"tls_key\": \"{}\" is not the private key of the certificate in \"{}\"", cfg.source,
                      cfg.tls_key, cfg.tls_cert);
    return nullptr;
  }
  if (!cfg.tls_ca.empty()) {
    ctx->load_verify_file(cfg.tls_ca, ec);
    if (ec) return fail("tls_ca", cfg.tls_ca, "cannot load the CA certificates (PEM)");
  }
  if (cfg.tls_verify_client) {
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
    if (ec) return fail("tls_verify_client", cfg.tls_ca, "cannot require client certificates from");
  }
  return ctx;
}

}  // namespace tandem::broker
