// tandemd's command line (config.h), the one file of tandemd that includes CLI11: a large
// header-only library (Debian's libcli11-dev has no compiled form) whose code every includer
// compiles again. config.cpp and main.cpp compile without it (issue 19, bench/results/build.md).
#include "broker/config.h"

#include <CLI/CLI.hpp>

namespace tandem::broker {

void add_command_line_options(CLI::App& app, command_line& out) {
  app.add_option("--config", out.config_file, "JSON configuration file (keys: tandemd --print-config-reference)");
  app.add_option("--check-config", out.check_config_file, "validate a configuration file and exit (0 = valid)");
  app.add_flag("--print-config-reference", out.print_config_reference,
               "print the configuration reference (docs/configuration.md) made from the schema and exit");
  app.add_option("--store", out.store, "store directory shared by master and slaves, or a postgresql:// URI (docs/postgresql.md)");
  app.add_option("--listen", out.listen, "STOMP listen address HOST:PORT (default 127.0.0.1:61613; port 0 = any free)");
  app.add_option("--admin", out.admin, "admin HTTP listen address HOST:PORT (/health, /metrics, /api/...)");
  app.add_option("--name", out.name, "broker name (CONNECTED server header, holder record, logs)");
  app.add_flag("--create-store", out.create_store, "create a new store in --store DIR if there is none");
  app.add_option("--sync", out.sync, "journal sync policy: always (default), periodic, never");
  app.add_option("--threads", out.threads, "threads serving connections, round robin (default 1; docs/threads.md)");
  app.add_option("--lock-check-interval", out.lock_check_interval_ms, "lock watchdog check interval in ms (default 1000)");
  app.add_option("--lock-wait", out.lock_wait, "how a slave waits for the lock: blocking (default) or polling");
  app.add_option("--lock-poll-interval-ms", out.lock_poll_interval_ms,
                 "with --lock-wait polling: ms between two tries for the lock (default 500)");
  app.add_option("--takeover-delay", out.takeover_delay_ms, "override the takeover delay in ms (default: by file-system type)");
  app.add_option("--checkpoint-preload-interval-ms", out.checkpoint_preload_interval_ms,
                 "a slave looks this often for a new checkpoint to preload; 0 = off (default 250)");
  app.add_option("--log-level", out.log_level, "debug, info, warn or error");
  app.add_option("--hash-password", out.hash_password,
                 "print a password_hash for the users list and exit (\"-\" reads the password from stdin)");
}

std::optional<int> parse_command_line(int argc, char** argv, command_line& out) {
  CLI::App app{"tandemd: a persistent STOMP 1.2 broker; brokers sharing one --store elect a master by file lock"};
  add_command_line_options(app, out);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  out.hash_password_given = app.count("--hash-password") > 0;
  return std::nullopt;
}

}  // namespace tandem::broker
