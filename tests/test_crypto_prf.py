"""ikelab.crypto.prf against RFC 4868 §2.7.1 / RFC 2202, and prf+ against RFC 7296 §2.13."""

import hashlib
import hmac

import pytest

from ikelab.crypto.errors import UnknownAlgorithm
from ikelab.crypto.prf import PRFS, prf, prf_plus

HI_THERE = (b"\x0b" * 20, b"Hi There")
JEFE = (b"Jefe", b"what do ya want for nothing?")

# (PRF number, (key, data), expected): RFC 4868 §2.7.1 PRF-1 and PRF-2; SHA-1 from RFC 2202.
KNOWN = [
    (2, HI_THERE, "b617318655057264e28bc0b6fb378c8ef146be00"),
    (2, JEFE, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    (5, HI_THERE, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (5, JEFE, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (
        6,
        HI_THERE,
        "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
        "faea9ea9076ede7f4af152e8b2fa9cb6",
    ),
    (
        7,
        HI_THERE,
        "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
        "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
    ),
]


@pytest.mark.parametrize("number, case, expected", KNOWN)
def test_known_answers(number, case, expected):
    key, data = case
    p = prf(number)
    assert p(key, data).hex() == expected
    assert p.output_length == len(bytes.fromhex(expected))


def test_names():
    assert [(p.number, p.name, p.description) for p in PRFS.values()] == [
        (2, "prfsha1", "PRF_HMAC_SHA1"),
        (5, "prfsha256", "PRF_HMAC_SHA2_256"),
        (6, "prfsha384", "PRF_HMAC_SHA2_384"),
        (7, "prfsha512", "PRF_HMAC_SHA2_512"),
    ]


def test_prf_plus_blocks_are_t_previous_seed_counter():
    key, seed = b"k" * 32, b"Ni|Nr|SPIi|SPIr"
    result = prf_plus(prf(5), key, seed, 70)

    def mac(data: bytes) -> bytes:
        return hmac.new(key, data, hashlib.sha256).digest()

    t1 = mac(seed + b"\x01")
    t2 = mac(t1 + seed + b"\x02")
    t3 = mac(t2 + seed + b"\x03")
    assert [b.index for b in result.blocks] == [1, 2, 3]
    assert [b.input for b in result.blocks] == [
        seed + b"\x01",
        t1 + seed + b"\x02",
        t2 + seed + b"\x03",
    ]
    assert [b.output for b in result.blocks] == [t1, t2, t3]
    assert result.output == (t1 + t2 + t3)[:70]


def test_keyed_prf_is_the_prf_with_that_key():
    key = b"k" * 20
    keyed = prf(5).keyed(key)
    for data in (b"", b"first message", b"second message" * 10):
        assert keyed(data) == prf(5)(key, data) == hmac.new(key, data, hashlib.sha256).digest()


def test_prf_plus_exact_and_empty_lengths():
    assert len(prf_plus(prf(2), b"k", b"s", 40).blocks) == 2
    assert prf_plus(prf(2), b"k", b"s", 0).blocks == ()


def test_prf_plus_stops_at_255_blocks():
    assert len(prf_plus(prf(2), b"k", b"s", 255 * 20).output) == 5100
    with pytest.raises(ValueError, match="at most 5100 bytes; 5101 requested"):
        prf_plus(prf(2), b"k", b"s", 255 * 20 + 1)


def test_unknown_prf():
    with pytest.raises(UnknownAlgorithm, match=r"unknown PRF 4 \(known: 2, 5, 6, 7\)"):
        prf(4)
