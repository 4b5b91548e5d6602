#include "tools/journal/detail/render.h"

#include <algorithm>
#include <variant>

#include <fmt/format.h>

namespace tandem::tools::detail {

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
    case journal::damage_class::lost_unsynced: return "lost_unsynced";
  }
  return "unknown";
}

std::string targets_text(const std::vector<std::string>& ts) {
  std::string s = "[";
  for (std::size_t i = 0; i < ts.size(); ++i) {
    if (i) s += ',';
    s += escaped(ts[i]);
  }
  return s + "]";
}

std::string text_of(const journal::message_add& m) {
  auto text = fmt::format(
      "msg_seq={} targets={} message_id={} producer_id={} producer_seq={} expires_ms={} priority={} "
      "persistent={} headers={} body_bytes={}",
      m.msg_seq, targets_text(m.targets), escaped(m.message_id), escaped(m.producer_id), m.producer_seq,
      m.expires_ms, m.priority, m.persistent, m.headers.size(), m.body.size());
  // The delivery state (format.h section 5, flags bit 2): a delayed redelivery, or a
  // scheduled message's next firing. Shown only when set, so older dumps read unchanged.
  if (m.deliver_at_ms != 0 || m.redeliveries != 0)
    text += fmt::format(" deliver_at_ms={} redeliveries={}", m.deliver_at_ms, m.redeliveries);
  return text;
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
        } else if constexpr (std::is_same_v<T, journal::durable_subscription_create>) {
          // owner "" = unowned (a record from before owners were kept, or an anonymous session)
          return text_of(static_cast<const journal::durable_subscription&>(v)) + " owner=" + escaped(v.owner_login);
        } else if constexpr (std::is_same_v<T, journal::durable_subscription_remove>) {
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
          {"body_bytes", m.body.size()}, {"deliver_at_ms", m.deliver_at_ms}, {"redeliveries", m.redeliveries}};
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
        } else if constexpr (std::is_same_v<T, journal::durable_subscription_create>) {
          json j = json_of(static_cast<const journal::durable_subscription&>(v));
          j["owner_login"] = v.owner_login;
          return j;
        } else if constexpr (std::is_same_v<T, journal::durable_subscription_remove>) {
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

}  // namespace tandem::tools::detail
