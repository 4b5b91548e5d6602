#include "tools/faultfs/fault_rules.h"

#include <fnmatch.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

namespace tandem::faultfs {
namespace {

struct named_op {
  std::string_view name;
  unsigned bits;
};
constexpr named_op op_names[] = {
    {"read", static_cast<unsigned>(op_class::read)},   {"write", static_cast<unsigned>(op_class::write)},
    {"fsync", static_cast<unsigned>(op_class::fsync)}, {"open", static_cast<unsigned>(op_class::open)},
    {"meta", static_cast<unsigned>(op_class::meta)},   {"stat", static_cast<unsigned>(op_class::stat)},
    {"lock", static_cast<unsigned>(op_class::lock)},   {"all", all_ops},
};

struct named_errno {
  std::string_view name;
  int value;
};
constexpr named_errno errno_names[] = {
    {"eio", EIO}, {"enospc", ENOSPC}, {"edquot", EDQUOT}, {"erofs", EROFS}, {"eagain", EAGAIN}, {"enomem", ENOMEM},
};

}  // namespace

std::optional<unsigned> parse_ops(std::string_view text) {
  unsigned bits = 0;
  while (!text.empty()) {
    auto comma = text.find(',');
    auto word = text.substr(0, comma);
    bool known = false;
    for (const auto& o : op_names) {
      if (o.name == word) {
        bits |= o.bits;
        known = true;
      }
    }
    if (!known) return std::nullopt;
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
  }
  if (bits == 0) return std::nullopt;
  return bits;
}

std::string ops_to_string(unsigned ops) {
  if (ops == all_ops) return "all";
  std::string out;
  for (const auto& o : op_names) {
    if (o.bits != all_ops && (ops & o.bits)) {
      if (!out.empty()) out += ',';
      out += o.name;
    }
  }
  return out;
}

int parse_errno_name(std::string_view text) {
  for (const auto& e : errno_names) {
    if (e.name == text) return e.value;
  }
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value <= 0 || value > 4095) return 0;
  return value;
}

std::string errno_name(int error) {
  for (const auto& e : errno_names) {
    if (e.value == error) return std::string(e.name);
  }
  return std::to_string(error);
}

void fault_rules::add(fault_rule r) {
  std::lock_guard g(mutex_);
  needs_pid_ = needs_pid_ || r.pid != 0;
  rules_.push_back(std::move(r));
}

void fault_rules::clear() {
  std::lock_guard g(mutex_);
  rules_.clear();
  needs_pid_ = false;
}

bool fault_rules::needs_pid() const {
  std::lock_guard g(mutex_);
  return needs_pid_;
}

fault_decision fault_rules::check(op_class op, std::string_view path, pid_t pid) {
  std::lock_guard g(mutex_);
  for (auto& r : rules_) {
    if (!(r.ops & static_cast<unsigned>(op))) continue;
    if (r.pid != 0 && r.pid != pid) continue;
    if (!r.path_glob.empty() && ::fnmatch(r.path_glob.c_str(), std::string(path).c_str(), 0) != 0) continue;
    ++r.matched;
    if (r.matched <= r.skip) continue;
    if (r.count != 0 && r.injected >= r.count) continue;
    ++r.injected;
    ++injected_;
    return {r.error, r.delay};
  }
  return {};
}

std::vector<fault_rule> fault_rules::list() const {
  std::lock_guard g(mutex_);
  return rules_;
}

std::uint64_t fault_rules::injected() const {
  std::lock_guard g(mutex_);
  return injected_;
}

}  // namespace tandem::faultfs
