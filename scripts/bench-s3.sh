#!/usr/bin/env bash
# Berth on S3 against Berth on local disk, and three Berth instances against
# one, all on this machine: a real S3 server (s3s-fs, signatures checked)
# and Redis on loopback, the load generator on the same cores.
#
#   scripts/bench-s3.sh [requests]     (default 20 per test and round)
#   NODELAY_SHIM=0 scripts/bench-s3.sh  (s3s-fs as it is, with its stalls)
#
# Part 1 runs `berth bench LOCAL --compare S3` over push and pull of 1, 10
# and 100 MB with 1 and 16 clients (A = local, B = S3).
# Part 2 pushes 10 MB blobs monolithically with 12 clients: all through one
# instance, then 4 through each of three instances sharing the bucket and
# Redis, and prints the aggregate MB/s of each.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v redis-server >/dev/null 2>&1; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
  as_root systemctl disable --now redis-server >/dev/null 2>&1 || as_root service redis-server stop >/dev/null 2>&1 || true
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
command -v s3s-fs >/dev/null 2>&1 || cargo install --quiet --locked s3s-fs@0.14.1 --features binary
cargo build --release --quiet -p berth
berth=./target/release/berth
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/berth-s3.XXXXXX")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -sf -o /dev/null "http://$1/v2/" && return 0; sleep 0.1; done; echo "server on $1 did not start"; exit 1; }

s3port=$(free_port)
mkdir -p "$work/s3/berth"
# s3s-fs does not set TCP_NODELAY: preload a shim that does, so the figures
# are not its delayed-ACK stalls (BENCHMARKS.md shows both).
preload=""
if [ "${NODELAY_SHIM:-1}" = 1 ] && command -v gcc >/dev/null 2>&1; then
  gcc -shared -fPIC -O2 -o "$work/nodelay.so" scripts/nodelay-shim.c -ldl
  preload="$work/nodelay.so"
fi
LD_PRELOAD="$preload" s3s-fs --host 127.0.0.1 --port "$s3port" --access-key bench --secret-key bench-secret-0123456789 "$work/s3" 2> "$work/s3.log" &
pids+=($!); s3pid=$!
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" > "$work/redis.log" 2>&1 &
pids+=($!)
driver() {
  printf '{"name":"s3","rootdirectory":"%s","regionendpoint":"http://127.0.0.1:%s","bucket":"berth","forcepathstyle":true,"secure":false,"accesskey":"bench","secretkey":"bench-secret-0123456789"}' "$1" "$s3port"
}
# start NAME STORAGE-EXTRA: a berth on a fresh local root; sets $addr.
start() {
  local port; port=$(free_port)
  printf '{"storage":{"rootDirectory":"%s/%s"%s},"http":{"address":"127.0.0.1","port":"%s"},"log":{"level":"warn"}}' \
    "$work" "$1" "$2" "$port" > "$work/$1.json"
  $berth serve "$work/$1.json" > /dev/null 2> "$work/$1.log" &
  pids+=($!); lastpid=$!
  addr="127.0.0.1:$port"
  wait_up "$addr"
}

echo "== 1. local disk (A) against S3 (B), $n requests per test and round"
start local ""; local_addr=$addr
start s3 ",\"storageDriver\":$(driver single)"; s3_addr=$addr
[ "${SKIP_COMPARE:-0}" = 1 ] && echo "(skipped)"
[ "${SKIP_COMPARE:-0}" = 1 ] || for c in 1 16; do
  echo "-- $c client(s)"
  $berth bench "http://$local_addr" --compare "http://$s3_addr" --rounds 2 -c "$c" -n "$n" \
    -t '^(Push Monolith|Pull) (1MB|10MB|100MB)$'
done

echo "== 2. one instance against three, sharing the bucket and Redis: Push Monolith 10MB, 12 clients"
shared=",\"storageDriver\":$(driver shared),\"cacheDriver\":{\"name\":\"redis\",\"url\":\"redis://127.0.0.1:$rport\"},\"gc\":false"
nodes=()
npids=()
for name in n1 n2 n3; do start "$name" "$shared"; nodes+=("$addr"); npids+=("$lastpid"); done
# CPU seconds (user + system) a process has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$1/stat"; }
used() { python3 -c "print(f'{$2 - $1:.1f}')"; }
cpus() { for p in "$@"; do cpu "$p"; echo; done | python3 -c 'import sys; print(sum(float(x) for x in sys.stdin.read().split()))'; }
mbs() { python3 -c 'import json,sys; print(sum(r["mb_per_sec"] for r in json.load(sys.stdin)))'; }
for round in 1 2; do
  s0=$(cpu "$s3pid"); b0=$(cpu "${npids[0]}"); t0=$(date +%s.%N)
  one=$($berth bench "http://${nodes[0]}" -c 12 -n $((n * 3)) -t '^Push Monolith 10MB$' -r "one$round" -o json | mbs)
  s1=$(cpu "$s3pid"); b1=$(cpu "${npids[0]}"); t1=$(date +%s.%N)
  echo "round $round, one instance: $(used "$t0" "$t1") s; CPU s3s-fs $(used "$s0" "$s1") s, berth $(used "$b0" "$b1") s"
  s0=$(cpu "$s3pid"); bb0=$(cpus "${npids[@]}"); t0=$(date +%s.%N)
  benches=()
  for i in 0 1 2; do
    $berth bench "http://${nodes[$i]}" -c 4 -n "$n" -t '^Push Monolith 10MB$' -r "three$round-$i" -o json > "$work/three$i.json" &
    benches+=($!)
  done
  wait "${benches[@]}"
  s1=$(cpu "$s3pid"); bb1=$(cpus "${npids[@]}"); t1=$(date +%s.%N)
  echo "round $round, three instances: $(used "$t0" "$t1") s; CPU s3s-fs $(used "$s0" "$s1") s, berth (all three) $(used "$bb0" "$bb1") s"
  three=$(cat "$work"/three{0,1,2}.json | python3 -c 'import json,sys; d=sys.stdin.read().replace("]\n[",","); print(sum(r["mb_per_sec"] for r in json.loads(d)))')
  python3 -c "print(f'round $round: one instance {float($one):.0f} MB/s, three instances {float($three):.0f} MB/s, ratio {float($three)/float($one):.2f}x')"
done
