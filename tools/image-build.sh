#!/usr/bin/env bash
# Builds the Dockerfile without a Docker engine: Debian's buildah (chroot isolation, no daemon) on a base image
# made from Debian packages by mmdebstrap (bookworm + python3 + python3-venv), passed as BASE_IMAGE.
# The base tarball is cached in .cache/image/. What pip inside the build needs to reach the package index (the
# host's CA bundle and pip configuration) is mounted read-only for the build only, never written into the image.
# Usage: tools/image-build.sh IMAGE_NAME   (prints size and layer figures at the end)
set -euo pipefail
image=${1:-localhost/otel-fakegpu:test}
cd "$(dirname "$0")/.."
bash tools/install-image-tools.sh
cache=.cache/image
base=localhost/otel-fakegpu-base:bookworm
mkdir -p "$cache"
export BUILDAH_ISOLATION=chroot STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}

if [ ! -s "$cache/bookworm-python3.tar" ]; then
  mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n 1)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv bookworm "$cache/partial.tar" ${mirror:+"$mirror"}
  mv "$cache/partial.tar" "$cache/bookworm-python3.tar"
fi
if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  ctr=$(buildah from scratch)
  buildah add --quiet "$ctr" "$cache/bookworm-python3.tar" /
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  buildah commit --quiet --rm "$ctr" "$base" >/dev/null
fi

# The site-wide pip configuration (index, certificate), or else the user's, as the build's /etc/pip.conf.
mounts=(-v /etc/ssl/certs:/etc/ssl/certs:ro)
pip_conf=${PIP_CONFIG_FILE:-/etc/pip.conf}
[ -f "$pip_conf" ] || pip_conf=$HOME/.config/pip/pip.conf
if [ -f "$pip_conf" ]; then
  mounts+=(-v "$pip_conf:/etc/pip.conf:ro")
fi

buildah bud --quiet --isolation chroot --format docker --layers \
  --build-arg BASE_IMAGE="$base" "${mounts[@]}" -t "$image" . >/dev/null

size() { buildah images --noheading --format '{{.Size}}' "$1" | head -n 1; }
layers() { buildah inspect --type image --format '{{len .Docker.RootFS.DiffIDs}}' "$1"; }
echo "image $image: $(size "$image"), $(layers "$image") layers; base $base: $(size "$base"), $(layers "$base") layer"
