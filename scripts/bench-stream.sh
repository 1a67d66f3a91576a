#!/usr/bin/env bash
# Streaming benchmark: pushes and pulls one large blob with curl through a
# release build of berth and, when installed (Debian package
# docker-registry), through the CNCF distribution registry, side by side in
# one run. Reports throughput and each server's memory: resident set at rest
# and its high-water mark (VmHWM) after each phase.
#
#   scripts/bench-stream.sh [SIZE_MIB]      (default 1024)
#   BENCH_DIR=/dev/shm scripts/bench-stream.sh   (data on tmpfs: no disk in the way)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
bytes=$((size_mib * 1048576))
cargo build --release --quiet -p berth
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/berth-bench.XXXXXX")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

head -c "$bytes" /dev/urandom > "$work/blob"
digest="sha256:$(sha256sum "$work/blob" | cut -d' ' -f1)"

rss() { awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$1/status"; }
mib_s() { awk -v b="$bytes" -v t="$1" 'BEGIN { printf "%.0f", b / 1048576 / t }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -sf -o /dev/null "http://$1/v2/" && return 0; sleep 0.1; done; echo "server on $1 did not start"; exit 1; }

run() { # name pid addr
  local name=$1 pid=$2 addr=$3 t loc
  echo "== $name: blob ${size_mib} MiB; RSS at rest $(rss "$pid") MiB"
  # Monolithic push (POST ?digest=), streamed from standard input by curl
  # (-T - keeps curl from appending the file name to the URL).
  sync # start each push with no dirty pages queued from the previous one
  out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -X POST -T - \
    -H 'Content-Type: application/octet-stream' "http://$addr/v2/bench/mono/blobs/uploads/?digest=$digest" < "$work/blob")
  if [ "${out% *}" = 201 ]; then
    echo "$name push monolithic: $(mib_s "${out#* }") MiB/s (${out#* }s); peak RSS $(hwm "$pid") MiB"
  else
    echo "$name push monolithic: not supported (HTTP ${out% *} to POST ?digest=)"
  fi
  # One streamed PATCH without Content-Range, then PUT ?digest=.
  loc=$(curl -sf -D - -o /dev/null -X POST "http://$addr/v2/bench/chunk/blobs/uploads/" |
    awk -F': ' 'tolower($1)=="location" {print $2}' | tr -d '\r')
  case "$loc" in http*) ;; *) loc="http://$addr$loc" ;; esac
  sync
  t=$(curl -sf -D "$work/h" -o /dev/null -w '%{time_total}' -X PATCH -T - \
    -H 'Content-Type: application/octet-stream' "$loc" < "$work/blob")
  loc=$(awk -F': ' 'tolower($1)=="location" {print $2}' "$work/h" | tr -d '\r')
  case "$loc" in http*) ;; *) loc="http://$addr$loc" ;; esac
  case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -sf -o /dev/null -X PUT "$loc${sep}digest=$digest"
  echo "$name push streamed PATCH: $(mib_s "$t") MiB/s (${t}s); peak RSS $(hwm "$pid") MiB"
  curl -sf -o "$work/pulled" "http://$addr/v2/bench/chunk/blobs/$digest"
  cmp -s "$work/blob" "$work/pulled" || { echo "$name: pulled blob differs"; exit 1; }
  rm -f "$work/pulled"
  t=$(curl -sf -o /dev/null -w '%{time_total}' "http://$addr/v2/bench/chunk/blobs/$digest")
  echo "$name pull: $(mib_s "$t") MiB/s (${t}s); peak RSS $(hwm "$pid") MiB"
}

# The machine's own ceilings, in the same run: writing a new file of this
# size (what every push must do) and reading one back from the page cache.
sync
t=$( { /usr/bin/time -f '%e' dd if="$work/blob" of="$work/copy" bs=1M status=none; } 2>&1 )
echo "machine: new-file write (dd bs=1M) $(mib_s "$t") MiB/s"
rm -f "$work/copy"

port=$(free_port)
printf '{"storage":{"rootDirectory":"%s/berth"},"http":{"port":"%s"},"log":{"level":"warn"}}' "$work" "$port" > "$work/berth.json"
./target/release/berth serve "$work/berth.json" 2> "$work/berth.log" &
pids+=($!)
wait_up "127.0.0.1:$port"
run berth "${pids[-1]}" "127.0.0.1:$port"

if command -v docker-registry >/dev/null 2>&1; then
  port=$(free_port)
  cat > "$work/dist.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/dist}, delete: {enabled: true}}
http: {addr: "127.0.0.1:$port"}
YAML
  docker-registry serve "$work/dist.yml" > "$work/dist.log" 2>&1 &
  pids+=($!)
  wait_up "127.0.0.1:$port"
  run distribution "${pids[-1]}" "127.0.0.1:$port"
else
  echo "(docker-registry not installed: apt-get install docker-registry to compare)"
fi
