// tandemctl: the operator's tool for a group of tandemd brokers.
//
//   tandemctl status       [--admin URL]... [--config FILE]... [--json]
//   tandemctl destinations [--admin URL]... [--config FILE]... [--json]
//   tandemctl purge DEST   [--admin URL]... [--config FILE]... [--yes]
//   tandemctl scheduled list|cancel JOB|cancel-all [--admin URL]... [--offset N] [--limit N] [--json]
//   tandemctl send DEST    [--url BROKERS] [--body TEXT]... [--count N] [--non-persistent] [--header K:V]...
//   tandemctl receive DEST [--url BROKERS] [--count N] [--timeout-ms MS] [--headers]
//   tandemctl fscheck DIR  [--peer DIR2] [--json] [--wait-limit-ms MS] [--sync-samples N]
//
// Brokers are named by their admin URLs (--admin http://host:8161) or by their config files
// (--config /etc/tandem/orders.json: its admin_listen, and its listen for send/receive). With
// neither, /etc/tandem/*.json is read. Exit codes: commands.h.
//
// Credentials for the admin port: TANDEM_ADMIN_USER and TANDEM_ADMIN_PASSWORD (HTTP Basic; a
// user in group "admin" for purge, "metrics" or "admin" for status and destinations unless the
// broker sets admin_open_reads). The environment, not an option, so the password stays out of
// `ps` and shell history.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "broker/config.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/fscheck.h"

