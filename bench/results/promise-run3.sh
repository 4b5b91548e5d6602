#!/bin/bash
# Issue 12's long run, in chunks of 250 episodes (each its own seed and JSON), so that a run
# cut short by the session's end still has every finished chunk's verdict. All local fault
# kinds mixed in one drill, power loss together with failed fsyncs (bug 6 is fixed since
# 14a88dd/2ccfa1d; this is the first long run that mixes them again).
# Usage: promise-run3.sh OUT_DIR BIN_DIR FIRST_SEED CHUNKS
set -u
OUT=$1 BIN=$2 SEED=$3 CHUNKS=$4
mkdir -p "$OUT"
KINDS=kill,term,stop,stop-lease,lock-removed,lock-replaced,eio-write,eio-fsync,enospc-write,enospc-fsync,power-loss,fs-freeze,hang-resend,clock-jump
for ((i = 0; i < CHUNKS; i++)); do
  s=$((SEED + i))
  echo "$(date -u +%FT%TZ) chunk seed=$s start" >> "$OUT/times.txt"
  "$BIN/tandem-drill" --tandemd "$BIN/tandemd" --faultfs "$BIN/tandem-faultfs" --base-port 0 -q \
    --brokers 3 --order random --failovers 250 --seed "$s" --lock-check-interval-ms 200 \
    --interval-ms 300 --rate 500 --failover-timeout-ms 60000 --drain-timeout-ms 30000 \
    --kinds "$KINDS" --json "$OUT/chunk-$s.json" > "$OUT/chunk-$s.out" 2>&1
  echo "$(date -u +%FT%TZ) chunk seed=$s rc=$?" >> "$OUT/times.txt"
done
