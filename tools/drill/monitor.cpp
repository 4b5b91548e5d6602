#include "tools/drill/monitor.h"

#include "broker/asio.h"  // before Beast, which includes Asio
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <functional>

#include <fmt/format.h>

#include "broker/stomp/encoder.h"
#include "broker/stomp/parser.h"
#include "tools/drill/history.h"

namespace tandem::drill {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// RST on close: a poll every few ms must not fill the port range with TIME_WAIT sockets.
void hard_close(beast::tcp_stream& stream) {
  error_code ignored;
  stream.socket().set_option(asio::socket_base::linger(true, 0), ignored);
  stream.socket().close(ignored);
}

struct health_answer {
  bool ok = false;
  nlohmann::json body;
};

asio::awaitable<health_answer> get_health(tcp::endpoint endpoint, std::chrono::milliseconds timeout) {
  health_answer out;
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(timeout);
  error_code ec;
  co_await stream.async_connect(endpoint, asio::redirect_error(use_awaitable, ec));
  if (!ec) {
    http::request<http::empty_body> req{http::verb::get, "/health", 11};
    req.set(http::field::host, endpoint.address().to_string());
    req.set(http::field::connection, "close");
    co_await http::async_write(stream, req, asio::redirect_error(use_awaitable, ec));
  }
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  if (!ec) co_await http::async_read(stream, buffer, res, asio::redirect_error(use_awaitable, ec));
  hard_close(stream);
  if (ec) co_return out;
  out.body = nlohmann::json::parse(res.body(), nullptr, false);
  out.ok = out.body.is_object();
  co_return out;
}

struct probe_answer {
  bool serving = false;
  bool wrote = false;
  clock_type::time_point sent;
  std::optional<clock_type::time_point> receipted;
};

// CONNECT, and with `make_send`, one persistent SEND and its RECEIPT. The SEND is made only
// once CONNECTED arrived, so its seq goes only to a broker that serves.
asio::awaitable<probe_answer> stomp_probe(tcp::endpoint endpoint, std::chrono::milliseconds timeout,
                                          const std::function<std::string()>& make_send) {
  probe_answer out;
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(timeout);
  error_code ec;
  co_await stream.async_connect(endpoint, asio::redirect_error(use_awaitable, ec));
  static const std::string connect_frame = "CONNECT\naccept-version:1.2\nhost:tandem-drill-probe\n\n" + std::string(1, '\0');
  if (!ec) co_await asio::async_write(stream, asio::buffer(connect_frame), asio::redirect_error(use_awaitable, ec));
  stomp::parser parser(stomp::direction::from_server);
  char buf[2048];
  std::string unread;  // bytes read after the last frame, for the next one
  // Reads until one frame arrives; its command, or "" on error or timeout.
  auto next_frame = [&]() -> asio::awaitable<std::string> {
    for (;;) {
      std::span<const char> in(unread.data(), unread.size());
      while (!in.empty()) {
        auto [used, status] = parser.feed(in);
        in = in.subspan(used);
        if (status == stomp::parse_status::frame_ready) {
          unread.erase(0, unread.size() - in.size());
          co_return parser.current_frame().command;
        }
        if (status == stomp::parse_status::error) {
          ec = asio::error::invalid_argument;
          co_return std::string();
        }
      }
      unread.clear();
      if (ec) co_return std::string();
      std::size_t n = co_await stream.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      unread.assign(buf, n);
    }
  };
  out.serving = !ec && co_await next_frame() == "CONNECTED";
  if (out.serving && make_send) {
    const std::string send = make_send();
    stream.expires_after(timeout);
    out.sent = clock_type::now();
    co_await asio::async_write(stream, asio::buffer(send), asio::redirect_error(use_awaitable, ec));
    out.wrote = !ec;
    for (std::string command; !ec && command != "ERROR";) {
      command = co_await next_frame();
      if (command == "RECEIPT") {
        out.receipted = clock_type::now();
        break;
      }
    }
  }
  hard_close(stream);
  co_return out;
}

}  // namespace

monitor::monitor(const broker_fleet& fleet, monitor_options options)
    : fleet_(fleet), options_(options), views_(fleet.size()) {}

monitor::~monitor() { stop(); }

void monitor::start() {
  for (std::uint32_t slot = 0; slot < fleet_.size(); ++slot) {
    asio::co_spawn(io_, health_loop(slot), asio::detached);
    if (options_.probe) asio::co_spawn(io_, probe_loop(slot), asio::detached);
  }
  thread_ = std::thread([this] { io_.run(); });
}

void monitor::stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] { stopping_ = true; });
  // The loops see stopping_ at their next turn (within period + timeout) and return; then
  // run() returns because no work is left.
  thread_.join();
}

