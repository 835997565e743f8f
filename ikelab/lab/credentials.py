"""Certificates for a run: the lesson's lab CA issues each peer's certificate (seeded runs give
the same CA, keys and certificates every time, at a fixed date)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography.x509.oid import NameOID

from ikelab.lessons import Lesson, PeerSpec
from ikelab.pki.ca import SEEDED_EPOCH, LabCa
from ikelab.pki.validation import parse_dn
from ikelab.rng import SeededRandom
from ikelab.wire.ikev2_constants import IdType


@dataclass(frozen=True)
class Credentials:
    certificate: object
    private_key: object
    trusted_cas: tuple
    clock_origin: dt.datetime | None

    def config_fields(self) -> dict:
        """What an IKEv1 or IKEv2 engine configuration takes from these credentials."""
        return dict(auth="pubkey", certificate=self.certificate, private_key=self.private_key,
                    trusted_cas=self.trusted_cas, clock_origin=self.clock_origin)


def _split_san(values: tuple[str, ...]) -> tuple[list[str], list[str], list[str]]:
    dns, ips, emails = [], [], []
    for value in values:
        try:
            ipaddress.ip_address(value)
            ips.append(value)
        except ValueError:
            (emails if "@" in value else dns).append(value)
    return dns, ips, emails


def issue_credentials(lesson: Lesson, seed: int | None) -> dict[str, Credentials]:
    """Credentials per peer that authenticates with a certificate (none for PSK peers)."""
    peers = [p for p in lesson.peers if p.auth == "pubkey"]
    if not peers:
        return {}
    now = SEEDED_EPOCH if seed is not None else dt.datetime.now(dt.timezone.utc)
    rng = SeededRandom(seed, "pki") if seed is not None else None
    cas = {lesson.pki.ca: LabCa.create(lesson.pki.ca, lesson.pki.key, now, rng)}
    out = {}
    for peer in peers:
        out[peer.name] = _issue(peer, cas, lesson, now, rng, seeded=seed is not None)
    return out


def _issue(peer: PeerSpec, cas: dict[str, LabCa], lesson: Lesson, now, rng, *, seeded: bool) -> Credentials:
    spec = peer.certificate
    issuer = spec.issuer or lesson.pki.ca
    if issuer not in cas:  # a CA the peers do not trust, for lessons about wrong issuers
        cas[issuer] = LabCa.create(issuer, lesson.pki.key, now, rng)
    name, subject = peer.identity.text.lstrip("@"), None
    if peer.identity.id_type == IdType.ID_DER_ASN1_DN:  # "O=ikelab, CN=a.example": the identity is the subject DN
        subject = parse_dn(peer.identity.text)
        name = next((a.value for a in subject if a.oid == NameOID.COMMON_NAME), peer.identity.text)
    dns, ips, emails = _split_san(spec.san or (() if subject is not None else (name,)))
    issued = cas[issuer].issue(name, dns, ips, spec.key, spec.not_before, spec.not_after, san_email=emails, subject=subject)
    trusted = (cas[lesson.pki.ca].certificate,)
    return Credentials(issued.certificate, issued.private_key, trusted, now if seeded else None)
