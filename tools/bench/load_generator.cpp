#include "tools/bench/load_generator.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include "tools/client/errc.h"

namespace tandem::bench {
namespace {

using asio::awaitable;
using clock_type = std::chrono::steady_clock;
using asio_error = boost::system::error_code;

constexpr std::string_view timestamp_header = "tandem-bench-ts";
constexpr std::size_t max_error_lines = 10;

std::int64_t to_ns(clock_type::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

double seconds_between(std::int64_t from_ns, std::int64_t to_ns_value) {
  return to_ns_value > from_ns ? static_cast<double>(to_ns_value - from_ns) / 1e9 : 0.0;
}

// What every thread reads to decide when to stop. Written with seq_cst so a consumer that sees
// producers_running == 0 also sees the final sent_total.
struct shared_state {
  explicit shared_state(const bench_options& o) : options(o) {}
  const bench_options& options;
  clock_type::time_point start;  // written by the main thread before producers start
  std::atomic<std::uint64_t> sent_total{0};
  std::atomic<std::uint64_t> delivered_total{0};
  std::atomic<int> producers_running{0};
  std::atomic<std::int64_t> producers_done_ns{0};
  std::atomic<std::int64_t> last_delivery_ns{0};
};

// A producer connection's progress through a failover: after a reconnect it waits for the
// first RECEIPT of a frame queued on the new connection (reconnect_record::first_accept_ms).
struct producer_state {
  bool awaiting_accept = false;
  std::size_t reconnect_index = 0;  // into worker::stats.reconnects
  clock_type::time_point connected_at;
};

struct consumer_state {
  client::connection* conn = nullptr;  // owned by the worker
  unsigned unacked = 0;                // ack mode client: messages since the last ACK
  std::optional<client::message> last;  // ... and the newest of them
};

// One io thread, the connections it drives and what they measured. Stats are touched only on
// this thread until it is joined.
struct worker {
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
  std::vector<std::shared_ptr<client::connection>> producers;
  std::vector<std::uint64_t> producer_quota;
  std::vector<unsigned> producer_index;
  std::vector<std::shared_ptr<client::connection>> consumers;
  std::vector<std::shared_ptr<consumer_state>> consumer_states;
  bench_result stats;
  std::int64_t last_delivery_ns = 0;
  std::int64_t last_receipt_ns = 0;

  void note_error(std::string line) {
    if (stats.errors.size() < max_error_lines) stats.errors.push_back(std::move(line));
  }
};

client::handlers make_handlers(worker& w, shared_state& s, std::shared_ptr<consumer_state> cs, unsigned producer = 0) {
  client::handlers h;
  auto ps = cs ? nullptr : std::make_shared<producer_state>();
  const bool keep = s.options.keep_receipt_samples;
  // Consumers ask for receipts only on SUBSCRIBE: not part of the send latency.
  if (!cs) h.on_receipt = [&w, ps, keep, producer](const client::receipt_event& e) {
    auto now = clock_type::now();
    if (e.error) {
      ++w.stats.receipts_lost;
      return;
    }
    ++w.stats.receipts;
    w.stats.receipt_latency.record(now - e.sent_at);
    w.last_receipt_ns = to_ns(now);
    if (keep) w.stats.receipt_samples.push_back({to_ns(e.sent_at), w.last_receipt_ns, producer});
    if (ps->awaiting_accept && e.sent_at >= ps->connected_at) {
      auto& r = w.stats.reconnects[ps->reconnect_index];
      r.first_accept_ms = std::chrono::duration<double, std::milli>(now - ps->connected_at).count();
      r.first_accept_ns = to_ns(now);
      ps->awaiting_accept = false;
    }
  };
  h.on_error = [&w](const stomp::frame& f) {
    ++w.stats.error_frames;
    w.note_error("ERROR frame: " + std::string(f.get("message").value_or("(no message header)")));
  };
  h.on_connection_lost = [&w](std::error_code cause, bool final) {
    if (final && cause == client::errc::closed) return;  // our own DISCONNECT or close()
    w.note_error(std::string(final ? "connection closed: " : "connection lost: ") + cause.message());
    if (final) w.stats.failed = true;
  };
  h.on_reconnect = [&w, &s, ps](const client::reconnect_event& e) {
    reconnect_record r;
    r.at_s = std::chrono::duration<double>(e.connected_at - s.start).count();
    r.downtime_ms = std::chrono::duration<double, std::milli>(e.connected_at - e.lost_at).count();
    r.broker = e.broker.to_string();
    r.cause = e.cause.message();
    r.receipts_lost = e.receipts_lost;
    r.lost_ns = to_ns(e.lost_at);
    r.connected_ns = to_ns(e.connected_at);
    w.stats.reconnects.push_back(std::move(r));
    if (ps) {
      ps->awaiting_accept = true;
      ps->reconnect_index = w.stats.reconnects.size() - 1;
      ps->connected_at = e.connected_at;
    }
  };
  if (cs) {
    const client::ack_mode mode = s.options.ack;
    const unsigned batch = std::max(1u, s.options.ack_batch);
    h.on_message = [&w, &s, cs, mode, batch](client::message&& m) {
      const auto now = clock_type::now();
      const auto now_ns = to_ns(now);
      ++w.stats.delivered;
      w.stats.delivered_bytes += m.frame.body.size();
      if (auto ts = m.frame.get(timestamp_header)) {
        std::int64_t sent_ns = 0;
        auto [end, ec] = std::from_chars(ts->data(), ts->data() + ts->size(), sent_ns);
        if (ec == std::errc{} && end == ts->data() + ts->size()) w.stats.delivery_latency.record(std::chrono::nanoseconds(now_ns - sent_ns));
      }
      if (auto r = m.frame.get("redelivered"); r && *r == "true") ++w.stats.redelivered;
      w.last_delivery_ns = now_ns;
      s.last_delivery_ns.store(now_ns, std::memory_order_relaxed);
      s.delivered_total.fetch_add(1, std::memory_order_relaxed);
      if (mode == client::ack_mode::client_individual) {
        cs->conn->ack(m);
      } else if (mode == client::ack_mode::client) {
        if (++cs->unacked >= batch) {
          cs->conn->ack(m);
          cs->unacked = 0;
          cs->last.reset();
        } else {
          cs->last = std::move(m);
        }
      }
    };
  }
  return h;
}

client::connect_options make_connect_options(const bench_options& o, const client::broker_list& brokers) {
  client::connect_options c;
  c.brokers = brokers;
  c.login = o.login;
  c.passcode = o.passcode;
  c.receipt_window = std::max<std::size_t>(1, o.window);
  c.heartbeat_send = o.heartbeat;
  c.heartbeat_expect = o.heartbeat;
  return c;
}

awaitable<void> connect_consumers(worker& w, shared_state& s, const client::broker_list& brokers, std::promise<void>& done) {
  for (std::size_t i = 0; i < w.consumers.size(); ++i) {
    auto& conn = w.consumers[i];
    if (auto ec = co_await conn->async_connect()) {
      w.note_error("consumer connect: " + ec.message());
      w.stats.failed = true;
      continue;
    }
    client::subscription sub;
    sub.destination = s.options.destination;
    sub.ack = s.options.ack;
    if (s.options.prefetch > 0) sub.prefetch = s.options.prefetch;
    if (auto r = conn->subscribe(sub, true); !r) {
      w.note_error("subscribe: " + r.error().message());
      w.stats.failed = true;
    }
  }
  // The broker has every subscription once its SUBSCRIBE receipt is back.
  for (auto& conn : w.consumers) {
    if (conn->is_connected()) co_await conn->async_flush();
  }
  (void)brokers;
  done.set_value();
}

awaitable<void> connect_producers(worker& w, std::promise<void>& done) {
  for (auto& conn : w.producers) {
    if (auto ec = co_await conn->async_connect()) {
      w.note_error("producer connect: " + ec.message());
      w.stats.failed = true;
    }
  }
  done.set_value();
}

void producer_finished(shared_state& s) {
  if (s.producers_running.fetch_sub(1) == 1) s.producers_done_ns.store(to_ns(clock_type::now()));
}

awaitable<void> produce(worker& w, shared_state& s, std::size_t slot, std::promise<void>& done) {
  const bench_options& o = s.options;
  auto& conn = *w.producers[slot];
  if (!conn.is_connected()) {
    producer_finished(s);
    done.set_value();
    co_return;
  }
  const std::uint64_t quota = w.producer_quota[slot];
  const bool timed = o.duration_s > 0;
  const auto end = s.start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.duration_s));

