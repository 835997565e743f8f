"""What a datapath needs to know about a negotiated (or manually keyed) Child SA."""

from __future__ import annotations

from dataclasses import dataclass

from ikelab.crypto.cipher import Cipher
from ikelab.crypto.integrity import Integrity

# EspSa and ChildSa are plain dataclasses, not frozen ones: a frozen dataclass sets every field through
# object.__setattr__ (some 12k instructions an EspSa), and a handshake makes four EspSa and two ChildSa.
# Nothing changes them once made, and nothing hashes them (no set, dict key or cache holds one).


@dataclass
class EspSa:
    """One direction of ESP: packets from `src` to `dst` carrying `spi`."""

    spi: bytes  # 4 bytes, chosen by the receiving side
    src: str
    dst: str
    cipher: Cipher
    integrity: Integrity | None  # None for AEAD ciphers
    encryption_key: bytes  # for GCM this is key | 4-byte salt
    integrity_key: bytes = b""
    esn: bool = False
    encap: tuple[int, int] | None = None  # (source port, destination port) for ESP-in-UDP (RFC 3948)

    @property
    def algorithms(self) -> str:
        names = [self.cipher.name] + ([self.integrity.name] if self.integrity else [])
        return "-".join(names) + ("-esn" if self.esn else "")

    def describe(self) -> dict:
        return {
            "spi": self.spi.hex(),
            "src": self.src,
            "dst": self.dst,
            "cipher": self.cipher.description,
            "cipher_name": self.cipher.name,
            "integrity": self.integrity.description if self.integrity else None,
            "integrity_name": self.integrity.name if self.integrity else None,
            "encryption_key": self.encryption_key.hex(),
            "integrity_key": self.integrity_key.hex(),
            "encap": list(self.encap) if self.encap else None,
        }


@dataclass
class ChildSa:
    """A pair of ESP SAs in tunnel mode between two protected subnets."""

    name: str
    inbound: EspSa
    outbound: EspSa
    local_ts: tuple[str, ...]  # "198.51.100.0/24"
    remote_ts: tuple[str, ...]
    mode: str = "tunnel"
