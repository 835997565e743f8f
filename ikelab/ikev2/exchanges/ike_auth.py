"""IKE_AUTH (RFC 7296 §1.2): prove identities and create the first Child SA.

    HDR, SK {IDi, [IDr,] AUTH, SAi2, TSi, TSr}  -->
                                   <--  HDR, SK {IDr, AUTH, SAr2, TSi, TSr}

A wrong AUTH ends the IKE SA (AUTHENTICATION_FAILED). A Child SA that cannot be agreed
(NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE) leaves the IKE SA up without it (RFC 7296 §1.2).
"""

from __future__ import annotations

import dataclasses
import hmac
from functools import lru_cache
from typing import TYPE_CHECKING

from ikelab.effects import IkeSaUp, InstallChildSa
from ikelab.ikev2 import proposals, selectors
from ikelab.ikev2.auth import psk_auth
from ikelab.ikev2.config import Identity
from ikelab.ikev2.exchanges import child_sa_payloads, error_notifies, notify_name
from ikelab.ikev2.ike_sa import IkeSa, State
from ikelab.ikev2.keys import derive_child_sa
from ikelab.pki.ca import der
from ikelab.pki.keys import describe_key
from ikelab.pki.signature_auth import SIGNATURE_METHODS, choose, describe_auth, sign, signed_octets, verify
from ikelab.pki.peer_certificate import check_peer_certificate
from ikelab.pki.validation import certreq_data, same_identity
from ikelab.trace import AuthEvent, IkeSaEvent, TrafficSelectorEvent
from ikelab.wire.ikev2 import AuthPayload, CertPayload, CertReqPayload, IdPayload, NotifyPayload, Proposal, SaPayload, TsPayload
from ikelab.wire.ikev2_constants import AuthMethod, CertEncoding, ExchangeType, NotifyType, ProtocolId, name_of

if TYPE_CHECKING:
    from ikelab.crypto.names import ProposalSpec
    from ikelab.ikev2.engine import Ikev2Peer, Received


# Enum members read once (one read from its class is a Python-level lookup: EnumType has __getattr__).
SHARED_KEY_MIC, ESP, IKE_AUTH = AuthMethod.SHARED_KEY_MIC, ProtocolId.ESP, ExchangeType.IKE_AUTH


def _child_specs(peer: "Ikev2Peer") -> tuple["ProposalSpec", ...]:
    """ESP proposals without DH: IKE_AUTH carries no KE, so PFS applies only to later rekeys.
    Asked once per step: the cache's key (nested frozen dataclasses) takes long to hash."""
    return _without_dh(peer.config.esp_proposals)


@lru_cache(maxsize=64)
def _without_dh(specs: tuple["ProposalSpec", ...]) -> tuple["ProposalSpec", ...]:
    # Made once per configuration, not in every IKE_AUTH (a handshake asks three times).
    return tuple(dataclasses.replace(s, dh=()) for s in specs)


def _own_id(peer: "Ikev2Peer", initiator: bool) -> IdPayload:
    ident = peer.config.local_id
    return IdPayload(initiator, ident.id_type, ident.data)


def _auth_inputs(sa: IkeSa, of_initiator: bool) -> tuple[bytes, bytes, bytes, str]:
    """RealMessage, the other side's nonce, and SK_p of the side whose AUTH this is (RFC 7296 §2.15)."""
    keys = sa.keys
    if of_initiator:
        return sa.init_request, sa.nr, keys.sk_pi, "SK_pi"
    return sa.init_response, sa.ni, keys.sk_pr, "SK_pr"


def _auth(peer: "Ikev2Peer", sa: IkeSa, *, of_initiator: bool, id_payload: IdPayload, action: str, received: bytes | None = None):
    """A PSK AUTH value (ours, or the one we expect from the peer), every input traced."""
    message, nonce, sk_p, label = _auth_inputs(sa, of_initiator)
    result = psk_auth(sa.ike.prf, peer.config.psk, message, nonce, sk_p, id_payload.id_body())
    ok = None if received is None else hmac.compare_digest(result.auth, received)
    of_role = "initiator" if of_initiator else "responder"
    # The fields by position, in AuthEvent's order (four a handshake: keywords reach a class as a dict).
    peer.record(AuthEvent(
        peer.config.name, peer.now, action, of_role, "SHARED_KEY_MIC (PSK)", message, nonce, result.id_body, label,
        result.maced_id, result.signed_octets, result.auth_key, result.auth, received, ok,
    ))
    return result.auth, ok


