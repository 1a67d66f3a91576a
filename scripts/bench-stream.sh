#!/usr/bin/env bash
# Streaming benchmark: pushes and pulls one large blob through a release
# build of berth with curl and reports throughput and the server's memory
# (resident set before, and its high-water mark after each phase).
#
#   scripts/bench-stream.sh [SIZE_MIB]      (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
cargo build --release --quiet -p berth
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

head -c $((size_mib * 1024 * 1024)) /dev/urandom > "$work/blob"
digest="sha256:$(sha256sum "$work/blob" | cut -d' ' -f1)"
printf '{"storage":{"rootDirectory":"%s/root"},"http":{"port":"0"},"log":{"level":"warn"}}' "$work" > "$work/config.json"
RUST_LOG=warn,berth=info ./target/release/berth serve "$work/config.json" 2> "$work/log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/log" && break; sleep 0.1; done
addr=$(grep -o 'listening on http://[^ ]*' "$work/log" | head -1 | sed 's|listening on http://||')

rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$pid/status"; }
mib_s() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.0f", b / 1048576 / t }'; }

echo "blob: ${size_mib} MiB; server RSS at rest: $(( $(rss) / 1024 )) MiB"

# Monolithic push (POST ?digest=), streamed from the file by curl -T (no
# trailing slash on the URL: curl -T would append the file name).
t=$(curl -s -o /dev/null -w '%{time_total}' -X POST -T "$work/blob" \
  -H 'Content-Type: application/octet-stream' "http://$addr/v2/bench/blobs/uploads?digest=$digest")
echo "push monolithic: $(mib_s $((size_mib * 1048576)) "$t") MiB/s (${t}s); server peak RSS $(( $(hwm) / 1024 )) MiB"

# Streamed chunk (PATCH without Content-Range) then PUT ?digest=.
loc=$(curl -s -D - -o /dev/null -X POST "http://$addr/v2/bench2/blobs/uploads/" | awk -F': ' 'tolower($1)=="location" {print $2}' | tr -d '\r')
t=$(curl -s -o /dev/null -w '%{time_total}' -X PATCH -T "$work/blob" \
  -H 'Content-Type: application/octet-stream' "http://$addr$loc")
curl -s -o /dev/null -X PUT "http://$addr$loc?digest=$digest"
echo "push streamed PATCH: $(mib_s $((size_mib * 1048576)) "$t") MiB/s (${t}s); server peak RSS $(( $(hwm) / 1024 )) MiB"

# Pull.
t=$(curl -s -o "$work/pulled" -w '%{time_total}' "http://$addr/v2/bench/blobs/$digest")
cmp -s "$work/blob" "$work/pulled" || { echo "pulled blob differs"; exit 1; }
rm -f "$work/pulled"
t=$(curl -s -o /dev/null -w '%{time_total}' "http://$addr/v2/bench/blobs/$digest")
echo "pull (to /dev/null): $(mib_s $((size_mib * 1048576)) "$t") MiB/s (${t}s); server peak RSS $(( $(hwm) / 1024 )) MiB"
