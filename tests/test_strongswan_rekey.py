"""ikelab against strongSwan after the handshake, with ping running throughout: Child SA rekeys with
PFS and IKE SA rekeys started by either side lose no ping, and every rekeyed key is the key strongSwan
logged; DELETE of a Child SA and of the IKE SA from either side empties the other side; NAT-T
through the masquerading router with strongSwan or ikelab behind it; tshark decrypts the capture."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import assert_no_internal_error, needs_lab, needs_tshark
from ikelab.lab.runs import new_session, ping_stage
from ikelab.crypto.names import parse_proposal
from ikelab.export.capture import export_capture
from ikelab.lab.lab import Lab
from ikelab.lab.strongswan import available
from ikelab.lessons import Action, RouterSpec, load_lesson
from ikelab.trace import ChildSaEvent, IkeKeysEvent, IkeSaEvent, MessageEvent, NoteEvent

pytestmark = [needs_lab(), pytest.mark.skipif(available() is not None, reason=f"strongSwan cannot run here: {available()}")]

PFS = (parse_proposal("aes128-sha256-modp2048", ike=False),)
PINGS = 15  # at 0.2 s: three seconds of ping


def lesson_with(left: dict, right: dict, *, swap: bool = False, actions=(), router=None):
    """ikev2-strongswan (ikelab left, strongSwan right) with PFS in the ESP proposal and the given changes."""
    lesson = load_lesson("ikev2-strongswan")
    if swap:
        left, right = dict(left, role="responder"), dict(right, role="initiator")
    return dataclasses.replace(
        lesson, left=dataclasses.replace(lesson.left, esp=PFS, **left), right=dataclasses.replace(lesson.right, esp=PFS, **right),
        actions=tuple(Action(*a) for a in actions), router=router)


def live_run(lesson, pings: int = PINGS, capture: Path | None = None, after=None, ours: str = "left"):
    """Handshake, then ping while the session follows the wall clock (timers, actions, the other
    side's exchanges); returns the session, the ping, strongSwan's keys and SAs, and the raw capture."""
    with Lab(lesson, capture=capture) as lab:
        session = new_session(lesson, None, lab=lab)
        session.run()
        assert session.outcome.ike_up.get(ours), session.outcome.failures
        result = ping_stage(session, lab, pings, lambda line: None)
        if after is not None:
            after(session, lab)
        charon = lab.charons["right" if ours == "left" else "left"]
        logged, sas, log = charon.keys(), charon.list_sas(), charon.logs().read_text(errors="replace")
        lab.stop_capture()
    assert_no_internal_error(session)
    return session, result, logged, sas, log


def live_until(session, observe, expected, timeout: float = 5.0):
    """Let the session follow the wall clock until observe() == expected (or the timeout); returns
    the last observation."""
    stop = threading.Event()
    live = threading.Thread(target=session.run_live, args=(stop,), name="test-live")
    live.start()
    try:
        deadline = time.monotonic() + timeout
        while (seen := observe()) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        live.join()
    return seen


def sent(session, exchange: str, peer: str = "left") -> list[MessageEvent]:
    return [m for m in session.trace.of(MessageEvent, peer) if m.direction == "sent" and m.exchange == exchange]


def received_requests(session, exchange: str, peer: str = "left") -> list[MessageEvent]:
    return [m for m in session.trace.of(MessageEvent, peer)
            if m.direction == "received" and m.exchange == exchange and not m.is_response]


def assert_keys_match_strongswan(session, logged, ike_sas: int = 2, child_sas: int = 2, peer: str = "left") -> None:
    """Every IKE SA and Child SA ikelab derived (first and rekeyed) is one strongSwan logged, key for key."""
    ours = session.trace.of(IkeKeysEvent, peer)
    for keys in ours:
        theirs = next((sa for sa in logged["ike_sas"] if sa.get("sk_d") == keys.keys["SK_d"].hex()), None)
        assert theirs is not None, f"strongSwan logged no IKE SA with our SK_d {keys.keys['SK_d'].hex()}"
        assert (theirs["spi_i"], theirs["spi_r"]) == (keys.spi_i.hex(), keys.spi_r.hex())
        for name, value in keys.keys.items():
            assert theirs.get(name.lower(), "") == value.hex(), name
    children = [e for e in session.trace.of(ChildSaEvent, peer) if e.action == "installed"]
    for child in children:
        spis = {child.inbound["spi"], child.outbound["spi"]}
        theirs = next((c for c in logged["child_sas"] if {s["spi"] for s in c["sas"]} == spis), None)
        assert theirs is not None, f"strongSwan logged no Child SA with SPIs {spis}"
        logged_keys = set(theirs["keys"].values())
        assert {child.outbound["encryption_key"], child.inbound["encryption_key"],
                child.outbound["integrity_key"], child.inbound["integrity_key"]} == logged_keys
    assert len(ours) >= ike_sas and len(children) >= child_sas  # rekeyed SAs were among them


def tshark_rows(capture: Path, profile: Path, *fields: str) -> list[list[str]]:
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(profile))
    args = [a for f in fields for a in ("-e", f)]
    out = subprocess.run(["tshark", "-r", str(capture), "-T", "fields", "-E", "separator=|", *args],
                         env=env, capture_output=True, text=True, check=True).stdout
    return [line.split("|") for line in out.splitlines()]


@needs_tshark()
def test_strongswan_rekeys_the_child_ikelab_the_ike_sa_while_ping_runs(tmp_path):
    """The lesson ikev2-strongswan-rekey: ikelab initiates; strongSwan rekeys the Child SA every 2 s
    (PFS), ikelab the IKE SA at 3 s."""
    lesson = load_lesson("ikev2-strongswan-rekey")
    raw = tmp_path / "veth.pcap"
    session, result, logged, sas, _ = live_run(lesson, capture=raw)
    assert (result.transmitted, result.received) == (PINGS, PINGS), result.lines
    child_rekeys = received_requests(session, "CREATE_CHILD_SA")
    # At least one: strongSwan's second rekey (about 4 s in) may come just after the ping ends.
    assert len(child_rekeys) >= 1 and all("N(REKEY_SA)" in m.summary and "KE" in m.summary for m in child_rekeys)
    ike_rekey = [m for m in sent(session, "CREATE_CHILD_SA") if "TSi" not in m.summary]
    assert len(ike_rekey) == 1 and "KE" in ike_rekey[0].summary
    assert_keys_match_strongswan(session, logged)
    # strongSwan's child rekeys after ours of the IKE SA ran on the new IKE SA, still ESP in UDP.
    spi_new = session.trace.of(IkeKeysEvent, "left")[-1].spi_i
    last_child = [e for e in session.trace.of(ChildSaEvent, "left") if e.action == "installed"][-1]
    assert last_child.outbound["encap"] == [4500, 4500]
    assert any(m.data[:8] == spi_new for m in child_rekeys)
    assert sas == {"ike": 1, "child": 1}

    # tshark decrypts every IKE message and every ESP packet with the tables of this run.
    capture = tmp_path / "rekey.pcapng"
    export_capture(capture, session.trace, lesson, raw)
    rows = tshark_rows(capture, capture.with_suffix(".wireshark"), "udp.dstport", "isakmp.exchangetype", "isakmp.enc.decrypted",
                       "esp.spi", "esp.icv_good", "icmp.type", "_ws.malformed")
    protected = [r for r in rows if r[1] and r[1] != "34"]  # every exchange after IKE_SA_INIT
    assert protected and all(r[2] for r in protected), [r for r in protected if not r[2]]
    esp = [r for r in rows if r[3]]
    assert len(esp) == 2 * PINGS and all(r[4] == "1" for r in esp) and sorted(r[5] for r in esp) == ["0"] * PINGS + ["8"] * PINGS
    assert len({r[3] for r in esp}) >= 4  # the pings crossed more than one Child SA
    assert all(r[6] == "" for r in rows)


def test_ikelab_rekeys_the_child_strongswan_the_ike_sa_while_ping_runs():
    """strongSwan initiates; ikelab rekeys the Child SA at 2 s (PFS), strongSwan the IKE SA at 3 s."""
    lesson = lesson_with({"rekey_child_after": 2.0}, {"rekey_ike_after": 3}, swap=True)
    session, result, logged, sas, _ = live_run(lesson)
    assert (result.transmitted, result.received) == (PINGS, PINGS), result.lines
    child_rekeys = [m for m in sent(session, "CREATE_CHILD_SA") if "N(REKEY_SA)" in m.summary]
    assert child_rekeys and all("KE" in m.summary for m in child_rekeys)
    ike_rekeys = [m for m in received_requests(session, "CREATE_CHILD_SA") if "TSi" not in m.summary]
    assert len(ike_rekeys) == 1 and "KE" in ike_rekeys[0].summary
    assert_keys_match_strongswan(session, logged)
    assert sas == {"ike": 1, "child": 1}


@pytest.mark.parametrize("who", ["left", "right"])
def test_delete_child_then_ike_sa(who):
    """Either side deletes the Child SA, then the IKE SA; the other side removes its SAs."""
    checks = {}

    def after(session, lab):
        # After the ping (deleting under it would lose pings by design). strongSwan's side runs
        # swanctl --terminate in a thread, as a lesson action does: it waits for our answer.
        act = (lambda action: session.act("left", action)) if who == "left" else session.act_remote
        charon = lab.charons["right"]
        act("delete-child")
        checks["after child"] = live_until(session, lambda: (charon.list_sas(), list(session.outcome.children["left"])),
                                           ({"ike": 1, "child": 0}, []))
        act("delete-ike")
        checks["after ike"] = live_until(session, lambda: (charon.list_sas(), list(session.peers["left"].sas)),
                                         ({"ike": 0, "child": 0}, []))

    session, result, _, _, log = live_run(lesson_with({}, {}), pings=3, after=after)
    assert (result.transmitted, result.received) == (3, 3)
    assert checks["after child"] == ({"ike": 1, "child": 0}, [])
    assert checks["after ike"] == ({"ike": 0, "child": 0}, [])
    assert [e.state for e in session.trace.of(IkeSaEvent, "left")] == ["established", "deleted"]
    assert not session.peers["left"].sas
    deletes = [m for m in session.trace.of(MessageEvent, "left") if m.exchange == "INFORMATIONAL" and not m.is_response]
    assert [m.summary for m in deletes] == ["HDR, SK {D}", "HDR, SK {D}"]
    assert {m.direction for m in deletes} == {"sent" if who == "left" else "received"}
    verb = "received" if who == "left" else "sending"
    assert f"{verb} DELETE for ESP CHILD_SA" in log and f"{verb} DELETE for IKE_SA" in log


def test_nat_t_with_strongswan_behind_the_router():
    """strongSwan (left, initiator) behind the masquerading router, ikelab (right, responder) in front
    of it: ikelab sees the NAT in front of its peer, IKE floats, ESP-in-UDP carries ping, strongSwan's
    NAT keepalives (after a second without traffic here) arrive and are ignored. ikelab, the IKE SA's
    responder, rekeys it at 2 s (so it is the initiator of the new one); strongSwan rekeys the Child
    SA at 3 s on the new IKE SA."""
    lesson = load_lesson("ikev2-strongswan")
    left = dataclasses.replace(lesson.right, name="left", role="initiator", address="192.0.2.1",
                               local_ts=lesson.left.local_ts, remote_ts=lesson.left.remote_ts, protected=lesson.left.protected,
                               identity=lesson.left.identity, remote_identity=lesson.left.remote_identity,
                               esp=PFS, nat_keepalive_every=1, rekey_child_after=3)
    right = dataclasses.replace(lesson.left, name="right", role="responder", address="192.0.2.130",
                                local_ts=lesson.right.local_ts, remote_ts=lesson.right.remote_ts, protected=lesson.right.protected,
                                identity=lesson.right.identity, remote_identity=lesson.right.remote_identity,
                                esp=PFS, rekey_ike_after=2.0)
    lesson = dataclasses.replace(lesson, left=left, right=right, router=RouterSpec(nat=True))
    session, result, logged, sas, log = live_run(lesson, ours="right")
    assert (result.transmitted, result.received) == (PINGS, PINGS), result.lines
    auth = next(m for m in session.trace.of(MessageEvent, "right") if m.exchange == "IKE_AUTH" and m.direction == "received")
    assert auth.src.startswith("192.0.2.129:") and auth.dst == "192.0.2.130:4500"  # through the NAT, floated
    keepalives = [e for e in session.trace.of(NoteEvent, "right") if e.detail.get("nat_keepalive")]
    # strongSwan sends one only after a second with nothing else sent (RFC 3948 §2.3): before the ping.
    assert len(keepalives) >= 1 and all("192.0.2.129:" in e.text and "ignored" in e.text for e in keepalives)
    assert not [e for e in session.trace.of(NoteEvent) if e.level != "info"]
    ike_rekeys = [m.summary for m in sent(session, "CREATE_CHILD_SA", "right") if not m.is_response]
    assert ike_rekeys and set(ike_rekeys) == {"HDR, SK {SA, Ni, KE}"}  # every 2 s
    child_rekey = received_requests(session, "CREATE_CHILD_SA", "right")
    assert child_rekey and child_rekey[0].data[:8] == session.trace.of(IkeKeysEvent, "right")[1].spi_i
    assert_keys_match_strongswan(session, logged, peer="right")
    assert sas == {"ike": 1, "child": 1}


def test_nat_t_with_ikelab_behind_the_router():
    """ikelab (left, initiator) behind the router sends its keepalives to strongSwan (right), which
    sees them from the router's address; ping through the NAT. strongSwan, the IKE SA's responder,
    rekeys it at 2 s; ikelab rekeys the Child SA at 3 s on the new IKE SA, still ESP in UDP."""
    lesson = lesson_with({"nat_keepalive_every": 0.5, "rekey_child_after": 3.0},
                         {"rekey_ike_after": 2, "address": "192.0.2.130"}, router=RouterSpec(nat=True))
    session, result, logged, sas, log = live_run(lesson)
    assert (result.transmitted, result.received) == (PINGS, PINGS), result.lines
    ours = [e for e in session.trace.of(NoteEvent, "left") if e.detail.get("nat_keepalive")]
    assert len(ours) >= 4 and all(e.detail["src"] == "192.0.2.1:4500" for e in ours)
    assert ours[-1].time > session.trace.of(IkeKeysEvent, "left")[1].time  # still sent on the rekeyed IKE SA
    assert "remote host is behind NAT" in log
    ike_rekeys = [m.summary for m in received_requests(session, "CREATE_CHILD_SA")]
    assert ike_rekeys and set(ike_rekeys) == {"HDR, SK {SA, Ni, KE}"}  # every 2 s
    child_rekey = [m for m in sent(session, "CREATE_CHILD_SA") if "N(REKEY_SA)" in m.summary]
    assert child_rekey and child_rekey[0].data[:8] == session.trace.of(IkeKeysEvent, "left")[1].spi_i
    last_child = [e for e in session.trace.of(ChildSaEvent, "left") if e.action == "installed"][-1]
    assert last_child.outbound["encap"] == [4500, 4500]
    assert_keys_match_strongswan(session, logged)
    assert sas == {"ike": 1, "child": 1}
