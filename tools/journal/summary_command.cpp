// `tandem-journal summary DIR`: what the store holds.
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

// Replays one record into an index by the rules of format.h section 7 (the same effect
// recovery has), so `summary` can show what a broker would hold.
void apply(journal::index& idx, const journal::record& r, const journal::location& where) {
  auto add = [&](const journal::message_add& m) {
    idx.add(m.msg_seq, std::span<const std::string>(m.targets), {where, m.expires_ms, m.priority},
            m.producer_id, m.producer_seq);
  };
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, journal::message_add>) {
          add(v);
        } else if constexpr (std::is_same_v<T, journal::message_remove>) {
          idx.remove(v.target, v.msg_seq);
        } else if constexpr (std::is_same_v<T, journal::batch>) {
          for (const auto& item : v.items) {
            if (auto* a = std::get_if<journal::message_add>(&item))
              add(*a);
            else {
              const auto& rm = std::get<journal::message_remove>(item);
              idx.remove(rm.target, rm.msg_seq);
            }
          }
        } else if constexpr (std::is_same_v<T, journal::destination_create>) {
          idx.create_destination(v.name);
        } else if constexpr (std::is_same_v<T, journal::destination_delete>) {
          idx.delete_destination(v.name);
        } else if constexpr (std::is_same_v<T, journal::durable_subscription_create>) {
          idx.create_subscription(v);
        } else if constexpr (std::is_same_v<T, journal::durable_subscription_remove>) {
          idx.remove_subscription(v.client_id, v.subscription_name);
        }
      },
      r);
}

}  // namespace