  stomp::frame f;
  f.command = "SEND";
  f.add("destination", o.destination);
  f.add("persistent", o.persistent ? "true" : "false");
  f.add(std::string(timestamp_header), "0");
  const std::size_t ts_index = f.headers.size() - 1;
  f.body.assign(o.size, '\0');
  for (std::size_t i = 0; i < f.body.size(); ++i) f.body[i] = static_cast<char>('a' + i % 26);

  // --rate: producer k sends at start + (i + k/P) * P/rate, so the producers interleave.
  std::optional<asio::steady_timer> pacer;
  clock_type::duration interval{};
  clock_type::time_point first_at = s.start;
  if (o.rate > 0) {
    pacer.emplace(w.io);
    interval = std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.producers / o.rate));
    first_at += interval * w.producer_index[slot] / std::max(1u, o.producers);
  }

  bool last_had_receipt = false;
  std::uint64_t i = 0;
  for (;; ++i) {
    if (timed ? clock_type::now() >= end : i >= quota) break;
    if (pacer) {
      const auto due = first_at + interval * static_cast<std::int64_t>(i);
      if (clock_type::now() < due) {
        pacer->expires_at(due);
        asio_error ignored;
        co_await pacer->async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        if (timed && clock_type::now() >= end) break;
      }
    }
    const bool last = !timed && i + 1 == quota;
    const bool want_receipt = last || (o.receipt_every > 0 && (i + 1) % o.receipt_every == 0);
    char buf[24];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, to_ns(clock_type::now()));
    (void)ec;
    f.headers[ts_index].second.assign(buf, p);
    auto r = co_await conn.async_send(f, want_receipt);
    if (!r) {
      w.note_error("send: " + r.error().message());
      break;
    }
    last_had_receipt = want_receipt;
    ++w.stats.sent;
    w.stats.sent_bytes += o.size;
    s.sent_total.fetch_add(1);
  }
  // With --duration the last message is known only after it was sent: confirm the tail with
  // one more receipted message so "sending finished" still means "the broker has them all".
  if (timed && i > 0 && !last_had_receipt && conn.is_connected()) {
    char buf[24];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, to_ns(clock_type::now()));
    (void)ec;
    f.headers[ts_index].second.assign(buf, p);
    if (auto r = co_await conn.async_send(f, true)) {
      ++w.stats.sent;
      w.stats.sent_bytes += o.size;
      s.sent_total.fetch_add(1);
    }
  }
  co_await conn.async_flush();
  producer_finished(s);
  co_await conn.async_disconnect();
  done.set_value();
}

