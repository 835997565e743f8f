"""Decoding the SA payload: DOI, situation, proposals, transforms and their attributes (RFC 2408 §3.4-3.6).

Unlike IKEv2, proposals and transforms are payloads of their own (types 2 and 3) with a generic
header; transforms carry no algorithm type, their attributes say everything (RFC 2409 appendix A
for phase 1, RFC 2407 §4.5 for IPsec SAs). Several proposals with the same number form one
offer (AND, e.g. AH with ESP), so numbers may repeat but never go down.
"""

from __future__ import annotations

from .fields import Field
from .ikev2_constants import DhId
from .ikev2_display import enum_display
from .isakmp_constants import (
    AuthMethod,
    Doi,
    EncapsulationMode,
    EspTransformId,
    IkeAttribute,
    IkeEncryption,
    IkeHash,
    IkeTransformId,
    IpsecAttribute,
    IpsecAuthAlgorithm,
    LifeType,
    PayloadType,
    ProtocolId,
    Situation,
    name_of,
)
from .isakmp_payloads import Proposal, SaPayload, Transform
from .reader import Reader

SPI_SIZES = {ProtocolId.ISAKMP: (0, 16), ProtocolId.IPSEC_AH: (4,), ProtocolId.IPSEC_ESP: (4,), ProtocolId.IPCOMP: (2, 4)}
TRANSFORM_IDS = {ProtocolId.ISAKMP: IkeTransformId, ProtocolId.IPSEC_ESP: EspTransformId}

IKE_VALUES = {
    IkeAttribute.ENCRYPTION_ALGORITHM: IkeEncryption,
    IkeAttribute.HASH_ALGORITHM: IkeHash,
    IkeAttribute.AUTHENTICATION_METHOD: AuthMethod,
    IkeAttribute.GROUP_DESCRIPTION: DhId,
    IkeAttribute.LIFE_TYPE: LifeType,
}
IPSEC_VALUES = {
    IpsecAttribute.SA_LIFE_TYPE: LifeType,
    IpsecAttribute.GROUP_DESCRIPTION: DhId,
    IpsecAttribute.ENCAPSULATION_MODE: EncapsulationMode,
    IpsecAttribute.AUTHENTICATION_ALGORITHM: IpsecAuthAlgorithm,
}
ATTRIBUTE_NOTES = {
    (True, IkeAttribute.ENCRYPTION_ALGORITHM): "Cipher that protects main mode messages 5 and 6 and everything after.",
    (True, IkeAttribute.HASH_ALGORITHM): "Hash for HASH_I/HASH_R and, as HMAC, the prf of SKEYID and its children.",
    (True, IkeAttribute.AUTHENTICATION_METHOD): "How the peers prove who they are: pre-shared key, signatures, ...",
    (True, IkeAttribute.GROUP_DESCRIPTION): "Diffie-Hellman group of the KE payloads.",
    (True, IkeAttribute.LIFE_TYPE): "Unit of the Life Duration that follows: seconds or kilobytes.",
    (True, IkeAttribute.LIFE_DURATION): "How long the ISAKMP SA lives before it must be replaced.",
    (True, IkeAttribute.KEY_LENGTH): "Key size in bits, for ciphers with a variable key size such as AES.",
    (False, IpsecAttribute.SA_LIFE_TYPE): "Unit of the SA Life Duration that follows: seconds or kilobytes.",
    (False, IpsecAttribute.SA_LIFE_DURATION): "How long the IPsec SA lives before quick mode must rekey it.",
    (False, IpsecAttribute.GROUP_DESCRIPTION): "DH group for PFS: quick mode then carries KE payloads.",
    (False, IpsecAttribute.ENCAPSULATION_MODE): "Tunnel or transport mode, UDP-encapsulated when a NAT is in the path.",
    (False, IpsecAttribute.AUTHENTICATION_ALGORITHM): "ESP integrity algorithm (absent with AES-GCM).",
    (False, IpsecAttribute.KEY_LENGTH): "Key size in bits, for ciphers with a variable key size such as AES.",
}

PROTOCOL_DISPLAY = enum_display(ProtocolId)


