#include "tools/faultfs/control_protocol.h"

#include <charconv>
#include <vector>

namespace tandem::faultfs {
namespace {

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool parse_u64(std::string_view text, std::uint64_t& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::optional<control_request> parse_request(std::string_view line, std::string& why) {
  if (line.size() > max_request_bytes) {
    why = "request longer than 4096 bytes";
    return std::nullopt;
  }
  auto w = words(line);
  if (w.empty()) {
    why = "empty request (try: status)";
    return std::nullopt;
  }
  const auto verb = w[0];
  auto no_arguments = [&](simple_request::verb v) -> std::optional<control_request> {
    if (w.size() != 1) {
      why = std::string(verb) + " takes no arguments";
      return std::nullopt;
    }
    return simple_request{v};
  };
  if (verb == "clear") return no_arguments(simple_request::verb::clear);
  if (verb == "freeze" && w.size() == 1) return simple_request{simple_request::verb::freeze};
  if (verb == "freeze") {
    freeze_request r;
    auto ops = parse_ops(w[1]);
    if (!ops || w.size() > 3 || (w.size() == 3 && w[2].rfind("path=", 0) != 0) || (w.size() == 3 && w[2].size() == 5)) {
      why = "usage: freeze [OPS [path=GLOB]] (OPS: write, fsync, read, open, meta, stat, lock, all)";
      return std::nullopt;
    }
    r.ops = *ops;
    if (w.size() == 3) r.path_glob = std::string(w[2].substr(5));
    return r;
  }
  if (verb == "thaw") return no_arguments(simple_request::verb::thaw);
  if (verb == "crash") return no_arguments(simple_request::verb::crash);
  if (verb == "power-on") return no_arguments(simple_request::verb::power_on);
  if (verb == "status") return no_arguments(simple_request::verb::status);
  if (verb == "lease") {
    std::uint64_t ms = 0;
    if (w.size() != 2 || !parse_u64(w[1], ms) || ms > 3'600'000) {
      why = "usage: lease MS (0 to 3600000)";
      return std::nullopt;
    }
    return lease_request{std::chrono::milliseconds(ms)};
  }
  if (verb == "fail" || verb == "delay") {
    const bool fail = verb == "fail";
    if (w.size() < 3) {
      why = fail ? "usage: fail OPS ERROR [skip=N] [count=N] [path=GLOB] [pid=PID]"
                 : "usage: delay OPS MS [skip=N] [count=N] [path=GLOB] [pid=PID]";
      return std::nullopt;
    }
    fail_request r;
    auto ops = parse_ops(w[1]);
    if (!ops) {
      why = "unknown operation class '" + std::string(w[1]) + "' (use write, fsync, read, open, meta, stat, lock, all)";
      return std::nullopt;
    }
    r.rule.ops = *ops;
    if (fail) {
      r.rule.error = parse_errno_name(w[2]);
      if (r.rule.error == 0) {
        why = "unknown error '" + std::string(w[2]) + "' (use eio, enospc, edquot, erofs, eagain, enomem or a number)";
        return std::nullopt;
      }
    } else {
      std::uint64_t ms = 0;
      if (!parse_u64(w[2], ms) || ms == 0 || ms > 600'000) {
        why = "delay: '" + std::string(w[2]) + "' is not milliseconds between 1 and 600000";
        return std::nullopt;
      }
      r.rule.delay = std::chrono::milliseconds(ms);
      r.rule.count = 0;
    }
    for (std::size_t i = 3; i < w.size(); ++i) {
      auto eq = w[i].find('=');
      auto key = w[i].substr(0, eq);
      auto value = eq == std::string_view::npos ? std::string_view{} : w[i].substr(eq + 1);
      if (eq == std::string_view::npos || value.empty()) {
        why = "'" + std::string(w[i]) + "' is not KEY=VALUE";
        return std::nullopt;
      }
      std::uint64_t pid = 0;
      if (key == "skip" && parse_u64(value, r.rule.skip)) continue;
      if (key == "count" && parse_u64(value, r.rule.count)) continue;
      if (key == "pid" && parse_u64(value, pid) && pid > 0 && pid < (1u << 22)) {
        r.rule.pid = static_cast<pid_t>(pid);
        continue;
      }
      if (key == "path") {
        r.rule.path_glob = std::string(value);
        continue;
      }
      why = "bad option '" + std::string(w[i]) + "' (skip=N, count=N, path=GLOB, pid=PID)";
      return std::nullopt;
    }
    return r;
  }
  why = "unknown request '" + std::string(verb) + "' (fail, delay, clear, freeze, thaw, crash, power-on, lease, status)";
  return std::nullopt;
}

}  // namespace tandem::faultfs
