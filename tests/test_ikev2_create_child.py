"""CREATE_CHILD_SA and INFORMATIONAL between two ikelab peers: extra Child SAs, rekeys (with and
without PFS), IKE SA rekey, rekey collisions, deletes and liveness."""

from __future__ import annotations

import dataclasses

from conftest import assert_no_internal_error, lesson_with, messages
from ikelab.crypto import ikev2_kdf
from ikelab.lab.session import Session
from ikelab.lab.transports import MemoryTransport
from ikelab.lessons import Action
from ikelab.trace import ChildSaEvent, DhSharedEvent, IkeKeysEvent, IkeSaEvent, NoteEvent, PrfEvent, PrfPlusEvent


def session_with(lesson, actions=(), duration=10.0, seed=3) -> Session:
    lesson = dataclasses.replace(lesson, actions=tuple(Action(*a) for a in actions), duration=duration)
    session = Session(lesson, MemoryTransport({p.name: p.address for p in lesson.peers}), seed=seed)
    session.run()
    assert_no_internal_error(session)
    return session


def installed(session, peer):
    return [e for e in session.trace.of(ChildSaEvent, peer) if e.action == "installed"]


def deleted(session, peer):
    return [e for e in session.trace.of(ChildSaEvent, peer) if e.action == "deleted"]


def mirrored(session):
    left, right = session.outcome.children["left"], session.outcome.children["right"]
    assert len(left) == len(right)
    for l in left:
        assert any(l.outbound == r.inbound and l.inbound == r.outbound for r in right)


def test_additional_child_sa():
    session = session_with(lesson_with(), [(1.0, "left", "create-child")])
    assert len(session.outcome.children["left"]) == 2
    mirrored(session)
    create = [m for m in messages(session) if m.exchange == "CREATE_CHILD_SA"]
    assert [m.summary for m in create] == ["HDR, SK {SA, Ni, TSi, TSr}", "HDR, SK {SA, Nr, TSi, TSr}"]


def test_child_rekey_without_pfs_replaces_the_old_sa():
    session = session_with(lesson_with(), [(1.0, "left", "rekey-child")])
    children = session.outcome.children
    assert len(children["left"]) == 1
    mirrored(session)
    first, second = installed(session, "left")
    assert children["left"][0].inbound.spi.hex() == second.inbound["spi"] != first.inbound["spi"]
    assert [d.inbound["spi"] for d in deleted(session, "left")] == [first.inbound["spi"]]
    summaries = [m.summary for m in messages(session)][4:]
    assert summaries == [
        "HDR, SK {N(REKEY_SA), SA, Ni, TSi, TSr}", "HDR, SK {SA, Nr, TSi, TSr}",
        "HDR, SK {D}", "HDR, SK {D}",
    ]


def test_child_rekey_with_pfs_mixes_a_new_dh_secret():
    lesson = lesson_with(both={"esp": "aes128-sha256-modp2048"})
    session = session_with(lesson, [(1.0, "right", "rekey-child")])
    mirrored(session)
    keymat = [e for e in session.trace.of(PrfPlusEvent, "right") if e.label.startswith("Child SA")][-1]
    shared = session.trace.of(DhSharedEvent, "right")[-1].shared
    assert keymat.formula == "KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr)"
    assert keymat.seed.startswith(shared) and len(keymat.seed) == len(shared) + 64
    # The right peer initiated this exchange, so its KEYMAT's first keys protect right -> left.
    right_child = session.outcome.children["right"][0]
    assert right_child.outbound.encryption_key == keymat.split["encryption key i->r"]
    rekey = [m for m in messages(session) if m.exchange == "CREATE_CHILD_SA"]
    assert rekey[0].summary == "HDR, SK {N(REKEY_SA), SA, Ni, KE, TSi, TSr}" and rekey[0].peer == "right"


def test_ike_sa_rekey_moves_the_children_and_deletes_the_old_sa():
    session = session_with(lesson_with(), [(1.0, "left", "rekey-ike")])
    keys = session.trace.of(IkeKeysEvent, "left")
    assert len(keys) == 2 and keys[0].spi_i != keys[1].spi_i
    left, right = session.peers["left"], session.peers["right"]
    assert len(left.sas) == len(right.sas) == 1
    new_left = next(iter(left.sas.values()))
    assert (new_left.spi_i, new_left.spi_r) == (keys[1].spi_i, keys[1].spi_r)
    assert len(new_left.children) == 1 and not deleted(session, "left")
    # SKEYSEED (rekey) = prf(SK_d (old), g^ir (new) | Ni | Nr), computed here independently.
    rekey = [e for e in session.trace.of(PrfEvent, "left") if e.label.startswith("SKEYSEED (rekeyed")][0]
    prf = new_left.ike.prf
    expected = ikev2_kdf.rekey_skeyseed(prf, keys[0].keys["SK_d"], new_left.shared_secret, new_left.ni, new_left.nr)
    assert rekey.output == expected
    states = [(e.state, e.spi_i) for e in session.trace.of(IkeSaEvent, "right")]
    assert ("deleted", keys[0].spi_i) in states
    # The new IKE SA works: a Child SA rekey over it succeeds.
    session.act("right", "rekey-child")
    session.run()
    mirrored(session)


