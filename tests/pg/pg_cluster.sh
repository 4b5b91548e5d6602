#!/usr/bin/env bash
# A private PostgreSQL 15 primary and a synchronous streaming standby for Tandem's tests and
# benchmarks, in a temporary directory, as the unprivileged `postgres` user, on loopback
# ports that were free. Nothing outside DIR is touched; `stop` removes DIR.
#
#   pg_cluster.sh start DIR [--no-standby] [--async]   initdb + start; writes DIR/env
#   pg_cluster.sh stop DIR                              stop both servers, rm -rf DIR
#   pg_cluster.sh kill-primary DIR                      SIGKILL the primary's postmaster
#   pg_cluster.sh promote DIR                           pg_ctl promote the standby
#   pg_cluster.sh pause-standby DIR                     SIGSTOP the standby (every COMMIT waits)
#   pg_cluster.sh resume-standby DIR                    SIGCONT it
#   pg_cluster.sh rebuild-standby DIR                   after kill-primary + promote: a new
#                                                       synchronous standby where the dead
#                                                       primary was (same port); DIR/env updated
#   pg_cluster.sh terminate DIR [PATTERN]               pg_terminate_backend of every backend
#                                                       whose application_name is LIKE PATTERN
#                                                       (default 'tandemd-%'): cut connections
#   pg_cluster.sh psql DIR [args]                       psql on the primary as tandem
#
# DIR/env (sourced by the tests) sets PG_PRIMARY_PORT, PG_STANDBY_PORT, TANDEM_PG_URI (the
# primary), TANDEM_PG_MULTI_URI (both hosts, target_session_attrs=read-write) and
# PGPASSFILE (the role `tandem` logs in with a SCRAM password kept in DIR/pgpass, never in
# a URI). The standby is named in synchronous_standby_names with synchronous_commit = on:
# a COMMIT returns once the standby has flushed the WAL (two copies). --async leaves
# synchronous_standby_names empty (the comparison "without a second copy" in the bench).
#
# Exit 77 (the tests' "skipped") when PostgreSQL 15 cannot be installed or run here.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGUSER_OS=${PGUSER_OS:-postgres}
PY=/usr/bin/python3

skip() { echo "pg_cluster: skipped: $*" >&2; exit 77; }
as_pg() { runuser -u "$PGUSER_OS" -- "$@"; }

ensure_packages() {
  if [ ! -x "$PGBIN/initdb" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null 2>&1 ||
        skip "cannot install postgresql-15"
    fi
  fi
  [ -x "$PGBIN/initdb" ] || skip "no $PGBIN/initdb (install postgresql-15)"
  [ "$(id -u)" = 0 ] || skip "needs root to run PostgreSQL as the $PGUSER_OS user"
  id "$PGUSER_OS" >/dev/null 2>&1 || skip "no $PGUSER_OS user"
}

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_ready() {  # wait_ready PORT
  for _ in $(seq 1 200); do
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$1" && return 0
    sleep 0.1
  done
  echo "pg_cluster: server on port $1 did not become ready" >&2
  return 1
}

start() {
  local dir=$1; shift
  local standby=1 sync=1
  for a in "$@"; do
    case $a in --no-standby) standby=0 ;; --async) sync=0 ;; *) echo "unknown option $a" >&2; exit 2 ;; esac
  done
  ensure_packages
  mkdir -p "$dir"
  chown "$PGUSER_OS" "$dir"
  chmod 700 "$dir"
  local p1 p2 pw
  p1=$(free_port); p2=$(free_port)
  while [ "$p2" = "$p1" ]; do p2=$(free_port); done
  pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  as_pg "$PGBIN/initdb" -D "$dir/primary" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  cat >>"$dir/primary/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $p1
