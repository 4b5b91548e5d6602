#!/usr/bin/python3
"""The short cluster drill (CTest cluster_drill, label "cluster"): tandem-drill --cluster
cephfs on the fixture's cluster, every fault kind once: kill, host-death (fenced),
host-death-nofence, partition, site-loss, osd-loss, mds-fail. Passes when the drill's verdict
passes (lost 0, no unflagged duplicate, no overlapping writers, every episode recovered).

    drill_test.py TANDEM_DRILL TANDEMD [JSON_OUT]

Exits 77 (skipped) where the cluster cannot run (not root, no /dev/fuse, no namespaces).
"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "cluster"))
sys.dont_write_bytecode = True

from tandem_cluster import Cluster, default_layout, preflight  # noqa: E402

KINDS = "kill,host-death,host-death-nofence,partition,site-loss,osd-loss,mds-fail"


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)
    drill, tandemd = sys.argv[1], sys.argv[2]
    out = sys.argv[3] if len(sys.argv) > 3 else None
    problems = preflight()
    if problems:
        print("SKIP cluster_drill: " + "; ".join(problems))
        return 77
    c = Cluster(default_layout(os.environ.get("TANDEM_CLUSTER_NAME"), os.environ.get("TANDEM_CLUSTER_BASE")))
    if not c.lay.state_file.exists():
        print("FAIL cluster_drill: no cluster (the up fixture failed?)")
        return 1
    cmd = [drill, "--tandemd", tandemd, "--cluster", "cephfs", "--sites", "3", "--kinds", KINDS, "--order", "cycle",
           "--failovers", "7", "--interval-ms", "2000", "--failover-timeout-ms", "120000", "--fence-after-ms", "2000",
           "--pending", os.environ.get("TANDEM_CLUSTER_DRILL_PENDING", "1000"), "--rate", "300", "--producers", "4",
           "--consumers", "4", "--lock-check-interval-ms", "500", "--drain-timeout-ms", "60000"]
    if out:
        cmd += ["--json", out]
    print(" ".join(cmd))
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
