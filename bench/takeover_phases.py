#!/usr/bin/python3
"""Splits each takeover of a tandem-drill run into its phases, from the drill's JSON and the
brokers' logs (kept with --keep):

  fault -> lock     the fault until the new master logs `lock acquired` (the lock's wake-up,
                    lockmgr's epoch and holder.json writes, its first lock check)
  lock -> serving   until `main master epoch=N` (journal recovery, the engine, the port)
  serving -> accepted  until the drill's first message accepted by the new master

Usage: bench/takeover_phases.py RUN.json LOG_DIR   (LOG_DIR: the drill's WORK_DIR/logs)
"""
import datetime as dt
import glob
import json
import re
import sys


def seconds(stamp):
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main(run_json, log_dir):
    run = json.load(open(run_json))
    lines = []
    for path in glob.glob(log_dir + "/*.log"):
        with open(path, errors="replace") as f:
            lines += [l for l in f if re.search(r"lock acquired|main master epoch", l)]
    for f in run["failovers"]:
        if "accepted_utc" not in f or "new_epoch" not in f:
            print(f"ep{f['n']}: no new master accepted a message")
            continue
        epoch = f["new_epoch"]
        lock = [l for l in lines if f"lock acquired epoch={epoch} " in l]
        serving = [l for l in lines if f"master epoch={epoch} " in l]
        if not lock or not serving:
            print(f"ep{f['n']}: epoch {epoch} not found in the logs")
            continue
        t0, t3 = seconds(f["fault_utc"]), seconds(f["accepted_utc"])
        t1, t2 = seconds(lock[0].split()[0]), seconds(serving[0].split()[0])
        print(f"ep{f['n']}: total {1000 * (t3 - t0):6.0f}  fault->lock {1000 * (t1 - t0):5.0f}  "
              f"lock->serving {1000 * (t2 - t1):5.0f}  serving->accepted {1000 * (t3 - t2):5.0f}  "
              f"replayed {f.get('records_replayed', '?')}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
