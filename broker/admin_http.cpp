#include "broker/admin_http.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>

#include <fmt/format.h>

#include "broker/asio.h"  // before Beast, which includes Asio
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "broker/console_api.h"
#include "broker/jolokia.h"

#include "broker/admin_guard.h"
#include "broker/log.h"

namespace tandem::broker {

namespace beast = boost::beast;
namespace http = boost::beast::http;

namespace {
constexpr std::chrono::seconds request_timeout{5};
constexpr const char* json_type = "application/json";

// Never throws: a name that is not UTF-8 (a store from before issue 17 may hold one) comes
// out as U+FFFD instead of an exception that closed the connection unanswered.
std::string json_body(const nlohmann::json& j) { return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"; }
}  // namespace

admin_http::admin_http(asio::any_io_executor executor, admin_sources sources, admin_access access,
                       std::shared_ptr<boost::asio::ssl::context> tls)
    : executor_(executor), sources_(std::move(sources)), access_(std::move(access)), tls_(std::move(tls)), acceptor_(executor) {}

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

namespace {

// The percent-decoded middle of "<prefix><encoded><suffix>", or false when `target` is not
// of that shape, holds a raw '/', or a bad escape.
bool decode_path_segment(std::string_view target, std::string_view prefix, std::string_view suffix, std::string& out_value) {
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
  out_value = std::move(out);
  return !out_value.empty();
}

}  // namespace

// offset=N&limit=M, each optional; false on anything else.
bool admin_http::scheduled_page(std::string_view query, std::size_t& offset, std::size_t& limit) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = pair.find('=');
    if (eq == std::string_view::npos) return false;
    auto key = pair.substr(0, eq), value = pair.substr(eq + 1);
    std::size_t n = 0;
    auto [p, err] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (err != std::errc{} || p != value.data() + value.size() || value.empty()) return false;
    if (key == "offset") offset = n;
    else if (key == "limit" && n >= 1 && n <= 1000) limit = n;
    else return false;
  }
  return true;
}

bool admin_http::purge_target(std::string_view target, std::string& destination) {
  return decode_path_segment(target, "/api/destinations/", "/purge", destination);
}

bool admin_http::browse_target(std::string_view target, std::string& destination) {
  return decode_path_segment(target.substr(0, target.find('?')), "/api/destinations/", "/browse", destination);
}

bool admin_http::cancel_target(std::string_view target, std::string& job_id) {
  if (target == "/api/scheduled/cancel-all") {
    job_id.clear();
    return true;
  }
  return decode_path_segment(target, "/api/scheduled/", "/cancel", job_id);
}

asio::awaitable<admin_http::response> admin_http::purge(std::string destination) {
  co_return co_await wait_reply(sources_.purge, std::move(destination), "purge");
}

asio::awaitable<admin_http::response> admin_http::cancel_scheduled(std::string job_id) {
  co_return co_await wait_reply(sources_.cancel_scheduled, std::move(job_id), "cancel");
}

