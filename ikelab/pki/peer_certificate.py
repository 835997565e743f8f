"""The peer's certificate, as both IKE engines check it: from the CERT payloads it sent to a
verdict in the trace (every check, the chain), before its signature is looked at."""

from __future__ import annotations

import datetime as dt

from ikelab.pki.validation import ValidationResult, cert_payloads, validate
from ikelab.trace import CertificateEvent


def check_peer_certificate(peer, cert_payloads_sent, identity, *, of_role: str) -> ValidationResult | str:
    """Validate the end-entity certificate among the peer's CERT payloads against our trusted CAs,
    at the engine's clock, for the identity the peer claims. `peer` is an IKEv1 or IKEv2 engine
    peer (config.trusted_cas, config.clock_origin, now, note, emit). Returns the result, traced, or
    the reason when there is no certificate to check."""
    bundle = cert_payloads(cert_payloads_sent)
    for text in bundle.notes:
        peer.note("warning", text)
    if bundle.end_entity is None:
        return "the peer sent no certificate (CERT payload) to check its signature with"
    origin = peer.config.clock_origin
    now = origin + dt.timedelta(seconds=peer.now) if origin else dt.datetime.now(dt.timezone.utc)
    checked = validate(bundle.end_entity, peer.config.trusted_cas, now=now, identity=identity,
                       intermediates=bundle.intermediates)
    peer.emit(CertificateEvent, of_role=of_role, subject=checked.subject, ok=checked.ok, reason=checked.reason,
              checks=checked.as_dict()["checks"], chain=list(checked.chain), der=bundle.end_entity)
    return checked
