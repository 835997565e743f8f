"""Phase 1 authentication (RFC 2409 §5, §5.1): the proof each side sends after its ID.

With a pre-shared key the proof is HASH_I / HASH_R itself: only who knows the PSK gets SKEYID, so
only they can compute it. With signatures the same HASH is computed with a SKEYID that no secret
went into, and signed: the message carries [CERT,] SIG_I / SIG_R, and the receiver checks the
certificate (chain to a trusted CA, validity, the ID in it) through ikelab.pki before the
signature. CR payloads name the CAs a side trusts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikelab.ikev1 import proposals, signatures
from ikelab.ikev1.keys import auth_hash
from ikelab.ikev1.sa import IsakmpSa
from ikelab.pki.ca import der
from ikelab.pki.keys import public_key_der
from ikelab.pki.peer_certificate import check_peer_certificate
from ikelab.pki.validation import cert_label, format_dn
from ikelab.trace import Ikev1HashEvent
from ikelab.wire.isakmp import CertPayload, CertReqPayload, HashPayload, Payload, SigPayload
from ikelab.wire.isakmp_constants import AuthMethod, CertEncoding, name_of

if TYPE_CHECKING:
    from ikelab.ikev1.engine import Ikev1Peer


def own_auth_method(peer: "Ikev1Peer") -> int:
    """PRE_SHARED_KEY, or the signature method of our certificate's key; raises SignatureError."""
    if peer.config.auth != "pubkey":
        return AuthMethod.PRE_SHARED_KEY
    return signatures.method_for_key(peer.config.private_key)


def certificate_request(peer: "Ikev1Peer") -> list[CertReqPayload]:
    """A CR per trusted CA, naming it by its DER subject DN (RFC 2408 §3.10), as strongSwan's IKEv1 does."""
    if peer.config.auth != "pubkey":
        return []
    cas = [getattr(ca, "certificate", ca) for ca in peer.config.trusted_cas]
    return [CertReqPayload(CertEncoding.X509_SIGNATURE, ca.subject.public_bytes()) for ca in cas]


def note_certificate_requests(peer: "Ikev1Peer", payloads: list[Payload]) -> None:
    """Say which CAs the peer's CR payloads name, and whether our certificate is from one of them.
    We send our certificate either way: the peer decides whether it trusts its issuer."""
    for cr in (p for p in payloads if isinstance(p, CertReqPayload)):
        if cr.encoding != CertEncoding.X509_SIGNATURE:
            peer.note("info", f"the peer asks for certificates of type {name_of(CertEncoding, cr.encoding)}; ikelab has only X.509 ones")
            continue
        if not cr.authority:
            peer.note("info", "the peer asks for a certificate from any CA (CR with an empty authority)")
            continue
        try:
            ca = format_dn(cr.authority)
        except ValueError as e:
            peer.note("warning", f"the peer's CR names no readable CA (its authority is not a DER distinguished name: {e})")
            continue
        ours = peer.config.certificate
        if ours is None:
            peer.note("info", f"the peer asks for a certificate from CA {ca!r}, but we authenticate with a pre-shared key")
        elif ours.issuer.public_bytes() == cr.authority or format_dn(ours.issuer).casefold() == ca.casefold():
            peer.note("info", f"the peer asks for a certificate from CA {ca!r}: ours is from that CA")
        else:
            peer.note("warning", f"the peer asks for a certificate from CA {ca!r}, but ours is from {format_dn(ours.issuer)!r}: it will likely refuse it")


