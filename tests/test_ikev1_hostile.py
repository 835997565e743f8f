"""Hostile and malformed datagrams: every one is dropped or answered with a reason, none raises."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ikev1_handshake import LEFT, RIGHT, config, run

from ikelab.ikev1.engine import Ikev1Peer
from ikelab.rng import SeededRandom
from ikelab.trace import NoteEvent, Trace

FAST = {"ike_proposals": "aes128-sha256-curve25519", "esp_proposals": "aes128-sha256-curve25519"}
MAIN = run(FAST, FAST)
AGGRESSIVE = run({**FAST, "mode": "aggressive"}, FAST)


def replay(reference, upto: int) -> tuple[dict[str, Ikev1Peer], Trace]:
    """Fresh peers with the reference run's seeds, fed its first `upto` datagrams: the same state."""
    trace = Trace()
    peers = {name: Ikev1Peer(p.config, SeededRandom(1, name), trace, p.local) for name, p in reference.peers.items()}
    peers["left"].initiate(RIGHT, 0.0)
    for send in reference.wire[:upto]:
        receiver = "right" if send.dst == RIGHT else "left"
        peers[receiver].receive(send.data, send.src, send.dst, 0.001)
    return peers, trace


def deliver(reference, index: int, data: bytes) -> Trace:
    peers, trace = replay(reference, index)
    send = reference.wire[index]
    receiver = "right" if send.dst == RIGHT else "left"
    before = len(trace)
    peers[receiver].receive(data, send.src, send.dst, 0.002)
    peers[receiver].on_timer(100.0)
    new = trace.events[before:]
    assert not [e.text for e in trace.of(NoteEvent) if e.text.startswith("internal error")]
    assert new, "a datagram must leave a trace: processed, answered or dropped with a reason"
    return trace


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data):
    peer = Ikev1Peer(config("right"), SeededRandom(1, "right"), Trace(), RIGHT)
    peer.receive(data, LEFT, RIGHT, 0.0)
    assert not [e for e in peer.trace.of(NoteEvent) if e.text.startswith("internal error")]
    assert peer.trace.events


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([MAIN, AGGRESSIVE]), st.data())
def test_mutated_real_messages_never_raise(reference, data):
    index = data.draw(st.integers(0, len(reference.wire) - 1))
    original = bytearray(reference.wire[index].data)
    mutation = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if mutation == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            original[data.draw(st.integers(0, len(original) - 1))] ^= data.draw(st.integers(1, 255))
    elif mutation == "truncate":
        original = original[: data.draw(st.integers(0, len(original) - 1))]
    else:
        original += data.draw(st.binary(min_size=1, max_size=32))
    deliver(reference, index, bytes(original))


def test_a_tampered_encrypted_message_is_dropped_not_fatal_in_quick_mode():
    index = next(i for i, s in enumerate(MAIN.wire) if s.data[18] == 32)  # quick mode message 1
    data = bytearray(MAIN.wire[index].data)
    data[-20] ^= 1  # in the last-but-one cipher block: the HASH(1) input changes
    trace = deliver(MAIN, index, bytes(data))
    notes = [e.text for e in trace.of(NoteEvent, "right")]
    assert any("dropped" in t for t in notes[-3:])


def test_quick_mode_before_phase_1_is_finished_is_dropped():
    index = next(i for i, s in enumerate(MAIN.wire) if s.data[18] == 32)
    trace = deliver(MAIN, 4, MAIN.wire[index].data)  # the responder is still waiting for message 5
    assert any("phase 1 is not finished" in e.text for e in trace.of(NoteEvent, "right"))


def test_wrong_version_and_unknown_cookies_are_dropped_with_reasons():
    peer = Ikev1Peer(config("right"), SeededRandom(1, "right"), Trace(), RIGHT)
    ikev2 = bytearray(MAIN.wire[0].data)
    ikev2[17] = 0x20
    peer.receive(bytes(ikev2), LEFT, RIGHT, 0.0)
    peer.receive(MAIN.wire[2].data, LEFT, RIGHT, 0.0)
    texts = [e.text for e in peer.trace.of(NoteEvent)]
    assert "this peer speaks IKEv1" in texts[0] and "no ISAKMP SA with initiator cookie" in texts[1]
