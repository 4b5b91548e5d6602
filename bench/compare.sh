#!/usr/bin/env bash
# Tandem vs ActiveMQ 5.17, measured with tandem-bench on this machine (issue 8).
#
#   bench/compare.sh [--quick] [--reps N] [--brokers "activemq tandem"] [--cases "c1 c2 ..."]
#
# Each case runs REPS times per broker (default 3), brokers alternating (A B, B A, A B, ...) so
# a slow drift of the machine does not favour one; every run gets a fresh store, and both
# brokers keep their store under the same directory ($STORE_BASE, default /var/tmp/tandem-compare),
# so they share one file system. fio measures that file system's raw synchronous write rate
# (1 KiB and 64 KiB writes, each followed by fdatasync) as the ceiling a broker that fsyncs
# per message cannot beat.
#
# Cases (the issue's seven):
#   p1_r1       persistent 1 KiB, 1 producer, RECEIPT per message, window 1 (synchronous sends)
#   p64_r1      persistent 1 KiB, 64 producers, RECEIPT per message, window 1 each
#   p16_r100    persistent 1 KiB, 16 producers, RECEIPT every 100 (pipelined, window 1000)
#   drain_1m    preload 1,000,000 persistent messages, then 4 client-individual consumers drain
#   topic_np    non-persistent topic, 1 producer, 8 subscribers
#   failover    two brokers on one store, kill -9 the master mid-run: client downtime (ms)
#   rss_1m      resident memory of the broker holding 1,000,000 pending persistent messages
#
# Output: $OUT (default bench/results/) gets raw/<case>-<broker>-<rep>.json (tandem-bench JSON,
# or the case's own JSON), fio-1k.json, fio-64k.json, summary.json and summary.md (median, min,
# max, Tandem/ActiveMQ ratio, fraction of the raw disk). --quick shrinks counts and makes one
# repetition: a smoke test of the script, not a result.
#
# Needs root for apt-get (ActiveMQ is installed from Debian if missing) and a built tree:
# $BUILD (default build/) with tools/bench/tandem-bench and, for Tandem, broker/tandemd.
# A broker whose binary is missing is skipped with a note in the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BUILD=${BUILD:-$ROOT/build}
OUT=${OUT:-$ROOT/bench/results}
STORE_BASE=${STORE_BASE:-/var/tmp/tandem-compare}
BENCH=$BUILD/tools/bench/tandem-bench
TANDEMD=$BUILD/broker/tandemd
AMQ=$ROOT/bench/activemq.sh
PYTHON=/usr/bin/python3
# Ports away from the defaults and from the test suite's.
AMQ_PORT=61790; AMQ_PORT2=61792; TANDEM_PORT=61780; TANDEM_PORT2=61782

REPS=3; QUICK=0
BROKERS="activemq tandem"
CASES="p1_r1 p64_r1 p16_r100 drain_1m topic_np failover rss_1m"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; REPS=1 ;;
    --reps) REPS=$2; shift ;;
    --brokers) BROKERS=$2; shift ;;
    --cases) CASES=$2; shift ;;
    *) sed -n '2,30p' "$0"; exit 2 ;;
  esac
  shift
done

# Counts per case; --quick divides them so the whole script runs in a minute or two.
if [ $QUICK = 1 ]; then
  N_P1=500; N_P64=5000; N_P16=20000; N_BACKLOG=20000; N_TOPIC=20000; FAILOVER_S=20; FAILOVER_KILL_S=3
else
  N_P1=5000; N_P64=50000; N_P16=200000; N_BACKLOG=1000000; N_TOPIC=200000; FAILOVER_S=40; FAILOVER_KILL_S=5
fi

log() { echo "compare: $*" >&2; }
die() { log "$*"; exit 1; }

[ -x "$BENCH" ] || die "tandem-bench not built: $BENCH (cmake --build $BUILD --target tandem-bench)"
if [ ! -f /usr/share/activemq/bin/activemq.jar ] && [[ " $BROKERS " == *" activemq "* ]]; then
  log "installing ActiveMQ from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q activemq >/dev/null
