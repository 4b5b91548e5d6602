// The admin port over HTTPS (admin_tls_listen): the TLS session and its instantiation of
// admin_http::serve (detail/admin_http_serve.h), in a file of their own so the plain and
// the TLS request loops compile in parallel (issue 19).
#include "broker/admin_http.h"

#include "broker/asio.h"  // before Beast, which includes Asio
#include <boost/beast/ssl/ssl_stream.hpp>

#include "broker/detail/admin_http_serve.h"
#include "broker/log.h"

namespace tandem::broker {

namespace beast = boost::beast;

asio::awaitable<void> admin_http::tls_session(asio::ip::tcp::socket socket) {
  try {
    boost::system::error_code ec;
    std::string peer = socket.remote_endpoint(ec).address().to_string();
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls_);
    beast::get_lowest_layer(stream).expires_after(detail::admin_request_timeout);
    co_await stream.async_handshake(boost::asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      // Plain HTTP sent to the HTTPS port, an untrusted client certificate, a scanner: one
      // line per 10 s with the count of the others, or a scanner writes the log full.
      static log::rate_limiter failures(std::chrono::seconds(10));
      std::uint64_t suppressed = 0;
      if (failures.allow(suppressed))
        log::warn("admin", "TLS handshake failed",
                  {log::kv("remote", peer), log::kv("error", ec.message()), log::kv("suppressed", suppressed)});
      co_return;
    }
    co_await serve(stream);
    beast::get_lowest_layer(stream).expires_after(detail::admin_request_timeout);
    co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));  // close_notify; errors don't matter
  } catch (const std::exception& e) {
    log::warn("admin", "request failed", {log::kv("error", e.what())});
  }
}

}  // namespace tandem::broker
