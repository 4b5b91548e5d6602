// tandemd: the command line. Parses options and the config file, answers the one-shot
// commands (--hash-password, --print-config-reference, --check-config), then runs one
// broker_process (broker_process.h: io_context, signals, the master/slave role machine).
#include <malloc.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "broker/broker_process.h"
#include "broker/config.h"
#include "broker/config_schema.h"
#include "broker/engine/auth.h"
#include "broker/log.h"
#include "broker/tls.h"

namespace tandem::broker {
namespace {

std::string read_password_from_stdin() {
  std::string line;
  std::getline(std::cin, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

int print_password_hash(const std::string& given) {
  std::string password = given == "-" ? read_password_from_stdin() : given;
  if (password.empty()) {
    std::fprintf(stderr, "tandemd: --hash-password: the password is empty\n");
    return exit_usage;
  }
  std::printf("%s\n", hash_password(password).c_str());
  return exit_ok;
}

int check_config_file(const std::filesystem::path& file) {
  auto r = load_config_file(file);
  if (r.ok()) validate(r.value, r.errors);
  std::string why;
  if (r.ok() && r.value.uses_tls() && !make_tls_context(r.value, why)) r.errors.push_back(why);
  for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.c_str());
  if (!r.ok()) return exit_usage;
  std::printf("%s: ok\n", file.string().c_str());
  return exit_ok;
}

// The file (if any), then the command line over it, then the checks of the merged result.
// Without a file (quick start) nobody configured users, so anonymous access (logged).
bool load_config(const command_line& cl, config& cfg) {
  std::vector<std::string> errors;
  if (cl.config_file) {
    auto r = load_config_file(*cl.config_file);
    errors = std::move(r.errors);
    cfg = std::move(r.value);
  } else {
    cfg.engine.allow_anonymous = true;
  }
  if (errors.empty()) apply_command_line(cl, cfg, errors);
  if (errors.empty()) validate(cfg, errors);
  if (errors.empty()) check_no_security_listeners(cfg, cl.config_file.has_value(), errors);
  for (const auto& e : errors) std::fprintf(stderr, "tandemd: %s\n", e.c_str());
  return errors.empty();
}

int run_broker(config cfg, bool from_file) {
  log::level lvl = log::level::info;
  log::parse_level(cfg.log_level, lvl);
  log::init(lvl);
  hash_plaintext_passwords(cfg, [](std::string_view p) { return hash_password(p); });
  try {
    std::shared_ptr<ssl::context> tls;
    if (cfg.uses_tls()) {
      std::string why;
      tls = make_tls_context(cfg, why);
      if (!tls) {
        std::fprintf(stderr, "tandemd: %s\n", why.c_str());
        return exit_usage;
      }
    }
    broker_process process(std::move(cfg), from_file, std::move(tls));
    return process.run();
  } catch (const std::exception& e) {
    log::error("main", "fatal", {log::kv("error", e.what())});
    return 1;
  }
}

}  // namespace
}  // namespace tandem::broker

// glibc serves an allocation of at least M_MMAP_THRESHOLD (128 KiB at first) with its own
// mmap, given back to the kernel by free(); but after such a chunk is freed it raises the
// threshold to that chunk's size (up to 32 MiB), so later large buffers (partial frames of
// megabytes, grown write queues) come from the main arena, where their pages stay in RSS
// after free. Under bench/hostile_soak.py's oversized frames that kept ~30 MB of freed
// buffers in the heap (bench/results/hostile_soak.md, "Where the RSS goes"). A fixed
// threshold turns the adjustment off: buffers over 256 KiB are mapped and unmapped, so
// what max_memory_bytes counts of them leaves RSS when they are freed.
namespace {
void keep_large_buffers_out_of_the_heap() { ::mallopt(M_MMAP_THRESHOLD, 256 * 1024); }
}  // namespace

int main(int argc, char** argv) {
  using namespace tandem::broker;
  keep_large_buffers_out_of_the_heap();
  command_line cl;
  if (auto status = parse_command_line(argc, argv, cl)) return *status;
  if (cl.hash_password_given) return print_password_hash(*cl.hash_password);
  if (cl.print_config_reference) {
    std::fputs(render_config_reference().c_str(), stdout);
    return exit_ok;
  }
  if (cl.check_config_file) return check_config_file(*cl.check_config_file);
  config cfg;
  if (!load_config(cl, cfg)) return exit_usage;
  return run_broker(std::move(cfg), cl.config_file.has_value());
}
