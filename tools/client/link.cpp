#include "tools/client/link.h"

#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "broker/stomp/utf8.h"
#include "tools/client/ws_write_gather.h"

namespace tandem::client {

namespace websocket = boost::beast::websocket;

struct link::ws_stream {
  explicit ws_stream(asio::ip::tcp::socket& socket) : stream(socket) {}
  // One send() per batch of messages (ws_write_gather.h says why).
  websocket::stream<ws_write_gather<asio::ip::tcp::socket>> stream;
};

link::link(asio::any_io_executor executor, bool websocket) : socket_(std::move(executor)) {
  if (websocket) ws_ = std::make_unique<ws_stream>(socket_);
}

link::~link() = default;

void link::close() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

asio::awaitable<void> link::async_start(const broker_address& address, boost::system::error_code& ec) {
  if (!ws_) co_return;
  ws_->stream.set_option(websocket::stream_base::decorator([](websocket::request_type& request) {
    request.set(boost::beast::http::field::sec_websocket_protocol, "v12.stomp, v11.stomp, v10.stomp");
  }));
  ws_->stream.auto_fragment(false);
  const std::string host = address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host;
  co_await ws_->stream.async_handshake(host + ":" + std::to_string(address.port), address.path,
                                       asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<std::size_t> link::async_read_some(asio::mutable_buffer buffer, boost::system::error_code& ec) {
  if (ws_) co_return co_await ws_->stream.async_read_some(buffer, asio::redirect_error(asio::use_awaitable, ec));
  co_return co_await socket_.async_read_some(buffer, asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<std::size_t> link::async_write(std::string_view bytes, std::span<const std::size_t> frame_sizes,
                                               boost::system::error_code& ec) {
  if (!ws_) co_return co_await asio::async_write(socket_, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
  auto& gather = ws_->stream.next_layer();
  gather.start_gathering();
  std::size_t offset = 0;
  for (std::size_t size : frame_sizes) {
    // Text when it is UTF-8, as a browser client sends; binary otherwise (a text message
    // that is not UTF-8 is a protocol error).
    ws_->stream.text(stomp::valid_utf8(bytes.substr(offset, size)));
    co_await ws_->stream.async_write(asio::buffer(bytes.data() + offset, size), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    offset += size;
  }
  // Still gathering while sending: a frame Beast writes meanwhile queues behind these.
  while (!ec && !gather.gathered().empty()) {
    std::string out = std::exchange(gather.gathered(), {});
    co_await asio::async_write(socket_, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
  }
  gather.gathered().clear();
  gather.stop_gathering();
  co_return offset;
}

}  // namespace tandem::client
