#!/usr/bin/env bash
# A private PostgreSQL 15 primary and a synchronous streaming standby for Tandem's tests and
# benchmarks, in a temporary directory, as the unprivileged `postgres` user, on loopback
# ports that were free. Nothing outside DIR is touched; `stop` removes DIR.
#
#   pg_cluster.sh start DIR [--no-standby] [--async]   initdb + start; writes DIR/env
#   pg_cluster.sh stop DIR                              stop both servers, rm -rf DIR
#   pg_cluster.sh kill-primary DIR                      SIGKILL the primary's postmaster
#   pg_cluster.sh promote DIR                           pg_ctl promote the standby
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
  cat >"$dir/env" <<ENV
PG_PRIMARY_PORT=$p1
PG_STANDBY_PORT=$([ $standby = 1 ] && echo "$p2")
PG_SOCKET_DIR=$dir
PGPASSFILE=$dir/pgpass
TANDEM_PG_URI=postgresql://tandem@127.0.0.1:$p1/tandem
TANDEM_PG_MULTI_URI=postgresql://tandem@127.0.0.1:$p1,127.0.0.1:$p2/tandem?target_session_attrs=read-write
ENV
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

kill_primary() {
  local dir=$1 pid
  pid=$(head -1 "$dir/primary/postmaster.pid")
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
  as_pg "$PGBIN/pg_ctl" -D "$dir/standby" -w promote >/dev/null
}

cmd=${1:-}; shift || true
case $cmd in
  start) start "$@" ;;
  stop) stop "$@" ;;
  kill-primary) kill_primary "$@" ;;
  promote) promote "$@" ;;
  psql) dir=$1; shift; . "$dir/env"; PGPASSFILE=$PGPASSFILE psql -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U tandem -d tandem "$@" ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac
