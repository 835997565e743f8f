"""IKE/ESP integrity algorithms: truncated HMAC (RFC 2404, RFC 4868)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.constant_time import bytes_eq

from ikelab.crypto.errors import UnknownAlgorithm
from ikelab.crypto.prf import hmac_digest


@dataclass(frozen=True)
class Integrity:
    number: int  # IANA Transform Type 3 ID
    name: str  # strongSwan keyword, also the hash name
    description: str
    key_length: int  # bytes
    icv_length: int  # bytes: the HMAC output is truncated to this

    def compute(self, key: bytes, data: bytes) -> bytes:
        if len(key) != self.key_length:
            raise ValueError(
                f"{self.description} needs a {self.key_length}-byte key, got {len(key)}"
            )
        return hmac_digest(self.name, key, data)[: self.icv_length]

    def verify(self, key: bytes, data: bytes, icv: bytes) -> bool:
        return bytes_eq(self.compute(key, data), icv)  # constant time: no timing oracle


INTEGRITY: dict[int, Integrity] = {
    i.number: i
    for i in (
        Integrity(2, "sha1", "AUTH_HMAC_SHA1_96", 20, 12),
        Integrity(12, "sha256", "AUTH_HMAC_SHA2_256_128", 32, 16),
        Integrity(13, "sha384", "AUTH_HMAC_SHA2_384_192", 48, 24),
        Integrity(14, "sha512", "AUTH_HMAC_SHA2_512_256", 64, 32),
    )
}


def integrity(number: int) -> Integrity:
    try:
        return INTEGRITY[number]
    except KeyError:
        raise UnknownAlgorithm("integrity algorithm", number, INTEGRITY) from None


class KeyedIntegrity:
    """An integrity algorithm bound to one key, for per-packet use (ESP): the HMAC key is
    processed once and copied per message, rather than rebuilt as `Integrity.compute` does."""

    def __init__(self, integrity: Integrity, key: bytes) -> None:
        if len(key) != integrity.key_length:
            raise ValueError(
                f"{integrity.description} needs a {integrity.key_length}-byte key, got {len(key)}"
            )
        self.integrity = integrity
        self.icv_length = integrity.icv_length
        # The strongSwan keywords are the hash class names: sha256 -> hashes.SHA256.
        self._keyed = hmac.HMAC(key, getattr(hashes, integrity.name.upper())())
        # For loops over many packets (the ESP datapath): template().update(data); finalize();
        # the ICV is the first icv_length bytes. A bound C function: no Python frame per packet.
        self.template = self._keyed.copy

    def compute(self, data: bytes) -> bytes:
        """The truncated ICV; data may be any bytes-like object (a memoryview saves a copy)."""
        mac = self._keyed.copy()
        mac.update(data)
        return mac.finalize()[: self.icv_length]

    def verify(self, data: bytes, icv: bytes) -> bool:
        return bytes_eq(self.compute(data), icv)  # constant time: no timing oracle
