#include "broker/console_api.h"

#include "broker/destination_listing.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace tandem::broker::console_api {

namespace {

using nlohmann::json;

std::string decode(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

}  // namespace

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::size_t number_or(const std::map<std::string, std::string>& q, const char* key, std::size_t fallback) {
  auto it = q.find(key);
  if (it == q.end()) return fallback;
  std::size_t v = 0;
  auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  return ec == std::errc{} && end == it->second.data() + it->second.size() ? v : fallback;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (!pair.empty()) out[decode(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : decode(pair.substr(eq + 1));
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
  }
  return out;
}

json page_destinations(const json& all, std::string_view query) {
  auto parsed = parse_destination_query(query);
  if (!parsed) return nullptr;
  const std::size_t limit = parsed->limit, offset = parsed->offset;
  const std::string& filter = parsed->filter;
  const std::string& sort = parsed->sort;

  std::vector<const json*> matched;
  for (const auto& d : all)
    if (filter.empty() || lower(d.value("name", "")).find(filter) != std::string::npos) matched.push_back(&d);
  auto figure = [&](const json* d) { return d->value(sort, std::uint64_t{0}); };
  std::stable_sort(matched.begin(), matched.end(), [&](const json* a, const json* b) {
    if (sort == "name") return a->value("name", "") < b->value("name", "");
    return figure(a) > figure(b);
  });
  json items = json::array();
  for (std::size_t i = offset; i < matched.size() && items.size() < limit; ++i) items.push_back(*matched[i]);
  return json{{"total", all.size()}, {"matched", matched.size()}, {"offset", offset}, {"limit", limit},
              {"sort", sort},        {"items", std::move(items)}};
}

}  // namespace tandem::broker::console_api
