#!/usr/bin/env bash
# A private PostgreSQL 15 cluster managed by Patroni (Debian's `patroni`) with a single-node
# etcd (Debian's `etcd-server`) for Tandem's tests and drills: N members (default 2) with
# synchronous_mode on, in a temporary directory, as the unprivileged `postgres` user, on
# loopback ports that were free. Patroni, not this script, decides and performs failovers.
# Nothing outside DIR is touched; `stop` ends every process it started and removes DIR.
#
#   patroni_cluster.sh start DIR [--members N]   etcd + N Patroni members; writes DIR/env
#   patroni_cluster.sh stop DIR                  stop the members and etcd, rm -rf DIR
#   patroni_cluster.sh kill-primary DIR          SIGKILL the leader's postmaster and backends;
#                                                Patroni fails over (primary_start_timeout 0)
#   patroni_cluster.sh promote DIR               wait until Patroni promoted a new leader
#                                                (the harness never promotes by itself)
#   patroni_cluster.sh rebuild-standby DIR       wait until the cluster has a leader and a
#                                                streaming synchronous standby again (Patroni
#                                                rejoins the old primary, pg_rewind if needed)
#   patroni_cluster.sh terminate DIR [PATTERN]   pg_terminate_backend on the leader of every
#                                                backend whose application_name is LIKE PATTERN
#                                                (default 'tandemd-%'): cut connections
#   patroni_cluster.sh leader DIR                print the leader's member name and port
#   patroni_cluster.sh psql DIR [args]           psql on the leader as tandem
#
# DIR/env has the keys of tests/pg/pg_cluster.sh (PG_PRIMARY_PORT, PG_STANDBY_PORT,
# TANDEM_PG_URI, TANDEM_PG_MULTI_URI, PGPASSFILE, PG_SOCKET_DIR) plus PG_HARNESS=patroni and
# PG_MEMBER_PORTS. TANDEM_PG_MULTI_URI lists every member with
# target_session_attrs=read-write: whichever member Patroni made leader is the one libpq
# picks. The role `tandem` logs in with a SCRAM password kept in DIR/pgpass.
#
# The Patroni settings (docs/postgresql.md, "Patroni"): synchronous_mode: true (a COMMIT
# waits for the synchronous standby Patroni names in synchronous_standby_names, and only that
# standby may be promoted, so a failover never loses a COMMIT); primary_start_timeout: 0 (a
# crashed primary fails over at once instead of being restarted in place); loop_wait 1 s,
# retry_timeout 3 s, ttl 10 s (fast for tests; loop_wait + 2 x retry_timeout <= ttl).
#
# Exit 77 (the tests' "skipped") when PostgreSQL 15, Patroni or etcd cannot run here.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGUSER_OS=${PGUSER_OS:-postgres}
PY=/usr/bin/python3
SCOPE=tandem

skip() { echo "patroni_cluster: skipped: $*" >&2; exit 77; }
fail() { echo "patroni_cluster: $*" >&2; exit 1; }
# as_pg_daemon LOG CMD...: CMD in the background as the postgres user; $! is CMD itself
# (the subshell execs setpriv, which execs env, which execs CMD), so `stop` can signal it.
as_pg_daemon() {
  local log=$1; shift
  (exec setpriv --reuid="$PGUSER_OS" --regid="$PGUSER_OS" --init-groups env HOME="$DIR" "$@" >"$log" 2>&1 </dev/null) &
}

