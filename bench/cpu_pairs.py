#!/usr/bin/python3
"""Interleaved pairs of bench/cpu_per_message.sh, compared pair by pair (issue 19).

    bench/cpu_pairs.py RESULTS.tsv [BASE_BUILD]

For each case and each repetition, the us/msg of every build divided by BASE_BUILD's (the
first build named in the file when not given) in the SAME repetition: the two runs were
back to back, so a drift of the shared machine (other builds, the disk's fsync latency,
which move us/msg by +-20% between repetitions of one build) touches both about alike.
Prints the ratios, their median and their range; a change is shown when the range of its
ratios lies below 1, not merely its median.
"""
import csv
import statistics
import sys
from collections import defaultdict


def main(path, base):
    rows = defaultdict(dict)  # (case, rep) -> build -> us/msg
    builds = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            if r.get("case") in (None, "case"):
                continue
            # Files gathered under bench/results/ carry a "run" column: one A/B run each.
            case = f'{r["run"]}/{r["case"]}' if r.get("run") else r["case"]
            rows[(case, r["rep"])][r["build"]] = float(r["us/msg"])
            if r["build"] not in builds:
                builds.append(r["build"])
    base = base or builds[0]
    cases = sorted({c for c, _ in rows})
    print(f"case\tbuild\tpairs\tratios to {base} (per repetition)\tmedian\trange")
    for case in cases:
        reps = sorted((rep for c, rep in rows if c == case), key=int)
        for build in builds:
            if build == base:
                continue
            ratios = [rows[(case, rep)][build] / rows[(case, rep)][base] for rep in reps
                      if build in rows[(case, rep)] and base in rows[(case, rep)]]
            if not ratios:
                continue
            text = " ".join(f"{x:.2f}" for x in ratios)
            print(f"{case}\t{build}\t{len(ratios)}\t{text}\t{statistics.median(ratios):.2f}\t"
                  f"{min(ratios):.2f}-{max(ratios):.2f}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None)
