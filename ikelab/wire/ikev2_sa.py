"""Decoding the SA payload: proposals, transforms and their attributes (RFC 7296 §3.3).

The substructures carry their own lengths, counts and "last substructure" markers; every one of
them must agree with its container, or the SA payload is rejected.
"""

from __future__ import annotations

from .fields import Field
from .ikev2_constants import TRANSFORM_ID_ENUMS, ProtocolId, TransformAttribute, TransformType, name_of
from .ikev2_display import enum_display
from .ikev2_notes import TRANSFORM_NOTES
from .ikev2_payloads import Proposal, SaPayload, Transform
from .reader import Reader

# An IKE proposal has no SPI in IKE_SA_INIT and the new SA's SPI when rekeying (RFC 7296 §3.3.1).
PROPOSAL_SPI_SIZES = {ProtocolId.IKE: (0, 8), ProtocolId.AH: (4,), ProtocolId.ESP: (4,)}

# Built once: an SA payload has dozens of transforms (and reading a member from an IntEnum class
# goes through EnumType.__getattr__, which costs about as much as recording a field).
KEY_LENGTH = TransformAttribute.KEY_LENGTH
PROTOCOL_DISPLAY = enum_display(ProtocolId)
TRANSFORM_TYPE_DISPLAY = enum_display(TransformType)
TRANSFORM_ID_DISPLAYS = {ttype: enum_display(ids) for ttype, ids in TRANSFORM_ID_ENUMS.items()}
TRANSFORM_TITLES = {ttype: f"Transform {ttype.name}" for ttype in TransformType}


def decode_sa(r: Reader, ptype: int, next_payload: int) -> SaPayload:
    if r.remaining == 0:
        raise r.error("Proposal", "an SA payload needs at least one proposal")
    proposals: list[Proposal] = []
    groups: list[Field] = []
    while True:
        proposal, group, last = _decode_proposal(r)
        if proposals and proposal.number != proposals[-1].number + 1:
            raise r.error_at(
                group.find("Proposal Num"),
                "proposal numbers must count up by one "
                f"(RFC 7296 §3.3.1): expected {proposals[-1].number + 1}, got {proposal.number}",
            )
        proposals.append(proposal)
        groups.append(group)
        if last == 0:  # Last Substruc: 0 = last proposal
            break
        if r.pos == r.limit:
            raise r.error_at(group.children[0], "says more proposals follow (2) but the SA payload ends here")
    if r.remaining:
        raise r.error_at(groups[-1].children[0], f"says this is the last proposal (0) but {r.remaining} bytes follow")
    if len(proposals) > 1 and proposals[0].number != 1:
        raise r.error_at(
            groups[0].find("Proposal Num"),
            f"the first proposal of an offer must be number 1, got {proposals[0].number}",
        )
    return SaPayload(proposals)


# The substructure decoders also return their Last Substruc value (the first child of the group):
# reading it from the group would turn all the group's leaves into Fields (see Reader).


def _decode_proposal(r: Reader) -> tuple[Proposal, Field, int]:
    start = r.pos
    group = r.open_group("Proposal", note="One set of algorithms; the responder picks exactly one proposal.")
    last = r.u8("Last Substruc", note="0 = last proposal, 2 = another proposal follows.")
    if last not in (0, 2):
        raise r.error_at(r.last, f"must be 0 (last) or 2 (more proposals), got {last}")
    r.reserved(1)
    length = r.u16("Proposal Length", note="Bytes in this proposal, transforms included.")
    if length < 8:
        raise r.error_at(r.last, f"length {length} is shorter than the 8-byte proposal header")
    if length > r.limit - start:
        raise r.error_at(r.last, f"length {length} runs past the end of the SA payload ({r.limit - start} bytes left)")
    outer_limit, r.limit = r.limit, start + length
    number = r.u8("Proposal Num", note="Offers count from 1; an answer repeats the number it accepted.")
    if number == 0:
        raise r.error_at(r.last, "proposal numbers start at 1")
    protocol = r.u8("Protocol ID", show=PROTOCOL_DISPLAY, note="IKE for the IKE SA, ESP or AH for a Child SA.")
    spi_size = r.u8("SPI Size", note="0 in IKE_SA_INIT, 8 when rekeying an IKE SA, 4 for ESP/AH.")
    if spi_size not in PROPOSAL_SPI_SIZES.get(protocol, (spi_size,)):
        raise r.error_at(r.last, f"SPI size {spi_size} does not fit protocol {name_of(ProtocolId, protocol)}")
    count = r.u8("Num Transforms", note="How many transforms (algorithms) follow.")
    spi = r.raw("SPI", spi_size, note="The SPI the sender wants the peer to use for this SA.") if spi_size else b""
    transforms = _decode_transforms(r, count)
    r.limit = outer_limit
    r.close_group(group)
    group.name = f"Proposal #{number}"
    group.display = f"{name_of(ProtocolId, protocol)}, {count} transforms"
    return Proposal(number, protocol, spi, transforms), group, last


