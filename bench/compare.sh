#!/usr/bin/env bash
# Tandem vs ActiveMQ 5.17 on this machine, measured with one client (tandem-bench): issue 8.
#
#   bench/compare.sh [--quick] [--reps N] [--cases "p1_r1 ..."] [--only "tandem ..."] [--perf]
#
# One run measures every case REPS times (default 3) per broker. Repetitions are the outer
# loop (rep 1: every case, rep 2: every case, ...) and the broker order flips from one case
# to the next and from one repetition to the next, so a drift of the shared machine (other
# builds) does not favour one broker. Every run starts its broker(s) on a fresh store; both
# brokers' stores and the fio file live in $STORE_BASE (default /var/tmp/tandem-compare), one
# file system. The raw disk baseline (fio) runs right before each run it is compared with.
#
# Cases (the issue's seven; exact tandem-bench options in run_case below):
#   p1_r1     persistent 1 KiB, 1 producer, RECEIPT per message, window 1 (synchronous sends)
#   p64_r1    persistent 1 KiB, 64 producers, RECEIPT per message, window 1 each (group commit)
#   p16_r100  persistent 1 KiB, 16 producers, RECEIPT every 100, window 10 receipts
#   backlog   preload 1,000,000 persistent 1 KiB messages (no consumer), read the broker's RSS
#             (case rss_1m), then drain them with 4 client-individual consumers (case drain_1m)
#   topic_np  non-persistent topic, 1 producer, 8 subscribers
#   failover  a master/slave pair on one store, 100,000 pending messages, SIGKILL of the
#             master: kill -> first RECEIPT from the new master. ActiveMQ twice: default lock
#             poll (10 s) and lockAcquireSleepInterval=100 ms ("activemq_tuned").
#   threads   (issue 19) p16_r100 and topic_np are also run on "tandem_t2": the same tandemd
#             with --threads 2 (connections on two threads, docs/threads.md); the summary gives
#             its ratio to "tandem" (threads 1), the issue's >= 1.6x.
#   py_p1     (issue 19) the same load as p1_r1 from stomp.py (bench/stomppy_bench.py: a process
#   py_p16    per producer, RECEIPT per message), 1 and 16 producers; a third kind, "sink",
#             runs the producers against a STOMP server that does nothing but answer: the
#             client ceiling the broker is measured against.
# p1_r1, p64_r1, p16_r100 and topic_np first run the same load for $WARMUP_S seconds on another
# destination (the JVM's JIT; Tandem gets the same), then measure for $MEASURE_S seconds.
#
# Brokers, configured as shipped except where a case needs otherwise (said here):
#   Tandem    tandemd, sync "always" (a RECEIPT means fdatasync'd), 1 io thread, body cache
#             64 MiB (default), max_destination_bytes raised to 4 GiB so a 1M backlog fits.
#   ActiveMQ  5.17 from Debian (bench/activemq.sh), KahaDB with its default journal sync
#             (fsync before the RECEIPT), STOMP transport, heap 1 GiB, memory/store limits
#             raised so a 1M backlog is stored rather than blocking producers.
#
# Output, in $OUT (default bench/results/): comparison.json, comparison.svg (bench/plot_svg.py:
# one panel per case, every broker's median and range) and comparison.md (the tables:
# median, min, max, Tandem/ActiveMQ ratio, fraction of the raw disk, targets), and
# comparison-raw/ (every tandem-bench JSON, fio JSON and per-run facts). comparison-notes.md,
# written by hand after profiling, is included in comparison.md as the analysis of the misses.
# --only "KINDS": run only these brokers (tandem activemq activemq_tuned), for development.
# --quick: one repetition at small counts, a smoke test of the script (writes to
# $OUT/quick/, never over the real results). --perf: record `perf record -g` of tandemd during
# each Tandem measurement into comparison-raw/*.perf.txt (perturbs the figures: for analysis,
# not for the published run).
#
# --pg (issue 14): Tandem's PostgreSQL store against ActiveMQ 5.17's JDBC store on the same
# PostgreSQL 15 (a primary and a synchronous standby from tests/pg/pg_cluster.sh, in
# $STORE_BASE/pg), beside Tandem's journal on local disk. Kinds: tandem (journal),
# tandem_pg (synchronous standby: two copies before RECEIPT), tandem_pg_async (same cluster,
# synchronous_standby_names emptied: one copy), activemq_jdbc (jdbcPersistenceAdapter,
# PGSimpleDataSource, synchronous standby like tandem_pg). Cases p1_r1, p16_r1, p64_r1
# (persistent 1 KiB, RECEIPT per message, window 1), and with --cases "... failover" the
# failover case on tandem_pg and tandem only. A fresh database per run. Writes
# postgresql.md / postgresql.json and postgresql-raw/ (bench/summarize_pg.py).
#
# Needs root (apt-get installs activemq and fio if missing) and a build with tandemd and
# tandem-bench: BUILD=DIR (default build/).
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
# STOMP ports away from the defaults and from the test suite's; both brokers also use PORT+1
# (ActiveMQ: OpenWire; Tandem: admin HTTP).
# Overridable (AMQ_PORT=... bench/compare.sh) when another run holds these.
AMQ_PORT=${AMQ_PORT:-61790}; AMQ_PORT2=${AMQ_PORT2:-61792}; TANDEM_PORT=${TANDEM_PORT:-61780}; TANDEM_PORT2=${TANDEM_PORT2:-61782}

