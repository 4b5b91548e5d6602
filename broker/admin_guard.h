// Who may do what on the admin port (issue 17): the checks of one HTTP request before it
// reaches a handler. Pure functions over header values, no sockets (tests call them directly;
// admin_http.cpp applies them in this order):
//
//   1. Host must name this port: its address, localhost, or a name in admin_allowed_hosts.
//      A DNS-rebinding page reaches us with its own name in Host ("evil.example:8161").
//      Every request, /health too.
//   2. A state-changing request (POST) must not be one a web page can send without asking:
//      an Origin other than this port's is refused, Sec-Fetch-Site "cross-site" is refused,
//      and it needs "Content-Type: application/json" or an "X-Tandem-Admin" header, either
//      of which makes a browser send a CORS preflight that we never answer with
//      Access-Control-Allow-*. (The "simple" text/plain POST of issue 17 purged 500 messages.)
//   3. Credentials: HTTP Basic, checked against the users of the config (the same users and
//      the same throttling as STOMP logins). POST needs group "admin", and so does GET of a
//      queue's messages (/api/destinations/NAME/browse: bodies are data, not figures; its
//      Origin is checked as in 2, a read needs no preflight header); GET /metrics and
//      /api/* need "admin" or "metrics" unless admin_open_reads is true; GET /health is open
//      to every caller that passes 1 (load balancers route by it).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem::broker::admin_guard {

// What a request needs.
enum class access { open, read, admin };
access required_access(std::string_view method, std::string_view target, bool open_reads);

// The names this port answers to, as "host:port" (IPv6 in brackets): the local address of
// the connection, localhost / 127.0.0.1 / [::1] at the port, and each `extra` name (a name
// without a port gets the port).
std::vector<std::string> own_names(std::string_view local_address, unsigned short port,
                                   const std::vector<std::string>& extra);

// Host header check: "host:port" must be one of `names`; a Host without a port matches a
// name's host part. Case-insensitive. An empty Host (HTTP/1.0) is refused.
bool host_allowed(std::string_view host, const std::vector<std::string>& names);

// Origin header check: "http(s)://host[:port]" whose authority is one of `names`. "null" and
// anything else are refused.
bool origin_allowed(std::string_view origin, const std::vector<std::string>& names);

// True when a browser could have sent this POST cross-site without a preflight: the content
// type is absent or one of the three "simple" ones and there is no X-Tandem-Admin header.
bool is_simple_request(std::string_view content_type, bool has_custom_header);

// Login and password of an "Authorization: Basic <base64>" header, or nullopt.
std::optional<std::pair<std::string, std::string>> basic_credentials(std::string_view authorization);

// Whether `groups` grant `needed`.
bool grants(const std::vector<std::string>& groups, access needed);

}  // namespace tandem::broker::admin_guard
