#include "tools/client/connection.h"

#include <algorithm>
#include <charconv>
#include <random>

#include "broker/stomp/encoder.h"
#include "broker/stomp/header_values.h"
#include "tools/client/errc.h"

namespace tandem::client {
namespace {

using asio::awaitable;
using asio::redirect_error;
using asio::use_awaitable;
using asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
// Asio reports boost::system::error_code; it converts to std::error_code where we return one.
using asio_error = boost::system::error_code;

constexpr std::size_t read_buffer_bytes = 64 * 1024;

std::string to_decimal(std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  return std::string(buf, end);
}

std::optional<std::uint64_t> from_decimal(std::string_view text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return v;
}

// Sets (or replaces) the first header `name`, or erases every header `name` when value is
// empty. Reuses the existing string's capacity on the hot path (one SEND per message).
void set_header(stomp::frame& f, std::string_view name, std::optional<std::string_view> value) {
  auto it = std::find_if(f.headers.begin(), f.headers.end(), [&](const stomp::header& h) { return h.first == name; });
  if (!value) {
    f.headers.erase(std::remove_if(f.headers.begin(), f.headers.end(), [&](const stomp::header& h) { return h.first == name; }),
                    f.headers.end());
    return;
  }
  if (it != f.headers.end()) {
    it->second.assign(value->data(), value->size());
  } else {
    f.headers.emplace_back(std::string(name), std::string(*value));
  }
}

}  // namespace

std::string_view ack_mode_name(ack_mode m) noexcept {
  switch (m) {
    case ack_mode::auto_ack: return "auto";
    case ack_mode::client: return "client";
    case ack_mode::client_individual: return "client-individual";
  }
  return "auto";
}

std::optional<ack_mode> ack_mode_from_name(std::string_view name) noexcept {
  if (name == "auto") return ack_mode::auto_ack;
  if (name == "client") return ack_mode::client;
  if (name == "client-individual") return ack_mode::client_individual;
  return std::nullopt;
}

std::shared_ptr<connection> connection::create(asio::any_io_executor executor, connect_options options, handlers h) {
  return std::shared_ptr<connection>(new connection(std::move(executor), std::move(options), std::move(h)));
}

connection::connection(asio::any_io_executor executor, connect_options options, handlers h)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      handlers_(std::move(h)),
      parser_(stomp::direction::from_server, options_.limits),
      backoff_timer_(executor_),
      writer_wakeup_(executor_, clock_type::time_point::max()),
      state_changed_(executor_, clock_type::time_point::max()),
      read_buffer_(read_buffer_bytes) {
  if (options_.brokers.randomize && options_.brokers.brokers.size() > 1) {
    std::shuffle(options_.brokers.brokers.begin(), options_.brokers.brokers.end(), std::mt19937(std::random_device{}()));
  }
  if (options_.receipt_window == 0) options_.receipt_window = 1;
}

connection::~connection() = default;

const broker_address& connection::current_broker() const { return options_.brokers.brokers.at(broker_index_); }

awaitable<std::error_code> connection::async_connect() {
  if (state_ != state::idle) co_return make_error_code(errc::closed);
  if (options_.brokers.brokers.empty()) co_return make_error_code(errc::bad_url);
  state_ = state::connecting;
  unsigned attempts = 0;
  auto ec = co_await connect_with_retries(true, attempts);
  if (!ec && state_ == state::closed) ec = make_error_code(errc::closed);  // close() won the race
  if (ec) {
    state_ = state::closed;
    wake_waiters();
    co_return ec;
  }
  state_ = state::connected;
  auto self = shared_from_this();
  asio::co_spawn(executor_, supervise(self), asio::detached);
  asio::co_spawn(executor_, write_loop(self), asio::detached);
  co_return std::error_code{};
}

awaitable<std::error_code> connection::connect_with_retries(bool first, unsigned& attempts) {
  const broker_list& list = options_.brokers;
  const std::size_t n = list.brokers.size();
  // After a loss start with the next broker: with a shared store the one we lost is the
  // old master, which is dead or deposed; it is still tried, last in the round.
  std::size_t start = first ? 0 : (broker_index_ + 1) % n;
  auto delay = list.initial_reconnect_delay;
  std::error_code last;
  // The first connect makes one round plus startup_max_reconnect_attempts more attempts; a
  // reconnect is bounded by max_reconnect_attempts (-1: forever).
  const int budget = first ? list.startup_max_reconnect_attempts : list.max_reconnect_attempts;
  for (;;) {
    for (std::size_t k = 0; k < n; ++k) {
      if (close_requested_) co_return make_error_code(errc::closed);
      const std::size_t index = (start + k) % n;
      ++attempts;
      last = co_await connect_once(index);
      if (!last) co_return std::error_code{};
      if (last == errc::connect_refused || close_requested_) co_return last;
      if (!list.failover) co_return last;
      if (budget >= 0 && (first ? attempts >= n + static_cast<unsigned>(budget) : attempts >= static_cast<unsigned>(std::max(budget, 1)))) {
        co_return n == 1 ? last : make_error_code(errc::no_broker_reachable);
      }
    }
    // Back off between rounds, not between brokers: with a master/slave pair the second
    // broker of the round is the likely new master and should be tried at once.
    backoff_timer_.expires_after(delay);
    asio_error ec;
    co_await backoff_timer_.async_wait(redirect_error(use_awaitable, ec));
    if (close_requested_) co_return make_error_code(errc::closed);
    auto next = std::chrono::duration_cast<std::chrono::milliseconds>(delay * list.backoff_multiplier);
    delay = std::min(std::max(next, delay + std::chrono::milliseconds(1)), list.max_reconnect_delay);
  }
}

awaitable<std::error_code> connection::connect_once(std::size_t index) {
  const broker_address& address = options_.brokers.brokers[index];
  auto socket = std::make_shared<link>(executor_, address.websocket);
  connecting_socket_ = socket;
  // No per-operation cancellation in Asio 1.18: a timer closes the socket, which fails
  // whatever operation is pending on it.
  auto timed_out = std::make_shared<bool>(false);
  asio::steady_timer watchdog(executor_, options_.connect_timeout);
  watchdog.async_wait([socket, timed_out](asio_error ec) {
    if (ec) return;
    *timed_out = true;
    socket->close();
  });
  auto finish = [&](std::error_code ec) -> std::error_code {
    watchdog.cancel();
    connecting_socket_.reset();
    if (ec && *timed_out) return make_error_code(errc::timed_out);
    if (ec && close_requested_) return make_error_code(errc::closed);
    return ec;
  };

  asio_error ec;
  std::vector<tcp::endpoint> endpoints;
  auto ip = asio::ip::make_address(address.host, ec);
  if (!ec) {
    endpoints.emplace_back(ip, address.port);
  } else {
    tcp::resolver resolver(executor_);
    ec = {};
    auto results = co_await resolver.async_resolve(address.host, std::to_string(address.port), redirect_error(use_awaitable, ec));
    if (ec) co_return finish(ec);
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  }
  co_await asio::async_connect(socket->socket(), endpoints, redirect_error(use_awaitable, ec));
  if (ec) co_return finish(ec);
  socket->socket().set_option(tcp::no_delay(true), ec);
  ec = {};
  co_await socket->async_start(address, ec);
  if (ec) co_return finish(ec);

  // CONNECT is never escaped (frame.h section 2), so the version argument does not matter.
  stomp::frame connect;
  connect.command = "CONNECT";
  connect.add("accept-version", "1.0,1.1,1.2");
  connect.add("host", options_.virtual_host.empty() ? address.host : options_.virtual_host);
  if (!options_.login.empty()) connect.add("login", options_.login);
  if (!options_.passcode.empty()) connect.add("passcode", options_.passcode);
  if (!options_.client_id.empty()) connect.add("client-id", options_.client_id);
  stomp::heart_beat ours{options_.heartbeat_send, options_.heartbeat_expect};
  connect.add("heart-beat", stomp::format_heart_beat(ours));
  std::string bytes;
  if (auto encode_error = stomp::encode(connect, stomp::version::v1_0, bytes)) co_return finish(encode_error);
  const std::size_t connect_size = bytes.size();
  co_await socket->async_write(bytes, std::span<const std::size_t>(&connect_size, 1), ec);
  if (ec) co_return finish(ec);

  parser_.reset();
  parser_.set_version(stomp::version::v1_0);
  leftover_.clear();
  for (;;) {
    std::size_t n = co_await socket->async_read_some(asio::buffer(read_buffer_), ec);
    if (ec) co_return finish(ec);
    bytes_read_ += n;
    std::span<const char> in(read_buffer_.data(), n);
    while (!in.empty()) {
      auto [used, status] = parser_.feed(in);
      in = in.subspan(used);
      if (status == stomp::parse_status::error) co_return finish(make_error_code(errc::protocol_error));
      if (status != stomp::parse_status::frame_ready) continue;
      stomp::frame reply = parser_.take_frame();
      if (reply.command == "ERROR") {
        if (handlers_.on_error) handlers_.on_error(reply);
        socket->close();
        co_return finish(make_error_code(errc::connect_refused));
      }
      if (reply.command != "CONNECTED") {
        socket->close();
        co_return finish(make_error_code(errc::protocol_error));
      }
      // Bytes after CONNECTED (a heart-beat, in theory a frame) belong to the read loop.
      leftover_.assign(in.data(), in.size());
      auto version = reply.get("version");
      version_ = version ? stomp::version_from_name(*version).value_or(stomp::version::v1_0) : stomp::version::v1_0;
      parser_.set_version(version_);
      stomp::heart_beat theirs;
      if (auto hb = reply.get("heart-beat")) {
        if (auto parsed = stomp::parse_heart_beat(*hb)) theirs = parsed.value();
      }
      auto periods = stomp::negotiate_heart_beat(ours, theirs);
      send_every_ = periods.send_every;
      expect_every_ = periods.expect_every;
      connected_ = std::move(reply);
      socket_ = socket;
      broker_index_ = index;
      ++generation_;
      loss_cause_ = {};
      saw_error_frame_ = false;
      last_read_ = last_write_ = clock_type::now();
      co_return finish({});
    }
  }
}

awaitable<void> connection::supervise(std::shared_ptr<connection> self) {
  try {
    for (;;) {
      if (send_every_.count() > 0 || expect_every_.count() > 0) {
        asio::co_spawn(executor_, heartbeat_loop(self, generation_), asio::detached);
      }
      std::error_code cause = co_await read_loop(socket_);
      if (state_ == state::closed) co_return;  // close() did the rest
      const auto lost_at = clock_type::now();
      const std::size_t receipts_lost = outstanding_.size();
      on_lost(cause);
      const bool final = close_requested_ || !options_.brokers.failover;
      if (final) {
        state_ = state::closed;
        wake_waiters();
        writer_wakeup_.cancel();
        if (handlers_.on_connection_lost) handlers_.on_connection_lost(cause, true);
        co_return;
      }
      state_ = state::reconnecting;
      wake_waiters();
      if (handlers_.on_connection_lost) handlers_.on_connection_lost(cause, false);

      reconnect_event event;
      event.cause = cause;
      event.lost_at = lost_at;
      event.receipts_lost = receipts_lost;
      std::error_code ec = close_requested_ ? make_error_code(errc::closed) : co_await connect_with_retries(false, event.attempts);
      if (state_ == state::closed) co_return;  // close() during the reconnect
      if (ec) {
        state_ = state::closed;
        wake_waiters();
        writer_wakeup_.cancel();
        if (handlers_.on_connection_lost) handlers_.on_connection_lost(ec, true);
        co_return;
      }
      state_ = state::connected;
      for (const auto& sub : subscriptions_) send_subscribe(sub, 0);
      event.broker_index = broker_index_;
      event.broker = options_.brokers.brokers[broker_index_];
      event.connected_at = clock_type::now();
      event.resubscribed = subscriptions_.size();
      if (handlers_.on_reconnect) handlers_.on_reconnect(event);
      wake_waiters();
    }
  } catch (...) {
    // Only a throwing callback or bad_alloc gets here. An exception escaping a detached
    // coroutine would vanish; keep it for the owner and close for good instead.
    last_exception_ = std::current_exception();
    close_requested_ = true;
    on_lost(make_error_code(errc::closed));
    state_ = state::closed;
    wake_waiters();
    writer_wakeup_.cancel();
  }
}

awaitable<std::error_code> connection::read_loop(std::shared_ptr<link> socket) {
  auto dispatch = [&](std::span<const char> in) -> std::error_code {
    while (!in.empty()) {
      auto [used, status] = parser_.feed(in);
      in = in.subspan(used);
      if (status == stomp::parse_status::frame_ready) {
        on_frame(parser_.take_frame());
        // A callback may have called close(); the rest of the buffer is not ours to act on.
        if (!socket->is_open()) return loss_cause_ ? loss_cause_ : make_error_code(errc::closed);
      } else if (status == stomp::parse_status::error) {
        last_parse_error_ = parser_.error();
        return make_error_code(errc::protocol_error);
      }
    }
    return {};
  };
  if (!leftover_.empty()) {
    std::string pending;
    pending.swap(leftover_);
    if (auto ec = dispatch(pending)) co_return ec;
  }
  for (;;) {
    asio_error ec;
    std::size_t n = co_await socket->async_read_some(asio::buffer(read_buffer_), ec);
    if (ec) {
      if (loss_cause_) co_return loss_cause_;
      // The broker closing right after an ERROR frame is the ERROR's consequence.
      if (saw_error_frame_) co_return make_error_code(errc::broker_error);
      co_return ec;
    }
    bytes_read_ += n;
    last_read_ = clock_type::now();
    if (auto err = dispatch(std::span<const char>(read_buffer_.data(), n))) co_return err;
  }
}

awaitable<void> connection::write_loop(std::shared_ptr<connection> /*keep_alive*/) {
  for (;;) {
    if (state_ == state::closed) co_return;
    if (out_.empty() || state_ != state::connected) {
      writer_idle_ = true;
      asio_error ignored;
      co_await writer_wakeup_.async_wait(redirect_error(use_awaitable, ignored));
      continue;
    }
    writer_idle_ = false;
    auto socket = socket_;
    const auto generation = generation_;
    std::swap(out_, writing_);
    std::swap(out_frames_, writing_frames_);
    asio_error ec;
    std::size_t n = co_await socket->async_write(writing_, writing_frames_, ec);
    writing_.clear();
    writing_frames_.clear();
    if (ec) {
      // The reader sees the closed socket and runs the loss path; a write failure on an
      // older incarnation is already handled.
      if (generation == generation_ && socket == socket_) close_socket(ec);
    } else {
      bytes_written_ += n;
      last_write_ = clock_type::now();
    }
    wake_waiters();
  }
}

awaitable<void> connection::heartbeat_loop(std::shared_ptr<connection> /*keep_alive*/, std::uint64_t generation) {
  using std::chrono::milliseconds;
  milliseconds period = milliseconds::max();
  if (send_every_.count() > 0) period = std::min(period, send_every_ / 2);
  if (expect_every_.count() > 0) period = std::min(period, expect_every_ / 2);
  period = std::max(period, milliseconds(1));
  auto timer = std::make_shared<asio::steady_timer>(executor_);
  heartbeat_timer_ = timer;
  const auto silence_limit = std::chrono::duration_cast<clock_type::duration>(expect_every_ * options_.heartbeat_grace);
  while (generation == generation_ && state_ == state::connected) {
    timer->expires_after(period);
    asio_error ec;
    co_await timer->async_wait(redirect_error(use_awaitable, ec));
    if (ec || generation != generation_ || state_ != state::connected) co_return;
    const auto now = clock_type::now();
    if (send_every_.count() > 0 && writer_idle_ && out_.empty() && now - last_write_ >= send_every_) {
      out_.push_back('\n');
      if (socket_ && socket_->websocket()) out_frames_.push_back(1);
      writer_wakeup_.cancel();
    }
    if (expect_every_.count() > 0 && now - last_read_ > silence_limit) {
      close_socket(make_error_code(errc::heartbeat_timeout));
      co_return;
    }
  }
}

void connection::on_frame(stomp::frame&& f) {
  if (f.command == "MESSAGE") {
    if (handlers_.on_message) handlers_.on_message(message{std::move(f), generation_});
  } else if (f.command == "RECEIPT") {
    on_receipt_frame(f);
  } else if (f.command == "ERROR") {
    saw_error_frame_ = true;
    if (auto rid = f.get("receipt-id")) {
      if (auto id = from_decimal(*rid)) {
        auto it = std::find_if(outstanding_.begin(), outstanding_.end(), [&](const pending_receipt& p) { return p.id == *id; });
        if (it != outstanding_.end()) {
          receipt_event event{it->id, make_error_code(errc::broker_error), it->sent_at};
          outstanding_.erase(it);
          if (handlers_.on_receipt) handlers_.on_receipt(event);
          wake_waiters();
        }
      }
    }
    if (handlers_.on_error) handlers_.on_error(f);
  }
  // A second CONNECTED or an unknown server frame carries nothing we act on.
}

void connection::on_receipt_frame(const stomp::frame& f) {
  auto rid = f.get("receipt-id");
  if (!rid) return;
  auto id = from_decimal(*rid);
  if (!id) return;
  if (*id == disconnect_receipt_) {
    disconnect_done_ = true;
    wake_waiters();
    return;
  }
  // Brokers answer in order, so the match is nearly always the front.
  auto it = outstanding_.begin();
  if (it == outstanding_.end() || it->id != *id) {
    it = std::find_if(outstanding_.begin(), outstanding_.end(), [&](const pending_receipt& p) { return p.id == *id; });
    if (it == outstanding_.end()) return;
  }
  receipt_event event{it->id, {}, it->sent_at};
  outstanding_.erase(it);
  if (handlers_.on_receipt) handlers_.on_receipt(event);
  wake_waiters();
}

void connection::on_lost(std::error_code cause) {
  if (!loss_cause_) loss_cause_ = cause;
  if (socket_) socket_->close();
  if (heartbeat_timer_) heartbeat_timer_->cancel();
  heartbeat_timer_.reset();
  out_.clear();
  out_frames_.clear();
  fail_outstanding(make_error_code(errc::receipt_lost));
}

void connection::fail_outstanding(std::error_code error) {
  // Callbacks may queue new work; they see an empty window, never a half-failed one.
  std::deque<pending_receipt> lost;
  lost.swap(outstanding_);
  for (const auto& p : lost) {
    if (handlers_.on_receipt) handlers_.on_receipt(receipt_event{p.id, error, p.sent_at});
  }
  wake_waiters();
}

std::error_code connection::queue(const stomp::frame& f) {
  const std::size_t before = out_.size();
  if (auto ec = stomp::encode(f, version_, out_)) return ec;
  if (socket_ && socket_->websocket()) out_frames_.push_back(out_.size() - before);
  if (writer_idle_) writer_wakeup_.cancel();
  return {};
}

void connection::set_receipt_header(stomp::frame& f, std::uint64_t id) {
  if (id == 0) {
    set_header(f, "receipt", std::nullopt);
  } else {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, id);
    (void)ec;
    set_header(f, "receipt", std::string_view(buf, static_cast<std::size_t>(end - buf)));
  }
}