unix_socket_directories = '$dir'
max_wal_senders = 4
wal_level = replica
synchronous_commit = on
fsync = on
shared_buffers = 64MB
max_connections = 60
wal_keep_size = 256MB
log_min_messages = warning
CONF
  # The superuser (replication, setup) is trusted on the socket in DIR and on loopback; the
  # broker's role logs in with its SCRAM password. A test cluster: never expose it.
  cat >"$dir/primary/pg_hba.conf" <<HBA
local all all trust
host replication postgres 127.0.0.1/32 trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
HBA
  as_pg "$PGBIN/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w start >/dev/null
  wait_ready "$p1"
  as_pg "$PGBIN/psql" -q -h "$dir" -p "$p1" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "create role tandem login password '$pw'" -c "create database tandem owner tandem" -c "grant pg_monitor to tandem" >/dev/null
  if [ $standby = 1 ]; then
    as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$p1" -U postgres -D "$dir/standby" -R -X stream -c fast -w \
      -d "application_name=standby1" >/dev/null 2>"$dir/basebackup.log" || { cat "$dir/basebackup.log" >&2; exit 1; }
    sed -i "s/^port = .*/port = $p2/" "$dir/standby/postgresql.conf"
    echo "port = $p2" >>"$dir/standby/postgresql.conf"
    echo "primary_conninfo = 'host=127.0.0.1 port=$p1 user=postgres application_name=standby1'" >>"$dir/standby/postgresql.auto.conf"
    as_pg "$PGBIN/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -w start >/dev/null
    wait_ready "$p2"
    # Synchronous only once the standby streams: set before, the role creation above would
    # wait for a standby that does not exist yet.
    if [ $sync = 1 ]; then
      as_pg "$PGBIN/psql" -q -h "$dir" -p "$p1" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "alter system set synchronous_standby_names = 'standby1'" -c "select pg_reload_conf()" >/dev/null
    fi
    for _ in $(seq 1 100); do
      st=$(as_pg "$PGBIN/psql" -qAt -h "$dir" -p "$p1" -U postgres -d postgres -c \
        "select sync_state from pg_stat_replication where application_name = 'standby1'")
      if [ $sync = 1 ]; then [ "$st" = sync ] && break; else [ -n "$st" ] && break; fi
      sleep 0.1
    done
  fi
  umask 077
  printf '127.0.0.1:*:*:tandem:%s\n' "$pw" >"$dir/pgpass"
  chmod 600 "$dir/pgpass"
  write_env "$dir" "$p1" "$([ $standby = 1 ] && echo "$p2")"
  echo "$dir/env"
}

stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  for d in primary standby; do
    [ -f "$dir/$d/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/$d" -m immediate -w stop >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
}

# The data directories are DIR/primary and DIR/standby; after a failover and
# rebuild-standby their roles are swapped, and DIR/primary_name says which is the primary.
primary_name() { cat "$1/primary_name" 2>/dev/null || echo primary; }
standby_name() { if [ "$(primary_name "$1")" = primary ]; then echo standby; else echo primary; fi; }
port_of() { grep '^port = ' "$1/postgresql.conf" | tail -1 | awk '{print $3}'; }

write_env() {  # write_env DIR PRIMARY_PORT STANDBY_PORT
  local dir=$1 p1=$2 p2=$3
  cat >"$dir/env" <<ENV
PG_PRIMARY_PORT=$p1
PG_STANDBY_PORT=$p2
PG_SOCKET_DIR=$dir
PGPASSFILE=$dir/pgpass
TANDEM_PG_URI=postgresql://tandem@127.0.0.1:$p1/tandem
TANDEM_PG_MULTI_URI=postgresql://tandem@127.0.0.1:$p1,127.0.0.1:$p2/tandem?target_session_attrs=read-write
ENV
}

superuser_psql() {  # superuser_psql DIR PORT SQL...
  local dir=$1 port=$2; shift 2
  local args=()
  for sql in "$@"; do args+=(-c "$sql"); done
  as_pg "$PGBIN/psql" -qAt -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 "${args[@]}"
}

