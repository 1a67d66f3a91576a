#!/bin/sh
# berth copy against skopeo copy, registry to registry, in one run: a
# 1 GiB image of 10 layers (random bytes, so nothing compresses) between
# two Berths on loopback; each tool copies into a fresh, empty registry.
# Wall time and peak memory from /usr/bin/time -v. For BENCHMARKS.md.
#
# usage: scripts/bench-copy.sh [BERTH_BINARY] [RUNS]
set -eu
BERTH=${1:-target/release/berth}
RUNS=${2:-2}
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/bench-copy.XXXXXX")
PIDS=""
trap 'for p in $PIDS; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

. "$(dirname "$0")/bench-common.sh"

python3 "$(dirname "$0")/make-layout.py" "$WORK/layout" v1 10 102.4
start src 5801
"$BERTH" push -q "$WORK/layout" 127.0.0.1:5801/big:v1 >/dev/null
printf '{"default":[{"type":"insecureAcceptAnything"}]}' > "$WORK/policy.json"

port=5810
for run in $(seq "$RUNS"); do
  port=$((port + 1)); start "dst-skopeo-$run" $port
  measure "run $run skopeo copy" skopeo --policy "$WORK/policy.json" copy -q \
    --src-tls-verify=false --dest-tls-verify=false \
    docker://127.0.0.1:5801/big:v1 "docker://127.0.0.1:$port/big:v1"
  port=$((port + 1)); start "dst-berth-$run" $port
  # shellcheck disable=SC2086 # BERTH_COPY_ARGS: extra flags, word-split
  measure "run $run berth copy " "$BERTH" copy -q ${BERTH_COPY_ARGS:-} \
    docker://127.0.0.1:5801/big:v1 "docker://127.0.0.1:$port/big:v1"
done
