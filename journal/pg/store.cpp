// pg::store (store.h). Divisions:
//   1. the owner thread's side: append, completion, the index stages (journal/apply.h)
//   2. the writer thread: group commit in one pipelined transaction
//   3. reads: the body cache and read-ahead
//   4. open: schema check, fence check, loading the index
#include "journal/pg/store.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_map>

#include <fmt/format.h>

#include "journal/apply.h"
#include "journal/detail/late_adds.h"
#include "journal/errc.h"
#include "journal/pg/connection.h"
#include "journal/pg/schema.h"

namespace tandem::journal::pg {

namespace {

// One accepted append on its way to the database.
struct pending {
  change c;
  record_type type{};
  std::vector<std::byte> payload;  // the journal encoding (format.h section 5)
  completion done;
  std::uint64_t append_no = 0;
  // A fence_barrier (message_store.h): no statement of its own; the group's transaction,
  // which begins with the epoch check, commits before it completes.
  bool barrier = false;
};

std::string to_string_bytes(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::uint64_t read_be64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// What one read-ahead query found: (msg_seq, message) in msg_seq order, nullptr for a row
// that does not decode; or the query's error.
struct fetched_rows {
  std::error_code ec;
  std::vector<std::pair<std::uint64_t, std::shared_ptr<const message>>> rows;
};

// A read_async on its way to the reader thread: the query (target, from msg_seq on) and the
// messages whose reads wait for it (reads_in_flight).
struct read_job {
  std::string target;
  std::uint64_t msg_seq = 0;
  std::vector<std::uint64_t> waiting_for;
};

record to_record(change c) {
  return std::visit([](auto&& v) { return record{std::forward<decltype(v)>(v)}; }, std::move(c));
}

// The prepared statements of the writer connection.
struct statement {
  const char* name;
  const char* sql;
};
constexpr statement st_fence{"fence", "select tandem_fence($1::bigint, $2::bigint)"};
constexpr statement st_message{"message", "insert into tandem_message (msg_seq, record) values ($1, $2)"};
// The same, for a group sent again after its first COMMIT's answer was lost (that COMMIT
// may have happened): the row is then already there, with the same record.
constexpr statement st_message_retry{"message_retry",
                                     "insert into tandem_message (msg_seq, record) values ($1, $2) on conflict (msg_seq) do nothing"};
constexpr statement st_entry{"entry",
                             "insert into tandem_entry (target, msg_seq, expires_ms, priority, size) "
                             "values ($1, $2, $3, $4, $5) on conflict do nothing"};
constexpr statement st_producer{"producer",
                                "insert into tandem_producer (producer_id, producer_seq) values ($1, $2) on conflict do nothing"};
constexpr statement st_prune{"prune", "delete from tandem_producer where producer_id = $1 and producer_seq <> all($2::bigint[])"};
constexpr statement st_forget_producer{"forget_producer", "delete from tandem_producer where producer_id = $1"};
// The message row goes with its last entry. The NOT EXISTS reads the statement's snapshot,
// in which this target's entries are still there, hence "e.target <> $1".
constexpr statement st_remove{"remove",
                              "with d as (delete from tandem_entry where target = $1 and msg_seq = $2 returning msg_seq) "
                              "delete from tandem_message m using d where m.msg_seq = d.msg_seq and not exists "
                              "(select 1 from tandem_entry e where e.msg_seq = d.msg_seq and e.target <> $1)"};
constexpr statement st_drop_target{"drop_target",
                                   "with d as (delete from tandem_entry where target = $1 returning msg_seq) "
                                   "delete from tandem_message m using d where m.msg_seq = d.msg_seq and not exists "
                                   "(select 1 from tandem_entry e where e.msg_seq = d.msg_seq and e.target <> $1)"};
constexpr statement st_destination{"destination", "insert into tandem_destination (name) values ($1) on conflict do nothing"};
constexpr statement st_destination_delete{"destination_delete", "delete from tandem_destination where name = $1"};
constexpr statement st_subscription{"subscription",
                                    "insert into tandem_subscription (key, client_id, subscription_name, topic, selector, "
                                    "owner_login) values ($1, $2, $3, $4, $5, $6) on conflict (key) do update set "
                                    "topic = excluded.topic, selector = excluded.selector, owner_login = excluded.owner_login"};
constexpr statement st_subscription_delete{"subscription_delete", "delete from tandem_subscription where key = $1"};
constexpr statement all_statements[] = {st_fence,       st_message,    st_message_retry, st_entry,
                                        st_producer,    st_prune,      st_forget_producer, st_remove,
                                        st_drop_target, st_destination, st_destination_delete,
                                        st_subscription, st_subscription_delete};

// After a failed group: did the connection break, so that its COMMIT may have happened
// (no answer, SQLSTATE class 08 "connection exception", 57P01..57P03 "server shutting down,
// backend terminated")? Any other error is an answer: the transaction rolled back.
bool outcome_unknown(PGconn* c, const std::string& sqlstate) {
  return PQstatus(c) == CONNECTION_BAD || sqlstate.empty() || sqlstate.starts_with("08") || sqlstate.starts_with("57P");
}

}  // namespace

struct store::impl : std::enable_shared_from_this<store::impl> {
  options opts;
  store_id id;
  journal::index idx;
  pg_stats stats;

