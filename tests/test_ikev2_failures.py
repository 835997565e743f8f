"""Each way IKEv2 can refuse, seen from both peers: the right notify on the wire and a reason."""

from __future__ import annotations

from conftest import lesson_with, messages, run
from ikelab.lab.session import Session
from ikelab.lab.transports import MemoryTransport
from ikelab.trace import AuthEvent, ChildSaEvent, IkeSaEvent, MessageEvent, NoteEvent, ProposalEvent, TrafficSelectorEvent


def failure(session, peer):
    return session.outcome.failures.get(peer)


def test_ike_proposal_mismatch_gives_no_proposal_chosen():
    session = run(lesson_with(left={"ike": "aes256-sha512-modp3072"}, right={"ike": "aes128-sha256-modp2048"}))
    sent = messages(session)
    assert len(sent) == 2
    assert sent[1].summary == "HDR, N(NO_PROPOSAL_CHOSEN)"
    decision = session.trace.of(ProposalEvent, "right")[0]
    assert decision.chosen is None
    assert any("no common ENCR" in r for r in decision.reasons)
    assert failure(session, "left").notify == "NO_PROPOSAL_CHOSEN"
    assert "right" not in session.outcome.failures  # the responder kept no state to fail
    assert not session.outcome.children["left"] and not session.outcome.children["right"]


def test_invalid_ke_payload_makes_the_initiator_retry_with_the_asked_group():
    session = run(lesson_with(left={"ike": "aes128-sha256-ecp256-modp2048"}, right={"ike": "aes128-sha256-modp2048"}))
    sent = messages(session)
    assert sent[1].summary == "HDR, N(INVALID_KE_PAYLOAD)"
    first, retry = sent[0].tree, sent[2].tree
    assert "ECP_256" in first.find("KE payload").find("DH Group Num").display
    assert "MODP_2048" in retry.find("KE payload").find("DH Group Num").display
    assert sent[2].message_id == 0
    assert session.outcome.success


def test_wrong_psk_is_authentication_failed_on_both_sides():
    session = run(lesson_with(left={"psk": b"one key"}, right={"psk": b"another key"}))
    assert failure(session, "left").notify == "AUTHENTICATION_FAILED"
    assert failure(session, "right").notify == "AUTHENTICATION_FAILED"
    response = messages(session)[-1]
    assert response.exchange == "IKE_AUTH" and response.summary == "HDR, SK {N(AUTHENTICATION_FAILED)}"
    verify = [e for e in session.trace.of(AuthEvent, "right") if e.action == "verified"][0]
    computed = [e for e in session.trace.of(AuthEvent, "left") if e.action == "computed"][0]
    assert verify.ok is False
    assert verify.received == computed.expected != verify.expected
    # Everything but the key pad (which the PSK makes) was the same on both sides.
    assert (verify.message, verify.nonce, verify.id_body, verify.maced_id) == (computed.message, computed.nonce, computed.id_body, computed.maced_id)
    assert verify.auth_key != computed.auth_key
    assert not session.outcome.children["left"] and not session.outcome.children["right"]


def test_initiator_refuses_responder_with_wrong_identity_and_tells_it():
    from ikelab.ikev2.config import Identity

    session = run(lesson_with(left={"remote_identity": Identity.parse("gateway.example")}, right={"remote_identity": None}))
    assert failure(session, "left").notify == "AUTHENTICATION_FAILED"
    assert "gateway.example" in failure(session, "left").reason
    informational = [m for m in messages(session) if m.exchange == "INFORMATIONAL"]
    assert informational and informational[0].summary == "HDR, SK {N(AUTHENTICATION_FAILED)}"
    assert failure(session, "right").notify == "AUTHENTICATION_FAILED"


