"""A Child SA exchange crossing an IKE SA rekey (RFC 7296 §2.25.1): the peer rekeying its IKE SA
answers TEMPORARY_FAILURE, and the other one, which has meanwhile moved its Child SAs to the new
IKE SA, asks again there. Both must end with the same Child SAs on the same single IKE SA."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import assert_no_internal_error, lesson_with
from ikelab.ikev2.ike_sa import State
from ikelab.lab.session import Session
from ikelab.lab.transports import MemoryTransport
from ikelab.lessons import Action
from ikelab.trace import ChildSaEvent, IkeSaEvent, NoteEvent

OTHER = {"left": "right", "right": "left"}


def crossing(child_side: str, child_action: str, ike_at: float = 1.0, seed: int = 3) -> Session:
    """Actions at the same time run left first, so left's request is on the wire first: with the
    Child SA exchange on the left its request arrives first, on the right the IKE rekey's does."""
    actions = (Action(1.0, child_side, child_action), Action(ike_at, OTHER[child_side], "rekey-ike"))
    lesson = dataclasses.replace(lesson_with(), actions=actions, duration=4.0)
    session = Session(lesson, MemoryTransport.for_lesson(lesson), seed=seed)
    session.run()
    assert_no_internal_error(session)
    trouble = [f"{e.peer}: {e.text}" for e in session.trace.of(NoteEvent) if e.level in ("warning", "error")]
    assert not trouble, trouble
    return session


def one_rekeyed_ike_sa(session: Session):
    """Both peers hold exactly one IKE SA, the same one, and it is the rekeyed one."""
    left, right = session.peers["left"], session.peers["right"]
    assert len(left.sas) == len(right.sas) == 1
    (l_sa,), (r_sa,) = left.established(), right.established()
    assert (l_sa.spi_i, l_sa.spi_r) == (r_sa.spi_i, r_sa.spi_r)
    rekeyed = [e for e in session.trace.of(IkeSaEvent, "left") if e.state == "established" and e.reason.startswith("rekeyed")]
    assert len(rekeyed) == 1 and rekeyed[0].spi_i == l_sa.spi_i
    return l_sa, r_sa


def mirrored(l_sa, r_sa) -> None:
    assert len(l_sa.children) == len(r_sa.children)
    for l in l_sa.children:
        assert sum(l.outbound == r.inbound and l.inbound == r.outbound for r in r_sa.children) == 1


@pytest.mark.parametrize("child_side", ["left", "right"])
def test_child_rekey_crossing_an_ike_rekey_is_retried_on_the_new_ike_sa(child_side):
    session = crossing(child_side, "rekey-child")
    l_sa, r_sa = one_rekeyed_ike_sa(session)
    assert len(l_sa.children) == 1
    mirrored(l_sa, r_sa)
    # The Child SA was rekeyed (its rekey timer had fired): the first one is gone, a second one stays.
    for peer, sa in (("left", l_sa), ("right", r_sa)):
        installed = [e for e in session.trace.of(ChildSaEvent, peer) if e.action == "installed"]
        deleted = [e for e in session.trace.of(ChildSaEvent, peer) if e.action == "deleted"]
        assert len(installed) == 2, peer  # no orphan: nothing installed on the IKE SA about to go
        assert [d.inbound["spi"] for d in deleted] == [installed[0].inbound["spi"]]
        assert sa.children[0].inbound.spi.hex() == installed[1].inbound["spi"]
    # The trace says why the rekey was asked for twice.
    refused = [e.text for e in session.trace.of(NoteEvent, OTHER[child_side]) if "TEMPORARY_FAILURE" in e.text]
    assert refused == ["CREATE_CHILD_SA for a Child SA while our own IKE SA rekey is in flight: TEMPORARY_FAILURE (RFC 7296 §2.25.1)"]
    (retry,) = [e for e in session.trace.of(NoteEvent, child_side) if "TEMPORARY_FAILURE" in e.text]
    assert f"rekey-child again in 1 s on the rekeyed IKE SA {l_sa.label}" in retry.text
    due = [e for e in session.trace.of(NoteEvent, child_side) if e.text == "timer: rekey-child is due"]
    assert len(due) == 1 and due[0].time == pytest.approx(retry.time + 1.0)