def _own_auth(peer: "Ikev2Peer", sa: IkeSa, *, of_initiator: bool, id_payload: IdPayload) -> AuthPayload:
    """Our AUTH payload: a PSK MAC, or a signature with our certificate's key."""
    cfg = peer.config
    if cfg.auth != "pubkey":
        data, _ = _auth(peer, sa, of_initiator=of_initiator, id_payload=id_payload, action="computed")
        return AuthPayload(SHARED_KEY_MIC, data)
    message, nonce, sk_p, label = _auth_inputs(sa, of_initiator)
    octets = signed_octets(sa.ike.prf, message, nonce, sk_p, id_payload.id_body())
    method, hash_choice = choose(cfg.private_key, sa.peer_hashes, prefer=cfg.signature)
    data = sign(method, cfg.private_key, octets.octets, hash_choice)
    peer.record(AuthEvent(
        peer.config.name, peer.now, action="computed", of_role="initiator" if of_initiator else "responder",
        method=describe_auth(method, data) + f" with {describe_key(cfg.private_key)}",
        message=message, nonce=nonce, id_body=octets.id_body, sk_p_label=label, maced_id=octets.maced_id,
        signed_octets=octets.octets, auth_key=b"", expected=data,
    ))
    return AuthPayload(method, data)


def _own_certificates(peer: "Ikev2Peer") -> list:
    cfg = peer.config
    if cfg.auth != "pubkey":
        return []
    return [CertPayload(CertEncoding.X509_CERT_SIGNATURE, der(c)) for c in (cfg.certificate, *cfg.intermediates)]


def certificate_request(peer: "Ikev2Peer") -> list:
    """CERTREQ naming the CAs we trust (SHA-1 of their public keys, RFC 7296 §3.7)."""
    cfg = peer.config
    if cfg.auth != "pubkey" or not cfg.trusted_cas:
        return []
    return [CertReqPayload(CertEncoding.X509_CERT_SIGNATURE, certreq_data(cfg.trusted_cas))]


def _check_signature(peer: "Ikev2Peer", sa: IkeSa, payloads: list, id_payload: IdPayload, auth: AuthPayload, peer_is_initiator: bool) -> str | None:
    """Validate the peer's certificate (chain, validity, identity), then its AUTH signature."""
    if auth.method not in SIGNATURE_METHODS:
        return f"the peer authenticates with {name_of(AuthMethod, auth.method)}, but we expect a certificate signature"
    role = "initiator" if peer_is_initiator else "responder"
    checked = check_peer_certificate(peer, (p for p in payloads if isinstance(p, CertPayload)), id_payload, of_role=role)
    if isinstance(checked, str):
        return checked
    if not checked.ok:
        return checked.reason
    message, nonce, sk_p, label = _auth_inputs(sa, peer_is_initiator)
    octets = signed_octets(sa.ike.prf, message, nonce, sk_p, id_payload.id_body())
    result = verify(auth.method, checked.public_key, octets.octets, auth.data)
    peer.record(AuthEvent(
        peer.config.name, peer.now, action="verified", of_role=role,
        method=describe_auth(auth.method, auth.data) + f" with {describe_key(checked.public_key)}",
        message=message, nonce=nonce, id_body=octets.id_body, sk_p_label=label, maced_id=octets.maced_id,
        signed_octets=octets.octets, auth_key=b"", expected=b"", received=auth.data, ok=result.ok,
    ))
    if not result.ok:
        return f"the AUTH signature of {sa.peer_id} is wrong: {result.reason}"
    return None


def _established(peer: "Ikev2Peer", sa: IkeSa) -> None:
    sa.state = State.ESTABLISHED
    peer.record(IkeSaEvent(peer.config.name, peer.now, "established", sa.spi_i, sa.spi_r, sa.ike.keywords()))
    peer.effect(IkeSaUp(sa.spi_i, sa.spi_r))
    peer.schedule(sa, peer.config.rekey_ike_after, "rekey-ike")
    peer.schedule(sa, peer.config.liveness_every, "liveness")
    peer.schedule_keepalive(sa)


def _check_peer_auth(peer: "Ikev2Peer", sa: IkeSa, payloads: list, *, peer_is_initiator: bool) -> str | None:
    """Verify the peer's ID and AUTH; returns why they are refused, or None."""
    id_payload = auth = None
    for p in payloads:  # the first of each, in one pass
        if isinstance(p, IdPayload):
            if id_payload is None and p.initiator == peer_is_initiator:
                id_payload = p
        elif auth is None and isinstance(p, AuthPayload):
            auth = p
    if id_payload is None or auth is None:
        return "the message lacks the ID or AUTH payload"
    sa.peer_id = Identity.from_wire(id_payload.id_type, id_payload.data)
    expected_id = peer.config.remote_id
    if expected_id is not None and not same_identity(
        expected_id.id_type, expected_id.data, id_payload.id_type, id_payload.data
    ):
        return f"the peer says it is {sa.peer_id} but we expect {expected_id}"
    if peer.config.auth == "pubkey":
        return _check_signature(peer, sa, payloads, id_payload, auth, peer_is_initiator)
    if auth.method != SHARED_KEY_MIC:
        return f"the peer authenticates with {name_of(AuthMethod, auth.method)}, but we are configured for a pre-shared key"
    _, ok = _auth(peer, sa, of_initiator=peer_is_initiator, id_payload=id_payload, action="verified", received=auth.data)
    if not ok:
        return f"the AUTH of {sa.peer_id} does not match what our pre-shared key gives: the keys differ"
    return None


