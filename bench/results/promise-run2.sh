#!/bin/bash
# More episodes for issue 12 item 7, tandemd at commit 11ed0eb. No kind that fails a journal
# write or fsync runs in the same drill as a power loss (open bug 6, docs/failover.md).
cd /tmp/promise_figs
D=/tmp/promise_bin/tandem-drill
COMMON="--tandemd /tmp/promise_bin2/tandemd --faultfs /tmp/promise_bin/tandem-faultfs --base-port 0 -q"
date -u >> times.txt
$D $COMMON --brokers 3 --order cycle --failovers 300 --seed 21 --lock-check-interval-ms 200 --interval-ms 300 --rate 1000 \
  --kinds kill,term,stop,stop-lease,lock-removed,lock-replaced,eio-write,eio-fsync,enospc-write,enospc-fsync,fs-freeze,clock-jump \
  --json long-c.json > long-c.out 2>&1; echo "long-c rc=$?" >> times.txt; date -u >> times.txt
$D $COMMON --brokers 3 --order cycle --failovers 200 --seed 22 --lock-check-interval-ms 200 --interval-ms 300 --rate 1000 \
  --kinds power-loss,hang-resend,kill,term,stop,stop-lease,lock-removed,lock-replaced,fs-freeze,clock-jump \
  --json long-d.json > long-d.out 2>&1; echo "long-d rc=$?" >> times.txt; date -u >> times.txt
