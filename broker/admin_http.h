// The admin HTTP port (Boost.Beast): read-only JSON and Prometheus views of the broker, open
// while slave too so an operator or a load balancer can see which process is master.
//
//   GET /health            {"ok", "role": "master"|"slave"|"starting"|"stopping", "epoch",
//                           "store", "broker_name", "holder" (slave: who holds the lock)}
//                          200 when role is master, 503 otherwise (load balancers route by it)
//   GET /metrics           Prometheus text exposition format 0.0.4. The per-destination
//                          families are rendered metrics_destination_slice destinations per
//                          turn of the io thread (metrics(), issue 17) and sent as pieces, so
//                          50,000 destinations (29 MB) do not hold up the clients.
//   GET /api/destinations  every destination (engine::destination_json: queues, then topics,
//                          by name), as one JSON array built destination_row_slice rows per
//                          turn of the io thread and sent as pieces (issue 17); with
//                          ?limit= one page (console_api.h, admin_destinations.cpp), the
//                          filter and sort read destination_key_slice destinations per turn
//                          and only the page's rows built. 503 while slave.
//   GET /api/connections?offset=0&limit=100&filter=app&sort=frames_in
//                          one page of the sessions, always (issue 17): {"total", "matched",
//                          "offset", "limit", "sort", "items"}, items as engine::connection_json
//                          in session order (or by a figure, largest first: frames_in,
//                          messages_in, messages_out, backlog_bytes, subscriptions), filtered
//                          by a case-insensitive substring of remote, login or client_id;
//                          limit 1..1000, default 100. Built in slices (connections()), so
//                          10,000 sessions do not hold up the clients. 503 while slave.
//   GET /api/group         {"members": [{"admin_url", "self"?, "health" | "error"}]}: this
//                          broker's /health and its peers' (group_admin_urls, the holder)
//   GET /console           the web console (broker/console/, console_api.h); with
//                          ?limit=&offset=&filter=&sort= /api/destinations answers one page
//   GET /api/jolokia/read/<mbean>[/<attribute>]
//                          ActiveMQ's Jolokia read shape for queue and broker figures
//                          (broker/jolokia.h; KEDA's ActiveMQ scaler), 503 while slave. A
//                          destination is looked up by name; the broker MBean's totals are
//                          summed destination_key_slice destinations per turn (issue 17).
//   POST /api/destinations/<percent-encoded name>/purge
//                          drops the destination's pending messages (engine::purge); 200
//                          {"destination", "purged"} once the journal removes are durable,
//                          404 no such destination, 503 while slave, 500 journal error.
//                          The only request that changes anything.
//   GET /api/destinations/<percent-encoded /queue/ name>/browse?after=SEQ&limit=N
//                          the first N (default 20, at most 200) messages pending on the queue
//                          after msg_seq SEQ (default 0: from the head), headers and a body
//                          preview, nothing consumed (engine::browse_json): {"destination",
//                          "messages", "more", "next"}; page on with after=next. Message
//                          bodies are data, not figures: it needs a user in group "admin"
//                          even with admin_open_reads. Read in slices of browse_slice
//                          messages; bodies not in memory are read on the store's reader
//                          thread (engine::browse_json), so a hung mount holds up only this
//                          request (504 after 30 s per slice), not the clients; the slices
//                          keep the reader's queue short for the consumers' reads.
//                          404 no such queue, 503 while slave.
//
// Access (admin_guard.h, issue 17): Host must name this port; a POST must carry HTTP Basic
// credentials of a user in group "admin", must not come from a foreign Origin and must not be
// a "simple" cross-site request (it needs Content-Type: application/json or an X-Tandem-Admin
// header); GET /metrics and /api/* need a user in "admin" or "metrics" unless
// admin_access::open_reads. 401 (with WWW-Authenticate), 403 (host, origin, group), 415 (simple
// request) and 429 (throttled, with Retry-After) say which check refused and what to do.
//
// HTTPS (admin_tls_listen): the same requests and checks behind a TLS handshake with the
// broker's TLS context (tls.h), so HTTP Basic credentials are not sent in the clear. A
// client that does not complete the handshake within the request timeout is dropped
// unanswered (and logged).
//
// Threads and ownership: runs on the broker's executor like everything else, so the sources
// may read broker state without locks. Sources are called per request; they must be cheap
// and must not block (no file-system calls: the store may be an NFS mount that hangs).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/asio.h"
#include "broker/config.h"
#include "broker/destination_listing.h"
#include "broker/prometheus.h"
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace boost::asio::ssl {
class context;
}

