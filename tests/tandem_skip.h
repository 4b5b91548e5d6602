// TANDEM_SKIP(reason): a doctest case that cannot run here (no FUSE, an ASan build, a tool
// that is missing) says why and returns. tandem_add_doctest (tests/CMakeLists.txt) gives
// every case SKIP_REGULAR_EXPRESSION on the marker, so CTest reports it as skipped, never
// as passed. Only use it before any failed check: a case that prints the marker counts as
// skipped even when a CHECK failed before it (use REQUIRE for what must hold first).
#pragma once

#include <doctest/doctest.h>

#define TANDEM_SKIP_MARKER "TANDEM_SKIPPED:"
#define TANDEM_SKIP(reason)                           \
  do {                                                \
    MESSAGE(TANDEM_SKIP_MARKER " " << reason);        \
    return;                                           \
  } while (0)
