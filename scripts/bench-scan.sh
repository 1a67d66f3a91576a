#!/usr/bin/env bash
# Vulnerability scanning's figures on a release build of Berth with
# `extensions.search.cve` on:
# - the advisory database: 50,000 synthetic OSV advisories (Debian and
#   PyPI dumps written here) loaded at start: time and the server's
#   resident memory before and after;
# - one image of about 100 MiB (a layer of incompressible filler with a
#   dpkg status of 500 packages and 200 Python distributions) pushed with
#   skopeo: the first CVEListForImage (which scans it on the spot: layers
#   read from storage, inventory, matching), then 1,000 more, each
#   document made unique by a comment so that no answer is reused:
#   p50/p99/max.
#
#   scripts/bench-scan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p berth
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/berth-scan.XXXXXX")
pid=""
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
python3 - "$work" <<'EOF'
import gzip, hashlib, io, json, os, random, sys, tarfile, zipfile
work = sys.argv[1]
random.seed(7)
# Advisories: 40,000 Debian (on 2,000 source packages) and 10,000 PyPI.
os.makedirs(f"{work}/osv/Debian"); os.makedirs(f"{work}/osv/PyPI")
def dump(path, records):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for r in records:
            z.writestr(r["id"] + ".json", json.dumps(r))
# Source packages src0..src9999 have 4 advisories each; one in four is
# still open for the installed version 1.0-1 (the others were fixed
# before it), so the 500 installed ones match about 500 advisories.
deb = [{"id": f"DEBIAN-CVE-2024-{i:05d}", "aliases": [f"CVE-2024-{i:05d}"], "summary": f"flaw {i}",
        "details": "x" * 400, "severity": [],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": f"src{i % 10000}"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0-1" if i % 4 == 0 else "0.5-1"}]}]}]}
       for i in range(40000)]
dump(f"{work}/osv/Debian/all.zip", deb)
pypi = [{"id": f"GHSA-{i:04d}-xxxx-yyyy", "aliases": [f"CVE-2023-{i:05d}"], "summary": f"py flaw {i}",
         "details": "y" * 400, "database_specific": {"severity": "HIGH"},
         "affected": [{"package": {"ecosystem": "PyPI", "name": f"pkg{i % 5000}"},
                       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0" if i % 4 == 0 else "0.5"}]}]}]}
        for i in range(10000)]
dump(f"{work}/osv/PyPI/all.zip", pypi)
# The image: one layer of ~100 MiB incompressible filler plus the package databases.
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    def add(name, data):
        info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
    add("etc/os-release", b'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    status = "".join(f"Package: bin{i}\nStatus: install ok installed\nSource: src{i}\nVersion: 1.0-1\nArchitecture: amd64\n\n" for i in range(500))
    add("var/lib/dpkg/status", status.encode())
    for i in range(200):
        add(f"usr/lib/python3/dist-packages/pkg{i}-1.0.dist-info/METADATA", f"Metadata-Version: 2.1\nName: pkg{i}\nVersion: 1.0\n".encode())
    add("opt/filler.bin", os.urandom(100 << 20))
layer = gzip.compress(buf.getvalue(), compresslevel=1)
os.makedirs(f"{work}/layout/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{work}/layout/blobs/sha256/{d}", "wb").write(data)
    return {"digest": f"sha256:{d}", "size": len(data)}
cfg = blob(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(buf.getvalue()).hexdigest()]}}).encode())
lay = blob(layer)
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": {**cfg, "mediaType": "application/vnd.oci.image.config.v1+json"},
     "layers": [{**lay, "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}]}
md = blob(json.dumps(m).encode())
open(f"{work}/layout/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
open(f"{work}/layout/index.json", "w").write(json.dumps({"schemaVersion": 2, "manifests": [{**md, "mediaType": "application/vnd.oci.image.manifest.v1+json", "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}))
print(f"layer: {len(layer) / (1 << 20):.1f} MiB compressed; advisories: {len(deb) + len(pypi)}")
EOF
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '{"storage":{"rootDirectory":"%s/root"},"http":{"port":"%s"},"log":{"level":"info"},"extensions":{"search":{"cve":{"osv":{"source":"%s/osv"}}}}}' \
  "$work" "$port" "$work" > "$work/berth.json"
rss() { grep -E '^(VmRSS|VmHWM)' "/proc/$pid/status" | tr -s ' \t' ' ' | tr '\n' ' '; echo; }
start=$(date +%s.%N)
./target/release/berth serve "$work/berth.json" 2> "$work/berth.log" &
pid=$!
until grep -q "metadata store\|listening" "$work/berth.log" 2>/dev/null; do sleep 0.1; done
echo "started: $(rss)"
until grep -q "osv advisories refreshed" "$work/berth.log"; do sleep 0.2; done
echo "advisory database loaded after $(python3 -c "import time; print(round(time.time() - $start, 1))") s: $(grep 'osv advisories refreshed' "$work/berth.log" | tail -1 | sed 's/.*advisories=/advisories=/' | cut -c1-160)"
echo "with the database: $(rss)"
skopeo --policy <(echo '{"default":[{"type":"insecureAcceptAnything"}]}') copy -q --dest-tls-verify=false \
  "oci:$work/layout:v1" "docker://127.0.0.1:$port/bench/app:v1"
python3 - "$port" <<'EOF'
import json, sys, time, urllib.request
port = sys.argv[1]
def ask(n, page=""):
    q = '{ CVEListForImage(image: "bench/app:v1"%s) { CVEList { Id Title Severity PackageList { Name InstalledVersion FixedVersion } } Summary { Count MaxSeverity } } } # %d' % (page, n)
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/_zot/ext/search", json.dumps({"query": q}).encode(), {"Content-Type": "application/json"})
    t = time.perf_counter()
    body = json.load(urllib.request.urlopen(req))
    return time.perf_counter() - t, body
# The push queued a background scan; the first query scans or waits for it.
t, body = ask(0)
while body.get("errors"):
    time.sleep(0.2); t, body = ask(0)
print(f"first CVEListForImage (scan included if not done yet): {t * 1000:.0f} ms, {body['data']['CVEListForImage']['Summary']}")
for label, page in [("every CVE", ""), ("zot UI's page of 10", ", requestedPage: {limit: 10, offset: 0}")]:
    times = sorted(ask(i, page)[0] for i in range(1, 1001))
    print(f"CVEListForImage ({label}), 1000 unique documents: p50 {times[500] * 1000:.2f} ms, p99 {times[990] * 1000:.2f} ms, max {times[-1] * 1000:.2f} ms")
EOF
echo "after the queries: $(rss)"
echo "the scan: $(grep ' scanned' "$work/berth.log" | tail -1 | sed 's/.*packages=/packages=/')"
