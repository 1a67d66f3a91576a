#!/usr/bin/env python3
"""HTTPS + Basic auth interop check for Berth using oras-py.

Usage:  python3 oras_https.py HOST:PORT CA_PEM USER PASSWORD

Pushes a random artifact to HOST:PORT/secure/demo:v1 over HTTPS, trusting
only CA_PEM, logged in as USER; pulls it back and compares the bytes; then
checks that a wrong password is refused. Prints "PASS ..." and exits 0, or
prints the failure and exits 1.
"""
import os
import sys
import tempfile
import traceback

import oras.client


def client(host, ca, user, password):
    # The "basic" backend sends the credentials; the default "token" one
    # would treat the Basic realm as a token server URL.
    c = oras.client.OrasClient(hostname=host, tls_verify=ca, auth_backend="basic")
    c.auth.set_basic_auth(user, password)
    return c


def main():
    host, ca, user, password = sys.argv[1:5]
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
    print(f"PASS oras-py over HTTPS with Basic auth against {host}")


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
