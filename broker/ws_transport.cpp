// STOMP over WebSocket on the plain socket (ws_listen); the class template is in
// detail/ws_transport_impl.h, its TLS instantiation (wss_listen) in ws_transport_tls.cpp.
#include "broker/ws_transport.h"

#include "broker/detail/ws_transport_impl.h"

namespace tandem::broker {

// Named, not in an anonymous namespace: GCC warns (-Wsubobject-linkage) when a class template
// from a header holds a member of an anonymous namespace's type. Defined in this file only.
namespace detail {

// The next layer of the WebSocket stream: the connection's socket.
struct plain_layer {
  explicit plain_layer(asio::ip::tcp::socket& socket, boost::asio::ssl::context*) : socket_(socket) {}
  asio::ip::tcp::socket& stream() { return socket_; }
  asio::awaitable<void> handshake(boost::system::error_code&, std::string&) { co_return; }
  std::size_t buffer_bytes() const { return 0; }
  static constexpr const char* name = "ws";
  static constexpr bool writes_synchronously = true;  // see ws_transport::send_gathered
  asio::ip::tcp::socket& socket_;
};

}  // namespace detail

std::unique_ptr<transport> make_ws_transport(asio::ip::tcp::socket& socket, boost::asio::ssl::context* tls,
                                             const ws_options& options) {
  if (tls) return detail::make_wss_transport(socket, *tls, options);
  return std::make_unique<detail::ws_transport<detail::plain_layer>>(socket, nullptr, options);
}

}  // namespace tandem::broker
