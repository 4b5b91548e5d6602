#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"
#include "tools/drill/fleet.h"

using namespace tandem::drill;
namespace fs = std::filesystem;

namespace {

// A stand-in for tandemd: logs its arguments and whether a descriptor of the drill leaked into
// it, then waits to be signalled.
struct fake_broker {
  tandem::test::temp_dir temp{"tandem-drill-fleet"};
  fs::path dir = temp.path();
  fs::path script;
  fake_broker() {
    script = dir / "fake-tandemd";
    std::ofstream out(script);
    out << "#!/bin/sh\n"
           "echo \"args: $*\"\n"
           "if [ -e /proc/$$/fd/$DRILL_TEST_FD ]; then echo leaked; else echo closed; fi\n"
           "exec sleep 600\n";
    out.close();
    fs::permissions(script, fs::perms::owner_all);
  }
  fleet_options options() const {
    fleet_options o;
    o.tandemd = script;
    o.store = dir / "store";
    o.log_dir = dir / "logs";
    o.base_port = 40000;
    o.brokers = 2;
    return o;
  }
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool wait_for_text(const fs::path& p, const std::string& what) {
  return tandem::test::wait_until([&] { return read_file(p).find(what) != std::string::npos; },
                                  tandem::test::default_deadline, std::chrono::milliseconds(5));
}

}  // namespace

TEST_CASE("a broker is started with its ports, name and store, and without the drill's descriptors") {
  fake_broker fake;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);  // not close-on-exec, like the client's sockets
  ::setenv("DRILL_TEST_FD", std::to_string(fds[0]).c_str(), 1);
  broker_fleet fleet(fake.options());
  REQUIRE_FALSE(fleet.start(1, true));
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK(fleet.running(1));
  CHECK(fleet.incarnation(1) == 1);
  const auto* rec = fleet.current(1);
  REQUIRE(rec != nullptr);
  CHECK(rec->log.filename() == "b1.1.log");
  REQUIRE(wait_for_text(rec->log, "closed"));
  auto text = read_file(rec->log);
  CHECK(text.find("--listen 127.0.0.1:40002 --admin 127.0.0.1:40003 --name b1 --create-store") != std::string::npos);
  CHECK(text.find("--store " + (fake.dir / "store").string()) != std::string::npos);
  CHECK(fleet.failover_url("a=1") == "failover:(tcp://127.0.0.1:40000,tcp://127.0.0.1:40002)?a=1");
}

TEST_CASE("a killed broker is reaped with its signal and restarts as a new incarnation") {
  fake_broker fake;
  broker_fleet fleet(fake.options());
  REQUIRE_FALSE(fleet.start(0));
  CHECK(fleet.start(0) == std::errc::device_or_resource_busy);
  REQUIRE_FALSE(fleet.signal(0, SIGKILL));
  auto ended = fleet.wait_exit(0, std::chrono::seconds(10));
  REQUIRE(ended.has_value());
  REQUIRE(ended->status.has_value());
  CHECK_FALSE(ended->status->exited);
  CHECK(ended->status->signal == SIGKILL);
  CHECK(ended->status->to_string() == "signal 9 (SIGKILL)");
  CHECK_FALSE(fleet.running(0));
  CHECK(fleet.signal(0, SIGTERM) == std::errc::no_such_process);
  REQUIRE_FALSE(fleet.start(0));
  CHECK(fleet.incarnation(0) == 2);
  CHECK(fleet.current(0)->log.filename() == "b0.2.log");
  CHECK(fleet.incarnations().size() == 2);
}

TEST_CASE("stop_all ends stopped brokers too") {
  fake_broker fake;
  broker_fleet fleet(fake.options());
  REQUIRE_FALSE(fleet.start(0));
  REQUIRE_FALSE(fleet.start(1));
  REQUIRE_FALSE(fleet.signal(1, SIGSTOP));
  fleet.stop_all(std::chrono::seconds(5));
  CHECK_FALSE(fleet.running(0));
  CHECK_FALSE(fleet.running(1));
  for (const auto& rec : fleet.incarnations()) {
    REQUIRE(rec.status.has_value());
    CHECK(rec.status->signal == SIGTERM);
  }
}
