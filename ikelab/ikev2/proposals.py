"""SA proposals: from strongSwan-style specs to wire transforms, and the responder's choice.

The responder walks its own configured proposals in order (strongSwan's default,
prefer_configured_proposals) and takes the first offered proposal that has an acceptable
algorithm of every transform type. Every refusal is explained, so a mismatch can be shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ikelab.crypto.cipher import Cipher
from ikelab.crypto.dh import DhGroup
from ikelab.crypto.integrity import Integrity
from ikelab.crypto.names import ProposalSpec
from ikelab.crypto.prf import Prf
from ikelab.trace import DeferredList, ProposalEvent
from ikelab.wire.ikev2 import Proposal, Transform
from ikelab.wire.ikev2_constants import (
    TRANSFORM_ID_ENUMS,
    ProtocolId,
    TransformType,
    name_of,
)

# The order in which transform types are compared and shown.
TYPE_ORDER = (TransformType.ENCR, TransformType.PRF, TransformType.INTEG, TransformType.DH, TransformType.ESN)
# Enum members looked up once: reading one from an IntEnum class goes through EnumType.__getattr__,
# and matching a proposal tests them a few dozen times.
ENCR, PRF, INTEG, DH, ESN = TYPE_ORDER
IKE, ESP = ProtocolId.IKE, ProtocolId.ESP


@dataclass
class Negotiated:
    """The algorithms a proposal settled on. (A value, but not a frozen dataclass: each side of
    each exchange makes one, and frozen ones cost three times as much to build.)"""

    cipher: Cipher
    integrity: Integrity | None
    prf: Prf | None
    dh: DhGroup | None
    esn: bool = False

    def keywords(self) -> str:
        """"aes128-sha256-prfsha256-modp2048": written when asked, as the few events of an SA that
        quote it do (remembering it would cost more than writing it again)."""
        parts = [self.cipher.name]
        if self.integrity:
            parts.append(self.integrity.name)
        if self.prf:
            parts.append(self.prf.name)
        if self.dh:
            parts.append(self.dh.name)
        if self.esn:
            parts.append("esn")
        return "-".join(parts)


def spec_transforms(spec: ProposalSpec, protocol: int, dh_first: int | None = None) -> list[Transform]:
    """The wire transforms that offer everything in `spec`, in TYPE_ORDER; `dh_first` moves that
    group to the front of the DH transforms (the group our KE payload uses)."""
    groups = spec.dh
    if dh_first is not None and len(groups) > 1:
        groups = sorted(groups, key=lambda g: g.number != dh_first)  # stable: the others keep their order
    # Plain loops: a list comprehension is a function call of its own, and a spec has one or two of each.
    out = []
    for c in spec.encryption:
        out.append(Transform(ENCR, c.number, c.key_bits))
    if protocol == IKE:
        for p in spec.prf:
            out.append(Transform(PRF, p.number))
    for i in spec.integrity:
        out.append(Transform(INTEG, i.number))
    for g in groups:
        out.append(Transform(DH, g.number))
    if protocol == ESP:
        for e in spec.esn:
            out.append(Transform(ESN, int(e)))
    return out


def offer(specs: tuple[ProposalSpec, ...], protocol: int, spi: bytes = b"", dh_first: int | None = None) -> list[Proposal]:
    """Proposals numbered from 1. `dh_first` moves that group to the front (the group our KE uses)."""
    offered = _offered_transforms(specs, protocol, dh_first)
    return [Proposal(number, protocol, spi, list(transforms)) for number, transforms in enumerate(offered, start=1)]


@lru_cache(maxsize=256)
def _offered_transforms(specs: tuple[ProposalSpec, ...], protocol: int, dh_first: int | None) -> tuple[tuple[Transform, ...], ...]:
    """The transforms of each proposal, made once per configuration (the specs are frozen): a
    configuration offers the same ones in every handshake, only the SPI changes. Nobody changes a
    Transform once it is made, so proposals share them."""
    return tuple(tuple(spec_transforms(spec, protocol, dh_first)) for spec in specs)


def describe_transform(t: Transform) -> str:
    return _transform_text(t.type, t.id, t.key_length)


@lru_cache(maxsize=1024)
def _transform_text(type_: int, id_: int, key_length: int | None) -> str:
    """"AES_CBC-128": one of a few dozen texts, made once each rather than for every proposal shown."""
    enum_cls = TRANSFORM_ID_ENUMS.get(TransformType(type_)) if type_ in TransformType._value2member_map_ else None
    name = name_of(enum_cls, id_) if enum_cls else f"{type_}:{id_}"
    return f"{name}-{key_length}" if key_length else name


def describe(p: Proposal) -> str:
    """"#1 IKE: ENCR_AES_CBC-128, PRF_HMAC_SHA2_256, ...": every offer, reply and reason quotes one."""
    texts = [_transform_text(t.type, t.id, t.key_length) for t in p.transforms]
    return f"#{p.number} {_protocol_name(p.protocol)}: " + ", ".join(texts)


@lru_cache(maxsize=64)
def _protocol_name(protocol: int) -> str:
    return name_of(ProtocolId, protocol)


def _wire_value(ttype: int, algorithm) -> object:
    """What a transform of `ttype` carries to offer `algorithm`: (ID, key length) for a cipher, the ID
    for the others. A transform offers an algorithm exactly when it carries this value (the algorithm
    tables are keyed by it), so matching compares numbers, not algorithm objects."""
    if ttype == ENCR:
        return algorithm.number, algorithm.key_bits
    if ttype == ESN:
        return int(algorithm)
    return algorithm.number


_SPEC_FIELDS = {ENCR: "encryption", PRF: "prf", INTEG: "integrity", DH: "dh", ESN: "esn"}


@lru_cache(maxsize=256)
def _wanted(spec: ProposalSpec, protocol: int) -> tuple[tuple[int, tuple[tuple[object, object], ...]], ...]:
    """Per transform type `protocol` negotiates: the configured algorithms in order of preference, each
    with its wire value. Made once per spec (frozen), not for every proposal it is matched against."""
    return tuple(
        (ttype, tuple((_wire_value(ttype, a), a) for a in getattr(spec, _SPEC_FIELDS[ttype])))
        for ttype in TYPES_OF.get(protocol, TYPE_ORDER)
    )


@dataclass  # a value; not frozen, as Negotiated
class Selection:
    proposal: Proposal | None  # the reply: one transform per type, the offered number
    negotiated: Negotiated | None
    reasons: Sequence[str]  # why each offered proposal was taken or not (a DeferredList when all went well)


def select(offered: list[Proposal], configured: tuple[ProposalSpec, ...], protocol: int) -> Selection:
    verdicts: list[tuple[Proposal, ProposalSpec | None, str]] = []  # (offered, configured, why not: "" if taken)
    for spec in configured:
        for p in offered:
            if p.protocol != protocol:
                verdicts.append((p, None, f"protocol is not {name_of(ProtocolId, protocol)}"))
                continue
            chosen, why = _match(p, spec, protocol)
            verdicts.append((p, spec, why))
            if chosen is not None:
                transforms, negotiated = chosen
                reply = Proposal(p.number, p.protocol, p.spi, transforms)
                return Selection(reply, negotiated, DeferredList(lambda: [_reason(*v) for v in verdicts]))
    return Selection(None, None, [_reason(*v) for v in verdicts])


def _reason(p: Proposal, spec: ProposalSpec | None, why: str) -> str:
    if spec is None:
        return f"{describe(p)}: {why}"
    if why:
        return f"{describe(p)} vs configured {spec.keywords()}: {why}"
    return f"{describe(p)} matches configured {spec.keywords()}"


def choice_event(peer: str, now: float, protocol: str, offered: list[Proposal], configured: tuple[ProposalSpec, ...],
                 selection: Selection) -> ProposalEvent:
    """The trace of a choice. Its texts quote proposals that stay as they are, so they are written
    when first read: a handshake would otherwise describe a dozen proposals that nobody may look at."""
    chosen = selection.proposal
    return ProposalEvent(  # protocol, offered, configured, chosen, reasons: by position, as engine.emit_message says why
        peer, now, protocol, DeferredList(lambda: [describe(p) for p in offered]), [s.keywords() for s in configured],
        None if chosen is None else lambda: describe(chosen), selection.reasons,
    )


# The transform types each protocol negotiates (RFC 7296 §3.3.3): ESP has no PRF, IKE no ESN.
TYPES_OF = {IKE: (ENCR, PRF, INTEG, DH), ESP: (ENCR, INTEG, DH, ESN)}


def _match(p: Proposal, spec: ProposalSpec, protocol: int) -> tuple[tuple[list[Transform], Negotiated] | None, str]:
    """((one transform of each type, what they negotiate), "") when `p` offers something `spec` accepts
    for every type; else (None, why not). The caller makes the reply proposal, if it needs one."""
    offered_by_type: dict[int, list[Transform]] = {}
    for t in p.transforms:
        offered_by_type.setdefault(t.type, []).append(t)
    transforms: list[Transform] = []  # in TYPE_ORDER, as _wanted lists the types
    chosen: dict[int, object] = {}
    for ttype, wanted in _wanted(spec, protocol):
        offered = offered_by_type.get(ttype) or ([Transform(ESN, 0)] if ttype == ESN else [])
        if not wanted and not offered:
            continue
        if not wanted:
            # An ESP proposal offering DH (PFS) or integrity we do not use: acceptable only with NONE.
            if any(t.id == 0 for t in offered):
                continue
            return None, f"{name_of(TransformType, ttype)} offered ({', '.join(map(describe_transform, offered))}) but none configured"
        found = _first_wanted(ttype, wanted, offered)
        if found is None:
            names = ", ".join(map(describe_transform, offered)) or "nothing"
            configured = ", ".join(getattr(a, "name", str(a)) for _, a in wanted)
            return None, f"no common {name_of(TransformType, ttype)}: offered {names}, configured {configured}"
        transforms.append(found[0])
        chosen[ttype] = found[1]
    negotiated = Negotiated(chosen.get(ENCR), chosen.get(INTEG), chosen.get(PRF), chosen.get(DH), bool(chosen.get(ESN)))
    return (transforms, negotiated), ""


def _first_wanted(ttype: int, wanted: tuple, offered: list[Transform]) -> tuple[Transform, object] | None:
    """The first configured algorithm that is among the offered transforms, with its transform."""
    for value, algorithm in wanted:
        for t in offered:
            if ((t.id, t.key_length) if ttype == ENCR else t.id) == value:
                return t, algorithm
    return None


def accept_reply(reply: Proposal, sent: list[Proposal], configured: tuple[ProposalSpec, ...], protocol: int) -> Selection:
    """The initiator checks the responder's single chosen proposal against what it offered."""
    # Plain loops rather than generators (a call each): every handshake checks two replies.
    ciphers = 0
    for t in reply.transforms:
        ciphers += t.type == ENCR
    if ciphers != 1:
        return Selection(None, None, [f"reply {describe(reply)} must carry exactly one transform of each type"])
    for ours in sent:
        if ours.number == reply.number:
            break
    else:
        return Selection(None, None, [f"reply {describe(reply)} names a proposal number we never offered"])
    offered_ids = {(t.type, t.id, t.key_length) for t in ours.transforms}
    for t in reply.transforms:
        if (t.type, t.id, t.key_length) not in offered_ids:
            return Selection(None, None, [f"reply {describe(reply)} chose {describe_transform(t)}, which we did not offer"])
    spec = configured[reply.number - 1]
    chosen, why = _match(reply, spec, protocol)
    if chosen is None:
        return Selection(None, None, [f"reply {describe(reply)}: {why}"])
    return Selection(reply, chosen[1], DeferredList(lambda: [f"responder chose {describe(reply)}"]))
