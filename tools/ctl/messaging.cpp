// send and receive: tandemctl's STOMP smoke tests, on tools/client (the client of the bench
// and the drill), so a failover list behaves exactly as it does for them.
#include <iterator>
#include <istream>
#include <ostream>

#include <fmt/format.h>

#include "broker/asio.h"
#include "tools/client/connection.h"
#include "tools/client/errc.h"
#include "tools/ctl/commands.h"

namespace tandem::ctl {

namespace {

// Parses the broker list; on failure writes the reason and returns false.
bool make_connect_options(const stomp_options& stomp, client::connect_options& o, std::ostream& err) {
  std::string why;
  auto list = client::parse_broker_list(stomp.url, &why);
  if (!list) {
    err << "tandemctl: --url: " << why << "\n";
    return false;
  }
  o.brokers = std::move(list).value();
  o.login = stomp.login;
  o.passcode = stomp.passcode;
  o.connect_timeout = std::min(stomp.timeout, std::chrono::milliseconds(5000));
  return true;
}

std::string connect_failure(const stomp_options& stomp, std::error_code ec, const client::connection& c) {
  std::string detail;
  if (auto m = c.connected_frame().get("message")) detail = fmt::format(" ({})", *m);
  return fmt::format("tandemctl: cannot connect to {}: {}{}; is a master running there (`tandemctl status`)?\n", stomp.url,
                     ec.message(), detail);
}

// Runs `body` on `io` until it returns; the connection is closed afterwards. The caller
// declares `io` before anything holding Asio objects (timers) so that those die first.
int run_client(asio::io_context& io, client::connect_options options, client::handlers h,
               std::function<asio::awaitable<int>(client::connection&)> body) {
  auto conn = client::connection::create(io.get_executor(), std::move(options), std::move(h));
  int rc = 1;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    rc = co_await body(*conn);
    if (conn->current_state() != client::connection::state::closed) co_await conn->async_disconnect();
  }, [&](std::exception_ptr e) {
    if (e) conn->close();
    if (e) std::rethrow_exception(e);
  });
  io.run();
  return rc;
}

}  // namespace

int run_send(const stomp_options& stomp, const send_options& send, std::istream& in, std::ostream& out, std::ostream& err) {
  client::connect_options o;
  if (!make_connect_options(stomp, o, err)) return 2;
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& h : send.headers) {
    auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0) {
      err << "tandemctl: --header \"" << h << "\": expected NAME:VALUE\n";
      return 2;
    }
    headers.emplace_back(h.substr(0, colon), h.substr(colon + 1));
  }
  std::vector<std::string> bodies = send.bodies;
  if (bodies.empty()) bodies.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());

  asio::io_context io;
  std::uint64_t receipted = 0, failed = 0;
  std::string first_error;
  client::handlers h;
  h.on_receipt = [&](const client::receipt_event& e) {
    if (!e.error) {
      ++receipted;
    } else {
      ++failed;
      if (first_error.empty()) first_error = e.error.message();
    }
  };
  h.on_error = [&](const stomp::frame& f) {
    if (first_error.empty()) first_error = std::string(f.get("message").value_or("ERROR frame"));
  };
  std::uint64_t total = send.count * bodies.size();
  return run_client(io, std::move(o), std::move(h), [&](client::connection& c) -> asio::awaitable<int> {
    if (auto ec = co_await c.async_connect()) {
      err << connect_failure(stomp, ec, c);
      co_return 1;
    }
    for (std::uint64_t i = 0; i < send.count; ++i) {
      for (const auto& body : bodies) {
        stomp::frame f;
        f.command = "SEND";
        f.add("destination", send.destination);
        if (send.persistent) f.add("persistent", "true");
        for (const auto& [k, v] : headers) f.add(k, v);
        f.body = body;
        // A receipt for every message: "sent" means the broker has it (on disk if persistent).
        if (auto r = co_await c.async_send(f, true); !r) {
          err << "tandemctl: send failed: " << r.error().message() << "\n";
          co_return 1;
        }
      }
    }
    co_await c.async_flush();
    if (failed > 0 || receipted < total) {
      err << fmt::format("tandemctl: {} of {} message(s) to {} not confirmed by the broker: {}\n", total - receipted, total,
                         send.destination, first_error.empty() ? "connection lost" : first_error);
      co_return 1;
    }
    out << fmt::format("sent {} message(s) to {} ({}), each confirmed by a RECEIPT\n", total, send.destination,
                       send.persistent ? "persistent" : "non-persistent");
    co_return 0;
  });
}

int run_receive(const stomp_options& stomp, const receive_options& receive, std::ostream& out, std::ostream& err) {
  client::connect_options o;
  if (!make_connect_options(stomp, o, err)) return 2;
  asio::io_context io;  // before `wake`, which must be destroyed first
  std::uint64_t received = 0;
  std::string broker_error;
  std::shared_ptr<asio::steady_timer> wake;  // cancelled on each message, so the body wakes up
  client::connection* conn = nullptr;
  client::handlers h;
  h.on_message = [&](client::message&& m) {
    if (receive.count != 0 && received >= receive.count) return;  // beyond the count: left unacked, redelivered
    if (receive.show_headers) {
      for (const auto& [name, value] : m.frame.headers) out << name << ":" << value << "\n";
      out << "\n";
    }
    out << m.frame.body;
    if (!m.frame.body.empty() && m.frame.body.back() != '\n') out << "\n";
    out.flush();
    if (conn) conn->ack(m);
    ++received;
    if (wake) wake->cancel();
  };
  h.on_error = [&](const stomp::frame& f) {
    broker_error = std::string(f.get("message").value_or("ERROR frame"));
    if (wake) wake->cancel();
  };
  h.on_connection_lost = [&](std::error_code, bool) {
    if (wake) wake->cancel();
  };
  return run_client(io, std::move(o), std::move(h), [&](client::connection& c) -> asio::awaitable<int> {
    conn = &c;
    wake = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
    if (auto ec = co_await c.async_connect()) {
      err << connect_failure(stomp, ec, c);
      co_return 1;
    }
    client::subscription sub;
    sub.destination = receive.destination;
    sub.ack = client::ack_mode::client_individual;
    // Never hold more than asked for: the rest stays on the broker for other consumers.
    if (receive.count != 0) sub.prefetch = static_cast<std::uint32_t>(std::min<std::uint64_t>(receive.count, 1000));
    if (auto r = c.subscribe(sub, true); !r) {
      err << "tandemctl: subscribe failed: " << r.error().message() << "\n";
      co_return 1;
    }
    auto deadline = std::chrono::steady_clock::now() + stomp.timeout;
    while ((receive.count == 0 || received < receive.count) && broker_error.empty() &&
           c.current_state() != client::connection::state::closed && std::chrono::steady_clock::now() < deadline) {
      wake->expires_at(deadline);
      boost::system::error_code ec;
      co_await wake->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    // The ACKs are queued: a DISCONNECT with a receipt (run_client) makes sure they arrived.
    co_await c.async_flush();
    conn = nullptr;
    if (!broker_error.empty()) {
      err << "tandemctl: the broker refused: " << broker_error << "\n";
      co_return 1;
    }
    if (receive.count != 0 && received < receive.count) {
      err << fmt::format("tandemctl: received {} of {} message(s) from {} within {} ms\n", received, receive.count,
                         receive.destination, stomp.timeout.count());
      co_return 1;
    }
    co_return 0;
  });
}

}  // namespace tandem::ctl
