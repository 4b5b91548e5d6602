// The stream under a broker-side WebSocket (broker/ws_transport.cpp, issue 18): the socket,
// or the TLS stream over it, read in large chunks.
//
// Why it exists: Beast's websocket::stream reads the next layer into a fixed 1536-byte
// buffer (`tcp_frame_size` in boost/beast/websocket/stream.hpp, not configurable in Boost
// 1.74), and each of its reads stops at a message boundary. A browser client writes one STOMP
// frame per WebSocket message, so without this layer a 1 KiB SEND cost a recv() of its own
// (and a trip through the reactor), where the TCP listener reads 64 KiB of frames at once:
// WebSocket ran at 43% of TCP with 16 pipelining producers. Here one recv() fills up to
// `chunk_bytes`, and Beast's small reads are served from memory (completion posted, never
// inline, as Asio requires).
//
// It also follows the WebSocket frame headers in the bytes it reads (length fields only: the
// client's frames are masked, permessage-deflate is never negotiated) and counts the payload
// bytes of the data frames it holds whole. While that count is ahead of what Beast delivered,
// another read of Beast completes from memory: ws_transport reads on to fill the
// connection's 64 KiB buffer with many messages at once, as a TCP read does, without ever
// waiting on the socket for a message that is not all there while it holds one that is.
//
// It also notes where the control frames (ping, pong, close) lie among the data: Beast answers
// a ping or a close with a write of its own, so ws_transport lets Beast read synchronously
// only up to the next control frame (data_whole_before_control).
//
// Synchronous operations never wait, because ws_transport calls Beast's synchronous read_some
// only for messages held whole in memory, when no write of its own is in progress:
//   read_some     serves what is in memory, never the socket (would_block when empty: a bug
//                 of the caller, which then fails the connection rather than blocking)
//   write_some    the next layer's, on a non-blocking socket: only Beast's close frame after a
//                 protocol error it found in those messages goes this way (dropped if the
//                 socket's buffer is full: the client is not reading)
//   teardown      no I/O: it is noted (teardown_wanted) and ws_transport does it the
//                 asynchronous way, as Beast's asynchronous read would have
//
// Asynchronous writes pass straight through. Close: Beast tears the connection down through
// async_teardown, found by ADL below, which forwards to the next layer's.
//
// Threads and ownership: one executor (the connection's); the next layer must outlive this.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include "broker/asio.h"
#include "broker/ws_sync_stream.h"

namespace tandem::broker {

template <typename NextLayer>
class ws_read_buffer : public ws_sync_stream<ws_read_buffer<NextLayer>> {
 public:
  using executor_type = typename NextLayer::executor_type;
  using next_layer_type = NextLayer;
  static constexpr std::size_t chunk_bytes = 64 * 1024;

  explicit ws_read_buffer(NextLayer& next) : next_(next) {}

  executor_type get_executor() noexcept { return next_.get_executor(); }
  NextLayer& next_layer() { return next_; }
  // Bytes allocated for the chunk (0 before the first read, then chunk_bytes for good):
  // counted in max_memory_bytes (transport.h buffer_bytes).
  std::size_t capacity() const { return buffer_.capacity(); }
  // Payload bytes of the data frames (text, binary, continuation) read whole so far.
  std::uint64_t whole_data_payload() const { return whole_data_payload_; }
  // True when the data payload after the first `delivered` bytes begins with bytes of a whole
  // frame read, and no control frame comes before them: Beast can deliver them without
  // reading the socket or writing anything.
  bool data_whole_before_control(std::uint64_t delivered) {
    // A control frame with payload bytes after it delivered is behind Beast.
    while (!control_after_.empty() && control_after_.front() < delivered) control_after_.pop_front();
    return whole_data_payload_ > delivered && (control_after_.empty() || control_after_.front() > delivered);
  }
  // Beast tore the connection down in a synchronous read (after a protocol error); the
  // socket is untouched, ws_transport does the teardown.
  bool teardown_wanted() const { return teardown_wanted_; }
  void note_teardown() { teardown_wanted_ = true; }

  template <typename MutableBuffers, typename Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    return asio::async_initiate<Handler, void(boost::system::error_code, std::size_t)>(
        [this](auto&& completion, const MutableBuffers& into) { start_read(into, std::move(completion)); }, handler,
        buffers);
  }

