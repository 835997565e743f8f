"""The ISAKMP header, the message, and encoding of the payload chain (RFC 2408 §3.1, §3.2).

With the E flag set everything after the header is encrypted; the codec carries that ciphertext
as opaque bytes (`Message.encrypted`) and the engine decrypts it, then decodes the payload chain
with `decode_payloads`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TypeVar

from .isakmp_constants import HeaderFlags, PayloadType
from .isakmp_payloads import Payload, short_name

HEADER_SIZE = 28
GENERIC_HEADER_SIZE = 4
ENCRYPTION_FLAG = int(HeaderFlags.ENCRYPTION)
KNOWN_FLAGS = int(HeaderFlags.ENCRYPTION | HeaderFlags.COMMIT | HeaderFlags.AUTHENTICATION_ONLY)

P = TypeVar("P")


@dataclass
class Header:
    cky_i: bytes  # initiator cookie: IKEv1's name for the initiator's SPI
    cky_r: bytes  # responder cookie, zero in the first message
    next_payload: int
    exchange: int
    flags: int
    message_id: int
    length: int = 0
    major: int = 1
    minor: int = 0

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & ENCRYPTION_FLAG)

    def encode(self) -> bytes:
        if len(self.cky_i) != 8 or len(self.cky_r) != 8:
            raise ValueError("ISAKMP cookies are 8 bytes each")
        return struct.pack(
            "!8s8sBBBBII",
            self.cky_i,
            self.cky_r,
            self.next_payload,
            self.major << 4 | self.minor,
            self.exchange,
            self.flags,
            self.message_id,
            self.length,
        )


@dataclass
class Message:
    header: Header
    payloads: list[Payload] = field(default_factory=list)  # the plaintext payloads; [] while encrypted
    encrypted: bytes | None = None  # with the E flag: ciphertext of the payload chain and its padding

    def find(self, cls: type[P]) -> P | None:
        return next((p for p in self.payloads if isinstance(p, cls)), None)

    def find_all(self, cls: type[P]) -> list[P]:
        return [p for p in self.payloads if isinstance(p, cls)]

    def summary(self, inner: list[Payload] | None = None, *, sender_is_initiator: bool | None = None) -> str:
        """RFC 2409 diagram form: "HDR, SA, VID" or, encrypted, "HDR*, ID, HASH".

        ISAKMP headers do not say who sent them, so Ni/Nr need `sender_is_initiator`; the
        codec cannot see inside encrypted messages, so pass the decrypted payloads as `inner`.
        """
        if self.encrypted is None:
            names = [short_name(p, sender_is_initiator=sender_is_initiator) for p in self.payloads]
            return ", ".join(["HDR"] + names)
        if inner is None:
            return "HDR*, (encrypted)"
        return ", ".join(["HDR*"] + [short_name(p, sender_is_initiator=sender_is_initiator) for p in inner])


def encode_payloads(payloads: list[Payload]) -> tuple[int, bytes]:
    """Chain payloads: (type of the first payload, bytes). Also builds the plaintext to encrypt."""
    chunks = []
    for i, payload in enumerate(payloads):
        next_type = payloads[i + 1].payload_type if i + 1 < len(payloads) else PayloadType.NONE
        body = payload.encode_body()
        length = GENERIC_HEADER_SIZE + len(body)
        if length > 0xFFFF:
            raise ValueError(f"{type(payload).__name__} is {length} bytes, over the 65535-byte payload limit")
        chunks.append(struct.pack("!BxH", next_type, length) + body)
    first = payloads[0].payload_type if payloads else PayloadType.NONE
    return first, b"".join(chunks)


def encode_message(msg: Message) -> bytes:
    """Encode deterministically; fills msg.header.next_payload (plaintext only) and length in place.

    For an encrypted message the caller sets the E flag and the first inner payload type in the
    header, and passes the ciphertext in `msg.encrypted`.
    """
    if msg.encrypted is not None:
        if not msg.header.encrypted:
            raise ValueError("a message with encrypted contents needs the E flag in its header")
        body = msg.encrypted
    else:
        msg.header.next_payload, body = encode_payloads(msg.payloads)
    msg.header.length = HEADER_SIZE + len(body)
    return msg.header.encode() + body
