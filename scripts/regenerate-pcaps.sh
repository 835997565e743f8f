#!/usr/bin/env bash
# Regenerates the committed captures in pcaps/ from fixed seeds; tests/test_capture.py checks that
# the result is byte-identical to what is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
IKELAB=${IKELAB:-.venv/bin/ikelab}
"$IKELAB" run ikev2-psk --headless --seed 1 --transport memory --pcap pcaps/ikev2-psk.pcapng >/dev/null
