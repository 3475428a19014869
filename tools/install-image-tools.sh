#!/usr/bin/env bash
# Installs what `make image-test` needs to build and run the Dockerfile without a Docker engine: Debian's
# buildah (chroot isolation, no daemon) and mmdebstrap (a Debian base made from packages). Idempotent: does
# nothing when both are present. Needs root (apt-get); waits for another apt run instead of failing.
set -euo pipefail
missing=()
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
apt=(apt-get -o DPkg::Lock::Timeout=600 -qq)
export DEBIAN_FRONTEND=noninteractive
if ! "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  "${apt[@]}" update
  "${apt[@]}" install -y --no-install-recommends "${missing[@]}"
fi
# buildah's default configuration ships in containers-common; chroot isolation needs no other runtime.
command -v buildah >/dev/null && command -v mmdebstrap >/dev/null