def decode_sa(r: Reader, ptype: int) -> SaPayload:
    r.need(8, "Domain of Interpretation", "an SA payload (DOI and situation)")
    doi = r.u32("Domain of Interpretation", show=enum_display(Doi), note="1 = IPsec DOI (RFC 2407), which defines what follows.")
    if doi != Doi.IPSEC:
        raise r.error_at(r.last, f"DOI {doi} is not supported; only the IPsec DOI (1) is (answer DOI-NOT-SUPPORTED)")
    situation = r.u32("Situation", show=_situation_display, note="SIT_IDENTITY_ONLY: the SA is identified by the ID payloads.")
    if situation & (Situation.SIT_SECRECY | Situation.SIT_INTEGRITY):
        raise r.error_at(r.last, "labelled secrecy/integrity situations are not supported (answer SITUATION-NOT-SUPPORTED)")
    if r.remaining == 0:
        raise r.error("Proposal", "an SA payload needs at least one proposal")
    proposals: list[Proposal] = []
    while True:
        proposal, group, next_payload = _decode_proposal(r)
        if proposals and proposal.number < proposals[-1].number:
            raise r.error_at(
                group.find("Proposal #"),
                f"proposal numbers must not go down (RFC 2408 §3.5): {proposal.number} after {proposals[-1].number}",
            )
        proposals.append(proposal)
        if next_payload == PayloadType.NONE:
            break
        if r.remaining == 0:
            raise r.error_at(group.children[0], "says another proposal follows but the SA payload ends here")
    if r.remaining:
        raise r.error_at(group.children[0], f"says this is the last proposal (0) but {r.remaining} bytes follow")
    return SaPayload(proposals, doi, situation)


def _situation_display(value: object) -> str:
    names = [s.name for s in Situation if value & s]
    return " | ".join(names) or "none"


def _decode_proposal(r: Reader) -> tuple[Proposal, Field, int]:
    start = r.pos
    group = r.open_group("Proposal", note="One protocol's offer; several with the same number are offered together.")
    next_payload = r.u8("Next Payload", note="2 = another proposal follows, 0 = last proposal.")
    if next_payload not in (PayloadType.NONE, PayloadType.PROPOSAL):
        raise r.error_at(r.last, f"must be 0 (last) or 2 (another proposal), got {next_payload}")
    r.reserved(1)
    length = r.u16("Payload Length", note="Bytes in this proposal, transforms included.")
    if length < 8:
        raise r.error_at(r.last, f"length {length} is shorter than the 8-byte proposal header")
    if length > r.limit - start:
        raise r.error_at(r.last, f"length {length} runs past the end of the SA payload ({r.limit - start} bytes left)")
    outer_limit, r.limit = r.limit, start + length
    number = r.u8("Proposal #", note="Offers count up; an answer repeats the number it accepted.")
    protocol = r.u8("Protocol ID", show=PROTOCOL_DISPLAY, note="PROTO_ISAKMP in phase 1, IPSEC_ESP or IPSEC_AH in quick mode.")
    spi_size = r.u8("SPI Size", note="0 in phase 1 (the cookies name the SA), 4 for ESP/AH.")
    if spi_size not in SPI_SIZES.get(protocol, (spi_size,)):
        raise r.error_at(r.last, f"SPI size {spi_size} does not fit protocol {name_of(ProtocolId, protocol)}")
    count = r.u8("# of Transforms", note="How many alternative transforms follow; the responder picks one.")
    if count == 0:
        raise r.error_at(r.last, "a proposal needs at least one transform")
    spi = r.raw("SPI", spi_size, note="The sender's inbound SPI for this SA.") if spi_size else b""
    transforms = _decode_transforms(r, count, protocol)
    r.limit = outer_limit
    r.close_group(group)
    group.name = f"Proposal #{number}"
    group.display = f"{name_of(ProtocolId, protocol)}, {count} transform{'s' if count > 1 else ''}"
    return Proposal(number, protocol, spi, transforms), group, next_payload


def _decode_transforms(r: Reader, count: int, protocol: int) -> list[Transform]:
    transforms: list[Transform] = []
    for i in range(count):
        if r.remaining == 0:
            raise r.error("# of Transforms", f"says {count} transforms but the proposal holds only {i}")
        transform, group, next_payload = _decode_transform(r, protocol)
        marker = group.children[0]
        if next_payload == PayloadType.NONE and i < count - 1:
            raise r.error_at(marker, f"says last transform (0) on transform {i + 1} of {count}")
        if next_payload == PayloadType.TRANSFORM and i == count - 1:
            raise r.error_at(marker, f"says another transform follows (3) on the last of {count}")
        transforms.append(transform)
    if r.remaining:
        raise r.error("# of Transforms", f"says {count} transforms but {r.remaining} more bytes follow them")
    return transforms


