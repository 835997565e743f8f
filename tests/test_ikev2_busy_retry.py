"""TEMPORARY_FAILURE (RFC 7296 §2.25): a peer busy with a colliding exchange refuses a rekey for now;
the requester tries again a moment later instead of giving up (strongSwan does this when its own
Child SA rekey and our IKE SA rekey cross)."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import assert_no_internal_error, lesson_with
from ikelab.ikev2.ike_sa import State
from ikelab.lab.session import Session
from ikelab.lab.transports import MemoryTransport
from ikelab.lessons import Action
from ikelab.trace import ChildSaEvent, IkeKeysEvent, MessageEvent, NoteEvent


@pytest.mark.parametrize("action", ["rekey-ike", "rekey-child"])
def test_busy_peer_is_asked_again(action):
    lesson = dataclasses.replace(lesson_with(), actions=(Action(1.0, "left", action),), duration=4.0)
    session = Session(lesson, MemoryTransport.for_lesson(lesson), seed=2)
    while session.clock < 0.5:
        session.step()
    right_sa = session.peers["right"].established()[0]
    right_sa.state = State.REKEYED  # right is in the middle of something: it answers TEMPORARY_FAILURE
    while not [e for e in session.trace.of(NoteEvent, "left") if "TEMPORARY_FAILURE" in e.text]:
        session.step()
    right_sa.state = State.ESTABLISHED
    session.run()
    assert_no_internal_error(session)
    note = next(e for e in session.trace.of(NoteEvent, "left") if "TEMPORARY_FAILURE" in e.text)
    assert f"{action} again in 1 s" in note.text and note.level == "info"
    requests = [m for m in session.trace.of(MessageEvent, "left") if m.direction == "sent" and m.exchange == "CREATE_CHILD_SA"]
    assert len(requests) == 2 and requests[1].time - requests[0].time == pytest.approx(1.0, abs=0.05)
    if action == "rekey-ike":
        assert len(session.trace.of(IkeKeysEvent, "left")) == 2  # the second try rekeyed
    else:
        installed = [e for e in session.trace.of(ChildSaEvent, "left") if e.action == "installed"]
        (child,) = session.outcome.children["left"]
        assert len(installed) == 2 and child.inbound.spi.hex() == installed[1].inbound["spi"]  # the second try rekeyed
