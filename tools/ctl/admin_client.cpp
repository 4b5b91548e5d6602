#include "tools/ctl/admin_client.h"

#include "broker/asio.h"  // before Beast, which includes Asio
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdlib>

#include <fmt/format.h>
#include <openssl/evp.h>

namespace tandem::ctl {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

std::string admin_url::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("http://[{}]:{}", host, port);
  return fmt::format("http://{}:{}", host, port);
}

bool parse_admin_url(std::string_view text, admin_url& out, std::string& why) {
  std::string_view rest = text;
  if (rest.substr(0, 7) == "http://") rest.remove_prefix(7);
  else if (rest.find("://") != std::string_view::npos) {
    why = fmt::format("admin URL \"{}\": only http:// is served by tandemd's admin port", text);
    return false;
  }
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) {
    why = fmt::format("admin URL \"{}\": expected http://HOST:PORT without a path", text);
    return false;
  }
  admin_url u;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) {
      why = fmt::format("admin URL \"{}\": missing ']' after an IPv6 address", text);
      return false;
    }
    u.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        why = fmt::format("admin URL \"{}\": expected ':PORT' after ']'", text);
        return false;
      }
      port = rest.substr(1);
    }
  } else {
    auto colon = rest.rfind(':');
    u.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port = rest.substr(colon + 1);
  }
  if (u.host.empty()) {
    why = fmt::format("admin URL \"{}\": no host", text);
    return false;
  }
  if (!port.empty()) {
    unsigned value = 0;
    bool digits = port.size() <= 5;
    for (char c : port) {
      digits = digits && c >= '0' && c <= '9';
      if (digits) value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (!digits || value == 0 || value > 65535) {
      why = fmt::format("admin URL \"{}\": bad port \"{}\"", text, port);
      return false;
    }
    u.port = static_cast<std::uint16_t>(value);
  }
  out = std::move(u);
  return true;
}

std::string encode_path_segment(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
        c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::string basic_authorization() {
  const char* user = std::getenv("TANDEM_ADMIN_USER");
  const char* password = std::getenv("TANDEM_ADMIN_PASSWORD");
  if (!user || !*user) return {};
  std::string plain = fmt::format("{}:{}", user, password ? password : "");
  std::string encoded(4 * ((plain.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()), reinterpret_cast<const unsigned char*>(plain.data()),
                          static_cast<int>(plain.size()));
  encoded.resize(static_cast<std::size_t>(n));
  return "Basic " + encoded;
}

namespace {

asio::awaitable<void> exchange(const admin_url& url, http::verb verb, std::string target, std::chrono::milliseconds timeout,
                               http::response<http::string_body>& res, error_code& ec, const char*& step) {
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  step = "cannot resolve the host";
  auto endpoints = co_await resolver.async_resolve(url.host, std::to_string(url.port), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  beast::tcp_stream stream(executor);
  // One deadline for the whole exchange: a broker that accepts and never answers (stopped,
  // or blocked) is reported as timed out, not waited for.
  stream.expires_after(timeout);
  step = "cannot connect";
  co_await stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  http::request<http::empty_body> req{verb, target, 11};
  // Host names the port too: the broker refuses a Host that is not one of its names.
  req.set(http::field::host, url.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", url.host, url.port)
                                                                      : fmt::format("{}:{}", url.host, url.port));
  req.set(http::field::user_agent, "tandemctl");
  if (auto auth = basic_authorization(); !auth.empty()) req.set(http::field::authorization, auth);
  // Marks a state-changing request as not one a web page could send (broker/admin_guard.h).
  if (verb != http::verb::get && verb != http::verb::head) req.set("X-Tandem-Admin", "1");
  req.set(http::field::connection, "close");
  req.prepare_payload();
  step = "cannot send the request";
  co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  beast::flat_buffer buffer;
  step = "no answer";
  co_await http::async_read(stream, buffer, res, asio::redirect_error(asio::use_awaitable, ec));
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

}  // namespace

boost::outcome_v2::std_result<http_reply> http_request(const admin_url& url, std::string_view method, std::string_view target,
                                                       std::chrono::milliseconds timeout, std::string& why) {
  asio::io_context io;
  http::response<http::string_body> res;
  error_code ec;
  const char* step = "";
  http::verb verb = http::string_to_verb(beast::string_view(method.data(), method.size()));
  asio::co_spawn(io, exchange(url, verb, std::string(target), timeout, res, ec, step), asio::detached);
  io.run();
  if (ec) {
    std::string hint;
    if (ec == asio::error::connection_refused)
      hint = " (is tandemd running there, with admin_listen set to this address?)";
    else if (ec == beast::error::timeout)
      hint = fmt::format(" (no answer within {} ms: the broker may be stopped or stalled on its store)", timeout.count());
    why = fmt::format("{}: {}: {}{}", url.to_string(), step, ec == beast::error::timeout ? "timed out" : ec.message(), hint);
    return std::error_code(ec);
  }
  return http_reply{res.result_int(), std::move(res.body())};
}

}  // namespace tandem::ctl