  template <typename ConstBuffers, typename Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    return next_.async_write_some(buffers, std::forward<Handler>(handler));
  }

  // The throwing forms (Beast's SyncStream) come from ws_sync_stream.h.
  using ws_sync_stream<ws_read_buffer>::read_some;
  using ws_sync_stream<ws_read_buffer>::write_some;
  template <typename MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, boost::system::error_code& ec) {
    ec = {};
    if (buffer_.size() == 0 && asio::buffer_size(buffers) > 0) {
      ec = asio::error::would_block;
      return 0;
    }
    return take(buffers);
  }
  template <typename ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers, boost::system::error_code& ec) {
    return next_.write_some(buffers, ec);
  }

 private:
  // Follows the frame headers through the last `n` bytes committed to buffer_ (RFC 6455
  // section 5.2: 2 bytes, then 2 or 8 bytes of extended length, then a 4-byte mask key).
  void scan(std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(buffer_.data().data()) + buffer_.size() - n;
    while (n > 0) {
      if (payload_left_ > 0) {
        auto k = static_cast<std::size_t>(std::min<std::uint64_t>(payload_left_, n));
        payload_left_ -= k;
        p += k;
        n -= k;
        if (payload_left_ == 0) frame_done();
        continue;
      }
      header_[header_size_++] = *p++;
      --n;
      if (header_size_ < 2) continue;
      const unsigned length7 = header_[1] & 0x7f;
      const std::size_t extended = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
      const std::size_t wanted = 2 + extended + ((header_[1] & 0x80) ? 4 : 0);
      if (header_size_ < wanted) continue;
      std::uint64_t length = length7;
      if (extended) {
        length = 0;
        for (std::size_t i = 0; i < extended; ++i) length = (length << 8) | header_[2 + i];
      }
      data_frame_ = (header_[0] & 0x0f) <= 2;
      if (!data_frame_) control_after_.push_back(whole_data_payload_);
      frame_length_ = length;
      payload_left_ = length;
      header_size_ = 0;
      if (payload_left_ == 0) frame_done();
    }
  }
  void frame_done() {
    if (data_frame_) whole_data_payload_ += frame_length_;
  }

  template <typename MutableBuffers>
  std::size_t take(const MutableBuffers& buffers) {
    auto n = asio::buffer_copy(buffers, buffer_.data());
    buffer_.consume(n);
    return n;
  }

  template <typename MutableBuffers, typename Completion>
  void start_read(const MutableBuffers& buffers, Completion&& completion) {
    if (buffer_.size() > 0 || asio::buffer_size(buffers) == 0) {
      auto n = take(buffers);
      auto executor = asio::get_associated_executor(completion, get_executor());
      asio::post(executor, [completion = std::move(completion), n]() mutable { completion(boost::system::error_code{}, n); });
      return;
    }
    // The next layer completes through its own executor, never inline, so calling the
    // completion from its handler keeps Asio's rule.
    // The executor is taken before the lambda moves the completion away.
    auto executor = asio::get_associated_executor(completion, get_executor());
    next_.async_read_some(buffer_.prepare(chunk_bytes),
                          asio::bind_executor(executor, [this, buffers, completion = std::move(completion)](
                                                            boost::system::error_code ec, std::size_t n) mutable {
                            buffer_.commit(n);
                            scan(n);
                            completion(ec, ec ? std::size_t{0} : take(buffers));
                          }));
  }

  NextLayer& next_;
  boost::beast::flat_buffer buffer_;
  // scan(): the header being read, the payload left of the current frame.
  unsigned char header_[14] = {};
  std::size_t header_size_ = 0;
  std::uint64_t payload_left_ = 0, frame_length_ = 0, whole_data_payload_ = 0;
  bool data_frame_ = false;
  // For each control frame not yet behind Beast: the data payload bytes before it.
  std::deque<std::uint64_t> control_after_;
  bool teardown_wanted_ = false;
};

// Beast closes a WebSocket by tearing down its next layer; ours is the layer below.
template <typename NextLayer>
void teardown(boost::beast::role_type, ws_read_buffer<NextLayer>& stream, boost::system::error_code& ec) {
  ec = {};
  stream.note_teardown();
}

template <typename NextLayer, typename TeardownHandler>
void async_teardown(boost::beast::role_type role, ws_read_buffer<NextLayer>& stream, TeardownHandler&& handler) {
  using boost::beast::websocket::async_teardown;
  async_teardown(role, stream.next_layer(), std::forward<TeardownHandler>(handler));
}

}  // namespace tandem::broker
