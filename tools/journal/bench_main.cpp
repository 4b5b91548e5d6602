// tandem-journal-bench: the journal's throughput, recovery time and memory, each beside the
// raw file-system baseline measured in the same run on the same file system, as JSON.
//
// Why a baseline in the same run: an fdatasync costs whatever this disk costs (a laptop
// NVMe, a VM's virtio disk and NFS differ by 100x), so the journal's targets are ratios to
// what write+fdatasync achieves here and now, not absolute numbers.
//
// Phases (each on a fresh directory under --dir, removed afterwards):
//   raw_1k      write 1 KiB + fdatasync, sequentially into a preallocated file
//   raw_64k     write 64 KiB + fdatasync, likewise (the bandwidth a group commit can reach)
//   one_1k      one appender of 1 KiB messages, sync always, each waits for its completion
//   many_1k     64 appenders, each with one 1 KiB append outstanding (a closed loop)
//   (the four alternate over --rounds rounds; medians are compared)
//   recovery    1,000,000 live 1 KiB messages: open from the checkpoint, then full replay
//               with the checkpoints removed; RSS per live message after recovery. With
//               --store DIR the store is kept in DIR and reused by later runs (built only
//               when DIR holds none): a 10-million-message store takes minutes to build,
//               and `--only-recovery --store DIR --skip-full-replay` times (or, under
//               perf record, profiles) just the checkpoint open
//   takeover    a child process fills a store with default options (32 MiB segments,
//               checkpoints every 64 MiB) and is SIGKILLed, leaving no final checkpoint, as
//               a master that dies; then open (recovery) and the first durable 1 KiB append
//               are timed, once with an empty journal and once with --takeover-messages
//               pending (sent by one producer, so its dedup window is rebuilt too),
//               --takeover-rounds times each (p50 and max reported)
// Completions run on an owner thread through options.post, as in the broker.
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "journal/format.h"
#include "journal/fs/file_system.h"
#include "journal/identity.h"
#include "journal/store.h"

namespace {

namespace tj = tandem::journal;
namespace tfs = tandem::fs;
using nlohmann::json;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

[[noreturn]] void die(const std::string& what, std::error_code ec = {}) {
  std::cerr << "tandem-journal-bench: " << what << (ec ? ": " + ec.message() : "") << '\n';
  std::exit(1);
}

// The broker's io thread in miniature: runs posted functions in order on one thread.
class owner_loop {
 public:
  owner_loop() : thread_([this] { run(); }) {}
  ~owner_loop() {
    post({});
    thread_.join();
  }
  void post(std::function<void()> f) {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(f));
    cv_.notify_one();
  }
  std::function<void(std::function<void()>)> poster() {
    return [this](std::function<void()> f) { post(std::move(f)); };
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> f;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !queue_.empty(); });
        f = std::move(queue_.front());
        queue_.pop_front();
      }
      if (!f) return;
      f();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::thread thread_;
};

std::string fs_name(const std::filesystem::path& dir) {
  struct statfs s {};
  if (::statfs(dir.c_str(), &s) != 0) return "unknown";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53: return "ext2/3/4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs";
    case 0x794c7630: return "overlayfs";
    case 0x6969: return "nfs";
    case 0x65735546: return "fuse";
    default: return "other";
  }
}