fi
command -v fio >/dev/null || die "fio is missing (apt-get install fio)"
mkdir -p "$OUT/raw" "$STORE_BASE"

# --- brokers: start_broker NAME INSTANCE PORT STORE; stop_broker NAME INSTANCE -------------
PIDS_DIR=$STORE_BASE/pids
mkdir -p "$PIDS_DIR"

wait_port() {  # wait_port PORT SECONDS
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

broker_available() {
  case "$1" in
    activemq) [ -f /usr/share/activemq/bin/activemq.jar ] ;;
    tandem) [ -x "$TANDEMD" ] ;;
  esac
}

start_broker() {  # start_broker NAME INSTANCE PORT STORE [wait=1]
  local name=$1 inst=$2 port=$3 store=$4 wait=${5:-1}
  case "$name" in
    activemq)
      WAIT=$wait "$AMQ" start "$STORE_BASE/amq-$inst" "$port" "$store" >"$PIDS_DIR/$name-$inst" ;;
    tandem)
      mkdir -p "$store"
      "$TANDEMD" --store "$store" --create-store --listen "127.0.0.1:$port" >"$STORE_BASE/tandemd-$inst.log" 2>&1 &
      echo $! >"$PIDS_DIR/$name-$inst"
      if [ "$wait" = 1 ]; then
        wait_port "$port" 60 || { tail -20 "$STORE_BASE/tandemd-$inst.log" >&2; die "tandemd did not open port $port"; }
      fi ;;
  esac
}

broker_pid() { cat "$PIDS_DIR/$1-$2"; }

stop_broker() {  # stop_broker NAME INSTANCE
  local name=$1 inst=$2
  [ -f "$PIDS_DIR/$name-$inst" ] || return 0
  case "$name" in
    activemq) "$AMQ" stop "$STORE_BASE/amq-$inst" ;;
    tandem)
      local pid; pid=$(broker_pid "$name" "$inst")
      if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        local deadline=$((SECONDS + 30))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
      fi ;;
  esac
  rm -f "$PIDS_DIR/$name-$inst"
}

