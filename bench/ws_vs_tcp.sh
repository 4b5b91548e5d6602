#!/usr/bin/env bash
# STOMP over WebSocket against STOMP over TCP on the same broker, in the same run (issue 18:
# WebSocket >= 80% of TCP, persistent 1 KiB, 16 producers).
#
#   bench/ws_vs_tcp.sh [--reps N] [--measure S]
#
# One tandemd (sync "always": every RECEIPT is fdatasync'd) with `listen` and `ws_listen` on
# a fresh store in $STORE_BASE (default /var/tmp/tandem-ws-bench), max_destination_bytes
# raised to 4 GiB as in compare.sh (no consumer: at 50k msgs/s a run fills the default 256 MiB
# and the producers wait for send_timeout_ms). For each repetition and
# case the two transports run back to back, their order flipping from one repetition to the
# next so a drift of the shared machine favours neither. Cases (tandem-bench options):
#   p16_r100  -p 16 --persistent --receipt-every 100 --window 10   (compare.sh's case 3)
#   p16_r1    -p 16 --persistent --receipt-every 1 --window 1      (a RECEIPT per message)
# Each measurement: 2 s warm-up on another queue, then --measure seconds (default 10).
# Each measurement also records the CPU seconds of tandemd and of tandem-bench
# (CASE-TRANSPORT-REP.cpu), reported as CPU µs per message on each side.
# Output in $OUT (default bench/results/): websocket.json, websocket.md and websocket-raw/
# (every tandem-bench JSON). BUILD=DIR (default build/) holds tandemd and tandem-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-$ROOT/build}
OUT=${OUT:-$ROOT/bench/results}
STORE_BASE=${STORE_BASE:-/var/tmp/tandem-ws-bench}
REPS=3
MEASURE_S=10
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS=$2; shift 2 ;;
    --measure) MEASURE_S=$2; shift 2 ;;
    *) sed -n '2,21p' "$0"; exit 2 ;;
  esac
done
RAW=$OUT/websocket-raw
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
rm -rf "$STORE_BASE" "$RAW"
mkdir -p "$STORE_BASE" "$RAW"
TCP_PORT=$((21000 + RANDOM % 4000))
WS_PORT=$((TCP_PORT + 1))
cat > "$STORE_BASE/tandemd.json" <<JSON
{"store": "$STORE_BASE/store", "create_store": true, "listen": "127.0.0.1:$TCP_PORT",
 "ws_listen": "127.0.0.1:$WS_PORT", "allow_anonymous": true, "broker_name": "ws-bench",
 "max_destination_bytes": 4294967296}
JSON
"$BUILD/broker/tandemd" --config "$STORE_BASE/tandemd.json" > "$STORE_BASE/tandemd.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "main master" "$STORE_BASE/tandemd.log" && break; sleep 0.1; done
grep -q "main master" "$STORE_BASE/tandemd.log" || { cat "$STORE_BASE/tandemd.log"; exit 1; }

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

measure() {  # measure CASE TRANSPORT REP
  local case=$1 transport=$2 rep=$3 url args
  [ "$transport" = tcp ] && url=tcp://127.0.0.1:$TCP_PORT || url=ws://127.0.0.1:$WS_PORT
  case "$case" in
    p16_r100) args=(-p 16 -c 0 --persistent --receipt-every 100 --window 10) ;;
    p16_r1) args=(-p 16 -c 0 --persistent --receipt-every 1 --window 1) ;;
  esac
  "$BUILD/tools/bench/tandem-bench" --quiet --size 1024 --url "$url" -d /queue/warm-$case-$transport --duration 2 "${args[@]}" >/dev/null
  # CPU of the broker (all threads, /proc/PID/stat) and of the client (bash's `time`) over
  # the measured run: where the time goes, per message, on each transport.
  local t0 t1 client
  t0=$(cpu_ticks $PID)
  client=$( { TIMEFORMAT='%U %S'; time "$BUILD/tools/bench/tandem-bench" --quiet --size 1024 --url "$url" \
    -d /queue/bench-$case-$transport-$rep --duration "$MEASURE_S" "${args[@]}" \
    --json "$RAW/$case-$transport-$rep.json" >/dev/null 2>"$RAW/$case-$transport-$rep.log"; } 2>&1 | tail -1) ||
    { echo "tandem-bench failed ($case $transport rep $rep):" >&2; tail -5 "$RAW/$case-$transport-$rep.log" >&2; exit 1; }
  t1=$(cpu_ticks $PID)
  echo "{\"broker_cpu_s\": $(echo "$t0 $t1 $CLK_TCK" | awk '{print ($2 - $1) / $3}'), \"client_cpu_s\": $(echo "$client" | awk '{print $1 + $2}')}" \
    > "$RAW/$case-$transport-$rep.cpu"
  echo "$(date -u +%T) $case $transport rep $rep: $(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(round(d['send']['msgs_per_s']), 'msgs/s')" "$RAW/$case-$transport-$rep.json" 2>/dev/null || echo '?')"
}

for rep in $(seq "$REPS"); do
  for case in p16_r100 p16_r1; do
    if [ $((rep % 2)) = 1 ]; then order="tcp ws"; else order="ws tcp"; fi
    for t in $order; do measure "$case" "$t" "$rep"; done
  done
done
echo "load average at the start: $START_LOAD, at the end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$RAW/loadavg.txt"
python3 "$ROOT/bench/summarize_ws.py" "$RAW" "$OUT"
