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
WORK=$(mktemp -d /tmp/bench-copy.XXXXXX)
PIDS=""
trap 'for p in $PIDS; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

start() { # NAME PORT: a Berth on 127.0.0.1:PORT, data under $WORK/NAME
  printf '{"storage":{"rootDirectory":"%s"},"http":{"address":"127.0.0.1","port":"%s"},"log":{"level":"warn"}}' \
    "$WORK/$1" "$2" > "$WORK/$1.json"
  "$BERTH" serve "$WORK/$1.json" 2>"$WORK/$1.log" &
  PIDS="$PIDS $!"
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$2/v2/" >/dev/null && return; sleep 0.1; done
  echo "berth on $2 did not start" >&2; exit 1
}

python3 "$(dirname "$0")/make-layout.py" "$WORK/layout" v1 10 102.4
start src 5801
"$BERTH" push -q "$WORK/layout" 127.0.0.1:5801/big:v1 >/dev/null
printf '{"default":[{"type":"insecureAcceptAnything"}]}' > "$WORK/policy.json"

measure() { # LABEL COMMAND...: prints "LABEL wall_s peak_MiB"
  label=$1; shift
  /usr/bin/time -v "$@" >/dev/null 2>"$WORK/time.txt"
  wall=$(grep 'Elapsed (wall clock)' "$WORK/time.txt" | awk '{print $NF}')
  rss=$(grep 'Maximum resident' "$WORK/time.txt" | awk '{printf "%.1f", $NF/1024}')
  echo "$label wall=$wall peak_rss_mib=$rss"
}

port=5810
for run in $(seq "$RUNS"); do
  port=$((port + 1)); start "dst-skopeo-$run" $port
  measure "run $run skopeo copy" skopeo --policy "$WORK/policy.json" copy -q \
    --src-tls-verify=false --dest-tls-verify=false \
    docker://127.0.0.1:5801/big:v1 "docker://127.0.0.1:$port/big:v1"
  port=$((port + 1)); start "dst-berth-$run" $port
  measure "run $run berth copy " "$BERTH" copy -q \
    docker://127.0.0.1:5801/big:v1 "docker://127.0.0.1:$port/big:v1"
done
