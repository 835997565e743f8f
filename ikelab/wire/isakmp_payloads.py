"""ISAKMP payload dataclasses (RFC 2408 §3, RFC 2407 §4.6, RFC 3947 §3-4) and the encoding of their bodies.

Each payload knows its `payload_type` and encodes its body (`encode_body()`: the bytes after the
4-byte generic payload header); chaining and lengths are done by `isakmp_message.encode_payloads`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from .isakmp_constants import Doi, NotifyType, PayloadType, ProtocolId, Situation, name_of

# --- SA payload substructures (RFC 2408 §3.4-3.6) ---

Attribute = tuple[int, int | bytes]  # (type, value): an int is sent in TV format, bytes in TLV format


def encode_attribute(attr_type: int, value: int | bytes) -> bytes:
    if isinstance(value, int):  # TV: the AF bit says the value sits where the length would be
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"attribute {attr_type}: TV value {value} does not fit 16 bits; pass bytes for TLV")
        return struct.pack("!HH", 0x8000 | attr_type, value)
    return struct.pack("!HH", attr_type, len(value)) + value


def attribute_value(value: int | bytes) -> int:
    """The number an attribute carries, whichever format it came in (a TLV life duration, say)."""
    return value if isinstance(value, int) else int.from_bytes(value, "big")


def number_attribute(attr_type: int, value: int) -> Attribute:
    """TV when the value fits 16 bits, else the shortest TLV (e.g. a lifetime of 86400 s)."""
    if value <= 0xFFFF:
        return (attr_type, value)
    return (attr_type, value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass
class Transform:
    number: int
    transform_id: int  # KEY_IKE in phase 1; ESP_AES and so on in phase 2
    attributes: list[Attribute] = field(default_factory=list)

    def get(self, attr_type: int) -> int | None:
        """The first value of an attribute type, as a number, or None."""
        return next((attribute_value(v) for t, v in self.attributes if t == attr_type), None)

    def encode(self, last: bool) -> bytes:
        encoded = b"".join(encode_attribute(t, v) for t, v in self.attributes)
        next_payload = PayloadType.NONE if last else PayloadType.TRANSFORM
        return struct.pack("!BxHBBxx", next_payload, 8 + len(encoded), self.number, self.transform_id) + encoded


@dataclass
class Proposal:
    number: int
    protocol: int
    spi: bytes
    transforms: list[Transform]

    def encode(self, last: bool) -> bytes:
        body = b"".join(t.encode(i == len(self.transforms) - 1) for i, t in enumerate(self.transforms))
        next_payload = PayloadType.NONE if last else PayloadType.PROPOSAL
        header = struct.pack(
            "!BxHBBBB", next_payload, 8 + len(self.spi) + len(body), self.number, self.protocol, len(self.spi), len(self.transforms)
        )
        return header + self.spi + body


# --- Payloads ---


@dataclass
class SaPayload:
    proposals: list[Proposal]
    doi: int = Doi.IPSEC
    situation: int = Situation.SIT_IDENTITY_ONLY
    payload_type: ClassVar[int] = PayloadType.SA

    def encode_body(self) -> bytes:
        body = b"".join(p.encode(i == len(self.proposals) - 1) for i, p in enumerate(self.proposals))
        return struct.pack("!II", self.doi, self.situation) + body


@dataclass
class KePayload:
    data: bytes  # the DH public value; the group is the one the SA negotiated
    payload_type: ClassVar[int] = PayloadType.KE

    def encode_body(self) -> bytes:
        return self.data


@dataclass
class IdPayload:
    id_type: int
    data: bytes
    protocol: int = 0  # IP protocol, 0 = any (phase 1 IDs: 0 or UDP)
    port: int = 0  # 0 = any
    payload_type: ClassVar[int] = PayloadType.ID

    def encode_body(self) -> bytes:
        """ID Type | Protocol | Port | data: the IDii_b/IDir_b bytes HASH_I and HASH_R cover."""
        return struct.pack("!BBH", self.id_type, self.protocol, self.port) + self.data


@dataclass
class CertPayload:
    encoding: int
    data: bytes
    payload_type: ClassVar[int] = PayloadType.CERT

    def encode_body(self) -> bytes:
        return bytes([self.encoding]) + self.data


@dataclass
class CertReqPayload:
    encoding: int
    authority: bytes  # a DER distinguished name of an acceptable CA, or empty for any
    payload_type: ClassVar[int] = PayloadType.CR

    def encode_body(self) -> bytes:
        return bytes([self.encoding]) + self.authority


@dataclass
class HashPayload:
    data: bytes
    payload_type: ClassVar[int] = PayloadType.HASH

    def encode_body(self) -> bytes:
        return self.data


@dataclass
class SigPayload:
    data: bytes
    payload_type: ClassVar[int] = PayloadType.SIG

    def encode_body(self) -> bytes:
        return self.data


@dataclass
class NoncePayload:
    data: bytes
    payload_type: ClassVar[int] = PayloadType.NONCE

    def encode_body(self) -> bytes:
        return self.data


@dataclass
class NotifyPayload:
    notify_type: int
    protocol: int = ProtocolId.ISAKMP
    spi: bytes = b""
    data: bytes = b""
    doi: int = Doi.IPSEC
    payload_type: ClassVar[int] = PayloadType.NOTIFICATION

    def encode_body(self) -> bytes:
        return struct.pack("!IBBH", self.doi, self.protocol, len(self.spi), self.notify_type) + self.spi + self.data


@dataclass
class DeletePayload:
    protocol: int
    spi_size: int  # 16 (both cookies) for the ISAKMP SA, 4 for ESP/AH
    spis: list[bytes]
    doi: int = Doi.IPSEC
    payload_type: ClassVar[int] = PayloadType.DELETE

    def encode_body(self) -> bytes:
        return struct.pack("!IBBH", self.doi, self.protocol, self.spi_size, len(self.spis)) + b"".join(self.spis)


@dataclass
class VendorPayload:
    data: bytes
    payload_type: ClassVar[int] = PayloadType.VENDOR_ID

    def encode_body(self) -> bytes:
        return self.data


@dataclass
class NatDPayload:
    """NAT discovery (RFC 3947 §3.2): HASH(CKY-I | CKY-R | IP | Port) of one address."""

    data: bytes
    draft: bool = False  # sent as payload type 130 by pre-RFC implementations

    @property
    def payload_type(self) -> int:
        return PayloadType.NAT_D_DRAFT if self.draft else PayloadType.NAT_D

    def encode_body(self) -> bytes:
        return self.data


@dataclass
class NatOaPayload:
    """NAT original address (RFC 3947 §5.2), sent in quick mode for transport mode."""

    id_type: int  # ID_IPV4_ADDR or ID_IPV6_ADDR
    address: bytes
    draft: bool = False

    @property
    def payload_type(self) -> int:
        return PayloadType.NAT_OA_DRAFT if self.draft else PayloadType.NAT_OA

    def encode_body(self) -> bytes:
        return struct.pack("!B3x", self.id_type) + self.address


@dataclass
class UnknownPayload:
    payload_type: int
    body: bytes

    def encode_body(self) -> bytes:
        return self.body


Payload = (
    SaPayload
    | KePayload
    | IdPayload
    | CertPayload
    | CertReqPayload
    | HashPayload
    | SigPayload
    | NoncePayload
    | NotifyPayload
    | DeletePayload
    | VendorPayload
    | NatDPayload
    | NatOaPayload
    | UnknownPayload
)

SHORT_NAMES = {
    PayloadType.SA: "SA",
    PayloadType.KE: "KE",
    PayloadType.ID: "ID",
    PayloadType.CERT: "CERT",
    PayloadType.CR: "CR",
    PayloadType.HASH: "HASH",
    PayloadType.SIG: "SIG",
    PayloadType.DELETE: "D",
    PayloadType.VENDOR_ID: "VID",
    PayloadType.NAT_D: "NAT-D",
    PayloadType.NAT_D_DRAFT: "NAT-D",
    PayloadType.NAT_OA: "NAT-OA",
    PayloadType.NAT_OA_DRAFT: "NAT-OA",
}


def short_name(payload: Payload, *, sender_is_initiator: bool | None = None) -> str:
    """RFC 2409 diagram name: "SA", "Ni", "N(INITIAL_CONTACT)"; Nonce needs the sender's role."""
    match payload:
        case NoncePayload():
            return {True: "Ni", False: "Nr"}.get(sender_is_initiator, "NONCE")
        case NotifyPayload(notify_type=t):
            return f"N({name_of(NotifyType, t)})"
        case UnknownPayload(payload_type=t):
            return f"UNKNOWN({t})"
    return SHORT_NAMES[payload.payload_type]