REPS=3; QUICK=0; PERF=0; ONLY=""; PG=0
CASES="p1_r1 p64_r1 p16_r100 backlog topic_np failover py_p1 py_p16"
CASES_SET=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; REPS=1 ;;
    --reps) REPS=$2; shift ;;
    --cases) CASES=$2; CASES_SET=1; shift ;;
    --pg) PG=1 ;;
    --only) ONLY=$2; shift ;;
    --perf) PERF=1 ;;
    *) sed -n '2,45p' "$0"; exit 2 ;;
  esac
  shift
done

if [ $QUICK = 1 ]; then
  OUT=$OUT/quick
  WARMUP_S=1; MEASURE_S=3; N_BACKLOG=50000; N_FAILOVER_PENDING=10000; FIO_S=2
else
  WARMUP_S=3; MEASURE_S=10; N_BACKLOG=1000000; N_FAILOVER_PENDING=100000; FIO_S=4
fi
RAW=$OUT/comparison-raw
if [ $PG = 1 ]; then
  RAW=$OUT/postgresql-raw
  [ $CASES_SET = 1 ] || CASES="p1_r1 p16_r1 p64_r1"
fi
BODY_CACHE_BYTES=67108864  # tandemd's default body_cache_bytes, stated in the config below

log() { echo "compare: $(date +%T) $*" >&2; }
die() { log "$*"; exit 1; }

[ -x "$BENCH" ] || die "tandem-bench not built: $BENCH (cmake --build $BUILD --target tandem-bench)"
[ -x "$TANDEMD" ] || die "tandemd not built: $TANDEMD (cmake --build $BUILD --target tandemd)"
need=()
[ -f /usr/share/activemq/bin/activemq.jar ] || need+=(activemq)
[ $PG = 1 ] && [ ! -f /usr/share/java/postgresql.jar ] && need+=(libpostgresql-jdbc-java)
command -v fio >/dev/null || need+=(fio)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
if [ $PERF = 1 ] && ! command -v perf >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-perf >/dev/null
fi

rm -rf "$RAW"
mkdir -p "$RAW" "$STORE_BASE"
PIDS_DIR=$STORE_BASE/pids
mkdir -p "$PIDS_DIR"

# The Tandem configuration: defaults, except the per-destination limit (a 1M backlog of 1 KiB
# is 1 GiB; the default 256 MiB would make producers wait, which is flow control, not speed),
# and admin_open_reads so the journal counters can be read from /metrics without credentials.
TANDEM_CONFIG=$STORE_BASE/tandemd.json
cat >"$TANDEM_CONFIG" <<JSON
{"allow_anonymous": true, "sync": "always", "threads": 1, "body_cache_bytes": $BODY_CACHE_BYTES,
 "max_destination_bytes": 4294967296, "admin_open_reads": true}
JSON

# meta FILE KEY JSON-VALUE: sets one key of a small JSON object file (created if missing).
meta() {
  "$PYTHON" - "$@" <<'PY'
import json, os, sys
path, key, value = sys.argv[1], sys.argv[2], sys.argv[3]
d = json.load(open(path)) if os.path.exists(path) else {}
d[key] = json.loads(value)
json.dump(d, open(path, "w"), indent=1)
PY
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg | tr ' ' ','; }

