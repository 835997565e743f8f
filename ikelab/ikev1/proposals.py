"""IKEv1 SA proposals: strongSwan keyword specs as ISAKMP transforms, and the responder's choice.

Unlike IKEv2, an IKEv1 transform is a complete alternative: a phase 1 transform carries the
cipher, hash, DH group, authentication method and lifetime as attributes (RFC 2409 appendix A),
an ESP transform the cipher, integrity, PFS group, mode and lifetime (RFC 2407 §4.5). A spec with
several algorithms therefore becomes their cartesian product of transforms in one proposal.

The responder walks its own configured proposals in order (strongSwan's default) and takes the
first offered transform that fits one; every refusal is explained, so a mismatch can be shown.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ikelab.crypto.cipher import Cipher, cipher
from ikelab.crypto.dh import DH_GROUPS, DhGroup
from ikelab.crypto.errors import UnknownAlgorithm
from ikelab.crypto.integrity import INTEGRITY, Integrity
from ikelab.crypto.names import ProposalSpec
from ikelab.crypto.prf import PRFS, Prf
from ikelab.ikev2.proposals import Negotiated
from ikelab.wire.isakmp import Proposal, SaPayload, Transform, number_attribute
from ikelab.wire.isakmp_constants import (
    AuthMethod,
    EncapsulationMode,
    IkeAttribute,
    IkeEncryption,
    IkeHash,
    IkeTransformId,
    IpsecAttribute,
    IpsecAuthAlgorithm,
    LifeType,
    ProtocolId,
    name_of,
)
from ikelab.wire.isakmp_sa import describe_transform

# The hash of a phase 1 transform is also its prf (as HMAC): strongSwan's "sha256" keyword.
HASH_OF_INTEGRITY = {"sha1": IkeHash.SHA, "sha256": IkeHash.SHA2_256, "sha384": IkeHash.SHA2_384, "sha512": IkeHash.SHA2_512}
PRF_OF_HASH = {IkeHash.SHA: PRFS[2], IkeHash.SHA2_256: PRFS[5], IkeHash.SHA2_384: PRFS[6], IkeHash.SHA2_512: PRFS[7]}
ESP_AUTH_OF_INTEGRITY = {
    "sha1": IpsecAuthAlgorithm.HMAC_SHA,
    "sha256": IpsecAuthAlgorithm.HMAC_SHA2_256,
    "sha384": IpsecAuthAlgorithm.HMAC_SHA2_384,
    "sha512": IpsecAuthAlgorithm.HMAC_SHA2_512,
}
INTEGRITY_OF_ESP_AUTH = {
    auth: next(i for i in INTEGRITY.values() if i.name == name) for name, auth in ESP_AUTH_OF_INTEGRITY.items()
}
TUNNEL_MODES = (EncapsulationMode.TUNNEL, EncapsulationMode.UDP_ENCAPSULATED_TUNNEL, EncapsulationMode.UDP_ENCAPSULATED_TUNNEL_DRAFT)
PHASE1_KNOWN = {
    IkeAttribute.ENCRYPTION_ALGORITHM,
    IkeAttribute.KEY_LENGTH,
    IkeAttribute.HASH_ALGORITHM,
    IkeAttribute.GROUP_DESCRIPTION,
    IkeAttribute.AUTHENTICATION_METHOD,
    IkeAttribute.LIFE_TYPE,
    IkeAttribute.LIFE_DURATION,
}
ESP_KNOWN = {
    IpsecAttribute.KEY_LENGTH,
    IpsecAttribute.AUTHENTICATION_ALGORITHM,
    IpsecAttribute.GROUP_DESCRIPTION,
    IpsecAttribute.ENCAPSULATION_MODE,
    IpsecAttribute.SA_LIFE_TYPE,
    IpsecAttribute.SA_LIFE_DURATION,
}


# Phase 1 authentication methods ikelab speaks: a pre-shared key, RSA and ECDSA (RFC 4754) signatures.
AUTH_METHODS = (
    AuthMethod.PRE_SHARED_KEY,
    AuthMethod.RSA_SIGNATURES,
    AuthMethod.ECDSA_SHA256_P256,
    AuthMethod.ECDSA_SHA384_P384,
    AuthMethod.ECDSA_SHA512_P521,
)


@dataclass(frozen=True)
class Phase1Algorithms:
    cipher: Cipher
    prf: Prf  # HMAC with the negotiated hash
    dh: DhGroup
    auth_method: int
    lifetime: int | None  # seconds, if the transform gave one

    @property
    def hash_name(self) -> str:
        return self.prf.name.removeprefix("prf")

    def keywords(self) -> str:
        return f"{self.cipher.name}-{self.hash_name}-{self.dh.name}"

    @property
    def signatures(self) -> bool:
        """Authentication by signatures: SKEYID without a secret, HASH_I/HASH_R signed into SIG payloads."""
        return self.auth_method != AuthMethod.PRE_SHARED_KEY


@dataclass(frozen=True)
class Selection:
    transform: Transform | None  # the offered transform that was chosen, as it was offered
    negotiated: Phase1Algorithms | Negotiated | None
    reasons: list[str]


def _product(spec: ProposalSpec, groups: tuple[DhGroup | None, ...]):
    integrity = spec.integrity or (None,)
    return itertools.product(spec.encryption, integrity, groups)


# --- phase 1 ---------------------------------------------------------------------------------


def phase1_offer(specs: tuple[ProposalSpec, ...], lifetime: int, group: DhGroup | None = None, auth_method: int = AuthMethod.PRE_SHARED_KEY) -> SaPayload:
    """One ISAKMP proposal whose transforms are the alternatives; `group` keeps only that DH group
    (aggressive mode sends its KE payload with the offer, so it can offer only one group).
    `auth_method` is the same in every transform: PRE_SHARED_KEY, or the signature method of our key."""
    transforms = []
    for spec in specs:
        for c, integ, g in _product(spec, spec.dh):
            if (group is not None and g != group) or c.is_aead or integ is None:
                continue  # IKEv1 phase 1 has no AEAD ciphers
            attributes = [(IkeAttribute.ENCRYPTION_ALGORITHM, IkeEncryption.AES_CBC), (IkeAttribute.KEY_LENGTH, c.key_bits)]
            attributes += [
                (IkeAttribute.HASH_ALGORITHM, HASH_OF_INTEGRITY[integ.name]),
                (IkeAttribute.GROUP_DESCRIPTION, g.number),
                (IkeAttribute.AUTHENTICATION_METHOD, auth_method),
                (IkeAttribute.LIFE_TYPE, LifeType.SECONDS),
                number_attribute(IkeAttribute.LIFE_DURATION, lifetime),
            ]
            transforms.append(Transform(len(transforms) + 1, IkeTransformId.KEY_IKE, attributes))
    return SaPayload([Proposal(1, ProtocolId.ISAKMP, b"", transforms)])


def phase1_algorithms(t: Transform) -> tuple[Phase1Algorithms | None, str]:
    """What a phase 1 transform asks for, or why ikelab cannot do it."""
    if t.transform_id != IkeTransformId.KEY_IKE:
        return None, f"transform ID {t.transform_id} is not KEY_IKE"
    unknown = [name_of(IkeAttribute, a) for a, _ in t.attributes if a not in PHASE1_KNOWN]
    if unknown:
        return None, f"attributes ikelab does not support: {', '.join(unknown)}"
    encryption, key_bits = t.get(IkeAttribute.ENCRYPTION_ALGORITHM), t.get(IkeAttribute.KEY_LENGTH)
    if encryption != IkeEncryption.AES_CBC:
        return None, f"cipher {name_of(IkeEncryption, encryption or 0)} is not supported (only AES_CBC)"
    try:
        c = cipher(12, key_bits)  # IKEv1's AES-CBC is the same algorithm as IKEv2's ENCR_AES_CBC
    except UnknownAlgorithm:
        return None, f"AES key length {key_bits} is not 128, 192 or 256"
    hash_id = t.get(IkeAttribute.HASH_ALGORITHM)
    if hash_id not in PRF_OF_HASH:
        return None, f"hash {name_of(IkeHash, hash_id or 0)} is not supported"
    group = DH_GROUPS.get(t.get(IkeAttribute.GROUP_DESCRIPTION) or 0)
    if group is None:
        return None, f"DH group {t.get(IkeAttribute.GROUP_DESCRIPTION)} is not supported"
    method = t.get(IkeAttribute.AUTHENTICATION_METHOD)
    if method not in AUTH_METHODS:
        return None, f"authentication method {name_of(AuthMethod, method or 0)} is not supported (PRE_SHARED_KEY, RSA or ECDSA signatures)"
    lifetime = t.get(IkeAttribute.LIFE_DURATION) if t.get(IkeAttribute.LIFE_TYPE) == LifeType.SECONDS else None
    return Phase1Algorithms(c, PRF_OF_HASH[hash_id], group, method, lifetime), ""


def auth_family(method: int) -> str:
    """"psk", "RSA" or "ECDSA": both sides of a phase 1 SA authenticate the same way (strongSwan
    checks the key type only, so a P-256 and a P-384 key can meet under one ECDSA method)."""
    if method == AuthMethod.PRE_SHARED_KEY:
        return "psk"
    return "RSA" if method == AuthMethod.RSA_SIGNATURES else "ECDSA"


def _phase1_fits(algorithms: Phase1Algorithms, spec: ProposalSpec, own_method: int) -> str:
    if auth_family(algorithms.auth_method) != auth_family(own_method):
        ours = "a pre-shared key" if own_method == AuthMethod.PRE_SHARED_KEY else f"{auth_family(own_method)} signatures (our certificate's key)"
        return f"authentication by {name_of(AuthMethod, algorithms.auth_method)}, but we are configured for {ours}"
    if algorithms.cipher not in spec.encryption:
        return f"cipher {algorithms.cipher.name} not configured ({', '.join(c.name for c in spec.encryption)})"
    if algorithms.hash_name not in [i.name for i in spec.integrity]:
        return f"hash {algorithms.hash_name} not configured ({', '.join(i.name for i in spec.integrity)})"
    if algorithms.dh not in spec.dh:
        return f"DH group {algorithms.dh.name} not configured ({', '.join(g.name for g in spec.dh)})"
    return ""


def phase1_select(offered: SaPayload, specs: tuple[ProposalSpec, ...], own_method: int = AuthMethod.PRE_SHARED_KEY) -> Selection:
    reasons: list[str] = []
    proposals = [p for p in offered.proposals if p.protocol == ProtocolId.ISAKMP]
    if len(proposals) != len(offered.proposals):
        reasons.append("ignored proposals for other protocols than ISAKMP")
    for spec in specs:
        for p in proposals:
            for t in p.transforms:
                algorithms, why = phase1_algorithms(t)
                why = why or _phase1_fits(algorithms, spec, own_method)
                label = f"transform #{t.number} ({describe_transform(t, ProtocolId.ISAKMP)})"
                if why:
                    reasons.append(f"{label} vs configured {spec.keywords()}: {why}")
                    continue
                reasons.append(f"{label} matches configured {spec.keywords()}")
                return Selection(t, algorithms, reasons)
    return Selection(None, None, reasons)


def phase1_accept(reply: SaPayload, offered: SaPayload) -> Selection:
    """The initiator checks the responder's choice: one transform, one of those it offered."""
    if len(reply.proposals) != 1 or len(reply.proposals[0].transforms) != 1:
        return Selection(None, None, ["the reply must hold exactly one proposal with one transform"])
    chosen = reply.proposals[0].transforms[0]
    label = describe_transform(chosen, ProtocolId.ISAKMP)
    ours = [t for p in offered.proposals for t in p.transforms]
    if not any(t.attributes == chosen.attributes and t.transform_id == chosen.transform_id for t in ours):
        return Selection(None, None, [f"the responder chose {label}, which we did not offer"])
    algorithms, why = phase1_algorithms(chosen)
    if algorithms is None:
        return Selection(None, None, [why])
    return Selection(chosen, algorithms, [f"the responder chose {label}"])