awaitable<result<std::uint64_t>> connection::async_send(stomp::frame& frame, bool want_receipt) {
  for (;;) {
    if (state_ == state::closed || close_requested_) co_return make_error_code(errc::closed);
    if (state_ == state::idle) co_return make_error_code(errc::not_connected);
    if (state_ == state::connected && (!want_receipt || outstanding_.size() < options_.receipt_window) &&
        out_.size() < options_.max_buffered_bytes) {
      break;
    }
    asio_error ignored;
    co_await state_changed_.async_wait(redirect_error(use_awaitable, ignored));
  }
  const std::uint64_t id = want_receipt ? ++last_receipt_id_ : 0;
  set_receipt_header(frame, id);
  if (auto ec = queue(frame)) co_return ec;
  if (id != 0) outstanding_.push_back({id, clock_type::now()});
  co_return id;
}

awaitable<std::error_code> connection::async_flush() {
  for (;;) {
    if (outstanding_.empty()) co_return std::error_code{};
    if (state_ == state::closed) co_return make_error_code(errc::closed);
    asio_error ignored;
    co_await state_changed_.async_wait(redirect_error(use_awaitable, ignored));
  }
}

void connection::send_subscribe(const subscription& sub, std::uint64_t receipt_id) {
  scratch_.clear();
  scratch_.command = "SUBSCRIBE";
  scratch_.add("destination", sub.destination);
  scratch_.add("id", sub.id);
  scratch_.add("ack", std::string(ack_mode_name(sub.ack)));
  if (sub.prefetch) scratch_.add("activemq.prefetchSize", to_decimal(*sub.prefetch));
  if (!sub.selector.empty()) scratch_.add("selector", sub.selector);
  for (const auto& h : sub.extra_headers) scratch_.add(h.first, h.second);
  if (receipt_id != 0) scratch_.add("receipt", to_decimal(receipt_id));
  queue(scratch_);
  if (receipt_id != 0) outstanding_.push_back({receipt_id, clock_type::now()});
}

