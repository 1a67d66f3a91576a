#!/usr/bin/env bash
# The search extension's figures: a release build of Berth with
# `extensions.search` on, filled with the search data set by `berth bench`
# (by default 10,000 repositories of 10 tags and one repository of 10,000
# tags; the fill is untimed), then zot's UI and CLI queries with
# `berth bench`; then the same again on a fresh process serving the same
# data. Prints the reports and the server's resident memory (VmRSS, and
# its peak, VmHWM) after the fill, after the queries, after the restart and
# after the queries again.
#
#   scripts/bench-search.sh [bench arguments...]   e.g. -c 16 -n 2000
#
# BENCH_SEARCH_SET (e.g. "--search-repos 1000 --search-big-tags 1000")
# sizes the data set; it is passed to both runs.
#
# BENCH_FS=ext4 puts the data on a fresh loop-mounted ext4 (needs root),
# as scripts/bench-compare.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
cargo build --release --quiet -p berth
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/berth-search.XXXXXX")
pid=""
mounted=""
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  [ -n "$mounted" ] && { as_root umount "$mounted" || true; }
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/data"
if [ "${BENCH_FS:-}" = ext4 ]; then
  truncate -s "${BENCH_FS_SIZE:-16G}" "$work/data.img"
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$work/data.img"
  as_root mount -o loop "$work/data.img" "$work/data"
  mounted="$work/data"
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '{"storage":{"rootDirectory":"%s/data/root"},"http":{"port":"%s"},"log":{"level":"warn"},"extensions":{"search":{},"ui":{}}}' \
  "$work" "$port" > "$work/berth.json"
./target/release/berth serve "$work/berth.json" 2> "$work/berth.log" &
pid=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.1; done
rss() { awk -v k="$2" '$1 == k":" {print int($2 / 1024)}' "/proc/$1/status"; }
url="http://127.0.0.1:$port"
# The fill: the set-up of one search test, with a single request.
# shellcheck disable=SC2086
./target/release/berth bench "$url" -t '^Search RepoListWithNewestImage' -n 1 ${BENCH_SEARCH_SET:-} > /dev/null
echo "after the fill: RSS $(rss "$pid" VmRSS) MiB"
# shellcheck disable=SC2086
./target/release/berth bench "$url" -t '^Search' ${BENCH_SEARCH_SET:-} "$@"
echo "after the queries: RSS $(rss "$pid" VmRSS) MiB, peak $(rss "$pid" VmHWM) MiB"
# The same data set served by a fresh process (what a restarted server
# holds: the index and its answers, not what receiving the pushes left).
kill "$pid"; wait "$pid" 2>/dev/null || true
./target/release/berth serve "$work/berth.json" 2>> "$work/berth.log" &
pid=$!
for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.1; done
echo "restarted: RSS $(rss "$pid" VmRSS) MiB"
# shellcheck disable=SC2086
./target/release/berth bench "$url" -t '^Search' ${BENCH_SEARCH_SET:-} "$@"
echo "restarted, after the queries: RSS $(rss "$pid" VmRSS) MiB, peak $(rss "$pid" VmHWM) MiB"
