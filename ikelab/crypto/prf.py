"""IKEv2 pseudorandom functions (HMAC, RFC 4868 §2.1.2) and prf+ (RFC 7296 §2.13)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from ikelab.crypto.errors import UnknownAlgorithm

# One instance per hash, shared by every HMAC made with it: they hold no state, and a handshake
# makes about twenty HMACs.
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}

MAX_PRF_PLUS_BLOCKS = 255  # the counter octet wraps after 0xff (RFC 7296 §2.13)


# No cache of keyed HMACs across calls: a peer uses most keys of a handshake once (SK_pi for its
# AUTH, SK_ai for one ICV, Ni | Nr for SKEYSEED), so a cache only ever paid off when one process
# played both peers, and it kept the keys of finished SAs in memory. prf+ keys once for its blocks.


def hmac_digest(hash_name: str, key: bytes, data: bytes) -> bytes:
    """HMAC with the named hash ("sha1", "sha256", ...), untruncated."""
    mac = hmac.HMAC(key, _HASHES[hash_name])
    mac.update(data)
    return mac.finalize()


@dataclass(frozen=True)
class Prf:
    number: int  # IANA Transform Type 2 ID
    name: str  # strongSwan keyword
    description: str
    output_length: int  # bytes
    hash: hashes.HashAlgorithm  # of the HMAC (a shared instance, see _HASHES)

    def __hash__(self) -> int:
        # The number alone (equal PRFs have equal numbers): a Prf keys the AUTH key cache, and the
        # generated hash of all five fields costs several times more.
        return self.number

    def __call__(self, key: bytes, data: bytes) -> bytes:
        mac = hmac.HMAC(key, self.hash)
        mac.update(data)
        return mac.finalize()

    def keyed(self, key: bytes) -> KeyedPrf:
        """prf(key, ·) keyed once, for a key that MACs more than one message."""
        return KeyedPrf(self, key)


class KeyedPrf:
    """prf(K, ·) for one key: each call copies an HMAC keyed at construction, which costs about a
    quarter of keying a new one. For keys used again and again, such as the PSK's AUTH key
    prf(Shared Secret, "Key Pad for IKEv2"), which MACs both AUTH payloads of every handshake."""

    __slots__ = ("_keyed",)

    def __init__(self, prf: Prf, key: bytes) -> None:
        self._keyed = hmac.HMAC(key, prf.hash)

    def __call__(self, data: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(data)
        return mac.finalize()


# Tuples rather than frozen dataclasses: a handshake makes about twenty of them, and a frozen
# dataclass costs twice as much to build.
class PrfPlusBlock(NamedTuple):
    index: int  # i, 1-based
    input: bytes  # T(i-1) | seed | i  (T(0) is empty)
    output: bytes  # T(i)


class PrfPlusResult:
    """prf+ output. Its blocks (for the trace) are made from the key stream when first read: the
    stream holds every T(i), and each input is T(i-1) | seed | i."""

    __slots__ = ("output", "_stream", "_seed", "_size", "_blocks")

    def __init__(self, output: bytes, stream: bytes, seed: bytes, size: int) -> None:
        self.output = output  # the first `length` bytes of T1 | T2 | ...
        self._stream, self._seed, self._size = stream, seed, size  # T1 | T2 | ... uncut; block size
        self._blocks: tuple[PrfPlusBlock, ...] | None = None

    @property
    def blocks(self) -> tuple[PrfPlusBlock, ...]:
        if self._blocks is None:
            self._blocks = _blocks(self._stream, self._seed, self._size)
        return self._blocks


def _blocks(stream: bytes, seed: bytes, size: int) -> tuple[PrfPlusBlock, ...]:
    blocks, previous = [], b""
    for index in range(1, len(stream) // size + 1):
        output = stream[(index - 1) * size : index * size]
        blocks.append(PrfPlusBlock(index, previous + seed + bytes((index,)), output))
        previous = output
    return tuple(blocks)


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
    # With an HMAC PRF, prf+ is exactly HKDF-Expand (RFC 5869 §2.3: T(i) = HMAC(K, T(i-1) | info | i),
    # the same 255-block limit), so one call computes every block.
    stream = HKDFExpand(prf.hash, count * prf.output_length, seed).derive(key) if count else b""
    return PrfPlusResult(stream[:length], stream, seed, prf.output_length)


PRFS: dict[int, Prf] = {
    p.number: p
    for p in (
        Prf(2, "prfsha1", "PRF_HMAC_SHA1", 20, _HASHES["sha1"]),
        Prf(5, "prfsha256", "PRF_HMAC_SHA2_256", 32, _HASHES["sha256"]),
        Prf(6, "prfsha384", "PRF_HMAC_SHA2_384", 48, _HASHES["sha384"]),
        Prf(7, "prfsha512", "PRF_HMAC_SHA2_512", 64, _HASHES["sha512"]),
    )
}


def prf(number: int) -> Prf:
    try:
        return PRFS[number]
    except KeyError:
        raise UnknownAlgorithm("PRF", number, PRFS) from None
