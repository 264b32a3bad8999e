#!/usr/bin/env bash
# Set up everything rkdeploy and its board lab need on a Debian 12 machine (run as root):
# the apt packages of the lab, and a virtualenv in .venv with rkdeploy installed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  openssh-server openssh-client          # boards' sshd (native variant) and the ssh client
  qemu-user-static binfmt-support        # aarch64 and (RV1106 profile) 32-bit arm userlands
  debootstrap                            # the boards' Debian arm64 root filesystem
  gcc gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf   # stand-in librknnrt.so / rknn_server / uClibc loader
  dpkg apt                                # the RV1106 rootfs: armhf busybox-static + dropbear-bin via apt-get download, dpkg-deb -x
  iproute2 iptables psmisc procps util-linux zstd     # namespaces, faults, teardown
  openssl bsdutils                        # lab password hashes; `script` for terminal tests
  python3-venv
  chromium                                # headless browser for the fleet report's browser test
)
if [ "$(id -u)" = 0 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
  fi
else
  echo "setup: not root: skipping apt packages (the board lab needs root anyway)" >&2
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip > /dev/null
# compat: a plain path entry, not an import hook that every start-up of the venv's Python would load
.venv/bin/python -m pip install -q -e '.[test]' --config-settings editable_mode=compat
# Bytecode for rkdeploy itself, as pip would write for an installed package: with PYTHONDONTWRITEBYTECODE set
# (common in containers) every `rkdeploy` start would otherwise compile the whole package again (~50 ms).
.venv/bin/python -m compileall -q rkdeploy > /dev/null
echo "setup: ready (.venv/bin/inv, .venv/bin/rkdeploy)"
