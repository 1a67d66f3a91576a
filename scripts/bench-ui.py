#!/usr/bin/env python3
"""Render times of the web UI's pages with many repositories (BENCHMARKS.md).

Starts `berth serve` (search and ui on) on a temporary root, pushes N
repositories (an empty config mounted from the first, one manifest each),
then times each page over HTTP on 127.0.0.1: the first request (search's
answer not kept yet) and the median of the next ones (kept answers), and
list searches that differ each time (never kept).

    scripts/bench-ui.py [--repos 10000] [--berth target/release/berth]

Standard library only. Tests never assert on these times.
"""

import argparse
import concurrent.futures
import hashlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

p = argparse.ArgumentParser()
p.add_argument("--repos", type=int, default=10000)
p.add_argument("--berth", default="target/release/berth")
p.add_argument("--rounds", type=int, default=20)
a = p.parse_args()

tmp = tempfile.mkdtemp(prefix="berth-bench-ui-")
config = os.path.join(tmp, "config.json")
with open(config, "w") as f:
    json.dump({"storage": {"rootDirectory": os.path.join(tmp, "root")},
               "http": {"address": "127.0.0.1", "port": "0"},
               "extensions": {"search": {"enable": True}, "ui": {"enable": True}}}, f)
proc = subprocess.Popen([a.berth, "serve", config], stderr=subprocess.PIPE, text=True)
addr = None
for line in proc.stderr:
    if "listening on http://" in line:
        addr = line.split("listening on http://")[1].split()[0]
        break
if not addr:
    sys.exit("berth did not start")
threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
host, port = addr.rsplit(":", 1)
local = threading.local()


def conn():
    if not hasattr(local, "c"):
        local.c = http.client.HTTPConnection(host, int(port), timeout=60)
    return local.c


def req(method, path, body=None, headers=None):
    for attempt in (1, 2):
        try:
            c = conn()
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        except (http.client.RemoteDisconnected, ConnectionError):
            # An idle connection the server closed: once more on a new one.
            del local.c
            if attempt == 2:
                raise


config_blob = b"{}"
cd = "sha256:" + hashlib.sha256(config_blob).hexdigest()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": 2},
                       "layers": []}).encode()
mtype = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}


def push(i):
    repo = f"team-{i % 100}/app-{i}"
    if i == 0:
        s, _ = req("POST", f"/v2/{repo}/blobs/uploads/?digest={cd}", config_blob)
    else:
        s, _ = req("POST", f"/v2/{repo}/blobs/uploads/?mount={cd}&from=team-0/app-0")
    assert s == 201, (repo, s)
    s, _ = req("PUT", f"/v2/{repo}/manifests/v1", manifest, mtype)
    assert s == 201, (repo, s)


try:
    t0 = time.time()
    push(0)
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(push, range(1, a.repos)))
    print(f"pushed {a.repos} repositories in {time.time() - t0:.1f} s")

    def timed(path):
        t = time.perf_counter()
        s, body = req("GET", path)
        assert s == 200, (path, s)
        return (time.perf_counter() - t) * 1000, len(body)

    rows = []
    for name, path in [("home", "/"), ("repository list", "/ui/repos"),
                       ("list sorted by name", "/ui/repos?sort=name"),
                       ("repository", "/ui/repo/team-7/app-4207"),
                       ("image", "/ui/image/team-7/app-4207:v1")]:
        first, size = timed(path)
        warm = [timed(path)[0] for _ in range(a.rounds)]
        rows.append((name, first, statistics.median(warm), size))
    searches = [timed(f"/ui/repos?q=app-{i * 37 % a.repos}")[0] for i in range(a.rounds)]
    rows.append(("search (a new query each time)", searches[0], statistics.median(searches), 0))
    print(f"{'page':32} {'first ms':>9} {'median ms':>10} {'bytes':>8}")
    for name, first, med, size in rows:
        print(f"{name:32} {first:9.1f} {med:10.1f} {size:8}")
finally:
    proc.terminate()
    proc.wait()
    subprocess.run(["rm", "-rf", tmp])
