#!/bin/sh
# A compiler launcher that logs each compile's CPU (bench/build_cpu.sh sets it up):
#   "<wall s> <user s> <sys s> <object file>" appended to $TANDEM_CC_LOG, then the compile's
# own exit status. Without TANDEM_CC_LOG it only runs the compiler.
[ -n "${TANDEM_CC_LOG:-}" ] || exec "$@"
out=unknown prev=
for a in "$@"; do
  [ "$prev" = -o ] && out=$a
  prev=$a
done
exec /usr/bin/time -a -o "$TANDEM_CC_LOG" -f "%e %U %S $out" "$@"
