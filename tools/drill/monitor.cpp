#include "tools/drill/monitor.h"

#include "broker/asio.h"  // before Beast, which includes Asio
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "broker/stomp/parser.h"

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

asio::awaitable<bool> stomp_probe(tcp::endpoint endpoint, std::chrono::milliseconds timeout) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(timeout);
  error_code ec;
  co_await stream.async_connect(endpoint, asio::redirect_error(use_awaitable, ec));
  static const std::string connect_frame = "CONNECT\naccept-version:1.2\nhost:tandem-drill-probe\n\n" + std::string(1, '\0');
  if (!ec) co_await asio::async_write(stream, asio::buffer(connect_frame), asio::redirect_error(use_awaitable, ec));
  bool serving = false;
  stomp::parser parser(stomp::direction::from_server);
  char buf[2048];
  while (!ec && !serving) {
    std::size_t n = co_await stream.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    std::span<const char> in(buf, n);
    while (!in.empty()) {
      auto [used, status] = parser.feed(in);
      in = in.subspan(used);
      if (status == stomp::parse_status::frame_ready) {
        serving = parser.current_frame().command == "CONNECTED";
        ec = asio::error::eof;  // one frame is all we wait for
        break;
      }
      if (status == stomp::parse_status::error) {
        ec = asio::error::invalid_argument;
        break;
      }
    }
  }
  hard_close(stream);
  co_return serving;
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
  const tcp::endpoint endpoint(asio::ip::make_address(fleet_.host()), fleet_.admin_port(slot));
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
  const tcp::endpoint endpoint(asio::ip::make_address(fleet_.host()), fleet_.client_port(slot));
  while (!stopping_) {
    try {
      const auto inc = fleet_.incarnation(slot);
      if (fleet_.running(slot)) {
        observation o;
        o.source = evidence_source::probe;
        o.slot = slot;
        o.incarnation = inc;
        o.start = clock_type::now();
        o.positive = co_await stomp_probe(endpoint, options_.timeout);
        o.end = clock_type::now();
        if (fleet_.incarnation(slot) == inc) record(o, nullptr);
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

mastership_book monitor::book() const {
  std::lock_guard lock(mutex_);
  return book_;
}

}  // namespace tandem::drill
