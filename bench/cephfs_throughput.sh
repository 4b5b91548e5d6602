#!/bin/bash
# Persistent throughput on CephFS (host1's ceph-fuse mount of a running tandem-cluster) against
# local disk, in one run, interleaved (issue 13), with each mount's raw write+fdatasync rate
# (fio) beside it. Results: bench/results/cephfs-throughput.md.
#
#   TANDEM_CLUSTER_NAME=s11 TANDEM_CLUSTER_SUBNET=10.91.0 tools/cluster/tandem-cluster up
#   TANDEM_CLUSTER_NAME=s11 TANDEM_CLUSTER_SUBNET=10.91.0 bench/cephfs_throughput.sh OUT_DIR [BUILD]
#
# DUR (seconds per case, 10), ROUNDS (3), PRODUCERS ("16 64"), LOCAL (a local directory,
# /var/tmp/tandem-tput-local). Every case: tandem-bench, 1 KiB persistent SENDs, a RECEIPT per
# message, one outstanding SEND per producer (so a group commit holds at most N messages).
set -eu
OUT=${1:?usage: cephfs_throughput.sh OUT_DIR [BUILD_DIR]}
B=$(realpath "${2:-build}")
: "${TANDEM_CLUSTER_NAME:?set TANDEM_CLUSTER_NAME (and TANDEM_CLUSTER_SUBNET) of a running tandem-cluster}"
SUBNET=${TANDEM_CLUSTER_SUBNET:?set TANDEM_CLUSTER_SUBNET}
HERE=$(dirname "$(realpath "$0")")
TC=$HERE/../tools/cluster/tandem-cluster
BASE=${TANDEM_CLUSTER_BASE:-/var/tmp/tandem-cluster-$TANDEM_CLUSTER_NAME}
M=$BASE/mnt/host1
L=${LOCAL:-/var/tmp/tandem-tput-local}
DUR=${DUR:-10}; ROUNDS=${ROUNDS:-3}; PRODUCERS=${PRODUCERS:-16 64}
HOST1=$SUBNET.21
mkdir -p "$OUT"; rm -rf "$L" "$M/tput"; mkdir -p "$L"
# max_destination_bytes: at ~20,000 msg/s one 10 s case fills the default 256 MiB of a queue,
# and its producers would then wait for space (flow control), not for the disk
echo '{"allow_anonymous": true, "max_destination_bytes": 17179869184}' > "$OUT/anon.json"
ip netns exec "$TANDEM_CLUSTER_NAME-host1" "$B/broker/tandemd" --store "$M/tput" --create-store \
  --listen "$HOST1:61800" --admin "$HOST1:61801" --name cf --config "$OUT/anon.json" > "$OUT/cf.log" 2>&1 & CF=$!
"$B/broker/tandemd" --store "$L/store" --create-store --listen 127.0.0.1:61810 --admin 127.0.0.1:61811 \
  --name loc --config "$OUT/anon.json" > "$OUT/loc.log" 2>&1 & LOC=$!
trap 'kill $CF $LOC 2>/dev/null; wait; rm -rf "$L" "$M/tput"; true' EXIT
# a fresh CephFS reports 0 bytes available until its first statistics reach the mons, and the
# disk-space guard refuses persistent SENDs meanwhile: wait for the broker to accept them
sleep 3
for _ in $(seq 30); do
  ip netns exec "$TANDEM_CLUSTER_NAME-admin" "$B/tools/bench/tandem-bench" --url "tcp://$HOST1:61800" -p 1 -c 0 \
    --persistent --receipt-every 1 --window 1 --count 10 -d /queue/warm -q > /dev/null 2>&1 && break
  sleep 1
done
uptime | tee "$OUT/uptime-start.txt"
raw() {  # raw write+fdatasync of one mount: fio, DUR seconds, into a directory of its own
  mkdir -p "$2/fio"
  fio --name=raw --directory="$2/fio" --rw=write --bs="$3" --size=256m --fdatasync=1 --time_based \
    --runtime="$DUR" --output-format=json > "$OUT/fio-$1-$3-r$4.json" 2>/dev/null
  rm -rf "$2/fio"
}
# Each round measures the mount's raw rate right beside the broker's cases: both drift with
# the cluster's state over minutes.
for round in $(seq "$ROUNDS"); do
  raw cephfs "$M" 64k "$round"
  for p in $PRODUCERS; do
    ip netns exec "$TANDEM_CLUSTER_NAME-admin" "$B/tools/bench/tandem-bench" --url "tcp://$HOST1:61800" -p "$p" -c 0 \
      --persistent --receipt-every 1 --window 1 --duration "$DUR" -d "/queue/cf$p$round" --json "$OUT/cephfs-p$p-r$round.json" -q
    "$B/tools/bench/tandem-bench" --url tcp://127.0.0.1:61810 -p "$p" -c 0 --persistent --receipt-every 1 \
      --window 1 --duration "$DUR" -d "/queue/loc$p$round" --json "$OUT/local-p$p-r$round.json" -q
  done
  raw local "$L" 64k "$round"
done
raw cephfs "$M" 1k 1
raw local "$L" 1k 1
kill $CF $LOC; wait $CF $LOC 2>/dev/null || true
uptime | tee "$OUT/uptime-end.txt"
/usr/bin/python3 - "$OUT" <<'PY'
import json, glob, os, sys, re, statistics
out = sys.argv[1]
raw, rows = {}, {}
for f in sorted(glob.glob(os.path.join(out, "fio-*.json"))):
    m = re.match(r"fio-(cephfs|local)-(64k|1k)-r(\d+)\.json", os.path.basename(f))
    w = json.load(open(f))["jobs"][0]["write"]
    raw.setdefault((m[1], m[2]), []).append(w["iops"] * (64 if m[2] == "64k" else 1) / 1024)
for f in sorted(glob.glob(os.path.join(out, "*-p*-r*.json"))):
    m = re.match(r"(cephfs|local)-p(\d+)-r(\d+)\.json", os.path.basename(f))
    if m: rows.setdefault((m[1], int(m[2])), []).append(json.load(open(f)))
for (fs, bs), v in sorted(raw.items()):
    print(f"raw {fs} {bs} write+fdatasync: " + ", ".join(f"{x:.2f} MiB/s" for x in v))
print("| mount | producers | msg/s | MiB/s | of raw 64 KiB (median) | receipt p50 / p99 ms |")
print("|---|---|---|---|---|---|")
for (fs, p), js in sorted(rows.items()):
    ref = statistics.median(raw.get((fs, "64k"), [float("nan")]))
    for j in js:
        s, r = j["send"], j["receipt_latency_ms"]
        print(f"| {fs} | {p} | {s['msgs_per_s']:.0f} | {s['mib_per_s']:.2f} | {100 * s['mib_per_s'] / ref:.0f}% "
              f"| {r['p50']:.1f} / {r['p99']:.1f} |")
PY
