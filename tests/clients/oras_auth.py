#!/usr/bin/env python3
"""Authentication interop check for Berth using oras-py.

Usage:  python3 oras_auth.py HOST:PORT CA_PEM|- USER PASSWORD basic|token

Pushes a random artifact to HOST:PORT/secure/demo:v1 logged in as USER,
over HTTPS trusting only CA_PEM (or plain HTTP with "-"), with oras-py's
"basic" backend (Basic credentials) or its "token" backend (the Docker
token flow: the credentials go to the realm of the Bearer challenge);
pulls it back and compares the bytes; then checks that a wrong password is
refused. Prints "PASS ..." and exits 0, or prints the failure and exits 1.
"""
import os
import sys
import tempfile
import traceback

import oras.client


BACKEND = "basic"


def client(host, ca, user, password):
    if ca == "-":
        c = oras.client.OrasClient(hostname=host, insecure=True, auth_backend=BACKEND)
    else:
        c = oras.client.OrasClient(hostname=host, tls_verify=ca, auth_backend=BACKEND)
    c.auth.set_basic_auth(user, password)
    return c


def main():
    global BACKEND
    host, ca, user, password, BACKEND = sys.argv[1:6]
    target = f"{host}/secure/demo:v1"
    with tempfile.TemporaryDirectory() as tmp:
        data = os.urandom(4096)
        name = "artifact.bin"
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            resp = client(host, ca, user, password).push(target=target, files=[name])
        finally:
            os.chdir(cwd)
        assert resp.status_code in (200, 201), f"push answered {resp.status_code}"
        out = os.path.join(tmp, "out")
        files = client(host, ca, user, password).pull(target=target, outdir=out)
        assert len(files) == 1, f"pulled {files}"
        with open(files[0], "rb") as f:
            assert f.read() == data, "pulled bytes differ"
        refused = False
        try:
            r = client(host, ca, user, password + "-wrong").push(
                target=f"{host}/secure/demo:v2", files=[os.path.join(tmp, name)]
            )
            refused = r.status_code in (401, 403)
        except Exception:
            refused = True
        assert refused, "a wrong password was accepted"
    print(f"PASS oras-py ({BACKEND} auth, CA {ca}) against {host}")


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
