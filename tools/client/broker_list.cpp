#include "tools/client/broker_list.h"

#include <charconv>
#include <cmath>

#include "tools/client/errc.h"

namespace tandem::client {
namespace {

using boost::outcome_v2::std_result;

std::error_code fail(std::string* why, errc code, std::string reason) {
  if (why) *why = std::move(reason);
  return make_error_code(code);
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

template <class Int>
bool parse_int(std::string_view text, Int& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

// One "tcp://host:port", "stomp://host:port", "ws://host:port[/path]" or "host:port".
std_result<broker_address> parse_one(std::string_view item, std::string* why) {
  const std::string_view original = item;
  broker_address address;
  if (starts_with_ci(item, "tcp://")) {
    item.remove_prefix(6);
  } else if (starts_with_ci(item, "stomp://")) {
    item.remove_prefix(8);
  } else if (starts_with_ci(item, "ws://")) {
    item.remove_prefix(5);
    address.websocket = true;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      address.path = std::string(item.substr(slash));
      item = item.substr(0, slash);
    }
  } else if (auto scheme = item.find("://"); scheme != std::string_view::npos) {
    return fail(why, errc::bad_url, "unsupported scheme in '" + std::string(original) + "' (use tcp:// or ws://)");
  }
  // Per-broker options ("tcp://h:p?x=y") and paths are ActiveMQ transport options we do not
  // implement; refusing them is better than silently ignoring a setting.
  if (item.find_first_of("?/") != std::string_view::npos) {
    return fail(why, errc::unknown_url_option, "options or path in broker '" + std::string(original) + "' are not supported");
  }
  std::string_view port_text;
  if (!item.empty() && item.front() == '[') {
    auto close = item.find(']');
    if (close == std::string_view::npos || close == 1) {
      return fail(why, errc::bad_url, "bad IPv6 address in '" + std::string(original) + "'");
    }
    address.host = std::string(item.substr(1, close - 1));
    auto rest = item.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail(why, errc::bad_url, "expected ':port' after ']' in '" + std::string(original) + "'");
      port_text = rest.substr(1);
      if (port_text.empty()) return fail(why, errc::bad_url, "empty port in '" + std::string(original) + "'");
    }
  } else {
    auto colon = item.rfind(':');
    if (colon != std::string_view::npos && item.find(':') != colon) {
      return fail(why, errc::bad_url, "IPv6 address must be bracketed in '" + std::string(original) + "'");
    }
    address.host = std::string(item.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = item.substr(colon + 1);
      if (port_text.empty()) return fail(why, errc::bad_url, "empty port in '" + std::string(original) + "'");
    }
  }
  if (address.host.empty()) return fail(why, errc::bad_url, "missing host in '" + std::string(original) + "'");
  if (!port_text.empty()) {
    unsigned port = 0;
    if (!parse_int(port_text, port) || port == 0 || port > 65535) {
      return fail(why, errc::bad_url, "bad port '" + std::string(port_text) + "' in '" + std::string(original) + "'");
    }
    address.port = static_cast<std::uint16_t>(port);
  }
  return address;
}

std::error_code parse_brokers(std::string_view text, broker_list& list, std::string* why) {
  std::size_t start = 0;
  while (true) {
    auto comma = text.find(',', start);
    auto item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) return fail(why, errc::bad_url, "empty broker in list '" + std::string(text) + "'");
    auto one = parse_one(item, why);
    if (!one) return one.error();
    list.brokers.push_back(std::move(one).value());
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return {};
}

std::error_code parse_option(std::string_view key, std::string_view value, broker_list& list, std::string* why) {
  auto bad_value = [&] {
    return fail(why, errc::bad_url, "bad value '" + std::string(value) + "' for failover option " + std::string(key));
  };
  if (key == "initialReconnectDelay" || key == "maxReconnectDelay") {
    std::int64_t ms = 0;
    if (!parse_int(value, ms) || ms < 0) return bad_value();
    (key == "initialReconnectDelay" ? list.initial_reconnect_delay : list.max_reconnect_delay) = std::chrono::milliseconds(ms);
  } else if (key == "backOffMultiplier") {
    // std::from_chars for double is in GCC 12's libstdc++.
    double m = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), m);
    if (ec != std::errc{} || end != value.data() + value.size() || !(m >= 1.0) || !std::isfinite(m)) return bad_value();
    list.backoff_multiplier = m;
  } else if (key == "maxReconnectAttempts" || key == "startupMaxReconnectAttempts") {
    int n = 0;
    if (!parse_int(value, n) || n < -1) return bad_value();
    (key == "maxReconnectAttempts" ? list.max_reconnect_attempts : list.startup_max_reconnect_attempts) = n;
  } else if (key == "randomize") {
    if (value == "true") list.randomize = true;
    else if (value == "false") list.randomize = false;
    else return bad_value();
  } else {
    return fail(why, errc::unknown_url_option, "unknown failover option '" + std::string(key) + "'");
  }
  return {};
}

}  // namespace

std::string broker_address::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std_result<broker_list> parse_broker_list(std::string_view url, std::string* why) {
  broker_list list;
  while (!url.empty() && url.front() == ' ') url.remove_prefix(1);
  while (!url.empty() && url.back() == ' ') url.remove_suffix(1);
  if (url.empty()) return fail(why, errc::bad_url, "empty broker URL");

  if (starts_with_ci(url, "failover:")) {
    list.failover = true;
    auto rest = url.substr(9);
    std::string_view brokers, options;
    if (!rest.empty() && rest.front() == '(') {
      auto close = rest.find(')');
      if (close == std::string_view::npos) return fail(why, errc::bad_url, "missing ')' in '" + std::string(url) + "'");
      brokers = rest.substr(1, close - 1);
      auto tail = rest.substr(close + 1);
      if (!tail.empty()) {
        if (tail.front() != '?') return fail(why, errc::bad_url, "unexpected '" + std::string(tail) + "' after ')'");
        options = tail.substr(1);
        if (options.empty()) return fail(why, errc::bad_url, "empty option list after '?'");
      }
    } else {
      auto q = rest.find('?');
      brokers = rest.substr(0, q);
      if (q != std::string_view::npos) {
        options = rest.substr(q + 1);
        if (options.empty()) return fail(why, errc::bad_url, "empty option list after '?'");
      }
    }
    if (auto ec = parse_brokers(brokers, list, why)) return ec;
    std::size_t start = 0;
    while (!options.empty()) {
      auto amp = options.find('&', start);
      auto pair = options.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
      auto eq = pair.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        return fail(why, errc::bad_url, "failover option '" + std::string(pair) + "' is not key=value");
      }
      if (auto ec = parse_option(pair.substr(0, eq), pair.substr(eq + 1), list, why)) return ec;
      if (amp == std::string_view::npos) break;
      start = amp + 1;
    }
    if (list.max_reconnect_delay < list.initial_reconnect_delay) list.max_reconnect_delay = list.initial_reconnect_delay;
    return list;
  }

  if (auto ec = parse_brokers(url, list, why)) return ec;
  list.failover = list.brokers.size() > 1;
  return list;
}

}  // namespace tandem::client
