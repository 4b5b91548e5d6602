#include "broker/server.h"

#include <fmt/format.h>

#include "broker/log.h"
#include "broker/stomp/encoder.h"

namespace tandem::broker {

namespace {
constexpr std::chrono::milliseconds tick_period{100};

boost::system::error_code bind_listener(asio::any_io_executor executor, asio::ip::tcp::acceptor& acceptor,
                                        const endpoint_address& where, asio::ip::tcp::endpoint& bound) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(where.host, ec);
  asio::ip::tcp::endpoint endpoint;
  if (ec) {
    // A host name: resolve it (startup only, so a blocking resolve is acceptable here).
    asio::ip::tcp::resolver resolver(executor);
    auto results = resolver.resolve(where.host, std::to_string(where.port), ec);
    if (ec || results.empty()) return ec ? ec : asio::error::host_not_found;
    endpoint = results.begin()->endpoint();
  } else {
    endpoint = asio::ip::tcp::endpoint(address, where.port);
  }
  acceptor.open(endpoint.protocol(), ec);
  if (ec) return ec;
  // SO_REUSEADDR: a restarted master (or a slave taking over on the same host) must be able
  // to bind while the old sockets sit in TIME_WAIT.
  acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    return ec;
  }
  bound = acceptor.local_endpoint(ec);
  return ec;
}

}  // namespace

server::server(asio::any_io_executor executor, engine& eng, const config& cfg,
               std::vector<asio::any_io_executor> connection_executors)
    : executor_(executor), connection_executors_(std::move(connection_executors)), engine_(eng), config_(cfg),
      acceptor_(executor), tls_acceptor_(executor), ws_acceptor_(executor), wss_acceptor_(executor),
      tick_timer_(executor), schedule_timer_(executor, eng) {
  // Connections on other threads report to the memory budget from there.
  for (const auto& ex : connection_executors_)
    if (ex != executor_) eng.memory().share_across_threads();
  options_.connect_timeout = cfg.connect_timeout;
  options_.idle_timeout = cfg.idle_timeout;
  options_.frame_timeout = cfg.frame_timeout;
  options_.write_timeout = cfg.write_timeout;
  options_.tcp_keepalive = cfg.tcp_keepalive;
  options_.heartbeat_grace = cfg.engine.heartbeat_grace;
  options_.send_timeout = cfg.engine.send_timeout;
  options_.max_session_backlog_bytes = cfg.engine.max_session_backlog_bytes;
  options_.parser_limits.max_frame_bytes = static_cast<std::size_t>(cfg.engine.max_frame_bytes);
  ws_options_.allowed_origins = cfg.ws_allowed_origins;
  // A frame may span messages; one message need not hold more than one largest frame.
  ws_options_.max_message_bytes = options_.parser_limits.max_frame_bytes + 64 * 1024;
}

void server::allow_origins(const std::vector<std::string>& origins) {
  ws_options_.allowed_origins.insert(ws_options_.allowed_origins.end(), origins.begin(), origins.end());
}

server::~server() {
  stop_accepting();
  // The io_contexts have stopped by now (broker_process::run joins their threads first):
  // connections on other threads are dropped with their contexts, never posted to.
  std::vector<std::shared_ptr<connection>> direct;
  for (auto& [_, c] : connections_)
    if (!c->across_threads()) direct.push_back(c);
  for (auto& c : direct) c->stop("server destroyed");
  on_all_closed_ = nullptr;
  connections_.clear();
}

boost::system::error_code server::open(asio::ip::tcp::endpoint& bound) {
  return bind_listener(executor_, acceptor_, config_.listen, bound);
}

boost::system::error_code server::open_tls(std::shared_ptr<boost::asio::ssl::context> context, asio::ip::tcp::endpoint& bound) {
  if (!config_.tls_listen || !context) return asio::error::invalid_argument;
  tls_context_ = std::move(context);
  tls_options_ = options_;
  tls_options_.tls_context = tls_context_.get();
  return bind_listener(executor_, tls_acceptor_, *config_.tls_listen, bound);
}

boost::system::error_code server::open_ws(asio::ip::tcp::endpoint& bound) {
  if (!config_.ws_listen) return asio::error::invalid_argument;
  ws_connection_options_ = options_;
  ws_connection_options_.ws = &ws_options_;
  return bind_listener(executor_, ws_acceptor_, *config_.ws_listen, bound);
}

boost::system::error_code server::open_wss(std::shared_ptr<boost::asio::ssl::context> context, asio::ip::tcp::endpoint& bound) {
  if (!config_.wss_listen || !context) return asio::error::invalid_argument;
  tls_context_ = std::move(context);
  wss_connection_options_ = options_;
  wss_connection_options_.ws = &ws_options_;
  wss_connection_options_.tls_context = tls_context_.get();
  return bind_listener(executor_, wss_acceptor_, *config_.wss_listen, bound);
}

void server::start() {
  asio::co_spawn(executor_, accept_loop(acceptor_, options_), asio::detached);
  if (tls_acceptor_.is_open()) asio::co_spawn(executor_, accept_loop(tls_acceptor_, tls_options_), asio::detached);
  if (ws_acceptor_.is_open()) asio::co_spawn(executor_, accept_loop(ws_acceptor_, ws_connection_options_), asio::detached);
  if (wss_acceptor_.is_open()) asio::co_spawn(executor_, accept_loop(wss_acceptor_, wss_connection_options_), asio::detached);
  asio::co_spawn(executor_, tick_loop(), asio::detached);
  schedule_timer_.start();
}

