#include "broker/connection.h"

#include <algorithm>
#include <utility>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <fmt/format.h>

#include "broker/log.h"
#include "broker/read_buffer.h"
#include "broker/stomp/encoder.h"
#include "broker/stomp/errc.h"
#include "broker/transport.h"

namespace tandem::broker {

namespace {

using steady = std::chrono::steady_clock;

// Bytes per read while the memory budget is full and no frame is begun: enough for an ACK,
// a DISCONNECT or heart-beats, and all a new large frame can add before its reader waits.
// Otherwise a read takes what the read buffer holds (read_buffer.h: 4 KiB, 64 KiB while the
// client streams).
constexpr std::size_t full_budget_read_bytes = read_buffer::small_bytes;
// One write gathers at most this much (Asio turns a buffer sequence into one writev of at
// most 64 iovecs; a WebSocket transport writes one message per frame).
constexpr std::size_t max_gather_buffers = 64;
constexpr std::size_t max_gather_bytes = 1 << 20;
// After close_after_flush the client gets this long to read what we wrote and hang up
// before we close; until then we drain its input so the kernel does not answer with RST
// (an RST may discard our ERROR frame in the client's receive buffer).
constexpr std::chrono::seconds linger_limit{2};
// How often the watchdog of a connection that waits asks the kernel whether its client hung
// up (peer_hung_up: one poll() without reading). It waits for the memory budget mid-frame, or
// its reading is paused while the engine holds a SEND for space (producer flow control:
// max_destination_bytes, max_store_bytes) or checks a login. Such a reader does not read, so
// it would otherwise learn of the hang-up only at send_timeout_ms, holding the session, its
// frame and its unacked messages until then. Only waiting connections are looked at: 1,000
// of them cost 2,000 poll() calls a second.
constexpr std::chrono::milliseconds parked_hang_up_check{500};
// TCP keepalive (tcp_keepalive_s): after that much silence the kernel probes every 10 s, 6
// times. A connection that has waited for memory this long probes sooner: a host that
// vanished sends no FIN, and only keepalive's verdict (ETIMEDOUT, which peer_hung_up sees)
// tells it apart from a client whose send is merely blocked (its kernel answers the probes).
constexpr int keepalive_interval_s = 10, keepalive_probes = 6;
constexpr std::chrono::seconds parked_keepalive_after{1};
constexpr int parked_keepalive_idle_s = 5, parked_keepalive_interval_s = 2, parked_keepalive_probes = 3;

void set_keepalive(asio::ip::tcp::socket& socket, int idle_s, int interval_s, int probes) {
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s);
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
}

asio::awaitable<void> run_guarded(std::shared_ptr<connection> self, const char* name, asio::awaitable<void> body) {
  try {
    co_await std::move(body);
  } catch (const std::exception& e) {
    log::error("conn", "connection coroutine failed", {log::kv("remote", self->remote()), log::kv("session", self->id()),
                                                        log::kv("coroutine", name), log::kv("error", e.what())});
    self->stop("internal error");
  }
}

std::string remote_of(const asio::ip::tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "?";
  if (ep.address().is_v6()) return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

}  // namespace

connection::connection(asio::ip::tcp::socket socket, engine& eng, asio::any_io_executor engine_executor,
                       const connection_options& options, on_stopped stopped)
    : socket_(std::move(socket)),
      executor_(socket_.get_executor()),
      engine_executor_(std::move(engine_executor)),
      across_(executor_ != engine_executor_),
      engine_(eng),
      options_(options),
      on_stopped_(std::move(stopped)),
      remote_(remote_of(socket_)),
      parser_(stomp::direction::from_client, options.parser_limits),
      budget_(eng.memory()),
      write_signal_(socket_.get_executor()),
      resume_signal_(socket_.get_executor()),
      watchdog_timer_(socket_.get_executor()) {
  transport_ = make_transport(socket_, options.tls_context, options.ws);
  write_signal_.expires_at(steady::time_point::max());
  resume_signal_.expires_at(steady::time_point::max());
  started_ = last_read_ = last_write_ = steady::now();
}

connection::~connection() = default;

void connection::start() {
  boost::system::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  if (options_.tcp_keepalive.count() > 0) {
    socket_.set_option(asio::socket_base::keep_alive(true), ignored);
    set_keepalive(socket_, static_cast<int>(options_.tcp_keepalive.count()), keepalive_interval_s, keepalive_probes);
  }
  session_info info;
  info.remote_endpoint = remote_;
  info.tls = options_.tls_context != nullptr;
  info.transport = transport_->name();
  id_ = engine_.open_session(*this, info);
  session_open_ = true;
  engine_open_ = across_;
  // A TLS stream's buffers exist from its construction: counted before the handshake, which a
  // client may hold up until connect_timeout.
  budget_transport_ = budget_.transport_buffering(budget_transport_, transport_->buffer_bytes());
  log::debug("conn", "accepted", {log::kv("remote", remote_), log::kv("session", id_)});
  spawn("reader", &connection::reader);
  spawn("writer", &connection::writer);
  spawn("watchdog", &connection::watchdog);
}

void connection::spawn(const char* name, asio::awaitable<void> (connection::*body)()) {
  auto self = shared_from_this();
  asio::co_spawn(executor_, run_guarded(self, name, (this->*body)()), asio::detached);
}

void connection::stop(std::string_view reason) {
  if (stopped_) return;
  stopped_ = true;
  stop_reason_ = std::string(reason);
  auto self = shared_from_this();  // keep alive through on_stopped_ (the server drops its ref)
  log::info("conn", "closed", {log::kv("remote", remote_), log::kv("session", id_), log::kv("reason", reason),
                               log::kv("frames_in", frames_in_), log::kv("bytes_in", bytes_in_),
                               log::kv("bytes_out", bytes_out_)});
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  write_signal_.cancel();
  resume_signal_.cancel();
  watchdog_timer_.cancel();
  {
    auto lock = lock_out();
    out_closed_ = true;
    queue_.clear();
    budget_.written(queued_bytes_.exchange(0, std::memory_order_relaxed));
  }
  budget_read_ = budget_.reading(budget_read_, 0);
  budget_buffer_ = budget_.buffering(budget_buffer_, 0);
  budget_transport_ = budget_.transport_buffering(budget_transport_, 0);
  if (memory_waiter_ != 0) budget_.cancel(std::exchange(memory_waiter_, 0));
  if (across_) {
    // The session ends on the engine's thread, after every frame posted before this.
    session_open_ = false;
    asio::post(engine_executor_, [self] { self->close_on_engine(); });
    return;
  }
  // stop() never runs inside an engine call (send() defers its own stop), so telling the
  // engine now is safe; after this the engine forgets the sink.
  if (session_open_) {
    session_open_ = false;
    engine_.close_session(id_);
  }
  if (on_stopped_) {
    auto cb = std::move(on_stopped_);
    cb(*this);
  }
}

// The engine stops dispatching at the backlog limit, so only frames it must send anyway
// (receipts, errors, one large message) land above it. A client that lets even those pile up
// far beyond the limit is not reading: drop it rather than hold its backlog forever.
static std::size_t hard_backlog_limit(const connection_options& options) {
  return std::max<std::size_t>(64u << 20, 8 * options.max_session_backlog_bytes);
}

void connection::send(std::string encoded_frame) {
  if (across_) return send_across(std::move(encoded_frame));
  if (stopped_ || encoded_frame.empty()) return;
  const auto queued = queued_bytes_.load(std::memory_order_relaxed) + encoded_frame.size();
  queued_bytes_.store(queued, std::memory_order_relaxed);
  budget_.queued(encoded_frame.size());
  queue_.push_back(std::move(encoded_frame));
  if (queued > options_.max_session_backlog_bytes) above_limit_ = true;
  if (queued > hard_backlog_limit(options_)) {
    // Deferred: we are inside an engine call, and stop() calls engine::close_session.
    asio::post(executor_, [self = shared_from_this()] { self->stop("slow consumer: backlog over hard limit"); });
    return;
  }
  write_signal_.cancel_one();
}

void connection::send_across(std::string encoded_frame) {
  if (encoded_frame.empty()) return;
  const auto bytes = encoded_frame.size();
  std::size_t queued = 0;
  bool wake = false;
  {
    std::lock_guard lock(out_mutex_);
    if (out_closed_) return;
    budget_.queued(bytes);
    queue_.push_back(std::move(encoded_frame));
    queued = queued_bytes_.load(std::memory_order_relaxed) + bytes;
    queued_bytes_.store(queued, std::memory_order_relaxed);
    if (queued > options_.max_session_backlog_bytes) above_limit_ = true;
    wake = std::exchange(writer_idle_, false);
  }
  if (queued > hard_backlog_limit(options_)) {
    asio::post(executor_, [self = shared_from_this()] { self->stop("slow consumer: backlog over hard limit"); });
    return;
  }
  // One wake per sleep of the writer, not per frame: the frames queued meanwhile go in the
  // same gathered write. And one post per connection thread per turn of the engine, not per
  // connection: a topic's fan-out wakes many writers at once.
  if (wake) wake_later(shared_from_this());
}

namespace {

// The writers to wake at the end of the engine's current turn, by connection executor.
// Engine thread only (thread_local: a test may run engines on several threads). Weak: a
// list left behind when the io_context stops must not keep a connection past its context.
struct pending_wakes {
  std::vector<std::pair<asio::any_io_executor, std::vector<std::weak_ptr<connection>>>> by_executor;
  bool flush_posted = false;
};
thread_local pending_wakes wakes;

void flush_wakes() {
  wakes.flush_posted = false;
  for (auto& [executor, connections] : std::exchange(wakes.by_executor, {})) {
    asio::post(executor, [connections = std::move(connections)] {
      for (const auto& weak : connections)
        if (auto c = weak.lock()) c->wake_writer();
    });
  }
}

}  // namespace

void connection::wake_later(std::shared_ptr<connection> self) {
  auto it = std::find_if(wakes.by_executor.begin(), wakes.by_executor.end(),
                         [&](const auto& entry) { return entry.first == executor_; });
  if (it == wakes.by_executor.end()) {
    wakes.by_executor.emplace_back(executor_, std::vector<std::weak_ptr<connection>>{});
    it = std::prev(wakes.by_executor.end());
  }
  it->second.push_back(std::move(self));
  // Posted to the engine's own executor: it runs after the handler that is sending now
  // (a read's batch of frames, a journal completion), so its whole fan-out goes in one post.
  if (!std::exchange(wakes.flush_posted, true)) asio::post(engine_executor_, flush_wakes);
}

void connection::deliver(std::vector<stomp::frame> frames) {
  for (auto& f : frames) {
    if (!engine_open_ || engine_closing_) return;  // as a reader that stopped feeding
    if (engine_paused_ || !held_.empty()) {
      held_.push_back(std::move(f));
      continue;
    }
    if (!hand_to_engine(std::move(f))) return;
  }
}

void connection::deliver_held() {
  while (!held_.empty() && !engine_paused_ && engine_open_ && !engine_closing_) {
    auto f = std::move(held_.front());
    held_.pop_front();
    if (!hand_to_engine(std::move(f))) return;
  }
}

bool connection::hand_to_engine(stomp::frame f) {
  try {
    engine_.on_frame(id_, std::move(f));
    return true;
  } catch (const std::exception& e) {
    engine_call_failed("on_frame", e);
    return false;
  }
}

void connection::close_on_engine() {
  held_.clear();
  if (engine_open_) {
    engine_open_ = false;
    try {
      engine_.close_session(id_);
    } catch (const std::exception& e) {
      log::error("conn", "engine close_session failed", {log::kv("session", id_), log::kv("error", e.what())});
    }
  }
  if (on_stopped_) {
    auto cb = std::move(on_stopped_);
    cb(*this);
  }
}

// As an exception escaping the reader with one thread (run_guarded): log, close.
void connection::engine_call_failed(const char* call, const std::exception& e) {
  log::error("conn", "engine call failed", {log::kv("remote", remote_), log::kv("session", id_), log::kv("call", call),
                                            log::kv("error", e.what())});
  held_.clear();
  engine_closing_ = true;
  asio::post(executor_, [self = shared_from_this()] { self->stop("internal error"); });
}

void connection::send_error_and_close(std::string encoded_error, std::string reason, std::vector<stomp::frame> frames) {
  stop_reason_ = std::move(reason);
  if (!across_) {
    send(std::move(encoded_error));
    close_after_flush();
    return;
  }
  error_sent_ = true;
  asio::post(engine_executor_, [self = shared_from_this(), frames = std::move(frames), out = std::move(encoded_error)]() mutable {
    if (!frames.empty()) self->deliver(std::move(frames));
    self->send(std::move(out));
    self->close_after_flush();
  });
}

void connection::close_after_flush() {
  if (across_) {
    if (engine_closing_) return;
    engine_closing_ = true;
    held_.clear();
    asio::post(executor_, [self = shared_from_this()] { self->close_here(); });
    return;
  }
  close_here();
}

void connection::pause_reading() {
  if (across_) {
    if (engine_paused_) return;
    engine_paused_ = true;
    asio::post(executor_, [self = shared_from_this()] { self->pause_here(); });
    return;
  }
  pause_here();
}

void connection::resume_reading() {
  if (across_) {
    if (!engine_paused_) return;
    engine_paused_ = false;
    // Not inline: the engine calls this from inside its own work.
    if (!held_.empty()) asio::post(engine_executor_, [self = shared_from_this()] { self->deliver_held(); });
    asio::post(executor_, [self = shared_from_this()] { self->resume_here(); });
    return;
  }
  resume_here();
}

void connection::set_heartbeat(std::chrono::milliseconds send_every, std::chrono::milliseconds expect_every) {
  if (across_) {
    asio::post(executor_, [self = shared_from_this(), send_every, expect_every] { self->set_heartbeat_here(send_every, expect_every); });
    return;
  }
  set_heartbeat_here(send_every, expect_every);
}

void connection::set_version(std::string_view version) {
  if (across_) {
    asio::post(executor_, [self = shared_from_this(), v = std::string(version)] { self->set_version_here(v); });
    return;
  }
  set_version_here(version);
}

void connection::close_here() {
  if (stopped_ || closing_) return;
  closing_ = true;
  write_signal_.cancel_one();
  resume_signal_.cancel();  // a paused reader must see closing_ and end
  watchdog_timer_.cancel();  // re-arm with the linger deadline
}

void connection::pause_here() {
  if (paused_) return;
  paused_ = true;
  paused_since_ = steady::now();
  watchdog_timer_.cancel();  // start looking for a hang-up (watchdog)
}

void connection::resume_here() {
  if (!paused_) return;
  paused_ = false;
  paused_since_ = steady::time_point::max();
  loosen_keepalive();
  // Silence while we were not reading is ours, not the client's; so is a frame left half read.
  last_read_ = steady::now();
  if (frame_started_ != steady::time_point::max()) frame_started_ = last_read_;
  resume_signal_.cancel();
}

void connection::set_heartbeat_here(std::chrono::milliseconds send_every, std::chrono::milliseconds expect_every) {
  hb_send_ = send_every;
  hb_expect_ = expect_every;
  watchdog_timer_.cancel();  // recompute the next deadline
}

void connection::set_version_here(std::string_view version) {
  if (auto v = stomp::version_from_name(version)) parser_.set_version(*v);
  if (awaiting_connected_) {
    awaiting_connected_ = false;
    resume_signal_.cancel();  // the reader parses on, in the negotiated version
  }
  if (!connected_) {
    connected_ = true;
    watchdog_timer_.cancel();
  }
}

void connection::reject(const stomp::parse_error& error, std::vector<stomp::frame> before) {
  log::warn("conn", "malformed frame", {log::kv("remote", remote_), log::kv("session", id_),
                                        log::kv("error", error.reason), log::kv("near", error.snippet)});
  stomp::frame f;
  f.command = "ERROR";
  const bool too_large = error.code == stomp::errc::frame_too_large;
  f.add("message", too_large ? error.reason + " (max_frame_bytes)" : error.reason);
  f.add("content-type", "text/plain");
  f.body = fmt::format("{}\nThe offending bytes (C-escaped): {}\nThe connection is closed.\n", error.reason, error.snippet);
  if (too_large)
    f.body = fmt::format("{}: the broker accepts frames of at most {} octets (config key max_frame_bytes).\n"
                         "The connection is closed.\n",
                         error.reason, options_.parser_limits.max_frame_bytes);
  std::string out;
  if (stomp::encode(f, parser_.get_version(), out)) {
    // The reason cannot be written in this version's header grammar: say less, never nothing.
    out.clear();
    f.headers.clear();
    f.add("message", "malformed frame");
    stomp::encode(f, parser_.get_version(), out);
  }
  send_error_and_close(std::move(out), "malformed frame: " + error.reason, std::move(before));
}

asio::awaitable<void> connection::reader() {
  {
    // TLS handshake, WebSocket upgrade. Nothing is queued for writing before CONNECT, so the
    // writer cannot race it; the watchdog's CONNECT deadline bounds a client that stalls here.
    boost::system::error_code ec;
    std::string why;
    co_await transport_->async_start(ec, why);
    if (ec) {
      if (!stopped_) stop(why);
      co_return;
    }
  }
  read_buffer buffer;
  std::span<const char> pending;
  std::vector<stomp::frame> batch;  // across: one read's frames, posted to the engine at once
  while (!stopped_ && !closing_) {
    while ((paused_ || awaiting_connected_) && !stopped_ && !closing_) {
      boost::system::error_code ec;
      co_await resume_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (stopped_ || closing_) break;
    if (pending.empty()) {
      if (budget_.full() && !parser_.between_frames()) {
        co_await wait_for_memory();
        continue;  // look at paused_, closing_ and the budget again
      }
      const bool full = budget_.full();
      auto space = buffer.prepare(full);
      budget_buffer_ = budget_.buffering(budget_buffer_, buffer.capacity());
      const std::size_t chunk = full ? std::min(space.size(), full_budget_read_bytes) : space.size();
      boost::system::error_code ec;
      std::size_t n = 0;
      n = co_await transport_->async_read_some(asio::buffer(space.data(), chunk), ec);
      if (ec) {
        // Across threads a pause arrives while this read is under way (the engine's
        // pause_reading is posted): a hang-up then is the one the watchdog reports for a
        // paused reader.
        if (transport_->is_hang_up(ec) && paused_)
          stop("client hung up while its SEND waited for space (producer flow control)");
        else if (transport_->is_hang_up(ec))
          stop(parser_.between_frames() ? "client closed the connection" : "client closed the connection mid-frame");
        else
          stop("read failed: " + ec.message());
        co_return;
      }
      last_read_ = steady::now();
      bytes_in_ += n;
      pending = buffer.filled(n);
      // A WebSocket transport allocates its read chunk at the first read.
      count_transport_buffers();
    }
    while (!pending.empty() && !paused_ && !closing_ && !stopped_ && !awaiting_connected_) {
      auto [used, status] = parser_.feed(pending);
      pending = pending.subspan(used);
      if (status == stomp::parse_status::frame_ready) {
        ++frames_in_;
        // The frame leaves the read buffer; the engine counts what it keeps of it.
        budget_read_ = budget_.reading(budget_read_, 0);
        if (!across_) {
          engine_.on_frame(id_, parser_.take_frame());
          continue;
        }
        batch.push_back(parser_.take_frame());
        const auto& command = batch.back().command;
        if (!connected_ && (command == "CONNECT" || command == "STOMP")) awaiting_connected_ = true;
      } else if (status == stomp::parse_status::error) {
        reject(parser_.error(), std::exchange(batch, {}));
        co_return;
      }
    }
    if (!batch.empty()) {
      asio::post(engine_executor_, [self = shared_from_this(), frames = std::exchange(batch, {})]() mutable {
        self->deliver(std::move(frames));
      });
    }
    if (!stopped_) budget_read_ = budget_.reading(budget_read_, parser_.partial_frame_bytes());
    // The partial-frame deadline runs from the first read that ends inside a frame.
    if (parser_.between_frames()) frame_started_ = steady::time_point::max();
    else if (frame_started_ == steady::time_point::max()) frame_started_ = last_read_;
  }
}

void connection::count_transport_buffers() {
  if (auto held = transport_->buffer_bytes(); held != budget_transport_)
    budget_transport_ = budget_.transport_buffering(budget_transport_, held);
}

asio::awaitable<void> connection::writer() {
  std::vector<std::string> batch;
  batch.reserve(max_gather_buffers);
  while (!stopped_) {
    batch.clear();
    std::size_t bytes = 0;
    {
      auto lock = lock_out();
      while (!queue_.empty() && batch.size() < max_gather_buffers && (bytes == 0 || bytes < max_gather_bytes)) {
        bytes += queue_.front().size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      if (batch.empty()) writer_idle_ = true;  // across: the next send() posts a wake
    }
    if (batch.empty()) {
      if (closing_) break;
      boost::system::error_code ec;
      co_await write_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    boost::system::error_code ec;
    write_started_ = steady::now();
    co_await transport_->async_write(batch, ec);
    write_started_ = steady::time_point::max();
    if (stopped_) co_return;
    if (ec) {
      stop("write failed: " + ec.message());
      co_return;
    }
    bool writable = false;
    {
      auto lock = lock_out();
      auto queued = queued_bytes_.load(std::memory_order_relaxed);
      queued -= std::min(queued, bytes);
      queued_bytes_.store(queued, std::memory_order_relaxed);
      if (above_limit_ && queued <= options_.max_session_backlog_bytes) {
        above_limit_ = false;
        writable = true;
      }
    }
    budget_.written(bytes);
    count_transport_buffers();  // a WebSocket transport's gather buffers grow and shrink with writes
    bytes_out_ += bytes;
    last_write_ = steady::now();
    if (writable) {
      if (!across_) {
        engine_.on_writable(id_);
      } else {
        asio::post(engine_executor_, [self = shared_from_this()] {
          if (!self->engine_open_) return;
          try {
            self->engine_.on_writable(self->id_);
          } catch (const std::exception& e) {
            self->engine_call_failed("on_writable", e);
          }
        });
      }
    }
  }
  if (stopped_) co_return;
  // closing_ and everything written: tell the client (half-close, close_notify, WebSocket
  // close) and wait until it hangs up or the watchdog's linger deadline closes the socket
  // (see linger_limit), which ends this wait.
  co_await transport_->async_finish();
  if (!stopped_) stop(stop_reason_.empty() ? "closed after flush" : stop_reason_);
}

// The bounds of connection_options that hold whatever the heart-beats. Returns why the
// connection must close now, or "" and lowers `next` to when to look again. Frame and write
// starts do not wake the watchdog (that would cost a wake-up per write): it looks at least
// every quarter of the shorter of the two timeouts instead.
std::string connection::past_deadline(steady::time_point now, steady::time_point& next) const {
  auto ms = [](steady::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  // While the reader waits (engine flow control, memory budget) silence is ours, not the
  // client's; send_timeout bounds that wait instead.
  const bool held = paused_ || waiting_for_memory();
  if (connected_ && !held && options_.idle_timeout.count() > 0) {
    auto last = std::max(last_read_, last_write_);
    if (now - last >= options_.idle_timeout)
      return fmt::format("idle: nothing received or sent for {} ms (idle_timeout_ms)", ms(now - last));
    next = std::min(next, last + options_.idle_timeout);
  }
  if (!held && options_.frame_timeout.count() > 0 && frame_started_ != steady::time_point::max() &&
      now - frame_started_ >= options_.frame_timeout)
    return fmt::format("a frame begun {} ms ago is still not complete (frame_timeout_ms)", ms(now - frame_started_));
  if (options_.write_timeout.count() > 0 && write_started_ != steady::time_point::max() &&
      now - write_started_ >= options_.write_timeout)
    return fmt::format("slow consumer: a write has not completed for {} ms (write_timeout_ms)", ms(now - write_started_));
  std::chrono::milliseconds shortest{0};
  for (auto t : {options_.frame_timeout, options_.write_timeout})
    if (t.count() > 0 && (shortest.count() == 0 || t < shortest)) shortest = t;
  if (shortest.count() > 0) next = std::min(next, now + std::max<steady::duration>(std::chrono::milliseconds(100), shortest / 4));
  return {};
}

void connection::loosen_keepalive() {
  if (keepalive_tightened_ && !stopped_ && !paused_ && !waiting_for_memory()) {
    set_keepalive(socket_, static_cast<int>(options_.tcp_keepalive.count()), keepalive_interval_s, keepalive_probes);
    keepalive_tightened_ = false;
  }
}

asio::awaitable<void> connection::wait_for_memory() {
  memory_wait_since_ = steady::now();
  std::weak_ptr<connection> weak = shared_from_this();
  auto wake = [weak] {
    if (auto self = weak.lock()) {
      self->memory_waiter_ = 0;
      self->resume_signal_.cancel();
    }
  };
  if (budget_.shared())  // the wake may come from any thread: hop to ours
    memory_waiter_ = budget_.wait([wake, ex = executor_] { asio::post(ex, wake); });
  else
    memory_waiter_ = budget_.wait(wake);
  watchdog_timer_.cancel();  // arm the send_timeout deadline
  while (memory_waiter_ != 0 && !stopped_ && !closing_) {
    boost::system::error_code ec;
    co_await resume_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (memory_waiter_ != 0) budget_.cancel(std::exchange(memory_waiter_, 0));
  memory_wait_since_ = steady::time_point::max();
  loosen_keepalive();
  // Silence while we were not reading is ours, not the client's; so is the frame's age.
  last_read_ = steady::now();
  if (frame_started_ != steady::time_point::max()) frame_started_ = last_read_;
}

// The reader waited send_timeout for the memory budget in the middle of a frame: the frame
// can not be taken. Say which limit, then close (the rest of the frame is never read).
void connection::refuse_for_memory() {
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - memory_wait_since_);
  log::warn("conn", "frame refused: broker memory full",
            {log::kv("remote", remote_), log::kv("session", id_), log::kv("waited_ms", waited.count()),
             log::kv("used", budget_.used()), log::kv("max_memory_bytes", budget_.limit())});
  stomp::frame f;
  f.command = "ERROR";
  f.add("message", "broker memory full (max_memory_bytes)");
  f.add("content-type", "text/plain");
  f.body = fmt::format(
      "The broker holds {} of its {} bytes of memory (config key max_memory_bytes: {} of messages, {} of "
      "partial frames, {} of read buffers, {} of TLS and WebSocket buffers, {} queued to clients). This "
      "connection's frame waited {} ms (send_timeout_ms) for memory to be freed and was not taken. The "
      "connection is closed.\n",
      budget_.used(), budget_.limit(), budget_.message_bytes(), budget_.partial_frame_bytes(),
      budget_.read_buffer_bytes(), budget_.transport_buffer_bytes(), budget_.write_queue_bytes(), waited.count());
  std::string out;
  stomp::encode(f, parser_.get_version(), out);
  send_error_and_close(std::move(out), "broker memory full (max_memory_bytes): a frame waited for send_timeout_ms");
}

asio::awaitable<void> connection::watchdog() {
  auto closing_since = steady::time_point::max();
  while (!stopped_) {
    auto now = steady::now();
    auto next = steady::time_point::max();
    if (closing_) {
      if (closing_since == steady::time_point::max()) closing_since = now;
      if (now - closing_since >= linger_limit) {
        stop("closed after flush (client did not hang up)");
        co_return;
      }
      next = closing_since + linger_limit;
    } else {
      if (!connected_) {
        auto deadline = started_ + options_.connect_timeout;
        if (now >= deadline) {
          stop(fmt::format("no CONNECT within {} ms", options_.connect_timeout.count()));
          co_return;
        }
        next = std::min(next, deadline);
      }
      if (waiting_for_memory() || paused_) {
        if (peer_hung_up(socket_)) {
          // As a hang-up without DISCONNECT anywhere else: the waiting frame is dropped (no
          // RECEIPT was promised for it) and the engine redelivers the unacked messages. A
          // SEND held for space is complete, but after the client's FIN it could not be
          // answered anyway: a resumed reader would read the FIN and close the session
          // before the SEND's RECEIPT, like any reader that meets EOF.
          stop(waiting_for_memory() ? "client hung up while its frame waited for memory (max_memory_bytes)"
                                    : "client hung up while its SEND waited for space (producer flow control)");
          co_return;
        }
        next = std::min(next, now + parked_hang_up_check);
        // Not at once: a reader may wait for a moment many times a second when a limit is
        // just reached, and this costs three system calls each way.
        const auto since = std::min(memory_wait_since_, paused_since_);
        if (!keepalive_tightened_ && options_.tcp_keepalive.count() > 0) {
          if (now - since >= parked_keepalive_after) {
            set_keepalive(socket_, std::min<int>(parked_keepalive_idle_s, options_.tcp_keepalive.count()),
                          parked_keepalive_interval_s, parked_keepalive_probes);
            keepalive_tightened_ = true;
          } else {
            next = std::min(next, since + parked_keepalive_after);
          }
        }
      }
      if (waiting_for_memory() && !error_sent_) {
        auto deadline = memory_wait_since_ + options_.send_timeout;
        if (now >= deadline) {
          refuse_for_memory();
          continue;  // closing_ now: the linger deadline
        }
        next = std::min(next, deadline);
      }
      if (hb_expect_.count() > 0 && !paused_ && !waiting_for_memory()) {
        auto limit = std::chrono::duration_cast<steady::duration>(hb_expect_ * options_.heartbeat_grace);
        if (now - last_read_ >= limit) {
          stop(fmt::format("heart-beat timeout: nothing received for {} ms",
                           std::chrono::duration_cast<std::chrono::milliseconds>(now - last_read_).count()));
          co_return;
        }
        next = std::min(next, last_read_ + limit);
      }
      if (auto why = past_deadline(now, next); !why.empty()) {
        stop(why);
        co_return;
      }
      if (hb_send_.count() > 0) {
        if (now - last_write_ >= hb_send_) {
          // A heart-beat is one EOL; written like a frame so it never splits one.
          bool queued = false;
          {
            auto lock = lock_out();
            if (queue_.empty()) {
              queue_.push_back("\n");
              queued_bytes_.store(queued_bytes_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
              budget_.queued(1);
              writer_idle_ = false;
              queued = true;
            }
          }
          if (queued) {
            last_write_ = now;  // the writer updates it again when written
            write_signal_.cancel_one();
          }
        }
        next = std::min(next, std::max(last_write_, now) + hb_send_);
      }
    }
    watchdog_timer_.expires_at(next);
    boost::system::error_code ec;
    co_await watchdog_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace tandem::broker
