#!/usr/bin/env python3
"""Summarize a bench/compare.sh run: median, min and max per case and broker, the
Tandem/ActiveMQ ratio, the fraction of the raw disk limit, and the issue's targets.

    summarize.py RESULTS_DIR

Reads RESULTS_DIR/comparison-raw/ (tandem-bench JSON, fio JSON, per-run *.meta.json,
environment.json) and RESULTS_DIR/comparison-notes.md if present (the hand-written analysis,
included verbatim); writes RESULTS_DIR/comparison.json and RESULTS_DIR/comparison.md. Rerun
it alone after editing the notes.
"""
import glob
import json
import os
import re
import statistics
import sys

KIND_NAMES = {"tandem": "Tandem", "activemq": "ActiveMQ", "activemq_tuned": "ActiveMQ (lock poll 100 ms)",
              "sink": "stomp.py ceiling (a sink)", "tandem_t2": "Tandem, threads 2"}
DISK_MODE = ("fio: a fresh file preallocated with posix_fallocate (as each journal segment is), "
             "sequential buffered pwrite of the block size, fdatasync after every write "
             "(--fallocate=posix --ioengine=psync --rw=write --fdatasync=1 --size=256M), "
             "4 s, right before each broker's run of the cases it bounds")


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values),
            "values": values}


def runs(raw, case_file, kind):
    """Rep number -> (meta, {part: json}) for one case file prefix and broker kind."""
    out = {}
    for path in glob.glob(os.path.join(raw, f"{case_file}.{kind}.*.meta.json")):
        rep = int(re.search(r"\.(\d+)\.meta\.json$", path).group(1))
        parts = {}
        for part in ("bench", "preload", "drain", "fio"):
            parts[part] = load(os.path.join(raw, f"{case_file}.{kind}.{rep}.{part}.json"))
        out[rep] = (load(path) or {}, parts)
    return dict(sorted(out.items()))


def send_rate(meta, parts):
    b = parts["bench"]
    return b["send"]["msgs_per_s"] if b and b.get("send") else None


def send_mib(meta, parts):
    b = parts["bench"]
    return b["send"]["mib_per_s"] if b and b.get("send") else None


def delivery_rate(meta, parts):
    b = parts["bench"]
    return b["delivery"]["msgs_per_s"] if b and b.get("delivery") else None


def drain_rate(meta, parts):
    d = parts["drain"]
    return d["delivery"]["msgs_per_s"] if d and d.get("delivery") else None


def rss_per_message(meta, parts):
    if "rss_pending_kib" not in meta or "rss_empty_kib" not in meta or not meta.get("pending"):
        return None
    return (meta["rss_pending_kib"] - meta["rss_empty_kib"]) * 1024.0 / meta["pending"]


def rss_beyond_cache(meta, parts):
    per = rss_per_message(meta, parts)
    if per is None or "body_cache_bytes" not in meta:
        return None
    # The cache holds at most body_cache_bytes of bodies, and no more bodies than are pending.
    cached = min(meta["body_cache_bytes"], meta["pending"] * meta.get("body_bytes", 1024))
    return per - cached / meta["pending"]


def failover_ms(meta, parts):
    b = parts["bench"]
    if not b or "kill_ns" not in meta:
        return None
    accepts = [r["first_accept_ns"] for r in b.get("reconnects", []) if r.get("first_accept_ns")]
    return (min(accepts) - meta["kill_ns"]) / 1e6 if accepts else None