// CPU seconds (user + system) of the whole process so far.
double cpu_seconds() {
  struct rusage u {};
  ::getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

std::uint64_t rss_bytes() {
  std::ifstream in("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// ---- raw baseline ----------------------------------------------------------------------

json raw_write_sync(const std::filesystem::path& dir, std::size_t block, double seconds) {
  auto& fs = tfs::posix_file_system();
  auto path = dir / ("raw-" + std::to_string(block));
  auto f = fs.open(path, tfs::open_mode::create_exclusive);
  if (!f) die("open " + path.string(), f.error());
  // Preallocated like a journal segment, so fdatasync flushes data, not the file size.
  const std::uint64_t span = block <= 4096 ? (64ull << 20) : (1ull << 30);
  if (auto ec = f.value()->allocate(0, span)) die("fallocate " + path.string(), ec);
  if (auto ec = f.value()->sync()) die("fdatasync " + path.string(), ec);
  std::vector<std::byte> buf(block, std::byte{0x5a});
  std::uint64_t ops = 0, off = 0;
  auto t0 = clock_type::now();
  while (seconds_since(t0) < seconds) {
    if (auto ec = f.value()->write_at(buf, off)) die("write " + path.string(), ec);
    if (auto ec = f.value()->sync()) die("fdatasync " + path.string(), ec);
    ++ops;
    off += block;
    if (off + block > span) off = 0;
  }
  double t = seconds_since(t0);
  f.value().reset();
  std::filesystem::remove(path);
  return {{"block_bytes", block},
          {"ops", ops},
          {"seconds", t},
          {"ops_per_s", ops / t},
          {"mib_per_s", static_cast<double>(ops * block) / t / (1 << 20)}};
}

// ---- journal throughput -----------------------------------------------------------------

tj::message_add message(std::uint64_t seq, std::size_t body) {
  tj::message_add m;
  m.msg_seq = seq;
  m.targets = {"/queue/bench"};
  m.message_id = "id-" + std::to_string(seq);
  m.body.assign(body, 'x');
  return m;
}

std::filesystem::path fresh_store(const std::filesystem::path& base, const std::string& name) {
  auto dir = base / name;
  std::filesystem::remove_all(dir);
  auto made = tj::create_store(tfs::posix_file_system(), dir);
  if (!made) die("create_store " + dir.string(), made.error());
  return dir;
}

std::chrono::microseconds group_linger = tj::options{}.group_linger;  // --group-linger-us

json appenders(const std::filesystem::path& base, int count, double seconds) {
  auto dir = fresh_store(base, "appenders-" + std::to_string(count));
  owner_loop loop;
  tj::options o;
  o.epoch = 1;
  o.broker_name = "bench";
  o.post = loop.poster();
  o.group_linger = group_linger;
  tj::recovery_report rep;
  auto s = tj::store::open(dir, o, rep);
  if (!s) die("open " + dir.string(), s.error());
  auto& store = *s.value();

  // Each appender: append, and on its completion append again until the deadline.
  std::atomic<std::uint64_t> done{0};
  std::atomic<int> running{count};
  std::promise<void> all_done;
  std::error_code first_error;
  auto t0 = clock_type::now();
  auto deadline = t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
  std::function<void()> start_one;  // runs on the owner thread
  std::function<void(std::error_code, std::uint64_t)> on_done = [&](std::error_code ec, std::uint64_t) {
    if (ec && !first_error) first_error = ec;
    ++done;
    if (!ec && clock_type::now() < deadline) {
      start_one();
    } else if (--running == 0) {
      all_done.set_value();
    }
  };
  start_one = [&] { store.append(message(store.allocate_msg_seq(), 1024), on_done); };
  loop.post([&] {
    for (int i = 0; i < count; ++i) start_one();
  });
  all_done.get_future().wait();
  double t = seconds_since(t0);
  if (first_error) die("append", first_error);
  const auto& st = store.stats();
  const double groups = static_cast<double>(st.groups.load());
  const double mean_group = groups == 0 ? 0.0 : static_cast<double>(st.group_records.load()) / groups;
  const auto lingers = st.lingers.load();
  std::promise<std::error_code> closed;
  loop.post([&] {
    auto ec = store.close();
    s.value().reset();  // destroyed on the owner thread, as the broker does
    closed.set_value(ec);
  });
  if (auto ec = closed.get_future().get()) die("close", ec);
  std::filesystem::remove_all(dir);
  return {{"appenders", count},
          {"appends", done.load()},
          {"seconds", t},
          {"appends_per_s", done.load() / t},
          {"mib_per_s", static_cast<double>(done.load()) * 1024 / t / (1 << 20)},
          {"mean_group_records", mean_group},
          {"lingers", lingers}};
}

// ---- recovery and memory ------------------------------------------------------------------

// Fills `dir` (an empty store) with `messages` live 1 KiB messages on one queue.
json build_recovery_store(const std::filesystem::path& dir, std::uint64_t messages) {
  json out;
  owner_loop loop;
  tj::options o;
  o.epoch = 1;
  o.broker_name = "bench";
  o.sync = tj::sync_policy::never;  // building the data set is not what is measured
  o.post = loop.poster();
  tj::recovery_report rep;
  auto s = tj::store::open(dir, o, rep);
  if (!s) die("open " + dir.string(), s.error());
  auto t0 = clock_type::now();
  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t completed = 0;
  std::error_code first_error;
  constexpr std::uint64_t window = 4096;
  for (std::uint64_t issued = 0; issued < messages;) {
    std::uint64_t batch = std::min<std::uint64_t>(window, messages - issued);
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return issued - completed <= window; });
    }
    loop.post([&, batch] {
      for (std::uint64_t i = 0; i < batch; ++i)
        s.value()->append(message(s.value()->allocate_msg_seq(), 1024), [&](std::error_code ec, std::uint64_t) {
          std::lock_guard lock(mu);
          if (ec && !first_error) first_error = ec;
          ++completed;
          cv.notify_all();
        });
    });
    issued += batch;
  }
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return completed == messages; });
  }
  if (first_error) die("append while building", first_error);
  std::promise<std::error_code> closed;
  loop.post([&] {
    auto ec = s.value()->close();
    s.value().reset();
    closed.set_value(ec);  // last: the main thread may leave this scope right after
  });
  if (auto ec = closed.get_future().get()) die("close", ec);
  out["build_seconds"] = seconds_since(t0);
  return out;
}

