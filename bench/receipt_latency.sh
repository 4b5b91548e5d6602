#!/usr/bin/env bash
# RECEIPT latency at half the peak rate (issue 19's latency goal: p99 <= 2 ms at 50 % of the
# 16-producer peak, `tandem-bench --rate`).
#
#   bench/receipt_latency.sh [BUILD_DIR] [ROUNDS] [SECONDS]      (defaults: build 3 8)
#
# Each round, on a fresh store and a fresh tandemd (`sync` always, the default):
#   1. peak: 16 persistent 1 KiB producers, a RECEIPT for every message, one outstanding each
#      (--window 1), one consumer, for SECONDS: the receipted rate is the peak;
#   2. half: the same clients held to half that rate (--rate), for SECONDS: RECEIPT p50, p99,
#      p99.9 and max, as tandem-bench measures them (SEND written -> RECEIPT read).
# Beside each round: tandemd's own fdatasyncs during the half-rate run (from /metrics: count,
# mean, share over 2 ms, records per group commit), and fio's raw 1 KiB write+fdatasync
# p50/p99 on the same file system, and bench/receipt_floor.py at the same half rate: an
# ideal group commit with no CPU or network cost, the floor under any broker's RECEIPT
# latency on this file system (p50/p99, and its fdatasyncs over 5 ms); and, when run as root,
# bench/freeze_probe.py beside the half-rate run: how often both CPUs stood still together
# (the VM stopped by its host; results/performance.md, "RECEIPT p99: the floor of the disk").
# One line per round; load averages beside it.
# Ports 47613-47614; the store lives under ${STORE_BASE:-/var/tmp/tandem-latency}.
set -euo pipefail
BUILD=${1:-build}; ROUNDS=${2:-3}; SECS=${3:-8}
BASE=${STORE_BASE:-/var/tmp/tandem-latency}
PORT=47613
mkdir -p "$BASE"
cat >"$BASE/tandemd.json" <<'JSON'
{"allow_anonymous": true, "sync": "always", "max_destination_bytes": 4294967296, "admin_open_reads": true}
JSON
bench() { "$BUILD/tools/bench/tandem-bench" --url "tcp://127.0.0.1:$PORT" -p 16 -c 1 --persistent \
            --receipt-every 1 --window 1 --duration "$SECS" --json - -q "$@"; }
journal_figures() {  # the journal's counters from /metrics, as one JSON object
  /usr/bin/python3 -c '
import json, sys, urllib.request
out = {}
for line in urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().splitlines():
    if line.startswith(("tandem_journal_fsync", "tandem_journal_group")):
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
print(json.dumps(out))' "http://127.0.0.1:$((PORT + 1))/metrics"
}
journal_delta() {  # fdatasyncs in the half-rate run: count, mean ms, share over 2 ms, records per group
  /usr/bin/python3 -c '
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
d = {k: b[k] - a.get(k, 0) for k in b}
n = d["tandem_journal_fsync_seconds_count"]
over = n - d["tandem_journal_fsync_seconds_bucket{le=\"0.002\"}"]
over5 = n - d["tandem_journal_fsync_seconds_bucket{le=\"0.005\"}"]
print("%d\t%.3f\t%.2f%% (%d over 5 ms)\t%.1f" % (n, 1000 * d["tandem_journal_fsync_seconds_sum"] / n, 100 * over / n, over5,
      d["tandem_journal_group_records_total"] / d["tandem_journal_groups_total"]))' "$1" "$2"
}
fio_sync() {  # raw 1 KiB write+fdatasync latency on the store's file system: p50 p99 (ms)
  fio --name=raw --directory="$BASE" --rw=write --bs=1k --size=16m --fdatasync=1 --runtime=4 \
      --time_based --output-format=json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]["sync"]["lat_ns"]["percentile"]
print("%.3f %.3f" % (j["50.000000"] / 1e6, j["99.000000"] / 1e6))'
  rm -f "$BASE"/raw.*
}
floor() {  # the ideal group commit at RATE: p50 p99 (ms) and fdatasyncs over 5 ms
  /usr/bin/python3 "$(dirname "$0")/receipt_floor.py" "$BASE" --producers 16 --rate "$1" --seconds "$SECS" |
    /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
print("%.3f %.3f %d" % (j["latency_ms"]["p50"], j["latency_ms"]["p99"], j["fdatasyncs_over_5ms"]))'
}
printf 'round\tpeak_msg_s\thalf_rate\thalf_msg_s\tp50_ms\tp99_ms\tp99_9_ms\tmax_ms\tfsyncs\tfsync_mean_ms\tfsync_over_2ms\trecords_per_group\tfio_fdatasync_p50_p99_ms\tfloor_p50_p99_ms_over5ms\tvm_freezes\tload\n'
for r in $(seq 1 "$ROUNDS"); do
  rm -rf "$BASE/store"
  "$BUILD/broker/tandemd" --config "$BASE/tandemd.json" --store "$BASE/store" --create-store \
      --listen "127.0.0.1:$PORT" --admin "127.0.0.1:$((PORT + 1))" >"$BASE/tandemd.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  peak=$(bench | /usr/bin/python3 -c 'import json, sys; print(round(json.load(sys.stdin)["send"]["msgs_per_s"]))')
  half=$((peak / 2))
  before=$(journal_figures)
  freezes=-
  if [ "$(id -u)" = 0 ]; then
    /usr/bin/python3 "$(dirname "$0")/freeze_probe.py" "$((SECS > 2 ? SECS - 2 : 1))" > "$BASE/freezes.txt" 2>&1 &
    probe=$!
  fi
  line=$(bench --rate "$half" | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin); l = j["receipt_latency_ms"]; s = j["send"]
assert not j["errors"], j["errors"]
print("\t".join([str(round(s["msgs_per_s"]))] + ["%.3f" % l[k] for k in ("p50", "p99", "p99_9", "max")]))')
  journal=$(journal_delta "$before" "$(journal_figures)")
  if [ -n "${probe:-}" ]; then
    wait "$probe" || true
    freezes=$(sed -n 's/.*late together: \([0-9]*\) times, .*(\([0-9.]*%\) of the time).*/\1 (\2)/p' "$BASE/freezes.txt" | head -1)
    probe=
  fi
  kill "$pid"; wait "$pid" || true
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$peak" "$half" "$line" "$journal" "$(fio_sync)" \
    "$(floor "$half")" "${freezes:--}" "$(cut -d' ' -f1-3 /proc/loadavg)"
done
rm -rf "$BASE/store"