bool consumers_should_stop(const shared_state& s) {
  const bench_options& o = s.options;
  if (s.producers_running.load() != 0) return false;
  const std::uint64_t sent = s.sent_total.load();
  if (!o.drain) {
    const std::uint64_t expected = o.topic ? sent * o.consumers : sent;
    if (s.delivered_total.load() >= expected) return true;
  }
  const std::int64_t last = std::max(s.last_delivery_ns.load(std::memory_order_relaxed), s.producers_done_ns.load());
  return seconds_between(last, to_ns(clock_type::now())) > o.idle_s;
}

awaitable<void> consume_until_done(worker& w, shared_state& s, std::promise<void>& done) {
  asio::steady_timer poll(w.io);
  // A 5 ms poll: the stop decision needs every thread's counters; the timing itself comes
  // from the last delivery's timestamp, so the poll period does not bias the result.
  while (!consumers_should_stop(s)) {
    poll.expires_after(std::chrono::milliseconds(5));
    asio_error ignored;
    co_await poll.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  for (std::size_t i = 0; i < w.consumers.size(); ++i) {
    auto& conn = w.consumers[i];
    auto& cs = *w.consumer_states[i];
    if (cs.last && conn->is_connected()) conn->ack(*cs.last);  // the cumulative tail (ack mode client)
    cs.last.reset();
    if (conn->is_connected()) co_await conn->async_disconnect();
    else conn->close();
  }
  done.set_value();
}

// Runs `task(worker, promise)` on every worker's thread and waits for all of them.
template <class Task>
void on_every_worker(std::vector<std::unique_ptr<worker>>& workers, Task task) {
  std::vector<std::promise<void>> promises(workers.size());
  std::vector<std::future<void>> futures;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    futures.push_back(promises[i].get_future());
    asio::co_spawn(workers[i]->io, task(*workers[i], promises[i]), asio::detached);
  }
  for (auto& f : futures) f.get();
}

double cpu_seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; }

}  // namespace

