"""ESP SAs as JSON-ready dicts: how the lab hands keys to its ESP worker processes."""

from __future__ import annotations

from ikelab.crypto.names import parse_proposal
from ikelab.esp.sa import EspSa


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
    spec = parse_proposal(d["algorithms"], ike=False)
    return EspSa(
        spi=bytes.fromhex(d["spi"]),
        src=d["src"],
        dst=d["dst"],
        cipher=spec.encryption[0],
        integrity=spec.integrity[0] if spec.integrity else None,
        encryption_key=bytes.fromhex(d["encryption_key"]),
        integrity_key=bytes.fromhex(d["integrity_key"]),
        esn=spec.esn[0] if spec.esn else False,
        encap=tuple(d["encap"]) if d.get("encap") else None,
    )
