#!/usr/bin/env bash
# Tandem's one entry point for developers, CI and first-time users.
#
#   ./tandem.sh run  [tandemd options]  set up, build tandemd (only), start a broker on ./var/store
#   ./tandem.sh test                    set up, build (plain and ASan+UBSan), run every test
#   ./tandem.sh setup | build | bench   the single steps
#
# "setup" installs the Debian 12 packages the build and the tests need (idempotent;
# needs root or sudo). Build trees: build/ (RelWithDebInfo) and build-asan/.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
JOBS=${JOBS:-$(nproc)}
# One ccache for every checkout of the project (git worktrees, CI's fresh clone): paths are
# made relative to the checkout so the same source hits the same entry.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}

# What building tandemd needs: the toolchain, every library CMake's configure looks for
# (an optional one installed only later would stay "not found" in the tree's cache), and
# npm for the console's packages. `run` installs these only; the rest are for the tests.
BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config git ccache
  libboost-dev libboost-filesystem-dev nlohmann-json3-dev doctest-dev
  libxxhash-dev libcli11-dev libspdlog-dev libfmt-dev libsystemd-dev libssl-dev
  libfuse3-dev libpq-dev nodejs
)
TEST_PACKAGES=(
  libfaketime python3 python3-stomp fuse3 bindfs iproute2 procps psmisc openssl systemd curl
  ceph-mon ceph-mgr ceph-osd ceph-mds ceph-fuse ceph-common fio
  activemq libxstream-java libjettison-java python3-pytest postgresql-15 patroni etcd-server
  python3-websocket chromium
)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

setup() {  # setup [run]: only what building and running tandemd needs with "run"
  local packages=("${BUILD_PACKAGES[@]}") missing=()
  [ "${1:-}" = run ] || packages+=("${TEST_PACKAGES[@]}")
  # One dpkg-query for all of them: the packages it knows, installed or not.
  local installed
  installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null | awk '/ install ok installed$/ {print $1}' || true)
  for p in "${packages[@]}"; do
    grep -qx "$p" <<<"$installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "tandem.sh: installing Debian packages: ${missing[*]}" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if [ "${1:-}" = run ]; then setup_npm broker/console; else setup_npm tests/browser broker/console; fi
}

# The npm packages of the browser tests (puppeteer-core, @stomp/stompjs) and of the console
# (@stomp/stompjs, Chart.js; the build embeds them into tandemd), exactly as pinned in
# tests/browser/package-lock.json and broker/console/package-lock.json. Debian 12 ships npm
# apart from nodejs (a nodejs from elsewhere may bundle its own npm). Done again only when a
# lockfile changed. `run` needs the console's only.
setup_npm() {  # setup_npm DIR...
  if ! command -v npm >/dev/null; then
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  local dir
  for dir in "$@"; do
    if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
  done
}

build_tree() {  # build_tree DIR TARGET [cmake args...]
  local dir=$1 target=$2; shift 2
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS" --target "$target"
}

build() { build_tree build "${1:-all}" -DCMAKE_BUILD_TYPE=RelWithDebInfo; }
# Only what `ctest -L 'unit|fault'` runs is built with sanitizers (tests/CMakeLists.txt).
build_asan() { build_tree build-asan tandem_sanitizer_tests -DCMAKE_BUILD_TYPE=Debug -DTANDEM_SANITIZE=ON; }

run_tests() {
  local status=0
  echo "== tests (RelWithDebInfo) =="
  ctest --test-dir build --output-on-failure -j "$JOBS" --timeout 600 || status=1
  echo "== tests under ASan+UBSan (unit and fault) =="
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j "$JOBS" -L 'unit|fault' --timeout 900 || status=1
  return $status
}

cmd=${1:-help}; shift || true
case "$cmd" in
  setup) setup ;;
  build) setup; build ;;
  test)  setup; build; build_asan; run_tests ;;
  run)
    # Only the broker and what it links (about a third of the tree's build steps); the
    # tests and tools are built by `test`, `build` and `bench` (issue 19: build time).
    setup run; build tandemd
    mkdir -p var/store
    exec build/broker/tandemd --store var/store --create-store --listen 127.0.0.1:61613 --admin 127.0.0.1:8161 --name local "$@" ;;
  bench) setup; build tandem-journal-bench; exec build/tools/journal/tandem-journal-bench "$@" ;;
  *) sed -n '2,10p' "$0"; [ "$cmd" = help ] ;;
esac