result<std::uint64_t> connection::subscribe(subscription& sub, bool want_receipt) {
  if (state_ == state::closed || close_requested_) return make_error_code(errc::closed);
  if (state_ == state::idle) return make_error_code(errc::not_connected);
  if (sub.id.empty()) sub.id = to_decimal(++last_subscription_id_);
  subscriptions_.push_back(sub);
  // While reconnecting the subscription is only remembered; the reconnect sends it (without
  // a receipt, so none is promised here).
  if (state_ != state::connected) return std::uint64_t{0};
  const std::uint64_t id = want_receipt ? ++last_receipt_id_ : 0;
  send_subscribe(sub, id);
  return id;
}

result<std::uint64_t> connection::unsubscribe(std::string_view id, bool want_receipt) {
  if (state_ == state::closed || close_requested_) return make_error_code(errc::closed);
  subscriptions_.erase(std::remove_if(subscriptions_.begin(), subscriptions_.end(), [&](const subscription& s) { return s.id == id; }),
                       subscriptions_.end());
  if (state_ != state::connected) return std::uint64_t{0};
  const std::uint64_t receipt_id = want_receipt ? ++last_receipt_id_ : 0;
  scratch_.clear();
  scratch_.command = "UNSUBSCRIBE";
  scratch_.add("id", std::string(id));
  if (receipt_id != 0) scratch_.add("receipt", to_decimal(receipt_id));
  if (auto ec = queue(scratch_)) return ec;
  if (receipt_id != 0) outstanding_.push_back({receipt_id, clock_type::now()});
  return receipt_id;
}

