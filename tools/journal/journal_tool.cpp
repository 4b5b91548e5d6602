#include "tools/journal/journal_tool.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <variant>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "journal/errc.h"
#include "journal/format.h"
#include "journal/index.h"
#include "journal/reader.h"
#include "journal/records.h"
#include "tools/journal/read_only_file_system.h"

namespace tandem::tools {
namespace {

namespace jf = journal::format;
using nlohmann::json;

// Names may hold any byte (STOMP header values are UTF-8, but a damaged store is not
// obliged to be); escape them so one record stays on one line and JSON stays valid.
std::string escaped(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}
std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string seg_name(std::uint64_t seq) { return fmt::format("{:016x}", seq); }
std::string pos_text(std::uint64_t seq, std::uint64_t off) { return fmt::format("{:016x}:{}", seq, off); }

std::string_view class_name(journal::damage_class c) {
  switch (c) {
    case journal::damage_class::none: return "none";
    case journal::damage_class::torn_tail: return "torn_tail";
    case journal::damage_class::mid_log: return "mid_log";
    case journal::damage_class::empty_segment_tail: return "empty_segment_tail";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------
// Opening: identity and the error messages that name the file.
// ---------------------------------------------------------------------------------------

struct opened {
  journal::identity id;
};

std::optional<std::uint64_t> parse_segment_file(std::string_view name) {
  if (name.size() != 16 + jf::segment_suffix.size() || !name.ends_with(jf::segment_suffix)) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(name.data(), name.data() + 16, v, 16);
  if (ec != std::errc{} || p != name.data() + 16) return std::nullopt;
  return v;
}

// scan() reports unsupported_version / wrong_store without the file; find it, so the
// operator is told which file to look at.
std::string locate_bad_segment(fs::file_system& fs, const std::filesystem::path& dir,
                               const journal::store_id& id) {
  auto names = fs.list(dir / jf::journal_dir_name);
  if (!names) return {};
  std::vector<std::uint64_t> seqs;
  for (const auto& n : names.value())
    if (auto s = parse_segment_file(n)) seqs.push_back(*s);
  std::sort(seqs.begin(), seqs.end());
  for (auto seq : seqs) {
    auto path = dir / jf::journal_dir_name / (seg_name(seq) + std::string(jf::segment_suffix));
    auto f = fs.open(path, fs::open_mode::read_only);
    if (!f) continue;
    std::array<std::byte, jf::segment_header_bytes> h{};
    auto n = f.value()->read_at(h, 0);
    if (!n || n.value() != h.size()) continue;
    auto sh = journal::decode_segment_header(h);
    if (!sh && sh.error() == journal::errc::unsupported_version) {
      std::uint32_t v = 0;
      for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(h[8 + i]);
      return fmt::format("{} offset 8: segment format version {} (this tool reads {} to {})", path.string(), v,
                         jf::oldest_segment_format_version, jf::segment_format_version);
    }
    if (sh && !(sh.value().store == id))
      return fmt::format("{} offset 16: segment of store {}, not {}", path.string(),
                         sh.value().store.to_hex(), id.to_hex());
  }
  return {};
}

int exit_for(std::error_code ec) {
  if (ec == journal::errc::unsupported_version) return exit_unsupported_version;
  if (ec == journal::errc::wrong_store || ec == journal::errc::corrupt_file) return exit_corrupt;
  return exit_cannot_read;
}

std::optional<opened> open_store(fs::file_system& fs, const std::filesystem::path& dir, std::ostream& err,
                                 int& code) {
  auto id = journal::read_identity(fs, dir);
  if (id) return opened{id.value()};
  auto file = (dir / jf::identity_file_name).string();
  code = exit_for(id.error());
  if (id.error() == journal::errc::not_a_store) {
    err << "tandem-journal: " << dir.string() << ": not a Tandem store (" << file
        << " does not exist); check the path\n";
    code = exit_cannot_read;
  } else if (id.error() == journal::errc::unsupported_version) {
    err << "tandem-journal: " << file << ": unsupported store format or version (this tool reads "
        << jf::identity_format_name << " version " << jf::identity_version
        << "); use the tandem-journal of the broker that wrote it\n";
  } else if (id.error() == journal::errc::corrupt_file) {
    err << "tandem-journal: " << file << ": malformed identity file (expected format=, version=, store_id=, "
        << "created_ms= lines)\n";
  } else {
    err << "tandem-journal: " << file << ": " << id.error().message() << '\n';
  }
  return std::nullopt;
}

int scan_failed(fs::file_system& fs, const std::filesystem::path& dir, const journal::store_id& id,
                std::error_code ec, std::ostream& err) {
  std::string where = locate_bad_segment(fs, dir, id);
  if (where.empty()) where = (dir / jf::journal_dir_name).string();
  err << "tandem-journal: " << where << ": " << ec.message();
  if (ec == journal::errc::wrong_store) err << "; a file was copied from another store";
  err << '\n';
  return exit_for(ec);
}

// ---------------------------------------------------------------------------------------
// Rendering records.
// ---------------------------------------------------------------------------------------

std::string targets_text(const std::vector<std::string>& ts) {
  std::string s = "[";
  for (std::size_t i = 0; i < ts.size(); ++i) {
    if (i) s += ',';
    s += escaped(ts[i]);
  }
  return s + "]";
}

std::string text_of(const journal::message_add& m) {
  return fmt::format(
      "msg_seq={} targets={} message_id={} producer_id={} producer_seq={} expires_ms={} priority={} "
      "persistent={} headers={} body_bytes={}",
      m.msg_seq, targets_text(m.targets), escaped(m.message_id), escaped(m.producer_id), m.producer_seq,
      m.expires_ms, m.priority, m.persistent, m.headers.size(), m.body.size());
}
std::string text_of(const journal::message_remove& m) {
  return fmt::format("target={} msg_seq={}", escaped(m.target), m.msg_seq);
}
std::string text_of(const journal::durable_subscription& s) {
  return fmt::format("client_id={} subscription_name={} topic={} selector={}", escaped(s.client_id),
                     escaped(s.subscription_name), escaped(s.topic), escaped(s.selector));
}

std::string text_of(const journal::record& r) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, journal::message_add> || std::is_same_v<T, journal::message_remove>) {
          return text_of(v);
        } else if constexpr (std::is_same_v<T, journal::batch>) {
          std::string s = fmt::format("items={} [", v.items.size());
          for (std::size_t i = 0; i < v.items.size(); ++i) {
            if (i) s += "; ";
            std::visit(
                [&](const auto& item) {
                  s += std::is_same_v<std::decay_t<decltype(item)>, journal::message_add> ? "message_add "
                                                                                         : "message_remove ";
                  s += text_of(item);
                },
                v.items[i]);
          }
          return s + "]";
        } else if constexpr (std::is_same_v<T, journal::destination_create> ||
                             std::is_same_v<T, journal::destination_delete>) {
          return "name=" + escaped(v.name);
        } else if constexpr (std::is_same_v<T, journal::durable_subscription_create> ||
                             std::is_same_v<T, journal::durable_subscription_remove>) {
          return text_of(static_cast<const journal::durable_subscription&>(v));
        } else if constexpr (std::is_same_v<T, journal::epoch_start>) {
          return fmt::format("epoch={} cut={} last_lsn={} broker_name={}", v.epoch,
                             pos_text(v.cut_segment, v.cut_offset), v.last_lsn, escaped(v.broker_name));
        } else if constexpr (std::is_same_v<T, journal::index_state>) {
          std::string s = fmt::format("next_msg_seq={} windows={} [", v.next_msg_seq, v.windows.size());
          for (std::size_t i = 0; i < v.windows.size(); ++i)
            s += fmt::format("{}{}{} seqs={}", i ? "; " : "", escaped(v.windows[i].producer_id),
                             v.windows[i].extend ? " extend" : "", v.windows[i].seqs.size());
          return s + "]";
        } else {
          return fmt::format("lsn={} file_name={}", v.lsn, escaped(v.file_name));
        }
      },
      r);
}

