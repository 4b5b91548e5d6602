#!/usr/bin/env bash
# Where a RECEIPT's time goes: one half-rate run of bench/receipt_latency.sh's shape, traced.
#
#   bench/receipt_trace.sh [BUILD_DIR] [RATE] [SECONDS] [OUT_DIR]   (defaults: build 8000 8 a temp dir)
#
# A fresh store and tandemd (sync always); 16 persistent 1 KiB producers, a RECEIPT for each
# message, one outstanding each, one consumer, held to RATE msg/s by `tandem-bench --rate`
# (give half the peak that receipt_latency.sh prints). Meanwhile `perf record -a -k
# CLOCK_MONOTONIC` records every thread's sched_switch/sched_wakeup and the journal writer's
# pwritev/fdatasync, and tandem-bench writes every RECEIPT's two instants (--receipt-log).
# Then bench/receipt_attribution.py lines them up: for the median and the slowest 1 % of
# RECEIPTs, how long before the first group write after the SEND (and how much of that
# was the previous fdatasync), the group's own write and sync, groups the append missed,
# the rest after the covering sync, and how long each thread (io, journal writer, journal
# reader, the client) waited for a CPU meanwhile.
#
# Needs perf (linux-perf) and root or perf_event_paranoid <= -1 for the system-wide sched
# tracepoints. Environment: TANDEMD_PREFIX / BENCH_PREFIX (e.g. "taskset -c 0"), SYNC
# (always | periodic | never), PERSIST ("" for non-persistent SENDs). Ports: a random pair
# in 40000-59999.
set -uo pipefail
BUILD=${1:-build}; RATE=${2:-8000}; SECS=${3:-8}; OUT=${4:-$(mktemp -d /tmp/receipt-trace.XXXXXX)}
PORT=$((40000 + RANDOM % 19998))
STORE=$(mktemp -d /var/tmp/receipt-trace-store.XXXXXX)
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
echo "{\"allow_anonymous\": true, \"sync\": \"${SYNC:-always}\", \"max_destination_bytes\": 4294967296, \"admin_open_reads\": true}" >"$OUT/tandemd.json"
${TANDEMD_PREFIX:-} "$BUILD/broker/tandemd" --config "$OUT/tandemd.json" --store "$STORE/store" --create-store \
  --listen "127.0.0.1:$PORT" --admin "127.0.0.1:$((PORT + 1))" >"$OUT/tandemd.log" 2>&1 &
pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
perf record -k CLOCK_MONOTONIC -a -o "$OUT/trace.data" -e sched:sched_switch -e sched:sched_wakeup \
  -e syscalls:sys_enter_pwritev -e syscalls:sys_exit_pwritev -e syscalls:sys_enter_fdatasync -e syscalls:sys_exit_fdatasync \
  -- sleep $((SECS + 3)) >/dev/null 2>&1 &
perfpid=$!
sleep 0.5
${BENCH_PREFIX:-} "$BUILD/tools/bench/tandem-bench" --url "tcp://127.0.0.1:$PORT" -p 16 -c 1 ${PERSIST---persistent} \
  --receipt-every 1 --window 1 --duration "$SECS" --rate "$RATE" --json "$OUT/bench.json" --receipt-log "$OUT/receipts.txt" -q &
bpid=$!
sleep 0.3
ps -L -o tid,comm -p "$pid" >"$OUT/tandemd.threads"
ps -L -o tid,comm -p "$bpid" >"$OUT/bench.threads"
wait "$bpid"
wait "$perfpid"
kill "$pid"; wait "$pid"
rm -rf "$STORE"
perf script -i "$OUT/trace.data" -F comm,tid,cpu,time,event,trace --ns >"$OUT/trace.txt" 2>/dev/null
echo "$OUT: $(uptime)"
/usr/bin/python3 -c '
import json, sys
j = json.load(open(sys.argv[1])); l = j["receipt_latency_ms"]
print("tandem-bench: %.0f msg/s, RECEIPT p50 %.3f p99 %.3f p99.9 %.3f max %.3f ms" % (j["send"]["msgs_per_s"], l["p50"], l["p99"], l["p99_9"], l["max"]))' "$OUT/bench.json"
/usr/bin/python3 "$HERE/receipt_attribution.py" "$OUT"
