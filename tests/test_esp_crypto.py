"""The per-SA crypto helpers ESP uses for speed (KeyedCipher, KeyedIntegrity) give exactly what
the reference one-shot functions give, however calls interleave: the CBC contexts carry state."""

from __future__ import annotations

import os
import random

import pytest

from ikelab.crypto.cipher import CIPHERS, IntegrityError, KeyedCipher
from ikelab.crypto.integrity import INTEGRITY, KeyedIntegrity


@pytest.mark.parametrize("cipher", CIPHERS.values(), ids=lambda c: c.name)
def test_keyed_cipher_matches_one_shot_cipher(cipher):
    rng = random.Random(cipher.name)
    key = os.urandom(cipher.key_length)
    keyed = KeyedCipher(cipher, key)
    for _ in range(60):
        iv = os.urandom(cipher.iv_length)
        plaintext = os.urandom(rng.randrange(1, 100) * cipher.block_size)
        aad = os.urandom(8) if cipher.is_aead else b""
        if rng.random() < 0.5:
            assert keyed.encrypt(iv, plaintext, aad) == cipher.encrypt(key, iv, plaintext, aad)
        else:
            ciphertext = cipher.encrypt(key, iv, plaintext, aad)
            assert keyed.decrypt(iv, memoryview(ciphertext), aad) == plaintext


@pytest.mark.parametrize(
    "cipher", [c for c in CIPHERS.values() if not c.is_aead], ids=lambda c: c.name
)
def test_cbc_refuses_partial_blocks_without_losing_its_place(cipher):
    key, iv = os.urandom(cipher.key_length), os.urandom(16)
    keyed = KeyedCipher(cipher, key)
    for bad in (b"", bytes(15), bytes(17)):
        with pytest.raises(ValueError, match="AES-CBC"):
            keyed.encrypt(iv, bad)
        with pytest.raises(ValueError, match="AES-CBC"):
            keyed.decrypt(iv, bad)
    assert keyed.encrypt(iv, bytes(32)) == cipher.encrypt(key, iv, bytes(32))
    assert keyed.decrypt(iv, bytes(32)) == cipher.decrypt(key, iv, bytes(32))


def test_keyed_gcm_refuses_a_bad_tag():
    cipher = CIPHERS[20, 128]
    keyed = KeyedCipher(cipher, os.urandom(cipher.key_length))
    sealed = bytearray(keyed.encrypt(bytes(8), b"data", b"aad"))
    sealed[-1] ^= 1
    with pytest.raises(IntegrityError, match="ICV does not verify"):
        keyed.decrypt(bytes(8), bytes(sealed), b"aad")


@pytest.mark.parametrize("integrity", INTEGRITY.values(), ids=lambda i: i.name)
def test_keyed_integrity_matches_one_shot_integrity(integrity):
    key = os.urandom(integrity.key_length)
    keyed = KeyedIntegrity(integrity, key)
    for size in (0, 1, 63, 64, 1500):
        data = os.urandom(size)
        icv = integrity.compute(key, data)
        assert keyed.compute(memoryview(data)) == icv
        assert keyed.verify(data, icv)
        assert not keyed.verify(data, bytes(len(icv)))
    with pytest.raises(ValueError, match="key"):
        KeyedIntegrity(integrity, bytes(3))


@pytest.mark.parametrize(
    "cipher", [c for c in CIPHERS.values() if not c.is_aead], ids=lambda c: c.name
)
def test_cbc_fresh_iv_and_prefixed_paths_are_plain_cbc(cipher):
    """encrypt_with_fresh_iv gives IV | CBC_IV(plaintext) with an IV nobody chose, and
    decrypt_iv_prefixed opens any IV | ciphertext, whatever the contexts did before; neither
    disturbs the chained contexts of encrypt() and decrypt()."""
    rng = random.Random(cipher.name)
    key = os.urandom(cipher.key_length)
    keyed = KeyedCipher(cipher, key)
    ivs = set()
    for _ in range(40):
        plaintext = os.urandom(rng.randrange(1, 20) * 16)
        sealed = keyed.encrypt_with_fresh_iv(plaintext)
        iv, ciphertext = sealed[:16], sealed[16:]
        ivs.add(iv)
        assert cipher.decrypt(key, iv, ciphertext) == plaintext
        assert keyed.decrypt_iv_prefixed(memoryview(sealed)) == plaintext
        other_iv = os.urandom(16)
        assert keyed.decrypt_iv_prefixed(other_iv + cipher.encrypt(key, other_iv, plaintext)) == plaintext
        assert keyed.encrypt(other_iv, plaintext) == cipher.encrypt(key, other_iv, plaintext)
        assert keyed.decrypt(other_iv, cipher.encrypt(key, other_iv, plaintext)) == plaintext
    assert len(ivs) == 40
    for bad in (b"", bytes(15), bytes(17)):
        with pytest.raises(ValueError, match="AES-CBC"):
            keyed.encrypt_with_fresh_iv(bad)
    with pytest.raises(ValueError, match="AES-CBC"):
        keyed.decrypt_iv_prefixed(bytes(16))


def test_cbc_stream_functions_are_refused_for_gcm():
    keyed = KeyedCipher(CIPHERS[20, 128], os.urandom(20))
    with pytest.raises(TypeError, match="AES-CBC only"):
        keyed.cbc_stream_encrypt(bytes(32))
    assert keyed.aead is not None and len(keyed.salt) == 4


@pytest.mark.parametrize("integrity", INTEGRITY.values(), ids=lambda i: i.name)
def test_keyed_integrity_template_is_the_keyed_hmac(integrity):
    key = os.urandom(integrity.key_length)
    keyed = KeyedIntegrity(integrity, key)
    for size in (0, 100, 1500):
        data = os.urandom(size)
        mac = keyed.template()
        mac.update(data)
        assert mac.finalize()[: keyed.icv_length] == integrity.compute(key, data)
