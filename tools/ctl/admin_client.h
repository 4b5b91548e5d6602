// A small HTTP client for tandemd's admin port (broker/admin_http.h): the status, destinations
// and purge commands of tandemctl. Credentials come from the environment (basic_authorization). One request per connection ("Connection: close"), each
// with a deadline, so a hung broker (a master stalled on NFS) cannot hang the tool.
//
// Threads: every call blocks the calling thread and runs its own io_context; no state is
// shared between calls.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include <boost/outcome/std_result.hpp>

namespace tandem::ctl {

// Where an admin port is: "http://host:port", "host:port" or "[v6]:port" (port default 8161).
struct admin_url {
  std::string host;
  std::uint16_t port = 8161;
  // "http://host:port", as the user may type it back.
  std::string to_string() const;
};
// False (and `why` says what is wrong) when `text` is none of the forms above.
bool parse_admin_url(std::string_view text, admin_url& out, std::string& why);

struct http_reply {
  unsigned status = 0;
  std::string body;
};

// GET or POST `target`. Errors are connection-level (refused, timed out, reset, not HTTP);
// any HTTP status is a reply. `why` gets one line for the operator naming the URL and the cause.
boost::outcome_v2::std_result<http_reply> http_request(const admin_url& url, std::string_view method,
                                                       std::string_view target, std::chrono::milliseconds timeout,
                                                       std::string& why);

// "Basic <base64 of user:password>" from TANDEM_ADMIN_USER and TANDEM_ADMIN_PASSWORD, or ""
// when TANDEM_ADMIN_USER is unset. Sent with every request: the broker's reads need a user in
// group "metrics" or "admin" (unless admin_open_reads), a purge one in group "admin".
std::string basic_authorization();

// Percent-encodes a destination name for a path segment ("/queue/a b" -> "%2Fqueue%2Fa%20b").
std::string encode_path_segment(std::string_view text);

}  // namespace tandem::ctl
