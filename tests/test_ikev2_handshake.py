"""Full IKEv2 handshakes between two ikelab peers, across proposals, groups and transports."""

from __future__ import annotations

import pytest

from conftest import lesson_with, messages, run
from ikelab.trace import AuthEvent, ChildSaEvent, DhSharedEvent, IkeKeysEvent, MessageEvent

MATRIX = [
    ("aes128-sha256-modp2048", "aes128-sha256"),
    ("aes256-sha512-modp3072", "aes256-sha512"),
    ("aes128-sha1-modp1536", "aes128-sha1"),
    ("aes192-sha384-ecp256", "aes192-sha384"),
    ("aes256gcm16-prfsha256-ecp256", "aes256gcm16"),
    ("aes128gcm16-prfsha384-ecp384", "aes128gcm16"),
    ("aes256-sha256-ecp521", "aes256gcm16"),
    ("aes128gcm16-prfsha512-x25519", "aes128-sha256"),
    ("aes256-sha256-prfsha512-modp4096", "aes256-sha256"),
]


def check_established(session):
    out = session.outcome
    assert out.success, out.failures
    left, right = out.children["left"], out.children["right"]
    assert len(left) == len(right) == 1
    # Each side's outbound SA is the other side's inbound SA: same SPI, same keys.
    assert left[0].outbound == right[0].inbound
    assert left[0].inbound == right[0].outbound
    assert left[0].outbound.spi != left[0].inbound.spi
    # Both peers computed the same DH secret and the same IKE SA keys.
    shared = {e.peer: e.shared for e in session.trace.of(DhSharedEvent)}
    assert shared["left"] == shared["right"]
    keys = {e.peer: (e.spi_i, e.spi_r, e.keys) for e in session.trace.of(IkeKeysEvent)}
    assert keys["left"] == keys["right"]
    # Every AUTH verification succeeded and compared what the other side computed.
    computed = {e.of_role: e.expected for e in session.trace.of(AuthEvent) if e.action == "computed"}
    verified = [e for e in session.trace.of(AuthEvent) if e.action == "verified"]
    assert len(verified) == 2 and all(e.ok for e in verified)
    for e in verified:
        assert e.received == computed[e.of_role]


@pytest.mark.parametrize("ike,esp", MATRIX)
def test_handshake_in_memory(ike, esp):
    session = run(lesson_with(both={"ike": ike, "esp": esp}))
    check_established(session)
    assert [m.summary.split(",")[1].strip() for m in messages(session)] == ["SA", "SA", "SK {IDi", "SK {IDr"]
    sent = messages(session)
    assert [(m.peer, m.exchange, m.is_response) for m in sent] == [
        ("left", "IKE_SA_INIT", False),
        ("right", "IKE_SA_INIT", True),
        ("left", "IKE_AUTH", False),
        ("right", "IKE_AUTH", True),
    ]
    child = session.trace.of(ChildSaEvent, "left")[0]
    assert child.algorithms.startswith(esp.split("-")[0])


@pytest.mark.parametrize("ike,esp", [MATRIX[0], MATRIX[4], MATRIX[7]])
def test_handshake_over_loopback_udp(ike, esp):
    session = run(lesson_with(both={"ike": ike, "esp": esp}), transport="loopback")
    check_established(session)
    sent = messages(session)
    assert all(m.src.startswith("127.0.0.1:") for m in sent)
    # The datagram each peer received is byte for byte the one the other peer sent.
    received = messages(session, "received")
    assert [m.data for m in sent] == [m.data for m in received]


def test_several_proposals_responder_takes_its_preferred():
    session = run(
        lesson_with(
            left={"ike": ["aes128-sha1-modp2048", "aes256gcm16-prfsha256-ecp256"], "esp": ["aes128-sha1", "aes256gcm16"]},
            right={"ike": ["aes256gcm16-prfsha256-ecp256", "aes128-sha1-modp2048"], "esp": ["aes256gcm16", "aes128-sha1"]},
        )
    )
    check_established(session)
    keys = session.trace.of(IkeKeysEvent)[0]
    assert keys.cipher == "aes256gcm16"  # the responder's first choice, though offered second
    # The initiator's KE was for modp2048 (its first group), so the responder asked for ecp256.
    inits = [m for m in messages(session) if m.exchange == "IKE_SA_INIT"]
    assert len(inits) == 4
    assert "N(INVALID_KE_PAYLOAD)" in inits[1].summary


def test_seeded_runs_are_byte_identical_and_unseeded_differ():
    a, b = run(seed=7), run(seed=7)
    assert [e.to_dict() for e in a.trace] == [e.to_dict() for e in b.trace]
    c, d = run(seed=None), run(seed=None)
    assert messages(c)[0].data != messages(d)[0].data


def test_trace_records_every_value_a_student_needs():
    session = run()
    kinds = {e.kind for e in session.trace if e.peer == "left"}
    assert {"message", "dh_keypair", "dh_shared", "prf", "prf_plus", "ike_keys", "auth", "proposal", "traffic_selectors", "child_sa", "ike_sa"} <= kinds
    received_auth = [m for m in session.trace.of(MessageEvent, "right") if m.exchange == "IKE_AUTH" and m.direction == "received"][0]
    assert received_auth.plaintext and received_auth.inner_tree
    names = [f.name for f in received_auth.inner_tree]
    assert any("IDi" in n for n in names) and any("AUTH" in n for n in names)
    # Spans of decrypted fields index into the plaintext.
    for f in received_auth.inner_tree:
        assert 0 <= f.start < f.end <= len(received_auth.plaintext)


def test_forced_encapsulation_floats_to_4500_and_encapsulates_esp():
    session = run(lesson_with(left={"encap": True}))
    check_established(session)
    sent = messages(session)
    assert [m.src.rsplit(":")[1] for m in sent] == ["500", "500", "4500", "4500"]
    child = session.outcome.children["left"][0]
    assert child.outbound.encap == (4500, 4500) and child.inbound.encap == (4500, 4500)
    notes = " ".join(e.text for e in session.trace if e.kind == "note")
    assert "NAT detected in front of the peer" in notes and "floats to UDP 4500" in notes
