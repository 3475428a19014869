#!/usr/bin/env bash
# Builds the image that stands in for the compose demo's images this machine cannot pull: one Debian bookworm
# rootfs made by mmdebstrap with Prometheus, Alertmanager and wget (the compose healthchecks call wget), plus
# VictoriaMetrics from Debian trixie's package (.peers, tools/install-peers.sh) in Mimir's place and rotel, an
# OpenTelemetry collector from PyPI, in the Collector's and Tempo's places. Each service picks its program
# with the override file's `entrypoint` (deploy/compose/local.yaml). The rootfs tarball and the rotel wheel are
# cached in .cache/stack/; the image goes to whatever storage CONTAINERS_STORAGE_CONF names.
# Usage: tools/stack/build-peers-image.sh IMAGE PYTHON
set -euo pipefail
image=${1:?usage: build-peers-image.sh IMAGE PYTHON}
python=${2:?usage: build-peers-image.sh IMAGE PYTHON}
cd "$(dirname "$0")/../.."
cache=.cache/stack
mkdir -p "$cache/wheels"
rootfs=$cache/bookworm-peers.tar
if [ ! -s "$rootfs" ]; then
  mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n 1)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  # Prometheus's web UI time-zone tables, documentation and the command-line tools are left out (300 MB).
  mmdebstrap --quiet --variant=minbase --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/javascript/moment-timezone/data/unpacked/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/bin/promtool' --dpkgopt='path-exclude=/usr/bin/amtool' \
    --include=python3,libpython3.11,wget,ca-certificates,prometheus,prometheus-alertmanager \
    bookworm "$cache/partial-peers.tar" ${mirror:+"$mirror"}
  mv "$cache/partial-peers.tar" "$rootfs"
fi
vm=.peers/victoria-metrics/usr/bin/victoria-metrics
[ -x "$vm" ] || bash tools/install-peers.sh .peers >/dev/null
# rotel's wheel carries the collector as one binary (it links the rootfs's libpython3.11 and wants its CA store).
wheel=$(ls "$cache"/wheels/rotel-0.0.1a15-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
  "$python" -m pip download --quiet --no-deps --only-binary :all: --python-version 3.11 \
    --platform manylinux_2_34_x86_64 'rotel==0.0.1a15' -d "$cache/wheels"
  wheel=$(ls "$cache"/wheels/rotel-0.0.1a15-*.whl | head -n 1)
fi
"$python" -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("rotel/rotel-agent"))' \
  "$wheel" "$cache/rotel-agent"
chmod 0755 "$cache/rotel-agent"

ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah add --quiet "$ctr" "$rootfs" /
buildah add --quiet --chmod 0755 "$ctr" "$vm" /usr/local/bin/victoria-metrics
buildah add --quiet --chmod 0755 "$ctr" "$cache/rotel-agent" /usr/local/bin/rotel-agent
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
buildah commit --quiet "$ctr" "$image" >/dev/null
echo "image $image: $(buildah images --noheading --format '{{.Size}}' "$image" | head -n 1)"
