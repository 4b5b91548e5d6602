#include "tools/drill/workload.h"

#include <algorithm>
#include <charconv>
#include <future>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "tools/client/connection.h"
#include "tools/client/errc.h"

namespace tandem::drill {
namespace {

using asio::use_awaitable;

std::optional<std::uint64_t> parse_number(std::optional<std::string_view> text) {
  if (!text) return std::nullopt;
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
  if (ec != std::errc() || end != text->data() + text->size()) return std::nullopt;
  return n;
}

}  // namespace

struct workload::producer {
  std::uint32_t index = 0;
  std::string id;           // tandem-producer-id
  std::string destination;
  std::uint64_t limit = 0;  // last seq to send; 0 = no limit
  unsigned window = 32;
  clock_type::duration interval{0};  // between new seqs; 0 = as fast as the window allows
  std::uint64_t unpaced = 0;         // seqs up to this one go as fast as the window allows
  std::shared_ptr<client::connection> conn;
  clock_type::time_point connected_at;
  std::uint64_t reconnects = 0;  // this connection's own, for dropped_all_back()
  std::uint64_t next_seq = 1;
  std::set<std::uint64_t> resend;                         // lost, to send again, in seq order
  std::unordered_map<std::uint64_t, std::uint64_t> inflight;  // receipt id -> seq
  clock_type::time_point next_due;
  std::unique_ptr<asio::steady_timer> wake;
  bool signaled = false;
  bool running = false;
  bool stop = false;  // no new seqs
  bool done = false;
};

struct workload::consumer {
  std::uint32_t index = 0;
  std::shared_ptr<client::connection> conn;
  std::uint64_t reconnects = 0;  // this connection's own, for dropped_all_back()
  std::vector<client::subscription> subscriptions;
  // ACKs waiting for their RECEIPT: receipt id -> (producer, seq).
  std::unordered_map<std::uint64_t, std::pair<std::uint32_t, std::uint64_t>> acks_in_flight;
};

template <class F>
auto workload::call(F&& f) {
  using R = decltype(f());
  std::promise<R> done;
  auto fut = done.get_future();
  asio::post(io_, [&] {
    if constexpr (std::is_void_v<R>) {
      f();
      done.set_value();
    } else {
      done.set_value(f());
    }
  });
  return fut.get();
}

workload::workload(workload_options options)
    : options_(std::move(options)), work_(io_.get_executor()), history_(options_.producers + 2) {
  history_.set_unordered(probe_stream());
  // Schedules fire in time order, not send order.
  if (options_.kind == workload_kind::scheduled)
    for (std::uint32_t p = 0; p < options_.producers; ++p) history_.set_unordered(p);
  thread_ = std::thread([this] { io_.run(); });
}

workload::~workload() {
  if (!finished_) finish();
  work_.reset();
  thread_.join();
}

std::shared_ptr<workload::producer> workload::make_producer(std::uint32_t index, std::string destination,
                                                            std::uint64_t limit, unsigned window, double rate) {
  auto p = std::make_shared<producer>();
  p->index = index;
  p->id = fmt::format("{}-p{}", options_.run_id, index);
  p->destination = std::move(destination);
  p->limit = limit;
  p->window = window;
  if (rate > 0) p->interval = std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(1.0 / rate));
  p->wake = std::make_unique<asio::steady_timer>(io_);

  client::connect_options co;
  co.brokers = options_.brokers;
  co.connect_timeout = options_.connect_timeout;
  co.heartbeat_send = co.heartbeat_expect = options_.heartbeat;
  // Our own window is the one that matters (see workload.h): the client's must never block.
  co.receipt_window = std::size_t{1} << 30;
  co.max_buffered_bytes = std::size_t{1} << 40;
  client::handlers h;
  producer* raw = p.get();
  h.on_receipt = [this, raw](const client::receipt_event& e) {
    auto it = raw->inflight.find(e.id);
    if (it == raw->inflight.end()) return;
    const std::uint64_t seq = it->second;
    raw->inflight.erase(it);
    if (!e.error) {
      const auto now = clock_type::now();
      history_.on_receipt(raw->index, seq, now);
      acks_.push_back(ack_record{e.sent_at, now, raw->conn->current_broker().port, raw->connected_at, raw->index, seq});
      note_accept(*raw);
    } else {
      raw->resend.insert(seq);
      std::lock_guard lock(mutex_);
      ++counters_.receipts_lost;
    }
    update_counters();
    signal(*raw);
  };
  h.on_reconnect = [this, raw](const client::reconnect_event& e) {
    raw->connected_at = e.connected_at;
    ++raw->reconnects;
    {
      std::lock_guard lock(mutex_);
      ++counters_.reconnects;
      if ((armed_ || armed_any_) && !reconnected_after_arm_ && e.connected_at > armed_since_) {
        reconnected_after_arm_ = e.connected_at;
      }
    }
    signal(*raw);
  };
  h.on_connection_lost = [this, raw](std::error_code cause, bool final) {
    if (final && !finished_) {
      note_error(fmt::format("producer {} connection closed for good: {}", raw->index, cause.message()));
      std::lock_guard lock(mutex_);
      ++counters_.closed_for_good;
    }
    signal(*raw);
  };
  h.on_error = [this](const stomp::frame& f) {
    note_error(fmt::format("ERROR from broker: {}", f.get("message").value_or("(no message header)")));
  };
  p->conn = client::connection::create(io_.get_executor(), std::move(co), std::move(h));
  return p;
}

