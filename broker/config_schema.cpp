#include "broker/config_schema.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "broker/config.h"
#include "journal/identity.h"

namespace tandem::broker {

namespace detail {
extern const std::string_view config_schema_text;  // config_schema_text.cpp, generated
}

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

std::string_view config_schema_text() { return detail::config_schema_text; }

const ojson& config_schema() {
  // A schema that does not parse is a build defect; schema_test catches it before release.
  static const ojson schema = ojson::parse(detail::config_schema_text);
  return schema;
}

const std::vector<std::string_view>& schema_keys() {
  static const std::vector<std::string_view> keys = [] {
    std::vector<std::string_view> k;
    for (const auto& [key, _] : config_schema().at("properties").items()) k.push_back(key);
    return k;
  }();
  return keys;
}

std::string short_json(const json& v) {
  std::string text = v.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

namespace {

std::vector<std::string> types_of(const ojson& node) {
  std::vector<std::string> out;
  auto it = node.find("type");
  if (it == node.end()) return out;
  if (it->is_string()) out.push_back(it->get<std::string>());
  else
    for (const auto& t : *it) out.push_back(t.get<std::string>());
  return out;
}

bool type_matches(std::string_view type, const json& v) {
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_number_integer();
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  return false;
}

// "A", "A or B", "A, B or C".
std::string join_or(const std::vector<std::string>& parts, std::string_view last_sep = " or ") {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += i + 1 == parts.size() ? std::string(last_sep) : std::string(", ");
    out += parts[i];
  }
  return out;
}

std::string keys_of(const ojson& node) {
  std::vector<std::string> keys;
  if (auto p = node.find("properties"); p != node.end())
    for (const auto& [k, _] : p->items()) keys.push_back(k);
  std::string out;
  for (std::size_t i = 0; i < keys.size(); ++i) out += (i ? ", " : "") + keys[i];
  return out;
}

std::string form_of_type(const ojson& node, std::string_view type) {
  std::string unit = node.contains("x-unit") ? fmt::format(" ({})", node["x-unit"].get<std::string>()) : "";
  if (type == "string") {
    if (auto e = node.find("enum"); e != node.end()) {
      std::vector<std::string> values;
      for (const auto& v : *e) values.push_back(v.dump());
      return join_or(values);
    }
    std::string format = node.value("format", "");
    if (format == "host-port") return R"("HOST:PORT" (IPv6: "[::1]:PORT"))";
    if (format == "store-id") return R"(32 hex digits (the "store_id" of GET /health))";
    if (format == "password-hash")
      return R"(a hash made by `tandemd --hash-password` ("pbkdf2-sha256:<iterations>:<salt hex>:<key hex>"))";
    return node.value("minLength", 0) > 0 ? "a non-empty string" : "a string";
  }
  if (type == "integer" || type == "number") {
    std::string noun = type == "integer" ? "an integer" : "a number";
    bool has_min = node.contains("minimum"), has_max = node.contains("maximum");
    if (has_min && has_max) return fmt::format("{} from {} to {}{}", noun, node["minimum"].dump(), node["maximum"].dump(), unit);
    if (has_min) return fmt::format("{} >= {}{}", noun, node["minimum"].dump(), unit);
    if (has_max) return fmt::format("{} <= {}{}", noun, node["maximum"].dump(), unit);
    return noun + unit;
  }
  if (type == "boolean") return "true or false";
  if (type == "null") return "null";
  if (type == "object") return fmt::format("an object with keys {}", keys_of(node));
  if (type == "array") {
    auto items = node.find("items");
    if (items != node.end() && items->value("type", "") == "object")
      return fmt::format("a list of objects with keys {}", keys_of(*items));
    return "a list";
  }
  return std::string(type);
}

// Ties an error to its top-level key and words it.
struct checker {
  std::string_view source;
  std::vector<std::string>& errors;
  std::set<std::string>& failed;

  static std::string top_of(const std::string& path) {
    auto end = path.find_first_of(".[");
    return path.substr(0, end);
  }
  void bad_value(const std::string& path, const json& v, const std::string& expected) {
    errors.push_back(fmt::format("{}: key \"{}\" has bad value {}: expected {}", source, path, short_json(v), expected));
    failed.insert(top_of(path));
  }
  void unknown_key(const std::string& parent, const std::string& key, const ojson& props) {
    std::vector<std::string_view> valid;
    for (const auto& [k, _] : props.items()) valid.push_back(k);
    auto near = nearest_key(key, valid);
    std::string path = parent.empty() ? key : parent + "." + key;
    // Inside a list item the key alone reads best ("users[0].passwrd": did you mean
    // "password"?); inside an object the full path ("sync.interval_ms").
    std::string prefix = parent.empty() || parent.back() == ']' ? "" : parent + ".";
    errors.push_back(fmt::format("{}: unknown key \"{}\"{}", source, path,
                                 near.empty() ? fmt::format(" (valid keys: see docs/configuration.md or "
                                                            "`tandemd --print-config-reference`)")
                                              : fmt::format(": did you mean \"{}{}\"?", prefix, near)));
    if (!parent.empty()) failed.insert(top_of(parent));
  }

  void check(const ojson& node, const json& v, const std::string& path) {
    if (auto any = node.find("anyOf"); any != node.end()) {
      // Validate against the branch made for this JSON type, so errors inside an object
      // name the inner key rather than "none of the forms matched".
      for (const auto& branch : *any) {
        auto types = types_of(branch);
        if (std::any_of(types.begin(), types.end(), [&](const std::string& t) { return type_matches(t, v); })) {
          check(branch, v, path);
          return;
        }
      }
      bad_value(path, v, expected_form(node));
      return;
    }
    auto types = types_of(node);
    if (!types.empty() && std::none_of(types.begin(), types.end(), [&](const std::string& t) { return type_matches(t, v); })) {
      bad_value(path, v, expected_form(node));
      return;
    }
    if (auto e = node.find("enum"); e != node.end()) {
      if (std::none_of(e->begin(), e->end(), [&](const ojson& allowed) { return allowed.dump() == v.dump(); })) {
        bad_value(path, v, expected_form(node));
        return;
      }
    }
    if (v.is_string()) {
      const auto& s = v.get_ref<const std::string&>();
      std::string format = node.value("format", "");
      endpoint_address ignored;
      bool ok = s.size() >= node.value("minLength", std::size_t{0});
      if (ok && format == "host-port") ok = parse_endpoint(s, ignored);
      if (ok && format == "password-hash") ok = is_password_hash_form(s);
      if (ok && format == "store-id") ok = journal::store_id::parse(s).has_value();
      if (!ok) bad_value(path, v, expected_form(node));
      return;
    }
    if (v.is_number()) {
      // long double holds every uint64 and int64 exactly on x86-64 (64-bit mantissa).
      auto as_ld = [](const auto& j) {
        if (j.is_number_unsigned()) return static_cast<long double>(j.template get<std::uint64_t>());
        if (j.is_number_integer()) return static_cast<long double>(j.template get<std::int64_t>());
        return static_cast<long double>(j.template get<double>());
      };
      long double x = as_ld(v);
      if ((node.contains("minimum") && x < as_ld(node["minimum"])) || (node.contains("maximum") && x > as_ld(node["maximum"])))
        bad_value(path, v, expected_form(node));
      return;
    }
    if (v.is_object()) {
      static const ojson no_properties = ojson::object();
      auto p = node.find("properties");
      const ojson& props = p != node.end() ? *p : no_properties;
      for (auto it = v.begin(); it != v.end(); ++it) {
        std::string child = path.empty() ? it.key() : path + "." + it.key();
        if (auto sub = props.find(it.key()); sub != props.end()) check(*sub, *it, child);
        else if (node.value("additionalProperties", true) == false) unknown_key(path, it.key(), props);
      }
      if (auto req = node.find("required"); req != node.end()) {
        for (const auto& k : *req) {
          if (!v.contains(k.get<std::string>())) {
            errors.push_back(fmt::format("{}: key \"{}\" has no \"{}\": expected {}", source, path, k.get<std::string>(),
                                         expected_form(node)));
            failed.insert(top_of(path));
          }
        }
      }
      return;
    }
    if (v.is_array()) {
      if (auto items = node.find("items"); items != node.end())
        for (std::size_t i = 0; i < v.size(); ++i) check(*items, v[i], fmt::format("{}[{}]", path, i));
    }
  }
};

}  // namespace

std::string expected_form(const ojson& node) {
  if (auto any = node.find("anyOf"); any != node.end()) {
    std::vector<std::string> forms;
    for (const auto& branch : *any) forms.push_back(expected_form(branch));
    return join_or(forms, ", or ");
  }
  std::vector<std::string> forms;
  for (const auto& t : types_of(node)) forms.push_back(form_of_type(node, t));
  return forms.empty() ? "any value" : join_or(forms, ", or ");
}

std::vector<std::string> check_against_schema(const json& doc, std::string_view source, std::set<std::string>& failed_keys) {
  std::vector<std::string> errors;
  checker c{source, errors, failed_keys};
  c.check(config_schema(), doc, "");
  return errors;
}

std::string check_setting(std::string_view key, const json& value) {
  const auto& props = config_schema().at("properties");
  auto it = props.find(std::string(key));
  if (it == props.end()) return fmt::format("a known setting (\"{}\" is not in the schema)", key);
  std::vector<std::string> errors;
  std::set<std::string> failed;
  checker c{"", errors, failed};
  c.check(*it, value, std::string(key));
  return errors.empty() ? std::string() : expected_form(*it);
}

std::string render_config_reference() {
  const ojson& schema = config_schema();
  auto cell = [](std::string text) {
    std::string out;
    for (char ch : text) {
      if (ch == '|') out += "\\|";
      else if (ch == '\n') out += ' ';
      else out += ch;
    }
    return out;
  };
  std::string out;
  out += "# tandemd configuration reference\n\n";
  out += "<!-- Generated from broker/config_schema.json by `tandemd --print-config-reference`; do not edit.\n"
         "     Regenerate with: cmake --build BUILD --target config-reference -->\n\n";
  out += schema.value("description", "") + "\n\n";
  out += "The schema itself is installed as `/usr/share/tandem/config_schema.json` (JSON Schema 2020-12), for\n"
         "editors and config management tools.\n";
  // Groups in order of first appearance, keys in file order within each.
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> by_group;
  for (const auto& [key, node] : schema.at("properties").items()) {
    std::string g = node.value("x-group", "Other");
    if (!by_group.count(g)) groups.push_back(g);
    by_group[g].push_back(key);
  }
  for (const auto& g : groups) {
    out += fmt::format("\n## {}\n\n| key | value | default | meaning |\n|---|---|---|---|\n", g);
    for (const auto& key : by_group[g]) {
      const ojson& node = schema["properties"][key];
      std::string def = node.contains("default") ? fmt::format("`{}`", node["default"].dump()) : "(none)";
      out += fmt::format("| `{}` | {} | {} | {} |\n", key, cell(expected_form(node)), cell(def),
                         cell(node.value("description", "")));
    }
  }
  return out;
}

}  // namespace tandem::broker
