#!/bin/bash
# The exact script of the 2026-12-06 run (bench/results/cephfs-throughput.md): a running
# tandem-cluster named h13 (subnet 10.83.0), the worktree /work/wt/ceph2; adapt W, the names and
# the addresses for another checkout. DUR=seconds per case (10).
# Persistent throughput on CephFS (host1's ceph-fuse) vs local ext4, same run, interleaved.
set -u
W=/work/wt/ceph2; B=$W/build; export TANDEM_CLUSTER_NAME=h13 TANDEM_CLUSTER_SUBNET=10.83.0
TC=$W/tools/cluster/tandem-cluster; M=/var/tmp/tandem-cluster-h13/mnt/host1; OUT=/tmp/h13/tput; mkdir -p $OUT
L=/var/tmp/h13-local; rm -rf $L $M/tput; mkdir -p $L
DUR=${DUR:-10}
nsenter --net=/run/netns/h13-host1 -- $B/broker/tandemd --store $M/tput --create-store --listen 10.83.0.21:61800 --admin 10.83.0.21:61801 --name cf --config /tmp/h13/anon.json > $OUT/cf.log 2>&1 & CF=$!
$B/broker/tandemd --store $L/store --create-store --listen 127.0.0.1:61810 --admin 127.0.0.1:61811 --name loc > $OUT/loc.log 2>&1 & LOC=$!
sleep 3
for round in 1 2; do
 for p in 16 64; do
  nsenter --net=/run/netns/h13-admin -- $B/tools/bench/tandem-bench --url tcp://10.83.0.21:61800 -p $p -c 0 --persistent --receipt-every 1 --window 1 --duration $DUR -d /queue/cf$p$round --json $OUT/cephfs-p$p-r$round.json -q
  $B/tools/bench/tandem-bench --url tcp://127.0.0.1:61810 -p $p -c 0 --persistent --receipt-every 1 --window 1 --duration $DUR -d /queue/loc$p$round --json $OUT/local-p$p-r$round.json -q
 done
done
kill $CF $LOC; wait
# raw 64 KiB and 1 KiB write+fdatasync rate of each mount (fio, 10 s each)
for t in cephfs:$M local:$L; do n=${t%%:*}; d=${t#*:}; for bs in 64k 1k; do
  fio --name=raw --directory=$d --rw=write --bs=$bs --size=256m --fdatasync=1 --time_based --runtime=$DUR --output-format=json > $OUT/fio-$n-$bs.json 2>/dev/null
done; done
rm -rf $L $M/tput