# case -> title, metric, unit, higher is better, raw file prefix, extractor, kinds, disk baseline
CASES = {
    "p1_r1": ("1. persistent 1 KiB, 1 producer, receipt per message", "msgs/s sent", "msgs/s", True, "p1_r1",
              send_rate, ["tandem", "activemq"], "1k_iops"),
    "p64_r1": ("2. persistent 1 KiB, 64 producers, receipt per message", "MiB/s sent", "MiB/s", True, "p64_r1",
               send_mib, ["tandem", "activemq"], "64k_mib"),
    "p16_r100": ("3. persistent 1 KiB, 16 producers, receipt every 100", "MiB/s sent", "MiB/s", True, "p16_r100",
                 send_mib, ["tandem", "activemq", "tandem_t2"], "64k_mib"),
    "drain_1m": ("4. drain a backlog, 4 consumers, client-individual ack", "msgs/s delivered", "msgs/s", True,
                 "backlog", drain_rate, ["tandem", "activemq"], None),
    "topic_np": ("5. non-persistent topic, 1 producer, 8 subscribers", "deliveries/s", "msgs/s", True, "topic_np",
                 delivery_rate, ["tandem", "activemq", "tandem_t2"], None),
    "failover": ("6. failover: SIGKILL of the master -> first message accepted by the slave", "ms", "ms", False,
                 "failover", failover_ms, ["tandem", "activemq", "activemq_tuned"], None),
    "rss_1m": ("7. broker RSS per pending persistent message ((RSS full - RSS empty) / pending)", "bytes/msg",
               "B", False, "backlog", rss_per_message, ["tandem", "activemq"], None),
    "py_p1": ("8. stomp.py, persistent 1 KiB, 1 producer, receipt per message", "msgs/s sent", "msgs/s", True,
              "py_p1", send_rate, ["tandem", "activemq", "sink"], "1k_iops"),
    "py_p16": ("9. stomp.py, persistent 1 KiB, 16 producers, receipt per message", "msgs/s sent", "msgs/s", True,
               "py_p16", send_rate, ["tandem", "activemq", "sink"], None),
}


def diagnostics(raw):
    """Per case and broker, medians over the repetitions of what explains a figure: the broker's
    CPU per message and share of a core, the client's share of a core, and for Tandem the
    journal's group size (appends per fdatasync), mean fdatasync time and share of the time
    spent in fdatasync."""
    rows = []
    for case, prefix, part in (("p1_r1", "p1_r1", "bench"), ("p64_r1", "p64_r1", "bench"),
                               ("p16_r100", "p16_r100", "bench"), ("drain_1m", "backlog", "drain"),
                               ("topic_np", "topic_np", "bench")):
        for kind in ("tandem", "activemq", "tandem_t2"):
            acc = {}
            for meta, parts in runs(raw, prefix, kind).values():
                b = parts.get(part)
                if not b or "broker_cpu_s" not in meta:
                    continue
                if part == "drain" or case == "topic_np":
                    msgs, secs = b["delivery"]["messages"], b["delivery"]["seconds"]
                else:
                    msgs, secs = b["send"]["messages"], b["send"]["seconds"]
                wall = b["client"]["wall_s"]
                if not msgs or not wall:
                    continue
                vals = {
                    "broker_cpu_us_per_msg": meta["broker_cpu_s"] * 1e6 / msgs,
                    "broker_cpu_share": meta["broker_cpu_s"] / wall,
                    "client_cpu_share": (b["client"]["cpu_user_s"] + b["client"]["cpu_system_s"]) / wall,
                }
                if b.get("receipt_latency_ms"):
                    vals["receipt_p50_ms"] = b["receipt_latency_ms"]["p50"]
                    vals["receipt_mean_ms"] = b["receipt_latency_ms"]["mean"]
                jb, ja = meta.get("journal_before"), meta.get("journal_after")
                if jb and ja and ja["fsyncs"] > jb["fsyncs"]:
                    n = ja["fsyncs"] - jb["fsyncs"]
                    vals["appends_per_fsync"] = (ja["appends"] - jb["appends"]) / n
                    vals["fsync_mean_ms"] = (ja["fsync_s"] - jb["fsync_s"]) * 1e3 / n
                    vals["fsync_busy_share"] = (ja["fsync_s"] - jb["fsync_s"]) / wall
                for k, v in vals.items():
                    acc.setdefault(k, []).append(v)
            if acc:
                rows.append({"case": case, "broker": kind, **{k: statistics.median(v) for k, v in acc.items()}})
    return rows


def fmt(v, unit):
    if v is None:
        return "-"
    if unit in ("MiB/s",):
        return f"{v:.2f}"
    if unit in ("ms", "B"):
        return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
    return f"{v:,.0f}"


def fio_values(j):
    """(writes/s, MiB/s, fdatasync p50 ms) of a fio JSON."""
    w = j["jobs"][0]["write"]
    sync = j["jobs"][0].get("sync", {}).get("lat_ns", {}).get("percentile", {})
    return w["iops"], w["bw"] / 1024.0, sync["50.000000"] / 1e6 if "50.000000" in sync else None


