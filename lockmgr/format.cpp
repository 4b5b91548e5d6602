#include "lockmgr/format.h"

#include <charconv>
#include <chrono>
#include <ctime>

#include "lockmgr/errc.h"

namespace tandem::lockmgr {

std::string encode_epoch(std::uint64_t epoch) {
  std::string out(epoch_magic);
  out += ' ';
  out += std::to_string(epoch_format_version);
  out += '\n';
  out += std::to_string(epoch);
  out += '\n';
  return out;
}

boost::outcome_v2::std_result<std::uint64_t> parse_epoch(std::string_view contents) {
  const std::string header = std::string(epoch_magic) + ' ' + std::to_string(epoch_format_version) + '\n';
  if (contents.substr(0, header.size()) != header) return make_error_code(errc::bad_epoch_file);
  std::string_view rest = contents.substr(header.size());
  if (rest.size() < 2 || rest.back() != '\n') return make_error_code(errc::bad_epoch_file);
  std::string_view digits = rest.substr(0, rest.size() - 1);
  // from_chars accepts neither sign nor spaces, but it does accept leading zeros: refuse
  // them so each epoch has exactly one spelling.
  if (digits.front() == '0') return make_error_code(errc::bad_epoch_file);
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc{} || ptr != digits.data() + digits.size()) return make_error_code(errc::bad_epoch_file);
  return value;
}

nlohmann::json to_json(const holder_record& r) {
  nlohmann::json j{
      {"format", holder_format},
      {"version", holder_format_version},
      {"broker_name", r.broker_name},
      {"host", r.host},
      {"pid", r.pid},
      {"epoch", r.epoch},
      {"acquired_at", r.acquired_at},
      {"client_url", r.client_url},
      {"software_version", r.software_version},
      {"clean_release", r.clean_release},
      {"released_at", r.released_at ? nlohmann::json(*r.released_at) : nlohmann::json(nullptr)},
      {"lease_ms", r.lease_ms},
      {"lock_dev", r.lock_dev},
      {"lock_ino", r.lock_ino},
  };
  if (!r.admin_url.empty()) j["admin_url"] = r.admin_url;
  if (!r.mount_client_id.empty()) j["mount_client_id"] = r.mount_client_id;
  if (!r.boot_id.empty()) j["boot_id"] = r.boot_id;
  if (!r.pid_ns.empty()) j["pid_ns"] = r.pid_ns;
  if (r.pid_start != 0) j["pid_start"] = r.pid_start;
  return j;
}

boost::outcome_v2::std_result<holder_record> holder_from_json(const nlohmann::json& j) {
  const auto bad = make_error_code(errc::bad_holder_record);
  if (!j.is_object()) return bad;
  auto string_member = [&](const char* key, std::string& out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  std::string format;
  if (!string_member("format", format) || format != holder_format) return bad;
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer() || version->get<std::int64_t>() != holder_format_version)
    return bad;
  holder_record r;
  if (!string_member("broker_name", r.broker_name) || !string_member("host", r.host) ||
      !string_member("acquired_at", r.acquired_at) || !string_member("client_url", r.client_url) ||
      !string_member("software_version", r.software_version))
    return bad;
  auto pid = j.find("pid");
  if (pid == j.end() || !pid->is_number_integer()) return bad;
  r.pid = pid->get<std::int64_t>();
  auto epoch = j.find("epoch");
  if (epoch == j.end() || !epoch->is_number_unsigned()) return bad;
  r.epoch = epoch->get<std::uint64_t>();
  auto clean = j.find("clean_release");
  if (clean == j.end() || !clean->is_boolean()) return bad;
  r.clean_release = clean->get<bool>();
  auto released = j.find("released_at");
  if (released == j.end()) return bad;
  if (released->is_string()) {
    r.released_at = released->get<std::string>();
  } else if (!released->is_null()) {
    return bad;
  }
  // Added in the same version 1 (readers ignore unknown members): a record without them was
  // written by an older broker, whose lease and lock inode are unknown (0).
  auto optional_count = [&](const char* key, std::uint64_t& out) {
    auto it = j.find(key);
    if (it == j.end()) return true;
    if (!it->is_number_unsigned()) return false;
    out = it->get<std::uint64_t>();
    return true;
  };
  if (!optional_count("lease_ms", r.lease_ms) || !optional_count("lock_dev", r.lock_dev) ||
      !optional_count("lock_ino", r.lock_ino) || !optional_count("pid_start", r.pid_start))
    return bad;
  // Optional members (see format.h): absent = "", present with another type = refused.
  for (auto [key, out] : {std::pair{"admin_url", &r.admin_url}, std::pair{"mount_client_id", &r.mount_client_id},
                          std::pair{"boot_id", &r.boot_id}, std::pair{"pid_ns", &r.pid_ns}}) {
    if (j.contains(key) && !string_member(key, *out)) return bad;
  }
  return r;
}

std::string encode_holder(const holder_record& record) { return to_json(record).dump(2) + "\n"; }

boost::outcome_v2::std_result<holder_record> parse_holder(std::string_view contents) {
  auto j = nlohmann::json::parse(contents.begin(), contents.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error_code(errc::bad_holder_record);
  return holder_from_json(j);
}

std::string utc_now_iso8601() {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::time_t t = system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

}  // namespace tandem::lockmgr