# --- brokers ---------------------------------------------------------------------------------
# start_broker KIND INSTANCE PORT STORE ROLE: KIND tandem | activemq | activemq_tuned;
# ROLE master (wait for the STOMP port) or slave (wait until it says it waits for the lock).
wait_port() {  # wait_port PORT SECONDS PID
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "$3" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
wait_log() {  # wait_log FILE PATTERN SECONDS
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

start_broker() {
  local kind=$1 inst=$2 port=$3 store=$4 role=$5 log pid
  # A port someone else listens on would be measured in our broker's place (seen: another
  # checkout's ActiveMQ on 61790 while ours failed to bind).
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is already in use by another process: set AMQ_PORT / TANDEM_PORT (and *_PORT2)"
  fi
  mkdir -p "$store"
  case "$kind" in
    tandem|tandem_t2|tandem_pg|tandem_pg_async)
      local store_arg=$store threads=1
      [ "$kind" = tandem_t2 ] && threads=2
      if [ "$kind" != tandem ] && [ "$kind" != tandem_t2 ]; then
        pg_replication "$([ "$kind" = tandem_pg ] && echo standby1)"
        store_arg=$(pg_uri "$store")
      fi
      log=$STORE_BASE/tandemd-$inst.log
      PGPASSFILE=$PG_DIR/pgpass "$TANDEMD" --config "$TANDEM_CONFIG" --store "$store_arg" --create-store \
        --listen "127.0.0.1:$port" --admin "127.0.0.1:$((port + 1))" --name "$inst" --threads "$threads" >"$log" 2>&1 &
      pid=$!
      disown "$pid"  # killed on purpose: no "Killed" notice from bash
      echo "$pid" >"$PIDS_DIR/$inst"
      if [ "$role" = master ]; then
        wait_port "$port" 60 "$pid" || { tail -20 "$log" >&2; die "tandemd $inst did not open port $port"; }
      else
        # "slave: waiting for lock" (journal) or "slave: waiting for the lease" (PostgreSQL)
        wait_log "$log" "slave: waiting for" 60 || { tail -20 "$log" >&2; die "tandemd $inst is not a slave"; }
      fi ;;
    activemq_jdbc)
      pg_replication standby1
      rm -rf "$STORE_BASE/amq-$inst"
      AMQ_JDBC_URL="jdbc:postgresql://127.0.0.1:$PG_PRIMARY_PORT/$(basename "$store")" AMQ_JDBC_USER=tandem \
        AMQ_JDBC_PASSWORD="$(cut -d: -f5 "$PG_DIR/pgpass")" WAIT=1 \
        "$AMQ" start "$STORE_BASE/amq-$inst" "$port" "$store" >/dev/null
      cp "$STORE_BASE/amq-$inst/activemq.pid" "$PIDS_DIR/$inst" ;;
    activemq|activemq_tuned)
      local lock_ms=""
      [ "$kind" = activemq_tuned ] && lock_ms=100
      rm -rf "$STORE_BASE/amq-$inst"
      AMQ_LOCK_SLEEP_MS=$lock_ms WAIT=$([ "$role" = master ] && echo 1 || echo 0) \
        "$AMQ" start "$STORE_BASE/amq-$inst" "$port" "$store" >/dev/null
      cp "$STORE_BASE/amq-$inst/activemq.pid" "$PIDS_DIR/$inst"
      if [ "$role" = slave ]; then
        wait_log "$STORE_BASE/amq-$inst/console.log" "slave mode waiting" 120 ||
          { tail -20 "$STORE_BASE/amq-$inst/console.log" >&2; die "ActiveMQ $inst is not a slave"; }
      fi ;;
  esac
}

broker_pid() { cat "$PIDS_DIR/$1"; }

# stop_broker INSTANCE: SIGKILL (every store is thrown away after its run, so a clean
# shutdown would only cost time), then wait until the process is gone.
stop_broker() {
  local inst=$1 pid
  [ -f "$PIDS_DIR/$inst" ] || return 0
  pid=$(cat "$PIDS_DIR/$inst")
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$PIDS_DIR/$inst"
}

