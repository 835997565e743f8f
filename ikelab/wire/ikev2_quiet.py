"""The engine's decoding: the values of a payload chain without its tree (tree=False, RFC 7296 §3).

The engine decodes every message it receives and looks only at the values; the trace keeps the
datagram, and the TUI decodes it again with Fields when it shows one. So these decoders read each
structure with one struct unpack (or by indexing) and record nothing.

They accept exactly what the full decoders (ikev2_decode, ikev2_bodies, ikev2_sa) accept and give
the same payloads; anything else makes them raise, most often `Refused` without detail (a cut-short
unpack raises struct.error). The caller then decodes again with a Reader, which raises the precise
DecodeError. tests/test_wire_quiet_decode.py checks that both agree, on good and mangled input.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from .ikev2_bodies import DELETE_SPI_SIZES, SPI_SIZES, TS_LENGTHS
from .ikev2_constants import PayloadType, TransformAttribute
from .ikev2_message import CRITICAL_BIT
from .ikev2_payloads import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    ConfigPayload,
    DeletePayload,
    EapPayload,
    EncryptedFragmentPayload,
    EncryptedPayload,
    IdPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    TrafficSelector,
    Transform,
    TsPayload,
    UnknownPayload,
    VendorPayload,
)
from .ikev2_sa import PROPOSAL_SPI_SIZES


class Refused(Exception):
    """The quiet decoders refuse the input; the full decoder says why."""


# Plain ints, tested for every payload: comparing with an IntEnum member costs more.
SK, SKF = int(PayloadType.SK), int(PayloadType.SKF)
IDi, CERT, TSi = int(PayloadType.IDi), int(PayloadType.CERT), int(PayloadType.TSi)
KEY_LENGTH = int(TransformAttribute.KEY_LENGTH)
KEY_LENGTH_TV = 0x8000 | KEY_LENGTH  # the attribute header of a Key Length in the TV format

GENERIC_HEADER = struct.Struct("!BBH")  # Next Payload, Critical and reserved bits, Payload Length
U16 = struct.Struct("!H")
TWO_U16 = struct.Struct("!HH")  # an attribute's type and value or length; an SKF's number and total
TYPE_SIZE_TYPE = struct.Struct("!BBH")  # Notify: Protocol ID, SPI Size, Type; Delete: ..., Num of SPIs
PROPOSAL_HEADER = struct.Struct("!BxHBBBB")  # Last Substruc, Length, Num, Protocol ID, SPI Size, Num Transforms
TRANSFORM_HEADER = struct.Struct("!BxHBxH")  # Last Substruc, Transform Length, Transform Type, Transform ID
SELECTOR_HEADER = struct.Struct("!BBHHH")  # TS Type, IP Protocol ID, Selector Length, Start Port, End Port
# Their sizes as plain names: reading `.size` off a Struct is an attribute lookup, made for every structure.
GENERIC_SIZE, PROPOSAL_SIZE, TRANSFORM_SIZE, SELECTOR_SIZE = (
    header.size for header in (GENERIC_HEADER, PROPOSAL_HEADER, TRANSFORM_HEADER, SELECTOR_HEADER)
)


def decode_chain(data: bytes, pos: int, next_type: int, *, inside_sk: bool) -> list[Payload]:
    """The payloads from `pos` to the end of `data`, the first of type `next_type`."""
    payloads: list[Payload] = []
    size = len(data)
    while next_type:  # until NONE (0)
        if inside_sk and (next_type == SK or next_type == SKF):
            raise Refused("an encrypted payload inside encrypted content")
        following, flags, length = GENERIC_HEADER.unpack_from(data, pos)
        end = pos + length
        if length < GENERIC_SIZE or end > size:
            raise Refused("Payload Length")
        decoder = DECODERS.get(next_type)
        if decoder is not None:
            payload = decoder(data, pos + GENERIC_SIZE, end, next_type, following)
            if flags & CRITICAL_BIT:
                payload.critical = True
        elif flags & CRITICAL_BIT:
            raise Refused("an unknown critical payload")
        else:
            payload = UnknownPayload(next_type, data[pos + GENERIC_SIZE : end])
        payloads.append(payload)
        pos = end
        if next_type == SK or next_type == SKF:
            break  # the last payload: nothing may follow it (checked below)
        next_type = following
    if pos != size:
        raise Refused("bytes after the last payload")
    return payloads


# --- payload bodies: (data, body start, body end, payload type, next payload type) -> payload ---


def _sa(data: bytes, start: int, end: int, ptype: int, next_type: int) -> SaPayload:
    proposals: list[Proposal] = []
    pos, last = start, 2
    while last:  # Last Substruc: 2 = another proposal follows, 0 = the last one
        proposal, last, pos = _proposal(data, pos, end)
        if proposals and proposal.number != proposals[-1].number + 1:
            raise Refused("Proposal Num")
        proposals.append(proposal)
    if pos != end or len(proposals) > 1 and proposals[0].number != 1:
        raise Refused("Proposal Num")
    return SaPayload(proposals)


def _proposal(data: bytes, pos: int, end: int) -> tuple[Proposal, int, int]:
    """The proposal at `pos`: (proposal, its Last Substruc, where it ends)."""
    last, length, number, protocol, spi_size, count = PROPOSAL_HEADER.unpack_from(data, pos)
    proposal_end = pos + length
    spi_end = pos + PROPOSAL_SIZE + spi_size
    if last not in (0, 2) or length < PROPOSAL_SIZE or proposal_end > end or number == 0:
        raise Refused("Proposal header")
    if spi_size not in PROPOSAL_SPI_SIZES.get(protocol, (spi_size,)) or spi_end > proposal_end:
        raise Refused("SPI Size")
    transforms = _transforms(data, spi_end, proposal_end, count)
    return Proposal(number, protocol, data[pos + PROPOSAL_SIZE : spi_end], transforms), last, proposal_end


def _transforms(data: bytes, pos: int, end: int, count: int) -> list[Transform]:
    transforms = []
    for i in range(count):
        last, length, ttype, tid = TRANSFORM_HEADER.unpack_from(data, pos)
        transform_end = pos + length
        # Last Substruc: 3 = another transform follows, 0 = the last one
        if length < TRANSFORM_SIZE or transform_end > end or last != (0 if i == count - 1 else 3):
            raise Refused("Transform header")
        if length == 8:
            transform = Transform(ttype, tid)
        elif length == 12 and TWO_U16.unpack_from(data, pos + 8)[0] == KEY_LENGTH_TV:
            transform = Transform(ttype, tid, data[pos + 10] << 8 | data[pos + 11])  # the usual ENCR
        else:
            transform = Transform(ttype, tid)
            _read_attributes(data, pos + TRANSFORM_SIZE, transform_end, transform)
        transforms.append(transform)
        pos = transform_end
    if pos != end:
        raise Refused("Num Transforms")
    return transforms


def _read_attributes(data: bytes, pos: int, end: int, transform: Transform) -> None:
    while pos < end:
        if end - pos < TWO_U16.size:
            raise Refused("Attribute")
        header, value = TWO_U16.unpack_from(data, pos)
        pos += TWO_U16.size
        tv = header & 0x8000
        if not tv:  # TLV: `value` is the length of the value that follows
            value_end = pos + value
            if value_end > end:
                raise Refused("Attribute Length")
            value, pos = data[pos:value_end], value_end
        attr_type = header & 0x7FFF
        if attr_type == KEY_LENGTH and transform.key_length is None:
            if not tv:
                raise Refused("Key Length in the TLV format")
            transform.key_length = value
        else:
            transform.attributes.append((attr_type, value))


def _ke(data: bytes, start: int, end: int, ptype: int, next_type: int) -> KePayload:
    if end - start < 4:
        raise Refused("KE header")
    return KePayload(U16.unpack_from(data, start)[0], data[start + 4 : end])


def _nonce(data: bytes, start: int, end: int, ptype: int, next_type: int) -> NoncePayload:
    if not 16 <= end - start <= 256:
        raise Refused("Nonce length")
    return NoncePayload(data[start:end])


def _notify(data: bytes, start: int, end: int, ptype: int, next_type: int) -> NotifyPayload:
    if end - start < 4:
        raise Refused("Notify header")
    protocol, spi_size, notify_type = TYPE_SIZE_TYPE.unpack_from(data, start)
    spi_end = start + 4 + spi_size
    if spi_size and spi_size != SPI_SIZES.get(protocol) or spi_end > end:
        raise Refused("SPI Size")
    return NotifyPayload(notify_type, protocol, data[start + 4 : spi_end], data[spi_end:end])


def _id(data: bytes, start: int, end: int, ptype: int, next_type: int) -> IdPayload:
    if end - start < 4:
        raise Refused("ID header")
    return IdPayload(ptype == IDi, data[start], data[start + 4 : end])


def _auth(data: bytes, start: int, end: int, ptype: int, next_type: int) -> AuthPayload:
    if end - start < 4:
        raise Refused("AUTH header")
    return AuthPayload(data[start], data[start + 4 : end])


def _cert(data: bytes, start: int, end: int, ptype: int, next_type: int) -> CertPayload | CertReqPayload:
    if end - start < 1:
        raise Refused("Cert Encoding")
    if ptype == CERT:
        return CertPayload(data[start], data[start + 1 : end])
    return CertReqPayload(data[start], data[start + 1 : end])


def _ts(data: bytes, start: int, end: int, ptype: int, next_type: int) -> TsPayload:
    if end - start < 4:
        raise Refused("TS header")
    selectors = []
    pos = start + 4
    for _ in range(data[start]):  # Number of TSs
        ts_type, protocol, length, start_port, end_port = SELECTOR_HEADER.unpack_from(data, pos)
        if TS_LENGTHS.get(ts_type) != length or pos + length > end:
            raise Refused("Selector Length")
        middle = pos + SELECTOR_SIZE + (length - SELECTOR_SIZE) // 2
        first, last = data[pos + SELECTOR_SIZE : middle], data[middle : pos + length]
        if first > last:  # same-length big-endian bytes compare like the addresses
            raise Refused("Ending Address")
        selectors.append(TrafficSelector(ts_type, protocol, start_port, end_port, first, last))
        pos += length
    if pos != end:
        raise Refused("Number of TSs")
    return TsPayload(ptype == TSi, selectors)


def _sk(data: bytes, start: int, end: int, ptype: int, next_type: int) -> EncryptedPayload:
    return EncryptedPayload(next_type, data[start:end])


def _skf(data: bytes, start: int, end: int, ptype: int, next_type: int) -> EncryptedFragmentPayload:
    if end - start < 4:
        raise Refused("SKF header")
    number, total = TWO_U16.unpack_from(data, start)
    if number == 0 or number > total or number > 1 and next_type:
        raise Refused("Fragment Number")
    return EncryptedFragmentPayload(next_type, number, total, data[start + 4 : end])


def _delete(data: bytes, start: int, end: int, ptype: int, next_type: int) -> DeletePayload:
    if end - start < 4:
        raise Refused("Delete header")
    protocol, spi_size, count = TYPE_SIZE_TYPE.unpack_from(data, start)
    expected = DELETE_SPI_SIZES.get(protocol)
    if expected is not None and spi_size != expected or count * spi_size != end - start - 4:
        raise Refused("SPI Size or Num of SPIs")
    spis = [data[spi : spi + spi_size] for spi in range(start + 4, end, spi_size)] if spi_size else [b""] * count
    return DeletePayload(protocol, spi_size, spis)


def _vendor(data: bytes, start: int, end: int, ptype: int, next_type: int) -> VendorPayload:
    return VendorPayload(data[start:end])


def _cp(data: bytes, start: int, end: int, ptype: int, next_type: int) -> ConfigPayload:
    if end - start < 4:
        raise Refused("CP header")
    attributes = []
    pos = start + 4
    while pos < end:
        if end - pos < TWO_U16.size:
            raise Refused("Attribute")
        header, length = TWO_U16.unpack_from(data, pos)
        value_end = pos + TWO_U16.size + length
        if value_end > end:
            raise Refused("Attribute Length")
        attributes.append((header & 0x7FFF, data[pos + TWO_U16.size : value_end]))
        pos = value_end
    return ConfigPayload(data[start], attributes)


def _eap(data: bytes, start: int, end: int, ptype: int, next_type: int) -> EapPayload:
    if end - start < 4:
        raise Refused("EAP header")
    return EapPayload(data[start:end])


QuietDecoder = Callable[[bytes, int, int, int, int], Payload]

# The payload types the full decoders know (ikev2_bodies.DECODERS), keyed by plain ints.
DECODERS: dict[int, QuietDecoder] = {
    int(ptype): decoder
    for ptype, decoder in {
        PayloadType.SA: _sa,
        PayloadType.KE: _ke,
        PayloadType.IDi: _id,
        PayloadType.IDr: _id,
        PayloadType.CERT: _cert,
        PayloadType.CERTREQ: _cert,
        PayloadType.AUTH: _auth,
        PayloadType.NONCE: _nonce,
        PayloadType.NOTIFY: _notify,
        PayloadType.DELETE: _delete,
        PayloadType.VENDOR: _vendor,
        PayloadType.TSi: _ts,
        PayloadType.TSr: _ts,
        PayloadType.SK: _sk,
        PayloadType.CP: _cp,
        PayloadType.EAP: _eap,
        PayloadType.SKF: _skf,
    }.items()
}