def _trace_selectors(peer: "Ikev2Peer", offered_tsi: list, offered_tsr: list, chosen_tsi: list, chosen_tsr: list, reason: str) -> None:
    text = selectors.to_text
    # The fields by position, in TrafficSelectorEvent's order (keywords reach a class as a dict: see engine.emit_message).
    peer.record(TrafficSelectorEvent(
        peer.config.name, peer.now, list(map(text, offered_tsi)), list(map(text, offered_tsr)), list(peer.config.local_ts),
        list(peer.config.remote_ts), list(map(text, chosen_tsi)), list(map(text, chosen_tsr)), reason,
    ))


# ------------------------------------------------------------------------- initiator


def start(peer: "Ikev2Peer", sa: IkeSa) -> None:
    cfg = peer.config
    id_i = _own_id(peer, True)
    auth = _own_auth(peer, sa, of_initiator=True, id_payload=id_i)
    sa.child_spi = peer.new_child_spi()
    sa.offered_esp = proposals.offer(_child_specs(peer), ESP, spi=sa.child_spi)
    payloads = [id_i] + _own_certificates(peer) + certificate_request(peer)
    if cfg.remote_id is not None:
        payloads.append(IdPayload(False, cfg.remote_id.id_type, cfg.remote_id.data))
    offered_tsi = [selectors.from_network(n) for n in cfg.local_ts]
    offered_tsr = [selectors.from_network(n) for n in cfg.remote_ts]
    payloads += [auth, SaPayload(sa.offered_esp), TsPayload(True, offered_tsi), TsPayload(False, offered_tsr)]
    sa.state = State.AUTH_SENT
    peer.send_request(sa, IKE_AUTH, payloads, lambda r: _receive_response(peer, sa, r, offered_tsi, offered_tsr))


def rejected(peer: "Ikev2Peer", by: str) -> str:
    """Why the peer answered AUTHENTICATION_FAILED, as far as our side can tell."""
    if peer.config.auth == "pubkey":
        cause = ("it did not accept our certificate or signature (an issuer it does not trust, the dates, or an "
                 "identity missing from the certificate; its own log names the check)")
    else:
        cause = "wrong pre-shared key or identity"
    return f"the {by} rejected our AUTH (AUTHENTICATION_FAILED): {cause}"


def _receive_response(peer: "Ikev2Peer", sa: IkeSa, response: "Received", offered_tsi: list, offered_tsr: list) -> None:
    """The IKE_AUTH response; `offered_tsi` and `offered_tsr` are the selectors our request carried."""
    payloads = response.inner
    errors = error_notifies(payloads)
    if any(n.notify_type == NotifyType.AUTHENTICATION_FAILED for n in errors):
        peer.fail(sa, rejected(peer, "responder"), "AUTHENTICATION_FAILED")
        return
    refusal = _check_peer_auth(peer, sa, payloads, peer_is_initiator=False)
    if refusal is not None:
        from ikelab.ikev2.exchanges import informational

        peer.note("error", f"responder authentication failed: {refusal}")
        informational.send_notify(peer, sa, NotifyType.AUTHENTICATION_FAILED)
        peer.fail(sa, refusal, "AUTHENTICATION_FAILED")
        return
    _established(peer, sa)
    if errors:
        peer.note("error", f"the IKE SA is up but the responder refused the Child SA with {notify_name(errors[0])}")
        return
    sa_r, tsi, tsr = child_sa_payloads(payloads)
    if sa_r is None or tsi is None or tsr is None or len(sa_r.proposals) != 1:
        peer.note("error", "the IKE_AUTH response lacks SA, TSi or TSr: no Child SA")
        return
    specs = _child_specs(peer)
    selection = proposals.accept_reply(sa_r.proposals[0], sa.offered_esp, specs, ESP)
    peer.record(proposals.choice_event(peer.config.name, peer.now, "ESP", sa.offered_esp, specs, selection))
    narrowed_ok = selectors.covered(tsi.selectors, offered_tsi) and selectors.covered(tsr.selectors, offered_tsr)
    reason = "within what we proposed" if narrowed_ok else "the responder widened our traffic selectors"
    _trace_selectors(peer, offered_tsi, offered_tsr, tsi.selectors, tsr.selectors, reason)
    if selection.negotiated is None or not narrowed_ok or len(sa_r.proposals[0].spi) != 4:
        peer.note("error", "the responder's Child SA reply is not acceptable: no Child SA")
        return
    child = derive_child_sa(
        peer,
        sa,
        selection.negotiated,
        spi_from_initiator=sa.child_spi,
        spi_from_responder=sa_r.proposals[0].spi,
        local_ts=[n for t in tsi.selectors for n in selectors.to_networks(t)],
        remote_ts=[n for t in tsr.selectors for n in selectors.to_networks(t)],
        ni=sa.ni,
        nr=sa.nr,
    )
    sa.children.append(child)
    peer.effect(InstallChildSa(child))
    peer.schedule(sa, peer.config.rekey_child_after, f"rekey-child {child.inbound.spi.hex()}")


