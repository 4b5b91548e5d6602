// `tandem-journal summary DIR`: what the store holds. Two readings of the store:
// - the log as it is: segments, records by type, epochs, damage and fenced records, from a
//   scan of every segment (journal::scan);
// - what a broker would recover: the live index built by the broker's own recovery code,
//   read-only (journal::rebuild_index: the same checkpoint choice and the same replay
//   through apply_record), so the summary cannot drift from what a master serves. When the
//   broker's default mode would refuse the store (mid-log corruption), the index shown is
//   what salvage mode recovers, and the refusal is shown beside it.
#include <map>
#include <set>

#include <fmt/format.h>

#include "journal/errc.h"
#include "journal/reader.h"
#include "tools/journal/detail/open_store.h"
#include "tools/journal/detail/render.h"
#include "tools/journal/journal_tool.h"
#include "tools/journal/read_only_file_system.h"

namespace tandem::tools {

using namespace detail;

namespace {

// The log as the scan sees it.
struct log_facts {
  journal::scan_summary sum;
  json segments = json::array();
  std::map<std::string, std::uint64_t> by_type;
  std::set<std::uint64_t> epochs, fenced_epochs;
  std::uint64_t disk_bytes = 0, record_bytes = 0, decode_errors = 0;
  std::uint64_t fenced = 0, fenced_first = 0, fenced_last = 0;
  std::vector<journal::scan_item> damages;
};

journal::result<log_facts> scan_log(fs::file_system& fs, const std::filesystem::path& dir) {
  log_facts f;
  journal::scan_options so;
  so.decode = true;
  auto res = journal::scan(fs, dir, so, [&](const journal::scan_item& it) {
    switch (it.kind) {
      case journal::scan_item_kind::segment: {
        f.disk_bytes += it.file_size;
        json s = {{"file", it.file.string()}, {"seq", seg_name(it.segment_seq)}, {"size", it.file_size}};
        s["epoch"] = it.segment ? json(it.segment->epoch) : json(nullptr);
        if (it.segment) f.epochs.insert(it.segment->epoch);
        f.segments.push_back(std::move(s));
        break;
      }
      case journal::scan_item_kind::record:
        f.record_bytes += it.record_bytes;
        ++f.by_type[std::string(journal::to_string(it.header.type))];
        f.epochs.insert(it.header.epoch);
        if (!it.payload) ++f.decode_errors;
        break;
      case journal::scan_item_kind::damage: f.damages.push_back(it); break;
      case journal::scan_item_kind::fenced:
        if (fenced_garbage(it)) break;
        if (f.fenced == 0) f.fenced_first = it.header.lsn;
        f.fenced_last = it.header.lsn;
        ++f.fenced;
        f.fenced_epochs.insert(it.header.epoch);
        break;
    }
    return true;
  });
  if (!res) return res.error();
  f.sum = res.value();
  return f;
}

// What recovery builds, in the broker's default mode, else in salvage mode.
struct recovered {
  journal::index idx;
  journal::recovery_mode mode = journal::recovery_mode::tolerate_torn_tail;
  journal::recovery_report report;
  std::optional<journal::damage> refused;  // why the default mode refuses
};

journal::result<recovered> recover(fs::file_system& fs, const std::filesystem::path& dir) {
  recovered r;
  auto idx = journal::rebuild_index(fs, dir, r.mode, r.report);
  if (!idx && idx.error() == journal::errc::mid_log_corruption) {
    r.refused = r.report.refused;
    r.mode = journal::recovery_mode::salvage;
    idx = journal::rebuild_index(fs, dir, r.mode, r.report);
  }
  if (!idx) return idx.error();
  r.idx = std::move(idx.value());
  return r;
}

json damage_json(const journal::damage& d) {
  return {{"file", d.file.string()}, {"offset", d.offset}, {"lsn", d.lsn}, {"bytes", d.bytes}, {"reason", d.reason}};
}

json recovery_json(const recovered& r) {
  json j;
  j["mode"] = r.mode == journal::recovery_mode::salvage ? "salvage" : "tolerate_torn_tail";
  j["refused"] = r.refused ? damage_json(*r.refused) : json(nullptr);
  j["torn_tail"] = r.report.torn_tail ? damage_json(*r.report.torn_tail) : json(nullptr);
  json skipped = json::array();
  for (const auto& d : r.report.skipped) skipped.push_back(damage_json(d));
  j["skipped"] = skipped;
  j["from_checkpoint"] = r.report.from_checkpoint ? json(r.report.checkpoint_file.string()) : json(nullptr);
  j["records_replayed"] = r.report.records_replayed;
  j["last_lsn"] = r.report.last_lsn;
  return j;
}

json live_json(const journal::index& idx) {
  json targets = json::array();
  for (const auto& [target, msgs] : idx.targets()) {
    std::uint64_t bytes = 0;
    for (const auto& [seq, ref] : msgs) bytes += ref.where.size;
    targets.push_back({{"target", target},
                       {"messages", msgs.size()},
                       {"bytes", bytes},
                       {"first_msg_seq", msgs.begin()->first},
                       {"last_msg_seq", msgs.rbegin()->first}});
  }
  std::uint64_t window_seqs = 0;
  for (const auto& [producer, window] : idx.producer_windows()) window_seqs += window.size();
  return {{"messages", idx.live_messages()},
          {"bytes", idx.live_bytes()},
          {"targets", targets},
          {"next_msg_seq", idx.next_msg_seq()},
          {"dedup", {{"producers", idx.producer_windows().size()}, {"seqs", window_seqs}}},
          {"digest", fmt::format("{:016x}", journal::content_digest(idx))}};
}

json checkpoints_json(fs::file_system& fs, const std::filesystem::path& dir, json& invalid) {
  json newest = nullptr;
  invalid = json::array();
  auto ckpts = journal::list_checkpoints(fs, dir);
  if (!ckpts) return newest;
  for (const auto& c : ckpts.value()) {
    if (c.error) {
      invalid.push_back({{"file", c.file.string()}, {"reason", c.reason}});
    } else if (newest.is_null()) {
      newest = {{"file", c.file.string()},
                {"lsn", c.lsn},
                {"replay_from", pos_text(c.replay_segment, c.replay_offset)},
                {"live_messages", c.live_messages}};
    }
  }
  return newest;
}

json summary_json(fs::file_system& fs, const std::filesystem::path& dir, const journal::identity& id,
                  const log_facts& f, const recovered& r) {
  json subs = json::array();
  for (const auto& [key, s] : r.idx.durable_subscriptions()) subs.push_back(json_of(s));
  json j;
  j["store"] = dir.string();
  j["store_id"] = id.id.to_hex();
  j["created_ms"] = id.created_ms;
  j["segments"] = f.segments;
  j["bytes"] = {{"on_disk", f.disk_bytes}, {"in_records", f.record_bytes}};
  j["records"] = {{"total", f.sum.records}, {"by_type", f.by_type}, {"undecodable", f.decode_errors}};
  j["lsn"] = {{"first", f.sum.first_lsn}, {"last", f.sum.last_lsn}};
  j["epochs"] = f.epochs;
  j["recovery"] = recovery_json(r);
  j["live"] = live_json(r.idx);
  j["destinations"] = r.idx.destinations();
  j["durable_subscriptions"] = subs;
  json invalid;
  j["checkpoint"] = checkpoints_json(fs, dir, invalid);
  j["invalid_checkpoints"] = invalid;
  json dj = json::array();
  for (const auto& d : f.damages) dj.push_back(detail::damage_json(d));
  j["damage"] = dj;
  j["fenced"] = {{"records", f.fenced}, {"first_lsn", f.fenced_first}, {"last_lsn", f.fenced_last},
                 {"epochs", f.fenced_epochs}};
  return j;
}

std::string damage_line(const json& d) {
  return fmt::format("{} offset {}: {} ({} bytes)", d["file"].get<std::string>(), d["offset"].get<std::uint64_t>(),
                     d["reason"].get<std::string>(), d["bytes"].get<std::uint64_t>());
}

void print_recovery(const json& rec, std::ostream& out) {
  if (!rec["refused"].is_null())
    out << "recovery       refused by the default mode at " << damage_line(rec["refused"])
        << "\n               live below: what salvage mode would recover\n";
  std::string from = rec["from_checkpoint"].is_null() ? "full replay" : "checkpoint, then replay";
  out << fmt::format("recovery       {} ({}), {} records replayed, last lsn {}\n", rec["mode"].get<std::string>(),
                     from, rec["records_replayed"].get<std::uint64_t>(), rec["last_lsn"].get<std::uint64_t>());
  if (!rec["torn_tail"].is_null()) out << "  truncates    " << damage_line(rec["torn_tail"]) << '\n';
  for (const auto& d : rec["skipped"]) out << "  skips        " << damage_line(d) << '\n';
}

void print_text(const json& j, const journal::index& idx, const log_facts& f, std::ostream& out) {
  const auto& segments = j["segments"];
  out << fmt::format("store          {}\n", j["store"].get<std::string>());
  out << fmt::format("store id       {}\n", j["store_id"].get<std::string>());
  out << fmt::format("created_ms     {}\n", j["created_ms"].get<std::int64_t>());
  out << fmt::format("segments       {}", segments.size());
  if (!segments.empty())
    out << fmt::format(" ({} .. {})", segments.front()["seq"].get<std::string>(),
                       segments.back()["seq"].get<std::string>());
  out << '\n';
  out << fmt::format("bytes          {} on disk, {} in records\n", f.disk_bytes, f.record_bytes);
  out << fmt::format("records        {}", f.sum.records);
  if (f.sum.records != 0) out << fmt::format(" (lsn {} .. {})", f.sum.first_lsn, f.sum.last_lsn);
  out << '\n';
  for (const auto& [type, n] : f.by_type) out << fmt::format("  {:<28} {}\n", type, n);
  if (f.decode_errors) out << fmt::format("  {:<28} {}\n", "(payload did not decode)", f.decode_errors);
  std::string ep;
  for (auto e : f.epochs) ep += (ep.empty() ? "" : ", ") + std::to_string(e);
  out << fmt::format("epochs         {}\n", ep.empty() ? "none" : ep);
  print_recovery(j["recovery"], out);
  const auto& live = j["live"];
  out << fmt::format("live           {} messages, {} bytes, next msg_seq {}, digest {}\n", idx.live_messages(),
                     idx.live_bytes(), idx.next_msg_seq(), live["digest"].get<std::string>());
  for (const auto& t : live["targets"])
    out << fmt::format("  {:<28} {} messages, {} bytes\n", escaped(t["target"].get<std::string>()),
                       t["messages"].get<std::uint64_t>(), t["bytes"].get<std::uint64_t>());
  std::string dn;
  for (const auto& d : idx.destinations()) dn += (dn.empty() ? "" : ", ") + escaped(d);
  out << fmt::format("destinations   {}\n", dn.empty() ? "none" : dn);
  out << fmt::format("durable subs   {}\n", idx.durable_subscriptions().size());
  for (const auto& [key, s] : idx.durable_subscriptions()) out << "  " << text_of(s) << '\n';
  const auto& checkpoint = j["checkpoint"];
  if (checkpoint.is_null())
    out << "checkpoint     none\n";
  else
    out << fmt::format("checkpoint     {} (lsn {}, replay from {}, {} live messages)\n",
                       checkpoint["file"].get<std::string>(), checkpoint["lsn"].get<std::uint64_t>(),
                       checkpoint["replay_from"].get<std::string>(),
                       checkpoint["live_messages"].get<std::uint64_t>());
  for (const auto& c : j["invalid_checkpoints"])
    out << fmt::format("  invalid      {}: {}\n", c["file"].get<std::string>(), c["reason"].get<std::string>());
  if (f.damages.empty()) out << "damage         none\n";
  for (const auto& d : f.damages)
    out << fmt::format("damage         {}: {}\n", class_name(d.classification), damage_text(d));
  if (f.fenced == 0)
    out << "fenced         none\n";
  else
    out << fmt::format("fenced         {} records (lsn {} .. {}) of deposed epochs\n", f.fenced, f.fenced_first,
                       f.fenced_last);
}

}  // namespace

int run_summary(fs::file_system& base, const std::filesystem::path& dir, bool as_json, std::ostream& out,
                std::ostream& err) {
  read_only_file_system fs(base);
  int code = exit_clean;
  auto st = open_store(fs, dir, err, code);
  if (!st) return code;
  auto facts = scan_log(fs, dir);
  if (!facts) return scan_failed(fs, dir, st->id.id, facts.error(), err);
  auto rec = recover(fs, dir);
  if (!rec) return scan_failed(fs, dir, st->id.id, rec.error(), err);
  const json j = summary_json(fs, dir, st->id, facts.value(), rec.value());
  if (as_json)
    out << dump_json(j) << '\n';
  else
    print_text(j, rec.value().idx, facts.value(), out);
  return exit_clean;
}

}  // namespace tandem::tools