void server::stop_accepting() {
  stopping_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  tls_acceptor_.close(ignored);
  ws_acceptor_.close(ignored);
  wss_acceptor_.close(ignored);
  tick_timer_.cancel();
  schedule_timer_.stop();
}

void server::stop_connections(std::string_view reason) {
  // stop() calls back into on_stopped, which erases from the map: iterate over a copy.
  std::vector<std::shared_ptr<connection>> all;
  all.reserve(connections_.size());
  for (auto& [_, c] : connections_) all.push_back(c);
  for (auto& c : all) {
    if (c->across_threads()) {
      // Stays in the map until its close_session has run here (when_connections_closed).
      asio::post(c->executor(), [c, why = std::string(reason)] { c->stop(why); });
    } else {
      c->stop(reason);
      connections_.erase(c.get());
    }
  }
}

void server::when_connections_closed(std::function<void()> done) {
  if (connections_.empty()) {
    done();
    return;
  }
  on_all_closed_ = std::move(done);
}

void server::forget(connection& gone) {
  connections_.erase(&gone);
  if (connections_.empty() && on_all_closed_) asio::post(executor_, std::exchange(on_all_closed_, nullptr));
}

asio::any_io_executor server::next_connection_executor() {
  if (connection_executors_.empty()) return executor_;
  auto ex = connection_executors_[next_executor_];
  next_executor_ = (next_executor_ + 1) % connection_executors_.size();
  return ex;
}

asio::awaitable<void> server::accept_loop(asio::ip::tcp::acceptor& acceptor, const connection_options& options) {
  log::rate_limiter accept_errors(std::chrono::seconds(5));
  asio::steady_timer backoff(executor_);
  try {
    while (!stopping_) {
      boost::system::error_code ec;
      // The socket belongs to the io_context its connection will run on (threads > 1).
      asio::ip::tcp::socket socket(next_connection_executor());
      co_await acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
      if (stopping_ || ec == asio::error::operation_aborted) break;
      if (ec) {
        // EMFILE/ENFILE/ENOBUFS: back off briefly instead of spinning on a full descriptor table.
        std::uint64_t suppressed = 0;
        if (accept_errors.allow(suppressed))
          log::warn("server", "accept failed", {log::kv("error", ec.message()), log::kv("suppressed", suppressed)});
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      ++accepted_total_;
      if (connections_.size() >= config_.engine.max_connections) {
        ++refused_total_;
        asio::co_spawn(executor_, refuse(std::move(socket), options), asio::detached);
        continue;
      }
      auto c = std::make_shared<connection>(std::move(socket), engine_, executor_, options,
                                            [this](connection& gone) { forget(gone); });
      connections_.emplace(c.get(), c);
      c->start();
    }
  } catch (const std::exception& e) {
    log::error("server", "accept loop failed", {log::kv("error", e.what())});
  }
}

asio::awaitable<void> server::refuse(asio::ip::tcp::socket socket, const connection_options& options) {
  try {
    std::uint64_t suppressed = 0;
    static log::rate_limiter limiter(std::chrono::seconds(5));
    if (limiter.allow(suppressed))
      log::warn("server", "connection refused: max_connections reached",
                {log::kv("max_connections", config_.engine.max_connections), log::kv("suppressed", suppressed)});
    stomp::frame f;
    f.command = "ERROR";
    f.add("message", "too many connections");
    f.body = fmt::format("The broker serves at most {} connections (max_connections). Try again later.\n",
                         config_.engine.max_connections);
    std::string out;
    stomp::encode(f, stomp::version::v1_0, out);
    // A WebSocket client waits for an HTTP answer to its upgrade, not a STOMP frame; a TLS
    // client would need a handshake first: it just sees the close.
    if (options.ws)
      out = fmt::format("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n"
                        "Connection: close\r\n\r\n{}",
                        f.body.size(), f.body);
    boost::system::error_code ec;
    if (!options.tls_context)
      co_await asio::async_write(socket, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    socket.close(ec);
  } catch (const std::exception& e) {
    log::error("server", "refusing a connection failed", {log::kv("error", e.what())});
  }
}

asio::awaitable<void> server::tick_loop() {
  log::rate_limiter tick_errors(std::chrono::seconds(10));
  auto next = std::chrono::steady_clock::now();
  while (!stopping_) {
    next += tick_period;
    tick_timer_.expires_at(next);
    boost::system::error_code ec;
    co_await tick_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_) break;
    auto now = std::chrono::steady_clock::now();
    // After a long stall (a paused process) do not fire a burst of catch-up ticks.
    if (now - next > 10 * tick_period) next = now;
    // One failed tick must not end expiry and send timeouts for good: log and go on.
    try {
      engine_.tick(now);
    } catch (const std::exception& e) {
      std::uint64_t suppressed = 0;
      if (tick_errors.allow(suppressed))
        log::error("server", "engine tick failed", {log::kv("error", e.what()), log::kv("suppressed", suppressed)});
    }
  }
}

}  // namespace tandem::broker