# --- quick mode (ESP) ------------------------------------------------------------------------


def pfs_group(specs: tuple[ProposalSpec, ...]) -> DhGroup | None:
    """The DH group of quick mode's KE payload: the first one configured, or None (no PFS)."""
    return next((g for spec in specs for g in spec.dh), None)


def esp_transforms(specs: tuple[ProposalSpec, ...], lifetime: int, mode: int = EncapsulationMode.TUNNEL) -> list[Transform]:
    group = pfs_group(specs)
    transforms = []
    for spec in specs:
        for c, integ, _ in _product(spec, (group,)):
            attributes: list = [(IpsecAttribute.KEY_LENGTH, c.key_bits)]
            if integ is not None:
                attributes.append((IpsecAttribute.AUTHENTICATION_ALGORITHM, ESP_AUTH_OF_INTEGRITY[integ.name]))
            if group is not None:
                attributes.append((IpsecAttribute.GROUP_DESCRIPTION, group.number))
            attributes += [
                (IpsecAttribute.ENCAPSULATION_MODE, mode),
                (IpsecAttribute.SA_LIFE_TYPE, LifeType.SECONDS),
                number_attribute(IpsecAttribute.SA_LIFE_DURATION, lifetime),
            ]
            # The ESP transform IDs of AES-CBC (12) and AES-GCM-16 (20) are IKEv2's ENCR numbers.
            transforms.append(Transform(len(transforms) + 1, c.number, attributes))
    return transforms


