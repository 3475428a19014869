#!/usr/bin/env bash
# Installs what `make stack-test` needs to run the image and the compose demo in a real container engine:
# Debian's podman with runc (crun refuses the test machines' hybrid cgroup hierarchy) and catatonit (the pause
# process of a pod), buildah and mmdebstrap (tools/install-image-tools.sh), and podman-compose from PyPI into
# the given virtual environment. Idempotent; needs root for apt-get. Nothing under /etc is configured: the
# tests point podman at tools/stack/containers.conf through CONTAINERS_CONF and at a private storage root.
# Usage: tools/install-stack-tools.sh VENV_PYTHON
set -euo pipefail
python=${1:?usage: install-stack-tools.sh VENV_PYTHON}
cd "$(dirname "$0")/.."
bash tools/install-image-tools.sh
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v catatonit >/dev/null 2>&1 || missing+=(catatonit)
# Service names resolve on a compose network through the CNI dnsname plugin (it runs dnsmasq).
[ -x /usr/lib/cni/dnsname ] || missing+=(golang-github-containernetworking-plugin-dnsname)
if [ ${#missing[@]} -gt 0 ]; then
  apt=(apt-get -o DPkg::Lock::Timeout=600 -qq)
  export DEBIAN_FRONTEND=noninteractive
  if ! "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    "${apt[@]}" update
    "${apt[@]}" install -y --no-install-recommends "${missing[@]}"
  fi
fi
"$python" -c 'import podman_compose' 2>/dev/null || "$python" -m pip install --quiet 'podman-compose==1.6.0'
echo "$(podman --version), $(runc --version | head -n 1), podman-compose $("$python" -m pip show podman-compose | awk '/^Version/ {print $2}')"
