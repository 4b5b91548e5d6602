#include "scripted_engine.h"

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "broker/engine.h"
#include "broker/memory_budget.h"
#include "broker/stomp/encoder.h"

namespace tandem::broker {

namespace test {
engine_stats& stats() {
  static engine_stats s;
  return s;
}
}  // namespace test

struct engine::impl {
  struct session {
    session_sink* sink = nullptr;
    bool connected = false;
  };
  std::map<session_id, session> sessions;
  session_id next = 1;
  std::vector<session_id> paused;
  // The connections' buffers only: the scripted engine holds no messages.
  memory_budget budget{1ull << 30, [] { return std::uint64_t{0}; }};
};

namespace {
std::string encode(const stomp::frame& f) {
  std::string out;
  stomp::encode(f, stomp::version::v1_2, out);
  return out;
}
}  // namespace

engine::engine(const engine_config&, journal::message_store*) : impl_(std::make_unique<impl>()) {}
engine::~engine() = default;
memory_budget& engine::memory() { return impl_->budget; }
void engine::recover() {}

session_id engine::open_session(session_sink& sink, const session_info&) {
  auto id = impl_->next++;
  impl_->sessions[id].sink = &sink;
  ++test::stats().opened;
  return id;
}

void engine::on_frame(session_id id, stomp::frame&& f) {
  ++test::stats().frames;
  auto& s = impl_->sessions.at(id);
  stomp::frame out;
  if (f.command == "CONNECT" || f.command == "STOMP") {
    s.connected = true;
    s.sink->set_version("1.2");
    if (auto hb = f.get("heart-beat")) {
      auto comma = hb->find(',');
      auto cx = std::stoll(std::string(hb->substr(0, comma)));
      auto cy = std::stoll(std::string(hb->substr(comma + 1)));
      s.sink->set_heartbeat(std::chrono::milliseconds(cy), std::chrono::milliseconds(cx));
    }
    out.command = "CONNECTED";
    out.add("version", "1.2");
    s.sink->send(encode(out));
    return;
  }
  if (!s.connected) {
    out.command = "ERROR";
    out.add("message", "not connected");
    s.sink->send(encode(out));
    s.sink->close_after_flush();
    return;
  }
  if (f.command == "SEND") {
    if (auto n = f.get("echo")) {
      stomp::frame m;
      m.command = "MESSAGE";
      m.add("destination", "/queue/echo");
      m.body = f.body;
      std::string encoded = encode(m);
      for (int i = 0, count = std::stoi(std::string(*n)); i < count; ++i) s.sink->send(encoded);
    }
    if (f.get("pause")) {
      s.sink->pause_reading();
      impl_->paused.push_back(id);
    }
  }
  if (auto r = f.get("receipt")) {
    out.command = "RECEIPT";
    out.add("receipt-id", std::string(*r));
    s.sink->send(encode(out));
  }
  if (f.command == "DISCONNECT") s.sink->close_after_flush();
}

void engine::on_writable(session_id) { ++test::stats().writable; }

void engine::close_session(session_id id) {
  impl_->sessions.erase(id);
  ++test::stats().closed;
}

void engine::tick(std::chrono::steady_clock::time_point) {
  ++test::stats().ticks;
  for (auto id : impl_->paused) {
    auto it = impl_->sessions.find(id);
    if (it != impl_->sessions.end()) {
      it->second.sink->resume_reading();
      ++test::stats().resumed;
    }
  }
  impl_->paused.clear();
}

void engine::shutdown() { test::stats().shut_down = true; }
nlohmann::json engine::destinations_json() const { return nlohmann::json::array(); }
nlohmann::json engine::connections_json() const { return nlohmann::json::array(); }
void engine::append_metrics(std::string&) const {}
// The server arms its schedule timer from these (broker/schedule_timer.h): nothing is ever
// scheduled in a scripted engine.
std::optional<std::int64_t> engine::next_schedule_ms() { return std::nullopt; }
std::optional<std::int64_t> engine::next_wake_ms() { return std::nullopt; }
void engine::fire_schedules() {}
void engine::set_schedule_listener(std::function<void()>) {}

}  // namespace tandem::broker