def test_esp_proposal_mismatch_keeps_the_ike_sa_without_child():
    session = run(lesson_with(left={"esp": "aes256gcm16"}, right={"esp": "aes128-sha256"}))
    assert session.outcome.ike_up == {"left": True, "right": True}
    assert messages(session)[-1].summary == "HDR, SK {IDr, AUTH, N(NO_PROPOSAL_CHOSEN)}"
    assert not session.trace.of(ChildSaEvent)
    assert any("refused the Child SA with NO_PROPOSAL_CHOSEN" in e.text for e in session.trace.of(NoteEvent, "left"))


def test_disjoint_traffic_selectors_give_ts_unacceptable():
    session = run(lesson_with(right={"remote_ts": ("192.0.2.128/25",)}))
    assert session.outcome.ike_up == {"left": True, "right": True}
    assert messages(session)[-1].summary == "HDR, SK {IDr, AUTH, N(TS_UNACCEPTABLE)}"
    ts = session.trace.of(TrafficSelectorEvent, "right")[0]
    assert ts.chosen_tsi == [] and "does not overlap" in ts.reason
    assert not session.trace.of(ChildSaEvent)


def test_responder_narrows_traffic_selectors():
    session = run(lesson_with(right={"remote_ts": ("198.51.100.0/25",), "local_ts": ("203.0.113.1/32",)}))
    assert session.outcome.success
    ts = session.trace.of(TrafficSelectorEvent, "right")[0]
    assert ts.chosen_tsi == ["198.51.100.0/25"] and ts.chosen_tsr == ["203.0.113.1/32"]
    left_child = session.outcome.children["left"][0]
    assert left_child.local_ts == ("198.51.100.0/25",) and left_child.remote_ts == ("203.0.113.1/32",)


class LossyTransport(MemoryTransport):
    """Loses the datagrams whose (1-based) numbers are given."""

    def __init__(self, addresses, lose):
        super().__init__(addresses)
        self.lose, self.count = set(lose), 0

    def carry(self, send):
        self.count += 1
        return None if self.count in self.lose else super().carry(send)


def lossy(lose):
    lesson = lesson_with()
    return Session(lesson, LossyTransport({p.name: p.address for p in lesson.peers}, lose), seed=1)


def test_lost_request_is_retransmitted_after_the_timeout():
    session = lossy([1])
    session.run()
    assert session.outcome.success
    sent = [m for m in messages(session, "retransmitted")]
    assert len(sent) == 1 and sent[0].exchange == "IKE_SA_INIT" and sent[0].time == 2.0


def test_lost_response_makes_the_responder_answer_the_repeated_request_again():
    session = lossy([4])  # the IKE_AUTH response
    session.run()
    assert session.outcome.success
    again = messages(session, "retransmitted")
    assert [m.peer for m in again] == ["left", "right"]
    original = [m for m in messages(session) if m.peer == "right" and m.exchange == "IKE_AUTH"][0]
    assert again[1].data == original.data  # the cached response, not a new one
    assert len(session.trace.of(ChildSaEvent, "right")) == 1  # processed once


def test_unreachable_peer_backs_off_then_gives_up():
    session = lossy(range(1, 100))
    session.run()
    times = [m.time for m in messages(session, "retransmitted")]
    assert times == [2.0, 2.0 + 3.6, 2.0 + 3.6 + 6.48, 2.0 + 3.6 + 6.48 + 11.664]
    assert "after 4 retransmissions" in failure(session, "left").reason
    events = session.trace.of(IkeSaEvent, "left")
    assert events[-1].state == "failed"


def test_cookie_under_a_flood_of_half_open_requests():
    from ikelab.lessons import load_lesson

    session = run(load_lesson("ikev2-cookie"))
    assert session.outcome.success
    responder_sent = [m for m in messages(session) if m.peer == "right" and m.exchange == "IKE_SA_INIT"]
    assert sum(m.summary == "HDR, N(COOKIE)" for m in responder_sent) == 12 + 1 - 8
    retry = [m for m in messages(session) if m.peer == "left" and m.exchange == "IKE_SA_INIT"]
    assert [m.summary.split(",")[1].strip() for m in retry] == ["SA", "N(COOKIE)"]
    assert any("returns our cookie: accepted" in e.text for e in session.trace.of(NoteEvent, "right"))
    assert len(session.trace.of(AuthEvent, "right")) == 2  # the real initiator got through


