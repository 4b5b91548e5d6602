#!/usr/bin/env bash
# Where a cold build's CPU goes (issue 19, bench/results/build.md): configures DIR from this
# checkout without ccache, with a launcher that logs every compile's CPU (bench/cc_cpu.sh),
# builds TARGETS (default tandemd) from scratch, and prints the compiles ranked by CPU
# seconds (user + sys), their sum, and the whole ninja run's wall and CPU.
#
#   bench/build_cpu.sh DIR [TARGET...]      JOBS=2 by default; extra cmake flags in CMAKE_ARGS
#
# DIR is wiped first. Two trees built side by side with JOBS=1 each (say, two commits) are
# an A/B measured under the same load; uptime is printed before and after.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: bench/build_cpu.sh DIR [TARGET...]}; shift
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(tandemd)
rm -rf "$dir"; mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
log=$dir/compile_cpu.log
# shellcheck disable=SC2086
cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTANDEM_CCACHE=OFF \
  -DCMAKE_CXX_COMPILER_LAUNCHER="$src/bench/cc_cpu.sh" -DCMAKE_C_COMPILER_LAUNCHER="$src/bench/cc_cpu.sh" \
  ${CMAKE_ARGS:-} >/dev/null
echo "start $(date -u +%H:%M:%S) $(uptime)"
TANDEM_CC_LOG=$log /usr/bin/time -o "$dir/ninja_time.txt" -f "%e %U %S" ninja -C "$dir" -j "${JOBS:-2}" "${targets[@]}" >"$dir/ninja.out"
echo "end   $(date -u +%H:%M:%S) $(uptime)"
read -r wall user sys <"$dir/ninja_time.txt"
awk -v wall="$wall" -v user="$user" -v sys="$sys" '
  { cpu = $2 + $3; sum += cpu; n++; line[n] = sprintf("%8.1f %8.1f  %s", cpu, $1, $4) }
  END {
    printf "compiles %d, compile CPU %.1f s; ninja run: %.1f s wall, %.1f s CPU (%.1f user + %.1f sys)\n",
           n, sum, wall, user + sys, user, sys
    print "  CPU s   wall s  object"
    for (i = 1; i <= n; i++) print line[i] | "sort -rn"
  }' "$log"
# From ninja's own log: the link of each target, and how long one step ran alone (the tail).
python3 - "$dir/.ninja_log" <<'PY'
import sys
steps = []
for line in open(sys.argv[1]):
    if line.startswith("#"): continue
    start, end, _, out, _ = line.rstrip("\n").split("\t")
    steps.append((int(start), int(end), out))
events = sorted([(s, 1) for s, _, _ in steps] + [(e, -1) for _, e, _ in steps])
alone = busy = 0; running = 0; last = events[0][0]
for t, d in events:
    if running == 1: alone += t - last
    if running >= 1: busy += t - last
    running += d; last = t
print(f"steps {len(steps)}: {busy / 1000:.1f} s with a step running, {alone / 1000:.1f} s of it with one step alone")
for s, e, out in steps:
    if not out.endswith((".o", ".a")): print(f"  {(e - s) / 1000:6.1f} s  {out}")
PY
