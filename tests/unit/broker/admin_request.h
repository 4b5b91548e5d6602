// Runs one of admin_http's request coroutines to its end on a test's io_context, for the
// unit tests of the sliced admin views (admin_http_test, engine_messaging_test).
#pragma once

#include <exception>
#include <utility>

#include "broker/admin_http.h"

namespace tandem::broker::test {

inline admin_http::response run_admin_request(asio::io_context& io, asio::awaitable<admin_http::response> request) {
  admin_http::response out;
  asio::co_spawn(io, std::move(request), [&](std::exception_ptr e, admin_http::response r) {
    if (e) std::rethrow_exception(e);
    out = std::move(r);
  });
  io.restart();
  io.run();
  return out;
}

}  // namespace tandem::broker::test
