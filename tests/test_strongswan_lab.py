"""strongSwan as a lab peer: two charons in lab namespaces build a tunnel, carry ping, show their keys,
and leave no process or namespace behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ikelab.lab.netns import Topology, ikelab_namespaces
from ikelab.lab.strongswan import Charon, StrongswanPeer, available

pytestmark = pytest.mark.skipif(available() is not None, reason=f"strongSwan cannot run in the lab here: {available()}")

IDS = {"left": "a.example", "right": "b.example"}


def topology() -> Topology:
    return Topology([("left", "192.0.2.1", "198.51.100.1"), ("right", "192.0.2.2", "203.0.113.1")])


def peers(topo: Topology, workdir: Path) -> tuple[StrongswanPeer, StrongswanPeer]:
    left, right = topo.sides["left"], topo.sides["right"]

    def peer(me, other, role: str) -> StrongswanPeer:
        (workdir / me.name).mkdir()
        return StrongswanPeer(
            name=me.name, namespace=me.namespace, local_addr=me.address, remote_addr=other.address,
            local_id=IDS[me.name], remote_id=IDS[other.name], psk=b"interop-test-psk",
            ike_proposal="aes128-sha256-modp2048", esp_proposal="aes128-sha256",
            local_ts=[f"{me.protected}/32"], remote_ts=[f"{other.protected}/32"], role=role, workdir=workdir / me.name,
        )

    return peer(left, right, "initiator"), peer(right, left, "responder")


def gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


def test_two_charons_carry_ping_and_show_their_keys(tmp_path):
    with topology() as topo:
        left_peer, right_peer = peers(topo, tmp_path)
        with Charon(right_peer, topo.log) as right, Charon(left_peer, topo.log) as left:
            pids = [right.process.pid, left.process.pid]
            assert "CHILD_SA net{1} established" in left.initiate()
            ping = subprocess.run(
                ["ip", "netns", "exec", left_peer.namespace, "ping", "-n", "-c", "5", "-i", "0.2", "-W", "2",
                 "-I", "198.51.100.1", "203.0.113.1"], capture_output=True, text=True)
            assert "5 packets transmitted, 5 received" in ping.stdout, ping.stdout + ping.stderr
            left_keys, right_keys = left.keys(), right.keys()
        assert all(gone(pid) for pid in pids), "charon still runs after the with block"
    assert topo.sides["left"].namespace not in ikelab_namespaces()

    # Both daemons log the same IKE SA; the keys' lengths are those of aes128-sha256-modp2048.
    (ike,), (other_ike,) = left_keys["ike_sas"], right_keys["ike_sas"]
    assert {k: v for k, v in ike.items() if k != "log"} == {k: v for k, v in other_ike.items() if k != "log"}
    assert ike["ike_proposal"] == "AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"
    lengths = {"dh_secret": 256, "skeyseed": 32, "sk_d": 32, "sk_ai": 32, "sk_ar": 32, "sk_ei": 16, "sk_er": 16,
               "sk_pi": 32, "sk_pr": 32, "spi_i": 8, "spi_r": 8}
    assert {name: len(bytes.fromhex(ike[name])) for name in lengths} == lengths

    (child,), (other_child,) = left_keys["child_sas"], right_keys["child_sas"]
    assert (child["role"], other_child["role"]) == ("initiator", "responder")
    assert child["keys"] == other_child["keys"]
    assert {name: len(bytes.fromhex(v)) for name, v in child["keys"].items()} == {
        "encr_i": 16, "encr_r": 16, "integ_i": 32, "integ_r": 32}
    assert child["esp_proposal"] == "AES_CBC_128/HMAC_SHA2_256_128/NO_EXT_SEQ"
    # Left's outbound SA is right's inbound SA and the other way round.
    spis = {(sa["dir"], sa["src"]): sa["spi"] for sa in child["sas"]}
    other_spis = {(sa["dir"], sa["src"]): sa["spi"] for sa in other_child["sas"]}
    assert spis == {("outbound", "192.0.2.1"): other_spis[("inbound", "192.0.2.1")],
                    ("inbound", "192.0.2.2"): other_spis[("outbound", "192.0.2.2")]}


def test_an_error_inside_the_block_still_stops_charon(tmp_path):
    with pytest.raises(RuntimeError, match="lesson broke"), topology() as topo:
        left_peer, _ = peers(topo, tmp_path)
        with Charon(left_peer, topo.log) as left:
            pid = left.process.pid
            raise RuntimeError("lesson broke")
    assert gone(pid)
    assert topo.sides["left"].namespace not in ikelab_namespaces()