json json_of(const journal::message_add& m) {
  json headers = json::array();
  for (const auto& [k, v] : m.headers) headers.push_back(json::array({k, v}));
  return {{"msg_seq", m.msg_seq},       {"targets", m.targets},         {"message_id", m.message_id},
          {"producer_id", m.producer_id}, {"producer_seq", m.producer_seq}, {"expires_ms", m.expires_ms},
          {"priority", m.priority},     {"persistent", m.persistent},   {"headers", headers},
          {"body_bytes", m.body.size()}};
}
json json_of(const journal::message_remove& m) { return {{"target", m.target}, {"msg_seq", m.msg_seq}}; }
json json_of(const journal::durable_subscription& s) {
  return {{"client_id", s.client_id}, {"subscription_name", s.subscription_name}, {"topic", s.topic},
          {"selector", s.selector}};
}

json json_of(const journal::record& r) {
  return std::visit(
      [](const auto& v) -> json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, journal::message_add> || std::is_same_v<T, journal::message_remove>) {
          return json_of(v);
        } else if constexpr (std::is_same_v<T, journal::batch>) {
          json items = json::array();
          for (const auto& item : v.items)
            std::visit(
                [&](const auto& x) {
                  json j = json_of(x);
                  j["type"] = std::is_same_v<std::decay_t<decltype(x)>, journal::message_add> ? "message_add"
                                                                                             : "message_remove";
                  items.push_back(std::move(j));
                },
                item);
          return {{"items", items}};
        } else if constexpr (std::is_same_v<T, journal::destination_create> ||
                             std::is_same_v<T, journal::destination_delete>) {
          return {{"name", v.name}};
        } else if constexpr (std::is_same_v<T, journal::durable_subscription_create> ||
                             std::is_same_v<T, journal::durable_subscription_remove>) {
          return json_of(static_cast<const journal::durable_subscription&>(v));
        } else if constexpr (std::is_same_v<T, journal::epoch_start>) {
          return {{"epoch", v.epoch},         {"cut_segment", seg_name(v.cut_segment)},
                  {"cut_offset", v.cut_offset}, {"last_lsn", v.last_lsn},
                  {"broker_name", v.broker_name}};
        } else if constexpr (std::is_same_v<T, journal::index_state>) {
          json windows = json::array();
          for (const auto& w : v.windows)
            windows.push_back({{"producer_id", w.producer_id}, {"extend", w.extend}, {"seqs", w.seqs}});
          return {{"next_msg_seq", v.next_msg_seq}, {"windows", windows}};
        } else {
          return {{"lsn", v.lsn}, {"file_name", v.file_name}};
        }
      },
      r);
}

