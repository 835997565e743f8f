"""Each way IKEv1 can refuse, seen from both peers; and the informational exchanges that end SAs."""

from __future__ import annotations

from test_ikev1_handshake import carries_ping, run

from ikelab.trace import (
    ChildSaEvent,
    IkeSaEvent,
    Ikev1HashEvent,
    Ikev1KeysEvent,
    NoteEvent,
    PrfEvent,
    ProposalEvent,
    TrafficSelectorEvent,
)


def test_wrong_psk_in_main_mode_fails_at_message_5_on_both_sides():
    r = run(left={"psk": b"one key"}, right={"psk": b"another key"})
    assert r.failed["right"].notify == r.failed["left"].notify == "PAYLOAD_MALFORMED"
    # The responder: message 5 is garbage under its Ka, and it says why.
    assert "pre-shared keys differ" in r.failed["right"].reason
    assert any(t.startswith("Main Mode message 5 decrypted with our Ka into bytes that are no valid payloads") for t in r.notes("right"))
    # The initiator hears it in the clear and explains what it means.
    assert "could not read our main mode message 5" in r.failed["left"].reason
    assert r.messages()[-1].summary == "HDR, N(PAYLOAD_MALFORMED)" and r.messages()[-1].exchange == "Informational"
    # Side by side: the same inputs, different SKEYID, because the PSK is its key.
    skeyid = {peer: r.trace.of(PrfEvent, peer)[0] for peer in ("left", "right")}
    assert skeyid["left"].data == skeyid["right"].data and skeyid["left"].output != skeyid["right"].output
    ka = {peer: r.trace.of(Ikev1KeysEvent, peer)[0].keys["Ka"] for peer in ("left", "right")}
    assert ka["left"] != ka["right"]
    assert not r.children["left"] and not r.children["right"]
    assert [e.state for e in r.trace.of(IkeSaEvent)] == ["failed", "failed"]


def test_wrong_psk_in_aggressive_mode_fails_at_hash_r():
    r = run(left={"psk": b"one key", "mode": "aggressive"}, right={"psk": b"another key"})
    assert r.failed["left"].notify == "AUTHENTICATION_FAILED" and "HASH_R" in r.failed["left"].reason
    assert r.failed["right"].notify == "AUTHENTICATION_FAILED"
    (verified,) = [e for e in r.trace.of(Ikev1HashEvent, "left") if e.action == "verified"]
    (computed,) = [e for e in r.trace.of(Ikev1HashEvent, "right") if e.action == "computed"]
    assert verified.ok is False and verified.received == computed.output
    assert verified.parts == computed.parts and verified.key != computed.key  # only SKEYID differs


def test_ike_proposal_mismatch_gives_no_proposal_chosen():
    r = run(left={"ike_proposals": "aes256-sha512-modp3072"})
    assert [m.summary for m in r.messages()] == ["HDR, SA, VID, VID", "HDR, N(NO_PROPOSAL_CHOSEN)"]
    decision = r.trace.of(ProposalEvent, "right")[0]
    assert decision.chosen is None and "cipher aes256 not configured" in decision.reasons[0]
    assert r.failed["left"].notify == "NO_PROPOSAL_CHOSEN"
    assert "right" not in r.failed and not r.peers["right"].sas  # the responder kept no state


def test_esp_proposal_mismatch_keeps_the_isakmp_sa():
    r = run(left={"esp_proposals": "aes256-sha512"})
    assert r.up == {"left": True, "right": True} and not r.failed
    assert not r.children["left"] and not r.children["right"]
    assert r.messages()[-1].summary == "HDR*, HASH(1), N(NO_PROPOSAL_CHOSEN)"
    assert any("NO_PROPOSAL_CHOSEN; quick mode" in t and "abandoned" in t for t in r.notes("left"))
    assert r.trace.of(ProposalEvent, "right")[-1].chosen is None


def test_pfs_on_one_side_only_is_refused():
    r = run(left={"esp_proposals": "aes128-sha256-modp2048"})
    assert not r.children["left"] and not r.children["right"]
    reasons = r.trace.of(ProposalEvent, "right")[-1].reasons
    assert any("PFS group modp2048 offered, configured no PFS" in reason for reason in reasons)


