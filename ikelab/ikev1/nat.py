"""NAT discovery for IKEv1 (RFC 3947 §3.2): each side hashes the addresses it believes are in use."""

from __future__ import annotations

import ipaddress

from ikelab.crypto.ikev1_kdf import digest
from ikelab.crypto.prf import Prf
from ikelab.effects import Endpoint


def nat_d(prf: Prf, cky_i: bytes, cky_r: bytes, endpoint: Endpoint) -> bytes:
    """HASH(CKY-I | CKY-R | IP | Port) with the negotiated hash (unkeyed)."""
    return digest(prf, cky_i + cky_r + ipaddress.ip_address(endpoint.host).packed + endpoint.port.to_bytes(2, "big"))