@pytest.mark.parametrize("child_side", ["left", "right"])
def test_create_child_crossing_an_ike_rekey_is_retried_on_the_new_ike_sa(child_side):
    session = crossing(child_side, "create-child")
    l_sa, r_sa = one_rekeyed_ike_sa(session)
    assert len(l_sa.children) == 2
    mirrored(l_sa, r_sa)
    (retry,) = [e for e in session.trace.of(NoteEvent, child_side) if "TEMPORARY_FAILURE" in e.text]
    assert f"create-child again in 1 s on the rekeyed IKE SA {l_sa.label}" in retry.text


@pytest.mark.parametrize("ike_at", [0.9995, 1.0005, 1.0015, 1.0025])
@pytest.mark.parametrize("child_side", ["left", "right"])
def test_child_rekey_just_before_or_after_an_ike_rekey(child_side, ike_at):
    """Not quite crossing: whichever order the exchanges run in, the peers agree."""
    session = crossing(child_side, "rekey-child", ike_at)
    l_sa, r_sa = one_rekeyed_ike_sa(session)
    assert len(l_sa.children) == 1
    mirrored(l_sa, r_sa)
    assert len([e for e in session.trace.of(ChildSaEvent, "left") if e.action == "installed"]) == 2


def test_a_retry_waiting_when_the_ike_sa_is_rekeyed_moves_to_the_new_one():
    """A create-child refused for a while (the peer is forced busy, as in test_ikev2_busy_retry) is
    retried 1 s later; an IKE SA rekey in between hands the waiting retry to the new IKE SA."""
    actions = (Action(1.0, "left", "create-child"), Action(1.5, "left", "rekey-ike"))
    lesson = dataclasses.replace(lesson_with(), actions=actions, duration=4.0)
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
    l_sa, r_sa = one_rekeyed_ike_sa(session)
    assert len(l_sa.children) == 2
    mirrored(l_sa, r_sa)
    created = [e for e in session.trace.of(NoteEvent, "left") if e.text == "timer: create-child is due"]
    assert len(created) == 1 and created[0].time > 1.5


def test_a_request_waiting_behind_an_ike_rekey_runs_on_the_new_ike_sa():
    """An exchange asked for while our IKE SA rekey is in flight waits (window size 1); the rekey
    then replaces the IKE SA it waited on, and it must still run, on the new IKE SA."""
    lesson = dataclasses.replace(lesson_with(), actions=(Action(1.0, "left", "rekey-ike"),), duration=4.0)
    session = Session(lesson, MemoryTransport.for_lesson(lesson), seed=3)
    left = session.peers["left"]
    while not any(sa.rekeying_ike for sa in left.sas.values()):
        session.step()
    session.act("left", "create-child")
    assert any(sa.queued for sa in left.sas.values())
    session.run()
    assert_no_internal_error(session)
    l_sa, r_sa = one_rekeyed_ike_sa(session)
    assert len(l_sa.children) == 2 and not l_sa.queued
    mirrored(l_sa, r_sa)
    installed = [e for e in session.trace.of(ChildSaEvent, "left") if e.action == "installed"]
    rekeyed = next(e for e in session.trace.of(IkeSaEvent, "left") if e.reason.startswith("rekeyed"))
    assert len(installed) == 2 and installed[1].time > rekeyed.time


@pytest.mark.parametrize("child_side", ["left", "right"])
def test_child_delete_crossing_an_ike_rekey_deletes_the_moved_child_sa(child_side):
    """The Delete's response arrives on the old IKE SA after the rekey moved the Child SA: it must
    still be deleted on both sides (it stayed installed on the side that asked)."""
    session = crossing(child_side, "delete-child")
    l_sa, r_sa = one_rekeyed_ike_sa(session)
    assert l_sa.children == [] and r_sa.children == []
    for peer in ("left", "right"):
        assert len([e for e in session.trace.of(ChildSaEvent, peer) if e.action == "deleted"]) == 1, peer


