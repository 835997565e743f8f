"""IKEv2 pseudorandom functions (HMAC, RFC 4868 §2.1.2) and prf+ (RFC 7296 §2.13)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives import hashes, hmac

from ikelab.crypto.errors import UnknownAlgorithm

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

MAX_PRF_PLUS_BLOCKS = 255  # the counter octet wraps after 0xff (RFC 7296 §2.13)


def hmac_digest(hash_name: str, key: bytes, data: bytes) -> bytes:
    """HMAC with the named hash ("sha1", "sha256", ...), untruncated."""
    mac = _keyed(hash_name, key).copy()
    mac.update(data)
    return mac.finalize()


@lru_cache(maxsize=64)
def _keyed(hash_name: str, key: bytes) -> hmac.HMAC:
    """An HMAC with the key already processed, copied for each message: copying costs less than half
    of a new one, and a handshake uses its keys several times in a row (the blocks of prf+, AUTH,
    the ICV of a message that one peer computes and the other checks)."""
    return hmac.HMAC(key, _HASHES[hash_name]())


@dataclass(frozen=True)
class Prf:
    number: int  # IANA Transform Type 2 ID
    name: str  # strongSwan keyword
    description: str
    output_length: int  # bytes

    def __call__(self, key: bytes, data: bytes) -> bytes:
        return hmac_digest(self.name.removeprefix("prf"), key, data)


@dataclass(frozen=True)
class PrfPlusBlock:
    index: int  # i, 1-based
    input: bytes  # T(i-1) | seed | i  (T(0) is empty)
    output: bytes  # T(i)


@dataclass(frozen=True)
class PrfPlusResult:
    output: bytes  # the first `length` bytes of T1 | T2 | ...
    blocks: tuple[PrfPlusBlock, ...]


def prf_plus(prf: Prf, key: bytes, seed: bytes, length: int) -> PrfPlusResult:
    """prf+(K, S) = T1 | T2 | ... with Ti = prf(K, T(i-1) | S | i), cut to length bytes."""
    if length < 0:
        raise ValueError(f"prf+ length must not be negative, got {length}")
    count = -(-length // prf.output_length)  # ceiling division
    if count > MAX_PRF_PLUS_BLOCKS:
        raise ValueError(
            f"prf+ with {prf.name} yields at most "
            f"{MAX_PRF_PLUS_BLOCKS * prf.output_length} bytes; {length} requested"
        )
    blocks: list[PrfPlusBlock] = []
    previous = b""
    for index in range(1, count + 1):
        block_input = previous + seed + bytes([index])
        previous = prf(key, block_input)
        blocks.append(PrfPlusBlock(index, block_input, previous))
    output = b"".join(block.output for block in blocks)[:length]
    return PrfPlusResult(output, tuple(blocks))


PRFS: dict[int, Prf] = {
    p.number: p
    for p in (
        Prf(2, "prfsha1", "PRF_HMAC_SHA1", 20),
        Prf(5, "prfsha256", "PRF_HMAC_SHA2_256", 32),
        Prf(6, "prfsha384", "PRF_HMAC_SHA2_384", 48),
        Prf(7, "prfsha512", "PRF_HMAC_SHA2_512", 64),
    )
}


def prf(number: int) -> Prf:
    try:
        return PRFS[number]
    except KeyError:
        raise UnknownAlgorithm("PRF", number, PRFS) from None
