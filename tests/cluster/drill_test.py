#!/usr/bin/python3
"""The short cluster drill (CTest cluster_drill, label "cluster"): tandem-drill --cluster
cephfs on the fixture's cluster, every fault kind once: kill, host-death (fenced),
host-death-nofence, partition, site-loss, osd-loss, mds-fail. Passes when the drill's verdict
passes (lost 0, no unflagged duplicate, no overlapping writers, every episode recovered).

    drill_test.py TANDEM_DRILL TANDEMD [JSON_OUT]

Also fails when the drill reports an unexpected broker exit or a host it had to remount
before a restart (a slave fenced a host the episode did not ask to fence: the restart loop
of 2026-12-06, where every b0 started on a fenced mount exited 1).

Exits 77 (skipped) where the cluster cannot run (not root, no /dev/fuse, no namespaces).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
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
    # The brokers' logs are what explains a failure: kept (and named) unless the test passes.
    work = Path(tempfile.mkdtemp(prefix="cluster-drill-"))
    record = Path(out) if out else work / "drill.json"
    cmd += ["--work-dir", str(work / "run"), "--keep", "--json", str(record)]
    print(" ".join(cmd))
    rc = subprocess.run(cmd).returncode
    bad = [a for a in _anomalies(record)
           if a.get("what", "").startswith(("unexpected exit", "host "))]
    for a in bad:
        print("FAIL cluster_drill: " + json.dumps(a))
    if rc == 0 and not bad:
        shutil.rmtree(work, ignore_errors=True)
        return 0
    print(f"cluster_drill: logs and record kept in {work}")
    return rc or 1


def _anomalies(record: Path) -> list:
    try:
        return json.loads(record.read_text()).get("anomalies", [])
    except (OSError, ValueError):
        return []  # no record: the drill's own exit status says why


if __name__ == "__main__":
    sys.exit(main())