std::error_code connection::ack_or_nack(const message& m, std::string_view transaction, bool is_ack,
                                        std::uint64_t receipt_id) {
  if (state_ != state::connected || m.generation != generation_) return make_error_code(errc::not_connected);
  scratch_.clear();
  scratch_.command = is_ack ? "ACK" : "NACK";
  // 1.2 acknowledges by the MESSAGE's `ack` header; 1.1 by message-id and subscription;
  // 1.0 by message-id alone.
  if (version_ == stomp::version::v1_2) {
    auto ack = m.frame.get("ack");
    if (!ack) ack = m.frame.get("message-id");
    scratch_.add("id", std::string(ack.value_or("")));
  } else {
    scratch_.add("message-id", std::string(m.frame.get("message-id").value_or("")));
    if (version_ == stomp::version::v1_1) scratch_.add("subscription", std::string(m.frame.get("subscription").value_or("")));
  }
  if (!transaction.empty()) scratch_.add("transaction", std::string(transaction));
  if (receipt_id != 0) scratch_.add("receipt", to_decimal(receipt_id));
  if (auto ec = queue(scratch_)) return ec;
  if (receipt_id != 0) outstanding_.push_back({receipt_id, clock_type::now()});
  return {};
}

std::error_code connection::ack(const message& m, std::string_view transaction) { return ack_or_nack(m, transaction, true); }
std::error_code connection::nack(const message& m, std::string_view transaction) { return ack_or_nack(m, transaction, false); }

