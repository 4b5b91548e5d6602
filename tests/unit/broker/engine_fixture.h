// Test fixture for the engine, shared by every engine test: a real journal store in a temp
// dir whose completions are posted to a loop this (the test) thread runs, as the io_context
// does in tandemd, and fake session sinks that decode what the engine sends. No sockets.
// The temp dir and the loop are tests/support's (temp_dir.h, owner_queue.h).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/owner_queue.h"
#include "tests/support/temp_dir.h"
#include "broker/engine.h"
#include "broker/stomp/encoder.h"
#include "broker/stomp/parser.h"
#include "journal/fs/file_system.h"
#include "journal/identity.h"
#include "journal/store.h"

namespace tandem::broker::test {

using headers = std::vector<std::pair<std::string, std::string>>;

inline std::vector<std::string> strings(std::initializer_list<const char*> l) { return {l.begin(), l.end()}; }

class fake_sink : public session_sink {
 public:
  void send(std::string encoded) override {
    std::span<const char> in(encoded.data(), encoded.size());
    while (!in.empty()) {
      auto [used, status] = parser_.feed(in);
      in = in.subspan(used);
      REQUIRE(status != stomp::parse_status::error);
      if (status == stomp::parse_status::frame_ready) frames.push_back(parser_.take_frame());
    }
    raw_bytes += encoded.size();
  }
  void close_after_flush() override { closed = true; }
  void pause_reading() override { paused = true; }
  void resume_reading() override { paused = false; }
  std::size_t queued_bytes() const override { return backlog; }
  void set_heartbeat(std::chrono::milliseconds send_every, std::chrono::milliseconds expect_every) override {
    hb_send = send_every;
    hb_expect = expect_every;
  }
  void set_version(std::string_view v) override {
    version = std::string(v);
    if (auto parsed = stomp::version_from_name(v)) parser_.set_version(*parsed);
  }

  std::vector<stomp::frame> frames;
  std::size_t raw_bytes = 0;
  bool closed = false, paused = false;
  std::size_t backlog = 0;
  std::chrono::milliseconds hb_send{-1}, hb_expect{-1};
  std::string version;

 private:
  stomp::parser parser_{stomp::direction::from_server};
};

inline stomp::frame make_frame(std::string command, const headers& hs = {}, std::string body = {}) {
  stomp::frame f;
  f.command = std::move(command);
  for (const auto& [k, v] : hs) f.add(k, v);
  f.body = std::move(body);
  return f;
}

class fixture;

// Tag: a client that sends CONNECT (1.2) as it is made.
struct connected_t {};
inline constexpr connected_t connected{};

// One client connection: a sink and its session.
class client {
 public:
  client(fixture& fx);
  client(fixture& fx, connected_t) : client(fx) { connect(); }
  ~client();
  client(const client&) = delete;

  void frame(std::string command, const headers& hs = {}, std::string body = {});
  // CONNECT (1.2 unless `extra` says otherwise) and require CONNECTED.
  void connect(const headers& extra = {});
  // Sends with a receipt and waits for it (pumping the journal).
  void send(const std::string& destination, std::string body, headers hs = {});
  void subscribe(const std::string& id, const std::string& destination, const std::string& ack = "auto",
                 headers extra = {});
  // Waits for RECEIPT receipt-id == id; false at the deadline.
  bool wait_receipt(const std::string& id);
  bool has_receipt(const std::string& id) const;
  std::vector<stomp::frame> of(std::string_view command) const;
  std::vector<stomp::frame> messages() const { return of("MESSAGE"); }
  std::vector<std::string> bodies() const;
  // The ack header of the i-th MESSAGE (what ACK / NACK send as `id` in 1.2).
  std::string ack_id(std::size_t i = 0) const;
  // Waits until at least n MESSAGE frames arrived.
  bool wait_messages(std::size_t n);
  const stomp::frame* last_error() const;
  void close();  // the connection goes away (engine::close_session)
  std::string next_receipt() { return "r" + std::to_string(++receipts_); }

