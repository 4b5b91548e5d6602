// The one way Tandem includes Boost.Asio (and Beast, which includes Asio).
//
// Why this header exists: Boost 1.74's boost/asio/awaitable.hpp calls std::exchange without
// including <utility>; GCC 12's standard headers no longer pull <utility> in transitively, so
// the first translation unit that includes Asio's coroutine support before anything else fails
// to compile. Including <utility> here, first, fixes it for every file. Do not include
// <boost/asio...> or <boost/beast...> directly anywhere in Tandem.
//
// Boost 1.74 (Asio 1.18) gives co_spawn, awaitable, use_awaitable, redirect_error and
// this_coro::executor. It has NO as_tuple, deferred, awaitable operators (||, &&) or
// per-operation cancellation: timeouts are done with a timer that closes the socket.
#pragma once

#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tandem {
namespace asio = boost::asio;
}  // namespace tandem
