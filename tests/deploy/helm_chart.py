"""Checks deploy/helm/berth with Helm's own code (Helm's Go SDK through
helm-python-sdk) and Kubernetes' JSON schemas (kubernetes-validate, bundled
offline), then pushes the packaged chart to a Berth as an OCI chart and
pulls it back.

    python helm_chart.py CHART_DIR REGISTRY_HOST:PORT OUT_DIR

Writes OUT_DIR/config-default.json, OUT_DIR/config-s3-redis.json,
OUT_DIR/config-azure-dynamodb.json and OUT_DIR/config-gcs-redis.json (the
config each rendering puts in its ConfigMap, for `berth verify`) and
OUT_DIR/pushed.json (the chart's name, version and digest). Exits non-zero
with a message on the first failure.
"""

import hashlib
import json
import os
import sys

import helm_python as helm
import kubernetes_validate
import yaml

KUBERNETES = "1.30.0"


def fail(message):
    sys.exit(f"helm chart check failed: {message}")


def check_lint(chart_dir, values, what):
    report = helm.lint(chart_dir, values, strict=True, kube_version=f"v{KUBERNETES}")
    # Severity 2 = warning, 3 = error (1 = info, e.g. "icon is recommended").
    bad = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    if bad:
        fail(f"helm lint ({what}): {bad}")


def render(chart_dir, values):
    with helm.Chart.load(chart_dir) as chart:
        files = chart.render(values, name="reg", namespace="registry")
    docs = []
    for name, text in sorted(files.items()):
        if not name.endswith(".yaml"):
            continue
        docs.extend((name, d) for d in yaml.safe_load_all(text) if d)
    return docs


def check_schemas(docs, what):
    for name, doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(f"{what}: {name} ({doc.get('kind')}) breaks the Kubernetes {KUBERNETES} schema: {e.message} at {list(e.path)}")


def by_kind(docs, kind):
    return [d for _, d in docs if d["kind"] == kind]