def fio_stats(raw, prefixes):
    iops, mib, p50 = [], [], []
    for path in sorted(p for prefix in prefixes for p in glob.glob(os.path.join(raw, f"{prefix}.*.fio.json"))):
        j = load(path)
        if not j:
            continue
        w = j["jobs"][0]["write"]
        iops.append(w["iops"])
        mib.append(w["bw"] / 1024.0)
        sync = j["jobs"][0].get("sync", {}).get("lat_ns", {}).get("percentile", {})
        if "50.000000" in sync:
            p50.append(sync["50.000000"] / 1e6)
    if not iops:
        return None
    return {"writes_per_s": stats(iops), "mib_per_s": stats(mib), "fdatasync_p50_ms": stats(p50)}


def target(text, value, goal, at_least, unit="", per_rep=None):
    if value is None:
        return {"target": text, "value": None, "goal": goal, "met": False, "shortfall": "not measured"}
    per_rep = [v for v in (per_rep or []) if v is not None]
    if per_rep:
        met_reps = sum(1 for v in per_rep if (v >= goal if at_least else v <= goal))
        extra = {"per_repetition": per_rep, "repetitions_meeting": met_reps}
    else:
        extra = {}
    met = value >= goal if at_least else value <= goal
    if met:
        how = ""
    elif at_least:
        how = f"{(1 - value / goal) * 100:.0f}% short ({value / goal:.2f} of the goal)"
    else:
        how = f"{(value / goal - 1) * 100:.0f}% over ({value / goal:.2f}x the goal)"
    return {"target": text, "value": value, "goal": goal, "met": met, "shortfall": how, "unit": unit, **extra}