// A kept store (--store) is opened again by every run, and each open must carry an epoch
// at least the newest in its log (options::epoch): the last one used is kept beside the
// store, in "<store>.epoch".
std::uint64_t next_epoch(const std::filesystem::path& dir, bool kept) {
  if (!kept) return 2;  // built with epoch 1 just now
  const auto path = dir.string() + ".epoch";
  std::uint64_t last = 1;
  if (std::ifstream in(path); in) in >> last;
  std::ofstream(path) << last + 1 << '\n';
  return last + 1;
}

// Opens the store in `dir` as a taking-over master does, times it, and closes it (close
// writes a final checkpoint, so a kept store is ready for the next checkpoint open).
json open_once(const std::filesystem::path& dir, std::uint64_t messages, const char* label, bool measure_rss,
               bool kept) {
  ::malloc_trim(0);
  std::uint64_t rss0 = rss_bytes();
  tj::options o;
  o.epoch = next_epoch(dir, kept);
  o.broker_name = "bench";
  o.body_cache_bytes = 0;
  tj::recovery_report rep;
  const double cpu0 = cpu_seconds();
  auto t0 = clock_type::now();
  auto s = tj::store::open(dir, o, rep);
  double ms = seconds_since(t0) * 1000;
  const double cpu_ms = (cpu_seconds() - cpu0) * 1000;
  if (!s) die(std::string("open for ") + label, s.error());
  // Wall time beyond CPU time is waiting: reads the page cache could not serve, fdatasync.
  json r = {{"wall_ms", ms},
            {"cpu_ms", cpu_ms},
            {"reported_ms", rep.duration.count()},
            {"from_checkpoint", rep.from_checkpoint},
            {"records_replayed", rep.records_replayed},
            {"live_messages", rep.live_messages}};
  if (rep.live_messages != messages) die(std::string(label) + ": recovered a different number of messages");
  if (measure_rss) {
    ::malloc_trim(0);
    std::uint64_t rss1 = rss_bytes();
    r["rss_before"] = rss0;
    r["rss_after"] = rss1;
    r["bytes_per_live_message"] = static_cast<double>(rss1 - rss0) / static_cast<double>(messages);
  }
  if (auto ec = s.value()->close()) die("close", ec);
  return r;
}

// The options of the recovery phase.
struct recovery_plan {
  std::uint64_t messages = 1'000'000;
  std::filesystem::path store;  // --store: kept, built only when it holds no store yet
  int checkpoint_opens = 1;     // --checkpoint-opens
  bool full_replay = true;      // false with --skip-full-replay
};

