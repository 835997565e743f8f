"""The ESP SAs the lab hands its workers survive the trip as JSON, for every algorithm ikelab has."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ikelab.crypto.cipher import CIPHERS
from ikelab.crypto.integrity import INTEGRITY
from ikelab.esp.sa import EspSa
from ikelab.lab.sa_messages import esp_sa_from_dict, esp_sa_to_dict


def _every_sa():
    for cipher in CIPHERS.values():
        for integrity in [None] if cipher.is_aead else INTEGRITY.values():
            for esn, encap in ((False, None), (True, (4500, 4500))):
                yield EspSa(b"\x01\x02\x03\x04", "192.0.2.1", "192.0.2.2", cipher, integrity,
                            bytes(range(cipher.key_length)), bytes(integrity.key_length) if integrity else b"", esn, encap)


def test_round_trip_through_json():
    for sa in _every_sa():
        assert esp_sa_from_dict(json.loads(json.dumps(esp_sa_to_dict(sa)))) == sa


@pytest.mark.parametrize("algorithms", ["aes128-sha256-sha1", "des-sha1", "aes128-md4", "", "aes128-"])
def test_unknown_algorithms_are_a_value_error(algorithms):
    message = dict(esp_sa_to_dict(next(_every_sa())), algorithms=algorithms)
    with pytest.raises(ValueError, match="unknown ESP algorithms"):
        esp_sa_from_dict(message)


def test_the_worker_does_not_import_diffie_hellman():
    """Its start-up is on the way to a run's first ping reply: no DH, GMP or proposal parser."""
    code = "import sys, ikelab.lab.esp_worker; print(sorted(m for m in sys.modules if m in ('ikelab.crypto.dh', 'gmpy2', 'ikelab.crypto.names')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