std::shared_ptr<workload::consumer> workload::make_consumer(std::uint32_t index, std::vector<std::string> destinations) {
  auto c = std::make_shared<consumer>();
  c->index = index;
  for (auto& d : destinations) {
    client::subscription s;
    s.destination = std::move(d);
    s.ack = client::ack_mode::client_individual;
    s.prefetch = options_.prefetch;
    c->subscriptions.push_back(std::move(s));
  }
  client::connect_options co;
  co.brokers = options_.brokers;
  co.connect_timeout = options_.connect_timeout;
  co.heartbeat_send = co.heartbeat_expect = options_.heartbeat;
  client::handlers h;
  consumer* raw = c.get();
  h.on_message = [this, raw](client::message&& m) { on_message(*raw, std::move(m)); };
  h.on_receipt = [this, raw](const client::receipt_event& e) {
    auto it = raw->acks_in_flight.find(e.id);
    if (it == raw->acks_in_flight.end()) return;
    if (!e.error) history_.on_ack_receipted(it->second.first, it->second.second);
    raw->acks_in_flight.erase(it);
  };
  h.on_connection_lost = [this, raw](std::error_code cause, bool final) {
    if (final && !finished_) {
      note_error(fmt::format("consumer {} connection closed for good: {}", raw->index, cause.message()));
      std::lock_guard lock(mutex_);
      ++counters_.closed_for_good;
    }
  };
  h.on_reconnect = [this, raw](const client::reconnect_event&) {
    ++raw->reconnects;
    std::lock_guard lock(mutex_);
    ++counters_.reconnects;
  };
  h.on_error = [this](const stomp::frame& f) {
    note_error(fmt::format("ERROR from broker: {}", f.get("message").value_or("(no message header)")));
  };
  c->conn = client::connection::create(io_.get_executor(), std::move(co), std::move(h));
  return c;
}

void workload::on_message(consumer& c, client::message&& m) {
  const auto& f = m.frame;
  auto p = parse_number(f.get("drill-p"));
  auto seq = parse_number(f.get("drill-seq"));
  if (!p || !seq || *p > probe_stream()) {
    history_.on_unexpected(fmt::format("MESSAGE without valid drill ids on {}", f.get("destination").value_or("?")));
  } else {
    const bool live = *p < options_.producers;
    const bool from_dlq = f.get("destination").value_or("") == drill_dlq;
    if (live && options_.kind == workload_kind::redelivery && !from_dlq) {
      const auto key = std::make_pair(static_cast<std::uint32_t>(*p), *seq);
      if (redelivery_action(*seq, nacked_.contains(key)) == consumer_action::nack) {
        // Not a delivery in the history's sense: the message must come back (or reach the
        // DLQ). A NACK refused as not_connected is redelivered by the broker anyway.
        nacked_.insert(key);
        (void)c.conn->nack(m);
        std::lock_guard lock(mutex_);
        ++counters_.nacks;
        return;
      }
    }
    if (from_dlq && !meant_for_dlq(*seq))
      history_.on_policy_violation(fmt::format("p{}:{} dead-lettered, although NACKed at most once", *p, *seq));
    // A consumer can recognise a copy by either flag (tandem-duplicate: issue 12's dedup).
    const bool flagged = f.get("redelivered").value_or("") == "true" || f.get("tandem-duplicate").value_or("") == "true";
    const std::size_t size = *p == probe_stream() ? options_.probe_bytes : options_.message_bytes;
    // Order scope: the consumer; a message group across consumers; none in the DLQ (messages
    // reach it when their redeliveries run out, not in send order).
    std::uint32_t scope = c.index;
    if (live && options_.kind == workload_kind::groups) scope = group_of(*seq);
    if (from_dlq) scope = history::no_order_check;
    history_.on_delivery(scope, static_cast<std::uint32_t>(*p), *seq, flagged,
                         body_matches(f.body, static_cast<std::uint32_t>(*p), *seq, size), clock_type::now());
  }
  // An ACK for a message of an earlier connection is refused by the client (not_connected):
  // the broker redelivers that message, which the history counts as a duplicate. Every ACK
  // asks a RECEIPT: after it, the message must never come back (history.h, acked_redelivered).
  if (p && seq) {
    if (auto id = c.conn->ack_with_receipt(m); id && id.value() != 0)
      c.acks_in_flight.emplace(id.value(), std::make_pair(static_cast<std::uint32_t>(*p), *seq));
  } else {
    (void)c.conn->ack(m);
  }
  update_counters();
}

