"""ikelab.crypto.dh against RFC 5903 §8, RFC 7748 §6.1 and scapy's copies of the MODP primes."""

import pytest
from scapy.layers.tls.crypto import groups as scapy_groups

from ikelab.crypto import modp
from ikelab.crypto.dh import DH_GROUPS, DhError, dh_group
from ikelab.crypto.errors import UnknownAlgorithm
from ikelab.rng import SeededRandom


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# RFC 5903 §8.1-8.3: group, i, g^i (x, y), r, g^r (x, y), g^ir x (the shared secret, §7).
RFC5903 = [
    (
        19,
        "C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433",
        "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180",
        "5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
        "C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53",
        "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63",
        "56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
        "D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE",
    ),
    (
        20,
        "099F3C70 34D4A2C6 99884D73 A375A67F 7624EF7C 6B3C0F16 0647B674 14DCE655"
        "E35B5380 41E649EE 3FAEF896 783AB194",
        "667842D7 D180AC2C DE6F74F3 7551F557 55C7645C 20EF73E3 1634FE72 B4C55EE6"
        "DE3AC808 ACB4BDB4 C88732AE E95F41AA",
        "9482ED1F C0EEB9CA FC498462 5CCFC23F 65032149 E0E144AD A0241815 35A0F38E"
        "EB9FCFF3 C2C947DA E69B4C63 4573A81C",
        "41CB0779 B4BDB85D 47846725 FBEC3C94 30FAB46C C8DC5060 855CC9BD A0AA2942"
        "E0308312 916B8ED2 960E4BD5 5A7448FC",
        "E558DBEF 53EECDE3 D3FCCFC1 AEA08A89 A987475D 12FD950D 83CFA417 32BC509D"
        "0D1AC43A 0336DEF9 6FDA41D0 774A3571",
        "DCFBEC7A ACF31964 72169E83 8430367F 66EEBE3C 6E70C416 DD5F0C68 759DD1FF"
        "F83FA401 42209DFF 5EAAD96D B9E6386C",
        "11187331 C279962D 93D60424 3FD592CB 9D0A926F 422E4718 7521287E 7156C5C4"
        "D6031355 69B9E9D0 9CF5D4A2 70F59746",
    ),
    (
        21,
        "0037ADE9 319A89F4 DABDB3EF 411AACCC A5123C61 ACAB57B5 393DCE47 608172A0"
        "95AA85A3 0FE1C295 2C6771D9 37BA9777 F5957B26 39BAB072 462F68C2 7A57382D 4A52",
        "0015417E 84DBF28C 0AD3C278 713349DC 7DF153C8 97A1891B D98BAB43 57C9ECBE"
        "E1E3BF42 E00B8E38 0AEAE57C 2D107564 94188594 2AF5A7F4 601723C4 195D176C ED3E",
        "017CAE20 B6641D2E EB695786 D8C94614 6239D099 E18E1D5A 514C739D 7CB4A10A"
        "D8A78801 5AC405D7 799DC75E 7B7D5B6C F2261A6A 7F150743 8BF01BEB 6CA3926F 9582",
        "0145BA99 A847AF43 793FDD0E 872E7CDF A16BE30F DC780F97 BCCC3F07 8380201E"
        "9C677D60 0B343757 A3BDBF2A 3163E4C2 F869CCA7 458AA4A4 EFFC311F 5CB15168 5EB9",
        "00D0B397 5AC4B799 F5BEA16D 5E13E9AF 971D5E9B 984C9F39 728B5E57 39735A21"
        "9B97C356 436ADC6E 95BB0352 F6BE64A6 C2912D4E F2D0433C ED2B6171 640012D9 460F",
        "015C6822 6383956E 3BD066E7 97B623C2 7CE0EAC2 F551A10C 2C724D98 52077B87"
        "220B6536 C5C408A1 D2AEBB8E 86D678AE 49CB5709 1F473229 6579AB44 FCD17F0F C56A",
        "01144C7D 79AE6956 BC8EDB8E 7C787C45 21CB086F A64407F9 7894E5E6 B2D79B04"
        "D1427E73 CA4BAA24 0A347868 59810C06 B3C715A3 A8CC3151 F2BEE417 996D19F3 DDEA",
    ),
]


@pytest.mark.parametrize("number, i, gix, giy, r, grx, gry, girx", RFC5903, ids=["19", "20", "21"])
def test_rfc5903_vectors(number, i, gix, giy, r, grx, gry, girx):
    group = dh_group(number)
    initiator = group.keypair_from_private(h(i))
    responder = group.keypair_from_private(h(r))
    assert initiator.public == h(gix + giy)
    assert responder.public == h(grx + gry)
    assert initiator.shared_secret(responder.public) == h(girx)
    assert responder.shared_secret(initiator.public) == h(girx)


def test_ecp_rejects_point_off_curve():
    _, i, gix, giy, *_ = RFC5903[0]
    pair = dh_group(19).keypair_from_private(h(i))
    bad = bytearray(h(gix + giy))
    bad[-1] ^= 1
    with pytest.raises(DhError, match="not a point on ecp256"):
        pair.shared_secret(bytes(bad))
    with pytest.raises(DhError, match="65 bytes; group 19"):
        pair.shared_secret(b"\x04" + h(gix + giy))


# RFC 7748 §6.1
ALICE_PRIVATE = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PRIVATE = h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUBLIC = h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
X25519_SHARED = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