namespace tandem::broker {

// What the admin port lets through without credentials, and the names it answers to.
struct admin_access {
  bool open_reads = false;                 // GET /metrics and /api/* without credentials
  std::vector<std::string> allowed_hosts;  // Host / Origin names besides its address and localhost
  std::vector<std::string> group_admin_urls;  // the other brokers' admin ports, for /api/group
};

// The answer of admin_sources::authenticate.
struct admin_identity {
  enum class outcome { accepted, refused, throttled };
  outcome result = outcome::refused;
  std::vector<std::string> groups;
  std::string detail;             // refused / throttled: for the 401 / 429 body
  unsigned retry_after_s = 0;     // throttled
};

struct admin_sources {
  std::function<nlohmann::json()> health;         // must set "role"
  std::function<std::string()> metrics;           // Prometheus text, built in one go (handle())
  // GET /metrics in slices (metrics()): metrics_slice renders the per-destination samples of
  // up to `max` more destinations into `scrape` and returns true once all are in (at once
  // when there are none: a slave); metrics_sliced then builds the whole text with them, in pieces
  // sent one after the other (no copy of 29 MB into one string).
  std::function<bool(prometheus::sliced_families& scrape, std::size_t max)> metrics_slice;
  std::function<std::vector<std::string>(prometheus::sliced_families& scrape)> metrics_sliced;
  std::function<nlohmann::json()> destinations;   // empty function or null json: 503
  // Destinations a slice at a time (GET /api/destinations, Jolokia; destination_listing.h):
  // destination_figures is engine::destination_figures_after (nullopt while slave),
  // destination one row (engine::destination_json; null when there is none, or slave).
  // Called many times per request on the broker's executor. Without them, handle()'s
  // answers from `destinations` (test doubles).
  std::function<std::optional<destination_slice>(destination_cursor& at, std::size_t max, const std::string& lower_filter)>
      destination_figures;
  std::function<nlohmann::json(const std::string& name, bool topic)> destination;
  // Connections, a page at a time (GET /api/connections): connection_keys lists up to
  // `max` sessions with an id above `after`, in id order, that match `filter` (lowercase;
  // "" every one), each with figure `sort` (0 for an unknown name); nullopt while slave.
  // connection is one session's row, null when it has gone. Both are called many times per
  // request on the broker's executor and must be cheap (no JSON for the sessions skipped).
  struct connection_key {
    std::uint64_t session = 0;
    std::uint64_t figure = 0;
  };
  struct connection_slice {
    std::vector<connection_key> matched;
    std::size_t looked_at = 0;  // sessions in the slice, matched or not
    std::uint64_t last = 0;     // the last session id looked at: the next slice's `after`
    bool done = false;          // no session after `last`
  };
  std::function<std::optional<connection_slice>(std::uint64_t after, std::size_t max, const std::string& filter,
                                                const std::string& sort)>
      connection_keys;
  std::function<nlohmann::json(std::uint64_t session)> connection;
  // Purge: called with the decoded destination name; must call `reply` exactly once, now or
  // later on the broker's executor, with the status and the JSON body.
  using purge_reply = std::function<void(unsigned status, nlohmann::json body)>;
  std::function<void(std::string destination, purge_reply reply)> purge;
  // Browse: calls `reply` once, now or later on the broker's executor, with 200 and up to
  // `limit` messages of queue `queue` after msg_seq `after` (engine::browse_json: "messages",
  // "more", "next"), or with an error body and 404 / 503. Called once per slice of a page;
  // must not block (bodies are read on the store's reader thread).
  std::function<void(const std::string& queue, std::uint64_t after, std::size_t limit, purge_reply reply)> browse;
  // Checks a login and password (peer = the client's address); calls `done` exactly once on
  // the broker's executor. Empty: every credential is refused (no users configured).
  // Scheduled messages (AMQ_SCHEDULED_*): a page of pending entries (GET /api/scheduled?
  // offset=N&limit=M); cancelling a job id, or every job with "" (POST
  // /api/scheduled/<percent-encoded job id>/cancel, POST /api/scheduled/cancel-all). Both
  // call `reply` exactly once, like purge (the page once its entries are read off the io
  // thread: engine::scheduled_json).
  std::function<void(std::size_t offset, std::size_t limit, purge_reply reply)> scheduled;
  std::function<void(std::string job_id, purge_reply reply)> cancel_scheduled;
  using authenticate_reply = std::function<void(admin_identity)>;
  std::function<void(std::string login, std::string password, std::string peer, authenticate_reply done)> authenticate;
};

class admin_http {
 public:
  // With `tls` (make_tls_context; it must outlive this object) every connection is HTTPS.
  admin_http(asio::any_io_executor executor, admin_sources sources, admin_access access = {},
             std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ~admin_http();
  admin_http(const admin_http&) = delete;
  admin_http& operator=(const admin_http&) = delete;

  boost::system::error_code open(const endpoint_address& address, asio::ip::tcp::endpoint& bound);
  void start();
  // Closes the listener; requests in progress finish or time out (5 s).
  void stop();

  // The response to one request target (exposed for unit tests): status and body.
  struct response {
    unsigned status = 200;
    std::string content_type;
    std::string body;
    unsigned retry_after_s = 0;  // 429: the Retry-After header
    // When not empty, the body instead of `body`: sent one after the other (GET /metrics).
    std::vector<std::string> pieces;
  };
  response handle(std::string_view method, std::string_view target) const;
  // The destination name of a purge request target ("/api/destinations/%2Fqueue%2Fa/purge"
  // -> "/queue/a"), or false when `target` is not one or its encoding is bad.
  static bool purge_target(std::string_view target, std::string& destination);
  // The job id of a cancel request target ("/api/scheduled/ID%3Aa-1/cancel" -> "ID:a-1";
  // "/api/scheduled/cancel-all" -> ""), or false when `target` is not one.
  static bool cancel_target(std::string_view target, std::string& job_id);
  // The query of GET /api/scheduled: offset (default 0) and limit (1..1000, default 100).
  static bool scheduled_page(std::string_view query, std::size_t& offset, std::size_t& limit);
  // The destination of a browse request target ("/api/destinations/<encoded>/browse", before any '?').
  static bool browse_target(std::string_view target, std::string& destination);
  static constexpr std::size_t browse_slice = 10;
  // GET /api/connections?<query> and GET /api/scheduled?<query> (exposed for unit tests:
  // run them on the executor).
  asio::awaitable<response> connections(std::string query);
  asio::awaitable<response> scheduled(std::string query);
  // GET /metrics, the per-destination families metrics_destination_slice destinations per
  // turn of the io thread (exposed for unit tests: run it on the executor). Without
  // metrics_slice, handle()'s answer.
  asio::awaitable<response> metrics();
  static constexpr std::size_t metrics_destination_slice = 500;
  // GET /api/destinations?<query> (admin_destinations.cpp) and GET /api/jolokia/read/...
  // (exposed for unit tests: run them on the executor). Without destination_figures and
  // destination, handle()'s answers.
  asio::awaitable<response> destinations(std::string query);
  asio::awaitable<response> jolokia(std::string target);
  // Destinations whose figures are read, and rows built, per turn of the io thread.
  static constexpr std::size_t destination_key_slice = 1000;
  static constexpr std::size_t destination_row_slice = 64;
  // Sessions looked at, and rows built, per turn of the io thread (connections()).
  static constexpr std::size_t connection_key_slice = 512;
  static constexpr std::size_t connection_row_slice = 64;

 private:
  // Calls `slice` until it returns true, with a turn of the io thread between two calls (the
  // clients' work that came meanwhile runs first): every listing that must look at each
  // destination or session takes them a slice per call. `slice` must outlive the wait (a
  // named local of the caller, not a temporary: GCC 12, see serve()).
  asio::awaitable<void> in_turns(const std::function<bool()>& slice);
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(asio::ip::tcp::socket socket);
  asio::awaitable<void> tls_session(asio::ip::tcp::socket socket);
  // Reads requests from `stream` (a beast::tcp_stream, or TLS over one) and answers them.
  template <class Stream>
  asio::awaitable<void> serve(Stream& stream);
  asio::awaitable<response> purge(std::string destination);
  asio::awaitable<response> cancel_scheduled(std::string job_id);
  // Calls `call` with a reply and waits (30 s at most) for it: the status and body, or
  // nullopt at the deadline (the engine went away, or the store hangs).
  asio::awaitable<std::optional<std::pair<unsigned, nlohmann::json>>> await_reply(
      std::function<void(admin_sources::purge_reply)> call);
  // Calls `source` and waits (30 s at most) for its reply; 503 when it is empty (a slave).
  asio::awaitable<response> wait_reply(const std::function<void(std::string, admin_sources::purge_reply)>& source,
                                       std::string argument, const char* what);
  asio::awaitable<response> browse(std::string queue, std::string query);
  asio::awaitable<std::optional<response>> check_access(const boost::beast::http::request<boost::beast::http::string_body>& req,
                                                        const asio::ip::tcp::socket& socket);
  asio::awaitable<nlohmann::json> group();
  asio::awaitable<nlohmann::json> peer_health(std::string url);
  asio::awaitable<admin_identity> authenticate(std::string login, std::string password, std::string peer);

  asio::any_io_executor executor_;
  admin_sources sources_;
  admin_access access_;
  std::shared_ptr<boost::asio::ssl::context> tls_;  // null: plain HTTP
  asio::ip::tcp::acceptor acceptor_;
  bool stopping_ = false;
};

}  // namespace tandem::broker