void workload::note_accept(producer& p) {
  std::lock_guard lock(mutex_);
  if (accepted_) return;
  const auto now = clock_type::now();
  bool counts = false;
  if (armed_) counts = p.connected_at > armed_since_;
  if (armed_any_) counts = now > armed_since_;
  if (!counts) return;
  accept_event e;
  e.at = now;
  e.broker = p.conn->current_broker().to_string();
  e.reconnected_at = reconnected_after_arm_;
  accepted_ = e;
}

void workload::update_counters() {
  std::uint64_t outstanding = 0;
  for (const auto& p : producers_) outstanding += p->inflight.size() + p->resend.size();
  const std::uint32_t backlog = backlog_stream();
  const std::uint32_t probe = probe_stream();
  std::uint64_t receipted = history_.receipted();
  std::uint64_t delivered = history_.delivered();
  std::uint64_t undelivered = history_.receipted_undelivered();
  std::uint64_t backlog_receipted = history_.receipted(backlog);
  std::uint64_t backlog_undelivered = history_.receipted_undelivered(backlog);
  std::uint64_t probe_receipted = history_.receipted(probe);
  std::uint64_t probe_undelivered = history_.receipted_undelivered(probe);
  std::uint64_t side_delivered = history_.delivered(backlog) + history_.delivered(probe);
  std::lock_guard lock(mutex_);
  counters_.receipted = receipted - backlog_receipted - probe_receipted;
  counters_.delivered = delivered - side_delivered;
  counters_.undelivered = undelivered - backlog_undelivered - probe_undelivered;
  counters_.backlog_receipted = backlog_receipted;
  counters_.backlog_undelivered = backlog_undelivered;
  counters_.probe_undelivered = probe_undelivered;
  counters_.producers_outstanding = outstanding;
}

void workload::note_error(std::string text) {
  std::lock_guard lock(mutex_);
  if (errors_.size() < 20) errors_.push_back(std::move(text));
}

void workload::signal(producer& p) {
  p.signaled = true;
  p.wake->cancel();
}

asio::awaitable<void> workload::wait(producer& p, clock_type::time_point deadline) {
  if (p.signaled) {
    p.signaled = false;
    co_return;
  }
  p.wake->expires_at(deadline);
  boost::system::error_code ignored;
  co_await p.wake->async_wait(asio::redirect_error(use_awaitable, ignored));
  p.signaled = false;
}

asio::awaitable<void> workload::run_producer(std::shared_ptr<producer> self) {
  producer& p = *self;
  stomp::frame f;
  const auto forever = clock_type::time_point::max();
  try {
    for (;;) {
      if (p.conn->current_state() == client::connection::state::closed) break;
      const bool may_start_new = !p.stop && (p.limit == 0 || p.next_seq <= p.limit);
      if (p.resend.empty() && !may_start_new) {
        if (p.inflight.empty()) break;
        co_await wait(p, forever);
        continue;
      }
      if (!p.conn->is_connected() || p.inflight.size() >= p.window) {
        co_await wait(p, forever);
        continue;
      }
      std::uint64_t seq = 0;
      if (!p.resend.empty()) {
        seq = *p.resend.begin();
        p.resend.erase(p.resend.begin());
      } else {
        if (p.interval.count() > 0 && p.next_seq > p.unpaced) {
          const auto now = clock_type::now();
          // After an outage, do not burst to catch up: resume the pace from now.
          if (p.next_due + std::chrono::milliseconds(100) < now) p.next_due = now;
          if (now < p.next_due) {
            co_await wait(p, p.next_due);
            continue;
          }
          p.next_due += p.interval;
        }
        seq = p.next_seq++;
      }
      f.clear();
      f.command = "SEND";
      f.add("destination", p.destination);
      f.add("persistent", "true");
      f.add("tandem-producer-id", p.id);
      f.add("tandem-producer-seq", std::to_string(seq));
      f.add("drill-p", std::to_string(p.index));
      f.add("drill-seq", std::to_string(seq));
      f.add("content-type", "text/plain");
      const bool live = p.index < options_.producers;
      if (live) add_policy_headers(options_.kind, f, p.index, seq);
      f.body = make_body(p.index, seq, options_.message_bytes);
      auto r = co_await p.conn->async_send(f, true);
      if (!r) {
        p.resend.insert(seq);
        if (r.error() == client::errc::closed) break;
        continue;
      }
      p.inflight.emplace(r.value(), seq);
      history_.on_send(p.index, seq, live ? expected_deliveries(options_.kind, seq) : 1);
      {
        std::lock_guard lock(mutex_);
        ++counters_.send_attempts;
      }
    }
  } catch (const std::exception& e) {
    note_error(fmt::format("producer {} failed: {}", p.index, e.what()));
  }
  p.done = true;
  update_counters();
}

