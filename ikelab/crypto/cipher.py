"""IKE/ESP encryption: AES-CBC (RFC 3602) and AES-GCM with a 16-byte ICV (RFC 4106/5282)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher as _AesCipher
from cryptography.hazmat.primitives.ciphers import algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ikelab.crypto.errors import UnknownAlgorithm

ENCR_AES_CBC = 12
ENCR_AES_GCM_16 = 20
_SALT_LENGTH = 4  # GCM: the last 4 bytes of keying material are the nonce salt


class IntegrityError(ValueError):
    """An AEAD tag did not verify: the data or the key is wrong."""


@dataclass(frozen=True)
class Cipher:
    number: int  # IANA Transform Type 1 ID
    key_bits: int  # the Key Length attribute
    name: str  # strongSwan keyword
    description: str
    key_length: int  # bytes of keying material, including the GCM salt
    iv_length: int  # bytes of IV carried in each message
    block_size: int  # what the plaintext (with padding) must be a multiple of
    icv_length: int  # bytes of AEAD tag appended to the ciphertext (0 for CBC)
    is_aead: bool

    def encrypt(self, key: bytes, iv: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        """CBC: plaintext must be block-aligned (the caller pads) and aad is unused, since a
        separate integrity algorithm covers it. GCM: returns ciphertext | 16-byte tag."""
        self._check(key, iv)
        if not self.is_aead:
            _check_aligned(plaintext, "plaintext")
            encryptor = _AesCipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
            return encryptor.update(plaintext) + encryptor.finalize()
        aes_key, salt = key[:-_SALT_LENGTH], key[-_SALT_LENGTH:]
        return AESGCM(aes_key).encrypt(salt + iv, plaintext, aad)

    def decrypt(self, key: bytes, iv: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
        """CBC raises ValueError on misaligned input; GCM raises IntegrityError on a bad tag."""
        self._check(key, iv)
        if not self.is_aead:
            _check_aligned(ciphertext, "ciphertext")
            decryptor = _AesCipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
            return decryptor.update(ciphertext) + decryptor.finalize()
        if len(ciphertext) < self.icv_length:
            raise IntegrityError(
                f"{self.description}: {len(ciphertext)} bytes cannot hold "
                f"a {self.icv_length}-byte tag"
            )
        aes_key, salt = key[:-_SALT_LENGTH], key[-_SALT_LENGTH:]
        try:
            return AESGCM(aes_key).decrypt(salt + iv, ciphertext, aad)
        except InvalidTag:
            raise IntegrityError(f"{self.description}: ICV does not verify") from None

    def _check(self, key: bytes, iv: bytes) -> None:
        if len(key) != self.key_length:
            raise ValueError(
                f"{self.description} needs a {self.key_length}-byte key, got {len(key)}"
            )
        if len(iv) != self.iv_length:
            raise ValueError(f"{self.description} needs a {self.iv_length}-byte IV, got {len(iv)}")


def _check_aligned(data: bytes, what: str) -> None:
    if len(data) % 16:
        raise ValueError(f"AES-CBC {what} must be a multiple of 16 bytes, got {len(data)}")


def _cbc(bits: int) -> Cipher:
    return Cipher(
        ENCR_AES_CBC, bits, f"aes{bits}", f"ENCR_AES_CBC-{bits}", bits // 8, 16, 16, 0, False
    )


def _gcm16(bits: int) -> Cipher:
    # RFC 4106 §8.1: keying material is the AES key followed by the 4-byte salt.
    # Block size 4: GCM needs no block alignment, only the 4-byte ESP/IKE padding alignment.
    key_length = bits // 8 + _SALT_LENGTH
    name, description = f"aes{bits}gcm16", f"ENCR_AES_GCM_16-{bits}"
    return Cipher(ENCR_AES_GCM_16, bits, name, description, key_length, 8, 4, 16, True)


CIPHERS: dict[tuple[int, int], Cipher] = {
    (c.number, c.key_bits): c for make in (_cbc, _gcm16) for c in map(make, (128, 192, 256))
}


def cipher(number: int, key_bits: int | None) -> Cipher:
    """The cipher for a transform ID and its Key Length attribute (None if absent)."""
    found = None if key_bits is None else CIPHERS.get((number, key_bits))
    if found is None:
        known = [f"{n}/{bits}" for n, bits in CIPHERS]
        raise UnknownAlgorithm("encryption transform/key bits", f"{number}/{key_bits}", known)
    return found


class KeyedCipher:
    """A cipher bound to one key, for per-packet use (ESP). Not thread-safe: one per SA and thread.

    OpenSSL 3 takes about 12 µs to set up a cipher context, ten times the cost of encrypting a
    1400-byte packet, so contexts are built once. AESGCM keeps its own. For CBC one encryptor and
    one decryptor live as long as the SA; such a context carries its last ciphertext block forward
    as the next packet's IV, so the first block is corrected with (that block XOR the packet's IV),
    which makes every result exactly CBC under the packet's own IV.
    """

    def __init__(self, cipher: Cipher, key: bytes) -> None:
        cipher._check(key, bytes(cipher.iv_length))
        self.cipher = cipher
        # Raw primitives for loops that handle many packets per call (the ESP datapath), each a
        # bound C function. AEAD: `aead` (AESGCM: encrypt/decrypt(salt | iv, data, aad)) and
        # `salt`. CBC: `cbc_stream_encrypt(R | plaintext)` gives IV | ciphertext for a random
        # block R (see encrypt_with_fresh_iv), `cbc_stream_decrypt(IV | ciphertext)` gives one
        # meaningless block then the plaintext (see decrypt_iv_prefixed); whole blocks only.
        self.aead: AESGCM | None = None
        self.salt = b""
        if cipher.is_aead:
            self.aead = self._aead = AESGCM(key[:-_SALT_LENGTH])
            self.salt = self._salt = key[-_SALT_LENGTH:]
            self.cbc_stream_encrypt = self.cbc_stream_decrypt = _cbc_only
            return
        start = bytes(16)
        self._encryptor = _AesCipher(algorithms.AES(key), modes.CBC(start)).encryptor()
        self._decryptor = _AesCipher(algorithms.AES(key), modes.CBC(start)).decryptor()
        self._encrypt_chain = self._decrypt_chain = 0  # last ciphertext block each context saw
        # The stream contexts keep apart from those two, and need no bookkeeping at all, so they
        # never disturb the chains of encrypt() and decrypt().
        self.cbc_stream_encrypt = _AesCipher(algorithms.AES(key), modes.CBC(start)).encryptor().update
        self.cbc_stream_decrypt = _AesCipher(algorithms.AES(key), modes.CBC(start)).decryptor().update

    def encrypt(self, iv: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        """As `Cipher.encrypt`; the caller sizes the IV."""
        if self.cipher.is_aead:
            return self._aead.encrypt(self._salt + iv, plaintext, aad)
        _check_cbc_input(plaintext, "plaintext")
        first = (
            int.from_bytes(plaintext[:16], "big") ^ int.from_bytes(iv, "big") ^ self._encrypt_chain
        )
        ciphertext = self._encryptor.update(first.to_bytes(16, "big") + memoryview(plaintext)[16:])
        self._encrypt_chain = int.from_bytes(ciphertext[-16:], "big")
        return ciphertext

    def decrypt(self, iv: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
        """As `Cipher.decrypt`: CBC raises ValueError on misaligned input; GCM raises
        IntegrityError on a bad tag. Any bytes-like ciphertext will do (a memoryview saves a copy)."""
        if self.cipher.is_aead:
            try:
                return self._aead.decrypt(self._salt + iv, ciphertext, aad)
            except InvalidTag:
                raise IntegrityError(f"{self.cipher.description}: ICV does not verify") from None
        _check_cbc_input(ciphertext, "ciphertext")  # a partial block would corrupt the context
        plaintext = self._decryptor.update(ciphertext)
        correction = int.from_bytes(iv, "big") ^ self._decrypt_chain
        self._decrypt_chain = int.from_bytes(ciphertext[-16:], "big")
        first = int.from_bytes(plaintext[:16], "big") ^ correction
        return first.to_bytes(16, "big") + plaintext[16:]

    def encrypt_with_fresh_iv(self, plaintext: bytes) -> bytes:
        """AES-CBC: IV | ciphertext, under a fresh IV that nobody can predict (RFC 3602 §2.1).

        The context's last ciphertext block C is known to an observer, so it must not be the IV.
        Instead a random block R goes first: the context outputs E_K(R xor C), uniformly random
        because R is, and that block is the IV of the rest, exactly as in CBC (NIST SP 800-38A
        appendix C derives IVs by encrypting a nonce the same way). One call into OpenSSL and no
        integer juggling: the fast path for ESP. Any IV-consuming decryption opens the result.
        """
        _check_cbc_input(plaintext, "plaintext")
        return self.cbc_stream_encrypt(os.urandom(16) + plaintext)

    def decrypt_iv_prefixed(self, data: bytes) -> bytes:
        """AES-CBC: the plaintext of IV | ciphertext (any bytes-like object). Fed through the
        context as one stream, the IV is the block before the first ciphertext block, so every
        plaintext block comes out right; only the IV's own output block is meaningless and is
        dropped. The fast path for ESP: one call into OpenSSL."""
        if len(data) < 32 or len(data) % 16:
            raise ValueError(f"AES-CBC IV and ciphertext must be 32 or more bytes in whole blocks, got {len(data)}")
        return self.cbc_stream_decrypt(data)[16:]


def _cbc_only(data: bytes) -> bytes:
    raise TypeError("the CBC stream functions are for AES-CBC only")


def _check_cbc_input(data: bytes, what: str) -> None:
    if not data:
        raise ValueError(f"AES-CBC {what} must hold at least one block")
    _check_aligned(data, what)