json recovery(const std::filesystem::path& base, const recovery_plan& plan) {
  const bool kept = !plan.store.empty();
  const std::filesystem::path dir = kept ? plan.store : base / "recovery";
  json out;
  if (!kept || !std::filesystem::exists(dir / tj::format::journal_dir_name)) {
    if (!kept) std::filesystem::remove_all(dir);
    auto made = tj::create_store(tfs::posix_file_system(), dir);
    if (!made) die("create_store " + dir.string(), made.error());
    out = build_recovery_store(dir, plan.messages);
    if (kept) std::ofstream(dir.string() + ".epoch") << 1 << '\n';
  }
  std::uint64_t disk = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / tj::format::journal_dir_name)) disk += e.file_size();
  out["messages"] = plan.messages;
  out["disk_bytes"] = disk;
  out["store_kept"] = kept;

  // The first open is the figure (and its RSS); more opens (--checkpoint-opens) show the
  // spread, and give a profiler more of the phase it is after.
  for (int i = 0; i < plan.checkpoint_opens; ++i) {
    auto r = open_once(dir, plan.messages, "checkpoint recovery", i == 0, kept);
    if (!r["from_checkpoint"].get<bool>()) die("checkpoint recovery: no checkpoint was loaded");
    if (i == 0) out["from_checkpoint"] = r;
    out["from_checkpoint_samples"].push_back(r["wall_ms"]);
  }
  if (plan.full_replay) {
    // Full replay: the same journal without its checkpoints (a kept store's are moved aside
    // and dropped afterwards: the close after the replay writes a fresh one).
    const auto aside = dir / "checkpoints-aside";
    std::filesystem::create_directories(aside);
    for (const auto& e : std::filesystem::directory_iterator(dir / tj::format::journal_dir_name))
      if (e.path().extension() == tj::format::checkpoint_suffix)
        std::filesystem::rename(e.path(), aside / e.path().filename());
    out["full_replay"] = open_once(dir, plan.messages, "full replay", false, kept);
    std::filesystem::remove_all(aside);
  }
  if (!kept) std::filesystem::remove_all(dir);
  return out;
}

// ---- takeover ---------------------------------------------------------------------------

// A producer's send as the broker journals it: with a producer id and seq, so recovery
// also rebuilds the producer's dedup window.
tj::message_add sent(std::uint64_t seq) {
  auto m = message(seq, 1024);
  m.producer_id = "bench-producer";
  m.producer_seq = seq;
  return m;
}

// Fills `dir` in a child process that then dies by SIGKILL (no close, no final checkpoint),
// so the page cache and the files are what a killed master leaves behind.
void build_killed(const std::filesystem::path& dir, std::uint64_t messages) {
  const pid_t pid = ::fork();
  if (pid < 0) die("fork", std::error_code(errno, std::generic_category()));
  if (pid == 0) {
    owner_loop loop;
    tj::options o;
    o.epoch = 1;
    o.broker_name = "bench-killed";
    o.post = loop.poster();
    tj::recovery_report rep;
    auto s = tj::store::open(dir, o, rep);
    if (!s) die("open " + dir.string(), s.error());
    std::mutex mu;
    std::condition_variable cv;
    std::uint64_t completed = 0;
    constexpr std::uint64_t window = 256;
    for (std::uint64_t issued = 0; issued < messages;) {
      const std::uint64_t batch = std::min<std::uint64_t>(window, messages - issued);
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return issued - completed <= window; });
      }
      loop.post([&, batch] {
        for (std::uint64_t i = 0; i < batch; ++i)
          s.value()->append(sent(s.value()->allocate_msg_seq()), [&](std::error_code ec, std::uint64_t) {
            if (ec) die("append while building", ec);
            std::lock_guard lock(mu);
            ++completed;
            cv.notify_all();
          });
      });
      issued += batch;
    }
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return completed == messages; });
    ::raise(SIGKILL);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
    die("the child building " + dir.string() + " did not die by SIGKILL");
}