std::error_code workload::connect() {
  std::promise<std::error_code> done;
  auto fut = done.get_future();
  asio::post(io_, [this, &done] {
    for (unsigned i = 0; i < options_.producers; ++i) {
      producers_.push_back(make_producer(i, fmt::format("/queue/drill.{}.p{}", options_.run_id, i), 0, options_.window,
                                         options_.rate > 0 ? options_.rate / options_.producers : 0));
    }
    const unsigned nc = options_.consumers;
    for (unsigned j = 0; j < nc; ++j) {
      std::vector<std::string> dests;
      if (options_.kind == workload_kind::groups) {
        // Every consumer on every queue: the broker pins each group to one of them.
        for (unsigned i = 0; i < options_.producers; ++i) dests.push_back(fmt::format("/queue/drill.{}.p{}", options_.run_id, i));
      } else if (nc <= options_.producers) {
        for (unsigned i = j; i < options_.producers; i += nc) dests.push_back(fmt::format("/queue/drill.{}.p{}", options_.run_id, i));
      } else {
        dests.push_back(fmt::format("/queue/drill.{}.p{}", options_.run_id, j % options_.producers));
      }
      if (options_.kind == workload_kind::redelivery) dests.emplace_back(drill_dlq);
      consumers_.push_back(make_consumer(j, std::move(dests)));
    }
    if (options_.pending > 0 || options_.parked_rate > 0) {
      // The preload goes at full speed; parked traffic, if any, follows at its own rate.
      const bool parked = options_.parked_rate > 0;
      backlog_producer_ = make_producer(backlog_stream(), fmt::format("/queue/drill.{}.backlog", options_.run_id),
                                        parked ? 0 : options_.pending, options_.backlog_window, options_.parked_rate);
      backlog_producer_->unpaced = options_.pending;
    }
    asio::co_spawn(
        io_,
        [this]() -> asio::awaitable<std::error_code> {
          std::vector<std::shared_ptr<client::connection>> all;
          for (auto& p : producers_) all.push_back(p->conn);
          if (backlog_producer_) all.push_back(backlog_producer_->conn);
          for (auto& c : consumers_) all.push_back(c->conn);
          for (auto& conn : all) {
            if (auto ec = co_await conn->async_connect()) co_return ec;
          }
          for (auto& p : producers_) p->connected_at = clock_type::now();
          if (backlog_producer_) backlog_producer_->connected_at = clock_type::now();
          for (auto& c : consumers_) {
            for (auto& s : c->subscriptions) {
              auto r = c->conn->subscribe(s, false);
              if (!r) co_return r.error();
            }
          }
          co_return std::error_code{};
        },
        [&done](std::exception_ptr e, std::error_code ec) {
          if (e) ec = std::make_error_code(std::errc::io_error);
          done.set_value(ec);
        });
  });
  return fut.get();
}

void workload::start_preload() {
  call([this] {
    if (!backlog_producer_ || backlog_producer_->running) return;
    backlog_producer_->running = true;
    asio::co_spawn(io_, run_producer(backlog_producer_), asio::detached);
  });
}

void workload::start_traffic() {
  call([this] {
    if (backlog_producer_ && !backlog_producer_->running && options_.parked_rate > 0) {
      backlog_producer_->running = true;
      backlog_producer_->next_due = clock_type::now();
      asio::co_spawn(io_, run_producer(backlog_producer_), asio::detached);
    }
    for (auto& p : producers_) {
      if (p->running) continue;
      p->running = true;
      p->next_due = clock_type::now();
      asio::co_spawn(io_, run_producer(p), asio::detached);
    }
  });
}