asio::awaitable<std::optional<std::pair<unsigned, nlohmann::json>>> admin_http::await_reply(
    std::function<void(admin_sources::purge_reply)> call) {
  // The reply may come at once (slave, unknown destination, bodies in memory) or later (the
  // journal made the removes durable, the store's reader read the bodies); the timer is
  // both the wake-up and the deadline.
  struct state {
    std::optional<std::pair<unsigned, nlohmann::json>> reply;
    asio::steady_timer wake;
  };
  auto st = std::make_shared<state>(state{std::nullopt, asio::steady_timer(executor_)});
  st->wake.expires_after(std::chrono::seconds(30));
  call([st](unsigned status, nlohmann::json body) {
    st->reply.emplace(status, std::move(body));
    st->wake.cancel();
  });
  if (!st->reply) {
    boost::system::error_code ec;
    co_await st->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return std::move(st->reply);
}

asio::awaitable<admin_http::response> admin_http::wait_reply(
    const std::function<void(std::string, admin_sources::purge_reply)>& source, std::string argument, const char* what) {
  if (!source) co_return response{503, json_type, R"({"error":"not master: no broker state on this process"})" "\n"};
  // The call is a named local, not a temporary of the co_await's full-expression (GCC 12,
  // see serve()).
  std::function<void(admin_sources::purge_reply)> call = [&](admin_sources::purge_reply reply) {
    source(std::move(argument), std::move(reply));
  };
  auto got = co_await await_reply(std::move(call));
  if (!got)
    co_return response{504, json_type,
                       fmt::format(R"({{"error":"the {} was not confirmed by the journal within 30 s"}})" "\n", what)};
  co_return response{got->first, json_type, json_body(got->second)};
}

asio::awaitable<admin_http::response> admin_http::browse(std::string queue, std::string query) {
  if (!sources_.browse) co_return response{503, json_type, R"({"error":"not master: no broker state on this process"})" "\n"};
  auto params = console_api::parse_query(query);
  auto number = [&](const char* key, std::uint64_t fallback) {
    auto it = params.find(key);
    if (it == params.end()) return fallback;
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
    return ec == std::errc() && end == it->second.data() + it->second.size() ? v : fallback;
  };
  const std::uint64_t first_after = number("after", 0);
  const std::size_t limit = std::clamp<std::uint64_t>(number("limit", 20), 1, 200);
  std::uint64_t after = first_after;
  auto messages = nlohmann::json::array();
  bool more = false;
  for (;;) {
    const std::size_t n = std::min(browse_slice, limit - messages.size());
    std::function<void(admin_sources::purge_reply)> call = [&](admin_sources::purge_reply reply) {
      sources_.browse(queue, after, n, std::move(reply));
    };
    auto got = co_await await_reply(std::move(call));
    if (!got)
      co_return response{504, json_type, R"({"error":"the store did not read the bodies within 30 s; is its mount hung?"})" "\n"};
    if (got->first != 200) co_return response{got->first, json_type, json_body(got->second)};
    auto& slice = got->second;
    for (auto& m : slice["messages"]) messages.push_back(std::move(m));
    after = slice.value("next", after);  // the last seq looked at, shown or not
    more = slice.value("more", false);
    if (!more || messages.size() >= limit) break;
    // Let the clients' work run between two slices (bodies in memory answer at once).
    co_await asio::post(executor_, asio::use_awaitable);
  }
  nlohmann::json page{{"destination", queue}, {"after", first_after}, {"limit", limit},
                      {"messages", std::move(messages)}, {"more", more}, {"next", after}};
  co_return response{200, json_type, json_body(page)};
}

asio::awaitable<admin_http::response> admin_http::metrics() {
  if (!sources_.metrics_slice || !sources_.metrics_sliced) co_return handle("GET", "/metrics");
  // 50,000 destinations make 29 MB of text, built in one turn it held every client for 3 s
  // (bench/results/io_thread.md): the clients' turn comes between two slices.
  prometheus::sliced_families scrape;
  while (!sources_.metrics_slice(scrape, metrics_destination_slice)) co_await asio::post(executor_, asio::use_awaitable);
  response r{200, "text/plain; version=0.0.4; charset=utf-8", {}};
  r.pieces = sources_.metrics_sliced(scrape);
  co_return r;
}

asio::awaitable<admin_http::response> admin_http::scheduled(std::string query) {
  std::size_t offset = 0, limit = 100;
  if (!scheduled_page(query, offset, limit))
    co_return response{400, "text/plain", "GET /api/scheduled?offset=N&limit=M (limit 1..1000)\n"};
  if (!sources_.scheduled) co_return response{503, json_type, R"({"error":"not master: no broker state on this process"})" "\n"};
  std::function<void(admin_sources::purge_reply)> call = [&](admin_sources::purge_reply reply) {
    sources_.scheduled(offset, limit, std::move(reply));
  };
  auto got = co_await await_reply(std::move(call));
  if (!got)
    co_return response{504, json_type, R"({"error":"the store did not read the entries within 30 s; is its mount hung?"})" "\n"};
  co_return response{got->first, json_type, json_body(got->second)};
}

asio::awaitable<admin_identity> admin_http::authenticate(std::string login, std::string password, std::string peer) {
  if (!sources_.authenticate) co_return admin_identity{admin_identity::outcome::refused, {}, "no users are configured on this broker", 0};
  // Same wake-up pattern as purge: the verdict may come at once (throttled, cached) or from
  // the worker that runs the password hash.
  struct state {
    std::optional<admin_identity> verdict;
    asio::steady_timer wake;
  };
  auto st = std::make_shared<state>(state{std::nullopt, asio::steady_timer(executor_)});
  st->wake.expires_after(std::chrono::seconds(30));
  sources_.authenticate(std::move(login), std::move(password), std::move(peer), [st](admin_identity id) {
    st->verdict = std::move(id);
    st->wake.cancel();
  });
  if (!st->verdict) {
    boost::system::error_code ec;
    co_await st->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (!st->verdict) co_return admin_identity{admin_identity::outcome::refused, {}, "the password check did not finish within 30 s", 0};
  co_return std::move(*st->verdict);
}

admin_http::response admin_http::handle(std::string_view method, std::string_view target) const {
  if (method == "POST") {
    std::string ignored;
    if (purge_target(target, ignored) || cancel_target(target, ignored))
      return {500, "text/plain", "a purge or cancel is answered by the session\n"};
    return {405, "text/plain",
            "POST only to /api/destinations/<percent-encoded name>/purge, /api/scheduled/<percent-encoded job id>/cancel "
            "or /api/scheduled/cancel-all\n"};
  }
  if (method != "GET" && method != "HEAD") return {405, "text/plain", "only GET and HEAD\n"};
  auto query_at = target.find('?');
  std::string_view query;
  if (query_at != std::string_view::npos) {
    query = target.substr(query_at + 1);
    target = target.substr(0, query_at);
  }
  auto json_response = [](const std::function<nlohmann::json()>& f) -> response {
    nlohmann::json j = f ? f() : nlohmann::json();
    if (j.is_null()) return {503, json_type, R"({"error":"not master: no broker state on this process"})" "\n"};
    return {200, json_type, json_body(j)};
  };
  if (target == "/health") {
    nlohmann::json j = sources_.health ? sources_.health() : nlohmann::json::object();
    bool master = j.value("role", "") == "master";
    return {master ? 200u : 503u, json_type, json_body(j)};
  }
  if (target == "/metrics") {
    return {200, "text/plain; version=0.0.4; charset=utf-8", sources_.metrics ? sources_.metrics() : std::string()};
  }
  if (target == "/api/destinations") {
    auto all = json_response(sources_.destinations);
    if (all.status != 200 || query.empty() || !sources_.destinations) return all;
    auto page = console_api::page_destinations(sources_.destinations(), query);
    return page.is_null() ? all : response{200, json_type, json_body(page)};
  }
  if (target == "/console" || target.starts_with("/console/")) {
    if (const auto* file = console_api::find_asset(target)) return {200, std::string(file->content_type), std::string(file->body)};
    return {404, "text/plain", "no such console file\n"};
  }
  if (target == "/api/connections" || target == "/api/scheduled")
    return {500, "text/plain", "a listing of connections or schedules is built by the session\n"};
  if (target.starts_with(jolokia::read_prefix)) {
    nlohmann::json destinations = sources_.destinations ? sources_.destinations() : nlohmann::json();
    if (destinations.is_null()) return json_response(sources_.destinations);
    nlohmann::json health = sources_.health ? sources_.health() : nlohmann::json::object();
    auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    return {200, json_type, json_body(jolokia::read(target, destinations, health.value("broker_name", ""), now))};
  }
  return {404, "text/plain", "not found; try /console, /health, /metrics, /api/destinations, /api/connections, /api/group, "
                             "/api/scheduled, /api/jolokia/read/...\n"};
}

namespace {

// "http://host:port" -> host, port; false for anything else (no https: the admin port has
// no TLS).
bool parse_admin_url(std::string_view url, std::string& host, std::string& port) {
  if (!url.starts_with("http://")) return false;
  url.remove_prefix(7);
  if (auto slash = url.find('/'); slash != std::string_view::npos) url = url.substr(0, slash);
  auto colon = url.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == url.size()) return false;
  host = std::string(url.substr(0, colon));
  port = std::string(url.substr(colon + 1));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return !host.empty();
}

}  // namespace

// GET /health of a peer broker (it is open to every caller). Bounded by peer_timeout, so a
// partitioned peer costs the console one slow answer, never a hang.
asio::awaitable<nlohmann::json> admin_http::peer_health(std::string url) {
  constexpr auto peer_timeout = std::chrono::milliseconds(1000);
  nlohmann::json member{{"admin_url", url}};
  std::string host, port;
  if (!parse_admin_url(url, host, port)) {
    member["error"] = "not an http://HOST:PORT URL";
    co_return member;
  }
  boost::system::error_code ec;
  beast::tcp_stream stream(executor_);
  stream.expires_after(peer_timeout);
  asio::ip::tcp::resolver resolver(executor_);
  asio::ip::tcp::resolver::results_type endpoints;
  endpoints = co_await resolver.async_resolve(host, port, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) co_await stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  http::request<http::empty_body> req{http::verb::get, "/health", 11};
  req.set(http::field::host, url.substr(7));
  if (!ec) co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  if (!ec) co_await http::async_read(stream, buffer, res, asio::redirect_error(asio::use_awaitable, ec));
  boost::system::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  if (ec) {
    member["error"] = ec == beast::error::timeout ? "no answer within 1 s" : ec.message();
    co_return member;
  }
  auto health = nlohmann::json::parse(res.body(), nullptr, false);
  if (health.is_discarded() || !health.is_object()) member["error"] = fmt::format("HTTP {} without health JSON", res.result_int());
  else member["health"] = std::move(health);
  co_return member;
}

// GET /api/group: this broker's /health and its peers' (group_admin_urls, and the lock holder
// a slave names), asked one after the other.
asio::awaitable<nlohmann::json> admin_http::group() {
  nlohmann::json self = sources_.health ? sources_.health() : nlohmann::json::object();
  const std::string own = self.value("admin_url", "");
  std::vector<std::string> urls;
  auto add = [&](const std::string& u) {
    if (u.empty() || u == own || std::find(urls.begin(), urls.end(), u) != urls.end()) return;
    urls.push_back(u);
  };
  for (const auto& u : access_.group_admin_urls) add(u);
  if (self.contains("holder") && self["holder"].is_object()) add(self["holder"].value("admin_url", ""));
  nlohmann::json members = nlohmann::json::array();
  members.push_back({{"admin_url", own}, {"self", true}, {"health", self}});
  for (const auto& u : urls) {
    nlohmann::json member = co_await peer_health(u);
    members.push_back(std::move(member));
  }
  nlohmann::json out;
  out["members"] = std::move(members);
  co_return out;
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
      if (tls_)
        asio::co_spawn(executor_, tls_session(std::move(socket)), asio::detached);
      else
        asio::co_spawn(executor_, session(std::move(socket)), asio::detached);
    }
  } catch (const std::exception& e) {
    log::error("admin", "accept loop failed", {log::kv("error", e.what())});
  }
}

