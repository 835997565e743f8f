"""NAT keepalives (RFC 3948 §2.3): the side behind a NAT sends the one byte 0xFF on port 4500 on its
own clock; the other side ignores it; a rekeyed IKE SA keeps sending them and keeps ESP in UDP."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess

from scapy.layers.inet import UDP
from scapy.utils import rdpcap

from conftest import assert_no_internal_error, needs_lab, needs_tshark
from ikelab.export.capture import export_capture
from ikelab.lab.session import Session
from ikelab.lab.transports import MemoryTransport
from ikelab.lessons import Action, load_lesson
from ikelab.trace import ChildSaEvent, NoteEvent


def nat_session(duration: float, actions=(), **left) -> Session:
    lesson = load_lesson("ikev2-nat")
    lesson = dataclasses.replace(lesson, left=dataclasses.replace(lesson.left, **left), duration=duration,
                                 actions=tuple(Action(*a) for a in actions))
    session = Session(lesson, MemoryTransport.for_lesson(lesson), seed=7)
    session.run()
    assert_no_internal_error(session)
    return session


def keepalive_notes(session, peer: str, sent: bool) -> list[NoteEvent]:
    return [e for e in session.trace.of(NoteEvent, peer) if e.detail.get("nat_keepalive") and ("src" in e.detail) == sent]


def test_the_side_behind_the_nat_keeps_it_alive_and_the_other_ignores_it():
    session = nat_session(4.5, nat_keepalive_every=1.0)
    sent = keepalive_notes(session, "left", sent=True)
    assert [round(e.time) for e in sent] == [1, 2, 3, 4]
    assert all(e.detail["src"] == "192.0.2.1:4500" and e.detail["dst"] == "192.0.2.130:4500" for e in sent)
    # Right is not behind the NAT: it sends none, and sees each from the router's side of the NAT.
    assert not keepalive_notes(session, "right", sent=True)
    received = keepalive_notes(session, "right", sent=False)
    assert len(received) == 4 and all("192.0.2.129:4500" in e.text and "ignored" in e.text for e in received)
    assert not [e for e in session.trace.of(NoteEvent) if e.level != "info"]
    # Keepalive steps are not IKE datagrams: the ladder still pairs each arrow with its delivery.
    from ikelab.tui.focus import arrow_states

    assert [s.kind for s in session.steps].count("keepalive") == 4
    assert set(arrow_states(session.trace.events, session.steps)) == {"delivered"}


def test_default_interval_is_twenty_seconds():
    session = nat_session(45.0)
    assert [round(e.time) for e in keepalive_notes(session, "left", sent=True)] == [20, 40]


def test_rekeyed_ike_sa_stays_behind_the_nat():
    session = nat_session(5.0, [(1.5, "left", "rekey-ike"), (2.5, "right", "rekey-child")], nat_keepalive_every=1.0)
    # The rekeyed IKE SA keeps the rhythm: never more than one interval without a keepalive.
    times = [0.0] + [e.time for e in keepalive_notes(session, "left", sent=True)]
    assert len(times) >= 5 and max(b - a for a, b in zip(times, times[1:])) <= 1.1 and times[-1] > 4.0, times
    children = [e for e in session.trace.of(ChildSaEvent, "left") if e.action == "installed"]
    assert len(children) == 2
    # The Child SA made on the rekeyed IKE SA is still ESP in UDP between the 4500 ports.
    assert children[1].outbound["encap"] == children[0].outbound["encap"] == [4500, 4500]


@needs_tshark()
def test_keepalives_in_the_capture(tmp_path):
    session = nat_session(2.5, nat_keepalive_every=1.0)
    target = tmp_path / "nat.pcapng"
    export_capture(target, session.trace, session.lesson)
    frames = [p for p in rdpcap(str(target)) if p.haslayer(UDP) and bytes(p[UDP].payload) == b"\xff"]
    assert len(frames) == 2 and all(p[UDP].dport == 4500 for p in frames)
    out = subprocess.run(["tshark", "-r", str(target), "-Y", "udp.length == 9", "-T", "fields", "-e", "_ws.col.Info",
                          "-e", "_ws.malformed", "-e", "frame.comment"], capture_output=True, text=True, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == 2
    assert all("NAT-keepalive" in r[0] and r[1] == "" and "RFC 3948" in r[2] for r in rows), rows


@needs_lab()
def test_keepalives_cross_the_real_nat_while_ping_runs(tmp_path):
    """Real namespaces: left's keepalives pass the masquerading router while ESP-in-UDP carries a ping
    on the same port; right's IKE socket gets them (the ESP worker never does) and ignores them."""
    from ikelab.lab.runs import ping_stage
    from ikelab.lab.lab import Lab

    lesson = load_lesson("ikev2-nat")
    lesson = dataclasses.replace(lesson, left=dataclasses.replace(lesson.left, nat_keepalive_every=0.5))
    capture = tmp_path / "veth.pcap"
    with Lab(lesson, capture=capture) as lab:
        session = Session(lesson, lab.transport, seed=3, datapath=lab.datapath, namespaces=lab.namespaces)
        session.run()
        result = ping_stage(session, lab, 10, lambda line: None)
        counters = lab.datapath.counters("right")
        lab.stop_capture()
    assert_no_internal_error(session)
    assert (result.transmitted, result.received) == (10, 10), result.lines
    sent, received = keepalive_notes(session, "left", sent=True), keepalive_notes(session, "right", sent=False)
    assert len(sent) >= 3 and len(received) == len(sent)
    assert not [e for e in session.trace.of(NoteEvent) if e.level != "info"]
    assert counters["dropped"]["unknown_spi"] == 0  # no keepalive reached right's ESP worker
    on_the_wire = [p for p in rdpcap(str(capture)) if p.haslayer(UDP) and bytes(p[UDP].payload) == b"\xff"]
    assert len(on_the_wire) == len(sent) and all((p[UDP].sport, p[UDP].dport) == (4500, 4500) for p in on_the_wire)
    if shutil.which("tshark") is None:
        return
    # tshark reads the annotated capture: keepalives as such, every ESP-in-UDP packet decrypted and
    # authenticated with the exported esp_sa table, every IKE message after IKE_SA_INIT decrypted.
    target = tmp_path / "nat.pcapng"
    export_capture(target, session.trace, lesson, capture)
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(target.with_suffix(".wireshark")))
    out = subprocess.run(["tshark", "-r", str(target), "-T", "fields", "-E", "separator=|", "-e", "udpencap.nat_keepalive",
                          "-e", "esp.icv_good", "-e", "icmp.type", "-e", "isakmp.exchangetype", "-e", "isakmp.enc.decrypted",
                          "-e", "_ws.malformed", "-e", "frame.comment"], env=env, capture_output=True, text=True, check=True).stdout
    rows = [line.split("|") for line in out.splitlines()]
    keepalive_rows = [r for r in rows if r[0]]
    assert len(keepalive_rows) == len(sent) and all("NAT keepalive" in r[6] for r in keepalive_rows)
    esp_rows = [r for r in rows if r[1]]
    assert len(esp_rows) == 20 and all(r[1] == "1" for r in esp_rows) and sorted(r[2] for r in esp_rows) == ["0"] * 10 + ["8"] * 10
    assert all(r[4] for r in rows if r[3] and r[3] != "34") and all(r[5] == "" and r[6] for r in rows)
