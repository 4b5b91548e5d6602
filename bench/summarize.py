#!/usr/bin/env python3
"""Summarize bench/compare.sh runs: median, min and max per case and broker, the
Tandem/ActiveMQ ratio, and the fraction of the raw disk (fio) a persistent case reaches.

    summarize.py RESULTS_DIR [--brokers "activemq tandem"] [--cases "..."] [--available "..."]

Reads RESULTS_DIR/raw/<case>-<broker>-<rep>.json and RESULTS_DIR/fio-{1k,64k}.json; writes
RESULTS_DIR/summary.json and RESULTS_DIR/summary.md.
"""
import argparse
import glob
import json
import os
import re
import statistics

# case -> (title, metric name, unit, higher is better, extractor, disk baseline)
# The disk baseline says what the case is compared with: "iops1k" (1 KiB write + fdatasync
# per second: the ceiling of one fsync per message), "bw64k" (MiB/s of 64 KiB synced writes:
# the ceiling of batched commits), or None.


def send_rate(j):
    return (j.get("send") or {}).get("msgs_per_s")


def delivery_rate(j):
    return (j.get("delivery") or {}).get("msgs_per_s")


def send_mib(j):
    return (j.get("send") or {}).get("mib_per_s")


def failover_ms(j):
    downs = [r["downtime_ms"] for r in j.get("reconnects", [])]
    return max(downs) if downs else None


def rss(j):
    return j.get("rss_mib")


CASES = {
    "p1_r1": ("persistent 1 KiB, 1 producer, receipt per message", "send msgs/s", "msgs/s", True, send_rate, "iops1k"),
    "p64_r1": ("persistent 1 KiB, 64 producers, receipt per message", "send msgs/s", "msgs/s", True, send_rate, "iops1k"),
    "p16_r100": ("persistent 1 KiB, 16 producers, receipt every 100", "send MiB/s", "MiB/s", True, send_mib, "bw64k"),
    "drain_1m": ("drain a 1M backlog, 4 client-individual consumers", "delivery msgs/s", "msgs/s", True, delivery_rate, None),
    "topic_np": ("non-persistent topic, 1 producer, 8 subscribers", "delivery msgs/s", "msgs/s", True, delivery_rate, None),
    "failover": ("failover: kill -9 the master, client downtime", "downtime ms", "ms", False, failover_ms, None),
    "rss_1m": ("broker RSS with 1M pending persistent messages", "RSS MiB", "MiB", False, rss, None),
}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fio_baseline(out):
    base = {}
    for name, key in (("fio-1k.json", "1k"), ("fio-64k.json", "64k")):
        j = load(os.path.join(out, name))
        if not j:
            continue
        write = j["jobs"][0]["write"]
        base[key] = {"iops": write["iops"], "mib_per_s": write["bw"] / 1024.0}
    return base


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "MiB/s" or unit == "MiB":
        return f"{v:.1f}"
    if unit == "ms":
        return f"{v:.0f}"
    return f"{v:,.0f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--brokers", default="activemq tandem")
    ap.add_argument("--cases", default=" ".join(CASES))
    ap.add_argument("--available", default=None)
    a = ap.parse_args()
    brokers = a.brokers.split()
    available = a.available.split() if a.available is not None else brokers
    disk = fio_baseline(a.out)

    summary = {"disk": disk, "cases": {}}
    for case in a.cases.split():
        title, metric, unit, higher, extract, baseline = CASES[case]
        entry = {"title": title, "metric": metric, "unit": unit, "higher_is_better": higher, "brokers": {}}
        for b in brokers:
            values = []
            for path in sorted(glob.glob(os.path.join(a.out, "raw", f"{case}-{b}-*.json"))):
                if not re.search(rf"{re.escape(case)}-{re.escape(b)}-\d+\.json$", path):
                    continue  # e.g. the .preload.json companions
                j = load(path)
                values.append(extract(j) if j else None)
            entry["brokers"][b] = stats(values)
        t, m = entry["brokers"].get("tandem"), entry["brokers"].get("activemq")
        entry["ratio_tandem_activemq"] = (t["median"] / m["median"]) if t and m and m["median"] else None
        if baseline == "iops1k" and "1k" in disk:
            entry["disk"] = {"baseline": "fio 1 KiB write+fdatasync, writes/s", "value": disk["1k"]["iops"]}
        elif baseline == "bw64k" and "64k" in disk:
            entry["disk"] = {"baseline": "fio 64 KiB write+fdatasync, MiB/s", "value": disk["64k"]["mib_per_s"]}
        if "disk" in entry:
            for b in brokers:
                s = entry["brokers"][b]
                if s:
                    s["fraction_of_disk"] = s["median"] / entry["disk"]["value"] if entry["disk"]["value"] else None
        summary["cases"][case] = entry

    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)

    lines = ["# Tandem vs ActiveMQ (tandem-bench)", ""]
    if disk:
        lines.append("Raw disk (fio, sequential overwrite of a laid-out file, fdatasync after each write): "
                     + ", ".join(f"{k}: {v['iops']:,.0f} writes/s, {v['mib_per_s']:.1f} MiB/s" for k, v in disk.items()))
        lines.append("")
    missing = [b for b in brokers if b not in available]
    if missing:
        lines.append(f"Not measured (binary missing): {', '.join(missing)}.")
        lines.append("")
    head = "| case | metric |"
    sep = "|---|---|"
    for b in brokers:
        head += f" {b} median | {b} min-max |"
        sep += "---:|---:|"
    head += " Tandem/ActiveMQ | fraction of raw disk |"
    sep += "---:|---|"
    lines += [head, sep]
    for case, e in summary["cases"].items():
        row = f"| {e['title']} | {e['metric']} |"
        for b in brokers:
            s = e["brokers"][b]
            if s:
                row += f" {fmt(s['median'], e['unit'])} | {fmt(s['min'], e['unit'])}-{fmt(s['max'], e['unit'])} |"
            else:
                row += " - | - |"
        r = e["ratio_tandem_activemq"]
        row += f" {r:.2f} |" if r is not None else " - |"
        fr = []
        for b in brokers:
            s = e["brokers"][b]
            if s and s.get("fraction_of_disk") is not None:
                fr.append(f"{b} {s['fraction_of_disk']:.2f}")
        row += (" " + ", ".join(fr) + " |") if fr else " - |"
        lines.append(row)
    lines += ["", "Median of the runs; ratio > 1 means Tandem is higher (better for rates, worse for "
              "downtime and RSS). Raw files: raw/<case>-<broker>-<rep>.json."]
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
