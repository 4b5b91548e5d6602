#include "tools/journal/detail/open_store.h"

#include <algorithm>
#include <array>
#include <charconv>

#include <fmt/format.h>

#include "journal/errc.h"
#include "journal/format.h"
#include "journal/records.h"
#include "tools/journal/detail/render.h"
#include "tools/journal/journal_tool.h"

namespace tandem::tools::detail {

namespace jf = journal::format;

namespace {

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

}  // namespace

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

}  // namespace tandem::tools::detail
