#!/usr/bin/env bash
# Sync's figures on a release build, against Debian's docker-registry (CNCF
# distribution) on loopback:
# - periodic sync of 1,000 small images (100 repositories of 10 tags, each
#   image a config and one 1 KiB layer of its own) into Berth, against
#   `skopeo sync --src yaml --dest docker` of the same set into a second,
#   empty docker-registry (one skopeo run over every repository and tag);
# - on-demand pull of a 100 MiB single-layer image through Berth: time to
#   first byte and total of the layer's GET (curl), against the same GET
#   from the upstream directly, and from Berth once the copy is stored.
#
#   scripts/bench-sync.sh            (IMAGES=1000 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p berth
images=${IMAGES:-1000}
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/berth-sync.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { python3 -c 'import time; print(time.time())'; }
since() { python3 -c "import time; print(round(time.time() - $1, 2))"; }

start_registry() { # name port
  mkdir -p "$work/$1"
  cat > "$work/$1/config.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/$1/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$2}
YML
  docker-registry serve "$work/$1/config.yml" > "$work/$1/log" 2>&1 &
  pids+=($!)
  until curl -sf "http://127.0.0.1:$2/v2/" >/dev/null; do sleep 0.1; done
}

up=$(free_port); start_registry upstream "$up"
echo "pushing $images small images and one of 100 MiB to docker-registry on :$up"
python3 - "$up" "$images" <<'PY'
import hashlib, http.client, json, os, sys
port, images = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port)
def call(method, path, body=b"", headers=None):
    conn.request(method, path, body, headers or {})
    r = conn.getresponse(); data = r.read()
    if r.status >= 300: raise SystemExit(f"{method} {path}: {r.status} {data[:200]}")
    return r
def blob(repo, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    # distribution 2.8 takes no one-request upload: POST, then PUT.
    loc = call("POST", f"/v2/{repo}/blobs/uploads/", b"", {"Content-Length": "0"}).getheader("Location")
    loc = loc.split("127.0.0.1:%d" % port, 1)[-1]
    sep = "&" if "?" in loc else "?"
    call("PUT", f"{loc}{sep}digest={d}", data, {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
    return {"mediaType": "", "digest": d, "size": len(data)}
def image(repo, tag, layer):
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "tag": tag}).encode()
    c = blob(repo, cfg); c["mediaType"] = "application/vnd.oci.image.config.v1+json"
    l = blob(repo, layer); l["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": [l]}).encode()
    call("PUT", f"/v2/{repo}/manifests/{tag}", m, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
for i in range(images):
    image(f"bench/r{i // 10:03d}", f"t{i % 10}", os.urandom(1024))
image("big/app", "v1", os.urandom(100 << 20))
PY

# Berth, periodic: one run at start over the whole catalog.
port=$(free_port)
cat > "$work/berth.json" <<JSON
{"storage": {"rootDirectory": "$work/berth"}, "http": {"address": "127.0.0.1", "port": "$port"},
 "log": {"level": "info"},
 "extensions": {"sync": {"registries": [{"urls": ["http://127.0.0.1:$up"], "pollInterval": "24h",
   "reqConcurrent": ${REQ_CONCURRENT:-8}, "content": [{"prefix": "bench/**"}]}]}}}
JSON
start=$(now)
NO_COLOR=1 ./target/release/berth serve "$work/berth.json" 2> "$work/berth.log" &
pids+=($!)
until grep -q "sync run finished" "$work/berth.log" 2>/dev/null; do sleep 0.05; done
berth_secs=$(since "$start")
echo "berth periodic sync: ${berth_secs} s ($(grep 'sync run finished' "$work/berth.log" | sed 's/.*copied=/copied=/' | cut -c1-80))"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'

# skopeo sync of the same set into an empty docker-registry.
dest=$(free_port); start_registry dest "$dest"
python3 - "$up" "$images" > "$work/skopeo.yml" <<'PY'
import sys
port, images = sys.argv[1], int(sys.argv[2])
print(f"'127.0.0.1:{port}':\n  tls-verify: false\n  images:")
for r in range((images + 9) // 10):
    print(f"    bench/r{r:03d}: []")
PY
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$work/policy.json"
start=$(now)
skopeo --policy "$work/policy.json" sync --src yaml --dest docker --dest-tls-verify=false "$work/skopeo.yml" "127.0.0.1:$dest/mirror" > "$work/skopeo.log" 2>&1 \
  || { cat "$work/skopeo.log"; exit 1; }
skopeo_secs=$(since "$start")
echo "skopeo sync: ${skopeo_secs} s"
python3 -c "print(f'berth is {$skopeo_secs / $berth_secs:.1f}x skopeo sync')"

# On demand: a 100 MiB layer through Berth.
port=$(free_port)
cat > "$work/ondemand.json" <<JSON
{"storage": {"rootDirectory": "$work/ondemand"}, "http": {"address": "127.0.0.1", "port": "$port"},
 "log": {"level": "info"},
 "extensions": {"sync": {"registries": [{"urls": ["http://127.0.0.1:$up"], "onDemand": true,
   "content": [{"prefix": "big/**"}]}]}}}
JSON
NO_COLOR=1 RUST_LOG=${RUST_LOG:-info,berth::sync=debug} ./target/release/berth serve "$work/ondemand.json" 2> "$work/ondemand.log" &
pids+=($!)
until curl -sf "http://127.0.0.1:$port/v2/" >/dev/null; do sleep 0.05; done
accept="Accept: application/vnd.oci.image.manifest.v1+json"
layer=$(curl -sf -H "$accept" "http://127.0.0.1:$up/v2/big/app/manifests/v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
fmt='ttfb %{time_starttransfer} s, total %{time_total} s, %{size_download} bytes\n'
echo "direct from docker-registry:   $(curl -sf -o /dev/null -w "$fmt" "http://127.0.0.1:$up/v2/big/app/blobs/$layer")"
# The manifest GET starts the copy; the layer GET joins it and streams.
manifest=$(curl -sf -o /dev/null -w '%{time_total}' -H "$accept" "http://127.0.0.1:$port/v2/big/app/manifests/v1")
echo "berth on demand, manifest:     total ${manifest} s"
echo "berth on demand, first pull:   $(curl -sf -o /dev/null -w "$fmt" "http://127.0.0.1:$port/v2/big/app/blobs/$layer")"
until curl -sf "http://127.0.0.1:$port/v2/big/app/tags/list" | grep -q v1; do sleep 0.1; done
grep "blob copied" "$work/ondemand.log" | tail -1 | sed 's/.*bytes=/bytes=/' >&2 || true
echo "berth, once stored:            $(curl -sf -o /dev/null -w "$fmt" "http://127.0.0.1:$port/v2/big/app/blobs/$layer")"