def test_a_child_delete_arriving_after_the_ike_rekey_finds_the_moved_child_sa():
    """Right sends a Child SA Delete on the old IKE SA just before it answers left's IKE rekey; the
    rekey response overtakes the Delete, so left has moved its Child SAs to the new IKE SA when the
    Delete arrives on the old one: left must find the Child SA there and delete it."""
    actions = (Action(1.0, "left", "rekey-ike"), Action(1.0, "right", "delete-child"))
    lesson = dataclasses.replace(lesson_with(), actions=actions, duration=4.0)
    session = Session(lesson, MemoryTransport.for_lesson(lesson), seed=3)
    right = session.peers["right"]
    while len(right.sas) < 2:  # right answered the rekey: its Delete and the response are in flight
        session.step()
    queue = session._queue
    assert [s.label for s in queue] == ["INFORMATIONAL request", "CREATE_CHILD_SA response"]
    queue.reverse()
    session.run()
    assert_no_internal_error(session)
    l_sa, r_sa = one_rekeyed_ike_sa(session)
    assert l_sa.children == [] and r_sa.children == []
    for peer in ("left", "right"):
        assert len([e for e in session.trace.of(ChildSaEvent, peer) if e.action == "deleted"]) == 1, peer
    # Left's answer reaches right after left's Delete of the old IKE SA: right's Delete, unanswered
    # when that SA went, is sent again on the new IKE SA (it was lost, and right kept the Child SA).
    (again,) = [e for e in session.trace.of(NoteEvent, "right") if "sent again" in e.text]
    assert again.text.startswith("INFORMATIONAL request (message ID ") and again.text.endswith(f"replaced it, {r_sa.label}")
    # Left found the Child SA on the first Delete (it was: "the peer deleted ESP SPI ..., which we do
    # not know"); only the repeated one, on the new IKE SA, names an SPI that is gone by then.
    (deleted,) = [e for e in session.trace.of(ChildSaEvent, "left") if e.action == "deleted"]
    trouble = [e for e in session.trace.of(NoteEvent, "left") if e.level in ("warning", "error")]
    assert [e.text.endswith("which we do not know") for e in trouble] == [True], [e.text for e in trouble]
    assert deleted.time < again.time <= trouble[0].time


def test_a_busy_retry_rekeys_the_child_sa_that_was_refused():
    """Two Child SAs; the second one's rekey is answered TEMPORARY_FAILURE (the peer is forced busy,
    as above): the retry 1 s later must rekey that same Child SA, not the first one."""
    from ikelab.ikev2.exchanges import create_child_sa

    lesson = dataclasses.replace(lesson_with(), actions=(Action(1.0, "left", "create-child"),), duration=4.0)
    session = Session(lesson, MemoryTransport.for_lesson(lesson), seed=2)
    while session.clock < 1.0 or session._queue:
        session.step()
    left, right = session.peers["left"], session.peers["right"]
    (l_sa,), (r_sa,) = left.established(), right.established()
    first, second = l_sa.children
    r_sa.state = State.REKEYED  # right is in the middle of something: it answers TEMPORARY_FAILURE
    session._apply("left", left._run(session.clock, lambda: create_child_sa.rekey_child(left, l_sa, second)))
    while not [e for e in session.trace.of(NoteEvent, "left") if "TEMPORARY_FAILURE" in e.text]:
        session.step()
    r_sa.state = State.ESTABLISHED
    session.run()
    assert_no_internal_error(session)
    rekeying = [e.text for e in session.trace.of(NoteEvent, "left") if e.text.startswith("rekeying Child SA")]
    assert rekeying == [f"rekeying Child SA net (inbound SPI 0x{second.inbound.spi.hex()})"] * 2
    assert first in l_sa.children and second not in l_sa.children and len(l_sa.children) == 2
    mirrored(l_sa, r_sa)


def overtaken_delete(actions) -> Session:
    """Run `actions` (left rekeys its IKE SA, right deletes a Child SA at the same time) with the rekey
    response overtaking right's Delete (as in test_a_child_delete_arriving_after_the_ike_rekey_...)."""
    lesson = dataclasses.replace(lesson_with(), actions=actions, duration=4.0)
    session = Session(lesson, MemoryTransport.for_lesson(lesson), seed=3)
    while len(session.peers["right"].sas) < 2:
        session.step()
    assert [s.label for s in session._queue] == ["INFORMATIONAL request", "CREATE_CHILD_SA response"]
    session._queue.reverse()
    session.run()
    assert_no_internal_error(session)
    return session


def test_a_request_queued_on_a_deleted_rekeyed_ike_sa_runs_on_the_new_one():
    """Right's liveness check waits behind its Delete on the old IKE SA when left deletes that SA: it
    must still run, on the new IKE SA (it waited forever on the deleted one)."""
    actions = (Action(1.0, "left", "rekey-ike"), Action(1.0, "right", "delete-child"), Action(1.0, "right", "liveness"))
    session = overtaken_delete(actions)
    l_sa, r_sa = one_rekeyed_ike_sa(session)
    assert r_sa.pending is None and not r_sa.queued
    (again,) = [e for e in session.trace.of(NoteEvent, "right") if "sent again" in e.text]
    answered = [e for e in session.trace.of(NoteEvent, "right") if e.text == "the peer answered the liveness check"]
    assert len(answered) == 1 and answered[0].time > again.time
    assert l_sa.children == [] and r_sa.children == []