  fake_sink sink;
  session_id id = 0;

 private:
  fixture& fx_;
  bool open_ = true;
  int receipts_ = 0;
};

class fixture {
 public:
  explicit fixture(engine_config cfg = default_config(), bool with_store = true)
      : fixture(std::move(cfg), with_store, fs::posix_file_system()) {}
  // The store on `file_system` (a tests/support fault_file_system), which must outlive this.
  fixture(engine_config cfg, bool with_store, fs::file_system& file_system)
      : config(std::move(cfg)), dir(tmp_.path()), file_system_(&file_system) {
    if (with_store) {
      REQUIRE(!file_system_->create_directories(dir));  // a no-op on the real one
      REQUIRE(journal::create_store(*file_system_, dir));
      open_store();
    }
    eng = std::make_unique<engine>(config, store.get());
    eng->set_wall_clock([this] { return now_ms; });
  }
  ~fixture() {
    eng.reset();
    close_store();
  }

  static engine_config default_config() {
    engine_config c;
    c.allow_anonymous = true;
    c.heartbeat_send = std::chrono::milliseconds{5000};
    c.heartbeat_expect = std::chrono::milliseconds{6000};
    return c;
  }

  void open_store() {
    journal::options o;
    o.fs = file_system_;
    o.epoch = ++epoch;
    o.segment_bytes = 1u << 20;
    o.broker_name = "test";
    o.producer_window = config.dedup_window;
    o.body_cache_bytes = body_cache_bytes;
    o.max_producers = config.dedup_max_producers;
    o.post = loop_.poster();
    o.confirm = confirm;
    journal::recovery_report rep;
    auto s = journal::store::open(dir, std::move(o), rep);
    REQUIRE(s);
    store = std::move(s).value();
  }
  void close_store() {
    if (!store) return;
    CHECK(!store->close());
    run_posted();
    store.reset();
    run_posted();
  }
  // Engine and store go away and come back, as after a failover.
  void restart() {
    eng.reset();
    close_store();
    open_store();
    eng = std::make_unique<engine>(config, store.get());
    eng->set_wall_clock([this] { return now_ms; });
    eng->recover();
  }

  // Runs what the journal posted so far (the io thread's turn).
  void run_posted() { loop_.run_until([] { return false; }, std::chrono::milliseconds(0)); }
  // Runs posted work until `done` holds (true) or 10 s pass (false).
  bool pump(const std::function<bool()>& done) {
    run_posted();
    return loop_.run_until(done, std::chrono::seconds(10));
  }
  // engine::scheduled_json's page, once the entries it reads off the io thread are in.
  nlohmann::json scheduled_page(std::size_t offset, std::size_t limit) {
    nlohmann::json page;
    bool done = false;
    eng->scheduled_json(offset, limit, [&](nlohmann::json j) {
      page = std::move(j);
      done = true;
    });
    REQUIRE(pump([&] { return done; }));
    return page;
  }
  // Waits until every append queued so far has completed (a checkpoint is queued behind
  // them) and no body is still being read for dispatch: a read off the io thread
  // (engine/fetch.cpp) ends with a dispatch, which a test that settled expects to have run.
  void settle() {
    if (!store) return;
    bool done = false;
    store->checkpoint([&](std::error_code, std::uint64_t) { done = true; });
    REQUIRE(pump([&] { return done; }));
    REQUIRE(pump([&] { return !eng || eng->store_reads_in_flight() == 0; }));
    run_posted();
  }

  // The admin snapshot of one destination; null when there is none.
  nlohmann::json destination(std::string_view name) const {
    for (const auto& d : eng->destinations_json())
      if (d["name"] == name) return d;
    return {};
  }

 private:
  tandem::test::temp_dir tmp_;  // first: removed after everything below is closed
  tandem::test::owner_queue loop_;

