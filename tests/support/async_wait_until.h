// wait_until (wait_until.h) for a test coroutine on an io_context: it yields to the loop
// between looks, so the code under test (on the same io_context) runs while it waits.
#pragma once

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>

#include "broker/asio.h"
#include "tests/support/wait.h"

namespace tandem::test {

// Looks at `condition` every millisecond; throws naming `what` after `timeout`.
inline asio::awaitable<void> async_wait_until(std::function<bool()> condition, const char* what,
                                              std::chrono::milliseconds timeout = default_deadline) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error(std::string("timed out waiting for ") + what);
    timer.expires_after(std::chrono::milliseconds(1));
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

}  // namespace tandem::test
