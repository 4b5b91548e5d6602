// Deliberate durability defects, compiled only with TANDEM_UNSAFE_FAULTS, so tandem-drill can
// show that it sees loss when loss happens (docs/failover.md, "The unsafe build"). A drill
// that has never reported a loss proves nothing; one that reports `lost > 0` against these
// defects and 0 against the normal build does.
//
// Which defect is active is chosen at run time: TANDEM_UNSAFE_FAULT=NAME[,NAME...]
//   receipt_before_fsync   the journal writer completes an append (RECEIPT) without its
//                          fdatasync: a power loss takes receipted messages
//   skip_fence             the journal writer never calls the fence: a master paused past
//                          its lease goes on receipting after a newer master took over
//   dedup_before_durable   the engine remembers a producer seq before the message is durable:
//                          a resend of a message that never becomes durable is receipted
//   ack_receipt_early      the engine answers an ACK's RECEIPT at once and appends its remove
//                          only with the next ACK: a kill brings acknowledged messages back
// The defect lines themselves sit where the real code is (journal/store.cpp,
// broker/engine/dedup.cpp, broker/engine/ack.cpp), each a few lines behind #ifdef TANDEM_UNSAFE_FAULTS.
//
// Every process that links this file says so on its first stderr line, in tandemd's log
// format, before main runs; an unknown defect name ends the process (exit 2), so a test
// never runs without the defect it asked for. The package build refuses any installed
// binary carrying the marker below (packaging/refuse_unsafe.cmake).
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view known_defects[] = {"receipt_before_fsync", "skip_fence", "dedup_before_durable",
                                               "ack_receipt_early"};
// Found in the binary by packaging/refuse_unsafe.cmake.
constexpr const char* marker = "TANDEM-UNSAFE-BUILD";

const std::string& active_list() {
  static const std::string list = [] {
    const char* v = std::getenv("TANDEM_UNSAFE_FAULT");
    return std::string(v ? v : "");
  }();
  return list;
}

template <class F>
void for_each_name(std::string_view list, F&& f) {
  while (!list.empty()) {
    auto comma = list.find(',');
    f(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
}

bool is_known(std::string_view name) {
  for (auto k : known_defects) {
    if (k == name) return true;
  }
  return false;
}

std::string utc_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::gmtime_r(&ts.tv_sec, &t);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000);
  return buf;
}

struct banner {
  banner() {
    const std::string& list = active_list();
    std::string unknown;
    for_each_name(list, [&](std::string_view n) {
      if (!is_known(n)) unknown += (unknown.empty() ? "" : ",") + std::string(n);
    });
    std::fprintf(stderr,
                 "%s error main %s: built with TANDEM_UNSAFE_FAULTS, deliberate durability defects "
                 "(receipt_before_fsync, skip_fence, dedup_before_durable, ack_receipt_early) active=\"%s\" "
                 "hint=\"this binary loses acknowledged messages on purpose; never run it on real data\"\n",
                 utc_now().c_str(), marker, list.empty() ? "none" : list.c_str());
    if (!unknown.empty()) {
      std::fprintf(stderr, "%s error main unknown TANDEM_UNSAFE_FAULT name=\"%s\" known=\"receipt_before_fsync,skip_fence,dedup_before_durable,ack_receipt_early\"\n",
                   utc_now().c_str(), unknown.c_str());
      std::fflush(stderr);
      std::_Exit(2);
    }
    std::fflush(stderr);
  }
};
const banner print_banner;

}  // namespace

extern "C" bool tandem_unsafe_fault(const char* name) {
  bool on = false;
  for_each_name(active_list(), [&](std::string_view n) { on = on || n == name; });
  return on;
}
