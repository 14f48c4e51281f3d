#!/usr/bin/env bash
# Make sure the system binaries the suite or the demo uses exist; install them with apt-get
# when missing and running as root, otherwise stop with a message saying how to install them.
# Usage: ensure-system-deps.sh BINARY:DEBIAN_PACKAGE ...
set -euo pipefail
missing_pkgs=()
missing_bins=()
for pair in "$@"; do
  bin=${pair%%:*}
  pkg=${pair#*:}
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
    missing_bins+=("$bin")
    missing_pkgs+=("$pkg")
  fi
done
[ ${#missing_pkgs[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing system binaries: ${missing_bins[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing_pkgs[*]}" >&2
  exit 1
fi
mapfile -t missing_pkgs < <(printf '%s\n' "${missing_pkgs[@]}" | sort -u)
echo "installing ${missing_pkgs[*]} (for ${missing_bins[*]}) with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
# Debian starts the packaged daemons; the suite starts its own instances on free ports.
for svc in mosquitto snmpd; do
  if [[ " ${missing_pkgs[*]} " == *" $svc "* ]]; then
    (service "$svc" stop >/dev/null 2>&1 || true)
  fi
done
