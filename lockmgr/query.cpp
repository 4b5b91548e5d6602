#include "lockmgr/query.h"

#include <sys/stat.h>

#include <cerrno>

#include "lockmgr/lock_file.h"

namespace tandem::lockmgr {

boost::outcome_v2::std_result<lock_status> query(const std::filesystem::path& dir, fs::file_system& fs) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return std::error_code(errno, std::generic_category());
  if (!S_ISDIR(st.st_mode)) return std::make_error_code(std::errc::not_a_directory);

  lock_status s;
  s.dir = dir;
  auto lock = lock_file::open_for_query(fs, dir);
  if (lock) {
    s.lock_file_exists = true;
    auto other = lock.value()->locked_by_other();
    if (!other) return other.error();
    s.held = other.value();
  } else if (lock.error() != std::errc::no_such_file_or_directory) {
    return lock.error();
  }

  if (auto text = fs::read_file(fs, dir / epoch_file_name)) {
    if (auto e = parse_epoch(text.value())) {
      s.epoch = e.value();
    } else {
      s.epoch_error = e.error().message();
    }
  } else if (text.error() != std::errc::no_such_file_or_directory) {
    s.epoch_error = text.error().message();
  }
  if (auto text = fs::read_file(fs, dir / holder_file_name)) {
    if (auto h = parse_holder(text.value())) {
      s.holder = h.value();
    } else {
      s.holder_error = h.error().message();
    }
  } else if (text.error() != std::errc::no_such_file_or_directory) {
    s.holder_error = text.error().message();
  }
  return s;
}

nlohmann::json to_json(const lock_status& s) {
  nlohmann::json j;
  j["dir"] = s.dir.string();
  j["lock_file"] = s.lock_file_exists;
  j["held"] = s.held;
  const char* state = "free";
  if (s.held) {
    state = "held";
  } else if (s.holder) {
    state = s.holder->clean_release ? "free_after_clean_release" : "free_after_unclean_end";
  } else if (!s.holder_error.empty()) {
    state = "free_after_unclean_end";
  }
  j["state"] = state;
  j["epoch"] = s.epoch ? nlohmann::json(*s.epoch) : nlohmann::json(nullptr);
  if (!s.epoch_error.empty()) j["epoch_error"] = s.epoch_error;
  j["holder"] = s.holder ? to_json(*s.holder) : nlohmann::json(nullptr);
  if (!s.holder_error.empty()) j["holder_error"] = s.holder_error;
  j["holder_is_current"] = s.holder && s.epoch && s.holder->epoch == *s.epoch;
  return j;
}

std::string render_json(const lock_status& s) { return to_json(s).dump(2) + "\n"; }

}  // namespace tandem::lockmgr
