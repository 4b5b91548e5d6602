// tandemctl's commands. Each takes its options, writes its report to `out` and its errors to
// `err` (one line each, naming the broker and what to do), and returns the process exit code:
//   0  done (status: every broker answered and exactly one is master)
//   1  a broker was unreachable or refused; status: none or several masters
//   2  bad usage (CLI11's code)
// Threads: the calling thread, blocking; each command runs its own io_context.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/ctl/admin_client.h"

namespace tandem::ctl {

struct admin_options {
  std::vector<admin_url> brokers;  // from --admin and from each --config's admin_listen
  std::chrono::milliseconds timeout{3000};
  bool json = false;
};

// One broker as `status` saw it.
struct broker_status {
  admin_url url;
  bool reachable = false;
  std::string error;            // unreachable: why
  nlohmann::json health;        // GET /health
  nlohmann::json destinations;  // GET /api/destinations (master only), else null
  std::string destinations_error;  // why destinations is null on a master (401/403: credentials)
};

std::vector<broker_status> collect_status(const admin_options& options);
// The human table (and per-destination pending counts of the master) for `status`.
std::string render_status(const std::vector<broker_status>& brokers);
nlohmann::json status_json(const std::vector<broker_status>& brokers);
// "3h02m", "45s": an uptime for a table cell.
std::string format_duration(std::uint64_t seconds);

int run_status(const admin_options& options, std::ostream& out, std::ostream& err);
int run_destinations(const admin_options& options, std::ostream& out, std::ostream& err);

struct purge_options {
  std::string destination;  // "/queue/NAME" or "/topic/NAME"
  bool yes = false;         // skip the confirmation
};
// Finds the master, shows what would be purged, asks on `in` unless yes, then POSTs
// /api/destinations/<name>/purge. A non-interactive stdin without --yes is refused.
int run_purge(const admin_options& options, const purge_options& purge, std::istream& in, bool interactive,
              std::ostream& out, std::ostream& err);

struct scheduled_options {
  std::string action;   // "list", "cancel", "cancel-all"
  std::string job_id;   // cancel: the job
  std::size_t offset = 0;
  std::size_t limit = 100;
};
// list: GET /api/scheduled (a page, by next firing); cancel / cancel-all: POST
// /api/scheduled/<job>/cancel or /api/scheduled/cancel-all on the master.
int run_scheduled(const admin_options& options, const scheduled_options& scheduled, std::ostream& out,
                  std::ostream& err);

struct stomp_options {
  std::string url = "tcp://127.0.0.1:61613";  // a client broker list (tools/client/broker_list.h)
  std::string login;
  std::string passcode;
  std::chrono::milliseconds timeout{10000};
};

struct send_options {
  std::string destination;
  std::vector<std::string> bodies;  // one message each; empty: one message read from stdin
  std::vector<std::string> headers; // "name:value"
  bool persistent = true;
  std::uint64_t count = 1;          // repeat each body this often
};
int run_send(const stomp_options& stomp, const send_options& send, std::istream& in, std::ostream& out,
             std::ostream& err);

struct receive_options {
  std::string destination;
  std::uint64_t count = 1;          // stop after this many messages (0 = until --timeout)
  bool show_headers = false;
};
// Subscribes with client-individual acks and ACKs each message once printed, so a message is
// never lost between the broker and the terminal.
int run_receive(const stomp_options& stomp, const receive_options& receive, std::ostream& out, std::ostream& err);

}  // namespace tandem::ctl