def test_rfc7748_x25519():
    group = dh_group(31)
    alice = group.keypair_from_private(ALICE_PRIVATE)
    bob = group.keypair_from_private(BOB_PRIVATE)
    assert alice.public == ALICE_PUBLIC
    assert bob.public == BOB_PUBLIC
    assert alice.shared_secret(BOB_PUBLIC) == X25519_SHARED
    assert bob.shared_secret(ALICE_PUBLIC) == X25519_SHARED


@pytest.mark.parametrize("low_order", [bytes(32), b"\x01" + bytes(31)])
def test_x25519_rejects_low_order_points(low_order):
    alice = dh_group(31).keypair_from_private(ALICE_PRIVATE)
    with pytest.raises(DhError, match="all zeros"):
        alice.shared_secret(low_order)


MODP_BITS = {1: 768, 2: 1024, 5: 1536, 14: 2048, 15: 3072, 16: 4096, 17: 6144, 18: 8192}


@pytest.mark.parametrize("number, bits", MODP_BITS.items())
def test_modp_primes_match_scapy(number, bits):
    reference = getattr(scapy_groups, f"modp{bits}")
    assert (reference.g, reference.mLen) == (modp.GENERATOR, bits)
    assert modp.modp_prime(bits) == reference.m
    group = dh_group(number)
    assert (group.name, group.kind, group.public_length) == (f"modp{bits}", "modp", bits // 8)


@pytest.mark.parametrize("number", DH_GROUPS)
def test_round_trip(number):
    group = dh_group(number)
    left = group.generate(SeededRandom(1, "left"), "left dh")
    right = group.generate(SeededRandom(1, "right"), "right dh")
    assert len(left.public) == len(right.public) == group.public_length
    shared = left.shared_secret(right.public)
    assert shared == right.shared_secret(left.public)
    assert left.private != right.private
    # Determinism: the same seed and purpose give the same key pair.
    assert group.generate(SeededRandom(1, "left"), "left dh") == left


@pytest.mark.parametrize("number", [1, 14, 18])
def test_modp_exponent_size(number):
    group = dh_group(number)
    bits = modp.EXPONENT_BITS[group.public_length * 8]
    pair = group.generate(SeededRandom(3, "left"), "dh")
    assert int.from_bytes(pair.private, "big").bit_length() <= bits
    assert len(pair.private) == (bits + 7) // 8


def test_modp_is_textbook_and_left_padded():
    p = scapy_groups.modp768.m
    group = dh_group(1)
    peer = pow(2, 0xC0FFEE, p)
    # Find a private value whose shared secret has a leading zero byte.
    x = next(x for x in range(2, 10_000) if pow(peer, x, p) < 1 << (768 - 8))
    pair = group.keypair_from_private(x.to_bytes(2, "big"))
    assert pair.public == pow(2, x, p).to_bytes(96, "big")
    shared = pair.shared_secret(peer.to_bytes(96, "big"))
    assert shared == pow(peer, x, p).to_bytes(96, "big")
    assert shared[0] == 0


@pytest.mark.parametrize("bad", ["zero", "one", "p-1", "p"])
def test_modp_rejects_degenerate_peer_values(bad):
    p = scapy_groups.modp2048.m
    value = {"zero": 0, "one": 1, "p-1": p - 1, "p": p}[bad]
    pair = dh_group(14).generate(SeededRandom(1, "left"), "dh")
    with pytest.raises(DhError, match=r"must be in \(1, p-1\)"):
        pair.shared_secret(value.to_bytes(256, "big"))


def test_modp_rejects_wrong_length():
    pair = dh_group(14).generate(SeededRandom(1, "left"), "dh")
    with pytest.raises(DhError, match="255 bytes; group 14 \\(modp2048\\) needs 256"):
        pair.shared_secret(b"\x02" * 255)


def test_group_metadata():
    assert dh_group(19).description == "256-bit random ECP group (RFC 5903)"
    assert dh_group(14).description == "2048-bit MODP group (RFC 3526)"
    assert (dh_group(21).name, dh_group(21).public_length) == ("ecp521", 132)
    assert (dh_group(31).name, dh_group(31).kind) == ("curve25519", "curve25519")


def test_unknown_group():
    with pytest.raises(KeyError):
        dh_group(22)
    with pytest.raises(UnknownAlgorithm, match=r"unknown DH group 99 \(known: 1, 2, 5, 14"):
        dh_group(99)


# Base point orders from FIPS 186-4 D.1.2.
CURVE_ORDERS = {
    19: "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551",
    20: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
    "581A0DB248B0A77AECEC196ACCC52973",
    21: "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
    "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
}


@pytest.mark.parametrize("number, order", CURVE_ORDERS.items())
def test_ecp_private_scalar_range_is_1_to_n_minus_1(number, order):
    group = dh_group(number)
    size = group.public_length // 2
    n = int(order, 16)
    generator = group.keypair_from_private((1).to_bytes(size, "big")).public
    minus_generator = group.keypair_from_private((n - 1).to_bytes(size, "big")).public
    # (n-1)*G = -G: same x, other y. That makes n the order, checked by cryptography.
    assert minus_generator[:size] == generator[:size]
    assert minus_generator[size:] != generator[size:]
    for bad in (0, n):
        with pytest.raises(DhError, match=r"must be in \[1, n-1\]"):
            group.keypair_from_private(bad.to_bytes(size, "big"))


def test_gmp_and_python_exponentiation_agree():
    from ikelab.crypto import dh

    p = dh._prime(dh.dh_group(14))
    for exponent in (2, 3, 2**319 + 12345, p - 2):
        assert dh._powmod(2, exponent, p) == pow(2, exponent, p)
