#!/usr/bin/env bash
# Installs the real peers the integration tests run against, into a project folder (no system changes
# beyond apt's package lists): Prometheus + promtool from Debian bookworm's `prometheus` package.
set -euo pipefail
dest=${1:-.peers}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

if [ -x "$dest/prometheus/usr/bin/prometheus" ]; then
  echo "peers: prometheus already in $dest/prometheus"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# apt-get download needs package lists; refresh them once if the first try finds nothing.
if ! apt-get download prometheus >/dev/null 2>&1; then
  apt-get update -qq
  apt-get download prometheus
fi
deb=$(ls prometheus_*.deb)
rm -rf "$dest/prometheus"
dpkg -x "$deb" "$dest/prometheus"
"$dest/prometheus/usr/bin/prometheus" --version | head -n 1