void workload::arm(clock_type::time_point since) {
  std::lock_guard lock(mutex_);
  armed_ = true;
  armed_any_ = false;
  armed_since_ = since;
  accepted_.reset();
  reconnected_after_arm_.reset();
}

void workload::arm_any(clock_type::time_point since) {
  std::lock_guard lock(mutex_);
  armed_ = false;
  armed_any_ = true;
  armed_since_ = since;
  accepted_.reset();
  reconnected_after_arm_.reset();
}

std::optional<accept_event> workload::accepted() const {
  std::lock_guard lock(mutex_);
  return accepted_;
}

workload_counters workload::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

std::vector<std::string> workload::broker_errors() const {
  std::lock_guard lock(mutex_);
  return errors_;
}

void workload::stop_producers() {
  call([this] {
    for (auto& p : producers_) {
      p->stop = true;
      signal(*p);
    }
    if (backlog_producer_) {
      backlog_producer_->stop = true;
      signal(*backlog_producer_);
    }
  });
}

unsigned workload::drop_connections(connection_selection which) {
  return call([this, which] {
    dropped_.clear();
    auto drop = [&](client::connection& c, const std::uint64_t& reconnects) {
      if (!c.is_connected()) return;
      c.drop();
      dropped_.push_back(dropped_connection{&c, &reconnects, reconnects});
    };
    for (auto& p : producers_) {
      const bool even = p->index % 2 == 0;
      if ((even && which.even_producers) || (!even && which.odd_producers)) drop(*p->conn, p->reconnects);
    }
    if (which.parked && backlog_producer_) drop(*backlog_producer_->conn, backlog_producer_->reconnects);
    if (which.consumers) {
      for (auto& c : consumers_) drop(*c->conn, c->reconnects);
    }
    return static_cast<unsigned>(dropped_.size());
  });
}

bool workload::dropped_all_back() {
  return call([this] {
    return std::all_of(dropped_.begin(), dropped_.end(), [](const dropped_connection& d) {
      return *d.reconnects > d.reconnects_at_drop && d.conn->is_connected();
    });
  });
}

void workload::start_end_consumers(const std::vector<probe_write>& probe_writes, const std::string& probe_destination) {
  call([&] {
    for (const auto& w : probe_writes) {
      history_.on_send(probe_stream(), w.seq);
      if (w.receipted) history_.on_receipt(probe_stream(), w.seq, *w.receipted);
    }
    auto start = [this](std::shared_ptr<consumer> c, std::string what) {
      asio::co_spawn(
          io_,
          [this, c, what]() -> asio::awaitable<void> {
            if (auto ec = co_await c->conn->async_connect()) {
              note_error(fmt::format("{} consumer cannot connect: {}", what, ec.message()));
              co_return;
            }
            for (auto& s : c->subscriptions) (void)c->conn->subscribe(s, false);
          },
          asio::detached);
    };
    if (!backlog_consumer_ && backlog_producer_) {
      backlog_consumer_ = make_consumer(options_.consumers, {fmt::format("/queue/drill.{}.backlog", options_.run_id)});
      start(backlog_consumer_, "backlog");
    }
    if (!probe_consumer_ && !probe_writes.empty()) {
      probe_consumer_ = make_consumer(options_.consumers + 1, {probe_destination});
      start(probe_consumer_, "probe");
    }
    update_counters();
  });
}

std::vector<ack_record> workload::acks() {
  return call([this] { return acks_; });
}

verdict workload::finish() {
  std::promise<verdict> done;
  auto fut = done.get_future();
  asio::post(io_, [this, &done] {
    finished_ = true;
    asio::co_spawn(
        io_,
        [this]() -> asio::awaitable<verdict> {
          std::vector<std::shared_ptr<client::connection>> all;
          for (auto& p : producers_) {
            p->stop = true;
            p->limit = p->next_seq - 1;
            all.push_back(p->conn);
          }
          if (backlog_producer_) all.push_back(backlog_producer_->conn);
          for (auto& c : consumers_) all.push_back(c->conn);
          if (backlog_consumer_) all.push_back(backlog_consumer_->conn);
          if (probe_consumer_) all.push_back(probe_consumer_->conn);
          for (auto& conn : all) {
            if (conn->is_connected()) {
              (void)co_await conn->async_disconnect(std::chrono::seconds(2));
            } else {
              conn->close();
            }
          }
          update_counters();
          co_return history_.compute();
        },
        [&done](std::exception_ptr e, verdict v) {
          if (e) {
            try {
              std::rethrow_exception(e);
            } catch (...) {
              done.set_exception(std::current_exception());
              return;
            }
          }
          done.set_value(std::move(v));
        });
  });
  return fut.get();
}

}  // namespace tandem::drill