cleanup() {
  for f in "$PIDS_DIR"/*; do
    [ -e "$f" ] && stop_broker "$(basename "$f")"
  done
  return 0
}
trap cleanup EXIT

port_of() { [[ "$1" = tandem* ]] && echo $TANDEM_PORT || echo $AMQ_PORT; }  # (sink: unused)
port2_of() { [[ "$1" = tandem* ]] && echo $TANDEM_PORT2 || echo $AMQ_PORT2; }

# --- the PostgreSQL of --pg: one cluster for the whole run, a database per measurement -------
PG_DIR=$STORE_BASE/pg
pg_sql() { runuser -u postgres -- /usr/lib/postgresql/15/bin/psql -qAt -h "$PG_DIR" -p "$PG_PRIMARY_PORT" -d postgres -c "$1"; }
pg_uri() { echo "postgresql://tandem@127.0.0.1:$PG_PRIMARY_PORT/$(basename "$1")"; }
# pg_replication NAMES: synchronous_standby_names = NAMES ('' = asynchronous), reloaded.
pg_replication() {
  pg_sql "alter system set synchronous_standby_names = '$1'" >/dev/null
  pg_sql "select pg_reload_conf()" >/dev/null
}
pg_fresh_database() {  # pg_fresh_database NAME
  pg_sql "drop database if exists $1" >/dev/null
  pg_sql "create database $1 owner tandem" >/dev/null
}
if [ $PG = 1 ]; then
  "$ROOT/tests/pg/pg_cluster.sh" stop "$PG_DIR"
  "$ROOT/tests/pg/pg_cluster.sh" start "$PG_DIR" >/dev/null || die "cannot start PostgreSQL (tests/pg/pg_cluster.sh)"
  # shellcheck disable=SC1091
  . "$PG_DIR/env"
  trap 'cleanup; "$ROOT/tests/pg/pg_cluster.sh" stop "$PG_DIR"' EXIT
fi

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
CLK_TCK=$(getconf CLK_TCK)
# CPU seconds (user + system, all threads) a process has used so far.
cpu_s() { awk -v hz="$CLK_TCK" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
# Tandem's journal counters from its admin port: {"appends", "fsyncs", "fsync_s"}.
tandem_journal_counters() {
  curl -s "http://127.0.0.1:$1/metrics" | awk '
    /^tandem_journal_appends_total / {a = $2}
    /^tandem_journal_fsync_seconds_count / {n = $2}
    /^tandem_journal_fsync_seconds_sum / {t = $2}
    END {printf "{\"appends\": %d, \"fsyncs\": %d, \"fsync_s\": %s}", a, n, (t == "" ? 0 : t)}'
}
# measure_start PID PORT / measure_end PID PORT META: the broker's CPU time and (Tandem) journal
# counters over a measurement, for comparison-notes.md's "what bounds it".
measure_start() {
  M_CPU=$(cpu_s "$1")
  M_J=""; [[ "$2" = tandem || "$2" = tandem_t2 ]] && M_J=$(tandem_journal_counters "$3")
  return 0
}
measure_end() {  # measure_end PID KIND ADMIN_PORT META
  meta "$4" broker_cpu_s "$(awk -v a="$M_CPU" -v b="$(cpu_s "$1")" 'BEGIN{printf "%.2f", b - a}')"
  if [[ "$2" = tandem || "$2" = tandem_t2 ]]; then
    meta "$4" journal_before "$M_J"
    meta "$4" journal_after "$(tandem_journal_counters "$3")"
  fi
  return 0
}

# The RSS after a load settles (JVM and allocator release work in the background): sampled
# every second until it moves less than 1% in 3 s, at most 20 s.
settled_rss_kib() {
  local pid=$1 prev cur i
  prev=$(rss_kib "$pid")
  for i in $(seq 1 20); do
    sleep 1
    cur=$(rss_kib "$pid")
    if [ $((i % 3)) = 0 ]; then
      [ $(( (cur > prev ? cur - prev : prev - cur) * 100 )) -lt "$prev" ] && break
      prev=$cur
    fi
  done
  echo "$cur"
}

# bench_run JSON [tandem-bench options...]: runs tandem-bench, returns its exit status; with
# --perf and a Tandem broker in $PERF_PID, records the tandemd process meanwhile.
PERF_PID=""
bench_run() {
  local json=$1; shift
  local rc=0 perf_job=""
  if [ $PERF = 1 ] && [ -n "$PERF_PID" ]; then
    perf record -g -p "$PERF_PID" -o "${json%.json}.perf.data" >/dev/null 2>&1 &
    perf_job=$!
  fi
  "$BENCH" --quiet --size 1024 --json "$json" "$@" || rc=$?
  if [ -n "$perf_job" ]; then
    kill -INT "$perf_job"; wait "$perf_job" || true
    { echo "# flat profile (self time), tandemd, during ${json##*/}"
      perf report -i "${json%.json}.perf.data" --stdio --no-children -g none --percent-limit 0.5 2>/dev/null
      echo; echo "# call graphs (callers), entries above 3%"
      perf report -i "${json%.json}.perf.data" --stdio --no-children -g caller,0.5,callee,function,percent \
        --max-stack 12 --percent-limit 3 2>/dev/null
    } | cut -c1-200 >"${json%.json}.perf.txt" || true
    rm -f "${json%.json}.perf.data"
  fi
  return $rc
}

