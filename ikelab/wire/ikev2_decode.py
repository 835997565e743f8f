"""Strict IKEv2 decoding with a byte span for every field (RFC 7296 §3, RFC 7383).

Every malformation raises DecodeError naming the payload, the field and the absolute offset, so
the engine can answer INVALID_SYNTAX and the TUI can point at the offending byte.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntEnum
from typing import Callable

from .errors import DecodeError, UnsupportedCriticalPayload, UnsupportedVersion
from .fields import Field
from .ikev2_constants import (
    TRANSFORM_ID_ENUMS,
    AuthMethod,
    CertEncoding,
    CfgType,
    ConfigAttribute,
    DhId,
    ExchangeType,
    HeaderFlags,
    IdType,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformAttribute,
    TransformType,
    TsType,
    name_of,
)
from .ikev2_message import CRITICAL_BIT, HEADER_SIZE, Header, Message
from .ikev2_notes import EXCHANGE_NOTES, PAYLOAD_NOTES, TRANSFORM_NOTES, notify_note
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
    short_name,
)
from .reader import Reader


@dataclass
class DecodedMessage:
    message: Message
    tree: Field  # "IKEv2 message": a "Header" child, then one child per payload


# --- display helpers ---


def _enum(cls: type[IntEnum]) -> Callable[[object], str]:
    return lambda v: name_of(cls, v)


def _payload_type_display(value: object) -> str:
    return f"{name_of(PayloadType, value)} ({value})"


def _flags_display(value: object) -> str:
    names = [n for flag, n in ((HeaderFlags.INITIATOR, "I"), (HeaderFlags.VERSION, "V"), (HeaderFlags.RESPONSE, "R"))
             if value & flag]
    return ", ".join(names) or "none"


def _protocol_display(value: object) -> str:
    return "none" if value == 0 else name_of(ProtocolId, value)


def _ip_display(value: object) -> str:
    return str(ipaddress.ip_address(value)) if len(value) in (4, 16) else value.hex()


# --- small readers shared by payloads ---


def _reserved(r: Reader, size: int, name: str = "Reserved") -> None:
    """Reserved bits must be sent as zero and ignored on receipt (RFC 7296 §3.2): accept, but say so."""
    value = r.uint(name, size, note="Must be zero; ignored on receipt.")
    if value:
        r.last.note = "Must be zero; ignored on receipt. Nonzero here: the sender did not clear it."


def _need(r: Reader, size: int, field: str, what: str) -> None:
    if r.remaining < size:
        raise r.error(field, f"the payload body is {r.remaining} bytes; {what} needs at least {size}")


SPI_SIZES = {ProtocolId.IKE: 8, ProtocolId.AH: 4, ProtocolId.ESP: 4}
# An IKE proposal has no SPI in IKE_SA_INIT and the new SA's SPI when rekeying (RFC 7296 §3.3.1).
PROPOSAL_SPI_SIZES = {ProtocolId.IKE: (0, 8), ProtocolId.AH: (4,), ProtocolId.ESP: (4,)}
ADDRESS_ATTRIBUTES = {
    ConfigAttribute.INTERNAL_IP4_ADDRESS, ConfigAttribute.INTERNAL_IP4_NETMASK, ConfigAttribute.INTERNAL_IP4_DNS,
    ConfigAttribute.INTERNAL_IP4_NBNS, ConfigAttribute.INTERNAL_IP4_DHCP, ConfigAttribute.INTERNAL_IP6_DNS,
    ConfigAttribute.INTERNAL_IP6_DHCP,
}


# --- payload bodies: each consumes exactly the payload body or raises ---


def _at(r: Reader, f: Field, reason: str) -> DecodeError:
    """An error pointing at an already decoded field."""
    return DecodeError(reason, payload=r.context, field=f.name, offset=f.start)


def _decode_sa(r: Reader, ptype: int, next_payload: int) -> SaPayload:
    if r.remaining == 0:
        raise r.error("Proposal", "an SA payload needs at least one proposal")
    proposals: list[Proposal] = []
    groups: list[Field] = []
    while True:
        proposal, group = _decode_proposal(r)
        if proposals and proposal.number != proposals[-1].number + 1:
            raise _at(r, group.find("Proposal Num"), "proposal numbers must count up by one "
                      f"(RFC 7296 §3.3.1): expected {proposals[-1].number + 1}, got {proposal.number}")
        proposals.append(proposal)
        groups.append(group)
        if group.children[0].value == 0:  # Last Substruc: 0 = last proposal
            break
        if r.remaining == 0:
            raise _at(r, group.children[0], "says more proposals follow (2) but the SA payload ends here")
    if r.remaining:
        raise _at(r, groups[-1].children[0], f"says this is the last proposal (0) but {r.remaining} bytes follow")
    if len(proposals) > 1 and proposals[0].number != 1:
        raise _at(r, groups[0].find("Proposal Num"),
                  f"the first proposal of an offer must be number 1, got {proposals[0].number}")
    return SaPayload(proposals)


def _decode_proposal(r: Reader) -> tuple[Proposal, Field]:
    start = r.pos
    with r.group("Proposal", note="One set of algorithms; the responder picks exactly one proposal.") as group:
        last = r.u8("Last Substruc", note="0 = last proposal, 2 = another proposal follows.")
        if last not in (0, 2):
            raise _at(r, r.last, f"must be 0 (last) or 2 (more proposals), got {last}")
        _reserved(r, 1)
        length = r.u16("Proposal Length", note="Bytes in this proposal, transforms included.")
        if length < 8:
            raise _at(r, r.last, f"length {length} is shorter than the 8-byte proposal header")
        if length > r.limit - start:
            raise _at(r, r.last, f"length {length} runs past the end of the SA payload "
                      f"({r.limit - start} bytes left)")
        with r.bounded(start + length):
            number = r.u8("Proposal Num", note="Offers count from 1; an answer repeats the number it accepted.")
            if number == 0:
                raise _at(r, r.last, "proposal numbers start at 1")
            protocol = r.u8("Protocol ID", show=_enum(ProtocolId), note="IKE for the IKE SA, ESP or AH for a Child SA.")
            spi_size = r.u8("SPI Size", note="0 in IKE_SA_INIT, 8 when rekeying an IKE SA, 4 for ESP/AH.")
            if spi_size not in PROPOSAL_SPI_SIZES.get(protocol, (spi_size,)):
                raise _at(r, r.last, f"SPI size {spi_size} does not fit protocol {name_of(ProtocolId, protocol)}")
            count = r.u8("Num Transforms", note="How many transforms (algorithms) follow.")
            spi = r.raw("SPI", spi_size, note="The SPI the sender wants the peer to use for this SA.") if spi_size else b""
            transforms = _decode_transforms(r, count)
    group.name = f"Proposal #{number}"
    group.display = f"{name_of(ProtocolId, protocol)}, {count} transforms"
    return Proposal(number, protocol, spi, transforms), group


def _decode_transforms(r: Reader, count: int) -> list[Transform]:
    transforms: list[Transform] = []
    for i in range(count):
        if r.remaining == 0:
            raise r.error("Num Transforms", f"says {count} transforms but the proposal holds only {i}")
        transform, group = _decode_transform(r)
        marker = group.children[0]
        if marker.value == 0 and i < count - 1:
            raise _at(r, marker, f"says last transform (0) on transform {i + 1} of {count}")
        if marker.value == 3 and i == count - 1:
            raise _at(r, marker, f"says more transforms follow (3) on the last of {count}")
        transforms.append(transform)
    if r.remaining:
        raise r.error("Num Transforms", f"says {count} transforms but {r.remaining} more bytes follow them")
    return transforms


def _decode_transform(r: Reader) -> tuple[Transform, Field]:
    start = r.pos
    with r.group("Transform") as group:
        last = r.u8("Last Substruc", note="0 = last transform, 3 = another transform follows.")
        if last not in (0, 3):
            raise _at(r, r.last, f"must be 0 (last) or 3 (more transforms), got {last}")
        _reserved(r, 1)
        length = r.u16("Transform Length", note="Bytes in this transform, attributes included.")
        if length < 8:
            raise _at(r, r.last, f"length {length} is shorter than the 8-byte transform header")
        if length > r.limit - start:
            raise _at(r, r.last, f"length {length} runs past the end of the proposal ({r.limit - start} bytes left)")
        with r.bounded(start + length):
            ttype = r.u8("Transform Type", show=_enum(TransformType))
            r.last.note = TRANSFORM_NOTES.get(ttype, "")
            _reserved(r, 1)
            id_enum = TRANSFORM_ID_ENUMS.get(ttype)
            tid = r.u16("Transform ID", show=_enum(id_enum) if id_enum else None, note="The algorithm offered.")
            transform = Transform(ttype, tid)
            while r.remaining:
                _decode_attribute(r, transform)
    group.name = f"Transform {name_of(TransformType, ttype)}"
    group.display = name_of(id_enum, tid) if id_enum else str(tid)
    if transform.key_length is not None:
        group.display += f" {transform.key_length}"
    group.note = TRANSFORM_NOTES.get(ttype, "")
    return transform, group


def _decode_attribute(r: Reader, transform: Transform) -> None:
    with r.group("Attribute") as group:
        header = r.u16("Attribute Type", note="Top bit set = TV format (value in the next 2 bytes), clear = TLV.")
        attr_type, tv = header & 0x7FFF, bool(header & 0x8000)
        if tv:
            value: int | bytes = r.u16("Attribute Value")
        else:
            size = r.u16("Attribute Length")
            value = r.raw("Attribute Value", size)
    if attr_type == TransformAttribute.KEY_LENGTH and transform.key_length is None:
        if not tv:
            raise _at(r, group.children[0], "Key Length must use the TV format (RFC 7296 §3.3.5)")
        transform.key_length = value
        group.name, group.display = "Attribute Key Length", f"{value} bits"
        group.note = "Key size in bits, for ciphers with a variable key size such as AES."
        group.children[-1].display = f"{value} bits"
    else:
        transform.attributes.append((attr_type, value))
        group.name = f"Attribute {attr_type}"
    group.children[0].display = f"{name_of(TransformAttribute, attr_type)}, {'TV' if tv else 'TLV'}"


def _decode_ke(r: Reader, ptype: int, next_payload: int) -> KePayload:
    _need(r, 4, "DH Group Num", "a KE payload (group number and reserved)")
    group = r.u16("DH Group Num", show=_enum(DhId), note="Group of the public value; must match the chosen DH transform.")
    _reserved(r, 2)
    data = r.rest("Key Exchange Data", note="The sender's Diffie-Hellman public value (g^x mod p, or a curve point).")
    return KePayload(group, data)


def _decode_nonce(r: Reader, ptype: int, next_payload: int) -> NoncePayload:
    data = r.rest("Nonce Data", note="Random value mixed into SKEYSEED and signed by AUTH.")
    if not 16 <= len(data) <= 256:
        raise _at(r, r.last, f"nonce is {len(data)} bytes; RFC 7296 §3.9 requires 16 to 256")
    return NoncePayload(data)


def _decode_notify(r: Reader, ptype: int, next_payload: int) -> NotifyPayload:
    _need(r, 4, "Protocol ID", "a Notify payload (protocol, SPI size, type)")
    protocol = r.u8("Protocol ID", show=_protocol_display, note="Which kind of SA the SPI names; ignored without SPI.")
    spi_size = r.u8("SPI Size", note="0 when the notification concerns the IKE SA.")
    if spi_size and spi_size != SPI_SIZES.get(protocol):
        raise _at(r, r.last, f"SPI size {spi_size} does not fit protocol {_protocol_display(protocol)} "
                  "(4 for ESP/AH, 8 for IKE)")
    notify_type = r.u16("Notify Message Type", show=_enum(NotifyType))
    r.last.note = notify_note(notify_type)
    spi = r.raw("SPI", spi_size, note="The SA this notification is about.") if spi_size else b""
    data = b""
    if r.remaining:
        data = r.rest("Notification Data", show=_notify_data_display(notify_type), note=notify_note(notify_type))
    return NotifyPayload(notify_type, protocol, spi, data)


def _notify_data_display(notify_type: int) -> Callable[[object], str] | None:
    if notify_type == NotifyType.INVALID_KE_PAYLOAD:
        return lambda v: f"wants {name_of(DhId, int.from_bytes(v, 'big'))}" if len(v) == 2 else v.hex()
    return None


def _decode_id(r: Reader, ptype: int, next_payload: int) -> IdPayload:
    _need(r, 4, "ID Type", "an ID payload (type and reserved)")
    id_type = r.u8("ID Type", show=_enum(IdType), note="How to read the identification data.")
    _reserved(r, 3)
    data = r.rest("Identification Data", show=_id_display(id_type),
                  note="The identity; these bytes, from ID Type on, are MACed into AUTH (IDi'/IDr').")
    return IdPayload(ptype == PayloadType.IDi, id_type, data)


def _id_display(id_type: int) -> Callable[[object], str] | None:
    if id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
        return _ip_display
    if id_type in (IdType.ID_FQDN, IdType.ID_RFC822_ADDR):
        return lambda v: v.decode("ascii", "backslashreplace")
    return None


def _decode_auth(r: Reader, ptype: int, next_payload: int) -> AuthPayload:
    _need(r, 4, "Auth Method", "an AUTH payload (method and reserved)")
    method = r.u8("Auth Method", show=_enum(AuthMethod), note="Shared key MIC or a signature, and which kind.")
    _reserved(r, 3)
    data = r.rest("Authentication Data", note="prf or signature over this side's first message, the peer's nonce "
                  "and prf(SK_p, ID').")
    return AuthPayload(method, data)


def _decode_cert(r: Reader, ptype: int, next_payload: int) -> CertPayload | CertReqPayload:
    _need(r, 1, "Cert Encoding", "a CERT or CERTREQ payload (encoding)")
    encoding = r.u8("Cert Encoding", show=_enum(CertEncoding), note="Format of the data that follows.")
    if ptype == PayloadType.CERT:
        return CertPayload(encoding, r.rest("Certificate Data", note="The certificate, DER-encoded for X.509."))
    data = r.rest("Certification Authority", note="SHA-1 hashes of the public keys of CAs the sender trusts, "
                  "20 bytes each.")
    return CertReqPayload(encoding, data)


def _decode_ts(r: Reader, ptype: int, next_payload: int) -> TsPayload:
    _need(r, 4, "Number of TSs", "a TS payload (count and reserved)")
    count = r.u8("Number of TSs")
    count_field = r.last
    _reserved(r, 3)
    selectors = []
    for i in range(count):
        if r.remaining == 0:
            raise _at(r, count_field, f"says {count} selectors but the payload holds only {i}")
        selectors.append(_decode_selector(r, i + 1))
    if r.remaining:
        raise _at(r, count_field, f"says {count} selectors but {r.remaining} more bytes follow them")
    return TsPayload(ptype == PayloadType.TSi, selectors)


TS_LENGTHS = {TsType.TS_IPV4_ADDR_RANGE: 16, TsType.TS_IPV6_ADDR_RANGE: 40}


def _decode_selector(r: Reader, index: int) -> TrafficSelector:
    with r.group(f"Traffic Selector #{index}") as group:
        ts_type = r.u8("TS Type", show=_enum(TsType))
        if ts_type not in TS_LENGTHS:
            raise _at(r, r.last, f"unsupported traffic selector type {ts_type}")
        protocol = r.u8("IP Protocol ID", note="0 = any protocol, else e.g. 1 ICMP, 6 TCP, 17 UDP.")
        length = r.u16("Selector Length")
        if length != TS_LENGTHS[ts_type]:
            raise _at(r, r.last, f"length {length} is wrong for {name_of(TsType, ts_type)} "
                      f"(must be {TS_LENGTHS[ts_type]})")
        start_port = r.u16("Start Port")
        end_port = r.u16("End Port", note="0-65535 = any port; 65535-0 = OPAQUE (ports not visible).")
        size = (length - 8) // 2
        start = r.raw("Starting Address", size, show=_ip_display)
        end = r.raw("Ending Address", size, show=_ip_display)
        if start > end:  # same-length big-endian bytes compare like the addresses
            raise _at(r, r.last, f"start address {_ip_display(start)} is above end address {_ip_display(end)}")
    selector = TrafficSelector(ts_type, protocol, start_port, end_port, start, end)
    group.display = str(selector)
    return selector


def _decode_sk(r: Reader, ptype: int, next_payload: int) -> EncryptedPayload:
    body = r.rest("Encrypted Data", note="IV, then the encrypted inner payloads and padding, then the ICV.")
    return EncryptedPayload(next_payload, body)


def _decode_skf(r: Reader, ptype: int, next_payload: int) -> EncryptedFragmentPayload:
    _need(r, 4, "Fragment Number", "an SKF payload (fragment number and total)")
    number = r.u16("Fragment Number", note="Which fragment this is, counting from 1.")
    total = r.u16("Total Fragments", note="How many fragments the original message was cut into.")
    if number == 0 or number > total:
        raise r.error("Fragment Number", f"fragment {number} of {total} is out of range", at=r.pos - 4)
    if number > 1 and next_payload:
        raise r.error("Next Payload", f"must be 0 in fragment {number}; only fragment 1 names the first inner "
                      "payload (RFC 7383 §2.5)", at=r.pos - 8)
    body = r.rest("Encrypted Data", note="IV, then this fragment's encrypted data and padding, then the ICV.")
    return EncryptedFragmentPayload(next_payload, number, total, body)


def _decode_delete(r: Reader, ptype: int, next_payload: int) -> DeletePayload:
    _need(r, 4, "Protocol ID", "a Delete payload (protocol, SPI size, count)")
    protocol = r.u8("Protocol ID", show=_enum(ProtocolId), note="IKE deletes this IKE SA; ESP/AH delete Child SAs.")
    spi_size = r.u8("SPI Size", note="0 for IKE (the SPIs are in the header), 4 for ESP/AH.")
    expected = {ProtocolId.IKE: 0, ProtocolId.AH: 4, ProtocolId.ESP: 4}.get(protocol)
    if expected is not None and spi_size != expected:
        raise _at(r, r.last, f"SPI size must be {expected} for {name_of(ProtocolId, protocol)}, got {spi_size}")
    count = r.u16("Num of SPIs")
    if count * spi_size != r.remaining:
        raise _at(r, r.last, f"{count} SPIs of {spi_size} bytes need {count * spi_size} bytes, "
                  f"but {r.remaining} follow")
    spis = [r.raw(f"SPI #{i + 1}", spi_size, note="The sender's inbound SPI of the Child SA to delete.")
            for i in range(count)]
    return DeletePayload(protocol, spi_size, spis)


def _decode_vendor(r: Reader, ptype: int, next_payload: int) -> VendorPayload:
    return VendorPayload(r.rest("Vendor ID", note="Usually a hash of a vendor or feature name."))


def _decode_cp(r: Reader, ptype: int, next_payload: int) -> ConfigPayload:
    _need(r, 4, "CFG Type", "a CP payload (type and reserved)")
    cfg_type = r.u8("CFG Type", show=_enum(CfgType), note="REQUEST/REPLY in IKE_AUTH, SET/ACK to push settings.")
    _reserved(r, 3)
    attributes = []
    while r.remaining:
        with r.group("Attribute") as group:
            header = r.u16("Attribute Type", note="Top bit reserved, then the 15-bit attribute type.")
            attr_type = header & 0x7FFF
            r.last.display = name_of(ConfigAttribute, attr_type)
            size = r.u16("Length")
            value = r.raw("Value", size, show=_ip_display if attr_type in ADDRESS_ATTRIBUTES else None)
        group.name = f"Attribute {name_of(ConfigAttribute, attr_type)}"
        attributes.append((attr_type, value))
    return ConfigPayload(cfg_type, attributes)


def _decode_eap(r: Reader, ptype: int, next_payload: int) -> EapPayload:
    _need(r, 4, "EAP Message", "an EAP payload (code, identifier, length)")
    return EapPayload(r.rest("EAP Message", note="One EAP packet (RFC 3748), carried as is."))


Decoder = Callable[[Reader, int, int], Payload]

DECODERS: dict[int, Decoder] = {
    PayloadType.SA: _decode_sa,
    PayloadType.KE: _decode_ke,
    PayloadType.IDi: _decode_id,
    PayloadType.IDr: _decode_id,
    PayloadType.CERT: _decode_cert,
    PayloadType.CERTREQ: _decode_cert,
    PayloadType.AUTH: _decode_auth,
    PayloadType.NONCE: _decode_nonce,
    PayloadType.NOTIFY: _decode_notify,
    PayloadType.DELETE: _decode_delete,
    PayloadType.VENDOR: _decode_vendor,
    PayloadType.TSi: _decode_ts,
    PayloadType.TSr: _decode_ts,
    PayloadType.SK: _decode_sk,
    PayloadType.CP: _decode_cp,
    PayloadType.EAP: _decode_eap,
    PayloadType.SKF: _decode_skf,
}

LABELS = {
    PayloadType.NONCE: "Nonce", PayloadType.NOTIFY: "Notify", PayloadType.DELETE: "Delete",
    PayloadType.VENDOR: "Vendor ID",
}


def _context_name(ptype: int) -> str:
    """Payload name for errors, known before the body is decoded: "KE payload"."""
    if ptype not in DECODERS:
        return f"Unknown payload (type {ptype})"
    return f"{LABELS.get(ptype, PayloadType(ptype).name)} payload"


def _title(payload: Payload, sender_is_initiator: bool) -> str:
    """Payload name for the tree: "Nonce payload (Ni)", "Notify payload: COOKIE"."""
    base = _context_name(payload.payload_type)
    match payload:
        case NoncePayload():
            return f"{base} ({short_name(payload, sender_is_initiator=sender_is_initiator)})"
        case NotifyPayload(notify_type=t):
            return f"{base}: {name_of(NotifyType, t)}"
        case ConfigPayload(cfg_type=t):
            return f"{base} ({name_of(CfgType, t)})"
        case EncryptedFragmentPayload(fragment_number=n, total_fragments=total):
            return f"{base} (fragment {n}/{total})"
    return base


# --- the payload chain ---

ENCRYPTED = (PayloadType.SK, PayloadType.SKF)


def _decode_chain(
    data: bytes, pos: int, first_type: int, *, base: int, sender_is_initiator: bool, origin: tuple[str, int],
    inside_sk: bool,
) -> tuple[list[Payload], list[Field]]:
    """Decode payloads from `pos` to the end of `data`, starting with `first_type`.

    `origin` names the field that announced the first payload (for errors about the chain).
    """
    payloads: list[Payload] = []
    fields: list[Field] = []
    next_type, (announcer, announcer_at) = first_type, origin
    while next_type != PayloadType.NONE:
        if pos == len(data):
            raise DecodeError(f"announces a {_context_name(next_type)} but the message ends here",
                              payload=announcer, field="Next Payload", offset=announcer_at)
        if inside_sk and next_type in ENCRYPTED:
            raise DecodeError("an encrypted payload cannot be nested inside encrypted content",
                              payload=announcer, field="Next Payload", offset=announcer_at)
        payload, field, following = _decode_payload(data, pos, next_type, base, sender_is_initiator)
        payloads.append(payload)
        fields.append(field)
        pos = field.end - base
        if next_type in ENCRYPTED:
            if pos != len(data):
                raise DecodeError(f"the {_context_name(next_type)} must be the last payload (RFC 7296 §3.14) "
                                  f"but {len(data) - pos} bytes follow it",
                                  payload=_context_name(next_type), field="Payload Length", offset=field.start + 2)
            break
        next_type, announcer, announcer_at = following, _context_name(next_type), field.start
    if pos != len(data):
        raise DecodeError(f"is NONE (end of the chain) but {len(data) - pos} bytes follow",
                          payload=announcer, field="Next Payload", offset=announcer_at)
    return payloads, fields


def _decode_payload(
    data: bytes, pos: int, ptype: int, base: int, sender_is_initiator: bool
) -> tuple[Payload, Field, int]:
    """One payload at `pos`: (payload, its Field, the Next Payload value)."""
    r = Reader(data, context=_context_name(ptype), base=base, pos=pos)
    with r.group(r.context, note=PAYLOAD_NOTES.get(ptype, "")) as group:
        next_type = r.u8("Next Payload", show=_payload_type_display, note="Type of the payload after this one.")
        if ptype in ENCRYPTED:
            r.last.note = "Type of the first payload inside the encrypted data."
        flags = r.u8("Critical", show=lambda v: "critical" if v & CRITICAL_BIT else "not critical",
                     note="Critical bit (top bit): reject the message if this payload type is not understood.")
        if flags & 0x7F:
            r.last.note += " The 7 reserved bits are nonzero here; they are ignored on receipt."
        length = r.u16("Payload Length", note="Bytes in this payload, the 4-byte generic header included.")
        if length < 4:
            raise _at(r, r.last, f"length {length} is shorter than the 4-byte generic payload header")
        if length > len(data) - pos:
            raise _at(r, r.last, f"length {length} runs past the end of the message ({len(data) - pos} bytes left)")
        critical = bool(flags & CRITICAL_BIT)
        with r.bounded(pos + length):
            if ptype in DECODERS:
                payload = DECODERS[ptype](r, ptype, next_type)
                payload.critical = critical
            elif critical:
                raise UnsupportedCriticalPayload(
                    f"payload type {ptype} is not understood and its critical bit is set, so the whole message "
                    "must be rejected (RFC 7296 §2.5)",
                    payload=r.context, field="Critical", offset=r.offset(pos + 1), payload_type=ptype)
            else:
                payload = UnknownPayload(ptype, r.rest("Payload Data", note="Skipped (unknown, not critical)."))
                group.note = "Skipped (unknown, not critical): RFC 7296 §2.5 says ignore it."
    group.name = _title(payload, sender_is_initiator)
    if isinstance(payload, NotifyPayload):
        group.note = notify_note(payload.notify_type)
    group.display = short_name(payload, sender_is_initiator=sender_is_initiator)
    return payload, group, next_type


# --- entry points ---

HEADER_NOTES = {
    "SPIi": "Initiator's SPI: chosen by the initiator to name this IKE SA.",
    "SPIr": "Responder's SPI: chosen by the responder; zero in the first IKE_SA_INIT request.",
    "Next Payload": "Type of the first payload after the header.",
    "Version": "Major version (high 4 bits) 2, minor version (low 4 bits) 0.",
    "Flags": "I = sent by the original initiator, R = this is a response, V = could speak a higher version.",
    "Message ID": "Request/response counter; IKE_SA_INIT is always 0, a response repeats its request's ID.",
    "Length": "Length of the whole message in bytes, header included.",
}


def _read_header(r: Reader) -> Header:
    with r.group("Header", note="The fixed 28-byte IKE header (RFC 7296 §3.1).") as group:
        spi_i = r.raw("SPIi", 8, note=HEADER_NOTES["SPIi"])
        spi_r = r.raw("SPIr", 8, note=HEADER_NOTES["SPIr"])
        next_type = r.u8("Next Payload", show=_payload_type_display, note=HEADER_NOTES["Next Payload"])
        version = r.u8("Version", show=lambda v: f"{v >> 4}.{v & 0xF}", note=HEADER_NOTES["Version"])
        exchange = r.u8("Exchange Type", show=_enum(ExchangeType))
        r.last.note = EXCHANGE_NOTES.get(exchange, "Unknown exchange type.")
        flags = r.u8("Flags", show=_flags_display, note=HEADER_NOTES["Flags"])
        if flags & ~int(HeaderFlags.INITIATOR | HeaderFlags.VERSION | HeaderFlags.RESPONSE) & 0xFF:
            r.last.note += " Reserved flag bits are set here; they are ignored on receipt."
        message_id = r.u32("Message ID", note=HEADER_NOTES["Message ID"])
        length = r.u32("Length", note=HEADER_NOTES["Length"])
    group.display = f"{name_of(ExchangeType, exchange)} {'response' if flags & HeaderFlags.RESPONSE else 'request'}"
    return Header(spi_i, spi_r, next_type, exchange, flags, message_id, length, version >> 4, version & 0xF)


def _too_short(data: bytes) -> DecodeError:
    return DecodeError(f"message is {len(data)} bytes, shorter than the {HEADER_SIZE}-byte IKE header",
                       payload="IKE header", field="Header", offset=0)


def decode_header(data: bytes) -> Header:
    """Only the 28-byte header, unchecked, so the engine can route (or answer) before a full parse."""
    if len(data) < HEADER_SIZE:
        raise _too_short(data)
    return _read_header(Reader(data, context="IKE header"))


def decode_message(data: bytes) -> DecodedMessage:
    """Decode a whole IKEv2 datagram strictly; the payloads of SK stay opaque."""
    if len(data) < HEADER_SIZE:
        raise _too_short(data)
    r = Reader(data, context="IKE header")
    header = _read_header(r)
    if header.major != 2:
        raise UnsupportedVersion(f"major version {header.major} is not 2", payload="IKE header",
                                 field="Version", offset=17, major=header.major)
    if header.length != len(data):
        raise DecodeError(f"header says {header.length} bytes but the datagram has {len(data)}; "
                          "RFC 7296 §3.1 requires them to match", payload="IKE header", field="Length", offset=24)
    payloads, fields = _decode_chain(
        data, HEADER_SIZE, header.next_payload, base=0, sender_is_initiator=header.is_initiator,
        origin=("IKE header", 16), inside_sk=False)
    message = Message(header, payloads)
    tree = Field("IKEv2 message", 0, len(data), display=message.summary(), children=r.out + fields,
                 note=EXCHANGE_NOTES.get(header.exchange, ""))
    return DecodedMessage(message, tree)


def decode_payloads(
    data: bytes, first_type: int, base_offset: int = 0, *, sender_is_initiator: bool = True
) -> tuple[list[Payload], list[Field]]:
    """Decode a payload chain such as decrypted SK contents; spans are offsets in `data` plus base_offset."""
    return _decode_chain(data, 0, first_type, base=base_offset, sender_is_initiator=sender_is_initiator,
                         origin=("SK payload", base_offset), inside_sk=True)
