"""IKEv2 payload dataclasses (RFC 7296 §3) and the encoding of their bodies.

Each payload knows its `payload_type` and encodes its body (`encode_body()`: the bytes after the
4-byte generic payload header); chaining and lengths are done by `ikev2_message.encode_payloads`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar

from .ikev2_constants import PAYLOAD_SHORT, CfgType, NotifyType, PayloadType, TransformAttribute, TsType, name_of

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Read once: reading a member from an IntEnum class goes through EnumType.__getattr__, and the
# payload types of IDi/IDr and TSi/TSr are read for each payload encoded or named.
IDi, IDr, TSi, TSr = PayloadType.IDi, PayloadType.IDr, PayloadType.TSi, PayloadType.TSr


# --- SA payload substructures (RFC 7296 §3.3) ---


@dataclass
class Transform:
    type: int
    id: int
    key_length: int | None = None  # Key Length attribute (TV), in bits
    # Other attributes, in wire order after the key length: int = TV format, bytes = TLV format.
    attributes: list[tuple[int, int | bytes]] = field(default_factory=list)

    def encode(self, last: bool) -> bytes:
        if not self.attributes:  # the usual transform: its bytes are remembered (see _plain_transform)
            return _plain_transform(self.type, self.id, self.key_length, last)
        attrs = [] if self.key_length is None else [(KEY_LENGTH, self.key_length)]
        encoded = b"".join(_encode_attribute(t, v) for t, v in attrs + self.attributes)
        return struct.pack("!BxHBxH", 0 if last else 3, 8 + len(encoded), self.type, self.id) + encoded


KEY_LENGTH = int(TransformAttribute.KEY_LENGTH)  # an int: reading an enum member costs a lookup each time


@lru_cache(maxsize=512)
def _plain_transform(ttype: int, tid: int, key_length: int | None, last: bool) -> bytes:
    """A transform with at most a Key Length attribute: every handshake offers and answers the same
    few, so their bytes are made once."""
    encoded = b"" if key_length is None else _encode_attribute(KEY_LENGTH, key_length)
    return struct.pack("!BxHBxH", 0 if last else 3, 8 + len(encoded), ttype, tid) + encoded


def _encode_attribute(attr_type: int, value: int | bytes) -> bytes:
    if isinstance(value, int):  # TV: the AF bit says the value sits in the length field
        return struct.pack("!HH", 0x8000 | attr_type, value)
    return struct.pack("!HH", attr_type, len(value)) + value


PROPOSAL_HEADER = struct.Struct("!BxHBBBB")  # Last Substruc, Length, Num, Protocol ID, SPI Size, Num Transforms


@dataclass
class Proposal:
    number: int
    protocol: int
    spi: bytes
    transforms: list[Transform]

    def encode(self, last: bool) -> bytes:
        final = len(self.transforms) - 1
        body = b"".join([t.encode(i == final) for i, t in enumerate(self.transforms)])
        header = PROPOSAL_HEADER.pack(
            0 if last else 2,
            8 + len(self.spi) + len(body),
            self.number,
            self.protocol,
            len(self.spi),
            len(self.transforms),
        )
        return header + self.spi + body


# --- Traffic selectors (RFC 7296 §3.13.1) ---

SELECTOR_HEADER = struct.Struct("!BBHHH")  # TS Type, IP Protocol ID, Selector Length, Start Port, End Port


@dataclass
class TrafficSelector:
    ts_type: int
    ip_protocol: int
    start_port: int
    end_port: int
    start_address: bytes
    end_address: bytes

    @classmethod
    def from_network(cls, network: str, protocol: int = 0, ports: tuple[int, int] = (0, 65535)) -> TrafficSelector:
        """Selector covering a CIDR network, e.g. "198.51.100.0/24" or "2001:db8::/64"."""
        net = ipaddress.ip_network(network, strict=False)
        return cls.from_range(str(net[0]), str(net[-1]), protocol, ports)

    @classmethod
    def from_range(
        cls, first: str, last: str, protocol: int = 0, ports: tuple[int, int] = (0, 65535)
    ) -> TrafficSelector:
        start, end = ipaddress.ip_address(first), ipaddress.ip_address(last)
        ts_type = TsType.TS_IPV4_ADDR_RANGE if start.version == 4 else TsType.TS_IPV6_ADDR_RANGE
        return cls(ts_type, protocol, ports[0], ports[1], start.packed, end.packed)

    @property
    def first(self) -> IpAddress:
        return ipaddress.ip_address(self.start_address)

    @property
    def last(self) -> IpAddress:
        return ipaddress.ip_address(self.end_address)

    def __str__(self) -> str:
        networks = list(ipaddress.summarize_address_range(self.first, self.last))
        text = str(networks[0]) if len(networks) == 1 else f"{self.first}-{self.last}"
        if self.ip_protocol:
            text += f" proto {self.ip_protocol} ports {self.start_port}-{self.end_port}"
        elif (self.start_port, self.end_port) != (0, 65535):
            text += f" ports {self.start_port}-{self.end_port}"
        return text

    def encode(self) -> bytes:
        length = 8 + len(self.start_address) + len(self.end_address)
        header = SELECTOR_HEADER.pack(self.ts_type, self.ip_protocol, length, self.start_port, self.end_port)
        return header + self.start_address + self.end_address


# --- Payloads ---

# Compiled once: struct.pack with a format string looks the format up again on every call.
KE_HEADER = struct.Struct("!Hxx")  # Diffie-Hellman Group Num, RESERVED
NOTIFY_HEADER = struct.Struct("!BBH")  # Protocol ID, SPI Size, Notify Message Type
BYTE_AND_RESERVED = struct.Struct("!B3x")  # ID Type, Auth Method or Number of TSs, then RESERVED


@dataclass
class SaPayload:
    proposals: list[Proposal]
    critical: bool = False
    payload_type: ClassVar[int] = PayloadType.SA

    def encode_body(self) -> bytes:
        final = len(self.proposals) - 1
        return b"".join([p.encode(i == final) for i, p in enumerate(self.proposals)])


@dataclass
class KePayload:
    group: int
    data: bytes
    critical: bool = False
    payload_type: ClassVar[int] = PayloadType.KE

    def encode_body(self) -> bytes:
        return KE_HEADER.pack(self.group) + self.data


@dataclass
class NoncePayload:
    data: bytes
    critical: bool = False
    payload_type: ClassVar[int] = PayloadType.NONCE

    def encode_body(self) -> bytes:
        return self.data


@dataclass
class NotifyPayload:
    notify_type: int
    protocol: int = 0
    spi: bytes = b""
    data: bytes = b""
    critical: bool = False
    payload_type: ClassVar[int] = PayloadType.NOTIFY

    def encode_body(self) -> bytes:
        return NOTIFY_HEADER.pack(self.protocol, len(self.spi), self.notify_type) + self.spi + self.data


@dataclass
class IdPayload:
    initiator: bool  # IDi when true, IDr otherwise
    id_type: int
    data: bytes
    critical: bool = False

    @property
    def payload_type(self) -> int:
        return IDi if self.initiator else IDr

    def id_body(self) -> bytes:
        """ID Type | RESERVED | data: the octets RFC 7296 §2.15 feeds into the AUTH MAC (IDi'/IDr')."""
        return BYTE_AND_RESERVED.pack(self.id_type) + self.data

    def encode_body(self) -> bytes:
        return self.id_body()


@dataclass
class AuthPayload:
    method: int
    data: bytes
    critical: bool = False
    payload_type: ClassVar[int] = PayloadType.AUTH

    def encode_body(self) -> bytes:
        return BYTE_AND_RESERVED.pack(self.method) + self.data


@dataclass
class CertPayload:
    encoding: int
    data: bytes
    critical: bool = False
    payload_type: ClassVar[int] = PayloadType.CERT

    def encode_body(self) -> bytes:
        return bytes([self.encoding]) + self.data


@dataclass
class CertReqPayload:
    encoding: int
    data: bytes  # for X.509: concatenated SHA-1 hashes of trusted CAs' public keys
    critical: bool = False
    payload_type: ClassVar[int] = PayloadType.CERTREQ

    def encode_body(self) -> bytes:
        return bytes([self.encoding]) + self.data


@dataclass
class TsPayload:
    initiator: bool  # TSi when true, TSr otherwise
    selectors: list[TrafficSelector]
    critical: bool = False

    @property
    def payload_type(self) -> int:
        return TSi if self.initiator else TSr

    def encode_body(self) -> bytes:
        return BYTE_AND_RESERVED.pack(len(self.selectors)) + b"".join([s.encode() for s in self.selectors])


@dataclass
class EncryptedPayload:
    first_inner: int  # carried in the SK payload's Next Payload field
    body: bytes  # IV | ciphertext | ICV, opaque to the codec
    critical: bool = False
    payload_type: ClassVar[int] = PayloadType.SK

    def encode_body(self) -> bytes:
        return self.body


@dataclass
class EncryptedFragmentPayload:
    first_inner: int  # only in fragment 1; zero in the others (RFC 7383 §2.5)
    fragment_number: int
    total_fragments: int
    body: bytes
    critical: bool = False
    payload_type: ClassVar[int] = PayloadType.SKF

    def encode_body(self) -> bytes:
        return struct.pack("!HH", self.fragment_number, self.total_fragments) + self.body


@dataclass
class DeletePayload:
    protocol: int
    spi_size: int
    spis: list[bytes]
    critical: bool = False
    payload_type: ClassVar[int] = PayloadType.DELETE

    def encode_body(self) -> bytes:
        return struct.pack("!BBH", self.protocol, self.spi_size, len(self.spis)) + b"".join(self.spis)


@dataclass
class VendorPayload:
    data: bytes
    critical: bool = False
    payload_type: ClassVar[int] = PayloadType.VENDOR

    def encode_body(self) -> bytes:
        return self.data


@dataclass
class ConfigPayload:
    cfg_type: int
    attributes: list[tuple[int, bytes]]
    critical: bool = False
    payload_type: ClassVar[int] = PayloadType.CP

    def encode_body(self) -> bytes:
        attrs = b"".join(struct.pack("!HH", t, len(v)) + v for t, v in self.attributes)
        return struct.pack("!B3x", self.cfg_type) + attrs


@dataclass
class EapPayload:
    message: bytes  # a whole EAP packet (RFC 3748): Code, Identifier, Length, Type, data
    critical: bool = False
    payload_type: ClassVar[int] = PayloadType.EAP

    def encode_body(self) -> bytes:
        return self.message


@dataclass
class UnknownPayload:
    payload_type: int
    body: bytes
    critical: bool = False  # always false after decoding: unknown critical payloads are rejected

    def encode_body(self) -> bytes:
        return self.body


Payload = (
    SaPayload
    | KePayload
    | NoncePayload
    | NotifyPayload
    | IdPayload
    | AuthPayload
    | CertPayload
    | CertReqPayload
    | TsPayload
    | EncryptedPayload
    | EncryptedFragmentPayload
    | DeletePayload
    | VendorPayload
    | ConfigPayload
    | EapPayload
    | UnknownPayload
)


# Short names of the payloads named by their class alone, looked up before anything else.
SHORT_NAMES = {
    cls: PAYLOAD_SHORT[cls.payload_type]
    for cls in (
        SaPayload,
        KePayload,
        AuthPayload,
        CertPayload,
        CertReqPayload,
        EncryptedPayload,
        DeletePayload,
        VendorPayload,
        EapPayload,
    )
}


# "N(COOKIE)" for each assigned notify type, made once (as name_of names them).
NOTIFY_SHORT_NAMES = {member.value: f"N({member.name})" for member in NotifyType}


def short_name(payload: Payload, *, sender_is_initiator: bool) -> str:
    """RFC 7296 diagram name: "SA", "Ni", "N(COOKIE)", "CP(CFG_REQUEST)"; SK without its contents."""
    # By exact class, the most frequent first: a `match` on class patterns costs several times more.
    kind = type(payload)
    name = SHORT_NAMES.get(kind)
    if name is not None:
        return name
    if kind is NotifyPayload:
        name = NOTIFY_SHORT_NAMES.get(payload.notify_type)
        return f"N({name_of(NotifyType, payload.notify_type)})" if name is None else name
    if kind is IdPayload or kind is TsPayload:
        return PAYLOAD_SHORT[payload.payload_type]
    if kind is NoncePayload:
        return "Ni" if sender_is_initiator else "Nr"
    if kind is ConfigPayload:
        return f"CP({name_of(CfgType, payload.cfg_type)})"
    if kind is EncryptedFragmentPayload:
        return f"SKF({payload.fragment_number}/{payload.total_fragments})"
    if kind is UnknownPayload:
        return f"UNKNOWN({payload.payload_type})"
    return PAYLOAD_SHORT[payload.payload_type]