asio::awaitable<void> monitor::health_loop(std::uint32_t slot) {
  asio::steady_timer timer(io_);
  const tcp::endpoint endpoint(asio::ip::make_address(fleet_.host(slot)), fleet_.admin_port(slot));
  while (!stopping_) {
    try {
      const auto inc = fleet_.incarnation(slot);
      if (fleet_.running(slot)) {
        observation o;
        o.source = evidence_source::health;
        o.slot = slot;
        o.incarnation = inc;
        o.start = clock_type::now();
        health_answer a = co_await get_health(endpoint, options_.timeout);
        o.end = clock_type::now();
        if (fleet_.incarnation(slot) == inc) {
          broker_view v;
          v.answered = a.ok;
          v.incarnation = inc;
          v.at = o.end;
          if (a.ok) {
            v.role = a.body.value("role", "");
            v.epoch = a.body.value("epoch", std::uint64_t{0});
            v.health = std::move(a.body);
          }
          o.positive = v.role == "master";
          o.epoch = v.epoch;
          record(o, &v);
        }
      }
    } catch (const std::exception&) {
      // A malformed answer (json type error): treat as no answer this turn.
    }
    timer.expires_after(options_.period);
    error_code ignored;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored));
  }
}

asio::awaitable<void> monitor::probe_loop(std::uint32_t slot) {
  asio::steady_timer timer(io_);
  const tcp::endpoint endpoint(asio::ip::make_address(fleet_.host(slot)), fleet_.client_port(slot));
  while (!stopping_) {
    try {
      const auto inc = fleet_.incarnation(slot);
      if (fleet_.running(slot)) {
        observation o;
        o.source = evidence_source::probe;
        o.slot = slot;
        o.incarnation = inc;
        o.start = clock_type::now();
        std::uint64_t seq = 0;
        std::function<std::string()> make_send;
        if (!options_.probe_destination.empty()) {
          make_send = [&] {
            seq = next_probe_seq_++;
            stomp::frame f;
            f.command = "SEND";
            f.add("destination", options_.probe_destination);
            f.add("persistent", "true");
            f.add("receipt", fmt::format("probe-{}", seq));
            f.add("drill-p", std::to_string(options_.probe_stream));
            f.add("drill-seq", std::to_string(seq));
            f.body = make_body(options_.probe_stream, seq, options_.probe_bytes);
            std::string bytes;
            stomp::encode(f, stomp::version::v1_2, bytes);
            return bytes;
          };
        }
        probe_answer a = co_await stomp_probe(endpoint, options_.timeout, make_send);
        o.positive = a.serving;
        o.end = clock_type::now();
        const bool same = fleet_.incarnation(slot) == inc;
        if (same) record(o, nullptr);
        if (seq != 0) {
          // Kept even when the SEND failed half-way (it may be stored); one written by a
          // process we cannot name (a restart in between) is kept without a writer: its
          // delivery is still checked. A seq whose SEND never reached the socket leaves a
          // gap, which the history ignores.
          if (a.wrote) {
            std::lock_guard lock(mutex_);
            probe_writes_.push_back({probe_write{seq, a.sent, a.receipted}, slot, same ? inc : 0});
          }
        }
      }
    } catch (const std::exception&) {
    }
    timer.expires_after(options_.probe_period);
    error_code ignored;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored));
  }
}

void monitor::record(const observation& o, const broker_view* health) {
  std::lock_guard lock(mutex_);
  book_.add(o);
  auto& v = views_[o.slot];
  if (health) {
    bool serving = v.serving;
    auto probed_at = v.probed_at;
    v = *health;
    v.serving = serving;
    v.probed_at = probed_at;
  } else {
    v.serving = o.positive;
    v.probed_at = o.end;
  }
}

std::vector<broker_view> monitor::views() const {
  std::lock_guard lock(mutex_);
  return views_;
}

std::optional<std::uint32_t> monitor::master_after(clock_type::time_point since) const {
  std::lock_guard lock(mutex_);
  std::optional<std::uint32_t> found;
  for (std::uint32_t slot = 0; slot < views_.size(); ++slot) {
    const auto& v = views_[slot];
    if (v.at > since && v.answered && v.role == "master") {
      if (found) return std::nullopt;
      found = slot;
    }
  }
  return found;
}

bool monitor::role_after(std::uint32_t slot, const std::string& role, clock_type::time_point since) const {
  std::lock_guard lock(mutex_);
  if (slot >= views_.size()) return false;
  const auto& v = views_[slot];
  return v.at > since && v.answered && v.role == role;
}

std::vector<probe_write_record> monitor::probe_writes() const {
  std::lock_guard lock(mutex_);
  return probe_writes_;
}

mastership_book monitor::book() const {
  std::lock_guard lock(mutex_);
  return book_;
}

}  // namespace tandem::drill
