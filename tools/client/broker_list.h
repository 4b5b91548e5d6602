// Broker URLs: which brokers a client connects to, in which order, and how it reconnects.
//
// Accepted forms (ActiveMQ-compatible where ActiveMQ has one):
//   tcp://host:port                  one broker, no reconnect (a lost connection is final)
//   ws://host:port[/path]            STOMP over WebSocket (the broker's ws_listen; path "/"
//                                    by default), in failover lists too
//   host:port                        the same; "stomp://" is accepted as a synonym of "tcp://"
//   failover:(tcp://a:p,tcp://b:q)?initialReconnectDelay=10&maxReconnectDelay=250
//   failover:tcp://a:p,tcp://b:q     parentheses are optional, as in ActiveMQ
//   a:p,b:q                          a bare comma list means failover with default options
// A host may be a name, an IPv4 address or a bracketed IPv6 address ("[::1]:61613"); the port
// defaults to 61613, the STOMP port. Failover options (names as in ActiveMQ's failover
// transport, all optional; an unknown name is an error naming it):
//   initialReconnectDelay  ms before the first retry after a loss          (default 10)
//   maxReconnectDelay      cap of the exponential backoff, ms               (default 250)
//   backOffMultiplier      growth of the delay after each failed round     (default 2)
//   maxReconnectAttempts   failed connects per outage before giving up, -1 = forever (default -1)
//   startupMaxReconnectAttempts  at the first connect, attempts beyond one try of each
//                          broker, -1 = forever                            (default 0)
//   randomize              shuffle the list once at start                   (default false)
// Defaults differ from ActiveMQ's (maxReconnectDelay 30 s, randomize true) on purpose: the
// drill and the bench time takeovers, and a 30 s backoff would measure the client instead of
// the broker; the list order is the operator's preference (the usual master first); and a
// tool started against a dead address should fail at once (startupMaxReconnectAttempts 0),
// not hang.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/outcome/std_result.hpp>

namespace tandem::client {

struct broker_address {
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 61613;
  bool websocket = false;  // ws://: STOMP over WebSocket, one frame per message
  std::string path = "/";  // the HTTP target of the WebSocket upgrade

  // "host:port", "[v6]:port".
  std::string to_string() const;
  friend bool operator==(const broker_address&, const broker_address&) = default;
};

struct broker_list {
  std::vector<broker_address> brokers;  // never empty after a successful parse
  bool failover = false;                // reconnect (to the next broker) after a loss
  std::chrono::milliseconds initial_reconnect_delay{10};
  std::chrono::milliseconds max_reconnect_delay{250};
  double backoff_multiplier = 2.0;
  int max_reconnect_attempts = -1;
  int startup_max_reconnect_attempts = 0;
  bool randomize = false;
};

constexpr std::uint16_t default_stomp_port = 61613;

// Parses one of the forms above. On failure returns errc::bad_url or errc::unknown_url_option
// and, when `why` is given, stores a one-line reason quoting the offending part.
boost::outcome_v2::std_result<broker_list> parse_broker_list(std::string_view url, std::string* why = nullptr);

}  // namespace tandem::client
