#!/usr/bin/env bash
# Lays out the build context of the repository's Containerfile, an image
# built `FROM scratch` (no base image to pull):
#
#   deploy/image-context.sh BINARY OUTDIR
#   buildah bud --format docker -f Containerfile -t berth OUTDIR
#
# OUTDIR/rootfs/ gets the binary (/usr/bin/berth), every shared library
# `ldd` names for it (at the same paths), the system's CA certificates when
# there are some (for S3 and upstream registries over HTTPS), an
# /etc/passwd and /etc/group with the non-root user `berth` (65532), the
# default config (/etc/berth/config.json, from deploy/config.json), the
# shell completions and man pages the binary writes, and an empty /tmp;
# OUTDIR/data/ is the volume's initial (empty) directory.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 BINARY OUTDIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
binary=$1
out=$2
root=$out/rootfs
rm -rf "$root" "$out/data"
mkdir -p "$root/usr/bin" "$root/etc/berth" "$root/tmp" "$out/data"
chmod 1777 "$root/tmp"
cp "$binary" "$root/usr/bin/berth"

# Every library the dynamic linker would load (ldd prints the loader itself
# as a bare path, the others after "=>"; linux-vdso has no file).
if ldd "$binary" >/dev/null 2>&1; then
  ldd "$binary" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
fi
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$root/etc/ssl/certs"
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
fi

cat > "$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
berth:x:65532:65532:berth:/var/lib/berth:/sbin/nologin
EOF
cat > "$root/etc/group" <<'EOF'
root:x:0:
berth:x:65532:
EOF
cp "$here/config.json" "$root/etc/berth/config.json"

share=$root/usr/share
mkdir -p "$share/bash-completion/completions" "$share/zsh/site-functions" \
  "$share/fish/vendor_completions.d"
"$binary" completions bash > "$share/bash-completion/completions/berth"
"$binary" completions zsh > "$share/zsh/site-functions/_berth"
"$binary" completions fish > "$share/fish/vendor_completions.d/berth.fish"
"$binary" man "$share/man/man1"
