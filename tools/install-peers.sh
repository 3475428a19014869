#!/usr/bin/env bash
# Installs the real peers the integration tests run against into a project folder, without installing
# any service: Prometheus + promtool (Debian bookworm's `prometheus`) and VictoriaMetrics (Debian trixie's
# `victoria-metrics`; bookworm's is too old for OTLP), and the benchmark's load generator wrk (Debian's C HTTP
# client) with its LuaJIT. Package lists for trixie are kept in a private apt state folder so the system's
# sources are not changed.
set -euo pipefail
dest=${1:-.peers}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unpack() {  # unpack PACKAGE FOLDER [apt options...]: add the package's files to DEST/FOLDER
  local package=$1 folder=$2
  shift 2
  (cd "$work" && apt-get "$@" download "$package") || return 1
  dpkg -x "$work"/"${package}"_*.deb "$dest/$folder"
  rm -f "$work"/"${package}"_*.deb
}

extract() {  # extract PACKAGE FOLDER [apt options...]: DEST/FOLDER holds that package's files only
  rm -rf "${dest:?}/$2"
  unpack "$@"
}

if [ ! -x "$dest/prometheus/usr/bin/prometheus" ]; then
  # apt-get download needs package lists; refresh them once if the first try finds nothing.
  if ! (cd "$work" && apt-get download prometheus >/dev/null 2>&1); then
    apt-get update -qq
  fi
  rm -f "$work"/prometheus_*.deb
  extract prometheus prometheus
fi
"$dest/prometheus/usr/bin/prometheus" --version 2>&1 | head -n 1

if [ ! -x "$dest/victoria-metrics/usr/bin/victoria-metrics" ]; then
  apt_state="$dest/.apt-trixie"
  mkdir -p "$apt_state/lists/partial"
  # The same mirror the system already uses, asked for the trixie suite.
  mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n 1)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  [ -n "$mirror" ] || { echo "install-peers: no Debian mirror found in apt's sources" >&2; exit 1; }
  echo "deb $mirror trixie main" > "$apt_state/sources.list"
  opts=(-o "Dir::Etc::SourceList=$apt_state/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$apt_state/lists" -o "APT::Get::List-Cleanup=0")
  apt-get -qq "${opts[@]}" update
  extract victoria-metrics victoria-metrics "${opts[@]}"
fi
echo "victoria-metrics: $(ls "$dest/victoria-metrics/usr/bin/victoria-metrics")"

if [ ! -x "$dest/wrk/usr/bin/wrk" ]; then
  # Run as DEST/wrk/usr/bin/wrk with LD_LIBRARY_PATH=DEST/wrk/lib (its LuaJIT, under two names across releases).
  if ! (cd "$work" && apt-get download wrk >/dev/null 2>&1); then
    apt-get update -qq
  fi
  rm -f "$work"/wrk_*.deb
  extract wrk wrk
  unpack libluajit-5.1-2 wrk || unpack libluajit2-5.1-2 wrk
  mkdir -p "$dest/wrk/lib"
  find "$dest/wrk/usr/lib" -name 'libluajit*.so*' -exec ln -sf {} "$dest/wrk/lib/" \;
fi
LD_LIBRARY_PATH="$dest/wrk/lib" "$dest/wrk/usr/bin/wrk" --version 2>&1 | head -n 1 || true
