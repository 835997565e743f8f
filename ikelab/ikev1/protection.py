"""Encrypted ISAKMP messages (RFC 2408 §3.1 E flag, RFC 2409 §5.3 and appendix B).

Everything after the header is encrypted in CBC mode with Ka. There is no integrity check of its
own: the HASH payloads inside authenticate the contents, so a wrong key shows up as garbage that
does not decode, or as a HASH that does not match. The IV of each message is the last ciphertext
block of the message before it in the same exchange; callers keep that chain (`Exchange.iv`).
"""

from __future__ import annotations

from ikelab.crypto.cipher import Cipher
from ikelab.wire.isakmp import Header, Message, Payload, encode_message, encode_payloads
from ikelab.wire.isakmp_constants import HeaderFlags


class ProtectionError(ValueError):
    """The encrypted contents cannot even be decrypted (not a whole number of blocks)."""


def seal(cipher: Cipher, ka: bytes, iv: bytes, header: Header, payloads: list[Payload]) -> tuple[bytes, bytes, bytes]:
    """(datagram, padded plaintext, next IV). Pads with zeros to the block size, as strongSwan does."""
    first, chain = encode_payloads(payloads)
    plaintext = chain + bytes(-len(chain) % cipher.block_size)
    ciphertext = cipher.encrypt(ka, iv, plaintext)
    header.next_payload = first
    header.flags |= HeaderFlags.ENCRYPTION
    return encode_message(Message(header, [], ciphertext)), plaintext, ciphertext[-cipher.block_size :]


def unseal(cipher: Cipher, ka: bytes, iv: bytes, ciphertext: bytes) -> tuple[bytes, bytes]:
    """(plaintext with its padding, next IV)."""
    if not ciphertext or len(ciphertext) % cipher.block_size:
        raise ProtectionError(f"{len(ciphertext)} bytes of encrypted data are not a whole number of {cipher.block_size}-byte blocks")
    return cipher.decrypt(ka, iv, ciphertext), ciphertext[-cipher.block_size :]
