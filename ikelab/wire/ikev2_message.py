"""The IKE header, the message, and encoding of the payload chain (RFC 7296 §3.1, §3.2)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TypeVar

from .ikev2_constants import HeaderFlags, PayloadType
from .ikev2_payloads import (
    EncryptedFragmentPayload,
    EncryptedPayload,
    NotifyPayload,
    Payload,
    short_name,
)

HEADER_SIZE = 28
GENERIC_HEADER_SIZE = 4
CRITICAL_BIT = 0x80
# Plain ints for tests on decoded flags: `int & HeaderFlags.X` runs IntFlag's Python-level __rand__.
INITIATOR_FLAG = int(HeaderFlags.INITIATOR)
RESPONSE_FLAG = int(HeaderFlags.RESPONSE)
RESERVED_FLAGS = 0xFF & ~int(HeaderFlags.INITIATOR | HeaderFlags.VERSION | HeaderFlags.RESPONSE)

HEADER_FORMAT = struct.Struct("!8s8sBBBBII")  # SPIi, SPIr, Next Payload, Version, Exchange, Flags, Message ID, Length

P = TypeVar("P")


@dataclass
class Header:
    spi_i: bytes
    spi_r: bytes
    next_payload: int
    exchange: int
    flags: int
    message_id: int
    length: int = 0
    major: int = 2
    minor: int = 0

    @property
    def is_initiator(self) -> bool:
        """I flag: sent by the original initiator of the IKE SA (not "the requester")."""
        return bool(self.flags & INITIATOR_FLAG)

    @property
    def is_response(self) -> bool:
        return bool(self.flags & RESPONSE_FLAG)

    def encode(self) -> bytes:
        if len(self.spi_i) != 8 or len(self.spi_r) != 8:
            raise ValueError("IKE SPIs are 8 bytes each")
        return HEADER_FORMAT.pack(
            self.spi_i,
            self.spi_r,
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
    payloads: list[Payload]

    # Plain loops: the engine looks for payloads in every message, and a generator costs more.

    def find(self, cls: type[P]) -> P | None:
        for payload in self.payloads:
            if isinstance(payload, cls):
                return payload
        return None

    def find_all(self, cls: type[P]) -> list[P]:
        return [p for p in self.payloads if isinstance(p, cls)]

    def notifies(self) -> list[NotifyPayload]:
        return [p for p in self.payloads if isinstance(p, NotifyPayload)]

    def summary(self, inner: list[Payload] | None = None) -> str:
        """RFC 7296 diagram form: "HDR, SA, KE, Ni" or "HDR, SK {IDi, AUTH, SA, TSi, TSr}".

        The codec cannot see inside SK; pass the decrypted `inner` payloads to list them.
        """
        sender = not self.header.is_response  # requests carry Ni, responses Nr (RFC 7296 §1.3)
        parts = ["HDR"]
        for payload in self.payloads:
            name = short_name(payload, sender_is_initiator=sender)
            if inner is not None and isinstance(payload, (EncryptedPayload, EncryptedFragmentPayload)):
                name += " {" + ", ".join(short_name(p, sender_is_initiator=sender) for p in inner) + "}"
            parts.append(name)
        return ", ".join(parts)


ENCRYPTED_TYPES = (EncryptedPayload, EncryptedFragmentPayload)
GENERIC_HEADER = struct.Struct("!BBH")  # Next Payload, Critical and reserved bits, Payload Length


def encode_payloads(payloads: list[Payload]) -> tuple[int, bytes]:
    """Chain payloads: (type of the first payload, bytes). Also used for SK plaintext."""
    chunks = []  # each payload's generic header, then its body
    count = len(payloads)
    for following, payload in enumerate(payloads, 1):  # `following`: the index of the next payload
        if isinstance(payload, ENCRYPTED_TYPES):
            if following != count:
                raise ValueError("the SK/SKF payload must be the last payload (RFC 7296 §3.14)")
            next_type = payload.first_inner  # the chain continues inside the encrypted data
        else:
            next_type = payloads[following].payload_type if following < count else PayloadType.NONE
        body = payload.encode_body()
        length = GENERIC_HEADER_SIZE + len(body)
        if length > 0xFFFF:
            raise ValueError(f"{type(payload).__name__} is {length} bytes, over the 65535-byte payload limit")
        chunks += (GENERIC_HEADER.pack(next_type, CRITICAL_BIT if payload.critical else 0, length), body)
    first = payloads[0].payload_type if payloads else PayloadType.NONE
    return first, b"".join(chunks)


def encode_lone_payload_header(header: Header, payload_type: int, next_type: int, body_length: int) -> bytes:
    """What encode_message writes before the body of a message whose only payload is `payload_type`
    (not critical) with a body of `body_length` bytes, which the caller appends: for SK and SKF,
    sealed after their header is known. Fills header.next_payload and header.length as encode_message does."""
    length = GENERIC_HEADER_SIZE + body_length
    if length > 0xFFFF:
        raise ValueError(f"the payload is {length} bytes, over the 65535-byte payload limit")
    header.next_payload = payload_type
    header.length = HEADER_SIZE + length
    return header.encode() + GENERIC_HEADER.pack(next_type, 0, length)


def encode_message(msg: Message) -> bytes:
    """Encode deterministically; fills msg.header.next_payload and msg.header.length in place."""
    first, chain = encode_payloads(msg.payloads)
    msg.header.next_payload = first
    msg.header.length = HEADER_SIZE + len(chain)
    return msg.header.encode() + chain
