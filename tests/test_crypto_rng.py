"""ikelab.rng: the seeded source follows its documented construction exactly."""

import hashlib
import hmac

import pytest

from ikelab.rng import SeededRandom, SystemRandom


def _documented(seed: int, stream: str, purpose: str, n: int) -> bytes:
    """The construction in SeededRandom's docstring, written with the standard library."""

    def prefixed(text: str) -> bytes:
        return len(text.encode()).to_bytes(4, "big") + text.encode()

    key = seed.to_bytes(32, "big")
    label = prefixed(stream) + prefixed(purpose)
    blocks = (
        hmac.new(key, label + j.to_bytes(8, "big"), hashlib.sha256).digest() for j in range(4)
    )
    return b"".join(blocks)[:n]


def test_seeded_matches_documented_construction():
    assert SeededRandom(5, "left").bytes(100, "nonce") == _documented(5, "left", "nonce", 100)


def test_seeded_stream_continues_across_calls():
    whole = SeededRandom(7, "left").bytes(70, "nonce")
    source = SeededRandom(7, "left")
    parts = [source.bytes(n, "nonce") for n in (5, 27, 1, 37)]
    assert b"".join(parts) == whole


def test_purposes_are_independent_substreams():
    quiet = SeededRandom(7, "left")
    busy = SeededRandom(7, "left")
    busy.bytes(16, "iv")
    assert busy.bytes(32, "nonce") == quiet.bytes(32, "nonce")
    assert SeededRandom(7, "left").bytes(32, "iv") != SeededRandom(7, "left").bytes(32, "spi")


def test_streams_and_seeds_differ():
    base = SeededRandom(1, "left").bytes(32, "nonce")
    assert SeededRandom(1, "right").bytes(32, "nonce") != base
    assert SeededRandom(2, "left").bytes(32, "nonce") != base
    assert SeededRandom(1, "left").bytes(32, "nonce") == base


def test_seed_range_checked():
    with pytest.raises(ValueError):
        SeededRandom(-1, "left")


def test_system_random_length():
    assert len(SystemRandom().bytes(24, "spi")) == 24
