#!/usr/bin/env python3
"""Referrers API interop check for Berth using oras-py (the `oras` PyPI package).

Usage:  python3 oras_referrers.py HOST:PORT

The registry must serve plain HTTP with no auth. The script:
  1. pushes a random "subject" artifact to HOST:PORT/oras/demo:v1 with oras-py;
  2. pushes an SBOM-like artifact whose manifest has `subject` set to the subject
     manifest's descriptor, an `artifactType` and an annotation (oras-py's own
     `push(subject=...)`; push has no artifactType argument, so a small subclass
     adds the field to the manifest just before oras-py uploads it);
  3. checks the OCI-Subject header on that push, then
     GET /v2/oras/demo/referrers/<digest> unfiltered and with the artifactType
     filter (matching and non-matching);
  4. pulls the subject back with oras-py and compares the bytes.
Exits 0 and prints "PASS ..." on success; prints the failed assertion and exits 1
otherwise.
"""
import hashlib
import json
import os
import sys
import tempfile
import traceback
import urllib.request

import oras.client
import oras.oci

REPO = "oras/demo"
SBOM_TYPE = "application/vnd.example.sbom.v1"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
ANNOTATION = ("org.example.sbom.format", "spdx-json")


class ArtifactClient(oras.client.OrasClient):
    """OrasClient whose pushed manifests carry an optional `artifactType`."""

    artifact_type = None

    def upload_manifest(self, manifest, container):
        if self.artifact_type:
            manifest["artifactType"] = self.artifact_type
        return super().upload_manifest(manifest, container)


def write(directory, name, data):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def get_referrers(registry, digest, query=""):
    url = f"http://{registry}/v2/{REPO}/referrers/{digest}{query}"
    with urllib.request.urlopen(url) as resp:  # raises HTTPError on 4xx/5xx
        assert resp.status == 200, f"GET {url}: status {resp.status}, want 200"
        ctype = resp.headers.get("Content-Type", "")
        assert ctype.split(";")[0].strip() == INDEX_TYPE, \
            f"GET {url}: Content-Type {ctype!r}, want {INDEX_TYPE!r}"
        index = json.loads(resp.read())
        assert index.get("mediaType") == INDEX_TYPE, \
            f"GET {url}: index mediaType {index.get('mediaType')!r}"
        assert index.get("schemaVersion") == 2, f"GET {url}: schemaVersion != 2"
        return resp.headers, index.get("manifests", [])


def main(registry):
    client = ArtifactClient(hostname=registry, insecure=True)
    work = tempfile.mkdtemp(prefix="oras-referrers-")
    subject_ref = f"{registry}/{REPO}:v1"

    # 1. Push the subject artifact.
    payload = os.urandom(256)
    subject_file = write(work, "payload.bin", payload)
    resp = client.push(subject_ref, files=[subject_file],
                       disable_path_validation=True, quiet=True)
    pushed_digest = resp.headers.get("Docker-Content-Digest")

    # Subject descriptor via oras-py, cross-checked against the raw bytes served.
    subject = oras.oci.Subject.from_manifest(client.get_manifest(subject_ref))
    raw = client.do_request(f"http://{registry}/v2/{REPO}/manifests/{subject.digest}",
                            "GET", headers={"Accept": subject.mediaType})
    assert raw.status_code == 200, f"GET subject manifest by digest: {raw.status_code}"
    served = "sha256:" + hashlib.sha256(raw.content).hexdigest()
    assert served == subject.digest and len(raw.content) == subject.size, \
        f"subject descriptor {subject} does not match served manifest {served}"
    assert pushed_digest in (None, subject.digest), \
        f"Docker-Content-Digest {pushed_digest} != {subject.digest}"
    print(f"pushed subject {subject_ref} -> {subject.digest}")

    # 2. Push the referrer (SBOM) with subject + artifactType + annotation.
    sbom = json.dumps({"spdxVersion": "SPDX-2.3", "name": "demo"}).encode()
    sbom_file = write(work, "sbom.spdx.json", sbom)
    client.artifact_type = SBOM_TYPE
    resp = client.push(f"{registry}/{REPO}:sbom", files=[f"{sbom_file}:{SBOM_TYPE}"],
                       disable_path_validation=True, subject=subject,
                       manifest_annotations=dict([ANNOTATION]), quiet=True)
    client.artifact_type = None
    sbom_digest = resp.headers.get("Docker-Content-Digest")
    assert sbom_digest, "referrer push response lacks Docker-Content-Digest"
    oci_subject = resp.headers.get("OCI-Subject")
    assert oci_subject == subject.digest, \
        f"manifest PUT OCI-Subject is {oci_subject!r}, want {subject.digest}"
    print(f"pushed referrer {REPO}:sbom -> {sbom_digest}")

    # 3. Referrers API: unfiltered, matching filter, non-matching filter.
    _, refs = get_referrers(registry, subject.digest)
    match = [m for m in refs if m.get("digest") == sbom_digest]
    assert len(match) == 1, f"referrer {sbom_digest} not listed once in {refs}"
    entry = match[0]
    assert entry.get("artifactType") == SBOM_TYPE, f"artifactType wrong: {entry}"
    assert entry.get("annotations", {}).get(ANNOTATION[0]) == ANNOTATION[1], \
        f"annotation {ANNOTATION} missing: {entry}"
    assert entry.get("mediaType") == "application/vnd.oci.image.manifest.v1+json", \
        f"mediaType wrong: {entry}"
    assert isinstance(entry.get("size"), int) and entry["size"] > 0, f"size: {entry}"

    headers, refs = get_referrers(registry, subject.digest, f"?artifactType={SBOM_TYPE}")
    applied = headers.get("OCI-Filters-Applied")
    assert applied == "artifactType", \
        f"OCI-Filters-Applied is {applied!r}, want 'artifactType'"
    assert [m.get("digest") for m in refs] == [sbom_digest], \
        f"filtered referrers: want only {sbom_digest}, got {refs}"

    _, refs = get_referrers(registry, subject.digest, "?artifactType=application/other")
    assert refs == [], f"artifactType=application/other: want no entries, got {refs}"
    print("referrers API: unfiltered, filtered and non-matching filter OK")

    # 4. Pull the subject back and compare bytes.
    files = client.pull(subject_ref, outdir=os.path.join(work, "pulled"))
    assert len(files) == 1, f"pull returned {files}"
    with open(files[0], "rb") as f:
        assert f.read() == payload, "pulled subject content differs from pushed"
    print("pulled subject back: content identical")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} HOST:PORT")
    try:
        main(sys.argv[1])
    except Exception:  # AssertionError, HTTP errors, oras-py errors
        traceback.print_exc()
        print("FAIL: oras-py referrers check failed (see above)")
        sys.exit(1)
    print(f"PASS: oras-py {oras.__version__} referrers check against {sys.argv[1]}")
