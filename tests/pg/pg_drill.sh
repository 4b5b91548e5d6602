#!/usr/bin/env bash
# tandem-drill on a PostgreSQL store: starts a primary + synchronous standby
# (pg_cluster.sh), runs `tandem-drill --pg-cluster DIR ARGS...` on it, stops the cluster.
#
#   pg_drill.sh TANDEM_DRILL [drill args...]
#
# Exit: the drill's status (0 pass, 1 loss/overlap, 3 could not finish), 77 where
# PostgreSQL 15 cannot run here (CTest: skipped).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
drill=$1; shift
dir=$(mktemp -d /tmp/tandem-pgdrill-XXXXXX)
"$HERE/pg_cluster.sh" start "$dir" >/dev/null
rc=$?
if [ $rc -ne 0 ]; then rm -rf "$dir"; exit $rc; fi
trap '"$HERE/pg_cluster.sh" stop "$dir"' EXIT
"$drill" --pg-cluster "$dir" "$@"