namespace {

std::string_view header(const http::request<http::string_body>& req, http::field f) {
  auto it = req.find(f);
  return it == req.end() ? std::string_view() : std::string_view(it->value().data(), it->value().size());
}

std::string_view header(const http::request<http::string_body>& req, std::string_view name) {
  auto it = req.find(beast::string_view(name.data(), name.size()));
  return it == req.end() ? std::string_view() : std::string_view(it->value().data(), it->value().size());
}

admin_http::response refusal(unsigned status, std::string why) {
  return {status, json_type, json_body(nlohmann::json{{"error", std::move(why)}})};
}

}  // namespace

// The checks of admin_guard.h, in its order; nullopt = go ahead.
asio::awaitable<std::optional<admin_http::response>> admin_http::check_access(const http::request<http::string_body>& req,
                                                                              const asio::ip::tcp::socket& socket) {
  namespace guard = admin_guard;
  boost::system::error_code ec;
  auto local = socket.local_endpoint(ec);
  auto names = guard::own_names(ec ? std::string() : local.address().to_string(), ec ? 0 : local.port(), access_.allowed_hosts);
  std::string peer = socket.remote_endpoint(ec).address().to_string();
  std::string_view method(req.method_string().data(), req.method_string().size());
  std::string_view target(req.target().data(), req.target().size());
  auto refuse = [&](unsigned status, std::string why) {
    log::warn("admin", "request refused", {log::kv("method", method), log::kv("target", target), log::kv("remote", peer),
                                           log::kv("status", status), log::kv("why", why)});
    return std::optional<response>(refusal(status, std::move(why)));
  };
  auto host = header(req, http::field::host);
  if (!guard::host_allowed(host, names))
    co_return refuse(403, fmt::format("Host \"{}\" is not a name of this admin port; add it to admin_allowed_hosts if it is", host));
  auto needed = guard::required_access(method, target, access_.open_reads);
  if (needed == guard::access::admin) {
    auto origin = header(req, http::field::origin);
    if (!origin.empty() && !guard::origin_allowed(origin, names))
      co_return refuse(403, fmt::format("Origin \"{}\" may not change this broker", origin));
    if (header(req, "sec-fetch-site") == "cross-site") co_return refuse(403, "a cross-site request may not change this broker");
    // A browse is a read: a page cannot read its answer cross-site, so no preflight is needed.
    bool reads = method == "GET" || method == "HEAD";
    if (!reads && guard::is_simple_request(header(req, http::field::content_type), !header(req, "x-tandem-admin").empty()))
      co_return refuse(415, "a state-changing request needs Content-Type: application/json or an X-Tandem-Admin header");
  }
  if (needed == guard::access::open) co_return std::nullopt;
  auto credentials = guard::basic_credentials(header(req, http::field::authorization));
  if (!credentials) {
    auto r = refuse(401, needed == guard::access::admin ? "credentials of a user in group \"admin\" are required (HTTP Basic)"
                                                        : "credentials of a user in group \"admin\" or \"metrics\" are required "
                                                          "(HTTP Basic), or set admin_open_reads");
    co_return r;
  }
  auto id = co_await authenticate(credentials->first, credentials->second, peer);
  if (id.result == admin_identity::outcome::throttled) {
    auto r = refuse(429, id.detail);
    r->retry_after_s = std::max(1u, id.retry_after_s);
    co_return r;
  }
  if (id.result != admin_identity::outcome::accepted) co_return refuse(401, id.detail.empty() ? "the login or password is wrong" : id.detail);
  if (!guard::grants(id.groups, needed))
    co_return refuse(403, fmt::format("login \"{}\" is not in group {}", credentials->first,
                                      needed == guard::access::admin ? "\"admin\"" : "\"admin\" or \"metrics\""));
  co_return std::nullopt;
}