json takeover(const std::filesystem::path& base, std::uint64_t messages, int rounds) {
  json out;
  for (std::uint64_t pending : {std::uint64_t{0}, messages}) {
    std::vector<double> open_ms, first_ms;
    json samples;
    for (int round = 0; round < rounds; ++round) {
      auto dir = fresh_store(base, "takeover");
      build_killed(dir, pending);
      owner_loop loop;
      tj::options o;
      o.epoch = 2;
      o.broker_name = "bench-new-master";
      o.post = loop.poster();
      tj::recovery_report rep;
      auto t0 = clock_type::now();
      auto s = tj::store::open(dir, o, rep);
      const double opened = seconds_since(t0) * 1000;
      if (!s) die("takeover open " + dir.string(), s.error());
      if (rep.live_messages != pending) die("takeover: recovered a different number of messages");
      std::promise<std::error_code> first;
      loop.post([&] {
        s.value()->append(message(s.value()->allocate_msg_seq(), 1024),
                          [&](std::error_code ec, std::uint64_t) { first.set_value(ec); });
      });
      if (auto ec = first.get_future().get()) die("first append after takeover", ec);
      const double accepted = seconds_since(t0) * 1000;
      open_ms.push_back(opened);
      first_ms.push_back(accepted);
      samples.push_back({{"open_ms", opened},
                         {"first_append_durable_ms", accepted},
                         {"records_replayed", rep.records_replayed},
                         {"from_checkpoint", rep.from_checkpoint},
                         {"segments", rep.segments}});
      std::promise<std::error_code> closed;
      loop.post([&] {
        auto ec = s.value()->close();
        s.value().reset();
        closed.set_value(ec);
      });
      if (auto ec = closed.get_future().get()) die("close after takeover", ec);
      std::filesystem::remove_all(dir);
    }
    auto stats = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return json{{"p50", v[v.size() / 2]}, {"max", v.back()}};
    };
    out[pending == 0 ? "empty" : "pending"] = {{"pending_messages", pending},
                                               {"open_ms", stats(open_ms)},
                                               {"first_append_durable_ms", stats(first_ms)},
                                               {"samples", samples}};
  }
  return out;
}

