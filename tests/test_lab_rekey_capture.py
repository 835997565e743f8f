"""ikelab against ikelab in the lab: rekeying while ping runs, tshark decrypts every IKE message and
every ESP packet of the real capture with the tables ikelab exported, the rekeyed SAs' included;
DELETE takes the SAs out of both datapaths, and nothing then crosses in the clear."""

from __future__ import annotations

import os
import subprocess

from scapy.layers.inet import ICMP
from scapy.utils import rdpcap

from conftest import assert_no_internal_error, needs_lab, needs_tshark
from ikelab.cli import main
from ikelab.lab.lab import Lab
from ikelab.lab.session import Session
from ikelab.lessons import load_lesson

pytestmark = needs_lab()


@needs_tshark()
def test_tshark_decrypts_a_capture_across_rekeys(tmp_path, capsys):
    target = tmp_path / "rekey.pcapng"
    assert main(["run", "ikev2-rekey", "--headless", "--seed", "4", "--ping", "20", "--pcap", str(target)]) == 0
    assert "20 packets transmitted, 20 received" in capsys.readouterr().out
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(target.with_suffix(".wireshark")))
    out = subprocess.run(
        ["tshark", "-r", str(target), "-T", "fields", "-E", "separator=|", "-e", "isakmp.exchangetype", "-e", "isakmp.nextpayload",
         "-e", "isakmp.enc.decrypted", "-e", "esp.spi", "-e", "esp.icv_good", "-e", "icmp.type", "-e", "_ws.malformed",
         "-e", "frame.comment"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    rows = [line.split("|") for line in out.splitlines()]
    protected = [r for r in rows if r[0] and r[0] != "34"]
    exchanges = {r[0] for r in protected}
    assert {"35", "36", "37"} <= exchanges  # IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL
    assert all(r[2] for r in protected), [r for r in protected if not r[2]]
    esp = [r for r in rows if r[3]]
    assert len(esp) == 40 and all(r[4] == "1" for r in esp)
    assert sorted(r[5] for r in esp) == ["0"] * 20 + ["8"] * 20
    assert len({r[3] for r in esp}) >= 4  # the ping crossed rekeyed Child SAs
    assert all(r[6] == "" and r[7] for r in rows)  # well-formed, every packet annotated


def test_delete_empties_both_datapaths(tmp_path):
    lesson = load_lesson("ikev2-psk")
    capture = tmp_path / "veth.pcap"
    with Lab(lesson, capture=capture) as lab:
        session = Session(lesson, lab.transport, seed=6, datapath=lab.datapath, namespaces=lab.namespaces)
        session.run()
        before = lab.ping(2)
        session.act("left", "delete-child")
        session.run()
        counters = {side: lab.datapath.counters(side) for side in ("left", "right")}
        after = lab.ping(2)
        dropped = lab.datapath.counters("left")["dropped"]["no_sa"]
        session.act("right", "delete-ike")
        session.run()
        lab.stop_capture()
    assert_no_internal_error(session)
    assert (before.received, after.received) == (2, 0)
    assert all(not c["inbound"] and not c["outbound"] for c in counters.values()), counters
    assert dropped >= 2  # the routes still lead into the TUN device, where no SA takes the packets
    assert not session.peers["left"].sas and not session.peers["right"].sas
    assert not session.outcome.children["left"] and not session.outcome.children["right"]
    assert not [p for p in rdpcap(str(capture)) if p.haslayer(ICMP)], "ping crossed the veth in clear"
