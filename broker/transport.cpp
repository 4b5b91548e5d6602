#include "broker/transport.h"

#include <array>
#include <vector>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include "broker/tls.h"
#include "broker/ws_transport.h"

namespace tandem::broker {

namespace {

// One write gathers the batch; Asio makes it one writev (of at most 64 iovecs, which is
// also the connection's batch limit).
template <typename Stream>
asio::awaitable<void> gathered_write(Stream& stream, std::span<const std::string> frames, boost::system::error_code& ec) {
  if (frames.size() == 1) {
    // The common case under request/response load (one RECEIPT or MESSAGE at a time): a
    // single buffer, because async_write copies a buffer vector into each operation (one
    // allocation per write, issue 19).
    co_await asio::async_write(stream, asio::buffer(frames.front()), asio::redirect_error(asio::use_awaitable, ec));
    co_return;
  }
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(frames.size());
  for (const auto& f : frames) buffers.push_back(asio::buffer(f));
  co_await asio::async_write(stream, buffers, asio::redirect_error(asio::use_awaitable, ec));
}

class tcp_transport final : public transport {
 public:
  explicit tcp_transport(asio::ip::tcp::socket& socket) : socket_(socket) {}
  const char* name() const override { return "tcp"; }
  asio::awaitable<void> async_start(boost::system::error_code&, std::string&) override { co_return; }
  asio::awaitable<std::size_t> async_read_some(asio::mutable_buffer buffer, boost::system::error_code& ec) override {
    co_return co_await socket_.async_read_some(buffer, asio::redirect_error(asio::use_awaitable, ec));
  }
  // Under request/response load the socket almost always takes a whole batch at once: it is
  // written here with one non-blocking writev, which saves the asynchronous operation's
  // completion post and a resumption of the writer coroutine per batch (issue 19). What the
  // socket did not take goes the asynchronous way.
  asio::awaitable<void> async_write(std::span<const std::string> frames, boost::system::error_code& ec) override {
    const std::size_t written = write_now(frames, ec);
    if (ec) co_return;
    if (frames.size() == 1) {
      if (written < frames.front().size())
        co_await asio::async_write(socket_, asio::buffer(frames.front()) + written,
                                   asio::redirect_error(asio::use_awaitable, ec));
      co_return;
    }
    std::vector<asio::const_buffer> rest;
    std::size_t skip = written;
    for (const auto& f : frames) {
      if (skip >= f.size()) {
        skip -= f.size();
        continue;
      }
      rest.push_back(asio::buffer(f) + skip);
      skip = 0;
    }
    if (!rest.empty()) co_await asio::async_write(socket_, rest, asio::redirect_error(asio::use_awaitable, ec));
  }
  asio::awaitable<void> async_finish() override {
    // Half-close, then drain the client's input until it hangs up: a close with unread
    // input makes the kernel send RST, which may discard our last frame (an ERROR) in the
    // client's receive buffer.
    boost::system::error_code ec;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    std::array<char, 4096> scratch;
    while (!ec) co_await socket_.async_read_some(asio::buffer(scratch), asio::redirect_error(asio::use_awaitable, ec));
  }
  std::size_t buffer_bytes() const override { return 0; }
  bool is_hang_up(const boost::system::error_code& ec) const override { return ec == asio::error::eof; }

 private:
  // Bytes the socket took without waiting; `ec` only for a real failure (a full socket
  // buffer is 0 bytes, no error).
  std::size_t write_now(std::span<const std::string> frames, boost::system::error_code& ec) {
    if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
    if (ec) return 0;
    std::size_t n = 0;
    if (frames.size() == 1) {
      n = socket_.write_some(asio::buffer(frames.front()), ec);
    } else {
      std::vector<asio::const_buffer> buffers;
      buffers.reserve(frames.size());
      for (const auto& f : frames) buffers.push_back(asio::buffer(f));
      n = socket_.write_some(buffers, ec);
    }
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec.clear();
      return 0;
    }
    return ec ? 0 : n;
  }

  asio::ip::tcp::socket& socket_;
};

class tls_transport final : public transport {
 public:
  tls_transport(asio::ip::tcp::socket& socket, ssl::context& context)
      : socket_(socket), tls_(socket, context), buffer_bytes_(tls_buffer_bytes(tls_.stream)) {}
  const char* name() const override { return "tls"; }
  asio::awaitable<void> async_start(boost::system::error_code& ec, std::string& why) override {
    co_await tls_handshake(tls_.stream, socket_, ec);
    if (ec) why = "TLS handshake failed: " + ec.message();
  }
  asio::awaitable<std::size_t> async_read_some(asio::mutable_buffer buffer, boost::system::error_code& ec) override {
    co_return co_await tls_.stream.async_read_some(buffer, asio::redirect_error(asio::use_awaitable, ec));
  }
  asio::awaitable<void> async_write(std::span<const std::string> frames, boost::system::error_code& ec) override {
    co_await gathered_write(tls_.stream, frames, ec);
  }
  asio::awaitable<void> async_finish() override {
    // close_notify, then wait for the client's (or its hang-up).
    boost::system::error_code ec;
    co_await tls_.stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
  }
  std::size_t buffer_bytes() const override { return buffer_bytes_; }
  bool is_hang_up(const boost::system::error_code& ec) const override {
    // A TLS client that hangs up without close_notify reads as stream_truncated: for a
    // STOMP session that is the same as a TCP close (the parser tells a torn frame).
    return ec == asio::error::eof || ec == ssl::error::stream_truncated;
  }

 private:
  asio::ip::tcp::socket& socket_;
  tls_stream tls_;
  std::size_t buffer_bytes_;  // fixed for the stream's life
};

}  // namespace

asio::awaitable<void> tls_handshake(ssl::stream<asio::ip::tcp::socket&>& stream, asio::ip::tcp::socket& socket,
                                    boost::system::error_code& ec) {
  // Nothing is queued for writing before CONNECT, which needs the handshake: the writer
  // cannot race it. The watchdog's CONNECT deadline bounds a client that stalls here.
  co_await stream.async_handshake(ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  // The handshake's last flight leaves the client's CONNECT waiting for our ACK; Linux
  // would delay it ~40 ms. Quick ACK mode is not sticky, so this covers only that first
  // exchange, which is the one a reconnecting client waits on.
  int one = 1;
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

bool peer_hung_up(asio::ip::tcp::socket& socket) {
  if (!socket.is_open()) return true;
  // POLLRDHUP: the peer's FIN arrived (TCP_CLOSE_WAIT), even behind unread data, which is
  // exactly what POLLIN alone cannot tell. POLLHUP and POLLERR: an RST, or a socket error
  // such as ETIMEDOUT after unanswered keepalive probes (a vanished host).
  pollfd p{socket.native_handle(), POLLRDHUP, 0};
  if (::poll(&p, 1, 0) != 1) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

std::unique_ptr<transport> make_transport(asio::ip::tcp::socket& socket, ssl::context* tls, const ws_options* ws) {
  if (ws) return make_ws_transport(socket, tls, *ws);
  if (tls) return std::make_unique<tls_transport>(socket, *tls);
  return std::make_unique<tcp_transport>(socket);
}

}  // namespace tandem::broker
