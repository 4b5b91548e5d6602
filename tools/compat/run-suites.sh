#!/usr/bin/env bash
# Runs two public STOMP test suites against a tandemd started with NO config file (the
# README's quick start), on loopback, and prints each suite's pass/fail counts. The suites are
# not part of Tandem: pass local checkouts; this script fetches nothing.
#
#   tools/compat/run-suites.sh TANDEMD STOMPPY_DIR RABBIT_SRC_DIR [OUT_DIR]
#
#   TANDEMD         the tandemd binary; or port:N to run the suites against a broker already
#                   listening on 127.0.0.1:N (ActiveMQ, for a baseline: bench/activemq.sh)
#   STOMPPY_DIR     jasonrbriggs/stomp.py at the tag of Debian's python3-stomp (v8.0.0):
#                   git --git-dir=<mirror> archive v8.0.0 | tar -x -C DIR
#   RABBIT_SRC_DIR  rabbitmq/rabbitmq-server's deps/rabbitmq_stomp/test/python_SUITE_data/src
#   OUT_DIR         where the logs go (default: a temp dir, printed)
#
# Needs /usr/bin/python3 with python3-stomp and python3-pytest (Debian packages). stomp.py's
# TLS, IPv6 and SNI tests need certificates and hosts of its docker setup and are not run;
# every other test file is, with every host it knows (default, rabbitmq, artemis,
# stompserver) pointed at tandemd. docs/compatibility.md lists the results and the reason for
# each failure.
set -uo pipefail
[ $# -ge 3 ] || { sed -n '2,16p' "$0"; exit 2; }
STOMPPY=$(realpath "$2"); RABBIT=$(realpath "$3")
OUT=${4:-$(mktemp -d /tmp/tandem-suites-XXXXXX)}
mkdir -p "$OUT"
if [[ $1 == port:* ]]; then
  PORT=${1#port:}
  echo "broker on 127.0.0.1:$PORT (not started here); logs in $OUT"
else
  TANDEMD=$(realpath "$1")
  STORE=$(mktemp -d /tmp/tandem-suites-store-XXXXXX)
  # 61613 when it is free: two stomp.py tests connect to localhost:61613 without asking.
  LISTEN=127.0.0.1:0
  (exec 3<>/dev/tcp/127.0.0.1/61613) 2>/dev/null || LISTEN=127.0.0.1:61613
  "$TANDEMD" --store "$STORE/s" --create-store --listen "$LISTEN" >"$OUT/tandemd.log" 2>&1 &
  PID=$!
  cleanup() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$STORE"; }
  trap cleanup EXIT
  PORT=
  for _ in $(seq 1 200); do
    PORT=$(sed -n 's/.*stomp listening .*port=\([0-9]*\).*/\1/p' "$OUT/tandemd.log" | head -1)
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$OUT/tandemd.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$PORT" ] || { echo "run-suites: tandemd did not open its STOMP port" >&2; exit 1; }
  echo "tandemd pid $PID on 127.0.0.1:$PORT; logs in $OUT"
fi

# ---- stomp.py ----
export STD_HOST=127.0.0.1 STD_PORT=$PORT STD_USER=guest STD_PASSWORD=guest
export RABBITMQ_HOST=127.0.0.1 RABBITMQ_PORT=$PORT RABBITMQ_USER=guest RABBITMQ_PASSWORD=guest
export ARTEMIS_HOST=127.0.0.1 ARTEMIS_PORT=$PORT ARTEMIS_USER=guest ARTEMIS_PASSWORD=guest
export STOMPSERVER_HOST=127.0.0.1 STOMPSERVER_PORT=$PORT
(
  cd "$STOMPPY"
  /usr/bin/python3 -m pytest -p no:cacheprovider -q -rfE --timeout=120 tests \
    --ignore=tests/test_ssl.py --ignore=tests/test_ssl_sni.py --ignore=tests/test_cli_ssl.py \
    --ignore=tests/test_ipv6.py 2>&1 || true
) >"$OUT/stomppy.log" 2>&1
if grep -q "unrecognized arguments: --timeout" "$OUT/stomppy.log"; then
  ( cd "$STOMPPY"
    timeout 1800 /usr/bin/python3 -m pytest -p no:cacheprovider -q -rfE tests \
      --ignore=tests/test_ssl.py --ignore=tests/test_ssl_sni.py --ignore=tests/test_cli_ssl.py \
      --ignore=tests/test_ipv6.py 2>&1 || true ) >"$OUT/stomppy.log" 2>&1
fi
echo "stomp.py: $(grep -E '[0-9]+ (passed|failed)' "$OUT/stomppy.log" | tail -1)"
grep -E '^(FAILED|ERROR) ' "$OUT/stomppy.log" | sed 's/^/  /'

# ---- RabbitMQ's STOMP suite: main_runner's modules, one at a time (some import pika, a
# RabbitMQ-only AMQP client, and fail to load without it) ----
: >"$OUT/rabbitmq.log"
for m in $(sed -n "s/^ *'\([a-z_0-9]*\)',*$/\1/p" "$RABBIT/main_runner.py"); do
  echo "=== module $m" >>"$OUT/rabbitmq.log"
  ( cd "$RABBIT" && STOMP_PORT=$PORT timeout 600 /usr/bin/python3 test_runner.py "$m" 2>&1 ) >>"$OUT/rabbitmq.log"
done
/usr/bin/python3 - "$OUT/rabbitmq.log" <<'PY'
import re, sys
ran = failed = 0
fails = []
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"^Ran (\d+) tests?", line)
    if m:
        ran += int(m.group(1))
    m = re.match(r"^(FAIL|ERROR): (\w+) \(([\w.]+?)(\.\w+)?\)", line)
    if m:
        failed += 1
        fails.append(f"{m.group(1)} {m.group(3)}.{m.group(2)}")
    if line.startswith("ModuleNotFoundError"):
        fails.append("module not loaded: " + line.strip())
print(f"rabbitmq: {ran - failed} of {ran} passed")
for f in fails:
    print("  " + f)
PY