// Whether a record concerns `name` (a destination or a queue key).
bool touches(const journal::record& r, std::string_view name) {
  auto add_touches = [&](const journal::message_add& m) {
    return std::find(m.targets.begin(), m.targets.end(), name) != m.targets.end();
  };
  return std::visit(
      [&](const auto& v) -> bool {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, journal::message_add>) {
          return add_touches(v);
        } else if constexpr (std::is_same_v<T, journal::message_remove>) {
          return v.target == name;
        } else if constexpr (std::is_same_v<T, journal::batch>) {
          return std::any_of(v.items.begin(), v.items.end(), [&](const journal::batch_item& item) {
            if (auto* a = std::get_if<journal::message_add>(&item)) return add_touches(*a);
            return std::get<journal::message_remove>(item).target == name;
          });
        } else if constexpr (std::is_same_v<T, journal::destination_create> ||
                             std::is_same_v<T, journal::destination_delete>) {
          return v.name == name;
        } else if constexpr (std::is_same_v<T, journal::durable_subscription_create> ||
                             std::is_same_v<T, journal::durable_subscription_remove>) {
          return v.topic == name || journal::subscription_target(v.client_id, v.subscription_name) == name;
        } else {
          return false;
        }
      },
      r);
}

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

json damage_json(const journal::scan_item& it) {
  return {{"file", it.damage.file.string()}, {"segment", seg_name(it.segment_seq)},
          {"offset", it.damage.offset},      {"lsn", it.damage.lsn},
          {"bytes", it.damage.bytes},        {"reason", it.damage.reason},
          {"class", class_name(it.classification)}};
}