# --- cases: run_case CASE KIND REP -----------------------------------------------------------
run_case() {
  local case=$1 kind=$2 rep=$3
  local store=$STORE_BASE/store-$kind port url base=$RAW/$case.$kind.$rep
  port=$(port_of "$kind"); url=tcp://127.0.0.1:$port
  rm -rf "$store"
  case "$kind" in tandem_pg*|activemq_jdbc) store=$STORE_BASE/bench_$case; pg_fresh_database "bench_$case" ;; esac
  meta "$base.meta.json" loadavg_before "\"$(loadavg)\""
  local rc=0
  case "$case" in
    p1_r1|p16_r1|p64_r1|p16_r100|topic_np)
      local args
      case "$case" in
        p1_r1) args=(-p 1 -c 0 --persistent --receipt-every 1 --window 1) ;;
        p16_r1) args=(-p 16 -c 0 --persistent --receipt-every 1 --window 1) ;;
        p64_r1) args=(-p 64 -c 0 --persistent --receipt-every 1 --window 1) ;;
        p16_r100) args=(-p 16 -c 0 --persistent --receipt-every 100 --window 10) ;;
        topic_np) args=(-p 1 -c 8 --threads 2) ;;
      esac
      case "$case" in
        p1_r1) fio_run 1k "$base.fio.json" ;;
        p64_r1|p16_r1|p16_r100) fio_run 64k "$base.fio.json" ;;
      esac
      start_broker "$kind" a "$port" "$store" master
      local dest=/queue/compare warm=/queue/warmup
      [ "$case" = topic_np ] && { dest=/topic/compare; warm=/topic/warmup; }
      "$BENCH" --quiet --size 1024 --url "$url" -d "$warm" --duration "$WARMUP_S" "${args[@]}" >/dev/null ||
        log "$case $kind warm-up: tandem-bench exit $?"
      [[ "$kind" = tandem* ]] && PERF_PID=$(broker_pid a)
      measure_start "$(broker_pid a)" "$kind" $((port + 1))
      bench_run "$base.bench.json" --url "$url" -d "$dest" --duration "$MEASURE_S" "${args[@]}" || rc=$?
      measure_end "$(broker_pid a)" "$kind" $((port + 1)) "$base.meta.json"
      PERF_PID=""
      meta "$base.meta.json" bench_exit "$rc"
      stop_broker a ;;
    py_p1|py_p16)
      local producers=${case#py_p} target=(--sink)
      [ "$producers" = 1 ] && fio_run 1k "$base.fio.json"  # py_p16's limit is the sink, not the disk
      if [ "$kind" != sink ]; then
        start_broker "$kind" a "$port" "$store" master
        target=("127.0.0.1:$port")
        measure_start "$(broker_pid a)" "$kind" $((port + 1))
      fi
      "$PYTHON" "$ROOT/bench/stomppy_bench.py" "${target[@]}" --producers "$producers" --seconds "$MEASURE_S" \
        --warmup "$WARMUP_S" --receipt-every 1 --json "$base.bench.json" || rc=$?
      if [ "$kind" != sink ]; then
        measure_end "$(broker_pid a)" "$kind" $((port + 1)) "$base.meta.json"
        stop_broker a
      fi
      meta "$base.meta.json" bench_exit "$rc" ;;
    backlog)
      start_broker "$kind" a "$port" "$store" master
      local pid; pid=$(broker_pid a)
      meta "$base.meta.json" rss_empty_kib "$(settled_rss_kib "$pid")"
      bench_run "$base.preload.json" --url "$url" -d /queue/backlog --preload "$N_BACKLOG" -p 8 --persistent \
        --receipt-every 100 --window 10 || rc=$?
      meta "$base.meta.json" preload_exit "$rc"
      meta "$base.meta.json" pending "$N_BACKLOG"
      meta "$base.meta.json" body_bytes 1024
      meta "$base.meta.json" rss_pending_kib "$(settled_rss_kib "$pid")"
      [ "$kind" = tandem ] && meta "$base.meta.json" body_cache_bytes "$BODY_CACHE_BYTES"
      rc=0
      [ "$kind" = tandem ] && PERF_PID=$pid
      measure_start "$pid" "$kind" $((port + 1))
      bench_run "$base.drain.json" --url "$url" -d /queue/backlog --drain -c 4 --ack client-individual \
        --prefetch 1000 --idle 3 || rc=$?
      measure_end "$pid" "$kind" $((port + 1)) "$base.meta.json"
      PERF_PID=""
      meta "$base.meta.json" drain_exit "$rc"
      stop_broker a ;;
    failover)
      # The pair on one store; the slave never opens its port before it holds the lock. The
      # pending messages sit on another queue than the probe's, as a backlog a takeover must
      # recover. The probe: 4 producers, 1,000 persistent msg/s in all, a RECEIPT per message,
      # reconnecting every 5-20 ms to the broker list (so the client's backoff is not measured).
      local port2; port2=$(port2_of "$kind")
      start_broker "$kind" a "$port" "$store" master
      "$BENCH" --quiet --size 1024 --url "$url" -d /queue/pending --preload "$N_FAILOVER_PENDING" -p 4 --persistent \
        --receipt-every 100 --window 10 --json "$base.preload.json" || log "failover preload on $kind: exit $?"
      start_broker "$kind" b "$port2" "$store" slave
      local master; master=$(broker_pid a)
      # Kill the master 3 s into the probe; CLOCK_MONOTONIC of the kill goes to the meta file
      # (tandem-bench's *_ns fields are on the same clock).
      "$PYTHON" - "$master" "$base.kill" <<'PY' &
