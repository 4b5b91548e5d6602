#include "broker/admin_http.h"

#include <optional>

#include "broker/asio.h"  // before Beast, which includes Asio
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "broker/log.h"

namespace tandem::broker {

namespace beast = boost::beast;
namespace http = boost::beast::http;

namespace {
constexpr std::chrono::seconds request_timeout{5};
constexpr const char* json_type = "application/json";
}  // namespace

admin_http::admin_http(asio::any_io_executor executor, admin_sources sources)
    : executor_(executor), sources_(std::move(sources)), acceptor_(executor) {}

admin_http::~admin_http() { stop(); }

boost::system::error_code admin_http::open(const endpoint_address& address, asio::ip::tcp::endpoint& bound) {
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address.host, ec);
  asio::ip::tcp::endpoint endpoint;
  if (ec) {
    asio::ip::tcp::resolver resolver(executor_);
    auto results = resolver.resolve(address.host, std::to_string(address.port), ec);
    if (ec || results.empty()) return ec ? ec : asio::error::host_not_found;
    endpoint = results.begin()->endpoint();
  } else {
    endpoint = asio::ip::tcp::endpoint(ip, address.port);
  }
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return ec;
  acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    return ec;
  }
  bound = acceptor_.local_endpoint(ec);
  return ec;
}

void admin_http::start() { asio::co_spawn(executor_, accept_loop(), asio::detached); }

void admin_http::stop() {
  stopping_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

bool admin_http::purge_target(std::string_view target, std::string& destination) {
  constexpr std::string_view prefix = "/api/destinations/", suffix = "/purge";
  if (target.size() <= prefix.size() + suffix.size() || !target.starts_with(prefix) || !target.ends_with(suffix)) return false;
  auto encoded = target.substr(prefix.size(), target.size() - prefix.size() - suffix.size());
  std::string out;
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    char c = encoded[i];
    if (c == '/') return false;  // a destination's slashes come encoded (%2F)
    if (c != '%') {
      out += c;
      continue;
    }
    auto hex = [](char h) { return h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1; };
    int hi = i + 1 < encoded.size() ? hex(encoded[i + 1]) : -1, lo = i + 2 < encoded.size() ? hex(encoded[i + 2]) : -1;
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  destination = std::move(out);
  return !destination.empty();
}

asio::awaitable<admin_http::response> admin_http::purge(std::string destination) {
  if (!sources_.purge) co_return response{503, json_type, R"({"error":"not master: no broker state on this process"})" "\n"};
  // The reply may come at once (slave, unknown destination) or when the journal has made the
  // removes durable; the timer is both the wake-up and the deadline.
  struct state {
    std::optional<response> reply;
    asio::steady_timer wake;
  };
  auto st = std::make_shared<state>(state{std::nullopt, asio::steady_timer(executor_)});
  st->wake.expires_after(std::chrono::seconds(30));
  sources_.purge(destination, [st](unsigned status, nlohmann::json body) {
    st->reply = response{status, json_type, body.dump(2) + "\n"};
    st->wake.cancel();
  });
  if (!st->reply) {
    boost::system::error_code ec;
    co_await st->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (!st->reply) co_return response{504, json_type, R"({"error":"the purge was not confirmed by the journal within 30 s"})" "\n"};
  co_return *st->reply;
}

admin_http::response admin_http::handle(std::string_view method, std::string_view target) const {
  if (method == "POST") {
    std::string ignored;
    if (purge_target(target, ignored)) return {500, "text/plain", "a purge is answered by the session\n"};
    return {405, "text/plain", "POST only to /api/destinations/<percent-encoded name>/purge\n"};
  }
  if (method != "GET" && method != "HEAD") return {405, "text/plain", "only GET and HEAD\n"};
  auto query = target.find('?');
  if (query != std::string_view::npos) target = target.substr(0, query);
  auto json_response = [](const std::function<nlohmann::json()>& f) -> response {
    nlohmann::json j = f ? f() : nlohmann::json();
    if (j.is_null()) return {503, json_type, R"({"error":"not master: no broker state on this process"})" "\n"};
    return {200, json_type, j.dump(2) + "\n"};
  };
  if (target == "/health") {
    nlohmann::json j = sources_.health ? sources_.health() : nlohmann::json::object();
    bool master = j.value("role", "") == "master";
    return {master ? 200u : 503u, json_type, j.dump(2) + "\n"};
  }
  if (target == "/metrics") {
    return {200, "text/plain; version=0.0.4; charset=utf-8", sources_.metrics ? sources_.metrics() : std::string()};
  }
  if (target == "/api/destinations") return json_response(sources_.destinations);
  if (target == "/api/connections") return json_response(sources_.connections);
  return {404, "text/plain", "not found; try /health, /metrics, /api/destinations, /api/connections\n"};
}

asio::awaitable<void> admin_http::accept_loop() {
  try {
    while (!stopping_) {
      boost::system::error_code ec;
      asio::ip::tcp::socket socket(executor_);
      co_await acceptor_.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
      if (stopping_ || ec == asio::error::operation_aborted) break;
      if (ec) {
        log::warn("admin", "accept failed", {log::kv("error", ec.message())});
        asio::steady_timer backoff(executor_);
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      asio::co_spawn(executor_, session(std::move(socket)), asio::detached);
    }
  } catch (const std::exception& e) {
    log::error("admin", "accept loop failed", {log::kv("error", e.what())});
  }
}

asio::awaitable<void> admin_http::session(asio::ip::tcp::socket socket) {
  try {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::empty_body> parser;
      parser.header_limit(16 * 1024);
      parser.body_limit(0);
      stream.expires_after(request_timeout);
      boost::system::error_code ec;
      co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;  // closed, timed out, or garbage: nothing to answer on an admin port
      auto& req = parser.get();
      std::string_view target(req.target().data(), req.target().size());
      std::string destination;
      response r;
      if (req.method() == http::verb::post && purge_target(target, destination)) {
        log::info("admin", "purge requested", {log::kv("destination", destination),
                                                log::kv("remote", stream.socket().remote_endpoint(ec).address().to_string())});
        r = co_await purge(std::move(destination));
      } else {
        r = handle(std::string_view(req.method_string().data(), req.method_string().size()), target);
      }
      http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
      res.set(http::field::server, "tandemd");
      res.set(http::field::content_type, r.content_type);
      res.set(http::field::cache_control, "no-store");
      res.keep_alive(req.keep_alive());
      res.body() = std::move(r.body);
      res.prepare_payload();
      if (req.method() == http::verb::head) res.body().clear();
      stream.expires_after(request_timeout);
      co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !req.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  } catch (const std::exception& e) {
    log::warn("admin", "request failed", {log::kv("error", e.what())});
  }
}

}  // namespace tandem::broker
