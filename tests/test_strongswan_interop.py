"""ikelab against strongSwan (an implementation we did not write), ikelab in both roles: the
handshake completes, and the keys strongSwan logged are the keys ikelab derived."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import messages, needs_lab
from ikelab.lab.runs import new_session
from ikelab.crypto.names import parse_proposal
from ikelab.lab.lab import Lab
from ikelab.lab.strongswan import available
from ikelab.lessons import load_lesson
from ikelab.trace import ChildSaEvent, IkeKeysEvent

pytestmark = [needs_lab(), pytest.mark.skipif(available() is not None, reason=f"strongSwan cannot run here: {available()}")]

LESSON = load_lesson("ikev2-strongswan")


def swapped(lesson):
    """strongSwan initiates, ikelab responds."""
    left = dataclasses.replace(lesson.left, role="responder")
    right = dataclasses.replace(lesson.right, role="initiator")
    return dataclasses.replace(lesson, left=left, right=right)


def proposals(lesson, ike: str, esp: str):
    def change(peer):
        return dataclasses.replace(peer, ike=(parse_proposal(ike, ike=True),), esp=(parse_proposal(esp, ike=False),))

    return dataclasses.replace(lesson, left=change(lesson.left), right=change(lesson.right))


def handshake(lesson):
    with Lab(lesson) as lab:
        session = new_session(lesson, None, lab=lab)
        session.run()
        logged = lab.charons["right"].keys()
        return session, logged


@pytest.mark.parametrize("roles", ["ikelab initiates", "strongSwan initiates"])
@pytest.mark.parametrize("ike,esp", [
    ("aes128-sha256-modp2048", "aes128-sha256"),
    ("aes256gcm16-prfsha256-ecp256", "aes256gcm16"),
    ("aes128-sha256-x25519", "aes128-sha256"),
])
def test_keys_agree_with_strongswan(roles, ike, esp):
    lesson = proposals(LESSON, ike, esp)
    if roles == "strongSwan initiates":
        lesson = swapped(lesson)
    session, logged = handshake(lesson)
    assert session.outcome.ike_up.get("left"), session.outcome.failures
    ours = session.trace.of(IkeKeysEvent, "left")[-1]
    theirs = next(sa for sa in logged["ike_sas"] if sa["spi_i"] == ours.spi_i.hex())
    assert theirs["spi_r"] == ours.spi_r.hex()
    for name, value in ours.keys.items():
        assert theirs.get(name.lower(), "") == value.hex(), name
    child = session.trace.of(ChildSaEvent, "left")[-1]
    their_child = next(c for c in logged["child_sas"] if {s["spi"] for s in c["sas"]} == {child.inbound["spi"], child.outbound["spi"]})
    keys = their_child["keys"]
    we_initiated = roles == "ikelab initiates"
    out_key = keys["encr_i" if we_initiated else "encr_r"]
    assert child.outbound["encryption_key"] == out_key
    # libipsec forces UDP encapsulation: IKE moved to 4500 and the Child SA is ESP-in-UDP.
    assert messages(session)[-1].src.endswith(":4500")
    assert child.outbound["encap"] == [4500, 4500]


def test_ikelab_peer_command_against_strongswan(tmp_path):
    """`ikelab peer` alone, in a namespace, against a strongSwan it knows nothing else about."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from ikelab.lab.netns import Topology
    from ikelab.lab.strongswan import Charon, StrongswanPeer

    root = Path(__file__).resolve().parent.parent
    with Topology([("left", "192.0.2.1", "198.51.100.1"), ("right", "192.0.2.2", "203.0.113.1")]) as topo:
        # strongSwan plays the lesson's initiator (left.example) in the left namespace; ikelab the
        # responder (right.example) in the right one, knowing only strongSwan's address.
        left = topo.sides["left"]
        config = StrongswanPeer(name="left", namespace=left.namespace, local_addr="192.0.2.1", remote_addr="192.0.2.2",
                                local_id="left.example", remote_id="right.example", psk=b"interop-test-psk",
                                local_ts=["198.51.100.0/24"], remote_ts=["203.0.113.0/24"], role="initiator",
                                workdir=tmp_path)
        with Charon(config) as charon:
            ours = subprocess.Popen(
                ["ip", "netns", "exec", topo.sides["right"].namespace, sys.executable, "-m", "ikelab.cli", "peer",
                 "ikev2-strongswan", "--role", "responder", "--remote", "192.0.2.1"],
                cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            time.sleep(1.0)  # let it bind its sockets
            charon.initiate()
            out, err = ours.communicate(timeout=60)
    assert ours.returncode == 0, err
    assert "IKE SA established, 1 Child SA(s) installed" in out
    assert "receives IKE_AUTH request #1 192.0.2.1:4500 -> 192.0.2.2:4500" in out


@pytest.mark.parametrize("roles", ["ikelab initiates", "strongSwan initiates"])
@pytest.mark.parametrize("mode", ["main", "aggressive"])
def test_ikev1_against_strongswan(roles, mode):
    from ikelab.trace import Ikev1KeysEvent

    lesson = dataclasses.replace(LESSON, ike_version=1, mode=mode)
    if roles == "strongSwan initiates":
        lesson = swapped(lesson)
    with Lab(lesson) as lab:
        session = new_session(lesson, None, lab=lab)
        session.run()
        log = lab.charons["right"].logs().read_text(errors="replace")
    assert session.outcome.ike_up.get("left"), session.outcome.failures
    assert len(session.outcome.children["left"]) == 1
    assert "CHILD_SA net{1} established" in log
    ka = session.trace.of(Ikev1KeysEvent, "left")[0].keys["Ka"]
    # strongSwan logs the encryption key it derived: the same Ka as ours.
    assert " ".join(f"{b:02X}" for b in ka[:8]) in log


@pytest.mark.parametrize("roles", ["ikelab initiates", "strongSwan initiates"])
def test_ping_through_the_mixed_tunnel(roles, capsys):
    """ikelab's ESP (in UDP, as strongSwan 5.9.8's libipsec insists) against strongSwan's."""
    lesson = LESSON if roles == "ikelab initiates" else swapped(LESSON)
    with Lab(lesson) as lab:
        session = new_session(lesson, None, lab=lab)
        session.run()
        assert session.outcome.ike_up.get("left")
        result = lab.ping(4)
        counters = lab.datapath.counters("left")
    assert (result.transmitted, result.received) == (4, 4), result.lines
    assert list(counters["outbound"].values())[0]["packets"] == 4
    assert list(counters["inbound"].values())[0]["packets"] == 4
