#!/usr/bin/env python3
"""summarize_pg.py OUT: turns OUT/postgresql-raw/ (bench/compare.sh --pg) into
OUT/postgresql.json and OUT/postgresql.md: per case and broker kind the median, min and max
of the send rate (persistent 1 KiB, RECEIPT per message), Tandem's PostgreSQL store over
ActiveMQ's JDBC store (issue 14's goal: >= 5x at 16 producers, >= 10x at 64), and what the
synchronous standby costs (tandem_pg over tandem_pg_async)."""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summarize import failover_ms, runs, send_rate  # noqa: E402  (one reader of the raw files)

KINDS = {
    "tandem_pg": "Tandem, PostgreSQL store, synchronous standby",
    "tandem_pg_async": "Tandem, PostgreSQL store, no synchronous standby",
    "activemq_jdbc": "ActiveMQ 5.17 JDBC store, synchronous standby",
    "tandem": "Tandem, journal on local disk",
}
CASES = {"p1_r1": 1, "p16_r1": 16, "p64_r1": 64}
GOALS = {"p16_r1": 5.0, "p64_r1": 10.0}


def main(out):
    raw = os.path.join(out, "postgresql-raw")
    env = json.load(open(os.path.join(raw, "environment.json")))
    summary = {"environment": env, "cases": {}}
    for case in CASES:
        entry = {}
        for kind in KINDS:
            values = [v for meta, parts in runs(raw, case, kind).values() if (v := send_rate(meta, parts))]
            if values:
                entry[kind] = {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}
        summary["cases"][case] = entry
    lines = ["# Tandem's PostgreSQL store against ActiveMQ's JDBC store (issue 14)", "",
             f"Run {env.get('started')} .. {env.get('finished')}, commit {env.get('git_commit')}"
             f"{' (dirty)' if env.get('git_dirty') else ''}, {env.get('cpus')} CPUs ({env.get('cpu_model')}),"
             f" {env.get('reps')} repetition(s) of {env.get('measure_s')} s after {env.get('warmup_s')} s warm-up,"
             f" load average {env.get('loadavg_start')} -> {env.get('loadavg_end')}.",
             "Command: `bench/compare.sh --pg` (exact options in bench/compare.sh, run_case).", "",
             "Persistent 1 KiB, RECEIPT per message, window 1 per producer; msgs/s sent, median (min..max).", "",
             "| producers | " + " | ".join(KINDS.values()) + " | Tandem pg / ActiveMQ JDBC | goal | second copy costs |",
             "|---|" + "---|" * (len(KINDS) + 3)]
    for case, producers in CASES.items():
        e = summary["cases"][case]
        cells = []
        for kind in KINDS:
            st = e.get(kind)
            cells.append(f"{st['median']:.0f} ({st['min']:.0f}..{st['max']:.0f})" if st else "-")
        pg, amq, pga = (e.get(k, {}).get("median") for k in ("tandem_pg", "activemq_jdbc", "tandem_pg_async"))
        ratio = pg / amq if pg and amq else None
        cost = 1 - pg / pga if pg and pga else None
        e["tandem_pg_over_activemq_jdbc"] = ratio
        e["sync_standby_cost"] = cost
        goal = GOALS.get(case)
        goal_text = f">= {goal:.0f}x: {'met' if ratio and ratio >= goal else 'MISSED'}" if goal else "-"
        lines.append(f"| {producers} | " + " | ".join(cells) +
                     f" | {ratio:.1f}x |" if ratio else f"| {producers} | " + " | ".join(cells) + " | - |")
        lines[-1] += f" {goal_text} | {cost * 100:.0f}% |" if cost is not None else f" {goal_text} | - |"
    fo = {}
    for kind in KINDS:
        values = [v for meta, parts in runs(raw, "failover", kind).values() if (v := failover_ms(meta, parts))]
        if values:
            fo[kind] = {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}
    if fo:
        summary["cases"]["failover"] = fo
        lines += ["", "Failover: SIGKILL of the master broker with pending messages (case `failover`: kill -> first "
                  "RECEIPT from the other broker), ms, median (min..max):", ""]
        lines += [f"- {KINDS[k]}: {v['median']:.0f} ({v['min']:.0f}..{v['max']:.0f})" for k, v in fo.items()]
    lines += ["", "Raw tandem-bench JSON and per-run facts: postgresql-raw/.", ""]
    json.dump(summary, open(os.path.join(out, "postgresql.json"), "w"), indent=1)
    open(os.path.join(out, "postgresql.md"), "w").write("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