result<std::uint64_t> connection::ack_with_receipt(const message& m) {
  // Checked here too so that a refused ACK does not use up a receipt id.
  if (state_ != state::connected || m.generation != generation_) return make_error_code(errc::not_connected);
  const std::uint64_t receipt_id = ++last_receipt_id_;
  if (auto ec = ack_or_nack(m, {}, true, receipt_id)) return ec;
  return receipt_id;
}

std::error_code connection::begin(std::string_view transaction) {
  if (state_ != state::connected) return make_error_code(errc::not_connected);
  scratch_.clear();
  scratch_.command = "BEGIN";
  scratch_.add("transaction", std::string(transaction));
  return queue(scratch_);
}

result<std::uint64_t> connection::commit(std::string_view transaction, bool want_receipt) {
  return end_transaction("COMMIT", transaction, want_receipt);
}

result<std::uint64_t> connection::abort(std::string_view transaction, bool want_receipt) {
  return end_transaction("ABORT", transaction, want_receipt);
}

result<std::uint64_t> connection::end_transaction(std::string_view command, std::string_view transaction, bool want_receipt) {
  if (state_ != state::connected) return make_error_code(errc::not_connected);
  const std::uint64_t receipt_id = want_receipt ? ++last_receipt_id_ : 0;
  scratch_.clear();
  scratch_.command = std::string(command);
  scratch_.add("transaction", std::string(transaction));
  if (receipt_id != 0) scratch_.add("receipt", to_decimal(receipt_id));
  if (auto ec = queue(scratch_)) return ec;
  if (receipt_id != 0) outstanding_.push_back({receipt_id, clock_type::now()});
  return receipt_id;
}

