#include "broker/ws_transport.h"

#include <type_traits>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "broker/log.h"
#include "broker/stomp/utf8.h"
#include "broker/tls.h"
#include "broker/ws_policy.h"
#include "broker/ws_read_buffer.h"
#include "broker/ws_write_gather.h"

namespace tandem::broker {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

constexpr std::uint32_t max_upgrade_header_bytes = 8 * 1024;
// Gathered WebSocket bytes are sent once this many have accumulated (the connection's batch
// is at most 64 frames or 1 MiB, plus one large frame).
constexpr std::size_t max_gather_bytes = 256 * 1024;
// The two gather buffers keep their capacity from one batch to the next, up to this much
// each: a connection that once sent a large frame does not hold its size for good.
constexpr std::size_t max_kept_gather_bytes = 2 * max_gather_bytes;
// Beast's websocket::stream keeps a fixed buffer of this size for frame headers and control
// frames (`tcp_frame_size`, private in boost/beast/websocket/stream.hpp, Boost 1.74). It has no
// write buffer on the server side without permessage-deflate, which is never negotiated.
constexpr std::size_t beast_frame_buffer_bytes = 1536;

// The next layer of the WebSocket stream: the connection's socket, or a TLS stream over it.
struct plain_layer {
  explicit plain_layer(asio::ip::tcp::socket& socket, ssl::context*) : socket_(socket) {}
  asio::ip::tcp::socket& stream() { return socket_; }
  asio::awaitable<void> handshake(boost::system::error_code&, std::string&) { co_return; }
  static constexpr const char* name = "ws";
  asio::ip::tcp::socket& socket_;
};

struct tls_layer {
  tls_layer(asio::ip::tcp::socket& socket, ssl::context* context) : socket_(socket), tls_(socket, *context) {}
  ssl::stream<asio::ip::tcp::socket&>& stream() { return tls_.stream; }
  asio::awaitable<void> handshake(boost::system::error_code& ec, std::string& why) {
    co_await tls_handshake(tls_.stream, socket_, ec);
    if (ec) why = "TLS handshake failed: " + ec.message();
  }
  static constexpr const char* name = "wss";
  asio::ip::tcp::socket& socket_;
  tls_stream tls_;
};

template <typename Layer>
class ws_transport final : public transport {
 public:
  using next_layer = std::remove_reference_t<decltype(std::declval<Layer&>().stream())>;

  ws_transport(asio::ip::tcp::socket& socket, ssl::context* tls, const ws_options& options)
      : layer_(socket, tls), gather_(layer_.stream()), ws_(gather_), options_(options) {
    if constexpr (std::is_same_v<Layer, tls_layer>) tls_buffer_bytes_ = tls_buffer_bytes(layer_.stream());
  }

  const char* name() const override { return Layer::name; }

