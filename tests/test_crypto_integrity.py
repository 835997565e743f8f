"""ikelab.crypto.integrity against RFC 4868 §2.7.2 (and RFC 2404 for HMAC-SHA1-96)."""

import pytest

from ikelab.crypto.errors import UnknownAlgorithm
from ikelab.crypto.integrity import INTEGRITY, integrity

HI_THERE = b"Hi There"
NOTHING = b"what do ya want for nothing?"

# (number, key, data, full HMAC); the ICV is its truncation. RFC 4868 AUTH256/384/512-1,
# AUTH256-2, AUTH512-2; RFC 2404 test case 1 for SHA-1.
KNOWN = [
    (2, b"\x0b" * 20, HI_THERE, "b617318655057264e28bc0b6fb378c8ef146be00"),
    (
        12,
        b"\x0b" * 32,
        HI_THERE,
        "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7",
    ),
    (12, b"Jefe" * 8, NOTHING, "167f928588c5cc2eef8e3093caa0e87c9ff566a14794aa61648d81621a2a40c6"),
    (
        13,
        b"\x0b" * 48,
        HI_THERE,
        "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee9737a959796489bddbc"
        "4c5df61d5b3297b4fb68dab9f1b582c2",
    ),
    (
        14,
        b"\x0b" * 64,
        HI_THERE,
        "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8"
        "ac2878ebd5803f6f0b61dbce5e251ff8789a4722c1be65aea45fd464e89f8f5b",
    ),
    (
        14,
        b"Jefe" * 16,
        NOTHING,
        "cb370917ae8a7ce28cfd1d8f4705d6141c173b2a9362c15df235dfb251b15454"
        "6aa334ae9fb9afc2184932d8695e397bfa0ffb93466cfcceaae38c833b7dba38",
    ),
]

SIZES = {2: (20, 12), 12: (32, 16), 13: (48, 24), 14: (64, 32)}


@pytest.mark.parametrize("number, key, data, full", KNOWN)
def test_known_answers(number, key, data, full):
    alg = integrity(number)
    icv = bytes.fromhex(full)[: SIZES[number][1]]
    assert alg.compute(key, data) == icv
    assert alg.verify(key, data, icv)
    assert not alg.verify(key, data + b"!", icv)
    assert not alg.verify(key, data, icv[:-1])
    assert not alg.verify(key, data, bytes([icv[0] ^ 1]) + icv[1:])


def test_table():
    rows = [
        (i.number, i.name, i.description, i.key_length, i.icv_length) for i in INTEGRITY.values()
    ]
    assert rows == [
        (2, "sha1", "AUTH_HMAC_SHA1_96", 20, 12),
        (12, "sha256", "AUTH_HMAC_SHA2_256_128", 32, 16),
        (13, "sha384", "AUTH_HMAC_SHA2_384_192", 48, 24),
        (14, "sha512", "AUTH_HMAC_SHA2_512_256", 64, 32),
    ]


def test_key_length_enforced():
    with pytest.raises(ValueError, match="needs a 32-byte key, got 20"):
        integrity(12).compute(b"\x0b" * 20, HI_THERE)


def test_unknown_integrity():
    with pytest.raises(UnknownAlgorithm, match="unknown integrity algorithm 1"):
        integrity(1)