bench_result run(const bench_options& options, const client::broker_list& brokers) {
  bench_options o = options;
  if (o.drain) o.producers = 0;
  if (o.preload) o.consumers = 0;
  const unsigned thread_count = std::max(1u, std::min(o.threads, std::max(1u, o.producers + o.consumers)));

  shared_state s(o);
  std::vector<std::unique_ptr<worker>> workers;
  for (unsigned t = 0; t < thread_count; ++t) workers.push_back(std::make_unique<worker>());

  rusage usage_before{};
  getrusage(RUSAGE_SELF, &usage_before);
  const auto wall_before = clock_type::now();

  // Connections are dealt round-robin to threads; the count is split evenly, the remainder
  // going to the first producers.
  const auto conn_options = make_connect_options(o, brokers);
  for (unsigned c = 0; c < o.consumers; ++c) {
    worker& w = *workers[c % thread_count];
    auto cs = std::make_shared<consumer_state>();
    auto conn = client::connection::create(w.io.get_executor(), conn_options, make_handlers(w, s, cs));
    cs->conn = conn.get();
    w.consumers.push_back(conn);
    w.consumer_states.push_back(cs);
  }
  for (unsigned p = 0; p < o.producers; ++p) {
    worker& w = *workers[p % thread_count];
    w.producers.push_back(client::connection::create(w.io.get_executor(), conn_options, make_handlers(w, s, nullptr, p)));
    w.producer_quota.push_back(o.count / o.producers + (p < o.count % o.producers ? 1 : 0));
    w.producer_index.push_back(p);
  }

  for (auto& w : workers) {
    w->guard.emplace(w->io.get_executor());
    worker* raw = w.get();
    w->thread = std::thread([raw] { raw->io.run(); });
  }

  // Drain measures from the subscription on: the backlog starts flowing at once.
  if (o.drain) s.start = clock_type::now();
  on_every_worker(workers, [&](worker& w, std::promise<void>& p) { return connect_consumers(w, s, brokers, p); });
  on_every_worker(workers, [&](worker& w, std::promise<void>& p) { return connect_producers(w, p); });

  if (!o.drain) s.start = clock_type::now();
  s.producers_running.store(static_cast<int>(o.producers));
  s.producers_done_ns.store(to_ns(s.start));
  std::vector<std::promise<void>> producer_promises(o.producers);
  std::vector<std::future<void>> producer_futures;
  {
    std::size_t k = 0;
    for (auto& w : workers) {
      for (std::size_t slot = 0; slot < w->producers.size(); ++slot, ++k) {
        producer_futures.push_back(producer_promises[k].get_future());
        asio::co_spawn(w->io, produce(*w, s, slot, producer_promises[k]), asio::detached);
      }
    }
  }
  if (o.consumers > 0) {
    on_every_worker(workers, [&](worker& w, std::promise<void>& p) { return consume_until_done(w, s, p); });
  }
  for (auto& f : producer_futures) f.get();

  for (auto& w : workers) {
    w->guard.reset();
    w->thread.join();
  }

  bench_result result;
  std::int64_t last_delivery = 0;
  std::int64_t last_receipt = 0;
  for (auto& w : workers) {
    auto& st = w->stats;
    result.sent += st.sent;
    result.sent_bytes += st.sent_bytes;
    result.receipts += st.receipts;
    result.receipts_lost += st.receipts_lost;
    result.receipt_latency.merge(st.receipt_latency);
    result.receipt_samples.insert(result.receipt_samples.end(), st.receipt_samples.begin(), st.receipt_samples.end());
    result.delivered += st.delivered;
    result.delivered_bytes += st.delivered_bytes;
    result.redelivered += st.redelivered;
    result.delivery_latency.merge(st.delivery_latency);
    result.error_frames += st.error_frames;
    for (auto& e : st.errors) {
      if (result.errors.size() < max_error_lines) result.errors.push_back(e);
    }
    result.reconnects.insert(result.reconnects.end(), st.reconnects.begin(), st.reconnects.end());
    result.failed = result.failed || st.failed;
    last_delivery = std::max(last_delivery, w->last_delivery_ns);
    last_receipt = std::max(last_receipt, w->last_receipt_ns);
  }
  std::sort(result.receipt_samples.begin(), result.receipt_samples.end(),
            [](const auto& a, const auto& b) { return a.received_ns < b.received_ns; });
  std::sort(result.reconnects.begin(), result.reconnects.end(), [](const auto& a, const auto& b) { return a.at_s < b.at_s; });
  const std::int64_t start_ns = to_ns(s.start);
  result.send_seconds = o.producers > 0 ? seconds_between(start_ns, std::max(s.producers_done_ns.load(), last_receipt)) : 0;
  result.delivery_seconds = seconds_between(start_ns, last_delivery);
  if (!o.drain && o.consumers > 0) result.expected = o.topic ? result.sent * o.consumers : result.sent;

  rusage usage_after{};
  getrusage(RUSAGE_SELF, &usage_after);
  result.cpu_user_s = cpu_seconds(usage_after.ru_utime) - cpu_seconds(usage_before.ru_utime);
  result.cpu_system_s = cpu_seconds(usage_after.ru_stime) - cpu_seconds(usage_before.ru_stime);
  result.wall_s = std::chrono::duration<double>(clock_type::now() - wall_before).count();
  return result;
}

}  // namespace tandem::bench