  asio::awaitable<void> async_start(boost::system::error_code& ec, std::string& why) override {
    co_await layer_.handshake(ec, why);
    if (ec) co_return;
    beast::flat_buffer buffer;
    http::request_parser<http::empty_body> parser;
    parser.header_limit(max_upgrade_header_bytes);
    co_await http::async_read(layer_.stream(), buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      why = "WebSocket upgrade: bad HTTP request: " + ec.message();
      co_return;
    }
    auto request = parser.release();
    if (!websocket::is_upgrade(request)) {
      co_await refuse(request, http::status::upgrade_required,
                      "This port speaks STOMP over WebSocket (subprotocols v12.stomp, v11.stomp, v10.stomp).");
      ec = asio::error::operation_not_supported;
      why = "not a WebSocket upgrade request";
      co_return;
    }
    std::string offered;
    auto [first, last] = request.equal_range(http::field::sec_websocket_protocol);
    for (auto it = first; it != last; ++it) {
      if (!offered.empty()) offered += ',';
      offered.append(it->value().data(), it->value().size());
    }
    auto origin = request[http::field::origin];
    auto decision = ws_policy::decide(offered, std::string_view(origin.data(), origin.size()), options_.allowed_origins);
    if (!decision.accept) {
      co_await refuse(request, static_cast<http::status>(decision.status), decision.reason);
      ec = asio::error::access_denied;
      why = "WebSocket upgrade refused: " + decision.reason;
      co_return;
    }
    ws_.read_message_max(options_.max_message_bytes);
    ws_.auto_fragment(false);
    // A named copy, not an init-capture: GCC 12 loses init-captures in a coroutine template.
    const std::string protocol = decision.subprotocol;
    ws_.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& response) {
      response.set(http::field::server, "tandem");
      if (!protocol.empty()) response.set(http::field::sec_websocket_protocol, protocol);
    }));
    co_await ws_.async_accept(request, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      why = "WebSocket upgrade failed: " + ec.message();
      co_return;
    }
    // Beast's synchronous reads (async_read_some) must never wait: a close frame it
    // writes after a protocol error goes out without blocking or not at all.
    layer_.socket_.non_blocking(true, ec);
    if (ec) why = "WebSocket: cannot make the socket non-blocking: " + ec.message();
  }

  asio::awaitable<std::size_t> async_read_some(asio::mutable_buffer buffer, boost::system::error_code& ec) override {
    if (teardown_) {
      // A protocol error found by a synchronous read: Beast wrote its close frame; shut the
      // connection down as its asynchronous read would have, then report the error.
      teardown_ = false;
      boost::system::error_code ignored;
      auto token = asio::redirect_error(asio::use_awaitable, ignored);
      co_await asio::async_initiate<decltype(token), void(boost::system::error_code)>(
          [this](auto handler) {
            using websocket::async_teardown;
            async_teardown(beast::role_type::server, gather_, std::move(handler));
          },
          token);
    }
    if (deferred_error_) {
      ec = std::exchange(deferred_error_, {});
      co_return 0;
    }
    std::size_t n = co_await ws_.async_read_some(buffer, asio::redirect_error(asio::use_awaitable, ec));
    delivered_ += n;
    // Beast stops at the end of each message; read on while whole messages are already in
    // memory (ws_read_buffer.h), so the parser gets a batch of frames as over TCP.
    auto& layer = ws_.next_layer();
    while (!ec && n < buffer.size() && layer.whole_data_payload() > delivered_) {
      boost::system::error_code more_ec;
      std::size_t more = 0;
      if (!writing_ && layer.data_whole_before_control(delivered_)) {
        more = ws_.read_some(buffer + n, more_ec);
      } else {
        more = co_await ws_.async_read_some(buffer + n, asio::redirect_error(asio::use_awaitable, more_ec));
      }
      n += more;
      delivered_ += more;
      if (more_ec) {
        deferred_error_ = more_ec;  // the bytes read so far first, the error at the next call
        teardown_ = layer.teardown_wanted();
        break;
      }
    }
    co_return n;
  }

  asio::awaitable<void> async_write(std::span<const std::string> frames, boost::system::error_code& ec) override {
    // One STOMP frame per message, as STOMP-over-WebSocket clients expect; a text message
    // when it is UTF-8 (a browser drops a connection whose text message is not).
    writing_ = true;
    if (gather_.passthrough_writes() > 0) {
      // A pong Beast began before is still in flight: Beast orders its own writes
      // (ws_write_gather.h).
      for (const auto& frame : frames) {
        ws_.text(stomp::valid_utf8(frame));
        co_await ws_.async_write(asio::buffer(frame), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
      }
    } else {
      // Beast's synchronous writes only append to the gathered bytes, which go out with one
      // send() per max_gather_bytes, as a TCP batch goes out with one writev.
      gather_.start_gathering();
      for (const auto& frame : frames) {
        ws_.text(stomp::valid_utf8(frame));
        ws_.write(asio::buffer(frame), ec);
        if (ec) break;
        if (gather_.gathered().size() >= max_gather_bytes) co_await send_gathered(ec);
      }
      co_await send_gathered(ec);
      gather_.gathered().clear();
      gather_.stop_gathering();
      if (gather_.gathered().capacity() > max_kept_gather_bytes) std::string().swap(gather_.gathered());
      if (sending_.capacity() > max_kept_gather_bytes) std::string().swap(sending_);
    }
    writing_ = false;
  }

  asio::awaitable<void> async_finish() override {
    // Close frame, then Beast waits for the client's and tears the connection down.
    writing_ = true;
    boost::system::error_code ec;
    co_await ws_.async_close(websocket::close_code::normal, asio::redirect_error(asio::use_awaitable, ec));
  }

  std::size_t buffer_bytes() const override {
    // The gather buffers as of the last write (the connection asks after each read).
    std::size_t bytes = ws_.next_layer().capacity() + beast_frame_buffer_bytes + gather_.capacity() +
                        heap_bytes(sending_);
    if constexpr (std::is_same_v<Layer, tls_layer>) bytes += tls_buffer_bytes_;
    return bytes;
  }

  bool is_hang_up(const boost::system::error_code& ec) const override {
    return ec == websocket::error::closed || ec == asio::error::eof || ec == ssl::error::stream_truncated;
  }

 private:
  // Still gathering while sending: a pong Beast writes meanwhile lands behind these bytes.
  // The two buffers trade places and keep their capacity.
  asio::awaitable<void> send_gathered(boost::system::error_code& ec) {
    while (!ec && !gather_.gathered().empty()) {
      sending_.clear();
      sending_.swap(gather_.gathered());
      std::size_t written = 0;
      if constexpr (std::is_same_v<Layer, plain_layer>) {
        // As tcp_transport does (issue 19): the socket almost always takes the bytes at once,
        // which saves the asynchronous operation's completion post and a resumption (a
        // RECEIPT per message under request/response load). Not over TLS: a TLS stream's
        // synchronous write cannot stop halfway on a non-blocking socket.
        written = layer_.socket_.write_some(asio::buffer(sending_), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) ec.clear();
        if (ec) break;
      }
      if (written < sending_.size())
        co_await asio::async_write(layer_.stream(), asio::buffer(sending_) + written,
                                   asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  asio::awaitable<void> refuse(const http::request<http::empty_body>& request, http::status status, std::string_view reason) {
    http::response<http::string_body> response{status, request.version()};
    response.set(http::field::server, "tandem");
    response.set(http::field::content_type, "text/plain; charset=utf-8");
    response.keep_alive(false);
    response.body() = std::string(reason) + "\n";
    response.prepare_payload();
    boost::system::error_code ignored;
    co_await http::async_write(layer_.stream(), response, asio::redirect_error(asio::use_awaitable, ignored));
  }

  Layer layer_;
  ws_write_gather<next_layer> gather_;
  // Read in 64 KiB chunks under Beast (ws_read_buffer.h says why), batches written with one
  // send() (ws_write_gather.h).
  websocket::stream<ws_read_buffer<ws_write_gather<next_layer>>> ws_;
  std::string sending_;  // gathered bytes being sent
  const ws_options& options_;
  std::uint64_t delivered_ = 0;  // message payload bytes Beast has handed to us
  boost::system::error_code deferred_error_;
  bool teardown_ = false;  // ... and the teardown to do before reporting it
  // An asynchronous write of ours is in progress (or the close): Beast's synchronous reads,
  // which may write a close frame, wait until it is done.
  bool writing_ = false;
  std::size_t tls_buffer_bytes_ = 0;  // wss: the TLS stream's, fixed (tls.h)
};

}  // namespace

std::unique_ptr<transport> make_ws_transport(asio::ip::tcp::socket& socket, ssl::context* tls, const ws_options& options) {
  if (tls) return std::make_unique<ws_transport<tls_layer>>(socket, tls, options);
  return std::make_unique<ws_transport<plain_layer>>(socket, nullptr, options);
}

}  // namespace tandem::broker
