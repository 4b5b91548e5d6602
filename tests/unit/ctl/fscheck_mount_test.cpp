// fscheck's mount half: which mountinfo line holds a path, and what its options mean.
#include <doctest/doctest.h>

#include "tools/ctl/fscheck.h"

using namespace tandem::ctl;

namespace {

const char* mountinfo =
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n"
    "30 22 0:25 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw,size=1024k\n"
    "41 22 0:40 / /srv/nfs3 rw,relatime shared:20 - nfs srv:/export rw,vers=3,hard,proto=tcp\n"
    "42 22 0:41 / /srv/nfs4 rw,relatime shared:21 - nfs4 srv:/export rw,vers=4.2,hard,local_lock=none\n"
    "43 22 0:42 / /srv/with\\040space rw - fuse.ceph-fuse ceph-fuse rw,user_id=0\n"
    "44 22 0:43 / /srv/gluster rw - fuse.glusterfs site1:/vol rw\n"
    "45 22 0:44 / /srv/nfs4 rw - nfs4 other:/export rw,vers=4.1,soft\n";

mount_entry nfs4(std::string super) {
  mount_entry m;
  m.mount_point = "/srv/x";
  m.fstype = "nfs4";
  m.source = "srv:/export";
  m.mount_options = "rw,relatime";
  m.super_options = std::move(super);
  return m;
}

}  // namespace

TEST_CASE("the deepest mount point that is a prefix of the path holds it") {
  auto m = mount_of(mountinfo, "/dev/shm/store");
  REQUIRE(m);
  CHECK(m->fstype == "tmpfs");
  CHECK(mount_of(mountinfo, "/var/lib/tandem")->fstype == "ext4");
  // A sibling with a common string prefix is not a parent: /dev/shmx is on /.
  CHECK(mount_of(mountinfo, "/dev/shmx")->fstype == "ext4");
}

TEST_CASE("a mount stacked on another at the same point wins, as the kernel resolves it") {
  auto m = mount_of(mountinfo, "/srv/nfs4/store");
  REQUIRE(m);
  CHECK(m->source == "other:/export");
  CHECK(m->super_options == "rw,vers=4.1,soft");
}

TEST_CASE("escaped mount points are unescaped") {
  auto m = mount_of(mountinfo, "/srv/with space/store");
  REQUIRE(m);
  CHECK(m->fstype == "fuse.ceph-fuse");
  CHECK(m->mount_point == "/srv/with space");
}

TEST_CASE("a malformed or empty mountinfo gives no mount") {
  CHECK_FALSE(mount_of("", "/x"));
  CHECK_FALSE(mount_of("22 1 254:0 / / rw,relatime shared:1\n", "/x"));  // no "- fstype source"
}

TEST_CASE("NFSv3, nolock, local_lock and soft mounts are refused, each saying what to change") {
  auto v3 = judge_mount(*mount_of(mountinfo, "/srv/nfs3/store"));
  CHECK(v3.result == check_result::fail);
  CHECK(v3.detail.find("vers=4.1") != std::string::npos);
  auto nolock = judge_mount(nfs4("rw,vers=4.2,nolock"));
  CHECK(nolock.result == check_result::fail);
  CHECK(nolock.detail.find("nolock") != std::string::npos);
  auto local = judge_mount(nfs4("rw,vers=4.2,local_lock=posix"));
  CHECK(local.result == check_result::fail);
  CHECK(local.detail.find("local_lock=none") != std::string::npos);
  CHECK(judge_mount(nfs4("rw,vers=4.1,soft")).result == check_result::fail);
}

TEST_CASE("NFSv4 hard with local_lock=none passes and reminds of the export's sync") {
  auto ok = judge_mount(nfs4("rw,vers=4.2,hard,local_lock=none"));
  CHECK(ok.result == check_result::pass);
  CHECK(ok.detail.find("sync") != std::string::npos);
}

TEST_CASE("GlusterFS and tmpfs warn, CephFS and local file systems pass") {
  CHECK(judge_mount(*mount_of(mountinfo, "/srv/gluster/s")).result == check_result::warn);
  CHECK(judge_mount(*mount_of(mountinfo, "/dev/shm/s")).result == check_result::warn);
  auto ceph = judge_mount(*mount_of(mountinfo, "/srv/with space/s"));
  CHECK(ceph.result == check_result::pass);
  CHECK(ceph.detail.find("fence_command") != std::string::npos);
  CHECK(judge_mount(*mount_of(mountinfo, "/var/lib/tandem")).result == check_result::pass);
}
