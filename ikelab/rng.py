"""Randomness for the protocol engines, injected so a run can be replayed.

Every random value an engine needs (SPIs, nonces, DH private keys, IVs) comes from a
RandomSource and names its purpose, so traces can say where each byte came from.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Protocol

from cryptography.hazmat.primitives import hashes, hmac

_BLOCK = 32  # bytes per HMAC-SHA256 output block


class RandomSource(Protocol):
    def bytes(self, n: int, purpose: str) -> bytes:
        """Return n random bytes; purpose says what they are for (e.g. "left nonce")."""
        ...


class SystemRandom:
    """The operating system's CSPRNG (os.urandom); purpose is ignored."""

    def bytes(self, n: int, purpose: str) -> bytes:
        return os.urandom(n)


class SeededRandom:
    """A deterministic, byte-for-byte repeatable source. NOT secure: for classrooms only.

    Anyone who knows the seed knows every key. It exists so that `--seed N` replays a
    whole run, and stepping back is just replaying to step k.

    Each (stream, purpose) pair is its own substream, continued across calls:

        block j = HMAC-SHA256(key = seed as 32 big-endian bytes,
                              msg = len(stream) | stream | len(purpose) | purpose | j)

    with the lengths as 4-byte and j as 8-byte big-endian integers, all strings UTF-8.
    Keeping purposes apart means one more draw of, say, an IV does not shift every
    nonce and key after it, so recorded runs stay comparable as the code evolves.
    Streams with different names (one per peer, say) are independent.
    """

    def __init__(self, seed: int, stream: str) -> None:
        if not 0 <= seed < 2**256:
            raise ValueError(f"seed must be in [0, 2**256), got {seed}")
        self._used: dict[str, int] = {}  # bytes already handed out, per purpose
        self._stream_label = _length_prefixed(stream)  # the first half of every label
        self._keyed = _keyed_by_seed(seed)

    def bytes(self, n: int, purpose: str) -> bytes:
        if n < 0:
            raise ValueError(f"cannot draw {n} bytes")
        start = self._used.get(purpose, 0)
        self._used[purpose] = start + n
        label = self._stream_label + _length_prefixed(purpose)  # len(stream) | stream | len(purpose) | purpose
        first, last = start // _BLOCK, (start + n + _BLOCK - 1) // _BLOCK
        offset = start - first * _BLOCK
        if last - first == 1:  # most draws (SPIs, nonces, IVs) fit in one block
            return _block(self._keyed, label, first)[offset : offset + n]
        stream = b"".join([_block(self._keyed, label, j) for j in range(first, last)])
        return stream[offset : offset + n]


@lru_cache(maxsize=64)
def _keyed_by_seed(seed: int) -> hmac.HMAC:
    """HMAC-SHA256 keyed with the seed, never finalized: each block copies it (less than half the cost
    of a new HMAC). One per seed, shared by its streams: a run has one stream per peer, and a replay
    (stepping back) draws from the same seed again, so the key is processed once, not per stream."""
    return hmac.HMAC(seed.to_bytes(32, "big"), hashes.SHA256())


def _block(keyed: hmac.HMAC, label: bytes, index: int) -> bytes:
    mac = keyed.copy()
    mac.update(label + index.to_bytes(8, "big"))
    return mac.finalize()


@lru_cache(maxsize=256)
def _length_prefixed(text: str) -> bytes:
    """len(text) | text, UTF-8: the parts of a label, a handful of texts each run draws under again."""
    data = text.encode()
    return len(data).to_bytes(4, "big") + data