  // ---- owner thread ----
  std::optional<connection> owner_reader;  // read(): the blocking read, for tools and recovery
  std::uint64_t append_counter = 0;
  detail::late_adds late;  // removes and drops a completing add must respect
  std::unordered_map<std::uint64_t, std::shared_ptr<const message>> cache;
  std::deque<std::pair<std::uint64_t, std::size_t>> cache_order;  // FIFO (msg_seq, bytes)
  std::size_t cache_bytes = 0;
  bool closed = false;
  // Messages a reader-thread query is reading now, with the read_asyncs waiting for them.
  std::unordered_map<std::uint64_t, std::vector<std::pair<std::string, read_completion>>> reads_in_flight;

  // ---- shared with the reader thread ----
  std::mutex read_mu;
  std::condition_variable read_cv;
  std::deque<read_job> read_jobs;
  bool read_stopping = false;
  std::thread read_thread;

  // ---- reader thread ----
  std::optional<connection> async_reader;

  // ---- shared with the writer ----
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<pending>> queue;
  bool stopping = false;
  std::error_code failed_ec;  // under mu
  std::thread writer;

  // ---- writer thread ----
  std::optional<connection> conn;
  std::string backend_pid, backend_start;  // of conn, to end it after it broke
  std::uint64_t committed_floor = 0;       // highest next_msg_seq a COMMIT of ours returned
  std::string first_sqlstate;              // of the last failed group
  bool retrying = false;                   // sending a group again (st_message_retry)
  // The writer's copy of each producer's window (to prune its rows to exactly the seqs
  // kept) in recency order, least recently stored to first, as the index keeps it.
  struct producer_rows {
    seq_window window;
    std::size_t pushes = 0;  // since the last prune
    std::list<std::string>::iterator recency;
  };
  std::unordered_map<std::string, producer_rows> windows;
  std::list<std::string> recency;
  // Producers whose rows the current group deletes (evicted past max_producers, or found
  // beyond it at load): sent again first when the group is retried, because the retry
  // sees the writer's state after the first attempt and would not evict them again.
  std::vector<std::string> forgotten;
  std::vector<std::string> stale_at_load;

  explicit impl(options o) : opts(std::move(o)), idx(opts.producer_window, opts.max_producers) {}

  void post(std::function<void()> f) {
    if (opts.post) opts.post(std::move(f));
    else f();
  }

  // ---- 1. owner thread ------------------------------------------------------------------

  class observer final : public apply_observer {
   public:
    observer(impl& s, std::uint64_t append_no) : s_(s), no_(append_no) {}
    void remove_missed(std::string_view target, std::uint64_t msg_seq, std::uint32_t item) override {
      s_.late.remove_missed(no_, target, msg_seq, item);
    }
    void target_dropped(std::string_view target) override { s_.late.target_dropped(no_, target); }
    void send_appended(std::string_view, std::uint64_t) override {}
    bool keep_target(std::uint64_t msg_seq, std::uint32_t item, std::string_view target) override {
      return s_.late.keep_target(no_, msg_seq, item, target);
    }

   private:
    impl& s_;
    std::uint64_t no_;
  };

  void reject(completion done, std::error_code ec) {
    if (done) post([done = std::move(done), ec] { done(ec, 0); });
  }

  void append(change c, completion done) {
    if (closed) return reject(std::move(done), errc::closed);
    {
      std::lock_guard lk(mu);
      if (failed_ec) return reject(std::move(done), errc::journal_failed);
    }
    auto p = std::make_unique<pending>();
    record r = to_record(c);
    p->type = type_of(r);
    if (auto ec = encode_payload(r, p->payload)) return reject(std::move(done), ec);
    p->c = std::move(c);
    p->done = std::move(done);
    p->append_no = ++append_counter;
    observer obs(*this, p->append_no);
    if (auto ec = apply_record(idx, p->type, p->payload, {}, apply_stage::appended, &obs)) return reject(std::move(p->done), ec);
    cache_adds(p->c);
    stats.appends.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard lk(mu);
      queue.push_back(std::move(p));
    }
    cv.notify_one();
  }

  // A transaction with nothing but the fence when no change goes with it: the epoch check
  // is what a barrier needs, and one commit answers every barrier queued with it.
  void barrier(completion done) {
    if (closed) return reject(std::move(done), errc::closed);
    {
      std::lock_guard lk(mu);
      if (failed_ec) return reject(std::move(done), errc::journal_failed);
    }
    auto p = std::make_unique<pending>();
    p->barrier = true;
    p->done = std::move(done);
    {
      std::lock_guard lk(mu);
      queue.push_back(std::move(p));
    }
    cv.notify_one();
  }

  void complete(std::vector<std::unique_ptr<pending>>& group, std::error_code ec) {
    for (auto& p : group) {
      if (p->barrier) {
        if (p->done) p->done(ec, 0);
        continue;
      }
      if (!ec) {
        observer obs(*this, p->append_no);
        const location where{0, 0, static_cast<std::uint32_t>(p->payload.size())};
        (void)apply_record(idx, p->type, p->payload, where, apply_stage::durable, late.empty() ? nullptr : &obs);
      }
      late.forget_completed(p->append_no);
      if (p->done) p->done(ec, ec ? 0 : p->append_no);
    }
  }

  // ---- 2. writer thread -----------------------------------------------------------------

