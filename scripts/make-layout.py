#!/usr/bin/env python3
"""Writes an OCI image layout of one image: LAYERS layers of SIZE_MIB MiB
of random bytes each (gzip-compressed tars, so that no tool
recompresses them), tagged TAG. For `berth copy`'s
benchmark (BENCHMARKS.md) and by hand.

usage: make-layout.py DIR TAG LAYERS SIZE_MIB
"""
import gzip, hashlib, io, json, os, sys, tarfile

def blob(root, data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(f"{root}/blobs/sha256", exist_ok=True)
    with open(f"{root}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{d}", "size": len(data)}

def main():
    root, tag, layers, mib = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    descs, diff_ids = [], []
    for i in range(layers):
        payload = os.urandom(int(mib * (1 << 20)))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            info = tarfile.TarInfo(f"layer{i}.bin")
            info.size = len(payload)
            t.addfile(info, io.BytesIO(payload))
        raw = buf.getvalue()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        d = blob(root, gzip.compress(raw, compresslevel=1, mtime=0))
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **d})
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                         "config": {"Env": ["PATH=/bin"], "Labels": {"made-by": "make-layout"}},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    c = blob(root, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **c},
                           "layers": descs}).encode()
    m = blob(root, manifest)
    with open(f"{root}/oci-layout", "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(f"{root}/index.json", "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **m,
                   "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)

main()