def test_simultaneous_child_rekeys_leave_exactly_one_child():
    session = session_with(lesson_with(), [(1.0, "left", "rekey-child"), (1.0, "right", "rekey-child")])
    mirrored(session)
    assert len(session.outcome.children["left"]) == 1
    notes = " ".join(e.text for e in session.trace.of(NoteEvent))
    assert "rekey collision" in notes and "lowest nonce" in notes
    original = installed(session, "left")[0].inbound["spi"]
    assert session.outcome.children["left"][0].inbound.spi.hex() != original


def test_lifetimes_rekey_on_the_clock():
    lesson = lesson_with(left={"rekey_child_after": 3.0})
    session = session_with(lesson, duration=10.0)
    rekeys = [m for m in messages(session) if m.exchange == "CREATE_CHILD_SA" and not m.is_response]
    assert [round(m.time) for m in rekeys] == [3, 6, 9]
    mirrored(session)


def test_child_lifetime_survives_an_ike_sa_rekey():
    """The Child SA keeps its own lifetime when the IKE SA under it is rekeyed (here by the other
    side, so left becomes the responder of the new IKE SA): its rekey still comes at 3 s, not 3 s
    after the IKE rekey."""
    lesson = lesson_with(left={"rekey_child_after": 3.0})
    session = session_with(lesson, [(2.0, "right", "rekey-ike")], duration=7.0)
    requests = [m for m in messages(session) if m.exchange == "CREATE_CHILD_SA" and not m.is_response]
    assert [(m.peer, round(m.time), "REKEY_SA" in m.summary) for m in requests] == [
        ("right", 2, False), ("left", 3, True), ("left", 6, True)]
    mirrored(session)


def test_delete_child_and_ike_sa():
    session = session_with(lesson_with(), [(1.0, "left", "delete-child"), (2.0, "right", "delete-ike")])
    assert not session.outcome.children["left"] and not session.outcome.children["right"]
    assert not session.peers["left"].sas and not session.peers["right"].sas
    assert [m.summary for m in messages(session)][4:] == ["HDR, SK {D}", "HDR, SK {D}", "HDR, SK {D}", "HDR, SK {}"]


def test_liveness_check_is_an_empty_informational():
    lesson = lesson_with(left={"liveness_every": 4.0})
    session = session_with(lesson, duration=9.0)
    checks = [m for m in messages(session) if m.exchange == "INFORMATIONAL"]
    assert [m.summary for m in checks] == ["HDR, SK {}", "HDR, SK {}"] * 2


def test_rekey_of_unknown_child_is_child_sa_not_found():
    session = session_with(lesson_with(), [(1.0, "left", "delete-child"), (2.0, "left", "create-child")])
    left = session.peers["left"]
    sa = next(iter(left.sas.values()))
    ghost = dataclasses.replace(sa.children[0], inbound=dataclasses.replace(sa.children[0].inbound, spi=b"\x00\x00\x99\x99"))
    session._apply("left", left._run(session.clock, lambda: __import__("ikelab.ikev2.exchanges.create_child_sa", fromlist=["x"]).rekey_child(left, sa, ghost)))
    session.run()
    assert "N(CHILD_SA_NOT_FOUND)" in messages(session)[-1].summary


def test_each_child_sa_is_rekeyed_by_its_own_lifetime():
    """Two Child SAs (A at 0 s, B at 1 s, 3 s lifetimes); A is rekeyed early by hand at 2 s. Each
    lifetime timer names its Child SA: A's old timer (3 s) finds A gone and does nothing, B is
    rekeyed at 4 s and A's successor at 5 s. (A timer that took "the first Child SA" rekeyed B at
    3 s and A's successor at 4 s.)"""
    lesson = lesson_with(left={"rekey_child_after": 3.0})
    session = session_with(lesson, [(1.0, "left", "create-child"), (2.0, "left", "rekey-child")], duration=5.5)
    a, b, a2 = (e.inbound["spi"] for e in installed(session, "left")[:3])
    rekeyed = [(round(e.time), e.text.split("inbound SPI 0x")[1].rstrip(")"))
               for e in session.trace.of(NoteEvent, "left") if e.text.startswith("rekeying Child SA")]
    assert rekeyed == [(2, a), (4, b), (5, a2)]
    assert len(session.outcome.children["left"]) == 2
    mirrored(session)