asio::awaitable<void> admin_http::session(asio::ip::tcp::socket socket) {
  try {
    beast::tcp_stream stream(std::move(socket));
    co_await serve(stream);
    boost::system::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  } catch (const std::exception& e) {
    log::warn("admin", "request failed", {log::kv("error", e.what())});
  }
}

asio::awaitable<void> admin_http::tls_session(asio::ip::tcp::socket socket) {
  try {
    boost::system::error_code ec;
    std::string peer = socket.remote_endpoint(ec).address().to_string();
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls_);
    beast::get_lowest_layer(stream).expires_after(request_timeout);
    co_await stream.async_handshake(boost::asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      // Plain HTTP sent to the HTTPS port, an untrusted client certificate, a scanner: one
      // line per 10 s with the count of the others, or a scanner writes the log full.
      static log::rate_limiter failures(std::chrono::seconds(10));
      std::uint64_t suppressed = 0;
      if (failures.allow(suppressed))
        log::warn("admin", "TLS handshake failed",
                  {log::kv("remote", peer), log::kv("error", ec.message()), log::kv("suppressed", suppressed)});
      co_return;
    }
    co_await serve(stream);
    beast::get_lowest_layer(stream).expires_after(request_timeout);
    co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));  // close_notify; errors don't matter
  } catch (const std::exception& e) {
    log::warn("admin", "request failed", {log::kv("error", e.what())});
  }
}

