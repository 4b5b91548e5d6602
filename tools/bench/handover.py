#!/usr/bin/python3
"""Planned handover (issue 12): SIGTERM to the master, how long until a slave serves.

Runs tandem-drill with `--kinds term` (every episode a SIGTERM to the master, victims
restarted as slaves) and keeps its logs, then measures per episode, from the brokers' own log
lines, the time from the old master closing its STOMP port (its "main stopping" line, logged
right before the acceptor closes) to the new master opening its port ("server stomp
listening"). Prints p50/p90/p99/max and writes them, with the drill's verdict, as JSON.

Usage: tools/bench/handover.py --drill build/tools/drill/tandem-drill --out handover.json \
           -- --tandemd build/broker/tandemd --brokers 2 --failovers 50 --rate 1000
"""

import argparse
import datetime
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z \S+\s+(\S+) (.*)$")


def events(log_dir):
    """(time, log file, what) for every port close and port open in the brokers' logs."""
    out = []
    for path in glob.glob(os.path.join(log_dir, "*.log")):
        with open(path, errors="replace") as f:
            for line in f:
                m = LINE.match(line)
                if not m:
                    continue
                when = datetime.datetime.fromisoformat(m.group(1))
                component, message = m.group(2), m.group(3)
                if component == "main" and message.startswith("stopping"):
                    out.append((when, path, "closed"))
                elif component == "server" and message.startswith("stomp listening"):
                    out.append((when, path, "open"))
    return sorted(out)


def handovers(evs):
    """Milliseconds from each port close to the next port opened by another broker."""
    result = []
    for i, (t, path, what) in enumerate(evs):
        if what != "closed":
            continue
        for t2, path2, what2 in evs[i + 1:]:
            if what2 == "open" and path2 != path:
                result.append((t2 - t).total_seconds() * 1000.0)
                break
    return result


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(round(p * (len(sorted_values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--drill", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("drill_args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    extra = [x for x in a.drill_args if x != "--"]
    work = tempfile.mkdtemp(prefix="tandem-handover-")
    drill_json = os.path.join(work, "drill.json")
    cmd = [a.drill, "--kinds", "term", "--work-dir", work, "--keep", "--json", drill_json, "-q"] + extra
    rc = subprocess.run(cmd).returncode
    with open(drill_json) as f:
        verdict = json.load(f)
    ms = sorted(handovers(events(os.path.join(work, "logs"))))
    if not ms:
        sys.exit("no handover found in the logs")
    figures = {
        "command": cmd,
        "drill_exit": rc,
        "handovers": len(ms),
        "port_closed_to_port_open_ms": {"p50": percentile(ms, 0.5), "p90": percentile(ms, 0.9),
                                        "p99": percentile(ms, 0.99), "max": ms[-1], "all": ms},
        "drill": {k: verdict.get(k) for k in ("ok", "lost", "duplicates", "duplicates_unflagged", "overlapping_writers",
                                              "failover_ms", "receipted", "delivered")},
    }
    with open(a.out, "w") as f:
        json.dump(figures, f, indent=1)
    p = figures["port_closed_to_port_open_ms"]
    print(f"{len(ms)} handovers: port closed -> port open p50 {p['p50']:.0f} ms  p90 {p['p90']:.0f} ms  "
          f"p99 {p['p99']:.0f} ms  max {p['max']:.0f} ms; drill lost {verdict.get('lost')}, ok {verdict.get('ok')}")
    if rc == 0:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(rc)


if __name__ == "__main__":
    main()
