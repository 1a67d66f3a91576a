#!/bin/sh
# berth sync against skopeo sync, registry to registry, in one run: 500
# small images (one repository, 500 tags, each a distinct 1 KiB layer and
# config) between two Berths on loopback; each tool copies into a fresh,
# empty registry. Wall time and peak memory from /usr/bin/time -v. For
# BENCHMARKS.md.
#
# usage: scripts/bench-sync.sh [BERTH_BINARY] [RUNS] [IMAGES]
set -eu
BERTH=${1:-target/release/berth}
RUNS=${2:-2}
IMAGES=${3:-500}
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/bench-sync.XXXXXX")
PIDS=""
trap 'for p in $PIDS; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

. "$(dirname "$0")/bench-common.sh"

start src 5901
# The source: IMAGES tags of `small`, pushed over the API (monolithic
# blob uploads, then the manifest).
python3 - "$IMAGES" <<'PY'
import hashlib, json, os, sys, urllib.request
base = "http://127.0.0.1:5901/v2/small"
def put_blob(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    req = urllib.request.Request(f"{base}/blobs/uploads/?digest={d}", data=data, method="POST",
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req).read()
    return {"digest": d, "size": len(data)}
for i in range(int(sys.argv[1])):
    layer = os.urandom(1024)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
        "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": dict(put_blob(config), mediaType="application/vnd.oci.image.config.v1+json"),
         "layers": [dict(put_blob(layer), mediaType="application/vnd.oci.image.layer.v1.tar")]}
    req = urllib.request.Request(f"{base}/manifests/t{i}", data=json.dumps(m).encode(), method="PUT",
                                 headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    urllib.request.urlopen(req).read()
PY
printf '{"default":[{"type":"insecureAcceptAnything"}]}' > "$WORK/policy.json"

port=5910
for run in $(seq "$RUNS"); do
  port=$((port + 1)); start "dst-skopeo-$run" $port
  measure "run $run skopeo sync ($IMAGES images)" skopeo --policy "$WORK/policy.json" sync \
    --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false \
    127.0.0.1:5901/small "127.0.0.1:$port/mirror"
  port=$((port + 1)); start "dst-berth-$run" $port
  measure "run $run berth sync  ($IMAGES images)" "$BERTH" sync \
    docker://127.0.0.1:5901/small "docker://127.0.0.1:$port/mirror"
  n=$(curl -fs "http://127.0.0.1:$port/v2/mirror/small/tags/list" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["tags"]))')
  [ "$n" = "$IMAGES" ] || { echo "berth sync copied $n of $IMAGES tags" >&2; exit 1; }
done
