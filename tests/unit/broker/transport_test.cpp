// broker/transport.h on real loopback sockets: peer_hung_up (a parked connection sees its
// client's FIN or RST without reading) and buffer_bytes (what TLS and WebSocket transports
// hold, counted in max_memory_bytes) (issue 17).
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

#include <sys/socket.h>

#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <openssl/ssl.h>

#include "broker/tls.h"
#include "broker/transport.h"
#include "broker/ws_transport.h"

using namespace tandem;
using namespace tandem::broker;

namespace {

using tcp = asio::ip::tcp;

// A connected pair on loopback: `server` as a listener's accepted socket, `client` its peer.
struct socket_pair {
  asio::io_context io;
  tcp::socket server{io};
  tcp::socket client{io};
  socket_pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
  }
};

// The kernel handles the segments of a loopback connection at once, but give it a moment.
bool soon(asio::ip::tcp::socket& s) {
  for (int i = 0; i < 200; ++i) {
    if (peer_hung_up(s)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// A STOMP client's first steps over WebSocket: the upgrade with v12.stomp, then CONNECT.
asio::awaitable<void> stomp_over_websocket(boost::beast::websocket::stream<tcp::socket&>& client) {
  namespace websocket = boost::beast::websocket;
  client.set_option(websocket::stream_base::decorator([](websocket::request_type& request) {
    request.set(boost::beast::http::field::sec_websocket_protocol, "v12.stomp");
  }));
  co_await client.async_handshake("127.0.0.1", "/", asio::use_awaitable);
  co_await client.async_write(asio::buffer(std::string("CONNECT\naccept-version:1.2\n\n\0", 30)), asio::use_awaitable);
}

}  // namespace

TEST_CASE("peer_hung_up sees a FIN behind unread data, an RST, and nothing while the client is there") {
  {
    socket_pair p;
    CHECK_FALSE(peer_hung_up(p.server));
    std::string half_frame = "SEND\ndestination:/queue/a\ncontent-length:100000\n\n" + std::string(20000, 'x');
    asio::write(p.client, asio::buffer(half_frame));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK_FALSE(peer_hung_up(p.server));  // unread data alone is not a hang-up
    p.client.shutdown(tcp::socket::shutdown_send);  // FIN, behind the 20,000 unread bytes
    CHECK(soon(p.server));
    // Nothing was read to find out: the bytes are all still there.
    std::size_t available = p.server.available();
    CHECK(available == half_frame.size());
  }
  {
    socket_pair p;
    asio::write(p.client, asio::buffer(std::string(5000, 'y')));
    p.client.set_option(asio::socket_base::linger(true, 0));
    p.client.close();  // RST
    CHECK(soon(p.server));
  }
  {
    socket_pair p;
    p.server.close();
    CHECK(peer_hung_up(p.server));  // nothing to ask: treated as gone
  }
}

TEST_CASE("a TCP transport holds no buffers; a TLS transport holds Asio's and the BIO pair's, 68 KiB") {
  socket_pair p;
  auto plain = make_transport(p.server, nullptr, nullptr);
  CHECK(plain->buffer_bytes() == 0);

  ssl::context context(ssl::context::tls_server);
  auto tls = make_transport(p.server, &context, nullptr);
  // Asio: two buffers of one record (17 KiB); OpenSSL's BIO pair: one per direction, 17 KiB.
  CHECK(tls->buffer_bytes() == 4 * 17 * 1024);

  // OpenSSL's own record buffers are freed while idle, which is why they are not counted.
  ssl::stream<tcp::socket&> stream(p.server, context);
  CHECK((SSL_get_mode(stream.native_handle()) & SSL_MODE_RELEASE_BUFFERS) != 0);
  CHECK(tls_buffer_bytes(stream) == 4 * 17 * 1024);

  ws_options options;
  auto wss = make_transport(p.server, &context, &options);
  CHECK(wss->buffer_bytes() == 4 * 17 * 1024 + 1536);  // no read yet: TLS and Beast's frame buffer
}

TEST_CASE("a WebSocket transport counts its 64 KiB read chunk from the first read on") {
  namespace beast = boost::beast;
  namespace websocket = beast::websocket;
  socket_pair p;
  ws_options options;
  auto ws = make_transport(p.server, nullptr, &options);
  CHECK(ws->buffer_bytes() == 1536);

  websocket::stream<tcp::socket&> client(p.client);
  std::size_t after_start = 0, after_read = 0;
  std::string got;
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> {
        boost::system::error_code ec;
        std::string why;
        co_await ws->async_start(ec, why);
        REQUIRE_MESSAGE(!ec, why);
        after_start = ws->buffer_bytes();
        char data[256];
        std::size_t n = co_await ws->async_read_some(asio::buffer(data), ec);
        REQUIRE(!ec);
        got.assign(data, n);
        after_read = ws->buffer_bytes();
      },
      asio::detached);
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> {
        co_await stomp_over_websocket(client);
      },
      asio::detached);
  p.io.run();
  CHECK(got.rfind("CONNECT", 0) == 0);
  CHECK(after_start == 1536);
  CHECK(after_read == 64 * 1024 + 1536);
}

TEST_CASE("a WebSocket transport counts its gather buffers and does not keep a large frame's size") {
  namespace beast = boost::beast;
  namespace websocket = beast::websocket;
  socket_pair p;
  ws_options options;
  auto ws = make_transport(p.server, nullptr, &options);
  websocket::stream<tcp::socket&> client(p.client);
  const std::size_t read_side = 64 * 1024 + 1536;
  std::size_t after_small = 0, after_large = 0;
  std::size_t client_got = 0;
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> {
        boost::system::error_code ec;
        std::string why;
        co_await ws->async_start(ec, why);
        REQUIRE_MESSAGE(!ec, why);
        char data[256];
        co_await ws->async_read_some(asio::buffer(data), ec);
        REQUIRE(!ec);
        const std::string small[] = {std::string("CONNECTED\nversion:1.2\n\n\0", 24)};
        co_await ws->async_write(small, ec);
        REQUIRE(!ec);
        after_small = ws->buffer_bytes();
        const std::string large[] = {"MESSAGE\n\n" + std::string(3 << 20, 'x') + std::string(1, '\0')};
        co_await ws->async_write(large, ec);
        REQUIRE(!ec);
        after_large = ws->buffer_bytes();
      },
      asio::detached);
  asio::co_spawn(
      p.io,
      [&]() -> asio::awaitable<void> {
        client.read_message_max(8 << 20);
        co_await stomp_over_websocket(client);
        for (int i = 0; i < 2; ++i) {
          beast::flat_buffer message;
          client_got += co_await client.async_read(message, asio::use_awaitable);
        }
      },
      asio::detached);
  p.io.run();
  CHECK(client_got == 24 + 10 + (3u << 20));
  // The small frame's bytes stay allocated for the next batch and are counted ...
  CHECK(after_small > read_side);
  CHECK(after_small < read_side + 4096);
  // ... a 3 MiB frame's are given back once it is sent.
  CHECK(after_large < read_side + 4096);
}