# ------------------------------------------------------------------------- responder


def receive_request(peer: "Ikev2Peer", sa: IkeSa, request: "Received") -> None:
    if sa.state is not State.INIT_DONE:
        peer.note("warning", f"IKE_AUTH request in state {sa.state.value}: ignored")
        return
    payloads = request.inner
    refusal = _check_peer_auth(peer, sa, payloads, peer_is_initiator=True)
    if refusal is not None:
        peer.note("error", f"initiator authentication failed: {refusal}; answering AUTHENTICATION_FAILED")
        peer.send_response(sa, request.header, [NotifyPayload(NotifyType.AUTHENTICATION_FAILED)])
        peer.fail(sa, refusal, "AUTHENTICATION_FAILED")
        return
    _established(peer, sa)
    id_r = _own_id(peer, False)
    auth = _own_auth(peer, sa, of_initiator=False, id_payload=id_r)
    reply = [id_r] + _own_certificates(peer) + [auth] + _create_child(peer, sa, payloads)
    peer.send_response(sa, request.header, reply)


def _create_child(peer: "Ikev2Peer", sa: IkeSa, payloads: list) -> list:
    """The responder's Child SA payloads: SAr2, TSi, TSr, or the notify saying why there is none."""
    sa_i, tsi, tsr = child_sa_payloads(payloads)
    if sa_i is None or tsi is None or tsr is None:
        peer.note("error", "IKE_AUTH request lacks SA, TSi or TSr: no Child SA")
        return [NotifyPayload(NotifyType.INVALID_SYNTAX)]
    specs = _child_specs(peer)
    selection = proposals.select(sa_i.proposals, specs, ESP)
    peer.record(proposals.choice_event(peer.config.name, peer.now, "ESP", sa_i.proposals, specs, selection))
    if selection.proposal is None:
        peer.note("error", "no offered ESP proposal matches ours: answering NO_PROPOSAL_CHOSEN, the IKE SA stays up")
        return [NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN)]
    narrowed = selectors.responder_narrow(tsi.selectors, tsr.selectors, list(peer.config.local_ts), list(peer.config.remote_ts))
    _trace_selectors(peer, tsi.selectors, tsr.selectors, narrowed.tsi, narrowed.tsr, narrowed.reason)
    if not narrowed.ok:
        peer.note("error", f"{narrowed.reason}: answering TS_UNACCEPTABLE, the IKE SA stays up")
        return [NotifyPayload(NotifyType.TS_UNACCEPTABLE)]
    offered_spi = selection.proposal.spi
    if len(offered_spi) != 4:
        peer.note("error", f"the ESP proposal carries a {len(offered_spi)}-byte SPI instead of 4: INVALID_SYNTAX")
        return [NotifyPayload(NotifyType.INVALID_SYNTAX)]
    our_spi = peer.new_child_spi()
    child = derive_child_sa(
        peer,
        sa,
        selection.negotiated,
        spi_from_initiator=offered_spi,
        spi_from_responder=our_spi,
        local_ts=[n for t in narrowed.tsr for n in selectors.to_networks(t)],
        remote_ts=[n for t in narrowed.tsi for n in selectors.to_networks(t)],
        ni=sa.ni,
        nr=sa.nr,
    )
    sa.children.append(child)
    peer.effect(InstallChildSa(child))  # installed before the response leaves, so no ESP is lost
    peer.schedule(sa, peer.config.rekey_child_after, f"rekey-child {child.inbound.spi.hex()}")
    reply = Proposal(selection.proposal.number, ESP, our_spi, selection.proposal.transforms)
    return [SaPayload([reply]), TsPayload(True, narrowed.tsi), TsPayload(False, narrowed.tsr)]
