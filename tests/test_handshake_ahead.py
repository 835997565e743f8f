"""Work taken off the handshake's path: the DH key pair made before the first message (with the
values a seeded run draws anyway), and Child SA installs the lab hands to its ESP workers without
waiting for their answers (confirmed before the run pauses; a refusal is still an error)."""

from __future__ import annotations

import pytest
from conftest import lesson_with, messages, needs_lab, run

from ikelab.crypto.dh import DhGroup
from ikelab.ikev2.engine import Ikev2Peer
from ikelab.lab.lab import Lab
from ikelab.lab.netns import LabError
from ikelab.lab.session import Session
from ikelab.lab.transports import MemoryTransport
from ikelab.lessons import load_lesson
from ikelab.trace import DhKeyPairEvent


def test_key_pairs_are_made_before_the_first_message():
    lesson = load_lesson("ikev2-psk")
    session = Session(lesson, MemoryTransport.for_lesson(lesson), seed=5)
    assert all(peer.spare_dh for peer in session.peers.values())
    generated = []
    original = DhGroup.generate

    def counting(self, rng, purpose):
        generated.append(purpose)
        return original(self, rng, purpose)

    DhGroup.generate = counting
    try:
        assert session.run().success
    finally:
        DhGroup.generate = original
    assert generated == []  # both IKE_SA_INIT messages used the pairs made ahead
    assert not any(peer.spare_dh for peer in session.peers.values())


def test_a_seeded_run_draws_the_same_key_pairs_with_or_without_preparing(monkeypatch):
    prepared = run(seed=11)
    monkeypatch.setattr(Ikev2Peer, "prepare", lambda self: None)
    unprepared = run(seed=11)
    pairs = [(e.peer, e.private, e.public) for e in prepared.trace.of(DhKeyPairEvent)]
    assert pairs == [(e.peer, e.private, e.public) for e in unprepared.trace.of(DhKeyPairEvent)]
    assert [m.data for m in messages(prepared)] == [m.data for m in messages(unprepared)]


def test_a_group_other_than_the_prepared_one_is_drawn_when_needed():
    # The initiator made a modp2048 pair ahead, its first group; the responder wants ecp256 and
    # answers INVALID_KE_PAYLOAD, so the retry draws a fresh ecp256 pair, while the responder
    # answers with the ecp256 pair it made ahead.
    lesson = lesson_with(right={"ike": "aes128-sha256-ecp256"}, left={"ike": "aes128-sha256-modp2048-ecp256"})
    session = run(lesson, seed=3)
    assert session.outcome.success
    groups = [(e.peer, e.group_name) for e in session.trace.of(DhKeyPairEvent)]
    assert groups == [("left", "modp2048"), ("left", "ecp256"), ("right", "ecp256")]


@needs_lab()
def test_installs_are_confirmed_before_the_run_pauses_and_a_refusal_is_an_error():
    lesson = lesson_with()
    with Lab(lesson) as lab:
        session = Session(lesson, lab.transport, seed=4, datapath=lab.datapath, namespaces=lab.namespaces)
        assert session.run().success
        assert all(worker._unanswered == 0 for worker in lab.datapath.workers.values())
        assert lab.ping(1).received == 1
        lab.datapath.workers["right"].post(op="install", inbound={}, outbound={})  # malformed: refused
        with pytest.raises(LabError, match="the ESP worker of right refused the Child SA"):
            lab.datapath.settle()
        assert lab.ping(1).received == 1  # the worker goes on
