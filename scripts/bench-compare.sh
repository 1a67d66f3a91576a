#!/usr/bin/env bash
# Berth against the CNCF distribution registry (Debian's docker-registry
# package, 2.8), side by side with `berth bench --compare`: both on
# loopback, each on its own fresh directory, the load generator on the
# same machine. Installs docker-registry with apt-get when it is missing.
#
#   scripts/bench-compare.sh [bench arguments...]   e.g. -c 16 -n 200 -t 'Pull 1KB'
#
# With BENCH_B=/path/to/another/berth, B is that build of Berth instead of
# distribution (an A/B of two builds: A is this checkout's release build,
# under $CARGO_TARGET_DIR when it is set).
#
# With BENCH_FS=ext4 (needs root, or sudo, for mount), each registry gets
# its own fresh ext4 file system with mkfs's defaults (a journal among
# them; inode tables written at mkfs, not by a background thread during
# the run), loop-mounted from a sparse image of BENCH_FS_SIZE (default
# 16G) in the work directory, so neither pays for the other's file churn
# nor for the host file system's history and options. Without it both store
# in subdirectories of one fresh directory on the host's file system.
#
# BENCH_A_EXT and BENCH_B_EXT (JSON objects, default {}) are the
# `extensions` of Berth's config on each side, e.g. to measure pushes with
# search on against the same build with it off:
#   BENCH_B=target/release/berth BENCH_A_EXT='{"search":{}}' scripts/bench-compare.sh ...
#
# Prints the report and each server's peak resident memory (VmHWM).
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if [ -z "${BENCH_B:-}" ] && ! command -v docker-registry >/dev/null 2>&1; then
  echo "installing docker-registry (apt-get)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq docker-registry >/dev/null
fi
cargo build --release --quiet -p berth
berth=${CARGO_TARGET_DIR:-target}/release/berth
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/berth-compare.XXXXXX")
pids=()
mounts=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  for m in "${mounts[@]}"; do as_root umount "$m" || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/berth" "$work/dist"
case "${BENCH_FS:-}" in
  "") ;;
  ext4)
    for side in berth dist; do
      truncate -s "${BENCH_FS_SIZE:-16G}" "$work/$side.img"
      mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$work/$side.img"
      as_root mount -o loop "$work/$side.img" "$work/$side"
      mounts+=("$work/$side")
    done
    echo "each registry on its own fresh ext4 (loop-mounted, ${BENCH_FS_SIZE:-16G})"
    ;;
  *) echo "BENCH_FS: only ext4 is known, not ${BENCH_FS}"; exit 2 ;;
esac
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -sf -o /dev/null "http://$1/v2/" && return 0; sleep 0.1; done; echo "server on $1 did not start"; exit 1; }
hwm() { awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$1/status"; }

bport=$(free_port)
printf '{"storage":{"rootDirectory":"%s/berth/root"},"http":{"port":"%s"},"log":{"level":"warn"},"extensions":%s}' "$work" "$bport" "${BENCH_A_EXT:-{\}}" > "$work/berth.json"
"$berth" serve "$work/berth.json" 2> "$work/berth.log" &
pids+=($!); bpid=$!
dport=$(free_port)
if [ -n "${BENCH_B:-}" ]; then
printf '{"storage":{"rootDirectory":"%s/dist/root"},"http":{"port":"%s"},"log":{"level":"warn"},"extensions":%s}' "$work" "$dport" "${BENCH_B_EXT:-{\}}" > "$work/b.json"
"$BENCH_B" serve "$work/b.json" 2> "$work/dist.log" &
else
cat > "$work/dist.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/dist/root}, delete: {enabled: true}}
http: {addr: "127.0.0.1:$dport"}
YAML
docker-registry serve "$work/dist.yml" > "$work/dist.log" 2>&1 &
fi
pids+=($!); dpid=$!
wait_up "127.0.0.1:$bport"
wait_up "127.0.0.1:$dport"
if [ -n "${BENCH_B:-}" ]; then b_name="berth at $BENCH_B"; else b_name="distribution $(docker-registry --version 2>/dev/null | head -1)"; fi
echo "A = berth $("$berth" --version 2>/dev/null || true), B = $b_name"
"$berth" bench "http://127.0.0.1:$bport" --compare "http://127.0.0.1:$dport" "$@"
echo "peak RSS: A $(hwm "$bpid") MiB, B $(hwm "$dpid") MiB"
