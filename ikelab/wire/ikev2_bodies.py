"""Decoding payload bodies (RFC 7296 §3.4-§3.16, RFC 7383 §2.5), except SA (see ikev2_sa).

Each decoder reads exactly the body (the bytes after the generic payload header) or raises.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from .ikev2_constants import (
    AuthMethod,
    CertEncoding,
    CfgType,
    ConfigAttribute,
    DhId,
    IdType,
    NotifyType,
    PayloadType,
    ProtocolId,
    TsType,
    name_of,
)
from .ikev2_display import enum_display, ip_display, protocol_display
from .ikev2_notes import notify_note
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
    TrafficSelector,
    TsPayload,
    VendorPayload,
)
from .ikev2_sa import decode_sa
from .reader import Reader

SPI_SIZES = {ProtocolId.IKE: 8, ProtocolId.AH: 4, ProtocolId.ESP: 4}
DELETE_SPI_SIZES = {ProtocolId.IKE: 0, ProtocolId.AH: 4, ProtocolId.ESP: 4}
# Enum members the decoders test, looked up once: reading a member from an IntEnum class goes
# through EnumType.__getattr__, which costs about as much as recording a field.
IDi, CERT, TSi = PayloadType.IDi, PayloadType.CERT, PayloadType.TSi
ADDRESS_IDS = (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR)
TEXT_IDS = (IdType.ID_FQDN, IdType.ID_RFC822_ADDR)
# Display functions made once, not for each field read.
DH_DISPLAY = enum_display(DhId)
NOTIFY_TYPE_DISPLAY = enum_display(NotifyType)
ID_TYPE_DISPLAY = enum_display(IdType)
AUTH_METHOD_DISPLAY = enum_display(AuthMethod)
CERT_ENCODING_DISPLAY = enum_display(CertEncoding)
TS_TYPE_DISPLAY = enum_display(TsType)
PROTOCOL_DISPLAY = enum_display(ProtocolId)
CFG_TYPE_DISPLAY = enum_display(CfgType)
ADDRESS_ATTRIBUTES = {
    ConfigAttribute.INTERNAL_IP4_ADDRESS,
    ConfigAttribute.INTERNAL_IP4_NETMASK,
    ConfigAttribute.INTERNAL_IP4_DNS,
    ConfigAttribute.INTERNAL_IP4_NBNS,
    ConfigAttribute.INTERNAL_IP4_DHCP,
    ConfigAttribute.INTERNAL_IP6_DNS,
    ConfigAttribute.INTERNAL_IP6_DHCP,
}


def _decode_ke(r: Reader, ptype: int, next_payload: int) -> KePayload:
    r.need(4, "DH Group Num", "a KE payload (group number and reserved)")
    group = r.u16(
        "DH Group Num", show=DH_DISPLAY, note="Group of the public value; must match the chosen DH transform."
    )
    r.reserved(2)
    data = r.rest("Key Exchange Data", note="The sender's Diffie-Hellman public value (g^x mod p, or a curve point).")
    return KePayload(group, data)


def _decode_nonce(r: Reader, ptype: int, next_payload: int) -> NoncePayload:
    data = r.rest("Nonce Data", note="Random value mixed into SKEYSEED and signed by AUTH.")
    if not 16 <= len(data) <= 256:
        raise r.error_at(r.last, f"nonce is {len(data)} bytes; RFC 7296 §3.9 requires 16 to 256")
    return NoncePayload(data)


def _decode_notify(r: Reader, ptype: int, next_payload: int) -> NotifyPayload:
    r.need(4, "Protocol ID", "a Notify payload (protocol, SPI size, type)")
    protocol = r.u8("Protocol ID", show=protocol_display, note="Which kind of SA the SPI names; ignored without SPI.")
    spi_size = r.u8("SPI Size", note="0 when the notification concerns the IKE SA.")
    if spi_size and spi_size != SPI_SIZES.get(protocol):
        raise r.error_at(
            r.last, f"SPI size {spi_size} does not fit protocol {protocol_display(protocol)} (4 for ESP/AH, 8 for IKE)"
        )
    notify_type = r.u16("Notify Message Type", show=NOTIFY_TYPE_DISPLAY, note=notify_note)
    spi = r.raw("SPI", spi_size, note="The SA this notification is about.") if spi_size else b""
    data = b""
    if r.pos < r.limit:
        data = r.rest("Notification Data", show=NOTIFY_DATA_DISPLAYS.get(notify_type), note=notify_note(notify_type))
    return NotifyPayload(notify_type, protocol, spi, data)


def _wanted_group_display(data: object) -> str:
    return f"wants {name_of(DhId, int.from_bytes(data, 'big'))}" if len(data) == 2 else data.hex()


NOTIFY_DATA_DISPLAYS = {NotifyType.INVALID_KE_PAYLOAD: _wanted_group_display}


def _decode_id(r: Reader, ptype: int, next_payload: int) -> IdPayload:
    r.need(4, "ID Type", "an ID payload (type and reserved)")
    id_type = r.u8("ID Type", show=ID_TYPE_DISPLAY, note="How to read the identification data.")
    r.reserved(3)
    data = r.rest(
        "Identification Data",
        show=_id_display(id_type),
        note="The identity; these bytes, from ID Type on, are MACed into AUTH (IDi'/IDr').",
    )
    return IdPayload(ptype == IDi, id_type, data)


def _id_display(id_type: int) -> Callable[[object], str] | None:
    if id_type in ADDRESS_IDS:
        return ip_display
    if id_type in TEXT_IDS:
        return _text_display
    return None


def _text_display(data: object) -> str:
    return data.decode("ascii", "backslashreplace")


def _decode_auth(r: Reader, ptype: int, next_payload: int) -> AuthPayload:
    r.need(4, "Auth Method", "an AUTH payload (method and reserved)")
    method = r.u8("Auth Method", show=AUTH_METHOD_DISPLAY, note="Shared key MIC or a signature, and which kind.")
    r.reserved(3)
    data = r.rest(
        "Authentication Data",
        note="prf or signature over this side's first message, the peer's nonce and prf(SK_p, ID').",
    )
    return AuthPayload(method, data)


def _decode_cert(r: Reader, ptype: int, next_payload: int) -> CertPayload | CertReqPayload:
    r.need(1, "Cert Encoding", "a CERT or CERTREQ payload (encoding)")
    encoding = r.u8("Cert Encoding", show=CERT_ENCODING_DISPLAY, note="Format of the data that follows.")
    if ptype == CERT:
        return CertPayload(encoding, r.rest("Certificate Data", note="The certificate, DER-encoded for X.509."))
    data = r.rest(
        "Certification Authority", note="SHA-1 hashes of the public keys of CAs the sender trusts, 20 bytes each."
    )
    return CertReqPayload(encoding, data)


def _decode_ts(r: Reader, ptype: int, next_payload: int) -> TsPayload:
    r.need(4, "Number of TSs", "a TS payload (count and reserved)")
    count_at = r.pos
    count = r.u8("Number of TSs")
    r.reserved(3)
    selectors = []
    for i in range(count):
        if r.pos == r.limit:
            raise r.error("Number of TSs", f"says {count} selectors but the payload holds only {i}", at=count_at)
        selectors.append(_decode_selector(r, i + 1))
    if r.remaining:
        raise r.error("Number of TSs", f"says {count} selectors but {r.remaining} more bytes follow them", at=count_at)
    return TsPayload(ptype == TSi, selectors)


TS_LENGTHS = {TsType.TS_IPV4_ADDR_RANGE: 16, TsType.TS_IPV6_ADDR_RANGE: 40}


def _decode_selector(r: Reader, index: int) -> TrafficSelector:
    group = r.open_group(f"Traffic Selector #{index}")
    ts_type = r.u8("TS Type", show=TS_TYPE_DISPLAY)
    if ts_type not in TS_LENGTHS:
        raise r.error_at(r.last, f"unsupported traffic selector type {ts_type}")
    protocol = r.u8("IP Protocol ID", note="0 = any protocol, else e.g. 1 ICMP, 6 TCP, 17 UDP.")
    length = r.u16("Selector Length")
    if length != TS_LENGTHS[ts_type]:
        raise r.error_at(
            r.last, f"length {length} is wrong for {name_of(TsType, ts_type)} (must be {TS_LENGTHS[ts_type]})"
        )
    start_port = r.u16("Start Port")
    end_port = r.u16("End Port", note="0-65535 = any port; 65535-0 = OPAQUE (ports not visible).")
    size = (length - 8) // 2
    start = r.raw("Starting Address", size, show=ip_display)
    end = r.raw("Ending Address", size, show=ip_display)
    if start > end:  # same-length big-endian bytes compare like the addresses
        raise r.error_at(r.last, f"start address {ip_display(start)} is above end address {ip_display(end)}")
    r.close_group(group)
    selector = TrafficSelector(ts_type, protocol, start_port, end_port, start, end)
    group.display_later(partial(_selector_display, selector))  # str() summarizes the range into networks: slow
    return selector


def _selector_display(selector: TrafficSelector, value: object) -> str:
    return str(selector)


def _decode_sk(r: Reader, ptype: int, next_payload: int) -> EncryptedPayload:
    body = r.rest("Encrypted Data", note="IV, then the encrypted inner payloads and padding, then the ICV.")
    return EncryptedPayload(next_payload, body)


def _decode_skf(r: Reader, ptype: int, next_payload: int) -> EncryptedFragmentPayload:
    r.need(4, "Fragment Number", "an SKF payload (fragment number and total)")
    number = r.u16("Fragment Number", note="Which fragment this is, counting from 1.")
    total = r.u16("Total Fragments", note="How many fragments the original message was cut into.")
    if number == 0 or number > total:
        raise r.error("Fragment Number", f"fragment {number} of {total} is out of range", at=r.pos - 4)
    if number > 1 and next_payload:
        raise r.error(
            "Next Payload",
            f"must be 0 in fragment {number}; only fragment 1 names the first inner payload (RFC 7383 §2.5)",
            at=r.pos - 8,
        )
    body = r.rest("Encrypted Data", note="IV, then this fragment's encrypted data and padding, then the ICV.")
    return EncryptedFragmentPayload(next_payload, number, total, body)


def _decode_delete(r: Reader, ptype: int, next_payload: int) -> DeletePayload:
    r.need(4, "Protocol ID", "a Delete payload (protocol, SPI size, count)")
    protocol = r.u8(
        "Protocol ID", show=PROTOCOL_DISPLAY, note="IKE deletes this IKE SA; ESP/AH delete Child SAs."
    )
    spi_size = r.u8("SPI Size", note="0 for IKE (the SPIs are in the header), 4 for ESP/AH.")
    expected = DELETE_SPI_SIZES.get(protocol)
    if expected is not None and spi_size != expected:
        raise r.error_at(r.last, f"SPI size must be {expected} for {name_of(ProtocolId, protocol)}, got {spi_size}")
    count = r.u16("Num of SPIs")
    if count * spi_size != r.remaining:
        raise r.error_at(
            r.last, f"{count} SPIs of {spi_size} bytes need {count * spi_size} bytes, but {r.remaining} follow"
        )
    spis = [
        r.raw(f"SPI #{i + 1}", spi_size, note="The sender's inbound SPI of the Child SA to delete.")
        for i in range(count)
    ]
    return DeletePayload(protocol, spi_size, spis)


def _decode_vendor(r: Reader, ptype: int, next_payload: int) -> VendorPayload:
    return VendorPayload(r.rest("Vendor ID", note="Usually a hash of a vendor or feature name."))


def _decode_cp(r: Reader, ptype: int, next_payload: int) -> ConfigPayload:
    r.need(4, "CFG Type", "a CP payload (type and reserved)")
    cfg_type = r.u8("CFG Type", show=CFG_TYPE_DISPLAY, note="REQUEST/REPLY in IKE_AUTH, SET/ACK to push settings.")
    r.reserved(3)
    attributes = []
    while r.pos < r.limit:
        group = r.open_group("Attribute")
        header = r.u16(
            "Attribute Type", show=_cfg_attribute_display, note="Top bit reserved, then the 15-bit attribute type."
        )
        attr_type = header & 0x7FFF
        size = r.u16("Length")
        value = r.raw("Value", size, show=ip_display if attr_type in ADDRESS_ATTRIBUTES else None)
        r.close_group(group)
        group.name = f"Attribute {name_of(ConfigAttribute, attr_type)}"
        attributes.append((attr_type, value))
    return ConfigPayload(cfg_type, attributes)


def _cfg_attribute_display(header: object) -> str:
    return name_of(ConfigAttribute, header & 0x7FFF)


def _decode_eap(r: Reader, ptype: int, next_payload: int) -> EapPayload:
    r.need(4, "EAP Message", "an EAP payload (code, identifier, length)")
    return EapPayload(r.rest("EAP Message", note="One EAP packet (RFC 3748), carried as is."))


Decoder = Callable[[Reader, int, int], Payload]

DECODERS: dict[int, Decoder] = {
    PayloadType.SA: decode_sa,
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
