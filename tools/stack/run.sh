#!/usr/bin/env bash
# `make stack-test`: builds the images into a private podman storage in a folder of its own under .cache/stack/,
# runs tests/test_stack_*.py against a real container engine, then removes every container, pod, volume,
# network and image it made with that folder, whether the tests passed or not. What the engine writes outside
# that folder (CNI's address leases, the image blob cache) is removed too when the run created it; the last
# line says what is left behind (0) and the run's total time.
# Usage: tools/stack/run.sh PYTHON [pytest arguments...]
set -euo pipefail
python=${1:?usage: run.sh PYTHON [pytest args]}
shift
cd "$(dirname "$0")/../.."
started=$(date +%s)

engine_objects() {  # containers, pods, volumes, networks but podman's own default, images
  { podman ps -aq; podman pod ls -q; podman volume ls -q; podman images -q
    podman network ls --format '{{.Name}}' | grep -v '^podman$'; } 2>/dev/null | wc -l
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  podman pod rm --all --force --time 0 >/dev/null 2>&1
  podman rm --all --force --time 0 >/dev/null 2>&1
  # What the tests did not remove themselves (a killed or failed run), swept here.
  local swept=$(( $(podman volume ls -q | wc -l) + $(podman network ls --format '{{.Name}}' | grep -vc '^podman$') ))
  podman volume rm --all --force >/dev/null 2>&1
  podman network ls --format '{{.Name}}' | grep -v '^podman$' | xargs -r podman network rm -f >/dev/null 2>&1
  podman rmi --all --force >/dev/null 2>&1
  buildah rm --all >/dev/null 2>&1
  local objects
  objects=$(engine_objects)
  grep -o "$run[^ ]*" /proc/mounts | sort -r | xargs -r umount -l 2>/dev/null
  rm -rf "$run"
  # New entries outside the folder: files first, then the folders that became empty (deepest first).
  comm -13 "$before" <(listing) | grep -v '^/etc/' | while read -r path; do [ -d "$path" ] || rm -f "$path"; done
  comm -13 "$before" <(listing) | grep -v '^/etc/' | sort -r | while read -r path; do rmdir "$path" 2>/dev/null; done
  local new_files bytes=0 rules
  new_files=$(comm -13 "$before" <(listing))
  [ -z "$new_files" ] || bytes=$(echo "$new_files" | xargs -r du -cbs 2>/dev/null | tail -n 1 | cut -f1)
  [ ! -e "$run" ] || bytes=$(( bytes + $(du -sb "$run" | cut -f1) ))
  # The bridge of podman's default network outlives its last container (CNI never deletes it).
  comm -13 "$before.bridges" <(bridges) | xargs -r -n 1 ip link delete 2>/dev/null
  objects=$(( objects + $(comm -13 "$before.bridges" <(bridges) | wc -l) ))
  rules=$(firewall | comm -13 "$before.iptables" - | wc -l)
  rm -f "$before" "$before.bridges" "$before.iptables"
  echo "stack: cleanup swept $swept volumes/networks the tests had not removed; left behind: $objects containers/pods/volumes/networks/images/bridges, $bytes bytes of files, $rules firewall rules; whole run $(( $(date +%s) - started )) s"
  [ -z "$new_files" ] || echo "stack: left behind: $new_files"
  if [ "$objects" -ne 0 ] || [ "$bytes" -ne 0 ] || [ "$rules" -ne 0 ]; then status=1; fi
  exit "$status"
}

# Where podman, buildah and the CNI plugins write outside the run's folder, and what they add to the host's
# network (bridges, firewall rules): noted now, so that what the run adds can be removed and counted.
outside=(/var/lib/cni /var/lib/containers /run/containers /etc/cni /etc/containers)
listing() { { find "${outside[@]}" 2>/dev/null || true; } | sort; }
bridges() { ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep '^cni-podman' | sort || true; }
firewall() { { iptables-save 2>/dev/null || true; } | grep '^-A' | sort || true; }
before=$(mktemp)
listing >"$before"
bridges >"$before.bridges"
firewall >"$before.iptables"
mkdir -p .cache/stack
run=$(mktemp -d "$PWD/.cache/stack/run-XXXXXX")
trap cleanup EXIT INT TERM
mkdir -p "$run/networks" "$run/tmp"
sed "s|@RUN@|$run|g" tools/stack/containers.conf >"$run/containers.conf"
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/root"\nrunroot = "%s/state"\n' "$run" "$run" >"$run/storage.conf"
export CONTAINERS_CONF=$run/containers.conf CONTAINERS_STORAGE_CONF=$run/storage.conf
export STORAGE_DRIVER=overlay BUILDAH_ISOLATION=chroot
export OTEL_FAKEGPU_STACK_RUN=$run OTEL_FAKEGPU_STACK_PREFIX=ofg$(basename "$run" | tr -dc 'a-z0-9' | tail -c 7)
export OTEL_FAKEGPU_STACK_PYTHON=$python

t0=$(date +%s)
bash tools/image-build.sh localhost/otel-fakegpu:0.1.0 | sed 's/^/stack: /'
bash tools/stack/build-peers-image.sh localhost/otel-fakegpu-peers:local "$python" | sed 's/^/stack: /'
echo "stack: images built in $(( $(date +%s) - t0 )) s"
[ $# -gt 0 ] || set -- tests/test_stack_image.py tests/test_stack_compose.py tests/test_stack_kube.py
"$(dirname "$python")/pytest" -q -s -p no:cacheprovider "$@"
