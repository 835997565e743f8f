"""ESP SAs as JSON-ready dicts: how the lab hands keys to its ESP worker processes.

The algorithms travel as EspSa.algorithms writes them ("aes128-sha256", "aes128gcm16-esn") and are
looked up in the cipher and integrity tables directly: the worker then never imports the proposal
parser, which brings in Diffie-Hellman and GMP (a tenth of a second of its start-up, and so of the
time to a run's first ping reply).
"""

from __future__ import annotations

from ikelab.crypto.cipher import CIPHERS
from ikelab.crypto.integrity import INTEGRITY
from ikelab.esp.sa import EspSa

_CIPHERS = {c.name: c for c in CIPHERS.values()}
_INTEGRITY = {i.name: i for i in INTEGRITY.values()}


def esp_sa_to_dict(sa: EspSa) -> dict:
    return {
        "spi": sa.spi.hex(),
        "src": sa.src,
        "dst": sa.dst,
        "algorithms": sa.algorithms,
        "encryption_key": sa.encryption_key.hex(),
        "integrity_key": sa.integrity_key.hex(),
        "encap": list(sa.encap) if sa.encap else None,
    }


def esp_sa_from_dict(d: dict) -> EspSa:
    """The EspSa of esp_sa_to_dict; ValueError for algorithms it cannot have written."""
    words = d["algorithms"].split("-")
    esn = words[-1] == "esn"
    if esn:
        words.pop()
    cipher = _CIPHERS.get(words[0])
    integrity = _INTEGRITY.get(words[1]) if len(words) == 2 else None
    if cipher is None or len(words) > 2 or (len(words) == 2) != (integrity is not None):
        raise ValueError(f"unknown ESP algorithms {d['algorithms']!r}")
    return EspSa(
        spi=bytes.fromhex(d["spi"]),
        src=d["src"],
        dst=d["dst"],
        cipher=cipher,
        integrity=integrity,
        encryption_key=bytes.fromhex(d["encryption_key"]),
        integrity_key=bytes.fromhex(d["integrity_key"]),
        esn=esn,
        encap=tuple(d["encap"]) if d.get("encap") else None,
    )