def test_a_child_delete_started_on_the_old_ike_sa_deletes_on_the_new_one():
    """delete_child called with an IKE SA that was rekeyed since (a closure queued before the rekey)
    deletes the Child SA on the IKE SA that holds it (it found none: 'no such Child SA to delete')."""
    from ikelab.ikev2.exchanges import informational

    lesson = dataclasses.replace(lesson_with(), actions=(Action(1.0, "left", "rekey-ike"),), duration=2.0)
    session = Session(lesson, MemoryTransport.for_lesson(lesson), seed=3)
    left = session.peers["left"]
    while not left.established() or session._queue:
        session.step()
    (old,) = left.established()
    session.run()
    assert old.successor is not None and old.children == []
    session._apply("left", left._run(session.clock, lambda: informational.delete_child(left, old)))
    session.run()
    assert_no_internal_error(session)
    trouble = [f"{e.peer}: {e.text}" for e in session.trace.of(NoteEvent) if e.level in ("warning", "error")]
    assert not trouble, trouble
    l_sa, r_sa = one_rekeyed_ike_sa(session)
    assert l_sa.children == [] and r_sa.children == []
    for peer in ("left", "right"):
        assert len([e for e in session.trace.of(ChildSaEvent, peer) if e.action == "deleted"]) == 1, peer


def test_an_invalid_ke_retry_answered_after_an_ike_rekey_goes_on_the_new_ike_sa():
    """Left's create-child is answered INVALID_KE_PAYLOAD (right wants another PFS group), and right's
    IKE rekey reaches left before that answer: left's retry must go on the new IKE SA (it went on the
    rekeyed one, which right refuses)."""
    lesson = lesson_with(left={"esp": "aes128gcm16-ecp256-modp2048"}, right={"esp": "aes128gcm16-modp2048"})
    lesson = dataclasses.replace(lesson, actions=(Action(1.0, "left", "create-child"),), duration=4.0)
    session = Session(lesson, MemoryTransport.for_lesson(lesson), seed=3)
    while session.clock < 1.0 or [s.label for s in session._queue] != ["CREATE_CHILD_SA response"]:
        session.step()
    session.act("right", "rekey-ike")
    assert [s.label for s in session._queue] == ["CREATE_CHILD_SA response", "CREATE_CHILD_SA request"]
    session._queue.reverse()
    session.run()
    assert_no_internal_error(session)
    assert [e for e in session.trace.of(NoteEvent, "left") if "wants DH group" in e.text]
    trouble = [f"{e.peer}: {e.text}" for e in session.trace.of(NoteEvent) if e.level in ("warning", "error")]
    assert [t for t in trouble if "PFS with" not in t] == [], trouble
    assert not [e for e in session.trace.of(NoteEvent) if "TEMPORARY_FAILURE" in e.text]
    l_sa, r_sa = one_rekeyed_ike_sa(session)
    assert len(l_sa.children) == 2
    mirrored(l_sa, r_sa)


def test_a_liveness_check_sent_again_on_the_new_ike_sa_keeps_its_rhythm_there():
    """Right's liveness check is in flight on the old IKE SA when left deletes it: sent again on the
    new IKE SA, its answer schedules the next check there (it went on the deleted SA: never fired)."""
    lesson = lesson_with(right={"liveness_every": 30.0})
    actions = (Action(1.0, "left", "rekey-ike"), Action(1.0, "right", "liveness"))
    lesson = dataclasses.replace(lesson, actions=actions, duration=4.0)
    session = Session(lesson, MemoryTransport.for_lesson(lesson), seed=3)
    while len(session.peers["right"].sas) < 2:
        session.step()
    assert [s.label for s in session._queue] == ["INFORMATIONAL request", "CREATE_CHILD_SA response"]
    session._queue.reverse()
    session.run()
    assert_no_internal_error(session)
    l_sa, r_sa = one_rekeyed_ike_sa(session)
    (answered,) = [e for e in session.trace.of(NoteEvent, "right") if e.text == "the peer answered the liveness check"]
    assert (answered.time + 30.0, "liveness") in r_sa.timers