 public:
  engine_config config;
  std::filesystem::path dir;
  std::unique_ptr<journal::store> store;
  std::unique_ptr<engine> eng;
  std::int64_t now_ms = 1'700'000'000'000;
  std::uint64_t epoch = 0;
  // The store's body cache from the next open_store (restart) on: 0 keeps no body in
  // memory, so every body a test needs later is read from its segment again.
  std::size_t body_cache_bytes = 64ull << 20;
  // The journal's mastership confirmation (journal::options::confirm) from the next
  // open_store (restart) on; runs on the writer thread. Unset: none.
  std::function<std::error_code()> confirm;

 private:
  fs::file_system* file_system_;
};

// `c` subscribes as "s" to `destination` with `ack`, then `p` sends one persistent message
// there and `c` has it: the opening of most ack and redelivery tests.
inline void deliver_one(client& p, client& c, const std::string& destination, const std::string& ack,
                        std::string body) {
  c.subscribe("s", destination, ack);
  p.send(destination, std::move(body), {{"persistent", "true"}});
  REQUIRE(c.wait_messages(1));
}

inline client::client(fixture& fx) : fx_(fx) { id = fx.eng->open_session(sink, session_info{"127.0.0.1:1", false}); }
inline client::~client() { close(); }
inline void client::close() {
  if (open_ && fx_.eng) fx_.eng->close_session(id);
  open_ = false;
}
inline void client::frame(std::string command, const headers& hs, std::string body) {
  fx_.eng->on_frame(id, make_frame(std::move(command), hs, std::move(body)));
}
inline void client::connect(const headers& extra) {
  headers hs = extra;
  if (std::none_of(extra.begin(), extra.end(), [](const auto& h) { return h.first == "accept-version"; }))
    hs.emplace_back("accept-version", "1.2");
  hs.emplace_back("host", "localhost");
  frame("CONNECT", hs);
  REQUIRE(!sink.frames.empty());
  REQUIRE(sink.frames.back().command == "CONNECTED");
}
inline void client::send(const std::string& destination, std::string body, headers hs) {
  auto r = next_receipt();
  hs.insert(hs.begin(), {{"destination", destination}, {"receipt", r}});
  frame("SEND", hs, std::move(body));
  REQUIRE(wait_receipt(r));
}
inline void client::subscribe(const std::string& sid, const std::string& destination, const std::string& ack,
                              headers extra) {
  auto r = next_receipt();
  headers hs{{"id", sid}, {"destination", destination}, {"ack", ack}, {"receipt", r}};
  hs.insert(hs.end(), extra.begin(), extra.end());
  frame("SUBSCRIBE", hs);
  REQUIRE(wait_receipt(r));
}
inline bool client::has_receipt(const std::string& rid) const {
  for (const auto& f : sink.frames)
    if (f.command == "RECEIPT" && f.get("receipt-id") == rid) return true;
  return false;
}
inline bool client::wait_receipt(const std::string& rid) {
  return fx_.pump([&] { return has_receipt(rid); });
}
inline std::vector<stomp::frame> client::of(std::string_view command) const {
  std::vector<stomp::frame> out;
  for (const auto& f : sink.frames)
    if (f.command == command) out.push_back(f);
  return out;
}
inline std::vector<std::string> client::bodies() const {
  std::vector<std::string> out;
  for (const auto& f : messages()) out.push_back(f.body);
  return out;
}
inline std::string client::ack_id(std::size_t i) const {
  auto ms = messages();
  REQUIRE(i < ms.size());
  auto ack = ms[i].get("ack");
  REQUIRE(ack);
  return std::string(*ack);
}
inline bool client::wait_messages(std::size_t n) {
  return fx_.pump([&] { return messages().size() >= n; });
}
inline const stomp::frame* client::last_error() const {
  for (auto it = sink.frames.rbegin(); it != sink.frames.rend(); ++it)
    if (it->command == "ERROR") return &*it;
  return nullptr;
}

}  // namespace tandem::broker::test
