// What the tandem-journal commands share for output: names, positions, records and damage
// as text (one line each, every name escaped) and as JSON. Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "journal/reader.h"
#include "journal/records.h"

namespace tandem::tools::detail {

using nlohmann::json;

// A name quoted and escaped as a JSON string: names may hold any byte.
std::string escaped(std::string_view s);
// JSON on one line; invalid UTF-8 replaced, never thrown on.
std::string dump_json(const json& j);
std::string seg_name(std::uint64_t seq);                       // 16 hex digits, as the file
std::string pos_text(std::uint64_t seq, std::uint64_t off);   // "SEG:OFF"
std::string_view class_name(journal::damage_class c);

std::string text_of(const journal::message_add& m);
std::string text_of(const journal::message_remove& m);
std::string text_of(const journal::durable_subscription& s);
std::string text_of(const journal::record& r);
json json_of(const journal::message_add& m);
json json_of(const journal::message_remove& m);
json json_of(const journal::durable_subscription& s);
json json_of(const journal::record& r);

// Whether a record concerns `name` (a destination or a queue key).
bool touches(const journal::record& r, std::string_view name);

json damage_json(const journal::scan_item& it);
std::string damage_text(const journal::scan_item& it);
// A fenced item that is damaged bytes rather than a record.
bool fenced_garbage(const journal::scan_item& it);

}  // namespace tandem::tools::detail