def _decode_transform(r: Reader, protocol: int) -> tuple[Transform, Field, int]:
    start = r.pos
    group = r.open_group("Transform")
    next_payload = r.u8("Next Payload", note="3 = another transform follows, 0 = last transform.")
    if next_payload not in (PayloadType.NONE, PayloadType.TRANSFORM):
        raise r.error_at(r.last, f"must be 0 (last) or 3 (another transform), got {next_payload}")
    r.reserved(1)
    length = r.u16("Payload Length", note="Bytes in this transform, attributes included.")
    if length < 8:
        raise r.error_at(r.last, f"length {length} is shorter than the 8-byte transform header")
    if length > r.limit - start:
        raise r.error_at(r.last, f"length {length} runs past the end of the proposal ({r.limit - start} bytes left)")
    outer_limit, r.limit = r.limit, start + length
    number = r.u8("Transform #", note="Numbers this alternative within the proposal.")
    ids = TRANSFORM_IDS.get(protocol)
    transform_id = r.u8("Transform ID", show=enum_display(ids) if ids else None, note="KEY_IKE in phase 1, the cipher for ESP.")
    r.reserved(2)
    transform = Transform(number, transform_id)
    phase1 = protocol == ProtocolId.ISAKMP
    while r.pos < r.limit:
        transform.attributes.append(_decode_attribute(r, phase1))
    r.limit = outer_limit
    r.close_group(group)
    group.name = f"Transform #{number}"
    group.display = describe_transform(transform, protocol)
    return transform, group, next_payload


def describe_transform(transform: Transform, protocol: int) -> str:
    """"AES_CBC-128, SHA2_256, MODP_2048, PRE_SHARED_KEY" or "ESP_AES-128, HMAC_SHA2_256"."""
    if protocol == ProtocolId.ISAKMP:
        cipher = transform.get(IkeAttribute.ENCRYPTION_ALGORITHM)
        words = [name_of(IkeEncryption, cipher) if cipher is not None else "no cipher"]
        key_length = transform.get(IkeAttribute.KEY_LENGTH)
        hash_id = transform.get(IkeAttribute.HASH_ALGORITHM)
        group = transform.get(IkeAttribute.GROUP_DESCRIPTION)
        method = transform.get(IkeAttribute.AUTHENTICATION_METHOD)
        rest = [(hash_id, IkeHash), (group, DhId), (method, AuthMethod)]
    else:
        ids = TRANSFORM_IDS.get(protocol)
        words = [name_of(ids, transform.transform_id) if ids else str(transform.transform_id)]
        key_length = transform.get(IpsecAttribute.KEY_LENGTH)
        rest = [
            (transform.get(IpsecAttribute.AUTHENTICATION_ALGORITHM), IpsecAuthAlgorithm),
            (transform.get(IpsecAttribute.GROUP_DESCRIPTION), DhId),
        ]
    if key_length is not None:
        words[0] += f"-{key_length}"
    words += [name_of(enum, value) for value, enum in rest if value is not None]
    return ", ".join(words)


def _decode_attribute(r: Reader, phase1: bool) -> tuple[int, int | bytes]:
    group = r.open_group("Attribute")
    header = r.u16("Attribute Type", note="Top bit (AF) set = TV format, the value in the next 2 bytes; clear = TLV.")
    attr_type, tv = header & 0x7FFF, bool(header & 0x8000)
    if tv:
        value: int | bytes = r.u16("Attribute Value")
    else:
        size = r.u16("Attribute Length")
        value = r.raw("Attribute Value", size, show=lambda v: str(int.from_bytes(v, "big")) if 0 < len(v) <= 8 else v.hex())
    r.close_group(group)
    names = IkeAttribute if phase1 else IpsecAttribute
    name = name_of(names, attr_type)
    group.name = f"Attribute {name}"
    group.children[0].display = f"{name}, {'TV' if tv else 'TLV'}"
    group.display = _attribute_display(attr_type, value, phase1)
    group.note = ATTRIBUTE_NOTES.get((phase1, attr_type), "")
    return (attr_type, value)


def _attribute_display(attr_type: int, value: int | bytes, phase1: bool) -> str:
    number = value if isinstance(value, int) else int.from_bytes(value, "big") if len(value) <= 8 else None
    if number is None:
        return value.hex()
    enum = (IKE_VALUES if phase1 else IPSEC_VALUES).get(attr_type)
    if enum is not None:
        return name_of(enum, number)
    if attr_type == (IkeAttribute.KEY_LENGTH if phase1 else IpsecAttribute.KEY_LENGTH):
        return f"{number} bits"
    return str(number)