std::string damage_text(const journal::scan_item& it) {
  std::string s = fmt::format("{} offset {}", it.damage.file.string(), it.damage.offset);
  if (it.damage.lsn != 0) s += fmt::format(" (expected lsn {})", it.damage.lsn);
  s += fmt::format(": {} ({} bytes)", it.damage.reason, it.damage.bytes);
  return s;
}

bool fenced_garbage(const journal::scan_item& it) { return !it.damage.reason.empty(); }

}  // namespace

bool parse_position(std::string_view text, std::uint64_t& segment, std::uint64_t& offset) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return false;
  auto a = text.substr(0, colon), b = text.substr(colon + 1);
  auto [p1, e1] = std::from_chars(a.data(), a.data() + a.size(), segment, 16);
  auto [p2, e2] = std::from_chars(b.data(), b.data() + b.size(), offset, 10);
  return e1 == std::errc{} && p1 == a.data() + a.size() && e2 == std::errc{} && p2 == b.data() + b.size();
}

// ---------------------------------------------------------------------------------------
// summary
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// dump
// ---------------------------------------------------------------------------------------

int run_dump(fs::file_system& base, const std::filesystem::path& dir, const dump_filter& filter, bool as_json,
             std::ostream& out, std::ostream& err) {
  read_only_file_system fs(base);
  int code = exit_clean;
  auto st = open_store(fs, dir, err, code);
  if (!st) return code;

  auto before_start = [&](std::uint64_t seg, std::uint64_t off) {
    if (!filter.from_segment) return false;
    return seg < *filter.from_segment || (seg == *filter.from_segment && off < filter.from_offset);
  };
  journal::scan_options so;
  so.decode = true;
  if (filter.from_segment) so.from_segment = *filter.from_segment;
  auto res = journal::scan(fs, dir, so, [&](const journal::scan_item& it) {
    if (it.kind == journal::scan_item_kind::segment) {
      if (filter.destination || filter.from_lsn) return true;
      if (as_json) {
        json j = {{"kind", "segment"}, {"file", it.file.string()}, {"segment", seg_name(it.segment_seq)},
                  {"size", it.file_size}};
        j["epoch"] = it.segment ? json(it.segment->epoch) : json(nullptr);
        out << dump_json(j) << '\n';
      } else {
        out << fmt::format("# segment {} size={}", it.file.string(), it.file_size);
        if (it.segment) out << fmt::format(" epoch={}", it.segment->epoch);
        out << '\n';
      }
      return true;
    }
    std::uint64_t off = it.kind == journal::scan_item_kind::damage ? it.damage.offset : it.offset;
    if (before_start(it.segment_seq, off)) return true;
    bool is_record = it.kind == journal::scan_item_kind::record ||
                     (it.kind == journal::scan_item_kind::fenced && !fenced_garbage(it));
    if (is_record) {
      if (filter.from_lsn && it.header.lsn < *filter.from_lsn) return true;
      if (filter.destination && (!it.payload || !touches(*it.payload, *filter.destination))) return true;
      bool is_fenced = it.kind == journal::scan_item_kind::fenced;
      if (as_json) {
        json j = {{"kind", is_fenced ? "fenced" : "record"},
                  {"file", it.file.string()},
                  {"segment", seg_name(it.segment_seq)},
                  {"offset", it.offset},
                  {"lsn", it.header.lsn},
                  {"epoch", it.header.epoch},
                  {"type", journal::to_string(it.header.type)},
                  {"bytes", it.record_bytes}};
        if (it.payload)
          j["record"] = json_of(*it.payload);
        else
          j["decode_error"] = it.decode_error.message();
        out << dump_json(j) << '\n';
      } else {
        out << fmt::format("{} {}lsn={} epoch={} bytes={} {} ", pos_text(it.segment_seq, it.offset),
                           is_fenced ? "FENCED " : "", it.header.lsn, it.header.epoch, it.record_bytes,
                           journal::to_string(it.header.type));
        if (it.payload)
          out << text_of(*it.payload);
        else
          out << "(payload does not decode: " << it.decode_error.message() << ")";
        out << '\n';
      }
      return true;
    }
    // Damage (or a deposed master's garbage) is always shown: it is why one dumps.
    if (filter.from_lsn && it.damage.lsn != 0 && it.damage.lsn < *filter.from_lsn) return true;
    bool is_fenced = it.kind == journal::scan_item_kind::fenced;
    if (as_json) {
      json j = damage_json(it);
      j["kind"] = is_fenced ? "fenced_damage" : "damage";
      out << dump_json(j) << '\n';
    } else {
      out << fmt::format("{} {} class={} bytes={} reason={} file={}\n", pos_text(it.segment_seq, it.damage.offset),
                         is_fenced ? "FENCED-DAMAGE" : "DAMAGE", class_name(it.classification), it.damage.bytes,
                         escaped(it.damage.reason), it.damage.file.string());
    }
    return true;
  });
  if (!res) return scan_failed(fs, dir, st->id.id, res.error(), err);
  return exit_clean;
}

