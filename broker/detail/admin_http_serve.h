// admin_http's request loop (admin_http::serve), private to the two files that instantiate
// it: admin_http.cpp over plain TCP (admin_listen) and admin_http_tls.cpp over TLS
// (admin_tls_listen). Each instantiation compiles Beast's HTTP read and write templates
// over its stream; in one file together they made one of tandemd's slowest compiles, apart
// they build in parallel (issue 19, bench/results/build.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/admin_http.h"
#include "broker/asio.h"  // before Beast, which includes Asio
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "broker/log.h"

namespace tandem::broker::detail {

inline constexpr std::chrono::seconds admin_request_timeout{5};
inline constexpr const char* json_type = "application/json";

// Never throws: a name that is not UTF-8 (a store from before issue 17 may hold one) comes
// out as U+FFFD instead of an exception that closed the connection unanswered.
inline std::string json_body(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace tandem::broker::detail

namespace tandem::broker {

template <class Stream>
asio::awaitable<void> admin_http::serve(Stream& stream) {
  namespace beast = boost::beast;
  namespace http = boost::beast::http;
  auto& tcp = beast::get_lowest_layer(stream);
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(4096);  // a POST may carry "{}"; nothing reads it
    tcp.expires_after(detail::admin_request_timeout);
    boost::system::error_code ec;
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;  // closed, timed out, or garbage: nothing to answer on an admin port
    auto& req = parser.get();
    std::string_view target(req.target().data(), req.target().size());
    std::string destination;
    response r;
    if (auto refused = co_await check_access(req, tcp.socket())) {
      r = std::move(*refused);
    } else if (req.method() == http::verb::get && target == "/api/group") {
      // co_await kept out of the braced temporaries: GCC 12 destroys temporaries of a
      // full-expression holding a co_await twice (a double free, seen here).
      nlohmann::json members = co_await group();
      r = response{200, detail::json_type, detail::json_body(members)};
    } else if (req.method() == http::verb::post && cancel_target(target, destination)) {
      log::info("admin", "scheduled message cancel requested",
                {log::kv("job_id", destination.empty() ? "(all)" : destination),
                 log::kv("remote", tcp.socket().remote_endpoint(ec).address().to_string())});
      r = co_await cancel_scheduled(std::move(destination));
    } else if (req.method() == http::verb::post && purge_target(target, destination)) {
      log::info("admin", "purge requested", {log::kv("destination", destination),
                                              log::kv("remote", tcp.socket().remote_endpoint(ec).address().to_string())});
      r = co_await purge(std::move(destination));
    } else if ((req.method() == http::verb::get || req.method() == http::verb::head) &&
               (target.substr(0, target.find('?')) == "/api/connections" ||
                target.substr(0, target.find('?')) == "/api/scheduled")) {
      auto query_at = target.find('?');
      std::string query(query_at == std::string_view::npos ? std::string_view() : target.substr(query_at + 1));
      if (target.starts_with("/api/connections")) r = co_await connections(std::move(query));
      else r = co_await scheduled(std::move(query));
    } else if ((req.method() == http::verb::get || req.method() == http::verb::head) && target == "/metrics") {
      r = co_await metrics();
    } else if (req.method() == http::verb::get && browse_target(target, destination)) {
      auto query_at = target.find('?');
      r = co_await browse(std::move(destination),
                          std::string(query_at == std::string_view::npos ? std::string_view() : target.substr(query_at + 1)));
    } else {
      r = handle(std::string_view(req.method_string().data(), req.method_string().size()), target);
    }
    http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
    res.set(http::field::server, "tandemd");
    res.set(http::field::content_type, r.content_type);
    res.set(http::field::cache_control, "no-store");
    if (r.status == 401) res.set(http::field::www_authenticate, "Basic realm=\"tandem admin\", charset=\"UTF-8\"");
    if (r.retry_after_s > 0) res.set(http::field::retry_after, std::to_string(r.retry_after_s));
    res.keep_alive(req.keep_alive());
    if (!r.pieces.empty()) {
      // The header, then the pieces as they are: one gathered write, no copy into one body.
      http::response<http::empty_body> head;
      head.base() = res.base();
      std::size_t length = 0;
      std::vector<asio::const_buffer> body;
      for (const auto& piece : r.pieces) {
        length += piece.size();
        if (!piece.empty()) body.push_back(asio::buffer(piece));
      }
      head.content_length(length);
      head.keep_alive(req.keep_alive());
      http::response_serializer<http::empty_body> header(head);
      tcp.expires_after(detail::admin_request_timeout);
      co_await http::async_write_header(stream, header, asio::redirect_error(asio::use_awaitable, ec));
      if (!ec && req.method() != http::verb::head)
        co_await asio::async_write(stream, body, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !req.keep_alive()) break;
      continue;
    }
    res.body() = std::move(r.body);
    res.prepare_payload();
    if (req.method() == http::verb::head) res.body().clear();
    tcp.expires_after(detail::admin_request_timeout);
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !req.keep_alive()) break;
  }
}

}  // namespace tandem::broker