awaitable<std::error_code> connection::async_disconnect(std::chrono::milliseconds timeout) {
  if (state_ != state::connected) {
    close();
    co_return std::error_code{};
  }
  close_requested_ = true;
  backoff_timer_.cancel();
  disconnect_receipt_ = ++last_receipt_id_;
  disconnect_done_ = false;
  scratch_.clear();
  scratch_.command = "DISCONNECT";
  scratch_.add("receipt", to_decimal(disconnect_receipt_));
  queue(scratch_);
  auto timed_out = std::make_shared<bool>(false);
  asio::steady_timer deadline(executor_, timeout);
  std::weak_ptr<connection> weak = weak_from_this();
  deadline.async_wait([weak, timed_out](asio_error ec) {
    if (ec) return;
    *timed_out = true;
    if (auto self = weak.lock()) self->wake_waiters();
  });
  while (!disconnect_done_ && state_ != state::closed && !*timed_out) {
    asio_error ignored;
    co_await state_changed_.async_wait(redirect_error(use_awaitable, ignored));
  }
  deadline.cancel();
  const bool done = disconnect_done_;
  close();
  if (done) co_return std::error_code{};
  co_return make_error_code(*timed_out ? errc::timed_out : errc::closed);
}

void connection::close() {
  close_requested_ = true;
  backoff_timer_.cancel();
  if (auto s = connecting_socket_.lock()) s->close();
  if (state_ == state::closed) return;
  if (state_ == state::idle) {
    state_ = state::closed;
    return;
  }
  // Done here, not in supervise(), so the caller sees a closed connection (and every
  // receipt reported lost) when close() returns; supervise() then only exits.
  on_lost(make_error_code(errc::closed));
  state_ = state::closed;
  wake_waiters();
  writer_wakeup_.cancel();
  if (handlers_.on_connection_lost) handlers_.on_connection_lost(make_error_code(errc::closed), true);
}

void connection::drop() {
  if (state_ == state::connected) close_socket(make_error_code(errc::connection_dropped));
}

void connection::close_socket(std::error_code cause) {
  if (!loss_cause_) loss_cause_ = cause;
  if (socket_) socket_->close();
}

void connection::wake_waiters() { state_changed_.cancel(); }

}  // namespace tandem::client
