#!/usr/bin/env bash
# Idempotent setup on a fresh Debian machine: system packages the tests' real peers need
# (when missing and we are root), then a virtualenv with the suite and all extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mosquitto mosquitto-clients socat libzbar0 pcscd vsmartcard-vpcd
              python3-virtualsmartcard libpcsclite-dev swig chromium systemd
              libusb-1.0-0 fonts-dejavu-core wrk
              gcc make mosquitto-dev libmosquitto-dev  # mosquitto/share-guard plugin
              nats-server  # tests/cluster: the clustered broker (docs/scale.md)
              polkitd)  # tests/packaging/test_deb_systemd.py: the update guard's polkit rule
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "warning: missing Debian packages (run as root to install): ${missing[*]}" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install -q -e ".[all]"

# axe-core, the accessibility checker the browser tests run inside every page
# (tests/a11y.py); npm comes with Node.js, from Debian when missing
if ! command -v npm >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [[ ! -f .cache/npm/node_modules/axe-core/axe.min.js ]]; then
  npm install --prefix .cache/npm --no-audit --no-fund --silent axe-core@4
fi