namespace {

using namespace tandem;

// A listen address as a client dials it: a wildcard bind is reached on loopback.
std::string dial_host(const std::string& host) {
  if (host == "0.0.0.0") return "127.0.0.1";
  if (host == "::") return "::1";
  return host;
}

// Adds each config's admin port (and the first config's STOMP port as the default --url).
bool read_configs(std::vector<std::string> files, ctl::admin_options& admin, std::string& stomp_url, bool implicit) {
  if (files.empty() && implicit && std::filesystem::is_directory("/etc/tandem")) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/etc/tandem", ec))
      if (e.path().extension() == ".json") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
  }
  bool ok = true;
  std::vector<std::string> stomp_brokers;
  for (const auto& file : files) {
    auto r = broker::load_config_file(file);
    if (!r.ok()) {
      for (const auto& e : r.errors) std::cerr << "tandemctl: " << e << "\n";
      ok = false;
      continue;
    }
    if (!r.value.admin_listen) {
      std::cerr << "tandemctl: " << file << ": no \"admin_listen\": tandemctl needs the broker's admin port\n";
      ok = false;
      continue;
    }
    ctl::admin_url u;
    u.host = dial_host(r.value.admin_listen->host);
    u.port = r.value.admin_listen->port;
    admin.brokers.push_back(u);
    broker::endpoint_address stomp = r.value.listen;
    stomp.host = dial_host(stomp.host);
    stomp_brokers.push_back("tcp://" + stomp.to_string());
  }
  if (!stomp_brokers.empty()) {
    if (stomp_brokers.size() == 1) {
      stomp_url = stomp_brokers.front();
    } else {
      stomp_url = "failover:(";
      for (std::size_t i = 0; i < stomp_brokers.size(); ++i) stomp_url += (i ? "," : "") + stomp_brokers[i];
      stomp_url += ")";
    }
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tandemctl: status, destinations, purge, send and receive for tandemd brokers"};
  app.footer("Admin credentials: TANDEM_ADMIN_USER and TANDEM_ADMIN_PASSWORD (HTTP Basic).");
  app.require_subcommand(1);

  std::vector<std::string> admin_urls;
  std::vector<std::string> config_files;
  unsigned timeout_ms = 3000;
  bool json = false;
  auto add_admin_options = [&](CLI::App* cmd) {
    cmd->add_option("--admin", admin_urls, "admin URL of a broker, http://HOST:PORT (repeat for each broker)");
    cmd->add_option("--config", config_files, "a broker's config file: its admin_listen is asked (repeatable)");
    cmd->add_option("--timeout-ms", timeout_ms, "per request deadline (default 3000)");
  };
  auto* status = app.add_subcommand("status", "role, epoch, holder, uptime, connections and pending messages of every broker");
  add_admin_options(status);
  status->add_flag("--json", json, "print JSON");
  auto* destinations = app.add_subcommand("destinations", "the master's destinations and their counters");
  add_admin_options(destinations);
  destinations->add_flag("--json", json, "print JSON");
  ctl::purge_options purge;
  auto* purge_cmd = app.add_subcommand("purge", "drop every pending message of a destination (asks first)");
  add_admin_options(purge_cmd);
  purge_cmd->add_option("destination", purge.destination, "/queue/NAME or /topic/NAME")->required();
  purge_cmd->add_flag("--yes,-y", purge.yes, "do not ask for confirmation");
  purge_cmd->add_flag("--json", json, "print the broker's answer as JSON");
  ctl::scheduled_options scheduled;
  auto* scheduled_cmd = app.add_subcommand("scheduled", "list or cancel scheduled messages (AMQ_SCHEDULED_*)");
  add_admin_options(scheduled_cmd);
  scheduled_cmd->add_option("action", scheduled.action, "list, cancel or cancel-all")
      ->required()
      ->check(CLI::IsMember({"list", "cancel", "cancel-all"}));
  scheduled_cmd->add_option("job", scheduled.job_id, "the job id to cancel (as `list` shows it)");
  scheduled_cmd->add_option("--offset", scheduled.offset, "list: skip this many (by next firing)");
  scheduled_cmd->add_option("--limit", scheduled.limit, "list: at most this many, 1..1000 (default 100)");
  scheduled_cmd->add_flag("--json", json, "print the broker's answer as JSON");

  ctl::stomp_options stomp;
  std::string url;
  unsigned stomp_timeout_ms = 10000;
  auto add_stomp_options = [&](CLI::App* cmd) {
    cmd->add_option("--url", url,
                    "brokers: tcp://HOST:PORT or failover:(tcp://a:61613,tcp://b:61613) (default: --config's listen, "
                    "else tcp://127.0.0.1:61613)");
    cmd->add_option("--config", config_files, "a broker's config file: its listen address is used");
    cmd->add_option("--login", stomp.login, "STOMP login");
    cmd->add_option("--passcode", stomp.passcode, "STOMP passcode (prefer TANDEM_PASSCODE in the environment)");
    cmd->add_option("--timeout-ms", stomp_timeout_ms, "give up after this long (default 10000)");
  };
  ctl::send_options send;
  bool non_persistent = false;
  auto* send_cmd = app.add_subcommand("send", "send messages and wait for each RECEIPT");
  add_stomp_options(send_cmd);
  send_cmd->add_option("destination", send.destination, "/queue/NAME or /topic/NAME")->required();
  send_cmd->add_option("--body", send.bodies, "a message body (repeat for several; default: stdin)");
  send_cmd->add_option("--count", send.count, "send each body this many times (default 1)");
  send_cmd->add_option("--header", send.headers, "an extra header NAME:VALUE (repeatable)");
  send_cmd->add_flag("--non-persistent", non_persistent, "send persistent:false (default persistent:true)");
  ctl::receive_options receive;
  auto* receive_cmd = app.add_subcommand("receive", "receive, print and ACK messages");
  add_stomp_options(receive_cmd);
  receive_cmd->add_option("destination", receive.destination, "/queue/NAME or /topic/NAME")->required();
  receive_cmd->add_option("--count", receive.count, "stop after this many messages (default 1; 0 = until the timeout)");
  receive_cmd->add_flag("--headers", receive.show_headers, "print each message's headers before its body");

  ctl::fscheck_options fscheck;
  std::string fscheck_dir, fscheck_peer;
  unsigned fscheck_limit_ms = 10000;
  auto* fscheck_cmd = app.add_subcommand(
      "fscheck", "check a file system before trusting it with a store: locks across mounts, wake-up, release on "
                 "holder death, a replaced lock file, fsync, mount options");
  fscheck_cmd->add_option("dir", fscheck_dir, "a directory on the file system (a store's parent, or the store)")->required();
  fscheck_cmd->add_option("--peer", fscheck_peer, "the same directory through another mount (another client of the file system)");
  fscheck_cmd->add_flag("--json", fscheck.json, "print JSON");
  fscheck_cmd->add_option("--wait-limit-ms", fscheck_limit_ms, "how long a lock may take to move before the check fails (default 10000)");
  fscheck_cmd->add_option("--sync-samples", fscheck.sync_samples, "write+fdatasync samples (default 200)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (fscheck_cmd->parsed()) {
    fscheck.dir = fscheck_dir;
    if (!fscheck_peer.empty()) fscheck.peer = fscheck_peer;
    fscheck.wait_limit = std::chrono::milliseconds(fscheck_limit_ms);
    try {
      return ctl::run_fscheck(fscheck, std::cout, std::cerr);
    } catch (const std::exception& e) {
      std::cerr << "tandemctl fscheck: " << e.what() << "\n";
      return 1;
    }
  }
  try {
    if (status->parsed() || destinations->parsed() || purge_cmd->parsed() || scheduled_cmd->parsed()) {
      ctl::admin_options admin;
      admin.timeout = std::chrono::milliseconds(timeout_ms);
      admin.json = json;
      for (const auto& text : admin_urls) {
        ctl::admin_url u;
        std::string why;
        if (!ctl::parse_admin_url(text, u, why)) {
          std::cerr << "tandemctl: --admin: " << why << "\n";
          return 2;
        }
        admin.brokers.push_back(u);
      }
      std::string ignored;
      if (!read_configs(config_files, admin, ignored, admin_urls.empty())) return 1;
      if (admin.brokers.empty()) {
        std::cerr << "tandemctl: no broker to ask: give --admin http://HOST:PORT or --config FILE "
                     "(no /etc/tandem/*.json with admin_listen found)\n";
        return 2;
      }
      if (status->parsed()) return ctl::run_status(admin, std::cout, std::cerr);
      if (destinations->parsed()) return ctl::run_destinations(admin, std::cout, std::cerr);
      if (scheduled_cmd->parsed()) return ctl::run_scheduled(admin, scheduled, std::cout, std::cerr);
      return ctl::run_purge(admin, purge, std::cin, ::isatty(STDIN_FILENO) != 0, std::cout, std::cerr);
    }
    ctl::admin_options unused;
    std::string config_url;
    if (!read_configs(config_files, unused, config_url, false)) return 1;
    stomp.url = !url.empty() ? url : !config_url.empty() ? config_url : stomp.url;
    stomp.timeout = std::chrono::milliseconds(stomp_timeout_ms);
    if (stomp.passcode.empty())
      if (const char* p = std::getenv("TANDEM_PASSCODE")) stomp.passcode = p;
    if (send_cmd->parsed()) {
      send.persistent = !non_persistent;
      return ctl::run_send(stomp, send, std::cin, std::cout, std::cerr);
    }
    return ctl::run_receive(stomp, receive, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "tandemctl: " << e.what() << "\n";
    return 1;
  }
}
