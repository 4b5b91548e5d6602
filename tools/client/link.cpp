#include "tools/client/link.h"

#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "broker/stomp/utf8.h"
#include "broker/ws_write_gather.h"

namespace tandem::client {

namespace websocket = boost::beast::websocket;

// Gathered WebSocket bytes are sent once this many have accumulated.
constexpr std::size_t max_gather_bytes = 256 * 1024;

struct link::ws_stream {
  explicit ws_stream(asio::ip::tcp::socket& socket) : stream(socket) {}
  // One send() per batch of messages (ws_write_gather.h says why).
  websocket::stream<broker::ws_write_gather<asio::ip::tcp::socket>> stream;
  std::string sending;  // the gathered bytes being sent
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

// Still gathering while sending: a frame Beast writes meanwhile (a pong of the read loop)
// queues behind these. The two buffers trade places and keep their capacity.
asio::awaitable<void> link::send_gathered(boost::system::error_code& ec) {
  auto& gather = ws_->stream.next_layer();
  while (!ec && !gather.gathered().empty()) {
    ws_->sending.clear();
    ws_->sending.swap(gather.gathered());
    co_await asio::async_write(socket_, asio::buffer(ws_->sending), asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<std::size_t> link::async_write(std::string_view bytes, std::span<const std::size_t> frame_sizes,
                                               boost::system::error_code& ec) {
  if (!ws_) co_return co_await asio::async_write(socket_, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
  auto& gather = ws_->stream.next_layer();
  std::size_t offset = 0;
  if (gather.passthrough_writes() > 0) {
    // A pong of the read loop is still on its way to the socket: Beast orders its own writes.
    for (std::size_t size : frame_sizes) {
      ws_->stream.text(stomp::valid_utf8(bytes.substr(offset, size)));
      co_await ws_->stream.async_write(asio::buffer(bytes.data() + offset, size),
                                       asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      offset += size;
    }
    co_return offset;
  }
  gather.start_gathering();
  for (std::size_t size : frame_sizes) {
    // Text when it is UTF-8, as a browser client sends; binary otherwise (a text message
    // that is not UTF-8 is a protocol error).
    ws_->stream.text(stomp::valid_utf8(bytes.substr(offset, size)));
    // Beast's synchronous write: while gathering, the layer below only appends, so this
    // never touches the socket, and it saves an asynchronous operation, a completion post
    // and a coroutine resumption per message (issue 18). A pong the read loop writes while
    // this coroutine waits lands between whole messages.
    ws_->stream.write(asio::buffer(bytes.data() + offset, size), ec);
    if (ec) break;
    offset += size;
    // A batch may hold megabytes: sent in slices, the buffers stay small (fresh pages cost
    // a page fault each on this kind of machine).
    if (gather.gathered().size() >= max_gather_bytes) co_await send_gathered(ec);
  }
  co_await send_gathered(ec);
  gather.gathered().clear();
  gather.stop_gathering();
  co_return offset;
}

}  // namespace tandem::client