def main():
    out = sys.argv[1]
    raw = os.path.join(out, "comparison-raw")
    env = load(os.path.join(raw, "environment.json")) or {}
    disk = {"mode": DISK_MODE}
    for name, prefixes in (("1k", ["p1_r1"]), ("64k", ["p64_r1", "p16_r100"])):
        st = fio_stats(raw, prefixes)
        if st:
            disk[name] = st
    # Each run is divided by the fio run made right before it: (what, fio value index, label).
    baselines = {"1k_iops": (0, "the 1 KiB fio run before it (writes/s)"),
                 "64k_mib": (1, "the 64 KiB fio run before it (MiB/s)")}

    summary = {"environment": env, "disk": disk, "cases": {}, "targets": [], "problems": []}
    for case, (title, metric, unit, higher, prefix, extract, kinds, base) in CASES.items():
        entry = {"title": title, "metric": metric, "unit": unit, "higher_is_better": higher, "brokers": {}}
        fractions = {}
        for kind in kinds:
            values = []
            for rep, (meta, parts) in runs(raw, prefix, kind).items():
                v = extract(meta, parts)
                values.append(v)
                if base and v is not None and parts.get("fio"):
                    limit = fio_values(parts["fio"])[baselines[base][0]]
                    if limit:
                        fractions.setdefault(kind, []).append(v / limit)
                for key in ("bench_exit", "preload_exit", "drain_exit"):
                    if meta.get(key, 0) != 0:
                        summary["problems"].append(f"{case} {kind} rep {rep}: tandem-bench {key.split('_')[0]} exit {meta[key]}")
                if v is None:
                    summary["problems"].append(f"{case} {kind} rep {rep}: no value")
                d = parts.get("drain")
                if case == "drain_1m" and d and d.get("delivery") and meta.get("pending") and \
                        d["delivery"]["messages"] < meta["pending"]:
                    summary["problems"].append(
                        f"{case} {kind} rep {rep}: drained {d['delivery']['messages']} of {meta['pending']}")
            entry["brokers"][kind] = stats(values)
        if case == "rss_1m":
            vals = [rss_beyond_cache(m, p) for m, p in runs(raw, prefix, "tandem").values()]
            entry["tandem_beyond_body_cache"] = stats(vals)
            entry["body_cache_bytes"] = env.get("tandem_body_cache_bytes")
            entry["pending"] = env.get("backlog_messages")
        t, a = entry["brokers"].get("tandem"), entry["brokers"].get("activemq")
        entry["ratio_tandem_activemq"] = t["median"] / a["median"] if t and a and a["median"] else None
        if case == "failover":
            at = entry["brokers"].get("activemq_tuned")
            entry["activemq_over_tandem"] = a["median"] / t["median"] if t and a and t["median"] else None
            entry["activemq_tuned_over_tandem"] = at["median"] / t["median"] if t and at and t["median"] else None
        if base:
            entry["disk_baseline"] = {"what": baselines[base][1]}
            for kind in kinds:
                st = entry["brokers"][kind]
                if st and kind in fractions:
                    st["fractions_of_disk"] = fractions[kind]
                    st["fraction_of_disk"] = statistics.median(fractions[kind])
        summary["cases"][case] = entry

    c = summary["cases"]
    med = lambda case, kind: (c[case]["brokers"].get(kind) or {}).get("median")
    frac = lambda case, kind: (c[case]["brokers"].get(kind) or {}).get("fraction_of_disk")
    fracs = lambda case, kind: (c[case]["brokers"].get(kind) or {}).get("fractions_of_disk")
    vals = lambda case, kind: (c[case]["brokers"].get(kind) or {}).get("values", [])

    def paired(case, num, den):
        """Per repetition num/den (the two runs of a repetition ran one after the other)."""
        a, b = vals(case, num), vals(case, den)
        return [x / y for x, y in zip(a, b) if x and y] if len(a) == len(b) else None

    summary["targets"] = [
        target("case 1: Tandem >= 80% of the raw 1 KiB write+fdatasync rate", frac("p1_r1", "tandem"), 0.8, True,
               per_rep=fracs("p1_r1", "tandem")),
        target("case 2: Tandem >= 10x ActiveMQ", c["p64_r1"]["ratio_tandem_activemq"], 10, True, "x",
               paired("p64_r1", "tandem", "activemq")),
        target("case 2: Tandem >= 50% of the raw 64 KiB write+fdatasync bandwidth", frac("p64_r1", "tandem"), 0.5, True,
               per_rep=fracs("p64_r1", "tandem")),
        target("case 4: Tandem >= 3x ActiveMQ", c["drain_1m"]["ratio_tandem_activemq"], 3, True, "x",
               paired("drain_1m", "tandem", "activemq")),
        target("case 5: Tandem >= 100,000 deliveries/s", med("topic_np", "tandem"), 100000, True, "msgs/s",
               vals("topic_np", "tandem")),
        target("case 6: Tandem >= 50x faster than ActiveMQ (default lock poll)", c["failover"].get("activemq_over_tandem"),
               50, True, "x", paired("failover", "activemq", "tandem")),
        target("case 6: Tandem >= 5x faster than ActiveMQ (lockAcquireSleepInterval 100 ms)",
               c["failover"].get("activemq_tuned_over_tandem"), 5, True, "x", paired("failover", "activemq_tuned", "tandem")),
        target("case 8 (issue 19): Tandem >= 80% of the raw 1 KiB write+fdatasync rate with stomp.py",
               frac("py_p1", "tandem"), 0.8, True, per_rep=fracs("py_p1", "tandem")),
        target("case 9 (issue 19): Tandem >= 80% of the stomp.py client ceiling (the sink), 16 producers",
               med("py_p16", "tandem") / med("py_p16", "sink") if med("py_p16", "tandem") and med("py_p16", "sink")
               else None, 0.8, True, "", paired("py_p16", "tandem", "sink")),
        target("threads (issue 19): threads 2 >= 1.6x threads 1, non-persistent fan-out (topic_np)",
               med("topic_np", "tandem_t2") / med("topic_np", "tandem")
               if med("topic_np", "tandem_t2") and med("topic_np", "tandem") else None, 1.6, True, "x",
               paired("topic_np", "tandem_t2", "tandem")),
        target("threads (issue 19): threads 2 >= 1.6x threads 1, RECEIPT every 100th (p16_r100)",
               med("p16_r100", "tandem_t2") / med("p16_r100", "tandem")
               if med("p16_r100", "tandem_t2") and med("p16_r100", "tandem") else None, 1.6, True, "x",
               paired("p16_r100", "tandem_t2", "tandem")),
        target("case 7: Tandem <= 128 bytes per pending message beyond the body cache",
               (c["rss_1m"].get("tandem_beyond_body_cache") or {}).get("median"), 128, False, "B",
               (c["rss_1m"].get("tandem_beyond_body_cache") or {}).get("values")),
    ]
    summary["diagnostics"] = diagnostics(raw)
    with open(os.path.join(out, "comparison.json"), "w") as f:
        json.dump(summary, f, indent=1)

    L = ["# Tandem vs ActiveMQ 5.17: the comparison of issue 8", ""]
    L.append("Generated by `bench/compare.sh` (do not edit; the analysis below comes from "
             "[comparison-notes.md](comparison-notes.md)). Raw data: [comparison-raw/](comparison-raw/).")
    L.append("")
    if env.get("quick"):
        L += ["**QUICK RUN: small counts, one repetition. A smoke test, not a result.**", ""]
    L.append(f"Machine: {env.get('cpus')} vCPU ({env.get('cpu_model')}), {env.get('mem_total')} RAM, kernel "
             f"{env.get('kernel')}; stores in `{env.get('store_dir')}` ({env.get('store_fs')} on "
             f"{env.get('store_device')}), both brokers and fio on that file system. ActiveMQ "
             f"{env.get('activemq')} ({env.get('java')}); Tandem at commit {env.get('git_commit')} ({env.get('build_type')})"
             f"{' (with uncommitted changes)' if env.get('git_dirty') else ''}. Run {env.get('started')} - "
             f"{env.get('finished')}; load average (1, 5, 15 min) at start {env.get('loadavg_start')}, at end "
             f"{env.get('loadavg_end')} (the machine is shared with other builds; per-run load averages are "
             "in the raw *.meta.json).")
    L.append("")
    loads = []
    for path in glob.glob(os.path.join(raw, "*.meta.json")):
        m = load(path) or {}
        if "loadavg_before" in m:
            loads.append(float(m["loadavg_before"].split(",")[0]))
    if loads:
        L.append(f"1-minute load average before each of the {len(loads)} runs: min {min(loads):.2f}, median "
                 f"{statistics.median(loads):.2f}, max {max(loads):.2f} (2 vCPUs: above 2, other work was "
                 "competing for the CPUs).")
        L.append("")
    L.append(f"Each case ran {env.get('reps')} times per broker, brokers alternating, a fresh store per run; "
             "the table gives median (min-max). Throughput cases warm up for "
             f"{env.get('warmup_s', 0):g} s on another destination, then measure for {env.get('measure_s', 0):g} s. "
             f"Backlog: {env.get('backlog_messages', 0):,} messages; failover: "
             f"{env.get('failover_pending', 0):,} pending. Tandem body cache: "
             f"{(env.get('tandem_body_cache_bytes') or 0) / 1048576:g} MiB (default).")
    L.append("")
    L.append("## Raw disk (the ceiling of a broker that syncs)")
    L.append("")
    L.append(f"Mode: {DISK_MODE}.")
    L.append("")
    L.append("| block | writes+fdatasync/s | MiB/s | fdatasync p50 |")
    L.append("|---|---:|---:|---:|")
    for name, label in (("1k", "1 KiB (before each run of case 1)"), ("64k", "64 KiB (before each run of cases 2, 3)")):
        d = disk.get(name)
        if d:
            w, m, p = d["writes_per_s"], d["mib_per_s"], d["fdatasync_p50_ms"]
            L.append(f"| {label} | {w['median']:,.0f} ({w['min']:,.0f}-{w['max']:,.0f}) | {m['median']:.2f} | "
                     f"{(p or {}).get('median', 0):.2f} ms |")
    L.append("")
    L.append("A fraction of the raw disk below is the median over the repetitions of (the run's figure / "
             "the fio run made right before it), so both met the disk in the same state.")
    L.append("")
    L.append("## Results")
    L.append("")
    L.append("| case | metric | Tandem | ActiveMQ | Tandem/ActiveMQ | fraction of raw disk (Tandem; ActiveMQ) |")
    L.append("|---|---|---:|---:|---:|---|")

    def cell(s, unit):
        if not s:
            return "-"
        return f"**{fmt(s['median'], unit)}** ({fmt(s['min'], unit)}-{fmt(s['max'], unit)})"

    for case, e in c.items():
        u = e["unit"]
        t, a = e["brokers"].get("tandem"), e["brokers"].get("activemq")
        ratio = e["ratio_tandem_activemq"]
        fr = "-"
        if "disk_baseline" in e and (t or a):
            fd = lambda s: f"{s['fraction_of_disk']:.2f}" if s and "fraction_of_disk" in s else "-"
            fr = f"{fd(t)}; {fd(a)} of {e['disk_baseline']['what']}"
        if case == "failover":
            at = e["brokers"].get("activemq_tuned")
            L.append(f"| {e['title']} | {e['metric']} (lower is better) | {cell(t, u)} | {cell(a, u)} (default lock poll) | "
                     f"{ratio:.4f} (ActiveMQ {e['activemq_over_tandem']:.1f}x slower) | - |" if ratio else
                     f"| {e['title']} | {e['metric']} | {cell(t, u)} | {cell(a, u)} | - | - |")
            r2 = e.get("activemq_tuned_over_tandem")
            L.append(f"| 6b. the same, ActiveMQ with lockAcquireSleepInterval 100 ms | ms | {cell(t, u)} | {cell(at, u)} | "
                     + (f"{1 / r2:.3f} (ActiveMQ {r2:.1f}x slower) | - |" if r2 else "- | - |"))
            continue
        if case == "rss_1m":
            b = e.get("tandem_beyond_body_cache")
            L.append(f"| {e['title']} | {e['metric']} (lower is better) | {cell(t, u)}; beyond the body cache "
                     f"{cell(b, u)} | {cell(a, u)} | {ratio:.2f} | - |" if ratio else
                     f"| {e['title']} | {e['metric']} | {cell(t, u)} | {cell(a, u)} | - | - |")
            continue
        sink = e["brokers"].get("sink")
        if sink:  # the stomp.py cases: the client's own ceiling is the limit beside the disk
            share = f"{t['median'] / sink['median']:.2f}" if t and sink["median"] else "-"
            fr = (fr + "; " if fr != "-" else "") + f"client ceiling (sink) {cell(sink, u)}, Tandem/sink {share}"
        L.append(f"| {e['title']} | {e['metric']} | {cell(t, u)} | {cell(a, u)} | "
                 f"{f'{ratio:.2f}' if ratio else '-'} | {fr} |")
        t2 = e["brokers"].get("tandem_t2")
        if t2:  # issue 19: the same tandemd with --threads 2, in the same run
            share = f"{t2['median'] / t['median']:.2f}x threads 1" if t and t["median"] else "-"
            L.append(f"| {e['title']}, Tandem with --threads 2 | {e['metric']} | {cell(t2, u)} | - | - | {share} |")
    L.append("")
    L.append("## Targets")
    L.append("")
    L.append("Measured = the median (of ratios: the ratio of the medians); per repetition = the same figure "
             "for each repetition alone (ratios pair the two brokers' runs of one repetition, made one after "
             "the other).")
    L.append("")
    L.append("| target | measured | met (median)? | per repetition | repetitions meeting it |")
    L.append("|---|---:|---|---|---:|")

    def shown(v, unit):
        if v is None:
            return "-"
        if unit == "x":
            return f"{v:.2f}x"
        if unit in ("msgs/s", "B"):
            return f"{v:,.0f} {unit}"
        return f"{v:.2f}"

    for tg in summary["targets"]:
        unit = tg.get("unit", "")
        reps = ", ".join(shown(v, unit) for v in tg.get("per_repetition", [])) or "-"
        n = f"{tg['repetitions_meeting']} of {len(tg['per_repetition'])}" if "per_repetition" in tg else "-"
        L.append(f"| {tg['target']} | {shown(tg['value'], unit)} | {'yes' if tg['met'] else 'NO: ' + tg['shortfall']} | "
                 f"{reps} | {n} |")
    if summary["diagnostics"]:
        L += ["", "## Diagnostics (medians; what the notes below use)", "",
              "Broker CPU from /proc/PID/stat over the measurement (all threads); client = tandem-bench; "
              "a share of 1.0 is one vCPU of the 2. Tandem's journal counters come from its /metrics "
              "(tandem_journal_appends_total, tandem_journal_fsync_seconds).", "",
              "| case | broker | broker CPU/msg | broker CPU share | client CPU share | receipt p50 / mean | "
              "appends per fdatasync | fdatasync mean | time in fdatasync |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in summary["diagnostics"]:
            g = lambda k, f: f.format(r[k]) if k in r else "-"
            L.append(f"| {r['case']} | {KIND_NAMES[r['broker']]} | {g('broker_cpu_us_per_msg', '{:.1f} us')} | "
                     f"{g('broker_cpu_share', '{:.2f}')} | {g('client_cpu_share', '{:.2f}')} | "
                     f"{g('receipt_p50_ms', '{:.2f}')} / {g('receipt_mean_ms', '{:.2f}')} ms | "
                     f"{g('appends_per_fsync', '{:.1f}')} | {g('fsync_mean_ms', '{:.3f} ms')} | "
                     f"{g('fsync_busy_share', '{:.0%}')} |")
    if summary["problems"]:
        L += ["", "Problems during the run:", ""] + [f"- {p}" for p in summary["problems"]]
    notes = os.path.join(out, "comparison-notes.md")
    if os.path.exists(notes) and not env.get("quick"):
        L += ["", open(notes).read().rstrip()]
    with open(os.path.join(out, "comparison.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    with open(os.path.join(out, "comparison-summary.md"), "w") as f:
        f.write(short_table(summary) + "\n")


def short_table(summary):
    """The table README.md shows: medians, the ratio and the target verdicts, one row per case."""
    c, t = summary["cases"], {tg["target"].split(":")[0]: [] for tg in summary["targets"]}
    for tg in summary["targets"]:
        t[tg["target"].split(":")[0]].append(tg)

    def med(case, kind):
        s = c[case]["brokers"].get(kind)
        return fmt(s["median"], c[case]["unit"]) if s else "-"

    def verdict(n):
        def one(tg):
            v = "met" if tg["met"] else f"**missed**, {tg['shortfall']}"
            if "per_repetition" in tg and tg["repetitions_meeting"] < len(tg["per_repetition"]):
                v += f" at the median, **{tg['repetitions_meeting']} of {len(tg['per_repetition'])} repetitions**"
            return f"{tg['target'].split(': ', 1)[1]}: {v}"
        return "; ".join(one(tg) for tg in t.get(f"case {n}", [])) or "-"

    def frac(case):
        s = c[case]["brokers"].get("tandem") or {}
        return f", {s['fraction_of_disk']:.2f} of raw disk" if "fraction_of_disk" in s else ""

    rows = ["| case | Tandem | ActiveMQ | Tandem/ActiveMQ | target |", "|---|---:|---:|---:|---|"]
    for n, case in enumerate(["p1_r1", "p64_r1", "p16_r100", "drain_1m", "topic_np"], 1):
        e = c[case]
        r = e["ratio_tandem_activemq"]
        rows.append(f"| {e['title'][3:]} ({e['unit']}) | {med(case, 'tandem')}{frac(case)} | {med(case, 'activemq')} | "
                    f"{f'{r:.1f}x' if r else '-'} | {verdict(n)} |")
    f = c["failover"]
    rows.append(f"| failover, SIGKILL -> first accepted message (ms) | {med('failover', 'tandem')} | "
                f"{med('failover', 'activemq')} (default), {med('failover', 'activemq_tuned')} (lock poll 100 ms) | "
                + (f"{f['activemq_over_tandem']:.0f}x, {f['activemq_tuned_over_tandem']:.1f}x faster"
                   if f.get("activemq_over_tandem") and f.get("activemq_tuned_over_tandem") else "-")
                + f" | {verdict(6)} |")
    r = c["rss_1m"]
    b = (r.get("tandem_beyond_body_cache") or {}).get("median")
    rows.append(f"| RSS per pending message, 1M pending (bytes) | {med('rss_1m', 'tandem')}"
                + (f" ({b:.0f} beyond the {(r.get('body_cache_bytes') or 0) / 1048576:g} MiB body cache)" if b is not None else "")
                + f" | {med('rss_1m', 'activemq')} | "
                + (f"{1 / r['ratio_tandem_activemq']:.1f}x less" if r.get("ratio_tandem_activemq") else "-")
                + f" | {verdict(7)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