def check_workload(docs, what, replicas, persistent):
    [sts] = by_kind(docs, "StatefulSet")
    if sts["spec"]["replicas"] != replicas:
        fail(f"{what}: {sts['spec']['replicas']} replicas, expected {replicas}")
    pod = sts["spec"]["template"]["spec"]
    [c] = pod["containers"]
    probes = {p: c[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe")}
    if probes != {"startupProbe": "/startupz", "livenessProbe": "/livez", "readinessProbe": "/readyz"}:
        fail(f"{what}: probes {probes}")
    if pod["securityContext"].get("runAsNonRoot") is not True:
        fail(f"{what}: the pod may run as root")
    if bool(sts["spec"].get("volumeClaimTemplates")) != persistent:
        fail(f"{what}: volumeClaimTemplates {sts['spec'].get('volumeClaimTemplates')}")
    if not by_kind(docs, "Service"):
        fail(f"{what}: no Service")
    [cm] = by_kind(docs, "ConfigMap")
    return sts, json.loads(cm["data"]["config.json"])


def check_azure(sts, config, what):
    [c] = sts["spec"]["template"]["spec"]["containers"]
    refs = sorted(e["secretRef"]["name"] for e in c.get("envFrom", []))
    if refs != ["reg-berth-azure", "reg-berth-s3"]:
        fail(f"{what}: environment from {refs}")
    driver = config["storage"]["storageDriver"]
    if driver["name"] != "azure" or "accountkey" in driver:
        fail(f"{what}: storage driver {driver}")
    if config["storage"]["cacheDriver"]["name"] != "dynamodb":
        fail(f"{what}: cache driver {config['storage']['cacheDriver']}")


def check_gcs(sts, config, what):
    pod = sts["spec"]["template"]["spec"]
    [c] = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    if mounts.get("gcs") != "/etc/berth/gcs":
        fail(f"{what}: mounts {mounts}")
    volumes = {v["name"]: v.get("secret", {}).get("secretName") for v in pod["volumes"]}
    if volumes.get("gcs") != "reg-berth-gcs":
        fail(f"{what}: volumes {volumes}")
    driver = config["storage"]["storageDriver"]
    if driver != {"name": "gcs", "bucket": "registry", "rootdirectory": "/berth", "keyfile": "/etc/berth/gcs/key.json"}:
        fail(f"{what}: storage driver {driver}")


def main():
    chart_dir, registry, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(chart_dir, "ci", "s3-redis-values.yaml")) as f:
        scale_out = yaml.safe_load(f)

    check_lint(chart_dir, None, "default values")
    check_lint(chart_dir, scale_out, "ci/s3-redis-values.yaml")

    docs = render(chart_dir, {})
    check_schemas(docs, "default values")
    _, config = check_workload(docs, "default values", 1, True)
    if by_kind(docs, "Secret"):
        fail("default values: a Secret with nothing to hold")
    with open(os.path.join(out, "config-default.json"), "w") as f:
        json.dump(config, f)

    docs = render(chart_dir, scale_out)
    check_schemas(docs, "ci/s3-redis-values.yaml")
    sts, config = check_workload(docs, "ci/s3-redis-values.yaml", 3, False)
    secrets = sorted(d["metadata"]["name"] for d in by_kind(docs, "Secret"))
    if secrets != ["reg-berth-htpasswd", "reg-berth-s3", "reg-berth-tls"]:
        fail(f"scale-out: Secrets {secrets}")
    [c] = sts["spec"]["template"]["spec"]["containers"]
    if c["livenessProbe"]["httpGet"]["scheme"] != "HTTPS":
        fail("scale-out: the probes do not use HTTPS with TLS on")
    if config["storage"]["storageDriver"]["name"] != "s3" or "accesskey" in config["storage"]["storageDriver"]:
        fail(f"scale-out: config {config['storage']}")
    if config["http"]["auth"]["htpasswd"]["path"] != "/etc/berth/auth/htpasswd":
        fail(f"scale-out: htpasswd path {config['http']}")
    with open(os.path.join(out, "config-s3-redis.json"), "w") as f:
        json.dump(config, f)

    # The other buckets and metadata stores: their credentials in Secrets,
    # never in the ConfigMap.
    for name, replicas, want_secrets, check in [
        ("azure-dynamodb", 2, ["reg-berth-azure", "reg-berth-s3"], check_azure),
        ("gcs-redis", 3, ["reg-berth-gcs"], check_gcs),
    ]:
        with open(os.path.join(chart_dir, "ci", f"{name}-values.yaml")) as f:
            values = yaml.safe_load(f)
        what = f"ci/{name}-values.yaml"
        check_lint(chart_dir, values, what)
        docs = render(chart_dir, values)
        check_schemas(docs, what)
        sts, config = check_workload(docs, what, replicas, False)
        secrets = sorted(d["metadata"]["name"] for d in by_kind(docs, "Secret"))
        if secrets != want_secrets:
            fail(f"{what}: Secrets {secrets}")
        check(sts, config, what)
        with open(os.path.join(out, f"config-{name}.json"), "w") as f:
            json.dump(config, f)

    # Several replicas on local volumes are refused.
    try:
        render(chart_dir, {"replicaCount": 2})
        fail("replicaCount 2 without a bucket and a shared metadata store was rendered")
    except helm.HelmError as e:
        if "replicaCount above 1" not in str(e):
            fail(f"replicaCount 2: unexpected error {e}")

    # Package, push as an OCI chart, pull back: the same archive.
    archive = helm.package(chart_dir, destination=out)
    with open(archive, "rb") as f:
        packaged = f.read()
    with helm.RegistryClient(plain_http=True, credentials_file=os.path.join(out, "registry.json")) as client:
        pushed = client.push(archive, f"oci://{registry}/charts", plain_http=True)
        pulled_dir = os.path.join(out, "pulled")
        os.makedirs(pulled_dir, exist_ok=True)
        client.pull(f"oci://{registry}/charts/berth", version="0.1.0", destination=pulled_dir, plain_http=True)
        tags = client.tags(f"oci://{registry}/charts/berth")
    with open(os.path.join(pulled_dir, os.path.basename(archive)), "rb") as f:
        if f.read() != packaged:
            fail("the chart pulled back differs from the one pushed")
    if tags != ["0.1.0"]:
        fail(f"tags {tags}")
    with open(os.path.join(out, "pushed.json"), "w") as f:
        json.dump({"push": pushed, "sha256": hashlib.sha256(packaged).hexdigest()}, f, default=str)
    print("helm chart ok:", archive)


if __name__ == "__main__":
    main()