int run_summary(fs::file_system& base, const std::filesystem::path& dir, bool as_json, std::ostream& out,
                std::ostream& err) {
  read_only_file_system fs(base);
  int code = exit_clean;
  auto st = open_store(fs, dir, err, code);
  if (!st) return code;

  journal::index idx;
  std::map<std::string, std::uint64_t> by_type;
  std::set<std::uint64_t> epochs, fenced_epochs;
  json segments = json::array();
  std::uint64_t disk_bytes = 0, record_bytes = 0, decode_errors = 0;
  std::uint64_t fenced = 0, fenced_first = 0, fenced_last = 0;
  std::vector<journal::scan_item> damages;

  journal::scan_options so;
  so.decode = true;
  auto res = journal::scan(fs, dir, so, [&](const journal::scan_item& it) {
    switch (it.kind) {
      case journal::scan_item_kind::segment: {
        disk_bytes += it.file_size;
        json s = {{"file", it.file.string()}, {"seq", seg_name(it.segment_seq)}, {"size", it.file_size}};
        if (it.segment) {
          s["epoch"] = it.segment->epoch;
          epochs.insert(it.segment->epoch);
        } else {
          s["epoch"] = nullptr;
        }
        segments.push_back(std::move(s));
        break;
      }
      case journal::scan_item_kind::record:
        record_bytes += it.record_bytes;
        ++by_type[std::string(journal::to_string(it.header.type))];
        epochs.insert(it.header.epoch);
        if (it.payload)
          apply(idx, *it.payload,
                {it.segment_seq, static_cast<std::uint32_t>(it.offset), static_cast<std::uint32_t>(it.record_bytes)});
        else
          ++decode_errors;
        break;
      case journal::scan_item_kind::damage: damages.push_back(it); break;
      case journal::scan_item_kind::fenced:
        if (!fenced_garbage(it)) {
          if (fenced == 0) fenced_first = it.header.lsn;
          fenced_last = it.header.lsn;
          ++fenced;
          fenced_epochs.insert(it.header.epoch);
        }
        break;
    }
    return true;
  });
  if (!res) return scan_failed(fs, dir, st->id.id, res.error(), err);
  const auto& sum = res.value();
  auto ckpts = journal::list_checkpoints(fs, dir);

  json targets = json::array();
  for (const auto& [target, msgs] : idx.targets()) {
    std::uint64_t bytes = 0;
    for (const auto& [seq, ref] : msgs) bytes += ref.where.size;
    targets.push_back({{"target", target}, {"messages", msgs.size()}, {"bytes", bytes}});
  }
  json subs = json::array();
  for (const auto& [key, s] : idx.durable_subscriptions()) subs.push_back(json_of(s));
  json checkpoint = nullptr;
  json bad_checkpoints = json::array();
  if (ckpts) {
    for (const auto& c : ckpts.value()) {
      if (c.error) {
        bad_checkpoints.push_back({{"file", c.file.string()}, {"reason", c.reason}});
      } else if (checkpoint.is_null()) {
        checkpoint = {{"file", c.file.string()},
                      {"lsn", c.lsn},
                      {"replay_from", pos_text(c.replay_segment, c.replay_offset)},
                      {"live_messages", c.live_messages}};
      }
    }
  }

  json j;
  j["store"] = dir.string();
  j["store_id"] = st->id.id.to_hex();
  j["created_ms"] = st->id.created_ms;
  j["segments"] = segments;
  j["bytes"] = {{"on_disk", disk_bytes}, {"in_records", record_bytes}};
  j["records"] = {{"total", sum.records}, {"by_type", by_type}, {"undecodable", decode_errors}};
  j["lsn"] = {{"first", sum.first_lsn}, {"last", sum.last_lsn}};
  j["epochs"] = epochs;
  j["live"] = {{"messages", idx.live_messages()}, {"bytes", idx.live_bytes()}, {"targets", targets}};
  j["destinations"] = idx.destinations();
  j["durable_subscriptions"] = subs;
  j["checkpoint"] = checkpoint;
  j["invalid_checkpoints"] = bad_checkpoints;
  json dj = json::array();
  for (const auto& d : damages) dj.push_back(damage_json(d));
  j["damage"] = dj;
  j["fenced"] = {{"records", fenced}, {"first_lsn", fenced_first}, {"last_lsn", fenced_last},
                 {"epochs", fenced_epochs}};

  if (as_json) {
    out << dump_json(j) << '\n';
    return exit_clean;
  }
  out << fmt::format("store          {}\n", dir.string());
  out << fmt::format("store id       {}\n", st->id.id.to_hex());
  out << fmt::format("created_ms     {}\n", st->id.created_ms);
  out << fmt::format("segments       {}", segments.size());
  if (!segments.empty())
    out << fmt::format(" ({} .. {})", segments.front()["seq"].get<std::string>(),
                       segments.back()["seq"].get<std::string>());
  out << '\n';
  out << fmt::format("bytes          {} on disk, {} in records\n", disk_bytes, record_bytes);
  out << fmt::format("records        {}", sum.records);
  if (sum.records != 0) out << fmt::format(" (lsn {} .. {})", sum.first_lsn, sum.last_lsn);
  out << '\n';
  for (const auto& [type, n] : by_type) out << fmt::format("  {:<28} {}\n", type, n);
  if (decode_errors) out << fmt::format("  {:<28} {}\n", "(payload did not decode)", decode_errors);
  std::string ep;
  for (auto e : epochs) ep += (ep.empty() ? "" : ", ") + std::to_string(e);
  out << fmt::format("epochs         {}\n", ep.empty() ? "none" : ep);
  out << fmt::format("live           {} messages, {} bytes\n", idx.live_messages(), idx.live_bytes());
  for (const auto& t : targets)
    out << fmt::format("  {:<28} {} messages, {} bytes\n", escaped(t["target"].get<std::string>()),
                       t["messages"].get<std::uint64_t>(), t["bytes"].get<std::uint64_t>());
  std::string dn;
  for (const auto& d : idx.destinations()) dn += (dn.empty() ? "" : ", ") + escaped(d);
  out << fmt::format("destinations   {}\n", dn.empty() ? "none" : dn);
  out << fmt::format("durable subs   {}\n", idx.durable_subscriptions().size());
  for (const auto& [key, s] : idx.durable_subscriptions()) out << "  " << text_of(s) << '\n';
  if (checkpoint.is_null())
    out << "checkpoint     none\n";
  else
    out << fmt::format("checkpoint     {} (lsn {}, replay from {}, {} live messages)\n",
                       checkpoint["file"].get<std::string>(), checkpoint["lsn"].get<std::uint64_t>(),
                       checkpoint["replay_from"].get<std::string>(),
                       checkpoint["live_messages"].get<std::uint64_t>());
  for (const auto& c : bad_checkpoints)
    out << fmt::format("  invalid      {}: {}\n", c["file"].get<std::string>(), c["reason"].get<std::string>());
  if (damages.empty()) out << "damage         none\n";
  for (const auto& d : damages)
    out << fmt::format("damage         {}: {}\n", class_name(d.classification), damage_text(d));
  if (fenced == 0)
    out << "fenced         none\n";
  else
    out << fmt::format("fenced         {} records (lsn {} .. {}) of deposed epochs\n", fenced, fenced_first,
                       fenced_last);
  return exit_clean;
}

}  // namespace tandem::tools
