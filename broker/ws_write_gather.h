// The stream under a WebSocket that writes batches (issue 18): the socket (or the TLS stream
// over it), with a switch that gathers what Beast writes instead of sending it. Used by the
// broker (broker/ws_transport.cpp, under ws_read_buffer.h) and by the client
// (tools/client/link.cpp).
//
// Why: STOMP over WebSocket is one frame per message, and Beast writes each message with a
// send() of its own, where a TCP connection writes a whole batch of frames with one writev.
// While gathering, Beast's writes (frame header + payload, masked on the client) are
// appended to one buffer: its synchronous write returns at once, its asynchronous write
// completes (posted) at once. The owner then sends the buffer with one write, and the peer
// still sees one message per frame.
//
// Nothing may interleave with those bytes. A control frame Beast writes on its own (a pong
// for a ping, read by a pending read; a close) while gathering lands in the buffer between
// whole messages, so the owner keeps gathering until the buffer is empty. A control frame
// whose write began before gathering went straight to the socket and may still be in flight
// (the socket's buffer full): passthrough_writes() counts those, and while it is not zero the
// owner writes the Beast way instead (Beast orders its own writes).
//
// Threads and ownership: one executor (the owner's); the next layer must outlive this. A
// passed-through write's completion touches this object: every Beast operation runs under a
// coroutine of the owner, which keeps it alive until the operation completes.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include <boost/beast/websocket/teardown.hpp>

#include "broker/asio.h"

namespace tandem::broker {

template <typename NextLayer>
class ws_write_gather {
 public:
  using executor_type = typename NextLayer::executor_type;
  using next_layer_type = NextLayer;

  explicit ws_write_gather(NextLayer& next) : next_(next) {}

  executor_type get_executor() noexcept { return next_.get_executor(); }
  NextLayer& next_layer() { return next_; }

  // Between start_gathering and stop_gathering, writes land in gathered().
  void start_gathering() { gathering_ = true; }
  void stop_gathering() { gathering_ = false; }
  std::string& gathered() { return gathered_; }
  const std::string& gathered() const { return gathered_; }
  // Asynchronous writes passed to the next layer and not yet complete.
  std::size_t passthrough_writes() const { return passthrough_writes_; }

  template <typename MutableBuffers, typename Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    return next_.async_read_some(buffers, std::forward<Handler>(handler));
  }

  template <typename ConstBuffers, typename Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    return asio::async_initiate<Handler, void(boost::system::error_code, std::size_t)>(
        [this](auto&& completion, const ConstBuffers& from) { start_write(from, std::move(completion)); }, handler,
        buffers);
  }

  // The throwing forms complete Beast's SyncStream requirements.
  template <typename MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers) {
    boost::system::error_code ec;
    auto n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <typename ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers) {
    boost::system::error_code ec;
    auto n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <typename MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, boost::system::error_code& ec) {
    return next_.read_some(buffers, ec);
  }
  template <typename ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers, boost::system::error_code& ec) {
    if (!gathering_) return next_.write_some(buffers, ec);
    ec = {};
    return append(buffers);
  }

 private:
  template <typename ConstBuffers>
  std::size_t append(const ConstBuffers& buffers) {
    const auto n = asio::buffer_size(buffers);
    const auto at = gathered_.size();
    gathered_.resize(at + n);
    asio::buffer_copy(asio::buffer(gathered_.data() + at, n), buffers);
    return n;
  }

  template <typename ConstBuffers, typename Completion>
  void start_write(const ConstBuffers& buffers, Completion&& completion) {
    auto executor = asio::get_associated_executor(completion, get_executor());
    if (!gathering_) {
      ++passthrough_writes_;
      next_.async_write_some(buffers, asio::bind_executor(executor, [this, completion = std::move(completion)](
                                                                        boost::system::error_code ec, std::size_t n) mutable {
                               --passthrough_writes_;
                               completion(ec, n);
                             }));
      return;
    }
    auto n = append(buffers);
    asio::post(executor, [completion = std::move(completion), n]() mutable { completion(boost::system::error_code{}, n); });
  }

  NextLayer& next_;
  bool gathering_ = false;
  std::size_t passthrough_writes_ = 0;
  std::string gathered_;
};

// Beast closes a WebSocket by tearing down its next layer; ours is the layer below.
template <typename NextLayer>
void teardown(boost::beast::role_type role, ws_write_gather<NextLayer>& stream, boost::system::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

template <typename NextLayer, typename TeardownHandler>
void async_teardown(boost::beast::role_type role, ws_write_gather<NextLayer>& stream, TeardownHandler&& handler) {
  using boost::beast::websocket::async_teardown;
  async_teardown(role, stream.next_layer(), std::forward<TeardownHandler>(handler));
}

}  // namespace tandem::broker
