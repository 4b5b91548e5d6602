// lock_holder DIR: takes the store lock of DIR through lockmgr, prints "acquired <epoch>",
// holds it until stdin closes, then releases cleanly. A separate process, because a lock
// held by the test process itself would not show what another process sees.
#include <cstdio>
#include <unistd.h>

#include "lockmgr/lock_manager.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: lock_holder DIR\n");
    return 64;
  }
  tandem::lockmgr::options o;
  o.dir = argv[1];
  o.broker_name = "holder-under-test";
  o.client_url = "stomp://127.0.0.1:61613";
  auto m = tandem::lockmgr::lock_manager::open(o);
  if (!m) {
    std::fprintf(stderr, "lock_holder: open: %s\n", m.error().message().c_str());
    return 1;
  }
  auto a = m.value()->acquire();
  if (!a) {
    std::fprintf(stderr, "lock_holder: acquire: %s\n", a.error().message().c_str());
    return 1;
  }
  std::printf("acquired\n");
  std::fflush(stdout);
  char c;
  while (::read(0, &c, 1) > 0) {
  }
  return m.value()->release() ? 1 : 0;
}
