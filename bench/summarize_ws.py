#!/usr/bin/env python3
"""Summarizes bench/ws_vs_tcp.sh: websocket.json and websocket.md from websocket-raw/.

   bench/summarize_ws.py RAW_DIR OUT_DIR"""
import glob
import json
import os
import statistics
import sys


def main(raw, out):
    runs = {}
    for path in sorted(glob.glob(os.path.join(raw, "*-*-*.json"))):
        case, transport, rep = os.path.basename(path)[:-5].rsplit("-", 2)
        with open(path) as f:
            d = json.load(f)
        cpu = {}
        if os.path.exists(path[:-5] + ".cpu"):
            with open(path[:-5] + ".cpu") as f:
                cpu = json.load(f)
        sent = d["send"]["messages"] or 1
        runs.setdefault(case, {}).setdefault(transport, []).append({
            "rep": int(rep), "msgs_per_s": d["send"]["msgs_per_s"], "messages": d["send"]["messages"],
            "broker_us_per_msg": cpu["broker_cpu_s"] * 1e6 / sent if cpu else None,
            "client_us_per_msg": cpu["client_cpu_s"] * 1e6 / sent if cpu else None,
            "receipt_p50_ms": (d.get("receipt_latency_ms") or {}).get("p50"),
            "receipt_p99_ms": (d.get("receipt_latency_ms") or {}).get("p99"),
            "failed": d.get("failed"), "errors": d.get("errors")})
    summary = {"cases": {}}
    lines = ["# STOMP over WebSocket vs TCP (issue 18)", "",
             "Produced by `bench/ws_vs_tcp.sh` (one tandemd, sync always, both listeners, same run; "
             "transports alternate order per repetition). Persistent 1 KiB messages, 16 producers, "
             "messages/s sent (each RECEIPT'd batch fdatasync'd).", "",
             "CPU µs per message: tandemd (all threads) and tandem-bench (the client) over the measured "
             "run, median of the repetitions.", "",
             "| case | transport | runs (msgs/s) | median | receipt p50 / p99 ms | broker / client CPU µs/msg | WS / TCP |",
             "|---|---|---|---|---|---|---|"]
    for case, by in runs.items():
        med = {t: statistics.median(r["msgs_per_s"] for r in v) for t, v in by.items()}
        ratio = med["ws"] / med["tcp"] if med.get("tcp") and "ws" in med else None
        summary["cases"][case] = {"runs": by, "median_msgs_per_s": med, "ratio_ws_tcp": ratio}
        for t in ("tcp", "ws"):
            if t not in by:
                continue
            vals = ", ".join(f"{r['msgs_per_s']:.0f}" for r in sorted(by[t], key=lambda r: r["rep"]))
            p50 = statistics.median(r["receipt_p50_ms"] or 0 for r in by[t])
            p99 = statistics.median(r["receipt_p99_ms"] or 0 for r in by[t])
            cpu = "/".join(f" {statistics.median(r[k] for r in by[t]):.1f} " if all(r[k] for r in by[t]) else " ? "
                           for k in ("broker_us_per_msg", "client_us_per_msg")).strip()
            lines.append(f"| {case} | {t} | {vals} | {med[t]:.0f} | {p50:.2f} / {p99:.2f} | {cpu} | "
                         f"{'' if t == 'tcp' or ratio is None else f'{ratio:.0%}'} |")
    load = ""
    if os.path.exists(os.path.join(raw, "loadavg.txt")):
        load = open(os.path.join(raw, "loadavg.txt")).read().strip()
    lines += ["", f"Machine: 2 cores shared with other builds; {load}.", ""]
    with open(os.path.join(out, "websocket.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(out, "websocket.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