  void writer_loop() {
    for (;;) {
      std::vector<std::unique_ptr<pending>> group;
      std::error_code already_failed;
      {
        std::unique_lock lk(mu);
        cv.wait(lk, [this] { return stopping || !queue.empty(); });
        if (queue.empty()) return;
        while (!queue.empty() && group.size() < opts.max_group) {
          group.push_back(std::move(queue.front()));
          queue.pop_front();
        }
        if (failed_ec) already_failed = errc::journal_failed;
      }
      std::error_code ec = already_failed;
      if (!ec) {
        std::string detail;
        const auto t0 = std::chrono::steady_clock::now();
        ec = commit(group, detail);
        if (ec && ec != errc::fenced && opts.reconnect_for.count() > 0 && outcome_unknown(conn->get(), first_sqlstate))
          ec = reconnect_and_retry(group, detail);
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
        stats.commits.fetch_add(1, std::memory_order_relaxed);
        stats.commit_nanoseconds.fetch_add(static_cast<std::uint64_t>(ns.count()), std::memory_order_relaxed);
        if (!ec)
          stats.committed_changes.fetch_add(
              static_cast<std::uint64_t>(std::count_if(group.begin(), group.end(), [](const auto& p) { return !p->barrier; })),
              std::memory_order_relaxed);
        if (ec) {
          {
            std::lock_guard lk(mu);
            failed_ec = ec;
          }
          if (opts.on_failed) opts.on_failed(detail);
        }
      }
      auto shared = std::make_shared<std::vector<std::unique_ptr<pending>>>(std::move(group));
      post([self = shared_from_this(), shared, ec] { self->complete(*shared, ec); });
    }
  }

  struct pipeline {
    PGconn* c;
    int sent = 0;
    bool ok = true;
    void send(const statement& s, const std::vector<param>& params) {
      if (!ok) return;
      const char* values[8];
      int lengths[8], formats[8];
      for (std::size_t i = 0; i < params.size(); ++i) {
        values[i] = params[i].null ? nullptr : params[i].value.data();
        lengths[i] = static_cast<int>(params[i].value.size());
        formats[i] = params[i].binary ? 1 : 0;
      }
      ok = PQsendQueryPrepared(c, s.name, static_cast<int>(params.size()), values, lengths, formats, 0) == 1;
      if (ok) ++sent;
    }
  };

  void send_add(pipeline& pl, const message_add& m, std::span<const std::byte> record_bytes, std::uint32_t size) {
    pl.send(retrying ? st_message_retry : st_message, {param::number(static_cast<long long>(m.msg_seq)), param::bytes(to_string_bytes(record_bytes))});
    for (const auto& t : m.targets)
      pl.send(st_entry, {param::text(t), param::number(static_cast<long long>(m.msg_seq)), param::number(m.expires_ms),
                         param::number(m.priority), param::number(size)});
    if (m.producer_id.empty() || opts.producer_window == 0) return;
    pl.send(st_producer, {param::text(m.producer_id), param::number(static_cast<long long>(m.producer_seq))});
    remember_producer(pl, m.producer_id, m.producer_seq);
  }

  producer_rows& touch_producer(const std::string& id) {
    auto [it, added] = windows.try_emplace(id);
    if (!added) recency.erase(it->second.recency);
    it->second.recency = recency.insert(recency.end(), id);
    return it->second;
  }

  void remember_producer(pipeline& pl, const std::string& id, std::uint64_t seq) {
    auto& rows = touch_producer(id);
    rows.window.push(seq, opts.producer_window);
    // Prune the producer's rows to its window now and then (exactly the seqs kept, so a
    // window with seqs out of order stays right).
    if (++rows.pushes >= 256 && rows.window.size() >= opts.producer_window) {
      rows.pushes = 0;
      std::string arr = "{";
      for (auto s : rows.window.seqs()) arr += fmt::format("{}{}", arr.size() > 1 ? "," : "", s);
      arr += "}";
      pl.send(st_prune, {param::text(id), param::text(std::move(arr))});
    }
    // The index drops the same producer when it applies this change (index::touch).
    while (opts.max_producers != 0 && windows.size() > opts.max_producers) {
      std::string oldest = std::move(recency.front());
      recency.pop_front();
      windows.erase(oldest);
      pl.send(st_forget_producer, {param::text(oldest)});
      forgotten.push_back(std::move(oldest));
    }
  }

  void send_remove(pipeline& pl, const message_remove& r) {
    pl.send(st_remove, {param::text(r.target), param::number(static_cast<long long>(r.msg_seq))});
  }

