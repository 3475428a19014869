#!/usr/bin/env bash
# The benchmark's load generator: Debian's wrk (a C HTTP client) and its LuaJIT, unpacked into DEST
# (default .peers) without installing anything system-wide. Idempotent: does nothing when already there.
# Usage: tools/install-bench.sh [DEST]; then run DEST/wrk/usr/bin/wrk with LD_LIBRARY_PATH=DEST/wrk/lib.
set -euo pipefail
dest=${1:-.peers}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
if [ -x "$dest/wrk/usr/bin/wrk" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get download wrk >/dev/null 2>&1); then
  apt-get update -qq
  (cd "$work" && apt-get download wrk)
fi
(cd "$work" && (apt-get download libluajit-5.1-2 || apt-get download libluajit2-5.1-2))
rm -rf "${dest:?}/wrk"
for deb in "$work"/*.deb; do
  dpkg -x "$deb" "$dest/wrk"
done
mkdir -p "$dest/wrk/lib"
find "$dest/wrk/usr/lib" -name 'libluajit*.so*' -exec ln -sf {} "$dest/wrk/lib/" \;
LD_LIBRARY_PATH="$dest/wrk/lib" "$dest/wrk/usr/bin/wrk" --version 2>&1 | head -n 1 || true
