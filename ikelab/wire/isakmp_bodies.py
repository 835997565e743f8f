"""Decoding ISAKMP payload bodies (RFC 2408 §3.7-3.16, RFC 2407 §4.6, RFC 3947), except SA (isakmp_sa).

Each decoder reads exactly the body (the bytes after the generic payload header) or raises.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from .ikev2_display import enum_display, ip_display
from .isakmp_constants import VENDOR_IDS, CertEncoding, Doi, IdType, NotifyType, PayloadType, ProtocolId, name_of
from .isakmp_notes import notify_note
from .isakmp_payloads import (
    CertPayload,
    CertReqPayload,
    DeletePayload,
    HashPayload,
    IdPayload,
    KePayload,
    NatDPayload,
    NatOaPayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    SigPayload,
    VendorPayload,
)
from .isakmp_sa import decode_sa
from .reader import Reader

# Identification data sizes fixed by the ID type (RFC 2407 §4.6.2.2-4.6.2.12).
ID_SIZES = {
    IdType.ID_IPV4_ADDR: 4,
    IdType.ID_IPV4_ADDR_SUBNET: 8,
    IdType.ID_IPV4_ADDR_RANGE: 8,
    IdType.ID_IPV6_ADDR: 16,
    IdType.ID_IPV6_ADDR_SUBNET: 32,
    IdType.ID_IPV6_ADDR_RANGE: 32,
}
DELETE_SPI_SIZES = {ProtocolId.ISAKMP: 16, ProtocolId.IPSEC_AH: 4, ProtocolId.IPSEC_ESP: 4}
DOI_DISPLAY = enum_display(Doi)
PROTOCOL_DISPLAY = enum_display(ProtocolId)


def _decode_ke(r: Reader, ptype: int) -> KePayload:
    data = r.rest("Key Exchange Data", note="The sender's Diffie-Hellman public value (g^x mod p, or a curve point).")
    if not data:
        raise r.error("Key Exchange Data", "a KE payload needs a public value", at=r.pos)
    return KePayload(data)


def id_text(id_type: int, data: bytes) -> str:
    """"198.51.100.0/24", "a.example", ...: how a student reads the identification data."""
    if id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR) and len(data) in (4, 16):
        return ip_display(data)
    if id_type in (IdType.ID_IPV4_ADDR_SUBNET, IdType.ID_IPV6_ADDR_SUBNET) and len(data) in (8, 32):
        half = len(data) // 2
        address, mask = ipaddress.ip_address(data[:half]), ipaddress.ip_address(data[half:])
        try:
            return str(ipaddress.ip_network(f"{address}/{mask}", strict=False))
        except ValueError:  # a mask that is not contiguous
            return f"{address}/{mask}"
    if id_type in (IdType.ID_IPV4_ADDR_RANGE, IdType.ID_IPV6_ADDR_RANGE) and len(data) in (8, 32):
        half = len(data) // 2
        return f"{ip_display(data[:half])}-{ip_display(data[half:])}"
    if id_type in (IdType.ID_FQDN, IdType.ID_USER_FQDN):
        return data.decode("ascii", "backslashreplace")
    return data.hex()


def _decode_id(r: Reader, ptype: int) -> IdPayload:
    r.need(4, "ID Type", "an ID payload (type, protocol and port)")
    id_type = r.u8("ID Type", show=enum_display(IdType), note="How to read the identification data.")
    protocol = r.u8("Protocol ID", show=lambda v: "any" if v == 0 else str(v), note="IP protocol: 0 = any; 17 (UDP) for a phase 1 ID.")
    port = r.u16("Port", show=lambda v: "any" if v == 0 else str(v), note="0 = any; 500 for a phase 1 ID.")
    size = ID_SIZES.get(id_type)
    if size is not None and r.remaining != size:
        raise r.error("Identification Data", f"{name_of(IdType, id_type)} needs {size} bytes of data, got {r.remaining}")
    data = r.rest(
        "Identification Data",
        show=lambda v: id_text(id_type, v),
        note="The identity (phase 1), or the traffic selector (quick mode's IDci/IDcr).",
    )
    return IdPayload(id_type, data, protocol, port)


def _decode_cert(r: Reader, ptype: int) -> CertPayload | CertReqPayload:
    r.need(1, "Cert Encoding", "a CERT or CR payload (encoding)")
    encoding = r.u8("Cert Encoding", show=enum_display(CertEncoding), note="Format of the data that follows.")
    if ptype == PayloadType.CERT:
        return CertPayload(encoding, r.rest("Certificate Data", note="The certificate, DER-encoded for X.509."))
    return CertReqPayload(encoding, r.rest("Certificate Authority", note="DER name of an acceptable CA; empty = any."))


def _decode_hash(r: Reader, ptype: int) -> HashPayload:
    data = r.rest("Hash Data", note="Output of the negotiated prf; which inputs depends on the message.")
    if not data:
        raise r.error("Hash Data", "a HASH payload cannot be empty", at=r.pos)
    return HashPayload(data)


def _decode_sig(r: Reader, ptype: int) -> SigPayload:
    return SigPayload(r.rest("Signature Data", note="Signature over HASH_I or HASH_R."))


def _decode_nonce(r: Reader, ptype: int) -> NoncePayload:
    data = r.rest("Nonce Data", note="Random value mixed into SKEYID (phase 1) or KEYMAT (quick mode).")
    if not 8 <= len(data) <= 256:
        raise r.error_at(r.last, f"nonce is {len(data)} bytes; RFC 2409 §5 requires 8 to 256")
    return NoncePayload(data)


def _decode_notify(r: Reader, ptype: int) -> NotifyPayload:
    r.need(8, "Domain of Interpretation", "a Notification payload (DOI, protocol, SPI size, type)")
    doi = r.u32("Domain of Interpretation", show=DOI_DISPLAY, note="1 = IPsec DOI.")
    protocol = r.u8("Protocol ID", show=PROTOCOL_DISPLAY, note="Which kind of SA the SPI names.")
    spi_size = r.u8("SPI Size", note="16 for the ISAKMP SA (both cookies), 4 for ESP/AH, or 0.")
    notify_type = r.u16("Notify Message Type", show=enum_display(NotifyType))
    r.last.note = notify_note(notify_type)
    spi = r.raw("SPI", spi_size, note="The SA this notification is about.") if spi_size else b""
    data = r.rest("Notification Data", note=notify_note(notify_type)) if r.remaining else b""
    return NotifyPayload(notify_type, protocol, spi, data, doi)


def _decode_delete(r: Reader, ptype: int) -> DeletePayload:
    r.need(8, "Domain of Interpretation", "a Delete payload (DOI, protocol, SPI size, count)")
    doi = r.u32("Domain of Interpretation", show=DOI_DISPLAY, note="1 = IPsec DOI.")
    protocol = r.u8("Protocol ID", show=PROTOCOL_DISPLAY, note="ISAKMP deletes the phase 1 SA; ESP/AH delete IPsec SAs.")
    spi_size = r.u8("SPI Size", note="16 for ISAKMP (the cookie pair), 4 for ESP/AH.")
    expected = DELETE_SPI_SIZES.get(protocol)
    if expected is not None and spi_size != expected:
        raise r.error_at(r.last, f"SPI size must be {expected} for {name_of(ProtocolId, protocol)}, got {spi_size}")
    count = r.u16("# of SPIs")
    if count * spi_size != r.remaining:
        raise r.error_at(r.last, f"{count} SPIs of {spi_size} bytes need {count * spi_size} bytes, but {r.remaining} follow")
    spis = [r.raw(f"SPI #{i + 1}", spi_size, note="The sender's inbound SPI of the SA to delete.") for i in range(count)]
    return DeletePayload(protocol, spi_size, spis, doi)


def _decode_vendor(r: Reader, ptype: int) -> VendorPayload:
    data = r.rest("Vendor ID", show=lambda v: VENDOR_IDS.get(v) or v.hex(), note="Usually a hash of a vendor or feature name.")
    return VendorPayload(data)


def _decode_nat_d(r: Reader, ptype: int) -> NatDPayload:
    data = r.rest("Hash of Address and Port", note="HASH(CKY-I | CKY-R | IP | Port) with the negotiated hash.")
    if not data:
        raise r.error("Hash of Address and Port", "a NAT-D payload cannot be empty", at=r.pos)
    return NatDPayload(data, draft=ptype == PayloadType.NAT_D_DRAFT)


def _decode_nat_oa(r: Reader, ptype: int) -> NatOaPayload:
    r.need(4, "ID Type", "a NAT-OA payload (ID type and reserved)")
    id_type = r.u8("ID Type", show=enum_display(IdType))
    size = {IdType.ID_IPV4_ADDR: 4, IdType.ID_IPV6_ADDR: 16}.get(id_type)
    if size is None:
        raise r.error_at(r.last, f"NAT-OA carries ID_IPV4_ADDR or ID_IPV6_ADDR, not {name_of(IdType, id_type)}")
    r.reserved(3)
    if r.remaining != size:
        raise r.error("Original Address", f"{name_of(IdType, id_type)} needs {size} bytes, got {r.remaining}")
    address = r.rest("Original Address", show=ip_display, note="The address before a NAT rewrote it.")
    return NatOaPayload(id_type, address, draft=ptype == PayloadType.NAT_OA_DRAFT)


Decoder = Callable[[Reader, int], Payload]

DECODERS: dict[int, Decoder] = {
    PayloadType.SA: decode_sa,
    PayloadType.KE: _decode_ke,
    PayloadType.ID: _decode_id,
    PayloadType.CERT: _decode_cert,
    PayloadType.CR: _decode_cert,
    PayloadType.HASH: _decode_hash,
    PayloadType.SIG: _decode_sig,
    PayloadType.NONCE: _decode_nonce,
    PayloadType.NOTIFICATION: _decode_notify,
    PayloadType.DELETE: _decode_delete,
    PayloadType.VENDOR_ID: _decode_vendor,
    PayloadType.NAT_D: _decode_nat_d,
    PayloadType.NAT_D_DRAFT: _decode_nat_d,
    PayloadType.NAT_OA: _decode_nat_oa,
    PayloadType.NAT_OA_DRAFT: _decode_nat_oa,
}