def own_proof(peer: "Ikev1Peer", sa: IsakmpSa, *, of_initiator: bool, id_b: bytes) -> list[Payload]:
    """HASH_I/HASH_R itself with a PSK; with signatures our certificate and SIG_I/SIG_R = sign(HASH).
    Raises SignatureError when our key cannot make the negotiated kind of signature."""
    hash_value, _ = auth_hash(peer, sa, of_initiator=of_initiator, id_b=id_b)
    if not sa.ike.signatures:
        return [HashPayload(hash_value)]
    cfg = peer.config
    method = signatures.method_for_key(cfg.private_key)
    if proposals.auth_family(method) != proposals.auth_family(sa.ike.auth_method):
        raise signatures.SignatureError(
            f"{name_of(AuthMethod, sa.ike.auth_method)} was agreed, but our certificate holds a key for {name_of(AuthMethod, method)}")
    method = sa.ike.auth_method  # with ECDSA the agreed method, not our key's, fixes the digest HASH is
    mismatch = signatures.curve_mismatch(method, cfg.private_key, "our certificate's")
    if mismatch:
        peer.note("warning", mismatch)
    signature = signatures.sign(method, cfg.private_key, hash_value)
    hash_label, sig_label = ("HASH_I", "SIG_I") if of_initiator else ("HASH_R", "SIG_R")
    peer.emit(
        Ikev1HashEvent,
        label=sig_label,
        formula=f"{sig_label} = signature over {hash_label} with the private key of our certificate",
        prf=signatures.describe(method),
        key_label=f"public key of our certificate {cert_label(cfg.certificate)} (its private half signs)",
        key=public_key_der(cfg.certificate.public_key()),
        parts={hash_label: hash_value},
        output=signature,
        action="computed",
    )
    return [CertPayload(CertEncoding.X509_SIGNATURE, der(cfg.certificate)), SigPayload(signature)]


def verify_proof(peer: "Ikev1Peer", sa: IsakmpSa, payloads: list[Payload], *, peer_is_initiator: bool) -> str | None:
    """Check the peer's HASH (PSK), or its certificate and SIG (signatures); the reason to refuse, or None.
    `sa.peer_id` and `sa.peer_id_b` must already hold the peer's ID payload."""
    if not sa.ike.signatures:
        hash_payload = next((p for p in payloads if isinstance(p, HashPayload)), None)
        if hash_payload is None:
            return "the message lacks the HASH payload"
        return verify_hash(peer, sa, hash_payload.data, peer_is_initiator=peer_is_initiator)
    hash_label, sig_label = ("HASH_I", "SIG_I") if peer_is_initiator else ("HASH_R", "SIG_R")
    agreed = name_of(AuthMethod, sa.ike.auth_method)
    sig = next((p for p in payloads if isinstance(p, SigPayload)), None)
    if sig is None:
        return f"the message lacks the SIG payload, which {agreed} requires"
    role = "initiator" if peer_is_initiator else "responder"
    checked = check_peer_certificate(peer, (p for p in payloads if isinstance(p, CertPayload)), sa.peer_id, of_role=role)
    if isinstance(checked, str):
        return checked
    if not checked.ok:
        return f"the peer's certificate is refused: {checked.reason}"
    key = checked.public_key
    try:
        method = signatures.method_for_key(key)
    except signatures.SignatureError as e:
        return str(e)
    if proposals.auth_family(method) != proposals.auth_family(sa.ike.auth_method):
        return f"{agreed} was agreed, but the peer's certificate holds a key for {name_of(AuthMethod, method)}"
    method = sa.ike.auth_method  # it fixes the digest; the key's curve fixes the size of r|s
    mismatch = signatures.curve_mismatch(method, key, "the peer's certificate's")
    if mismatch:
        peer.note("warning", mismatch)
    # HASH_I/HASH_R as we compute it: the peer signed the same value if all inputs agree.
    expected, _ = auth_hash(peer, sa, of_initiator=peer_is_initiator, id_b=sa.peer_id_b)
    ok, why = signatures.verify(method, key, expected, sig.data)
    peer.emit(
        Ikev1HashEvent,
        label=sig_label,
        formula=f"{sig_label} must be a signature over our {hash_label} by the key in the peer's certificate",
        prf=signatures.describe(method),
        key_label=f"public key of {checked.subject}",
        key=public_key_der(key),
        parts={hash_label: expected},
        output=sig.data,  # what the peer sent; `ok` says whether it verifies over our HASH
        action="verified",
        ok=ok,
    )
    if not ok:
        return f"the {sig_label} of {sa.peer_id} is wrong: {why}"
    peer.note("info", f"{sig_label} verified: {why}")
    return None


def verify_hash(peer: "Ikev1Peer", sa: IsakmpSa, received: bytes, *, peer_is_initiator: bool) -> str | None:
    """Check HASH_I or HASH_R; the reason it is refused, or None."""
    _, ok = auth_hash(peer, sa, of_initiator=peer_is_initiator, id_b=sa.peer_id_b, received=received)
    if ok:
        return None
    label = "HASH_I" if peer_is_initiator else "HASH_R"
    return (
        f"the {label} of {sa.peer_id} does not match ours. Every input but the key was the same on both sides, "
        "and the key SKEYID = prf(pre-shared-key, Ni_b | Nr_b): the pre-shared keys differ"
    )