def esp_algorithms(t: Transform) -> tuple[Negotiated | None, str]:
    unknown = [name_of(IpsecAttribute, a) for a, _ in t.attributes if a not in ESP_KNOWN]
    if unknown:
        return None, f"attributes ikelab does not support: {', '.join(unknown)}"
    try:
        c = cipher(t.transform_id, t.get(IpsecAttribute.KEY_LENGTH))
    except UnknownAlgorithm:
        return None, f"ESP transform {describe_transform(t, ProtocolId.IPSEC_ESP)} is not supported"
    auth = t.get(IpsecAttribute.AUTHENTICATION_ALGORITHM)
    integrity: Integrity | None = None
    if c.is_aead:
        if auth is not None:
            return None, "an AEAD cipher takes no authentication algorithm"
    else:
        integrity = INTEGRITY_OF_ESP_AUTH.get(auth)
        if integrity is None:
            return None, f"authentication algorithm {name_of(IpsecAuthAlgorithm, auth or 0)} is not supported"
    mode = t.get(IpsecAttribute.ENCAPSULATION_MODE)
    if mode not in TUNNEL_MODES:
        return None, f"encapsulation mode {name_of(EncapsulationMode, mode or 0)} is not supported (tunnel only)"
    group_number = t.get(IpsecAttribute.GROUP_DESCRIPTION)
    group = DH_GROUPS.get(group_number) if group_number is not None else None
    if group_number is not None and group is None:
        return None, f"PFS group {group_number} is not supported"
    return Negotiated(cipher=c, integrity=integrity, prf=None, dh=group), ""


