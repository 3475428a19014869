#!/usr/bin/env bash
# `make stack-test`: builds the images into a private podman storage in a folder of its own under .cache/stack/,
# runs tests/test_stack_*.py against a real container engine, then removes every container, volume, network and
# image it made with that folder, whether the tests passed or not, and prints what is left behind (0).
# Usage: tools/stack/run.sh PYTHON [pytest arguments...]
set -euo pipefail
python=${1:?usage: run.sh PYTHON [pytest args]}
shift
cd "$(dirname "$0")/../.."
started=$(date +%s)
mkdir -p .cache/stack
run=$(mktemp -d "$PWD/.cache/stack/run-XXXXXX")
mkdir -p "$run/networks" "$run/tmp"
sed "s|@RUN@|$run|g" tools/stack/containers.conf >"$run/containers.conf"
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/root"\nrunroot = "%s/state"\n' "$run" "$run" >"$run/storage.conf"
export CONTAINERS_CONF=$run/containers.conf CONTAINERS_STORAGE_CONF=$run/storage.conf
export STORAGE_DRIVER=overlay BUILDAH_ISOLATION=chroot
export OTEL_FAKEGPU_STACK_RUN=$run OTEL_FAKEGPU_STACK_PREFIX=ofg$(basename "$run" | tr -dc 'a-z0-9' | tail -c 7)
export OTEL_FAKEGPU_STACK_PYTHON=$python

cleanup() {
  local status=$?
  podman pod rm --all --force --time 0 >/dev/null 2>&1 || true
  podman rm --all --force --time 0 >/dev/null 2>&1 || true
  podman volume rm --all --force >/dev/null 2>&1 || true
  podman network ls --format '{{.Name}}' 2>/dev/null | grep -v '^podman$' | xargs -r podman network rm -f >/dev/null 2>&1 || true
  local left
  left=$(( $(podman ps -aq | wc -l) + $(podman volume ls -q | wc -l) + $(podman network ls -q | grep -vc '^podman$' || true) ))
  podman rmi --all --force >/dev/null 2>&1 || true
  buildah rm --all >/dev/null 2>&1 || true
  # Storage mounts are gone with the containers; unmount anything left before removing the folder.
  grep -o "$run[^ ]*" /proc/mounts | sort -r | xargs -r umount -l 2>/dev/null || true
  rm -rf "$run"
  local bytes=0
  [ ! -e "$run" ] || bytes=$(du -sb "$run" | cut -f1)
  echo "stack: left behind: $left containers/volumes/networks, $bytes bytes of the run's storage; total $(( $(date +%s) - started )) s"
  if [ "$left" -ne 0 ] || [ "$bytes" -ne 0 ]; then status=1; fi
  exit "$status"
}
trap cleanup EXIT INT TERM

t0=$(date +%s)
bash tools/image-build.sh localhost/otel-fakegpu:0.1.0 | sed 's/^/stack: /'
bash tools/stack/build-peers-image.sh localhost/otel-fakegpu-peers:local "$python" | sed 's/^/stack: /'
echo "stack: images built in $(( $(date +%s) - t0 )) s"
[ $# -gt 0 ] || set -- tests/test_stack_image.py tests/test_stack_compose.py tests/test_stack_kube.py
"$(dirname "$python")/pytest" -q -s -p no:cacheprovider "$@"
