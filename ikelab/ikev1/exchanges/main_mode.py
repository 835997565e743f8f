"""Main mode (identity protection) with a pre-shared key or signatures (RFC 2409 §5, §5.1, §5.4).

    1  HDR, SA                      -->
    2                               <--  HDR, SA
    3  HDR, KE, Ni [, NAT-D, NAT-D] -->
    4                               <--  HDR, KE, Nr [, NAT-D, NAT-D]
    5  HDR*, IDii, HASH_I           -->
    6                               <--  HDR*, IDir, HASH_R

Messages 5 and 6 are encrypted with a key made from the PSK, so the identities stay hidden. That
is also why a wrong PSK shows up already as message 5 that the responder cannot decrypt.

With signatures (§5.1) messages 3 and 4 add CR (the CAs each side trusts), and messages 5 and 6
carry [CERT,] SIG_I / SIG_R, the signed HASH_I / HASH_R, instead of the HASH itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikelab.crypto.dh import DhError
from ikelab.ikev1 import proposals
from ikelab.ikev1.exchanges import authentication, phase1
from ikelab.ikev1.keys import derive_phase1_keys
from ikelab.ikev1.signatures import SignatureError
from ikelab.ikev1.sa import Exchange, IsakmpSa, State
from ikelab.wire.errors import DecodeError
from ikelab.wire.isakmp import IdPayload, KePayload, NoncePayload, NotifyPayload, SaPayload
from ikelab.wire.isakmp_constants import ExchangeType, NotifyType, ProtocolId

if TYPE_CHECKING:
    from ikelab.effects import Endpoint
    from ikelab.ikev1.engine import Ikev1Peer

MAIN = ExchangeType.IDENTITY_PROTECTION


# ------------------------------------------------------------------------- initiator


def start(peer: "Ikev1Peer", sa: IsakmpSa) -> None:
    cfg = peer.config
    try:
        method = authentication.own_auth_method(peer)
    except SignatureError as e:
        peer.fail(sa, f"cannot authenticate with our certificate: {e}")
        return
    sa.offer = proposals.phase1_offer(cfg.ike_proposals, cfg.ike_lifetime, auth_method=method)
    if not sa.offer.proposals[0].transforms:
        peer.fail(sa, "no configured IKE proposal can be offered in IKEv1 (phase 1 needs AES-CBC with a hash)")
        return
    sa.sa_i_b = sa.offer.encode_body()
    peer.send(sa, sa.exchange, MAIN, [sa.offer] + phase1.vendor_ids(peer), encrypt=False, expect_reply=True, sender_is_initiator=True)


def receive(peer: "Ikev1Peer", sa: IsakmpSa, data: bytes, src: "Endpoint", dst: "Endpoint") -> None:
    handlers = {
        State.SA_SENT: _message_2,
        State.SA_REPLIED: _message_3,
        State.KE_SENT: _message_4,
        State.KE_REPLIED: _message_5,
        State.ID_SENT: _message_6,
    }
    handler = handlers.get(sa.state)
    if handler is None:
        peer.note("warning", f"dropped a main mode message from {src}: the ISAKMP SA is {sa.state.value}")
        return
    handler(peer, sa, data, src, dst)


def _message_2(peer: "Ikev1Peer", sa: IsakmpSa, data: bytes, src: "Endpoint", dst: "Endpoint") -> None:
    decoded = peer.receive_plain(sa.exchange, data, src, dst, sender_is_initiator=False)
    if decoded is None:
        return
    message = decoded.message
    reply = message.find(SaPayload)
    if reply is None:
        peer.fail(sa, "main mode message 2 has no SA payload", "PAYLOAD_MALFORMED")
        return
    selection = proposals.phase1_accept(reply, sa.offer)
    phase1.trace_choice(peer, sa.offer, selection)
    if selection.negotiated is None:
        peer.fail(sa, selection.reasons[-1], "NO_PROPOSAL_CHOSEN")
        return
    if message.header.cky_r == bytes(8):
        peer.fail(sa, "the responder sent no cookie of its own", "INVALID_COOKIE")
        return
    sa.cky_r, sa.ike = message.header.cky_r, selection.negotiated
    phase1.learn_vendor_ids(sa, message.payloads)
    sa.dh = phase1.generate_dh(peer, sa.ike.dh, "DH")
    sa.ke_i, sa.ni = sa.dh.public, peer.random(phase1.NONCE_LENGTH, "Ni")
    sa.state = State.KE_SENT
    payloads = [KePayload(sa.ke_i), NoncePayload(sa.ni)] + authentication.certificate_request(peer) + phase1.nat_d_payloads(peer, sa)
    peer.send(sa, sa.exchange, MAIN, payloads, encrypt=False, expect_reply=True, sender_is_initiator=True)


def _message_4(peer: "Ikev1Peer", sa: IsakmpSa, data: bytes, src: "Endpoint", dst: "Endpoint") -> None:
    decoded = peer.receive_plain(sa.exchange, data, src, dst, sender_is_initiator=False)
    if decoded is None:
        return
    message = decoded.message
    ke, nonce = message.find(KePayload), message.find(NoncePayload)
    if ke is None or nonce is None:
        phase1.refuse_and_fail(peer, sa, NotifyType.PAYLOAD_MALFORMED, "main mode message 4 lacks KE or Nonce")
        return
    sa.ke_r, sa.nr = ke.data, nonce.data
    try:
        sa.g_xy = phase1.shared_secret(peer, sa.dh, ke.data)
    except DhError as e:
        phase1.refuse_and_fail(peer, sa, NotifyType.INVALID_KEY_INFORMATION, f"the responder's KE value is unusable: {e}")
        return
    phase1.check_nat(peer, sa, message.payloads, src, dst)
    authentication.note_certificate_requests(peer, message.payloads)
    derive_phase1_keys(peer, sa)
    phase1.float_to_nat_t_port(peer, sa)
    id_i = phase1.own_id(peer)
    try:
        proof = authentication.own_proof(peer, sa, of_initiator=True, id_b=id_i.encode_body())
    except SignatureError as e:
        peer.fail(sa, f"cannot sign HASH_I: {e}")
        return
    contact = NotifyPayload(NotifyType.INITIAL_CONTACT, ProtocolId.ISAKMP, sa.cookies)
    sa.state = State.ID_SENT
    peer.send(sa, sa.exchange, MAIN, [id_i, *proof, contact], encrypt=True, expect_reply=True, sender_is_initiator=True)


def _message_6(peer: "Ikev1Peer", sa: IsakmpSa, data: bytes, src: "Endpoint", dst: "Endpoint") -> None:
    chain = peer.open(sa, sa.exchange, data, src, dst, sender_is_initiator=False)
    if chain is None:
        return
    if isinstance(chain, DecodeError):
        phase1.refuse_and_fail(peer, sa, NotifyType.PAYLOAD_MALFORMED, "main mode message 6 does not decrypt into valid payloads with our Ka")
        return
    refusal = _authenticate(peer, sa, chain, peer_is_initiator=False)
    if refusal is not None:
        phase1.refuse_and_fail(peer, sa, NotifyType.AUTHENTICATION_FAILED, f"responder authentication failed: {refusal}")
        return
    peer.follow(sa, src, dst)
    phase1.established(peer, sa)


def _authenticate(peer: "Ikev1Peer", sa: IsakmpSa, chain, *, peer_is_initiator: bool) -> str | None:
    authentication.note_certificate_requests(peer, chain.payloads)  # strongSwan's initiator sends its CR here
    id_at = phase1.payload_index(chain.payloads, IdPayload)
    if id_at is None:
        return "the message lacks the ID payload"
    refusal = phase1.check_identity(peer, sa, chain.payloads[id_at], chain.raw[id_at][4:])
    return refusal or authentication.verify_proof(peer, sa, chain.payloads, peer_is_initiator=peer_is_initiator)


# ------------------------------------------------------------------------- responder


def respond(peer: "Ikev1Peer", data: bytes, src: "Endpoint", dst: "Endpoint") -> None:
    """Message 1 from a new initiator: choose a transform, or refuse without keeping any state."""
    exchange = Exchange("Main Mode", 0)
    decoded = peer.receive_plain(exchange, data, src, dst, sender_is_initiator=True)
    if decoded is None:
        return
    message = decoded.message
    cky_i = message.header.cky_i
    at = phase1.payload_index(message.payloads, SaPayload)
    if at is None:
        phase1.refuse(peer, cky_i, bytes(8), NotifyType.PAYLOAD_MALFORMED, "main mode message 1 has no SA payload", dst, src)
        return
    offer = message.payloads[at]
    selection = phase1.choose_offer(peer, offer, cky_i, dst, src)
    if selection is None:
        return
    sa = phase1.new_responder_sa(peer, "main", cky_i, src, dst, exchange)
    sa.ike, sa.offer, sa.sa_i_b = selection.negotiated, offer, decoded.raw[at][4:]
    phase1.learn_vendor_ids(sa, message.payloads)
    reply = phase1.reply_sa(offer, selection)
    peer.send(sa, exchange, MAIN, [reply] + phase1.vendor_ids(peer), encrypt=False, expect_reply=True, sender_is_initiator=False)


def _message_3(peer: "Ikev1Peer", sa: IsakmpSa, data: bytes, src: "Endpoint", dst: "Endpoint") -> None:
    decoded = peer.receive_plain(sa.exchange, data, src, dst, sender_is_initiator=True)
    if decoded is None:
        return
    message = decoded.message
    ke, nonce = message.find(KePayload), message.find(NoncePayload)
    if ke is None or nonce is None:
        phase1.refuse_and_fail(peer, sa, NotifyType.PAYLOAD_MALFORMED, "main mode message 3 lacks KE or Nonce")
        return
    sa.ke_i, sa.ni = ke.data, nonce.data
    sa.dh = phase1.generate_dh(peer, sa.ike.dh, "DH")
    sa.ke_r, sa.nr = sa.dh.public, peer.random(phase1.NONCE_LENGTH, "Nr")
    try:
        sa.g_xy = phase1.shared_secret(peer, sa.dh, ke.data)
    except DhError as e:
        phase1.refuse_and_fail(peer, sa, NotifyType.INVALID_KEY_INFORMATION, f"the initiator's KE value is unusable: {e}")
        return
    phase1.check_nat(peer, sa, message.payloads, src, dst)
    authentication.note_certificate_requests(peer, message.payloads)
    derive_phase1_keys(peer, sa)
    sa.state = State.KE_REPLIED
    payloads = [KePayload(sa.ke_r), NoncePayload(sa.nr)] + authentication.certificate_request(peer) + phase1.nat_d_payloads(peer, sa)
    peer.send(sa, sa.exchange, MAIN, payloads, encrypt=False, expect_reply=True, sender_is_initiator=False)


def _message_5(peer: "Ikev1Peer", sa: IsakmpSa, data: bytes, src: "Endpoint", dst: "Endpoint") -> None:
    chain = peer.open(sa, sa.exchange, data, src, dst, sender_is_initiator=True)
    if chain is None:
        return
    if isinstance(chain, DecodeError):
        reason = (
            "main mode message 5 does not decrypt into valid payloads with our encryption key Ka. Both sides made "
            "Ka from SKEYID = prf(pre-shared-key, Ni_b | Nr_b) with the same nonces and g^xy, so the pre-shared keys differ"
        )
        if sa.ike.signatures:  # no secret went into Ka: the message was damaged or the keys were computed wrongly
            reason = "main mode message 5 does not decrypt into valid payloads with our Ka = f(prf(Ni_b | Nr_b, g^xy)): it was altered on the way"
        phase1.refuse_and_fail(peer, sa, NotifyType.PAYLOAD_MALFORMED, reason)
        return
    refusal = _authenticate(peer, sa, chain, peer_is_initiator=True)
    if refusal is not None:
        phase1.refuse_and_fail(peer, sa, NotifyType.AUTHENTICATION_FAILED, f"initiator authentication failed: {refusal}")
        return
    peer.follow(sa, src, dst)
    id_r = phase1.own_id(peer)
    try:
        proof = authentication.own_proof(peer, sa, of_initiator=False, id_b=id_r.encode_body())
    except SignatureError as e:
        phase1.refuse_and_fail(peer, sa, NotifyType.AUTHENTICATION_FAILED, f"cannot sign HASH_R: {e}")
        return
    peer.send(sa, sa.exchange, MAIN, [id_r, *proof], encrypt=True, expect_reply=False, sender_is_initiator=False)
    phase1.established(peer, sa)