def test_forged_cookie_is_refused():
    import dataclasses

    from ikelab.effects import Endpoint
    from ikelab.ikev2.engine import Ikev2Peer
    from ikelab.lab.session import peer_config
    from ikelab.lessons import load_lesson
    from ikelab.rng import SeededRandom
    from ikelab.trace import Trace
    from ikelab.wire.ikev2 import Message, NotifyPayload, decode_message, encode_message
    from ikelab.wire.ikev2_constants import NotifyType

    lesson = load_lesson("ikev2-cookie")
    responder = Ikev2Peer(dataclasses.replace(peer_config(lesson.right), cookie_threshold=0), SeededRandom(1, "r"), Trace(),
                          Endpoint("192.0.2.2", 500))
    request = messages(run(dataclasses.replace(lesson, flood=0)))[0].data
    init = decode_message(request).message
    forged = encode_message(Message(init.header, [NotifyPayload(NotifyType.COOKIE, data=b"\x01" + bytes(32))] + init.payloads))
    effects = responder.receive(forged, Endpoint("192.0.2.1", 500), Endpoint("192.0.2.2", 500), 0.0)
    answer = decode_message(effects[0].data).message
    assert answer.summary() == "HDR, N(COOKIE)" and answer.payloads[0].data != b"\x01" + bytes(32)
    assert not responder.sas
    assert "not ours" in responder.trace.of(NoteEvent)[-1].text
    # The genuine cookie, returned, gets a full response.
    genuine = encode_message(Message(init.header, [answer.payloads[0]] + init.payloads))
    effects = responder.receive(genuine, Endpoint("192.0.2.1", 500), Endpoint("192.0.2.2", 500), 0.0)
    assert decode_message(effects[0].data).message.summary().startswith("HDR, SA, KE, Nr")
    assert len(responder.sas) == 1


def test_lesson_2_wrong_psk():
    from ikelab.lessons import load_lesson

    session = run(load_lesson("ikev2-wrong-psk"))
    assert session.outcome.failures["left"].notify == "AUTHENTICATION_FAILED"
    assert session.outcome.failures["right"].notify == "AUTHENTICATION_FAILED"
    verify = [e for e in session.trace.of(AuthEvent, "right") if e.action == "verified"][0]
    computed = [e for e in session.trace.of(AuthEvent, "left") if e.action == "computed"][0]
    assert verify.maced_id == computed.maced_id and verify.auth_key != computed.auth_key


def test_nat_in_the_path_moves_ike_to_4500():
    from ikelab.lessons import load_lesson

    session = run(load_lesson("ikev2-nat"))
    assert session.outcome.success
    sent = messages(session)
    assert [m.dst for m in sent] == ["192.0.2.130:500", "192.0.2.129:500", "192.0.2.130:4500", "192.0.2.129:4500"]
    received = [m for m in session.trace.of(MessageEvent, "right") if m.direction == "received"]
    assert received[0].src == "192.0.2.129:500"  # the router's address, as right sees it
    child = session.outcome.children["left"][0]
    assert child.outbound.encap == (4500, 4500)


def test_blocked_udp_500_gives_up_then_4500_gets_through():
    import dataclasses

    from ikelab.lessons import load_lesson

    lesson = load_lesson("ikev2-blocked-500")
    session = run(lesson)
    assert "after 4 retransmissions" in session.outcome.failures["left"].reason
    assert [round(m.time, 2) for m in messages(session, "retransmitted")] == [2.0, 5.6, 12.08, 23.74]
    on_4500 = run(dataclasses.replace(lesson, left=dataclasses.replace(lesson.left, port=4500)))
    assert on_4500.outcome.success
    assert all(m.dst.endswith(":4500") for m in messages(on_4500))
