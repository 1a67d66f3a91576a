#!/usr/bin/env bash
# Peak resident memory (VmHWM) of a release Berth alone under 16 clients,
# one fresh server and root per large-blob workload (BENCHMARKS.md, "Large
# blobs on the host's own disk"). The data goes under ${BENCH_DIR:-/tmp}.
#
#   scripts/bench-rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p berth
berth=${CARGO_TARGET_DIR:-target}/release/berth
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for t in 'Push Chunk Streamed 100MB' 'Push Monolith 100MB' 'Pull 100MB' 'Pull 75% and Push 25% Mixed 100MB'; do
  w=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/berth-rss.XXXXXX")
  port=$(free_port)
  printf '{"storage":{"rootDirectory":"%s/root"},"http":{"port":"%s"},"log":{"level":"warn"}}' "$w" "$port" > "$w/config.json"
  "$berth" serve "$w/config.json" 2> "$w/berth.log" &
  pid=$!
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.1; done
  "$berth" bench "http://127.0.0.1:$port" -c 16 -n 32 --chunk-mib 5 -t "^${t}\$" | grep -E 'req/s' | head -1
  echo "$t: peak $(awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status") MiB"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$w"
done
