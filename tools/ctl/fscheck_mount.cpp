// The mount half of tandemctl fscheck: reading /proc/self/mountinfo and judging a mount's
// type and options. Pure functions over text, so every rule has a unit test without mounts.
#include <fmt/format.h>

#include <sstream>

#include "tools/ctl/fscheck.h"

namespace tandem::ctl {

std::string_view to_string(check_result r) {
  switch (r) {
    case check_result::pass: return "PASS";
    case check_result::warn: return "WARN";
    case check_result::fail: return "FAIL";
  }
  return "?";
}

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo (octal).
std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      auto octal = s.substr(i + 1, 3);
      if (octal.find_first_not_of("01234567") == std::string_view::npos) {
        out.push_back(static_cast<char>((octal[0] - '0') * 64 + (octal[1] - '0') * 8 + (octal[2] - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::optional<mount_entry> parse_line(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> fields;
  for (std::string f; in >> f;) fields.push_back(f);
  // id parent major:minor root mount-point mount-options [optional...] - fstype source super
  std::size_t dash = 6;
  while (dash < fields.size() && fields[dash] != "-") ++dash;
  if (dash + 3 > fields.size()) return std::nullopt;  // no "- fstype source"
  mount_entry m;
  m.mount_point = unescape(fields[4]);
  m.mount_options = fields[5];
  m.fstype = fields[dash + 1];
  m.source = unescape(fields[dash + 2]);
  m.super_options = dash + 3 < fields.size() ? fields[dash + 3] : "";
  return m;
}

bool is_prefix(const std::filesystem::path& mount_point, const std::filesystem::path& path) {
  auto m = mount_point.begin(), p = path.begin();
  for (; m != mount_point.end(); ++m, ++p) {
    if (m->empty()) continue;  // a trailing separator
    if (p == path.end() || *m != *p) return false;
  }
  return true;
}

// The value of `key=` in a comma-separated option list, or nullopt; a bare `key` gives "".
std::optional<std::string> option(const std::string& options, std::string_view key) {
  std::istringstream in(options);
  for (std::string item; std::getline(in, item, ',');) {
    auto eq = item.find('=');
    if (item.substr(0, eq) != key) continue;
    return eq == std::string::npos ? std::string() : item.substr(eq + 1);
  }
  return std::nullopt;
}

check_outcome outcome(check_result r, std::string detail) {
  check_outcome o;
  o.name = "mount";
  o.result = r;
  o.detail = std::move(detail);
  return o;
}

check_outcome judge_nfs(const mount_entry& m) {
  const std::string all = m.mount_options + "," + m.super_options;
  auto vers = option(all, "vers");
  if (!vers) vers = option(all, "nfsvers");
  if (m.fstype == "nfs" && (!vers || vers->rfind("3", 0) == 0))
    return outcome(check_result::fail,
                   "NFSv3: locks go through the NLM/statd side protocol, are not fenced and can be lost silently "
                   "across a server restart; mount with vers=4.1 or later");
  if (option(all, "nolock"))
    return outcome(check_result::fail, "mounted with nolock: locks are only local to this client, so brokers on two "
                                       "hosts would both become master; remove nolock");
  if (auto local = option(all, "local_lock"); local && *local != "none")
    return outcome(check_result::fail, fmt::format("mounted with local_lock={}: locks are only local to this client; "
                                                   "use local_lock=none",
                                                   *local));
  if (option(all, "soft") || option(all, "softreval"))
    return outcome(check_result::fail, "soft mount: a slow server makes writes fail after retrans timeouts with data "
                                       "possibly half-written; mount hard");
  return outcome(check_result::pass,
                 fmt::format("NFS version {}, hard, server-side locks: a partitioned master keeps writing until its "
                             "lease (90 s by default) expires; make sure the export is `sync` (the server's "
                             "options cannot be seen from here)",
                             vers.value_or("4")));
}

}  // namespace

std::optional<mount_entry> mount_of(std::string_view mountinfo, const std::filesystem::path& path) {
  std::optional<mount_entry> best;
  std::istringstream in{std::string(mountinfo)};
  for (std::string line; std::getline(in, line);) {
    auto m = parse_line(line);
    if (!m || !is_prefix(m->mount_point, path)) continue;
    // Later lines with an equal or longer mount point are mounted on top: they win.
    if (!best || std::distance(m->mount_point.begin(), m->mount_point.end()) >=
                     std::distance(best->mount_point.begin(), best->mount_point.end()))
      best = std::move(m);
  }
  return best;
}

check_outcome judge_mount(const mount_entry& m) {
  const std::string& t = m.fstype;
  if (t == "nfs" || t == "nfs4") return judge_nfs(m);
  if (t == "fuse.glusterfs" || t == "glusterfs")
    return outcome(check_result::warn,
                   "GlusterFS: public bug reports show two clients holding one lock after a client reconnects, and "
                   "Red Hat's support for Gluster ended in 2024; trust it only if the lock checks below pass and "
                   "you accept that risk");
  if (t == "ceph" || t == "fuse.ceph-fuse" || t == "fuse.ceph")
    return outcome(check_result::pass,
                   "CephFS: the MDS arbitrates locks across clients; a client that dies keeps its locks until "
                   "session_autoclose (300 s) unless it is evicted: configure a fence_command (docs/cephfs.md)");
  if (t == "tmpfs" || t == "ramfs")
    return outcome(check_result::warn, t + " keeps nothing across a reboot or a power loss: fine for tests only");
  if (t == "overlay")
    return outcome(check_result::warn, "overlayfs: locks and fsync go to the upper layer only; do not share it "
                                       "between containers as a store");
  if (t.rfind("fuse", 0) == 0)
    return outcome(check_result::pass,
                   fmt::format("{} (source {}): a user-space daemon decides whether locks exclude; the lock checks "
                               "below are what counts",
                               t, m.source));
  return outcome(check_result::pass,
                 fmt::format("{} is a local file system: locks and fsync are the kernel's own, so brokers on "
                             "this host can share it, brokers on other hosts cannot",
                             t));
}

}  // namespace tandem::ctl