wait_sync() {  # wait_sync DIR PRIMARY_PORT: until standby1 is a synchronous standby
  for _ in $(seq 1 200); do
    [ "$(superuser_psql "$1" "$2" "select sync_state from pg_stat_replication where application_name = 'standby1'")" = sync ] &&
      return 0
    sleep 0.1
  done
  echo "pg_cluster: standby1 did not become synchronous" >&2
  return 1
}

# The promoted server is the primary now; the dead one's directory becomes a new standby
# (pg_basebackup) on its old port, synchronous again: two copies again, ready for the next
# kill-primary (tandem-drill --pg-cluster runs many).
rebuild_standby() {
  local dir=$1 dead promoted dead_port new_port
  dead=$(primary_name "$dir")
  promoted=$(standby_name "$dir")
  dead_port=$(port_of "$dir/$dead")
  new_port=$(port_of "$dir/$promoted")
  [ "$(superuser_psql "$dir" "$new_port" "select pg_is_in_recovery()")" = f ] ||
    { echo "pg_cluster: $promoted is not promoted yet" >&2; exit 1; }
  [ -f "$dir/$dead/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/$dead" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "${dir:?}/$dead"
  as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$new_port" -U postgres -D "$dir/$dead" -R -X stream -c fast -w \
    -d "application_name=standby1" >/dev/null 2>"$dir/basebackup.log" || { cat "$dir/basebackup.log" >&2; exit 1; }
  echo "port = $dead_port" >>"$dir/$dead/postgresql.conf"
  echo "primary_conninfo = 'host=127.0.0.1 port=$new_port user=postgres application_name=standby1'" >>"$dir/$dead/postgresql.auto.conf"
  as_pg "$PGBIN/pg_ctl" -D "$dir/$dead" -l "$dir/$dead.log" -w start >/dev/null
  wait_ready "$dead_port"
  superuser_psql "$dir" "$new_port" "alter system set synchronous_standby_names = 'standby1'" "select pg_reload_conf()" >/dev/null
  wait_sync "$dir" "$new_port"
  echo "$promoted" >"$dir/primary_name"
  write_env "$dir" "$new_port" "$dead_port"
}

terminate() {  # terminate DIR [PATTERN]: prints how many backends were ended
  local dir=$1 pattern=${2:-tandemd-%}
  superuser_psql "$dir" "$(port_of "$dir/$(primary_name "$dir")")" \
    "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name like '$pattern'"
}

kill_primary() {
  local dir=$1 pid
  pid=$(head -1 "$dir/$(primary_name "$dir")/postmaster.pid")
  kill -9 "$pid"
  # The postmaster's children notice and exit; wait until the port is closed.
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  pkill -9 -P "$pid" 2>/dev/null || true
}

promote() {
  local dir=$1
  as_pg "$PGBIN/pg_ctl" -D "$dir/$(standby_name "$dir")" -w promote >/dev/null
}

# signal_standby DIR SIG: the standby's postmaster and every child (walreceiver, startup).
signal_standby() {
  local dir=$1 sig=$2 pid
  pid=$(head -1 "$dir/$(standby_name "$dir")/postmaster.pid")
  kill "-$sig" "$pid" $(pgrep -P "$pid") 2>/dev/null
}

cmd=${1:-}; shift || true
case $cmd in
  start) start "$@" ;;
  stop) stop "$@" ;;
  kill-primary) kill_primary "$@" ;;
  promote) promote "$@" ;;
  pause-standby) signal_standby "$1" STOP ;;
  resume-standby) signal_standby "$1" CONT ;;
  rebuild-standby) rebuild_standby "$@" ;;
  terminate) terminate "$@" ;;
  psql) dir=$1; shift; . "$dir/env"; PGPASSFILE=$PGPASSFILE psql -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U tandem -d tandem "$@" ;;
  *) sed -n '2,28p' "$0"; exit 2 ;;
esac
