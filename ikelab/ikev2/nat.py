"""NAT detection (RFC 7296 §2.23): each side hashes the addresses it believes are in use."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from cryptography.hazmat.primitives import hashes

from ikelab.effects import Endpoint


def nat_hash(spi_i: bytes, spi_r: bytes, endpoint: Endpoint) -> bytes:
    """SHA-1(SPIi | SPIr | IP | port); SPIr is zero in the IKE_SA_INIT request."""
    digest = _SHA1.copy()
    digest.update(spi_i + spi_r + _packed_host(endpoint.host) + endpoint.port.to_bytes(2, "big"))
    return digest.finalize()


_SHA1 = hashes.Hash(hashes.SHA1())  # copied for each hash: cheaper than a new Hash and SHA1 (never finalized)


@lru_cache(maxsize=256)
def _packed_host(host: str) -> bytes:
    """The address as the hash takes it, parsed once per host (a handshake hashes eight times). Per
    host, not per endpoint: over loopback every run's ports are new, its address is not."""
    return ipaddress.ip_address(host).packed