def _decode_transforms(r: Reader, count: int) -> list[Transform]:
    transforms: list[Transform] = []
    for i in range(count):
        if r.pos == r.limit:
            raise r.error("Num Transforms", f"says {count} transforms but the proposal holds only {i}")
        transform, group, last = _decode_transform(r)
        if last == 0 and i < count - 1:
            raise r.error_at(group.children[0], f"says last transform (0) on transform {i + 1} of {count}")
        if last == 3 and i == count - 1:
            raise r.error_at(group.children[0], f"says more transforms follow (3) on the last of {count}")
        transforms.append(transform)
    if r.remaining:
        raise r.error("Num Transforms", f"says {count} transforms but {r.remaining} more bytes follow them")
    return transforms


def _decode_transform(r: Reader) -> tuple[Transform, Field, int]:
    start = r.pos
    group = r.open_group("Transform")
    last = r.u8("Last Substruc", note="0 = last transform, 3 = another transform follows.")
    if last not in (0, 3):
        raise r.error_at(r.last, f"must be 0 (last) or 3 (more transforms), got {last}")
    r.reserved(1)
    length = r.u16("Transform Length", note="Bytes in this transform, attributes included.")
    if length < 8:
        raise r.error_at(r.last, f"length {length} is shorter than the 8-byte transform header")
    if length > r.limit - start:
        raise r.error_at(r.last, f"length {length} runs past the end of the proposal ({r.limit - start} bytes left)")
    outer_limit, r.limit = r.limit, start + length
    ttype = r.u8("Transform Type", show=TRANSFORM_TYPE_DISPLAY, note=_transform_note)
    r.reserved(1)
    id_enum = TRANSFORM_ID_ENUMS.get(ttype)
    tid = r.u16("Transform ID", show=TRANSFORM_ID_DISPLAYS.get(ttype), note="The algorithm offered.")
    transform = Transform(ttype, tid)
    while r.pos < r.limit:
        _decode_attribute(r, transform)
    r.limit = outer_limit
    r.close_group(group)
    group.name = TRANSFORM_TITLES.get(ttype) or f"Transform {name_of(TransformType, ttype)}"
    group.display = str(tid) if id_enum is None else name_of(id_enum, tid)
    if transform.key_length is not None:
        group.display += f" {transform.key_length}"
    group.note = TRANSFORM_NOTES.get(ttype, "")
    return transform, group, last


def _decode_attribute(r: Reader, transform: Transform) -> None:
    group = r.open_group("Attribute")
    header = r.u16(
        "Attribute Type",
        show=_attribute_type_display,
        note="Top bit set = TV format (value in the next 2 bytes), clear = TLV.",
    )
    attr_type, tv = header & 0x7FFF, (header & 0x8000) != 0
    key_length = attr_type == KEY_LENGTH and transform.key_length is None
    if tv:
        value: int | bytes = r.u16("Attribute Value", show=_bits_display if key_length else None)
    else:
        size = r.u16("Attribute Length")
        value = r.raw("Attribute Value", size)
    r.close_group(group)
    if key_length:
        if not tv:
            raise r.error_at(group.children[0], "Key Length must use the TV format (RFC 7296 §3.3.5)")
        transform.key_length = value
        group.name, group.display = "Attribute Key Length", f"{value} bits"
        group.note = "Key size in bits, for ciphers with a variable key size such as AES."
    else:
        transform.attributes.append((attr_type, value))
        group.name = f"Attribute {attr_type}"


def _transform_note(ttype: int) -> str:
    return TRANSFORM_NOTES.get(ttype, "")


def _attribute_type_display(header: object) -> str:
    return f"{name_of(TransformAttribute, header & 0x7FFF)}, {'TV' if header & 0x8000 else 'TLV'}"


def _bits_display(value: object) -> str:
    return f"{value} bits"