import os, signal, sys, time
time.sleep(3.0)
t = time.monotonic_ns()
os.kill(int(sys.argv[1]), signal.SIGKILL)
open(sys.argv[2], "w").write(str(t))
PY
      local killer=$!
      timeout 300 "$BENCH" --quiet --size 1024 \
        --url "failover:(tcp://127.0.0.1:$port,tcp://127.0.0.1:$port2)?initialReconnectDelay=5&maxReconnectDelay=20" \
        -d /queue/probe -p 4 -c 0 --rate 1000 --duration 6 --persistent --receipt-every 1 --window 1 \
        --json "$base.bench.json" || rc=$?
      wait "$killer" || true
      meta "$base.meta.json" bench_exit "$rc"
      meta "$base.meta.json" pending "$N_FAILOVER_PENDING"
      [ -f "$base.kill" ] && meta "$base.meta.json" kill_ns "$(cat "$base.kill")" && rm -f "$base.kill"
      stop_broker a
      stop_broker b ;;
    *) die "unknown case $case" ;;
  esac
  meta "$base.meta.json" loadavg_after "\"$(loadavg)\""
  rm -rf "$store"
  [ $rc = 0 ] || log "$case on $kind: tandem-bench exit $rc"
}

# --- raw disk: the journal's write mode -----------------------------------------------------
# A fresh file, preallocated with posix_fallocate (as the journal does for each segment), then
# sequential buffered pwrite of BS bytes, each followed by fdatasync: the ceiling of a store
# that syncs every write into preallocated space. It runs right before each broker's run of
# the cases it is the limit of (p1_r1: 1 KiB; p64_r1, p16_r100: 64 KiB), because on this VM the
# fdatasync latency moves between ~0.1 ms and ~4 ms from one minute to the next
# (comparison-notes.md); each run is divided by the fio run next to it.
fio_run() {  # fio_run BS OUTFILE
  local dir=$STORE_BASE/fio
  rm -rf "$dir"; mkdir -p "$dir"
  fio --name=journal-mode --directory="$dir" --rw=write --bs="$1" --size=256M --fallocate=posix \
    --ioengine=psync --fdatasync=1 --runtime="$FIO_S" --output-format=json --output="$2" >/dev/null
  rm -rf "$dir"
}