json verdict(double value, double target, bool at_least) {
  return {{"value", value}, {"target", target}, {"pass", at_least ? value >= target : value <= target}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tandem-journal-bench: journal throughput, recovery and memory beside the raw write+fdatasync "
               "baseline of the same file system; prints JSON"};
  std::string dir_arg;
  double seconds = 3.0;
  std::uint64_t messages = 1'000'000;
  bool skip_recovery = false;
  int rounds = 3;
  std::uint64_t takeover_messages = 100'000;
  int takeover_rounds = 5;
  bool only_takeover = false;
  app.add_option("--dir", dir_arg, "work directory (default: ./tandem-journal-bench.<pid>); removed afterwards");
  app.add_option("--seconds", seconds, "duration of each throughput phase")->capture_default_str();
  app.add_option("--messages", messages, "live 1 KiB messages for the recovery phase")->capture_default_str();
  app.add_option("--rounds", rounds, "alternating rounds of the throughput phases (medians reported)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--skip-recovery", skip_recovery, "only the throughput phases");
  app.add_option("--takeover-messages", takeover_messages, "pending 1 KiB messages for the takeover phase")
      ->capture_default_str();
  app.add_option("--takeover-rounds", takeover_rounds, "repetitions of each takeover case (0 = skip)")
      ->capture_default_str();
  app.add_flag("--only-takeover", only_takeover, "only the takeover phase");
  recovery_plan plan;
  std::string store_arg;
  bool only_recovery = false;
  bool skip_full_replay = false;
  app.add_option("--store", store_arg,
                 "recovery phase: use and keep the store in this directory, building it (--messages) only when "
                 "it holds none, so a 10-million-message store is built once and reopened by later runs");
  app.add_option("--checkpoint-opens", plan.checkpoint_opens,
                 "recovery phase: open from the checkpoint this many times (the first gives the figures)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--skip-full-replay", skip_full_replay, "recovery phase: no full replay");
  app.add_flag("--only-recovery", only_recovery, "only the recovery phase");
  std::int64_t linger_us = group_linger.count();
  app.add_option("--group-linger-us", linger_us, "options.group_linger for the throughput phases (0 = off)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!store_arg.empty()) plan.store = std::filesystem::absolute(store_arg);
  plan.full_replay = !skip_full_replay;
  group_linger = std::chrono::microseconds(linger_us);

  std::filesystem::path base =
      dir_arg.empty() ? std::filesystem::current_path() / ("tandem-journal-bench." + std::to_string(::getpid()))
                      : std::filesystem::path(dir_arg);
  std::filesystem::create_directories(base);
  if (!plan.store.empty()) {
    auto rel = std::filesystem::weakly_canonical(plan.store).lexically_relative(std::filesystem::weakly_canonical(base));
    if (!rel.empty() && *rel.begin() != "..")
      die("--store " + plan.store.string() + " lies inside the work directory " + base.string() +
          ", which is removed afterwards: put it elsewhere");
  }

  json j;
  j["dir"] = base.string();
  j["file_system"] = fs_name(base);
  j["cpus"] = std::thread::hardware_concurrency();
  j["group_linger_us"] = group_linger.count();
  plan.messages = messages;
  if (only_recovery) {
    std::cerr << "journal, recovery of " << messages << " messages...\n";
    j["journal"]["recovery"] = recovery(base, plan);
    std::filesystem::remove_all(base);
    std::cout << j.dump(2) << '\n';
    return 0;
  }
  if (only_takeover) {
    j["journal"]["takeover"] = takeover(base, takeover_messages, std::max(takeover_rounds, 1));
    std::filesystem::remove_all(base);
    std::cout << j.dump(2) << '\n';
    return 0;
  }
  // fdatasync latency drifts on a shared machine (other processes' writeback, VM host), so
  // the baseline and the journal alternate over several rounds and the medians are compared.
  json samples;
  for (int round = 1; round <= rounds; ++round) {
    std::cerr << "round " << round << "/" << rounds << ": raw 1 KiB, raw 64 KiB, one appender, 64 appenders\n";
    samples["raw_1k"].push_back(raw_write_sync(base, 1024, seconds));
    samples["raw_64k"].push_back(raw_write_sync(base, 64 << 10, seconds));
    samples["one_1k"].push_back(appenders(base, 1, seconds));
    samples["many_1k"].push_back(appenders(base, 64, seconds));
  }
  auto median_of = [&](const char* phase, const char* field) {
    std::vector<double> v;
    for (const auto& x : samples[phase]) v.push_back(x[field].get<double>());
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  j["samples"] = samples;
  j["raw"]["write_fdatasync_1k"] = {{"ops_per_s", median_of("raw_1k", "ops_per_s")},
                                    {"mib_per_s", median_of("raw_1k", "mib_per_s")}};
  j["raw"]["write_fdatasync_64k"] = {{"ops_per_s", median_of("raw_64k", "ops_per_s")},
                                     {"mib_per_s", median_of("raw_64k", "mib_per_s")}};
  j["journal"]["one_appender_1k"] = {{"appends_per_s", median_of("one_1k", "appends_per_s")},
                                     {"mib_per_s", median_of("one_1k", "mib_per_s")}};
  j["journal"]["appenders_64_1k"] = {{"appends_per_s", median_of("many_1k", "appends_per_s")},
                                     {"mib_per_s", median_of("many_1k", "mib_per_s")},
                                     {"mean_group_records", median_of("many_1k", "mean_group_records")}};
  if (!skip_recovery) {
    std::cerr << "journal, recovery of " << messages << " messages...\n";
    j["journal"]["recovery"] = recovery(base, plan);
  }
  if (takeover_rounds > 0) {
    std::cerr << "journal, takeover after SIGKILL (empty and " << takeover_messages << " pending)...\n";
    j["journal"]["takeover"] = takeover(base, takeover_messages, takeover_rounds);
  }

  const auto& raw1 = j["raw"]["write_fdatasync_1k"];
  const auto& raw64 = j["raw"]["write_fdatasync_64k"];
  const auto& one = j["journal"]["one_appender_1k"];
  const auto& many = j["journal"]["appenders_64_1k"];
  json& t = j["targets"];
  t["one_appender_vs_raw_1k_rate"] =
      verdict(one["appends_per_s"].get<double>() / raw1["ops_per_s"].get<double>(), 0.8, true);
  t["appenders_64_vs_raw_64k_bandwidth"] =
      verdict(many["mib_per_s"].get<double>() / raw64["mib_per_s"].get<double>(), 0.7, true);
  if (!skip_recovery) {
    const auto& rec = j["journal"]["recovery"];
    double scale = 1'000'000.0 / static_cast<double>(messages);  // targets are for 1M messages
    t["recovery_from_checkpoint_ms"] = verdict(rec["from_checkpoint"]["wall_ms"].get<double>() * scale, 1000, false);
    if (plan.full_replay)
      t["recovery_full_replay_ms"] = verdict(rec["full_replay"]["wall_ms"].get<double>() * scale, 3000, false);
    t["bytes_per_live_message"] =
        verdict(rec["from_checkpoint"]["bytes_per_live_message"].get<double>(), 128, false);
  }
  std::filesystem::remove_all(base);
  std::cout << j.dump(2) << '\n';
  return 0;
}
