// cluster: tandem-drill on the CephFS cluster of tools/cluster/tandem-cluster
// (`tandem-drill --cluster cephfs --sites 3`, docs/cephfs.md and docs/failover.md).
//
// Where things run. The cluster's sites and broker hosts are network namespaces on a bridge;
// the root namespace has no address there. The drill therefore moves itself into the
// cluster's admin namespace (its clients, monitor and probes reach the brokers at the hosts'
// addresses), starts broker slot i in host i+1's namespace on host i+1's mount of the one
// file system (fleet.h broker_place), and runs the fault primitives (`tandem-cluster
// kill-fuse 2`, ...) back in the namespace it came from, where the bridge's links are.
//
// Threads: attach() before any thread exists (setns changes only the calling thread; the
// threads created later inherit it). run() from the drill's main thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tandem::drill {

struct cluster_host {
  unsigned n = 0;           // host n, in site n
  std::string netns;        // "tc-host1"
  std::string ip;           // its address on the bridge
  std::filesystem::path mount;
};

class cluster {
 public:
  // Reads the running cluster's description (`CLI describe`), enters its admin namespace.
  // Throws drill_abort when there is no cluster or the namespace cannot be entered.
  static std::unique_ptr<cluster> attach(const std::filesystem::path& cli, const std::filesystem::path& log);
  ~cluster();
  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  const std::vector<cluster_host>& hosts() const { return hosts_; }
  const std::string& conf() const { return conf_; }
  const nlohmann::json& description() const { return description_; }
  // `CLI ARGS...` in the drill's original network namespace; its JSON output. Throws
  // drill_abort when it fails or outlives `timeout`. Its stderr goes to the log.
  nlohmann::json run(const std::vector<std::string>& args, std::chrono::seconds timeout = std::chrono::seconds(120));

 private:
  cluster() = default;
  std::filesystem::path cli_, log_;
  int home_netns_ = -1;  // the namespace the drill started in
  std::string conf_;
  std::vector<cluster_host> hosts_;
  nlohmann::json description_;
};

}  // namespace tandem::drill
