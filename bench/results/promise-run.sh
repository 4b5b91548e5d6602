#!/bin/bash
# Figures for issue 12 (items 6 and 7), tandemd at commit 2d47c3e.
cd /tmp/promise_figs
D=/tmp/promise_bin/tandem-drill
COMMON="--tandemd /tmp/promise_bin/tandemd --faultfs /tmp/promise_bin/tandem-faultfs --base-port 0 -q"
date -u > times.txt
$D $COMMON --brokers 2 --kinds term --failovers 50 --interval-ms 300 --rate 1000 --seed 3 --json handover.json > handover.out 2>&1; echo "handover rc=$?" >> times.txt; date -u >> times.txt
$D $COMMON --brokers 3 --order cycle --failovers 240 --seed 11 --lock-check-interval-ms 200 --interval-ms 300 --rate 1000 \
  --kinds kill,term,stop,stop-lease,lock-removed,lock-replaced,eio-write,eio-fsync,enospc-write,enospc-fsync,fs-freeze,clock-jump \
  --json long-a.json > long-a.out 2>&1; echo "long-a rc=$?" >> times.txt; date -u >> times.txt
$D $COMMON --brokers 3 --order cycle --failovers 120 --seed 12 --lock-check-interval-ms 200 --interval-ms 300 --rate 1000 \
  --kinds power-loss,hang-resend,kill,term,stop,lock-removed,lock-replaced,clock-jump,eio-write,enospc-write \
  --json long-b.json > long-b.out 2>&1; echo "long-b rc=$?" >> times.txt; date -u >> times.txt
$D $COMMON --brokers 3 --order cycle --failovers 24 --seed 13 --lock-check-interval-ms 200 --pending 100000 --interval-ms 500 --rate 1000 \
  --kinds kill,term,stop-lease,lock-removed,lock-replaced,power-loss,eio-write,enospc-write \
  --startup-timeout-ms 120000 --json pending.json > pending.out 2>&1; echo "pending rc=$?" >> times.txt; date -u >> times.txt
