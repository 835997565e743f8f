"""ikelab's IKEv1 against what strongSwan 5.9.8 put on the wire (tests/vectors/ikev1/*.pcap).

Its first messages are fed to ikelab's responder; ikelab's own proposals, built from the same
keywords and lifetimes, must come out byte for byte as strongSwan's.
"""

from __future__ import annotations

from test_ikev1_handshake import LEFT, RIGHT, config
from test_ikev1_wire import ike_datagrams

from ikelab.crypto.cipher import cipher
from ikelab.crypto.ikev1_kdf import phase2_iv
from ikelab.crypto.names import parse_proposal
from ikelab.crypto.prf import prf
from ikelab.ikev1 import proposals
from ikelab.ikev1.engine import Ikev1Peer
from ikelab.ikev2.config import Identity
from ikelab.rng import SeededRandom
from ikelab.trace import Ikev1HashEvent, Ikev1MessageEvent, NoteEvent, ProposalEvent, Trace
from ikelab.wire.isakmp import SaPayload, decode_message, decode_payloads
from ikelab.wire.isakmp_constants import EncapsulationMode

STRONGSWAN = {"ike_proposals": (parse_proposal("aes128-sha256-modp2048", ike=True),), "psk": b"interop-test-psk"}


def responder() -> Ikev1Peer:
    cfg = config("right", local_id=Identity.parse("b.example"), **STRONGSWAN)
    return Ikev1Peer(cfg, SeededRandom(1, "right"), Trace(), RIGHT)


def test_our_phase1_offer_is_byte_for_byte_strongswans():
    theirs = decode_message(ike_datagrams("ikev1-main-psk")[0]).message.find(SaPayload)
    ours = proposals.phase1_offer(STRONGSWAN["ike_proposals"], lifetime=15840)
    assert ours.encode_body() == theirs.encode_body()


def test_our_esp_offer_is_byte_for_byte_strongswans():
    data = ike_datagrams("ikev1-main-psk")[6]  # quick mode message 1, opened with the Ka strongSwan logged
    message = decode_message(data).message
    ka, last_phase1_block = bytes.fromhex("1d22232d83763e4e1a5a78167e2cf586"), ike_datagrams("ikev1-main-psk")[5][-16:]
    iv = phase2_iv(prf(5), last_phase1_block, data[20:24], 16)
    chain = decode_payloads(cipher(12, 128).decrypt(ka, iv, message.encrypted), message.header.next_payload)
    theirs = chain.payloads[1].proposals[0].transforms
    # strongSwan believed there was a NAT (its userspace datapath fakes one), hence UDP encapsulation.
    ours = proposals.esp_transforms((parse_proposal("aes128-sha256", ike=False),), 3960, EncapsulationMode.UDP_ENCAPSULATED_TUNNEL)
    assert ours == theirs


def test_our_responder_accepts_strongswans_main_mode_message_1():
    peer = responder()
    effects = peer.receive(ike_datagrams("ikev1-main-psk")[0], LEFT, RIGHT, 0.0)
    (reply,) = [decode_message(e.data).message for e in effects]
    assert reply.summary() == "HDR, SA, VID, VID"
    offered = decode_message(ike_datagrams("ikev1-main-psk")[0]).message.find(SaPayload)
    assert reply.find(SaPayload) == offered  # one transform offered, so the answer repeats the offer
    assert peer.trace.of(ProposalEvent)[0].chosen == "AES_CBC-128, SHA2_256, MODP_2048, PRE_SHARED_KEY"
    # strongSwan's vendor IDs were read: RFC 3947 NAT-T among them, so NAT-D will follow.
    assert peer.sas[reply.header.cky_i].peer_nat_t


def test_our_responder_answers_strongswans_aggressive_mode_message_1():
    peer = responder()
    effects = peer.receive(ike_datagrams("ikev1-aggr-psk")[0], LEFT, RIGHT, 0.0)
    (reply,) = [decode_message(e.data).message for e in effects]
    assert reply.summary(sender_is_initiator=False) == "HDR, SA, KE, Nr, ID, VID, VID, NAT-D, NAT-D, HASH"
    sa = next(iter(peer.sas.values()))
    assert str(sa.peer_id) == "a.example"
    (hash_r,) = peer.trace.of(Ikev1HashEvent)
    assert hash_r.label == "HASH_R" and hash_r.parts["IDir_b"] == b"\x02\x00\x00\x00b.example"
    assert not [e for e in peer.trace.of(NoteEvent) if e.level == "error"]


def test_strongswans_messages_replayed_to_the_wrong_sa_are_dropped_with_reasons():
    peer = responder()
    for data in ike_datagrams("ikev1-main-psk")[2:]:
        peer.receive(data, LEFT, RIGHT, 0.0)
    assert not peer.trace.of(Ikev1MessageEvent)
    assert all("no ISAKMP SA with initiator cookie" in e.text for e in peer.trace.of(NoteEvent))