# --- the run -----------------------------------------------------------------------------------
START_LOAD=$(loadavg)
log "start: load average $START_LOAD; stores in $STORE_BASE ($(findmnt -no FSTYPE -T "$STORE_BASE"))"
# The source tree the binaries were built from (BUILD may belong to another checkout).
SRC=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
"$PYTHON" - "$RAW/environment.json" "$START_LOAD" "$STORE_BASE" "$QUICK" "$REPS" "$WARMUP_S" "$MEASURE_S" \
  "$N_BACKLOG" "$N_FAILOVER_PENDING" "$BODY_CACHE_BYTES" "$TANDEM_CONFIG" "${SRC:-$ROOT}" "$BUILD" <<'PY'
import json, os, platform, subprocess, sys
out, load, store, quick, reps, warm, measure, backlog, pending, cache, cfg, src, build = sys.argv[1:]
def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
json.dump({
    "started": sh("date -u +%FT%TZ"), "loadavg_start": load, "quick": quick == "1", "reps": int(reps),
    "warmup_s": float(warm), "measure_s": float(measure), "backlog_messages": int(backlog),
    "failover_pending": int(pending), "tandem_body_cache_bytes": int(cache),
    "tandem_config": json.load(open(cfg)),
    "kernel": platform.release(), "cpus": os.cpu_count(),
    "cpu_model": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
    "mem_total": sh("grep MemTotal /proc/meminfo | awk '{print $2 \" kB\"}'"),
    "store_fs": sh(f"findmnt -no FSTYPE,OPTIONS -T {store}") or sh(f"stat -f -c %T {store}"), "store_device": sh(f"df --output=source {store} | tail -1"),
    "store_dir": store, "activemq": sh("dpkg-query -W -f '${Version}' activemq"),
    "java": sh("java -version 2>&1 | head -1"), "fio": sh("fio --version"),
    "git_commit": sh(f"git -C {src} rev-parse --short HEAD"),
    "git_dirty": sh(f"git -C {src} status --porcelain -- broker journal lockmgr tools") != "",
    "build_dir": build, "build_type": sh(f"sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' {build}/CMakeCache.txt"),
}, open(out, "w"), indent=1)
PY

kinds_for() {
  local k all; all=$([ "$1" = failover ] && echo "activemq activemq_tuned tandem" || echo "activemq tandem")
  [[ "$1" = py_* ]] && all="activemq tandem sink"
  [[ "$1" = p16_r100 || "$1" = topic_np ]] && all="activemq tandem tandem_t2"
  [ $PG = 1 ] && all="activemq_jdbc tandem_pg tandem_pg_async tandem"
  [ $PG = 1 ] && [ "$1" = failover ] && all="tandem_pg tandem"
  for k in $all; do [ -z "$ONLY" ] || [[ " $ONLY " == *" $k "* ]] && echo -n "$k "; done
  echo
}
for rep in $(seq 1 "$REPS"); do
  ci=0
  for case in $CASES; do
    read -r -a order <<<"$(kinds_for "$case")"
    if [ $(((rep + ci) % 2)) = 0 ]; then
      rev=(); for ((i = ${#order[@]} - 1; i >= 0; i--)); do rev+=("${order[$i]}"); done; order=("${rev[@]}")
    fi
    ci=$((ci + 1))
    for kind in "${order[@]}"; do
      log "rep $rep: $case on $kind (load average $(loadavg))"
      run_case "$case" "$kind" "$rep"
    done
  done
done
meta "$RAW/environment.json" loadavg_end "\"$(loadavg)\""
meta "$RAW/environment.json" finished "\"$(date -u +%FT%TZ)\""

if [ $PG = 1 ]; then
  "$PYTHON" "$ROOT/bench/summarize_pg.py" "$OUT"
  log "wrote $OUT/postgresql.md and $OUT/postgresql.json (load average $(loadavg))"
  exit 0
fi
"$PYTHON" "$ROOT/bench/summarize.py" "$OUT"
"$PYTHON" "$ROOT/bench/plot_svg.py" comparison "$OUT/comparison.json" >/dev/null
log "wrote $OUT/comparison.md, $OUT/comparison.json and $OUT/comparison.svg (load average $(loadavg))"
