"""Malformed, truncated, tampered and hostile datagrams never raise out of the engine."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import lesson_with, messages, run
from ikelab.effects import Endpoint, Send
from ikelab.ikev2.engine import Ikev2Peer
from ikelab.lab.session import Session, peer_config
from ikelab.lab.transports import MemoryTransport
from ikelab.rng import SeededRandom
from ikelab.trace import NoteEvent, Trace
from ikelab.wire.ikev2 import KePayload, Message, NoncePayload, SaPayload, UnknownPayload, encode_message, decode_message

LEFT, RIGHT = Endpoint("192.0.2.1", 500), Endpoint("192.0.2.2", 500)
REFERENCE = run()
DATAGRAMS = [m.data for m in messages(REFERENCE)]


def fresh_responder() -> Ikev2Peer:
    lesson = lesson_with()
    return Ikev2Peer(peer_config(lesson.right), SeededRandom(3, "right"), Trace(), RIGHT)


def no_internal_error(peer: Ikev2Peer) -> None:
    assert not [e.text for e in peer.trace.of(NoteEvent) if e.text.startswith("internal error")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_are_dropped_with_a_reason(data):
    peer = fresh_responder()
    effects = peer.receive(data, LEFT, RIGHT, 0.0)
    no_internal_error(peer)
    assert all(isinstance(e, Send) for e in effects)  # at most an error notify, never state
    assert not peer.sas


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 3), st.data())
def test_mutated_real_messages_never_raise(index, data):
    """Flip, cut or extend a real message and give it to a responder in the matching state."""
    original = DATAGRAMS[index]
    position = data.draw(st.integers(0, len(original) - 1))
    mode = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if mode == "flip":
        mutated = bytearray(original)
        mutated[position] ^= data.draw(st.integers(1, 255))
        mutated = bytes(mutated)
    elif mode == "truncate":
        mutated = original[:position]
    else:
        mutated = original + data.draw(st.binary(min_size=1, max_size=40))
    lesson = lesson_with()
    session = Session(lesson, MemoryTransport({p.name: p.address for p in lesson.peers}), seed=1)
    # Replay the reference run up to the message before `index`, then inject the mutation.
    for _ in range(index + 1):
        session.step()
    receiver = "right" if index % 2 == 0 else "left"
    src, dst = (LEFT, RIGHT) if receiver == "right" else (RIGHT, LEFT)
    session.peers[receiver].receive(mutated, src, dst, 0.5)
    no_internal_error(session.peers[receiver])


def test_tampered_ike_auth_is_dropped_and_the_request_retransmitted():
    lesson = lesson_with()

    class Tamper(MemoryTransport):
        count = 0

        def carry(self, send):
            self.count += 1
            if self.count == 3:  # the first IKE_AUTH request: flip one ciphertext byte
                data = bytearray(send.data)
                data[-20] ^= 1
                send = Send(bytes(data), send.src, send.dst, send.label)
            return super().carry(send)

    session = Session(lesson, Tamper({p.name: p.address for p in lesson.peers}), seed=1)
    session.run()
    assert any("integrity check (ICV) failed with SK_ai" in e.text for e in session.trace.of(NoteEvent, "right"))
    assert [m.exchange for m in messages(session, "retransmitted")] == ["IKE_AUTH"]
    assert session.outcome.success


def test_unknown_critical_payload_is_answered_unsupported_critical_payload():
    init = decode_message(DATAGRAMS[0]).message
    payloads = init.payloads[:3] + [UnknownPayload(payload_type=200, body=b"\x01\x02", critical=True)]
    data = encode_message(Message(init.header, payloads))
    peer = fresh_responder()
    effects = peer.receive(data, LEFT, RIGHT, 0.0)
    answer = decode_message(effects[0].data).message
    assert answer.summary() == "HDR, N(UNSUPPORTED_CRITICAL_PAYLOAD)"
    assert answer.payloads[0].data == bytes([200])
    assert not peer.sas


def test_unknown_non_critical_payload_is_skipped():
    init = decode_message(DATAGRAMS[0]).message
    payloads = init.payloads + [UnknownPayload(payload_type=200, body=b"hello", critical=False)]
    peer = fresh_responder()
    effects = peer.receive(encode_message(Message(init.header, payloads)), LEFT, RIGHT, 0.0)
    answer = decode_message(effects[0].data).message
    assert answer.find(SaPayload) and answer.find(KePayload) and answer.find(NoncePayload)


def test_initiator_ke_with_invalid_public_value_gets_invalid_syntax():
    init = decode_message(DATAGRAMS[0]).message
    ke = init.find(KePayload)
    bad = [KePayload(ke.group, bytes(len(ke.data) - 1) + b"\x01") if p is ke else p for p in init.payloads]
    peer = fresh_responder()
    effects = peer.receive(encode_message(Message(init.header, bad)), LEFT, RIGHT, 0.0)
    assert decode_message(effects[0].data).message.summary() == "HDR, N(INVALID_SYNTAX)"
    assert any("KE value is invalid" in e.text for e in peer.trace.of(NoteEvent))


def test_wrong_major_version_is_answered_invalid_major_version():
    data = bytearray(DATAGRAMS[0])
    data[17] = 0x30
    peer = fresh_responder()
    effects = peer.receive(bytes(data), LEFT, RIGHT, 0.0)
    answer = decode_message(effects[0].data).message
    assert answer.summary() == "HDR, N(INVALID_MAJOR_VERSION)" and answer.header.major == 2
    assert "IKE version 3.0" in peer.trace.of(NoteEvent)[-1].text
    assert not peer.sas


def test_response_with_unknown_message_id_is_dropped():
    session = run()
    left = session.peers["left"]
    header = decode_message(DATAGRAMS[3]).message.header
    forged = bytearray(DATAGRAMS[3])
    forged[20:24] = (7).to_bytes(4, "big")
    left.receive(bytes(forged), RIGHT, LEFT, 9.0)
    assert "message ID 7" in left.trace.of(NoteEvent, "left")[-1].text
    assert header.message_id == 1
