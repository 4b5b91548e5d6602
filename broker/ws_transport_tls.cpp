// STOMP over WebSocket over TLS (wss_listen): the TLS instantiation of
// detail/ws_transport_impl.h, in a file of its own so the two instantiations compile in
// parallel (issue 19).
#include "broker/tls.h"

#include <boost/beast/websocket/ssl.hpp>

#include "broker/detail/ws_transport_impl.h"

namespace tandem::broker {

// Named, not in an anonymous namespace: GCC warns (-Wsubobject-linkage) when a class template
// from a header holds a member of an anonymous namespace's type. Defined in this file only.
namespace detail {

// The next layer of the WebSocket stream: a TLS stream over the connection's socket.
struct tls_layer {
  tls_layer(asio::ip::tcp::socket& socket, ssl::context* context)
      : socket_(socket), tls_(socket, *context), buffer_bytes_(tls_buffer_bytes(tls_.stream)) {}
  ssl::stream<asio::ip::tcp::socket&>& stream() { return tls_.stream; }
  asio::awaitable<void> handshake(boost::system::error_code& ec, std::string& why) {
    co_await tls_handshake(tls_.stream, socket_, ec);
    if (ec) why = "TLS handshake failed: " + ec.message();
  }
  std::size_t buffer_bytes() const { return buffer_bytes_; }
  static constexpr const char* name = "wss";
  static constexpr bool writes_synchronously = false;  // see ws_transport::send_gathered
  asio::ip::tcp::socket& socket_;
  tls_stream tls_;
  std::size_t buffer_bytes_;  // the TLS stream's, fixed (tls.h)
};

}  // namespace detail

std::unique_ptr<transport> detail::make_wss_transport(asio::ip::tcp::socket& socket, ssl::context& tls,
                                                      const ws_options& options) {
  return std::make_unique<ws_transport<tls_layer>>(socket, &tls, options);
}

}  // namespace tandem::broker
