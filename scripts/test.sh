#!/usr/bin/env bash
# Runs every Berth test. Installs what the tests need when it is missing:
# skopeo, buildah, podman, slapd, ldap-utils, redis-server, docker-registry,
# systemd (systemd-analyze), man-db, binutils (objcopy), nats-server, nodejs,
# npm and chromium (Debian packages), playwright-core (npm, into
# tests/browser, for the web UI's browser tests), oras-py, schemathesis, helm-python-sdk (Helm's
# Go SDK), kubernetes-validate and moto's server (the DynamoDB tests' server)
# (PyPI, into ./.venv), the Azure Blob emulator Azurite (npm, into
# ./.npm-test), the S3 server s3s-fs and
# cargo-deny (crates.io, `cargo install`, about 4 and 6 minutes the first
# time).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
# command:package
for pair in skopeo:skopeo buildah:buildah podman:podman slapd:slapd ldapadd:ldap-utils redis-server:redis-server docker-registry:docker-registry systemd-analyze:systemd man:man-db objcopy:binutils nats-server:nats-server node:nodejs npm:npm chromium:chromium; do
  tool=${pair%%:*}
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (apt-get)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  # The tests start their own redis-server on a free port: the packaged
  # service, if apt started it, must not keep running (nor listen on 6379).
  if [[ " ${missing[*]} " == *" redis-server "* ]]; then
    as_root systemctl disable --now redis-server >/dev/null 2>&1 \
      || as_root service redis-server stop >/dev/null 2>&1 || true
  fi
  # Likewise nats-server (the events tests start their own).
  if [[ " ${missing[*]} " == *" nats-server "* ]]; then
    as_root systemctl disable --now nats-server >/dev/null 2>&1 \
      || as_root service nats-server stop >/dev/null 2>&1 || true
  fi
  # Likewise docker-registry (CNCF distribution, the sync tests' upstream):
  # the tests start their own; the packaged one would listen on 5000.
  if [[ " ${missing[*]} " == *" docker-registry "* ]]; then
    as_root systemctl disable --now docker-registry >/dev/null 2>&1 \
      || as_root service docker-registry stop >/dev/null 2>&1 || true
  fi
fi

# helm-python-sdk carries Helm's own Go SDK (4.2) as a library (the chart
# test lints, renders, packages, pushes and pulls with it);
# kubernetes-validate carries Kubernetes' JSON schemas, checked offline;
# moto_server is the DynamoDB-compatible server the DynamoDB tests start.
if ! .venv/bin/python -c "import oras, helm_python, kubernetes_validate, moto" >/dev/null 2>&1 \
    || [ ! -x .venv/bin/schemathesis ] || [ ! -x .venv/bin/moto_server ]; then
  echo "installing oras-py, schemathesis, helm-python-sdk, kubernetes-validate and moto into .venv (pip)"
  [ -x .venv/bin/pip ] || python3 -m venv .venv
  .venv/bin/pip install --quiet "oras==0.2.43" "schemathesis==4.32.5" \
    "helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0" "moto[server]==5.2.5"
fi
export BERTH_TEST_PYTHON="$PWD/.venv/bin/python"
# moto_server is also the AWS Secrets Manager the bearer tests start.

# The Azure tests run against Azurite, the Azure Blob Storage emulator,
# with Debian's nodejs.
if [ ! -x .npm-test/node_modules/.bin/azurite-blob ]; then
  echo "installing azurite into .npm-test (npm)"
  npm install --silent --no-audit --no-fund --prefix .npm-test azurite@3.37.0 >/dev/null
fi

# The S3 tests run against a real S3 protocol server that checks
# signatures. 0.14.1: later versions need a newer rustc.
if ! command -v s3s-fs >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs" ]; then
  echo "installing s3s-fs (cargo install)"
  cargo install --quiet --locked s3s-fs@0.14.1 --features binary
fi

# A real OpenID provider for the workload identity tests: panva's
# oidc-provider (npm, pinned by tests/oidc-provider/package-lock.json) on
# Debian's Node.js.
if [ ! -d tests/oidc-provider/node_modules/oidc-provider ]; then
  if ! command -v npm >/dev/null 2>&1; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
  fi
  echo "installing oidc-provider (npm ci)"
  npm ci --prefix tests/oidc-provider --no-audit --no-fund --silent
fi

# The web UI's browser tests drive Debian's headless Chromium with
# playwright-core (npm, pinned by tests/browser/package-lock.json; no
# browser download: it uses /usr/bin/chromium).
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "installing playwright-core (npm ci)"
  npm ci --prefix tests/browser --no-audit --no-fund --silent
fi

# Licences, sources and wildcards of the dependency tree (deny.toml).
if ! command -v cargo-deny >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo-deny" ]; then
  echo "installing cargo-deny (cargo install)"
  cargo install --quiet --locked cargo-deny@0.20.2
fi
deny_status=0
cargo deny --log-level error check licenses bans sources || deny_status=$?

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
timeout 2400 cargo test --workspace --all-targets "$@" 2>&1 | tee "$log" || status=$?

# The core-only build: each extension feature builds on its own, and the
# binary without any passes the tests that do not need them.
if [ $# -eq 0 ]; then
  for feature in metrics ratelimit events openapi s3 gcs azure redis dynamodb search ui trust scan sync ecr cluster secretsmanager openid; do
    echo "checking the build with only the $feature feature"
    cargo check -q -p berth --no-default-features --features "$feature" || status=1
  done
  echo "testing the build without extensions"
  timeout 1800 cargo test -p berth-server -p berth --no-default-features --lib --bins --tests 2>&1 \
    | tee -a "$log" || status=$?
fi
# One closing line over every test binary (benches run last, in smoke mode,
# and print their own figures after the last runner summary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
[ "$deny_status" -eq 0 ] || { echo "cargo deny: the dependency tree breaks deny.toml"; status=1; }
exit "$status"
