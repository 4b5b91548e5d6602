#!/bin/bash
# p1_r1 vs raw 1 KiB fdatasync, quiet (compilers paused), interleaved, 3 rounds
B=/work/main/build; D=/var/tmp/p1q; O=$D/out; rm -rf $O $D/store $D/fio; mkdir -p $O $D/fio
$B/broker/tandemd --store $D/store --create-store --listen 127.0.0.1:61830 --admin 127.0.0.1:61831 --name p1q > $O/tandemd.log 2>&1 & P=$!
sleep 1
for r in 1 2 3; do
  fio --name=raw --directory=$D/fio --rw=write --bs=1k --size=64m --fdatasync=1 --time_based --runtime=8 --output-format=json > $O/fio-$r.json 2>/dev/null; rm -f $D/fio/*
  $B/tools/bench/tandem-bench --url tcp://127.0.0.1:61830 -p 1 -c 0 --persistent --receipt-every 1 --window 1 --duration 8 -d /queue/p1b$r -q --json $O/tb-$r.json
  /usr/bin/python3 /work/main/bench/stomppy_bench.py 127.0.0.1:61830 --producers 1 --seconds 8 --receipt-every 1 --json $O/py-$r.json
done
kill $P; wait $P
python3 - <<'PY'
import json
O='/var/tmp/p1q/out'
for r in (1,2,3):
    fio=json.load(open(f'{O}/fio-{r}.json'))['jobs'][0]['write']['iops']
    tb=json.load(open(f'{O}/tb-{r}.json'))['send']['msgs_per_s']
    py=json.load(open(f'{O}/py-{r}.json'))['send']['msgs_per_s']
    print(f"round {r}: fio 1k fdatasync {fio:.0f}/s  tandem-bench p1 {tb:.0f}/s ({tb/fio:.2f})  stomp.py p1 {py:.0f}/s ({py/fio:.2f})")
PY