ensure_packages() {
  local need=()
  [ -x "$PGBIN/initdb" ] || need+=(postgresql-15)
  command -v patroni >/dev/null || need+=(patroni)
  command -v etcd >/dev/null || need+=(etcd-server)
  if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
      skip "cannot install ${need[*]}"
  fi
  [ -x "$PGBIN/initdb" ] || skip "no $PGBIN/initdb (install postgresql-15)"
  command -v patroni >/dev/null || skip "no patroni (install patroni)"
  command -v etcd >/dev/null || skip "no etcd (install etcd-server)"
  [ "$(id -u)" = 0 ] || skip "needs root to run PostgreSQL and Patroni as the $PGUSER_OS user"
  id "$PGUSER_OS" >/dev/null 2>&1 || skip "no $PGUSER_OS user"
}

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Distinct free ports: free_ports N.
free_ports() {
  local ports=() p
  while [ ${#ports[@]} -lt "$1" ]; do
    p=$(free_port)
    [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
  done
  echo "${ports[@]}"
}

# cluster_json DIR: Patroni's view of the cluster (GET /cluster) from the first member whose
# REST API answers.
cluster_json() {
  local api
  for api in $(cat "$1/api_ports"); do
    curl -sf --max-time 2 "http://127.0.0.1:$api/cluster" && return 0
  done
  return 1
}

# leader DIR: "NAME PORT" of the running leader, or nothing.
leader() {
  local json
  json=$(cluster_json "$1" 2>/dev/null) || return 0
  echo "$json" | $PY -c '
import json, sys
for m in json.load(sys.stdin).get("members", []):
    if m.get("role") == "leader" and m.get("state") == "running":
        print(m["name"], m["port"])' || true
}

# synchronous DIR: "NAME PORT" of the leader when Patroni lists a running sync_standby AND the
# leader's pg_stat_replication shows it as sync (two copies per COMMIT), else nothing.
synchronous() {
  local dir=$1 json name port
  json=$(cluster_json "$dir" 2>/dev/null) || return 0
  read -r name port < <(echo "$json" | $PY -c '
import json, sys
ms = json.load(sys.stdin).get("members", [])
lead = [m for m in ms if m.get("role") == "leader" and m.get("state") == "running"]
sync = [m for m in ms if m.get("role") == "sync_standby" and m.get("state") in ("running", "streaming")]
if lead and sync:
    print(lead[0]["name"], lead[0]["port"])') || return 0
  [ -n "${name:-}" ] || return 0
  [ "$(superuser_psql "$dir" "$port" "select count(*) from pg_stat_replication where sync_state = 'sync'" 2>/dev/null)" \
    -ge 1 ] 2>/dev/null && echo "$name $port"
  return 0
}

wait_for() {  # wait_for SECONDS WHAT COMMAND...: until COMMAND prints something
  local deadline=$((SECONDS + $1)) what=$2 out; shift 2
  while [ $SECONDS -lt $deadline ]; do
    out=$("$@") || true
    [ -n "$out" ] && { echo "$out"; return 0; }
    sleep 0.2
  done
  echo "patroni_cluster: $what within $1 s; see $DIR/*.log" >&2
  return 1
}

superuser_psql() {  # superuser_psql DIR PORT SQL...
  local dir=$1 port=$2; shift 2
  local args=()
  for sql in "$@"; do args+=(-c "$sql"); done
  setpriv --reuid="$PGUSER_OS" --regid="$PGUSER_OS" --init-groups \
    "$PGBIN/psql" -qAt -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 "${args[@]}"
}

member_config() {  # member_config DIR NAME PG_PORT API_PORT ETCD_PORT
  local dir=$1 name=$2 pg=$3 api=$4 etcd=$5
  cat <<YML
scope: $SCOPE
name: $name
log:
  level: INFO
restapi:
  listen: 127.0.0.1:$api
  connect_address: 127.0.0.1:$api
etcd3:
  hosts: 127.0.0.1:$etcd
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 3
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    primary_start_timeout: 0
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        synchronous_commit: "on"
        max_wal_senders: 6
        max_replication_slots: 6
        wal_keep_size: 256MB
        max_connections: 60
  initdb:
    - encoding: UTF8
    - auth-local: trust
    - auth-host: scram-sha-256
postgresql:
  listen: 127.0.0.1:$pg
  connect_address: 127.0.0.1:$pg
  data_dir: $dir/$name/data
  bin_dir: $PGBIN
  pgpass: $dir/$name/pgpass
  authentication:
    superuser:
      username: postgres
    replication:
      username: replicator
    rewind:
      username: postgres
  parameters:
    unix_socket_directories: '$dir'
    shared_buffers: 64MB
    fsync: "on"
    log_min_messages: warning
  # A test cluster on loopback: the superuser and replication are trusted there (as in
  # pg_cluster.sh); the broker's role logs in with its SCRAM password. Never expose it.
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 trust
    - host all postgres 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 scram-sha-256
YML
}

start() {
  local members=2
  while [ $# -gt 0 ]; do
    case $1 in
      --members) members=$2; shift 2 ;;
      *) echo "unknown option $1" >&2; exit 2 ;;
    esac
  done
  [ "$members" -ge 2 ] || fail "--members must be at least 2 (a primary and a synchronous standby)"
  ensure_packages
  mkdir -p "$DIR"
  chown "$PGUSER_OS:" "$DIR"
  chmod 700 "$DIR"
  local ports etcd_client etcd_peer i
  read -r -a ports <<<"$(free_ports $((2 * members + 2)))"
  etcd_client=${ports[0]} etcd_peer=${ports[1]}
  as_pg_daemon "$DIR/etcd.log" etcd --name tandem-etcd --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "tandem-etcd=http://127.0.0.1:$etcd_peer" --initial-cluster-state new \
    --log-level warn
  echo $! >"$DIR/etcd.pid"
  wait_for 30 "etcd did not answer" sh -c "curl -sf --max-time 1 http://127.0.0.1:$etcd_client/health" >/dev/null
  : >"$DIR/api_ports"
  : >"$DIR/members"
  local pg_ports=()
  for ((i = 1; i <= members; i++)); do
    local name=m$i pg=${ports[2 * i]} api=${ports[2 * i + 1]}
    pg_ports+=("$pg")
    mkdir -p "$DIR/$name"
    chown "$PGUSER_OS:" "$DIR/$name"
    chmod 700 "$DIR/$name"
    member_config "$DIR" "$name" "$pg" "$api" "$etcd_client" >"$DIR/$name.yml"
    echo "$api" >>"$DIR/api_ports"
    echo "$name $pg $api" >>"$DIR/members"
    as_pg_daemon "$DIR/$name.log" patroni "$DIR/$name.yml"
    echo $! >"$DIR/$name.pid"
    # The first member bootstraps (initdb) alone; the others clone it afterwards.
    [ "$i" = 1 ] && wait_for 120 "no leader was elected" leader "$DIR" >/dev/null
  done
  local lead port
  read -r lead port < <(wait_for 180 "no synchronous standby streamed" synchronous "$DIR")
  local pw
  pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  superuser_psql "$DIR" "$port" "create role tandem login password '$pw'" "create database tandem owner tandem" \
    "grant pg_monitor to tandem" >/dev/null
  (umask 077; printf '127.0.0.1:*:*:tandem:%s\n' "$pw" >"$DIR/pgpass")
  write_env "$DIR"
  echo "$DIR/env"
}

write_env() {  # write_env DIR: from DIR/members and the current leader
  local dir=$1 lead port standby hosts
  read -r lead port < <(leader "$dir")
  standby=$(awk -v l="$lead" '$1 != l {print $2; exit}' "$dir/members")
  hosts=$(awk '{printf "%s127.0.0.1:%s", (NR > 1 ? "," : ""), $2}' "$dir/members")
  cat >"$dir/env" <<ENV
PG_HARNESS=patroni
PG_PRIMARY_PORT=$port
PG_STANDBY_PORT=$standby
PG_MEMBER_PORTS=$(awk '{print $2}' "$dir/members" | paste -sd,)
PG_SOCKET_DIR=$dir
PGPASSFILE=$dir/pgpass
TANDEM_PG_URI=postgresql://tandem@127.0.0.1:$port/tandem
TANDEM_PG_MULTI_URI=postgresql://tandem@$hosts/tandem?target_session_attrs=read-write
ENV
}

# stop_pid FILE SECONDS: SIGTERM the process in FILE, SIGKILL it after SECONDS.
stop_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 $(($2 * 10))); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

# A member's postmaster and its children (backends, walsender, ...), by the pid file.
postgres_pids() {  # postgres_pids DATA_DIR
  local pid
  pid=$(head -1 "$1/postmaster.pid" 2>/dev/null) || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  echo "$pid" $(pgrep -P "$pid")
}

stop() {
  [ -d "$DIR" ] || return 0
  local f name
  # Patroni stops its PostgreSQL on SIGTERM; whatever survives a stuck Patroni is killed.
  for f in "$DIR"/m*.pid; do [ -f "$f" ] && stop_pid "$f" 30; done
  for f in "$DIR"/m*.pid; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .pid)
    local pids
    pids=$(postgres_pids "$DIR/$name/data")
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
  done
  stop_pid "$DIR/etcd.pid" 10
  rm -rf "$DIR"
}

kill_primary() {
  local lead port pids
  read -r lead port < <(wait_for 30 "no leader to kill" leader "$DIR")
  pids=$(postgres_pids "$DIR/$lead/data")
  [ -n "$pids" ] || fail "leader $lead has no running postmaster"
  # Postmaster and backends at once, as a host crash would: no backend lingers to answer.
  kill -9 $pids
  echo "$lead" >"$DIR/killed"
  echo "killed the leader $lead (port $port): pids $pids"
}

# The harness never promotes: it waits for Patroni to have elected a leader other than the
# member killed last.
promote() {
  local killed
  killed=$(cat "$DIR/killed" 2>/dev/null || true)
  wait_for 60 "Patroni promoted no other member" sh -c \
    "'$0' leader '$DIR' | awk -v k='$killed' '\$1 != k'"
}

rebuild_standby() {
  wait_for 180 "the cluster has no synchronous standby again" synchronous "$DIR" >/dev/null
  rm -f "$DIR/killed"
  write_env "$DIR"
}

terminate() {  # terminate DIR [PATTERN]: prints how many backends were ended
  local pattern=${1:-tandemd-%} lead port
  read -r lead port < <(wait_for 30 "no leader" leader "$DIR")
  superuser_psql "$DIR" "$port" \
    "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name like '$pattern'"
}

cmd=${1:-}; shift || true
[ $# -ge 1 ] || { sed -n '2,34p' "$0"; exit 2; }
DIR=$1; shift
case $cmd in
  start) start "$@" ;;
  stop) stop ;;
  kill-primary) kill_primary ;;
  promote) promote ;;
  rebuild-standby) rebuild_standby ;;
  terminate) terminate "$@" ;;
  leader) leader "$DIR" ;;
  psql) read -r _ port < <(leader "$DIR"); PGPASSFILE=$DIR/pgpass psql -h 127.0.0.1 -p "$port" -U tandem -d tandem "$@" ;;
  *) sed -n '2,34p' "$0"; exit 2 ;;
esac