cleanup() {
  for f in "$PIDS_DIR"/*; do
    [ -e "$f" ] || continue
    local base; base=$(basename "$f")
    stop_broker "${base%-*}" "${base##*-}" || true
  done
}
trap cleanup EXIT

port_of() { [ "$1" = activemq ] && echo $AMQ_PORT || echo $TANDEM_PORT; }
port2_of() { [ "$1" = activemq ] && echo $AMQ_PORT2 || echo $TANDEM_PORT2; }

# --- cases: run_case CASE BROKER REP writes $OUT/raw/CASE-BROKER-REP.json -------------------
run_case() {
  local case=$1 broker=$2 rep=$3
  local store=$STORE_BASE/store-$broker port; port=$(port_of "$broker")
  local url=tcp://127.0.0.1:$port json=$OUT/raw/$case-$broker-$rep.json
  rm -rf "$store" "$STORE_BASE/amq-a" "$STORE_BASE/amq-b"
  local common=(--size 1024 --quiet --json "$json")
  case "$case" in
    p1_r1|p64_r1|p16_r100|topic_np)
      start_broker "$broker" a "$port" "$store"
      case "$case" in
        p1_r1) "$BENCH" --url "$url" -p 1 -c 1 -n $N_P1 --persistent --receipt-every 1 --window 1 "${common[@]}" ;;
        p64_r1) "$BENCH" --url "$url" -p 64 -c 4 -n $N_P64 --persistent --receipt-every 1 --window 1 "${common[@]}" ;;
        p16_r100) "$BENCH" --url "$url" -p 16 -c 4 -n $N_P16 --persistent --receipt-every 100 "${common[@]}" ;;
        topic_np) "$BENCH" --url "$url" --topic -d /topic/compare -p 1 -c 8 -n $N_TOPIC "${common[@]}" ;;
      esac || log "$case on $broker: tandem-bench exit $?"
      stop_broker "$broker" a ;;
    drain_1m)
      start_broker "$broker" a "$port" "$store"
      "$BENCH" --url "$url" -d /queue/backlog --preload $N_BACKLOG -p 8 --persistent --receipt-every 100 --size 1024 --quiet \
        --json "$OUT/raw/$case-$broker-$rep.preload.json" || log "preload on $broker: exit $?"
      "$BENCH" --url "$url" -d /queue/backlog --drain -c 4 --ack client-individual --idle 3 "${common[@]}" ||
        log "drain on $broker: exit $?"
      stop_broker "$broker" a ;;
    rss_1m)
      start_broker "$broker" a "$port" "$store"
      "$BENCH" --url "$url" -d /queue/pending --preload $N_BACKLOG -p 8 --persistent --receipt-every 100 --size 1024 --quiet \
        --json "$OUT/raw/$case-$broker-$rep.preload.json" || log "preload on $broker: exit $?"
      local pid rss_kib; pid=$(broker_pid "$broker" a)
      rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
      printf '{"case":"%s","broker":"%s","pending":%s,"rss_mib":%s}\n' "$case" "$broker" $N_BACKLOG \
        "$(awk -v k="$rss_kib" 'BEGIN{printf "%.1f", k/1024}')" >"$json"
      stop_broker "$broker" a ;;
    failover)
      # Master and slave on one store; the slave does not listen until it holds the lock.
      local port2; port2=$(port2_of "$broker")
      start_broker "$broker" a "$port" "$store"
      start_broker "$broker" b "$port2" "$store" 0
      local master; master=$(broker_pid "$broker" a)
      ( sleep "$FAILOVER_KILL_S"; kill -KILL "$master" 2>/dev/null ) &
      local killer=$!
      "$BENCH" --url "failover:(tcp://127.0.0.1:$port,tcp://127.0.0.1:$port2)" -p 4 -c 1 --rate 1000 --duration $FAILOVER_S \
        --persistent --receipt-every 1 --idle 5 "${common[@]}" || log "failover on $broker: tandem-bench exit $? (lost messages are expected here)"
      wait $killer || true
      rm -f "$PIDS_DIR/$broker-a"
      stop_broker "$broker" b ;;
    *) die "unknown case $case" ;;
  esac
  rm -rf "$store"
}

# --- raw disk ---------------------------------------------------------------------------------
fio_run() {  # fio_run BS OUTFILE
  local dir=$STORE_BASE/fio size=64M
  [ $QUICK = 1 ] && size=8M
  mkdir -p "$dir"
  # --overwrite=1 lays the file out first and measures overwrites: a preallocated journal's
  # cost (an fdatasync that extends the file also commits metadata, which brokers avoid).
  fio --name=sync-write --directory="$dir" --rw=write --bs="$1" --size=$size --fdatasync=1 --ioengine=sync --overwrite=1 \
    --output-format=json --output="$2" >/dev/null
  rm -rf "$dir"
}
log "raw disk baseline (fio, write + fdatasync) in $STORE_BASE"
fio_run 1k "$OUT/fio-1k.json"
fio_run 64k "$OUT/fio-64k.json"

# --- the runs ------------------------------------------------------------------------------
available=()
for b in $BROKERS; do
  if broker_available "$b"; then available+=("$b"); else log "skipping $b: not installed/built"; fi
done
for case in $CASES; do
  for rep in $(seq 1 "$REPS"); do
    order=("${available[@]}")
    if [ $((rep % 2)) = 0 ]; then order=(); for ((i=${#available[@]}-1; i>=0; i--)); do order+=("${available[$i]}"); done; fi
    for b in "${order[@]}"; do
      log "$case rep $rep: $b"
      run_case "$case" "$b" "$rep"
    done
  done
done

"$PYTHON" "$ROOT/bench/summarize.py" "$OUT" --brokers "$BROKERS" --cases "$CASES" --available "${available[*]}"
log "wrote $OUT/summary.md and $OUT/summary.json"
