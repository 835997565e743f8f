"""The Encrypted payload (SK, RFC 7296 §3.14; AES-GCM per RFC 5282).

Sealing writes the headers first, with the final lengths, so the integrity check (or, for AEAD,
the associated data) covers the real header and lengths.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ikelab.crypto.cipher import IntegrityError
from ikelab.wire.fields import Field
from ikelab.wire.ikev2 import EncryptedFragmentPayload, EncryptedPayload, Header, Message, Payload, decode_payloads, encode_payloads
from ikelab.wire.ikev2_constants import PayloadType
from ikelab.wire.ikev2_message import encode_lone_payload_header
from ikelab.ikev2.ike_sa import IkeSa

SK, SKF = int(PayloadType.SK), int(PayloadType.SKF)
FRAGMENT_FIELDS = struct.Struct("!HH")  # SKF: Fragment Number, Total Fragments (before the IV)


class ProtectionError(ValueError):
    """The SK payload failed its integrity check, could not be decrypted, or held garbage."""


class Opened(NamedTuple):  # a tuple: a frozen dataclass costs twice as much to build, two per handshake
    payloads: list[Payload]
    fields: list[Field]
    plaintext: bytes


def seal(sa: IkeSa, header: Header, inner: list[Payload], iv: bytes, encoded: tuple[int, bytes] | None = None) -> tuple[bytes, bytes]:
    """The encoded message with `inner` encrypted in an SK payload, and the padded plaintext;
    `encoded` is encode_payloads(inner) when the caller has it already."""
    first, chain = encoded or encode_payloads(inner)
    return _seal(sa, header, SK, first, b"", chain, iv)


def seal_fragment(
    sa: IkeSa, header: Header, first_inner: int, chunk: bytes, number: int, total: int, iv: bytes
) -> tuple[bytes, bytes]:
    """One SKF fragment (RFC 7383 §2.5) of an encrypted message, padded, encrypted and
    authenticated on its own; only fragment 1 names the first inner payload."""
    fields = FRAGMENT_FIELDS.pack(number, total)
    return _seal(sa, header, SKF, first_inner if number == 1 else 0, fields, chunk, iv)


def _seal(sa: IkeSa, header: Header, payload_type: int, first_inner: int, fields: bytes, chain: bytes, iv: bytes) -> tuple[bytes, bytes]:
    """The message whose only payload, SK or SKF (its own `fields` first), seals `chain`."""
    cipher, integ = sa.ike.cipher, sa.ike.integrity
    sk_e, sk_a = sa.sending_keys()
    pad = (-(len(chain) + 1)) % cipher.block_size
    plaintext = chain + bytes(pad) + bytes([pad])
    icv_length = cipher.icv_length if cipher.is_aead else integ.icv_length
    # Both ciphers keep the plaintext's length; the ICV (HMAC or GCM tag) follows it.
    body_length = len(fields) + len(iv) + len(plaintext) + icv_length
    head = encode_lone_payload_header(header, payload_type, first_inner, body_length) + fields
    if cipher.is_aead:
        # RFC 5282 §5.1 (and RFC 7383 §2.5 for SKF): the associated data is everything from the IKE
        # header up to the IV, so an SKF's fragment number and total are authenticated too.
        return head + iv + cipher.encrypt(sk_e, iv, plaintext, head), plaintext
    unsigned = head + iv + cipher.encrypt(sk_e, iv, plaintext)
    return unsigned + integ.compute(sk_a, unsigned), plaintext


def open_sk(sa: IkeSa, data: bytes, message: Message, *, sender_is_initiator: bool) -> Opened:
    """Check and decrypt the SK payload of a received message.

    Raises ProtectionError when the ICV or tag is wrong, DecodeError when the contents are malformed.
    """
    sk = message.payloads[-1] if message.payloads else None
    if not isinstance(sk, EncryptedPayload):
        raise ProtectionError("the message has no Encrypted (SK) payload although it must be protected")
    chain, plaintext = _open(sa, data, sk.body, sender_is_initiator)
    # A DecodeError here (malformed inner payloads) goes to the caller, which answers it.
    payloads, fields = decode_payloads(chain, sk.first_inner, sender_is_initiator=sender_is_initiator, tree=False)
    return Opened(payloads, fields, plaintext)


def open_fragment(sa: IkeSa, data: bytes, fragment: EncryptedFragmentPayload, *, sender_is_initiator: bool) -> tuple[bytes, bytes]:
    """Check and decrypt one SKF fragment: (its share of the payload chain, the padded plaintext).

    Raises ProtectionError when its ICV or tag is wrong or the padding is garbage.
    """
    return _open(sa, data, fragment.body, sender_is_initiator)


def _open(sa: IkeSa, data: bytes, body: bytes, sender_is_initiator: bool) -> tuple[bytes, bytes]:
    """Check the ICV over the whole datagram (`body` is its tail), decrypt, strip the padding."""
    cipher, integ = sa.ike.cipher, sa.ike.integrity
    sk_e, sk_a = sa.receiving_keys()
    icv_length = cipher.icv_length if cipher.is_aead else integ.icv_length
    if len(body) < cipher.iv_length + icv_length + 1:
        raise ProtectionError(f"encrypted payload body of {len(body)} bytes is too short for IV and ICV")
    body_at = len(data) - len(body)
    iv = body[: cipher.iv_length]
    if cipher.is_aead:
        try:
            plaintext = cipher.decrypt(sk_e, iv, body[cipher.iv_length :], data[:body_at])
        except IntegrityError:
            raise ProtectionError(f"AES-GCM tag check failed with {'SK_ei' if sender_is_initiator else 'SK_er'}") from None
    else:
        icv = body[-icv_length:]
        if not integ.verify(sk_a, data[:-icv_length], icv):
            raise ProtectionError(f"integrity check (ICV) failed with {'SK_ai' if sender_is_initiator else 'SK_ar'}")
        encrypted = body[cipher.iv_length : -icv_length]
        if len(encrypted) % cipher.block_size:
            raise ProtectionError(f"ciphertext length {len(encrypted)} is not a multiple of the block size")
        plaintext = cipher.decrypt(sk_e, iv, encrypted)
    pad = plaintext[-1] if plaintext else 0
    if not plaintext or pad + 1 > len(plaintext):
        raise ProtectionError(f"pad length {pad} is larger than the decrypted data")
    return plaintext[: -(pad + 1)], plaintext