  void send_change(pipeline& pl, const pending& p, std::uint64_t& max_seq) {
    if (p.barrier) return;
    const auto size = static_cast<std::uint32_t>(p.payload.size());
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, message_add>) {
            max_seq = std::max(max_seq, v.msg_seq);
            send_add(pl, v, p.payload, size);
          } else if constexpr (std::is_same_v<T, message_remove>) {
            send_remove(pl, v);
          } else if constexpr (std::is_same_v<T, batch>) {
            for (const auto& item : v.items) {
              if (const auto* m = std::get_if<message_add>(&item)) {
                max_seq = std::max(max_seq, m->msg_seq);
                std::vector<std::byte> one;
                (void)encode_payload(record{*m}, one);
                send_add(pl, *m, one, size);
              } else {
                send_remove(pl, std::get<message_remove>(item));
              }
            }
          } else if constexpr (std::is_same_v<T, destination_create>) {
            pl.send(st_destination, {param::text(v.name)});
          } else if constexpr (std::is_same_v<T, destination_delete>) {
            pl.send(st_destination_delete, {param::text(v.name)});
            pl.send(st_drop_target, {param::text(v.name)});
          } else if constexpr (std::is_same_v<T, durable_subscription_create>) {
            pl.send(st_subscription, {param::text(subscription_target(v.client_id, v.subscription_name)),
                                      param::text(v.client_id), param::text(v.subscription_name), param::text(v.topic),
                                      param::text(v.selector), param::text(v.owner_login)});
          } else if constexpr (std::is_same_v<T, durable_subscription_remove>) {
            const auto key = subscription_target(v.client_id, v.subscription_name);
            pl.send(st_subscription_delete, {param::text(key)});
            pl.send(st_drop_target, {param::text(key)});
          }
        },
        p.c);
  }

  // One transaction for the group: fence, every change, Sync (the implicit transaction of
  // a pipeline commits at the Sync, or rolls back whole when any statement failed).
  std::error_code commit(const std::vector<std::unique_ptr<pending>>& group, std::string& detail) {
    PGconn* c = conn->get();
    if (PQenterPipelineMode(c) != 1) {
      detail = fmt::format("cannot enter pipeline mode: {}", PQerrorMessage(c));
      return std::make_error_code(std::errc::io_error);
    }
    pipeline pl{c};
    std::uint64_t max_seq = 0;
    for (const auto& p : group) {
      if (const auto* m = std::get_if<message_add>(&p->c)) max_seq = std::max(max_seq, m->msg_seq);
      if (const auto* b = std::get_if<batch>(&p->c))
        for (const auto& item : b->items)
          if (const auto* m = std::get_if<message_add>(&item)) max_seq = std::max(max_seq, m->msg_seq);
    }
    first_sqlstate.clear();
    pl.send(st_fence, {param::number(static_cast<long long>(opts.epoch)), param::number(static_cast<long long>(max_seq + 1))});
    if (!retrying) {
      forgotten = std::move(stale_at_load);
      stale_at_load.clear();
    }
    for (const auto& id : forgotten) pl.send(st_forget_producer, {param::text(id)});
    for (const auto& p : group) send_change(pl, *p, max_seq);
    const bool synced = pl.ok && PQpipelineSync(c) == 1;
    std::error_code ec;
    if (!pl.ok || !synced) {
      detail = fmt::format("cannot send the transaction to {}: {}", conn->server(), PQerrorMessage(c));
      ec = std::make_error_code(std::errc::io_error);
    }
    // Read every statement's results (each ends with a null), then the Sync's.
    for (int i = 0; i < pl.sent && !ec; ++i) {
      while (PGresult* res = PQgetResult(c)) {
        auto r = to_query_result(c, res);
        if (!r.ok() && !ec) {
          detail = r.error;
          first_sqlstate = r.sqlstate;
          ec = r.sqlstate == fenced_sqlstate ? make_error_code(errc::fenced) : std::make_error_code(std::errc::io_error);
          if (r.sqlstate.empty()) detail = fmt::format("connection to {} lost, commit outcome unknown: {}", conn->server(), r.error);
        }
        if (PQstatus(c) == CONNECTION_BAD) break;
      }
      if (PQstatus(c) == CONNECTION_BAD && !ec) {
        detail = fmt::format("connection to {} lost, commit outcome unknown: {}", conn->server(), PQerrorMessage(c));
        ec = std::make_error_code(std::errc::io_error);
      }
    }
    if (PQstatus(c) != CONNECTION_BAD && (synced)) {
      // Drain to the Sync result whatever happened before (aborted statements answer too).
      for (int guard = 0; guard < pl.sent * 2 + 4; ++guard) {
        PGresult* res = PQgetResult(c);
        if (!res) continue;
        const bool sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
        auto r = to_query_result(c, res);
        if (!r.ok() && !ec) {
          detail = r.error;
          first_sqlstate = r.sqlstate;
          ec = r.sqlstate == fenced_sqlstate ? make_error_code(errc::fenced) : std::make_error_code(std::errc::io_error);
        }
        if (sync || PQstatus(c) == CONNECTION_BAD) break;
      }
    }
    PQexitPipelineMode(c);
    if (!ec) committed_floor = std::max(committed_floor, max_seq + 1);
    return ec;
  }

  // The writer's connection broke with `group` in flight: reconnect and send the group
  // again, safely whether or not its first COMMIT happened (store.h, "Reconnection").
  // Returns {} once the group committed on a new connection; errc::fenced when another
  // epoch holds the store; errc::closed when the store is closing; io_error (detail says
  // why) when no read-write server answered in time or the server lacks our commits.
  std::error_code reconnect_and_retry(const std::vector<std::unique_ptr<pending>>& group, std::string& detail) {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const auto deadline = t0 + opts.reconnect_for;
    const std::string old_server = conn->server(), old_pid = backend_pid, old_start = backend_start;
    if (opts.on_reconnect)
      opts.on_reconnect(false, fmt::format("the writer's connection to {} broke with {} changes in flight, their COMMIT's "
                                           "outcome unknown: {}",
                                           old_server, group.size(), detail));
    std::string why = detail;
    for (int attempt = 0;; ++attempt) {
      if (attempt > 0 && !pause(std::chrono::milliseconds(100))) return errc::closed;
      if (clock::now() >= deadline) {
        detail = fmt::format("no read-write database server took the writer's transaction within {} ms after its connection "
                             "to {} broke; last error: {}",
                             opts.reconnect_for.count(), old_server, why);
        return std::make_error_code(std::errc::io_error);
      }
      conn.reset();
      if (connect_writer(why) || prepare(why)) continue;
      // A cut connection leaves the old backend alive, its transaction maybe open: end it
      // now (only that very backend: same pid and start time) rather than after
      // idle_in_transaction_session_timeout. The retry's fence waits for its row lock anyway.
      if (!old_pid.empty())
        (void)conn->exec("select pg_terminate_backend(pid, 2000) from pg_stat_activity where pid = $1::int and "
                         "backend_start::text = $2",
                         {param::text(old_pid), param::text(old_start)});
      auto lease = conn->exec("select epoch, next_msg_seq from tandem_lease where id = 1");
      if (!lease.ok() || lease.rows() != 1) {
        why = lease.ok() ? "no lease row" : lease.error;
        continue;
      }
      if (static_cast<std::uint64_t>(lease.integer(0, 0)) != opts.epoch) {
        detail = fmt::format("after reconnecting to {}: the store's epoch is {}, ours is {}: a newer master exists",
                             conn->server(), lease.integer(0, 0), opts.epoch);
        return make_error_code(errc::fenced);
      }
      if (static_cast<std::uint64_t>(lease.integer(0, 1)) < committed_floor) {
        detail = fmt::format("after reconnecting to {}: the server lacks transactions this broker committed (its next_msg_seq "
                             "is {}, ours {}): was it an asynchronous standby? Restart the broker so it loads what the "
                             "database holds",
                             conn->server(), lease.integer(0, 1), committed_floor);
        return std::make_error_code(std::errc::io_error);
      }
      retrying = true;
      auto ec = commit(group, why);
      retrying = false;
      if (!ec) {
        stats.reconnects.fetch_add(1, std::memory_order_relaxed);
        if (opts.on_reconnect)
          opts.on_reconnect(true, fmt::format("the writer reconnected to {} and committed its {} changes in {} ms",
                                              conn->server(), group.size(),
                                              std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0).count()));
        return {};
      }
      if (ec == errc::fenced || !outcome_unknown(conn->get(), first_sqlstate)) {
        detail = why;
        return ec;
      }
    }
  }

  // Sleeps up to `d`; false when the store is closing.
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock lk(mu);
    return !cv.wait_for(lk, d, [this] { return stopping; });
  }

  // Opens the writer's connection and notes its backend (pid, start time) so that a broken
  // connection's backend can be found and ended later.
  std::error_code connect_writer(std::string& detail) {
    connect_settings s;
    s.io_timeout = opts.io_timeout;
    s.application_name = "tandemd-writer";
    conn = connection::open(opts.conninfo, s, detail);
    if (!conn) return std::make_error_code(std::errc::io_error);
    auto r = conn->exec("select pid::text, backend_start::text from pg_stat_activity where pid = pg_backend_pid()");
    if (!r.ok() || r.rows() != 1) {
      detail = r.ok() ? "cannot see the writer's own backend in pg_stat_activity" : r.error;
      conn.reset();
      return std::make_error_code(std::errc::io_error);
    }
    backend_pid = std::string(r.text(0, 0));
    backend_start = std::string(r.text(0, 1));
    return {};
  }

  // ---- 3. reads ---------------------------------------------------------------------------

  void cache_put(std::shared_ptr<const message> m) {
    if (opts.body_cache_bytes == 0) return;
    const std::size_t bytes = m->body.size() + 64;
    const auto seq = m->msg_seq;
    if (!cache.emplace(seq, std::move(m)).second) return;
    cache_order.emplace_back(seq, bytes);
    cache_bytes += bytes;
    while (cache_bytes > opts.body_cache_bytes && !cache_order.empty()) {
      cache.erase(cache_order.front().first);
      cache_bytes -= cache_order.front().second;
      cache_order.pop_front();
    }
  }

  void cache_adds(const change& c) {
    auto put = [this](const message_add& a) { cache_put(std::make_shared<const message>(static_cast<const message&>(a))); };
    if (const auto* m = std::get_if<message_add>(&c)) put(*m);
    if (const auto* b = std::get_if<batch>(&c))
      for (const auto& item : b->items)
        if (const auto* m = std::get_if<message_add>(&item)) put(*m);
  }

  // The rows of `target` from msg_seq on (up to read_ahead), decoded. Runs on the thread
  // that owns `c`: the owner thread for read(), the reader thread for read_async(). A
  // connection that broke since its last query (a database failover, a db-cut drill) is
  // noticed only by this query: then it connects again (to the new primary) and asks once
  // more. Touches nothing of the store's but `c` and opts.
  fetched_rows fetch(std::optional<connection>& c, const char* application_name, const std::string& target,
                     std::uint64_t msg_seq) const {
    fetched_rows out;
    const std::string from = std::to_string(msg_seq);
    const std::string limit = std::to_string(std::max<std::size_t>(1, opts.read_ahead));
    const char* values[] = {target.c_str(), from.c_str(), limit.c_str()};
    query_result r;
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!c || !c->healthy()) {
        std::string error;
        connect_settings s;
        s.io_timeout = opts.io_timeout;
        s.application_name = application_name;
        c = connection::open(opts.conninfo, s, error);
        if (!c) {
          out.ec = std::make_error_code(std::errc::io_error);
          return out;
        }
      }
      PGresult* res = PQexecParams(c->get(),
                                   "select m.msg_seq, m.record from tandem_entry e join tandem_message m on m.msg_seq = e.msg_seq "
                                   "where e.target = $1 and e.msg_seq >= $2 order by e.msg_seq limit $3",
                                   3, nullptr, values, nullptr, nullptr, 1);
      r = to_query_result(c->get(), res);
      if (r.ok() || c->healthy()) break;
    }
    if (!r.ok()) {
      out.ec = std::make_error_code(std::errc::io_error);
      return out;
    }
    out.rows.reserve(static_cast<std::size_t>(r.rows()));
    for (int row = 0; row < r.rows(); ++row) {
      const auto seq = read_be64(PQgetvalue(r.res.get(), row, 0));
      const auto rec = r.text(row, 1);
      auto decoded = decode_payload(record_type::message_add,
                                    std::span<const std::byte>(reinterpret_cast<const std::byte*>(rec.data()), rec.size()));
      if (!decoded) {
        out.rows.emplace_back(seq, nullptr);  // a damaged row: corrupt_file for whoever asks for it
        continue;
      }
      out.rows.emplace_back(seq, std::make_shared<const message>(
                                     static_cast<message&&>(std::get<message_add>(std::move(decoded).value()))));
    }
    return out;
  }

  // Owner thread: files what a fetch read in the body cache and answers msg_seq from it.
  result<std::shared_ptr<const message>> file_rows(const fetched_rows& f, std::uint64_t msg_seq) {
    if (f.ec) return f.ec;
    std::shared_ptr<const message> wanted;
    for (const auto& [seq, m] : f.rows) {
      if (seq == msg_seq) {
        if (!m) return make_error_code(errc::corrupt_file);
        wanted = m;
      }
      if (m && !cache.contains(seq)) cache_put(m);
    }
    if (!wanted) return make_error_code(errc::not_found);
    return wanted;
  }

  std::shared_ptr<const message> cached(std::uint64_t msg_seq) const {
    auto it = cache.find(msg_seq);
    return it == cache.end() ? nullptr : it->second;
  }

  // Blocks the owner thread on a cache miss (message_store::read): the tools and the
  // schedule recovery before the client port opens. The broker's consumers use read_async.
  result<std::shared_ptr<const message>> read(std::string_view target, std::uint64_t msg_seq) {
    const auto* entries = idx.messages(target);
    if (!entries || !entries->contains(msg_seq)) return make_error_code(errc::not_found);
    if (auto m = cached(msg_seq)) return m;
    return file_rows(fetch(owner_reader, "tandemd-reader-inline", std::string(target), msg_seq), msg_seq);
  }

  // Owner thread. The query runs on the reader thread; its rows come back to the owner
  // thread, which files them in the cache and answers every read waiting for one of them.
  void read_async(std::string_view target, std::uint64_t msg_seq, read_completion done) {
    auto answer_now = [&](result<std::shared_ptr<const message>> r) {
      post([done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    };
    if (closed) return answer_now(make_error_code(errc::closed));
    if (!opts.post) {  // no owner executor to come back to (a tool): read inline
      done(read(target, msg_seq));
      return;
    }
    const auto* entries = idx.messages(target);
    auto it = entries ? entries->find(msg_seq) : live_index::message_map::const_iterator{};
    if (!entries || it == entries->end()) return answer_now(make_error_code(errc::not_found));
    if (auto m = cached(msg_seq)) return answer_now(std::move(m));
    if (auto w = reads_in_flight.find(msg_seq); w != reads_in_flight.end()) {
      w->second.emplace_back(std::string(target), std::move(done));  // that query answers it
      return;
    }
    read_job job;
    job.target = std::string(target);
    job.msg_seq = msg_seq;
    // The live messages the query will read ahead (what it returns is up to the database:
    // a message removed meanwhile is skipped, so it may read further): reads of these wait
    // for it rather than asking again.
    const std::size_t ahead = std::max<std::size_t>(1, opts.read_ahead);
    for (auto n = it; n != entries->end() && job.waiting_for.size() < ahead; ++n) {
      if (n != it && (cache.contains(n->first) || reads_in_flight.contains(n->first))) continue;
      job.waiting_for.push_back(n->first);
      reads_in_flight.try_emplace(n->first);
    }
    reads_in_flight[msg_seq].emplace_back(job.target, std::move(done));
    {
      std::lock_guard lk(read_mu);
      if (!read_stopping) {
        read_jobs.push_back(std::move(job));
        read_cv.notify_one();
        return;
      }
    }
    read_done(job, fetched_rows{make_error_code(errc::closed), {}});
  }

  // Owner thread: a job's rows (or its error) are in.
  void read_done(const read_job& job, const fetched_rows& f) {
    std::vector<std::tuple<std::uint64_t, std::string, read_completion>> waiters;
    for (auto seq : job.waiting_for) {
      auto w = reads_in_flight.find(seq);
      if (w == reads_in_flight.end()) continue;
      for (auto& [t, d] : w->second) waiters.emplace_back(seq, std::move(t), std::move(d));
      reads_in_flight.erase(w);
    }
    (void)file_rows(f, job.msg_seq);
    for (auto& [seq, t, d] : waiters) {
      if (f.ec) {
        d(f.ec);
        continue;
      }
      auto row = std::find_if(f.rows.begin(), f.rows.end(), [seq = seq](const auto& r) { return r.first == seq; });
      if (row != f.rows.end()) {
        if (row->second) d(row->second);
        else d(make_error_code(errc::corrupt_file));
      } else if (seq == job.msg_seq) {
        d(make_error_code(errc::not_found));
      } else {
        read_async(t, seq, std::move(d));  // beyond what the query read: a query of its own
      }
    }
  }

  void reader_loop() {
    for (;;) {
      read_job job;
      {
        std::unique_lock lk(read_mu);
        read_cv.wait(lk, [this] { return read_stopping || !read_jobs.empty(); });
        if (read_stopping) break;
        job = std::move(read_jobs.front());
        read_jobs.pop_front();
      }
      auto f = std::make_shared<fetched_rows>(fetch(async_reader, "tandemd-reader", job.target, job.msg_seq));
      post([self = shared_from_this(), job = std::make_shared<read_job>(std::move(job)), f] { self->read_done(*job, *f); });
    }
    async_reader.reset();
    // Closed: what is still queued fails without being read.
    std::deque<read_job> left;
    {
      std::lock_guard lk(read_mu);
      left.swap(read_jobs);
    }
    for (auto& job : left)
      post([self = shared_from_this(), job = std::make_shared<read_job>(std::move(job))] {
        self->read_done(*job, fetched_rows{make_error_code(errc::closed), {}});
      });
  }

  // ---- 4. open ------------------------------------------------------------------------------

  // Streams a query's rows one by one (libpq single-row mode): a million entries never sit
  // in one PGresult.
  // Binary: values as the server stores them (a bigint as 8 bytes big-endian, a bytea raw).
  bool stream(const char* sql, const std::function<void(const query_result&)>& row, std::string& detail,
              bool binary = false) {
    PGconn* c = conn->get();
    if (PQsendQueryParams(c, sql, 0, nullptr, nullptr, nullptr, nullptr, binary ? 1 : 0) != 1 ||
        PQsetSingleRowMode(c) != 1) {
      detail = PQerrorMessage(c);
      return false;
    }
    bool ok = true;
    while (PGresult* res = PQgetResult(c)) {
      auto r = to_query_result(c, res);
      if (!r.ok()) {
        if (ok) detail = r.error;
        ok = false;
        continue;
      }
      if (PQresultStatus(r.res.get()) == PGRES_SINGLE_TUPLE) row(r);
    }
    return ok;
  }

  // The pending schedules' due times and job ids (live_index::schedules()), decoded here from
  // one streamed query. Without them the engine read each schedule entry back at a takeover,
  // one SELECT per entry on the io thread before serving (issue 17, finding 8). An entry
  // whose record does not decode is left out: the engine then reads it and logs the error.
  bool load_schedules(std::string& detail) {
    static_assert(format::scheduler_target == "scheduler\n", "the query below names it");
    schedule_list schedules;
    const bool ok = stream("select m.msg_seq, m.record from tandem_entry e join tandem_message m on m.msg_seq = e.msg_seq "
                           "where e.target = 'scheduler' || chr(10) order by e.msg_seq",
                           [&](const query_result& r) {
                             const auto seq = read_be64(PQgetvalue(r.res.get(), 0, 0));
                             const auto rec = r.text(0, 1);
                             auto decoded = decode_payload(
                                 record_type::message_add,
                                 std::span<const std::byte>(reinterpret_cast<const std::byte*>(rec.data()), rec.size()));
                             if (!decoded) return;
                             const auto& m = std::get<message_add>(decoded.value());
                             schedules.insert_or_assign(seq, m.deliver_at_ms, m.message_id);
                           },
                           detail, true);
    if (ok) idx.load_schedules(std::move(schedules));
    return ok;
  }

  std::error_code load(open_report& report) {
    // The connection's statement_timeout is one lease (connection.h), far too short for
    // streaming a backlog of millions of entries: lifted for the load, restored after.
    if (auto r = conn->exec("set statement_timeout = 0"); !r.ok()) {
      report.detail = r.error;
      return std::make_error_code(std::errc::io_error);
    }
    std::string current_target;
    live_index::message_map entries;
    auto flush = [&] {
      if (!current_target.empty()) idx.load_target(std::move(current_target), std::move(entries));
      current_target.clear();
      entries.clear();
    };
    bool ok = stream("select target, msg_seq, expires_ms, priority, size from tandem_entry order by target, msg_seq",
                     [&](const query_result& r) {
                       if (r.text(0, 0) != current_target) {
                         flush();
                         current_target = std::string(r.text(0, 0));
                       }
                       message_ref ref;
                       ref.where = location{0, 0, static_cast<std::uint32_t>(r.integer(0, 4))};
                       ref.expires_ms = r.integer(0, 2);
                       ref.priority = static_cast<std::uint8_t>(r.integer(0, 3));
                       entries.emplace_hint(entries.end(), static_cast<std::uint64_t>(r.integer(0, 1)), ref);
                     },
                     report.detail);
    flush();
    ok = ok && load_schedules(report.detail);
    ok = ok && stream("select name from tandem_destination", [&](const query_result& r) { idx.create_destination(r.text(0, 0)); },
                      report.detail);
    ok = ok && stream("select client_id, subscription_name, topic, selector, owner_login from tandem_subscription",
                      [&](const query_result& r) {
                        durable_subscription s{std::string(r.text(0, 0)), std::string(r.text(0, 1)), std::string(r.text(0, 2)),
                                               std::string(r.text(0, 3)), std::string(r.text(0, 4))};
                        idx.create_subscription(s);
                      },
                      report.detail);
    // In arrival order, so the index's recency (and its eviction past max_producers) is
    // the one the stores' writes made.
    std::unordered_map<std::string, bool> loaded_producers;
    ok = ok && stream("select producer_id, producer_seq from tandem_producer order by pos",
                      [&](const query_result& r) {
                        idx.record_producer(r.text(0, 0), static_cast<std::uint64_t>(r.integer(0, 1)));
                        loaded_producers.try_emplace(std::string(r.text(0, 0)), true);
                      },
                      report.detail);
    if (!ok) return std::make_error_code(std::errc::io_error);
    auto next = conn->exec(
        "select greatest((select next_msg_seq from tandem_lease where id = 1), "
        "(select coalesce(max(msg_seq), 0) + 1 from tandem_message))");
    if (!next.ok()) {
      report.detail = next.error;
      return std::make_error_code(std::errc::io_error);
    }
    idx.set_next_msg_seq(std::max<std::uint64_t>(idx.next_msg_seq(), static_cast<std::uint64_t>(next.integer(0, 0))));
    if (auto r = conn->exec("reset statement_timeout"); !r.ok()) {
      report.detail = r.error;
      return std::make_error_code(std::errc::io_error);
    }
    for (const auto* p : idx.producers_by_recency()) touch_producer(p->first).window = p->second;
    // Windows the index dropped at load (a smaller max_producers, or rows a failed group left)
    // are deleted by the first group, under its fence.
    for (const auto& [producer, _] : loaded_producers)
      if (!windows.contains(producer)) stale_at_load.push_back(producer);
    report.live_messages = idx.live_messages();
    report.live_bytes = idx.live_bytes();
    report.destinations = idx.destinations().size();
    report.subscriptions = idx.durable_subscriptions().size();
    return {};
  }

  std::error_code prepare(std::string& detail) {
    for (const auto& s : all_statements) {
      auto r = to_query_result(conn->get(), PQprepare(conn->get(), s.name, s.sql, 0, nullptr));
      if (!r.ok()) {
        detail = fmt::format("cannot prepare {}: {}", s.name, r.error);
        return std::make_error_code(std::errc::io_error);
      }
    }
    return {};
  }
};

// ---- the public face ------------------------------------------------------------------------

result<std::unique_ptr<store>> store::open(options opts, open_report& report) {
  const auto t0 = std::chrono::steady_clock::now();
  auto p = std::make_shared<impl>(std::move(opts));
  if (auto ec = p->connect_writer(report.detail)) return ec;
  report.server = p->conn->server();
  store_meta meta;
  if (auto ec = read_meta(*p->conn, meta, report.detail)) return ec;
  if (auto ec = upgrade_schema(*p->conn, meta, report.detail)) return ec;  // the broker did it already at start
  p->id = meta.id;
  auto lease = p->conn->exec("select epoch from tandem_lease where id = 1");
  if (!lease.ok() || lease.rows() != 1) {
    report.detail = lease.ok() ? "no lease row" : lease.error;
    return std::make_error_code(std::errc::io_error);
  }
  if (static_cast<std::uint64_t>(lease.integer(0, 0)) != p->opts.epoch) {
    report.detail = fmt::format("the store's epoch is {}, ours is {}", lease.integer(0, 0), p->opts.epoch);
    return make_error_code(errc::fenced);
  }
  if (auto ec = p->load(report)) return ec;
  if (auto ec = p->prepare(report.detail)) return ec;
  report.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  p->writer = std::thread([raw = p.get()] { raw->writer_loop(); });
  if (p->opts.post) p->read_thread = std::thread([raw = p.get()] { raw->reader_loop(); });
  return std::unique_ptr<store>(new store(std::move(p)));
}

store::store(std::shared_ptr<impl> p) : impl_(std::move(p)) {}
store::~store() { close(); }

void store::append(change c, completion done) { impl_->append(std::move(c), std::move(done)); }
const journal::index& store::index() const { return impl_->idx; }
result<std::shared_ptr<const message>> store::read(std::string_view target, std::uint64_t msg_seq) {
  return impl_->read(target, msg_seq);
}
std::shared_ptr<const message> store::cached(std::string_view, std::uint64_t msg_seq) { return impl_->cached(msg_seq); }
bool store::reads_into_cache() const { return static_cast<bool>(impl_->opts.post) && impl_->opts.body_cache_bytes > 0; }
void store::read_async(std::string_view target, std::uint64_t msg_seq, read_completion done) {
  impl_->read_async(target, msg_seq, std::move(done));
}
std::uint64_t store::allocate_msg_seq() {
  const auto seq = impl_->idx.next_msg_seq();
  impl_->idx.note_msg_seq(seq);
  return seq;
}
void store::fence_barrier(completion done) { impl_->barrier(std::move(done)); }
void store::checkpoint(completion done) {
  if (done) impl_->post([done = std::move(done)] { done({}, 0); });
}
bool store::compact_step(std::uint64_t) { return false; }
const store_id& store::id() const { return impl_->id; }
std::error_code store::failed() const {
  std::lock_guard lk(impl_->mu);
  return impl_->failed_ec;
}
const pg_stats& store::stats() const { return impl_->stats; }

std::error_code store::close() {
  if (impl_->closed) return failed();
  impl_->closed = true;
  {
    std::lock_guard lk(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  {
    std::lock_guard lk(impl_->read_mu);
    impl_->read_stopping = true;
  }
  impl_->read_cv.notify_all();
  // A query under way ends first (within io_timeout: the connection's statement_timeout).
  if (impl_->read_thread.joinable()) impl_->read_thread.join();
  if (impl_->writer.joinable()) impl_->writer.join();
  return failed();
}

}  // namespace tandem::journal::pg