template <class Stream>
asio::awaitable<void> admin_http::serve(Stream& stream) {
  auto& tcp = beast::get_lowest_layer(stream);
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(4096);  // a POST may carry "{}"; nothing reads it
    tcp.expires_after(request_timeout);
    boost::system::error_code ec;
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;  // closed, timed out, or garbage: nothing to answer on an admin port
    auto& req = parser.get();
    std::string_view target(req.target().data(), req.target().size());
    std::string destination;
    response r;
    if (auto refused = co_await check_access(req, tcp.socket())) {
      r = std::move(*refused);
    } else if (req.method() == http::verb::get && target == "/api/group") {
      // co_await kept out of the braced temporaries: GCC 12 destroys temporaries of a
      // full-expression holding a co_await twice (a double free, seen here).
      nlohmann::json members = co_await group();
      r = response{200, json_type, json_body(members)};
    } else if (req.method() == http::verb::post && cancel_target(target, destination)) {
      log::info("admin", "scheduled message cancel requested",
                {log::kv("job_id", destination.empty() ? "(all)" : destination),
                 log::kv("remote", tcp.socket().remote_endpoint(ec).address().to_string())});
      r = co_await cancel_scheduled(std::move(destination));
    } else if (req.method() == http::verb::post && purge_target(target, destination)) {
      log::info("admin", "purge requested", {log::kv("destination", destination),
                                              log::kv("remote", tcp.socket().remote_endpoint(ec).address().to_string())});
      r = co_await purge(std::move(destination));
    } else if ((req.method() == http::verb::get || req.method() == http::verb::head) &&
               (target.substr(0, target.find('?')) == "/api/connections" ||
                target.substr(0, target.find('?')) == "/api/scheduled")) {
      auto query_at = target.find('?');
      std::string query(query_at == std::string_view::npos ? std::string_view() : target.substr(query_at + 1));
      if (target.starts_with("/api/connections")) r = co_await connections(std::move(query));
      else r = co_await scheduled(std::move(query));
    } else if ((req.method() == http::verb::get || req.method() == http::verb::head) && target == "/metrics") {
      r = co_await metrics();
    } else if (req.method() == http::verb::get && browse_target(target, destination)) {
      auto query_at = target.find('?');
      r = co_await browse(std::move(destination),
                          std::string(query_at == std::string_view::npos ? std::string_view() : target.substr(query_at + 1)));
    } else {
      r = handle(std::string_view(req.method_string().data(), req.method_string().size()), target);
    }
    http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
    res.set(http::field::server, "tandemd");
    res.set(http::field::content_type, r.content_type);
    res.set(http::field::cache_control, "no-store");
    if (r.status == 401) res.set(http::field::www_authenticate, "Basic realm=\"tandem admin\", charset=\"UTF-8\"");
    if (r.retry_after_s > 0) res.set(http::field::retry_after, std::to_string(r.retry_after_s));
    res.keep_alive(req.keep_alive());
    if (!r.pieces.empty()) {
      // The header, then the pieces as they are: one gathered write, no copy into one body.
      http::response<http::empty_body> head;
      head.base() = res.base();
      std::size_t length = 0;
      std::vector<asio::const_buffer> body;
      for (const auto& piece : r.pieces) {
        length += piece.size();
        if (!piece.empty()) body.push_back(asio::buffer(piece));
      }
      head.content_length(length);
      head.keep_alive(req.keep_alive());
      http::response_serializer<http::empty_body> header(head);
      tcp.expires_after(request_timeout);
      co_await http::async_write_header(stream, header, asio::redirect_error(asio::use_awaitable, ec));
      if (!ec && req.method() != http::verb::head)
        co_await asio::async_write(stream, body, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !req.keep_alive()) break;
      continue;
    }
    res.body() = std::move(r.body);
    res.prepare_payload();
    if (req.method() == http::verb::head) res.body().clear();
    tcp.expires_after(request_timeout);
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !req.keep_alive()) break;
  }
}

}  // namespace tandem::broker