def _esp_fits(n: Negotiated, spec: ProposalSpec) -> str:
    if n.cipher not in spec.encryption:
        return f"cipher {n.cipher.name} not configured"
    if n.integrity is not None and n.integrity not in spec.integrity:
        return f"integrity {n.integrity.name} not configured"
    if n.dh is None and spec.dh:
        return f"no PFS offered, but PFS with {spec.dh[0].name} is configured"
    if n.dh is not None and n.dh not in spec.dh:
        return f"PFS group {n.dh.name} offered, configured " + (", ".join(g.name for g in spec.dh) or "no PFS")
    return ""


def esp_select(offered: SaPayload, specs: tuple[ProposalSpec, ...]) -> tuple[Selection, Proposal | None]:
    """The chosen transform and the ESP proposal it came from (whose SPI is the initiator's)."""
    reasons: list[str] = []
    for spec in specs:
        for p in offered.proposals:
            if p.protocol != ProtocolId.IPSEC_ESP:
                reasons.append(f"proposal #{p.number}: protocol {name_of(ProtocolId, p.protocol)} is not supported (only ESP)")
                continue
            for t in p.transforms:
                negotiated, why = esp_algorithms(t)
                why = why or _esp_fits(negotiated, spec)
                label = f"transform #{t.number} ({describe_transform(t, ProtocolId.IPSEC_ESP)})"
                if why:
                    reasons.append(f"{label} vs configured {spec.keywords()}: {why}")
                    continue
                reasons.append(f"{label} matches configured {spec.keywords()}")
                return Selection(t, negotiated, reasons), p
    return Selection(None, None, reasons), None


def esp_accept(reply: Proposal, offered: list[Transform]) -> Selection:
    if reply.protocol != ProtocolId.IPSEC_ESP or len(reply.transforms) != 1 or len(reply.spi) != 4:
        return Selection(None, None, ["the reply must hold one ESP proposal with a 4-byte SPI and one transform"])
    chosen = reply.transforms[0]
    label = describe_transform(chosen, ProtocolId.IPSEC_ESP)
    if not any(t.attributes == chosen.attributes and t.transform_id == chosen.transform_id for t in offered):
        return Selection(None, None, [f"the responder chose {label}, which we did not offer"])
    negotiated, why = esp_algorithms(chosen)
    if negotiated is None:
        return Selection(None, None, [why])
    return Selection(chosen, negotiated, [f"the responder chose {label}"])
