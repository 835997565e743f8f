"""Aggressive mode with a pre-shared key or signatures (RFC 2409 §5, §5.1, §5.4).

    1  HDR, SA, KE, Ni, IDii                          -->
    2                    <--  HDR, SA, KE, Nr, IDir [, NAT-D, NAT-D], HASH_R
    3  HDR*, HASH_I [, NAT-D, NAT-D]                  -->

Three messages instead of six, but the identities travel in the clear and message 2 carries
HASH_R = prf(SKEYID, ...) with SKEYID = prf(PSK, Ni_b | Nr_b): everything but the PSK is on the
wire, so whoever sees messages 1 and 2 can test PSK guesses offline (see ikelab.ikev1.crack).
Message 3 is encrypted here, as strongSwan does; an unencrypted one is accepted as well.
With signatures, messages 1 and 2 add CR, HASH_R becomes [CERT,] SIG_R and HASH_I becomes [CERT,] SIG_I.
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
from ikelab.wire.isakmp import IdPayload, KePayload, NoncePayload, SaPayload, decode_header
from ikelab.wire.isakmp_constants import ExchangeType, NotifyType

if TYPE_CHECKING:
    from ikelab.effects import Endpoint
    from ikelab.ikev1.engine import Ikev1Peer

AGGRESSIVE = ExchangeType.AGGRESSIVE


# ------------------------------------------------------------------------- initiator


def start(peer: "Ikev1Peer", sa: IsakmpSa) -> None:
    cfg = peer.config
    group = next((g for spec in cfg.ike_proposals for g in spec.dh), None)
    try:
        method = authentication.own_auth_method(peer)
    except SignatureError as e:
        peer.fail(sa, f"cannot authenticate with our certificate: {e}")
        return
    # KE goes out with the offer, so every transform must use the group of that KE.
    sa.offer = proposals.phase1_offer(cfg.ike_proposals, cfg.ike_lifetime, group, method)
    if group is None or not sa.offer.proposals[0].transforms:
        peer.fail(sa, "no configured IKE proposal can be offered in IKEv1 (phase 1 needs AES-CBC with a hash)")
        return
    sa.sa_i_b = sa.offer.encode_body()
    sa.dh = phase1.generate_dh(peer, group, "DH")
    sa.ke_i, sa.ni = sa.dh.public, peer.random(phase1.NONCE_LENGTH, "Ni")
    sa.state = State.AGGRESSIVE_SENT
    payloads = [sa.offer, KePayload(sa.ke_i), NoncePayload(sa.ni), phase1.own_id(peer)] + authentication.certificate_request(peer) + phase1.vendor_ids(peer)
    peer.send(sa, sa.exchange, AGGRESSIVE, payloads, encrypt=False, expect_reply=True, sender_is_initiator=True)


def receive(peer: "Ikev1Peer", sa: IsakmpSa, data: bytes, src: "Endpoint", dst: "Endpoint") -> None:
    if sa.state is State.AGGRESSIVE_SENT:
        _message_2(peer, sa, data, src, dst)
    elif sa.state is State.AGGRESSIVE_REPLIED:
        _message_3(peer, sa, data, src, dst)
    else:
        peer.note("warning", f"dropped an aggressive mode message from {src}: the ISAKMP SA is {sa.state.value}")


def _message_2(peer: "Ikev1Peer", sa: IsakmpSa, data: bytes, src: "Endpoint", dst: "Endpoint") -> None:
    decoded = peer.receive_plain(sa.exchange, data, src, dst, sender_is_initiator=False)
    if decoded is None:
        return
    message = decoded.message
    payloads = message.payloads
    reply, ke, nonce = message.find(SaPayload), message.find(KePayload), message.find(NoncePayload)
    id_at = phase1.payload_index(payloads, IdPayload)
    if reply is None or ke is None or nonce is None or id_at is None:
        peer.fail(sa, "aggressive mode message 2 lacks SA, KE, Nonce or ID", "PAYLOAD_MALFORMED")
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
    sa.ke_r, sa.nr = ke.data, nonce.data
    phase1.learn_vendor_ids(sa, payloads)
    try:
        sa.g_xy = phase1.shared_secret(peer, sa.dh, ke.data)
    except DhError as e:
        phase1.refuse_and_fail(peer, sa, NotifyType.INVALID_KEY_INFORMATION, f"the responder's KE value is unusable: {e}")
        return
    phase1.check_nat(peer, sa, payloads, src, dst)
    authentication.note_certificate_requests(peer, payloads)
    derive_phase1_keys(peer, sa)
    refusal = phase1.check_identity(peer, sa, payloads[id_at], decoded.raw[id_at][4:])
    refusal = refusal or authentication.verify_proof(peer, sa, payloads, peer_is_initiator=False)
    if refusal is not None:
        phase1.refuse_and_fail(peer, sa, NotifyType.AUTHENTICATION_FAILED, f"responder authentication failed: {refusal}")
        return
    try:
        proof = authentication.own_proof(peer, sa, of_initiator=True, id_b=phase1.own_id(peer).encode_body())
    except SignatureError as e:
        phase1.refuse_and_fail(peer, sa, NotifyType.AUTHENTICATION_FAILED, f"cannot sign HASH_I: {e}")
        return
    payloads = proof + phase1.nat_d_payloads(peer, sa)
    phase1.float_to_nat_t_port(peer, sa)
    peer.send(sa, sa.exchange, AGGRESSIVE, payloads, encrypt=True, expect_reply=False, sender_is_initiator=True)
    phase1.established(peer, sa)


# ------------------------------------------------------------------------- responder


def respond(peer: "Ikev1Peer", data: bytes, src: "Endpoint", dst: "Endpoint") -> None:
    """Message 1: everything arrives at once, so the responder can authenticate itself in message 2."""
    exchange = Exchange("Aggressive Mode", 0)
    decoded = peer.receive_plain(exchange, data, src, dst, sender_is_initiator=True)
    if decoded is None:
        return
    message = decoded.message
    payloads, cky_i = message.payloads, message.header.cky_i
    sa_at, id_at = phase1.payload_index(payloads, SaPayload), phase1.payload_index(payloads, IdPayload)
    ke, nonce = message.find(KePayload), message.find(NoncePayload)
    if sa_at is None or ke is None or nonce is None or id_at is None:
        phase1.refuse(peer, cky_i, bytes(8), NotifyType.PAYLOAD_MALFORMED, "aggressive mode message 1 lacks SA, KE, Nonce or ID", dst, src)
        return
    offer = payloads[sa_at]
    selection = phase1.choose_offer(peer, offer, cky_i, dst, src)
    if selection is None:
        return
    sa = phase1.new_responder_sa(peer, "aggressive", cky_i, src, dst, exchange)
    sa.ike, sa.offer, sa.sa_i_b = selection.negotiated, offer, decoded.raw[sa_at][4:]
    sa.ke_i, sa.ni = ke.data, nonce.data
    phase1.learn_vendor_ids(sa, payloads)
    refusal = phase1.check_identity(peer, sa, payloads[id_at], decoded.raw[id_at][4:])
    if refusal is not None:
        phase1.refuse_and_fail(peer, sa, NotifyType.INVALID_ID_INFORMATION, refusal)
        return
    authentication.note_certificate_requests(peer, payloads)
    sa.dh = phase1.generate_dh(peer, sa.ike.dh, "DH")
    sa.ke_r, sa.nr = sa.dh.public, peer.random(phase1.NONCE_LENGTH, "Nr")
    try:
        sa.g_xy = phase1.shared_secret(peer, sa.dh, ke.data)
    except DhError as e:
        phase1.refuse_and_fail(peer, sa, NotifyType.INVALID_KEY_INFORMATION, f"the initiator's KE value does not fit {sa.ike.dh.name}: {e}")
        return
    derive_phase1_keys(peer, sa)
    id_r = phase1.own_id(peer)
    try:
        proof = authentication.own_proof(peer, sa, of_initiator=False, id_b=id_r.encode_body())
    except SignatureError as e:
        phase1.refuse_and_fail(peer, sa, NotifyType.AUTHENTICATION_FAILED, f"cannot sign HASH_R: {e}")
        return
    # CR asks for the initiator's certificate: strongSwan sends CERT only when asked (send_cert = ifasked).
    reply = [phase1.reply_sa(offer, selection), KePayload(sa.ke_r), NoncePayload(sa.nr), id_r] + authentication.certificate_request(peer) + phase1.vendor_ids(peer)
    reply += phase1.nat_d_payloads(peer, sa) + proof
    sa.state = State.AGGRESSIVE_REPLIED
    peer.send(sa, exchange, AGGRESSIVE, reply, encrypt=False, expect_reply=True, sender_is_initiator=False)


def _message_3(peer: "Ikev1Peer", sa: IsakmpSa, data: bytes, src: "Endpoint", dst: "Endpoint") -> None:
    try:
        encrypted = decode_header(data).encrypted
    except DecodeError:
        encrypted = False  # receive_plain says what is wrong with it
    if encrypted:
        chain = peer.open(sa, sa.exchange, data, src, dst, sender_is_initiator=True)
        if isinstance(chain, DecodeError):
            reason = "aggressive mode message 3 does not decrypt into valid payloads with our Ka: the keys, so the pre-shared keys, differ"
            phase1.refuse_and_fail(peer, sa, NotifyType.PAYLOAD_MALFORMED, reason)
            return
        payloads = chain.payloads if chain is not None else None
    else:
        decoded = peer.receive_plain(sa.exchange, data, src, dst, sender_is_initiator=True)
        payloads = decoded.message.payloads if decoded is not None else None
    if payloads is None:
        return
    # The initiator hashed the addresses of messages 1 and 2; this one may already come from port 4500.
    phase1.check_nat(peer, sa, payloads, sa.remote, sa.local)
    refusal = authentication.verify_proof(peer, sa, payloads, peer_is_initiator=True)
    if refusal is not None:
        phase1.refuse_and_fail(peer, sa, NotifyType.AUTHENTICATION_FAILED, f"initiator authentication failed: {refusal}")
        return
    peer.follow(sa, src, dst)
    phase1.established(peer, sa)
