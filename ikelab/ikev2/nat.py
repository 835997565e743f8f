"""NAT detection (RFC 7296 §2.23): each side hashes the addresses it believes are in use."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from cryptography.hazmat.primitives import hashes

from ikelab.effects import Endpoint


def nat_hash(spi_i: bytes, spi_r: bytes, endpoint: Endpoint) -> bytes:
    """SHA-1(SPIi | SPIr | IP | port); SPIr is zero in the IKE_SA_INIT request."""
    digest = _SHA1.copy()
    digest.update(spi_i + spi_r + _packed(endpoint.host, endpoint.port))
    return digest.finalize()


_SHA1 = hashes.Hash(hashes.SHA1())  # copied for each hash: cheaper than a new Hash and SHA1 (never finalized)


@lru_cache(maxsize=256)
def _packed(host: str, port: int) -> bytes:
    """IP | port as the hash takes them, made once per endpoint (a handshake hashes eight times)."""
    return ipaddress.ip_address(host).packed + port.to_bytes(2, "big")
