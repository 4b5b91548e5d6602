#!/usr/bin/python3
"""Planned handover (issue 12): SIGTERM to the master, how long until a slave serves.

Runs tandem-drill with `--kinds term` (every episode a SIGTERM to the master, victims
restarted as slaves) and keeps its logs, then measures per episode, from the brokers' own log
lines, the time from the old master closing its STOMP port (its "main stopping" line, logged
right before the acceptor closes) to the new master opening its port ("server stomp
listening"). Prints p50/p90/p99/max and writes them, with the drill's verdict, as JSON.

The phases (lock released and lock acquired lines) show where the time goes: "stop" is the
old master's port close to its lock release, "wake" the release to the new master's lock
acquired line (its epoch and holder writes included), "start" that to its port open.

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
                elif component == "lockmgr" and message.startswith("lock released"):
                    out.append((when, path, "released"))
                elif component == "lockmgr" and message.startswith("lock acquired"):
                    out.append((when, path, "acquired"))
    return sorted(out)


def handovers(evs):
    """Per handover, milliseconds from the old master's port close to: its lock release
    ("stop"), the new master's lock acquisition (+ epoch and holder record: "wake"), the new
    master's port open ("start"); "total" is close to open. A phase whose line is missing
    (an older tandemd) is left out."""
    result = []
    for i, (t, path, what) in enumerate(evs):
        if what != "closed":
            continue
        marks = {}
        for t2, path2, what2 in evs[i + 1:]:
            if what2 == "released" and path2 == path and "released" not in marks:
                marks["released"] = t2
            elif what2 == "acquired" and path2 != path and "acquired" not in marks:
                marks["acquired"] = t2
            elif what2 == "open" and path2 != path:
                marks["open"] = t2
                break
        if "open" not in marks:
            continue
        ms = lambda a, b: (b - a).total_seconds() * 1000.0
        h = {"total": ms(t, marks["open"])}
        if "released" in marks and "acquired" in marks:
            h.update(stop=ms(t, marks["released"]), wake=ms(marks["released"], marks["acquired"]),
                     start=ms(marks["acquired"], marks["open"]))
        result.append(h)
    return result


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(round(p * (len(sorted_values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--drill", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--keep-logs", action="store_true", help="keep the drill's work directory (logs, store)")
    ap.add_argument("drill_args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    extra = [x for x in a.drill_args if x != "--"]
    work = tempfile.mkdtemp(prefix="tandem-handover-")
    drill_json = os.path.join(work, "drill.json")
    cmd = [a.drill, "--kinds", "term", "--work-dir", work, "--keep", "--json", drill_json, "-q"] + extra
    rc = subprocess.run(cmd).returncode
    with open(drill_json) as f:
        verdict = json.load(f)
    found = handovers(events(os.path.join(work, "logs")))
    ms = sorted(h["total"] for h in found)
    if not ms:
        sys.exit("no handover found in the logs")

    def summary(values):
        values = sorted(values)
        return {"p50": percentile(values, 0.5), "p90": percentile(values, 0.9), "p99": percentile(values, 0.99),
                "max": values[-1]} if values else None

    figures = {
        "command": cmd,
        "drill_exit": rc,
        "handovers": len(ms),
        "port_closed_to_port_open_ms": {"p50": percentile(ms, 0.5), "p90": percentile(ms, 0.9),
                                        "p99": percentile(ms, 0.99), "max": ms[-1], "all": ms},
        # Where the time goes: old master's stop (port closed -> lock released), the slave's
        # wake-up with the epoch and holder writes (-> lock acquired), recovery to serving.
        "phases_ms": {phase: summary([h[phase] for h in found if phase in h]) for phase in ("stop", "wake", "start")},
        "drill": {k: verdict.get(k) for k in ("ok", "lost", "duplicates", "duplicates_unflagged", "overlapping_writers",
                                              "failover_ms", "receipted", "delivered")},
    }
    with open(a.out, "w") as f:
        json.dump(figures, f, indent=1)
    p = figures["port_closed_to_port_open_ms"]
    print(f"{len(ms)} handovers: port closed -> port open p50 {p['p50']:.0f} ms  p90 {p['p90']:.0f} ms  "
          f"p99 {p['p99']:.0f} ms  max {p['max']:.0f} ms; drill lost {verdict.get('lost')}, ok {verdict.get('ok')}")
    for phase, q in figures["phases_ms"].items():
        if q:
            print(f"  {phase:5}  p50 {q['p50']:.0f} ms  p90 {q['p90']:.0f} ms  p99 {q['p99']:.0f} ms  max {q['max']:.0f} ms")
    if rc == 0 and not a.keep_logs:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs and store kept in {work}")
    sys.exit(rc)


if __name__ == "__main__":
    main()