def test_proxy_ids_outside_the_responders_policy_are_refused():
    r = run(right={"remote_ts": ("198.51.100.128/25",)})
    assert r.messages()[-1].summary == "HDR*, HASH(1), N(INVALID_ID_INFORMATION)"
    decision = r.trace.of(TrafficSelectorEvent, "right")[0]
    assert decision.chosen_tsi == [] and "not inside" in decision.reason
    assert not r.children["left"]


def test_initiator_refuses_an_unexpected_responder_identity():
    from ikelab.ikev2.config import Identity

    r = run(left={"remote_id": Identity.parse("gateway.example")})
    assert r.failed["left"].notify == "AUTHENTICATION_FAILED" and "gateway.example" in r.failed["left"].reason


def test_aggressive_responder_refuses_an_unexpected_initiator_identity_before_any_hash():
    from ikelab.ikev2.config import Identity

    r = run(left={"mode": "aggressive"}, right={"remote_id": Identity.parse("someone.example")})
    assert r.failed["right"].notify == "INVALID_ID_INFORMATION"
    assert len(r.messages()) == 2  # message 1, then the refusal


def test_a_responder_follows_the_initiators_mode():
    r = run(left={"mode": "aggressive"}, right={"mode": "main"})
    assert r.success  # a responder follows the initiator's mode


# --- informational exchanges -----------------------------------------------------------------


def test_delete_child_removes_the_ipsec_sa_on_both_sides():
    r = run()
    r.act("left", "delete-child")
    assert r.messages()[-1].summary == "HDR*, HASH(1), D"
    assert not r.children["left"] and not r.children["right"]
    assert [e.action for e in r.trace.of(ChildSaEvent, "right")] == ["installed", "deleted"]
    assert r.up == {"left": True, "right": True} and not r.failed


def test_delete_isakmp_sa_removes_everything():
    r = run()
    r.act("right", "delete-ike")
    assert not r.peers["left"].sas and not r.peers["right"].sas
    assert [e.state for e in r.trace.of(IkeSaEvent, "left")] == ["established", "deleted"]
    assert not r.children["left"] and not r.children["right"]


def test_another_quick_mode_adds_a_second_ipsec_sa():
    r = run()
    r.act("right", "create-child")  # the phase 1 responder may start quick mode as well
    assert len(r.children["left"]) == len(r.children["right"]) == 2
    left, right = r.children["left"][1], r.children["right"][1]
    assert left.outbound == right.inbound and left.inbound == right.outbound
    assert left.inbound.spi != r.children["left"][0].inbound.spi


def test_dead_peer_detection_is_answered():
    r = run()
    r.act("left", "liveness")
    assert [m.summary for m in r.messages()[-2:]] == ["HDR*, HASH(1), N(R_U_THERE)", "HDR*, HASH(1), N(R_U_THERE_ACK)"]
    assert any("alive" in t for t in r.notes("left", "info"))


def test_actions_without_an_isakmp_sa_say_so():
    r = run(left={"psk": b"x"})
    r.act("left", "delete-child")
    assert r.notes("left", "warning")[-1] == "cannot delete-child: no established ISAKMP SA"


def test_an_unprotected_notify_after_phase_1_is_ignored():
    from ikelab.wire.isakmp import Header, Message, NotifyPayload, encode_message
    from ikelab.wire.isakmp_constants import ExchangeType

    r = run()
    sa = r.peers["left"].established()[0]
    forged = encode_message(Message(Header(sa.cky_i, sa.cky_r, 0, ExchangeType.INFORMATIONAL, 0, 99), [NotifyPayload(24)]))
    r.apply("left", r.peers["left"].receive(forged, r.wire[1].src, r.wire[1].dst, r.clock))
    assert r.up["left"] and "left" not in r.failed and carries_ping(r)
    assert "ignored an unprotected AUTHENTICATION_FAILED" in r.notes("left", "warning")[-1]
    assert not [e for e in r.trace.of(NoteEvent) if e.text.startswith("internal error")]
