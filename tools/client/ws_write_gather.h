// The stream under the client's WebSocket (tools/client/link.cpp, issue 18): the socket,
// with a switch that gathers what Beast writes instead of sending it.
//
// Why: the client writes one STOMP frame per WebSocket message, as browsers' clients do, and
// Beast writes each message with a send() of its own. Over TCP the client sends a whole batch
// of frames with one write; over WebSocket a batch of 100 SENDs cost 100 syscalls and made
// tandem-bench use twice the CPU per message, on the machine the broker shares. While
// gathering, Beast's writes (frame header + masked payload) are appended to one buffer and
// complete at once; link::async_write then sends the buffer with one write. The broker still
// sees one message per frame. Reads pass straight through.
//
// A control frame Beast writes on its own (a pong, the close reply) while the gathered bytes
// are being sent must not interleave with them: link keeps gathering until the buffer is
// empty, so such a frame queues behind.
//
// Threads and ownership: one executor (the connection's); the socket must outlive this.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include <boost/beast/websocket/teardown.hpp>

#include "broker/asio.h"

namespace tandem::client {

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
    if (!gathering_) {
      next_.async_write_some(buffers, std::move(completion));
      return;
    }
    auto n = append(buffers);
    auto executor = asio::get_associated_executor(completion, get_executor());
    asio::post(executor, [completion = std::move(completion), n]() mutable { completion(boost::system::error_code{}, n); });
  }

  NextLayer& next_;
  bool gathering_ = false;
  std::string gathered_;
};

// Beast closes a WebSocket by tearing down its next layer; ours is the socket below.
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

}  // namespace tandem::client