// ---------------------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------------------

int run_verify(fs::file_system& base, const std::filesystem::path& dir, bool as_json, std::ostream& out,
               std::ostream& err) {
  read_only_file_system fs(base);
  int code = exit_clean;
  auto st = open_store(fs, dir, err, code);
  if (!st) {
    if (as_json)
      out << dump_json({{"store", dir.string()}, {"result", "unreadable"}, {"exit_code", code}}) << '\n';
    return code;
  }
  std::vector<journal::scan_item> damages, fenced;
  std::uint64_t undecodable = 0;
  journal::scan_options so;
  so.decode = true;  // a payload that verifies but does not decode is corruption too
  std::vector<journal::scan_item> bad_payloads;
  auto res = journal::scan(fs, dir, so, [&](const journal::scan_item& it) {
    if (it.kind == journal::scan_item_kind::damage) damages.push_back(it);
    if (it.kind == journal::scan_item_kind::fenced) fenced.push_back(it);
    if (it.kind == journal::scan_item_kind::record && !it.payload) {
      ++undecodable;
      bad_payloads.push_back(it);
    }
    return true;
  });
  if (!res) {
    int c = scan_failed(fs, dir, st->id.id, res.error(), err);
    if (as_json)
      out << dump_json({{"store", dir.string()}, {"result", "unreadable"}, {"exit_code", c},
                        {"error", res.error().message()}})
          << '\n';
    return c;
  }
  const auto& sum = res.value();
  auto ckpts = journal::list_checkpoints(fs, dir);

  bool mid_log = sum.mid_log_corruption || undecodable != 0;
  bool torn = false;
  for (const auto& d : damages) {
    if (d.classification == journal::damage_class::mid_log) mid_log = true;
    if (d.classification == journal::damage_class::torn_tail ||
        d.classification == journal::damage_class::empty_segment_tail)
      torn = true;
  }
  code = mid_log ? exit_corrupt : torn ? exit_torn_tail : exit_clean;
  std::string_view verdict = mid_log ? "corrupt" : torn ? "torn_tail" : "clean";

  if (as_json) {
    json j;
    j["store"] = dir.string();
    j["store_id"] = st->id.id.to_hex();
    j["segments"] = sum.segments;
    j["records"] = sum.records;
    j["lsn"] = {{"first", sum.first_lsn}, {"last", sum.last_lsn}};
    json dj = json::array();
    for (const auto& d : damages) dj.push_back(damage_json(d));
    for (const auto& b : bad_payloads)
      dj.push_back({{"file", b.file.string()}, {"segment", seg_name(b.segment_seq)}, {"offset", b.offset},
                    {"lsn", b.header.lsn}, {"bytes", b.record_bytes},
                    {"reason", "payload does not decode: " + b.decode_error.message()}, {"class", "mid_log"}});
    j["damage"] = dj;
    json fj = json::array();
    for (const auto& f : fenced) {
      if (fenced_garbage(f)) {
        json g = damage_json(f);
        g["garbage"] = true;
        fj.push_back(std::move(g));
      } else {
        fj.push_back({{"file", f.file.string()}, {"segment", seg_name(f.segment_seq)}, {"offset", f.offset},
                      {"lsn", f.header.lsn}, {"epoch", f.header.epoch},
                      {"type", journal::to_string(f.header.type)}, {"bytes", f.record_bytes}});
      }
    }
    j["fenced"] = fj;
    json cj = json::array();
    if (ckpts)
      for (const auto& c : ckpts.value())
        cj.push_back({{"file", c.file.string()}, {"lsn", c.lsn}, {"valid", !c.error}, {"reason", c.reason}});
    j["checkpoints"] = cj;
    j["result"] = verdict;
    j["exit_code"] = code;
    out << dump_json(j) << '\n';
    return code;
  }

  out << fmt::format("store {} ({}): {} segments, {} records", dir.string(), st->id.id.to_hex(), sum.segments,
                     sum.records);
  if (sum.records != 0) out << fmt::format(", lsn {} .. {}", sum.first_lsn, sum.last_lsn);
  out << '\n';
  for (const auto& d : damages) {
    switch (d.classification) {
      case journal::damage_class::torn_tail:
        out << "torn tail: " << damage_text(d)
            << "\n  written after the last completed fdatasync (the writer died mid-write); recovery truncates "
               "here and loses nothing that sync_policy always acknowledged\n";
        break;
      case journal::damage_class::empty_segment_tail:
        out << "torn tail: " << damage_text(d)
            << "\n  the newest segment was being created when the writer died; recovery ignores it\n";
        break;
      default:
        out << "corruption: " << damage_text(d)
            << "\n  data was damaged after an fdatasync covered it (a record written after a later fdatasync "
               "follows, or this is not the newest segment), so this is not a torn write; a broker refuses to "
               "recover this store (salvage mode would skip these bytes and lose the messages in them)\n";
        break;
    }
  }
  for (const auto& b : bad_payloads)
    out << fmt::format("corruption: {} offset {} (lsn {}): checksum verifies but the payload does not decode: {}\n",
                       b.file.string(), b.offset, b.header.lsn, b.decode_error.message());
  for (const auto& f : fenced) {
    if (fenced_garbage(f))
      out << "fenced: " << damage_text(f) << " (damaged bytes of a deposed master; ignored by recovery)\n";
    else
      out << fmt::format("fenced: {} offset {}: lsn {} epoch {} {} ({} bytes) written by a deposed master after "
                         "a newer master's cut; ignored by recovery\n",
                         f.file.string(), f.offset, f.header.lsn, f.header.epoch,
                         journal::to_string(f.header.type), f.record_bytes);
  }
  if (ckpts) {
    for (const auto& c : ckpts.value()) {
      if (c.error)
        out << fmt::format("checkpoint {}: invalid: {} (recovery falls back to an older one or a full replay)\n",
                           c.file.string(), c.reason);
      else
        out << fmt::format("checkpoint {}: valid (lsn {}, replay from {})\n", c.file.string(), c.lsn,
                           pos_text(c.replay_segment, c.replay_offset));
    }
  } else {
    out << fmt::format("checkpoints: cannot list: {}\n", ckpts.error().message());
  }
  out << "result: " << verdict << '\n';
  return code;
}

}  // namespace tandem::tools
