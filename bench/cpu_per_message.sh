#!/usr/bin/env bash
# tandemd's CPU per message, two builds interleaved in one run (issue 19).
#
#   bench/cpu_per_message.sh [--reps N] [--seconds S] [--case "NAME"]... A=BUILD_DIR B=BUILD_DIR
#
# A build may name a thread count: t1=build,threads=1 t2=build,threads=2 compares one build's
# `threads: 1` with `threads: 2` (issue 19, docs/threads.md; tandemd --threads N).
#
# For each repetition and each case, each build (order flipped every repetition, so a drift of
# the shared machine favours neither) gets a fresh store and a fresh tandemd, then
# tandem-bench runs the case for S seconds. CPU = utime + stime of tandemd from
# /proc/<pid>/stat (all its threads) read right before and right after the measured run, so
# startup and recovery are not counted; messages = what tandem-bench reports as sent and
# receipted. The figure that survives a loaded machine is CPU µs per message: throughput
# moves with the load, the work per message much less. Load averages are printed per run.
#
# Cases (tandem-bench options, persistent 1 KiB unless said):
#   p1_r1     1 producer, RECEIPT per message, window 1
#   p64_r1    64 producers, RECEIPT per message, window 1 each
#   p16_r100  16 producers, RECEIPT every 100, window 10
#   topic_np  non-persistent topic, 1 producer, 8 subscribers
#   p16_c4    16 producers as p16_r100, 4 queue consumers (client-individual): dispatch and ACK
#   q_p4c4    persistent queue, 4 producers, 4 consumers (the delivery path), RECEIPT every 100
#
# Output: one line per run on stdout ("case build rep msgs msg/s cpu_s us/msg load fsyncs
# msgs/fsync"), and $OUT (default /var/tmp/tandem-cpu/results.tsv) with the same lines, tab
# separated. fsyncs: tandemd's fdatasyncs in the run (its /metrics, read outside the CPU
# window): on a shared disk the group size (msgs/fsync) moves from run to run, and with it
# the per-group share of the CPU per message. bench/cpu_pairs.py compares builds pair by pair.
# Needs tandemd and tandem-bench built in each BUILD_DIR; ports 61970-61971.
set -euo pipefail
REPS=3; SECONDS_RUN=8; CASES=(); BUILDS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS=$2; shift ;;
    --seconds) SECONDS_RUN=$2; shift ;;
    --case) CASES+=("$2"); shift ;;
    *=*) BUILDS+=("$1") ;;
    *) sed -n '2,30p' "$0"; exit 2 ;;
  esac
  shift
done
[ ${#CASES[@]} -gt 0 ] || CASES=(p1_r1 p64_r1 p16_r100 topic_np)
[ ${#BUILDS[@]} -ge 1 ] || { sed -n '2,30p' "$0"; exit 2; }
BASE=${STORE_BASE:-/var/tmp/tandem-cpu}
OUT=${OUT:-$BASE/results.tsv}
PORT=${PORT:-61970}
CLK_TCK=$(getconf CLK_TCK)
mkdir -p "$BASE"
: >"$OUT"
CONFIG=$BASE/tandemd.json
cat >"$CONFIG" <<'JSON'
{"allow_anonymous": true, "sync": "always", "threads": 1, "max_destination_bytes": 4294967296, "admin_open_reads": true}
JSON

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
fsyncs() {  # the journal's fdatasync count from tandemd's /metrics
  /usr/bin/python3 -c 'import sys, urllib.request
for line in urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().splitlines():
    if line.startswith("tandem_journal_fsync_seconds_count "): print(int(float(line.split()[1])))' \
    "http://127.0.0.1:$((PORT + 1))/metrics"
}
args_of() {
  case "$1" in
    p1_r1) echo "-p 1 -c 0 --persistent --receipt-every 1 --window 1" ;;
    p64_r1) echo "-p 64 -c 0 --persistent --receipt-every 1 --window 1" ;;
    p16_r100) echo "-p 16 -c 0 --persistent --receipt-every 100 --window 10" ;;
    topic_np) echo "-p 1 -c 8 --topic --receipt-every 100 --window 10" ;;
    p16_c4) echo "-p 16 -c 4 --persistent --receipt-every 100 --window 10 --ack client-individual" ;;
    q_p4c4) echo "-p 4 -c 4 --persistent --receipt-every 100 --window 10" ;;
    *) echo "unknown case $1" >&2; exit 2 ;;
  esac
}

run_one() {  # run_one CASE NAME BUILD[,threads=N] REP
  local case=$1 name=$2 build=${3%%,*} rep=$4 store=$BASE/store pid json=$BASE/bench.json threads=1
  [[ "$3" == *,threads=* ]] && threads=${3##*,threads=}
  rm -rf "$store"
  "$build/broker/tandemd" --config "$CONFIG" --store "$store" --create-store --listen "127.0.0.1:$PORT" \
    --admin "127.0.0.1:$((PORT + 1))" --name cpu --threads "$threads" >"$BASE/tandemd-$name.log" 2>&1 &
  pid=$!
  local deadline=$((SECONDS + 30))
  until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] && kill -0 $pid 2>/dev/null || { tail "$BASE/tandemd-$name.log" >&2; exit 1; }
    sleep 0.05
  done
  local t0 t1 f0 f1
  f0=$(fsyncs)
  t0=$(cpu_ticks $pid)
  # shellcheck disable=SC2046
  "$build/tools/bench/tandem-bench" --url "127.0.0.1:$PORT" -s 1024 --duration "$SECONDS_RUN" \
    -d /queue/cpu $(args_of "$case") -q --json "$json" || echo "tandem-bench exit $?" >&2
  t1=$(cpu_ticks $pid)
  f1=$(fsyncs)
  kill -KILL $pid; wait $pid 2>/dev/null || true
  /usr/bin/python3 - "$json" "$case" "$name" "$rep" "$((t1 - t0))" "$CLK_TCK" "$(cut -d' ' -f1-3 /proc/loadavg)" "$((f1 - f0))" <<'PY' | tee -a "$OUT"
import json, sys
path, case, name, rep, ticks, hz, load, syncs = sys.argv[1:]
r = json.load(open(path))
sent = r["send"]["messages"]
secs = r["send"]["seconds"]
cpu = int(ticks) / int(hz)
per_sync = f"{sent / int(syncs):.1f}" if int(syncs) else "-"
print(f"{case}\t{name}\t{rep}\t{sent}\t{sent / secs:.0f}\t{cpu:.2f}\t{cpu / sent * 1e6:.1f}\t{load}\t{syncs}\t{per_sync}")
PY
}

echo -e "case\tbuild\trep\tmsgs\tmsg/s\tcpu_s\tus/msg\tload\tfsyncs\tmsgs/fsync" | tee -a "$OUT"
for rep in $(seq 1 "$REPS"); do
  for case in "${CASES[@]}"; do
    order=("${BUILDS[@]}")
    if [ $((rep % 2)) = 0 ]; then order=(); for ((i=${#BUILDS[@]}-1; i>=0; i--)); do order+=("${BUILDS[i]}"); done; fi
    for b in "${order[@]}"; do run_one "$case" "${b%%=*}" "${b#*=}" "$rep"; done
  done
done
rm -rf "$BASE/store"
