"""ikelab.crypto.cipher against RFC 3602 §4 (AES-CBC) and the GCM specification's test cases.

The GCM cases (McGrew & Viega, "The Galois/Counter Mode of Operation", also NIST SP 800-38D
examples) use the 12-byte nonce cafebabe|facedbaddecaf888, which is exactly an RFC 4106 salt
(the last 4 bytes of keying material) followed by an 8-byte IV.
"""

import pytest

from ikelab.crypto.cipher import CIPHERS, IntegrityError, cipher
from ikelab.crypto.errors import UnknownAlgorithm


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# RFC 3602 §4 cases 1-4: key, IV, plaintext, ciphertext (AES-128).
RFC3602 = [
    (
        "06a9214036b8a15b512e03d534120006",
        "3dafba429d9eb430b422da802c9fac41",
        b"Single block msg",
        "e353779c1079aeb82708942dbe77181a",
    ),
    (
        "c286696d887c9aa0611bbb3e2025a45a",
        "562e17996d093d28ddb3ba695a2e6f58",
        bytes(range(32)),
        "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1",
    ),
    (
        "6c3ea0477630ce21a2ce334aa746c2cd",
        "c782dc4c098c66cbd9cd27d825682c81",
        b"This is a 48-byte message (exactly 3 AES blocks)",
        "d0a02b3836451753d493665d33f0e8862dea54cdb293abc7506939276772f8d5"
        "021c19216bad525c8579695d83ba2684",
    ),
    (
        "56e47a38c5598974bc46903dba290349",
        "8ce82eefbea0da3c44699ed7db51b7d9",
        bytes(range(0xA0, 0xE0)),
        "c30e32ffedc0774e6aff6af0869f71aa0f3af07a9a31a9c684db207eb0ef8e4e"
        "35907aa632c3ffdf868bb7b29d3d46ad83ce9f9a102ee99d49a53e87f4c3da55",
    ),
]


@pytest.mark.parametrize(
    "key, iv, plaintext, ciphertext", RFC3602, ids=["case1", "case2", "case3", "case4"]
)
def test_rfc3602_aes_cbc(key, iv, plaintext, ciphertext):
    aes = cipher(12, 128)
    assert aes.encrypt(h(key), h(iv), plaintext) == h(ciphertext)
    assert aes.decrypt(h(key), h(iv), h(ciphertext)) == plaintext


def test_cbc_needs_aligned_input():
    aes = cipher(12, 128)
    key, iv = bytes(16), bytes(16)
    with pytest.raises(ValueError, match="multiple of 16 bytes, got 15"):
        aes.encrypt(key, iv, bytes(15))
    with pytest.raises(ValueError, match="multiple of 16 bytes, got 17"):
        aes.decrypt(key, iv, bytes(17))


GCM_KEY = "feffe9928665731c6d6a8f9467308308"
GCM_SALT, GCM_IV = "cafebabe", "facedbaddecaf888"
GCM_PLAIN = (
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
GCM_AAD = "feedfacedeadbeeffeedfacedeadbeefabaddad2"

# (test case, key bits, AES key, plaintext, aad, ciphertext, tag)
GCM_SPEC = [
    (
        3,
        128,
        GCM_KEY,
        GCM_PLAIN,
        "",
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
        "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
        "4d5c2af327cd64a62cf35abd2ba6fab4",
    ),
    (
        4,
        128,
        GCM_KEY,
        GCM_PLAIN[:120],
        GCM_AAD,
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
        "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
        "5bc94fbc3221a5db94fae95ae7121a47",
    ),
    (
        16,
        256,
        GCM_KEY * 2,
        GCM_PLAIN[:120],
        GCM_AAD,
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
        "76fc6ece0f4e1768cddf8853bb2d551b",
    ),
]


@pytest.mark.parametrize(
    "case, bits, key, plain, aad, ct, tag", GCM_SPEC, ids=["tc3", "tc4", "tc16"]
)
def test_gcm_spec_cases(case, bits, key, plain, aad, ct, tag):
    gcm = cipher(20, bits)
    keymat = h(key + GCM_SALT)
    sealed = gcm.encrypt(keymat, h(GCM_IV), h(plain), h(aad))
    assert sealed == h(ct + tag)
    assert gcm.decrypt(keymat, h(GCM_IV), sealed, h(aad)) == h(plain)


def test_gcm_rejects_tampering():
    gcm = cipher(20, 128)
    keymat, iv = h(GCM_KEY + GCM_SALT), h(GCM_IV)
    sealed = gcm.encrypt(keymat, iv, b"ping", b"header")
    flipped = bytes([sealed[0] ^ 1]) + sealed[1:]
    with pytest.raises(IntegrityError, match="ICV does not verify"):
        gcm.decrypt(keymat, iv, flipped, b"header")
    with pytest.raises(IntegrityError):
        gcm.decrypt(keymat, iv, sealed, b"other header")
    with pytest.raises(IntegrityError):
        gcm.decrypt(h(GCM_KEY + "cafebabf"), iv, sealed, b"header")  # salt is keying material
    with pytest.raises(IntegrityError, match="cannot hold a 16-byte tag"):
        gcm.decrypt(keymat, iv, sealed[:15])


@pytest.mark.parametrize("number, bits", CIPHERS)
def test_round_trip_every_cipher(number, bits):
    c = cipher(number, bits)
    key, iv, plain = bytes(range(c.key_length)), b"\x42" * c.iv_length, bytes(32)
    sealed = c.encrypt(key, iv, plain, b"aad")
    assert len(sealed) == len(plain) + c.icv_length
    assert c.decrypt(key, iv, sealed, b"aad") == plain


def test_table():
    rows = [
        (c.name, c.description, c.key_length, c.iv_length, c.block_size, c.icv_length, c.is_aead)
        for c in CIPHERS.values()
    ]
    assert rows == [
        ("aes128", "ENCR_AES_CBC-128", 16, 16, 16, 0, False),
        ("aes192", "ENCR_AES_CBC-192", 24, 16, 16, 0, False),
        ("aes256", "ENCR_AES_CBC-256", 32, 16, 16, 0, False),
        ("aes128gcm16", "ENCR_AES_GCM_16-128", 20, 8, 4, 16, True),
        ("aes192gcm16", "ENCR_AES_GCM_16-192", 28, 8, 4, 16, True),
        ("aes256gcm16", "ENCR_AES_GCM_16-256", 36, 8, 4, 16, True),
    ]


def test_key_and_iv_lengths_enforced():
    with pytest.raises(ValueError, match="needs a 20-byte key, got 16"):
        cipher(20, 128).encrypt(bytes(16), bytes(8), b"")
    with pytest.raises(ValueError, match="needs a 16-byte IV, got 8"):
        cipher(12, 128).encrypt(bytes(16), bytes(8), bytes(16))


def test_unknown_cipher():
    with pytest.raises(UnknownAlgorithm, match="'12/None'"):
        cipher(12, None)
    with pytest.raises(UnknownAlgorithm, match="'3/192'"):
        cipher(3, 192)
