#!/usr/bin/env bash
# tandem-drill on a PostgreSQL store: starts a primary + synchronous standby
# (pg_cluster.sh), or with --patroni a Patroni cluster with etcd (patroni_cluster.sh), runs
# `tandem-drill --pg-cluster DIR ARGS...` on it, stops the cluster.
#
#   pg_drill.sh [--patroni] TANDEM_DRILL [drill args...]
#
# Exit: the drill's status (0 pass, 1 loss/overlap, 3 could not finish), 77 where
# PostgreSQL 15 (or Patroni, etcd) cannot run here (CTest: skipped).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cluster=$HERE/pg_cluster.sh
if [ "${1:-}" = --patroni ]; then cluster=$HERE/patroni_cluster.sh; shift; fi
drill=$1; shift
dir=$(mktemp -d /tmp/tandem-pgdrill-XXXXXX)
"$cluster" start "$dir" >/dev/null
rc=$?
if [ $rc -ne 0 ]; then "$cluster" stop "$dir" >/dev/null 2>&1; rm -rf "$dir"; exit $rc; fi
trap '"$cluster" stop "$dir"' EXIT
"$drill" --pg-cluster "$dir" "$@"
